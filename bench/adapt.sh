#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/adapt.sh BUILD_DIR DATA_DIR OUT_DIR: domain adaptation on real data (issue 13, item 6).
# From the Debian packages' Python files in DATA_DIR (*.deb):
#   - a data-science corpus: what cm-filter keeps; a general-Python corpus: the files cm-filter
#     rejects for their imports (no numpy/pandas/sklearn), through `cm-filter --no-select` (the
#     same quality rules and dedup); both encoded with ONE tokenizer, trained on the general one;
#   - base: a model trained on the general corpus for BASE_S seconds;
#   - exported to Hugging Face's layout and imported back, as a downloaded model would be;
#   - adapted: that import trained on the data-science corpus with --init for TUNE_S seconds;
#   - scratch: a model trained on the data-science corpus alone for the steps and the seconds
#     of base + adaptation together (whichever ends first); and "scratch, short" for those of
#     the adaptation alone (a downloaded base costs its user nothing);
#   - each evaluated on the data-science corpus's valid split (whole repositories held out).
# The step counts come from a short calibration run, so that each schedule (warmup, cosine)
# ends near its time; --time-limit caps every run. Prints a Markdown table on stdout.
# Environment: ADAPT_JSONL (cm-ingest's output of DATA_DIR, to skip the ingest), ADAPT_MODEL,
# ADAPT_VOCAB, ADAPT_BASE_S, ADAPT_TUNE_S, ADAPT_LR, ADAPT_TUNE_LR, ADAPT_EVAL_BATCHES.
set -euo pipefail
BUILD=$(cd "$1" && pwd); DATA=$2; OUT=$3
MODEL=${ADAPT_MODEL:---layers 2 --width 128 --heads 4 --context 128 --batch 16}
VOCAB=${ADAPT_VOCAB:-2048}
BASE_S=${ADAPT_BASE_S:-150}
TUNE_S=${ADAPT_TUNE_S:-60}
LR=${ADAPT_LR:-2e-3}
TUNE_LR=${ADAPT_TUNE_LR:-1e-3}
EVAL_BATCHES=${ADAPT_EVAL_BATCHES:-200}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); cd "$OUT"
PATH=$BUILD/bin:$PATH
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; other work may run)" >&2

# --- the two corpora, one tokenizer -------------------------------------------------------
if [ -n "${ADAPT_JSONL:-}" ]; then
    ln -sf "$ADAPT_JSONL" all.jsonl
else
    cm-ingest --ext py,ipynb "$DATA"/*.deb >all.jsonl
fi
cm-filter --rejects rejects.jsonl <all.jsonl >ds.jsonl
grep -F '"reject":"imports"' rejects.jsonl | cm-filter --no-select >general.jsonl
cm-tokenize train --vocab-size "$VOCAB" -o tok.json general.jsonl
rm -rf corpus-general corpus-ds
cm-tokenize encode -t tok.json general.jsonl | cm-shards pack -o corpus-general
cm-tokenize encode -t tok.json ds.jsonl | cm-shards pack -o corpus-ds

# last_field LOG NAME: the value of NAME in LOG's last line
last_field() { tail -1 "$1" | sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p"; }

# --- calibration: optimizer steps per second of this model on this machine, now -----------
cm-train --synthetic "$VOCAB" $MODEL --steps 8 --log calib.jsonl -q --ckpt calib.ckpt
tps=$(sed -n '3,8s/.*"tokens_per_s":\([0-9.]*\).*/\1/p' calib.jsonl | sort -n | sed -n 3p)
tpstep=$(head -1 calib.jsonl | sed 's/.*"tokens":\([0-9]*\).*/\1/')
steps_for() {
    awk -v s="$1" -v t="$tps" -v n="$tpstep" 'BEGIN { k = int(s * t / n); print (k > 10 ? k : 10) }'
}
echo "# calibration: $tps tokens/s, $tpstep tokens per step" >&2

