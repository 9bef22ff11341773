#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 seconds each, every target
#   FUZZ_PROFILE=dev scripts/fuzz.sh 10       # what CI runs: an unoptimised build, quick to make
#
# No cargo-fuzz needed: the script passes rustc the same coverage flags `cargo fuzz build -s none`
# does (the sancov pass and its counters, `--cfg fuzzing`), all of them stable, and builds the
# fuzz crate for the host triple so build scripts stay uninstrumented. `release` (the default)
# fuzzes several times faster; `dev` builds in a fraction of the time. No sanitizer: the proxy
# forbids `unsafe`, so the fuzzers look for panics, hangs and broken invariants. Corpora grow in
# fuzz/corpus/<target> (not committed); a finding is saved in fuzz/artifacts/<target> and makes
# the script fail. Prints one line per target: how long it ran and how many inputs it tried.
# (`cargo fuzz run <target>` works on the same crate too, with RUSTC_BOOTSTRAP=1 on stable.)
# fuzz/Cargo.lock is committed but not `--locked`: when the proxy's dependencies change, cargo
# brings it up to date with the fewest changes instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(config names stdio_framing http_request)
fi

profile="${FUZZ_PROFILE:-release}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
# Keep the instrumented build apart from the normal one.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions"
if [ "$profile" = release ]; then
  # As cargo-fuzz does: one codegen unit, or the sancov annotations defeat ThinLTO's inlining.
  flags+=" -Ccodegen-units=1"
  profile_dir=release
else
  profile_dir=debug
fi

echo "== building the fuzz targets ($profile)"
started=$(date +%s)
build_log="$(mktemp)"
if ! RUSTFLAGS="$flags" cargo build --manifest-path fuzz/Cargo.toml --target "$triple" \
    --profile "$profile" --bins >"$build_log" 2>&1; then
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
  if "$CARGO_TARGET_DIR/$triple/$profile_dir/$target" "fuzz/corpus/$target" \
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
