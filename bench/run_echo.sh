#!/usr/bin/env bash
# TCP echo benchmark matrix: the same echo server (bench/echo_policy.h) on
# libasync (its C API, and its C++20 coroutines: echo_coro), libuv, raw
# libev, libevent and raw epoll, driven by the raw-epoll load generator
# bench/loadgen.c:
#   ping-pong, 1 connection, 64 B     round trips/s, p50/p99 latency
#   ping-pong, 100 connections, 64 B  round trips/s, p50/p99 latency
#   pump, 10 connections, 16 KiB      MB/s echoed
#   churn, 10 workers, 64 B           connections/s, p50/p99 connect-to-echo
# Short rounds interleaved across the servers in an order rotated from round
# to round (host load drifts), one fresh server process per measurement so
# its CPU time and peak RSS (printed at exit) belong to that workload.
# Prints medians over the rounds, the ratios to libuv and raw epoll, the
# spread of the rate, and the server's CPU per operation.
#
# usage: bench/run_echo.sh   env: ROUNDS=5 SECONDS_PER_RUN=2 SKIP_BUILD=1 BUILD_DIR=build-bench
#   SERVERS="async coro" (a subset, in that order) WORKLOADS="pingpong-1 pingpong-100" (a subset)
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-2}
results=$build/echo-results.txt
: >"$results"

read -r -a servers <<<"${SERVERS:-async coro uv ev event epoll}"
# name mode connections size
workloads=()
for w in "pingpong-1 pingpong 1 64" "pingpong-100 pingpong 100 64" "pump-10 pump 10 16384" "churn-10 churn 10 64"; do
  [[ " ${WORKLOADS:-${w%% *}} " == *" ${w%% *} "* ]] && workloads+=("$w")
done

# Runs one workload against a fresh server; appends its line to $results.
measure() {
  local srv=$1 name=$2 mode=$3 conns=$4 size=$5 port out pid line
  port=$(free_port)
  out=$(mktemp)
  "$bin/echo_$srv" "$port" >"$out" &
  pid=$!
  for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
  if ! line=$("$bin/loadgen" "$mode" "$port" "$conns" "$size" "$secs" | grep '^RESULT '); then
    echo "FAILED: $name against echo_$srv" >&2
    kill -TERM "$pid" 2>/dev/null || true
    exit 1
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do running "$pid" || break; sleep 0.05; done
  if running "$pid"; then
    kill -KILL "$pid"
    echo "FAILED: echo_$srv did not stop within 5 s of SIGTERM after $name" >&2
    exit 1
  fi
  if ! wait "$pid"; then
    echo "FAILED: echo_$srv exited with an error after $name" >&2
    exit 1
  fi
  echo "server=$srv workload=$name $line $(awk '/^CPU/ {print "cpu=" $2, "maxrss_mib=" $4}' "$out")" >>"$results"
  rm -f "$out"
}

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "libasync $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), libuv $(ver libuv1), libev $(ver libev4), libevent $(ver libevent-core-2.1-7)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of ${secs}s per cell"
for ((round = 0; round < rounds; round++)); do
  for w in "${workloads[@]}"; do
    for ((i = 0; i < ${#servers[@]}; i++)); do
      # shellcheck disable=SC2086  # w is "name mode connections size"
      measure "${servers[(i + round) % ${#servers[@]}]}" $w
      printf '.' >&2
    done
  done
done
echo >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "${servers[@]}" <<'PY'
import statistics, sys
path, servers = sys.argv[1], sys.argv[2:]
names = {"async": "libasync", "coro": "libasync C++ coroutines", "uv": "libuv", "ev": "libev", "event": "libevent",
         "epoll": "raw epoll"}
# workload -> (label, rate unit, rate scale, CPU-per-op unit, CPU-per-op scale: seconds/op -> unit)
shapes = {
    "pingpong-1": ("ping-pong C=1, 64 B", "trips/s", 1, "us/trip", 1e6),
    "pingpong-100": ("ping-pong C=100, 64 B", "trips/s", 1, "us/trip", 1e6),
    "pump-10": ("pump C=10, 16 KiB", "MB/s", 1e-6, "CPU s/GB", 1e9),
    "churn-10": ("churn C=10, 64 B", "conn/s", 1, "us/conn", 1e6),
}
runs = {}
for line in open(path):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    runs.setdefault((f["workload"], f["server"]), []).append(f)
def med(w, s, key, per_op=False):
    vals = [float(f[key]) / max(float(f["ops"]), 1) if per_op else float(f[key]) for f in runs[(w, s)] if key in f]
    return statistics.median(vals) if vals else None
def ratio(w, s, peer):
    # Host speed drifts between rounds far more than servers differ within
    # one, so ratios are taken round by round (the i-th run of each server
    # is in the same round) and their median reported.
    if (w, peer) not in runs:
        return None
    pairs = zip(runs[(w, s)], runs[(w, peer)])
    return statistics.median(float(a["ops_per_sec"]) / float(b["ops_per_sec"]) for a, b in pairs)
def fmt(v, spec):
    return "-" if v is None else format(v, spec)
def times(v):
    return "-" if v is None else format(v, ".2f") + "x"
print("| workload | server | rate | vs libasync | vs libuv | vs epoll | spread | p50 us | p99 us | server CPU/op | server peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for w, (label, unit, scale, cpu_unit, cpu_scale) in shapes.items():
    if not any((w, s) in runs for s in servers):
        continue
    for s in servers:
        rates = [float(f["ops_per_sec"]) for f in runs[(w, s)]]
        rate = statistics.median(rates)
        spread = (max(rates) - min(rates)) / rate if rate else 0
        print("| {} | {} | {} {} | {} | {} | {} | {:.0%} | {} | {} | {} {} | {} |".format(
            label, names[s], fmt(rate * scale, ",.1f" if scale != 1 else ",.0f"), unit, times(ratio(w, s, "async")),
            times(ratio(w, s, "uv")), times(ratio(w, s, "epoll")),
            spread, fmt(med(w, s, "p50_us"), ".0f"), fmt(med(w, s, "p99_us"), ".0f"),
            fmt(med(w, s, "cpu", per_op=True) * cpu_scale, ".2f"), cpu_unit, fmt(med(w, s, "maxrss_mib"), ".1f")))
print("medians of {} rounds (ratios: median of the per-round ratios); spread = (max - min) / median of the rate; "
      "raw results: {}".format(
    len(next(iter(runs.values()))), path))
PY
