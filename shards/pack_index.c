// SPDX-License-Identifier: MIT
/*
** pack_index.c: the index side of `cm-shards pack` (see pack.h): the index thread, which makes
** each finished shard durable (fdatasync, rename, directory fsync) and then records the shard
** and its documents' rows in one transaction; and the end of the index (secondary indexes,
** the complete flag).
*/
#include "pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h" // defines: tmp_unregister
#include "hash.h"   // defines: hash_hex
#include "shard.h"  // defines: index_exec, index_sql_indexes, SHARD_PAYLOAD_OFFSET

double pack_thread_cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
** Bind a row string (or NULL) to parameter i.
*/
static void bind_str(const PackShard *b, sqlite3_stmt *st, int i, const DocRow *r, int f)
{
    if (r->len[f] == NOSTR)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, b->arena.buf + r->off[f], (int)r->len[f], SQLITE_STATIC);
}

/*
** Bind a documents row to the 13 parameters after `base`.
*/
static void bind_doc(const PackShard *b, sqlite3_stmt *st, int base, const DocRow *r)
{
    sqlite3_bind_int64(st, base + 1, (sqlite3_int64)r->id);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)b->shard_id);
    sqlite3_bind_int64(st, base + 3, (sqlite3_int64)r->offset);
    sqlite3_bind_int64(st, base + 4, r->n_tokens);
    if (r->n_bytes >= 0)
        sqlite3_bind_int64(st, base + 5, r->n_bytes);
    else
        sqlite3_bind_null(st, base + 5);
    bind_str(b, st, base + 6, r, FIELD_REPO);
    bind_str(b, st, base + 7, r, FIELD_PATH);
    bind_str(b, st, base + 8, r, FIELD_LICENSE);
    bind_str(b, st, base + 9, r, FIELD_IMPORTS);
    bind_str(b, st, base + 10, r, FIELD_HASH);
    sqlite3_bind_text(st, base + 11, r->valid ? "valid" : "train", 5, SQLITE_STATIC);
    bind_str(b, st, base + 12, r, FIELD_EXTRA);
    sqlite3_bind_int64(st, base + 13, r->n_prompt);
}

/*
** Insert the queued document_imports rows: one IMP_BATCH-row statement when full, else one
** statement per row. Returns an SQLite result code (the caller reports, then resets).
*/
static int pack_flush_imports(Packer *p)
{
    int rc = SQLITE_DONE;
    for (int i = 0; i < p->nimp; i++) /* decoded modules: wdec is stable now */
        if (!p->imp_mod[i]) p->imp_mod[i] = p->wdec.buf + p->imp_off[i];
    if (p->nimp == IMP_BATCH) {
        for (int i = 0; i < IMP_BATCH; i++) {
            sqlite3_bind_int64(p->ins_imps, 2 * i + 1, (sqlite3_int64)p->imp_id[i]);
            sqlite3_bind_text(p->ins_imps, 2 * i + 2, p->imp_mod[i], (int)p->imp_len[i],
                              SQLITE_STATIC);
        }
        rc = sqlite3_step(p->ins_imps);
        if (rc == SQLITE_DONE) sqlite3_reset(p->ins_imps);
    } else {
        for (int i = 0; i < p->nimp && rc == SQLITE_DONE; i++) {
            sqlite3_bind_int64(p->ins_imp, 1, (sqlite3_int64)p->imp_id[i]);
            sqlite3_bind_text(p->ins_imp, 2, p->imp_mod[i], (int)p->imp_len[i], SQLITE_STATIC);
            rc = sqlite3_step(p->ins_imp);
            if (rc == SQLITE_DONE) sqlite3_reset(p->ins_imp);
        }
    }
    p->nimp = 0;
    buf_reset(&p->wdec);
    return rc;
}

