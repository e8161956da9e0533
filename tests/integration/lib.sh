# Helpers for the integration tests (sourced). Each test is a bash script that
# exits 0 when every expectation held; `finish` reports the count.
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
CS_BIN=${CS_BIN:-$PWD/bin}
read -r -a CS_WRAP <<< "${CS_TEST_WRAP:-}"
_failures=0
_checks=0
_out=$(mktemp)
_err=$(mktemp)
trap 'rm -f "$_out" "$_err"' EXIT

cs_bin () {
    echo "$CS_BIN/cardsync-$1"
}

# run CMD...: runs it (under valgrind for make memcheck), keeping rc, stdout, stderr.
run () {
    "${CS_WRAP[@]}" "$@" >"$_out" 2>"$_err"
    rc=$?
}

_fail () {
    _failures=$((_failures + 1))
    echo "FAILED: $*"
    echo "  stdout: $(head -c 2000 "$_out")"
    echo "  stderr: $(head -c 2000 "$_err")"
}

expect_rc () {
    _checks=$((_checks + 1))
    [ "$rc" = "$1" ] || _fail "$2: exit $rc, expected $1"
}

expect_out () {
    _checks=$((_checks + 1))
    grep -qF -- "$1" "$_out" || _fail "$2: stdout lacks '$1'"
}

expect_err () {
    _checks=$((_checks + 1))
    grep -qF -- "$1" "$_err" || _fail "$2: stderr lacks '$1'"
}

expect_no () {
    _checks=$((_checks + 1))
    ! grep -qF -- "$1" "$_out" "$_err" || _fail "$2: output has '$1'"
}

finish () {
    echo "$_checks checks, $_failures failed"
    [ "$_failures" = 0 ]
}
