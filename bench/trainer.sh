#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/trainer.sh BUILD_DIR DATA_DIR OUT_DIR: cm-train against PyTorch on this CPU, side by
# side in one run. Same GPT-2 architecture and shapes, 2 threads, random token ids (as the peer
# trains): configs S (4 layers, width 256, 4 heads, T 256, V 8192, batch 16) and
# M (6 layers, width 384, 6 heads, T 256, V 16384, batch 8). Each config runs four ways:
# cm-train fp32 (OpenBLAS) and bf16 (--precision bf16: oneDNN; emulated on a CPU without
# AVX512_BF16/AMX, or refused, which the table says), PyTorch fp32 and PyTorch bf16 autocast
# (its oneDNN path: PyTorch's best CPU configuration; Debian's 1.13 has no
# scaled_dot_product_attention, so it runs its explicit masked attention). cm-train fp32 also
# runs on 1 thread, in the order 2, 1, 1, 2 threads (the speed of this VM drifts by 10-30%
# within minutes; the mirrored order cancels a steady drift): the summary gives 2 threads over
# 1 as the sum of the two 2-thread medians over the sum of the two 1-thread medians, and the
# table's 2-thread row is the first run.
#
# Figures: median tokens/s over steps 6..STEPS (both programs time each step the same way: the
# whole optimizer step), peak RSS (/usr/bin/time), and MFU = FLOPs/token (6 N + 12 L T C, N
# without wpe, the peer's count) x tokens/s over the best OpenBLAS fp32 sgemm GFLOP/s measured in
# the same run (the peer's sgemm_bench.c). cm-train runs with OPENBLAS_CORETYPE unset so that
# its own CPU detection picks the kernels; PyTorch is given OPENBLAS_CORETYPE=SkylakeX (its
# best). The last column of each config's summary is cm-train's best over PyTorch's best.
# Markdown on stdout, details on stderr. DATA_DIR is not used (random ids, like the peer).
# CM_BENCH_STEPS (default 26) sets the steps of every run; CM_BENCH_CONFIGS (default "S M").
set -u
BUILD=$(cd "$1" && pwd)
OUT=$3
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
PEERS_DIR=${PEERS_DIR:-$(dirname "$TOP")/shared/peers}
STEPS=${CM_BENCH_STEPS:-26}
CONFIGS=${CM_BENCH_CONFIGS:-S M}
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

# bf16 instructions on this CPU?
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then cpu_bf16="has AVX512_BF16/AMX"
else cpu_bf16="has no AVX512_BF16 or AMX (bf16 is emulated where it runs)"; fi

# median of a column of numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

ours() { # config precision L C H T V B -> sets o_tps o_rss o_core o_flops o_what (o_tps "" if refused)
    # on $threads threads (2 unless set); files named by config, precision and a 1t suffix
    cfg=$1 prec=$2 th=${threads:-2} tag=$2
    [ "$th" = 2 ] || tag=$2-${th}t
    tag=$tag${again:-}
    shift 2
    o_tps="" o_rss="" o_what=""
    env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY -u CM_TRAIN_REEXEC /usr/bin/time -f '%M' -o "$OUT/ours-$cfg-$tag.rss" \
        "$TRAIN" --synthetic "$5" --layers "$1" --width "$2" --heads "$3" --context "$4" \
        --batch "$6" --steps "$STEPS" --warmup 5 --threads "$th" --seed 0 --profile --eval-batches 1 \
        --precision "$prec" --log "$OUT/ours-$cfg-$tag.jsonl" 2>"$OUT/ours-$cfg-$tag.err"
    rc=$?
    cat "$OUT/ours-$cfg-$tag.err" >&2
    if [ $rc = 2 ] && [ "$prec" = bf16 ]; then   # oneDNN cannot run bf16 here: said on stderr
        o_what="refused: $(grep -m1 'precision bf16' "$OUT/ours-$cfg-$tag.err" | sed 's/^cm-train: //')"
        return 0
    fi
    [ $rc = 0 ] || return 1
    o_tps=$(awk -F'"tokens_per_s":' 'NR > 5 { split($2, a, ","); print a[1] }' "$OUT/ours-$cfg-$tag.jsonl" | median)
    o_rss=$(awk '{ printf "%.0f", $1 / 1024 }' "$OUT/ours-$cfg-$tag.rss")
    o_core=$(sed -n 's/.*OpenBLAS \([A-Za-z0-9]*\) kernels.*/\1/p' "$OUT/ours-$cfg-$tag.err")
    o_what=$(sed -n 's/.*; matmuls \(.*\); ~[0-9.]* GiB;.*/\1/p' "$OUT/ours-$cfg-$tag.err")
    # FLOPs per token: 6 x parameters without wpe + 12 L T C (the peer's formula)
    o_flops=$(awk -v L="$1" -v C="$2" -v T="$4" -v V="$5" 'BEGIN {
        n = V * C + L * (12 * C * C + 13 * C) + 2 * C; printf "%.0f", 6 * n + 12 * L * T * C }')
}

torch() { # config fp32|bf16 -> sets t_tps t_rss
    tflag=""
    [ "$2" = bf16 ] && tflag=--bf16
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 "$PEERS_DIR/torch_gpt.py" --config "$1" $tflag \
        --threads 2 --steps "$STEPS" --warmup 6 --limit-gflops "$peak" >"$OUT/torch-$1-$2.txt" 2>&1 || return 1
    grep -v '^RESULT_JSON' "$OUT/torch-$1-$2.txt" | tail -3 >&2
    r=$(sed -n 's/^RESULT_JSON //p' "$OUT/torch-$1-$2.txt")
    t_tps=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["tokens_per_s"])')
    t_rss=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["peak_rss_mib"])')
}

