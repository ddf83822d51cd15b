#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train --precision auto|fp32|bf16: auto picks bf16 only on a CPU with AVX512_BF16 or AMX;
# an explicit bf16 that oneDNN cannot run is refused (exit 2, saying why); where it runs, a
# bf16 run is repeatable bit for bit, resumes bit-identically, and its checkpoints are
# the same fp32 format as fp32's (each precision resumes and evaluates the other's).
. "$(dirname "$0")/test-lib.sh"

M="--synthetic 64 --layers 2 --width 32 --heads 2 --context 16 --batch 4 --seed 3"
losses() { cut -d, -f1,2 "$1"; }   # step and loss columns

native=0
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && native=1

test_expect_success '--precision fp32 names OpenBLAS on the start-up line' '
    cm-train $M --steps 1 --precision fp32 --no-progress 2>err &&
    test_grep "matmuls fp32 (OpenBLAS)" err
'

if [ $native = 1 ]; then
    test_expect_success 'auto: bf16 on this CPU (it has AVX512_BF16 or AMX)' '
        cm-train $M --steps 1 --no-progress 2>err &&
        test_grep "matmuls bf16 (oneDNN" err
    '
else
    test_expect_success 'auto: fp32 on this CPU (no AVX512_BF16 or AMX)' '
        cm-train $M --steps 1 --no-progress 2>err &&
        test_grep "matmuls fp32 (OpenBLAS)" err
    '
fi

test_expect_success 'a bad --precision is a usage error' '
    test_expect_code 2 cm-train $M --steps 1 --precision fp16 2>err &&
    test_grep "one of auto, fp32, bf16" err
'

test_expect_success 'bf16 that oneDNN cannot run (ISA capped at AVX2): exit 2, says why' '
    ONEDNN_MAX_CPU_ISA=AVX2 test_expect_code 2 cm-train $M --steps 1 --precision bf16 2>err &&
    test_grep "precision bf16: oneDNN has no implementation of bf16 matmuls" err &&
    ONEDNN_MAX_CPU_ISA=AVX2 cm-train $M --steps 1 --no-progress 2>err &&
    test_grep "matmuls fp32" err
'

if cm-train $M --steps 1 --precision bf16 -q 2>probe.err; then
    test_expect_success 'bf16 runs: the start-up line says so (emulated without bf16 instructions)' '
        cm-train $M --steps 1 --precision bf16 --no-progress 2>err &&
        test_grep "matmuls bf16 (oneDNN" err &&
        if [ $native = 0 ]; then test_grep "emulated" err; fi
    '
    test_expect_success 'bf16 is repeatable: a second run gives the same losses, bit for bit' '
        cm-train $M --steps 30 --lr 3e-3 --precision bf16 -q --log a.jsonl &&
        cm-train $M --steps 30 --lr 3e-3 --precision bf16 -q --log b.jsonl &&
        losses a.jsonl >a.loss &&
        losses b.jsonl >b.loss && test_cmp a.loss b.loss
    '
    test_expect_success 'bf16 and fp32 give different but close losses' '
        cm-train $M --steps 30 --lr 3e-3 --precision fp32 -q --log f.jsonl &&
        losses f.jsonl >f.loss && ! test_cmp f.loss a.loss >/dev/null 2>&1 &&
        paste -d" " f.jsonl a.jsonl | sed -n "30p" |
            sed "s/.*\"loss\":\([0-9.e+-]*\),.*\"loss\":\([0-9.e+-]*\),.*/\1 \2/" >pair &&
        say "step 30 loss fp32/bf16: $(cat pair)" &&
        awk "{ d = \$1 - \$2; if (d < 0) d = -d; exit !(d < 0.05 * \$1) }" pair
    '
    test_expect_success 'bf16 resume is bit-identical: 12 steps = a run stopped early (--time-limit) + --resume to 12' '
        cm-train $M --steps 12 --precision bf16 -q --ckpt full.bin --log full.jsonl &&
        cm-train $M --steps 12 --precision bf16 -q --ckpt part.bin --log part.jsonl \
            --time-limit 0.000001 &&
        n=$(wc -l <part.jsonl) && say "first part: $n steps" && test $n -lt 12 &&
        cm-train $M --steps 12 --precision bf16 -q --ckpt part.bin --log part.jsonl --resume &&
        losses full.jsonl >full.loss && losses part.jsonl >part.loss &&
        test_cmp full.loss part.loss &&
        cmp full.bin part.bin
    '
    test_expect_success 'checkpoints are interchangeable: fp32 resumes bf16 and back; eval reads both' '
        cm-train $M --steps 6 --precision fp32 -q --ckpt x.bin --log x.jsonl &&
        cm-train $M --steps 9 --precision bf16 -q --ckpt x.bin --resume --log x.jsonl &&
        test $(wc -l <x.jsonl) = 9 &&
        cm-train $M --steps 12 --precision fp32 -q --ckpt x.bin --resume --log x.jsonl &&
        test $(wc -l <x.jsonl) = 12 &&
        cm-train eval --ckpt x.bin --synthetic 64 --eval-batches 1 >ev &&
        test_grep "\"step\":12," ev &&
        cm-train eval --ckpt full.bin --synthetic 64 --eval-batches 1 >ev2 &&
        test_grep "\"step\":12," ev2 &&
        test $(wc -c <x.bin) = $(wc -c <full.bin)
    '
else
    test_skip 'bf16 runs, repeats, resumes bit-identically' \
        "oneDNN cannot run bf16 here: $(tail -1 probe.err)"
fi

test_done
