#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-filter --pairs: instruction records from documented functions, methods and classes.
# The records are checked against Python's own parser (ast) on generated files, byte for byte;
# then the fields, exact copies written once, the counts, the options, and the same output for
# every --threads.
. "$(dirname "$0")/test-lib.sh"

# gen.py N: the test's files; oracle.py: the records expected, by Python's ast (written here,
# outside the tests' single-quoted bodies, as the scripts hold quotes)
cat >gen.py <<\EOF
# gen.py N: N records of Python files built from fragments that exercise the scanner
import json, random, sys
rnd = random.Random(11)
W = ("compute mean value array axis return sorted list keys fit model data frame "
     "column index scale weight sample matrix vector").split()
def doc(k=None):
    return " ".join(rnd.choice(W) for _ in range(k or rnd.randint(3, 9))).capitalize()
def frag(i):
    k = rnd.randrange(10)
    if k == 0:
        return ('@decorator\n@other(%d,\n       2)\ndef f%d(a: int,\n        b=(1,),  # c )\n'
                '        ) -> int:\n    """%s.\n\n    More text.\n    """\n'
                '    s = "def fake():"\n    return a + b\n' % (i, i, doc()))
    if k == 1:
        return ("class C%d(Base):\n    '''%s'''\n\n    def m%d(self, x):\n"
                "        r'''%s \\d'''\n        return x\n\n    def _p(self):\n"
                "        '''%s'''\n        return 1\n\n    def __init__(self):\n"
                "        '''%s'''\n        self.x = 1\n\n    class Inner:\n"
                "        \"%s\"\n        async def run(self):\n"
                "            '''%s'''\n            await self.go()\n"
                % (i, doc(), i, doc(), doc(), doc(), doc(), doc()))
    if k == 2:
        return ('def outer%d(x):\n    """%s"""\n    def inner(y):\n        """%s"""\n'
                '        return y\n    return inner(x)\n' % (i, doc(), doc()))
    if k == 3:
        return ('def stub%d():\n    """%s"""\n    raise NotImplementedError\n\n'
                'class Err%d(Exception):\n    """%s"""\n' % (i, doc(), i, doc()))
    if k == 4:
        return ('def template%d():\n    """%s"""\n    return \'\'\'\ndef fake():\n'
                '    """Not a definition."""\n\'\'\'\n' % (i, doc()))
    if k == 5:
        return 'def shared(x, y):\n    """Add two numbers x and y."""\n    return x + y\n'
    if k == 6:
        return ('class T%d:\n\t"""%s"""\n\tdef m(self):\n\t\t"""%s"""\n\t\treturn 1\n'
                % (i, doc(), doc()))
    if k == 7:
        return ('if True:\n    def cond%d():\n        """%s"""\n        return 1\n'
                % (i, doc()))
    if k == 8:
        return 'def one%d(): return %d\n\ndef nodoc%d(x):\n    return x\n' % (i, i, i)
    return ('def short%d():\n    """%s"""\n    x = 1\n    # trailing comment\n\n'
            % (i, doc(rnd.randint(1, 2))))
n = int(sys.argv[1])
for i in range(n):
    text = "import numpy as np\n\n" + "\n".join(frag(i * 10 + j) for j in range(rnd.randint(2, 6)))
    text += "\nx1 = x2 = x3 = x4 = x5 = 1\n"
    if i % 7 == 3:
        text = text.replace("\n", "\r\n")
    if i % 5 == 2:
        text = text.rstrip("\r\n")
    print(json.dumps({"repo_name": "repo%d" % (i % 13), "path": "pkg/m%d.py" % i,
                      "content": text}))
EOF
cat >oracle.py <<\EOF
# oracle.py KEPT.jsonl [MAX_BYTES]: the instruction pairs cm-filter --pairs --pairs-min-words 0
# should write for the kept records, found with Python's own parser (ast) instead of
# codemill's scanner: {repo_name, path, name, line, output} per line, exact copies of an
# output dropped (first wins). Files ast cannot parse are counted on stderr and left out.
import ast, json, sys

def is_stub(body):
    if not body:
        return True
    if len(body) > 1:
        return False
    s = body[0]
    if isinstance(s, ast.Pass):
        return True
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and s.value.value is Ellipsis:
        return True
    if isinstance(s, ast.Raise) and s.exc is not None:
        e = s.exc.func if isinstance(s.exc, ast.Call) else s.exc
        return isinstance(e, ast.Name) and e.id == "NotImplementedError"
    return False

