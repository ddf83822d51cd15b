#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards merge: corpora packed in parallel become one, without copying token data.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: one input in three parts, packed separately and whole' '
    awk "BEGIN { for (i = 0; i < 300; i++)
        printf \"{\\\"repo_name\\\":\\\"r%d\\\",\\\"path\\\":\\\"p%03d.py\\\",\\\"content\\\":\\\"%0*d\\\",\\\"imports\\\":[\\\"numpy\\\"]}\\n\", i % 17, i, 1 + (i * 13) % 90, i }" >all.jsonl &&
    head -n 100 all.jsonl >p1.jsonl && sed -n 101,220p all.jsonl >p2.jsonl &&
    tail -n 80 all.jsonl >p3.jsonl &&
    for p in p1 p2 p3 all; do
        shards-mkstream <$p.jsonl | cm-shards pack -o $p --shard-tokens 1500 || return 1
    done
'

test_expect_success 'merge gives the documents of the whole, in order, and verifies' '
    cm-shards merge -o m p1 p2 p3 &&
    cm-shards verify m >out && test_grep "sound: .* 300 documents" out &&
    cm-shards cat --ids m >a && cm-shards cat --ids all >b && test_cmp b a &&
    sqlite3 m/index.sqlite "SELECT id, repo_name, path, n_tokens, split FROM documents ORDER BY id" >a &&
    sqlite3 all/index.sqlite "SELECT id, repo_name, path, n_tokens, split FROM documents ORDER BY id" >b &&
    test_cmp b a &&
    sqlite3 m/index.sqlite "SELECT COUNT(*) FROM document_imports" >a && echo 300 >b && test_cmp b a
'

test_expect_success 'merge links the shard files (no copy): same inode' '
    n=$(sqlite3 p1/index.sqlite "SELECT COUNT(*) FROM shards") &&
    test "$(stat -c %i p1/shard-00000.bin)" = "$(stat -c %i m/shard-00000.bin)" &&
    test "$(stat -c %i p2/shard-00000.bin)" = "$(stat -c %i m/shard-$(printf %05d $n).bin)"
'

test_expect_success 'the merged corpus is read by the sampler (cat --where over several parts)' '
    cm-shards cat --ids --where "path IN ('"'"'p000.py'"'"', '"'"'p150.py'"'"', '"'"'p299.py'"'"')" m >out &&
    test $(wc -l <out) = 3 &&
    test "$(cm-shards stats --json m | jq .documents)" = 300
'

test_expect_success 'merge refuses another tokenizer, other split settings, and a used directory' '
    printf "{\"repo_name\":\"r\",\"path\":\"x\",\"content\":\"x\"}\n" | shards-mkstream --vocab 70000 |
        cm-shards pack -o wide &&
    test_expect_code 1 cm-shards merge -o m2 p1 wide 2>err && test_grep "another tokenizer" err &&
    shards-mkstream <p1.jsonl | cm-shards pack -o p1b --valid-fraction 0.5 &&
    test_expect_code 1 cm-shards merge -o m2 p1 p1b 2>err && test_grep "valid-fraction" err &&
    test_expect_code 2 cm-shards merge -o m p1 2>err && test_grep "already holds a corpus" err &&
    cm-shards merge --force -o m p2 && cm-shards verify m >out && test_grep "120 documents" out &&
    test_expect_code 3 cm-shards merge -o m3 nosuch 2>err && test_grep "nosuch/index.sqlite" err
'

test_done
