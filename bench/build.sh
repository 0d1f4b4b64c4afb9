# Sourced by the bench/*.sh scripts: goes to the repository root and
# builds the benchmarks as a release build in $build (BUILD_DIR, default
# build-bench), unless SKIP_BUILD is set; $bin is where they are. Also
# defines running PID (true while that child process runs) and free_port
# (a free TCP port on 127.0.0.1).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}
if [[ -z ${SKIP_BUILD:-} ]]; then
  opts=(-Dbench=true -Dtests=false --buildtype=release)
  if [[ -f $build/build.ninja ]]; then
    meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
  else
    meson setup "$build" "${opts[@]}" >/dev/null
  fi
  ninja -C "$build" >/dev/null
fi
bin=$build/bench

# True while process $1 runs (it is a child: once it exits, it is a zombie until waited for).
running() { [[ -r /proc/$1/stat && $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
