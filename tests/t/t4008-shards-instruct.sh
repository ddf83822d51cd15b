#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards and instruction examples (index v3): pack keeps the prompt length of each example of
# a v2 token stream (documents.n_prompt, the examples view), verify checks it, stats and cat show
# it; v1 streams and indexes of version 1 and 2 are still read; merge keeps it; pack --resume on
# a v2 corpus upgrades it and refuses an input whose prompts it did not keep; --split-from DIR
# keeps the split of DIR's repositories.
. "$(dirname "$0")/test-lib.sh"

# ins N REPOS: N instruction records over REPOS repositories, prompts of different lengths
ins() {
    awk -v n="$1" -v r="$2" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"repo_name\":\"org/r%d\",\"path\":\"f%03d.py\",\"prompt\":\"Write f%d %.*s\\n\",\"content\":\"def f%d(): return %0*d\\n\"}\n", i % r, i, i, i % 13, "xxxxxxxxxxxxx", i, 1 + (i * 7) % 40, i }'
}
# plain N REPOS: N plain records over REPOS repositories
plain() {
    awk -v n="$1" -v r="$2" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"repo_name\":\"org/r%d\",\"path\":\"m%03d.py\",\"content\":\"%0*d\"}\n", i % r, i, 20 + (i * 37) % 300, i }'
}
q() { sqlite3 "$1/index.sqlite" "$2"; }
# v2 DIR: make DIR's index one of version 2 (no n_prompt column, no examples view)
v2() {
    sqlite3 "$1/index.sqlite" "PRAGMA legacy_alter_table = ON; DROP VIEW examples;
        CREATE TABLE d2(id INTEGER PRIMARY KEY, shard INTEGER NOT NULL, token_offset INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL, n_bytes INTEGER, repo_name TEXT, path TEXT, license TEXT,
            imports TEXT, content_hash TEXT, split TEXT NOT NULL, extra TEXT);
        INSERT INTO d2 SELECT id, shard, token_offset, n_tokens, n_bytes, repo_name, path, license,
            imports, content_hash, split, extra FROM documents;
        DROP TABLE documents; ALTER TABLE d2 RENAME TO documents;
        PRAGMA user_version = 2; UPDATE corpus SET format_version = 2" &&
    test "$(q "$1" "SELECT COUNT(*) FROM pragma_table_info('documents') WHERE name = 'n_prompt'")" = 0
}
# mismatched DIR BASE: documents of DIR whose repository has another split in BASE
mismatched() {
    sqlite3 "$1/index.sqlite" "ATTACH '$2/index.sqlite' AS b;
        SELECT COUNT(*) FROM documents d JOIN (SELECT DISTINCT repo_name, split FROM b.documents) x
        ON x.repo_name = d.repo_name WHERE x.split <> d.split"
}

test_expect_success 'setup: instruction records and their expected prompt lengths' '
    ins 200 15 >ins.jsonl &&
    shards-mkstream <ins.jsonl >ins.tok &&
    jq -r "(.prompt | length)" ins.jsonl | awk "{ s += \$1 } END { print s }" >prompt.sum &&
    test "$(cat prompt.sum)" -gt 200
'

test_expect_success 'pack keeps n_prompt; version 3; SQL over the examples view' '
    cm-shards pack -o ins --valid-fraction 0.2 ins.tok 2>err &&
    test "$(q ins "PRAGMA user_version")" = 3 &&
    test "$(q ins "SELECT format_version FROM corpus")" = 3 &&
    test "$(q ins "SELECT COUNT(*) FROM documents WHERE n_prompt > 0")" = 200 &&
    q ins "SELECT SUM(n_prompt) FROM documents" >got && test_cmp prompt.sum got &&
    jq -r "(.prompt | length)" ins.jsonl >want.np &&
    q ins "SELECT n_prompt FROM documents ORDER BY id" >got.np && test_cmp want.np got.np &&
    test "$(q ins "SELECT COUNT(*) FROM examples")" = 200 &&
    test "$(q ins "SELECT SUM(n_response) FROM examples")" = \
         "$(q ins "SELECT SUM(n_tokens) - SUM(n_prompt) FROM documents")" &&
    test "$(q ins "SELECT COUNT(*) FROM examples WHERE n_response < 2 OR n_prompt + n_response <> n_tokens")" = 0
