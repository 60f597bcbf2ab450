#!/usr/bin/env bash
# Side-by-side benchmark: our Workers (as `make dev` serves them: both under
# `wrangler dev`) and the reference `peer@1.0.2`, the same scenarios against
# each, on loopback, one after the other. Prints one table and writes
# target/bench/results.json and docs/benchmarks.md. Not a test: figures, not pass/fail.
#   BENCH_QUICK=1 shrinks every scenario (for a smoke run).
#   BENCH_ONLY=open runs only the open-namespace scenarios (g, h) and leaves
#   docs/benchmarks.md alone (its tables come from full runs only).
set -euo pipefail
main() {
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
out="$root/target/bench"; mkdir -p "$out"; rm -f "$out"/*.json
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cargo build -q --release -p tools --bin loadgen
WASM_OPT=0 scripts/build-worker.sh workers/rooms >/dev/null
WASM_OPT=0 scripts/build-worker.sh workers/router >/dev/null
loadgen="$root/target/release/loadgen"
quick=${BENCH_QUICK:-0}
A_ROOMS=1000; B_ROOMS=2500; PAIRS=2000; IDLE_ROOMS=200; IDLE_SECS=120; HOT_SECS=20; FLOOD_SECS=10
if [ "$quick" = 1 ]; then A_ROOMS=20; B_ROOMS=40; PAIRS=40; IDLE_ROOMS=5; IDLE_SECS=15; HOT_SECS=3; FLOOD_SECS=3; fi

source scripts/lib.sh
server_pid=""
stop_server() { if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi; }
trap stop_server EXIT INT TERM


run() { # label scenario args...
  local label=$1 scenario=$2; shift 2
  echo "== $label: $scenario" >&2
  "$loadgen" --label "$label" --pids "$server_pid" --json "$out/$label-$scenario.json" "$@" >/dev/null || \
    echo "   ($label $scenario reported loss, refusals or errors: see $out/$label-$scenario.json)" >&2
}

start_ours() { # extra wrangler args (e.g. --var NAMESPACE:open)
  port=$(free_port)
  dev_private "$port" --var CONNECTS_PER_MINUTE_PER_IP:0 --var LOG_LEVEL:warn "$@" >>"$out/ours-dev.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/health?deep=1"
  url="http://127.0.0.1:$port"
}
start_reference() {
  port=$(free_port)
  node node_modules/peer/dist/bin/peerjs.js --port "$port" >>"$out/reference.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/"
  url="http://127.0.0.1:$port"
}

# Each scenario gets a fresh server, so one overloaded run cannot skew the next.
# Connections open at $RATE a second against both servers.
RATE=${BENCH_CONNECT_RATE:-100}
only=${BENCH_ONLY:-}
[ "$only" = open ] || for which in ours reference; do
  "start_$which"; run "$which" a --url "$url" --rooms "$A_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
  "start_$which"; run "$which" b --url "$url" --rooms "$B_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
  "start_$which"; run "$which" c --url "$url" --rooms 1 --peers 4 --steady-secs "$HOT_SECS" --steady-rate 400; stop_server
  # One room of 3 relaying 50 messages a second, without and then with a
  # fourth member flooding 10,000 frames a second: what the flood costs the others.
  "start_$which"; run "$which" e --url "$url" --rooms 1 --peers 3 --steady-secs "$FLOOD_SECS" --steady-rate 50; stop_server
  "start_$which"; run "$which" f --url "$url" --rooms 1 --peers 3 --steady-secs "$FLOOD_SECS" --steady-rate 50 --flood-rate 10000; stop_server
done
# The open namespace (NAMESPACE=open): the same 4,000 peers, each with its own
# token as an unchanged app sends, in foursomes (g) and in pairs (h).
for which in ours reference; do
  args=(); [ "$which" = ours ] && args=(--var NAMESPACE:open)
  "start_$which" "${args[@]}"; run "$which" g --url "$url" --rooms "$A_ROOMS" --peers 4 --own-tokens --connect-rate "$RATE"; stop_server
  "start_$which" "${args[@]}"; run "$which" h --url "$url" --rooms "$PAIRS" --peers 2 --own-tokens --connect-rate "$RATE"; stop_server
done
# Idle rooms: only ours has rooms and a wake counter.
[ "$only" = open ] || { start_ours; run ours d --url "$url" --rooms "$IDLE_ROOMS" --peers 4 --idle-secs "$IDLE_SECS" --sdp-bytes 100 --connect-rate "$RATE"; stop_server; }

docs="$root/docs/benchmarks.md"; [ "$only" = open ] && docs=""
python3 scripts/bench-table.py "$out" "$(nproc)" $docs
}
main "$@"
exit
