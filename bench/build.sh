# Sourced by the bench/run*.sh scripts: goes to the repository root and
# builds the benchmarks as a release build in $build (BUILD_DIR, default
# build-bench), unless SKIP_BUILD is set; $bin is where they are.
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
