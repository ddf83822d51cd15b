#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest: every archive format, nesting, directories, stdin, naming, CLI basics.
. "$(dirname "$0")/test-lib.sh"

# fields of each record as "repo_name|path|content" lines, sorted (python3 reads JSON for us)
fields() {
    python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print("%s|%s|%s" % (r["repo_name"], r["path"], r["content"].replace("\n", "\\n")))
' | sort
}

test_expect_success 'setup: a small repository' '
    mkdir -p repo/pkg repo/docs &&
    printf "import os\nprint(os.sep)\n" >repo/pkg/mod.py &&
    printf "" >repo/pkg/__init__.py &&
    printf "# Title\n" >repo/docs/README.md &&
    cat >expect-plain <<-\EOT
	R|docs/README.md|# Title\n
	R|pkg/__init__.py|
	R|pkg/mod.py|import os\nprint(os.sep)\n
	EOT
    test -s expect-plain
'

test_expect_success '--help on stdout, exit 0; --version' '
    cm-ingest --help >out 2>err &&
    test_grep "^usage: cm-ingest" out &&
    test_grep "Memory:" out &&
    test ! -s err &&
    cm-ingest --version >out &&
    test_grep "^cm-ingest (codemill) [0-9]" out &&
    test_grep "libarchive [0-9]" out
'

test_expect_success 'bad option or value: short usage on stderr, exit 2' '
    test_expect_code 2 cm-ingest --no-such-option repo >out 2>err &&
    test ! -s out && test_grep "usage: cm-ingest" err &&
    test_expect_code 2 cm-ingest --max-file-size=lots repo >out 2>err &&
    test_grep "max-file-size" err &&
    test_expect_code 2 cm-ingest --utf8=maybe repo 2>err &&
    test_expect_code 2 cm-ingest --max-depth=99 repo 2>err
'

test_expect_success 'missing input: message naming it, exit 1' '
    test_expect_code 1 cm-ingest -q no-such.tar >out 2>err &&
    test_grep "^cm-ingest: no-such.tar: cannot open: " err
'

test_expect_success 'directory input: repo is its base name, paths relative, sorted' '
    cm-ingest -q repo >out &&
    sed "s/^R/repo/" expect-plain >expect &&
    fields <out >actual && test_cmp expect actual &&
    head -1 out | grep "\"path\":\"docs/README.md\"" &&
    sed -n 2p out | grep "\"path\":\"pkg/__init__.py\""
'

for fmt in tar tar.gz tar.bz2 tar.xz tar.zst zip 7z; do
    test_expect_success "archive format $fmt: repo is the base name" "
        case $fmt in
        tar) tar cf r.$fmt -C repo . ;;
        tar.gz) tar czf r.$fmt -C repo . ;;
        tar.bz2) tar cjf r.$fmt -C repo . ;;
        tar.xz) tar cJf r.$fmt -C repo . ;;
        tar.zst) tar cf - -C repo . | zstd -q >r.$fmt ;;
        zip) (cd repo && zip -qr ../r.$fmt .) ;;
        7z) (cd repo && 7z a -bd ../r.$fmt . >/dev/null) ;;
        esac &&
        cm-ingest -q r.$fmt >out &&
        sed 's/^R/r/' expect-plain >expect &&
        fields <out >actual && test_cmp expect actual &&
        grep -c '\"source\":\"r.$fmt\"' out >n && test \$(cat n) = 3
    "
done

test_expect_success 'ar archive' '
    (cd repo/pkg && ar rc ../../plain.ar mod.py __init__.py) &&
    cm-ingest -q plain.ar >out &&
    printf "plain|__init__.py|\nplain|mod.py|import os\\\\nprint(os.sep)\\\\n\n" >expect &&
    fields <out >actual && test_cmp expect actual
'

test_expect_success 'a .deb: ar holding data.tar.xz; control members skipped, paths from data root' '
    mkdir -p deb/usr/lib/python3/dist-packages/pkg &&
    cp repo/pkg/mod.py deb/usr/lib/python3/dist-packages/pkg/ &&
    echo "Package: x" >control &&
    tar cJf control.tar.xz control &&
    tar cJf data.tar.xz -C deb ./usr &&
    echo 2.0 >debian-binary &&
    ar rc python3-x_1.0-1_all.deb debian-binary control.tar.xz data.tar.xz &&
    cm-ingest --stats st.json -q python3-x_1.0-1_all.deb >out &&
    printf "python3-x_1.0-1_all|usr/lib/python3/dist-packages/pkg/mod.py|import os\\\\nprint(os.sep)\\\\n\n" >expect &&
    fields <out >actual && test_cmp expect actual &&
    grep "\"source\":\"python3-x_1.0-1_all.deb!data.tar.xz\"" out &&
    python3 -c "import json; s=json.load(open(\"st.json\")); assert s[\"skipped_by_reason\"][\"excluded\"] == 2, s; assert s[\"archives\"] == 2, s"
'

test_expect_success 'a .deb inside a tar: the package is the repository' '
    mkdir -p debs && cp python3-x_1.0-1_all.deb debs/ &&
    tar cf debs.tar -C debs . &&
    cm-ingest -q debs.tar >out &&
    printf "python3-x_1.0-1_all|usr/lib/python3/dist-packages/pkg/mod.py|import os\\\\nprint(os.sep)\\\\n\n" >expect &&
    fields <out >actual && test_cmp expect actual &&
    grep "\"source\":\"debs.tar!python3-x_1.0-1_all.deb!data.tar.xz\"" out
'

