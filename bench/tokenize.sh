#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/tokenize.sh BUILD_DIR DATA_DIR OUT_DIR: cm-tokenize against Hugging Face tokenizers and
# tiktoken, side by side on the same real Python (the .py files of the .debs in DATA_DIR).
#   TRAIN_MB (default 200) of text to train on (last 10% of files held out for bytes/token),
#   ENC_MB (default 20) of it to measure encoding speed, THREADS (default 2), PEERS (default
#   /tmp/peers, installed by $PEERS_DIR/setup-tokenizers.sh). Prints a Markdown table on stdout.
set -euo pipefail
BUILD=$(cd "$1" && pwd); DATA=$2; OUT=$3
TOP=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$(dirname "$TOP")/shared/peers}
PEERS=${PEERS:-/tmp/peers}
TRAIN_MB=${TRAIN_MB:-200}; ENC_MB=${ENC_MB:-20}; THREADS=${THREADS:-2}
CM="$BUILD/bin/cm-tokenize"
mkdir -p "$OUT"; cd "$OUT"
[ -d "$PEERS/node/node_modules/tokenizers" ] || PEERS=$PEERS bash "$PEERS_DIR/setup-tokenizers.sh" >&2
PKG=$PEERS/node/node_modules/tokenizers

mb() { echo "scale=1; $(wc -c <"$1") / 1000000" | bc; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }
ntok() { tr -c '0-9\n' ' ' <"$1" | wc -w; }
# REPORT_ONLY=1 prints the table again from the files of a previous run in OUT_DIR.
if [ -z "${REPORT_ONLY:-}" ]; then
# 1. Real Python from the .debs (no cm-ingest): JSONL for us, the same text for the peers.
if [ ! -s all.list ]; then   # (delete OUT_DIR/all.list to re-extract)
    rm -rf x && mkdir x
    for d in "$DATA"/*.deb; do dpkg-deb -x "$d" x; done
    find x -name '*.py' -type f | LC_ALL=C sort >all.list
fi
python3 - "$TRAIN_MB" "$ENC_MB" <<'PY'
import json, sys
train_mb, enc_mb = float(sys.argv[1]), float(sys.argv[2])
files = [l.rstrip('\n') for l in open('all.list')]
docs, total = [], 0
for f in files:
    t = open(f, 'rb').read().decode('utf-8', 'replace')
    if not t: continue
    docs.append((f, t)); total += len(t.encode())
    if total >= train_mb * 1e6: break
cut = int(len(docs) * 0.9)
def dump(name, part):
    with open(name + '.jsonl', 'w') as j, open(name + '.txt', 'w') as x, open(name + '.str', 'w') as s:
        for f, t in part:
            j.write(json.dumps({'repo_name': 'debs', 'path': f, 'content': t}) + '\n')
            x.write(t); s.write(json.dumps(t) + '\n')
dump('train', docs[:cut]); dump('held', docs[cut:])
enc, n = [], 0
for d in docs[:cut]:
    enc.append(d); n += len(d[1].encode())
    if n >= enc_mb * 1e6: break
dump('enc', enc)
# the same training text as one record per line: what Hugging Face's file trainer sees
with open('train.txt', newline='') as x, open('train-lines.jsonl', 'w') as j:
    for line in x:
        j.write(json.dumps({'content': line}) + '\n')
PY
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; other builds may run)" >&2

# 2. Training, vocab 30000 + <|endoftext|>, same thread count.
/usr/bin/time -v "$CM" train --vocab-size 30001 --threads "$THREADS" -o ours.json train.jsonl 2>ours.time
/usr/bin/time -v "$CM" train --vocab-size 30001 --threads "$THREADS" -o lines.json train-lines.jsonl 2>lines.time
RAYON_NUM_THREADS=$THREADS /usr/bin/time -v node "$PEERS_DIR/hf-train.js" "$PKG" hf.json train.txt >hf.train 2>hf.time
"$CM" encode -t ours.json --jsonl held.jsonl >held.ours
"$CM" encode -t lines.json --jsonl held.jsonl >held.lines
node "$PEERS_DIR/hf-encode.js" --pkg "$PKG" --json hf.json held.str >held.hf
fi  # REPORT_ONLY
HB=$(wc -c <held.txt)
bpt_ours=$(echo "scale=3; $HB / $(ntok held.ours)" | bc); bpt_lines=$(echo "scale=3; $HB / $(ntok held.lines)" | bc); bpt_hf=$(echo "scale=3; $HB / $(ntok held.hf)" | bc)
# How many of our merges (trained on the lines) are HF's, in the same order: "COMMON OURS HF".
merges_same=$(python3 -c '
import json, sys
m = [[tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in json.load(open(f))["model"]["merges"]] for f in sys.argv[1:]]
k = 0
while k < min(map(len, m)) and m[0][k] == m[1][k]: k += 1
print(k, len(m[0]), len(m[1]))' lines.json hf.json)

# 3. Encoding speed on ENC_MB (whole process, hyperfine medians; tiktoken times its calls only).
EB=$(wc -c <enc.txt)
if [ -z "${REPORT_ONLY:-}" ]; then
hyperfine -N --style none --runs 5 --export-json enc1.json "$CM encode -t ours.json --threads 1 -o /dev/null enc.jsonl" >&2
hyperfine -N --style none --runs 5 --export-json enc2.json "$CM encode -t ours.json --threads $THREADS -o /dev/null enc.jsonl" >&2
RAYON_NUM_THREADS=1 hyperfine -N --style none --runs 1 --export-json hf1.json "node $PEERS_DIR/hf-encode.js --pkg $PKG --json hf.json enc.str" >&2
RAYON_NUM_THREADS=$THREADS hyperfine -N --style none --runs 1 --export-json hf2.json "node $PEERS_DIR/hf-encode.js --pkg $PKG --json hf.json enc.str" >&2
node "$PEERS_DIR/tiktoken-bench.js" "$PEERS/node/node_modules" tiktoken enc.txt lines >tt.json
fi  # REPORT_ONLY
stat() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(r['median'] if sys.argv[2]=='wall' else r['user']+r['system'])" "$1" "$2"; }
mbs() { echo "scale=1; $EB / 1000000 / $1" | bc | sed 's/^\./0./'; }
o1=$(mbs "$(stat enc1.json wall)"); o2=$(mbs "$(stat enc2.json wall)"); h1=$(mbs "$(stat hf1.json wall)"); h2=$(mbs "$(stat hf2.json wall)")
o1c=$(mbs "$(stat enc1.json cpu)"); o2c=$(mbs "$(stat enc2.json cpu)"); h1c=$(mbs "$(stat hf1.json cpu)"); h2c=$(mbs "$(stat hf2.json cpu)")
tt=$(python3 -c "import json; print('%.1f' % json.load(open('tt.json'))['mb_per_s'])")
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", (a / b - 1) * 100 }'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)

echo "### cm-tokenize vs Hugging Face tokenizers 0.23.2 and tiktoken 1.0.22"
echo
echo "$(date -u '+%F %H:%M') UTC, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at the end: $load."
echo "Training text: $(mb train.txt) MB of real Python ($(wc -l <train.jsonl) .py files from the .debs in DATA_DIR); held out: $(mb held.txt) MB (the last 10% of the files); encoding: $(mb enc.txt) MB. Vocabulary 30000 + <|endoftext|>; $THREADS threads for both trainers."
echo
echo "| measure | cm-tokenize | peer | cm-tokenize vs peer |"
echo "|---|---|---|---|"
echo "| train: wall time (s), /usr/bin/time | $(wall ours.time) | HF $(wall hf.time) | $(x "$(wall hf.time)" "$(wall ours.time)")x faster |"
echo "| train: peak RSS (MiB) | $(rss ours.time) | HF $(rss hf.time) | $(x "$(rss hf.time)" "$(rss ours.time)")x less |"
echo "| held-out bytes per token (more is better) | $bpt_ours | HF $bpt_hf | $(pct "$bpt_ours" "$bpt_hf")% |"
echo "| same, ours trained on the text's lines, as HF's file reader cuts it | $bpt_lines | HF $bpt_hf | $(pct "$bpt_lines" "$bpt_hf")% |"
set -- $merges_same
echo "| same lines: our merges that are HF's, same order (leading run) | $1 of $2 | HF $3 | $(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", 100 * a / b }')% of ours |"
echo "| train on those lines: wall (s) / peak RSS (MiB) | $(wall lines.time) / $(rss lines.time) | HF $(wall hf.time) / $(rss hf.time) | $(x "$(wall hf.time)" "$(wall lines.time)")x faster |"
echo "| encode MB/s, 1 thread, whole process (wall, median) | $o1 | HF $h1 | $(x "$o1" "$h1")x |"
echo "| encode MB/s, $THREADS threads, whole process (wall, median) | $o2 | HF $h2 | $(x "$o2" "$h2")x |"
echo "| encode MB per CPU second, 1 thread (user+sys; less sensitive to load) | $o1c | HF $h1c | $(x "$o1c" "$h1c")x |"
echo "| encode MB per CPU second, $THREADS threads | $o2c | HF $h2c | $(x "$o2c" "$h2c")x |"
echo "| encode MB/s, 1 thread: tiktoken GPT-2 ranks, timing its encode calls only | $o1 | tiktoken $tt | $(x "$o1" "$tt")x |"
