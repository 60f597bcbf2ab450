#!/usr/bin/env bash
# Installs everything the project needs, idempotently; a second run takes seconds.
# Only the package registries are used (crates.io, npm, Debian).
# `setup.sh serve` installs only what serving needs (`make dev`); without an
# argument it also installs what the tests need (Chromium, Prometheus,
# prometheus-client).
set -euo pipefail
purpose="${1:-test}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
WORKER_BUILD_VERSION=0.8.7
# The wasm-bindgen CLI must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')

step() { printf '\n== %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  step "cargo install worker-build $WORKER_BUILD_VERSION (about 6 minutes)"
  cargo install worker-build --version "=$WORKER_BUILD_VERSION" --locked
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2.5 minutes)"
  # Not --locked: its lock file names a crate version this registry lacks.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi
# npm install (not npm ci: the lock file omits other platforms' workerd packages).
stamp=node_modules/.setup-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  step "npm install"
  npm install --no-audit --no-fund
  touch "$stamp"
fi
# Offline builds need every locked crate, other platforms' included.
cargo fetch --locked >/dev/null
# Linux gets Node 22 from node_modules (node-linux-*); elsewhere it is the user's.
node_major=$(PATH="$root/node_modules/.bin:$PATH" node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 22 ]; then
  echo "setup: Node 22 or newer is needed (found ${node_major}); on $(uname -s) install it yourself (on Linux node-linux-* brings it)." >&2
  exit 1
fi
if [ "$purpose" = serve ]; then exit 0; fi
if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null; then
  # The test-only packages come from Debian; on another system the suites
  # that need them say so when they run (test.sh, the Prometheus test).
  echo "setup: not a Debian/Ubuntu Linux: install Prometheus (promtool) and Chromium yourself; the browser suite runs on Linux only (it needs unshare)." >&2
  exit 0
fi
if [ ! -x /usr/bin/chromium ]; then
  step "apt-get install chromium (browser tests)"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# A real Prometheus scrapes the test router, and promtool checks ops/prometheus/.
PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1
if [ "$(dpkg-query -W -f='${Version}' prometheus 2>/dev/null)" != "$PROMETHEUS_VERSION" ]; then
  step "apt-get install prometheus $PROMETHEUS_VERSION (Prometheus and promtool, for the tests)"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >/dev/null
fi
# A real TURN server (coturn, shared secret) for the browser suite's relay-only calls.
COTURN_VERSION=4.6.1-1
if [ "$(dpkg-query -W -f='${Version}' coturn 2>/dev/null)" != "$COTURN_VERSION" ]; then
  step "apt-get install coturn $COTURN_VERSION (TURN server, for the browser tests)"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "coturn=$COTURN_VERSION" >/dev/null
fi
# The metrics test checks our exposition with the reference Prometheus parser.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  step "pip install prometheus-client (metrics test)"
  python3 -m pip install --quiet --disable-pip-version-check prometheus-client==0.26.0
fi
