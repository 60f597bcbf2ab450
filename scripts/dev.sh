#!/usr/bin/env bash
# Runs both Workers in one `wrangler dev` session (the router is served on
# 127.0.0.1:$PORT; the rooms Worker runs in the same workerd, reachable only
# through the binding). Extra arguments go to wrangler (e.g. --var K:V).
# SIGTERM/Ctrl-C to this process stops every process it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PORT="${PORT:-9000}"
INSPECTOR_PORT="${INSPECTOR_PORT:-$((PORT + 20000))}"
PERSIST_TO="${PERSIST_TO:-$root/.wrangler/state}"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# No telemetry, no update check, no Request.cf fetch: loopback only.
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false CARGO_NET_OFFLINE=true
export WRANGLER_LOG_PATH="$root/.wrangler/logs"
# DEV_CONFIGS lets a test run the router alone (to see the rooms tier missing).
read -r -a configs <<<"${DEV_CONFIGS:--c wrangler.router.toml -c wrangler.rooms.toml}"
exec node node_modules/wrangler/bin/wrangler.js dev "${configs[@]}" \
  --ip 127.0.0.1 --port "$PORT" --inspector-port "$INSPECTOR_PORT" \
  --persist-to "$PERSIST_TO" --show-interactive-dev-session=false "$@"
