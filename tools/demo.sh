#!/bin/sh
# SPDX-License-Identifier: MIT
# make demo: the main job end to end on the default real data set.
#   1. the real data set: Python packages from Debian as .deb files (tools/fetch-data.sh)
#   2. cm-ingest | cm-filter | tee kept.jsonl | cm-tokenize train
#   3. cm-tokenize encode | cm-shards pack; SQL over the index
#   4. cm-train for a bounded time, eval on the valid split, completions, loss curve (SVG)
# Outputs go to demo-out/ (or $CM_DEMO_OUT). Tunables: CM_DEMO_MINUTES (training budget, 8),
# CM_DATA (where the .debs are kept).
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/build/bin
OUT=${CM_DEMO_OUT:-$TOP/demo-out}
DATA=${CM_DATA:-/var/cache/codemill/debs}
MINUTES=${CM_DEMO_MINUTES:-8}
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
rm -rf corpus

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
cm-train --data corpus --layers 4 --width 256 --heads 4 --context 128 --batch 16 \
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
print(f"  files  : {out}/loss.svg, {out}/corpus/, {out}/model.ckpt; total {secs} s")
PY
