#!/bin/sh
# The umbrella header as a Rust binding generates it (bindgen, newtype
# enums: notes/bindings.md) must compile: an enum tag named as a function
# (two Rust items of one name) or an anonymous enum (_bindgen_ty_N, no
# name to use) fails here.
#   bindgen_check.sh SOURCE_INCLUDE_DIR BUILD_INCLUDE_DIR
set -eu
src_include=$1
build_include=$2
for tool in bindgen rustc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool not found (Debian package $tool, in scripts/packages.txt)" >&2
    exit 1
  fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bindgen "$src_include/async.h" --newtype-enum '.*' --allowlist-function 'async_.*' \
  --allowlist-type 'async_.*' --allowlist-var 'ASYNC_.*' --no-layout-tests -o "$out/sys.rs" \
  -- -I"$src_include" -I"$build_include"
if grep -n '_bindgen_ty_' "$out/sys.rs"; then
  echo "FAIL: an anonymous enum in the headers (above): give it a name"
  exit 1
fi
rustc --crate-type=lib --edition 2021 -A warnings -o "$out/libsys.rlib" "$out/sys.rs"
echo "OK: $(grep -c 'pub fn async_' "$out/sys.rs") functions, $(grep -c '^pub struct async_' "$out/sys.rs") types"
