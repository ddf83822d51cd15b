#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench: run every stage of codemill against its peer on the same real data, in one run,
# print the tables (ours, peer, ratio) and write them into docs/BENCHMARKS.md under a dated
# heading with the machine. Each stage's script is bench/STAGE.sh BUILD DATA OUT.
#   tools/bench.sh [STAGE...]      (default: ingest filter tokenize shards trainer interchange pipeline adapt instruct)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CM_BUILD:-$TOP/build}
DATA=${CM_BENCH_DATA:-/var/cache/codemill/debs-bench}
OUT=${CM_BENCH_OUT:-$TOP/bench-out}
PEERS_DIR=${PEERS_DIR:-$(dirname "$TOP")/shared/peers}
export PEERS_DIR TOP
[ $# -gt 0 ] || set -- ingest filter tokenize shards trainer interchange pipeline adapt instruct
sh "$TOP/tools/fetch-data.sh" --bench "$DATA" >/dev/null || exit 1
mkdir -p "$OUT"
date=$(date -u +%Y-%m-%d)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $cpu, $(uname -r)"
report="$OUT/report.md"
{
    echo "## Run of $date"
    echo
    echo "Machine: $machine. Command: \`make bench\` (tools/bench.sh $*)."
    echo
} >"$report"
status=0
for s in "$@"; do
    script="$TOP/bench/$s.sh"
    if [ ! -f "$script" ]; then
        echo "bench: no bench/$s.sh, skipped" >&2
        continue
    fi
    echo "bench: $s ..." >&2
    mkdir -p "$OUT/$s"
    shell=sh
    head -1 "$script" | grep -q bash && shell=bash
    if $shell "$script" "$BUILD" "$DATA" "$OUT/$s" >"$OUT/$s.md" 2>"$OUT/$s.log"; then
        { echo "### $s"; echo; cat "$OUT/$s.md"; echo; } >>"$report"
    else
        echo "bench: $s failed (see $OUT/$s.log)" >&2
        { echo "### $s"; echo; echo "failed: $(tail -3 "$OUT/$s.log")"; echo; } >>"$report"
        status=1
    fi
done
cat "$report"
# keep the newest run at the top of the results section of docs/BENCHMARKS.md
doc="$TOP/docs/BENCHMARKS.md"
if grep -q '^<!-- bench-runs -->' "$doc"; then
    awk -v f="$report" '{print} /^<!-- bench-runs -->/{while ((getline l < f) > 0) print l}' \
        "$doc" >"$doc.new" && mv "$doc.new" "$doc"
fi
exit $status
