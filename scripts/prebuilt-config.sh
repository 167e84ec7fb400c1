#!/usr/bin/env bash
# Writes build/wrangler.prebuilt.toml: wrangler.toml without [build], for commands that use the
# worker `npm run build` already produced (wrangler 4.86 would otherwise build again, twice for
# `dev`). `main` is relative to the config file's directory, hence the rewrite.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
awk '
  /^\[build\]/ { skip = 1; next }
  /^\[/ { skip = 0 }
  !skip
' wrangler.toml | sed 's#^main = "build/#main = "#' >build/wrangler.prebuilt.toml
