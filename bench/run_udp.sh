#!/usr/bin/env bash
# UDP benchmark: the same UDP server on libasync, libuv and raw epoll,
# driven by bench/udp_loadgen.c (raw epoll): ping-pong with 64-byte
# datagrams over 1 and 10 sockets (round trips/s), and a flood of 64-byte
# datagrams from FLOOD_SENDERS sendmmsg threads (datagrams/s received, and
# the server's CPU per datagram: on loopback the senders do the kernel's
# delivery work, so on 2 cores a fast receiver keeps up, drops nothing, and
# the CPU it spent is what tells the libraries apart; "dropped %" above 0
# means the receiver was the bottleneck). Short rounds, interleaved across the servers
# in a rotated order, a fresh server process per measurement. Prints
# medians and the ratios to libuv and raw epoll.
#
# usage: bench/run_udp.sh     env: ROUNDS=5 SECONDS_PER_RUN=2 FLOOD_SENDERS=2 SKIP_BUILD=1
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-2}
senders=${FLOOD_SENDERS:-2}
results=$build/udp-results.txt
: >"$results"
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

servers=(async uv epoll)
# name, server mode, load generator arguments after the port
workloads=("pp1 echo pingpong 1 64" "pp10 echo pingpong 10 64" "flood sink flood 64")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg); $rounds rounds of ${secs}s"
for ((round = 0; round < rounds; round++)); do
  for w in "${workloads[@]}"; do
    read -r name mode gen <<<"$w"
    for ((i = 0; i < ${#servers[@]}; i++)); do
      srv=${servers[(i + round) % ${#servers[@]}]}
      port=$(free_udp_port)
      out=$(mktemp)
      "$bin/udp_$srv" "$port" "$mode" >"$out" &
      pid=$!
      for _ in $(seq 50); do grep -q READY "$out" && break; sleep 0.05; done
      extra=()
      if [[ $name == flood ]]; then extra=("$senders"); fi
      # shellcheck disable=SC2086  # gen is "mode args..."
      line=$("$bin/udp_loadgen" "$port" $gen "$secs" "${extra[@]}" | grep '^RESULT ')
      sleep 0.1 # the server drains what is still queued
      kill -TERM "$pid"
      wait "$pid"
      served=$(grep '^RESULT ' "$out" | sed 's/^RESULT //')
      rm -f "$out"
      echo "server=$srv workload=$name ${line#RESULT } $served" >>"$results"
      printf '.' >&2
    done
  done
done
echo >&2
python3 - "$results" "$senders" <<'PY'
import statistics, sys
senders = sys.argv[2]
rows = {}
for line in open(sys.argv[1]):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    received, cpu = float(f["received"]), float(f["cpu"])
    if f["workload"] == "flood":
        rate = received / max(float(f["span"]), 1e-9)
        extra = (100.0 * (1 - received / max(float(f["sent"]), 1)), 0.0)
    else:
        rate = float(f["ops_per_sec"])
        extra = (float(f["p50_us"]), float(f["p99_us"]))
    rows.setdefault((f["server"], f["workload"]), []).append((rate, cpu / max(received, 1) * 1e6) + extra)
def med(key, i):
    return statistics.median(r[i] for r in rows[key])
names = (("async", "libasync"), ("uv", "libuv"), ("epoll", "raw epoll"))
print("| UDP ping-pong, 64 B | server | round trips/s | vs libuv | vs epoll | p50 us | p99 us | server CPU us/datagram |")
print("|---|---|---|---|---|---|---|---|")
for w, label in (("pp1", "1 socket"), ("pp10", "10 sockets")):
    for srv, name in names:
        k = (srv, w)
        print("| {} | {} | {:,.0f} | {:.2f}x | {:.2f}x | {:.0f} | {:.0f} | {:.2f} |".format(
            label, name, med(k, 0), med(k, 0) / med(("uv", w), 0), med(k, 0) / med(("epoll", w), 0),
            med(k, 2), med(k, 3), med(k, 1)))
print()
print("| UDP flood, 64 B | server | datagrams/s received | vs libuv | vs epoll | server CPU us/datagram | CPU vs libuv | CPU vs epoll | dropped % |")
print("|---|---|---|---|---|---|---|---|---|")
for srv, name in names:
    k = (srv, "flood")
    print("| {} senders | {} | {:,.0f} | {:.2f}x | {:.2f}x | {:.3f} | {:.2f}x | {:.2f}x | {:.1f} |".format(
        senders, name, med(k, 0), med(k, 0) / med(("uv", "flood"), 0), med(k, 0) / med(("epoll", "flood"), 0),
        med(k, 1), med(k, 1) / med(("uv", "flood"), 1), med(k, 1) / med(("epoll", "flood"), 1), med(k, 2)))
print("medians of {} rounds; CPU ratios below 1 mean less CPU; raw results: {}".format(
    len(rows[("async", "flood")]), sys.argv[1]))
PY
