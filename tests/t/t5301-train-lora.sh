#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train --lora-rank (LoRA adapters on a frozen base): a base model trained here is adapted
# with --init; step 0 is the base (same valid loss), the base weights stay bit-identical, the
# frozen base gets no gradients or moments (the start-up line's bytes, the checkpoint's size);
# a LoRA run resumes bit-identically; eval and complete apply the adapters; export --format
# peft writes PEFT's files, and PyTorch applying them to the hf export of the base as PEFT
# documents (tests/peft_ref.py) gives cm-train's logits; merge gives a plain checkpoint with
# the same logits that exports to hf and gguf; bad usage is exit 2, damage exit 4.
#
# The PyTorch tests need python3-torch: skipped without it, failed under CI=true.
. "$(dirname "$0")/test-lib.sh"

PY=/usr/bin/python3
ref() { "$PY" "$TOP/tests/interchange_ref.py" "$@"; }
peft() { "$PY" "$TOP/tests/peft_ref.py" "$@"; }
L=2 C=64 V=300 T=32
M="--layers $L --width $C --heads 4 --context $T --batch 8 -q"
F="--batch 8 --eval-batches 5 --lr 1e-2 --warmup 2"   # the LoRA runs
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1
NO_TORCH="python3-torch is not installed for /usr/bin/python3 (tools/deps.sh build)"
# parameters of the base, and of rank-R adapters on all four targets, for this shape
NPARAMS=$((V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C))
lora_n() { echo $((L * $1 * C * (1 + 3 + 1 + 1 + 1 + 4 + 4 + 1))); }

# field NAME: the value of NAME in the JSON line on stdin
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
step0() { sed -n 's/.*step 0 (--init [^)]*): valid loss \([0-9.e+-]*\),.*/\1/p' "$1"; }
losses() { cut -d, -f1-4 "$1"; } # step, loss, lr, grad_norm

needs_torch() {
    [ $HAVE_TORCH = 1 ] && return 0
    if [ "${CI:-}" = true ]; then
        test_expect_success "$1" "echo 'CI=true: $NO_TORCH' >&2; false"
    else
        test_skip "$1" "$NO_TORCH"
    fi
    return 1
}

test_expect_success 'setup: a corpus of small Python files, a base model trained on it' '
    small_corpus &&
    cm-train --data corpus $M --lr 3e-3 --steps 100 --ckpt base.ckpt &&
    test -s base.ckpt
'

test_expect_success 'LoRA run on all targets: step 0 is the base (valid loss), the memory line' '
    cm-train --init base.ckpt --data corpus $F --steps 20 --lora-rank 4 --lora-alpha 16 \
        --lora-targets all --log lora.jsonl --ckpt lora.ckpt 2>err &&
    cat err &&
    s0=$(step0 err) &&
    ev=$(cm-train eval --ckpt base.ckpt --data corpus --batch 8 --eval-batches 5 | field loss) &&
    say "step 0 valid loss $s0, base $ev" &&
    test -n "$s0" && test "$s0" = "$ev" &&
    n=$(lora_n 4) &&
    test_grep "LoRA r=4 alpha=16 (scale 4) on attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj: $n adapter parameters" err &&
    test_grep "base frozen: $((12 * NPARAMS)) bytes (.* MiB) of gradients and AdamW moments not allocated, $((12 * n)) bytes" err &&
    test "$(wc -l <lora.jsonl)" = 20
'

test_expect_success 'the base weights in the LoRA checkpoint are the base bit for bit; no base moments' '
    cmp -i 256 -n $((4 * NPARAMS)) base.ckpt lora.ckpt &&
    test "$(stat -c %s lora.ckpt)" = $((256 + 4 * NPARAMS + 12 * $(lora_n 4))) &&
    test "$(od -An -tu4 -j8 -N4 lora.ckpt | tr -d " ")" = 3 &&
    test "$(od -An -tu4 -j144 -N4 lora.ckpt | tr -d " ")" = 4 &&
    test "$(od -An -tu4 -j148 -N4 lora.ckpt | tr -d " ")" = 15
'

