#!/bin/bash
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
mb() { echo "scale=1; $(wc -c <"$1") / 1000000" | bc; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }
ntok() { tr -c '0-9\n' ' ' <"$1" | wc -w; }
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; other builds may run)" >&2

# 2. Training, vocab 30000 + <|endoftext|>, same thread count.
/usr/bin/time -v "$CM" train --vocab-size 30001 --threads "$THREADS" -o ours.json train.jsonl 2>ours.time
/usr/bin/time -v "$CM" train --vocab-size 30001 --threads "$THREADS" -o lines.json train-lines.jsonl 2>lines.time
RAYON_NUM_THREADS=$THREADS /usr/bin/time -v node "$PEERS_DIR/hf-train.js" "$PKG" hf.json train.txt >hf.train 2>hf.time
"$CM" encode -t ours.json --jsonl held.jsonl >held.ours
"$CM" encode -t lines.json --jsonl held.jsonl >held.lines
node "$PEERS_DIR/hf-encode.js" --pkg "$PKG" --json hf.json held.str >held.hf
HB=$(wc -c <held.txt)
bpt_ours=$(echo "scale=3; $HB / $(ntok held.ours)" | bc); bpt_lines=$(echo "scale=3; $HB / $(ntok held.lines)" | bc); bpt_hf=$(echo "scale=3; $HB / $(ntok held.hf)" | bc)

# 3. Encoding speed on ENC_MB (whole process, hyperfine medians; tiktoken times its calls only).
EB=$(wc -c <enc.txt)
hyperfine -N --style none --runs 3 --export-json enc1.json "$CM encode -t ours.json --threads 1 -o /dev/null enc.jsonl" >&2
hyperfine -N --style none --runs 3 --export-json enc2.json "$CM encode -t ours.json --threads $THREADS -o /dev/null enc.jsonl" >&2
RAYON_NUM_THREADS=1 hyperfine -N --style none --runs 1 --export-json hf1.json "node $PEERS_DIR/hf-encode.js --pkg $PKG --json hf.json enc.str" >&2
RAYON_NUM_THREADS=$THREADS hyperfine -N --style none --runs 1 --export-json hf2.json "node $PEERS_DIR/hf-encode.js --pkg $PKG --json hf.json enc.str" >&2
node "$PEERS_DIR/tiktoken-bench.js" "$PEERS/node/node_modules" tiktoken enc.txt lines >tt.json
med() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median'])" "$1"; }
mbs() { echo "scale=1; $EB / 1000000 / $1" | bc; }
o1=$(mbs "$(med enc1.json)"); o2=$(mbs "$(med enc2.json)"); h1=$(mbs "$(med hf1.json)"); h2=$(mbs "$(med hf2.json)")
tt=$(python3 -c "import json; print('%.1f' % json.load(open('tt.json'))['mb_per_s'])")
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "### cm-tokenize vs Hugging Face tokenizers 0.23.2 / tiktoken 1.0.22 ($(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "Train: $(mb train.txt) MB of real Python ($(wc -l <train.jsonl) files from the .debs), vocab 30000 + <|endoftext|>, $THREADS threads; held-out: $(mb held.txt) MB (last 10% of files). Encode: $(mb enc.txt) MB."
echo
echo "| measure | cm-tokenize | Hugging Face | ratio (HF / ours) |"
echo "|---|---|---|---|"
echo "| train wall time (s) | $(wall ours.time) | $(wall hf.time) | $(ratio "$(wall hf.time)" "$(wall ours.time)") |"
echo "| train peak RSS (MiB) | $(rss ours.time) | $(rss hf.time) | $(ratio "$(rss hf.time)" "$(rss ours.time)") |"
echo "| held-out bytes/token (higher is better) | $bpt_ours | $bpt_hf | $(ratio "$bpt_hf" "$bpt_ours") |"
echo "| same, ours trained on the text's lines as HF sees them | $bpt_lines | $bpt_hf | $(ratio "$bpt_hf" "$bpt_lines") |"
echo "| train on lines: wall (s) / peak RSS (MiB) | $(wall lines.time) / $(rss lines.time) | $(wall hf.time) / $(rss hf.time) | $(ratio "$(wall hf.time)" "$(wall lines.time)") / $(ratio "$(rss hf.time)" "$(rss lines.time)") |"
echo "| encode MB/s, 1 thread (whole process) | $o1 | $h1 | $(ratio "$o1" "$h1") (ours / HF) |"
echo "| encode MB/s, $THREADS threads (whole process) | $o2 | $h2 | $(ratio "$o2" "$h2") (ours / HF) |"
echo "| encode MB/s, tiktoken GPT-2 ranks, 1 thread (encode calls only) | $o1 | tiktoken $tt | $(ratio "$o1" "$tt") (ours / tiktoken) |"
