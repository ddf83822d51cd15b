#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-tokenize: command line, error handling, damaged and unsupported tokenizer files.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: small corpus and tokenizer' '
    tok-gen -s 3 -n 60 jsonl >docs.jsonl &&
    cm-tokenize train --vocab-size 600 -o tok.json docs.jsonl &&
    test -s tok.json
'

test_expect_success '--help per verb on stdout, exit 0; --version' '
    cm-tokenize --help >out && test_grep "train" out &&
    cm-tokenize help >out && test_grep "decode" out &&
    cm-tokenize train --help >out && test_grep "vocab-size" out && test_grep "^Memory" out &&
    cm-tokenize encode --help >out && test_grep "^Memory" out &&
    cm-tokenize decode --help >out && test_grep "CMTOKSTR" out && test_grep "^Memory" out &&
    cm-tokenize --version >out && test_grep "cm-tokenize" out &&
    cm-tokenize encode --version >out && test_grep "cm-tokenize" out
'

test_expect_success 'every verb takes -q, --progress and --no-progress' '
    cm-tokenize train -q --vocab-size 600 -o q.json docs.jsonl 2>err && test ! -s err &&
    test_cmp tok.json q.json &&
    cm-tokenize train -q --progress --vocab-size 600 -o q.json docs.jsonl 2>err &&
    ! test_grep "merges ->" err &&
    cm-tokenize train --progress --vocab-size 600 -o q.json docs.jsonl 2>err &&
    test_grep "merges -> q.json" err &&
    cm-tokenize encode -q -t tok.json --jsonl docs.jsonl >ids 2>err && test ! -s err &&
    cm-tokenize encode --no-progress -t tok.json --jsonl docs.jsonl >ids2 && test_cmp ids ids2 &&
    cm-tokenize decode -q -t tok.json --raw ids >txt 2>err && test ! -s err && test -s txt &&
    cm-tokenize decode --progress -t tok.json --raw ids >txt2 && test_cmp txt txt2
'

test_expect_success 'bad usage: exit 2 with a short usage on stderr' '
    test_expect_code 2 cm-tokenize 2>err && test_grep "usage" err &&
    test_expect_code 2 cm-tokenize frobnicate 2>err && test_grep "unknown verb" err &&
    test_expect_code 2 cm-tokenize encode docs.jsonl 2>err && test_grep "\-t tok.json is required" err &&
    test_expect_code 2 cm-tokenize train -o x.json docs.jsonl 2>err && test_grep "vocab-size" err &&
    test_expect_code 2 cm-tokenize train --vocab-size 100 -o x.json docs.jsonl 2>err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --threads 0 docs.jsonl 2>err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --bogus docs.jsonl 2>err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --on-error maybe docs.jsonl 2>err &&
    test_expect_code 2 cm-tokenize encode -t tok.json --eot "<|nope|>" docs.jsonl 2>err
'

test_expect_success 'missing input or tokenizer file: exit 3, named' '
    test_expect_code 3 cm-tokenize encode -t tok.json --jsonl nosuch.jsonl >out 2>err &&
    test_grep "cannot open .nosuch.jsonl." err &&
    test_expect_code 3 cm-tokenize decode -t tok.json nosuch.tok >out 2>err &&
    test_grep "cannot open .nosuch.tok." err &&
    test_expect_code 3 cm-tokenize encode -t nosuch.json --jsonl docs.jsonl >out 2>err &&
    test_grep "nosuch.json" err
'

