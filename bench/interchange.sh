#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/interchange.sh BUILD_DIR DATA_DIR OUT_DIR: cm-train's model interchange on a GPT-2
# 124M-shaped model (L12 C768 H12 T1024 V50257, random weights written in the Hub's layout by
# tests/interchange_ref.py with PyTorch), side by side in one run:
#   - the reference: reading the safetensors file twice from the page cache (cat, cat);
#   - cm-train import (safetensors -> checkpoint, which ckpt_save fsyncs);
#   - cm-train export --format hf (f32, bf16) and --format gguf (f32, q8_0), fsync'd too;
#   - PyTorch reading the same safetensors file with the hand-written reader of the tests;
#   - dd writing the same number of bytes with conv=fsync (the disk).
# DATA_DIR is not used. Medians of RUNS (default 3) runs. Prints a Markdown table on stdout.
set -euo pipefail
BUILD=$(cd "$1" && pwd); OUT=$3
TOP=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
PY=/usr/bin/python3
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); cd "$OUT"
CM="$BUILD/bin/cm-train"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; other work may run)" >&2

[ -s hub/model.safetensors ] ||
    "$PY" "$TOP/tests/interchange_ref.py" make-hub hub --layers 12 --width 768 --heads 12 \
        --ctx 1024 --vocab 50257 --seed 1 >&2
# a tokenizer for the GGUF (its 300 tokens are padded to 50257 with [PAD] entries)
if [ ! -s tok.json ]; then
    for i in $(seq 40); do printf '{"content":"import numpy as np\\nx = np.arange(%d)\\n"}\n' "$i"; done >t.jsonl
    "$BUILD/bin/cm-tokenize" train --vocab-size 300 -o tok.json t.jsonl 2>/dev/null
fi
F=hub/model.safetensors
BYTES=$(stat -c %s $F)
cat $F >/dev/null

# median_s CMD...: "WALL CPU" (seconds; CPU = user + system) of the run with the median wall
# time among RUNS runs of CMD
median_s() {
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o time.txt "$@" >/dev/null 2>&1
        awk '{printf "%s %.2f\n", $1, $2 + $3}' time.txt
    done | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

ref=$(median_s sh -c "cat $F >/dev/null; cat $F >/dev/null")
imp=$(median_s "$CM" import --from hub -o m.ckpt -q)
ehf=$(median_s "$CM" export --ckpt m.ckpt --format hf -o hf --no-tokenizer -q)
ebf=$(median_s "$CM" export --ckpt m.ckpt --format hf -o hf16 --dtype bf16 --no-tokenizer -q)
eg=$(median_s "$CM" export --ckpt m.ckpt --format gguf -o m.gguf --tokenizer tok.json --skip-fingerprint-check -q)
eq=$(median_s "$CM" export --ckpt m.ckpt --format gguf -o q.gguf --dtype q8_0 --tokenizer tok.json --skip-fingerprint-check -q)
py=$(median_s "$PY" "$TOP/tests/interchange_ref.py" read-time $F)
pyin=$("$PY" "$TOP/tests/interchange_ref.py" read-time $F | cut -d' ' -f1)
dd=$(median_s dd if=$F of=dd.out bs=1M conv=fsync status=none)
rm -f dd.out time.txt

base=${ref%% *}
row() { # TITLE "WALL CPU"
    set -- "$1" ${2% *} ${2#* }
    printf '| %s | %.2f | %s | %.1f |\n' "$1" "$2" "$3" "$(echo "$2 / $base" | bc -l)"
}
echo "GPT-2 124M shape, $((BYTES / 1000000)) MB of f32 weights; seconds, the run with the median"
echo "wall time of $RUNS. Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| what | wall s | CPU s | wall / (cat twice) |"
echo "|---|---:|---:|---:|"
row "cat model.safetensors twice (page cache)" "$ref"
row "cm-train import (safetensors -> checkpoint, fsync)" "$imp"
row "cm-train export --format hf (f32, fsync)" "$ehf"
row "cm-train export --format hf --dtype bf16" "$ebf"
row "cm-train export --format gguf (f32)" "$eg"
row "cm-train export --format gguf --dtype q8_0" "$eq"
row "PyTorch, hand reader (python3 start and import torch included)" "$py"
row "PyTorch, hand reader, the read alone (one run)" "$pyin -"
row "dd the same bytes, conv=fsync (the disk)" "$dd"
