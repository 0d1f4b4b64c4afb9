#!/bin/sh
# Runs the crate's cargo commands for `meson test` with Debian's toolchain
# (/usr/bin/cargo, RUSTC=/usr/bin/rustc, RUSTDOC=/usr/bin/rustdoc: what a
# fresh Debian 12 has), no network, CARGO_HOME and the target directory
# inside the build directory, linked through Meson's uninstalled pkg-config
# file, loading build/src.
#   cargo.sh test|valgrind|examples|build-release BUILD_ROOT [ARGS...]
set -eu
action=$1
build_root=$(cd "$2" && pwd)
shift 2
crate=$(cd "$(dirname "$0")" && pwd)
export CARGO_HOME="$build_root/bindings/rust/cargo-home"
export CARGO_TARGET_DIR="$build_root/bindings/rust/target"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export PKG_CONFIG_PATH="$build_root/meson-uninstalled"
export LD_LIBRARY_PATH="$build_root/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_TARGET
cargo="/usr/bin/cargo"
manifest="--manifest-path=$crate/Cargo.toml"

case $action in
test)
  exec "$cargo" test --offline "$manifest" -- --test-threads=2
  ;;
valgrind)
  # Every test binary (unit and integration) under valgrind, one thread.
  "$cargo" test --offline "$manifest" --no-run 2>"$CARGO_TARGET_DIR.valgrind.log" || {
    cat "$CARGO_TARGET_DIR.valgrind.log" >&2
    exit 1
  }
  binaries=$(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$CARGO_TARGET_DIR.valgrind.log")
  [ -n "$binaries" ] || { echo "FAIL: no test binary found" >&2; exit 1; }
  for binary in $binaries; do
    echo "valgrind $binary"
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --show-leak-kinds=definite,indirect "$binary" --test-threads=1 -q
  done
  ;;
examples)
  # Each example is bounded by its own timeouts; ARGS name them. Linked
  # through LIBASYNC_LIB_DIR, without pkg-config (the tests use
  # pkg-config): both routes of build.rs are exercised.
  unset PKG_CONFIG_PATH
  export LIBASYNC_LIB_DIR="$build_root/src"
  for example in "$@"; do
    echo "example $example"
    "$cargo" run --offline "$manifest" --quiet --example "$example"
  done
  ;;
build-release)
  exec "$cargo" build --offline "$manifest" --release --quiet --examples
  ;;
*)
  echo "usage: cargo.sh test|valgrind|examples|build-release BUILD_ROOT [ARGS...]" >&2
  exit 2
  ;;
esac
