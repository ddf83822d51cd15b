#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-filter: exact dedup (white space ignored) and MinHash near dedup; first seen wins.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: files, white-space copies, near copies, distinct files' '
    cat >gen.py <<-\EOF &&
	import json, random, sys
	def make(seed, changed=()):
	    rnd = random.Random(seed)
	    out = ["import numpy as np", ""]
	    for i in range(100):
	        a, b, c = rnd.randint(0, 999), rnd.randint(0, 999), rnd.randint(0, 99)
	        if i in changed:
	            out.append("    edited_%d = other_%d(y, %d)" % (i, seed, i))
	        elif i % 10 == 0:
	            out.append("def func_%d(x, y=%d):" % (a, c))
	        else:
	            out.append("    value_%d = compute_%d(x, %d)" % (a, b, c))
	    return "\n".join(out) + "\n"
	def rec(path, text):
	    print(json.dumps({"repo_name": "r", "path": path, "content": text}))
	a = make(1)
	rec("a.py", a)                                          # first copy: kept
	rec("a_ws.py", a.replace("    ", "\t").replace(" = ", "=") + "\n\n")  # white space only
	rec("b.py", make(2))                                    # distinct
	rec("a_near.py", make(1, changed=(15, 45, 75)))         # 3 of 100 lines changed
	rec("c.py", make(3))                                    # distinct
	rec("b_near.py", make(2, changed=(33,)))                # 1 line changed
	rec("a_far.py", make(1, changed=tuple(range(0, 100, 3))))  # a third changed: kept
	rec("a_again.py", a)                                    # exact copy again
	EOF
    python3 gen.py >in.jsonl &&
    test "$(wc -l <in.jsonl)" = 8
'

# decisions FILE...: "path decision" for outputs and rejects
decisions() {
    python3 -c 'import json,sys
for f in sys.argv[1:]:
    for l in open(f):
        d=json.loads(l); print(d["path"], d.get("reject","kept"))' "$@" | sort
}

test_expect_success 'exact and near copies are dropped, distinct files kept, first wins' '
    cm-filter -q --rejects rej --stats stats.json <in.jsonl >out &&
    decisions out rej >got &&
    sort >expect <<-\EOF &&
	a.py kept
	a_ws.py exact-dup
	b.py kept
	a_near.py near-dup
	c.py kept
	b_near.py near-dup
	a_far.py kept
	a_again.py exact-dup
	EOF
    test_cmp expect got &&
    python3 -c "
import json
s = json.load(open(\"stats.json\"))
print(s[\"kept\"][\"records\"], s[\"rejected\"][\"exact-dup\"][\"records\"], s[\"rejected\"][\"near-dup\"][\"records\"], s[\"dedup\"][\"exact_kept\"], s[\"dedup\"][\"near_kept\"])
" >got &&
    echo "4 2 2 4 4" >expect &&
    test_cmp expect got
'

test_expect_success '--no-near-dedup keeps near copies, --no-dedup keeps all' '
    cm-filter -q --no-near-dedup <in.jsonl >out &&
    test "$(wc -l <out)" = 6 &&
    cm-filter -q --no-dedup <in.jsonl >out &&
    test "$(wc -l <out)" = 8
'

test_expect_success '--near-threshold: a stricter threshold keeps the 3-line edit' '
    cm-filter -q --near-threshold 0.99 --rejects rej <in.jsonl >out &&
    test_grep "\"path\":\"a_near.py\"" out
'

test_expect_success 'the order decides which copy is kept' '
    tac in.jsonl >rev.jsonl &&
    cm-filter -q <rev.jsonl >out &&
    test_grep "\"path\":\"a_again.py\"" out &&
    test_must_fail grep -q "\"path\":\"a.py\"" out
'

test_expect_success 'dedup spans inputs' '
    cm-filter -q in.jsonl in.jsonl >out &&
    test "$(wc -l <out)" = 4
'

test_expect_success '--dedup-memory: past the cap it says so and stops growing' '
    python3 -c "
import json
for i in range(3000):
    body = \"import numpy\ndef f%d(a=1, b=2, c=3, d=4, e=5):\n    return a + %d\n\" % (i, i)
    print(json.dumps({\"path\": \"f%d.py\" % i, \"content\": body}))
" >many.jsonl &&
    cat many.jsonl many.jsonl >twice.jsonl &&
    cm-filter -q --no-near-dedup <twice.jsonl >out 2>err &&
    test "$(wc -l <out)" = 3000 &&
    cm-filter -q --dedup-memory 2M --stats s.json <twice.jsonl >out 2>err &&
    test_grep "reached --dedup-memory" err &&
    test_grep "\"capped\":true" s.json &&
    kept=$(wc -l <out) &&
    echo "kept $kept" &&
    test "$kept" -gt 3000 && test "$kept" -lt 6000 &&
    mem=$(sed -n "s/.*\"memory_bytes\":\([0-9]*\).*/\1/p" s.json) &&
    echo "memory $mem" &&
    test "$mem" -le 2097152
'

test_done
