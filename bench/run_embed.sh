#!/usr/bin/env bash
# Wake-up latency of a loop embedded in a GLib GMainLoop through
# async_loop_fd(), against the loop's own run(DEFAULT), side by side:
# a post from another thread and a 1 ms timer, p50 and p99 in µs, each
# the median over ROUNDS runs of N samples (bench/embed_latency.c).
#
# usage: bench/run_embed.sh          env: N=2000 ROUNDS=3, BUILD_DIR, SKIP_BUILD
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
n=${N:-2000}
rounds=${ROUNDS:-3}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$rounds"); do
  for kind in post timer; do
    for host in default glib; do
      "$bin/embed_latency" "$kind" "$host" "$n" | grep '^RESULT ' >>"$results"
    done
  done
done
python3 - "$results" <<'PY'
import re, statistics, sys
cells = {}
for line in open(sys.argv[1]):
    _, kind, host, p50, p99, _ = line.split()
    cells.setdefault((kind, host), []).append((float(p50.split("=")[1]), float(p99.split("=")[1])))
print("| wake-up latency (µs) | run(DEFAULT) p50 | p99 | GLib through async_loop_fd p50 | p99 |")
print("|---|---:|---:|---:|---:|")
for kind, label in (("post", "post from another thread"), ("timer", "1 ms timer, lateness")):
    row = []
    for host in ("default", "glib"):
        v = cells[(kind, host)]
        row += ["{:.1f}".format(statistics.median(x[0] for x in v)), "{:.1f}".format(statistics.median(x[1] for x in v))]
    print("| {} | {} |".format(label, " | ".join(row)))
PY
