#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: crash safety. SIGKILL at several moments, a full disk (ulimit -f), a truncated input
# stream, SIGTERM: the index always points only at complete, checksummed shards (verify passes),
# and pack --resume finishes with exactly the documents of an uninterrupted run.
# verify finds a corrupted byte, a damaged header, a truncated shard.
. "$(dirname "$0")/test-lib.sh"

ndocs=40000
[ "$CM_SAN" = 1 ] && ndocs=12000

docs() { sqlite3 "$1/index.sqlite" "SELECT id, repo_name, path, n_tokens, n_bytes, split, imports
                                     FROM documents ORDER BY id"; }
# the same without the split: an interrupted corpus's split covers its part only (the split is
# assigned over the whole corpus at the end of the pack; the resume assigns it again)
docs_part() { sqlite3 "$1/index.sqlite" "SELECT id, repo_name, path, n_tokens, n_bytes, imports
                                         FROM documents ORDER BY id"; }

test_expect_success 'setup: a stream and its uninterrupted pack' '
    shards-mkstream --gen $ndocs --repos 300 --mean-tokens 120 >in.tok &&
    cm-shards pack -o ref --shard-tokens 100k in.tok &&
    docs ref >ref.docs &&
    test $(wc -l <ref.docs) = $ndocs &&
    test $(sqlite3 ref/index.sqlite "SELECT COUNT(*) FROM shards") -ge 10
'

# kill_at DELAY DIR: start a pack, SIGKILL it after DELAY seconds
kill_at() {
    cm-shards pack -o "$2" --shard-tokens 100k in.tok 2>/dev/null &
    pid=$!
    sleep "$1"
    kill -KILL $pid 2>/dev/null
    wait $pid
    [ $? = 137 ] && echo "$1" >>"$TRASH/kills.landed"   # the pack died of this kill
    return 0
}

# has_corpus DIR: the pack got as far as creating its index
has_corpus() { sqlite3 -readonly "$1/index.sqlite" "SELECT 1 FROM corpus" >/dev/null 2>&1; }

# jitter: a random extra delay of 0 to 0.05 s (printed so that a failure can be replayed)
jitter() { awk "BEGIN { srand(); printf \"%.3f\", rand() * 0.05 }"; }

for base in 0.03 0.12 0.25 0.4; do
    test_expect_success "SIGKILL during pack (after ~${base}s): verify passes, resume completes" '
        d=$(awk "BEGIN { print $base + $(jitter) }") && say "kill after $d s" &&
        rm -rf k && kill_at $d k &&
        if has_corpus k; then
            cm-shards verify k >out 2>err &&
            done_docs=$(sqlite3 k/index.sqlite "SELECT COUNT(*) FROM documents") &&
            say "$done_docs documents were indexed when killed" &&
            docs_part k >part && docs_part ref | head -n $done_docs >expect.part &&
            test_cmp expect.part part
        fi &&
        cm-shards pack --resume -o k in.tok 2>err &&
        cm-shards verify k >out && test_grep "sound: .* $ndocs documents" out &&
        docs k >actual && test_cmp ref.docs actual &&
        ! ls k | grep -q "\.tmp$"
    '
done

test_expect_success 'the kills landed: at least one pack was killed mid-run' '
    test -s "$TRASH/kills.landed" && say "$(wc -l <"$TRASH/kills.landed") of 4 kills landed"
'

test_expect_success 'resume removes leftover .tmp files and unrecorded shard files' '
    size=$(wc -c <in.tok) && head -c $((size / 2)) in.tok >half.tok &&
    rm -rf k && test_expect_code 1 cm-shards pack -o k --shard-tokens 100k half.tok 2>/dev/null &&
    echo junk >k/shard-00777.bin.tmp && echo junk >k/shard-00778.bin &&
    cm-shards pack --resume -o k in.tok 2>err &&
    test_grep "shard-00778.bin: not recorded in the index" err &&
    test ! -e k/shard-00777.bin.tmp && test ! -e k/shard-00778.bin &&
    docs k >actual && test_cmp ref.docs actual
'

test_expect_success 'resume refuses another input' '
    rm -rf k && size=$(wc -c <in.tok) && head -c $((size / 2)) in.tok >half.tok &&
    test_expect_code 1 cm-shards pack -o k --shard-tokens 100k half.tok 2>err &&
    n=$(sqlite3 k/index.sqlite "SELECT COUNT(*) FROM documents") && test "$n" -gt 0 &&
    shards-mkstream --gen 100 --seed 9 --mean-tokens 50 >other.tok &&
    test_expect_code 1 cm-shards pack --resume -o k other.tok 2>err &&
    test_grep "not the one this corpus was packed from\|the input ended after" err &&
    printf "{\"repo_name\":\"r\",\"path\":\"p\",\"content\":\"x\"}\n" | shards-mkstream >bytes.tok &&
    test_expect_code 1 cm-shards pack --resume -o k bytes.tok 2>err &&
    test_grep "another tokenizer" err &&
    cm-shards verify k
'

test_expect_success 'SIGTERM: the current shard is finished, exit 130, resume completes' '
    rm -rf t &&
    cm-shards pack -o t --shard-tokens 100k in.tok 2>err &
    pid=$! && sleep 0.2 && kill -TERM $pid; wait $pid; rc=$? &&
    if [ $rc = 130 ]; then test_grep "interrupted" err; else test $rc = 0; fi &&
    cm-shards verify t && cm-shards pack --resume -o t in.tok 2>err &&
    docs t >actual && test_cmp ref.docs actual
'

test_expect_success 'a second SIGTERM: exit 130 at once (its input still open), the shard being written removed' '
    rm -rf s2 f.fifo && mkfifo f.fifo && size=$(wc -c <in.tok) &&
    { cm-shards pack -o s2 --shard-tokens 100k f.fifo 2>err & pid=$!; } &&
    { sh -c "head -c $((size / 2)) in.tok; exec sleep 60" >f.fifo & feeder=$!; } &&
    i=0 && while ! ls s2 2>/dev/null | grep -q "\.tmp$" && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1)); done &&
    ls s2 | grep -q "^shard-[0-9]*\.bin\.tmp$" &&
    i=0 && while [ "$(ls -l s2 | md5sum)" != "$(sleep 0.5; ls -l s2 | md5sum)" ] && [ $i -lt 60 ]; do
        i=$((i + 1)); done &&
    kill -TERM $pid && sleep 0.3 && kill -0 $pid && t0=$(date +%s) && kill -TERM $pid;
    wait $pid; rc=$?; secs=$(( $(date +%s) - t0 )); kill $feeder 2>/dev/null; wait $feeder 2>/dev/null;
    say "exit $rc, $secs s after the second signal" &&
    test $rc = 130 && test $secs -lt 20 && ! ls s2 | grep -q "\.tmp$" &&
    cm-shards verify s2 >out && cm-shards pack --resume -o s2 in.tok 2>err &&
    docs s2 >actual && test_cmp ref.docs actual
