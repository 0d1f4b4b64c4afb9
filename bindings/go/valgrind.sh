#!/bin/sh
# The Go binding's valgrind leg (meson test go_valgrind): builds the test
# binary into OUT_DIR and runs every test under memcheck. The errors
# valgrind reports in Go code (it cannot follow goroutine stacks) are
# dropped; errors in C code and leaks of C memory fail the run.
# --undef-value-errors=no: valgrind loses the definedness of Go memory, so
# bytes handed from Go to C can look uninitialised anywhere (valgrind.supp
# says more). --fair-sched=yes as in scripts/test.sh: under valgrind's
# default lock a spinning thread can hold off the others for seconds, and
# the tests' deadlines (a 10 s read, a 5 s dial) then fail though nothing
# is lost (without it 2 runs in 8 failed so; with it, none in 14).
#   valgrind.sh OUT_DIR      (from bindings/go, with the go suite's environment)
# The verdict is valgrind_errors.py's: it drops every error whose
# innermost frame is Go code (the Go runtime's own system calls on Go
# memory, each named differently by valgrind, came up one new name in
# about 35 runs) and fails on the rest and on definite or indirect leaks.
set -eu
here=$(dirname "$0")
go test -c -o "$1/async.test" .
rm -f "$1/valgrind.xml"
valgrind --fair-sched=yes --undef-value-errors=no --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --suppressions="$here/valgrind.supp" -q --xml=yes --xml-file="$1/valgrind.xml" "$1/async.test" -test.count=1
python3 "$here/valgrind_errors.py" "$1/valgrind.xml"
