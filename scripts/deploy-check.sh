#!/usr/bin/env bash
# The deploy path, checked offline: `wrangler deploy --dry-run` validates wrangler.toml and
# bundles the built worker exactly as a deploy would, then stops before uploading anything.
# Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
bash scripts/prebuilt-config.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npx --no-install wrangler deploy --dry-run --config build/wrangler.prebuilt.toml --outdir "$out"
# The bundle must hold the worker's entry and its wasm.
ls "$out"
find "$out" -name '*.wasm' | grep -q . || { echo "deploy-check: no wasm in the bundle" >&2; exit 1; }
echo "deploy-check: the bundle builds"
