# SPDX-License-Identifier: MIT
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

# gen_many_tar N OUT: a tar.zst of N (a multiple of 1000) empty .py entries, made by
# concatenating one compressed 1000-entry chunk (tar without its end blocks) N/1000 times and
# a frame holding the end blocks: zstd frames concatenate, so this takes no time
gen_many_tar() {
    awk 'BEGIN { print "#mtree"; for (i = 0; i < 1000; i++)
         printf "./pkg/d%02d/f%04d.py type=file size=0 mode=0644 uid=0 gid=0 time=0\n", i % 50, i }' |
        bsdtar -cf - @- 2>/dev/null | head -c 512000 | zstd -q -1 -c >chunk.zst || return 1
    # N/1000 copies, by decimal digits: a block of 10^d chunks is 10 blocks of 10^(d-1)
    n=$(($1 / 1000))
    : >"$2"
    cp chunk.zst block.zst
    while [ $n -gt 0 ]; do
        k=0
        while [ $k -lt $((n % 10)) ]; do cat block.zst; k=$((k + 1)); done >>"$2"
        n=$((n / 10))
        k=0
        while [ $k -lt 10 ]; do cat block.zst; k=$((k + 1)); done >block10.zst
        mv block10.zst block.zst
    done
    head -c 10240 /dev/zero | zstd -q -c >>"$2"
    rm -f chunk.zst block.zst
}

# gen_zero_bomb MIB OUT: a tar.zst whose one entry, zeros.py, is MIB MiB of zeros (MIB a
# multiple of 128), from a 128 MiB zstd frame repeated: about 4.5 KB per 128 MiB
gen_zero_bomb() {
    truncate -s $(($1 * 1048576)) zeros.py && tar cf - zeros.py 2>/dev/null | head -c 512 >hdr
    rm -f zeros.py
    head -c 134217728 /dev/zero | zstd -q -1 -c >zeros.zst || return 1
    zstd -q -c hdr >"$2"
    k=0
    while [ $k -lt $(($1 / 128)) ]; do cat zeros.zst; k=$((k + 1)); done >>"$2"
    head -c 1024 /dev/zero | zstd -q -c >>"$2"
    rm -f hdr zeros.zst
}

# gen_nested DEPTH OUT: tar in tar ... DEPTH levels; level i holds l$i.py and the level below
gen_nested() {
    mkdir -p nest.tmp && (
        cd nest.tmp && echo "x = 0" >l0.py && tar cf l0.tar l0.py &&
        i=1 && while [ $i -lt "$1" ]; do
            echo "import numpy as np  # level $i" >l$i.py &&
            tar cf l$i.tar l$i.py l$((i - 1)).tar && rm l$((i - 1)).tar || exit 1
            i=$((i + 1))
        done
    ) && mv nest.tmp/l$(($1 - 1)).tar "$2" && rm -rf nest.tmp
}

# gen_fanout LEVELS COPIES OUT: "42.zip" style: each level is a tar.gz holding COPIES copies of
# the level below (and one .py), so the leaves number COPIES^LEVELS from a few KB
gen_fanout() {
    mkdir -p fan.tmp && (
        cd fan.tmp && echo "import pandas as pd" >leaf.py && tar czf a0.tar.gz leaf.py &&
        i=1 && while [ $i -le "$1" ]; do
            c=0 && names="" &&
            while [ $c -lt "$2" ]; do cp a$((i - 1)).tar.gz c$c.tar.gz; names="$names c$c.tar.gz"; c=$((c + 1)); done &&
            echo "x = $i" >p$i.py && tar czf a$i.tar.gz p$i.py $names && rm -f $names a$((i - 1)).tar.gz ||
                exit 1
            i=$((i + 1))
        done
    ) && mv fan.tmp/a$1.tar.gz "$3" && rm -rf fan.tmp
}
