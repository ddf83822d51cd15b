#!/bin/sh
# SPDX-License-Identifier: MIT
# t9400-fault-kill: SIGKILL at random moments, several runs, then resume; the result must be
# byte-identical to an uninterrupted run. These are the randomized multi-kill variants of the
# fixed-delay tests in t4003-shards-crash.sh and t5002-train-resume.sh:
#   - cm-shards pack killed at a random moment, then its --resume killed too, then resumed to
#     the end (with the same options, as a user would): verify passes and every shard file
#     equals the uninterrupted pack's; a hot journal left by a killed writer (made
#     deterministically) must not stop verify;
#   - the producer of `cm-tokenize encode | cm-shards pack` killed: the packer keeps the
#     documents before the cut (exit 1, corpus marked incomplete), and `encode | pack --resume`
#     gives the uninterrupted corpus's documents and tokens (the shard boundaries may differ:
#     the shard closed at the cut is kept) and the same trained model;
#   - cm-train on a real corpus killed twice at random moments and resumed: the final checkpoint
#     equals the uninterrupted run's, byte for byte.
# Delays are drawn from CM_SEED (default: the clock), printed so that a failure can be replayed.
. "$(dirname "$0")/test-lib.sh"
. "$TOP/tests/fuzz/gen-data.sh"

RUNS=3
NDOCS=40000
NRECS=12000
STEPS=80
if [ "$CM_SAN" = 1 ]; then RUNS=2; NDOCS=12000; NRECS=3000; STEPS=40; fi
SEED=${CM_SEED:-$(date +%s)}
say "CM_SEED=$SEED"

# delay K MAX: the K-th random delay in [0.02, MAX) seconds for this seed
delay() {
    awk -v s="$SEED" -v k="$1" -v m="$2" 'BEGIN { srand(s % 1000003); for (i = 0; i < k; i++) x = rand();
                                                 printf "%.3f", 0.02 + rand() * (m - 0.02) }'
}

# elapsed CMD...: run CMD, print its wall time in seconds (3 decimals) on stdout
elapsed() {
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || return 1
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
}

# kill_after SECS CMD...: start CMD in the background, SIGKILL it after SECS (if still running).
# Each kill that landed (the command died of SIGKILL, exit 137) adds a line to kills.landed, so
# that the test can check that the kills it meant to test happened at all.
kill_after() {
    secs=$1
    shift
    "$@" >/dev/null 2>&1 &
    pid=$!
    sleep "$secs"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $? = 137 ] && echo "$*" >>"$TRASH/kills.landed"
    return 0
}
# kills_landed: how many kills landed so far
kills_landed() {
    if [ -f "$TRASH/kills.landed" ]; then wc -l <"$TRASH/kills.landed"; else echo 0; fi
}

# same_docs A B: the two corpora hold the same documents with the same tokens, and a short
# training run on each gives the same checkpoint
same_docs() {
    sqlite3 "$1/index.sqlite" "SELECT id, repo_name, path, n_tokens, n_bytes, split FROM documents ORDER BY id" >a.docs &&
    sqlite3 "$2/index.sqlite" "SELECT id, repo_name, path, n_tokens, n_bytes, split FROM documents ORDER BY id" >b.docs &&
    test_cmp a.docs b.docs &&
    cm-shards cat --ids "$1" >a.ids && cm-shards cat --ids "$2" >b.ids && test_cmp a.ids b.ids &&
    T="--layers 1 --width 32 --heads 2 --context 16 --batch 4 --steps 6 -q" &&
    cm-train --data "$1" $T --ckpt a.ckpt && cm-train --data "$2" $T --ckpt b.ckpt &&
    cmp a.ckpt b.ckpt
}

# same_shards A B: the two corpora have the same shard files, byte for byte, and documents
same_shards() {
    (cd "$1" && ls shard-*.bin) >a.list && (cd "$2" && ls shard-*.bin) >b.list &&
    test_cmp a.list b.list &&
    for f in $(cat a.list); do cmp "$1/$f" "$2/$f" || return 1; done &&
    sqlite3 "$1/index.sqlite" "SELECT id, repo_name, path, shard, token_offset, n_tokens FROM documents ORDER BY id" >a.docs &&
    sqlite3 "$2/index.sqlite" "SELECT id, repo_name, path, shard, token_offset, n_tokens FROM documents ORDER BY id" >b.docs &&
    test_cmp a.docs b.docs
}

# verify_after_kill DIR: cm-shards verify passes on a corpus whose packer was killed (also
# when the killed writer left a hot rollback journal: the reader rolls it back).
verify_after_kill() {
    cm-shards verify "$1" >v.out 2>&1 && return 0
    cat v.out
    return 1
}

test_expect_success "setup: a stream of $NDOCS documents and its uninterrupted pack" '
    shards-mkstream --gen $NDOCS --repos 300 --mean-tokens 120 >in.tok &&
    t=$(elapsed cm-shards pack -o ref --shard-tokens 100k in.tok) &&
    echo "$t" >pack.time && say "uninterrupted pack: $t s" &&
    cm-shards verify ref >/dev/null
'
T=$(cat pack.time 2>/dev/null || echo 1)
r=1
while [ $r -le $RUNS ]; do
    d1=$(delay $((r * 2)) "$T")
    d2=$(delay $((r * 2 + 1)) "$T")
    test_expect_success "pack run $r/$RUNS: SIGKILL after ${d1}s, its resume after ${d2}s, resume: identical corpus" "
        rm -rf k &&
        kill_after $d1 cm-shards pack -o k --shard-tokens 100k in.tok &&
        if [ -e k/index.sqlite ]; then
            kill_after $d2 cm-shards pack --resume -o k --shard-tokens 100k in.tok &&
            verify_after_kill k &&
            cm-shards pack --resume -o k --shard-tokens 100k in.tok 2>err
        else
            say 'killed before the index existed: pack again' &&
            cm-shards pack -o k --shard-tokens 100k in.tok 2>err
        fi &&
        cm-shards verify k >out && test_grep 'sound' out &&
        same_shards ref k
    "
    r=$((r + 1))