'

test_expect_success 'verify, stats and cat show the examples' '
    cm-shards verify ins >out && test_grep "sound: .* 200 documents" out &&
    cm-shards stats ins >out && test_grep "prompt tokens" out &&
    cm-shards stats --json ins >s.json &&
    test "$(jq "[.examples[].examples] | add" s.json)" = 200 &&
    test "$(jq "[.examples[].prompt_tokens] | add" s.json)" = "$(cat prompt.sum)" &&
    test "$(jq "[.examples[].response_tokens] | add" s.json)" = \
         "$(q ins "SELECT SUM(n_response) FROM examples")" &&
    cm-shards cat --limit 1 ins >out &&
    test "$(jq .n_prompt out)" = "$(head -n 1 want.np)" &&
    test "$(jq -r .content out)" = "$(head -n 1 ins.jsonl | jq -r ".prompt + .content")"
'

test_expect_success 'verify refuses a prompt not shorter than its document' '
    cp -r ins badnp &&
    q badnp "UPDATE documents SET n_prompt = n_tokens WHERE id = 3" &&
    test_expect_code 4 cm-shards verify badnp 2>err &&
    test_grep "document 3: a prompt of .* tokens is not shorter than its" err
'

test_expect_success 'a v1 stream packs as plain documents: no examples, no stats table' '
    plain 120 6 | shards-mkstream --v1 >plain1.tok &&
    plain 120 6 | shards-mkstream >plain2.tok &&
    cm-shards pack -o p1 plain1.tok 2>/dev/null && cm-shards pack -o p2 plain2.tok 2>/dev/null &&
    test "$(q p1 "SELECT COUNT(*) FROM examples")" = 0 &&
    test "$(q p1 "SELECT SUM(n_prompt) FROM documents")" = 0 &&
    cm-shards cat --ids p1 >a && cm-shards cat --ids p2 >b && test_cmp a b &&
    cm-shards stats p1 >out && ! test_grep "prompt tokens" out 2>/dev/null
'

test_expect_success 'an index of version 2 is still read by every verb' '
    cp -r ins old && v2 old &&
    cm-shards verify old >out && test_grep sound out &&
    cm-shards stats old >out && ! test_grep "prompt tokens" out 2>/dev/null &&
    cm-shards cat --limit 1 old >out && test "$(jq .n_prompt out)" = null &&
    cm-shards cat --ids old >a && cm-shards cat --ids ins | jq -c "del(.n_prompt)" >b &&
    jq -c . a >a2 && test_cmp b a2
'

test_expect_success 'merge of a v2 and a v3 corpus: v3, the v2 documents plain, the examples kept' '
    cm-shards merge -o mg old ins 2>/dev/null &&
    test "$(q mg "PRAGMA user_version")" = 3 &&
    test "$(q mg "SELECT COUNT(*) FROM documents")" = 400 &&
    test "$(q mg "SELECT COUNT(*) FROM documents WHERE id < 200 AND n_prompt > 0")" = 0 &&
    q mg "SELECT n_prompt FROM documents WHERE id >= 200 ORDER BY id" >got.np &&
    test_cmp want.np got.np &&
    cm-shards verify mg >out && test_grep sound out
'

test_expect_success 'split on a v2 corpus makes it version 3 (plain documents)' '
    cp -r old up && cm-shards split --valid-fraction 0.3 up 2>/dev/null &&
    test "$(q up "PRAGMA user_version")" = 3 &&
    test "$(q up "SELECT COUNT(*) FROM examples")" = 0 &&
    cm-shards verify up >out && test_grep sound out
'

