#!/bin/bash
# README.md's quick start, exactly as written: what a new user does right
# after ./scripts/demo.sh.
#
#   tests/readme_quickstart.sh README_MD BUILD_DIR [EXTRA_CFLAGS...]
#
# Takes the first ```c block of the "## Quick start" section as
# quickstart.c and the first ```sh block after it as the commands, and runs
# those commands with /bin/sh -e in a temporary directory laid out like the
# repository root after the demo: quickstart.c, and build/ (a symbolic link
# to BUILD_DIR). The commands must build and run the program, and it must
# exit 0. Nothing is installed.
#
# EXTRA_CFLAGS are for sanitized builds (-fsanitize=...), whose library
# links only into a program built with the same flags: they are added by a
# `cc` wrapper put first in PATH, so the README's commands stay as written.
set -euo pipefail

usage="usage: readme_quickstart.sh README_MD BUILD_DIR [EXTRA_CFLAGS...]"
readme=${1:?$usage}
build=${2:?$usage}
shift 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The section runs from its heading to the next "## " heading.
awk -v c="$tmp/quickstart.c" -v sh="$tmp/commands.sh" '
  /^## / { in_section = ($0 == "## Quick start") }
  !in_section { next }
  block == "" && !done_c && /^```c$/ { block = c; next }
  block == "" && done_c && !done_sh && /^```sh$/ { block = sh; next }
  block != "" && /^```$/ { if (block == c) done_c = 1; else done_sh = 1; block = ""; next }
  block != "" { print > block }
' "$readme"
for f in quickstart.c commands.sh; do
  if [ ! -s "$tmp/$f" ]; then
    echo "readme_quickstart: no $f block in the Quick start section of $readme"
    exit 1
  fi
done

ln -s "$(cd "$build" && pwd)" "$tmp/build"
if [ "$#" -gt 0 ]; then
  mkdir "$tmp/bin"
  printf '#!/bin/sh\nexec %s "$@"' "$(command -v cc)" >"$tmp/bin/cc"
  printf ' %q' "$@" >>"$tmp/bin/cc"
  echo >>"$tmp/bin/cc"
  chmod +x "$tmp/bin/cc"
  PATH=$tmp/bin:$PATH
  echo "# cc adds: $*"
fi

echo "# in a directory holding quickstart.c and build/ ($build):"
sed 's/^/#   /' "$tmp/commands.sh"
cd "$tmp"
# A clean environment, as on a new machine (meson test sets LD_LIBRARY_PATH).
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR LD_LIBRARY_PATH
if /bin/sh -e commands.sh; then
  echo "readme_quickstart: the quick start built and ran"
else
  rc=$?
  echo "readme_quickstart: the quick start failed (exit $rc)"
  exit 1
fi
