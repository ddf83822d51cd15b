#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/trainer.sh BUILD_DIR DATA_DIR OUT_DIR: cm-train against PyTorch on this CPU, side by
# side in one run. Same GPT-2 architecture and shapes, fp32, 2 threads, random token ids (as the
# peer trains): configs S (4 layers, width 256, 4 heads, T 256, V 8192, batch 16) and
# M (6 layers, width 384, 6 heads, T 256, V 16384, batch 8).
#
# Figures: median tokens/s over steps 6..26 (both programs time each step the same way: the
# whole optimizer step), peak RSS (/usr/bin/time), and MFU = FLOPs/token (6 N + 12 L T C, N
# without wpe, the peer's count) x tokens/s over the best OpenBLAS sgemm GFLOP/s measured in the
# same run (the peer's sgemm_bench.c). cm-train runs with OPENBLAS_CORETYPE unset so that its
# own CPU detection picks the kernels; PyTorch is given OPENBLAS_CORETYPE=SkylakeX (its best).
# Markdown on stdout, details on stderr. DATA_DIR is not used (random ids, like the peer).
set -u
BUILD=$(cd "$1" && pwd)
OUT=$3
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
PEERS_DIR=${PEERS_DIR:-$(dirname "$TOP")/shared/peers}
STEPS=${CM_BENCH_STEPS:-26}
TRAIN="$BUILD/bin/cm-train"

[ -x "$TRAIN" ] || { echo "bench/trainer.sh: no $TRAIN" >&2; exit 1; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || bash "$PEERS_DIR/setup-torch.sh" >&2 ||
    { echo "bench/trainer.sh: cannot install the PyTorch peer" >&2; exit 1; }

load() { cut -d' ' -f1-3 /proc/loadavg; }

# sgemm limit of this machine, measured now (2 threads, SkylakeX kernels)
cc -O2 -o "$OUT/sgemm_bench" "$PEERS_DIR/sgemm_bench.c" \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -ldl || exit 1
OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=2 "$OUT/sgemm_bench" 0.3 >"$OUT/sgemm.txt" 2>&1
peak=$(sed -n 's/^# best sgemm GFLOP\/s over shapes: *//p' "$OUT/sgemm.txt")
[ -n "$peak" ] || peak=$(awk -F'\t' '$1 == "sgemm" && $7 + 0 > m { m = $7 + 0 } END { printf "%.1f", m }' "$OUT/sgemm.txt")
echo "sgemm peak (best over the peer's shapes, 2 threads): $peak GFLOP/s" >&2

# median of a column of numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

ours() { # config L C H T V B -> sets o_tps o_rss o_core o_flops
    cfg=$1
    shift
    env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY -u CM_TRAIN_REEXEC /usr/bin/time -f '%M' -o "$OUT/ours-$cfg.rss" \
        "$TRAIN" --synthetic "$5" --layers "$1" --width "$2" --heads "$3" --context "$4" \
        --batch "$6" --steps "$STEPS" --warmup 5 --threads 2 --seed 0 --profile \
        --log "$OUT/ours-$cfg.jsonl" 2>"$OUT/ours-$cfg.err" || return 1
    cat "$OUT/ours-$cfg.err" >&2
    o_tps=$(awk -F'"tokens_per_s":' 'NR > 5 { split($2, a, ","); print a[1] }' "$OUT/ours-$cfg.jsonl" | median)
    o_rss=$(awk '{ printf "%.0f", $1 / 1024 }' "$OUT/ours-$cfg.rss")
    o_core=$(sed -n 's/.*OpenBLAS \([A-Za-z0-9]*\) kernels.*/\1/p' "$OUT/ours-$cfg.err")
    # FLOPs per token: 6 x parameters without wpe + 12 L T C (the peer's formula)
    o_flops=$(awk -v L="$1" -v C="$2" -v T="$4" -v V="$5" 'BEGIN {
        n = V * C + L * (12 * C * C + 13 * C) + 2 * C; printf "%.0f", 6 * n + 12 * L * T * C }')
}

torch() { # config -> sets t_tps t_rss
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 "$PEERS_DIR/torch_gpt.py" --config "$1" \
        --threads 2 --steps "$STEPS" --warmup 6 --limit-gflops "$peak" >"$OUT/torch-$1.txt" 2>&1 || return 1
    grep -v '^RESULT_JSON' "$OUT/torch-$1.txt" | tail -3 >&2
    r=$(sed -n 's/^RESULT_JSON //p' "$OUT/torch-$1.txt")
    t_tps=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["tokens_per_s"])')
    t_rss=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["peak_rss_mib"])')
}

echo "| config | cm-train tokens/s | PyTorch tokens/s | ratio | cm-train MFU | PyTorch MFU | cm-train peak RSS | PyTorch peak RSS | load before |"
echo "|---|---|---|---|---|---|---|---|---|"
status=0
for spec in "S 4 256 4 256 8192 16" "M 6 384 6 256 16384 8"; do
    set -- $spec
    cfg=$1
    shift
    l0=$(load)
    if ! ours "$cfg" "$@"; then echo "bench/trainer.sh: cm-train failed on $cfg" >&2; status=1; continue; fi
    if ! torch "$cfg"; then echo "bench/trainer.sh: PyTorch failed on $cfg" >&2; status=1; continue; fi
    echo "$cfg $o_tps $t_tps $o_flops $peak $o_rss $t_rss" | awk -v l0="$l0" '{
        printf "| %s | %.0f | %.0f | **%.2fx** | %.0f%% | %.0f%% | %.0f MiB | %.0f MiB | %s |\n",
            $1, $2, $3, $2 / $3, 100 * $4 * $2 / 1e9 / $5, 100 * $4 * $3 / 1e9 / $5, $6, $7, l0 }'
done
echo
echo "sgemm limit measured in this run: $peak GFLOP/s (OpenBLAS, SkylakeX kernels, 2 threads, best" \
     "of the peer's transformer-shaped matmuls). cm-train kernels chosen by its own detection: ${o_core:-?}." \
     "Tokens/s: median over steps 6..$STEPS of one run each, back to back; 2 cores shared" \
     "with other work (load average before each pair in the last column)."
exit $status
