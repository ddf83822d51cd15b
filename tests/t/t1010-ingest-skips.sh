#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest: every skip reason is counted, --utf8=replace, --stats content, summary line.
. "$(dirname "$0")/test-lib.sh"

# stat VALUE: print a value of st.json by a Python expression on s
stat() { python3 -c "import json; s=json.load(open('st.json')); print($1)"; }

test_expect_success 'setup: text, binary, non-UTF-8, symlink, oversized, fifo' '
    mkdir -p d/sub &&
    printf "ok = 1\n" >d/good.py &&
    printf "caf\303\251 = 2\n" >d/utf8.py &&
    printf "a\000b\n" >d/nul.bin &&
    printf "caf\351 = 3\n" >d/latin1.py &&
    ln -s good.py d/link.py &&
    head -c 3000 /dev/zero | tr "\0" "x" >d/sub/big.txt &&
    mkfifo d/fifo &&
    tar cf d.tar --exclude=fifo -C d .
'

test_expect_success 'directory: each reason counted, exit 0' '
    cm-ingest --max-file-size=2k --stats st.json d >out 2>err &&
    test $(wc -l <out) = 2 &&
    test "$(stat "s[\"entries_seen\"], s[\"emitted\"]")" = "7 2" &&
    test "$(stat "[s[\"skipped_by_reason\"][k] for k in (\"binary\",\"invalid_utf8\",\"symlink\",\"oversized\",\"special\")]")" = "[1, 1, 1, 1, 1]" &&
    test "$(stat "s[\"skipped\"]")" = 5 &&
    test_grep "cm-ingest: 7 files: 2 emitted" err &&
    test_grep "binary 1" err
'

test_expect_success 'tar: the same reasons (minus the fifo)' '
    cm-ingest -q --max-file-size=2k --stats st.json d.tar >out &&
    test "$(stat "s[\"entries_seen\"], s[\"emitted\"], s[\"skipped\"]")" = "6 2 4" &&
    test "$(stat "s[\"content_bytes_out\"]")" = $(cat d/good.py d/utf8.py | wc -c) &&
    test "$(stat "s[\"bytes_in\"]")" = $(wc -c <d.tar)
'

test_expect_success 'oversized entry is skipped without breaking the next one' '
    cm-ingest -q --max-file-size=9 --stats st.json d.tar >out &&
    test "$(stat "s[\"skipped_by_reason\"][\"oversized\"]")" = 2 &&
    grep "good.py" out
'

test_expect_success '--utf8=replace repairs with U+FFFD and counts it' '
    cm-ingest -q --utf8=replace --stats st.json d.tar >out &&
    test "$(stat "s[\"utf8_repaired\"]")" = 1 &&
    python3 -c "
import json
rs = [json.loads(l) for l in open(\"out\")]
r = [r for r in rs if r[\"path\"] == \"latin1.py\"][0]
assert r[\"content\"] == \"caf\ufffd = 3\n\", r
"
'

test_expect_success '-q: no summary; --stats - writes JSON to stderr' '
    cm-ingest -q d.tar >out 2>err && test ! -s err &&
    cm-ingest -q --stats - d.tar >out 2>err &&
    python3 -c "import json; json.load(open(\"err\"))"
'

test_expect_success 'stats JSON has every documented key' '
    cm-ingest -q --stats st.json d.tar >/dev/null &&
    python3 -c "
import json
s = json.load(open(\"st.json\"))
for k in (\"version\",\"inputs\",\"entries_seen\",\"emitted\",\"skipped\",\"skipped_by_reason\",\"utf8_repaired\",
          \"notebooks\",\"archives\",\"jsonl_lines\",\"bad_lines\",\"errors\",\"capped_inputs\",\"bytes_in\",\"content_bytes_in\",
          \"content_bytes_out\",\"seconds\"):
    assert k in s, k
assert sum(s[\"skipped_by_reason\"].values()) == s[\"skipped\"]
assert s[\"emitted\"] + s[\"skipped\"] == s[\"entries_seen\"]
"
'

test_expect_success 'disk full (/dev/full) and file too large (ulimit -f): message, exit 3' '
    test_expect_code 3 cm-ingest -q d.tar >/dev/full 2>err &&
    test_grep "^cm-ingest: cannot write to .stdout.: No space left on device" err &&
    i=0; while [ $i -lt 60 ]; do cp d/sub/big.txt d/sub/big$i.txt; i=$((i+1)); done &&
    { (ulimit -f 64 && cm-ingest -q -o o.jsonl d 2>err2); echo $? >rc; } &&
    test $(cat rc) = 3 &&
    test_grep "^cm-ingest: cannot write to .o.jsonl.: File too large" err2
'

test_expect_success 'a consumer closing the pipe ends cm-ingest quietly' '
    i=0; while [ $i -lt 300 ]; do cp d/good.py d/sub/f$i.py; i=$((i+1)); done &&
    head -c 50000 /dev/urandom | base64 >d/sub/blob.txt &&
    i=0; while [ $i -lt 40 ]; do cp d/sub/blob.txt d/sub/b$i.txt; i=$((i+1)); done &&
    # 2.7 MB of records: far more than a pipe holds, so cm-ingest must meet the closed pipe
    { cm-ingest d 2>err; echo $? >rc; } | head -c 100 >out &&
    test $(wc -c <out) = 100 &&
    test $(cat rc) = 141 &&
    test ! -s err
'

test_done