# --- base, export, import, adaptation, scratch ----------------------------------------------
nb=$(steps_for "$BASE_S")
cm-train --data corpus-general $MODEL --lr "$LR" --steps "$nb" --time-limit "$BASE_S" \
    --eval-batches "$EVAL_BATCHES" --log base.jsonl --ckpt base.ckpt
rm -rf base-hf
cm-train export --ckpt base.ckpt --data corpus-general --format hf -o base-hf
cm-train import --from base-hf -o imported.ckpt
na=$(steps_for "$TUNE_S")
cm-train --init imported.ckpt --data corpus-ds $MODEL --lr "$TUNE_LR" --steps "$na" \
    --time-limit "$TUNE_S" \
    --eval-batches "$EVAL_BATCHES" --log adapted.jsonl --ckpt adapted.ckpt 2>adapted.err
cat adapted.err >&2
sb=$(last_field base.jsonl step); sa=$(last_field adapted.jsonl step)
eb=$(last_field base.jsonl elapsed_s); ea=$(last_field adapted.jsonl elapsed_s)
budget=$(awk -v a="$eb" -v b="$ea" 'BEGIN { printf "%.1f", a + b }')
cm-train --data corpus-ds $MODEL --lr "$LR" --steps $((sb + sa)) --time-limit "$budget" \
    --eval-batches "$EVAL_BATCHES" --log scratch.jsonl --ckpt scratch.ckpt
cm-train --data corpus-ds $MODEL --lr "$LR" --steps "$sa" --time-limit "$ea" \
    --eval-batches "$EVAL_BATCHES" --log scratch-short.jsonl --ckpt scratch-short.ckpt

# --- held-out data-science bits per byte -----------------------------------------------------
ev() { cm-train eval --ckpt "$1" --data corpus-ds --split valid --batch 16 \
           --eval-batches "$EVAL_BATCHES"; }
ev base.ckpt >eval-base.json
ev imported.ckpt >eval-imported.json
ev adapted.ckpt >eval-adapted.json
ev scratch.ckpt >eval-scratch.json
ev scratch-short.ckpt >eval-scratch-short.json
cmp -s <(sed 's/"step":[0-9]*,//' eval-base.json) <(sed 's/"step":[0-9]*,//' eval-imported.json) ||
    echo "# the imported model does not evaluate like the base model" >&2
valid_q() { sqlite3 corpus-ds/index.sqlite "select $1 from documents where split='valid'" \
                2>/dev/null || echo '?'; }
mb() { du -m "$1" | cut -f1; }

row() { # NAME TRAINING STEPS SECONDS EVAL_JSON
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" \
        "$(last_field "$5" loss)" "$(last_field "$5" bits_per_byte)"
}
echo "Model: \`$MODEL\`, vocabulary $VOCAB (one tokenizer, trained on the general corpus);"
echo "general corpus: $(wc -l <general.jsonl) files ($(mb general.jsonl) MB), data-science"
echo "corpus: $(wc -l <ds.jsonl) files ($(mb ds.jsonl) MB). Held out: the data-science corpus's"
echo "valid split ($(valid_q 'count(*)') documents of $(valid_q 'group_concat(distinct repo_name)')),"
echo "its first $EVAL_BATCHES batches of 16 windows (\`cm-train eval --split valid\`)."
echo "Load average when done: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (shared machine)."
echo
echo "| model | trained on | steps | seconds | data-science valid loss | bits per byte |"
echo "|---|---|---|---|---|---|"
row base "general ($LR)" "$sb" "$eb" eval-base.json
row adapted "base, HF export + import, then data science (--init, lr $TUNE_LR)" \
    "$sb + $sa" "$eb + $ea" eval-adapted.json
row scratch "data science only ($LR), the steps of base + adapted" \
    "$(last_field scratch.jsonl step)" "$(last_field scratch.jsonl elapsed_s)" eval-scratch.json
row "scratch, short" "data science only ($LR), the steps of the adaptation" \
    "$(last_field scratch-short.jsonl step)" "$(last_field scratch-short.jsonl elapsed_s)" \
    eval-scratch-short.json
