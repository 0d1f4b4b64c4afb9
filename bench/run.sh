#!/usr/bin/env bash
# Builds the benchmarks and runs every workload on libasync, libuv and raw
# libev, interleaved (each round runs all three libraries back to back, in
# a rotated order, so host-load drift hits all of them alike), over ROUNDS
# rounds; prints the medians and the ratio against libuv's target.
#
# usage: bench/run.sh            (from anywhere; ~2 minutes on 2 cores)
# env:   BUILD_DIR=build-bench   build directory, relative to the repo root
#        ROUNDS=3                rounds per workload
#        SKIP_BUILD=1            reuse an existing build
#        BENCH_PIN=1             ping-pong: main thread on CPU 0, worker on
#                                CPU 1 (0 lets the scheduler place them; it
#                                sometimes puts both on one core, which
#                                roughly doubles the rate)
set -euo pipefail
export BENCH_PIN=${BENCH_PIN:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}
rounds=${ROUNDS:-3}

if [[ -z ${SKIP_BUILD:-} ]]; then
  opts=(-Dbench=true -Dtests=false --buildtype=release)
  if [[ -f $build/build.ninja ]]; then
    meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
  else
    meson setup "$build" "${opts[@]}" >/dev/null
  fi
  ninja -C "$build" >/dev/null
fi

bin=$build/bench
results=$build/bench-results.txt
: >"$results"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
libuv_ver=$(pkg-config --modversion libuv 2>/dev/null || echo '?')
libev_ver=$(dpkg-query -W -f='${Version}' libev4 2>/dev/null || echo '?')
echo "machine: $(nproc) cores, $cpu, kernel $(uname -r)"
echo "libasync $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), libuv $libuv_ver, libev $libev_ver, $rounds rounds"
load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average before the run: $load; BENCH_PIN=$BENCH_PIN"
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
  echo "warning: the machine is busy; the cross-thread ping-pong and the short fan-out suffer most" >&2
fi

# workload name -> command-line arguments
declare -A args=([callsoon_chain]="chain" [callsoon_fanout]="fanout" [timers]="" [pingpong]="")
workloads=(callsoon_chain callsoon_fanout timers pingpong)
libs=(async uv ev)

for ((round = 0; round < rounds; round++)); do
  for w in "${workloads[@]}"; do
    for ((i = 0; i < 3; i++)); do
      lib=${libs[(i + round) % 3]}
      exe=$bin/${w%%_*}_$lib
      # shellcheck disable=SC2086  # args are intentionally split
      line=$("$exe" ${args[$w]} | grep '^RESULT ') || {
        echo "FAILED: $exe ${args[$w]}" >&2
        exit 1
      }
      echo "round=$((round + 1)) $line" >>"$results"
      printf '.' >&2
    done
  done
done
echo >&2
echo "load average after the run: $(cut -d' ' -f1 /proc/loadavg)"

python3 - "$results" <<'PY'
import statistics
import sys

rows = {}
for line in open(sys.argv[1]):
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    key = (fields["bench"], fields["lib"])
    for k, v in fields.items():
        if k not in ("bench", "lib", "round"):
            rows.setdefault(key, {}).setdefault(k, []).append(float(v))

def med(bench, lib, key):
    return statistics.median(rows[(bench, lib)][key])

def spread(bench, lib, key):
    v = rows[(bench, lib)][key]
    m = statistics.median(v)
    return (max(v) - min(v)) / m * 100 if m else 0.0

# (label, bench, key, format, target description, predicate on ratio or None)
table = [
    ("call_soon chain, 2M (callbacks/s)", "callsoon_chain", "ops_per_sec", "{:,.0f}", ">= 1.5x", lambda r: r >= 1.5),
    ("call_soon fan-out 1000, 10M (callbacks/s)", "callsoon_fanout", "ops_per_sec", "{:,.0f}", ">= 1.5x", lambda r: r >= 1.5),
    ("1M timers: start (s, wall)", "timers", "start_s", "{:.3f}", "", None),
    ("1M timers: dispatch (s, CPU)", "timers", "dispatch_cpu", "{:.3f}", "", None),
    ("1M timers: cleanup (s, CPU)", "timers", "cleanup_cpu", "{:.3f}", "", None),
    ("1M timers: total (s, CPU)", "timers", "total_cpu", "{:.3f}", "<= 0.8x", lambda r: r <= 0.8),
    ("1M timers: total (s, wall; >= 1 s of sleeping)", "timers", "total_s", "{:.3f}", "", None),
    ("1M timers: peak RSS (MiB)", "timers", "maxrss_mib", "{:.1f}", "<= 1.0x", lambda r: r <= 1.0),
    ("post ping-pong, 200k (round trips/s)", "pingpong", "ops_per_sec", "{:,.0f}", ">= 1.0x", lambda r: r >= 1.0),
]

head = ["workload", "libasync", "libuv", "libev", "libasync/libuv", "target", "met", "spread"]
out = []
for label, bench, key, fmt, target, ok in table:
    a, u, e = (med(bench, lib, key) for lib in ("libasync", "libuv", "libev"))
    row_spread = max(spread(bench, lib, key) for lib in ("libasync", "libuv", "libev"))
    ratio = a / u if u else float("nan")
    met = "" if ok is None else ("yes" if ok(ratio) else "NO")
    out.append([label, fmt.format(a), fmt.format(u), fmt.format(e), "{:.2f}x".format(ratio), target, met,
                "{:.0f}%".format(row_spread)])

widths = [max(len(r[i]) for r in out + [head]) for i in range(len(head))]
def show(r):
    print("| " + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) + " |")
show(head)
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in out:
    show(r)
print()
print("medians of {} interleaved rounds; spread = largest (max-min)/median of the row's three cells".format(
    max(len(v) for d in rows.values() for v in d.values())))
print("raw results: " + sys.argv[1])
PY
