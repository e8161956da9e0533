#!/usr/bin/env bash
# A short run of each libFuzzer harness (tests/fuzz) on its seed corpus and
# what it finds in FUZZ_SMOKE_S seconds (default 3): every parser of outside
# bytes survives it, and every input that once crashed one is among the
# seeds. Not under make memcheck: the fuzz builds carry their own sanitizers.
set -u
. "$(dirname "$0")/lib/common.sh"

if [ -n "${CS_TEST_WRAP:-}" ]; then
    echo "SKIP: under valgrind (the fuzz builds run with ASan and UBSan instead)"
    exit 0
fi
for t in email date msg isapi export config; do
    check "fuzz_$t is built (make BUILD=fuzz fuzz-bins)" test -x bin/fuzz/fuzz_$t
    check "fuzz_$t has seeds" test -n "$(ls tests/fuzz/corpus/$t)"
done
run tests/fuzz/run --seconds "${FUZZ_SMOKE_S:-3}" --work "$CS_TMP/fuzz" email date msg isapi export config
expect_rc 0 "every harness ran clean"
cat "$_out"
finish
