#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz.sh: build and run codemill's libFuzzer targets (tests/fuzz/fuzz_*.c) with ASan + UBSan.
#
#   tools/fuzz.sh build                    build every target and its seed corpus
#   tools/fuzz.sh run SECONDS [TARGET...]  build, then fuzz each target for SECONDS
#   tools/fuzz.sh replay [TARGET...]       run each target once over tests/fuzz/regress/TARGET/
#   tools/fuzz.sh replay-open [TARGET...]  same over tests/fuzz/open/TARGET/ (0: all fixed)
#   tools/fuzz.sh list                     the targets and whether they can be built now
#
# Output goes to $FUZZ_DIR (default build-fuzz/ at the top of the checkout):
#   obj/        library objects (clang -O1 -g, -fsanitize=fuzzer-no-link,address,undefined)
#   bin/        fuzz_NAME (the fuzzer) and seeds_NAME (writes the seed corpus)
#   seeds/NAME  seeds made by codemill's own writers (never third-party files)
#   corpus/NAME the corpus the fuzzer grows (starts as a copy of the seeds)
#   crashes/NAME/ inputs that crashed, leaked, timed out or broke a checked property in the last
#                 run (those of earlier runs move to crashes/NAME.earlier/)
#   logs/NAME.log the fuzzer's output
# `run` prints one line per target: executions, cov: and ft: from libFuzzer's final status
# line, and crashes; it exits 1 if any target crashed, 2 on bad usage, 3 if a target
# could not be built, 4 if the only crashes found are known open ones (fuzzing went on past
# them: fork mode). A target whose "fuzz-needs:" stage folder has no code yet is skipped.
#
# Crash inputs: tests/fuzz/regress/NAME/ holds fixed ones (replayed, must not crash);
# tests/fuzz/open/NAME/ holds crashes reported to the owning stage and not fixed yet, with a
# file `signature` (grep patterns matching the sanitizer's report) so that a run that finds
# the same crash again says so instead of reporting it as new, and keeps fuzzing.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_DIR=${FUZZ_DIR:-$TOP/build-fuzz}
case $FUZZ_DIR in /*) ;; *) FUZZ_DIR="$PWD/$FUZZ_DIR" ;; esac
CC=${FUZZ_CC:-clang}
# UBSan checks stay recoverable so that tests/fuzz/open/ubsan.supp can silence known open
# ones; halt_on_error=1 makes every other report fatal.
SAN="-fsanitize=address,undefined"
CFLAGS="-std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -g -O1 -fno-omit-frame-pointer
        -Wall -Wno-unused-parameter -I$TOP/lib -I$TOP -I$TOP/tests/fuzz -pthread"
LDLIBS="-larchive -lzstd -lpcre2-8 -lsqlite3 -lopenblas -lxxhash -ljansson -ldnnl -lgomp -lm -lpthread"
STAGE_DIRS="ingest filter tokenize shards trainer"

usage() {
    echo "usage: tools/fuzz.sh build | run SECONDS [TARGET...] | replay|replay-open [TARGET...] | list" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Building

# targets: names of every target (fuzz_json.c -> json)
targets() {
    for f in "$TOP"/tests/fuzz/fuzz_*.c; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .c)
        echo "${n#fuzz_}"
    done
}

# needs NAME: the stage folders target NAME links (its "fuzz-needs:" line)
needs() {
    sed -n 's/^.*fuzz-needs:[[:space:]]*//p' "$TOP/tests/fuzz/fuzz_$1.c" | head -1
}

