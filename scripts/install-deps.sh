#!/usr/bin/env bash
# Installs what building, running and testing edge-cache need, skipping what is already there.
# Shared by scripts/dev.sh and scripts/test.sh. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# Must equal the wasm-bindgen version pinned in Cargo.toml / Cargo.lock.
WASM_BINDGEN_VERSION=0.2.130

export PATH="$HOME/.cargo/bin:$PATH"
say() { echo "install-deps: $*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  # scripts/test.sh checks formatting and lints.
  for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$component"; then
      say "adding the $component component"
      rustup component add "$component"
    fi
  done
fi

installed_version() { # prints the version a binary reports, or nothing
  "$@" 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1 || true
}

if [[ "$(installed_version worker-build --version)" != "$WORKER_BUILD_VERSION" ]]; then
  say "installing worker-build $WORKER_BUILD_VERSION (a few minutes)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [[ "$(installed_version wasm-bindgen --version)" != "$WASM_BINDGEN_VERSION" ]]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # Not --locked: its lock file pins a crate version the registry index lacks here.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# By content, not by time: a fresh checkout (or a git worktree sharing node_modules) has a newer
# package-lock.json than the install it matches.
lock_stamp=node_modules/.edge-cache-lock.sha256
if [[ ! -d node_modules ]] || ! sha256sum --status -c "$lock_stamp" 2>/dev/null; then
  say "npm ci"
  npm ci --no-audit --no-fund
  sha256sum package-lock.json > "$lock_stamp"
fi
# npm may skip install scripts; workerd and esbuild work without theirs (their JS wrappers find
# the platform binary). Rebuild only if a wrapper cannot run.
if ! node_modules/.bin/workerd --version >/dev/null 2>&1 || ! node_modules/.bin/esbuild --version >/dev/null 2>&1; then
  say "npm rebuild workerd esbuild"
  npm rebuild workerd esbuild
fi

if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y redis-server
fi

if [[ -f tests/python/requirements.txt ]]; then
  if ! python3 -m pip install -q -r tests/python/requirements.txt 2>/dev/null; then
    # Debian's externally managed Python: allowed explicitly, user-wide.
    python3 -m pip install -q --break-system-packages -r tests/python/requirements.txt
  fi
fi
