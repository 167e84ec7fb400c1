#!/usr/bin/env bash
# Runs every test: installs what is missing, then the format and lint checks, the Rust tests,
# the gateway build, the worker build, the deploy path (offline), the Miniflare/node tests
# (tests/*.test.mjs) and the Python tests (tests/python).
# Every step runs even if an earlier one failed (unless a later step needs its output); the
# summary lists each step and the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

results=()
failed=0
step() { # step NAME COMMAND...: runs, records PASS/FAIL with the time taken
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  local started=$SECONDS
  if "$@"; then
    results+=("PASS  $name ($((SECONDS - started)) s)")
    return 0
  else
    local status=$?
    results+=("FAIL  $name ($((SECONDS - started)) s, exit $status)")
    failed=1
    return 1
  fi
}
skip() {
  results+=("SKIP  $1 ($2)")
}

if ! step "install dependencies" bash scripts/install-deps.sh; then
  echo "test: dependencies missing; stopping" >&2
  printf '%s\n' "${results[@]}"
  exit 1
fi

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy (native crates, all targets)" cargo clippy -p edge-core -p redis-rest-gateway --all-targets -- -D warnings
step "cargo clippy (the worker, wasm32)" cargo clippy -p edge-cache --target wasm32-unknown-unknown -- -D warnings

# The gateway first: edge-core's client tests run against it (target/release/redis-rest-gateway).
gateway_ok=1
step "build redis-rest-gateway (release)" cargo build --release -p redis-rest-gateway || gateway_ok=0
step "cargo test (edge-core, redis-rest-gateway)" cargo test -p edge-core -p redis-rest-gateway
worker_ok=1
step "build the worker (npm run build)" npm run --silent build || worker_ok=0

if [[ $worker_ok == 1 ]]; then
  step "wrangler deploy --dry-run" bash scripts/deploy-check.sh
  step "wasm size (gzip -9 ≤ 350 KiB)" bash scripts/check-wasm-size.sh
else
  skip "wrangler deploy --dry-run" "the worker build failed"
  skip "wasm size" "the worker build failed"
fi

if [[ $gateway_ok == 1 && $worker_ok == 1 ]]; then
  mapfile -t node_tests < <(find tests -maxdepth 1 -name '*.test.mjs' | sort)
  step "node tests (${#node_tests[@]} files)" node --test --test-reporter=spec "${node_tests[@]}"
else
  skip "node tests" "a build failed"
fi

if [[ -d tests/python ]]; then
  if [[ $gateway_ok == 1 ]]; then
    step "python tests" python3 -m pytest -q tests/python
  else
    skip "python tests" "the gateway build failed"
  fi
fi

echo
echo "=== summary"
printf '%s\n' "${results[@]}"
if [[ $failed == 0 ]]; then
  echo "all tests passed"
else
  echo "SOME STEPS FAILED"
fi
exit $failed