# stage_srcs DIR: the library sources of a stage folder (every .c but the cm-*.c main)
stage_srcs() {
    for f in "$TOP/$1"/*.c; do
        [ -f "$f" ] || continue
        case $(basename "$f") in cm-*.c) continue ;; esac
        echo "$f"
    done
}

# compile SRC: compile one library source into obj/ unless its object is newer than the
# source and every header it depends on (from the -MMD file); prints the object, or fails
compile() {
    rel=${1#"$TOP"/}
    obj="$FUZZ_DIR/obj/${rel%.c}.o"
    dep="${obj%.o}.d"
    if [ -f "$obj" ] && [ -f "$dep" ]; then
        stale=$(sed -e 's/^[^:]*://' -e 's/\\$//' "$dep" | tr ' ' '\n' | grep -v '^$' |
                while read -r h; do [ ! -e "$h" ] || [ "$h" -nt "$obj" ] && echo x; done | head -1)
        if [ -z "$stale" ]; then echo "$obj"; return 0; fi
    fi
    mkdir -p "$(dirname "$obj")"
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -MMD -MF "$dep" -c "$1" -o "$obj" \
            2>"$obj.err"; then
        cat "$obj.err" >&2
        rm -f "$obj"
        return 1
    fi
    echo "$obj"
}

# build_folder DIR: compile a folder's library sources; prints the objects, fails if one fails
build_folder() {
    ok=0
    for s in $( [ "$1" = lib ] && ls "$TOP"/lib/*.c || stage_srcs "$1"); do
        compile "$s" || ok=1
    done
    return $ok
}

# build_target NAME: compile fuzz_NAME and seeds_NAME; 0 built, 1 failed, 77 skipped
build_target() {
    name=$1
    objs=$(build_folder lib) || return 1
    for d in $(needs "$name"); do
        if [ -z "$(stage_srcs "$d")" ]; then
            echo "fuzz: $name: skipped: $d/ has no code yet" >&2
            return 77
        fi
        o=$(build_folder "$d") || return 1
        objs="$objs $o"
    done
    src="$TOP/tests/fuzz/fuzz_$name.c"
    mkdir -p "$FUZZ_DIR/bin"
    bin="$FUZZ_DIR/bin/fuzz_$name"
    newest=$(ls -t $objs "$src" "$TOP/tests/fuzz/fuzz.h" "$bin" 2>/dev/null | head -1)
    if [ "$newest" != "$bin" ]; then
        # an archive, so that only the objects the target uses are linked
        lib="$FUZZ_DIR/bin/lib_$name.a"
        rm -f "$lib"
        # shellcheck disable=SC2086
        ar rcs "$lib" $objs || return 1
        # shellcheck disable=SC2086
        $CC $CFLAGS $SAN -fsanitize=fuzzer "$src" "$lib" $LDLIBS -o "$bin" || return 1
        # shellcheck disable=SC2086
        $CC $CFLAGS $SAN -DFUZZ_SEEDS "$src" "$lib" $LDLIBS -o "$FUZZ_DIR/bin/seeds_$name" ||
            return 1
        rm -rf "$FUZZ_DIR/seeds/$name"
    fi
    if [ ! -d "$FUZZ_DIR/seeds/$name" ]; then
        mkdir -p "$FUZZ_DIR/seeds/$name.tmp"
        ASAN_OPTIONS=detect_leaks=0 "$FUZZ_DIR/bin/seeds_$name" "$FUZZ_DIR/seeds/$name.tmp" ||
            { echo "fuzz: $name: the seed generator failed" >&2; return 1; }
        mv "$FUZZ_DIR/seeds/$name.tmp" "$FUZZ_DIR/seeds/$name"
    fi
    return 0
}

# build_all [TARGET...]: build the given targets (default all); sets BUILT and SKIPPED lists
build_all() {
    # objects built with other flags (an older fuzz.sh) are rebuilt
    mkdir -p "$FUZZ_DIR"
    flags="$CC $CFLAGS $SAN $LDLIBS"
    if [ "$(cat "$FUZZ_DIR/flags" 2>/dev/null)" != "$flags" ]; then
        rm -rf "$FUZZ_DIR/obj" "$FUZZ_DIR/bin" "$FUZZ_DIR/seeds"
        printf '%s\n' "$flags" >"$FUZZ_DIR/flags"
    fi
    BUILT=""
    SKIPPED=""
    FAILED=""
    for t in ${@:-$(targets)}; do
        if [ ! -f "$TOP/tests/fuzz/fuzz_$t.c" ]; then
            echo "fuzz: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2
            exit 2
        fi
        build_target "$t"
        case $? in
            0) BUILT="$BUILT $t" ;;
            77) SKIPPED="$SKIPPED $t" ;;
            *) FAILED="$FAILED $t"; echo "fuzz: $t: build failed" >&2 ;;
        esac
    done
}

# ---------------------------------------------------------------------------------------------
# Running

# run_one NAME SECONDS: fuzz one target; prints its summary line; 0 clean, 1 crashed
run_one() {
    name=$1
    secs=$2
    corpus="$FUZZ_DIR/corpus/$name"
    crashes="$FUZZ_DIR/crashes/$name"
    log="$FUZZ_DIR/logs/$name.log"
    # crash inputs of an earlier run are kept aside, so that this run counts only its own
    if [ -d "$crashes" ] && [ -n "$(ls "$crashes")" ]; then
        mkdir -p "$crashes.earlier" && mv "$crashes"/* "$crashes.earlier"/
    fi
    mkdir -p "$corpus" "$crashes" "$FUZZ_DIR/logs"
    cp "$FUZZ_DIR/seeds/$name"/* "$corpus"/ 2>/dev/null
    regress="$TOP/tests/fuzz/regress/$name"
    [ -d "$regress" ] || regress=""
    dict="$TOP/tests/fuzz/$name.dict"
    [ -f "$dict" ] && dict="-dict=$dict" || dict=""
    sig="$TOP/tests/fuzz/open/$name/signature"
    # One job, in this process (libFuzzer's -jobs=1 would fork a worker logging to ./fuzz-0.log),
    # except for a target with a known open crash: it runs in libFuzzer's fork mode with
    # -ignore_crashes=1 so that it goes on fuzzing after finding that crash again; each crash
    # input is then replayed and sorted (known: matches the signature; else new).
    mode=""
    [ -f "$sig" ] && mode="-fork=1 -ignore_crashes=1"
    # -close_fd_mask=2: the code under test reports bad input on stderr, which would drown the
    # log; libFuzzer and the sanitizers keep their own copy of stderr for their reports.
    # the targets' temporary files go under tmp/NAME, removed afterwards (a crashed or
    # fork-mode process cannot clean up after itself)
    tmp="$FUZZ_DIR/tmp/$name"
    rm -rf "$tmp" && mkdir -p "$tmp"
    # shellcheck disable=SC2086
    TMPDIR="$tmp" ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$TOP/tests/fuzz/open/ubsan.supp" \
    "$FUZZ_DIR/bin/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=2048 $mode \
        -timeout=25 -max_len=65536 -close_fd_mask=2 -print_final_stats=1 \
        -artifact_prefix="$crashes/" $dict "$corpus" $regress >"$log" 2>&1
    rc=$?
    rm -rf "$tmp"
    if [ -n "$mode" ]; then
        # fork mode: status lines are "#EXECS: cov: N ft: N ..."
        final=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
        execs=$(echo "$final" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    else
        final=$(grep -E '^#[0-9]+' "$log" | tail -1)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    fi
    cov=$(echo "$final" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$final" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    known=0
    if [ -f "$sig" ]; then
        # sort the crash inputs: those that reproduce the open crash are not new findings
        mkdir -p "$crashes.known"
        for f in "$crashes"/*; do
            [ -f "$f" ] || continue
            mkdir -p "$tmp"
            TMPDIR="$tmp" ASAN_OPTIONS="detect_leaks=1" \
            UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$TOP/tests/fuzz/open/ubsan.supp" \
                "$FUZZ_DIR/bin/fuzz_$name" -runs=1 -rss_limit_mb=2048 -close_fd_mask=2 "$f" \
                >"$f.replay" 2>&1
            rm -rf "$tmp"
            if grep -q -f "$sig" "$f.replay"; then
                mv "$f" "$crashes.known/" && rm -f "$f.replay" && known=$((known + 1))
            else
                rm -f "$f.replay"
            fi
        done
        # fork mode exits 0 when every crash was ignored
        [ "$rc" != 0 ] && grep -q -f "$sig" "$log" && [ -z "$(ls "$crashes")" ] && rc=0
    fi
    ncrash=$(find "$crashes" -type f | wc -l)
    printf '%-12s %10s execs  cov: %-6s ft: %-6s crashes: %s%s\n' "$name" "${execs:-?}" \
        "${cov:-?}" "${ft:-?}" "$ncrash" "$( [ $known -gt 0 ] && echo " (+$known known open)")"
    if [ $rc != 0 ] || [ "$ncrash" != 0 ]; then
        echo "fuzz: $name: crashed (exit $rc); input saved in $crashes/; log: $log" >&2
        grep -E 'ERROR|SUMMARY|property failed|runtime error|#[0-9]+ 0x' "$log" | head -25 >&2
        return 1
    fi
    [ $known -gt 0 ] && return 4
    return 0
}

# replay_one NAME [DIR]: run the target once over every input of DIR (default: the committed
# regression inputs, tests/fuzz/regress/NAME)
replay_one() {
    dir=${2:-$TOP/tests/fuzz/regress/$1}
    [ -d "$dir" ] && [ -n "$(ls "$dir")" ] || { echo "$1: no regression inputs"; return 0; }
    log="$FUZZ_DIR/logs/$1.replay.log"
    mkdir -p "$FUZZ_DIR/logs"
    tmp="$FUZZ_DIR/tmp/$1.replay"
    mkdir -p "$tmp"
    TMPDIR="$tmp" ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        "$FUZZ_DIR/bin/fuzz_$1" -runs=1 -close_fd_mask=2 -rss_limit_mb=2048 "$dir"/* \
        >"$log" 2>&1
    rc=$?
    rm -rf "$tmp"
    n=$(ls "$dir" | wc -l)
    if [ $rc != 0 ]; then
        echo "fuzz: $1: a regression input crashes again (exit $rc); log: $log" >&2
        grep -E 'Running:|ERROR|SUMMARY|property failed|runtime error' "$log" | head -20 >&2
        return 1
    fi
    echo "$1: $n regression inputs replayed, no crash"
}

# ---------------------------------------------------------------------------------------------
# Main

[ $# -ge 1 ] || usage
cmd=$1
shift
command -v "$CC" >/dev/null 2>&1 || { echo "fuzz: $CC not found (tools/deps.sh build)" >&2; exit 3; }
case $cmd in
    list)
        for t in $(targets); do
            miss=""
            for d in $(needs "$t"); do [ -n "$(stage_srcs "$d")" ] || miss="$miss $d/"; done
            if [ -n "$miss" ]; then echo "$t (waits for$miss)"; else echo "$t"; fi
        done
        ;;
    build)
        build_all "$@"
        echo "fuzz: built:${BUILT:- none}${SKIPPED:+; skipped:$SKIPPED}" >&2
        [ -z "$FAILED" ] || exit 3
        ;;
    run)
        [ $# -ge 1 ] || usage
        secs=$1
        shift
        case $secs in ''|*[!0-9]*) usage ;; esac
        build_all "$@"
        [ -z "$FAILED" ] || exit 3
        bad=0
        echo "target            executions  coverage            (${secs}s each, ASan+UBSan)"
        for t in $BUILT; do
            run_one "$t" "$secs"
            case $? in 0) ;; 4) [ $bad = 1 ] || bad=4 ;; *) bad=1 ;; esac
        done
        for t in $SKIPPED; do echo "$t: skipped (its stage has no code yet)"; done
        exit $bad
        ;;
    replay)
        build_all "$@"
        [ -z "$FAILED" ] || exit 3
        bad=0
        for t in $BUILT; do replay_one "$t" || bad=1; done
        exit $bad
        ;;
    replay-open)
        # exit 0 when every open crash input of the targets is fixed (move it to regress/)
        build_all "$@"
        [ -z "$FAILED" ] || exit 3
        bad=0
        for t in $BUILT; do
            [ -d "$TOP/tests/fuzz/open/$t" ] || continue
            inputs=$(mktemp -d)
            find "$TOP/tests/fuzz/open/$t" -type f ! -name signature -exec cp {} "$inputs"/ \;
            replay_one "$t" "$inputs" || bad=1
            rm -rf "$inputs"
        done
        exit $bad
        ;;
    *) usage ;;
esac
