#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-shards: the index answers the README questions with the right numbers (expectations
# computed here from the generated input with awk), and the train/valid split is by repository.
. "$(dirname "$0")/test-lib.sh"

# 400 documents over 40 repositories; document i has L = (i * 37) % 211 bytes of content
# (so L + 1 tokens with the byte-level tokenizer), imports chosen from i.
test_expect_success 'setup: generated records and their expected figures' '
    awk "BEGIN {
        m[0] = \"numpy\"; m[1] = \"pandas\"; m[2] = \"scipy\";
        for (i = 0; i < 400; i++) {
            L = (i * 37) % 211; c = \"\";
            for (k = 0; k < L; k++) c = c \"x\";
            imp = \"[\\\"\" m[i % 3] \"\\\"\" (i % 5 == 0 ? \",\\\"\" m[(i + 1) % 3] \"\\\"\" : \"\") \"]\";
            printf \"{\\\"repo_name\\\":\\\"org/repo%02d\\\",\\\"path\\\":\\\"f%03d.py\\\",\\\"license\\\":\\\"mit\\\",\\\"content\\\":\\\"%s\\\",\\\"imports\\\":%s}\\n\", i % 40, i, c, imp;
            printf \"%s %d %s %d\\n\", \"org/repo\" sprintf(\"%02d\", i % 40), i, sprintf(\"f%03d.py\", i), L + 1 > \"docs.txt\";
            printf \"%s %d\\n\", m[i % 3], L + 1 > \"mods.txt\";
            if (i % 5 == 0) printf \"%s %d\\n\", m[(i + 1) % 3], L + 1 > \"mods.txt\";
        } }" >in.jsonl &&
    test $(wc -l <in.jsonl) = 400 &&
    shards-mkstream <in.jsonl >in.tok &&
    cm-shards pack -o c --shard-tokens 2000 --valid-fraction 0.25 in.tok
'

q() { sqlite3 -separator " " c/index.sqlite "$1"; }
qd() { sqlite3 -separator " " "$1/index.sqlite" "$2"; }

test_expect_success 'tokens per repository (view tokens_per_repo)' '
    awk "{ t[\$1] += \$4; n[\$1]++ } END { for (r in t) print r, n[r], t[r] }" docs.txt | sort >expect &&
    q "SELECT repo_name, documents, tokens FROM tokens_per_repo" | sort >actual &&
    test_cmp expect actual
'

test_expect_success 'tokens per imported module (view tokens_per_module, table document_imports)' '
    awk "{ t[\$1] += \$2; n[\$1]++ } END { for (m in t) print m, n[m], t[m] }" mods.txt | sort >expect &&
    q "SELECT module, documents, tokens FROM tokens_per_module" | sort >actual &&
    test_cmp expect actual &&
    q "SELECT COUNT(*) FROM document_imports" >actual && wc -l <mods.txt | tr -d " " >expect &&
    test_cmp expect actual
'

test_expect_success 'the largest documents (view largest_documents)' '
    sort -k4,4nr -k2,2n docs.txt | head -5 | awk "{ print \$3, \$4 }" >expect &&
    q "SELECT path, n_tokens FROM largest_documents LIMIT 5" >actual &&
    test_cmp expect actual
'

test_expect_success 'which shard holds a path (view document_location), by the shard rule' '
    awk "BEGIN { s = 0; cur = 0 }
         { if (cur > 0 && cur + \$4 > 2000) { s++; cur = 0 }
           printf \"%s shard-%05d.bin %d %d\\n\", \$3, s, cur, \$4; cur += \$4 }" docs.txt >expect &&
    q "SELECT path, file, token_offset, n_tokens FROM document_location ORDER BY document" >actual &&
    test_cmp expect actual &&
    q "SELECT file FROM document_location WHERE path = '"'"'f123.py'"'"'" >actual &&
    grep "^f123.py " expect | cut -d" " -f2 >expect1 && test_cmp expect1 actual
'

test_expect_success 'byte counts and per-split totals (view tokens_per_split)' '
    q "SELECT SUM(n_bytes) FROM documents" >actual &&
    awk "{ b += \$4 - 1 } END { print b }" docs.txt >expect && test_cmp expect actual &&
    q "SELECT DISTINCT repo_name, split FROM documents" | sort >splits &&
    awk "NR == FNR { s[\$1] = \$2; next } { t[s[\$1]] += \$4; n[s[\$1]]++ }
         END { for (k in t) print k, n[k], t[k] }" splits docs.txt | sort >expect &&
    q "SELECT split, documents, tokens FROM tokens_per_split" | sort >actual &&
    test_cmp expect actual
'

test_expect_success 'split by repository: no repository in both splits, both splits used' '
    q "SELECT repo_name FROM documents GROUP BY repo_name HAVING COUNT(DISTINCT split) > 1" >both &&
    test ! -s both &&
    v=$(q "SELECT COUNT(DISTINCT repo_name) FROM documents WHERE split = '"'"'valid'"'"'") &&
    test "$v" -ge 3 && test "$v" -le 20
'

test_expect_success 'the split is deterministic, and depends on --split-seed' '
    cm-shards pack -o c2 --shard-tokens 2000 --valid-fraction 0.25 in.tok &&
    qd c2 "SELECT id, split FROM documents" >b &&
    q "SELECT id, split FROM documents" >a && test_cmp a b &&
    cm-shards pack -o c3 --valid-fraction 0.25 --split-seed 12345 in.tok &&
    qd c3 "SELECT id, split FROM documents" >d &&
    ! cmp -s a d
'

test_expect_success 'split verb recomputes the assignment in the index' '
    cp -r c s && cm-shards split --valid-fraction 0 s &&
    test "$(sqlite3 s/index.sqlite "SELECT DISTINCT split FROM documents")" = train &&
    cm-shards split --valid-fraction 1 s &&
    test "$(sqlite3 s/index.sqlite "SELECT DISTINCT split FROM documents")" = valid &&
    cm-shards split --valid-fraction 0.25 s &&
    qd s "SELECT id, split FROM documents" >e && test_cmp a e &&
    test "$(sqlite3 s/index.sqlite "SELECT valid_fraction FROM corpus")" = 0.25 &&
    cm-shards verify s
'

test_expect_success 'stats: human table and --json agree with the index' '
    cm-shards stats c >out && test_grep "^total  *400 " out &&
    cm-shards stats --json c >out.json &&
    test "$(jq .documents out.json)" = 400 &&
    test "$(jq .tokens out.json)" = "$(q "SELECT SUM(n_tokens) FROM documents")" &&
    test "$(jq ".splits.valid.tokens" out.json)" = \
         "$(q "SELECT SUM(n_tokens) FROM documents WHERE split = '"'"'valid'"'"'")" &&
    test "$(jq ".shards | length" out.json)" = "$(q "SELECT COUNT(*) FROM shards")" &&
    test "$(jq "[.shards[].tokens] | add" out.json)" = "$(jq .tokens out.json)" &&
    test "$(jq .complete out.json)" = true
'

test_expect_success 'cat --where selects with SQL over documents' '
    cm-shards cat --ids --where "imports LIKE '"'"'%scipy%'"'"' AND n_tokens > 150" c >out &&
    jq -c "select((.imports | index(\"scipy\")) and (.content | length) + 1 > 150)" in.jsonl |
        wc -l | tr -d " " >expect &&
    wc -l <out | tr -d " " >actual && test_cmp expect actual
'

test_done
