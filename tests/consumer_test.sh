#!/bin/bash
# Out-of-tree consumer test: what a user of an installed libasync does.
#
#   tests/consumer_test.sh BUILD_DIR EXAMPLE_C PREFIX LIBDIR [EXTRA_CFLAGS...]
#
# Stages `meson install` of BUILD_DIR into a temporary DESTDIR, compiles
# EXAMPLE_C with `cc $(pkg-config --cflags --libs libasync)` (a .cpp file
# with `c++ -std=c++20`) against the staged .pc file, runs it against the
# staged library (it must exit 0), and
# checks that `pkg-config --libs --static libasync` lists -lev and -lstdc++.
# EXTRA_CFLAGS are for sanitized builds (-fsanitize=...). The temporary
# directory is removed on exit.
set -euo pipefail

usage="usage: consumer_test.sh BUILD_DIR EXAMPLE_C PREFIX LIBDIR [EXTRA_CFLAGS...]"
build=${1:?$usage}
example=${2:?$usage}
prefix=${3:?$usage}
libdir=${4:?$usage}
shift 4
extra_cflags=("$@")

# LIBDIR is relative to PREFIX unless absolute.
case $libdir in
  /*) ;;
  *) libdir=$prefix/$libdir ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage

echo "# meson install --destdir $stage"
meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"
  echo "consumer: meson install failed"
  exit 1
}

pcdir=$stage$libdir/pkgconfig
if [ ! -f "$pcdir/libasync.pc" ]; then
  echo "consumer: no libasync.pc under $pcdir"
  exit 1
fi
for h in async.h async/common.h async/version.h async/future.h; do
  if [ ! -f "$stage$prefix/include/$h" ]; then
    echo "consumer: header $h was not installed under $stage$prefix/include"
    exit 1
  fi
done

# The staged .pc says prefix=$prefix; point it at the staging directory.
pc() {
  PKG_CONFIG_PATH=$pcdir pkg-config --define-variable=prefix="$stage$prefix" "$@" libasync
}

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }

cflags=$(pc --cflags)
libs=$(pc --libs)
echo "# pkg-config --cflags --libs libasync: $cflags $libs"
# shellcheck disable=SC2086  # word splitting of pkg-config output is intended
# A C++ example (the C++20 binding's header) builds with c++.
compiler=(cc)
case $example in *.cpp) compiler=(c++ -std=c++20) ;; esac
if "${compiler[@]}" -o "$tmp/consumer" "$example" $cflags $libs ${extra_cflags[@]+"${extra_cflags[@]}"} \
  2>"$tmp/cc.log"; then
  ok "compiled $(basename "$example") with pkg-config flags"
else
  cat "$tmp/cc.log"
  not_ok "compiled $(basename "$example") with pkg-config flags"
fi

if [ -x "$tmp/consumer" ]; then
  # Make sure the staged library, not another installed copy, is the one used.
  resolved=$(LD_LIBRARY_PATH=$stage$libdir ldd "$tmp/consumer" | awk '/libasync\.so/ {print $3}')
  case $resolved in
    "$stage"/*) ok "consumer resolves libasync.so.0 to the staged copy" ;;
    *) not_ok "consumer resolves libasync.so.0 to '$resolved', not the staged copy" ;;
  esac
  if LD_LIBRARY_PATH=$stage$libdir "$tmp/consumer" >"$tmp/run.log" 2>&1; then
    ok "consumer ran and exited 0"
  else
    rc=$?
    cat "$tmp/run.log"
    not_ok "consumer exited $rc"
  fi
fi

static_libs=$(pc --libs --static)
echo "# pkg-config --libs --static libasync: $static_libs"
for lib in -lev -lstdc++; do
  if printf ' %s ' "$static_libs" | grep -q -- " $lib "; then
    ok "static link flags list $lib"
  else
    not_ok "static link flags lack $lib"
  fi
done

echo "consumer: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
