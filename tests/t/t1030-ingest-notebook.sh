#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest: Jupyter notebooks become percent-format Python with magics commented.
. "$(dirname "$0")/test-lib.sh"

cat >mknb.py <<\EOT
import json
nb = {"nbformat": 4, "nbformat_minor": 5,
      "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
      "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": ["%matplotlib inline\n", "import numpy as np\n", "!pip install seaborn\n", "files = !ls\n", "np?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 2,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["SECRET-OUTPUT"]}],
         "source": "%%time\nx = np.arange(3)\nprint(x != 2)"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 3,
         "source": ["%%bash\n", "echo hi\n", "ls"]}]}
json.dump(nb, open("nb/analysis.ipynb", "w"))
v3 = {"nbformat": 3, "metadata": {}, "worksheets": [{"cells": [
      {"cell_type": "code", "input": ["a = 1\n", "a"], "language": "python", "outputs": []}]}]}
json.dump(v3, open("nb/old.ipynb", "w"))
open("nb/broken.ipynb", "w").write("{\"cells\": [")
r = {"nbformat": 4, "metadata": {"kernelspec": {"language": "R"}}, "cells": [
     {"cell_type": "code", "source": "x <- 1", "metadata": {}, "outputs": []}]}
json.dump(r, open("nb/r.ipynb", "w"))
EOT

test_expect_success 'setup: notebooks (nbformat 4 and 3, broken, R kernel)' '
    mkdir -p nb && python3 mknb.py &&
    test -s nb/analysis.ipynb && tar czf nb.tar.gz nb
'

cat >expect <<\EOT
# %%
# %matplotlib inline
import numpy as np
# !pip install seaborn
# files = !ls
# np?

# %%
# %%time
x = np.arange(3)
print(x != 2)

# %%
# %%bash
# echo hi
# ls
EOT

test_expect_success 'code cells in percent format, magics commented, outputs and markdown dropped' '
    cm-ingest -q --stats st.json nb.tar.gz >out 2>err &&
    python3 -c "
import json
rs = {json.loads(l)[\"path\"]: json.loads(l) for l in open(\"out\")}
r = rs[\"nb/analysis.ipynb\"]
assert r[\"notebook\"] is True, r
open(\"actual\", \"w\").write(r[\"content\"])
assert rs[\"nb/old.ipynb\"][\"content\"] == \"# %%\na = 1\na\n\", rs[\"nb/old.ipynb\"]
assert len(rs) == 2, rs.keys()
" &&
    test_cmp expect actual &&
    ! grep SECRET-OUTPUT out
'

test_expect_success 'the converted notebook is valid Python' '
    python3 -c "
import ast, json
n = 0
for l in open(\"out\"):
    ast.parse(json.loads(l)[\"content\"])
    n += 1
assert n == 2, n
"
'

test_expect_success 'broken and non-Python notebooks: skipped, counted, named' '
    python3 -c "import json; s=json.load(open(\"st.json\")); assert s[\"skipped_by_reason\"][\"notebook_error\"] == 2 and s[\"notebooks\"] == 2, s" &&
    test_grep "nb/broken.ipynb: notebook skipped: not JSON" err &&
    test_grep "nb/r.ipynb: notebook skipped: not a Python notebook" err
'

test_expect_success 'notebooks in a directory walk too, --ext ipynb' '
    cm-ingest -q --ext ipynb nb >out2 2>/dev/null &&
    test $(wc -l <out2) = 2 && grep "\"notebook\":true" out2
'

test_done