/*
** Insert the module names of an imports value (a JSON array of strings, or one string of
** comma-separated names) for document id. Returns an SQLite result code. (Index thread.)
*/
static int pack_insert_imports(Packer *p, uint64_t id, const char *s, size_t n)
{
    size_t i = 0, nseen = 0;
    struct {
        const char *s;
        size_t n;
    } seen[16]; /* modules already inserted (raw text) */
    int quoted_list = n > 0 && s[0] == '[';
    if (!quoted_list && n >= 2 && s[0] == '"') {
        s++;
        n -= 2;
    } /* one string: "a,b" */
    while (i < n) {
        const char *start;
        size_t len;
        int escaped = 0;
        if (quoted_list) {
            while (i < n && s[i] != '"') i++;
            if (i >= n) break;
            start = s + ++i;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\') {
                    escaped = 1;
                    i++;
                }
                i++;
            }
            len = (size_t)(s + i - start);
            i++;
        } else {
            while (i < n && (s[i] == ',' || s[i] == ' ')) i++;
            start = s + i;
            while (i < n && s[i] != ',' && s[i] != ' ') i++;
            len = (size_t)(s + i - start);
            escaped = memchr(start, '\\', len) != NULL;
        }
        if (len == 0) continue;
        int dup = 0; /* a module listed twice is one row */
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = seen[k].n == len && !memcmp(seen[k].s, start, len);
        if (dup) continue;
        if (nseen < 16) {
            seen[nseen].s = start;
            seen[nseen].n = len;
            nseen++;
        }
        p->imp_id[p->nimp] = id;
        p->imp_mod[p->nimp] = start; /* the PackShard arena outlives the flush: no copy */
        if (escaped) {               /* decoded into wdec; its address is taken at the flush */
            size_t off = p->wdec.len;
            json_decode_string(start, len, &p->wdec);
            p->imp_mod[p->nimp] = NULL;
            p->imp_off[p->nimp] = off;
            len = p->wdec.len - off;
        }
        p->imp_len[p->nimp] = len;
        if (++p->nimp == IMP_BATCH) {
            int rc = pack_flush_imports(p);
            if (rc != SQLITE_DONE) return rc;
        }
    }
    return SQLITE_DONE;
}