'

test_expect_success 'file size limit while writing a shard: exit 3, named, index consistent' '
    rm -rf f &&
    (ulimit -f 1500 && cm-shards pack -o f --shard-tokens 2M in.tok) 2>err; rc=$?;
    test $rc = 3 &&
    test_grep "cm-shards: cannot write to .f/shard-00000.bin.tmp.: File too large" err &&
    test ! -e f/shard-00000.bin.tmp &&
    cm-shards verify f &&
    cm-shards pack --resume -o f in.tok && docs f >actual && test_cmp ref.docs actual
'

test_expect_success 'file size limit while growing the index: exit 3, index consistent' '
    rm -rf g &&
    (ulimit -f 1200 && cm-shards pack -o g --shard-tokens 50k in.tok) 2>err; rc=$?;
    test $rc = 3 && test_grep "g/index.sqlite" err &&
    cm-shards verify g >out && n=$(sqlite3 g/index.sqlite "SELECT COUNT(*) FROM shards") &&
    test $(ls g | grep -c "^shard-.*\.bin$") = "$n" &&
    cm-shards pack --resume -o g in.tok && docs g >actual && test_cmp ref.docs actual
'

test_expect_success 'truncated input stream: whole documents kept, exit 1, resume completes' '
    size=$(wc -c <in.tok) && head -c $((size / 3)) in.tok >cut.tok &&
    rm -rf tr && test_expect_code 1 cm-shards pack -o tr --shard-tokens 100k cut.tok 2>err &&
    test_grep "cut.tok: at byte [0-9]* (document [0-9]*): stream cut short" err &&
    test_grep "kept the [0-9]* complete documents" err &&
    cm-shards verify tr >out 2>err && test_grep "incomplete" out &&
    n=$(sqlite3 tr/index.sqlite "SELECT COUNT(*) FROM documents") &&
    test "$n" -gt $((ndocs / 4)) && test "$n" -lt $((ndocs / 2)) &&
    docs_part tr >part && docs_part ref | head -n $n >expect && test_cmp expect part &&
    cm-shards pack --resume -o tr in.tok && docs tr >actual && test_cmp ref.docs actual &&
    test "$(sqlite3 tr/index.sqlite "SELECT complete FROM corpus")" = 1
