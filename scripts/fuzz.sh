#!/usr/bin/env bash
# Fuzzes the targets in fuzz/ (docs §11): each for SECONDS (default 600), two at a time at low
# priority, growing fuzz/corpus/<target>; then minimizes each corpus (below).
# Needs nightly and cargo-fuzz: `rustup toolchain install nightly --profile minimal`,
# `cargo install cargo-fuzz`. The committed corpora are replayed on stable by `cargo test`.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (no TARGET: every target)
#   scripts/fuzz.sh --minimize TARGET...       (only minimize)
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"

# Keeps the smallest set of files that still reaches every edge the corpus reaches (libFuzzer's
# set-cover merge, hit counts ignored), plus every `regression-*` file: hundreds of files rather
# than the thousands `cargo fuzz cmin` keeps, small enough to commit and replay in a second.
minimize() {
  local target=$1 full="corpus-full/$1"
  rm -rf "$full" && mkdir -p corpus-full && mv "corpus/$target" "$full" && mkdir -p "corpus/$target"
  nice -n 19 cargo +nightly fuzz run "$target" "corpus/$target" "$full" -- \
    -set_cover_merge=1 -use_counters=0 > "logs/$target.minimize.log" 2>&1 || return 1
  find "$full" -maxdepth 1 -name 'regression-*' -exec cp {} "corpus/$target/" \;
  echo "$target: $(find "corpus/$target" -type f | wc -l) files, $(du -sb "corpus/$target" | cut -f1) bytes"
}

mkdir -p logs
if [[ ${1:-} == --minimize ]]; then
  shift
  status=0
  for target in "$@"; do minimize "$target" || status=1; done
  exit $status
fi
seconds=${1:-600}
shift || true
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build || exit 1
status=0
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} sh -c \
  "mkdir -p corpus/{} && nice -n 19 cargo +nightly fuzz run {} corpus/{} -- -max_total_time=$seconds -max_len=4096 -timeout=10 > logs/{}.log 2>&1 && echo '{}: done' || { echo '{}: FAILED, see fuzz/logs/{}.log and fuzz/artifacts/{}'; exit 1; }" || status=1
for target in "${targets[@]}"; do minimize "$target" || status=1; done
exit $status
