// SPDX-License-Identifier: MIT
/*
** corpus_index.c: open a corpus's index and check its shard files (see corpus_index.h).
*/
#include "corpus_index.h"
#include "shards.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h" // defines: hash_hex
#include "util.h" // defines: error, xmalloc, exit codes

#define SHARD_ID_MAX (1 << 24) /* larger shards.id values are refused (the reader's table) */

void corpus_fault(CorpusFaults *f, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!f->err) {
        char msg[5000];
        vsnprintf(msg, sizeof msg, fmt, ap);
        error("%s", msg);
    } else if (f->count == 0) {
        vsnprintf(f->err, f->errlen, fmt, ap);
    }
    va_end(ap);
    f->count++;
    if (f->status != CM_EIO) f->status = status;
}

// ----------------------------------------------------------------------------
// the index and its corpus row

/*
** Read the corpus row of x->db into x. Returns 0, or the exit status after the fault.
*/
static int read_corpus_row(CorpusIndex *x, CorpusFaults *f)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT format_version, tokenizer_fingerprint, tokenizer_json, "
                           "vocab_size, eot_id, dtype, shard_tokens, valid_fraction, split_seed, "
                           "complete FROM corpus",
                           -1, &st, NULL) != SQLITE_OK) {
        corpus_fault(f, CM_EFORMAT, "%s: not a codemill corpus index: %s", x->ipath,
                     index_error(x->db));
        sqlite3_finalize(st);
        return CM_EFORMAT;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        corpus_fault(f, CM_EFORMAT, "%s: not a codemill corpus index: %s", x->ipath,
                     rc == SQLITE_DONE ? "no corpus row" : index_error(x->db));
        sqlite3_finalize(st);
        return CM_EFORMAT;
    }
    int ver = sqlite3_column_int(st, 0);
    int bad = index_parse_hex64((const char *)sqlite3_column_text(st, 1), &x->fingerprint) ||
        index_parse_hex64((const char *)sqlite3_column_text(st, 8), &x->split_seed);
    const char *json = (const char *)sqlite3_column_text(st, 2);
    x->tokenizer_len = json ? (size_t)sqlite3_column_bytes(st, 2) : 0;
    x->tokenizer_json = xmalloc(x->tokenizer_len + 1);
    memcpy(x->tokenizer_json, json ? json : "", x->tokenizer_len);
    x->tokenizer_json[x->tokenizer_len] = 0;
    x->vocab_size = (uint32_t)sqlite3_column_int64(st, 3);
    x->eot_id = (uint32_t)sqlite3_column_int64(st, 4);
    x->dtype = (uint32_t)sqlite3_column_int(st, 5);
    x->shard_tokens = (uint64_t)sqlite3_column_int64(st, 6);
    x->valid_fraction = sqlite3_column_double(st, 7);
    x->complete = sqlite3_column_int(st, 9);
    sqlite3_finalize(st);
    if (ver >= 2 &&
        sqlite3_prepare_v2(x->db, "SELECT split_by FROM corpus", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            x->split_by = split_by_parse((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if (x->split_by < 0) bad = 1;
    }
    if (ver < 1 || ver > INDEX_VERSION) {
        corpus_fault(f, CM_EFORMAT,
                     "%s: index format version %d is not supported (this build "
                     "reads %d)",
                     x->ipath, ver, INDEX_VERSION);
        return CM_EFORMAT;
    }
    if (bad || (x->dtype != 2 && x->dtype != 4) || x->shard_tokens == 0) {
        corpus_fault(f, CM_EFORMAT, "%s: damaged corpus row", x->ipath);
        return CM_EFORMAT;
    }
    return 0;
}

static void set_names(CorpusIndex *x, const char *dir)
{
    memset(x, 0, sizeof *x);
    size_t n = strlen(dir) + sizeof INDEX_NAME + 2;
    x->dir = xstrdup(dir);
    x->ipath = xmalloc(n);
    snprintf(x->ipath, n, "%s/%s", dir, INDEX_NAME);
}

int corpus_index_open(CorpusIndex *x, const char *dir, int mode, CorpusFaults *f)
{
    set_names(x, dir);
    x->own_db = 1;
    if (access(x->ipath, F_OK)) {
        corpus_fault(f, CM_EIO, "%s: cannot open: %s (is '%s' a corpus made by cm-shards pack?)",
                     x->ipath, strerror(errno), dir);
        return CM_EIO;
    }
    int rc = mode == CORPUS_INDEX_WRITE
        ? sqlite3_open_v2(x->ipath, &x->db, SQLITE_OPEN_READWRITE, NULL)
        : index_open_read(x->ipath, &x->db);
    if (rc != SQLITE_OK) {
        corpus_fault(f, CM_EIO, "%s: cannot open: %s", x->ipath, index_error(x->db));
        return CM_EIO;
    }
    sqlite3_busy_timeout(x->db, 5000);
    return read_corpus_row(x, f);
}

int corpus_index_attach(CorpusIndex *x, const char *dir, sqlite3 *db, CorpusFaults *f)
{
    set_names(x, dir);
    x->db = db;
    return read_corpus_row(x, f);
}

void corpus_index_close(CorpusIndex *x)
{
    if (x->own_db && x->db) sqlite3_close(x->db);
    free(x->dir);
    free(x->ipath);
    free(x->tokenizer_json);
    memset(x, 0, sizeof *x);
}

// ----------------------------------------------------------------------------
// shard rows

int shard_rows_begin(ShardRows *it, const CorpusIndex *x, CorpusFaults *f)
{
    it->x = x;
    it->st = NULL;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT id, file, tokens, documents, bytes, checksum, "
                           "first_document FROM shards ORDER BY id",
                           -1, &it->st, NULL) != SQLITE_OK) {
        corpus_fault(f, CM_EFORMAT, "%s: %s", x->ipath, index_error(x->db));
        return CM_EFORMAT;
    }
    return 0;
}

