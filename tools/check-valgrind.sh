#!/bin/sh
# SPDX-License-Identifier: MIT
# check-valgrind.sh: run codemill's unit tests and a representative scenario of every
# executable (the commands the shell tests run: each format, each verb, the error paths, a
# closed pipe) under valgrind memcheck; report errors and definite leaks per command.
#
#   tools/check-valgrind.sh [--quick]        (--quick: skip the slowest unit test, test_model)
#
# valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite, with
# tests/valgrind.supp (third-party internals only). The build is build-valgrind/: the same
# sources and flags as build/, except the `-march=native` of cm-train and cm-filter (AVX-512
# on this machine, which valgrind 3.19 cannot execute) is replaced by AVX2, and OpenBLAS is
# told to use its Haswell kernels for the same reason. Logs: build-valgrind/valgrind/NAME.log.
# Exit status: 0 when every command ran with zero errors and zero definite leaks, 1 otherwise,
# 3 if valgrind or the build is missing.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B="$TOP/build-valgrind"
LOGS="$B/valgrind"
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1

command -v valgrind >/dev/null 2>&1 || { echo "check-valgrind: valgrind is not installed (tools/deps.sh build)" >&2; exit 3; }
NOAVX512="-mavx2 -mfma"
# make does not track flags: start afresh when these overrides change
stamp="trainer=-O2 -fopenmp $NOAVX512 filter=-O2 $NOAVX512"
if [ "$(cat "$B/.vgflags" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$B" && mkdir -p "$B" && printf '%s\n' "$stamp" >"$B/.vgflags"
fi
make -s -C "$TOP" O=build-valgrind EXTRA_CFLAGS_trainer="-O2 -fopenmp $NOAVX512" \
    EXTRA_CFLAGS_filter="-O2 $NOAVX512" all tests >&2 ||
    { echo "check-valgrind: the build failed" >&2; exit 3; }
rm -rf "$LOGS" && mkdir -p "$LOGS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cm-valgrind.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PATH="$B/bin:$B/tests:$PATH"
export PATH CM_TRAIN_REEXEC=1 OPENBLAS_CORETYPE=Haswell OMP_WAIT_POLICY=passive
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions=$TOP/tests/valgrind.supp --num-callers=30"
n_cmds=0
n_bad=0

# vg NAME WANT CMD...: run CMD under valgrind (stdout to $WORK/NAME.out, stdin from /dev/null
# unless redirected by the caller); WANT is the exit status the command must have
vg() {
    name=$1
    want=$2
    shift 2
    n_cmds=$((n_cmds + 1))
    # shellcheck disable=SC2086
    $VG --log-file="$LOGS/$name.log" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    report "$name" "$want" "$rc"
}

# report NAME WANT RC: print one line and count a failure
report() {
    errs=$(grep -c "^==[0-9]*== [A-Z].*\(Invalid\|uninitialised\|Mismatched\|definitely lost\|Syscall param\|overlap\)" "$LOGS/$1.log" 2>/dev/null)
    if [ "$3" = 99 ] || [ "${errs:-0}" != 0 ]; then
        n_bad=$((n_bad + 1))
        printf 'FAIL %-28s valgrind errors (exit %s), see %s\n' "$1" "$3" "$LOGS/$1.log"
        grep -m 12 "^==" "$LOGS/$1.log" | sed 's/^/    /'
    elif [ "$3" != "$2" ]; then
        n_bad=$((n_bad + 1))
        printf 'FAIL %-28s exit %s, want %s\n' "$1" "$3" "$2"
        sed 's/^/    /' "$WORK/$1.err" | head -5
    else
        printf 'ok   %-28s 0 errors, 0 definite leaks (exit %s)\n' "$1" "$3"
    fi
}

# ---------------------------------------------------------------------------------------------
# Unit tests

for t in "$B"/tests/test_*; do
    case $t in *.d) continue ;; esac
    [ -x "$t" ] || continue
    [ $QUICK = 1 ] && [ "$(basename "$t")" = test_model ] && continue
    vg "unit-$(basename "$t")" 0 "$t"
done

# ---------------------------------------------------------------------------------------------
# The scenario: small inputs made here (tests/fuzz/gen-data.sh)

