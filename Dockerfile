# The gate's image: the bundle on distroless Node 24, run as uid 65532 with no shell.
#
# Production: pin the base by its index digest, which cannot be resolved from here:
#   crane digest gcr.io/distroless/nodejs24-debian13:nonroot        (or: docker buildx imagetools inspect ...)
#   docker build --build-arg BASE_IMAGE=gcr.io/distroless/nodejs24-debian13:nonroot@sha256:<digest> ...
# Without access to gcr.io (air-gapped clusters, this repo's CI), build a stand-in from Debian packages and
# the npm registry with scripts/base-image.sh and pass it as BASE_IMAGE; `npm run image` does that for you.
# The debian12 Node images are no longer built: use debian13.
ARG BASE_IMAGE=gcr.io/distroless/nodejs24-debian13:nonroot
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
ARG BASE_DIGEST=unknown
ARG VERSION=0.0.0-dev
ARG SOURCE=https://github.com/amr-policy-gate/amr-policy-gate
# base.digest: the base's digest as the builder knows it (a registry's manifest digest for a pulled base, the
# image ID for a local stand-in); the stand-in also labels the Node release it carries.
LABEL org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}" \
      org.opencontainers.image.title="amr-policy-gate" \
      org.opencontainers.image.description="Vulnerability policy gate for Tanzu supply chains: fails when the Metadata Store holds a vulnerability at or above the gate for an image digest" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# The bundle, the chunks it imports on demand (undici, yaml, ...), its source map (with
# NODE_OPTIONS=--enable-source-maps every stack frame names its line in policy.ts or gate/), and the package.json
# of each npm package bundled into it, where scanners look.
COPY dist/ /app/
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/policy.mjs"]
