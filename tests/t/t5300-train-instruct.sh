#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train on an instruction corpus (issue 14): JSONL instruction records -> cm-tokenize
# encode --template alpaca -> cm-shards pack -> cm-train. One example per window, the loss on
# the response tokens and end-of-text only; prompts longer than the context skipped and
# counted, a long example truncated and counted; eval reports the response loss over exactly
# the response tokens of the split; --resume continues bit for bit; 2 MPI ranks train as one
# process with --accum 2; complete --template prints the response only, from the ids
# cm-tokenize gives the prompt; its usage errors.
. "$(dirname "$0")/test-lib.sh"

T=64
M="--layers 2 --width 64 --heads 2 --context $T --batch 8 --threads 1 -q"

test_expect_success 'setup: instruction records (one prompt longer than the context), a corpus' '
    python3 -c "
import json
A = (\"Below is an instruction that describes a task. Write a response that appropriately \"
     \"completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n\")
B = (\"Below is an instruction that describes a task, paired with an input that provides \"
     \"further context. Write a response that appropriately completes the request.\n\n\"
     \"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n\")
with open(\"ins.jsonl\", \"w\") as f, open(\"docs.jsonl\", \"w\") as d:
    for i in range(80):
        ins = \"Write function f%d that adds %d to x.\" % (i, i)
        out = \"def f%d(x):\n    return x + %d\n\" % (i, i)
        r = {\"instruction\": ins, \"input\": \"x = %d\" % i if i % 4 == 1 else \"\", \"output\": out,
             \"repo_name\": \"r%d\" % (i % 10), \"path\": \"p%d.py\" % i}
        f.write(json.dumps(r) + \"\n\")
        p = (B if r[\"input\"] else A).replace(\"{instruction}\", ins).replace(\"{input}\", r[\"input\"])
        d.write(json.dumps({\"content\": p + out}) + \"\n\")
    for k in range(10):  # in every repository, so in both splits
        long = \"Explain \" + \" \".join(\"word%d\" % j for j in range(100 + k))
        f.write(json.dumps({\"instruction\": long, \"output\": \"ok\n\", \"repo_name\": \"r%d\" % k,
                            \"path\": \"long%d.py\" % k}) + \"\n\")
" &&
    cm-tokenize train -q --vocab-size 400 -o tok.json docs.jsonl &&
    cm-tokenize encode -q -t tok.json --template alpaca ins.jsonl |
        cm-shards pack -q -o corpus --valid-fraction 0.2 &&
    python3 -c "
import sqlite3
db = sqlite3.connect(\"corpus/index.sqlite\")
n = db.execute(\"SELECT count(*) FROM documents WHERE n_prompt > 0\").fetchone()[0]
assert n == 90, n
assert db.execute(\"SELECT count(*) FROM documents WHERE split = \x27valid\x27\").fetchone()[0] > 5
"
'

# index_counts SPLIT: used skipped truncated scored, as the trainer must count them: a prompt of
# T tokens or more is skipped, an example longer than T+1 tokens cut to T+1, and the targets
# scored are its tokens after the prompt within the window
index_counts() {
    python3 -c "
import sqlite3
T = $T
u = s = t = sc = 0
for n, p in sqlite3.connect(\"corpus/index.sqlite\").execute(
        \"SELECT n_tokens, n_prompt FROM documents WHERE split = \x27$1\x27\"):
    if p >= T: s += 1; continue
    u += 1
    if n > T + 1: t += 1
    sc += min(n, T + 1) - p
print(u, s, t, sc)
"
}

test_expect_success 'training: examples used, skipped and truncated counted in the start-up line' '
    cm-train --data corpus $(echo $M | sed "s/ -q//") --lr 3e-3 --steps 150 --eval-every 50 \
        --log log.jsonl --ckpt model.bin 2>err &&
    set -- $(index_counts train) &&
    say "train split: $1 used, $2 skipped, $3 truncated, $4 scored targets" &&
    test "$2" -gt 0 && test "$3" -gt 0 &&
    test_grep "instruction examples (train split): $1 used, .* $2 skipped (prompt of $T tokens or more.*), $3 truncated" err &&
    test_grep "$4 of $(($1 * T)) target positions scored" err
'

test_expect_success 'the loss is the response loss: it falls, each step scores the response tokens' '
    first=$(head -1 log.jsonl | sed "s/.*\"loss\":\([0-9.]*\),.*/\1/") &&
    last=$(tail -1 log.jsonl | sed "s/.*\"loss\":\([0-9.]*\),.*/\1/") &&
    say "response loss $first -> $last" &&
    awk -v a=$first -v b=$last "BEGIN { exit !(a > 3 && b < 1) }" &&
    test_grep "\"step\":1,.*\"scored_tokens\":[1-9]" log.jsonl &&
    test "$(grep -c "\"valid_scored\":\"response\"" log.jsonl)" = 3 &&
    ! test_grep bits_per_byte log.jsonl 2>/dev/null &&
    test_grep "valid loss (response tokens)" err
'

test_expect_success 'eval: response loss over exactly the valid split response tokens' '
    cm-train eval --ckpt model.bin --data corpus >ev.json &&
    test_grep "\"scored\":\"response\"" ev.json &&
    ! test_grep bits_per_byte ev.json 2>/dev/null &&
    set -- $(index_counts valid) &&
    test_grep "\"tokens\":$4," ev.json &&
    v1=$(tail -1 log.jsonl | sed "s/.*\"valid_loss\":\([0-9.]*\),.*/\1/") &&
    v2=$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" ev.json) &&
    test "$v1" = "$v2"
'

# Alpaca's prompt for instruction $1, in file $2 (exactly, with its final newline)
alpaca_prompt() {
    python3 -c "
import sys
sys.stdout.write(\"Below is an instruction that describes a task. Write a response that \"
                 \"appropriately completes the request.\n\n### Instruction:\n\" + sys.argv[1] +
                 \"\n\n### Response:\n\")
" "$1" >"$2"
}

test_expect_success 'complete --template: the response only, from the ids encode --template gives' '
    ins="Write function f7 that adds 7 to x." &&
    cm-train complete --ckpt model.bin --data corpus --template alpaca --instruction "$ins" \
        --temperature 0 --max-tokens 30 >resp &&
    say "response: $(cat resp)" &&
    test -s resp &&
    ! grep -e "###" -e "Below is" resp &&
    alpaca_prompt "$ins" prompt.txt &&
    p=$(cat prompt.txt; echo x) && p=${p%x} &&
    cm-train complete --ckpt model.bin --data corpus --prompt "$p" --temperature 0 \
        --max-tokens 30 >cont &&
    python3 -c "
p = open(\"prompt.txt\").read(); c = open(\"cont\").read(); r = open(\"resp\").read()
assert c.startswith(p), (p, c)
c = c[len(p):-1]  # the continuation (complete --prompt ends it with a newline)
assert r == (c if c.endswith(chr(10)) else c + chr(10)), (r, c)
"
'

test_expect_success 'complete --template: usage errors exit 2, a broken template 4' '
    C="cm-train complete --ckpt model.bin --data corpus" &&
    test_expect_code 2 $C --template alpaca --instruction x --prompt y 2>err &&
    test_grep "exclude each other" err &&
    test_expect_code 2 $C --template alpaca 2>err &&
    test_grep "needs --instruction" err &&
    test_expect_code 2 $C --prompt x --input y 2>err &&
    test_grep "need --template" err &&
    test_expect_code 2 $C --template alpacca --instruction x 2>err &&
    test_grep "not a built-in template" err &&
    printf "[prompt]\n{instruction}\n{question}\n[response]\n{output}\n" >b1.tpl &&
    test_expect_code 4 $C --template b1.tpl --instruction x 2>err &&
    test_grep "b1.tpl: line 3: unknown placeholder" err &&
    long=$(python3 -c "print(\" \".join(\"w%d\" % i for i in range(100)))") &&
    test_expect_code 2 $C --template alpaca --instruction "$long" >out 2>err &&
    test_grep "the model.s context is $T, no room for a response" err &&
    ! test -s out
'

test_expect_success '--resume on examples: the losses of an uninterrupted run, bit for bit' '
    R="--data corpus $M --accum 2 --warmup 0 --lr 1e-3 --min-lr 1e-3" &&
    cm-train $R --steps 12 --log full.jsonl &&
    cm-train $R --steps 6 --ckpt part.bin --log part.jsonl &&
    cm-train $R --steps 12 --ckpt part.bin --resume --log part.jsonl &&
    cut -d, -f1,2 full.jsonl >a && cut -d, -f1,2 part.jsonl >b &&
    test_cmp a b && test $(wc -l <a) = 12
'

mpi_setup
if command -v mpirun >/dev/null 2>&1 &&
    timeout -k 5 120 mpirun -np 2 --oversubscribe cm-train --synthetic 50 --steps 1 --context 8 \
        --width 16 --layers 1 --heads 1 --batch 1 --threads 1 -q >/dev/null 2>&1; then
    test_expect_success '2 MPI ranks = one process with --accum 2 (the mean over all ranks scored targets)' '
        R="--data corpus $M --batch 4 --warmup 0 --lr 1e-3 --steps 8" &&
        cm-train $R --accum 2 --log one.jsonl &&
        timeout -k 5 300 mpirun -np 2 --oversubscribe cm-train $R --log two.jsonl &&
        sed "s/.*\"scored_tokens\":\([0-9]*\).*/\1/" one.jsonl >s1 &&
        sed "s/.*\"scored_tokens\":\([0-9]*\).*/\1/" two.jsonl >s2 &&
        test_cmp s1 s2 &&
        cut -d, -f2 one.jsonl | cut -d: -f2 >l1 && cut -d, -f2 two.jsonl | cut -d: -f2 >l2 &&
        paste l1 l2 | awk "{ d = (\$1 - \$2) / \$1; if (d < 0) d = -d; if (d > 1e-5) bad = 1 }
                          END { exit bad }"
    '
else
    test_skip_claim '2 MPI ranks = one process with --accum 2' 'mpirun not found or not working'
fi

test_expect_success 'a plain corpus still trains on windows (no examples, bits per byte)' '
    mkdir plain && cd plain && small_corpus &&
    cm-train --data corpus --layers 1 --width 32 --heads 2 --context 16 --batch 4 --steps 2 \
        --threads 1 --ckpt plain.bin 2>err &&
    ! grep "instruction examples" err &&
    cm-train eval --ckpt plain.bin --data corpus >ev.json &&
    test_grep bits_per_byte ev.json && ! grep scored ev.json
'

test_done
