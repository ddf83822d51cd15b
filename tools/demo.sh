#!/bin/sh
# SPDX-License-Identifier: MIT
# make demo: the main job end to end on the default real data set.
#   1. the real data set: Python packages from Debian as .deb files (tools/fetch-data.sh)
#   2. cm-ingest | cm-filter | tee kept.jsonl | cm-tokenize train
#   3. cm-tokenize encode | cm-shards pack; SQL over the index
#   4. cm-train for a bounded time, eval on the valid split, completions, loss curve (SVG)
#   5. an instruct model: instruction pairs from the same files (cm-filter --pairs), encoded
#      with the alpaca template, split as the base corpus; LoRA on the base; answers
# Outputs go to demo-out/ (or $CM_DEMO_OUT). Tunables: CM_DEMO_MINUTES (training budget, 8),
# CM_DEMO_LORA_MINUTES (the LoRA run, 3), CM_DATA (where the .debs are kept).
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/build/bin
OUT=${CM_DEMO_OUT:-$TOP/demo-out}
DATA=${CM_DATA:-/var/cache/codemill/debs}
MINUTES=${CM_DEMO_MINUTES:-8}
LORA_MINUTES=${CM_DEMO_LORA_MINUTES:-3}
PATH="$BIN:$PATH"
export PATH
t0=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
elapsed() { echo $(( $(date +%s) - t0 )); }

step "1. the data set: Debian's Python packages (.deb files are real repository dumps)"
DEBS=$(sh "$TOP/tools/fetch-data.sh" "$DATA")
ls -l $DEBS | awk '{printf "  %8.1f MB  %s\n", $5/1e6, $NF}' >&2
mkdir -p "$OUT"
cd "$OUT"
rm -rf corpus pairs

step "2. cm-ingest | cm-filter | tee kept.jsonl | cm-tokenize train"
echo "  cm-ingest --ext py,ipynb DEBS | cm-filter --rejects rejects.jsonl | tee kept.jsonl |" >&2
echo "    cm-tokenize train --vocab-size 8192 -o tok.json" >&2
cm-ingest --ext py,ipynb --stats ingest.json $DEBS |
    cm-filter --stats filter.json --rejects rejects.jsonl |
    tee kept.jsonl |
    cm-tokenize train --vocab-size 8192 -o tok.json

step "3. cm-tokenize encode | cm-shards pack, then SQL over corpus/index.sqlite"
cm-tokenize encode -t tok.json kept.jsonl | cm-shards pack -o corpus
cm-shards verify corpus >&2
# the split keeps most tokens for training and a valid split to evaluate on (docs/FORMATS.md)
share=$(sqlite3 corpus/index.sqlite "SELECT printf('%.1f', 100.0 * SUM(n_tokens * (split = 'train')) / SUM(n_tokens)) FROM documents")
nvalid=$(sqlite3 corpus/index.sqlite "SELECT COUNT(*) FROM documents WHERE split = 'valid'")
echo "  training on $share% of the tokens; $nvalid documents in the valid split" >&2
if [ "$nvalid" = 0 ] || awk -v s="$share" 'BEGIN { exit !(s < 85) }'; then
    echo "demo: the split is off: $share% of the tokens in train, $nvalid valid documents" >&2
    exit 1
fi
q() { echo "  sqlite> $1" >&2; sqlite3 -header -column corpus/index.sqlite "$1" | sed 's/^/  /' >&2; }
q "SELECT * FROM tokens_per_split"
q "SELECT repo_name, documents, tokens FROM tokens_per_repo ORDER BY tokens DESC LIMIT 12"
q "SELECT * FROM tokens_per_module"
q "SELECT path, n_tokens, file FROM largest_documents LIMIT 5"

step "4. cm-train: a small GPT for $MINUTES minutes, then eval and completions"
cm-train --data corpus --layers 4 --width 256 --heads 4 --context 256 --batch 8 \
    --steps 100000 --time-limit $((MINUTES * 60)) --lr 1e-3 --warmup 50 \
    --eval-every 100 --eval-batches 10 --log train.jsonl --ckpt model.ckpt
