#!/usr/bin/env bash
# Instructions per operation of every row of run.sh, for the Lua binding and
# for luv, under valgrind --tool=callgrind (deterministic, so it decides
# where load makes wall clock noisy):
#   chain, idle, fanout, timers  the workload at N=100000 less the same at
#                                N=1, over the difference in operations
#   echo-1, echo-100             the echo server under callgrind while
#                                loadgen runs pingpong, less the same server
#                                started and stopped with no client, over
#                                loadgen's round trips
# luv's chain is counted for both its variants (idle restarted with the next
# function, timer(0)); the row takes the cheaper.
#
# usage: bindings/lua/bench/count.sh [BUILD_DIR]   env: SECONDS_PER_RUN=4
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build}
secs=${SECONDS_PER_RUN:-4}
export LUA_CPATH="$build/bindings/lua/?.so;;"
[ -f "$build/bindings/lua/async.so" ] || { echo "build the module first: ninja -C $build" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/loadgen" "$root/bench/loadgen.c" -lpthread
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Ir of one command under callgrind (its output in $tmp/run.out)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" >"$tmp/run.out" 2>"$tmp/vg.err"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/vg.err"
}
ops_of() { sed -n 's/^RESULT .* ops=\([0-9]*\) .*/\1/p' "$tmp/run.out"; }

per_op() { # lib bench [variant]
  local i1 o1 i2 o2
  i1=$(N=1 count lua5.4 "$here/workloads.lua" "$@"); o1=$(ops_of)
  i2=$(N=100000 count lua5.4 "$here/workloads.lua" "$@"); o2=$(ops_of)
  echo $(((i2 - i1) / (o2 - o1)))
}

echo_per_rt() { # lib conns
  local lib=$1 conns=$2 port pid i0 i1 ops
  serve() { # port: the server under callgrind until SIGTERM; prints its Ir
    valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 "$here/workloads.lua" "$lib" echo "$1" \
      >"$tmp/server.out" 2>"$tmp/server.err" &
    pid=$!
    for _ in $(seq 600); do grep -q READY "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done
    grep -q READY "$tmp/server.out" || { echo "the $lib echo server did not start" >&2; exit 1; }
  }
  : >"$tmp/server.out"; port=$(free_port); serve "$port"
  kill -TERM "$pid"; wait "$pid"
  i0=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/server.err")
  : >"$tmp/server.out"; port=$(free_port); serve "$port"
  ops=$("$tmp/loadgen" pingpong "$port" "$conns" 64 "$secs" | sed -n 's/.* ops=\([0-9]*\) .*/\1/p')
  kill -TERM "$pid"; wait "$pid"
  i1=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/server.err")
  echo $(((i1 - i0) / ops))
}

printf '| %-28s | %12s | %12s | %5s |\n' "instructions per operation" async luv ratio
printf '|%s|%s|%s|%s|\n' "------------------------------" "--------------" "--------------" "-------"
row() { # name async luv
  printf '| %-28s | %12s | %12s | %4.2fx |\n' "$1" "$2" "$3" "$(python3 -c "print($3 / $2)")"
}
a=$(per_op async chain); li=$(per_op luv chain idle); lt=$(per_op luv chain timer)
row "chain (luv: idle $li, timer(0) $lt)" "$a" "$((li < lt ? li : lt))"
row idle "$(per_op async idle)" "$(per_op luv idle)"
row fanout "$(per_op async fanout)" "$(per_op luv fanout)"
row timers "$(per_op async timers)" "$(per_op luv timers)"
row echo-1 "$(echo_per_rt async 1)" "$(echo_per_rt luv 1)"
row echo-100 "$(echo_per_rt async 100)" "$(echo_per_rt luv 100)"