test_expect_success 'zip inside tar (nested): path goes through the inner archive' '
    (cd repo && zip -qr ../inner.zip pkg) &&
    mkdir -p outer && cp inner.zip outer/ && printf "a = 1\n" >outer/top.py &&
    tar czf outer.tar.gz -C outer . &&
    cm-ingest -q outer.tar.gz >out &&
    fields <out >actual &&
    grep "^outer|inner.zip/pkg/mod.py|import os" actual &&
    grep "^outer|top.py|a = 1" actual &&
    grep "\"source\":\"outer.tar.gz!inner.zip\"" out
'

test_expect_success 'a zip without an archive name is found by its magic' '
    mkdir -p magic && cp inner.zip magic/blob &&
    tar cf magic.tar -C magic blob &&
    cm-ingest -q magic.tar >out &&
    fields <out | grep "^magic|blob/pkg/mod.py|"
'

test_expect_success '--max-depth limits nesting (too_deep counted)' '
    cm-ingest -q --max-depth=0 --stats st.json outer.tar.gz >out &&
    fields <out >actual && ! grep inner.zip actual &&
    python3 -c "import json; s=json.load(open(\"st.json\")); assert s[\"skipped_by_reason\"][\"too_deep\"] == 1, s"
'

test_expect_success 'non-ASCII names come out as UTF-8 (pax tar, zip, 7z), no warnings' '
    mkdir -p u/dé && printf "x=1\n" >"u/dé/café.py" && printf "y=2\n" >"u/naïve_日本.py" &&
    tar --format=pax -cf u.tar -C u . && (cd u && zip -qr ../u.zip .) &&
    (cd u && 7z a -bd ../u.7z . >/dev/null) &&
    printf "u|dé/café.py|x=1\\\\n\nu|naïve_日本.py|y=2\\\\n\n" >expect &&
    for f in u.tar u.zip u.7z; do
        cm-ingest -q $f >out 2>err && test ! -s err &&
        fields <out >actual && test_cmp expect actual || return 1
    done
'

test_expect_success 'GitHub NAME-SHA/ wrapper goes into repo_name' '
    mkdir -p gh/numpy-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b/src &&
    printf "x = 1\n" >gh/numpy-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b/src/x.py &&
    tar czf gh.tar.gz -C gh . &&
    (cd gh && zip -qr ../gh.zip .) &&
    for f in gh.tar.gz gh.zip; do
        cm-ingest -q $f >out &&
        fields <out >actual &&
        printf "numpy|src/x.py|x = 1\\\\n\\n" >expect && test_cmp expect actual || return 1
    done
'

test_expect_success 'an archive inside a GitHub wrapper: its files keep the wrapper NAME' '
    (cd repo && zip -qr ../gh/numpy-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b/src/in.zip pkg) &&
    tar czf gh2.tar.gz -C gh . &&
    cm-ingest -q gh2.tar.gz >out &&
    fields <out >actual &&
    grep "^numpy|src/in.zip/pkg/mod.py|import os" actual &&
    grep "^numpy|src/x.py|" actual &&
    ! grep -v "^numpy|" actual
'

test_expect_success 'stdin: - and no argument read an archive' '
    cm-ingest -q - <r.tar.gz >out1 &&
    cm-ingest -q <r.tar.zst >out2 &&
    sed "s/^R/stdin/" expect-plain >expect &&
    fields <out1 >actual && test_cmp expect actual &&
    fields <out2 >actual && test_cmp expect actual
'

test_expect_success 'empty stdin: no record, exit 0; text on stdin: one record' '
    cm-ingest -q </dev/null >out && test ! -s out &&
    printf "print(1)\n" | cm-ingest -q >out && test $(wc -l <out) = 1 &&
    grep "\"content\":\"print(1)\\\\n\"" out
'

test_expect_success '--progress goes to stderr only; stdout unchanged' '
    cm-ingest -q r.tar.gz >a1 &&
    cm-ingest -q --progress r.tar.gz >a2 2>/dev/null &&
    test_cmp a1 a2
'

test_expect_success 'plain file argument and -o FILE' '
    cm-ingest -q -o o.jsonl repo/pkg/mod.py >out &&
    test ! -s out &&
    grep "\"path\":\"repo/pkg/mod.py\"" o.jsonl
'

test_expect_success '--ext, --include, --exclude' '
    cm-ingest -q --ext py r.tar.gz >out && fields <out >actual &&
    test $(wc -l <actual) = 2 && ! grep README actual &&
    cm-ingest -q --ext .md r.zip >out && fields <out >actual &&
    test $(wc -l <actual) = 1 && grep README actual &&
    cm-ingest -q --include "pkg/*" --exclude "__init__.py" --stats st.json r.tar >out &&
    fields <out >actual && test $(wc -l <actual) = 1 && grep "pkg/mod.py" actual &&
    python3 -c "import json; s=json.load(open(\"st.json\")); assert s[\"skipped_by_reason\"][\"excluded\"] == 2, s"
'

test_expect_success 'deterministic: same input twice gives identical bytes' '
    cm-ingest -q repo outer.tar.gz r.zip python3-x_1.0-1_all.deb >a &&
    cm-ingest -q repo outer.tar.gz r.zip python3-x_1.0-1_all.deb >b &&
    test_cmp a b && test -s a
'

test_expect_success '--threads=1 and the default writer thread give identical bytes' '
    cm-ingest -q --threads=1 repo outer.tar.gz r.zip python3-x_1.0-1_all.deb >c &&
    test_cmp a c &&
    test_expect_code 2 cm-ingest --threads=3 repo 2>err
'

test_expect_success 'every line is valid JSON with size = bytes of content' '
    cm-ingest -q repo r.7z >out &&
    python3 -c "
import json, sys
for l in open(\"out\"):
    r = json.loads(l)
    assert r[\"size\"] == len(r[\"content\"].encode()), r
"
'

test_done