cm-train eval --ckpt model.ckpt --data corpus --split valid --eval-batches 100 | tee eval.txt >&2
for p in "import numpy as" "import matplotlib.pyplot as" "df = pd.read_csv(" \
         "from sklearn.model_selection import"; do
    echo "  --- prompt: $p" >&2
    cm-train complete --ckpt model.ckpt --data corpus --prompt "$p" --max-tokens 40 \
        --temperature 0.7 --top-k 40 --seed 1 | sed 's/^/  | /' >&2
done
cm-train plot --log train.jsonl -o loss.svg

step "5. an instruct model: pairs from documented functions, LoRA for $LORA_MINUTES minutes"
echo "  cm-ingest DEBS | cm-filter --pairs | cm-tokenize encode --template alpaca |" >&2
echo "    cm-shards pack --split-from corpus   (the base corpus's valid repositories stay valid)" >&2
cm-ingest -q --ext py,ipynb $DEBS | cm-filter --pairs --stats pairs.json >pairs.jsonl
cm-tokenize encode -t tok.json --template alpaca pairs.jsonl | cm-shards pack -o pairs --split-from corpus
sqlite3 -header -column pairs/index.sqlite \
    "SELECT split, COUNT(*) AS examples, CAST(AVG(n_prompt) AS INT) AS avg_prompt,
            CAST(AVG(n_response) AS INT) AS avg_response FROM examples GROUP BY split" |
    sed 's/^/  /' >&2
cm-train --init model.ckpt --data pairs --lora-rank 8 --lora-alpha 16 --lora-targets all \
    --lr 1e-3 --warmup 20 --batch 8 --steps 100000 --time-limit $((LORA_MINUTES * 60)) \
    --eval-every 50 --eval-batches 10 --log lora.jsonl --ckpt lora.ckpt
echo "  response loss on the held-out pairs: base, then the LoRA model" >&2
cm-train eval --ckpt model.ckpt --data pairs --split valid | sed 's/^/  base: /' >&2
cm-train eval --ckpt lora.ckpt --data pairs --split valid | sed 's/^/  lora: /' >&2
sqlite3 pairs/index.sqlite "SELECT id FROM documents WHERE split = 'valid' AND n_tokens < 160
    ORDER BY id LIMIT 2" | while read -r id; do
    ins=$(sed -n "$((id + 1))p" pairs.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["instruction"])')
    echo "  --- instruction (held out): $ins" >&2
    cm-train complete --ckpt lora.ckpt --data pairs --template alpaca --instruction "$ins" \
        --max-tokens 80 --temperature 0 | sed 's/^/  | /' >&2
done
cm-train export --format peft -o adapter lora.ckpt
echo "  PEFT adapter: $(ls adapter | tr '\n' ' ')" >&2

step "summary"
python3 - "$OUT" "$(elapsed)" <<'PY' >&2 || true
import json, sys, sqlite3
out, secs = sys.argv[1], int(sys.argv[2])
ing = json.load(open(f"{out}/ingest.json")); fil = json.load(open(f"{out}/filter.json"))
print(f"  ingest : {ing.get('emitted')} files emitted of {ing.get('entries_seen')} entries "
      f"({ing.get('content_bytes_out', 0)/1e6:.1f} MB)")
kept = fil["kept"]; rej = fil["rejected"]
print(f"  filter : kept {kept['records']} ({kept['bytes']/1e6:.1f} MB); rejected " +
      ", ".join(f"{k} {v['records']}" for k, v in rej.items() if v['records']))
db = sqlite3.connect(f"{out}/corpus/index.sqlite")
for split, docs, toks in db.execute("SELECT split, count(*), sum(n_tokens) FROM documents GROUP BY split"):
    print(f"  corpus : {split}: {docs} documents, {toks} tokens")
log = [json.loads(l) for l in open(f"{out}/train.jsonl")]
ev = [r for r in log if 'valid_loss' in r]
last = log[-1]
print(f"  train  : {last['step']} steps in {last.get('elapsed_s', 0):.0f} s, "
      f"{last.get('tokens_per_s', 0):.0f} tokens/s, last train loss {last['loss']:.3f}")
if ev:
    e = ev[-1]
    print(f"  valid  : loss {e['valid_loss']:.3f}, perplexity {e['perplexity']:.1f}, "
          f"bits per byte {e.get('bits_per_byte', float('nan')):.3f}")
print(f"  files  : {out}/loss.svg, {out}/corpus/, {out}/model.ckpt, {out}/pairs/, "
      f"{out}/lora.ckpt, {out}/adapter/; total {secs} s")
PY
