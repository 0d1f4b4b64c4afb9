#!/usr/bin/env bash
# Runs clang-tidy (checks: .clang-tidy at the root) over every .cpp of src/,
# two at a time, with the compile database of a Meson build directory
# (default build/; configured here if it has none). Headers of src/ are
# checked through the .cpp files that include them. Prints each finding
# once, then the count; exits non-zero on any finding (WarningsAsErrors).
#   scripts/tidy.sh [BUILD_DIR]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

dir=${1:-build}
if [ ! -f "$dir/compile_commands.json" ]; then
  meson setup "$dir" -Dbench=false
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# One log per source file, so the two jobs' output does not interleave.
# shellcheck disable=SC2016 # expanded by the inner sh, not here
find src -name '*.cpp' -print0 | sort -z |
  xargs -0 -n 1 -P 2 sh -c \
    'clang-tidy -p "$1" --quiet "$3" >"$2/$(printf %s "$3" | tr / _).log" 2>&1 || printf "%s\n" "$3" >>"$2/failed"' \
    tidy "$dir" "$logs" || true

# A header's finding repeats in each .cpp that includes it: print it once,
# with its context, under a path relative to the root.
cat "$logs"/*.log | grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' |
  sed -E 's#^[^ :]*/(src|include)/#\1/#' |
  awk '/^[^ ]+:[0-9]+:[0-9]+: (error|warning): / { key = $0; show = !(key in seen); seen[key] = 1 } show' || true

# grep finds nothing on a clean tree: that is no error here.
findings=$(cat "$logs"/*.log | sed -E 's#^[^ :]*/(src|include)/#\1/#' |
  { grep -E '^[^ ]+:[0-9]+:[0-9]+: (error|warning): ' || true; } | sort -u | wc -l)
files=$(find src -name '*.cpp' | wc -l)
echo "clang-tidy: $findings findings in $files files of src/"
if [ -f "$logs/failed" ] || [ "$findings" -ne 0 ]; then
  exit 1
fi
