#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 seconds each, every target
#
# Uses the machine's stable toolchain: cargo-fuzz passes nightly-only flags to rustc, which
# RUSTC_BOOTSTRAP=1 allows on stable. No sanitizer (`-s none`): the proxy forbids `unsafe`, so
# the fuzzers look for panics, hangs and broken invariants. cargo-fuzz is installed with
# `cargo install` when missing. Corpora grow in fuzz/corpus/<target> (not committed); a finding
# is saved in fuzz/artifacts/<target> and makes the script fail. Prints one line per target:
# how long it ran and how many inputs it tried.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(config names stdio_framing http_request)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
# Keep the instrumented build apart from the normal one.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"

echo "== building the fuzz targets"
started=$(date +%s)
build_log="$(mktemp)"
if ! cargo fuzz build -s none --release >"$build_log" 2>&1; then
  cat "$build_log"
  echo "the fuzz targets did not build"
  exit 2
fi
rm -f "$build_log"
echo "built in $(( $(date +%s) - started )) s"

status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log="$(mktemp)"
  started=$(date +%s)
  if cargo fuzz run -s none --release "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
      -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1; then
    result="no finding"
  else
    result="FINDING (see fuzz/artifacts/$target/)"
    status=1
    tail -40 "$log"
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "$target: $(( $(date +%s) - started )) s, ${runs} runs, $result"
  rm -f "$log"
done
exit "$status"
