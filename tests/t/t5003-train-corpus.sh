#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train on a real (small) corpus built by cm-tokenize and cm-shards: learning, evaluation
# with bits per byte, --where, keyword weights, code completion with the stored tokenizer.
. "$(dirname "$0")/test-lib.sh"

STEPS=150
M="--layers 2 --width 64 --heads 2 --context 32 --batch 8 --lr 3e-3 -q"

test_expect_success 'setup: a corpus of small Python files' '
    small_corpus &&
    test -s corpus/index.sqlite
'

test_expect_success 'training on the corpus learns it (loss far below chance)' '
    cm-train --data corpus $M --steps $STEPS --eval-every 50 --log log.jsonl --ckpt model.bin &&
    first=$(head -1 log.jsonl | sed "s/.*\"loss\":\([0-9.]*\),.*/\1/") &&
    last=$(tail -1 log.jsonl | sed "s/.*\"valid_loss\":\([0-9.]*\),.*/\1/") &&
    say "loss $first -> valid $last" &&
    awk -v a=$first -v b=$last "BEGIN { exit !(a > 4 && b < 1.5) }"
'

test_expect_success 'evaluations log valid loss, perplexity and bits per byte' '
    test_grep "\"step\":50,.*\"valid_loss\":.*\"perplexity\":.*\"bits_per_byte\":" log.jsonl
'

test_expect_success 'cm-train eval repeats the final valid loss' '
    cm-train eval --ckpt model.bin --data corpus >ev.json &&
    test_grep "\"split\":\"valid\"" ev.json &&
    test_grep "bits_per_byte" ev.json &&
    v1=$(tail -1 log.jsonl | sed "s/.*\"valid_loss\":\([0-9.]*\),.*/\1/") &&
    v2=$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" ev.json) &&
    test "$v1" = "$v2" &&
    cm-train eval --ckpt model.bin --data corpus --split train >tr.json &&
    test_grep "\"split\":\"train\"" tr.json
'

test_expect_success 'complete continues the prompt with what it learned' '
    cm-train complete --ckpt model.bin --data corpus --prompt "import pandas as" \
        --max-tokens 12 --temperature 0 >out &&
    test_grep "^import pandas as pd" out &&
    test_grep "^import numpy" out
'

test_expect_success 'without --ckpt the model goes to DATA/model.ckpt, where eval and complete look' '
    cm-train --data corpus $M --steps 3 &&
    test -s corpus/model.ckpt &&
    cm-train eval --data corpus >ev3.json &&
    test_grep "\"step\":3," ev3.json &&
    cm-train complete --data corpus --prompt "import" --max-tokens 3 >c3 &&
    test_grep "^import" c3 &&
    rm corpus/model.ckpt
'

test_expect_success 'complete: same seed, same text; sampling options accepted' '
    cm-train complete --ckpt model.bin --data corpus --prompt "def f" --seed 3 \
        --temperature 1.0 --top-k 20 --top-p 0.9 --max-tokens 20 >a &&
    cm-train complete --ckpt model.bin --data corpus --prompt "def f" --seed 3 \
        --temperature 1.0 --top-k 20 --top-p 0.9 --max-tokens 20 >b &&
    test_cmp a b &&
    test_grep "^def f" a
'

test_expect_success 'complete: an empty prompt starts from the end-of-text token' '
    cm-train complete --ckpt model.bin --data corpus --prompt "" --seed 2 --max-tokens 8 >e1 &&
    cm-train complete --ckpt model.bin --data corpus --prompt "" --seed 2 --max-tokens 8 >e2 &&
    test_cmp e1 e2
'

test_expect_success 'complete with a checkpoint of another vocabulary: exit 4' '
    cm-train --synthetic 500 --layers 1 --width 16 --heads 2 --context 8 --batch 2 \
        --steps 1 -q --ckpt other.bin &&
    test_expect_code 4 cm-train complete --ckpt other.bin --data corpus --prompt x 2>err &&
    test_grep "tokenizer" err
'

test_expect_success '--where selects training documents; a bad condition is exit 2' '
    cm-train --data corpus $M --steps 3 --where "path LIKE '\''m1%'\''" --log w.jsonl &&
    test $(wc -l <w.jsonl) = 3 &&
    test_expect_code 2 cm-train --data corpus $M --steps 1 --where "nonsense(" 2>err &&
    test_grep "bad selection" err &&
    test_expect_code 4 cm-train --data corpus $M --steps 1 --where "path = '\''none'\''" 2>err &&
    test_grep "no documents" err
'

test_expect_success 'eval: a bad --where is exit 2 too, an empty selection exit 4' '
    cm-train --data corpus $M --steps 2 --ckpt w.ckpt -q &&
    test_expect_code 2 cm-train eval --ckpt w.ckpt --data corpus --where "nonsense(" 2>err &&
    test_grep "bad selection" err &&
    test_expect_code 4 cm-train eval --ckpt w.ckpt --data corpus --where "path = '\''none'\''" 2>err &&
    test_grep "no documents" err
'

test_expect_success '--keyword-weights: weights change the gradient, not the logged loss' '
    cm-train --data corpus $M --steps 2 --threads 1 --log plain.jsonl &&
    cm-train --data corpus $M --steps 2 --threads 1 --keyword-weights import,model --log kw.jsonl &&
    l1=$(head -1 plain.jsonl | sed "s/.*\"loss\":\([0-9.]*\),.*/\1/") &&
    l2=$(head -1 kw.jsonl | sed "s/.*\"loss\":\([0-9.]*\),.*/\1/") &&
    test "$l1" = "$l2" &&
    g1=$(head -1 plain.jsonl | sed "s/.*\"grad_norm\":\([0-9.]*\),.*/\1/") &&
    g2=$(head -1 kw.jsonl | sed "s/.*\"grad_norm\":\([0-9.]*\),.*/\1/") &&
    test "$g1" != "$g2" &&
    test_expect_code 2 cm-train --data corpus $M --steps 1 --keyword-weights "zzqqxx yy" 2>err &&
    test_grep "not a single token" err
'

test_expect_success 'a damaged shard is refused with exit 4' '
    cp -r corpus broken &&
    f=$(ls broken/shard-*.bin | head -1) &&
    head -c 40 "$f" >"$f.cut" && mv "$f.cut" "$f" &&
    test_expect_code 4 cm-train --data broken $M --steps 1 2>err &&
    test_grep "shard" err
'

test_done
