#!/usr/bin/env bash
# User-space instructions per operation, counted with callgrind, for
# libasync, libuv and raw libev (raw c-ares for DNS). Each workload runs at
# two lengths and the row is (Ir(long) - Ir(short)) / (ops(long) -
# ops(short)), so start-up and teardown drop out. Deterministic to within a
# few instructions, unlike wall-clock rates on a shared machine.
#
# Echo rows: the server runs under callgrind, the raw-epoll load generator
# outside it, both on one CPU, for SHORT and LONG seconds; ops are the round
# trips (or connections) the load generator counted. They also count libasync's C++20
# coroutine echo server (bench/echo_coro.cpp).
#
# usage: bench/instr.sh [row...]   rows: chain fanout timers echo1 echo100
#                                        churn post dns nowait (default: all)
# env:   BUILD_DIR=build-bench SKIP_BUILD=1 (as bench/run.sh)
#        SERVERS="async coro" (echo rows: a subset of async uv ev coro)
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rows=("$@")
[[ ${#rows[@]} -eq 0 ]] && rows=(chain fanout timers echo1 echo100 churn post dns nowait)
work=$(mktemp -d)
dns_pid=
cleanup() {
  [[ -n $dns_pid ]] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
results=$build/instr-results.txt
polls_results=$build/instr-polls.txt
: >"$results"
: >"$polls_results"

grind() { valgrind --tool=callgrind --callgrind-out-file="$1" -q "${@:2}"; }
# Total instructions of a callgrind output file.
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# Polls (epoll_wait and epoll_pwait calls) recorded in a callgrind output
# file: the loop iterations of an echo server.
polls() {
  python3 - "$1" <<'PY'
import re, sys
names, callee, total = {}, None, 0
for line in open(sys.argv[1]):
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
    if m:
        if m.group(2):  # a name is given once, where its number first appears
            names[m.group(1)] = m.group(2)
        if line.startswith("cfn="):
            callee = names.get(m.group(1))
    elif line.startswith("calls=") and callee in ("epoll_wait", "epoll_pwait"):
        total += int(line[6:].split()[0])
print(total)
PY
}

# Ir of one run of a self-contained benchmark: count_cmd FILE CMD...
count_cmd() {
  grind "$1" "${@:2}" >/dev/null
  total_ir "$1"
}

# The echo server and its load generator share one CPU, the first this
# script may run on (echo_row picks it). On two CPUs each churn poll served
# as many connections as the native load generator had advanced while the
# server, slowed by callgrind, ran its last iteration: the relative speed of
# the two decided it, so the row moved from run to run and libasync and raw
# libev polled unlike. On one CPU the scheduler's turns decide it
# (docs/benchmarks.md, Tenth round).
# The CPUs process $1 (a pid, or self) may run on, as /proc lists them.
cpus_of() { awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
echo_cpu=
pick_echo_cpu() {
  [[ -n $echo_cpu ]] && return
  echo_cpu=$(cpus_of self)  # awk's, inherited from this script
  echo_cpu=${echo_cpu%%[-,]*}
}

# Ir and ops of an echo server under callgrind for one load-generator run,
# in $echo_ir and $echo_ops.
count_echo() {
  local srv=$1 mode=$2 conns=$3 secs=$4 port out pid line
  port=$(free_port)
  out=$work/echo.out
  # Emptied here: the redirect below truncates it only once the child runs,
  # and the wait for READY could see the previous server's meanwhile.
  : >"$out"
  # valgrind itself (taskset execs it), not a function's subshell, so that
  # SIGTERM reaches it
  taskset -c "$echo_cpu" valgrind --tool=callgrind --callgrind-out-file="$work/echo.cg" -q "$bin/echo_$srv" "$port" >"$out" &
  pid=$!
  # Up to a minute: valgrind starts slowly on a loaded machine.
  for _ in $(seq 1200); do
    grep -q READY "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  # A server the pinning did not reach would be measured in the other regime.
  [[ $(cpus_of "$pid") == "$echo_cpu" ]] || {
    echo "FAILED: echo_$srv does not run on CPU $echo_cpu alone (it may run on: $(cpus_of "$pid"))" >&2
    kill -KILL "$pid"
    exit 1
  }
  line=$(taskset -c "$echo_cpu" "$bin/loadgen" "$mode" "$port" "$conns" 64 "$secs" | grep '^RESULT ') || {
    echo "FAILED: loadgen $mode against echo_$srv ($(kill -0 "$pid" 2>/dev/null && echo running || echo exited)): $(cat "$out")" >&2
    kill -KILL "$pid"
    exit 1
  }
  kill -TERM "$pid"
  wait "$pid"
  echo_ops=$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$line")
  echo_ir=$(total_ir "$work/echo.cg")
  echo_polls=$(polls "$work/echo.cg")
}

# row label lib: prints one result line per library.
record() { echo "$1 $2 $3" >>"$results"; printf '.' >&2; }

# Runs CMD with short and long lengths: simple ROW LIB N1 N2 CMD... (the
# length is substituted for the word LEN in CMD).
simple() {
  local row=$1 lib=$2 n1=$3 n2=$4 a b
  shift 4
  a=$(count_cmd "$work/a.cg" "${@/#LEN/$n1}")
  b=$(count_cmd "$work/b.cg" "${@/#LEN/$n2}")
  record "$row" "$lib" "$(((b - a) / (n2 - n1)))"
}

# Also notes each server's polls per operation (instr-polls.txt): how
# many operations one loop iteration serves varies between runs and
# machines, and each iteration costs its own instructions.
echo_row() {
  local row=$1 mode=$2 conns=$3 srv ia oa pa
  pick_echo_cpu
  # coro: bench/echo_coro.cpp, the libasync server on the C++20 coroutine binding.
  for srv in ${SERVERS:-async uv ev coro}; do
    count_echo "$srv" "$mode" "$conns" 1
    ia=$echo_ir oa=$echo_ops pa=$echo_polls
    count_echo "$srv" "$mode" "$conns" 3
    record "$row" "$srv" "$(((echo_ir - ia) / (echo_ops - oa)))"
    echo "$row $srv $(((echo_polls - pa) * 1000 / (echo_ops - oa)))" >>"$polls_results"
  done
}

for row in "${rows[@]}"; do
  case $row in
    chain | fanout)
      n1=20000 n2=120000
      [[ $row == fanout ]] && n1=200000 n2=1200000
      for lib in async uv ev; do simple "$row" "$lib" $n1 $n2 "$bin/callsoon_$lib" "$row" LEN; done ;;
    timers) for lib in async uv ev; do simple timers "$lib" 20000 120000 "$bin/timers_$lib" LEN; done ;;
    post) for lib in async uv ev; do simple post "$lib" 2000 12000 "$bin/pingpong_$lib" LEN; done ;;
    nowait)
      simple nowait async 20000 120000 "$bin/embed_nowait" plain LEN
      simple nowait_fd async 20000 120000 "$bin/embed_nowait" fd LEN ;;
    echo1) echo_row echo1 pingpong 1 ;;
    echo100) echo_row echo100 pingpong 100 ;;
    churn) echo_row churn churn 10 ;;
    dns)
      port=$(free_port)
      dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
      "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 \
        --bind-interfaces --port="$port" --pid-file= --user=root --local=/test/ --cache-size=0 \
        --host-record=bench.test,192.0.2.50 2>/dev/null &
      dns_pid=$!
      sleep 0.5
      simple dns async 1000 6000 "$bin/dns_async" dns "127.0.0.1:$port" bench.test LEN
      simple dns ev 1000 6000 "$bin/dns_cares" "127.0.0.1:$port" bench.test LEN
      kill "$dns_pid" && wait "$dns_pid" 2>/dev/null || true
      dns_pid= ;;
    *) echo "unknown row: $row" >&2; exit 2 ;;
  esac
