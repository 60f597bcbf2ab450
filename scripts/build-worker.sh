#!/usr/bin/env bash
# Builds one Worker crate with worker-build, offline: every tool worker-build
# would otherwise download is pointed at a pinned local copy.
# Usage: scripts/build-worker.sh <crate-dir>   (WASM_OPT=0 skips wasm-opt and
# keeps the names section)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
crate="${1:?usage: build-worker.sh <crate-dir>}"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN=wasm-bindgen
# esbuild's native binary for this machine (wrangler's esbuild brings the
# package of every platform as an optional dependency; npm installs ours).
ESBUILD_BIN=$(cd "$root" && node -p 'require.resolve(`@esbuild/${process.platform}-${process.arch}/bin/esbuild`)' 2>/dev/null) || {
  echo "build-worker: no esbuild binary for this platform in node_modules (run make setup)" >&2; exit 1; }
export ESBUILD_BIN
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
export CARGO_NET_OFFLINE=true
flags=(--release)
if [ "${WASM_OPT:-1}" = 0 ]; then flags+=(--no-opt); fi
cd "$root"
# The demo page loads the unmodified client and the room helper (web/client),
# served as static assets.
mkdir -p web/demo/vendor
cp -f node_modules/peerjs/dist/peerjs.min.js web/demo/vendor/peerjs.min.js
cp -f web/client/peerjs-rooms.js web/demo/vendor/peerjs-rooms.js
# The test script builds once up front and tells the dev sessions to reuse it.
if [ "${SKIP_BUILD:-0}" = 1 ] && [ -f "$crate/build/index.js" ]; then
  echo "SKIP_BUILD=1: reusing $crate/build"; exit 0
fi
[ -f "$crate/js/entry.mjs" ] || {
  echo "build-worker: $crate/js/entry.mjs is missing (every Worker has one)" >&2; exit 1; }
worker-build "${flags[@]}" "$crate"
# Each Worker's own entry module (workers/*/js/entry.mjs) wraps what
# worker-build generated, which becomes glue.js beside it, and imports the
# microtask queue both share (workers/glue/js/microtasks.mjs says why).
mv "$crate/build/index.js" "$crate/build/glue.js"
cp "$crate/js/entry.mjs" "$crate/build/index.js"
cp workers/glue/js/microtasks.mjs "$crate/build/microtasks.mjs"
# Optimized (deployable) builds ship without the wasm names section; the
# copy with names stays in target/wasm-names/ to read a stack trace by
# (scripts/strip-names.py says why). KEEP_WASM_NAMES=1 keeps them (profiling).
if [ "${WASM_OPT:-1}" != 0 ] && [ "${KEEP_WASM_NAMES:-0}" != 1 ]; then
  mkdir -p target/wasm-names
  python3 scripts/strip-names.py "$crate/build/index_bg.wasm" "target/wasm-names/$(basename "$crate").wasm"
fi
