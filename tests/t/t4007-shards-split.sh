#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: the train/valid split. Whole repositories in hash order until the token share is
# reached: never empty with two repositories or more, close to --valid-fraction whatever the
# sizes, one repository split by path (with a warning), the same rule in pack, split and merge,
# printed on stderr; a format-1 corpus still reads; cm-train refuses to evaluate on nothing.
. "$(dirname "$0")/test-lib.sh"

# gen N REPOS: N records over REPOS repositories of uneven sizes
gen() {
    awk -v n="$1" -v r="$2" 'BEGIN { for (i = 0; i < n; i++) {
        k = int(r * (i / n) ^ 2);   # early repositories get fewer files
        printf "{\"repo_name\":\"org/r%d\",\"path\":\"p%05d.py\",\"content\":\"%0*d\"}\n", k, i, 20 + (i * 37) % 400, i } }'
}
share() { # share DIR: valid tokens / all tokens, 4 decimals
    sqlite3 "$1/index.sqlite" "SELECT printf('%.4f', 1.0 * SUM(n_tokens * (split = 'valid')) / SUM(n_tokens)) FROM documents"
}
q="SELECT id, split FROM documents ORDER BY id"
both() { # repositories found in both splits
    sqlite3 "$1/index.sqlite" "SELECT COUNT(*) FROM (SELECT repo_name FROM documents GROUP BY repo_name HAVING COUNT(DISTINCT split) > 1)"
}

test_expect_success 'two repositories, the default fraction: valid is not empty, and it is said' '
    gen 200 2 | shards-mkstream >two.tok &&
    cm-shards pack -o two two.tok 2>err &&
    test_grep "split by repository: valid 1 of 2 repositories" err &&
    test "$(sqlite3 two/index.sqlite "SELECT COUNT(*) FROM documents WHERE split = '"'valid'"'")" -gt 0 &&
    test "$(sqlite3 two/index.sqlite "SELECT COUNT(*) FROM documents WHERE split = '"'train'"'")" -gt 0 &&
    test "$(both two)" = 0
'

test_expect_success 'many repositories of uneven sizes: the share stays near the fraction' '
    gen 3000 21 | shards-mkstream >many.tok &&
    for f in 0.05 0.1 0.2; do
        rm -rf m && cm-shards pack -o m --valid-fraction $f many.tok 2>err &&
        s=$(share m) && say "fraction $f: valid share $s" &&
        awk -v s="$s" -v f="$f" "BEGIN { exit !(s > 0 && s > f / 2 && s < f * 1.6) }" &&
        test "$(both m)" = 0 || return 1
    done
'

test_expect_success 'the same input and seed give the same split; another seed another' '
    cm-shards pack -o a --valid-fraction 0.1 many.tok 2>/dev/null &&
    cm-shards pack -o b --valid-fraction 0.1 many.tok 2>/dev/null &&
    sqlite3 a/index.sqlite "$q" >a.split && sqlite3 b/index.sqlite "$q" >b.split &&
    test_cmp a.split b.split &&
    cm-shards pack -o c --valid-fraction 0.1 --split-seed 7 many.tok 2>/dev/null &&
    sqlite3 c/index.sqlite "$q" >c.split && ! cmp -s a.split c.split
'

test_expect_success 'one repository: split by path, with a warning; --split-by path asks for it' '
    gen 300 1 | shards-mkstream >one.tok &&
    cm-shards pack -o one --valid-fraction 0.1 one.tok 2>err &&
    test_grep "one repository only" err && test_grep "split by path: valid" err &&
    s=$(share one) && awk -v s="$s" "BEGIN { exit !(s > 0.08 && s < 0.12) }" &&
    cm-shards pack -o paths --valid-fraction 0.1 --split-by path many.tok 2>err &&
    test_grep "split by path" err && ! test_grep "one repository only" err &&
    test "$(sqlite3 paths/index.sqlite "SELECT split_by FROM corpus")" = path
'

test_expect_success 'cm-shards split recomputes with the same rule, and says so' '
    cm-shards split --valid-fraction 0.2 a 2>err &&
    test_grep "split by repository: valid" err &&
    rm -rf d && cm-shards pack -o d --valid-fraction 0.2 many.tok 2>/dev/null &&
    sqlite3 a/index.sqlite "$q" >a2.split && sqlite3 d/index.sqlite "$q" >d.split &&
    test_cmp d.split a2.split &&
    test_expect_code 2 cm-shards split --valid-fraction 0.2 --split-by file a
'

test_expect_success 'merge assigns the split of the whole: no repository in both splits' '
    gen 3000 21 | head -n 1500 | shards-mkstream >h1.tok &&
    gen 3000 21 | tail -n 1500 | shards-mkstream >h2.tok &&
    cm-shards pack -o h1 --valid-fraction 0.1 h1.tok 2>/dev/null &&
    cm-shards pack -o h2 --valid-fraction 0.1 h2.tok 2>/dev/null &&
    cm-shards merge -o hm h1 h2 2>err && test_grep "split by repository" err &&
    test "$(both hm)" = 0 &&
    cm-shards pack -o whole --valid-fraction 0.1 many.tok 2>/dev/null &&
    sqlite3 whole/index.sqlite "SELECT repo_name, split FROM documents ORDER BY id" >w.rs &&
    sqlite3 hm/index.sqlite "SELECT repo_name, split FROM documents ORDER BY id" >m.rs &&
    test_cmp w.rs m.rs
'

test_expect_success 'a format-1 corpus (no split_by) still reads, in every verb and in cm-train' '
    cp -r two v1 &&
    sqlite3 v1/index.sqlite "ALTER TABLE corpus DROP COLUMN split_by; UPDATE corpus SET format_version = 1; PRAGMA user_version = 1" &&
    cm-shards verify v1 >out && test_grep sound out &&
    cm-shards stats v1 >out && test_grep valid out &&
    cm-shards cat --limit 1 v1 >out && test -s out &&
    cm-train --data v1 --layers 1 --width 32 --heads 2 --context 16 --batch 2 --steps 2 -q &&
    cm-shards split --valid-fraction 0.3 v1 2>err &&
    test "$(sqlite3 v1/index.sqlite "SELECT format_version FROM corpus")" = 3 &&
    test "$(sqlite3 v1/index.sqlite "PRAGMA user_version")" = 3 &&
    test "$(sqlite3 v1/index.sqlite "SELECT SUM(n_prompt) FROM documents")" = 0
'

test_expect_success 'cm-train asked to evaluate on an empty split fails, naming the split' '
    cm-shards split --valid-fraction 0 two 2>/dev/null &&
    test_expect_code 4 cm-train --data two --layers 1 --width 32 --heads 2 --context 16 \
        --batch 2 --steps 2 --eval-every 1 -q 2>err &&
    test_grep "cannot evaluate every 1 steps on the .valid. split" err &&
    cm-train --data two --layers 1 --width 32 --heads 2 --context 16 --batch 2 --steps 2 -q 2>err &&
    test_grep "warning: .*no evaluation at the end of the run" err
'

test_done