test_expect_success 'damaged tokenizer files: exit 4 with what is wrong' '
    head -c 2000 tok.json >trunc.json &&
    test_expect_code 4 cm-tokenize encode -t trunc.json --jsonl docs.jsonl 2>err >out &&
    test_grep "trunc.json: not valid JSON" err &&
    sed "s/\"merges\": \\[/\"merges\": [[\"zzq\", \"Q\"],/" tok.json >unk.json &&
    test_expect_code 4 cm-tokenize encode -t unk.json --jsonl docs.jsonl 2>err >out &&
    test_grep "model.merges\\[0\\]: token .zzq. is not in the vocab" err &&
    sed "s/\"#\": [0-9]*/\"#\": 7/" tok.json >dup.json &&
    test_expect_code 4 cm-tokenize encode -t dup.json --jsonl docs.jsonl 2>err >out &&
    test_grep "id 7 is given to two tokens" err &&
    echo "{}" >empty.json &&
    test_expect_code 4 cm-tokenize encode -t empty.json --jsonl docs.jsonl 2>err >out &&
    test_grep "no model" err
'

test_expect_success 'unsupported tokenizer files: exit 4 naming what is unsupported' '
    sed "s/\"type\": \"BPE\"/\"type\": \"WordPiece\"/" tok.json >wp.json &&
    test_expect_code 4 cm-tokenize encode -t wp.json --jsonl docs.jsonl 2>err >out &&
    test_grep "wp.json: model.type .WordPiece. is not supported" err &&
    sed "s/\"normalizer\": null/\"normalizer\": {\"type\": \"NFC\"}/" tok.json >nfc.json &&
    test_expect_code 4 cm-tokenize encode -t nfc.json --jsonl docs.jsonl 2>err >out &&
    test_grep "normalizer .NFC. is not supported" err
'

test_expect_success 'malformed JSONL: named with line and byte, good records kept, exit 1' '
    head -n 5 docs.jsonl >bad.jsonl && echo "{\"content\": oops}" >>bad.jsonl &&
    sed -n 6,9p docs.jsonl >>bad.jsonl &&
    test_expect_code 1 cm-tokenize encode -t tok.json --jsonl bad.jsonl >out 2>err &&
    test_grep "bad.jsonl: line 6: byte" err &&
    test $(wc -l <out) = 5 &&
    test_expect_code 1 cm-tokenize encode -t tok.json --jsonl --on-error skip bad.jsonl >out 2>err &&
    test $(wc -l <out) = 9 &&
    echo "{\"path\":\"x\"}" | test_expect_code 1 cm-tokenize encode -t tok.json --jsonl >out 2>err &&
    test_grep "stdin: line 1" err
'

test_expect_success 'blank lines (spaces, tabs, CR only) carry no record, as in every stage' '
    { head -n 2 docs.jsonl; printf "\n \t \r\n\r\n"; sed -n 3p docs.jsonl; } >blank.jsonl &&
    cm-tokenize encode -t tok.json --jsonl blank.jsonl >out 2>err && test ! -s err &&
    head -n 3 docs.jsonl | cm-tokenize encode -t tok.json --jsonl >want &&
    test_cmp want out
'

test_expect_success 'truncated stream: the dump reports it; good documents before it kept' '
    cm-tokenize encode -t tok.json docs.jsonl >s.tok &&
    size=$(wc -c <s.tok) && head -c $((size - 30)) s.tok >cut.tok &&
    test_must_fail tok-dump cut.tok >out 2>err && test_grep "cut short" err &&
    test_must_fail cm-tokenize decode cut.tok >out 2>err && test_grep "cut short" err &&
    test -s out
'

test_expect_success 'binary output refuses nothing on a pipe; consumer closing the pipe is quiet' '
    tok-gen -s 4 -n 3000 jsonl >big.jsonl &&
    cm-tokenize encode -t tok.json big.jsonl 2>err | head -c 100 >/dev/null &&
    test ! -s err &&
    cm-tokenize encode -t tok.json --jsonl big.jsonl 2>err | head -c 100 >/dev/null &&
    test ! -s err
'

