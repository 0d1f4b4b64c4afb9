#!/usr/bin/env bash
# The Go binding's benchmarks (bindings/go), against this release build of
# libasync:
# - cost per event through the completion queue against C→Go callbacks
#   (go test -bench Events);
# - TCP echo ping-pong, 64 B, 1 and 100 connections, driven by
#   bench/loadgen.c against the C server (echo_async), the Go server over
#   libasync (bindings/go/cmd/echo: go-async, a goroutine per connection;
#   go-loop, a Handler on the loop's goroutine) and the same Go server over
#   Go's net package (go-net), interleaved, ROUNDS rounds; medians and
#   the median of the per-round ratios to C (each round runs every server
#   once, back to back), with their range, and the server's CPU time (user
#   + system, every thread) per round trip.
# BASELINE=path/to/echo_go adds that build of cmd/echo (go-base: goroutine
# per connection) to each round, to compare a change of the binding.
# usage: bench/run_go.sh   env: ROUNDS=3 SECONDS_PER_RUN=2 SKIP_BUILD=1 BUILD_DIR=build-bench BASELINE=
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-3}
secs=${SECONDS_PER_RUN:-2}
export PKG_CONFIG_PATH=$root/$build/meson-uninstalled LD_LIBRARY_PATH=$root/$build/src
export GOCACHE=$root/$build/gocache GOPATH=$root/$build/gopath GOPROXY=off GOFLAGS=-mod=readonly
(cd bindings/go && go build -o "$root/$bin/echo_go" ./cmd/echo)
echo "== cost per event (go test -bench Events, $(go version | cut -d' ' -f3))"
(cd bindings/go && go test -run XXX -bench Events -benchtime 2000000x -count 3 . | grep '^Benchmark')

results=$(mktemp)
trap 'rm -f "$results"' EXIT
measure() { # server-name workload conns command...
  local name=$1 workload=$2 conns=$3 port out pid line ticks
  shift 3
  port=$(free_port)
  out=$(mktemp)
  "$@" "$port" >"$out" &
  pid=$!
  for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
  line=$("$bin/loadgen" pingpong "$port" "$conns" 64 "$secs" | grep '^RESULT ')
  # The server's CPU time (user + system, all threads) over the run.
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$out"
  echo "round=$r server=$name workload=$workload cpu_ticks=$ticks $line" >>"$results"
}
echo "== echo ping-pong, 64 B, $rounds rounds of ${secs}s"
for ((r = 0; r < rounds; r++)); do
  for conns in 1 100; do
    measure c "pingpong-$conns" "$conns" "$bin/echo_async"
    measure go-async "pingpong-$conns" "$conns" "$bin/echo_go"
    measure go-loop "pingpong-$conns" "$conns" "$bin/echo_go" -handler
    measure go-net "pingpong-$conns" "$conns" "$bin/echo_go" -net
    if [[ -n ${BASELINE:-} ]]; then measure go-base "pingpong-$conns" "$conns" "$BASELINE"; fi
    printf '.' >&2
  done
done
echo >&2
python3 - "$results" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
runs, cpu = {}, {}
for line in open(sys.argv[1]):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    runs.setdefault((f["workload"], f["server"]), {})[f["round"]] = float(f["ops_per_sec"])
    cpu.setdefault((f["workload"], f["server"]), []).append(
        float(f["cpu_ticks"]) / float(sys.argv[2]) * 1e6 / max(float(f["ops"]), 1))
print(f"{'workload':<14} {'server':<9} {'trips/s':>10} {'vs C':>6}  {'per-round ratios':<16} server CPU us/trip (median, range)")
for w in ("pingpong-1", "pingpong-100"):
    c = runs[(w, "c")]
    for s in ("c", "go-async", "go-loop", "go-net", "go-base"):
        if (w, s) not in runs:
            continue
        m = runs[(w, s)]
        ratios = sorted(m[r] / c[r] for r in m)
        u = sorted(cpu[(w, s)])
        print(f"{w:<14} {s:<9} {statistics.median(m.values()):>10.0f} {statistics.median(ratios):>6.2f}  {ratios[0]:.2f}-{ratios[-1]:.2f}{'':<7} {statistics.median(u):6.1f} ({u[0]:.1f}-{u[-1]:.1f})")
PY
