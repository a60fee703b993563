#!/usr/bin/env bash
# Assembles the Carvel package's imgpkg bundle in DIR from config/: config/package/bundle/ (the values schema and
# the templates), the Cartographer templates, the TAP overlay, the build cluster's store secrets and, as a ytt
# library, config/developer-namespace/. With IMAGE (REPOSITORY@sha256:...), the values default to it and
# .imgpkg/images.yml locks it, so kbld pins it and `imgpkg copy` carries it.
#   scripts/package-bundle.sh DIR [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: scripts/package-bundle.sh DIR [IMAGE]}"
image="${2:-}"
mkdir -p "$dir/config/_ytt_lib" "$dir/.imgpkg"
cp config/package/bundle/*.yaml config/cartographer.yaml config/tap-overlay/*.yaml config/build-cluster/*.yaml "$dir/config/"
cp -rL config/developer-namespace "$dir/config/_ytt_lib/developer-namespace"
if [ -n "$image" ]; then
  printf '#@data/values\n---\nimage: %s\n' "$image" > "$dir/config/image.yaml"
  cat > "$dir/.imgpkg/images.yml" <<LOCK
apiVersion: imgpkg.carvel.dev/v1alpha1
kind: ImagesLock
images:
  - image: $image
    annotations:
      kbld.carvel.dev/id: $image
LOCK
else
  printf 'apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n' > "$dir/.imgpkg/images.yml"
fi
