#!/usr/bin/env bash
# Each fuzz target runs for a bounded time on nightly, seeded with byte
# fixtures (core/fuzz/seeds, firmware/fuzz/seeds). A crash fails the run
# and leaves its input in <crate>/fuzz/artifacts.
set -euo pipefail
seconds=${FUZZ_SECONDS:-60}
# The core's decoders, and the firmware's (certificates, flash contents).
for crate in core firmware; do
  for target in $(cd "$crate" && cargo +nightly fuzz list --fuzz-dir fuzz); do
    mkdir -p "$crate/fuzz/corpus/$target"
    echo "==> fuzzing $crate $target for ${seconds}s"
    (cd "$crate" && cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" fuzz/seeds -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1) \
      | grep -E '^(#|Done|stat::number_of_executed_units|==|thread|panicked|SUMMARY|Error)' | tail -n 5
    test "${PIPESTATUS[0]}" -eq 0
  done
done
