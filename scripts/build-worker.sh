#!/usr/bin/env bash
# Builds the release worker into build/ (build/worker/shim.mjs + build/worker/index_bg.wasm):
# `worker-build --release`, offline. worker-build would download wasm-bindgen, wasm-opt and
# esbuild from GitHub; these point it at local copies instead (see docs §10.2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/binaryen/bin/wasm-opt}"
if [[ -z "${ESBUILD_BIN:-}" && -x "$root/node_modules/@esbuild/linux-x64/bin/esbuild" ]]; then
  export ESBUILD_BIN="$root/node_modules/@esbuild/linux-x64/bin/esbuild"
fi
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

for tool in worker-build "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-worker: $tool is missing; run: bash scripts/install-deps.sh" >&2
    exit 1
  fi
done

# The workspace's default members are the native crates; select the worker package. Arguments
# after the crate path go to `cargo build` unchanged.
worker-build --release "$root" -p edge-cache "$@"

# Two rewrites of the generated glue for CPU per request (issue 11): wasm-bindgen's wake-ups
# through a resolved promise instead of workerd's queueMicrotask, and a plain `{ fetch }`
# default export instead of worker-build's WorkerEntrypoint subclass and its per-request
# Proxies. The script says why and fails if the glue changed shape.
node scripts/patch-glue.mjs build/index.js

wasm=build/index_bg.wasm
[[ -f $wasm ]] || { echo "build-worker: $wasm was not written" >&2; exit 1; }

# worker-build keeps the wasm's name section (function names, for profiles and stack traces):
# about 27 KB gzipped that workerd never needs. It is stripped unless EDGE_KEEP_WASM_NAMES=1
# (a build for profiling). The feature list is worker-build's own (no newer encodings).
if [[ "${EDGE_KEEP_WASM_NAMES:-0}" != 1 ]]; then
  "$WASM_OPT_BIN" "$wasm" -o "$wasm.stripped" --strip-debug --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
    --enable-multivalue --enable-reference-types --enable-exception-handling
  mv "$wasm.stripped" "$wasm"
fi

raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "build-worker: $wasm: $raw bytes, $gz bytes gzip -9 (limit: scripts/check-wasm-size.sh)"
