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

# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-3}
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

# DNS: libasync against raw c-ares, both asking a local dnsmasq (started
# here on a free port, no query log), and libasync's hosts-file path against
# libuv's thread-pool getaddrinfo on a name from /etc/hosts (neither libc nor
# libuv can be given another hosts file).
dns_pid=
stop_dns() { [[ -n $dns_pid ]] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null; dns_pid=; }
trap stop_dns EXIT
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
if [[ -x $dnsmasq ]]; then
  port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 \
    --bind-interfaces --port="$port" --pid-file= --user=root --local=/test/ --cache-size=0 \
    --host-record=bench.test,192.0.2.50 2>/dev/null &
  dns_pid=$!
  sleep 0.5
fi
hosts_name=$(awk '!/^[[:space:]]*#/ && NF >= 2 { for (i = 2; i <= NF; i++) if ($i !~ /localhost/) { print $i; exit } }' /etc/hosts)
for ((round = 0; round < rounds; round++)); do
  runs=()
  [[ -n $dns_pid ]] && runs+=("dns_async dns 127.0.0.1:$port bench.test" "dns_cares 127.0.0.1:$port bench.test")
  [[ -n $hosts_name ]] && runs+=("dns_async hosts /etc/hosts $hosts_name" "dns_uv $hosts_name")
  for run in "${runs[@]}"; do
    # shellcheck disable=SC2086  # run is a command line
    line=$($bin/$run | grep '^RESULT ') || { echo "FAILED: $run" >&2; exit 1; }
    echo "round=$((round + 1)) $line" >>"$results"
    printf '.' >&2
  done
done
stop_dns
[[ -z $dns_pid && ! -x $dnsmasq ]] && echo "dnsmasq not installed: DNS server rows skipped" >&2
[[ -z $hosts_name ]] && echo "no name other than localhost in /etc/hosts: hosts-file rows skipped" >&2

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
    if (bench, "libasync") not in rows:
        continue
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

# DNS rows: libasync against one peer each, with the threads each used.
dns = [
    ("DNS lookups, 100 in flight, dnsmasq (lookups/s)", "dns_server", "c-ares", ">= 0.9x", lambda r: r >= 0.9),
    ("hosts-file lookups, 100 in flight (lookups/s)", "dns_hosts", "libuv", "", None),
]
dns_rows = []
for label, bench, peer, target, ok in dns:
    if (bench, "libasync") not in rows or (bench, peer) not in rows:
        continue
    a, p = med(bench, "libasync", "ops_per_sec"), med(bench, peer, "ops_per_sec")
    ta, tp = med(bench, "libasync", "threads"), med(bench, peer, "threads")
    ratio = a / p if p else float("nan")
    dns_rows.append([label, "{:,.0f}".format(a), "{} {:,.0f}".format(peer, p), "{:.2f}x".format(ratio), target,
                     "" if ok is None else ("yes" if ok(ratio) else "NO"), "{:.0f} / {:.0f}".format(ta, tp)])
if dns_rows:
    head = ["workload", "libasync", "peer", "libasync/peer", "target", "met", "threads (libasync / peer)"]
    widths = [max(len(r[i]) for r in dns_rows + [head]) for i in range(len(head))]
    print()
    show(head)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in dns_rows:
        show(r)

print()
print("medians of {} interleaved rounds; spread = largest (max-min)/median of the row's three cells".format(
    max(len(v) for d in rows.values() for v in d.values())))
print("raw results: " + sys.argv[1])
PY
