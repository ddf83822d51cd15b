#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-tokenize encode --template: instruction records (Alpaca, instruction/output/system,
# prompt/completion, --field) -> prompt ids ++ response ids ++ eot with n_prompt; the built-in
# alpaca template and a template file; decode gives prompt and response back; bad records and
# broken templates; --threads does not change a byte.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: a tokenizer and instruction records of every shape' '
    tok-gen -s 5 -n 200 -u jsonl >docs.jsonl &&
    cm-tokenize train -q --vocab-size 800 -o tok.json docs.jsonl &&
    python3 -c "
import json
recs = []
for i in range(30):
    s = i % 5
    ins = \"Write f%d in Python, caf\u00e9 \\\"q\\\"\n  line two\" % i
    out = \"def f%d(x):\n    return x + %d  # \u20ac\n\" % (i, i)
    if s == 0: r = {\"instruction\": ins, \"input\": \"x = %d\" % i, \"output\": out, \"id\": i}
    elif s == 1: r = {\"instruction\": ins, \"input\": \"\", \"output\": out, \"id\": i}
    elif s == 2: r = {\"instruction\": ins, \"output\": out, \"system\": \"You write code.\", \"id\": i}
    elif s == 3: r = {\"prompt\": ins, \"completion\": out, \"id\": i}
    else: r = {\"instruction\": ins, \"input\": None, \"output\": out, \"id\": i, \"tags\": [1, 2]}
    recs.append(r)
with open(\"ins.jsonl\", \"w\") as f:
    for r in recs: f.write(json.dumps(r) + \"\n\")
" &&
    test $(wc -l <ins.jsonl) = 30
'

# want.py MODE: the expected prompt/response of each record of ins.jsonl, computed here from
# Stanford Alpaca's prompts (or the test's template file), one JSON object per line.
cat >want.py <<\EOF_PY
import json, sys
A = ("Below is an instruction that describes a task, paired with an input that provides further "
     "context. Write a response that appropriately completes the request.\n\n"
     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
B = ("Below is an instruction that describes a task. Write a response that appropriately "
     "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
for l in open("ins.jsonl"):
    r = json.loads(l)
    ins = r.get("instruction", r.get("prompt"))
    inp = r.get("input") or ""
    out = r.get("output", r.get("completion"))
    sysm = r.get("system") or ""
    if sys.argv[1] == "alpaca":
        p = (A if inp else B).replace("{instruction}", ins).replace("{input}", inp)
        resp = out
    else:
        p = ("{" + sysm + "} " + ins + "\nInput: " + inp + "\n") if inp else ("{" + sysm + "} " + ins + " =>\n")
        resp = out + "}"
    print(json.dumps({"prompt": p, "response": resp}))
EOF_PY

test_expect_success 'alpaca: decode gives the Alpaca prompt and the output; meta as documented' '
    cm-tokenize encode -q -t tok.json --template alpaca ins.jsonl -o a.tok &&
    cm-tokenize decode a.tok >dec.jsonl &&
    python3 want.py alpaca >want.jsonl &&
    python3 -c "
import json, hashlib
d = [json.loads(l) for l in open(\"dec.jsonl\")]
w = [json.loads(l) for l in open(\"want.jsonl\")]
src = [json.loads(l) for l in open(\"ins.jsonl\")]
assert len(d) == len(w) == 30, (len(d), len(w))
for x, y, s in zip(d, w, src):
    assert x[\"prompt\"] == y[\"prompt\"], (x, y)
    assert x[\"response\"] == y[\"response\"], (x, y)
    assert \"content\" not in x and \"instruction\" not in x and \"output\" not in x, x
    assert x[\"id\"] == s[\"id\"], x
    assert x[\"n_bytes\"] == len((y[\"prompt\"] + y[\"response\"]).encode()), x
    assert len(x[\"content_hash\"]) == 16, x
    if \"system\" in s: assert x[\"system\"] == s[\"system\"], x  # alpaca has no {system}
    if \"tags\" in s: assert x[\"tags\"] == [1, 2], x
"
'

test_expect_success 'n_prompt is the number of ids of the prompt encoded alone' '
    cm-tokenize encode -q -t tok.json --template alpaca --jsonl ins.jsonl >ex.jsonl &&
    python3 -c "
import json
with open(\"p.jsonl\", \"w\") as p, open(\"r.jsonl\", \"w\") as r:
    for l in open(\"dec.jsonl\"):
        x = json.loads(l)
        p.write(json.dumps({\"content\": x[\"prompt\"]}) + \"\n\")
        r.write(json.dumps({\"content\": x[\"response\"]}) + \"\n\")
" &&
    cm-tokenize encode -q -t tok.json --jsonl p.jsonl >p.ids &&
    cm-tokenize encode -q -t tok.json --jsonl r.jsonl >r.ids &&
    tok-dump a.tok >a.ids &&
    python3 -c "
import json
ex = [json.loads(l) for l in open(\"ex.jsonl\")]
p = [json.loads(l) for l in open(\"p.ids\")]
r = [json.loads(l) for l in open(\"r.ids\")]
s = [json.loads(l) for l in open(\"a.ids\")]
assert len(ex) == 30
for e, pi, ri, si in zip(ex, p, r, s):
    assert e[\"n_prompt\"] == len(pi) > 0, (e[\"n_prompt\"], len(pi))
    assert e[\"ids\"] == pi + ri, \"prompt ids then response ids\"
    assert si == e[\"ids\"], \"the stream holds the same ids (and the eot)\"
" &&
    cm-tokenize decode -t tok.json ex.jsonl >dec2.jsonl &&
    python3 -c "
import json
a = [json.loads(l) for l in open(\"dec.jsonl\")]
b = [json.loads(l) for l in open(\"dec2.jsonl\")]
assert [(x[\"prompt\"], x[\"response\"]) for x in a] == [(x[\"prompt\"], x[\"response\"]) for x in b]
"
'

test_expect_success 'a template file: sections, {system}, escapes, CRLF; --field renames' '
    printf "# my template\n\n[prompt]\r\n{{{system}}} {instruction}\nInput: {input}\n\n[prompt_no_input]\n{{{system}}} {instruction} =>\n\n[response]\n{output}}}\n" >my.tpl &&
    cm-tokenize encode -q -t tok.json --template ./my.tpl ins.jsonl -o m.tok &&
    cm-tokenize decode m.tok >mdec.jsonl &&
    python3 want.py file >mwant.jsonl &&
    python3 -c "
import json
d = [json.loads(l) for l in open(\"mdec.jsonl\")]
w = [json.loads(l) for l in open(\"mwant.jsonl\")]
assert len(d) == 30
for x, y in zip(d, w):
    assert (x[\"prompt\"], x[\"response\"]) == (y[\"prompt\"], y[\"response\"]), (x, y)
    assert \"system\" not in x, x  # rendered by this template, so left out of the meta
" &&
    sed -e "s/\"instruction\"/\"question\"/; s/\"output\"/\"answer\"/" ins.jsonl | grep question >q.jsonl &&
    cm-tokenize encode -q -t tok.json --template alpaca --field instruction=question \
        --field output=answer --jsonl q.jsonl >q.ids &&
    grep -v "\"prompt\"" ins.jsonl | cm-tokenize encode -q -t tok.json --template alpaca --jsonl >q.want &&
    test_cmp q.want q.ids && test $(wc -l <q.ids) = 24
'

test_expect_success '--threads 1 and 2 give identical bytes' '
    for i in 1 2 3 4 5 6 7 8; do cat ins.jsonl; done >many.jsonl &&
    cm-tokenize encode -q -t tok.json --template alpaca --threads 1 many.jsonl -o t1.tok &&
    cm-tokenize encode -q -t tok.json --template alpaca --threads 2 many.jsonl -o t2.tok &&
    cm-tokenize encode -q -t tok.json --template alpaca --threads 3 many.jsonl -o t3.tok &&
    cmp t1.tok t2.tok && cmp t1.tok t3.tok &&
    cm-tokenize encode -q -t tok.json --template alpaca --threads 1 --jsonl many.jsonl >j1 &&
    cm-tokenize encode -q -t tok.json --template alpaca --threads 2 --jsonl many.jsonl >j2 &&
    test_cmp j1 j2 && test $(wc -l <j1) = 240
'

test_expect_success 'setup: bad records among good ones' '
    head -2 ins.jsonl >bad.jsonl &&
    echo "{\"input\":\"x\",\"output\":\"no instruction\"}" >>bad.jsonl &&
    echo "{\"instruction\":\"empty\",\"output\":\"\"}" >>bad.jsonl &&
    echo "{\"instruction\":\"no output\"}" >>bad.jsonl &&
    echo "{\"instruction\":\"number\",\"output\":5}" >>bad.jsonl &&
    echo "{\"instruction\":\"null\",\"output\":null}" >>bad.jsonl &&
    echo "{\"instruction\": oops}" >>bad.jsonl &&
    sed -n 3p ins.jsonl >>bad.jsonl
'

test_expect_success 'bad record, --on-error fail: named with its line, records before kept, exit 1' '
    test_expect_code 1 cm-tokenize encode -t tok.json --template alpaca bad.jsonl -o b.tok 2>err &&
    test_grep "^cm-tokenize: bad.jsonl: line 3: byte [0-9]*: no instruction: no field .instruction. nor .prompt." err &&
    test_grep "output stopped at line 3" err &&
    cm-tokenize decode b.tok >b.jsonl && test $(wc -l <b.jsonl) = 2
'

test_expect_success 'bad records, --on-error skip: each named and skipped, the good kept, exit 1' '
    test_expect_code 1 cm-tokenize encode -t tok.json --template alpaca --on-error skip \
        bad.jsonl -o b.tok 2>err &&
    test_grep "^cm-tokenize: bad.jsonl: line 4: byte [0-9]*: the output (field .output.) is empty" err &&
    test_grep "^cm-tokenize: bad.jsonl: line 5: byte [0-9]*: no output: no field .output. nor .completion." err &&
    test_grep "^cm-tokenize: bad.jsonl: line 6: byte [0-9]*: field .output. (the output) is not a string" err &&
    test_grep "^cm-tokenize: bad.jsonl: line 7: byte [0-9]*: no output" err &&
    test_grep "^cm-tokenize: bad.jsonl: line 8: byte [0-9]*: " err &&
    test $(grep -c "^cm-tokenize: bad.jsonl: line" err) = 6 &&
    cm-tokenize decode b.tok >b.jsonl && test $(wc -l <b.jsonl) = 3 &&
    test_grep "\"id\":2," b.jsonl
'

test_expect_success 'the byte of an empty output points at its value' '
    l=$(head -3 bad.jsonl | wc -c) &&
    b=$(sed -n "s/.*line 4: byte \([0-9]*\):.*/\1/p" err) &&
    line=$(sed -n 4p bad.jsonl) &&
    test "$b" = $((l + ${#line} - 3))
'

test_expect_success 'broken template file: file and line named, exit 4; unreadable 3; unknown name 2' '
    printf "[prompt]\n{instruction}\n{question}\n[response]\n{output}\n" >b1.tpl &&
    test_expect_code 4 cm-tokenize encode -t tok.json --template b1.tpl ins.jsonl -o x.tok 2>err &&
    test_grep "^cm-tokenize: b1.tpl: line 3: unknown placeholder {question}" err &&
    printf "[prompt]\n{instruction\n[response]\n{output}\n" >b2.tpl &&
    test_expect_code 4 cm-tokenize encode -t tok.json --template b2.tpl ins.jsonl -o x.tok 2>err &&
    test_grep "^cm-tokenize: b2.tpl: line 2: unterminated" err &&
    printf "[prompt]\n{instruction}\n" >b3.tpl &&
    test_expect_code 4 cm-tokenize encode -t tok.json --template b3.tpl ins.jsonl -o x.tok 2>err &&
    test_grep "^cm-tokenize: b3.tpl: line 3: no \\[response\\] section" err &&
    test_expect_code 3 cm-tokenize encode -t tok.json --template ./missing.tpl ins.jsonl -o x.tok 2>err &&
    test_grep "cannot open template .*missing.tpl.: No such file" err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --template alpacca ins.jsonl -o x.tok 2>err &&
    test_grep "not a built-in template (alpaca)" err &&
    ! test -e x.tok
'

test_expect_success 'usage: --field needs --template and a known role' '
    test_expect_code 2 cm-tokenize encode -t tok.json --field output=answer ins.jsonl 2>err &&
    test_grep "needs --template" err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --template alpaca --field answer=x ins.jsonl 2>err &&
    test_grep "ROLE one of instruction" err
'

test_expect_success 'without --template an instruction record is still a bad record' '
    test_expect_code 1 cm-tokenize encode -q -t tok.json ins.jsonl -o x.tok 2>err &&
    test_grep "missing field .content." err
'

test_done
