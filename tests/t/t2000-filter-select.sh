#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-filter: command line, Python-file rule, import selection, --keywords, output fields.
. "$(dirname "$0")/test-lib.sh"

# body: a function that passes every quality rule (appended after the imports of a test file)
body() {
    cat <<'EOF'

def scale(values, factor=2):
    result = list(values) * factor
    total = sum(result)
    offset = 1
    mean = total / len(result) + offset
    return result, mean
EOF
}

# rec PATH FILE [EXTRA_JSON]: one JSONL record
rec() {
    python3 -c 'import json,sys
d={"repo_name":"r","path":sys.argv[1],"content":open(sys.argv[2],encoding="utf-8").read()}
if len(sys.argv)>3: d.update(json.loads(sys.argv[3]))
if sys.argv[1]=="-": del d["path"]
print(json.dumps(d))' "$@"
}

# summary: "path imports reject" per record of stdin
summary() {
    python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); print(d.get("path") or "-", ",".join(d["imports"]) if "imports" in d else "none", d.get("reject","kept"))'
}

# mk NAME TEXT: a file NAME.py whose first lines are TEXT (printf %b), then the body,
# appended as a record to in.jsonl; NAME gets a distinct comment so exact dedup stays away
mk() {
    { printf '%b\n' "$2"; body; echo "# $1"; } >"$1.py" && rec "$1.py" "$1.py" >>in.jsonl
}

test_expect_success '--help goes to stdout and exits 0; --version' '
    cm-filter --help >out 2>err &&
    test_grep "^usage: cm-filter" out &&
    test_grep "imports LIST" out &&
    test_grep "Memory:" out &&
    test_must_fail test -s err &&
    cm-filter --version >out &&
    test_grep "^cm-filter " out
'

test_expect_success 'bad usage: short usage on stderr, exit 2' '
    test_expect_code 2 cm-filter --no-such-option </dev/null >out 2>err &&
    test_grep "^usage: cm-filter" err &&
    test_must_fail test -s out &&
    test_expect_code 2 cm-filter --on-error maybe </dev/null 2>err &&
    test_grep "fail.*skip" err &&
    test_expect_code 2 cm-filter --imports numpy-x </dev/null 2>err &&
    test_grep "not a Python module name" err &&
    test_expect_code 2 cm-filter --min-alnum 1.5 </dev/null 2>err &&
    test_expect_code 2 cm-filter --dedup-memory lots </dev/null 2>err
'

test_expect_success 'setup: every import form, and look-alikes' '
    mk k_as "import numpy as np" &&
    mk k_list "import os, numpy" &&
    mk k_from_sub "from sklearn.model_selection import KFold" &&
    mk k_star "from pandas import *" &&
    mk k_def "def load():\n    import pandas as pd\n    return pd" &&
    mk k_try "try:\n    import sklearn\nexcept ImportError:\n    sklearn = None" &&
    mk k_dotted "import numpy.linalg" &&
    mk k_cont "import os, \\\\\n    numpy as np, pandas" &&
    mk k_oneline_try "try: import numpy\nexcept ImportError: pass" &&
    mk n_comment "# import numpy\nimport os" &&
    mk n_string "x = \"import numpy\"" &&
    mk n_docstring "\"\"\"Example:\n\n    import numpy as np\n    from pandas import DataFrame\n\"\"\"\nimport os" &&
    mk n_numpyro "import numpyro" &&
    mk n_flavor "import pandas_flavor as pf" &&
    mk n_from_longer "from sklearnex import patch" &&
    mk n_relative "from . import numpy\nfrom .pandas import x" &&
    mk n_none "import os, sys" &&
    wc -l <in.jsonl >n && test "$(cat n)" = 17
'

test_expect_success 'the right files are kept, with the modules they import' '
    cm-filter -q --no-dedup --rejects rej.jsonl <in.jsonl >out.jsonl &&
    summary <out.jsonl >got &&
    cat >expect <<-\EOF &&
	k_as.py numpy kept
	k_list.py numpy kept
	k_from_sub.py sklearn kept
	k_star.py pandas kept
	k_def.py pandas kept
	k_try.py sklearn kept
	k_dotted.py numpy kept
	k_cont.py numpy,pandas kept
	k_oneline_try.py numpy kept
	EOF
    test_cmp expect got &&
    summary <rej.jsonl >got &&
    cat >expect <<-\EOF &&
	n_comment.py  imports
	n_string.py  imports
	n_docstring.py  imports
	n_numpyro.py  imports
	n_flavor.py  imports
	n_from_longer.py  imports
	n_relative.py  imports
	n_none.py  imports
	EOF
    test_cmp expect got
