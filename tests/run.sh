#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every test against one or more build folders and print "N passed, N failed" last.
#   tests/run.sh build [build-asan ...]
# Unit tests: each $B/tests/test_* binary (cmocka, TAP output). End-to-end tests: each
# tests/t/t*.sh, run with CM_BUILD=$B (so it uses $B/bin/cm-*). A test program that dies
# without reporting counts as one failure. Set CM_TESTS=PATTERN to run only matching scripts.
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
[ $# -gt 0 ] || set -- build

count() { # counts the TAP lines of $log into $p and $f (runs in this shell)
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
}
add() { # adds $p and $f to the totals
    passed=$((passed + p))
    failed=$((failed + f))
}

for B in "$@"; do
    case $B in /*) ;; *) B="$top/$B" ;; esac
    name=$(basename "$B")
    case $name in *asan*) asan=1 ;; *) asan=0 ;; esac
    if [ "$asan" = 1 ]; then
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99"
    else
        unset ASAN_OPTIONS UBSAN_OPTIONS
    fi
    for t in "$B"/tests/test_*; do
        [ -x "$t" ] || continue
        [ -n "${CM_TESTS:-}" ] && case $(basename "$t") in *$CM_TESTS*) ;; *) continue ;; esac
        CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1
        rc=$?
        count
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
        add
        if [ "$f" != 0 ]; then
            echo "FAIL [$name] $(basename "$t"): $p passed, $f failed (exit $rc)"
            grep -v '^ok ' "$log" | head -40 | sed 's/^/    /'
        else
            echo "ok   [$name] $(basename "$t"): $p passed"
        fi
    done
    for t in "$top"/tests/t/t[0-9]*.sh; do
        [ -f "$t" ] || continue
        [ -n "${CM_TESTS:-}" ] && case $(basename "$t") in *$CM_TESTS*) ;; *) continue ;; esac
        start=$(date +%s)
        CM_BUILD="$B" sh "$t" >"$log" 2>&1
        rc=$?
        count
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
        add
        secs=$(( $(date +%s) - start ))
        if [ "$f" != 0 ]; then
            echo "FAIL [$name] $(basename "$t"): $p passed, $f failed (exit $rc, ${secs}s)"
            grep -v '^ok ' "$log" | tail -60 | sed 's/^/    /'
        else
            echo "ok   [$name] $(basename "$t"): $p passed (${secs}s)"
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
