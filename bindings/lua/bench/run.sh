#!/usr/bin/env bash
# The Lua binding against luv (Debian lua-luv) on the same workloads, in one
# run, each measurement in a fresh lua5.4 process, rounds interleaved (the
# order of the two alternates), every ratio the median of per-round ratios:
#   chain    each callback hands the loop the next one, 1M callbacks
#            (async: call_soon; luv: the faster of an idle handle started
#            again with the next function and a timer(0) started again)
#   idle     one callback per loop iteration, started once, 1M iterations
#            (async: an idle hook; luv: an idle handle)
#   fanout   100 rounds of 10,000 callbacks queued at once (luv: timer(0)s)
#   timers   1M timers over 0..999 ms: time and peak RSS
#   echo-1, echo-100  TCP echo ping-pong, 64 B, 1 and 100 connections,
#            driven by the shared raw-epoll load generator (bench/loadgen.c):
#            round trips per second of wall time, and the server's CPU time
#            per round trip (less sensitive to a loaded machine); the C
#            servers bench/echo_async.c and echo_uv.c run on the same load
#            as a reference (what is left to any binding on this machine)
# Rates are per second of the process's CPU time (chain, idle, fanout,
# timers) or of wall time (echo: round trips/s as loadgen counts them).
# bench/count.sh gives the same rows in instructions per operation.
#
# usage: bindings/lua/bench/run.sh [BUILD_DIR]   env: ROUNDS=5 SECONDS_PER_RUN=3
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-3}
export LUA_CPATH="$build/bindings/lua/?.so;;"
[ -f "$build/bindings/lua/async.so" ] || { echo "build the module first: ninja -C $build" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/loadgen" "$root/bench/loadgen.c" -lpthread
# The C echo servers of bench/ on the same load, for reference: how much of
# a round trip is left to a binding at all on this machine.
c_servers=()
cc -O2 -I"$root/include" -I"$build/include" -o "$tmp/echo_c-async" "$root/bench/echo_async.c" -L"$build/src" -lasync \
  -Wl,-rpath,"$build/src" && c_servers+=(c-async)
if [ -f /usr/include/uv.h ]; then cc -O2 -o "$tmp/echo_c-uv" "$root/bench/echo_uv.c" -luv && c_servers+=(c-uv); fi
running() { kill -0 "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

results=$tmp/results
: >"$results"
echo_run() { # round lib conns
  local round=$1 lib=$2 conns=$3 port out pid line try
  out=$tmp/server.out
  for try in 1 2 3; do # a free port can be taken by another process before the server binds it
    port=$(free_port)
    : >"$out" # emptied here, not by the server's redirection: a READY of the last run must not count
    case $lib in
    c-*) "$tmp/echo_$lib" "$port" >"$out" 2>&1 & ;;
    *) lua5.4 "$here/workloads.lua" "$lib" echo "$port" >"$out" 2>&1 & ;;
    esac
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
  ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$line")
  cpu=$(awk '/^CPU/ {print $2}' "$out")
  rss=$(awk '/^CPU/ {print $4}' "$out")
  echo "round=$round lib=$lib bench=echo-$conns rate=$rate rss_mib=$rss cpu_us=$(python3 -c "print($cpu * 1e6 / $ops)")" >>"$results"
}

load_before=$(load)
for round in $(seq "$rounds"); do
  libs=(async luv)
  ((round % 2 == 0)) && libs=(luv async)
  for lib in "${libs[@]}"; do
    for bench in chain idle fanout timers; do
      lua5.4 "$here/workloads.lua" "$lib" "$bench" 2>/dev/null | sed -n "s/^RESULT /round=$round /p" >>"$results"
    done
    echo_run "$round" "$lib" 1
    echo_run "$round" "$lib" 100
  done
  for lib in "${c_servers[@]}"; do
    echo_run "$round" "$lib" 1
    echo_run "$round" "$lib" 100
  done
done

echo "Lua 5.4 binding of libasync vs luv $(dpkg-query -W -f='${Version}' lua-luv 2>/dev/null || echo '?'), $rounds rounds, medians (ratios: of per-round ratios)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load average $load_before before, $(load) after"
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    runs[(kv["bench"], kv["lib"], kv["round"])] = kv
names = {"chain": "call_soon chain (callbacks/s)", "idle": "idle callback (callbacks/s)",
         "fanout": "call_soon fan-out (callbacks/s)", "timers": "1M timers (timers/s)",
         "echo-1": "echo ping-pong, 1 conn (round trips/s)", "echo-100": "echo ping-pong, 100 conns (round trips/s)"}
med = statistics.median
def per_round(b, field, better_high=True):
    out = []
    for (bench, lib, rnd), a in runs.items():
        l = runs.get((bench, "luv", rnd))
        if bench != b or lib != "async" or not l:
            continue
        x, y = float(a[field]), float(l[field])
        out.append((x / y if better_high else y / x, x, y))
    return out
print(f"| {'workload':42} | {'async':>11} | {'luv':>11} | ratio (range)      | target | peak RSS MiB async / luv |")
print(f"|{'-'*44}|{'-'*13}|{'-'*13}|--------------------|--------|--------------------------|")
def row(name, pr, fmt, rss=None):
    ratios = [r for r, _, _ in pr]
    r = med(ratios)
    rng = f"{r:4.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
    extra = f"{rss[0]:10.1f} / {rss[1]:<10.1f}  " if rss else " " * 24
    print(f"| {name:42} | {med(x for _, x, _ in pr):{fmt}} | {med(y for _, _, y in pr):{fmt}} | {rng:18} | {'yes' if r >= 1.2 else 'NO':>6} | {extra} |")
for b in ["chain", "idle", "fanout", "timers", "echo-1", "echo-100"]:
    pr = per_round(b, "rate")
    if not pr:
        continue
    rss = per_round(b, "rss_mib", better_high=False)
    row(names[b], pr, "11,.0f", (med(x for _, x, _ in rss), med(y for _, _, y in rss)))
    if b.startswith("echo"):
        row(f"  server CPU per round trip (us)", per_round(b, "cpu_us", better_high=False), "11.2f")
for b in ["echo-1", "echo-100"]:
    ref = []
    for lib in ["c-async", "c-uv"]:
        rs = [kv for (bench, l, _), kv in runs.items() if bench == b and l == lib]
        if rs:
            ref.append(f"{lib} {med(float(kv['rate']) for kv in rs):,.0f} round trips/s, "
                       f"{med(float(kv['cpu_us']) for kv in rs):.2f} us CPU per round trip")
    if ref:
        print(f"reference, the C servers of bench/ on {b}: " + "; ".join(ref))
PY
