#!/usr/bin/env bash
# Builds the gate's image from the Dockerfile on the base that scripts/base-image.sh --resolve picks,
# and reports what the gate adds to it.   IMAGE=registry.example.com/tools/amr-policy-gate:1.0 scripts/image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(node -p 'require("./package.json").version')"
source_url="$(node -p 'require("./package.json").repository.url')"
image="${IMAGE:-amr-policy-gate:$version}"
base="$(scripts/base-image.sh --resolve)"
[ -f dist/policy.mjs ] || node build.mjs
base_digest="$(docker image inspect -f '{{if .RepoDigests}}{{index .RepoDigests 0}}{{else}}{{.Id}}{{end}}' "$base")"
docker build -q --build-arg BASE_IMAGE="$base" --build-arg BASE_DIGEST="${base_digest##*@}" --build-arg VERSION="$version" \
  --build-arg SOURCE="$source_url" -t "$image" . >/dev/null
base_size="$(docker image inspect -f '{{.Size}}' "$base")"
size="$(docker image inspect -f '{{.Size}}' "$image")"
echo "built $image on $base: $size bytes, the base plus $(( (size - base_size) / 1024 )) KiB" >&2
echo "$image"
