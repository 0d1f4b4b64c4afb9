#!/usr/bin/env bash
# TCP echo benchmark: the same echo server on libasync, libuv and raw epoll,
# driven by bench/loadgen.c (raw epoll) in ping-pong mode with 64-byte
# messages over 1 and 100 connections. Short rounds, interleaved across the
# servers in a rotated order (host load drifts), one fresh server process
# per measurement so its CPU time (getrusage at exit) is per workload.
# Prints medians, the ratios to libuv and raw epoll, and server CPU per
# round trip.
#
# usage: bench/run_echo.sh     env: ROUNDS=5 SECONDS_PER_RUN=2 SKIP_BUILD=1
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-2}
if [[ -z ${SKIP_BUILD:-} ]]; then
  opts=(-Dbench=true -Dtests=false --buildtype=release)
  if [[ -f $build/build.ninja ]]; then meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
  else meson setup "$build" "${opts[@]}" >/dev/null; fi
  ninja -C "$build" >/dev/null
fi
bin=$build/bench
results=$build/echo-results.txt
: >"$results"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

servers=(async uv epoll)
workloads=("1 64" "100 64")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg); $rounds rounds of ${secs}s"
for ((round = 0; round < rounds; round++)); do
  for w in "${workloads[@]}"; do
    for ((i = 0; i < ${#servers[@]}; i++)); do
      srv=${servers[(i + round) % ${#servers[@]}]}
      port=$(free_port)
      out=$(mktemp)
      "$bin/echo_$srv" "$port" >"$out" &
      pid=$!
      for _ in $(seq 50); do grep -q READY "$out" && break; sleep 0.05; done
      # shellcheck disable=SC2086  # w is "connections size"
      line=$("$bin/loadgen" "$port" $w "$secs" | grep '^RESULT ')
      kill -TERM "$pid"
      wait "$pid"
      cpu=$(awk '/^CPU/ {print $2}' "$out")
      rm -f "$out"
      echo "server=$srv conns=${w% *} $line cpu=$cpu" >>"$results"
      printf '.' >&2
    done
  done
done
echo >&2
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    key = (f["server"], f["conns"])
    rows.setdefault(key, []).append((float(f["ops_per_sec"]), float(f["p50_us"]), float(f["p99_us"]),
                                     float(f["cpu"]) / max(float(f["trips"]), 1) * 1e6))
def med(key, i):
    return statistics.median(r[i] for r in rows[key])
print("| ping-pong, 64 B | server | round trips/s | vs libuv | vs epoll | p50 us | p99 us | server CPU us/trip |")
print("|---|---|---|---|---|---|---|---|")
for conns in ("1", "100"):
    for srv, name in (("async", "libasync"), ("uv", "libuv"), ("epoll", "raw epoll")):
        k = (srv, conns)
        print("| C={} | {} | {:,.0f} | {:.2f}x | {:.2f}x | {:.0f} | {:.0f} | {:.2f} |".format(
            conns, name, med(k, 0), med(k, 0) / med(("uv", conns), 0), med(k, 0) / med(("epoll", conns), 0),
            med(k, 1), med(k, 2), med(k, 3)))
print("medians of {} rounds; raw results: {}".format(len(rows[("async", "1")]), sys.argv[1]))
PY