done
echo >&2

echo "libasync $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), libuv $(pkg-config --modversion libuv), libev $(dpkg-query -W -f='${Version}' libev4), valgrind $(valgrind --version), kernel $(uname -r)${echo_cpu:+, echo rows on CPU $echo_cpu}"
python3 - "$results" "$polls_results" <<'PY'
import sys
labels = {
    "chain": ("call_soon chain (one loop iteration per callback)", 420),
    "fanout": ("call_soon fan-out (1000 in flight)", 64),
    "timers": ("timer start + fire (20k vs 120k timers)", 600),
    "echo1": ("echo ping-pong, 1 connection, 64 B, per round trip", 600),
    "echo100": ("echo ping-pong, 100 connections, per round trip", 220),
    "churn": ("connect churn, 10 at a time, per connection", 1400),
    "post": ("post ping-pong (cross-thread), per round trip", None),
    "dns": ("DNS lookup, 100 in flight, dnsmasq (libev column: raw c-ares)", None),
    "nowait": ("run(NOWAIT) iteration, one callback, back to back", None),
    "nowait_fd": ("run(NOWAIT) iteration driven through async_loop_fd (poll, run)", None),
}
cells = {}
for line in open(sys.argv[1]):
    row, lib, ir = line.split()
    cells[(row, lib)] = int(ir)
print("| per operation (instructions) | libasync | libuv | raw libev | libasync C++ coroutines | target | met |")
print("|---|---:|---:|---:|---:|---:|---|")
for row, (label, target) in labels.items():
    if (row, "async") not in cells:
        continue
    a = cells[(row, "async")]
    fmt = lambda lib: "{:,}".format(cells[(row, lib)]) if (row, lib) in cells else "-"
    met = "" if target is None else ("yes" if a <= target else "NO")
    print("| {} | {} | {} | {} | {} | {} | {} |".format(label, fmt("async"), fmt("uv"), fmt("ev"), fmt("coro"),
                                                        "" if target is None else "≤ {:,}".format(target), met))
polls = {}
for line in open(sys.argv[2]):
    row, lib, per_thousand = line.split()
    polls.setdefault(row, []).append("{} {:.2f}".format(lib, int(per_thousand) / 1000))
for row, cells in polls.items():
    print("polls per operation, {}: {}".format(row, ", ".join(cells)))
PY
