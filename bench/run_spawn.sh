#!/usr/bin/env bash
# Subprocess benchmark: libasync's async_process against libuv's uv_spawn,
# interleaved (each round runs both back to back, in a rotated order, so
# host-load drift hits both alike): spawn + wait of /bin/true (N in a row,
# spawns/s) and 64 MiB through one cat (MiB/s), libasync's stdio streams
# over ASYNC_STDIO_PIPE (socketpairs, libuv's transport too) and over
# ASYNC_STDIO_FIFO (pipe(2)s), libuv's over its socketpairs both times.
# Prints each library's median and the median of the per-round ratios
# libasync / libuv, and for the cat rows the median CPU time of the parent
# and its cat together per MiB (getrusage), which host load disturbs less.
#
# usage: bench/run_spawn.sh     env: ROUNDS=7 SPAWNS=2000 SKIP_BUILD=1
set -euo pipefail
# shellcheck source=bench/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/build.sh"
rounds=${ROUNDS:-7}
spawns=${SPAWNS:-2000}
echo "machine: $(nproc) cores, kernel $(uname -r), load average $(cut -d' ' -f1 /proc/loadavg); $rounds rounds"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for w in "true true rate spawns/s" "cat cat mibps MiB/s" "catfifo cat mibps MiB/s"; do
  read -r mode uv_mode key unit <<<"$w"
  a_all=() u_all=() ratios=() a_cpu=() u_cpu=()
  for ((round = 0; round < rounds; round++)); do
    order=(async uv)
    if ((round % 2)); then order=(uv async); fi
    for lib in "${order[@]}"; do
      if [[ $lib == async ]]; then m=$mode; else m=$uv_mode; fi
      line=$("$bin/spawn_$lib" "$m" "$spawns" | grep '^RESULT ')
      value=$(sed -E "s/.* $key=([0-9.]+).*/\1/" <<<"$line")
      # CPU of the parent and the child together per MiB (the cat rows).
      cpu=$(sed -nE 's/.* cpu_us_per_mib=([0-9.]+).*/\1/p' <<<"$line")
      if [[ $lib == async ]]; then
        a=$value
        [[ -z $cpu ]] || a_cpu+=("$cpu")
      else
        u=$value
        [[ -z $cpu ]] || u_cpu+=("$cpu")
      fi
    done
    a_all+=("$a") u_all+=("$u")
    ratios+=("$(awk -v a="$a" -v u="$u" 'BEGIN { printf "%.3f", a / u }')")
  done
  printf '%-10s libasync %8s %s  libuv %8s %s  ratio (median of rounds) %s\n' "$mode" \
    "$(printf '%s\n' "${a_all[@]}" | median)" "$unit" "$(printf '%s\n' "${u_all[@]}" | median)" "$unit" \
    "$(printf '%s\n' "${ratios[@]}" | median)"
  if ((${#a_cpu[@]})); then
    printf '%-10s CPU (parent + child, median) libasync %s us/MiB  libuv %s us/MiB\n' "$mode" \
      "$(printf '%s\n' "${a_cpu[@]}" | median)" "$(printf '%s\n' "${u_cpu[@]}" | median)"
  fi
done
