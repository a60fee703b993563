#!/usr/bin/env bash
# Publishes the gate's image like a release: linux/amd64 and linux/arm64 built from the Dockerfile (it has no
# RUN step, so neither architecture needs emulation), pushed with an OCI image index, each image's CycloneDX SBOM
# attached to it as an OCI referrer, the Carvel package's bundle and a package repository bundle (printed on
# stderr), and the reference to pin printed as the last line:
# REPOSITORY@sha256:<digest of the index>.
#
#   scripts/publish.sh [--sign KEY] [--set-task] [--allow-dirty] [--overwrite] REPOSITORY[:TAG]   TAG: package.json's version
#     --sign KEY      sign the index and each image as cosign does (sha256-<hex>.sig; KEY: cosign.key with COSIGN_PASSWORD, or a PKCS#8 PEM)
#     --set-task      write the pushed reference into config/developer-namespace/task.yaml (config/task.yaml links to it) in place of the step's image
#     --allow-dirty   publish from a tree with uncommitted changes (a release is built from a commit)
#     --overwrite     push over a tag the registry already has (a release tag is published once)
#   BASE_IMAGE_AMD64, BASE_IMAGE_ARM64   the bases to build on; default: the offline stand-ins that
#                                        scripts/base-image.sh --arch builds from Debian's packages and npm
#
# Credentials are those of `docker login REGISTRY` ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
# The registry's CA, if private, goes where Docker (and buildah) read it: /etc/docker/certs.d/REGISTRY/ca.crt.
# Builds with buildah (Debian's package), which builds for another architecture without emulation for a
# Dockerfile with no RUN step; `docker manifest inspect` checks whether the tag is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '8,12p' "$0" >&2; exit 2; }
LOG_NAME=publish.sh
# Node 24 and the tools, as scripts/dev.sh sets them up: a release runs from a fresh clone.
. scripts/lib.sh

set_task=false allow_dirty=false overwrite=false reference="" sign_key=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sign) [ $# -ge 2 ] || usage; sign_key="$2"; shift ;;
    --set-task) set_task=true ;;
    --allow-dirty) allow_dirty=true ;;
    --overwrite) overwrite=true ;;
    -h | --help) usage ;;
    -*) log "unknown option $1"; usage ;;
    *) [ -z "$reference" ] || usage; reference="$1" ;;
  esac
  shift
done
[ -n "$reference" ] || usage
ensure_node
version="$(node -p 'require("./package.json").version')"
source_url="$(node -p 'require("./package.json").repository.url')"
# REPOSITORY[:TAG]: a colon after the last slash starts the tag (a registry's port comes before it).
last="${reference##*/}"
if [[ "$last" == *:* ]]; then repository="${reference%:*}" tag="${reference##*:}"; else repository="$reference" tag="$version"; fi
[[ "$reference" != *@* ]] || { log "$reference: give a tag, not a digest; the digest is what this prints"; exit 2; }

if ! $allow_dirty && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  log "the working tree has uncommitted changes: commit them (a release is built from a commit), or pass --allow-dirty"
  exit 1
fi

# buildah (containers/image) reads the same credentials when pointed at docker's file.
export REGISTRY_AUTH_FILE="${REGISTRY_AUTH_FILE:-${DOCKER_CONFIG:-$HOME/.docker}/config.json}"

# A release tag is published once. Only the registry's own "manifest unknown" means the tag is free: any other
# failure (TLS, credentials, the network) says nothing about it, so it stops the release instead of overwriting.
ensure_docker
if ! $overwrite; then
  if answer="$(docker manifest inspect "$repository:$tag" 2>&1)"; then
    log "$repository:$tag is already in the registry: a release tag is published once (bump the version, or pass --overwrite)"
    exit 1
  elif ! grep -qiE 'manifest unknown|no such manifest' <<<"$answer"; then
    log "cannot tell whether $repository:$tag is already published: $(head -1 <<<"$answer")"
    log "fix the registry's access first (its CA in /etc/docker/certs.d/REGISTRY/ca.crt, docker login REGISTRY)"
    exit 1
  fi
fi

ensure_release_tools
ensure_packages always
# A key that cannot sign stops the release before anything is built or pushed.
if [ -n "$sign_key" ]; then node scripts/sign-image.ts --check "$sign_key"; fi
node build.mjs
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
list="localhost/amr-policy-gate-publish:$tag"
buildah manifest rm "$list" >/dev/null 2>&1 || true
buildah manifest create "$list" >/dev/null
for arch in amd64 arm64; do
  base_var="BASE_IMAGE_${arch^^}"
  base="${!base_var:-}"
  if [ -z "$base" ]; then base="$(scripts/base-image.sh --arch "$arch")"; fi
  log "building linux/$arch on $base"
  base_digest="$(buildah images --format '{{.Digest}}' "$base" | head -1)"
  buildah build --quiet --arch "$arch" --os linux --pull=false \
    --build-arg BASE_IMAGE="$base" --build-arg BASE_DIGEST="${base_digest:-unknown}" \
    --build-arg VERSION="$version" --build-arg SOURCE="$source_url" \
    --label org.opencontainers.image.revision="$revision" \
    --tag "$list-$arch" --manifest "$list" . >/dev/null
