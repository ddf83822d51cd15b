#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-tokenize: decode(encode(x)) == x, token stream format, thread determinism, specials.
. "$(dirname "$0")/test-lib.sh"

N=400
[ "$CM_SAN" = 1 ] && N=120

test_expect_success 'setup: train on generated Python-like text with hard cases' '
    tok-gen -s 11 -n $N -u jsonl >docs.jsonl &&
    tok-gen -s 11 -n $N -u text >docs.txt &&
    cm-tokenize train --vocab-size 2000 -o tok.json docs.jsonl &&
    test -s tok.json
'

test_expect_success 'round trip through id arrays: bytes identical' '
    cm-tokenize encode -t tok.json --jsonl docs.jsonl >ids &&
    test $(wc -l <ids) = $N &&
    cm-tokenize decode -t tok.json --raw ids >back.txt &&
    test_cmp docs.txt back.txt
'

test_expect_success 'round trip through the token stream (unseen text, other seed)' '
    tok-gen -s 99 -n 50 -u jsonl >new.jsonl && tok-gen -s 99 -n 50 -u text >new.txt &&
    cm-tokenize encode -t tok.json new.jsonl >new.tok &&
    cm-tokenize decode --raw new.tok >back.txt &&
    test_cmp new.txt back.txt &&
    cm-tokenize decode -t tok.json --raw new.tok >back2.txt &&
    test_cmp new.txt back2.txt
'

test_expect_success 'every control character, U+FFFD, emoji, CRLF, long runs, escapes' '
    printf "%s\n" "{\"content\":\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u001f\\u007f\\u0080\\u00ff\\ufffd\\ud83d\\ude00 a\\r\\n\\r\\n\\t\\t  x          \\n\\n\\n   \"}" >hard.jsonl &&
    printf "\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\037\177\302\200\303\277\357\277\275\360\237\230\200 a\r\n\r\n\t\t  x          \n\n\n   " >hard.txt &&
    cm-tokenize encode -t tok.json --jsonl hard.jsonl >ids &&
    cm-tokenize decode -t tok.json --raw ids >back &&
    test_cmp hard.txt back
'

test_expect_success 'token stream: readable by ts_next, ids equal --jsonl, meta as documented' '
    cm-tokenize encode -t tok.json docs.jsonl >s.tok &&
    tok-dump s.tok >dumped 2>hdr &&
    cm-tokenize encode -t tok.json --jsonl docs.jsonl >ids &&
    test_cmp ids dumped &&
    test_grep "docs $N" hdr &&
    tok-dump -m s.tok >meta &&
    head -n 1 meta >m1 &&
    test_grep "^{\"repo_name\":\"gen/r0\",\"path\":\"pkg/m0.py\",\"stars\":\\[1,2\\],\"n_bytes\":[0-9]*,\"content_hash\":\"[0-9a-f]\\{16\\}\"}$" m1
'

test_expect_success 'decode of a stream gives back the records (meta fields + content)' '
    cm-tokenize decode s.tok >recs.jsonl &&
    cm-tokenize encode -t tok.json --jsonl recs.jsonl >ids2 &&
    test_cmp ids ids2 &&
    head -n 1 recs.jsonl >r1 && test_grep "\"repo_name\":\"gen/r0\".*\"content\":" r1
'

test_expect_success '--threads 1 and 2 and 3 give identical bytes' '
    cat docs.jsonl docs.jsonl docs.jsonl >three.jsonl &&
    cm-tokenize encode -t tok.json --threads 1 three.jsonl >t1.tok &&
    cm-tokenize encode -t tok.json --threads 2 three.jsonl >t2.tok &&
    cm-tokenize encode -t tok.json --threads 3 three.jsonl >t3.tok &&
    cmp t1.tok t2.tok && cmp t1.tok t3.tok &&
    cm-tokenize train --vocab-size 1500 --threads 1 -o a.json three.jsonl &&
    cm-tokenize train --vocab-size 1500 --threads 2 -o b.json three.jsonl &&
    test_cmp a.json b.json &&
    cm-tokenize train --vocab-size 1500 --threads 1 --max-words 300 -o c.json three.jsonl &&
    cm-tokenize train --vocab-size 1500 --threads 3 --max-words 300 -o d.json three.jsonl &&
    test_cmp c.json d.json
'

test_expect_success 'special tokens in text are matched; specials get the first ids' '
    printf "%s\n" "{\"content\":\"x = 1<|endoftext|>y<|endoftext|>\"}" >sp.jsonl &&
    cm-tokenize encode -t tok.json --jsonl sp.jsonl >ids &&
    test_grep ",0,.*,0\\]" ids &&
    cm-tokenize decode -t tok.json --raw ids >back &&
    printf "x = 1<|endoftext|>y<|endoftext|>" >want && test_cmp want back
'

test_expect_success '--max-words prunes (approximate) yet still trains and round-trips' '
    cm-tokenize train --vocab-size 1000 --max-words 500 --progress -o small.json docs.jsonl 2>err &&
    test_grep "distinct words ([1-9][0-9]* pruned)" err &&
    cm-tokenize train --vocab-size 1000 -o full.json docs.jsonl &&
    ! cmp -s full.json small.json &&
    cm-tokenize encode -t small.json --jsonl docs.jsonl >ids &&
    cm-tokenize decode -t small.json --raw ids >back.txt &&
    test_cmp docs.txt back.txt
'

test_expect_success 'very long words and runs (300 000 letters, spaces) train and round-trip' '
    { printf "{\"content\":\""; head -c 300000 /dev/zero | tr "\\000" a; printf "\"}\n{\"content\":\""; \
      head -c 300000 /dev/zero | tr "\\000" " "; printf "x\"}\n"; } >long.jsonl &&
    { head -c 300000 /dev/zero | tr "\\000" a; head -c 300000 /dev/zero | tr "\\000" " "; printf x; } >long.txt &&
    cm-tokenize train --vocab-size 400 -o long.json long.jsonl docs.jsonl &&
    cm-tokenize encode -t long.json --jsonl long.jsonl >ids &&
    cm-tokenize decode -t long.json --raw ids >back &&
    test_cmp long.txt back
'

test_expect_success '--min-frequency stops merging early' '
    cm-tokenize train --vocab-size 5000 --min-frequency 1000000 -o mf.json docs.jsonl &&
    test_grep "\"merges\": \[\]" mf.json
'

test_done
