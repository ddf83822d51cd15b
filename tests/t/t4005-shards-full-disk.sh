#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards pack on a disk that really fills up (ENOSPC, not a file-size limit): a small tmpfs
# mounted for the test (needs root and permission to mount; skipped otherwise, and a failure
# under CI=true). At several fill levels the pack stops with exit 3 and a message naming the
# file and "No space left on device", leaves no .tmp file, the index points only at complete
# shards (verify), and once space is back `pack --resume` gives exactly the documents of an
# uninterrupted pack. The shard writer uses O_DIRECT where tmpfs takes it (Linux >= 6.6) and
# falls back otherwise: the guarantees are the same. Last, the temporary directory of the path
# index sort is full.
. "$(dirname "$0")/test-lib.sh"

ndocs=30000
[ "$CM_SAN" = 1 ] && ndocs=10000

docs() { sqlite3 "$1/index.sqlite" "SELECT id, repo_name, path, n_tokens, n_bytes, split, imports
                                     FROM documents ORDER BY id"; }

mnt="$TRASH/disk"
mkdir -p "$mnt"
mounted=0
cleanup() { [ $mounted = 1 ] && umount "$mnt" 2>/dev/null; mounted=0; }
trap cleanup EXIT
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    mounted=1
fi

if [ $mounted = 1 ]; then
    test_expect_success 'setup: a stream and its uninterrupted pack' '
        shards-mkstream --gen $ndocs --repos 300 --mean-tokens 150 >in.tok &&
        cm-shards pack -o ref --shard-tokens 200k in.tok &&
        docs ref >ref.docs && test $(wc -l <ref.docs) = $ndocs &&
        du -sk ref | cut -f1 >ref.kb && say "corpus: $(cat ref.kb) KiB"
    '
    # fill levels (tmpfs sizes): a fraction of what the whole corpus needs, so that the disk fills while a
    # shard is written, while the index grows, or at the first shard
    for pct in 7 35 60 85; do
        test_expect_success "disk full at ~$pct% of the corpus: exit 3, named, verify, resume" '
            kb=$(( $(cat ref.kb) * pct / 100 )) && [ $kb -ge 64 ] || kb=64
            rm -rf "$mnt/c" && mount -o remount,size=${kb}k "$mnt" &&
            test_expect_code 3 cm-shards pack -o "$mnt/c" --shard-tokens 200k in.tok 2>err &&
            test_grep "No space left on device\|disk full\|database or disk is full" err &&
            test_grep "$mnt/c/" err &&
            test -z "$(ls "$mnt/c" | grep "\.tmp$")" &&
            if [ -e "$mnt/c/index.sqlite" ] &&
               sqlite3 "$mnt/c/index.sqlite" "SELECT 1 FROM corpus" >/dev/null 2>&1; then
                cm-shards verify "$mnt/c" >out 2>verr ||
                    { cat out verr; false; } &&
                n=$(sqlite3 "$mnt/c/index.sqlite" "SELECT COUNT(*) FROM shards") &&
                test $(ls "$mnt/c" | grep -c "^shard-.*\.bin$") = "$n" &&
                say "kept $n shards in ${kb} KiB"
            fi &&
            mount -o remount,size=64m "$mnt" &&
            cm-shards pack --resume -o "$mnt/c" --shard-tokens 200k in.tok &&
            cm-shards verify "$mnt/c" >/dev/null &&
            docs "$mnt/c" >actual && test_cmp ref.docs actual
        '
    done
    test_expect_success 'no room for the path index sort (SQLITE_TMPDIR full): exit 3, says where, resume builds it' '
        shards-mkstream --gen 300000 --repos 300 --mean-tokens 5 --seed 2 >tiny.tok &&
        rm -rf "$mnt"/* && mount -o remount,size=1m "$mnt" &&
        test_expect_code 3 env SQLITE_TMPDIR="$mnt" cm-shards pack -o t tiny.tok 2>err &&
        test_grep "room in .$mnt." err &&
        test "$(sqlite3 t/index.sqlite "SELECT complete FROM corpus")" = 0 &&
        test "$(sqlite3 t/index.sqlite "SELECT COUNT(*) FROM documents")" = 300000 &&
        cm-shards verify t >/dev/null &&
        cm-shards pack --resume -o t tiny.tok &&
        test "$(sqlite3 t/index.sqlite "SELECT complete FROM corpus")" = 1 &&
        sqlite3 t/index.sqlite "EXPLAIN QUERY PLAN SELECT * FROM documents WHERE path = \"x\"" >plan &&
        test_grep "documents_path" plan
    '
    cleanup
else
    # CI runs as root: there this skip is a failure (test_skip_claim)
    test_skip_claim 'pack on a full disk (tmpfs)' "cannot mount a tmpfs here (needs root; uid $(id -u))"
fi

test_done