int shard_rows_next(ShardRows *it, ShardRow *r, CorpusFaults *f)
{
    for (;;) {
        int rc = sqlite3_step(it->st);
        if (rc == SQLITE_DONE) return 0;
        if (rc != SQLITE_ROW) {
            corpus_fault(f, CM_EFORMAT, "%s: %s", it->x->ipath, index_error(it->x->db));
            return -1;
        }
        sqlite3_stmt *st = it->st;
        r->id = sqlite3_column_int64(st, 0);
        r->file = (const char *)sqlite3_column_text(st, 1);
        r->tokens = (uint64_t)sqlite3_column_int64(st, 2);
        r->documents = (uint64_t)sqlite3_column_int64(st, 3);
        r->bytes = (uint64_t)sqlite3_column_int64(st, 4);
        r->checksum = (const char *)sqlite3_column_text(st, 5);
        r->first_document = sqlite3_column_int64(st, 6);
        if (r->id >= 0 && r->id <= SHARD_ID_MAX && r->file && !strchr(r->file, '/')) return 1;
        corpus_fault(f, CM_EFORMAT, "%s: shard %lld: bad shards row (id or file name)",
                     it->x->ipath, (long long)r->id);
        if (f->err) return -1;
    }
}

void shard_rows_end(ShardRows *it)
{
    sqlite3_finalize(it->st);
    it->st = NULL;
}

// ----------------------------------------------------------------------------
// one shard file

/*
** Open, size-check and map m->path. Returns 0, or -1 after the fault.
*/
static int map_shard(const CorpusIndex *x, const ShardRow *r, CorpusFaults *f, ShardMap *m)
{
    uint64_t want = SHARD_PAYLOAD_OFFSET + r->tokens * x->dtype;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* a file the index names is not there: the corpus is damaged; else it cannot be read */
        corpus_fault(f, errno == ENOENT ? CM_EFORMAT : CM_EIO, "%s: cannot open: %s", m->path,
                     strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        corpus_fault(f, CM_EIO, "%s: cannot stat: %s", m->path, strerror(errno));
        close(fd);
        return -1;
    }
    if ((uint64_t)sb.st_size != want) {
        corpus_fault(f, CM_EFORMAT,
                     "%s: %s: %llu bytes, the index says %llu (4096-byte header "
                     "+ %llu tokens x %u bytes)",
                     m->path, (uint64_t)sb.st_size < want ? "truncated" : "wrong size",
                     (unsigned long long)sb.st_size, (unsigned long long)want,
                     (unsigned long long)r->tokens, x->dtype);
        close(fd);
        return -1;
    }
    m->map = mmap(NULL, (size_t)want, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        corpus_fault(f, CM_EIO, "%s: cannot mmap: %s", m->path, strerror(errno));
        return -1;
    }
    m->len = (size_t)want;
    return 0;
}

