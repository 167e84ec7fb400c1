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

# wasm-bindgen's futures wake their tasks with the global queueMicrotask (js-sys picks it when
# it exists). In workerd that call costs about 200 µs of a pass-through's CPU (several wakes a
# request, each through the runtime's own API); a microtask queued by an already resolved
# promise runs at the same point of the same queue and costs a fraction (issue 11, profiled and
# measured in bench/RESULTS.md). The glue's import is rewritten to that; the build fails if
# the generated glue no longer has the shape this expects, rather than silently losing it.
glue=build/index.js
if ! grep -Eq '__wbg_queueMicrotask_[0-9a-f]+:function\(([a-z])\)\{queueMicrotask\(\1\)\}' "$glue"; then
  echo "build-worker: $glue has no queueMicrotask import of the expected shape (wasm-bindgen changed?)" >&2
  exit 1
fi
sed -E -i 's/(__wbg_queueMicrotask_[0-9a-f]+:function\(([a-z])\)\{)queueMicrotask\(\2\)\}/\1Promise.resolve().then(\2)}/' "$glue"

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
