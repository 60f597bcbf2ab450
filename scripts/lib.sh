# Shell helpers the scripts share (sourced, never run): a free loopback port,
# waiting for a server to answer, and a private wrangler dev session (own
# ports, state and registry).

# A free TCP port on 127.0.0.1.
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# wait_up URL [TRIES] [PAUSE]: until URL answers 2xx (default 240 x 0.5 s).
wait_up() {
  local url=$1 tries=${2:-240} pause=${3:-0.5}
  for _ in $(seq 1 "$tries"); do curl -fsS "$url" >/dev/null 2>&1 && return 0; sleep "$pause"; done
  echo "$url did not come up" >&2; return 1
}

# dev_private PORT ARGS...: scripts/dev.sh (already built) serving on PORT
# with its own inspector port, state and registry. Start it in the
# background (`dev_private 9100 --env test &`): it execs, so `$!` is dev.sh.
dev_private() {
  local port=$1; shift
  SKIP_BUILD=1 PORT=$port INSPECTOR_PORT=$(free_port) PERSIST_TO="$(mktemp -d)" \
    WRANGLER_REGISTRY_PATH="$(mktemp -d)" exec scripts/dev.sh "$@"
}
