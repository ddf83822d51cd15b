#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train: help, version, bad usage (exit 2), missing or damaged inputs (exit 3 / 4).
. "$(dirname "$0")/test-lib.sh"

TINY="--synthetic 32 --layers 1 --width 16 --heads 2 --context 8 --batch 2 -q"

test_expect_success '--help goes to stdout and exits 0; it lists the verbs' '
    cm-train --help >out 2>err &&
    test_grep "usage: cm-train" out &&
    test_grep "Memory is bounded" out &&
    for v in train eval complete plot; do test_grep "^  $v " out || return 1; done &&
    test ! -s err
'

test_expect_success 'each verb has its own --help, with its memory bound' '
    cm-train train --help >out 2>err &&
    test_grep "usage: cm-train train" out &&
    test_grep "16 bytes per parameter" out &&
    test_grep "keyword-weights a,b,c" out &&
    test ! -s err &&
    cm-train --data x --help >out2 && test_cmp out out2 &&
    for v in eval complete plot; do
        cm-train $v --help >out 2>err &&
        test_grep "usage: cm-train $v" out &&
        test_grep "^Memory" out &&
        test ! -s err || return 1
    done
'

test_expect_success '--help on a full disk: exit 3, said so' '
    test_expect_code 3 cm-train train --help >/dev/full 2>err &&
    test_grep "cannot write" err &&
    test_expect_code 3 cm-train --help >/dev/full 2>err
'

test_expect_success '--version, also after a verb' '
    cm-train --version >out &&
    test_grep "^cm-train " out &&
    cm-train eval --version >out2 && test_cmp out out2
'

test_expect_success 'unknown option: short usage on stderr, exit 2' '
    test_expect_code 2 cm-train --frobnicate >out 2>err &&
    test ! -s out &&
    test_grep "frobnicate" err &&
    test_grep "usage:" err
'

test_expect_success 'unknown verb, exit 2' '
    test_expect_code 2 cm-train frob 2>err &&
    test_grep "unknown verb" err
'

test_expect_success 'each verb takes only its own options, exit 2' '
    test_expect_code 2 cm-train plot --log x --threads 2 -o y.svg 2>err &&
    test_grep "threads" err &&
    test_expect_code 2 cm-train eval --synthetic 32 --lr 0.1 2>err &&
    test_grep "lr" err &&
    test_expect_code 2 cm-train complete --data x --prompt y --steps 3 2>err &&
    test_expect_code 2 cm-train --synthetic 32 --prompt x 2>err &&
    test_expect_code 2 cm-train --synthetic 32 -o x 2>err &&
    test_expect_code 2 cm-train --synthetic 32 --steps 1 extra 2>err &&
    test_grep "unexpected argument" err
'

test_expect_success 'every verb takes -q, --progress and --no-progress' '
    cm-train plot -q --no-progress --help >/dev/null &&
    cm-train eval --progress -q --help >/dev/null &&
    cm-train complete -q --help >/dev/null &&
    cm-train $TINY --steps 1 --no-progress 2>err &&
    test ! -s err
'

test_expect_success 'no data source, or two, exit 2' '
    test_expect_code 2 cm-train --steps 1 2>err &&
    test_grep "data" err &&
    test_expect_code 2 cm-train --synthetic 32 --data x --steps 1 2>err
'

test_expect_success 'bad numbers and shapes, exit 2' '
    test_expect_code 2 cm-train $TINY --steps abc 2>err &&
    test_grep "steps" err &&
    test_expect_code 2 cm-train $TINY --lr -1 --steps 1 2>err &&
    test_expect_code 2 cm-train $TINY --heads 3 --steps 1 2>err &&
    test_grep "multiple of heads" err &&
    test_expect_code 2 cm-train $TINY --resume --steps 1 2>err &&
    test_grep "resume needs --ckpt" err
'

test_expect_success 'missing corpus: exit 3 naming it' '
    test_expect_code 3 cm-train --data no-such-dir --steps 1 -q 2>err &&
    test_grep "no-such-dir" err
'

test_expect_success 'a directory that is not a corpus: exit 4' '
    mkdir notcorpus &&
    test_expect_code 4 cm-train --data notcorpus --steps 1 -q 2>err &&
    test_grep "notcorpus" err
'

test_expect_success 'eval and complete need a checkpoint; plot needs a log' '
    test_expect_code 2 cm-train eval --synthetic 32 2>err &&
    test_grep "ckpt" err &&
    test_expect_code 2 cm-train complete --prompt y 2>err &&
    test_expect_code 2 cm-train complete --data x 2>err &&
    test_expect_code 2 cm-train plot -o x.svg 2>err &&
    test_expect_code 3 cm-train eval --ckpt nothere.bin --synthetic 32 2>err &&
    test_grep "nothere.bin" err
'

test_expect_success 'start-up line names the OpenBLAS kernels and threads' '
    cm-train --synthetic 32 --layers 1 --width 16 --heads 2 --context 8 --batch 2 \
        --steps 1 --threads 1 2>err &&
    test_grep "; 1 threads, OpenBLAS [A-Za-z0-9]* kernels on 1 per thread;" err
'

test_expect_success 'OpenBLAS runs single-threaded inside the 2 kernel threads' '
    cm-train --synthetic 32 --layers 1 --width 16 --heads 2 --context 8 --batch 2 \
        --steps 1 --threads 2 2>err &&
    test_grep "; 2 threads, OpenBLAS [A-Za-z0-9]* kernels on 1 per thread;" err
'

test_done
