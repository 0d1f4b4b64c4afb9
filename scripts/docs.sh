#!/usr/bin/env bash
# The API reference: runs doxygen (docs/Doxyfile) over the headers listed in
# its INPUT and writes HTML to OUTDIR/html (default build/docs). Fails, after
# printing every finding, if doxygen warns at all, or if a listed header has
# no @file comment (doxygen would skip its members silently) or an ASYNC_API
# function whose comment lacks one of @ownership, @thread and @callbacks
# (docs/api-style.md, docs/testing.md "API reference").
# `ninja -C build docs` and the meson test 'doxygen' (suite 'docs') run it.
#   scripts/docs.sh [OUTDIR]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

out=${1:-build/docs}
if ! command -v doxygen >/dev/null; then
  echo "docs.sh: doxygen not found (Debian package doxygen, in scripts/packages.txt)" >&2
  exit 1
fi
# The INPUT list of docs/Doxyfile: from "INPUT =" to the line without a
# trailing backslash.
mapfile -t headers < <(sed -n '/^INPUT[[:space:]]*=/,/[^\\]$/p' docs/Doxyfile |
  sed -e 's/^INPUT[[:space:]]*=//' -e 's/\\$//' | tr -s ' \t' '\n' | sed '/^$/d')
if [ "${#headers[@]}" -eq 0 ]; then
  echo "docs.sh: no INPUT in docs/Doxyfile" >&2
  exit 1
fi
# Every public header is in the reference: a new one must join INPUT.
for header in include/async/*.h; do
  if ! printf '%s\n' "${headers[@]}" | grep -qxF "$header"; then
    echo "docs.sh: $header is not in docs/Doxyfile's INPUT" >&2
    exit 1
  fi
done
# Each function's comment is the last /** ... */ block before its
# declaration.
if ! awk '
  FNR == 1 { if (NR > 1 && !seen_file) { print prev ": no @file comment"; bad = 1 } seen_file = 0; block = "" }
  /@file/ { seen_file = 1 }
  /^\/\*\*/ { block = ""; in_block = 1 }
  in_block { block = block $0 "\n" }
  in_block && /\*\// { in_block = 0 }
  /^ASYNC_API/ {
    for (i = 1; i <= 3; i++) {
      tag = i == 1 ? "@ownership" : i == 2 ? "@thread" : "@callbacks"
      if (index(block, tag) == 0) { print FILENAME ":" FNR ": " tag " missing: " $0; bad = 1 }
    }
    block = ""
  }
  { prev = FILENAME }
  END { if (!seen_file) { print prev ": no @file comment"; bad = 1 } exit bad }
' "${headers[@]}"; then
  echo "docs.sh: comments out of the structure of docs/api-style.md"
  exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
# The Doxyfile's settings, the output directory appended (a later setting wins).
if ! { cat docs/Doxyfile && echo "OUTPUT_DIRECTORY = \"$out\""; } | doxygen - >"$out/doxygen.log" 2>&1; then
  cat "$out/doxygen.log"
  echo "docs.sh: doxygen warned (fix the comments: docs/api-style.md)"
  exit 1
fi
if [ -s "$out/doxygen.log" ]; then
  # A message on a run that did not fail is a warning too.
  cat "$out/doxygen.log"
  echo "docs.sh: doxygen printed messages"
  exit 1
fi
echo "docs.sh: $out/html/index.html"
