#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. build/       debugoptimized build, every suite (unit, header, abi,
#                   consumer, examples, docs, cpp)
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, every suite
#   3. valgrind     over the unit suite of build/
#   4. build-tsan/  ThreadSanitizer over the 'threads' suite (tests and the
#                   example that post to a loop from threads of their own)
#   5. backends     the unit suite of build/ under libev's select, poll and
#                   epoll backends (LIBEV_FLAGS=1, 2, 4)
#   6. build-fuzz/  the libFuzzer targets of tests/fuzz (clang, ASan+UBSan),
#                   each from its seed corpus for a fixed time (~60 s in all)
#   7. lint         clang-format (scripts/format.sh --check) and clang-tidy
#                   (scripts/tidy.sh, with build/'s compile database) over
#                   src/; last, so a style finding never hides a test result
# Installs the Debian packages first when some are missing (or, as root
# under CI, always). Ends with one line "tests: N passed, N failed".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

la_ensure_packages --ci

passed=0
failed=0
skipped=0
failed_steps=()

# Adds the results of one `meson test` run (its JSON log) to the totals.
count_results() {
  local counts
  counts=$(python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
try:
    with open(sys.argv[1]) as log:
        for line in log:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                p += 1
            elif r == "SKIP":
                s += 1
            else:
                f += 1
except OSError:
    pass
print(p, f, s)
PY
  )
  read -r p f s <<<"$counts"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
}

# run_tests NAME BUILD_DIR [meson test options...]
run_tests() {
  local name=$1 dir=$2
  shift 2
  local rc=0 log
  # Meson appends the wrapper's name to the log base: start clean, then
  # read whatever this run wrote.
  rm -f "$dir/meson-logs/testlog-$name".*json "$dir/meson-logs/testlog-$name"-*.json
  meson test -C "$dir" --print-errorlogs --logbase "testlog-$name" "$@" || rc=$?
  for log in "$dir/meson-logs/testlog-$name".json "$dir/meson-logs/testlog-$name"-*.json; do
    if [ -f "$log" ]; then
      count_results "$log"
    fi
  done
  if [ "$rc" -ne 0 ]; then
    failed_steps+=("$name")
  fi
}

# A build that fails counts as one failure; its tests are not run.
build_or_fail() {
  local name=$1
  shift
  if "$@"; then
    return 0
  fi
  failed=$((failed + 1))
  failed_steps+=("$name (build)")
  return 1
}

la_heading "1/7 build/: build and test"
if build_or_fail main la_build_main; then
  run_tests main build
fi

la_heading "2/7 build-asan/: AddressSanitizer + UndefinedBehaviorSanitizer"
if build_or_fail asan la_build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false; then
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_tests asan build-asan
fi

la_heading "3/7 valgrind over the unit suite of build/"
# --fair-sched: a loop spinning on ready callbacks makes no syscall, and
# valgrind's default lock would let it starve a thread that posts to it.
if [ -f build/build.ninja ]; then
  run_tests valgrind build --suite unit --timeout-multiplier 4 \
    --wrapper 'valgrind --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect -q'
fi

la_heading "4/7 build-tsan/: ThreadSanitizer over the threads suite"
# halt_on_error: the first race fails the test with its report.
if build_or_fail tsan la_build build-tsan -Db_sanitize=thread -Db_lundef=false -Dbench=false; then
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_tests tsan build-tsan --suite threads
fi

la_heading "5/7 backends: the unit suite of build/ under select, poll and epoll"
if [ -f build/build.ninja ]; then
  for backend in select=1 poll=2 epoll=4; do
    LIBEV_FLAGS=${backend#*=} run_tests "backend-${backend%=*}" build --suite unit
  done
fi

la_heading "6/7 build-fuzz/: libFuzzer targets (clang, ASan + UBSan), a fixed budget of about 70 s"
# docs/testing.md: targets, corpora, longer runs, reproducing a crash.
if CC=clang CXX=clang++ build_or_fail fuzz la_build build-fuzz -Dfuzz=true -Dtests=false -Dexamples=false \
  -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false; then
  run_tests fuzz build-fuzz --suite fuzz
fi

la_heading "7/7 lint: clang-format and clang-tidy over src/"
# docs/testing.md "Formatting and linting". Each check is one result;
# clang-format also covers include/, examples/ and bindings/cpp/.
lint() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
  fi
}
lint clang-format scripts/format.sh --check
lint clang-tidy scripts/tidy.sh build

la_heading "summary"
if [ "${#failed_steps[@]}" -ne 0 ]; then
  echo "failed: ${failed_steps[*]}"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "${#failed_steps[@]}" -eq 0 ]
