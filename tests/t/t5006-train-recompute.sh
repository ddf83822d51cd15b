#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train --recompute keeps no attention probabilities and one layer of GELU outputs, and
# recomputes them in the backward: the same losses bit for bit, a smaller memory estimate.
. "$(dirname "$0")/test-lib.sh"

M="--synthetic 64 --layers 2 --width 32 --heads 2 --context 80 --batch 3 --seed 2 --steps 6"
losses() { cut -d, -f1,2 "$1"; }

test_expect_success '--recompute: the losses of a plain run, bit for bit' '
    cm-train $M -q --log plain.jsonl &&
    cm-train $M -q --log rc.jsonl --recompute &&
    losses plain.jsonl >plain.loss && losses rc.jsonl >rc.loss &&
    test_cmp plain.loss rc.loss
'

test_expect_success '--recompute: the start-up line estimates less memory' '
    W="--synthetic 512 --layers 4 --width 128 --heads 4 --context 512 --batch 8 --steps 0"
    cm-train $W --no-progress 2>a && cm-train $W --recompute --no-progress 2>b &&
    ga=$(sed -n "s/.*; ~\([0-9.]*\) GiB;.*/\1/p" a) && gb=$(sed -n "s/.*; ~\([0-9.]*\) GiB;.*/\1/p" b) &&
    say "estimate $ga GiB, with --recompute $gb GiB" &&
    awk -v a="$ga" -v b="$gb" "BEGIN { exit !(b < a) }"
'

test_done
