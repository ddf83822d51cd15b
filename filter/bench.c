// SPDX-License-Identifier: MIT
/*
** bench.c: cm-filter --bench-stage, the in-process stage timings (see bench.h).
*/
#include "filter/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h" // defines: Buf, now_sec, CM_*

const char *const bench_stages[] = { "regex", "heuristics", "exact", "near", "all", NULL };

/* The content of every Python record of an input, back to back. */
typedef struct {
    Buf text;        /* contents */
    size_t *offsets; /* document i is text[offsets[i] .. offsets[i + 1]) */
    size_t docs;
} Corpus;

/* Read the Python records of path into c (malformed lines are reported and skipped). */
static int corpus_load(Corpus *c, const char *path, size_t max_line)
{
    RecordInput in;
    memset(c, 0, sizeof *c);
    if (ri_open(&in, path, max_line, 1) != 0) return in.status;
    size_t cap = 0;
    int k;
    while ((k = ri_next(&in)) != 0) {
        if (k < 0) break;
        if (!record_is_python(&in.rec)) continue;
        if (c->docs + 2 > cap)
            c->offsets = xrealloc(c->offsets, (cap = cap ? 2 * cap : 1024) * sizeof *c->offsets);
        c->offsets[c->docs++] = c->text.len;
        buf_add(&c->text, in.rec.content.s, in.rec.content.n);
    }
    if (!c->offsets) c->offsets = xmalloc(sizeof *c->offsets);
    c->offsets[c->docs] = c->text.len;
    int rc = in.err == RI_ERR_READ ? CM_EIO : CM_OK;
    ri_close(&in);
    return rc;
}

/* Run stage s (an index of bench_stages) once over the corpus; returns how many passed. */
static uint64_t stage_once(Judge *j, int s, const Corpus *c)
{
    ExactSet exact;
    NearIndex near;
    exactset_init(&exact);
    near_init(&near, j->rules->near_threshold);
    uint64_t passed = 0;
    for (size_t i = 0; i < c->docs; i++) {
        const char *p = c->text.buf + c->offsets[i];
        size_t n = c->offsets[i + 1] - c->offsets[i];
        if (s == 0) {
            passed += imports_scan(j->scanner, p, n) != 0;
        } else if (s == 1) {
            passed += quality_check(&j->rules->quality_opts, p, n, &j->scratch) == Q_OK;
        } else if (s == 2) {
            uint64_t fp = dedup_fingerprint(p, n, &j->scratch);
            if (!exactset_has(&exact, fp)) {
                exactset_add(&exact, fp);
                passed++;
            }
        } else {
            uint32_t sig[MH_PERMS];
            size_t shingles = minhash_signature(&j->minhash, p, n, sig);
            if (shingles && near_find(&near, sig) >= 0) continue;
            if (shingles) near_add(&near, sig);
            passed++;
        }
    }
    exactset_free(&exact);
    near_free(&near);
    return passed;
}

int bench_run(Judge *j, const char *stage, const char *path, size_t max_line)
{
    Corpus c;
    int rc = corpus_load(&c, path, max_line);
    for (int s = 0; rc == CM_OK && s < 4; s++) {
        if (strcmp(stage, "all") && strcmp(stage, bench_stages[s])) continue;
        uint64_t passed = 0;
        double dt = 1e30;
        for (int rep = 0; rep < 3; rep++) { /* the fastest of 3: load is noisy */
            double t0 = now_sec();
            passed = stage_once(j, s, &c);
            double t = now_sec() - t0;
            if (t < dt) dt = t;
        }
        printf("%s %zu %zu %.4f %.1f %.0f %llu\n", bench_stages[s], c.docs, c.text.len, dt,
               c.text.len / dt / 1e6, c.docs / dt, (unsigned long long)passed);
    }
    buf_free(&c.text);
    free(c.offsets);
    return rc;
}