/*
** Compare the decoded header m->h with the shard row and the corpus row, one fault per field
** that differs (only the first when faults are kept in a buffer).
*/
static void compare_header(const CorpusIndex *x, const ShardRow *r, CorpusFaults *f,
                           const ShardMap *m)
{
    const ShardHeader *h = &m->h;
    const char *p = m->path;
    int first = f->count;
#define STOP() \
    if (f->err && f->count > first) return
    if (h->tokens != r->tokens)
        corpus_fault(f, CM_EFORMAT, "%s: header says %llu tokens, the index %llu", p,
                     (unsigned long long)h->tokens, (unsigned long long)r->tokens);
    STOP();
    if (h->dtype != x->dtype)
        corpus_fault(f, CM_EFORMAT, "%s: header dtype %u, the index %u", p, h->dtype, x->dtype);
    STOP();
    if (h->fingerprint != x->fingerprint)
        corpus_fault(f, CM_EFORMAT, "%s: made with another tokenizer than the index's", p);
    STOP();
    if (h->eot_id != x->eot_id || h->vocab_size != x->vocab_size)
        corpus_fault(f, CM_EFORMAT, "%s: header eot id/vocabulary %u/%u, the index %u/%u", p,
                     h->eot_id, h->vocab_size, x->eot_id, x->vocab_size);
    STOP();
    if (h->documents != r->documents)
        corpus_fault(f, CM_EFORMAT, "%s: header says %llu documents, the index %llu", p,
                     (unsigned long long)h->documents, (unsigned long long)r->documents);
    STOP();
    char hex[17];
    hash_hex(h->checksum, hex);
    if (!r->checksum || strcmp(hex, r->checksum))
        corpus_fault(f, CM_EFORMAT,
                     "%s: payload checksum mismatch: the index says %s, the "
                     "header %s",
                     p, r->checksum ? r->checksum : "nothing", hex);
#undef STOP
}

int shard_check(const CorpusIndex *x, const ShardRow *r, CorpusFaults *f, ShardMap *m)
{
    int before = f->count;
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s/%s", x->dir, r->file);
    uint64_t want = SHARD_PAYLOAD_OFFSET + r->tokens * x->dtype;
    if (r->bytes != want) {
        corpus_fault(f, CM_EFORMAT, "%s: index row says %llu bytes, but %llu tokens need %llu",
                     m->path, (unsigned long long)r->bytes, (unsigned long long)r->tokens,
                     (unsigned long long)want);
        if (f->err) return -1;
    }
    if (map_shard(x, r, f, m)) return -1;
    char why[160];
    if (shard_header_decode(&m->h, m->map, m->len, why, sizeof why))
        corpus_fault(f, CM_EFORMAT, "%s: %s", m->path, why);
    else
        compare_header(x, r, f, m);
    if (f->err && f->count > before) {
        shard_unmap(m);
        return -1;
    }
    return f->count - before;
}

void shard_unmap(ShardMap *m)
{
    if (m->map) munmap(m->map, m->len);
    m->map = NULL;
    m->len = 0;
}

int corpus_check_shards(const CorpusIndex *x, CorpusFaults *f)
{
    ShardRows it;
    ShardRow r;
    int before = f->count, k;
    if (shard_rows_begin(&it, x, f)) return f->status;
    while ((k = shard_rows_next(&it, &r, f)) > 0) {
        ShardMap m;
        shard_check(x, &r, f, &m);
        shard_unmap(&m);
        if (f->err && f->count) break;
    }
    shard_rows_end(&it);
    return f->count > before ? f->status : 0;
}

// ----------------------------------------------------------------------------
// selections

int corpus_select(sqlite3 *db, const char *columns, const char *split, const char *where,
                  const char *tail, sqlite3_stmt **st, char *why, size_t whylen)
{
    Buf sql = { 0 };
    buf_addf(&sql, "SELECT %s FROM documents", columns);
    if (split) buf_adds(&sql, " WHERE split = ?1");
    if (where && *where) {
        buf_adds(&sql, split ? " AND (" : " WHERE (");
        buf_adds(&sql, where);
        buf_adds(&sql, "\n)");
    }
    buf_adds(&sql, " ORDER BY id");
    if (tail) buf_adds(&sql, tail);
    const char *rest = NULL; /* inside sql.buf: freed after the check */
    *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql.buf, -1, st, &rest);
    if (rc != SQLITE_OK) snprintf(why, whylen, "%s", sqlite3_errmsg(db));
    while (rc == SQLITE_OK && (*rest == ' ' || *rest == '\n' || *rest == '\t' || *rest == ';'))
        rest++;
    if (rc == SQLITE_OK && *rest) {
        snprintf(why, whylen, "more than one SQL statement");
        rc = SQLITE_ERROR;
    }
    buf_free(&sql);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    if (split) sqlite3_bind_text(*st, 1, split, -1, SQLITE_TRANSIENT);
    return 0;
}
