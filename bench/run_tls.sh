#!/usr/bin/env bash
# TLS benchmarks: the same TLS echo server (bench/tls_policy.h) on
# libasync's TLS layer (tls_echo_async), on raw epoll with OpenSSL on the
# sockets (tls_echo_epoll, the floor) and on libuv with OpenSSL through
# memory BIOs (tls_echo_uv), driven by the OpenSSL + epoll load generator
# bench/tls_loadgen.c, TLS 1.3 with OpenSSL's default suite and group, an
# EC P-256 certificate made now by tests/tls_certs.sh:
#   ping-pong, 100 connections, 1 KiB   round trips/s (handshakes not timed)
#   pump, 10 connections, 16 KiB        MB/s of plaintext echoed
#   handshakes, 1 worker                full handshakes/s (connect, handshake,
#                                       a 64-byte line and its answer, reset);
#                                       also against `openssl s_server -rev`
#   idle heap                           bytes of malloc heap per idle TLS
#                                       connection (each after its handshake
#                                       and one round trip): the server's heap
#                                       (mallinfo2) with IDLE_BASE connections
#                                       open and then IDLE_BASE + IDLE_CONNS,
#                                       the difference over IDLE_CONNS
# Short rounds interleaved across the servers in an order rotated from
# round to round (host load drifts), one fresh server process per
# measurement; the server's CPU time (utime + stime from /proc) is divided
# by the operations. Prints medians over the rounds and the medians of the
# per-round ratios.
#
# With INSTR=1, counts instead the user-space instructions per operation of
# each server under callgrind (ping-pong, pump and handshake rows, each run
# for SHORT and LONG seconds, (Ir(long) - Ir(short)) / (ops(long) - ops(short))),
# which do not depend on the machine's load.
#
# usage: bench/run_tls.sh   env: ROUNDS=5 SECONDS_PER_RUN=2 SKIP_BUILD=1 BUILD_DIR=build-bench
#   SERVERS="async epoll" (a subset) WORKLOADS="pingpong-100 idle" (a subset)
#   IDLE_BASE=100 IDLE_CONNS=1000  INSTR=1 SHORT=1 LONG=3
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-2}
idle_base=${IDLE_BASE:-100}
idle_conns=${IDLE_CONNS:-1000}
work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && running "$server_pid"; then kill -KILL "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
sh "$root/tests/tls_certs.sh" "$work" >/dev/null
cert=$work/server.pem key=$work/server.key ca=$work/ca.pem
results=$build/tls-results.txt
: >"$results"

read -r -a servers <<<"${SERVERS:-async epoll uv}"
# name mode connections size; "sserver" joins the servers on the handshake row
workloads=()
for w in "pingpong-100 pingpong 100 1024" "pump-10 pump 10 16384" "handshake-1 handshake 1 64" "idle idle 0 64"; do
  [[ " ${WORKLOADS:-${w%% *}} " == *" ${w%% *} "* ]] && workloads+=("$w")
done

# Starts server $1 on a free port ($port) with output to $work/server.out; waits for it to listen.
start_server() {
  local srv=$1 wrap=("${@:2}")
  port=$(free_port)
  if [[ $srv == sserver ]]; then
    # -rev answers each line reversed (the same length); -quiet: no per-connection chatter
    openssl s_server -accept "$port" -cert "$cert" -key "$key" -rev -quiet </dev/null >"$work/server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
      [[ -n $(ss -Hltn "sport = :$port") ]] && return
      sleep 0.05
    done
  else
    "${wrap[@]}" "$bin/tls_echo_$srv" "$port" "$cert" "$key" >"$work/server.out" &
    server_pid=$!
    for _ in $(seq 400); do grep -q READY "$work/server.out" && return; sleep 0.05; done
  fi
  echo "FAILED: $srv did not start" >&2
  exit 1
}

# The server's CPU seconds so far (user + system), from /proc: for openssl s_server, which prints none.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$server_pid/stat"; }

