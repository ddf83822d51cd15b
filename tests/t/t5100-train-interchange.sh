#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train export / import: a small model trained here goes out to Hugging Face's layout (read
# back by an independent PyTorch GPT-2, tests/interchange_ref.py, whose logits must match
# cm-train's) and to GGUF (loaded by llama.cpp itself through node-llama-cpp, whose tokens and
# greedy completions must match cm-tokenize's and cm-train complete's); random GPT-2s written
# in the Hub's layout by PyTorch come in; damaged files are refused with exit 4.
#
# Prerequisites: python3-torch (tools/deps.sh build) and node-llama-cpp (tools/llama-node.sh,
# which this script runs: npm, once, into a cache outside the checkout). Where one is missing
# its tests are skipped, except under CI=true, where they fail: CI installs both.
. "$(dirname "$0")/test-lib.sh"

PY=/usr/bin/python3
REF="$TOP/tests/interchange_ref.py"
ref() { "$PY" "$REF" "$@"; }
M="--layers 2 --width 64 --heads 4 --context 64 --batch 8 --lr 3e-3 -q"
IDS=1,5,9,200,17,3,299,42,0,77
HAVE_TORCH=0
"$PY" -c 'import torch' 2>/dev/null && HAVE_TORCH=1

# needs TITLE HAVE WHY: true when the test can run; else it is skipped, or failed under CI=true
needs() {
    [ "$2" = 1 ] && return 0
    if [ "${CI:-}" = true ]; then
        test_expect_success "$1" "echo 'CI=true: $3' >&2; false"
    else
        test_skip "$1" "$3"
    fi
    return 1
}
# jsonl_of FILE: a JSONL record whose content is FILE's bytes (newlines, CRs and all)
jsonl_of() {
    "$PY" -c "import json, sys; print(json.dumps({\"content\": open(sys.argv[1], newline=\"\").read()}))" "$1"
}
NO_TORCH="python3-torch is not installed for /usr/bin/python3 (tools/deps.sh build)"

test_expect_success 'setup: a corpus of small Python files, a model trained on it' '
    small_corpus &&
    cm-train --data corpus $M --steps 150 --ckpt model.ckpt &&
    test -s model.ckpt
'

test_expect_success 'export --format hf: safetensors, config, generation config, tokenizer files' '
    cm-train export --ckpt model.ckpt --format hf -o hf --data corpus 2>err &&
    test_grep "28 tensors (f32)" err &&
    for f in model.safetensors config.json generation_config.json tokenizer.json \
             tokenizer_config.json special_tokens_map.json; do
        test -s hf/$f || { echo "no hf/$f" >&2; return 1; }
    done &&
    test_cmp tok.json hf/tokenizer.json &&
    for k in "\"model_type\": \"gpt2\"" "\"GPT2LMHeadModel\"" "\"vocab_size\": 300" \
             "\"n_positions\": 64" "\"n_ctx\": 64" "\"n_embd\": 64" "\"n_layer\": 2" \
             "\"n_head\": 4" "\"n_inner\": null" "\"activation_function\": \"gelu_new\"" \
             "\"layer_norm_epsilon\": 1e-05" "\"bos_token_id\": 0" "\"eos_token_id\": 0" \
             "\"tie_word_embeddings\": true" "\"torch_dtype\": \"float32\""; do
        test_grep "$k" hf/config.json || return 1
    done &&
    test_grep "\"tokenizer_class\": \"GPT2TokenizerFast\"" hf/tokenizer_config.json &&
    test_grep "\"eos_token\": \"<|endoftext|>\"" hf/tokenizer_config.json &&
    test_grep "\"model_max_length\": 64" hf/tokenizer_config.json
'

test_expect_success 'export: transformers names, Conv1D weights stored (in, out), no lm_head' '
    "$PY" -c "
