#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every test against one or more build folders; the last line is "N passed, N failed,
# N skipped", and the skipped tests are listed by name just before it.
#   tests/run.sh build [build-asan ...]
# Unit tests: each $B/tests/test_* binary (cmocka, TAP output). End-to-end tests: each
# tests/t/t*.sh, run with CM_BUILD=$B (so it uses $B/bin/cm-*). Set CM_TESTS=PATTERN to run
# only the tests whose file name contains PATTERN.
# Counting, from the TAP lines: "ok N - title" is a pass; "ok N - title # SKIP why" (and
# cmocka's "not ok N # SKIP name") is a skip, not a pass; "not ok N" is a failure. A test
# program that exits non-zero without reporting a failure, or whose results do not match its
# plan ("1..N": it stopped early), counts one failure more.
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
skipped=0
log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
[ $# -gt 0 ] || set -- build

SKIP_RE='^(not )?ok( .*)? # [Ss][Kk][Ii][Pp]([^A-Za-z].*)?$'

count() { # counts the TAP lines of $log into $p, $f and $s (runs in this shell)
    s=$(grep -cE "$SKIP_RE" "$log")
    p=$(grep -E '^ok( |$)' "$log" | grep -cvE "$SKIP_RE")
    f=$(grep -E '^not ok( |$)' "$log" | grep -cvE "$SKIP_RE")
    # the plan: the sum of the "1..N" lines (cmocka prints one per group, test-lib.sh one)
    planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
    nplans=$(grep -c '^1\.\.[0-9]' "$log")
    plan_msg=""
    if [ "$nplans" = 0 ]; then
        plan_msg="no plan line (1..N): the test program stopped before its end"
    elif [ "$planned" != $((p + f + s)) ]; then
        plan_msg="plan 1..$planned but $((p + f + s)) results"
    fi
}
add() { # adds $p, $f and $s to the totals
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}
# note_skips NAME FILE: appends "skipped: [NAME] FILE N: title (why)" for each skip of $log
note_skips() {
    grep -E "$SKIP_RE" "$log" |
        sed -E 's/^(not )?ok ?([0-9]*)( - )?(.*) # [Ss][Kk][Ii][Pp] ?(.*)$/\2\t\4\t\5/' |
        while IFS='	' read -r n title why; do
            if [ -z "$title" ]; then title=$why; why=""; fi
            echo "skipped: [$1] $2 $n: $title${why:+ ($why)}"
        done >>"$skips"
}
# summary: "P passed", and ", S skipped" when there are skips
summary() { if [ "$s" = 0 ]; then echo "$p passed"; else echo "$p passed, $s skipped"; fi; }

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
        [ -n "$plan_msg" ] && f=$((f + 1))
        add
        note_skips "$name" "$(basename "$t")"
        if [ "$f" != 0 ]; then
            echo "FAIL [$name] $(basename "$t"): $(summary), $f failed (exit $rc)${plan_msg:+; $plan_msg}"
            grep -v '^ok ' "$log" | head -40 | sed 's/^/    /'
        else
            echo "ok   [$name] $(basename "$t"): $(summary)"
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
        [ -n "$plan_msg" ] && f=$((f + 1))
        add
        note_skips "$name" "$(basename "$t")"
        secs=$(( $(date +%s) - start ))
        if [ "$f" != 0 ]; then
            echo "FAIL [$name] $(basename "$t"): $(summary), $f failed (exit $rc, ${secs}s)${plan_msg:+; $plan_msg}"
            grep -v '^ok ' "$log" | tail -60 | sed 's/^/    /'
        else
            echo "ok   [$name] $(basename "$t"): $(summary) (${secs}s)"
        fi
    done
done
cat "$skips"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
