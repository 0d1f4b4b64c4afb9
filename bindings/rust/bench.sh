#!/usr/bin/env bash
# The Rust binding against the C library on the same workloads, in one run:
# echo ping-pong with 1 and 100 connections (64 B) driven by the shared load
# generator (bench/loadgen.c) against bench/echo_async.c, the callback echo
# server (examples/echo_callbacks.rs) and the async/await one
# (examples/echo_async.rs); and call_soon callbacks per second
# (bench/callsoon_async.c chain against examples/callsoon.rs). Rounds are
# interleaved (within a round the servers take turns, in an order that
# rotates from round to round); prints each median rate and, for Rust, the
# median of its per-round ratios over C (each ratio taken within one round,
# so a machine that slows down between rounds moves both sides).
#
# usage: bindings/rust/bench.sh [BUILD_DIR]   env: ROUNDS=9 SECONDS_PER_RUN=2
# BUILD_DIR (default build) is a configured and built tree (ninja -C build).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-9}
secs=${SECONDS_PER_RUN:-2}
bin=$build/bindings/rust/bench
mkdir -p "$bin"

cc_flags=(-O2 -I"$root/bench" -I"$root/include" -I"$build/include")
lib_flags=(-L"$build/src" -lasync -Wl,-rpath,"$build/src")
cc "${cc_flags[@]}" "$root/bench/echo_async.c" "${lib_flags[@]}" -o "$bin/echo_c"
cc "${cc_flags[@]}" "$root/bench/callsoon_async.c" "${lib_flags[@]}" -o "$bin/callsoon_c"
cc "${cc_flags[@]}" "$root/bench/loadgen.c" -pthread -lm -o "$bin/loadgen"
"$here/cargo.sh" build-release "$build"
examples=$build/bindings/rust/target/release/examples
export LD_LIBRARY_PATH="$build/src"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# echo SERVER_NAME WORKLOAD CONNECTIONS: appends "name workload rate".
echo_run() {
  local name=$1 workload=$2 conns=$3 port out pid line
  port=$(free_port)
  out=$(mktemp)
  case $name in
  c) "$bin/echo_c" "$port" >"$out" & ;;
  rust-callbacks) "$examples/echo_callbacks" "$port" >"$out" & ;;
  rust-async) "$examples/echo_async" "$port" >"$out" & ;;
  esac
  pid=$!
  for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
  line=$("$bin/loadgen" pingpong "$port" "$conns" 64 "$secs" | grep '^RESULT ')
  kill -TERM "$pid"
  wait "$pid" || { echo "FAILED: $name exited with an error" >&2; exit 1; }
  rm -f "$out"
  echo "$round $name $workload $(sed -n 's/.* ops_per_sec=\([0-9.]*\).*/\1/p' <<<"$line")" >>"$results"
}

callsoon_c() { echo "$round c callsoon $("$bin/callsoon_c" chain | sed -n 's/.*ops_per_sec=\([0-9.]*\).*/\1/p')" >>"$results"; }
callsoon_rust() { echo "$round rust-callbacks callsoon $("$examples/callsoon" | sed -n 's/.*ops_per_sec=\([0-9.]*\).*/\1/p')" >>"$results"; }

servers=(c rust-callbacks rust-async)
for round in $(seq "$rounds"); do
  for i in 0 1 2; do
    name=${servers[$(((i + round) % 3))]}
    echo_run "$name" pingpong-1 1
    echo_run "$name" pingpong-100 100
  done
  if ((round % 2)); then callsoon_c; callsoon_rust; else callsoon_rust; callsoon_c; fi
  echo "round $round/$rounds done" >&2
done

echo "machine: $(nproc) cores, kernel $(uname -r); $rounds rounds of ${secs}s"
python3 - "$results" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    round_, name, workload, rate = line.split()
    rates[(workload, name, round_)] = float(rate)
rounds = sorted({key[2] for key in rates})
print(f"{'workload':14} {'server':16} {'median/s':>12} {'ratio':>6} {'min':>6} {'max':>6}")
for workload in ("pingpong-1", "pingpong-100", "callsoon"):
    for name in ("c", "rust-callbacks", "rust-async"):
        mine = [rates[(workload, name, r)] for r in rounds if (workload, name, r) in rates]
        if not mine:
            continue
        ratios = [rates[(workload, name, r)] / rates[(workload, "c", r)] for r in rounds if (workload, name, r) in rates]
        print(f"{workload:14} {name:16} {statistics.median(mine):12.0f} {statistics.median(ratios):6.2f}"
              f" {min(ratios):6.2f} {max(ratios):6.2f}")
PY