import json, struct, sys
b = open(\"hf/model.safetensors\", \"rb\").read()
n = struct.unpack(\"<Q\", b[:8])[0]
h = json.loads(b[8:8 + n])
assert h.pop(\"__metadata__\") == {\"format\": \"pt\"}
want = {\"transformer.wte.weight\": [300, 64], \"transformer.wpe.weight\": [64, 64],
        \"transformer.ln_f.weight\": [64], \"transformer.ln_f.bias\": [64]}
for l in range(2):
    p = \"transformer.h.%d.\" % l
    for k, s in ((\"ln_1.weight\", [64]), (\"ln_1.bias\", [64]), (\"ln_2.weight\", [64]),
                 (\"ln_2.bias\", [64]), (\"attn.c_attn.weight\", [64, 192]),
                 (\"attn.c_attn.bias\", [192]), (\"attn.c_proj.weight\", [64, 64]),
                 (\"attn.c_proj.bias\", [64]), (\"mlp.c_fc.weight\", [64, 256]),
                 (\"mlp.c_fc.bias\", [256]), (\"mlp.c_proj.weight\", [256, 64]),
                 (\"mlp.c_proj.bias\", [64])):
        want[p + k] = s
got = {k: v[\"shape\"] for k, v in h.items()}
assert got == want, (sorted(set(got) ^ set(want)), got)
assert all(v[\"dtype\"] == \"F32\" for v in h.values())
assert (8 + n) % 8 == 0
"
'

if needs 'PyTorch reads the export: its GPT-2 forward gives cm-train logits (f32, < 1e-4)' \
        $HAVE_TORCH "$NO_TORCH"; then
    test_expect_success 'PyTorch reads the export: its GPT-2 forward gives cm-train logits (f32, < 1e-4)' '
        printf "import pandas as pd\ndef f(df):\n    model = Linear" >prompt.txt &&
        ids=$(jsonl_of prompt.txt | cm-tokenize encode -t tok.json --jsonl | tr -d "[]") &&
        cm-train logits --ckpt model.ckpt --ids $ids -o cm.f32 &&
        cm-train logits --ckpt model.ckpt --ids $ids -o cm-kv.f32 --kv &&
        ref logits hf --ids $ids -o torch.f32 &&
        ref compare cm.f32 torch.f32 --tol 1e-4 >d-export && cat d-export &&
        ref compare cm-kv.f32 torch.f32 --tol 1e-4 >d-export-kv && cat d-export-kv
    '
    [ -s d-export ] && say "export f32, cm-train forward vs PyTorch: $(cat d-export)"
    [ -s d-export-kv ] && say "export f32, cm-train kv-cache steps vs PyTorch: $(cat d-export-kv)"
fi

if needs 'bf16 and f16 exports: PyTorch and cm-train agree on the rounded weights (< 1e-4)' \
        $HAVE_TORCH "$NO_TORCH"; then
    test_expect_success 'bf16 and f16 exports: PyTorch and cm-train agree on the rounded weights (< 1e-4)' '
        for d in bf16 f16; do
            cm-train export --ckpt model.ckpt --format hf -o hf-$d --dtype $d --data corpus -q &&
            test_grep "\"torch_dtype\": \"$( [ $d = bf16 ] && echo bfloat16 || echo float16)\"" \
                hf-$d/config.json &&
            cm-train import --from hf-$d -o $d.ckpt -q &&
            cm-train logits --ckpt $d.ckpt --ids $IDS -o cm-$d.f32 &&
            ref logits hf-$d --ids $IDS -o torch-$d.f32 &&
            ref compare cm-$d.f32 torch-$d.f32 --tol 1e-4 &&
            cm-train export --ckpt $d.ckpt --format hf -o hf-$d-again --dtype $d -q &&
            test_cmp hf-$d/model.safetensors hf-$d-again/model.safetensors || return 1
        done
    '
fi

test_expect_success 'export -> import: bit-identical parameters; export again: identical files' '
    cm-train import --from hf -o back.ckpt 2>err &&
    test_grep "tokenizer in back.ckpt.tokenizer.json" err &&
    test_cmp tok.json back.ckpt.tokenizer.json &&
    bytes=$(( $(stat -c %s back.ckpt) - 256 )) &&
    cmp -i 256 -n $bytes model.ckpt back.ckpt &&
    cmp -i 16:16 -n 20 model.ckpt back.ckpt &&
    cmp -i 64:64 -n 8 model.ckpt back.ckpt &&
    cm-train export --ckpt back.ckpt --format hf -o hf-again -q &&
    for f in model.safetensors config.json tokenizer.json tokenizer_config.json; do
        test_cmp hf/$f hf-again/$f || return 1
    done
'

test_expect_success 'the imported checkpoint works with the corpus: eval and complete' '
    cm-train eval --ckpt back.ckpt --data corpus >ev-back.json &&
    cm-train eval --ckpt model.ckpt --data corpus >ev.json &&
    test "$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" ev.json)" = \
         "$(sed "s/.*\"loss\":\([0-9.]*\),.*/\1/" ev-back.json)" &&
    cm-train complete --ckpt back.ckpt --data corpus --prompt "import pandas as" \
        --max-tokens 8 --temperature 0 >c-back &&
    cm-train complete --ckpt model.ckpt --data corpus --prompt "import pandas as" \
        --max-tokens 8 --temperature 0 >c-orig &&
    test_cmp c-orig c-back
'

test_expect_success 'export: a tokenizer of other data is refused (exit 4, both fingerprints)' '
    cm-tokenize train --vocab-size 280 -o other.json recs.jsonl 2>/dev/null &&
    test_expect_code 4 cm-train export --ckpt model.ckpt --format hf -o x --tokenizer other.json 2>err &&
    test_grep "other.json: the tokenizer.s fingerprint [0-9a-f]* (vocabulary 300) is not the checkpoint.s [0-9a-f]*" err &&
    test ! -e x/model.safetensors &&
    cm-train export --ckpt model.ckpt --format hf -o x --tokenizer tok.json -q &&
    test_cmp hf/model.safetensors x/model.safetensors
'

test_expect_success 'export: usage errors (exit 2); --no-tokenizer writes weights and config only' '
    test_expect_code 2 cm-train export --ckpt model.ckpt --format hf -o y 2>err &&
    test_grep "no tokenizer recorded beside this checkpoint" err &&
    test_expect_code 2 cm-train export --ckpt model.ckpt -o y 2>err &&
    test_grep "format" err &&
    test_expect_code 2 cm-train export --ckpt model.ckpt --format onnx -o y 2>err &&
    test_expect_code 2 cm-train export --ckpt model.ckpt --format hf -o y --dtype q8_0 --data corpus 2>err &&
    test_grep "f32, bf16 or f16" err &&
    test_expect_code 2 cm-train export --ckpt model.ckpt --format gguf -o y --dtype bf16 --data corpus 2>err &&
    test_expect_code 2 cm-train export --ckpt model.ckpt --format gguf -o y --no-tokenizer 2>err &&
    test_expect_code 3 cm-train export --ckpt missing.ckpt --format hf -o y 2>err &&
    cm-train export --ckpt model.ckpt --format hf -o bare --no-tokenizer -q &&
    test -s bare/model.safetensors && test -s bare/config.json && test ! -e bare/tokenizer.json &&
    test_grep "\"eos_token_id\": null" bare/config.json &&
    cm-train export --help >help && test_grep "llama-cli" help
'

if needs 'import: a random GPT-2 written by PyTorch in the Hub layout gives its logits' \
        $HAVE_TORCH "$NO_TORCH"; then
    test_expect_success 'import: a random GPT-2 written by PyTorch in the Hub layout gives its logits' '
        ref make-hub hub --tokenizer tok.json --seed 3 &&
        cm-train import --from hub -o hub.ckpt 2>err &&
        test_grep "L2 C64 H4 T32 V300 from 1 file" err &&
        cm-train logits --ckpt hub.ckpt --ids $IDS -o cm-hub.f32 &&
        ref logits hub --ids $IDS -o torch-hub.f32 &&
        ref compare cm-hub.f32 torch-hub.f32 --tol 1e-4 >d-import && cat d-import &&
        test_cmp tok.json hub.ckpt.tokenizer.json
    '
    [ -s d-import ] && say "import f32, cm-train vs PyTorch: $(cat d-import)"
    test_expect_success 'import: 3 shards and an index, no transformer. prefix, untied lm_head, buffers' '
        ref make-hub hub3 --seed 4 --shards 3 --no-prefix --head same --buffers &&
        test -s hub3/model.safetensors.index.json && test ! -e hub3/model.safetensors &&
        cm-train import --from hub3 -o hub3.ckpt 2>err &&
        test_grep "from 3 files" err && test_grep "no tokenizer" err &&
        test ! -e hub3.ckpt.tokenizer.json &&
        cm-train logits --ckpt hub3.ckpt --ids $IDS -o cm-hub3.f32 &&
        ref logits hub3 --ids $IDS -o torch-hub3.f32 &&
        ref compare cm-hub3.f32 torch-hub3.f32 --tol 1e-4
    '
    test_expect_success 'import: f16 and bf16 tensors (another vocabulary, context, width)' '
        for d in f16 bf16; do
            ref make-hub hub-$d --dtype $d --vocab 1003 --ctx 48 --width 96 --heads 3 --shards 2 &&
            cm-train import --from hub-$d -o hub-$d.ckpt -q &&
            cm-train logits --ckpt hub-$d.ckpt --ids 1002,7,500,0,33 -o cm-$d.f32 &&
            ref logits hub-$d --ids 1002,7,500,0,33 -o torch-$d.f32 &&
            ref compare cm-$d.f32 torch-$d.f32 --tol 1e-4 || return 1
        done
    '
    test_expect_success 'import refuses an lm_head that is not the token embedding (exit 4)' '
        ref make-hub hub-untied --head differ &&
        test_expect_code 4 cm-train import --from hub-untied -o u.ckpt 2>err &&
        test_grep "hub-untied/model.safetensors: offset [0-9]*: tensor .lm_head.weight.: an LM head untied" err &&
        test ! -e u.ckpt
    '
    test_expect_success 'hostile files: exit 4 naming the file, the tensor and the offset' '
        ref make-hub good &&
        for k in truncate outside overlap shape dtype duplicate config; do
            t=$(ref hostile good bad-$k $k) &&
            test_expect_code 4 cm-train import --from bad-$k -o bad.ckpt 2>err &&
            cat err &&
            test_grep "bad-$k/model.safetensors: offset [0-9]*: tensor .transformer\." err &&
            case $k in truncate|overlap) ;; *) test_grep "tensor .$t.:" err ;; esac || return 1
        done &&
        ref hostile good bad-len header-length &&
        test_expect_code 4 cm-train import --from bad-len -o bad.ckpt 2>err &&
        test_grep "bad-len/model.safetensors: offset 0: header length [0-9]* runs past the end" err &&
        test ! -e bad.ckpt
    '
    test_expect_success 'import refuses what cm-train cannot compute: erf GELU, other epsilon, n_inner' '
        for edit in "s/\"gelu_new\"/\"gelu\"/" "s/1e-05/1e-06/" "s/\"n_inner\": null/\"n_inner\": 100/"; do
            rm -rf arch && cp -r good arch && sed -i "$edit" arch/config.json &&
            test_expect_code 4 cm-train import --from arch -o a.ckpt 2>err &&
            test_grep "arch/config.json: not a GPT-2 cm-train can hold" err || return 1
        done &&
        rm -rf arch && cp -r good arch && rm arch/config.json &&
        test_expect_code 3 cm-train import --from arch -o a.ckpt 2>err &&
        test_grep "config.json" err &&
        rm -rf arch && cp -r good arch && rm arch/model.safetensors &&
        test_expect_code 3 cm-train import --from arch -o a.ckpt 2>err &&
        test_grep "neither model.safetensors nor model.safetensors.index.json" err
    '
fi

test_expect_success 'export --format gguf: GGUF v3, gpt2 metadata, tokenizer, types per dtype' '
    for d in f32 f16 q8_0; do
        cm-train export --ckpt model.ckpt --format gguf -o m-$d.gguf --dtype $d --data corpus \
            2>err-$d && test_grep "GGUF v3 gpt2, 28 tensors ($d), 300 tokens" err-$d &&
        ref gguf-info m-$d.gguf >info-$d.json || return 1
    done &&
    merges=$("$PY" -c "import json; print(len(json.load(open(\"tok.json\"))[\"model\"][\"merges\"]))") &&
    "$PY" -c "
import json
for d, ft, mt in ((\"f32\", 0, \"F32\"), (\"f16\", 1, \"F16\"), (\"q8_0\", 7, \"Q8_0\")):
    g = json.load(open(\"info-%s.json\" % d))
    kv = g[\"kv\"]
    assert g[\"version\"] == 3
    want = {\"general.architecture\": \"gpt2\", \"general.file_type\": ft,
            \"general.alignment\": 32, \"gpt2.context_length\": 64,
            \"gpt2.embedding_length\": 64, \"gpt2.feed_forward_length\": 256,
            \"gpt2.block_count\": 2, \"gpt2.attention.head_count\": 4,
            \"tokenizer.ggml.model\": \"gpt2\", \"tokenizer.ggml.pre\": \"gpt-2\",
            \"tokenizer.ggml.bos_token_id\": 0, \"tokenizer.ggml.eos_token_id\": 0,
            \"tokenizer.ggml.add_bos_token\": False}
    for k, v in want.items():
        assert kv[k] == v, (d, k, kv.get(k))
    assert abs(kv[\"gpt2.attention.layer_norm_epsilon\"] - 1e-5) < 1e-12
    assert kv[\"tokenizer.ggml.tokens\"][\"count\"] == 300
    assert kv[\"tokenizer.ggml.tokens\"][\"first\"][0] == \"<|endoftext|>\"
    assert kv[\"tokenizer.ggml.token_type\"][\"count\"] == 300
    assert kv[\"tokenizer.ggml.token_type\"][\"first\"][:2] == [3, 1]
    assert kv[\"tokenizer.ggml.merges\"][\"count\"] == $merges
    t = {x[\"name\"]: x for x in g[\"tensors\"]}
    assert len(t) == 28 and \"output.weight\" not in t
    assert t[\"token_embd.weight\"][\"dims\"] == [64, 300]
    assert t[\"blk.1.attn_qkv.weight\"][\"dims\"] == [64, 192]
    assert t[\"blk.0.ffn_down.weight\"][\"dims\"] == [256, 64]
    for n, x in t.items():
        matrix = len(x[\"dims\"]) == 2 and n != \"position_embd.weight\"
        assert x[\"type\"] == (mt if matrix else \"F32\"), (d, n, x[\"type\"])
        assert x[\"offset\"] % 32 == 0
    assert g[\"data_start\"] % 32 == 0
"
'

NPM=""
if command -v node >/dev/null 2>&1; then
    NPM=$(sh "$TOP/tools/llama-node.sh" 2>llama-node.err) || NPM=""
fi
HAVE_LLAMA=0
[ -n "$NPM" ] && HAVE_LLAMA=1
NO_LLAMA="node-llama-cpp could not be installed (tools/llama-node.sh: $(tail -1 llama-node.err 2>/dev/null))"
MODELS="m-f32.gguf m-f16.gguf m-q8_0.gguf"
[ "$CM_SAN" = 1 ] && MODELS="m-f32.gguf"   # the files are the same; f16/q8_0 measured in the plain run

if needs 'llama.cpp loads the f32 GGUF: same tokens as cm-tokenize, same greedy completions' \
        $HAVE_LLAMA "$NO_LLAMA"; then
    test_expect_success 'llama.cpp loads the f32 GGUF: same tokens as cm-tokenize, same greedy completions' '
        printf "def g(x, y=3):\n\treturn x ** 2 + y  # carr\303\251, \346\227\245\346\234\254 d\303\251j\303\240\n\n\n    print(g(12345), \"ok\")  \r\n  z = [1,2 ,3]\t\tOK\n" >held.txt &&
        jsonl_of held.txt | cm-tokenize encode -t tok.json --jsonl >held.ids &&
        printf "%s\n" "import pandas as" "def f1" "    model.fit(" "from sklearn" "def f5(df):" \
            "    return model" >prompts.txt &&
        i=0 && while IFS= read -r p; do
            i=$((i + 1)) &&
            cm-train complete --ckpt model.ckpt --data corpus --prompt "$p" --max-tokens 32 \
                --temperature 0 >c$i.txt || return 1
        done <prompts.txt &&
        timeout 900 node "$TOP/tests/gguf_llama.mjs" "$NPM" held.txt prompts.txt 32 $MODELS \
            >llama.jsonl 2>llama.err || { cat llama.err; false; } &&
        ref llama-report llama.jsonl m-f32.gguf held.ids prompts.txt c1.txt c2.txt c3.txt c4.txt \
            c5.txt c6.txt >r-f32 && cat r-f32 &&
        test_grep "^ids same" r-f32 &&
        test_grep "^completions 6/6 identical" r-f32
    '
    if [ "$CM_SAN" != 1 ]; then
        test_expect_success 'llama.cpp and the f16 / q8_0 GGUFs: same tokens; completions agree (measured)' '
            for d in f16 q8_0; do
                ref llama-report llama.jsonl m-$d.gguf held.ids prompts.txt c1.txt c2.txt c3.txt \
                    c4.txt c5.txt c6.txt >r-$d && cat r-$d &&
                test_grep "^ids same" r-$d || return 1
            done &&
            test_grep "^completions 6/6 identical" r-f16 &&
            test_grep "^completions [56]/6 identical" r-q8_0
        '
        for d in f16 q8_0; do [ -s r-$d ] && say "llama.cpp $d GGUF: $(tail -1 r-$d)"; done
    fi
fi

test_done
