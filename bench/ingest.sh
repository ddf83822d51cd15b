#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/ingest.sh BUILD_DIR DATA_DIR OUT_DIR: cm-ingest against bsdtar on the same real dumps.
#
# The dumps are made from the real data set (the .deb files in DATA_DIR): their data.tar.* is
# extracted into OUT_DIR/tree, which is packed as .tar.gz (gzip -6), .tar.zst (zstd -3) and
# .zip (zip -6); the .deb files are used as they are. For each dump, hyperfine times
#   ours:  cm-ingest -q DUMP >/dev/null             (every text file as a JSONL record)
#   peer:  bsdtar -xOf DUMP >/dev/null              (every file's bytes, no record, no checks)
# (for .deb the peer is `bsdtar -xOf X.deb 'data.tar.*' | bsdtar -xOf -`, since bsdtar does not
# open nested archives), and the table gives MB/s of content (the bytes bsdtar writes, the same
# figure for both columns) and the ratio ours/peer (> 1: ours is faster).
# Then ingest-jsonbench (tests/helpers) measures the JSONL reader/writer (lib/record.h) and
# jansson on the JSONL that cm-ingest made from the .py files.
# Environment: RUNS (default 5), DEBS (a glob inside DATA_DIR, default *.deb).
set -eu
BUILD=$(cd "$1" && pwd)
DATA=$(cd "$2" && pwd)
OUT=$3
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUNS=${RUNS:-5}
DEBS=${DEBS:-*.deb}
ING="$BUILD/bin/cm-ingest"
JB="$BUILD/tests/ingest-jsonbench"
say() { echo "bench/ingest: $*" >&2; }
for t in bsdtar hyperfine python3 zstd zip; do
    command -v $t >/dev/null || { say "needs $t (tools/deps.sh bench)"; exit 1; }
done

# --- the dumps ------------------------------------------------------------------------------
if [ ! -f "$OUT/tree.stamp" ]; then
    say "extracting the .deb payloads into $OUT/tree"
    rm -rf "$OUT/tree" && mkdir -p "$OUT/tree"
    for d in "$DATA"/$DEBS; do
        n=$(basename "$d" .deb)
        mkdir -p "$OUT/tree/$n"
        bsdtar -xOf "$d" 'data.tar.*' | bsdtar -xf - -C "$OUT/tree/$n"
    done
    rm -f "$OUT"/dump.*
    touch "$OUT/tree.stamp"
fi
[ -f "$OUT/dump.tar.gz" ] || { say "packing tar.gz"; tar -C "$OUT/tree" --sort=name -cf - . | gzip -6 >"$OUT/dump.tar.gz"; }
[ -f "$OUT/dump.tar.zst" ] || { say "packing tar.zst"; tar -C "$OUT/tree" --sort=name -cf - . | zstd -q -3 >"$OUT/dump.tar.zst"; }
[ -f "$OUT/dump.zip" ] || { say "packing zip"; (cd "$OUT/tree" && zip -q -r -6 "$OUT/dump.zip" .); }

# --- whole-process timings -------------------------------------------------------------------
row() { # label content_bytes hyperfine.json: medians of wall time, means of CPU time
    python3 -c '
import json, sys
label, n = sys.argv[1], int(sys.argv[2])
r = json.load(open(sys.argv[3]))["results"]
ours, peer = r[0]["median"], r[1]["median"]
cpu_o, cpu_p = r[0]["user"] + r[0]["system"], r[1]["user"] + r[1]["system"]
print("| %s | %.1f | %.3f s | %.0f MB/s | %.3f s | %.0f MB/s | **%.2fx** | %.2f s | %.2f s |" % (
    label, n / 1e6, ours, n / 1e6 / ours, peer, n / 1e6 / peer, peer / ours, cpu_o, cpu_p))
' "$@"
}
load=$(cut -d" " -f1-3 /proc/loadavg)
echo "| dump | content MB | cm-ingest | MB/s | bsdtar | MB/s | ratio | CPU ours | CPU bsdtar |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in dump.tar.gz dump.tar.zst dump.zip; do
    n=$(bsdtar -xOf "$OUT/$f" | wc -c)
    say "timing $f ($n bytes of content)"
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/$f.json" \
        "$ING -q $OUT/$f >/dev/null" "bsdtar -xOf $OUT/$f >/dev/null" >&2
    row "${f#dump.}" "$n" "$OUT/$f.json"
done
# .deb: all of them in one process vs a bsdtar pipeline per package
n=0
for d in "$DATA"/$DEBS; do
    k=$(bsdtar -xOf "$d" 'data.tar.*' | bsdtar -xOf - | wc -c)
    n=$((n + k))
done
say "timing .deb ($n bytes of content)"
cat >"$OUT/peer-deb.sh" <<EOF
for d in "$DATA"/$DEBS; do bsdtar -xOf "\$d" 'data.tar.*' | bsdtar -xOf -; done
EOF
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/deb.json" \
    "$ING -q $DATA/$DEBS >/dev/null" "sh $OUT/peer-deb.sh >/dev/null" >&2
row "deb ($(ls "$DATA"/$DEBS | wc -l) files)" "$n" "$OUT/deb.json"
echo
echo "Content = bytes of every regular file (what bsdtar writes). Wall time: medians of $RUNS runs"
echo "(hyperfine); ratio = bsdtar time / cm-ingest time (> 1: cm-ingest is faster). CPU = user + system"
echo "seconds (means): cm-ingest also checks, converts and JSON-escapes every text file, in a second"
echo "thread. Load average at start: $load; at the end: $(cut -d" " -f1-3 /proc/loadavg) (2 cores)."

# --- JSON reader and writer ------------------------------------------------------------------
if [ -x "$JB" ]; then
    "$ING" -q --ext py "$OUT/tree" -o "$OUT/py.jsonl"
    say "timing the JSONL reader/writer"
    "$JB" "$OUT/py.jsonl" 5 >"$OUT/json.txt"
    echo
    echo "| JSONL ($(du -m "$OUT/py.jsonl" | cut -f1) MB of .py records, in memory) | MB/s |"
    echo "|---|---|"
    echo "| lib/record.h record_parse (validate + decode) | $(sed -n 's/^parse \([0-9]*\).*/\1/p' "$OUT/json.txt") |"
    echo "| lib/record.h record_write (escape + write) | $(sed -n 's/^emit \([0-9]*\).*/\1/p' "$OUT/json.txt") |"
    echo "| jansson json_loadb (peer) | $(sed -n 's/^jansson \([0-9]*\).*/\1/p' "$OUT/json.txt") |"
else
    # `make bench` builds `all`, not `tests`: say that the table is missing, and why
    say "no $JB (make tests): JSONL reader/writer not timed"
    echo
    echo "(JSONL reader/writer not timed: $JB is not built; \`make O=... tests\` builds it.)"
fi
