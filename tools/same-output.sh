#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/same-output.sh BIN_DIR OUT_DIR [DEB...]: run the demo pipeline (ingest, filter, tokenize
# train/encode, pack, 50 training steps with a fixed seed) with the executables of BIN_DIR and
# print one checksum line per output: kept.jsonl, tok.json, each shard, the checkpoint, and the
# training log without its timing fields. Two builds made the same bytes when their lines match:
#   sh tools/same-output.sh /tmp/old/bin /tmp/o1 > a; sh tools/same-output.sh build/bin /tmp/o2 > b
#   diff a b && echo same
set -eu
BIN=$(cd "$1" && pwd)
OUT=$2
shift 2
[ $# -gt 0 ] || set -- $(sh "$(dirname "$0")/fetch-data.sh")
mkdir -p "$OUT"
rm -rf "$OUT/corpus" "$OUT/model.ckpt" "$OUT/train.jsonl"
"$BIN/cm-ingest" --ext py,ipynb "$@" 2>/dev/null | "$BIN/cm-filter" 2>/dev/null >"$OUT/kept.jsonl"
"$BIN/cm-tokenize" train --vocab-size 8192 -o "$OUT/tok.json" "$OUT/kept.jsonl" 2>/dev/null
"$BIN/cm-tokenize" encode -t "$OUT/tok.json" "$OUT/kept.jsonl" 2>/dev/null |
    "$BIN/cm-shards" pack -o "$OUT/corpus" 2>/dev/null
"$BIN/cm-train" --data "$OUT/corpus" --layers 2 --width 64 --heads 2 --context 64 --batch 4 \
    --steps 50 --seed 7 --eval-every 25 --eval-batches 4 --log "$OUT/train.jsonl" \
    --ckpt "$OUT/model.ckpt" 2>/dev/null
cd "$OUT"
sha256sum kept.jsonl tok.json corpus/shard-*.bin model.ckpt
sqlite3 corpus/index.sqlite 'SELECT file, tokens, documents, checksum FROM shards ORDER BY file' |
    sha256sum | sed 's/-$/index.sqlite shards rows/'
sqlite3 corpus/index.sqlite 'SELECT * FROM documents ORDER BY id' | sha256sum |
    sed 's/-$/index.sqlite documents rows/'
sed 's/,"tokens_per_s":[^,}]*//; s/,"mfu_gflops":[^,}]*//; s/,"elapsed_s":[^,}]*//' train.jsonl |
    sha256sum | sed 's/-$/train.jsonl without timings/'
