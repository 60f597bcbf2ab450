# Shell helpers the scripts share (sourced, never run): a free loopback port,
# waiting for a server to answer, and a private wrangler dev session (own
# ports, state and registry).

# A free TCP port on 127.0.0.1.
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# wait_up URL [PAUSE]: until URL answers 2xx, polling every PAUSE (0.5 s)
# for up to SERVER_START_DEADLINE_MS (default 10 min): a server start has a
# deadline of minutes, since a busy machine starts slowly.
wait_up() {
  local url=$1 pause=${2:-0.5} deadline_ms=${SERVER_START_DEADLINE_MS:-600000}
  local end=$(( $(date +%s%3N) + deadline_ms ))
  while [ "$(date +%s%3N)" -lt "$end" ]; do
    curl -fsS -m 10 "$url" >/dev/null 2>&1 && return 0
    sleep "$pause"
  done
  echo "$url did not come up within $(( deadline_ms / 1000 )) s" >&2; return 1
}

# dev_private PORT ARGS...: scripts/dev.sh (already built) serving on PORT
# with its own inspector port, state and registry. Start it in the
# background (`dev_private 9100 --env test &`): it execs, so `$!` is dev.sh.
dev_private() {
  local port=$1; shift
  SKIP_BUILD=1 PORT=$port INSPECTOR_PORT=$(free_port) PERSIST_TO="$(mktemp -d)" \
    WRANGLER_REGISTRY_PATH="$(mktemp -d)" exec scripts/dev.sh "$@"
}

# The rows of the settings table (docs/reference.md, generated from
# shared/src/settings.rs; a host test keeps the two equal), one per line:
# | `NAME` | tier | default | range | secret | meaning |
setting_rows() {
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  sed -n '/^<!-- settings table: generated/,/^<!-- end of settings table/p' "$root/docs/reference.md" |
    grep '^| `[A-Z]'
}

# required_secrets TIER: the secrets TIER cannot be deployed without, one
# group per line, alternatives joined by '|' (ROOM_TICKET_PUBLIC_KEY|ROOM_TICKET_SECRET).
required_secrets() {
  setting_rows | awk -F'|' -v tier="$1" '
    $6 ~ /required to deploy/ && ($3 ~ tier || $3 ~ /both/) {
      name = $2; gsub(/[` ]/, "", name)
      group = name
      if (match($6, /`[A-Z0-9_]+`/)) group = name "|" substr($6, RSTART + 1, RLENGTH - 2)
      n = split(group, parts, "|")
      if (n == 2 && parts[2] < parts[1]) group = parts[2] "|" parts[1]
      print group
    }' | sort -u
}
