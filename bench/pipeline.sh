#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/pipeline.sh BUILD DATA OUT: end-to-end time from dumps to a trained model, stage by
# stage, on the real data set (every .deb in DATA): the pipeline of `make demo` with a fixed
# number of training steps instead of a time budget. Prints a Markdown table.
# There is no end-to-end peer run here: the Python peers (HF tokenizers through npm, PyTorch)
# do not form a pipeline on this machine (no datasets / datatrove without PyPI); each stage's
# ratio against its peer is in the stage's own table.
set -eu
BUILD=$1 DATA=$2 OUT=$3
STEPS=${CM_PIPELINE_STEPS:-100}
PATH="$BUILD/bin:$PATH"
mkdir -p "$OUT" && cd "$OUT" && rm -rf corpus
t() { /usr/bin/time -f "%e %M" -o "$1.time" sh -c "$2"; }
row() { read -r secs kb <"$1.time"; printf '| %s | %.1f s | %.0f MiB |\n' "$2" "$secs" "$((kb / 1024))"; }
t ingest_filter "cm-ingest -q --ext py,ipynb $DATA/*.deb | cm-filter -q > kept.jsonl"
t train_tok "cm-tokenize train --vocab-size 8192 -o tok.json kept.jsonl 2>/dev/null"
t encode_pack "cm-tokenize encode -t tok.json kept.jsonl | cm-shards pack --no-progress -o corpus 2>/dev/null"
t train_model "cm-train --data corpus --layers 4 --width 256 --heads 4 --context 256 --batch 16 --steps $STEPS --no-progress -q --ckpt model.ckpt"
t eval_model "cm-train eval --ckpt model.ckpt --data corpus --split valid --eval-batches 50 > eval.json"
mb=$(awk '{n += length($0) + 1} END {printf "%.1f", n / 1e6}' kept.jsonl)
debs=$(du -cm "$DATA"/*.deb | tail -1 | cut -f1)
echo "Input: $(ls "$DATA"/*.deb | wc -l) .deb files ($debs MB); kept JSONL: $mb MB;"
echo "model: config S (4 layers, width 256, 4 heads, context 256, vocab 8192, batch 16), $STEPS steps."
echo
echo "| step | wall | peak RSS |"
echo "|---|---|---|"
row ingest_filter "cm-ingest \\| cm-filter"
row train_tok "cm-tokenize train (vocab 8192)"
row encode_pack "cm-tokenize encode \\| cm-shards pack"
row train_model "cm-train ($STEPS steps)"
row eval_model "cm-train eval (50 batches of the valid split)"
total=$(cat *.time | awk '{s += $1} END {printf "%.1f", s}')
echo "| **total, dumps to evaluated model** | **$total s** | |"
echo
echo "Valid split after $STEPS steps: $(cat eval.json)"
