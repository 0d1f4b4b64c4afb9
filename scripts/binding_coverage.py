#!/usr/bin/env python3
"""Checks that a language binding covers the whole C API.

    binding_coverage.py --headers include/async --skip SKIP_FILE
                        [--exclude PATH ...] SOURCE_PATH [SOURCE_PATH ...]

Every function declared ASYNC_API in HEADERS/*.h must either appear, as a
whole word, in one of the binding's source files (SOURCE_PATH: files, or
directories searched recursively), or be named in SKIP_FILE with a reason.
--exclude leaves out generated code (a raw layer that declares every
function would otherwise count as binding it).

SKIP_FILE has one entry per line, "async_name: the reason it is not bound";
'#' starts a comment. An entry fails the check when its reason is empty, when
it names no exported function, or when the binding calls the function after
all: the list must stay true as the binding grows.

Prints one line per finding and a summary; exits 1 on any finding.
"""
import argparse
import os
import re
import sys

DECLARATION = re.compile(r"^ASYNC_API\b[^(]*?\b(async_\w+)\s*\(", re.MULTILINE)
WORD = re.compile(r"\basync_\w+")


def exported_functions(header_dir):
    names = set()
    for entry in sorted(os.listdir(header_dir)):
        if entry.endswith(".h"):
            with open(os.path.join(header_dir, entry), encoding="utf-8") as header:
                names.update(DECLARATION.findall(header.read()))
    return names


def source_files(paths, excluded):
    excluded = {os.path.realpath(p) for p in excluded}
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) not in excluded]
            for name in files:
                full = os.path.join(root, name)
                if os.path.realpath(full) not in excluded:
                    yield full


def used_names(paths, excluded):
    names = set()
    for path in source_files(paths, excluded):
        try:
            with open(path, encoding="utf-8") as source:
                names.update(WORD.findall(source.read()))
        except UnicodeDecodeError:
            continue  # a binary file (a compiled object) binds nothing
    return names


def skip_entries(skip_file, problems):
    entries = {}
    with open(skip_file, encoding="utf-8") as skips:
        for number, line in enumerate(skips, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, reason = line.partition(":")
            name, reason = name.strip(), reason.strip()
            if not reason:
                problems.append(f"{skip_file}:{number}: {name} has no reason")
            entries[name] = reason
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", required=True)
    parser.add_argument("--skip", required=True)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("sources", nargs="+")
    args = parser.parse_args()

    problems = []
    exported = exported_functions(args.headers)
    if not exported:
        problems.append(f"no ASYNC_API function found in {args.headers}")
    used = used_names(args.sources, args.exclude)
    skipped = skip_entries(args.skip, problems)

    for name in sorted(exported - used - skipped.keys()):
        problems.append(f"{name}: neither bound nor listed in {args.skip}")
    for name in sorted(skipped.keys() - exported):
        problems.append(f"{name}: listed in {args.skip} but not an exported function")
    for name in sorted(skipped.keys() & used):
        problems.append(f"{name}: listed in {args.skip} but the binding uses it")

    for problem in problems:
        print(f"not ok - {problem}")
    bound = len(exported & used)
    print(f"# {bound} bound, {len(exported & skipped.keys())} listed with a reason, "
          f"{len(exported)} exported; {len(problems)} finding(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