test_expect_success 'pack --resume of a v2 corpus: upgraded; an input with prompts refused' '
    plain 120 6 | shards-mkstream --no-end >cut.tok &&
    test_expect_code 1 cm-shards pack -o r --shard-tokens 2000 cut.tok 2>/dev/null &&
    n=$(q r "SELECT COUNT(*) FROM documents") && test "$n" -gt 0 &&
    v2 r && cm-shards pack --resume -o r plain2.tok 2>/dev/null &&
    test "$(q r "PRAGMA user_version")" = 3 &&
    cm-shards cat --ids r >a && cm-shards cat --ids p2 >b && test_cmp b a &&
    shards-mkstream --no-end <ins.jsonl >icut.tok &&
    test_expect_code 1 cm-shards pack -o ri --shard-tokens 2000 icut.tok 2>/dev/null &&
    v2 ri && test_expect_code 1 cm-shards pack --resume -o ri ins.tok 2>err &&
    test_grep "kept no prompt lengths" err
'

test_expect_success 'bad input: a damaged n_prompt is refused, the documents before it kept' '
    pos=$(grep -obUa DOC2 ins.tok | sed -n 101p | cut -d: -f1) && test -n "$pos" &&
    cp ins.tok dmg.tok &&
    printf "\001" | dd of=dmg.tok bs=1 seek=$((pos + 16)) conv=notrunc status=none &&
    ! cmp -s ins.tok dmg.tok &&
    test_expect_code 1 cm-shards pack -o dmg dmg.tok 2>err &&
    test_grep "(document 101): checksum mismatch" err &&
    test_grep "kept the 100 complete documents before the fault" err &&
    q dmg "SELECT n_prompt FROM documents ORDER BY id" >got.np &&
    head -n 100 want.np >w && test_cmp w got.np
'

test_expect_success '--split-from keeps the split of the base corpus for its repositories' '
    plain 400 10 | shards-mkstream >base.tok &&
    cm-shards pack -o base --valid-fraction 0.2 base.tok 2>/dev/null &&
    test "$(q base "SELECT COUNT(DISTINCT repo_name) FROM documents WHERE split = '"'valid'"'")" -gt 0 &&
    cm-shards pack -o free --valid-fraction 0.5 ins.tok 2>/dev/null &&
    test "$(mismatched free base)" -gt 0 &&
    cm-shards pack -o kept --valid-fraction 0.5 --split-from base ins.tok 2>err &&
    test_grep "split-from base: 10 repositories keep their split" err &&
    test_grep "10 of the 15 repositories kept the split of --split-from" err &&
    test "$(mismatched kept base)" = 0 &&
    test "$(q kept "SELECT COUNT(DISTINCT repo_name) FROM documents WHERE split = '"'valid'"'")" -gt \
         "$(q base "SELECT COUNT(DISTINCT repo_name) FROM documents WHERE split = '"'valid'"'")"
'

test_expect_success 'the pins stay: split, merge; split --split-from re-pins; another unit refused' '
    cm-shards split --valid-fraction 0.1 kept 2>/dev/null && test "$(mismatched kept base)" = 0 &&
    cm-shards split --valid-fraction 0.1 p2 2>/dev/null &&
    cm-shards merge -o km kept p2 2>err && test_grep "kept the split of --split-from" err &&
    test "$(mismatched km base)" = 0 &&
    test_expect_code 2 cm-shards split --valid-fraction 0.1 --split-by path kept 2>err &&
    test_grep "give --split-from DIR again" err &&
    cm-shards split --valid-fraction 0.5 --split-from base free 2>/dev/null &&
    test "$(mismatched free base)" = 0 &&
    cm-shards verify free >out && test_grep sound out
'

test_expect_success '--split-from a directory that is no corpus: exit 3, nothing made' '
    test_expect_code 3 cm-shards pack -o none --split-from nowhere ins.tok 2>err &&
    test_grep "split-from nowhere" err && ! test -e none &&
    test_expect_code 3 cm-shards split --valid-fraction 0.1 --split-from nowhere kept 2>err &&
    test "$(mismatched kept base)" = 0
'

test_done