test_expect_success 'eval and complete apply the adapters: the run'"'"'s last valid loss, not the base'"'"'s' '
    vl=$(tail -1 lora.jsonl | field valid_loss) &&
    el=$(cm-train eval --ckpt lora.ckpt --data corpus --batch 8 --eval-batches 5 | field loss) &&
    bl=$(cm-train eval --ckpt base.ckpt --data corpus --batch 8 --eval-batches 5 | field loss) &&
    say "LoRA valid loss $el (run: $vl), base $bl" &&
    test -n "$vl" && test "$vl" = "$el" && test "$el" != "$bl" &&
    cm-train complete --ckpt lora.ckpt --data corpus --prompt "import pandas as" \
        --max-tokens 8 --temperature 0 >c-lora && test -s c-lora
'

test_expect_success 'resume: 12 steps == 6 steps + resume to 12 (same losses, same checkpoint bytes)' '
    R="--init base.ckpt --data corpus --batch 8 --lr 5e-3 --min-lr 5e-3 --warmup 0 -q \
       --lora-rank 2 --lora-targets c_attn,mlp.c_proj" &&
    cm-train $R --steps 12 --log full.jsonl --ckpt full.ckpt &&
    cm-train $R --steps 6 --log part.jsonl --ckpt part.ckpt &&
    test "$(wc -l <part.jsonl)" = 6 &&
    cm-train --data corpus --steps 12 --resume --log part.jsonl --ckpt part.ckpt -q &&
    losses full.jsonl >full.loss && losses part.jsonl >part.loss &&
    test "$(wc -l <part.loss)" = 12 &&
    test_cmp full.loss part.loss &&
    cmp full.ckpt part.ckpt
'

test_expect_success 'resume: other LoRA options are refused (exit 2), the checkpoint'"'"'s are adopted' '
    cp part.ckpt p2.ckpt &&
    test_expect_code 2 cm-train --data corpus --steps 14 --resume --ckpt p2.ckpt --lora-rank 3 -q 2>err &&
    test_grep "LoRA options given differ from the checkpoint.s (rank 2, alpha 8, targets attn.c_attn,mlp.c_proj)" err &&
    test_expect_code 2 cm-train --data corpus --steps 14 --resume --ckpt p2.ckpt \
        --lora-targets all -q 2>err &&
    cp base.ckpt b2.ckpt &&
    test_expect_code 2 cm-train --data corpus --steps 14 --resume --ckpt b2.ckpt --lora-rank 2 \
        --batch 8 --layers 2 --width 64 --heads 4 --context 32 -q 2>err &&
    test_grep "not a LoRA run" err &&
    cm-train --data corpus --steps 13 --resume --ckpt p2.ckpt --lora-rank 2 -q
'

if needs_torch 'export --format peft: PEFT names and shapes; PyTorch applies them to the base: cm-train logits'; then
    test_expect_success 'export --format peft: PEFT names and shapes; PyTorch applies them to the base: cm-train logits' '
        cm-train export --format peft -o adapter --base-model base-hf lora.ckpt 2>err &&
        test_grep "PEFT LoRA adapters r=4 alpha=16, $((8 * L)) tensors (f32)" err &&
        peft check adapter --layers $L --width $C --base base-hf &&
        "$PY" -c "