cd "$WORK" || exit 3
. "$TOP/tests/fuzz/gen-data.sh"
gen_py_tree src 40 7
printf '{"nbformat":4,"metadata":{},"cells":[{"cell_type":"code","source":["%%matplotlib inline\\n","import pandas as pd"],"outputs":[]}]}' >src/proj-0a1b2c3/nb.ipynb
tar cf src.tar -C src .
(cd src && zip -qr ../src.zip .)
tar czf nested.tgz src.zip src.tar
head -c 30000 src.tar >cut.tar
gen_jsonl 60 3 >dump.jsonl
printf 'not json\n' >>dump.jsonl
gen_jsonl 300 5 >recs.jsonl

vg ingest-help 0 cm-ingest --help
vg ingest-usage 2 cm-ingest --no-such-option
vg ingest-tar 0 cm-ingest --stats st.json src.tar
vg ingest-nested 0 cm-ingest nested.tgz
vg ingest-dir 0 cm-ingest src
vg ingest-cut 1 cm-ingest cut.tar
vg ingest-jsonl 1 cm-ingest dump.jsonl
cm-ingest -q src.tar >all.jsonl 2>/dev/null
n_cmds=$((n_cmds + 1))
$VG --log-file="$LOGS/ingest-pipe.log" cm-ingest nested.tgz 2>"$WORK/ingest-pipe.err" | head -c 100 >/dev/null
report ingest-pipe 0 0

vg filter 0 cm-filter --rejects rej.jsonl --stats fst.json all.jsonl
vg filter-keywords 0 cm-filter --keywords pandas,sklearn --no-near-dedup all.jsonl
vg filter-bad 1 cm-filter --on-error skip dump.jsonl
vg filter-usage 2 cm-filter --near-threshold 7

vg tok-train 0 cm-tokenize train --vocab-size 300 -o tok.json all.jsonl
cm-tokenize train --vocab-size 300 -o tok.json all.jsonl 2>/dev/null
vg tok-encode 0 cm-tokenize encode -t tok.json -o s.tok recs.jsonl
cm-tokenize encode -t tok.json -o s.tok recs.jsonl 2>/dev/null
vg tok-encode-jsonl 0 cm-tokenize encode -t tok.json --jsonl all.jsonl
vg tok-decode 0 cm-tokenize decode s.tok
vg tok-decode-raw 0 cm-tokenize decode --raw s.tok
vg tok-bad-json 4 cm-tokenize encode -t dump.jsonl all.jsonl

vg shards-pack 0 cm-shards pack -o corpus --shard-tokens 20k --valid-fraction 0.3 s.tok
vg shards-verify 0 cm-shards verify corpus
vg shards-stats 0 cm-shards stats --json corpus
vg shards-cat 0 cm-shards cat --where "split='valid'" corpus
vg shards-cat-ids 0 cm-shards cat --ids --limit 5 corpus
size=$(wc -c <s.tok)
head -c $((size / 2)) s.tok >half.tok
vg shards-pack-cut 1 cm-shards pack -o part half.tok
vg shards-resume 0 cm-shards pack --resume -o part s.tok
vg shards-merge 0 cm-shards merge -o merged corpus
vg shards-bad-where 2 cm-shards cat --where "no_such_column = 1" corpus

M="--data corpus --layers 1 --width 32 --heads 2 --context 16 --batch 2 --threads 2 -q"
vg train 0 cm-train $M --steps 3 --ckpt m.bin --log log.jsonl
vg train-resume 0 cm-train $M --steps 5 --ckpt m.bin --resume
vg train-eval 0 cm-train eval --ckpt m.bin --data corpus --batch 2
vg train-complete 0 cm-train complete --ckpt m.bin --data corpus --prompt "import numpy" --max-tokens 8
cp m.bin bad.bin && printf 'X' | dd of=bad.bin bs=1 seek=300 conv=notrunc 2>/dev/null
vg train-bad-ckpt 4 cm-train eval --ckpt bad.bin --data corpus --batch 2
vg train-plot 0 cm-train plot --log log.jsonl -o plot.svg

echo "check-valgrind: $n_cmds commands, $n_bad with errors, leaks or a wrong exit status"
[ $n_bad = 0 ]