stop_server() {
  kill -TERM "$server_pid"
  # under callgrind the server takes a while to write its profile
  for _ in $(seq 400); do running "$server_pid" || break; sleep 0.05; done
  if running "$server_pid"; then
    kill -KILL "$server_pid"
    echo "FAILED: the server did not stop within 20 s of SIGTERM" >&2
    exit 1
  fi
  wait "$server_pid" || [[ $1 == sserver ]] # s_server ends on SIGTERM with its status
  server_pid=
}

# The server's heap ("HEAP <bytes>" on SIGUSR1), the n-th such line.
server_heap() {
  kill -USR1 "$server_pid"
  for _ in $(seq 200); do
    local line
    line=$(grep '^HEAP ' "$work/server.out" | sed -n "$1p")
    [[ -n $line ]] && { echo "${line#HEAP }"; return; }
    sleep 0.05
  done
  echo "FAILED: no heap figure from the server" >&2
  exit 1
}

# The idle row: the heap with idle_base connections, then with idle_conns more.
measure_idle() {
  local srv=$1 size=$2 a b input
  start_server "$srv"
  coproc IDLE { "$bin/tls_loadgen" idle "$port" "$idle_base" "$size" "$idle_conns" "$ca"; }
  read -r -t 120 _ _ <&"${IDLE[0]}" || { echo "FAILED: idle connections to $srv" >&2; exit 1; }
  a=$(server_heap 1)
  echo more >&"${IDLE[1]}"
  read -r -t 300 _ _ <&"${IDLE[0]}" || { echo "FAILED: idle connections to $srv" >&2; exit 1; }
  b=$(server_heap 2)
  input=${IDLE[1]}
  exec {input}>&- # the load generator exits at the end of its input
  wait "$IDLE_PID"
  stop_server "$srv"
  echo "server=$srv workload=idle ops=$idle_conns ops_per_sec=$(((b - a) / idle_conns)) heap_base=$a" >>"$results"
}

# Runs one workload against a fresh server; appends its line to $results.
measure() {
  local srv=$1 name=$2 mode=$3 conns=$4 size=$5 line cpu
  if [[ $mode == idle ]]; then
    measure_idle "$srv" "$size"
    return
  fi
  start_server "$srv"
  if ! line=$("$bin/tls_loadgen" "$mode" "$port" "$conns" "$size" "$secs" "$ca" | grep '^RESULT '); then
    echo "FAILED: $name against $srv" >&2
    exit 1
  fi
  cpu=$(server_cpu)
  stop_server "$srv"
  # the echo servers' own figure (clock_gettime) is finer than /proc's ticks
  cpu=$(awk -v cpu="$cpu" '/^CPU/ { cpu = $2 } END { print cpu }' "$work/server.out")
  echo "server=$srv workload=$name $line cpu=$cpu" >>"$results"
}

# Instructions of the server per operation: (Ir(long) - Ir(short)) / (ops(long) - ops(short)).
count_instr() {
  local srv=$1 name=$2 mode=$3 conns=$4 size=$5 s ir=() ops=() line
  for s in "${SHORT:-1}" "${LONG:-3}"; do
    start_server "$srv" valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" -q
    line=$("$bin/tls_loadgen" "$mode" "$port" "$conns" "$size" "$s" "$ca" | grep '^RESULT ') || {
      echo "FAILED: $name against $srv under callgrind" >&2
      exit 1
    }
    stop_server "$srv"
    ops+=("$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$line")")
    ir+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.out")")
  done
  local per=1
  [[ $mode == pump ]] && per=1024 # pump ops are bytes: per KiB
  echo "$name $srv $(((ir[1] - ir[0]) * per / (ops[1] - ops[0])))"
}

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "libasync $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), OpenSSL $(openssl version | cut -d' ' -f2), libuv $(ver libuv1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -n ${INSTR:-} ]]; then
  echo "| workload | server | instructions per operation |"
  echo "|---|---|---|"
  for w in "${workloads[@]}"; do
    [[ $w == idle* ]] && continue
    for srv in "${servers[@]}"; do
      # shellcheck disable=SC2086  # w is "name mode connections size"
      read -r name _ count <<<"$(count_instr "$srv" $w)"
      echo "| $name | $srv | $count |"
    done
  done
  echo "per round trip (ping-pong), per KiB of plaintext echoed (pump), per handshake; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

