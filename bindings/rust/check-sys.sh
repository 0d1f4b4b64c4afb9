#!/bin/sh
# Fails when the committed raw layer differs from what bindgen makes of the
# headers now: run gen-sys.sh and commit its output after a header change.
#   check-sys.sh SOURCE_INCLUDE_DIR BUILD_INCLUDE_DIR COMMITTED_SYS_RS
set -eu
here=$(dirname "$0")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$here/gen-sys.sh" "$1" "$2" "$out/sys.rs"
if ! diff -u "$3" "$out/sys.rs"; then
  echo "FAIL: $3 is stale: run bindings/rust/gen-sys.sh $1 $2 $3"
  exit 1
fi
echo "OK: $3 matches the headers"