/*
** Record a synced shard and its documents in one transaction. Returns 0 or -1 (reported).
** (Index thread.)
*/
static int pack_shard_index(Packer *p, const PackShard *b, const char *name)
{
    char hex[17];
    hash_hex(b->checksum, hex);
    if (index_exec(p->db, "BEGIN", p->ipath)) return -1;
    sqlite3_stmt *st = p->ins_shard;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)b->shard_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)b->tokens);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)b->nrows);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)(SHARD_PAYLOAD_OFFSET + b->tokens * p->dtype));
    sqlite3_bind_text(st, 6, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, b->nrows ? (sqlite3_int64)b->rows[0].id : 0);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) sqlite3_reset(st);
    size_t i = 0;
    while (i < b->nrows && rc == SQLITE_DONE) {
        /* DOC_BATCH rows per statement while there are that many, then one by one */
        size_t k = b->nrows - i >= DOC_BATCH ? DOC_BATCH : 1;
        st = k == DOC_BATCH ? p->ins_docs : p->ins_doc;
        for (size_t j = 0; j < k; j++) bind_doc(b, st, 13 * (int)j, &b->rows[i + j]);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) break; /* reset after the message: it keeps the OS errno */
        sqlite3_reset(st);
        for (size_t j = 0; j < k && rc == SQLITE_DONE; j++) {
            const DocRow *r = &b->rows[i + j];
            if (r->len[FIELD_IMPORTS] != NOSTR)
                rc = pack_insert_imports(p, r->id, b->arena.buf + r->off[FIELD_IMPORTS],
                                         r->len[FIELD_IMPORTS]);
        }
        i += k;
    }
    if (rc == SQLITE_DONE) rc = pack_flush_imports(p);
    if (rc != SQLITE_DONE) {
        error("%s: cannot record %s: %s", p->ipath, name, index_error(p->db));
        p->nimp = 0;
        buf_reset(&p->wdec);
        sqlite3_reset(p->ins_doc);
        sqlite3_reset(p->ins_docs);
        sqlite3_reset(p->ins_imp);
        sqlite3_reset(p->ins_imps);
        sqlite3_reset(p->ins_shard);
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        error("%s: cannot record %s: %s", p->ipath, name, index_error(p->db));
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/*
** Make a finished shard durable and index it: fdatasync, rename, fsync the directory, then
** the rows. Returns 0, or an exit status (the file is removed, the index left as it was).
** (Index thread.)
*/
static int pack_shard_commit(Packer *p, PackShard *b)
{
    double t0 = now_sec();
    if (fdatasync(b->fd)) {
        int e = errno;
        pack_shard_drop_tmp(b);
        error("cannot write to '%s': %s", b->tmp, strerror(e));
        return CM_EIO;
    }
    close(b->fd);
    b->fd = -1;
    if (rename(b->tmp, b->final)) {
        error("cannot rename '%s' to '%s': %s", b->tmp, b->final, strerror(errno));
        pack_shard_drop_tmp(b);
        return CM_EIO;
    }
    tmp_unregister(b->tmp_slot); /* renamed: no longer a temporary */
    b->tmp_slot = -1;
    if (fsync_dir(p->o->dir)) {
        error("cannot sync directory '%s': %s", p->o->dir, strerror(errno));
        unlink(b->final);
        return CM_EIO;
    }
    const char *name = strrchr(b->final, '/') + 1;
    double t1 = now_sec(), c1 = pack_thread_cpu_sec();
    p->t_sync += t1 - t0;
    int irc = pack_shard_index(p, b, name);
    p->t_insert += now_sec() - t1;
    p->c_insert += pack_thread_cpu_sec() - c1;
    if (irc) {
        unlink(b->final); /* not recorded: remove it so the directory matches the index */
        return CM_EIO;
    }
    p->docs_done += b->nrows;
    p->tokens_done += b->tokens;
    return 0;
}

/*
** The index thread: commit each PackShard handed over, until told to stop.
*/
void *pack_index_thread(void *arg)
{
    Packer *p = arg;
    cm_thread_block_stop_signals(); /* SIGINT/SIGTERM go to the main thread */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->pending && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->pending) break;
        PackShard *b = p->pending;
        p->pending = NULL;
        p->busy = 1;
        pthread_mutex_unlock(&p->mu);
        int rc = p->werr ? p->werr : pack_shard_commit(p, b);
        if (rc && b->fd >= 0) pack_shard_drop_tmp(b);
        pthread_mutex_lock(&p->mu);
        p->busy = 0;
        if (rc) p->werr = rc;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/*
** Wait until the index thread has nothing in hand. Returns its error status (0 when fine).
*/
int pack_wait_idle(Packer *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->pending || p->busy) pthread_cond_wait(&p->cv, &p->mu);
    int rc = p->werr;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/*
** Stop the index thread (after it has committed what it holds). Returns its error status.
*/
int pack_stop_thread(Packer *p)
{
    if (!p->th_started) return 0;
    int rc = pack_wait_idle(p);
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    p->th_started = 0;
    return rc;
}

/*
** Create the secondary indexes, mark the corpus complete when the input ended cleanly, and
** leave the index as a single rollback-journal file. Returns 0 or -1.
*/
int pack_finalize_index(Packer *p, int complete)
{
    /* the split of every document recorded so far (split.c); a resume assigns it again */
    if (index_exec(p->db, "BEGIN", p->ipath) ||
        split_assign(p->db, p->ipath, p->valid_fraction, p->split_seed, p->split_by, p->o->quiet) ||
        split_record(p->db, p->ipath, p->valid_fraction, p->split_seed, p->split_by) ||
        index_exec(p->db, "COMMIT", p->ipath)) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    double t0 = now_sec(), c0 = pack_thread_cpu_sec();
    /* serial, ~0.3 us per document with the pragmas of index_sql_indexes (measured: PRAGMA
    ** threads does not help, keeping the index up to date during the inserts costs the index
    ** thread twice the time) */
    if (index_exec(p->db, index_sql_indexes, p->ipath)) {
        if ((sqlite3_errcode(p->db) & 0xff) == SQLITE_FULL) {
            const char *t = getenv("SQLITE_TMPDIR");
            if (!t || !*t) t = getenv("TMPDIR");
            error("building the path index sorts the paths in temporary files: is there room in "
                  "'%s' (SQLITE_TMPDIR, else TMPDIR, else /var/tmp)? The shards and their "
                  "documents are recorded: 'pack --resume' with the same input builds it",
                  t && *t ? t : "/var/tmp");
        }
        return -1;
    }
    p->t_final = now_sec() - t0;
    p->c_final = pack_thread_cpu_sec() - c0;
    if (complete && index_exec(p->db, "UPDATE corpus SET complete = 1", p->ipath)) return -1;
    sqlite3_finalize(p->ins_doc);
    sqlite3_finalize(p->ins_docs);
    sqlite3_finalize(p->ins_imp);
    sqlite3_finalize(p->ins_imps);
    sqlite3_finalize(p->ins_shard);
    p->ins_doc = p->ins_docs = p->ins_imp = p->ins_imps = p->ins_shard = NULL;
    if (index_exec(p->db, "PRAGMA journal_mode = DELETE", p->ipath)) return -1;
    return 0;
}
