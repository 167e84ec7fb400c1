#!/usr/bin/env bash
# Fuzzes the targets in fuzz/ (docs §11): each for SECONDS (default 600), two at a time at low
# priority, growing fuzz/corpus/<target>; then minimizes each corpus (cargo fuzz cmin).
# Needs nightly and cargo-fuzz: `rustup toolchain install nightly --profile minimal`,
# `cargo install cargo-fuzz`. The committed corpora are replayed on stable by `cargo test`.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (no TARGET: every target)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
seconds=${1:-600}
shift || true
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build
status=0
mkdir -p logs
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} sh -c \
  "mkdir -p corpus/{} && nice -n 19 cargo +nightly fuzz run {} corpus/{} -- -max_total_time=$seconds -max_len=4096 > logs/{}.log 2>&1 && echo '{}: done' || { echo '{}: FAILED, see fuzz/logs/{}.log and fuzz/artifacts/{}'; exit 1; }" || status=1
for target in "${targets[@]}"; do
  nice -n 19 cargo +nightly fuzz cmin "$target" "corpus/$target" > "logs/$target.cmin.log" 2>&1
  echo "$target: $(find "corpus/$target" -type f | wc -l) files, $(du -sk "corpus/$target" | cut -f1) KiB"
done
exit $status
