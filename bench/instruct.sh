#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/instruct.sh BUILD_DIR DATA_DIR OUT_DIR: base model -> instruct model on real data
# (issue 14): a base model trained on the code corpus of DATA_DIR's .debs, instruction pairs
# made from the documented functions of the same files (cm-filter --pairs), split by
# repository as the base corpus is (cm-shards pack --split-from), then side by side in one run:
#   - the base model, evaluated on the held-out pairs (response loss);
#   - full fine-tuning from the base (--init), every weight trained;
#   - LoRA from the base (--lora-rank 8 --lora-alpha 16 --lora-targets all), base frozen;
# each with its response loss on the held-out pairs, tokens/s (median of the logged steps after
# the first 5) and peak RSS (/usr/bin/time), and three answers to held-out instructions.
# Prints a Markdown report on stdout. Knobs: CM_INSTRUCT_BASE_MINUTES (20) trains the base,
# or CM_INSTRUCT_BASE=DIR reuses DIR/tok.json, DIR/corpus, DIR/base.ckpt; CM_INSTRUCT_STEPS
# (300) fine-tuning steps of each run; CM_INSTRUCT_THREADS (the cores).
set -eu
BUILD=$(cd "$1" && pwd)
DATA=$2
OUT=$3
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PATH="$BUILD/bin:$PATH"
STEPS=${CM_INSTRUCT_STEPS:-300}
MIN=${CM_INSTRUCT_BASE_MINUTES:-20}
THREADS=${CM_INSTRUCT_THREADS:-$(nproc)}
cd "$OUT"
log() { echo "bench/instruct: $*" >&2; }

# --- the base model --------------------------------------------------------------------------
if [ -n "${CM_INSTRUCT_BASE:-}" ]; then
    B=$(cd "$CM_INSTRUCT_BASE" && pwd)
    for f in tok.json corpus/index.sqlite base.ckpt; do
        [ -e "$B/$f" ] || { log "CM_INSTRUCT_BASE: no $B/$f"; exit 1; }
    done
    ln -sfn "$B/corpus" corpus
    cp "$B/tok.json" "$B/base.ckpt" .
    base_how="reused from $B"
