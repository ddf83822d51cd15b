#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: text -> tokens -> shards -> cat gives the records back; uint16 and uint32 shards;
# the real tokenizer (cm-tokenize).
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: records in the canonical field order' '
    cat >in.jsonl <<-\EOF &&
	{"repo_name":"a/x","path":"x.py","size":28,"license":"mit","content":"import numpy as np\nprint(1)\n","imports":["numpy"]}
	{"repo_name":"b/y","path":"dir/y.py","size":28,"content":"import pandas\n\u00e9t\u00e9 \"q\" \\ \t\n","imports":["pandas","numpy"],"stars":5,"hexsha":"abc"}
	{"repo_name":"a/x","path":"z.py","size":6,"content":"x = 1\n"}
	{"repo_name":"c/z","path":"empty.py","size":0,"content":""}
	{"repo_name":"c/z","path":"emoji.py","size":17,"content":"s = \"\ud83d\ude80\"\n# \u2192\n"}
	EOF
    shards-mkstream <in.jsonl >in.tok
'

test_expect_success 'pack then cat gives the records back (fake byte-level BPE tokenizer)' '
    cm-shards pack -o c --shard-tokens 40 in.tok &&
    cm-shards cat c >out &&
    jq -c . in.jsonl >expect && jq -c . out >actual &&
    test_cmp expect actual
'

test_expect_success 'several shards were made, each ending on a document boundary' '
    test $(sqlite3 c/index.sqlite "SELECT COUNT(*) FROM shards") -ge 3 &&
    sqlite3 c/index.sqlite "SELECT COUNT(*) FROM documents d JOIN shards s ON s.id = d.shard
        WHERE d.token_offset + d.n_tokens > s.tokens" >out && echo 0 >expect && test_cmp expect out &&
    cm-shards verify c
'

test_expect_success 'cat --ids gives the byte ids (eot dropped) and meta' '
    cm-shards cat --ids --where "path = '"'"'z.py'"'"'" c >out &&
    echo "{\"repo_name\":\"a/x\",\"path\":\"z.py\",\"size\":6,\"ids\":[120,32,61,32,49,10]}" >expect &&
    test_cmp expect out
'

test_expect_success 'shard files: magic, dtype 2, payload at 4096, size = 4096 + 2 x tokens' '
    for f in c/shard-*.bin; do
        test "$(head -c 7 $f)" = CMSHARD || return 1
        t=$(sqlite3 c/index.sqlite "SELECT tokens FROM shards WHERE file = '"'"'$(basename $f)'"'"'") &&
        test $(wc -c <$f) = $((4096 + 2 * t)) || return 1
    done &&
    test "$(od -An -tu4 -j12 -N4 c/shard-00000.bin | tr -d " ")" = 2
'

test_expect_success 'a vocabulary over 65536 makes uint32 shards with the same content' '
    shards-mkstream --vocab 70000 <in.jsonl | cm-shards pack -o c32 &&
    test "$(od -An -tu4 -j12 -N4 c32/shard-00000.bin | tr -d " ")" = 4 &&
    t=$(sqlite3 c32/index.sqlite "SELECT tokens FROM shards") &&
    test $(wc -c <c32/shard-00000.bin) = $((4096 + 4 * t)) &&
    cm-shards cat --ids c32 >a && cm-shards cat --ids c >b && test_cmp a b &&
    printf "{\"repo_name\":\"r\",\"path\":\"big.py\",\"ids\":[69999,65536,0,300]}\n" |
        shards-mkstream --vocab 70000 | cm-shards pack -o big32 &&
    cm-shards cat --ids big32 >out && test_grep "\"ids\":\\[69999,65536,0,300\\]" out
'

test_expect_success 'imports: one document_imports row per distinct module; a string list too' '
    printf "%s\n" "{\"repo_name\":\"r\",\"path\":\"a.py\",\"content\":\"x\",\"imports\":[\"numpy\",\"numpy\",\"os.path\"]}" \
        "{\"repo_name\":\"r\",\"path\":\"b.py\",\"content\":\"y\",\"imports\":\"pandas, numpy\"}" |
        shards-mkstream | cm-shards pack -o imp &&
    sqlite3 imp/index.sqlite "SELECT document, module FROM document_imports ORDER BY document, module" >out &&
    printf "0|numpy\n0|os.path\n1|numpy\n1|pandas\n" >expect && test_cmp expect out
'

test_expect_success 'concatenated streams are one corpus; an empty stream an empty corpus' '
    head -n 2 in.jsonl | shards-mkstream >a.tok && tail -n 3 in.jsonl | shards-mkstream >b.tok &&
    cat a.tok b.tok | cm-shards pack -o ab && cm-shards cat ab >out &&
    jq -c . out >actual && jq -c . in.jsonl >expect && test_cmp expect actual &&
    : | shards-mkstream | cm-shards pack -o none &&
    cm-shards verify none >out && test_grep "sound: 0 shards, 0 documents" out &&
    cm-shards cat none >out && test ! -s out
'

test_expect_success 'an id outside the vocabulary is named; the documents before it are kept' '
    { head -n 2 in.jsonl &&
      echo "{\"repo_name\":\"r/x\",\"path\":\"x.py\",\"ids\":[1,2,3,4,5,6,7,8,9,10,300,11]}" &&
      tail -n 1 in.jsonl; } | shards-mkstream >badid.tok &&
    test_expect_code 1 cm-shards pack -o badid badid.tok 2>err &&
    test_grep "document 3): token id 300 at position 10 is outside the vocabulary (257)" err &&
    test $(sqlite3 badid/index.sqlite "SELECT COUNT(*) FROM documents") = 2 &&
    cm-shards verify badid
'

test_expect_success 'a concatenated stream with another tokenizer is refused' '
    head -n 2 in.jsonl | shards-mkstream >a.tok &&
    tail -n 1 in.jsonl | shards-mkstream --vocab 300 >v.tok &&
    cat a.tok v.tok | test_expect_code 1 cm-shards pack -o mixed - 2>err &&
    test_grep "concatenated stream was made with a different tokenizer" err &&
    test $(sqlite3 mixed/index.sqlite "SELECT COUNT(*) FROM documents") = 2
'

test_expect_success 'the tokenizer.json is stored in the index' '
    shards-mkstream --tokenizer >tok.json &&
    sqlite3 c/index.sqlite "SELECT tokenizer_json FROM corpus" >stored &&
    echo >>tok.json && test_cmp tok.json stored
'

test_expect_success 'real pipeline: cm-tokenize train + encode | pack | cat = the input' '
    n=80; [ "$CM_SAN" = 1 ] && n=30
    tok-gen -s 7 -n $n jsonl >docs.jsonl &&
    cm-tokenize train --vocab-size 700 -o bpe.json docs.jsonl &&
    cm-tokenize encode -t bpe.json docs.jsonl | cm-shards pack -o real --shard-tokens 5000 &&
    cm-shards verify real &&
    cm-shards cat real >out &&
    jq -c "del(.size)" out >actual && jq -c . docs.jsonl >expect && test_cmp expect actual &&
    test $(sqlite3 real/index.sqlite "SELECT COUNT(*) FROM shards") -ge 2
'

test_done
