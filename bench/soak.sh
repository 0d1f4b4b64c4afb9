#!/usr/bin/env bash
# Soak benchmark: a libasync server (bench/soak_server.c) and a libasync
# client process (bench/soak_client.c) churning CONNECTIONS connections over
# ::1 and 127.0.0.1 for DURATION seconds at RATE connections per second,
# both processes' RSS, fds and CPU sampled every 10 s. Prints the table, the
# baseline/min/max/deviation of RSS and fds after the warm-up, and
#   VERDICT PASS|FAIL   (PASS: flat within 5 %, no failed connection,
#                        both loops freed cleanly at the end)
# then the server's counters. Exits 0 on PASS.
#
# usage: bench/soak.sh [DURATION_S] [CONNECTIONS]   (defaults 600 and 10000)
# env: RATE (connections/s, default 3000), WARMUP (s, default 60, or a third
#      of the duration when shorter than 180 s), SKIP_BUILD=1, BUILD_DIR
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
duration=${1:-600}
connections=${2:-10000}
rate=${RATE:-3000}
if [[ -n ${WARMUP:-} ]]; then
  warmup=$WARMUP
elif ((duration < 180)); then
  warmup=$((duration / 3))
else
  warmup=60
fi

out=$(mktemp)
server_pid=
client_pid=
# On any exit (an error, ^C, SIGTERM): both processes go, the client first.
# shellcheck disable=SC2317  # called by the trap
stop_all() {
  local pid
  for pid in $client_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$out"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

"$bin/soak_server" "$connections" >"$out" &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^READY port=//p' "$out")
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || { echo "soak: the server did not start" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "libasync $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
# Bounded: the client stops itself at the duration; the timeout only guards against a hang.
timeout --kill-after=10 $((duration + 120)) \
  "$bin/soak_client" "$port" "$server_pid" "$connections" "$rate" "$duration" "$warmup" &
client_pid=$!
wait "$client_pid" || status=$?
client_pid=
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill -TERM "$server_pid"
server_status=0
for _ in $(seq 300); do running "$server_pid" || break; sleep 0.1; done
if running "$server_pid"; then
  echo "soak: the server did not stop within 30 s of SIGTERM" >&2
  server_status=1
else
  wait "$server_pid" || server_status=$?
fi
server_pid=
grep '^SERVER ' "$out" || true
if ((server_status != 0)); then
  echo "soak: the server failed its end-of-run checks (exit $server_status)" >&2
  status=1
fi
exit "$status"