def width(ws):
    w = 0
    for c in ws:
        w = (w // 8 + 1) * 8 if c == "\t" else w + 1
    return w

def dedent(lines, indent):
    ind_w = width(indent)
    out = []
    for line in lines:
        if line.startswith(indent):
            line = line[len(indent):]
        else:
            q, w = 0, 0
            while q < len(line) and line[q] in " \t" and w < ind_w:
                w = w + 1 if line[q] == " " else (w // 8 + 1) * 8
                q += 1
            if not (w != ind_w and q < len(line) and not line[q].isspace()):
                line = line[q:]
        if line.endswith("\r"):
            line = line[:-1]
        out.append(line + "\n")
    return "".join(out)

def walk(stmts, prefix, lines, found):
    for node in stmts:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            doc = ast.get_docstring(node, clean=False)
            private = any(p.startswith("_") for p in name.split("."))
            if doc is not None and not private and not is_stub(node.body[1:]):
                head = lines[node.lineno - 1]
                indent = head[: len(head) - len(head.lstrip(" \t\f"))]
                text = dedent(lines[start - 1 : node.end_lineno], indent)
                found.append((start, name, text))
            if isinstance(node, ast.ClassDef):
                walk(node.body, name + ".", lines, found)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            sub = getattr(node, field, None)
            if isinstance(sub, list):
                walk([s for s in sub if isinstance(s, ast.stmt)], prefix, lines, found)
                for h in sub:
                    if isinstance(h, (ast.ExceptHandler, ast.match_case)):
                        walk(h.body, prefix, lines, found)

max_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
seen, bad = set(), 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    src = r["content"]
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        bad += 1
        continue
    found = []
    walk(tree.body, "", src.split("\n"), found)
    for line, name, text in sorted(found, key=lambda f: f[0]):
        if len(text.encode()) > max_bytes or text in seen:
            continue
        seen.add(text)
        print(json.dumps({"repo_name": r.get("repo_name"), "path": r.get("path"), "name": name,
                          "line": line, "output": text}, sort_keys=True))
print("oracle: %d files not parsed" % bad, file=sys.stderr)
EOF

test_expect_success 'setup: 3000 files of definitions (decorators, signatures over lines, nested, private, stubs, strings holding def, CRLF, tabs, no final newline)' '
    python3 gen.py 3000 >in.jsonl &&
    test "$(wc -l <in.jsonl)" = 3000 &&
    test "$(grep -c "\\\\r\\\\n" in.jsonl)" -gt 300
'

# norm: the fields the oracle writes, one sorted-key JSON object a line
norm() {
    python3 -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    print(json.dumps({k: d[k] for k in (\"repo_name\", \"path\", \"name\", \"line\", \"output\")}, sort_keys=True))"
}

test_expect_success 'the records are the documented definitions Python ast finds, output byte for byte' '
    cm-filter -q --no-near-dedup <in.jsonl >kept.jsonl &&
    python3 oracle.py kept.jsonl >expect 2>oracle.err &&
    test_grep "oracle: 0 files not parsed" oracle.err &&
    cm-filter -q --no-near-dedup --pairs --pairs-min-words 0 --pairs-max-bytes 1G <in.jsonl >all.jsonl &&
    norm <all.jsonl >got &&
    test "$(wc -l <got)" -gt 5000 &&
    test_cmp expect got
'

test_expect_success 'Alpaca fields: instruction, input "", output; name, kind, line; provenance of the file' '
    cm-filter -q --pairs --stats stats.json <in.jsonl >pairs.jsonl &&
    test "$(wc -l <pairs.jsonl)" -gt 3000 &&
    jq -e -s "all(.[]; (.instruction | test(\"^Write (a Python|the) .*\\u0060: .*[.!?]$\")) and .input == \"\"
        and (.output | endswith(\"\\n\")) and (.line | type) == \"number\" and .line >= 1
        and (.repo_name | startswith(\"repo\")) and (.path | startswith(\"pkg/\"))
        and (.imports == [\"numpy\"]))" pairs.jsonl &&
    jq -r ".kind" pairs.jsonl | sort -u >kinds &&
    printf "async method\nclass\nfunction\nmethod\nnested class\n" >expect &&
    test_cmp expect kinds &&
    jq -e -s "any(.[]; .name | test(\"^C[0-9]+[.]m[0-9]+$\")) and
        any(.[]; .name | test(\"^C[0-9]+[.]Inner[.]run$\")) and
        all(.[]; (.name | test(\"(^|[.])_\") | not) and (.name | test(\"inner|stub|Err|nodoc|one|short\") | not))" pairs.jsonl &&
    jq -e -s "[.[] | select(.name | startswith(\"f\"))][0].instruction |
        test(\"^Write a Python function \\u0060f[0-9]+[(]a: int, b=[(]1,[)][)] -> int\\u0060: [A-Z][a-z ]+[.]$\")" pairs.jsonl
'

test_expect_success '--stats: files, records, duplicates and every skip rule; the counts add up' '
    jq -e ".pairs | .files > 2900 and .records > 3000 and .duplicates > 100 and
        .skipped.nested > 100 and .skipped.private > 100 and .skipped[\"no-docstring\"] > 100 and
        .skipped.stub > 100 and .skipped[\"short-docstring\"] > 100 and
        .definitions == .records + .duplicates + ([.skipped[]] | add) and
        .files_with_pairs <= .files" stats.json &&
    test "$(jq .pairs.records stats.json)" = "$(wc -l <pairs.jsonl)" &&
    test "$(jq .pairs.bytes stats.json)" = "$(wc -c <pairs.jsonl)" &&
    test "$(jq -r .output pairs.jsonl | grep -c "^def shared(x, y):")" = 1
'

test_expect_success '--threads 1, 2, 4: the same records, --stats and summary' '
    for t in 1 2 4; do
        cm-filter --pairs --threads $t --stats st.$t <in.jsonl >out.$t 2>err.$t &&
        sed "s/ in [0-9.]*s: / in Ts: /" err.$t >msg.$t || return 1
    done &&
    test_cmp out.1 out.2 && test_cmp out.1 out.4 &&
    test_cmp st.1 st.2 && test_cmp st.1 st.4 &&
    test_cmp msg.1 msg.4 &&
    test_cmp pairs.jsonl out.2 &&
    test_grep "; pairs [0-9]* (.* MB) from [0-9]* of [0-9]* files, [0-9]* definitions: duplicates [0-9]*, nested" msg.1
'

test_expect_success 'an output seen before is written once (first wins); rejected files give none' '
    python3 -c "
import json
shared = \"def shared(x, y):\\n    \\\"\\\"\\\"Add the numbers x and y.\\\"\\\"\\\"\\n    return x + y\\n\"
def f(name):
    return \"def %s(v):\\n    \\\"\\\"\\\"Scale the value v by two.\\\"\\\"\\\"\\n    return 2 * v\\n\" % name
a = \"import numpy\\n\" + shared + f(\"first\")
for repo, path, text in ((\"r1\", \"a.py\", a), (\"r2\", \"b.py\", \"import numpy\\n\" + f(\"second\") + shared),
                         (\"r3\", \"c.py\", a), (\"r4\", \"d.py\", \"import os\\n\" + f(\"third\"))):
    print(json.dumps({\"repo_name\": repo, \"path\": path, \"content\": text, \"license\": \"mit\"}))
" >dup.jsonl &&
    cm-filter -q --no-quality --pairs --stats dup.stats --rejects dup.rej <dup.jsonl >dup.out &&
    jq -r "[.repo_name, .path, .name, .line, .license] | @tsv" dup.out >got &&
    printf "r1\ta.py\tshared\t2\tmit\nr1\ta.py\tfirst\t5\tmit\nr2\tb.py\tsecond\t2\tmit\n" >expect &&
    test_cmp expect got &&
    jq -e ".pairs | .files == 2 and .records == 3 and .duplicates == 1 and .files_with_pairs == 2" dup.stats &&
    jq -r "[.path, .reject] | @tsv" dup.rej >got &&
    printf "c.py\texact-dup\nd.py\timports\n" >expect &&
    test_cmp expect got
'

test_expect_success '--pairs-private, --pairs-min-words, --pairs-max-bytes move definitions between the counts' '
    cm-filter -q --pairs --pairs-private --stats priv.json <in.jsonl >priv.out &&
    jq -e ".pairs.skipped.private == 0" priv.json &&
    test "$(jq .pairs.records priv.json)" -gt "$(jq .pairs.records stats.json)" &&
    jq -e -s "any(.[]; .name | test(\"[.]__init__$\")) and any(.[]; .name | test(\"[.]_p$\"))" priv.out &&
    cm-filter -q --pairs --pairs-min-words 0 --stats words.json <in.jsonl >/dev/null &&
    jq -e ".pairs.skipped[\"short-docstring\"] == 0" words.json &&
    cm-filter -q --pairs --pairs-max-bytes 120 --stats big.json <in.jsonl >big.out &&
    jq -e ".pairs.skipped[\"too-long\"] > 1000" big.json &&
    jq -e -s "all(.[]; (.output | utf8bytelength) <= 120)" big.out
'

test_expect_success 'a kept line longer than a worker renders (> 1 MiB) still gives its records' '
    python3 -c "
import json
body = \"import numpy\\n\" + \"\".join(\"def f%d(a, b):\\n    \\\"\\\"\\\"Return a plus b plus %d.\\\"\\\"\\\"\\n    x = a + %d\\n    return x + b\\n\\n\" % (i, i, i) for i in range(20000))
print(json.dumps({\"repo_name\": \"big\", \"path\": \"big.py\", \"content\": body}))
" >big.jsonl &&
    test "$(wc -c <big.jsonl)" -gt 1100000 &&
    for t in 1 2; do
        cm-filter -q --pairs --threads $t <big.jsonl >long.$t || return 1
    done &&
    test_cmp long.1 long.2 &&
    test "$(wc -l <long.1)" = 20000 &&
    test "$(jq -r .name long.1 | tail -1)" = f19999
'

test_expect_success 'usage: bad --pairs-* values exit 2; --help tells the fields' '
    test_expect_code 2 cm-filter --pairs --pairs-max-bytes 0 </dev/null 2>err &&
    test_grep "pairs-max-bytes" err &&
    test_expect_code 2 cm-filter --pairs --pairs-min-words -1 </dev/null 2>err &&
    cm-filter --help >help &&
    test_grep "^  *--pairs " help &&
    test_grep "instruction, input" help
'

test_done
