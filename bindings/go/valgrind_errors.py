#!/usr/bin/env python3
"""The go_valgrind leg's verdict (valgrind.sh): reads memcheck's XML report
of the Go test binary and fails on the errors that are the library's.

Every error whose innermost frame is Go code (the test binary) is dropped,
whatever its kind: valgrind cannot follow Go's stacks and memory (see
valgrind.supp), and the Go runtime's own system calls on Go memory (read,
openat, getrandom, ... each named differently by valgrind) would otherwise
need a suppression per call. Errors in C code (libasync, libc) and definite
or indirect leaks fail the run, as --error-exitcode would.

usage: valgrind_errors.py REPORT.xml
"""
import sys
import xml.etree.ElementTree as ET

FAILING_LEAKS = ("Leak_DefinitelyLost", "Leak_IndirectlyLost")


def frames(error):
    stack = error.find("stack")
    return [] if stack is None else stack.findall("frame")


def is_library_error(error):
    kind = error.findtext("kind", "")
    if kind.startswith("Leak_"):
        return kind in FAILING_LEAKS
    top = frames(error)
    return not (top and top[0].findtext("obj", "").endswith("/async.test"))


def describe(error):
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    lines = [f"{error.findtext('kind')}: {what}"]
    for f in frames(error)[:12]:
        where = f.findtext("fn") or f.findtext("obj") or f.findtext("ip")
        if f.findtext("file"):
            where += f" ({f.findtext('file')}:{f.findtext('line')})"
        lines.append(f"    at {where}")
    return "\n".join(lines)


def main():
    errors = [e for e in ET.parse(sys.argv[1]).getroot().iter("error") if is_library_error(e)]
    for e in errors:
        print(describe(e), file=sys.stderr)
    print(f"valgrind: {len(errors)} error(s) in C code or leaks", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
