#!/usr/bin/env bash
# The Lua binding against luv (Debian lua-luv) on the same workloads, in one
# run, each measurement in a fresh lua5.4 process, rounds interleaved:
#   chain    call_soon chain, 1M callbacks (luv: the faster of an idle
#            callback and a timer(0) restarted from its callback)
#   fanout   100 rounds of 10,000 callbacks queued at once (luv: timer(0)s)
#   timers   1M timers over 0..999 ms: time and peak RSS
#   echo-1, echo-100  TCP echo ping-pong, 64 B, 1 and 100 connections,
#            driven by the shared raw-epoll load generator (bench/loadgen.c)
# Rates are per second of the process's CPU time (chain, fanout, timers) or
# of wall time (echo: round trips/s as loadgen counts them).
#
# usage: bindings/lua/bench/run.sh [BUILD_DIR]   env: ROUNDS=3 SECONDS_PER_RUN=2
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-3}
secs=${SECONDS_PER_RUN:-2}
export LUA_CPATH="$build/bindings/lua/?.so;;"
[ -f "$build/bindings/lua/async.so" ] || { echo "build the module first: ninja -C $build" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/loadgen" "$root/bench/loadgen.c" -lpthread
running() { kill -0 "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

results=$tmp/results
: >"$results"
echo_run() { # lib conns
  local lib=$1 conns=$2 port out pid line try
  out=$tmp/server.out
  for try in 1 2 3; do # a free port can be taken by another process before the server binds it
    port=$(free_port)
    lua5.4 "$here/workloads.lua" "$lib" echo "$port" >"$out" 2>&1 &
    pid=$!
    for _ in $(seq 200); do grep -q READY "$out" && break; running "$pid" || break; sleep 0.05; done
    grep -q READY "$out" && break
    echo "the $lib echo server did not start (try $try): $(cat "$out")" >&2
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if ! line=$("$tmp/loadgen" pingpong "$port" "$conns" 64 "$secs" | grep '^RESULT '); then
    echo "FAILED: echo-$conns against $lib" >&2
    kill -TERM "$pid"
    exit 1
  fi
  kill -TERM "$pid"
  wait "$pid" || { echo "FAILED: the $lib echo server exited with an error" >&2; exit 1; }
  rate=$(sed -n 's/.*ops_per_sec=\([0-9.]*\).*/\1/p' <<<"$line")
  rss=$(awk '/^CPU/ {print $4}' "$out")
  echo "lib=$lib bench=echo-$conns rate=$rate rss_mib=$rss" >>"$results"
}

for round in $(seq "$rounds"); do
  libs=(async luv)
  ((round % 2 == 0)) && libs=(luv async)
  for lib in "${libs[@]}"; do
    for bench in chain fanout timers; do
      lua5.4 "$here/workloads.lua" "$lib" "$bench" 2>/dev/null | sed -n 's/^RESULT //p' >>"$results"
    done
    echo_run "$lib" 1
    echo_run "$lib" 100
  done
done

echo "Lua 5.4 binding of libasync vs luv $(dpkg-query -W -f='${Version}' lua-luv 2>/dev/null || echo '?'), $rounds rounds, medians"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    rows.setdefault((kv["bench"], kv["lib"]), []).append((float(kv["rate"]), float(kv.get("rss_mib", 0))))
names = {"chain": "call_soon chain (callbacks/s)", "fanout": "call_soon fan-out (callbacks/s)",
         "timers": "1M timers (timers/s)", "echo-1": "echo ping-pong, 1 conn (round trips/s)",
         "echo-100": "echo ping-pong, 100 conns (round trips/s)"}
print(f"| {'workload':42} | {'async':>11} | {'luv':>11} | ratio | target | peak RSS MiB async / luv |")
print(f"|{'-'*44}|{'-'*13}|{'-'*13}|-------|--------|--------------------------|")
for b in ["chain", "fanout", "timers", "echo-1", "echo-100"]:
    a, l = rows.get((b, "async")), rows.get((b, "luv"))
    if not a or not l:
        continue
    ar, lr = statistics.median(r for r, _ in a), statistics.median(r for r, _ in l)
    am, lm = statistics.median(m for _, m in a), statistics.median(m for _, m in l)
    ratio = ar / lr
    print(f"| {names[b]:42} | {ar:11,.0f} | {lr:11,.0f} | {ratio:4.2f}x | {'yes' if ratio >= 1.2 else 'NO':>6} | {am:10.1f} / {lm:<10.1f}   |")
PY
