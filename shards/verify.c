// SPDX-License-Identifier: MIT
/*
** verify.c: `cm-shards verify` -- check a whole corpus (see shards.h): every shard through the
** one checker of corpus_index.h (size, header against the rows), then its payload hashed
** against the index checksum and its documents' rows against its tokens; last the tables
** against each other. Every problem is printed; the exit status is 0 when sound, 3 when
** something cannot be read, 4 when the corpus is damaged.
*/
#include "shards.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sqlite3.h>

#include "atomic.h"       // defines: cm_stopping
#include "corpus_index.h" // defines: CorpusIndex, ShardRow, ShardMap, shard_check
#include "hash.h"         // defines: hash64, hash_hex
#include "io.h"           // defines: Progress
#include "util.h"         // defines: error, warn, exit codes

#define DOC_FAULTS_MAX 10 /* document problems printed per shard */

/*
** Hash the payload and compare it with the index's checksum.
*/
static void verify_payload(const ShardRow *r, const ShardMap *m, CorpusFaults *f)
{
    char got[17];
    hash_hex(hash64(m->map + SHARD_PAYLOAD_OFFSET, m->len - SHARD_PAYLOAD_OFFSET), got);
    if (!r->checksum || strcmp(got, r->checksum))
        corpus_fault(f, CM_EFORMAT,
                     "%s: payload checksum mismatch: the index says %s, the data "
                     "hashes to %s",
                     m->path, r->checksum ? r->checksum : "nothing", got);
}

/*
** Check one document row against the shard (docs is at the row): it lies in this shard, follows
** the previous one (*pos), its prompt (n_prompt) is shorter than it, and it ends with the
** end-of-text id. Returns 1 when it is wrong (printed).
*/
static int verify_document(const CorpusIndex *x, sqlite3_stmt *docs, const ShardRow *r,
                           const ShardMap *m, uint64_t *pos, CorpusFaults *f)
{
    int64_t did = sqlite3_column_int64(docs, 0);
    uint64_t off = (uint64_t)sqlite3_column_int64(docs, 1);
    uint64_t n = (uint64_t)sqlite3_column_int64(docs, 2);
    int64_t shard = sqlite3_column_int64(docs, 3);
    int64_t np = sqlite3_column_int64(docs, 4); /* 0 for an index of version 1 or 2 */
    int bad = 1;
    if (shard != r->id) {
        corpus_fault(f, CM_EFORMAT,
                     "%s: document %lld lies in this shard's id range but its row "
                     "names shard %lld",
                     m->path, (long long)did, (long long)shard);
    } else if (off != *pos || n == 0 || off + n > r->tokens) {
        corpus_fault(f, CM_EFORMAT, "%s: document %lld: tokens [%llu, +%llu) %s", m->path,
                     (long long)did, (unsigned long long)off, (unsigned long long)n,
                     off + n > r->tokens ? "lie outside the shard"
                         : off != *pos   ? "do not follow the previous document"
                                         : "are empty");
    } else if (np < 0 || (uint64_t)np >= n) {
        corpus_fault(f, CM_EFORMAT,
                     "%s: document %lld: a prompt of %lld tokens is not shorter than its %llu "
                     "tokens",
                     m->path, (long long)did, (long long)np, (unsigned long long)n);
    } else {
        uint32_t t;
        shard_tokens_get(m->map + SHARD_PAYLOAD_OFFSET, x->dtype, off + n - 1, 1, &t);
        bad = t != x->eot_id;
        if (bad)
            corpus_fault(f, CM_EFORMAT,
                         "%s: document %lld does not end with the end-of-text id "
                         "(%u, found %u)",
                         m->path, (long long)did, x->eot_id, t);
    }
    *pos = off + n;
    return bad;
}

/*
** The documents of a shard: ids first_document.. in order, contiguous from token 0, each ending
** with the end-of-text id, covering every token (a pack writes a shard's documents in id order).
*/
static void verify_documents(const CorpusIndex *x, sqlite3_stmt *docs, const ShardRow *r,
                             const ShardMap *m, CorpusFaults *f)
{
    sqlite3_bind_int64(docs, 1, r->first_document);
    sqlite3_bind_int64(docs, 2, (sqlite3_int64)r->documents);
    uint64_t pos = 0, count = 0;
    int rc, bad = 0;
    while ((rc = sqlite3_step(docs)) == SQLITE_ROW) {
        count++;
        if (bad < DOC_FAULTS_MAX) bad += verify_document(x, docs, r, m, &pos, f);
    }
    sqlite3_reset(docs);
    if (rc != SQLITE_DONE) corpus_fault(f, CM_EFORMAT, "%s: %s", x->ipath, index_error(x->db));
    if (count != r->documents)
        corpus_fault(f, CM_EFORMAT,
                     "%s: the shards row says %llu documents, the documents "
                     "table holds %llu",
                     m->path, (unsigned long long)r->documents, (unsigned long long)count);
    else if (pos != r->tokens && !bad)
        corpus_fault(f, CM_EFORMAT, "%s: documents cover %llu of its %llu tokens", m->path,
                     (unsigned long long)pos, (unsigned long long)r->tokens);
}

