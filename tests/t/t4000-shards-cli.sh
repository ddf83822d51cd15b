#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: command line, usage errors, exit codes, refusing to overwrite, bad inputs.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: a small token stream' '
    printf "%s\n" \
        "{\"repo_name\":\"a/x\",\"path\":\"x.py\",\"content\":\"import numpy\\n\"}" \
        "{\"repo_name\":\"b/y\",\"path\":\"y.py\",\"content\":\"x = 1\\n\"}" >in.jsonl &&
    shards-mkstream <in.jsonl >in.tok &&
    test -s in.tok
'

test_expect_success '--help on stdout, exit 0; --version' '
    cm-shards --help >out && test_grep "^  pack " out && test_grep "^  split " out &&
    test_grep "tokens_per_repo" out &&
    cm-shards pack --help >out && test_grep "valid-fraction" out && test_grep "^usage: cm-shards pack" out &&
    for v in pack verify stats cat merge split; do
        cm-shards $v --help >out && test_grep "^Memory: " out || return 1
    done &&
    cm-shards --version >out && test_grep "cm-shards (codemill)" out &&
    cm-shards stats --version >out && test_grep "cm-shards (codemill)" out
'

test_expect_success 'bad usage: exit 2 with a short usage on stderr' '
    test_expect_code 2 cm-shards 2>err && test_grep "usage" err &&
    test_expect_code 2 cm-shards frobnicate 2>err && test_grep "unknown verb" err &&
    test_expect_code 2 cm-shards pack in.tok 2>err && test_grep "missing -o DIR" err &&
    test_expect_code 2 cm-shards pack -o c --bogus in.tok 2>err && test_grep "usage: cm-shards pack" err &&
    test_expect_code 2 cm-shards pack -o c --shard-tokens lots in.tok 2>err &&
    test_grep "shard-tokens" err &&
    test_expect_code 2 cm-shards pack -o c --shard-tokens 0 in.tok 2>err &&
    test_expect_code 2 cm-shards pack -o c --valid-fraction 1.5 in.tok 2>err &&
    test_expect_code 2 cm-shards pack -o c --split-seed 12x in.tok 2>err && test_grep "split-seed" err &&
    test_expect_code 2 cm-shards pack -o c --resume --force in.tok 2>err &&
    test_expect_code 2 cm-shards pack -o c in.tok in.tok 2>err &&
    test_expect_code 2 cm-shards verify 2>err && test_grep "missing the corpus" err &&
    test_expect_code 2 cm-shards stats a b 2>err && test_grep "one corpus directory" err &&
    test_expect_code 2 cm-shards split c 2>err && test_grep "valid-fraction" err &&
    test_expect_code 2 cm-shards merge c 2>err && test_grep "missing -o" err &&
    test_expect_code 2 cm-shards merge -o m 2>err && test_grep "no source corpus" err &&
    test_expect_code 2 cm-shards cat --limit -1 c 2>err && test_grep "limit" err &&
    test ! -e c
'

test_expect_success 'each verb takes only its own options (and the common ones)' '
    test_expect_code 2 cm-shards verify --json c 2>err && test_grep "unknown option .--json." err &&
    test_expect_code 2 cm-shards stats --where x c 2>err && test_grep "usage: cm-shards stats" err &&
    test_expect_code 2 cm-shards cat --force c 2>err &&
    test_expect_code 2 cm-shards merge --shard-tokens 5 -o m c 2>err &&
    test_expect_code 2 cm-shards split --ids --valid-fraction 0.1 c 2>err &&
    test_expect_code 2 cm-shards pack --json -o c in.tok 2>err &&
    test_expect_code 2 cm-shards pack --limit 3 -o c in.tok 2>err &&
    test ! -e c && test ! -e m
'

test_expect_success 'pack reads stdin (- or nothing) and a file alike; -q everywhere' '
    cm-shards pack -q -o c1 in.tok &&
    cm-shards pack -o c2 - <in.tok &&
    cm-shards pack -o c3 <in.tok &&
    cm-shards cat --ids c1 >a && cm-shards cat --ids c2 >b && cm-shards cat --ids c3 >c &&
    test_cmp a b && test_cmp a c && test_grep "\"ids\":\\[105,109" a &&
    cm-shards verify -q c1 >/dev/null && cm-shards stats -q c1 >/dev/null &&
    cm-shards cat -q --no-progress c1 >/dev/null
'

test_expect_success 'pack refuses a directory holding a corpus; --force replaces it' '
    test_expect_code 2 cm-shards pack -o c1 in.tok 2>err &&
    test_grep "c1: already holds a corpus" err && test_grep "\-\-resume" err &&
    cm-shards pack --force -o c1 in.tok &&
    cm-shards verify c1 >out && test_grep "sound: 1 shards, 2 documents" out
'

test_expect_success 'pack on a complete corpus with --resume does nothing' '
    cm-shards pack --resume -o c1 in.tok 2>err && test_grep "already complete" err &&
    cm-shards verify c1
'

test_expect_success 'missing input: exit 3; not a token stream: exit 1, named' '
    test_expect_code 3 cm-shards pack -o d nosuch.tok 2>err && test_grep "nosuch.tok" err &&
    test_expect_code 1 cm-shards pack -o d in.jsonl 2>err &&
    test_grep "in.jsonl: at byte 0" err && test_grep "not a codemill token stream" err &&
    : >empty && test_expect_code 1 cm-shards pack -o d empty 2>err && test_grep "empty input" err
'

test_expect_success 'verify/stats/cat on something that is not a corpus: clear error' '
    mkdir notc &&
    test_expect_code 3 cm-shards verify notc 2>err && test_grep "notc/index.sqlite: cannot open" err &&
    echo junk >notc/index.sqlite &&
    test_expect_code 4 cm-shards stats notc 2>err && test_grep "not a codemill corpus index" err &&
    test_expect_code 4 cm-shards cat notc 2>err
'

test_expect_success 'cat --where with bad SQL or more than one statement: exit 2 with the reason' '
    test_expect_code 2 cm-shards cat --where "no_such = 1" c1 >out 2>err &&
    test_grep "no such column: no_such" err &&
    test_expect_code 2 cm-shards cat --where "1) ORDER BY id; DELETE FROM documents; SELECT (1" c1 >out 2>err &&
    test_grep "more than one SQL statement" err && test ! -s out &&
    test "$(sqlite3 c1/index.sqlite "SELECT COUNT(*) FROM documents")" = 2
'

test_expect_success 'cat --limit, and a consumer closing the pipe ends quietly' '
    cm-shards cat --limit 1 --ids c1 >out && test $(wc -l <out) = 1 &&
    awk "BEGIN { for (i = 0; i < 3000; i++) printf \"{\\\"repo_name\\\":\\\"r%d\\\",\\\"path\\\":\\\"p%d\\\",\\\"content\\\":\\\"%0200d\\\"}\\n\", i % 7, i, i }" >many.jsonl &&
    shards-mkstream <many.jsonl | cm-shards pack -o many &&
    { cm-shards cat many; echo $? >rc; } | head -1 >out 2>err &&
    test $(wc -l <out) = 1 && test ! -s err && test "$(cat rc)" = 141
'

test_done
