#!/bin/sh
# SPDX-License-Identifier: MIT
# t9000-fuzz: a short run of every libFuzzer target (tests/fuzz/fuzz_*.c, ASan+UBSan built by
# tools/fuzz.sh), a replay of every committed regression input (tests/fuzz/regress/NAME/), and
# of every open crash input (tests/fuzz/open/NAME/: a failure until it is fixed).
# The long runs are `make fuzz` (docs/RELIABILITY.md). The fuzz build is sanitized already, so
# this script runs in the plain build only. CM_FUZZ_SECONDS sets the budget per target.
. "$(dirname "$0")/test-lib.sh"

secs=${CM_FUZZ_SECONDS:-5}
FUZZ_DIR="$CM_BUILD/fuzz"
export FUZZ_DIR

if [ "$CM_SAN" = 1 ]; then
    test_skip 'fuzz targets' 'the fuzz build is ASan+UBSan already; runs in the plain build'
    test_done
fi
if ! command -v clang >/dev/null 2>&1; then
    # README.md says a short run of each target is part of `make test`: a failure under CI=true
    test_skip_claim 'fuzz targets' 'clang is not installed (tools/deps.sh build)'
    test_done
fi

test_expect_success 'every fuzz target that has its code builds' '
    sh "$TOP/tools/fuzz.sh" build 2>build.err ||
    { cat build.err; false; }
'

for t in $(sh "$TOP/tools/fuzz.sh" list | sed 's/ .*//'); do
    if [ ! -x "$FUZZ_DIR/bin/fuzz_$t" ]; then
        # every stage has its code now: a target that was not built is a failure, not a skip
        why=$(sh "$TOP/tools/fuzz.sh" list | grep "^$t\( \|\$\)")
        test_expect_success "fuzz $t for ${secs}s" '
            echo "$FUZZ_DIR/bin/fuzz_$t was not built (tools/fuzz.sh list: $why)"; false
        '
        continue
    fi
    sh "$TOP/tools/fuzz.sh" run "$secs" "$t" >"run-$t.out" 2>&1
    rc=$?
    if [ $rc = 4 ]; then
        test_expect_success "fuzz $t for ${secs}s: no new crash (found again only the open one of tests/fuzz/open/$t/)" "
            cat run-$t.out && grep -q 'crashes: 0 (+' run-$t.out
        "
    else
        test_expect_success "fuzz $t for ${secs}s: no crash, no leak, properties hold" "
            cat run-$t.out && test $rc = 0 && grep -q 'crashes: 0' run-$t.out
        "
    fi
    # a known crash (tests/fuzz/open/NAME/, reported to the stage's owner) is a failure until it
    # is fixed: each input is replayed without the UBSan suppressions and must not crash
    if [ -d "$TOP/tests/fuzz/open/$t" ]; then
        test_expect_success "fuzz $t: the open crash inputs are fixed (then move them to regress/)" '
            sh "$TOP/tools/fuzz.sh" replay-open "$t" >open-$t.out 2>&1 || {
                echo "still crashing: tests/fuzz/open/$t/:" \
                    $(ls "$TOP/tests/fuzz/open/$t" | grep -vx signature)
                cat open-$t.out
                false
            }
        '
    fi
    if [ -d "$TOP/tests/fuzz/regress/$t" ]; then
        test_expect_success "fuzz $t: regression inputs replay without a crash" "
            sh \"\$TOP/tools/fuzz.sh\" replay $t
        "
    fi
done

test_done