done

digest_file="$(mktemp)"
trap 'rm -f "$digest_file" "$digest_file".*' EXIT
log "pushing linux/amd64, linux/arm64 and their index to $repository:$tag"
buildah manifest push --quiet --all --format oci --digestfile "$digest_file" "$list" "docker://$repository:$tag"
digest="$(cat "$digest_file")"
pushed="$repository@$digest"

# Signed as cosign signs (the simple-signing payload, sha256-<hex>.sig): a namespace under TAP's Policy Controller can
# then run the Task's step image (config/admission/gate-image-policy.yaml).
if [ -n "$sign_key" ]; then
  for signed in $(node scripts/sign-image.ts "$repository" "$digest" "$sign_key"); do
    log "signed $repository@$signed ($repository:${signed/:/-}.sig)"
  done
fi

# Each image's SBOM, from its files as scanners read them, attached to it as an OCI 1.1 referrer (with the
# fallback tag where the registry has no referrers API): Grype and Trivy can scan the release without pulling it.
for arch in amd64 arm64; do
  node_version="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "dev.amr-policy-gate.node.version"}}' "$list-$arch")"
  container="$(buildah from --pull=false "$list-$arch")"
  rootfs="$(buildah mount "$container")"
  node scripts/sbom.ts "$rootfs" "$arch" "${node_version:-unknown}" > "$digest_file.$arch.cdx.json"
  buildah umount "$container" >/dev/null && buildah rm "$container" >/dev/null
  sbom="$(node scripts/attach-sbom.ts "$repository" "$digest" "$arch" "$digest_file.$arch.cdx.json")"
  log "attached the linux/$arch SBOM (CycloneDX 1.6) as $repository@$sbom"
done

# The Carvel package: its imgpkg bundle (an OCI image labelled dev.carvel.imgpkg.bundle, the image locked in
# .imgpkg/images.yml) and a package repository bundle listing it, so that `tanzu package repository add` and
# `imgpkg copy` work from the registry alone.
push_bundle() { # DIR TARGET -> prints TARGET's digest
  local container digest_out="$digest_file.bundle"
  container="$(buildah from scratch)"
  buildah copy --quiet "$container" "$1" / >/dev/null
  buildah config --label dev.carvel.imgpkg.bundle=true "$container"
  buildah commit --quiet --rm --format oci "$container" "localhost/amr-policy-gate-bundle:$tag" >/dev/null
  buildah push --quiet --format oci --digestfile "$digest_out" "localhost/amr-policy-gate-bundle:$tag" "docker://$2"
  buildah rmi "localhost/amr-policy-gate-bundle:$tag" >/dev/null
  cat "$digest_out"
}
bundle_dir="$(mktemp -d)"
repo_dir="$(mktemp -d)"
trap 'rm -rf "$digest_file" "$digest_file".* "$bundle_dir" "$repo_dir"' EXIT
scripts/package-bundle.sh "$bundle_dir" "$pushed"
package_bundle="$repository-package@$(push_bundle "$bundle_dir" "$repository-package:$tag")"
log "pushed the package bundle $package_bundle"
ref_name="$(sed -n 's/^  refName: //p' config/package/package.yaml)"
mkdir -p "$repo_dir/packages/$ref_name" "$repo_dir/.imgpkg"
sed "s|PACKAGE-BUNDLE|$package_bundle|" config/package/package.yaml > "$repo_dir/packages/$ref_name/$version.yml"
printf 'apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n  - image: %s\n' "$package_bundle" > "$repo_dir/.imgpkg/images.yml"
package_repository="$repository-repo@$(push_bundle "$repo_dir" "$repository-repo:$tag")"
log "pushed the package repository $package_repository: tanzu package repository add amr-policy-gate --url $package_repository"

if $set_task; then
  task_file="${PUBLISH_TASK_FILE:-config/developer-namespace/task.yaml}"
  sed -i -E "s|^(      image: ).*$|\1$pushed|" "$task_file"
  grep -q "image: $pushed" "$task_file" || { log "$task_file has no step image line to set"; exit 1; }
  log "$task_file now pulls $pushed"
fi
echo "$pushed"
