#!/usr/bin/env bash
# Cost per event through the completion queue against the callback path
# (bench/queue_cost.c): wall-clock ns per event (best of 5 runs of 1M
# events) and user-space instructions per event counted with callgrind
# ((Ir(long) - Ir(short)) / (events(long) - events(short)), so start-up
# drops out).
# usage: bench/queue_cost.sh     env: BUILD_DIR=build-bench SKIP_BUILD=1
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exe=$build/bench/queue_cost
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$work/out" -q "$exe" "$1" "$2" >/dev/null
  awk '/^(summary|totals):/ { print $2; exit }' "$work/out"
}
printf '%-9s %12s %12s\n' path ns/event Ir/event
for mode in callback queue; do
  best=
  for _ in 1 2 3 4 5; do
    ns=$("$exe" "$mode" 1000000 | awk '{ print $3 }')
    if [[ -z $best ]] || awk -v a="$ns" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$ns; fi
  done
  short=$(ir "$mode" 25600)
  long=$(ir "$mode" 256000)
  printf '%-9s %12s %12.1f\n' "$mode" "$best" "$(awk -v l="$long" -v s="$short" 'BEGIN { print (l - s) / (256000 - 25600) }')"
done
