#!/bin/sh
# SPDX-License-Identifier: MIT
# t9100-fault-pipes: a consumer that closes the pipe early (`| head -c 100`) at every stage.
# Each producer must stop quietly (nothing on stderr: no error, no summary claiming a finished
# run), exit 0 or 141, and leave nothing recorded as complete (no --stats file claiming the
# whole input; a packer fed a cut stream keeps the corpus marked incomplete).
. "$(dirname "$0")/test-lib.sh"
. "$TOP/tests/fuzz/gen-data.sh"

N=600
[ "$CM_SAN" = 1 ] && N=300

# early_close NAME CMD...: run CMD with stdout into `head -c $HEAD` (100); its stderr goes to
# NAME.err, its exit status to NAME.rc
HEAD=100
early_close() {
    name=$1
    shift
    { "$@" 2>"$name.err"; echo $? >"$name.rc"; } | head -c $HEAD >"$name.out"
}

# quiet_stop NAME: the producer exited 0 or 141 and said nothing; it gave head its bytes
quiet_stop() {
    rc=$(cat "$1.rc")
    if [ "$rc" != 0 ] && [ "$rc" != 141 ]; then
        echo "exit status $rc, want 0 or 141" >&2
        cat "$1.err" >&2
        return 1
    fi
    if [ -s "$1.err" ]; then
        echo "stderr is not empty:" >&2
        cat "$1.err" >&2
        return 1
    fi
    test "$(wc -c <"$1.out")" = $HEAD
}

test_expect_success "setup: $N Python files in a tar (output far above a pipe's 64 KiB)" '
    gen_py_tree src $N && tar cf src.tar -C src . &&
    cm-ingest -q src.tar >all.jsonl && test $(wc -l <all.jsonl) = $N
'
test_expect_success 'cm-ingest x.tar | head -c 100: quiet, 0 or 141' '
    early_close ingest cm-ingest src.tar && quiet_stop ingest
'
test_expect_success 'cm-ingest --stats: no summary claiming the whole input after a closed pipe' '
    early_close ingest-st cm-ingest --stats st.json src.tar && quiet_stop ingest-st &&
    if [ -e st.json ]; then
        emitted=$(sed -n "s/.*\"emitted\":\([0-9]*\).*/\1/p" st.json) &&
        say "stats file written with emitted=$emitted" && test "$emitted" -lt $N
    fi
'
test_expect_success 'cm-ingest of a directory | head -c 100: quiet' '
    early_close ingest-dir cm-ingest src && quiet_stop ingest-dir
'

test_expect_success 'cm-filter | head -c 100: quiet, 0 or 141' '
    early_close filter cm-filter all.jsonl && quiet_stop filter
'
test_expect_success 'cm-filter --stats: no summary claiming the whole input' '
    early_close filter-st cm-filter --stats fst.json all.jsonl && quiet_stop filter-st &&
    if [ -e fst.json ]; then cat fst.json && ! grep -q "\"kept\":$N[,}]" fst.json; fi
'
test_expect_success 'cm-filter reading a producer cut short: the records before the cut kept' '
    head -c 50000 all.jsonl >cut.jsonl &&
    whole=$(grep -c "}$" cut.jsonl) &&
    test_must_fail cm-filter --no-dedup --no-quality --no-select cut.jsonl >kept.jsonl 2>err &&
    test_grep "cut.jsonl" err &&
    test $(wc -l <kept.jsonl) = $whole
'

test_expect_success 'setup: a tokenizer' '
    cm-tokenize train --vocab-size 400 -o tok.json all.jsonl 2>/dev/null && test -s tok.json
'
test_expect_success 'cm-tokenize encode | head -c 100: quiet, 0 or 141' '
    early_close enc cm-tokenize encode -t tok.json all.jsonl && quiet_stop enc
'
test_expect_success 'cm-tokenize encode --jsonl | head -c 100: quiet' '
    early_close encj cm-tokenize encode -t tok.json --jsonl all.jsonl && quiet_stop encj
'
test_expect_success 'cm-tokenize decode | head -c 100: quiet' '
    cm-tokenize encode -t tok.json all.jsonl >all.tok 2>/dev/null &&
    early_close dec cm-tokenize decode all.tok && quiet_stop dec
'

test_expect_success 'a stream cut by a closed pipe is packed but not marked complete' '
    head -c 100000 all.tok | { cm-shards pack -o cut - 2>err; echo $? >rc; } &&
    test "$(cat rc)" = 1 && test_grep "cut short" err &&
    test "$(sqlite3 cut/index.sqlite "SELECT complete FROM corpus")" = 0 &&
    cm-shards verify cut >out && test_grep "incomplete" out
'
test_expect_success 'setup: a corpus' '
    cm-shards pack -o corpus all.tok 2>/dev/null && cm-shards verify corpus >/dev/null
'
test_expect_success 'cm-shards cat | head -c 100: quiet, 0 or 141' '
    early_close cat cm-shards cat corpus && quiet_stop cat
'
test_expect_success 'cm-shards cat --ids | head -c 100: quiet' '
    early_close catids cm-shards cat --ids corpus && quiet_stop catids
'

test_expect_success 'setup: a tiny model' '
    cm-train --data corpus --layers 1 --width 32 --heads 2 --context 32 --batch 4 \
        --steps 3 -q --ckpt m.bin 2>/dev/null && test -s m.bin
'
test_expect_success 'cm-train complete | head -c 10: quiet, 0 or 141' '
    HEAD=10 && early_close compl cm-train complete --ckpt m.bin --data corpus --prompt "import numpy" \
        --max-tokens 2000 --seed 3 && quiet_stop compl && HEAD=100
'
test_expect_success 'cm-train --log - | head -c 100: quiet, 0 or 141' '
    early_close trainlog cm-train --data corpus --layers 1 --width 32 --heads 2 \
        --context 32 --batch 4 --steps 200 -q --log - && quiet_stop trainlog
'

test_done
