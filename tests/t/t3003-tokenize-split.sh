#!/bin/sh
# SPDX-License-Identifier: MIT
# The hand-written GPT-2 pre-tokenizer splits exactly as the PCRE2 regex (the reference):
# generated Python-like text, every code point, and raw bytes with every kind of invalid UTF-8.
. "$(dirname "$0")/test-lib.sh"

N=3000; KB=8000
[ "$CM_SAN" = 1 ] && N=800 && KB=1500

test_expect_success 'generated Python-like text (with hard cases)' '
    tok-gen -s 21 -n $N -u strings >g.str &&
    tok-split g.str >fast && tok-split -p g.str >pcre &&
    test $(wc -l <fast) = $N && test_cmp pcre fast
'

test_expect_success 'every BMP code point and astral samples, in splitting contexts' '
    tok-gen sweep >s.str &&
    tok-split s.str >fast && tok-split -p s.str >pcre &&
    test_cmp pcre fast
'

test_expect_success 'raw bytes: invalid UTF-8 of every kind' '
    tok-gen -s 5 -n $KB bytes >r.bin &&
    tok-split -r r.bin >fast && tok-split -r -p r.bin >pcre &&
    test_cmp pcre fast
'

test_done
