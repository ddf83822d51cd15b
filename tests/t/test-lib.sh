# SPDX-License-Identifier: MIT
# test-lib.sh: sourced by every tests/t/tNNNN-*.sh (in the spirit of git's t/test-lib.sh).
#
#   . "$(dirname "$0")/test-lib.sh"
#   test_expect_success 'title' '
#       cm-ingest x.tar >out &&
#       test_cmp expect out
#   '
#   test_done
#
# Each script runs in its own trash directory; the cm-* executables of $CM_BUILD (default
# build/) come first in PATH. Output is TAP: "ok N - title" / "not ok N - title" /
# "ok N - title # SKIP why", then the plan "1..N". tests/README.md lists the helpers.
set -u
TEST_NAME=$(basename "$0" .sh)
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$TEST_DIR/../.." && pwd)
CM_BUILD=${CM_BUILD:-$TOP/build}
case $CM_BUILD in /*) ;; *) CM_BUILD="$TOP/$CM_BUILD" ;; esac
PATH="$CM_BUILD/bin:$CM_BUILD/tests:$PATH"
export PATH CM_BUILD TOP
TRASH="${TMPDIR:-/tmp}/cm-trash.$TEST_NAME.$(basename "$CM_BUILD").$$"
rm -rf "$TRASH" && mkdir -p "$TRASH" || exit 1
cd "$TRASH" || exit 1
test_count=0
test_failed=0
test_skipped=0
CM_SAN=0
case $(basename "$CM_BUILD") in *asan*) CM_SAN=1 ;; esac
export CM_SAN

say() { echo "# $*"; }

test_expect_success() { # title body
    test_count=$((test_count + 1))
    if (eval "$2") >"$TRASH/.out" 2>&1; then
        echo "ok $test_count - $1"
    else
        test_failed=$((test_failed + 1))
        echo "not ok $test_count - $1"
        sed 's/^/#   /' "$TRASH/.out" | tail -30
    fi
}

# test_skip 'title' 'why': a test that cannot run here for a reason that says nothing about
# codemill (a CPU without AVX-512, the real data set not downloaded, a sanitizer build where
# the measure means nothing). Prints "ok N - title # SKIP why"; tests/run.sh counts it as
# skipped and lists it. A missing cm-* executable or test helper is never a reason to skip:
# the test runs and fails.
test_skip() {
    test_count=$((test_count + 1))
    test_skipped=$((test_skipped + 1))
    echo "ok $test_count - $1 # SKIP $2"
}

# test_skip_claim 'title' 'why': the same for a test that guards a claim of README.md and
# cannot run because something around it is missing (no network for npm, not root, a tool
# that tools/deps.sh installs). With CI=true in the environment the claim must be checked,
# so the skip is a failure: "not ok N - title" and the reason.
test_skip_claim() {
    if [ "${CI:-}" = true ]; then
        test_count=$((test_count + 1))
        test_failed=$((test_failed + 1))
        echo "not ok $test_count - $1"
        echo "#   not run: $2"
        echo "#   CI=true: this test guards a claim of README.md; a skip is a failure"
    else
        test_skip "$1" "$2"
    fi
}

# Run a command that must fail (exit non-zero, but not by a crash or sanitizer report).
test_must_fail() {
    "$@"
    rc=$?
    if [ $rc = 0 ]; then echo "test_must_fail: '$*' succeeded" >&2; return 1; fi
    if [ $rc -gt 128 ] && [ $rc != 141 ] && [ $rc != 130 ]; then
        echo "test_must_fail: '$*' died with signal $((rc - 128))" >&2; return 1
    fi
    if [ $rc = 99 ]; then echo "test_must_fail: '$*' sanitizer error" >&2; return 1; fi
    return 0
}

# test_expect_code N cmd...: the command must exit with status N.
test_expect_code() {
    want=$1; shift
    "$@"
    rc=$?
    if [ $rc != "$want" ]; then echo "test_expect_code: '$*' exited $rc, want $want" >&2; return 1; fi
    return 0
}

test_cmp() {
    cmp -s "$1" "$2" && return 0
    echo "test_cmp: $1 and $2 differ:" >&2
    diff -u "$1" "$2" | head -40 >&2
    return 1
}

# test_grep PATTERN FILE: like grep, but shows the file when it does not match
test_grep() {
    grep -e "$1" "$2" >/dev/null && return 0
    echo "test_grep: no '$1' in $2:" >&2
    head -20 "$2" >&2
    return 1
}

test_done() {
    echo "1..$test_count"
    cd / && rm -rf "$TRASH"
    [ "$test_failed" = 0 ]
    exit $?
}

# small_corpus: recs.jsonl (60 small data-science Python files in 12 repositories), tok.json
# (vocabulary 300) and corpus/ (valid fraction 0.25): the training tests' common input
small_corpus() {
    i=0 && : >recs.jsonl &&
    while [ $i -lt 60 ]; do
        printf "{\"repo_name\":\"r%d\",\"path\":\"m%d.py\",\"content\":\"import pandas as pd\\\\nimport numpy as np\\\\nfrom sklearn.linear_model import LinearRegression\\\\n\\\\ndef f%d(df):\\\\n    model = LinearRegression()\\\\n    model.fit(df[[\\\\\"x\\\\\"]], df[\\\\\"y\\\\\"])\\\\n    return model.predict(df[[\\\\\"x\\\\\"]]) + %d\\\\n\"}\n" \
            $((i % 12)) $i $i $i >>recs.jsonl
        i=$((i + 1))
    done &&
    cm-tokenize train --vocab-size 300 -o tok.json recs.jsonl 2>/dev/null &&
    cm-tokenize encode -t tok.json recs.jsonl 2>/dev/null |
        cm-shards pack -o corpus --valid-fraction 0.25 2>/dev/null &&
    test -s corpus/index.sqlite
}

# mpi_setup: the environment of the tests that run mpirun. Root (CI) is refused by mpirun
# without the first two; no single-copy (CMA) transfers between ranks: containers without ptrace
# rights refuse them; under ASan, LeakSanitizer suppresses OpenMPI's own allocations at exit
# (and only those, lsan-openmpi.supp), the slow unwinder letting it see OpenMPI's frames.
mpi_setup() {
    OMPI_ALLOW_RUN_AS_ROOT=1
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_btl_vader_single_copy_mechanism=none
    export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_btl_vader_single_copy_mechanism
    if [ "$CM_SAN" = 1 ]; then
        ASAN_OPTIONS="${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0"
        LSAN_OPTIONS="suppressions=$TEST_DIR/lsan-openmpi.supp:print_suppressions=0"
        export ASAN_OPTIONS LSAN_OPTIONS
    fi
}
