#!/bin/bash
# ABI hygiene of the built shared library (DESIGN.md §2.7, bindings.md §9.1).
#
#   tests/abi_check.sh LIBASYNC_SO INCLUDE_DIR
#
# Checks:
#   1. every defined dynamic symbol is async_* (plus the version node
#      LIBASYNC_0) and every async_* symbol is versioned @@LIBASYNC_0;
#   2. the exported async_* functions are exactly the ASYNC_API functions
#      declared in INCLUDE_DIR/async/*.h;
#   3. SONAME is libasync.so.0;
#   4. the library does not reference pthread_create (it creates no thread).
set -euo pipefail

lib=${1:?usage: abi_check.sh LIBASYNC_SO INCLUDE_DIR}
incdir=${2:?usage: abi_check.sh LIBASYNC_SO INCLUDE_DIR}
node=LIBASYNC_0
soname=libasync.so.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
  echo "not ok - $1"
  shift
  for line in "$@"; do echo "#   $line"; done
  failed=$((failed + 1))
}

# nm -D prints "ADDR TYPE NAME[@@NODE]"; the version node itself is an A symbol.
nm -D --defined-only "$lib" | awk '{print $NF}' | sort >"$tmp/defined"

# 1. Only async_* and the version node, every async_* in the node.
bad=$(grep -v -e '^async_' -e "^${node}\$" "$tmp/defined" || true)
if [ -z "$bad" ]; then
  ok "every exported symbol starts with async_"
else
  # shellcheck disable=SC2086
  not_ok "symbols outside the async_ namespace are exported" $bad
fi
if grep -qx "$node" "$tmp/defined"; then
  ok "version node $node is defined"
else
  not_ok "version node $node is missing"
fi
unversioned=$(grep '^async_' "$tmp/defined" | grep -v "@@${node}\$" || true)
if [ -z "$unversioned" ]; then
  ok "every async_ symbol is versioned @@$node"
else
  # shellcheck disable=SC2086
  not_ok "async_ symbols outside version node $node" $unversioned
fi

# 2. Exports == ASYNC_API declarations. A declaration is a line starting with
# ASYNC_API; the function name is the identifier right before the first '('.
grep '^async_' "$tmp/defined" | sed 's/@.*//' | sort -u >"$tmp/exported"
cat "$incdir"/async/*.h |
  sed -n 's/^ASYNC_API[^(]*[^A-Za-z0-9_]\(async_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
  sort -u >"$tmp/declared"
# Every ASYNC_API use other than the macro definition must have been parsed.
uses=$(cat "$incdir"/async/*.h | grep -c '^ASYNC_API' || true)
all_uses=$(cat "$incdir"/async/*.h | grep 'ASYNC_API' | grep -vc -e '^#' -e '^[[:space:]]*/\?\*' || true)
if [ "$uses" -eq "$(wc -l <"$tmp/declared")" ] && [ "$uses" -eq "$all_uses" ] && [ "$uses" -gt 0 ]; then
  ok "parsed $uses ASYNC_API declarations"
else
  not_ok "could not parse every ASYNC_API declaration" \
    "lines starting with ASYNC_API: $uses, other ASYNC_API lines: $((all_uses - uses))," \
    "names parsed: $(wc -l <"$tmp/declared") (declare one function per line, starting with ASYNC_API)"
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -z "$missing" ]; then
  ok "every declared ASYNC_API function is exported ($(wc -l <"$tmp/declared"))"
else
  # shellcheck disable=SC2086
  not_ok "declared in include/async/*.h but not exported" $missing
fi
if [ -z "$extra" ]; then
  ok "every exported function is declared ASYNC_API ($(wc -l <"$tmp/exported"))"
else
  # shellcheck disable=SC2086
  not_ok "exported but not declared ASYNC_API in include/async/*.h" $extra
fi

# 3. SONAME.
got=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$got" = "$soname" ]; then
  ok "SONAME is $soname"
else
  not_ok "SONAME is '${got}', expected $soname"
fi

# 4. No thread creation.
if nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | grep -qx 'pthread_create'; then
  not_ok "the library references pthread_create"
else
  ok "the library does not reference pthread_create"
fi

echo "abi_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
