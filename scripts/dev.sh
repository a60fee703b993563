#!/usr/bin/env bash
# One entry point for a fresh machine: installs what is missing, then runs the gate or the tests.
#   scripts/dev.sh gate [gate options] [image]  the gate against METADATA_STORE_URL, or the demo store when it is unset
#   scripts/dev.sh test                         typecheck, build, and every test (installs Docker, buildah and a registry when missing)
#   scripts/dev.sh bench                        npm run bench: the gate beside the JSON.parse floor and the seed's jq
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MAJOR=24
TOOLS="${AMR_GATE_TOOLS:-$HOME/.cache/amr-policy-gate}"

log() { echo "dev.sh: $*" >&2; }

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

# The versions in package-lock.json. Not `npm ci`: it refuses the lock because vite names an optional
# Windows-only package that the registry does not serve; `npm install --no-save` skips it and keeps the lock.
ensure_packages() {
  if [ "${1:-}" = always ] || [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm install --no-save --no-audit --no-fund --loglevel=error >&2
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

# The manifest tests run ../shared/tools/k8s-check's CRD schema validator, which needs PyYAML and jsonschema.
ensure_schema_tools() {
  if python3 -c 'import yaml, jsonschema' 2>/dev/null || /usr/bin/python3 -c 'import yaml, jsonschema' 2>/dev/null; then return; fi
  if [ "$(id -u)" -ne 0 ]; then log "no python3 with PyYAML and jsonschema and this is not root: the manifest tests fail under CI"; return; fi
  log "installing python3-yaml and python3-jsonschema from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml python3-jsonschema >/dev/null
}

case "${1:-}" in
  gate)
    shift
    ensure_node
    ensure_packages
    npm run --silent build
    if [ -n "${METADATA_STORE_URL:-}" ] || printf '%s\n' "$@" | grep -q -- '^--url\|^--input'; then
      exec node dist/policy.mjs "$@"
    fi
    log "METADATA_STORE_URL is not set: running against the built-in demo store"
    exec node test/demo.ts "$@"
    ;;
  test)
    ensure_node
    ensure_docker
    ensure_release_tools
    ensure_schema_tools
    ensure_packages always
    npm run --silent typecheck
    npm run --silent format:check
    npm run --silent build
    mkdir -p .cache
    status=0
    npm test -- --reporter=default --reporter=json --outputFile.json=.cache/test-results.json || status=$?
    # One plain closing line; under CI a skipped test fails the run, since it is not a passing test.
    node -e '
      const r = JSON.parse(require("fs").readFileSync(".cache/test-results.json", "utf8"))
      const skipped = r.numPendingTests + r.numTodoTests
      console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
      if (process.env.CI && skipped > 0) { console.error("dev.sh: CI runs every test; none may be skipped"); process.exit(1) }
    ' || status=1
    exit "$status"
    ;;
  bench)
    ensure_node
    ensure_packages
    npm run --silent bench
    ;;
  *)
    sed -n '2,5p' "$0" >&2
    exit 2
    ;;
esac
