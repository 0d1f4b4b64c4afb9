#!/usr/bin/env bash
# A first look at libasync on a fresh Debian 12 machine (as root): installs
# the packages it needs, builds build/, and runs the examples one by one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

# shellcheck disable=SC2119  # no --ci: the demo installs only what is missing
la_ensure_packages
la_heading "building libasync in build/"
la_build_main

# name|arguments|what it shows
tour=(
  "timers||an idle timeout that slides forward with async_timer_again()"
  "graceful_shutdown|--self-test|SIGINT/SIGTERM as loop callbacks; stop the work, close every handle, exit 0"
  "future_chain||a future resolved by a timer, a second step in its done callback, async_future_timeout()"
  "worker_thread||a thread of your own posts results to the loop with async_loop_post()"
  "resolve|localhost 127.0.0.1 fe80::1%lo|async_getaddrinfo() for several names at once (these need no DNS server)"
  "echo_server|--self-test|a TCP server whose connections echo; a client on the same loop checks it"
  "chat_server|--self-test|a line-based chat: one client speaks, the other hears"
  "http_hello|--self-test|HTTP/1.1 keep-alive: two pipelined requests answered"
  "reconnect_client|--self-test|a client that stays connected: the server drops it, goes away, comes back"
)
for entry in "${tour[@]}"; do
  IFS='|' read -r name args what <<<"$entry"
  la_heading "examples/$name.c: $what"
  # shellcheck disable=SC2086  # args is a list of words
  "build/examples/$name" $args
done
la_heading "done: the sources are in examples/, the API in include/async/*.h"
