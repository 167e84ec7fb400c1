#!/usr/bin/env bash
# Fails when the built worker's wasm is larger than the budget gzipped (issue 11: the wasm is
# what every isolate downloads and compiles). Run after `npm run build`; scripts/test.sh does.
#   EDGE_WASM_GZIP_LIMIT=358400 (350 KiB) by default.
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=build/index_bg.wasm
limit=${EDGE_WASM_GZIP_LIMIT:-358400}
[[ -f $wasm ]] || { echo "check-wasm-size: $wasm is missing: run npm run build" >&2; exit 1; }
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "check-wasm-size: $wasm is $gz bytes gzip -9 (limit $limit)"
if (( gz > limit )); then
  echo "check-wasm-size: over the limit by $((gz - limit)) bytes" >&2
  exit 1
fi
