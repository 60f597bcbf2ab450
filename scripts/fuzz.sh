#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 60)
# with cargo fuzz on the nightly toolchain, starting from the committed seeds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked
fi
seconds=${FUZZ_SECONDS:-60}
failed=0
for target in frame query ticket room; do
  printf '\n== fuzz %s for %ss\n' "$target" "$seconds"
  work=$(mktemp -d)   # new inputs go here; the committed seeds stay small
  log="$work/fuzz.log"
  if cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$log" || true
  else
    failed=1
    echo "fuzz $target FOUND A CRASH (artifact under fuzz/artifacts/$target):"
    grep -E "panicked|SUMMARY|ERROR|Test unit written" "$log" | head -20
  fi
done
exit "$failed"
