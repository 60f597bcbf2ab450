#!/usr/bin/env bash
# Side-by-side benchmark, on loopback, one server at a time, a fresh server
# per scenario, the same loadgen against each:
#   ours      both Workers on bare `workerd serve` (the production runtime;
#             config generated from the wrangler files by workerd-config.py)
#   floor     bench/floor/relay.js, a minimal JS relay object, bare workerd
#   floorhops the floor behind two pass-through Workers (our hop count), 1000 x 4 only
#   open namespace, g and h only (there "ours" is NAMESPACE=open, one object per id):
#   grouped   ours in the open namespace with OPEN_GROUP_SEPARATOR=- and ids
#             that share their room's prefix (loadgen --group-ids)
#   rooms     ours in rooms mode on the same traffic (what grouped is held to)
#   floorrpc  bench/floor/open.js: one object per id, delivery by JS RPC
#   floorfetch the same, delivery by fetch
#   reference peer@1.0.2 on Node 22
#   dev       both Workers under `wrangler dev`, as `make dev` serves them
# Scenario (a) runs again for ours and floorhops in BENCH_A_ROUNDS (3)
# alternated rounds, the headline comparison (target/bench/rounds/).
# Prints one table per scenario and writes target/bench/results.json and
# docs/benchmarks.md. Not a test: figures, not pass/fail.
#   BENCH_QUICK=1 shrinks every scenario (for a smoke run).
#   BENCH_ONLY=open runs only the open-namespace scenarios (g, h) and leaves
#   docs/benchmarks.md alone (its tables come from full runs only).
#   BENCH_SERVERS="ours floor" runs only those servers (docs left alone).
set -euo pipefail
main() {
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
out="$root/target/bench"; mkdir -p "$out"; rm -f "$out"/*.json "$out"/*.log "$out"/ORIGIN.md
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cargo build -q --release -p tools --bin loadgen
# The bundles production runs (wasm-opt on), served by bare workerd and wrangler dev alike.
WASM_OPT=1 scripts/build-worker.sh workers/rooms >/dev/null
WASM_OPT=1 scripts/build-worker.sh workers/router >/dev/null
loadgen="$root/target/release/loadgen"
# The runtime binary itself (not the npm wrapper script), so CPU and RSS are workerd's own.
workerd=$(node -p 'require.resolve(`@cloudflare/workerd-${process.platform}-${process.arch === "x64" ? "64" : process.arch}/bin/workerd`)')
quick=${BENCH_QUICK:-0}
A_ROOMS=1000; B_ROOMS=2500; PAIRS=2000; IDLE_ROOMS=200; IDLE_SECS=120; HOT_SECS=20; FLOOD_SECS=10; WAKE_ROOMS=200; WAKE_SECS=30
if [ "$quick" = 1 ]; then A_ROOMS=20; B_ROOMS=40; PAIRS=40; IDLE_ROOMS=5; IDLE_SECS=15; HOT_SECS=3; FLOOD_SECS=3; WAKE_ROOMS=5; WAKE_SECS=15; fi
servers=${BENCH_SERVERS:-ours rooms grouped floor floorhops floorrpc floorfetch reference dev}
only=${BENCH_ONLY:-}

source scripts/lib.sh
server_pid=""
# Each server's Durable Object storage is a fresh directory, removed when
# the server stops: a run creates and deletes three files per object, and
# leaving them behind (about 100,000 files a full run) slowed the next
# runs' file creation (ext4's inode search, `recently_deleted` in perf).
store=""
stop_server() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi
  if [ -n "$store" ]; then rm -rf "$store"; store=""; fi
}
trap stop_server EXIT INT TERM


run() { # label scenario args...
  local label=$1 scenario=$2; shift 2
  echo "== $label: $scenario" >&2
  local json="$out/$label-$scenario.json" log
  case $label in grouped|rooms) log="$out/ours.log" ;; floor*) log="$out/floor.log" ;; *) log="$out/$label.log" ;; esac
  local log_lines; log_lines=$(wc -l <"$log" 2>/dev/null || echo 0)
  "$loadgen" --label "$label" --pids "$server_pid" --json "$json" "$@" >/dev/null || \
    echo "   ($label $scenario reported loss, refusals or errors: see $json)" >&2
  # A failed run says what stopped the server, from the server's own log,
  # and the descriptor limit it ran under.
  local said; said=$(tail -n +"$((log_lines + 1))" "$log" 2>/dev/null | grep -m1 -o -E "[^:]*: Too many open files|out of memory[^\"]*" || true)
  python3 - "$json" "$said" "$(ulimit -Sn)/$(ulimit -Hn)" <<'PY'
import json, sys
path, said, limits = sys.argv[1:4]
r = json.load(open(path))
if r.get("failed"):
    r["failed"] += (f"; the server logged `{said}`" if said else "") + f"; descriptors soft/hard {limits}"
    json.dump(r, open(path, "w"))
PY
}

# Every server gets the settings a load test needs: no per-IP connect limit
# (all clients share 127.0.0.1), warnings only, no demo. Extra NAME=VALUE
# arguments are settings too.
bench_settings=(CONNECTS_PER_MINUTE_PER_IP=0 LOG_LEVEL=warn DEMO=false)
start_ours() {
  port=$(free_port); store=$(mktemp -d); local dir=$store
  local vars=(); for kv in "${bench_settings[@]}" "$@"; do vars+=(--var "$kv"); done
  python3 scripts/workerd-config.py "$dir" "$port" "${vars[@]}" >/dev/null
  "$workerd" serve "$dir/config.capnp" >>"$out/ours.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/health?deep=1"
  url="http://127.0.0.1:$port"
}
start_floor() { # [config file]
  port=$(free_port); store=$(mktemp -d)
  "$workerd" serve "${1:-bench/floor/config.capnp}" --socket-addr "http=127.0.0.1:$port" \
    --directory-path "do-storage=$store" >>"$out/floor.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/health"
  url="http://127.0.0.1:$port"
}
start_reference() {
  port=$(free_port)
  node node_modules/peer/dist/bin/peerjs.js --port "$port" >>"$out/reference.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/"
  url="http://127.0.0.1:$port"
}
start_dev() {
  port=$(free_port)
  local vars=(); for kv in "${bench_settings[@]}" "$@"; do vars+=(--var "${kv/=/:}"); done
  dev_private "$port" "${vars[@]}" >>"$out/dev.log" 2>&1 &
  server_pid=$!
  wait_up "http://127.0.0.1:$port/health?deep=1"
  url="http://127.0.0.1:$port"
}
start_floorhops() { start_floor bench/floor/config-hops.capnp; }
start_floorrpc() { start_floor bench/floor/open-rpc.capnp; }
start_floorfetch() { start_floor bench/floor/open-fetch.capnp; }
has() { [[ " $servers " == *" $1 "* ]]; }

# Connections open at $RATE a second against every server.
RATE=${BENCH_CONNECT_RATE:-100}
for which in ours floor reference dev; do
  has "$which" && [ "$only" != open ] || continue
  "start_$which"; run "$which" a --url "$url" --rooms "$A_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
  "start_$which"; run "$which" b --url "$url" --rooms "$B_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
  "start_$which"; run "$which" c --url "$url" --rooms 1 --peers 4 --steady-secs "$HOT_SECS" --steady-rate 400; stop_server
  # One room of 3 relaying 50 messages a second, without and then with a
  # fourth member flooding 10,000 frames a second: what the flood costs the others.
  "start_$which"; run "$which" e --url "$url" --rooms 1 --peers 3 --steady-secs "$FLOOD_SECS" --steady-rate 50; stop_server
  "start_$which"; run "$which" f --url "$url" --rooms 1 --peers 3 --steady-secs "$FLOOD_SECS" --steady-rate 50 --flood-rate 10000; stop_server
done
# What the two hops in front of a room cost the floor.
if has floorhops && [ "$only" != open ]; then
  start_floorhops; run floorhops a --url "$url" --rooms "$A_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
fi
# The headline comparison, ours against the floor behind the same two hops
# in (a), again in alternated rounds (ours, floorhops; then floorhops, ours;
# ...), each server following the other as often as itself: one run of
# each, minutes apart, differed by up to 10% on this shared machine, and a
# run pays for the files the previous one deleted (ext4's inode search).
# The table gives each round's ratios and their median.
A_ROUNDS=${BENCH_A_ROUNDS:-3}; [ "$quick" = 1 ] && A_ROUNDS=1
if has ours && has floorhops && [ "$only" != open ]; then
  mkdir -p "$out/rounds"; rm -f "$out/rounds"/*.json
  for round in $(seq "$A_ROUNDS"); do
    order="ours floorhops"; [ $((round % 2)) = 0 ] && order="floorhops ours"
    for which in $order; do
      "start_$which"; run "$which" "a$round" --url "$url" --rooms "$A_ROOMS" --peers 4 --connect-rate "$RATE"; stop_server
      mv "$out/$which-a$round.json" "$out/rounds/"
    done
  done
fi
# The open namespace (NAMESPACE=open): the same 4,000 peers, each with its own
# token as an unchanged app sends, in foursomes (g) and in pairs (h); grouped,
# a room's peers share an id prefix and so one object. Beside them: the open
# floors (bench/floor/open.js, one object per id, delivering by JS RPC and by
# fetch), the reference, and ours in rooms mode on the same traffic (the
# token names the room), which is what grouped is measured against.
for which in rooms ours grouped floorrpc floorfetch reference; do
  has "$which" || continue
  args=(); ids=(--own-tokens); start="start_$which"
  case $which in
    rooms) start=start_ours; ids=() ;;
    ours) args=(NAMESPACE=open) ;;
    grouped) start=start_ours; args=(NAMESPACE=open OPEN_GROUP_SEPARATOR=-); ids+=(--group-ids) ;;
  esac
  "$start" "${args[@]}"; run "$which" g --url "$url" --rooms "$A_ROOMS" --peers 4 "${ids[@]}" --connect-rate "$RATE"; stop_server
  "$start" "${args[@]}"; run "$which" h --url "$url" --rooms "$PAIRS" --peers 2 "${ids[@]}" --connect-rate "$RATE"; stop_server
done
# The first relay after a wake: rooms sit idle past the runtime's eviction
# (about 10 s without events), then one OFFER goes into each.
if [ "$only" != open ]; then
  for which in ours floor; do
    has "$which" || continue
    "start_$which"; run "$which" w --url "$url" --rooms "$WAKE_ROOMS" --peers 2 --sdp-bytes 100 --wake-after-secs "$WAKE_SECS" --connect-rate "$RATE"; stop_server
  done
fi
# Idle rooms: only ours has rooms and a wake counter.
if [ "$only" != open ]; then
  for which in ours dev; do
    has "$which" || continue
    "start_$which"; run "$which" d --url "$url" --rooms "$IDLE_ROOMS" --peers 4 --idle-secs "$IDLE_SECS" --sdp-bytes 100 --connect-rate "$RATE"; stop_server
  done
fi

docs="$root/docs/benchmarks.md"; { [ -n "$only" ] || [ -n "${BENCH_SERVERS:-}" ]; } && docs=""
python3 scripts/bench-table.py "$out" "$(nproc)" $docs
}
main "$@"
exit