else
    rm -rf corpus
    log "base corpus: cm-ingest | cm-filter | cm-tokenize train | encode | cm-shards pack"
    cm-ingest -q --ext py,ipynb "$DATA"/*.deb | cm-filter -q | tee kept.jsonl |
        cm-tokenize train -q --vocab-size 8192 -o tok.json
    cm-tokenize encode -q -t tok.json kept.jsonl | cm-shards pack -q -o corpus
    log "base model: $MIN minutes"
    cm-train -q --data corpus --layers 4 --width 256 --heads 4 --context 256 --batch 8 \
        --steps 100000 --time-limit $((MIN * 60)) --lr 1e-3 --warmup 50 --seed 1 \
        --threads "$THREADS" --log base.jsonl --ckpt base.ckpt
    base_how="trained here for $MIN minutes"
fi
base_steps=$(od -An -tu8 -j40 -N8 base.ckpt | tr -d ' ')

# --- instruction pairs from the same files, the base corpus's split kept ----------------------
rm -rf pairs
log "pairs: cm-ingest | cm-filter --pairs | cm-tokenize encode --template alpaca | cm-shards pack --split-from corpus"
cm-ingest -q --ext py,ipynb "$DATA"/*.deb | cm-filter -q --pairs --stats pairs-stats.json >pairs.jsonl
cm-tokenize encode -q -t tok.json --template alpaca pairs.jsonl |
    cm-shards pack -o pairs --split-from corpus 2>pack.err
cat pack.err >&2

# --- the runs ---------------------------------------------------------------------------------
evaluate() { # CKPT -> "loss tokens"
    cm-train eval -q --ckpt "$1" --data pairs --split valid --threads "$THREADS" |
        python3 -c 'import json,sys; e=json.load(sys.stdin); print(e["loss"], e["tokens"])'
}
finetune() { # NAME ARGS...: fine-tune from the base; peak RSS into NAME.rss
    name=$1
    shift
    log "$name: $STEPS steps"
    /usr/bin/time -f %M -o "$name.rss" cm-train -q --init base.ckpt --data pairs \
        --steps "$STEPS" --batch 8 --warmup 20 --eval-every 0 --seed 1 --threads "$THREADS" \
        --log "$name.jsonl" --ckpt "$name.ckpt" "$@" 2>"$name.err" || {
        cat "$name.err" >&2
        exit 1
    }
}
finetune full --lr 3e-4
finetune lora --lr 1e-3 --lora-rank 8 --lora-alpha 16 --lora-targets all
base_eval=$(evaluate base.ckpt)
full_eval=$(evaluate full.ckpt)
lora_eval=$(evaluate lora.ckpt)

# three held-out instructions: valid pairs, the first of three repositories' or spread out
sqlite3 pairs/index.sqlite "SELECT id FROM documents WHERE split = 'valid' AND n_tokens < 200
    ORDER BY id" >valid-ids.txt
python3 - pairs.jsonl valid-ids.txt >questions.jsonl <<'EOF'
import json, sys
ids = [int(x) for x in open(sys.argv[2])]
pick = [ids[len(ids) * k // 3] for k in range(3)] if len(ids) >= 3 else ids
recs = {}
for i, line in enumerate(open(sys.argv[1])):
    if i in pick:
        recs[i] = json.loads(line)
for i in pick:
    print(json.dumps({"instruction": recs[i]["instruction"], "output": recs[i]["output"],
                      "name": recs[i]["name"], "path": recs[i]["path"]}))
EOF
answers() { # CKPT: the answers to questions.jsonl, as JSON strings one per line
    while IFS= read -r q; do
        ins=$(printf '%s' "$q" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instruction"])')
        cm-train complete -q --ckpt "$1" --data pairs --template alpaca --instruction "$ins" \
            --max-tokens 96 --temperature 0 --threads "$THREADS" |
            python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'
    done <questions.jsonl
}
answers base.ckpt >answers-base.txt
answers full.ckpt >answers-full.txt
answers lora.ckpt >answers-lora.txt

python3 - "$OUT" "$STEPS" "$base_how" "$base_steps" "$base_eval" "$full_eval" "$lora_eval" <<'EOF'
import json, sys, sqlite3, statistics
out, steps, base_how, base_steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ev = {k: sys.argv[5 + i].split() for i, k in enumerate(["base", "full", "lora"])}
db = sqlite3.connect(f"{out}/pairs/index.sqlite")
rows = db.execute("SELECT split, COUNT(*), SUM(n_prompt), SUM(n_tokens - n_prompt), "
                  "COUNT(DISTINCT repo_name) FROM examples GROUP BY split").fetchall()
st = json.load(open(f"{out}/pairs-stats.json"))["pairs"]
print(f"Base model: L4 C256 H4 T256, 5.3M parameters, {base_how} ({base_steps} steps). "
      f"Instruction pairs: {st['records']} records from {st['files_with_pairs']} of {st['files']} "
      f"kept files (`cm-filter --pairs`), encoded with `--template alpaca`, packed with "
      f"`--split-from` the base corpus:")
for split, n, p, r, repos in rows:
    print(f"{split} {n} examples from {repos} repositories ({p} prompt and {r} response tokens)"
          + (";" if split == "train" else "."))
print()
def run(name):
    log = [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
    tps = [r["tokens_per_s"] for r in log if "tokens_per_s" in r][5:]
    rss = int(open(f"{out}/{name}.rss").read().split()[-1])
    return statistics.median(tps) if tps else 0, rss / 1024
print(f"Held-out pairs (valid split, {ev['base'][1]} response tokens scored), {steps} fine-tuning "
      "steps of batch 8 x 256 from the base, same seed and data order:")
print()
print("| model | trained | response loss (valid) | tokens/s | peak RSS |")
print("|---|---|---:|---:|---:|")
print(f"| base | - | {float(ev['base'][0]):.4f} | - | - |")
for name, what in [("full", "every weight, lr 3e-4"),
                   ("lora", "LoRA r=8 alpha=16 on c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, lr 1e-3")]:
    tps, rss = run(name)
    print(f"| {name} fine-tuning | {what} | {float(ev[name][0]):.4f} | {tps:.0f} | {rss:.0f} MiB |")
print()
qs = [json.loads(l) for l in open(f"{out}/questions.jsonl")]
ans = {k: [json.loads(l) for l in open(f"{out}/answers-{k}.txt")] for k in ["base", "full", "lora"]}
for i, q in enumerate(qs):
    print(f"**Instruction {i + 1}** (`{q['name']}` of `{q['path'].split('/')[-1]}`, a valid repository): {q['instruction']}")
    print()
    for k in ["base", "full", "lora"]:
        print(f"{k}:")
        print("```python")
        print(ans[k][i].rstrip())
        print("```")
    print()
EOF
