#!/usr/bin/env bash
# The whole test suite: host tests, lint (host + wasm32), then the black-box
# end-to-end tests against both Workers under `wrangler dev` (started on free
# ports with fresh state, stopped whatever happens) and the reference
# `peer@1.0.2` server for the differential cases.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_NET_OFFLINE=true
started=$(date +%s)
phase() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

if [ "${E2E_ONLY:-0}" != 1 ]; then
  phase "cargo test --workspace (host)"
  cargo test --workspace
  phase "lint: fmt, clippy host, clippy wasm32, the client helper's types"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
  cargo clippy --target wasm32-unknown-unknown -p router -p rooms -- -D warnings
  tsc -p web/client/tsconfig.json
fi

source scripts/lib.sh
logs="$root/target/e2e-logs"; mkdir -p "$logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Built once here, so the two dev sessions below start without building.
phase "build both Workers (wasm, no wasm-opt)"
WASM_OPT=0 scripts/build-worker.sh workers/rooms >"$logs/build-rooms.log" 2>&1 || { cat "$logs/build-rooms.log"; exit 1; }
WASM_OPT=0 scripts/build-worker.sh workers/router >"$logs/build-router.log" 2>&1 || { cat "$logs/build-router.log"; exit 1; }

start_dev() { # name port extra-args...
  local name=$1 port=$2; shift 2
  dev_private "$port" --env test "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}
wait_health() { # name port pid
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:$port/health?deep=1" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name exited early:"; tail -50 "$logs/$name.log"; return 1; fi
    sleep 0.5
  done
  echo "$name did not become healthy:"; tail -50 "$logs/$name.log"; return 1
}

phase "start the Workers (dev tickets off, tickets on, open namespace) and the reference peer@1.0.2"
export TICKET_SECRET="e2e-secret-0123456789abcdef0123456789" TICKET_AUDIENCE="peerjs-tests"
P_PLAIN=$(free_port); start_dev plain "$P_PLAIN"; PID_PLAIN=${pids[-1]}
P_TICKETS=$(free_port); start_dev tickets "$P_TICKETS" \
  --var "ROOM_TICKET_SECRET:$TICKET_SECRET" --var "REQUIRE_TICKETS:true" --var "TICKET_AUDIENCE:$TICKET_AUDIENCE" \
  --var "CONNECTS_PER_MINUTE_PER_IP:60" --var "CONNECT_BURST_PER_IP:40" \
  --var "ALLOWED_ORIGINS:https://game.example,http://localhost:8080"
PID_TICKETS=${pids[-1]}
P_OPEN=$(free_port); start_dev open "$P_OPEN" --var "NAMESPACE:open"; PID_OPEN=${pids[-1]}
P_REF=$(free_port)
node node_modules/peer/dist/bin/peerjs.js --port "$P_REF" --alive_timeout 6000 >"$logs/reference.log" 2>&1 &
pids+=($!)
wait_health plain "$P_PLAIN" "$PID_PLAIN"
wait_health tickets "$P_TICKETS" "$PID_TICKETS"
wait_health open "$P_OPEN" "$PID_OPEN"
for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$P_REF/" >/dev/null 2>&1 && break; sleep 0.5; done

cargo build -q -p tools --bin mint-ticket --bin loadgen --bin soak
export MINT_TICKET="$root/target/debug/mint-ticket" LOADGEN="$root/target/debug/loadgen" SOAK="$root/target/debug/soak"
phase "end-to-end tests (node --test)"
export E2E_URL="http://127.0.0.1:$P_PLAIN" E2E_TICKETS_URL="http://127.0.0.1:$P_TICKETS" REF_URL="http://127.0.0.1:$P_REF"
export E2E_OPEN_URL="http://127.0.0.1:$P_OPEN"
export E2E_LOG="$logs/plain.log"
node --test --test-concurrency=4 --test-timeout=120000 --test-reporter=spec "tests/e2e/*.test.mjs"
cleanup; pids=()

phase "deploy checks: optimized build, dry-run of every tier x environment, size budgets"
WASM_OPT=1 scripts/build-worker.sh workers/rooms >"$logs/build-rooms-opt.log" 2>&1 || { cat "$logs/build-rooms-opt.log"; exit 1; }
WASM_OPT=1 scripts/build-worker.sh workers/router >"$logs/build-router-opt.log" 2>&1 || { cat "$logs/build-router-opt.log"; exit 1; }
node --test --test-reporter=spec "tests/deploy/*.test.mjs"

phase "browser tests: unmodified peerjs in headless Chromium, loopback-only network namespace"
if [ "$(uname -s)" != Linux ] || ! command -v unshare >/dev/null; then
  echo "test: the browser suite needs Linux (it runs Chromium in a loopback-only network namespace with unshare -n)." >&2
  echo "test: everything before it passed; run make test on Linux (or CI) for the browser suite." >&2
  exit 1
fi
# A fresh network namespace with only `lo`: WebRTC cannot leave 127.0.0.1.
unshare -n -- bash -c 'ip link set lo up && node --test --test-timeout=300000 --test-reporter=spec "tests/browser/*.test.mjs"'

phase "done"
