#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train: help, version, bad usage (exit 2), missing or damaged inputs (exit 3 / 4).
. "$(dirname "$0")/test-lib.sh"

TINY="--synthetic 32 --layers 1 --width 16 --heads 2 --context 8 --batch 2 -q"

test_expect_success '--help goes to stdout and exits 0' '
    cm-train --help >out 2>err &&
    test_grep "usage: cm-train" out &&
    test_grep "Memory is bounded" out &&
    test ! -s err
'

test_expect_success '--version' '
    cm-train --version >out &&
    test_grep "^cm-train " out
'

test_expect_success 'unknown option: short usage on stderr, exit 2' '
    test_expect_code 2 cm-train --frobnicate >out 2>err &&
    test ! -s out &&
    test_grep "frobnicate" err &&
    test_grep "usage:" err
'

test_expect_success 'unknown command, exit 2' '
    test_expect_code 2 cm-train frob 2>err &&
    test_grep "unknown command" err
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
    test_grep "OpenBLAS [A-Za-z0-9]* kernels on 1 threads, other kernels on 1" err
'

test_done