'

test_expect_success 'stream without its end frame: documents kept, exit 1' '
    printf "{\"repo_name\":\"r\",\"path\":\"a\",\"content\":\"abc\"}\n" >one.jsonl &&
    shards-mkstream --no-end <one.jsonl >noend.tok &&
    test_expect_code 1 cm-shards pack -o ne noend.tok 2>err && test_grep "cut short" err &&
    cm-shards cat --ids ne >out && test_grep "\"ids\":\\[97,98,99\\]" out
'

test_expect_success 'a hot journal left by a killed index writer is rolled back by readers' '
    rm -rf hj && cp -r ref hj && mkfifo sql.fifo &&
    { sqlite3 hj/index.sqlite <sql.fifo >/dev/null 2>&1 & echo $! >sq.pid; } &&
    exec 3>sql.fifo &&
    printf "PRAGMA cache_size = 1;\nBEGIN;\nDELETE FROM documents;\n" >&3 &&
    i=0 && while [ ! -s hj/index.sqlite-journal ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done &&
    sleep 0.3 && kill -KILL $(cat sq.pid) && exec 3>&- &&
    test -s hj/index.sqlite-journal &&
    cm-shards verify hj >out && test_grep "sound: .* $ndocs documents" out &&
    docs hj >actual && test_cmp ref.docs actual
'

test_expect_success 'verify finds a corrupted payload byte, naming the shard' '
    cp -r ref bad &&
    printf "\377" | dd of=bad/shard-00003.bin bs=1 seek=5000 conv=notrunc status=none &&
    test_expect_code 4 cm-shards verify bad >out 2>err &&
    test_grep "bad/shard-00003.bin: payload checksum mismatch" err &&
    test_grep "unsound: 1 problem" err
'

test_expect_success 'verify finds a damaged header and a truncated shard; the reader refuses' '
    rm -rf bad && cp -r ref bad &&
    printf "X" | dd of=bad/shard-00001.bin bs=1 seek=40 conv=notrunc status=none &&
    truncate -s -1 bad/shard-00002.bin &&
    test_expect_code 4 cm-shards verify bad 2>err &&
    test_grep "shard-00001.bin: header checksum mismatch" err &&
    test_grep "shard-00002.bin: truncated" err &&
    test_expect_code 4 cm-shards cat --ids bad >out 2>err &&
    test_grep "bad/shard-00001.bin" err
'

test_expect_success 'verify finds index rows that do not match the data' '
    rm -rf bad && cp -r ref bad &&
    sqlite3 bad/index.sqlite "UPDATE documents SET n_tokens = n_tokens + 1 WHERE id = 7" &&
    test_expect_code 4 cm-shards verify bad 2>err &&
    test_grep "document 8: tokens .* do not follow the previous document\|document 7 does not end" err &&
    rm -rf bad && cp -r ref bad &&
    sqlite3 bad/index.sqlite "UPDATE documents SET shard = 0 WHERE id = (SELECT first_document FROM shards WHERE id = 1);
        DELETE FROM documents WHERE id = 3" &&
    test_expect_code 4 cm-shards verify bad 2>err &&
    test_grep "shard-00001.bin: document [0-9]* lies in this shard.s id range but its row names shard 0" err &&
    test_grep "the shards row says [0-9]* documents, the documents table holds" err &&
    test_grep "the documents table holds $((ndocs - 1)) rows" err
'

test_done
