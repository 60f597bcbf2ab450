#!/usr/bin/env bash
# Deploys one tier to one environment, or uploads/promotes/rolls back a version.
#   scripts/deploy.sh deploy   <rooms|router> <staging|production>
#   scripts/deploy.sh upload   <rooms|router> <env>            # wrangler versions upload
#   scripts/deploy.sh promote  <rooms|router> <env> <id> <pct> # wrangler versions deploy id@pct
#   scripts/deploy.sh rollback <rooms|router> <env> [id]       # wrangler rollback
# Refuses to touch staging or production while a required secret is missing,
# and says which. Builds with wasm-opt. Needs a Cloudflare login (wrangler login
# or CLOUDFLARE_API_TOKEN); nothing here runs in tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
action=${1:?usage: deploy.sh deploy|upload|promote|rollback TIER ENV ...}
tier=${2:?tier: rooms or router}
env=${3:?env: staging or production}
case "$tier" in rooms|router) ;; *) echo "deploy: unknown tier '$tier' (rooms or router)" >&2; exit 2 ;; esac
case "$env" in staging|production) ;; *) echo "deploy: unknown environment '$env' (staging or production)" >&2; exit 2 ;; esac
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
wrangler=(node node_modules/wrangler/bin/wrangler.js)
config=(-c "wrangler.$tier.toml" --env "$env")

# The secrets each tier needs: those the settings table marks "required to
# deploy" (scripts/lib.sh, required_secrets).
. scripts/lib.sh

check_secrets() {
  local needed; needed=$(required_secrets "$tier")
  [ -z "$needed" ] && return 0
  local have
  if ! have=$("${wrangler[@]}" secret list "${config[@]}" --format json 2>/dev/null); then
    echo "deploy: cannot list the secrets of $tier/$env (not logged in to Cloudflare?); refusing to deploy blind." >&2
    exit 1
  fi
  for alternatives in $needed; do
    local found=0
    for name in ${alternatives//|/ }; do
      grep -q "\"name\": *\"$name\"" <<<"$have" && found=1
    done
    if [ "$found" = 0 ]; then
      echo "deploy: $tier/$env is missing the secret ${alternatives//|/ or }." >&2
      echo "        set it with: npx wrangler secret put ${alternatives%%|*} -c wrangler.$tier.toml --env $env" >&2
      exit 1
    fi
  done
}

case "$action" in
  deploy)
    check_secrets
    WASM_OPT=1 "${wrangler[@]}" deploy "${config[@]}" ;;
  upload)
    check_secrets
    WASM_OPT=1 "${wrangler[@]}" versions upload "${config[@]}" ;;
  promote)
    id=${4:?version id}; pct=${5:?percent}
    "${wrangler[@]}" versions deploy "$id@$pct" "${config[@]}" --yes ;;
  rollback)
    "${wrangler[@]}" rollback ${4:-} "${config[@]}" ;;
  *) echo "deploy: unknown action '$action'" >&2; exit 2 ;;
esac
