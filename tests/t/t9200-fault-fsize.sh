#!/bin/sh
# SPDX-License-Identifier: MIT
# t9200-fault-fsize: a file-size limit (`ulimit -f`, EFBIG) or a full disk (/dev/full, ENOSPC)
# while each stage writes its output: JSONL (cm-ingest, cm-filter), the token stream and the
# tokenizer (cm-tokenize), checkpoints (cm-train). Each must name the file and the reason, exit
# 3, and leave nothing half-written that looks complete: the file is removed, or it is cut in a
# way the next stage detects (a JSONL line or a token stream frame without its end), and a
# checkpoint that existed before is kept intact. Shards and the index under `ulimit -f` are
# tested by t4003-shards-crash.sh. `ulimit -f` counts 512-byte blocks here (POSIX sh).
. "$(dirname "$0")/test-lib.sh"
. "$TOP/tests/fuzz/gen-data.sh"

N=300
[ "$CM_SAN" = 1 ] && N=150

# limited BLOCKS CMD...: run CMD under `ulimit -f BLOCKS` (in a subshell); stderr to err
limited() {
    blocks=$1
    shift
    (ulimit -f "$blocks" && exec "$@") 2>err
}

# cut_or_gone FILE: FILE is absent, or its end is visibly cut (last byte not a newline)
cut_or_gone() {
    [ ! -e "$1" ] && return 0
    last=$(tail -c 1 "$1" | od -An -c | tr -d " ")
    if [ "$last" = '\n' ]; then
        echo "$1 ends with a whole line: it looks complete" >&2
        return 1
    fi
    say "$1 left cut at $(wc -c <"$1") bytes (last line incomplete)"
}

test_expect_success 'setup' '
    gen_py_tree src $N && tar cf src.tar -C src . &&
    cm-ingest -q src.tar >all.jsonl && test $(wc -l <all.jsonl) = $N
'
test_expect_success 'cm-ingest -o under ulimit -f: exit 3, file and reason named, output cut' '
    test_expect_code 3 limited 64 cm-ingest -q -o out.jsonl src.tar &&
    test_grep "cm-ingest: cannot write to .out.jsonl.: File too large" err &&
    cut_or_gone out.jsonl &&
    if [ -e out.jsonl ]; then
        test_expect_code 1 cm-filter --no-dedup out.jsonl >/dev/null 2>err2 &&
        test_grep "out.jsonl" err2
    fi
'
test_expect_success 'cm-ingest to a full disk (/dev/full): exit 3, named' '
    test_expect_code 3 cm-ingest -q src.tar >/dev/full 2>err &&
    test_grep "cm-ingest: cannot write to .stdout.: No space left on device" err
'
test_expect_success 'cm-ingest --stats to a full disk: exit 3' '
    test_expect_code 3 cm-ingest -q --stats /dev/full src.tar >/dev/null 2>err &&
    test_grep "/dev/full\|stats" err
'

test_expect_success 'cm-filter -o under ulimit -f: exit 3, named, output cut' '
    test_expect_code 3 limited 64 cm-filter -q --no-near-dedup -o kept.jsonl all.jsonl &&
    test_grep "cm-filter: cannot write to .kept.jsonl.: File too large" err &&
    cut_or_gone kept.jsonl
'
test_expect_success 'cm-filter --rejects under ulimit -f: exit 3, named' '
    test_expect_code 3 limited 16 cm-filter -q --imports nonexistentmodule \
        --rejects rej.jsonl all.jsonl >/dev/null &&
    test_grep "rej.jsonl" err && cut_or_gone rej.jsonl
'
test_expect_success 'cm-filter to a full disk: exit 3, named' '
    test_expect_code 3 cm-filter -q all.jsonl >/dev/full 2>err &&
    test_grep "cm-filter: cannot write to .stdout.: No space left on device" err
'

test_expect_success 'setup: a tokenizer' '
    cm-tokenize train --vocab-size 400 -o tok.json all.jsonl 2>/dev/null && test -s tok.json
'
test_expect_success 'cm-tokenize encode -o under ulimit -f: exit 3; the stream is seen as cut' '
    test_expect_code 3 limited 64 cm-tokenize encode -t tok.json -o s.tok all.jsonl &&
    test_grep "cm-tokenize: cannot write to .s.tok.: File too large" err &&
    if [ -e s.tok ]; then
        test_expect_code 1 cm-shards pack -o c s.tok 2>err2 &&
        test_grep "cut short" err2 &&
        test "$(sqlite3 c/index.sqlite "SELECT complete FROM corpus")" = 0
    fi
'
test_expect_success 'cm-tokenize encode to a full disk: exit 3' '
    test_expect_code 3 cm-tokenize encode -t tok.json all.jsonl >/dev/full 2>err &&
    test_grep "No space left on device" err
'
test_expect_success 'cm-tokenize train -o under ulimit -f: exit 3, no loadable half tokenizer' '
    size=$(wc -c <tok.json) && blocks=$((size / 512 / 2)) &&
    test_expect_code 3 limited $blocks cm-tokenize train --vocab-size 400 -o t2.json \
        all.jsonl &&
    test_grep "t2.json" err &&
    if [ -e t2.json ]; then
        test_expect_code 4 cm-tokenize encode -t t2.json all.jsonl >/dev/null 2>err2
    fi
'

M="--synthetic 300 --layers 1 --width 32 --heads 2 --context 16 --batch 4 -q"
test_expect_success 'checkpoint under ulimit -f: exit 3, named, no checkpoint nor temp file' '
    test_expect_code 3 limited 100 cm-train $M --steps 4 --ckpt-every 2 --ckpt m.bin &&
    test_grep "m.bin" err && test_grep "File too large" err &&
    test ! -e m.bin && test -z "$(ls | grep "^m\.bin\.")"
'
test_expect_success 'a failed checkpoint save keeps the previous checkpoint intact' '
    cm-train $M --steps 4 --ckpt-every 2 --ckpt good.bin &&
    cp good.bin before.bin &&
    test_expect_code 3 limited 100 cm-train $M --steps 8 --ckpt-every 2 --ckpt good.bin \
        --resume &&
    test_grep "good.bin" err &&
    test_cmp before.bin good.bin &&
    test -z "$(ls | grep "^good\.bin\.")" &&
    cm-train eval --ckpt good.bin --synthetic 300 --batch 2 >/dev/null 2>&1
'
test_expect_success 'cm-train --log under ulimit -f: exit 3, named' '
    test_expect_code 3 limited 2 cm-train $M --steps 200 --log big.log &&
    test_grep "big.log" err
'

test_done
