#!/usr/bin/env bash
# Soak test: the two tiers as two separate `wrangler dev` processes (joined
# through a private dev registry, as the service binding joins them on
# Cloudflare), 200 peers in 50 rooms for 10 minutes with churn and a
# rooms-tier crash + restart in the middle. Prints the soak tool's report
# and writes target/soak/report.json. Exit 1 if a message was lost.
#
#   SOAK_SECS (600) SOAK_ROOMS (50) SOAK_PEERS (4) SOAK_RATE (1 msg/s/peer)
#   SOAK_CHURN_SECS (60: mean time between a peer's leaves)
#   SOAK_RESTART_AT (SOAK_SECS/2; 0 = no restart)
#   SOAK_BIN (a prebuilt soak tool; default: build it in release mode)
#   SKIP_BUILD=1 reuses the Workers already in workers/*/build
#
# `scripts/soak.sh restart-rooms` is the restart step the soak tool calls:
# SIGKILL the rooms tier (a crash, the worst case: no close frames), then
# start it again on the same persisted storage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"

source scripts/lib.sh
process_tree() { local p=$1; echo "$p"; for c in $(pgrep -P "$p" || true); do process_tree "$c"; done; }

start_tier() { # tier port [wrangler args...]
  local tier=$1 port=$2; shift 2
  # One state directory per tier: two runtimes opening the same SQLite
  # files at once fail with SQLITE_BUSY.
  SKIP_BUILD=1 PORT=$port INSPECTOR_PORT=$(free_port) PERSIST_TO="$SOAK_STATE/persist-$tier" \
    WRANGLER_REGISTRY_PATH="$SOAK_STATE/registry" DEV_CONFIGS="-c wrangler.$tier.toml" \
    setsid scripts/dev.sh "$@" >>"$SOAK_STATE/$tier.log" 2>&1 &
  echo $! >"$SOAK_STATE/$tier.pid"
  disown "$!"
}

restart_rooms() {
  local pid; pid=$(cat "$SOAK_STATE/rooms.pid")
  # shellcheck disable=SC2046
  kill -KILL $(process_tree "$pid") 2>/dev/null || true
  # A crashed wrangler leaves its registry entry behind, and a new process
  # will not take the name over until the entry is 90 s stale.
  rm -f "$SOAK_STATE/registry/peerjs-rooms"
  start_tier rooms "$SOAK_ROOMS_PORT"
  wait_up "http://127.0.0.1:$SOAK_ROUTER_PORT/health?deep=1" 0.2
}

stop_all() {
  for tier in router rooms; do
    if [ -f "$SOAK_STATE/$tier.pid" ]; then
      # shellcheck disable=SC2046
      kill -TERM $(process_tree "$(cat "$SOAK_STATE/$tier.pid")") 2>/dev/null || true
    fi
  done
}

main() {
  local out="$root/target/soak"
  mkdir -p "$out"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
  local soak_bin=${SOAK_BIN:-}
  if [ -z "$soak_bin" ]; then
    cargo build -q --release -p tools --bin soak
    soak_bin="$root/target/release/soak"
  fi
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    WASM_OPT=0 scripts/build-worker.sh workers/rooms >/dev/null
    WASM_OPT=0 scripts/build-worker.sh workers/router >/dev/null
  fi
  SOAK_STATE="$(mktemp -d)"
  mkdir -p "$SOAK_STATE/registry"
  SOAK_ROOMS_PORT=$(free_port)
  SOAK_ROUTER_PORT=$(free_port)
  export SOAK_STATE SOAK_ROOMS_PORT SOAK_ROUTER_PORT
  trap stop_all EXIT INT TERM

  local secs=${SOAK_SECS:-600}
  start_tier rooms "$SOAK_ROOMS_PORT"
  # Every client is 127.0.0.1 here, so the per-IP connect limit is off; the
  # debug endpoints let the tool read both tiers' wasm memory.
  start_tier router "$SOAK_ROUTER_PORT" --var CONNECTS_PER_MINUTE_PER_IP:0 --var DEBUG_ENDPOINTS:true
  wait_up "http://127.0.0.1:$SOAK_ROUTER_PORT/health?deep=1" 0.2
  echo "soak: router on :$SOAK_ROUTER_PORT, rooms on :$SOAK_ROOMS_PORT, logs in $SOAK_STATE" >&2

  local status=0
  "$soak_bin" --url "http://127.0.0.1:$SOAK_ROUTER_PORT" \
    --secs "$secs" --rooms "${SOAK_ROOMS:-50}" --peers "${SOAK_PEERS:-4}" \
    --rate "${SOAK_RATE:-1}" --churn-secs "${SOAK_CHURN_SECS:-60}" \
    --restart-at "${SOAK_RESTART_AT:-$((secs / 2))}" \
    --restart-cmd "'$root/scripts/soak.sh' restart-rooms" \
    --pid-file "router=$SOAK_STATE/router.pid" --pid-file "rooms=$SOAK_STATE/rooms.pid" \
    --debug-endpoints --json "$out/report.json" || status=$?
  cp "$SOAK_STATE"/*.log "$out/" 2>/dev/null || true
  return "$status"
}

if [ "${1:-}" = restart-rooms ]; then
  restart_rooms
else
  main "$@"
fi
exit