test_expect_success 'encoder without end-of-text token: error unless --eot' '
    cm-tokenize train --vocab-size 400 --special "" -o nosp.json docs.jsonl &&
    test_expect_code 4 cm-tokenize encode -t nosp.json docs.jsonl >out 2>err &&
    test_grep "eot" err &&
    cm-tokenize encode -t nosp.json --jsonl docs.jsonl >out &&
    cm-tokenize train --vocab-size 400 --special "<pad>,<eos>" -o sp.json docs.jsonl &&
    cm-tokenize encode -t sp.json --eot "<eos>" docs.jsonl >s.tok 2>/dev/null &&
    tok-dump s.tok >/dev/null 2>hdr && test_grep "eot 1 " hdr
'

test_expect_success 'SIGTERM: documents so far saved as a clean stream, exit 130' '
    { rm -f gate feed && mkfifo gate feed; } || exit 1
    cm-tokenize encode -t tok.json -o part.tok <feed &
    pid=$!
    (cat docs.jsonl; cat gate; cat docs.jsonl) >feed &
    size=$(( $(wc -c <tok.json) + $(wc -c <docs.jsonl) )) && n=0 &&
    ready() { # the handler is installed (SigCgt has SIGTERM) and the first documents are read
        grep -q "^SigCgt:.*[4567cdef]...$" /proc/$pid/status 2>/dev/null &&
        [ "$(sed -n "s/^rchar: //p" /proc/$pid/io 2>/dev/null || echo 0)" -ge "$size" ]
    } &&
    while [ $n -lt 400 ] && ! ready; do sleep 0.05; n=$((n + 1)); done &&
    kill -TERM $pid && echo >gate &&
    { wait $pid; rc=$?; } ; test "$rc" = 130 &&
    tok-dump part.tok >out 2>hdr && test -s out
'

# The reader of tok.json gets stuck on a gate (a FIFO) after the first copy of docs.jsonl, so
# that the signals arrive while the words are being counted.
start_gated_train() {
    { rm -f gate feed && mkfifo gate feed; } || return 1
    cm-tokenize train --vocab-size 600 -o int.json <feed 2>err &
    pid=$!
    (cat docs.jsonl; cat gate; cat docs.jsonl) >feed &
    n=0
    while [ $n -lt 400 ] && ! { grep -q "^SigCgt:.*[4567cdef]...$" /proc/$pid/status 2>/dev/null &&
        [ "$(sed -n "s/^rchar: //p" /proc/$pid/io 2>/dev/null || echo 0)" -ge "$(wc -c <docs.jsonl)" ]; }; do
        sleep 0.05; n=$((n + 1))
    done
}

test_expect_success 'train, SIGINT while counting: exit 130, no tokenizer written' '
    start_gated_train &&
    kill -INT $pid && echo >gate &&
    { wait $pid; rc=$?; } ; test "$rc" = 130 &&
    test ! -e int.json && ! ls int.json.tmp.* 2>/dev/null &&
    test_grep "interrupted while counting words: int.json not written" err
'

test_expect_success 'train, a second SIGINT: exit 130 at once (input still open)' '
    start_gated_train &&
    kill -INT $pid && sleep 0.2 && kill -INT $pid &&
    { wait $pid; rc=$?; } ; echo >gate; wait ;
    test "$rc" = 130 && test ! -e int.json && ! ls int.json.tmp.* 2>/dev/null
'

test_expect_success 'train -o: written atomically, a temporary left by a killed writer is swept' '
    echo half >at.json.tmp.2147483646 &&
    cm-tokenize train --vocab-size 600 -o at.json docs.jsonl &&
    test_cmp tok.json at.json && ! ls at.json.tmp.* 2>/dev/null &&
    cm-tokenize train --vocab-size 600 -o - docs.jsonl >stdout.json && test_cmp tok.json stdout.json
'

test_expect_success 'train -o FIFO (or a device): written into it, not renamed over it' '
    rm -f out.fifo && mkfifo out.fifo &&
    { timeout 20 cat out.fifo >fifo.json & } &&
    cm-tokenize train --vocab-size 600 -o out.fifo docs.jsonl && wait &&
    test -p out.fifo && test_cmp tok.json fifo.json && ! ls out.fifo.tmp.* 2>/dev/null
'

test_done
