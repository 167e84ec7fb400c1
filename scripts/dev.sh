#!/usr/bin/env bash
# Runs edge-cache locally: `wrangler dev` on http://127.0.0.1:8787 in front of an origin.
#
#   bash scripts/dev.sh
#
# - Installs what is missing (scripts/install-deps.sh), builds the worker once (release).
# - ORIGIN_URL from the environment or .dev.vars: forwards there. Otherwise starts the demo
#   origin (demo/origin.mjs) on 127.0.0.1:8788 and forwards there; it stops when wrangler does.
# - UPSTASH_REDIS_REST_URL/TOKEN from the environment or .dev.vars: uses that Redis. Otherwise
#   the embedded in-memory store (one per isolate).
# - Any other variable (README "Configuration") can go in .dev.vars or the environment.
#
# wrangler 4.86 runs [build] twice at start when wrangler.toml has one, so this script builds
# itself and starts wrangler with build/wrangler.prebuilt.toml: wrangler.toml without [build].
# Set EDGE_SKIP_BUILD=1 to reuse an existing build/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

PORT=${PORT:-8787}
DEMO_PORT=${DEMO_PORT:-8788}
VARIABLES=(ORIGIN_URL UPSTASH_REDIS_REST_URL UPSTASH_REDIS_REST_TOKEN CACHE_NAMESPACE CACHE_RULES
  SESSION_SECRET SESSION_COOKIE_NAME SESSION_TTL SESSION_ABSOLUTE_TTL ADMIN_TOKEN ORIGIN_TIMEOUT_MS
  REDIS_TIMEOUT_MS CACHE_LOCK_WAIT_MS CACHE_MAX_BYTES CACHE_HEURISTIC_PERCENT SESSION_MAX_BYTES
  SESSION_REDIS_REST_URL SESSION_REDIS_REST_TOKEN SESSION_FALLBACK_TTL)

bash scripts/install-deps.sh
if [[ "${EDGE_SKIP_BUILD:-}" != 1 || ! -f build/worker/shim.mjs ]]; then
  bash scripts/build-worker.sh
fi

bash scripts/prebuilt-config.sh

dev_var() { # the value of $1 in .dev.vars, if any
  [[ -f .dev.vars ]] || return 0
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" .dev.vars | tail -1 | sed 's/^"\(.*\)"$/\1/'
}

args=(dev --config build/wrangler.prebuilt.toml --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false)
# wrangler reads .dev.vars next to its config; point it at the repository's.
[[ -f .dev.vars ]] && args+=(--env-file "$root/.dev.vars")
# Variables from the environment override .dev.vars.
for name in "${VARIABLES[@]}"; do
  if [[ -n "${!name:-}" ]]; then
    args+=(--var "$name:${!name}")
  fi
done

demo_pid=
cleanup() {
  if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${ORIGIN_URL:-}" && -z "$(dev_var ORIGIN_URL)" ]]; then
  node demo/origin.mjs --host 127.0.0.1 --port "$DEMO_PORT" &
  demo_pid=$!
  args+=(--var "ORIGIN_URL:http://127.0.0.1:$DEMO_PORT")
  for _ in $(seq 50); do
    (echo >/dev/tcp/127.0.0.1/"$DEMO_PORT") 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || { echo "dev: the demo origin did not start" >&2; exit 1; }
    sleep 0.1
  done
  origin_desc="the demo origin on http://127.0.0.1:$DEMO_PORT"
  # The demo shows sessions and the admin API too: a throwaway secret and token for this run,
  # unless the user gave their own.
  if [[ -z "${SESSION_SECRET:-}" && -z "$(dev_var SESSION_SECRET)" ]]; then
    args+=(--var "SESSION_SECRET:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')")
  fi
  if [[ -z "${ADMIN_TOKEN:-}" && -z "$(dev_var ADMIN_TOKEN)" ]]; then
    dev_admin_token=dev-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    args+=(--var "ADMIN_TOKEN:$dev_admin_token")
    echo "dev: admin token for this run: ADMIN_TOKEN=$dev_admin_token npm run purge -- --url http://127.0.0.1:$PORT --everything"
  fi
else
  origin_desc="ORIGIN_URL=${ORIGIN_URL:-$(dev_var ORIGIN_URL)}"
fi
if [[ -z "${UPSTASH_REDIS_REST_URL:-}" && -z "$(dev_var UPSTASH_REDIS_REST_URL)" ]]; then
  store_desc="the embedded in-memory store"
else
  store_desc="Redis at ${UPSTASH_REDIS_REST_URL:-$(dev_var UPSTASH_REDIS_REST_URL)}"
fi
echo "dev: edge-cache on http://127.0.0.1:$PORT in front of $origin_desc, with $store_desc"
echo "dev: try http://127.0.0.1:$PORT/api/time and http://127.0.0.1:$PORT/__edge/health (Ctrl-C stops)"

# Not exec: the EXIT trap stops the demo origin when wrangler ends.
npx --no-install wrangler "${args[@]}"