echo "$rounds rounds of ${secs}s per cell; idle heap: $idle_base then $((idle_base + idle_conns)) connections"
for ((round = 0; round < rounds; round++)); do
  for w in "${workloads[@]}"; do
    row=("${servers[@]}")
    [[ $w == handshake* ]] && row+=(sserver)
    for ((i = 0; i < ${#row[@]}; i++)); do
      # shellcheck disable=SC2086  # w is "name mode connections size"
      measure "${row[(i + round) % ${#row[@]}]}" $w
      printf '.' >&2
    done
  done
done
echo >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "${servers[@]}" sserver <<'PY'
import statistics, sys
path, servers = sys.argv[1], sys.argv[2:]
names = {"async": "libasync", "epoll": "raw epoll + OpenSSL", "uv": "libuv + OpenSSL BIOs",
         "sserver": "openssl s_server"}
# workload -> (label, rate unit, rate scale, CPU-per-op unit, CPU-per-op scale: seconds/op -> unit)
shapes = {
    "pingpong-100": ("ping-pong C=100, 1 KiB", "trips/s", 1, "us/trip", 1e6),
    "pump-10": ("pump C=10, 16 KiB", "MB/s", 1e-6, "CPU s/GB", 1e9),
    "handshake-1": ("full handshakes C=1", "hs/s", 1, "us/hs", 1e6),
    "idle": ("heap per idle connection", "bytes", 1, "", 0),
}
runs = {}
for line in open(path):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    runs.setdefault((f["workload"], f["server"]), []).append(f)
def ratio(w, s, peer):
    # Ratios are taken round by round (the i-th run of each server is in the same round), then their median.
    if (w, peer) not in runs:
        return None
    pairs = zip(runs[(w, s)], runs[(w, peer)])
    return statistics.median(float(a["ops_per_sec"]) / float(b["ops_per_sec"]) for a, b in pairs)
def times(v):
    return "-" if v is None else format(v, ".2f") + "x"
print("| workload | server | rate | vs libasync | vs epoll | vs libuv | vs s_server | spread | p50 us | p99 us | server CPU/op |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for w, (label, unit, scale, cpu_unit, cpu_scale) in shapes.items():
    for s in servers:
        if (w, s) not in runs:
            continue
        fs = runs[(w, s)]
        rates = [float(f["ops_per_sec"]) for f in fs]
        rate = statistics.median(rates)
        spread = (max(rates) - min(rates)) / rate if rate else 0
        def med(key, per_op=False):
            vals = [float(f[key]) / max(float(f["ops"]), 1) if per_op else float(f[key]) for f in fs if key in f]
            return statistics.median(vals) if vals else None
        p50, p99, cpu = med("p50_us"), med("p99_us"), med("cpu", per_op=True)
        print("| {} | {} | {} {} | {} | {} | {} | {} | {:.0%} | {} | {} | {} |".format(
            label, names[s], format(rate * scale, ",.1f" if scale != 1 else ",.0f"), unit,
            times(ratio(w, s, "async")), times(ratio(w, s, "epoll")), times(ratio(w, s, "uv")),
            times(ratio(w, s, "sserver")), spread, "-" if p50 is None else format(p50, ".0f"),
            "-" if p99 is None else format(p99, ".0f"),
            "-" if cpu is None else "{:.2f} {}".format(cpu * cpu_scale, cpu_unit)))
print("medians of {} rounds (ratios: median of the per-round ratios; for the heap a ratio above 1 is more memory); "
      "spread = (max - min) / median; raw results: {}".format(max(len(v) for v in runs.values()), path))
PY