done
# A writer killed inside an index transaction leaves a hot rollback journal. Made here
# deterministically: sqlite3 deletes every document row with a one-page cache (so pages
# spill into the file) and is killed before it commits.
test_expect_success 'setup: a hot journal left by a writer killed mid-transaction' '
    rm -rf hj && cp -r ref hj && mkfifo sql.fifo &&
    { sqlite3 hj/index.sqlite <sql.fifo >/dev/null 2>&1 & echo $! >sq.pid; } &&
    exec 3>sql.fifo &&
    printf "PRAGMA cache_size = 1;\nBEGIN;\nDELETE FROM documents;\n" >&3 &&
    i=0 && while [ ! -s hj/index.sqlite-journal ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done &&
    sleep 0.5 && kill -KILL $(cat sq.pid) && exec 3>&- &&
    test -s hj/index.sqlite-journal
'
test_expect_success 'hot journal: verify rolls it back and passes; the corpus reads whole' '
    cm-shards verify hj >hj.out 2>&1 &&
    test_grep "sound" hj.out &&
    sqlite3 -readonly hj/index.sqlite "SELECT COUNT(*) FROM documents" >n &&
    test "$(cat n)" = $NDOCS
'

test_expect_success 'setup: records, a tokenizer, the uninterrupted encode | pack' '
    gen_jsonl $NRECS >recs.jsonl && head -n 2000 recs.jsonl >train.jsonl &&
    cm-tokenize train --vocab-size 500 -o tok.json train.jsonl 2>/dev/null &&
    cm-tokenize encode -t tok.json recs.jsonl 2>/dev/null | cm-shards pack -o pref - 2>/dev/null &&
    cm-shards verify pref >/dev/null &&
    t=$(elapsed sh -c "cm-tokenize encode -t tok.json recs.jsonl >/dev/null") &&
    echo "$t" >enc.time && say "encode alone: $t s"
'
T=$(cat enc.time 2>/dev/null || echo 1)
r=1
while [ $r -le $RUNS ]; do
    d=$(delay $((100 + r)) "$T")
    test_expect_success "pipeline run $r/$RUNS: encode killed after ${d}s: pack keeps what came, resume completes" "
        rm -rf pk &&
        { cm-tokenize encode -t tok.json recs.jsonl 2>/dev/null & echo \$! >enc.pid; wait; } |
            { cm-shards pack -o pk - 2>err; echo \$? >rc; } &
        sleep $d && kill -KILL \$(cat enc.pid) 2>/dev/null; wait
        rc=\$(cat rc) && say \"pack exit \$rc: \$(cat err)\" &&
        if [ \$rc = 1 ] && [ -e pk/index.sqlite ]; then
            test_grep 'cut short' err &&
            test \"\$(sqlite3 pk/index.sqlite 'SELECT complete FROM corpus')\" = 0 &&
            cm-shards verify pk >/dev/null 2>&1 &&
            cm-tokenize encode -t tok.json recs.jsonl 2>/dev/null | cm-shards pack --resume -o pk - 2>err
        elif [ \$rc = 1 ]; then
            test_grep 'empty input' err &&
            cm-tokenize encode -t tok.json recs.jsonl 2>/dev/null | cm-shards pack -o pk - 2>err
        else
            test \$rc = 0
        fi &&
        test \"\$(sqlite3 pk/index.sqlite 'SELECT complete FROM corpus')\" = 1 &&
        cm-shards verify pk >/dev/null && same_docs pref pk
    "
    r=$((r + 1))
done

test_expect_success "the pack kills landed: at least one run was killed mid-pack" '
    n=$(kills_landed) && say "$n kills landed" && test "$n" -ge 1
'
rm -f "$TRASH/kills.landed"

M="--data pref --layers 2 --width 64 --heads 2 --context 32 --batch 8 --steps $STEPS --ckpt-every 3 -q"
test_expect_success "setup: an uninterrupted training run ($STEPS steps) on the corpus" '
    t=$(elapsed cm-train $M --ckpt full.bin) && test -s full.bin &&
    echo "$t" >train.time && say "uninterrupted training: $t s"
'
T=$(cat train.time 2>/dev/null || echo 1)
r=1
while [ $r -le $RUNS ]; do
    d1=$(delay $((200 + r * 2)) "$T")
    d2=$(delay $((201 + r * 2)) "$T")
    test_expect_success "train run $r/$RUNS: SIGKILL after ${d1}s, after ${d2}s of the resume, resume: identical checkpoint" "
        rm -f part.bin &&
        kill_after $d1 cm-train $M --ckpt part.bin &&
        if [ -e part.bin ]; then kill_after $d2 cm-train $M --ckpt part.bin --resume; fi &&
        if [ -e part.bin ]; then
            cm-train $M --ckpt part.bin --resume 2>err
        else
            say 'killed before the first checkpoint: train again' && cm-train $M --ckpt part.bin
        fi &&
        cmp full.bin part.bin &&
        test -z \"\$(ls | grep '^part\\.bin\\.')\"
    "
    r=$((r + 1))
done
test_expect_success "the training kills landed: at least one run was killed mid-run" '
    n=$(kills_landed) && say "$n kills landed" && test "$n" -ge 1
'

test_done
