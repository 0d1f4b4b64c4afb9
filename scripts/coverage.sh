#!/usr/bin/env bash
# Line and branch coverage of src/ by the unit suite (docs/testing.md):
#   1. builds build-cov/ (-O0, -Db_coverage=true: gcc's gcov counters)
#   2. runs the unit suite there on fresh counters (extra arguments go to
#      `meson test`, e.g. `scripts/coverage.sh test_timer` for one test)
#   3. prints line and branch coverage of src/ per file, per directory and
#      in total; writes the annotated sources to build-cov/coverage/index.html
#      and the uncovered line numbers to build-cov/coverage/missing.txt
# Branches the compiler adds for exceptions and branches it proves
# unreachable are left out (gcovr --exclude-throw-branches
# --exclude-unreachable-branches). Not part of scripts/test.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LIBASYNC_ROOT"

la_ensure_packages

la_heading "build-cov/: build with coverage counters"
la_build build-cov -Db_coverage=true -Dbuildtype=debug -Dbench=false -Dexamples=false

la_heading "unit suite"
find build-cov -name '*.gcda' -delete
tests_rc=0
meson test -C build-cov --suite unit --print-errorlogs "$@" || tests_rc=$?

la_heading "coverage of src/"
out=build-cov/coverage
rm -rf "$out"
mkdir -p "$out"
gcovr --root "$LIBASYNC_ROOT" --filter "$LIBASYNC_ROOT/src/" \
  --exclude-throw-branches --exclude-unreachable-branches \
  --json-summary "$out/summary.json" --txt "$out/missing.txt" \
  --html-details "$out/index.html" --html-title "libasync: coverage of src/ by the unit suite" \
  build-cov
python3 - "$out/summary.json" <<'PY'
import json, os, sys
from collections import defaultdict

summary = json.load(open(sys.argv[1]))

def pct(hit, total):
    return f"{100.0 * hit / total:5.1f} %" if total else "    - "

def row(name, s):
    print(f"{name:<34} {s['lc']:>5}/{s['lt']:<5} {pct(s['lc'], s['lt'])}"
          f"   {s['bc']:>5}/{s['bt']:<5} {pct(s['bc'], s['bt'])}")

def header(title):
    print(f"\n{title:<34} {'lines':^19}   {'branches':^19}")

dirs = defaultdict(lambda: dict(lc=0, lt=0, bc=0, bt=0))
header("file")
for f in sorted(summary["files"], key=lambda f: f["filename"]):
    s = dict(lc=f["line_covered"], lt=f["line_total"], bc=f["branch_covered"], bt=f["branch_total"])
    row(f["filename"], s)
    for k, v in s.items():
        dirs[os.path.dirname(f["filename"]) + "/"][k] += v
header("directory")
for d in sorted(dirs):
    row(d, dirs[d])
header("")
row("total", dict(lc=summary["line_covered"], lt=summary["line_total"],
                  bc=summary["branch_covered"], bt=summary["branch_total"]))
PY
echo
echo "uncovered lines: $out/missing.txt"
echo "annotated sources: $out/index.html"
if [ "$tests_rc" -ne 0 ]; then
  echo "some tests failed: the figures above miss what they did not run" >&2
fi
exit "$tests_rc"
