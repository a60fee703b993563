#!/usr/bin/env bash
# What scripts/dev.sh and scripts/publish.sh set up on a fresh machine, each step only when missing: Node 24 from
# the npm registry, the packages of package-lock.json, Docker, buildah and a registry from Debian, the schema
# validator's Python modules. Sourced, from the repository's root.

NODE_MAJOR=24
TOOLS="${AMR_GATE_TOOLS:-$HOME/.cache/amr-policy-gate}"

log() { echo "${LOG_NAME:-dev.sh}: $*" >&2; }

# Node 24 from the npm registry (node-linux-<arch>@24 ships the official binary) when the machine's is older.
ensure_node() {
  if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge "$NODE_MAJOR" ]; then return; fi
  local arch
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) log "no Node $NODE_MAJOR package for $(uname -m)"; exit 1 ;; esac
  local prefix="$TOOLS/node$NODE_MAJOR-$arch"
  if [ ! -x "$prefix/node_modules/node-linux-$arch/bin/node" ]; then
    log "installing Node $NODE_MAJOR (npm package node-linux-$arch@$NODE_MAJOR) into $prefix"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$prefix" "node-linux-$arch@$NODE_MAJOR" >&2
  fi
  export PATH="$prefix/node_modules/node-linux-$arch/bin:$PATH"
}

# Exactly the versions of package-lock.json (npm ci), when node_modules is missing or older than the lock, or
# always with `always` (the tests, a release).
ensure_packages() {
  if [ "${1:-}" = always ] || [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

# A Docker daemon for the image tests: Debian's docker.io, without a bridge network (containers use --network host).
ensure_docker() {
  if docker info >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" -ne 0 ]; then log "no Docker daemon answers and this is not root: start Docker, or the image tests fail under CI"; return; fi
  if ! command -v dockerd >/dev/null; then
    log "installing docker.io from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  log "starting dockerd --bridge=none --iptables=false --ip-masq=false"
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >"${TMPDIR:-/tmp}/amr-policy-gate-dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  log "dockerd did not answer within 60 s: see ${TMPDIR:-/tmp}/amr-policy-gate-dockerd.log"
  exit 1
}

# What the release tests use: buildah (multi-arch images without emulation), Debian's docker-registry (the
# CNCF distribution registry) and htpasswd (apache2-utils), from Debian.
ensure_release_tools() {
  if command -v buildah >/dev/null && command -v docker-registry >/dev/null && command -v htpasswd >/dev/null; then return; fi
  if [ "$(id -u)" -ne 0 ]; then log "buildah, docker-registry or htpasswd is missing and this is not root: the publish tests fail under CI"; return; fi
  log "installing buildah, docker-registry and apache2-utils from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah docker-registry apache2-utils >/dev/null
  # The package starts a registry on :5000 that nothing here uses; the tests start their own.
  systemctl disable --now docker-registry >/dev/null 2>&1 || pkill -f '^/usr/bin/docker-registry' || true
}

# The manifest tests run ../shared/tools/k8s-check's CRD schema validator, which needs PyYAML and jsonschema; the
# attestation tests verify signatures with Debian's securesystemslib, an implementation the gate did not write.
ensure_schema_tools() {
  local check='import yaml, jsonschema, securesystemslib.signer'
  if python3 -c "$check" 2>/dev/null || /usr/bin/python3 -c "$check" 2>/dev/null; then return; fi
  if [ "$(id -u)" -ne 0 ]; then log "no python3 with PyYAML, jsonschema and securesystemslib and this is not root: tests fail under CI"; return; fi
  log "installing python3-yaml, python3-jsonschema and python3-securesystemslib from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml python3-jsonschema python3-securesystemslib >/dev/null
}
