#!/bin/sh
# The Go binding's valgrind leg (meson test go_valgrind): builds the test
# binary into OUT_DIR and runs every test under memcheck. valgrind.supp
# drops the errors valgrind reports in Go code (it cannot follow goroutine
# stacks); errors in C code and leaks of C memory fail the run.
#   valgrind.sh OUT_DIR      (from bindings/go, with the go suite's environment)
set -eu
go test -c -o "$1/async.test" .
exec valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --suppressions="$(dirname "$0")/valgrind.supp" -q "$1/async.test" -test.count=1