import json
c = json.load(open(\"adapter/adapter_config.json\"))
assert c[\"r\"] == 4 and c[\"lora_alpha\"] == 16, c
assert c[\"target_modules\"] == [\"attn.c_attn\", \"attn.c_proj\", \"mlp.c_fc\", \"mlp.c_proj\"]
" &&
        cm-train export --format hf -o base-hf --data corpus base.ckpt -q &&
        printf "import pandas as pd\ndef f(df):\n    model = Linear" >prompt.txt &&
        ids=$("$PY" -c "import json, sys; print(json.dumps({\"content\": open(\"prompt.txt\").read()}))" |
              cm-tokenize encode -t tok.json --jsonl | tr -d "[]") &&
        echo "$ids" >ids &&
        cm-train logits --ckpt lora.ckpt --ids $ids -o cm-lora.f32 &&
        cm-train logits --ckpt lora.ckpt --ids $ids -o cm-lora-kv.f32 --kv &&
        cm-train logits --ckpt base.ckpt --ids $ids -o cm-base.f32 &&
        peft logits base-hf adapter --ids $ids -o torch-lora.f32 &&
        ref compare cm-lora.f32 torch-lora.f32 --tol 1e-4 >d-peft && cat d-peft &&
        ref compare cm-lora-kv.f32 torch-lora.f32 --tol 1e-4 &&
        ! ref compare cm-base.f32 torch-lora.f32 --tol 1e-2 >d-base && cat d-base
    '
    [ -s d-peft ] && say "PEFT adapter on the hf base (PyTorch) vs cm-train LoRA: $(cat d-peft)"
    [ -s d-base ] && say "(the base alone vs the LoRA model: $(cat d-base))"
fi

test_expect_success 'export --format peft: the default target is c_attn alone; --dtype bf16' '
    cm-train --init base.ckpt --data corpus $F --steps 2 --lora-rank 8 --ckpt qkv.ckpt &&
    cm-train export --format peft -o qkv --ckpt qkv.ckpt -q &&
    test_grep "\"target_modules\": \[\"attn.c_attn\"\]" qkv/adapter_config.json &&
    test_grep "\"base_model_name_or_path\": null" qkv/adapter_config.json &&
    test_grep "\"lora_alpha\": 8," qkv/adapter_config.json &&
    cm-train export --format peft -o qkv16 --ckpt qkv.ckpt --dtype bf16 -q &&
    "$PY" -c "
import json, struct
for d, dt in ((\"qkv\", \"F32\"), (\"qkv16\", \"BF16\")):
    b = open(d + \"/adapter_model.safetensors\", \"rb\").read()
    h = json.loads(b[8:8 + struct.unpack(\"<Q\", b[:8])[0]])
    h.pop(\"__metadata__\")
    want = {}
    for l in range($L):
        p = \"base_model.model.transformer.h.%d.attn.c_attn.\" % l
        want[p + \"lora_A.weight\"] = [8, $C]
        want[p + \"lora_B.weight\"] = [3 * $C, 8]
    assert {k: v[\"shape\"] for k, v in h.items()} == want, h
    assert all(v[\"dtype\"] == dt for v in h.values())
"
'

test_expect_success 'merge: a plain checkpoint with the LoRA logits (fp32 rounding), hf and gguf exports' '
    cm-train merge -o merged.ckpt lora.ckpt 2>err &&
    test_grep "adapters r=4 alpha=16 on attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj folded" err &&
    test "$(stat -c %s merged.ckpt)" = $((256 + 4 * NPARAMS)) &&
    test "$(od -An -tu4 -j144 -N4 merged.ckpt | tr -d " ")" = 0 &&
    cm-train logits --ckpt lora.ckpt --ids 1,5,9,200,17,3,299,42 -o l.f32 &&
    cm-train logits --ckpt merged.ckpt --ids 1,5,9,200,17,3,299,42 -o m.f32 &&
    cm-train logits --ckpt base.ckpt --ids 1,5,9,200,17,3,299,42 -o b.f32 &&
    if [ $HAVE_TORCH = 1 ]; then
        ref compare l.f32 m.f32 --tol 1e-5 >d-merge && cat d-merge &&
        ! ref compare b.f32 m.f32 --tol 1e-2
    else
        ! cmp -s b.f32 m.f32
    fi &&
    cm-train complete --ckpt merged.ckpt --data corpus --prompt "import pandas as" \
        --max-tokens 8 --temperature 0 >c-merged && test_cmp c-lora c-merged &&
    cm-train export --format hf -o merged-hf --data corpus merged.ckpt -q &&
    test -s merged-hf/model.safetensors &&
    cm-train export --format gguf -o merged.gguf --data corpus --ckpt merged.ckpt 2>err &&
    test_grep "GGUF v3 gpt2" err
'
[ -s d-merge ] && say "merged vs LoRA checkpoint, cm-train logits: $(cat d-merge)"

if needs_torch 'the hf export of the merged checkpoint gives the LoRA logits in PyTorch'; then
    test_expect_success 'the hf export of the merged checkpoint gives the LoRA logits in PyTorch' '
        ref logits merged-hf --ids 1,5,9,200,17,3,299,42 -o t-merged.f32 &&
        ref compare l.f32 t-merged.f32 --tol 1e-4
    '
fi

test_expect_success 'usage errors (exit 2): targets, options without a rank, --zero, LoRA --init, exports, merge' '
    test_expect_code 2 cm-train --data corpus $M --lora-rank 4 --lora-targets c_att 2>err &&
    test_grep "lora-targets: .c_att. names no linear layer" err &&
    test_expect_code 2 cm-train --data corpus $M --lora-alpha 4 2>err &&
    test_grep "need --lora-rank" err &&
    test_expect_code 2 cm-train --data corpus $M --lora-rank 0 2>err &&
    test_expect_code 2 cm-train --data corpus $M --lora-rank 4 --zero 1 2>err &&
    test_grep "leave out --zero" err &&
    test_expect_code 2 cm-train --init lora.ckpt --data corpus $F --steps 2 -q 2>err &&
    test_grep "a LoRA checkpoint: --init takes plain weights (merge its adapters first: cm-train merge -o FILE lora.ckpt" err &&
    test_expect_code 2 cm-train export --format hf -o x --data corpus lora.ckpt 2>err &&
    test_grep "cm-train merge -o MERGED.ckpt lora.ckpt" err && test ! -e x &&
    test_expect_code 2 cm-train export --format gguf -o x.gguf --data corpus lora.ckpt 2>err &&
    test_expect_code 2 cm-train export --format peft -o x base.ckpt 2>err &&
    test_grep "not a LoRA checkpoint" err &&
    test_expect_code 2 cm-train export --format hf -o x --base-model gpt2 base.ckpt 2>err &&
    test_expect_code 2 cm-train merge -o m2.ckpt base.ckpt 2>err &&
    test_grep "base.ckpt: not a LoRA checkpoint: no adapters to merge" err && test ! -e m2.ckpt &&
    test_expect_code 2 cm-train merge -o lora.ckpt lora.ckpt 2>err &&
    test_expect_code 2 cm-train merge lora.ckpt 2>err &&
    test_expect_code 3 cm-train merge -o m3.ckpt missing.ckpt 2>err &&
    cm-train merge --help >help && test_grep "W. = W + (alpha/r) B A" help &&
    cm-train train --help >help && test_grep "lora-targets" help
'

test_expect_success 'a damaged LoRA checkpoint: exit 4 (adapters flipped, truncated, bad LoRA header)' '
    cp lora.ckpt flip.ckpt &&
    printf "\\377" | dd of=flip.ckpt bs=1 seek=$((256 + 4 * NPARAMS + 100)) conv=notrunc 2>/dev/null &&
    test_expect_code 4 cm-train eval --ckpt flip.ckpt --data corpus 2>err &&
    test_grep "checksum mismatch" err &&
    head -c $((256 + 4 * NPARAMS + 8)) lora.ckpt >trunc.ckpt &&
    test_expect_code 4 cm-train logits --ckpt trunc.ckpt --ids 1 -o x.f32 2>err &&
    test_grep "trunc.ckpt: offset [0-9]*: checkpoint is truncated" err &&
    cp lora.ckpt rank.ckpt &&
    printf "\\011" | dd of=rank.ckpt bs=1 seek=144 conv=notrunc 2>/dev/null &&
    test_expect_code 4 cm-train merge -o x.ckpt rank.ckpt 2>err &&
    test_grep "damaged checkpoint header" err
'

test_expect_success 'tokens/s of a LoRA run and of full fine-tuning (measured, the same shape)' '
    W="--synthetic 512 --layers 4 --width 256 --heads 4 --context 128 --batch 8 --steps 8 -q" &&
    cm-train $W --log full-speed.jsonl &&
    cm-train $W --lora-rank 8 --log lora-speed.jsonl &&
    fs=$(tail -4 full-speed.jsonl | field tokens_per_s | sort -n | sed -n 2p) &&
    ls=$(tail -4 lora-speed.jsonl | field tokens_per_s | sort -n | sed -n 2p) &&
    test -n "$fs" && test -n "$ls" &&
    echo "L4 C256 T128 batch 8 (median of the last 4 steps): full fine-tuning $fs tokens/s, LoRA r=8 on c_attn $ls tokens/s" >speed
'
[ -s speed ] && say "$(cat speed)"

test_done
