#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest --instructions: JSONL dumps of instruction records (no `content`: Alpaca's
# instruction/input/output, instruction/output/system, prompt/completion) pass through
# unchanged with "source" added, plain, .gz and .zst; without the option such a record stays
# a bad line (exit 1, the others kept).
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: instruction records of three shapes and a code record' '
    cat >ins.jsonl <<-\EOT &&
	{"instruction":"Add the numbers.","input":"1 2","output":"3","id":7,"tags":["a","b"]}
	{"instruction":"Say hi in \"C\".","output":"puts(\"hi\\u00e9\");","system":"You write C."}

	{"prompt":"2+2?","completion":" 4","source":"theirs"}
	{"repo_name":"a/b","path":"x.py","content":"x = 1\n"}
	EOT
    gzip -k ins.jsonl && zstd -q -k ins.jsonl
'

test_expect_success '--instructions: records without content pass through unchanged, source added' '
    cm-ingest -q --instructions ins.jsonl >out &&
    test $(wc -l <out) = 4 &&
    python3 -c "
import json
a = [json.loads(l) for l in open(\"ins.jsonl\") if l.strip()]
b = [json.loads(l) for l in open(\"out\")]
for x, y in zip(a[:3], b[:3]):
    extra = {} if \"source\" in x else {\"source\": \"ins.jsonl\"}
    assert y == dict(x, **extra), (x, y)
    assert list(y) == list(x) + list(extra), (list(x), list(y))
assert b[3][\"content\"] == \"x = 1\n\" and b[3][\"source\"] == \"ins.jsonl\", b[3]
" &&
    head -1 out | grep -F "\"tags\":[\"a\",\"b\"]" &&
    sed -n 2p out | grep -F "\\u00e9"
'

test_expect_success '--instructions: .gz, .zst and stdin give the same records' '
    cm-ingest -q --instructions --no-source ins.jsonl >a &&
    cm-ingest -q --instructions --no-source ins.jsonl.gz >b &&
    cm-ingest -q --instructions --no-source ins.jsonl.zst >c &&
    cm-ingest -q --instructions --no-source <ins.jsonl.zst >d &&
    test_cmp a b && test_cmp a c && test_cmp a d && test $(wc -l <a) = 4
'

test_expect_success 'without --instructions a record without content is a bad line (exit 1)' '
    test_expect_code 1 cm-ingest -q ins.jsonl >out 2>err &&
    test $(wc -l <out) = 1 &&
    grep -F "\"path\":\"x.py\"" out &&
    test_grep "^cm-ingest: ins.jsonl: line 1: byte 0: missing field .content." err &&
    test_grep "^cm-ingest: ins.jsonl: line 4: byte [0-9]*: missing field .content." err
'

test_expect_success '--instructions: a malformed line is still reported, the others kept' '
    { head -1 ins.jsonl; echo "{\"instruction\": \"x\" , }"; tail -1 ins.jsonl; } >bad.jsonl &&
    test_expect_code 1 cm-ingest -q --instructions bad.jsonl >out 2>err &&
    test $(wc -l <out) = 2 &&
    test_grep "^cm-ingest: bad.jsonl: line 2: byte [0-9]*: " err
'

test_expect_success '--instructions: a non-string content is still an error' '
    echo "{\"content\":1,\"instruction\":\"x\"}" >num.jsonl &&
    test_expect_code 1 cm-ingest -q --instructions num.jsonl >out 2>err &&
    test_grep "content.* not a string" err && ! test -s out
'

test_done
