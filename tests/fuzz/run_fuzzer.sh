#!/bin/sh
# Runs one fuzzer for a fixed budget, as `meson test --suite fuzz` does:
#   run_fuzzer.sh FUZZER SEED_CORPUS WORK_DIR SECONDS [libFuzzer options...]
# Starts from the committed seeds (read only) in a fresh work corpus under
# WORK_DIR, where crash, leak and timeout inputs are saved too. libFuzzer
# exits non-zero on any of them, which fails the test: with 1, since its
# default (77) is what meson takes for a skipped test.
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4
shift 4
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds"
