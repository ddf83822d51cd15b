# gen-data.sh: input generators for the fault-injection tests (tests/t/t91*-t94*.sh), sourced
# by them. Everything is generated here, deterministic for a seed; nothing is downloaded.

# gen_py_tree DIR N [SEED]: N Python files of data-science code (~1.5 KB each, all different,
# each importing numpy/pandas/sklearn so that cm-filter keeps them) under DIR/proj-0a1b2c3/
gen_py_tree() {
    awk -v dir="$1" -v n="$2" -v seed="${3:-1}" 'BEGIN {
        srand(seed);
        mods[0] = "numpy as np"; mods[1] = "pandas as pd"; mods[2] = "sklearn.linear_model";
        system("mkdir -p " dir "/proj-0a1b2c3/pkg");
        for (i = 0; i < n; i++) {
            f = sprintf("%s/proj-0a1b2c3/pkg/mod_%05d.py", dir, i);
            printf "\"\"\"Module %d: fit and evaluate model %d.\"\"\"\n", i, int(rand() * 1e6) > f;
            printf "import %s\nimport %s\nfrom %s import LinearRegression\n\n", mods[0], mods[1], mods[2] > f;
            for (k = 0; k < 6; k++) {
                printf "def step_%d_%d(df, alpha=%.4f):\n", i, k, rand() > f;
                printf "    x = np.asarray(df[\"col_%d\"], dtype=float) * alpha\n", int(rand() * 100) > f;
                printf "    model = LinearRegression().fit(x.reshape(-1, 1), df[\"y\"])\n" > f;
                printf "    for j in range(%d):\n        x = x + j * %d\n", 2 + k, int(rand() * 1000) > f;
                printf "    return pd.Series(model.predict(x.reshape(-1, 1)) + %d)\n\n", int(rand() * 1e5) > f;
            }
            close(f);
        }
    }'
}

# gen_jsonl N [SEED]: N records (one per line) of the same kind of files on stdout
gen_jsonl() {
    awk -v n="$1" -v seed="${2:-1}" 'BEGIN {
        srand(seed);
        for (i = 0; i < n; i++) {
            c = sprintf("import numpy as np\\nimport pandas as pd\\nfrom sklearn.linear_model import LinearRegression\\n\\n");
            for (k = 0; k < 6; k++)
                c = c sprintf("def step_%d_%d(df, alpha=%.4f):\\n    x = np.asarray(df[\\\"c%d\\\"]) * alpha\\n    model = LinearRegression().fit(x.reshape(-1, 1), df[\\\"y\\\"])\\n    for j in range(%d):\\n        x = x + j * %d\\n    return pd.Series(model.predict(x.reshape(-1, 1)))\\n\\n", i, k, rand(), int(rand() * 100), 2 + k, int(rand() * 1000));
            printf "{\"repo_name\":\"owner/repo%d\",\"path\":\"pkg/mod_%05d.py\",\"content\":\"%s\"}\n", i % 37, i, c;
        }
    }'
}

# peak_kb FILE: the "Maximum resident set size" (KiB) that /usr/bin/time -v wrote to FILE
peak_kb() {
    sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$1"
}
