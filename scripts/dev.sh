#!/usr/bin/env bash
# Runs both Workers in one `wrangler dev` session (the router is served on
# 127.0.0.1:$PORT; the rooms Worker runs in the same workerd, reachable only
# through the binding). Extra arguments go to wrangler (e.g. --var K:V).
# Any setting of the configuration table (docs/reference.md, generated from
# shared/src/settings.rs) given in the environment (`LOG_LEVEL=debug make
# dev`) reaches both Workers.
# SIGTERM/Ctrl-C to this process stops every process it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/lib.sh
PORT="${PORT:-9000}"
INSPECTOR_PORT="${INSPECTOR_PORT:-$((PORT + 20000))}"
PERSIST_TO="${PERSIST_TO:-$root/.wrangler/state}"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# No telemetry, no update check, no Request.cf fetch: loopback only.
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false CARGO_NET_OFFLINE=true
export WRANGLER_LOG_PATH="$root/.wrangler/logs"
# wrangler 4's local observability streams every invocation (each relayed
# frame) into a tracing Durable Object, and the local explorer rides on it:
# with them on, even a minimal JS relay saturates a 2-core machine.
# Production has neither; local dev does not need them.
export X_LOCAL_OBSERVABILITY="${X_LOCAL_OBSERVABILITY:-false}" X_LOCAL_EXPLORER="${X_LOCAL_EXPLORER:-false}"
# DEV_CONFIGS lets a test run the router alone (to see the rooms tier missing).
read -r -a configs <<<"${DEV_CONFIGS:--c wrangler.router.toml -c wrangler.rooms.toml}"

# Settings from the environment: every name of the generated table.
settings=$(setting_rows | awk -F'|' '{print $2}' | tr -d '` ')
env_vars=() dev_vars=""
for name in $settings; do
  if [ -n "${!name+set}" ]; then
    env_vars+=(--var "$name:${!name}")
    dev_vars+="$name=\"${!name//\"/\\\"}\""$'\n'
  fi
done
# `--var` reaches only the first config's Worker (wrangler 4 gives the other
# configs nothing but `--env`). The other Workers read `.dev.vars` beside
# their config, so they run from a copy in a private directory with paths
# made absolute and the settings in a `.dev.vars` next to it.
if [ -n "$dev_vars" ]; then
  private="$(mktemp -d)"
  trap 'rm -rf "$private"' EXIT
  printf '%s' "$dev_vars" >"$private/.dev.vars"
  seen_first=0
  for i in "${!configs[@]}"; do
    file=${configs[$i]}
    if [ "$file" = -c ]; then continue; fi
    if [ "$seen_first" = 0 ]; then seen_first=1; continue; fi # takes --var
    sed -e "s|^main = \"|main = \"$root/|" \
        -e "s|^command = \"scripts/|command = \"$root/scripts/|; s| workers/| $root/workers/|" \
        -e "s|^watch_dir = .*|watch_dir = [\"$root/workers\", \"$root/shared/src\"]|" \
        "$file" >"$private/$(basename "$file")"
    configs[$i]="$private/$(basename "$file")"
  done
fi
# Not exec'd, so the EXIT trap can remove the private copy afterwards.
node node_modules/wrangler/bin/wrangler.js dev "${configs[@]}" \
  --ip 127.0.0.1 --port "$PORT" --inspector-port "$INSPECTOR_PORT" \
  --persist-to "$PERSIST_TO" --show-interactive-dev-session=false "${env_vars[@]}" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"' INT TERM
wait "$child"
