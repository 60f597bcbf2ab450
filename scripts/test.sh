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
# The suite's time limits (tests/deadlines.mjs reads them). A test has
# TEST_TIMEOUT_MS once its servers are up; a server start has its own
# deadline of minutes, so a busy machine makes a slow run, not a red one.
# node's --test-timeout caps a whole file (each runs in its own process), so
# it is only the backstop against a hung file.
export SERVER_START_DEADLINE_MS=${SERVER_START_DEADLINE_MS:-600000}
FILE_BACKSTOP_MS=2400000
# Every server start and file's wall time, summarised when the run ends.
export TEST_TIMINGS="$logs/timings.jsonl"; : >"$TEST_TIMINGS"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
summary() { phase "timings"; node tests/report-timings.mjs "$TEST_TIMINGS" || true; }
trap 'cleanup; summary' EXIT
trap 'exit 130' INT TERM

# Built once here, so the two dev sessions below start without building.
phase "build both Workers (wasm, no wasm-opt)"
WASM_OPT=0 scripts/build-worker.sh workers/rooms >"$logs/build-rooms.log" 2>&1 || { cat "$logs/build-rooms.log"; exit 1; }
WASM_OPT=0 scripts/build-worker.sh workers/router >"$logs/build-router.log" 2>&1 || { cat "$logs/build-router.log"; exit 1; }

start_dev() { # name port extra-args...
  local name=$1 port=$2; shift 2
  dev_private "$port" --env test "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}
now_ms() { date +%s%3N; }
record_start() { # server started_ms
  printf '{"file":"scripts/test.sh","kind":"start","server":"%s","ms":%s}\n' "$1" "$(( $(now_ms) - $2 ))" >>"$TEST_TIMINGS"
}
wait_health() { # name port pid: up to SERVER_START_DEADLINE_MS from the suite's starts
  local name=$1 port=$2 pid=$3
  while [ "$(( $(now_ms) - servers_started ))" -lt "$SERVER_START_DEADLINE_MS" ]; do
    if curl -fsS -m 10 "http://127.0.0.1:$port/health?deep=1" >/dev/null 2>&1; then
      record_start "shared wrangler dev ($name)" "$servers_started"; return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "shared server '$name' exited before it came up; its log ends:"; tail -50 "$logs/$name.log"; return 1; fi
    sleep 0.5
  done
  echo "shared server '$name' did not come up within $(( SERVER_START_DEADLINE_MS / 1000 )) s; its log ends:"; tail -50 "$logs/$name.log"; return 1
}

phase "start the Workers (dev tickets off, tickets on, open namespace) and the reference peer@1.0.2"
servers_started=$(now_ms)
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
ref_up=0
for _ in $(seq 1 240); do curl -fsS "http://127.0.0.1:$P_REF/" >/dev/null 2>&1 && { ref_up=1; break; }; sleep 0.5; done
[ "$ref_up" = 1 ] || { echo "the reference peer@1.0.2 did not come up; its log ends:"; tail -50 "$logs/reference.log"; exit 1; }
record_start "reference peer@1.0.2" "$servers_started"

cargo build -q -p tools --bin mint-ticket --bin loadgen --bin soak
export MINT_TICKET="$root/target/debug/mint-ticket" LOADGEN="$root/target/debug/loadgen" SOAK="$root/target/debug/soak"
phase "end-to-end tests (node --test)"
export E2E_URL="http://127.0.0.1:$P_PLAIN" E2E_TICKETS_URL="http://127.0.0.1:$P_TICKETS" REF_URL="http://127.0.0.1:$P_REF"
export E2E_OPEN_URL="http://127.0.0.1:$P_OPEN"
export E2E_LOG="$logs/plain.log"
TEST_TIMEOUT_MS=120000 node --test --test-concurrency=4 --test-timeout="$FILE_BACKSTOP_MS" --test-reporter=spec "tests/e2e/*.test.mjs"
cleanup; pids=()

phase "deploy checks: optimized build, dry-run of every tier x environment, size budgets"
WASM_OPT=1 scripts/build-worker.sh workers/rooms >"$logs/build-rooms-opt.log" 2>&1 || { cat "$logs/build-rooms-opt.log"; exit 1; }
WASM_OPT=1 scripts/build-worker.sh workers/router >"$logs/build-router-opt.log" 2>&1 || { cat "$logs/build-router-opt.log"; exit 1; }
node --test --test-reporter=spec "tests/deploy/*.test.mjs"
# Where the bytes go (the budgets above are checked by the deploy tests).
for tier in rooms router; do python3 scripts/wasm-sizes.py "target/wasm-names/$tier.wasm" 5; done

phase "browser tests: unmodified peerjs in headless Chromium, loopback-only network namespace"
if [ "$(uname -s)" != Linux ] || ! command -v unshare >/dev/null; then
  echo "test: the browser suite needs Linux (it runs Chromium in a loopback-only network namespace with unshare -n)." >&2
  echo "test: everything before it passed; run make test on Linux (or CI) for the browser suite." >&2
  exit 1
fi
# A fresh network namespace with only `lo`: WebRTC cannot leave 127.0.0.1.
unshare -n -- bash -c 'ip link set lo up && TEST_TIMEOUT_MS=300000 node --test --test-timeout='"$FILE_BACKSTOP_MS"' --test-reporter=spec "tests/browser/*.test.mjs"'

phase "done"
