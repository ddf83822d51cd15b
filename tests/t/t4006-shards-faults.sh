#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: the same fault gives the same exit status in every verb (one corpus opener and
# checker). A corpus that cannot be read (no such directory, no index): 3. A damaged corpus
# (not an index, a shard missing, truncated, with a damaged header or a checksum that does not
# match the index): 4, from verify, stats, cat, merge (as a source), split and pack --resume,
# each naming the corpus; nothing is written. Only verify hashes the payloads.
. "$(dirname "$0")/test-lib.sh"

# run_verb VERB DIR: run one verb on the corpus DIR
run_verb() {
    case $1 in
    verify | stats) cm-shards "$1" "$2" ;;
    cat) cm-shards cat --ids "$2" ;;
    split) cm-shards split --valid-fraction 0.1 "$2" ;;
    merge) rm -rf merged && cm-shards merge -o merged "$2" ;;
    resume) cm-shards pack --resume -o "$2" in.tok ;;
    esac
}

# every_verb CODE DIR VERB...: each verb exits CODE on DIR, names DIR on stderr, and prints
# nothing on stdout
every_verb() {
    code=$1 dir=$2
    shift 2
    for v in "$@"; do
        run_verb "$v" "$dir" >out 2>err
        rc=$?
        if [ "$rc" != "$code" ]; then
            say "$v $dir: exit $rc, expected $code"
            sed "s/^/# /" err
            return 1
        fi
        grep -q "$dir" err || { say "$v $dir: the message does not name $dir"; return 1; }
        test ! -s out || { say "$v $dir: printed on stdout"; return 1; }
        test ! -e merged || { say "$v $dir: merge wrote a corpus"; return 1; }
    done
}

# damaged NAME COMMAND: a copy of the corpus c named NAME, damaged by COMMAND (run inside it)
damaged() {
    rm -rf "$1" && cp -r c "$1" && (cd "$1" && eval "$2")
}

all_verbs="verify stats cat split merge"

test_expect_success 'setup: a corpus of several shards' '
    shards-mkstream --gen 2000 --repos 40 --mean-tokens 60 >in.tok &&
    cm-shards pack -o c --shard-tokens 20k in.tok &&
    test $(sqlite3 c/index.sqlite "SELECT COUNT(*) FROM shards") -ge 4 &&
    for v in $all_verbs; do
        cp -r c ok && run_verb $v ok >/dev/null 2>err || { cat err; return 1; }
        rm -rf ok merged
    done
'

test_expect_success 'no such directory: 3 in every verb' '
    every_verb 3 nosuch $all_verbs && test_grep "nosuch/index.sqlite: cannot open" err
'

test_expect_success 'a directory without an index: 3 in every verb' '
    mkdir empty && every_verb 3 empty $all_verbs &&
    mkdir shards-only && cp c/shard-00000.bin shards-only/ && every_verb 3 shards-only $all_verbs
'

test_expect_success 'an index that is not a corpus index: 4 in every verb, pack --resume too' '
    damaged junk "echo junk >index.sqlite" && every_verb 4 junk $all_verbs resume &&
    damaged norow "sqlite3 index.sqlite \"DELETE FROM corpus\"" &&
    every_verb 4 norow $all_verbs resume && test_grep "not a codemill corpus index" err &&
    damaged ver "sqlite3 index.sqlite \"UPDATE corpus SET format_version = 9\"" &&
    every_verb 4 ver $all_verbs resume && test_grep "index format version 9" err
'

test_expect_success 'a truncated shard: 4 in every verb, pack --resume too' '
    damaged trunc "truncate -s -2 shard-00002.bin" && every_verb 4 trunc $all_verbs resume &&
    test_grep "trunc/shard-00002.bin: truncated" err
'

test_expect_success 'a missing shard: 4 in every verb, pack --resume too' '
    damaged gone "rm shard-00001.bin" && every_verb 4 gone $all_verbs resume &&
    test_grep "gone/shard-00001.bin: cannot open" err
'

test_expect_success 'a damaged header (bad header checksum): 4 in every verb, pack --resume too' '
    damaged hdr "printf X | dd of=shard-00003.bin bs=1 seek=20 conv=notrunc status=none" &&
    every_verb 4 hdr $all_verbs resume && test_grep "hdr/shard-00003.bin: header checksum mismatch" err
'

test_expect_success 'a checksum the index does not agree with: 4 in every verb, pack --resume too' '
    damaged sum "sqlite3 index.sqlite \"UPDATE shards SET checksum = '"'"'0123456789abcdef'"'"' WHERE id = 1\"" &&
    every_verb 4 sum $all_verbs resume && test_grep "sum/shard-00001.bin: payload checksum mismatch" err
'

test_expect_success 'a damaged payload byte: verify hashes it (4)' '
    damaged pay "printf X | dd of=shard-00001.bin bs=1 seek=5000 conv=notrunc status=none" &&
    every_verb 4 pay verify && test_grep "pay/shard-00001.bin: payload checksum mismatch" err
'

test_expect_success 'the damaged corpora were left as they were' '
    test "$(sqlite3 sum/index.sqlite "SELECT split FROM documents ORDER BY id" | md5sum)" = \
         "$(sqlite3 c/index.sqlite "SELECT split FROM documents ORDER BY id" | md5sum)" &&
    test "$(ls trunc)" = "$(ls c)"
'

test_done
