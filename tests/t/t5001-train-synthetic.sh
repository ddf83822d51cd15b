#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train on synthetic ids: the log, determinism, evaluation, plot, gradient accumulation.
. "$(dirname "$0")/test-lib.sh"

STEPS=12
[ "$CM_SAN" = 1 ] && STEPS=6
M="--synthetic 48 --layers 2 --width 32 --heads 2 --context 16 --batch 4 -q"

test_expect_success 'trains and logs one JSON line per step' '
    cm-train $M --steps $STEPS --log log.jsonl --eval-every 3 &&
    test $(wc -l <log.jsonl) = $STEPS &&
    head -1 log.jsonl | test_grep "^{\"step\":1,\"loss\":[0-9.]*,\"lr\":" - &&
    for f in tokens_per_s grad_norm elapsed_s; do test_grep "\"$f\":" log.jsonl || return 1; done &&
    test_grep "\"step\":3,.*\"valid_loss\":.*\"perplexity\":" log.jsonl &&
    tail -1 log.jsonl | test_grep "valid_loss" -
'

test_expect_success 'the first loss is about ln(V) (a fresh model is at chance)' '
    head -1 log.jsonl | sed "s/.*\"loss\":\([0-9.]*\).*/\1/" >l0 &&
    awk "{ d = \$1 - log(48); if (d < 0) d = -d; ok = d < 0.1 } END { exit !(NR == 1 && ok) }" l0
'

test_expect_success 'same seed, same losses; another seed, other losses' '
    cm-train $M --steps $STEPS --log again.jsonl &&
    cut -d, -f1,2 log.jsonl >a && cut -d, -f1,2 again.jsonl >b && test_cmp a b &&
    cm-train $M --steps $STEPS --seed 7 --log other.jsonl &&
    cut -d, -f1,2 other.jsonl >c && ! cmp -s a c
'

test_expect_success 'warmup then cosine decay to min-lr' '
    cm-train $M --steps 10 --warmup 4 --lr 0.004 --min-lr 0.001 --log lr.jsonl &&
    sed "s/.*\"lr\":\([0-9.e-]*\),.*/\1/" lr.jsonl >lrs && test $(wc -l <lrs) = 10 &&
    awk "NR==1 && \$1 != 0.001 { exit 1 } NR==4 && \$1 != 0.004 { exit 1 }
         NR==10 && \$1 != 0.001 { exit 1 } NR>4 && \$1 > prev { exit 1 } { prev = \$1 }" lrs
'

test_expect_success 'gradient accumulation: K micro-batches of B equal one batch of K*B at step 1' '
    cm-train --synthetic 48 --layers 1 --width 16 --heads 2 --context 8 --batch 4 --accum 2 \
        --steps 1 --threads 1 -q --log acc.jsonl &&
    cm-train --synthetic 48 --layers 1 --width 16 --heads 2 --context 8 --batch 8 \
        --steps 1 --threads 1 -q --log one.jsonl &&
    a=$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" acc.jsonl) &&
    b=$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" one.jsonl) &&
    awk -v a=$a -v b=$b "BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-5) }" &&
    a=$(sed "s/.*\"grad_norm\":\([0-9.]*\),.*/\1/" acc.jsonl) &&
    b=$(sed "s/.*\"grad_norm\":\([0-9.]*\),.*/\1/" one.jsonl) &&
    awk -v a=$a -v b=$b "BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4 * b) }"
'

test_expect_success 'eval of the final checkpoint repeats the last valid loss' '
    cm-train $M --steps 4 --log e.jsonl --ckpt model.bin &&
    cm-train eval --ckpt model.bin --synthetic 48 >ev.json &&
    test_grep "\"split\":\"synthetic\",\"step\":4," ev.json &&
    v1=$(sed "s/.*\"valid_loss\":\([0-9.]*\),.*/\1/" e.jsonl | tail -1) &&
    v2=$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" ev.json) &&
    test "$v1" = "$v2"
'

test_expect_success 'plot writes an SVG with both curves' '
    cm-train plot --log log.jsonl -o loss.svg &&
    test_grep "^<svg" loss.svg &&
    test_grep "</svg>" loss.svg &&
    test $(grep -c "<polyline" loss.svg) = 2
'

test_expect_success 'plot: a malformed line is reported with its line number, exit 1' '
    { head -2 log.jsonl; echo "{oops"; tail -1 log.jsonl; } >bad.jsonl &&
    test_expect_code 1 cm-train plot --log bad.jsonl -o bad.svg 2>err &&
    test_grep "bad.jsonl: line 3" err &&
    test_grep "</svg>" bad.svg
'

test_expect_success '--log - writes the metrics to stdout; --profile to stderr' '
    cm-train $M --steps 2 --log - --profile >out 2>err &&
    test $(wc -l <out) = 2 &&
    test_grep "matmul" err
'

test_expect_success 'a consumer closing the pipe ends quietly' '
    cm-train $M --steps 50 --log - 2>err | head -1 >first &&
    test $(wc -l <first) = 1 &&
    ! test_grep "error" err 2>/dev/null
'

test_done