# row SYSTEM PRECISION TPS RSS BASE_TPS: one table line (MFU against the fp32 sgemm peak)
row() {
    echo "$cfg|$1|$2|$3|$4|$5|$o_flops|$peak" | awk -F'|' '{
        printf "| %s | %s | %s | %.0f | %.2fx | %.0f%% | %s MiB |\n",
            $1, $2, $3, $4, $4 / $6, 100 * $7 * $4 / 1e9 / $8, $5 }'
}

echo "| config | system | precision (what ran, from cm-train's start-up line) | tokens/s | vs cm-train fp32 | MFU | peak RSS |"
echo "|---|---|---|---|---|---|---|"
status=0
summary=""
for spec in "S 4 256 4 256 8192 16" "M 6 384 6 256 16384 8"; do
    set -- $spec
    cfg=$1
    shift
    case " $CONFIGS " in *" $cfg "*) ;; *) continue ;; esac
    l0=$(load)
    if ! ours "$cfg" fp32 "$@"; then echo "bench/trainer.sh: cm-train fp32 failed on $cfg" >&2; status=1; continue; fi
    f32=$o_tps f32rss=$o_rss f32what=$o_what
    one="" scale=""
    if threads=1 ours "$cfg" fp32 "$@"; then one=$o_tps onerss=$o_rss
    else echo "bench/trainer.sh: cm-train fp32 on 1 thread failed on $cfg" >&2; status=1; fi
    if [ -n "$one" ] && threads=1 again=-b ours "$cfg" fp32 "$@" && one_b=$o_tps &&
        again=-b ours "$cfg" fp32 "$@" && [ -n "$o_tps" ]; then
        scale=$(echo "$f32 $o_tps $one $one_b" | awk '{ printf "%.2fx (%.0f + %.0f over %.0f + %.0f tokens/s)", ($1 + $2) / ($3 + $4), $1, $2, $3, $4 }')
    else echo "bench/trainer.sh: cm-train fp32 second 1-/2-thread pair failed on $cfg" >&2; status=1; fi
    if ! ours "$cfg" bf16 "$@"; then echo "bench/trainer.sh: cm-train bf16 failed on $cfg" >&2; status=1; fi
    b16=$o_tps b16rss=$o_rss b16what=$o_what
    tf32="" tb16="" tf32rss="" tb16rss=""
    if torch "$cfg" fp32; then tf32=$t_tps tf32rss=$t_rss
    else echo "bench/trainer.sh: PyTorch fp32 failed on $cfg" >&2; status=1; fi
    if torch "$cfg" bf16; then tb16=$t_tps tb16rss=$t_rss
    else echo "bench/trainer.sh: PyTorch bf16 failed on $cfg (see torch-$cfg-bf16.txt)" >&2; status=1; fi
    row cm-train "$f32what" "$f32" "$f32rss" "$f32"
    [ -n "$one" ] && echo "$cfg|$one|$f32|$onerss" | awk -F'|' '{
        printf "| %s | cm-train | fp32, 1 thread | %.0f | %.2fx | | %s MiB |\n", $1, $2, $2 / $3, $4 }'
    if [ -n "$b16" ]; then row cm-train "$b16what" "$b16" "$b16rss" "$f32"
    else echo "| $cfg | cm-train | bf16 | — ($b16what) | | | |"; fi
    if [ -n "$tf32" ]; then row PyTorch "fp32" "$tf32" "$tf32rss" "$f32"
    else echo "| $cfg | PyTorch | fp32 | — (failed) | | | |"; fi
    if [ -n "$tb16" ]; then row PyTorch "bf16 autocast (oneDNN)" "$tb16" "$tb16rss" "$f32"
    else echo "| $cfg | PyTorch | bf16 autocast (oneDNN) | — (failed: $(tail -1 "$OUT/torch-$cfg-bf16.txt")) | | | |"; fi
    best=$(echo "$f32 ${b16:-0} ${tf32:-0} ${tb16:-0}" | awk '{
        o = $1 > $2 ? $1 : $2; ow = $1 > $2 ? "fp32" : "bf16";
        t = $3 > $4 ? $3 : $4; tw = $3 > $4 ? "fp32" : "bf16 autocast";
        if (t == 0) { printf "%s: PyTorch did not run", "'"$cfg"'"; exit }
        printf "%s: cm-train best (%s) %.0f vs PyTorch best (%s) %.0f tokens/s: **%.2fx**", "'"$cfg"'", ow, o, tw, t, o / t;
        if ($4 > 0) printf "; cm-train fp32 vs PyTorch bf16 autocast: %.2fx", $1 / $4 }')
    [ -n "$scale" ] && best="$best; cm-train fp32 2 threads over 1 thread, runs in the order 2 1 1 2: **${scale%% *}** ${scale#* }"
    summary="$summary$best (load before: $l0)
"
done
echo
printf '%s' "$summary" | sed 's/^/- /'
echo
echo "sgemm limit measured in this run: $peak GFLOP/s (OpenBLAS fp32, SkylakeX kernels, 2 threads," \
     "best of the peer's transformer-shaped matmuls); MFU of every row is against it." \
     "cm-train's OpenBLAS kernels chosen by its own detection: ${o_core:-?}. This CPU $cpu_bf16." \
     "Tokens/s: median over steps 6..$STEPS of one run each, back to back; 2 cores shared" \
     "with other work (load average before each config in the summary)."
exit $status