/*
** The tables against each other: no document points at a shard the index does not list, and
** the documents table holds as many rows as the shards say.
*/
static void verify_tables(const CorpusIndex *x, uint64_t ndocs, CorpusFaults *f)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT COUNT(*) FROM documents WHERE shard NOT IN "
                           "(SELECT id FROM shards)",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > 0)
        corpus_fault(f, CM_EFORMAT, "%s: %lld documents point at shards the index does not list",
                     x->ipath, (long long)sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(x->db, "SELECT COUNT(*) FROM documents", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) != ndocs)
        corpus_fault(f, CM_EFORMAT,
                     "%s: the documents table holds %lld rows, the shards %llu "
                     "documents",
                     x->ipath, (long long)sqlite3_column_int64(q, 0), (unsigned long long)ndocs);
    sqlite3_finalize(q);
}

typedef struct {
    uint64_t shards, documents, tokens; /* what the shard rows add up to */
} VerifyTotals;

/*
** Every shard: checked, hashed, its documents checked. Returns CM_EINTR when stopped by a
** signal, else 0 (problems are in f).
*/
static int verify_shards(const CorpusIndex *x, int progress, CorpusFaults *f, VerifyTotals *t)
{
    ShardRows it;
    ShardRow r;
    sqlite3_stmt *docs = NULL;
    int k, rc = 0;
    if (shard_rows_begin(&it, x, f)) return 0;
    int has_np = index_has_column(x->db, NULL, "documents", "n_prompt") == 1;
    if (sqlite3_prepare_v2(x->db,
                           has_np ? "SELECT id, token_offset, n_tokens, shard, n_prompt FROM "
                                    "documents WHERE id >= ?1 AND id < ?1 + ?2 ORDER BY id"
                                  : "SELECT id, token_offset, n_tokens, shard, 0 FROM "
                                    "documents WHERE id >= ?1 AND id < ?1 + ?2 ORDER BY id",
                           -1, &docs, NULL) != SQLITE_OK) {
        corpus_fault(f, CM_EFORMAT, "%s: %s", x->ipath, index_error(x->db));
        shard_rows_end(&it);
        return 0;
    }
    Progress prog;
    progress_init(&prog, progress);
    while ((k = shard_rows_next(&it, &r, f)) > 0) {
        if (cm_stopping()) {
            rc = CM_EINTR;
            break;
        }
        progress_update(&prog, "verifying %s", r.file);
        ShardMap m;
        if (shard_check(x, &r, f, &m) >= 0) {
            madvise(m.map, m.len, MADV_SEQUENTIAL);
            verify_payload(&r, &m, f);
            verify_documents(x, docs, &r, &m, f);
        }
        shard_unmap(&m);
        t->shards++;
        t->documents += r.documents;
        t->tokens += r.tokens;
    }
    progress_end(&prog);
    sqlite3_finalize(docs);
    shard_rows_end(&it);
    return rc;
}

int verify_run(const char *dir, int progress)
{
    CorpusIndex x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    VerifyTotals t = { 0, 0, 0 };
    int rc = corpus_index_open(&x, dir, CORPUS_INDEX_READ, &f);
    if (rc) {
        corpus_index_close(&x);
        return rc;
    }
    if (verify_shards(&x, progress, &f, &t)) {
        corpus_index_close(&x);
        error("%s: interrupted", dir);
        return CM_EINTR;
    }
    verify_tables(&x, t.documents, &f);
    int complete = x.complete;
    if (!complete)
        warn("%s: the pack did not finish (cm-shards pack --resume with the same input "
             "completes it)",
             dir);
    corpus_index_close(&x);
    if (f.count) {
        error("%s: unsound: %d problem%s", dir, f.count, f.count == 1 ? "" : "s");
        return f.status;
    }
    printf("%s: sound: %llu shards, %llu documents, %llu tokens%s\n", dir,
           (unsigned long long)t.shards, (unsigned long long)t.documents,
           (unsigned long long)t.tokens, complete ? "" : " (incomplete pack)");
    return CM_OK;
}