'

test_expect_success '--imports chooses other modules' '
    mk m_plt "import matplotlib.pyplot as plt" &&
    mk m_scipy "from scipy import sparse" &&
    cm-filter -q --no-dedup --imports matplotlib,scipy <in.jsonl | summary >got &&
    printf "%s\n" "m_plt.py matplotlib kept" "m_scipy.py scipy kept" >expect &&
    test_cmp expect got &&
    cm-filter -q --no-dedup --imports sklearn.model_selection <in.jsonl | summary >got &&
    echo "k_from_sub.py sklearn.model_selection kept" >expect &&
    test_cmp expect got
'

test_expect_success '--keywords: substring anywhere in content, as the HF course' '
    cm-filter -q --no-dedup --keywords seaborn,numpyro <in.jsonl | summary >got &&
    echo "n_numpyro.py  kept" >expect &&
    test_cmp expect got &&
    cm-filter -q --no-dedup --keywords pandas <in.jsonl | summary | cut -d" " -f1 >got &&
    printf "%s\n" k_star.py k_def.py k_cont.py n_docstring.py n_flavor.py n_relative.py >expect &&
    test_cmp expect got &&
    cm-filter -q --no-dedup --keywords Pandas <in.jsonl >out &&
    test_must_fail test -s out
'

test_expect_success 'Python files only: extension, notebook flag, no path; --any-file' '
    mk base "import numpy" &&
    rec x.txt base.py >py.jsonl &&
    rec nb.ipynb base.py >>py.jsonl &&
    rec cell.json base.py "{\"notebook\":true}" >>py.jsonl &&
    rec - base.py >>py.jsonl &&
    rec stub.PYI base.py >>py.jsonl &&
    cm-filter -q --no-dedup --rejects rej <py.jsonl | summary >got &&
    printf "%s\n" "nb.ipynb numpy kept" "cell.json numpy kept" "- numpy kept" "stub.PYI numpy kept" >expect &&
    test_cmp expect got &&
    summary <rej >got &&
    echo "x.txt none not-python" >expect &&
    test_cmp expect got &&
    cm-filter -q --no-dedup --any-file <py.jsonl >out &&
    test "$(wc -l <out)" = 5
'

test_expect_success 'extra input fields pass through; an input "imports" field is replaced' '
    rec a.py base.py "{\"license\":\"mit\",\"stars\":7,\"imports\":[\"old\"]}" >x.jsonl &&
    cm-filter -q <x.jsonl >out &&
    python3 -c "import json; d=json.loads(open(\"out\").read()); print(d[\"license\"], d[\"stars\"], \",\".join(d[\"imports\"]), list(d).count(\"imports\"))" >got &&
    echo "mit 7 numpy 1" >expect &&
    test_cmp expect got
'

test_expect_success 'files and - as inputs, -o FILE' '
    head -3 in.jsonl >a.jsonl && tail -n +4 in.jsonl >b.jsonl &&
    cm-filter -q --no-dedup <in.jsonl >whole &&
    cm-filter -q --no-dedup a.jsonl - <b.jsonl >parts &&
    test_cmp whole parts &&
    cm-filter -q --no-dedup -o file.jsonl a.jsonl b.jsonl &&
    test_cmp whole file.jsonl
'

test_expect_success 'the same input gives the same bytes' '
    cat in.jsonl in.jsonl py.jsonl >twice.jsonl &&
    cm-filter -q --stats s1 --rejects r1 twice.jsonl >o1 &&
    cm-filter -q --stats s2 --rejects r2 twice.jsonl >o2 &&
    test_cmp o1 o2 && test_cmp r1 r2 && test_cmp s1 s2
'

test_expect_success 'a reader that closes the pipe ends cm-filter quietly (141)' '
    python3 -c "
import json
body = open(\"base.py\").read()
for i in range(3000):
    tail = \"\".join(\"value_%d = %d\\n\" % (j, i) for j in range(40))
    print(json.dumps({\"path\": \"f%d.py\" % i, \"content\": body + tail}))
" >big.jsonl &&
    { cm-filter --no-dedup big.jsonl 2>err; echo $? >rc; } | head -c 100 >/dev/null &&
    test "$(cat rc)" = 141 &&
    test_must_fail test -s err
'

test_done
