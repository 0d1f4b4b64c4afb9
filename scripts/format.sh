#!/usr/bin/env bash
# Formats the C and C++ sources with clang-format (the style is .clang-format
# at the root): src/, include/, examples/ and bindings/cpp/. tests/ and
# bench/ are not formatted (yet).
#   scripts/format.sh          rewrites the files in place
#   scripts/format.sh --check  changes nothing; lists every difference and
#                              exits non-zero if there is one (CI runs this)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

mode=(-i)
case "${1-}" in
  --check) mode=(--dry-run -Werror) ;;
  "") ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

# Build directories are at the root, outside these.
find src include examples bindings/cpp -type f \( -name '*.[ch]' -o -name '*.[ch]pp' \) -print0 | sort -z |
  xargs -0 -n 16 -P 2 clang-format --style=file "${mode[@]}"
