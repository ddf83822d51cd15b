// SPDX-License-Identifier: MIT
/*
** pack.c: `cm-shards pack` -- token stream in, shard files and index.sqlite out.
**
** Crash-safety protocol, per shard:
**   1. tokens go to DIR/shard-NNNNN.bin.tmp (header placeholder, payload), checksummed as written;
**   2. the header is written, the file fdatasync'ed, renamed to shard-NNNNN.bin, the directory
**      fsync'ed;
**   3. only then one SQLite transaction inserts the shard row and all its document rows.
** A pack killed at any moment leaves an index whose rows point only at complete shards. Documents
** are numbered by their position in the input stream (documents.id), so `pack --resume` skips
** the first MAX(id)+1 documents of the same input (checking their token counts), removes .tmp
** files and shard files the index does not know, and goes on with the next shard number.
**
** Memory: the stream reader's buffer (the largest document), the metadata of the documents of
** two shards -- the one being written and the one the index thread commits -- (at most
** PACK_MAX_ROW_BYTES, 64 MiB, each; a shard is closed early when its metadata reaches that),
** the shard writer's chunks (4 MiB, swriter.h), and SQLite's page cache (64 MiB).
**
** Threads: the main thread reads the stream, parses metadata and fills the writer's chunks; the
** writer thread checksums and writes them (O_DIRECT); the index thread syncs finished shards
** and inserts their rows.
*/
#include "shards.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "cli.h"         // defines: CM_VERSION
#include "corpus_index.h"  // defines: CorpusIndex, corpus_index_attach, corpus_check_shards
#include "hash.h"       // defines: hash64_seed, Hash64State
#include "io.h"         // defines: Progress
#include "json.h"       // defines: JsonObj, json_parse_object
#include "shard.h"      // defines: ShardHeader, index_sql_schema
#include "swriter.h"    // defines: SWriter, sw_space
#include "tokstream.h"  // defines: TsReader, ts_open, ts_next_raw
#include "util.h"       // defines: error, Buf, exit codes

#define NOSTR UINT32_MAX   /* Row string length meaning SQL NULL */
#define DOC_BATCH 128      /* documents rows per multi-row INSERT (measured: cheaper per row) */
#define IMP_BATCH 512      /* document_imports rows per multi-row INSERT */

typedef struct {
    uint64_t id;           /* position of the document in the input stream */
    uint64_t offset;       /* first token in the shard */
    uint32_t n_tokens;     /* tokens, eot included */
    int64_t n_bytes;       /* content bytes, -1 unknown */
    uint32_t off[6];       /* arena offsets of repo_name, path, license, imports, hash, extra */
    uint32_t len[6];       /* their lengths, NOSTR for NULL */
    char valid;            /* 1: valid split */
} Row;

enum { F_REPO, F_PATH, F_LICENSE, F_IMPORTS, F_HASH, F_EXTRA };

typedef struct {
    uint64_t shard_id;     /* shard number */
    int fd;                /* its .tmp file once written (header included), not yet synced */
    char tmp[4200];        /* its temporary name */
    char final[4096];      /* its final name */
    uint64_t tokens;       /* tokens in it */
    uint64_t checksum;     /* XXH3-64 of its payload */
    Row *rows;             /* its documents */
    size_t nrows, caprows; /* count, allocated */
    Buf arena;             /* their strings */
} Batch;

typedef struct {
    const PackOpts *o;     /* options */
    char *ipath;           /* DIR/index.sqlite */
    sqlite3 *db;           /* the index (the index thread's while it runs) */
    sqlite3_stmt *ins_doc; /* INSERT INTO documents, one row */
    sqlite3_stmt *ins_docs;/* the same, DOC_BATCH rows per statement */
    sqlite3_stmt *ins_imp; /* INSERT INTO document_imports, one row */
    sqlite3_stmt *ins_imps;/* the same, IMP_BATCH rows per statement */
    uint64_t imp_id[IMP_BATCH];   /* pending document_imports rows (index thread) */
    const char *imp_mod[IMP_BATCH]; /* their modules: in the Batch arena, or NULL when decoded */
    size_t imp_off[IMP_BATCH];    /* offset in wdec of a decoded (escaped) module */
    size_t imp_len[IMP_BATCH];    /* their lengths */
    int nimp;              /* count pending */
    sqlite3_stmt *ins_shard;/* INSERT INTO shards */
    TsReader ts;           /* input */
    int ts_open;           /* ts needs ts_close */
    uint32_t dtype;        /* 2 or 4 */
    uint64_t shard_tokens; /* target per shard */
    double valid_fraction; /* split share */
    uint64_t split_seed;   /* split hash seed */
    uint64_t shard_id;     /* number of the shard being written (or next) */
    int open;              /* a shard file is being written */
    SWriter *sw;           /* writes it (O_DIRECT, own thread) and checksums its payload */
    uint64_t tokens;       /* tokens in the current shard */
    Batch bt[2];           /* the shard being filled and the one being committed */
    Batch *cur;            /* the one the main thread fills */
    JsonObj obj;           /* meta parser */
    Buf dec;               /* decoded strings scratch (main thread) */
    Buf wdec;              /* decoded strings scratch (index thread) */
    uint64_t next_doc;     /* id of the next document */
    uint64_t docs_done;    /* documents packed in this run */
    uint64_t tokens_done;  /* tokens packed in this run */
    Progress prog;         /* progress line */
    pthread_t th;          /* the index thread */
    int th_started;        /* it runs */
    pthread_mutex_t mu;    /* guards pending, busy, stop, werr */
    pthread_cond_t cv;     /* signals changes of those */
    Batch *pending;        /* handed to the index thread, not yet taken */
    int busy;              /* the index thread is committing a Batch */
    int stop;              /* the index thread should end */
    int werr;              /* exit status of a failed commit, 0 when fine */
    double t_sync;         /* seconds in fdatasync/rename/fsync of shards */
    double t_insert;       /* seconds inserting document rows */
    double c_insert;       /* CPU seconds of those inserts */
    double t_final;        /* seconds building the secondary indexes */
    double c_final;        /* CPU seconds of that */
    double t_wait;         /* seconds the main thread waited for the index thread */
} Packer;

static volatile sig_atomic_t g_interrupted;

static void pack_on_signal(int sig) { g_interrupted = sig; }

/*
** CPU time of the calling thread, in seconds (for CM_SHARDS_TIMING).
*/
static double thread_cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// the index

/*
** Prepare a statement or report. Returns 0 or -1.
*/
static int pack_prepare(Packer *p, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(p->db, sql, -1, st, NULL) != SQLITE_OK)
        return error("%s: %s", p->ipath, index_error(p->db));
    return 0;
}

/*
** Does the directory hold files of a corpus (index or shard files)?
*/
static int dir_has_corpus_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "index.sqlite", 12) || !strncmp(e->d_name, "shard-", 6)) {
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

/*
** Remove shard files of dir that the index does not record (all of them when db is NULL),
** and every leftover .tmp. Returns 0 or -1.
*/
static int pack_remove_orphans(Packer *p, int all)
{
    DIR *d = opendir(p->o->dir);
    if (!d) return error("%s: cannot read directory: %s", p->o->dir, strerror(errno));
    sqlite3_stmt *st = NULL;
    if (!all && pack_prepare(p, "SELECT 1 FROM shards WHERE file = ?", &st)) {
        closedir(d);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        if (strncmp(n, "shard-", 6)) continue;
        int is_tmp = len > 8 && !strcmp(n + len - 8, ".bin.tmp");
        int is_bin = len > 4 && !strcmp(n + len - 4, ".bin");
        if (!is_tmp && !is_bin) continue;
        int known = 0;
        if (is_bin && st) {
            sqlite3_bind_text(st, 1, n, -1, SQLITE_TRANSIENT);
            known = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_reset(st);
        }
        if (known) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", p->o->dir, n);
        if (!all && is_bin)
            warn("%s: not recorded in the index (pack was interrupted): removing it", path);
        if (unlink(path) && errno != ENOENT) rc = error("cannot remove '%s': %s", path,
                                                        strerror(errno));
    }
    sqlite3_finalize(st);
    closedir(d);
    return rc;
}

/*
** Current UTC time as ISO 8601 into out.
*/
static void iso_now(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
** Create the schema and the corpus row in one transaction (a fresh corpus).
*/
static int pack_create_index(Packer *p)
{
    const TsHeader *h = &p->ts.hdr;
    if (index_exec(p->db, "BEGIN", p->ipath) || index_exec(p->db, index_sql_schema, p->ipath))
        return -1;
    sqlite3_stmt *st = NULL;
    if (pack_prepare(p, "INSERT INTO corpus(format_version, tokenizer_fingerprint, tokenizer_json,"
                        " vocab_size, eot_id, dtype, shard_tokens, valid_fraction, split_seed,"
                        " created_by, codemill_version, created_at, complete)"
                        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,0)", &st))
        return -1;
    char fp[17], seed[17], now[32];
    hash_hex(h->fingerprint, fp);
    hash_hex(p->split_seed, seed);
    iso_now(now, sizeof now);
    sqlite3_bind_int(st, 1, INDEX_VERSION);
    sqlite3_bind_text(st, 2, fp, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, h->json, (int)h->json_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, h->vocab_size);
    sqlite3_bind_int64(st, 5, h->eot_id);
    sqlite3_bind_int(st, 6, (int)p->dtype);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)p->shard_tokens);
    sqlite3_bind_double(st, 8, p->valid_fraction);
    sqlite3_bind_text(st, 9, seed, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, p->o->cmdline ? p->o->cmdline : "cm-shards pack", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 11, CM_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, now, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return error("%s: %s", p->ipath, index_error(p->db));
    return index_exec(p->db, "COMMIT", p->ipath);
}

/*
** Does the index hold a corpus table? 1, 0, or -1 when it cannot be read (not a database).
*/
static int index_has_corpus(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'corpus'", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        rc = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return rc;
}

/*
** Check the input's tokenizer against the corpus being resumed. Returns 0 or CM_EDATA.
*/
static int pack_check_tokenizer(Packer *p, const CorpusIndex *x)
{
    const TsHeader *h = &p->ts.hdr;
    if (x->fingerprint == h->fingerprint &&
        (x->vocab_size != h->vocab_size || x->eot_id != h->eot_id)) {
        error("%s: the input was made with another tokenizer (vocabulary %u, end-of-text %u) "
              "than the corpus being resumed (%u, %u)", p->o->input, h->vocab_size, h->eot_id,
              x->vocab_size, x->eot_id);
        return CM_EDATA;
    }
    if (x->fingerprint != h->fingerprint) {
        char a[17], b[17];
        hash_hex(x->fingerprint, a);
        hash_hex(h->fingerprint, b);
        error("%s: the input was made with another tokenizer (fingerprint %s) than the corpus "
              "being resumed (%s)", p->o->input, b, a);
        return CM_EDATA;
    }
    return 0;
}

/*
** Read back the settings of a corpus being resumed through the one corpus opener/checker
** (corpus_index.h: the corpus row, every recorded shard checked) and check the input matches
** it. Sets next_doc and shard_id. Returns 0, -1 when there is no schema yet, or an exit status.
*/
static int pack_load_resume(Packer *p, int *complete)
{
    int has = index_has_corpus(p->db);
    if (has == 0) return -1; /* no schema: the first pack died before creating it */
    CorpusIndex x;
    CorpusFaults f = {NULL, 0, 0, 0};
    int rc = corpus_index_attach(&x, p->o->dir, p->db, &f);
    if (!rc) rc = corpus_check_shards(&x, &f);
    if (!rc) rc = pack_check_tokenizer(p, &x);
    p->dtype = x.dtype;
    p->shard_tokens = x.shard_tokens;
    p->valid_fraction = x.valid_fraction;
    p->split_seed = x.split_seed;
    *complete = x.complete;
    corpus_index_close(&x);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT (SELECT COALESCE(MAX(id) + 1, 0) FROM documents), "
                           "(SELECT COALESCE(MAX(id) + 1, 0) FROM shards)", -1, &st, NULL)
            != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        error("%s: %s", p->ipath, index_error(p->db));
        sqlite3_finalize(st);
        return CM_EFORMAT;
    }
    p->next_doc = (uint64_t)sqlite3_column_int64(st, 0);
    p->shard_id = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return 0;
}

/*
** Skip the first next_doc documents of the input, checking each one's token count against the
** index. Returns 0 or an exit status.
*/
static int pack_skip_done(Packer *p)
{
    if (p->next_doc == 0) return 0;
    sqlite3_stmt *st = NULL;
    if (pack_prepare(p, "SELECT id, n_tokens FROM documents ORDER BY id", &st)) return CM_EFORMAT;
    uint64_t k = 0;
    int rc = CM_OK;
    while (k < p->next_doc) {
        TsDoc d;
        int r = ts_next(&p->ts, &d);
        if (r <= 0) {
            if (r < 0) error("%s", p->ts.err);
            error("%s: the input ended after %llu documents but the corpus already holds %llu: "
                  "is it the input the corpus was packed from?", p->o->input,
                  (unsigned long long)k, (unsigned long long)p->next_doc);
            rc = CM_EDATA;
            break;
        }
        if (sqlite3_step(st) != SQLITE_ROW || (uint64_t)sqlite3_column_int64(st, 0) != k) {
            error("%s: documents are not numbered 0..%llu (damaged index)", p->ipath,
                  (unsigned long long)p->next_doc - 1);
            rc = CM_EFORMAT;
            break;
        }
        if ((uint64_t)sqlite3_column_int64(st, 1) != d.n) {
            error("%s: document %llu has %u tokens but the corpus holds %lld for it: the input "
                  "is not the one this corpus was packed from", p->o->input,
                  (unsigned long long)k, d.n, (long long)sqlite3_column_int64(st, 1));
            rc = CM_EDATA;
            break;
        }
        k++;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
** Open (creating or resuming) the corpus directory and its index, after the stream header was
** read. Returns 0, or an exit status.
*/
static int pack_open(Packer *p)
{
    const PackOpts *o = p->o;
    struct stat sb;
    int exists = stat(o->dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode)) {
        error("%s: exists and is not a directory", o->dir);
        return CM_EUSAGE;
    }
    if (exists && !o->resume && dir_has_corpus_files(o->dir)) {
        if (!o->force) {
            error("%s: already holds a corpus: use --resume to finish an interrupted pack, or "
                  "--force to replace it", o->dir);
            return CM_EUSAGE;
        }
    }
    if (!exists && mkdir(o->dir, 0777) && errno != EEXIST) {
        error("cannot create directory '%s': %s", o->dir, strerror(errno));
        return CM_EIO;
    }
    size_t n = strlen(o->dir) + sizeof INDEX_NAME + 16;
    p->ipath = xmalloc(n);
    if (o->force && !o->resume) {
        const char *sfx[] = {"", "-wal", "-shm", "-journal"};
        for (int i = 0; i < 4; i++) {
            snprintf(p->ipath, n, "%s/%s%s", o->dir, INDEX_NAME, sfx[i]);
            if (unlink(p->ipath) && errno != ENOENT) {
                error("cannot remove '%s': %s", p->ipath, strerror(errno));
                return CM_EIO;
            }
        }
        if (pack_remove_orphans(p, 1)) return CM_EIO;
    }
    snprintf(p->ipath, n, "%s/%s", o->dir, INDEX_NAME);
    int had_index = access(p->ipath, F_OK) == 0;
    /* NOMUTEX: the connection is used by one thread at a time (the main thread before and
    ** after the index thread runs, which gets it through p->mu), so SQLite's per-call
    ** connection mutex is pure cost (measured: ~20% of the index thread's CPU with the
    ** allocator's statistics mutex, turned off in pack_run) */
    if (sqlite3_open_v2(p->ipath, &p->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        error("%s: cannot open: %s", p->ipath, index_error(p->db));
        return CM_EIO;
    }
    sqlite3_busy_timeout(p->db, 5000);
    int fresh = 1;
    if (had_index && o->resume) { /* read before the pragmas: a damaged index is refused as such */
        int complete = 0;
        int rc = pack_load_resume(p, &complete);
        if (rc > 0) return rc;
        if (rc == 0) {
            fresh = 0;
            if (complete) {
                warn("%s: the corpus is already complete (%llu documents): nothing to do",
                     o->dir, (unsigned long long)p->next_doc);
                return -1;
            }
        }
    }
    /* CM_SHARDS_PRAGMAS replaces these (for measurements; CM_SHARDS_TIMING prints phases) */
    const char *pragmas = getenv("CM_SHARDS_PRAGMAS");
    /* measured: 16 KiB pages cut the insert CPU by ~15% against 4 KiB. A rollback journal
    ** (TRUNCATE) with synchronous = FULL rather than WAL: the bulk load appends pages, so the
    ** journal holds next to nothing while WAL writes every page twice (WAL, then checkpoint);
    ** measured on 2M documents: ~10% less CPU in the index thread, ~25% less system time. And
    ** FULL makes each shard's rows durable at its COMMIT (WAL + NORMAL could lose the last
    ** commits on power loss, which resume repaired by re-packing those shards). synchronous
    ** OFF is not used: a power loss could then corrupt the index itself. */
    if (!pragmas) pragmas = "PRAGMA page_size = 16384; PRAGMA journal_mode = TRUNCATE; "
                            "PRAGMA synchronous = FULL; "
                            "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY";
    if (index_exec(p->db, pragmas, p->ipath))
        return CM_EIO;
    if (fresh) {
        p->dtype = shard_dtype_for_vocab(p->ts.hdr.vocab_size);
        p->shard_tokens = o->shard_tokens;
        p->valid_fraction = o->valid_fraction;
        p->split_seed = o->split_seed;
        p->next_doc = 0;
        p->shard_id = 0;
        if (o->resume && pack_remove_orphans(p, 1)) return CM_EIO;
        if (pack_create_index(p)) return CM_EIO;
    } else {
        if (pack_remove_orphans(p, 0)) return CM_EIO;
    }
    Buf sql = {0};
    buf_adds(&sql, "INSERT INTO documents(id, shard, token_offset, n_tokens, n_bytes, repo_name,"
                   " path, license, imports, content_hash, split, extra) VALUES");
    for (int i = 0; i < DOC_BATCH; i++) buf_adds(&sql, i ? ",(?,?,?,?,?,?,?,?,?,?,?,?)" :
                                                           "(?,?,?,?,?,?,?,?,?,?,?,?)");
    int bad = pack_prepare(p, sql.buf, &p->ins_docs);
    buf_reset(&sql);
    buf_adds(&sql, "INSERT INTO document_imports(document, module) VALUES");
    for (int i = 0; i < IMP_BATCH; i++) buf_adds(&sql, i ? ",(?,?)" : "(?,?)");
    bad = bad || pack_prepare(p, sql.buf, &p->ins_imps);
    buf_free(&sql);
    if (bad ||
        pack_prepare(p, "INSERT INTO documents(id, shard, token_offset, n_tokens, n_bytes, "
                        "repo_name, path, license, imports, content_hash, split, extra) "
                        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", &p->ins_doc) ||
        pack_prepare(p, "INSERT INTO document_imports(document, module) VALUES(?,?)",
                     &p->ins_imp) ||
        pack_prepare(p, "INSERT INTO shards(id, file, tokens, documents, bytes, checksum, "
                        "first_document) VALUES(?,?,?,?,?,?,?)", &p->ins_shard))
        return CM_EFORMAT;
    return 0;
}

// ----------------------------------------------------------------------------
// metadata of one document

/*
** Append bytes to the arena and return their offset.
*/
static uint32_t arena_add(Packer *p, const void *s, size_t n)
{
    uint32_t off = (uint32_t)p->cur->arena.len;
    buf_add(&p->cur->arena, s, n);
    return off;
}

/*
** Store a string field's decoded value as row field f.
*/
static void row_set_string(Packer *p, Row *r, int f, const JsonField *jf)
{
    if (!jf || jf->type == JSON_NULL) return;
    if (jf->type != JSON_STRING) { /* keep numbers and others as their JSON text */
        r->off[f] = arena_add(p, jf->raw, jf->rawlen);
        r->len[f] = (uint32_t)jf->rawlen;
        return;
    }
    if (!jf->escaped) {
        r->off[f] = arena_add(p, jf->raw, jf->rawlen);
        r->len[f] = (uint32_t)jf->rawlen;
        return;
    }
    buf_reset(&p->dec);
    json_decode_string(jf->raw, jf->rawlen, &p->dec);
    r->off[f] = arena_add(p, p->dec.buf, p->dec.len);
    r->len[f] = (uint32_t)p->dec.len;
}

static int key_is(const JsonField *f, const char *k)
{
    size_t n = strlen(k);
    return f->klen == n && !memcmp(f->key, k, n);
}

/*
** Parse a document's meta into a new row. Returns 0, or -1 with a message (bad meta).
*/
static int pack_add_row(Packer *p, const TsDoc *d)
{
    Batch *b = p->cur;
    if (b->nrows == b->caprows) {
        b->caprows = b->caprows ? 2 * b->caprows : 4096;
        b->rows = xrealloc(b->rows, b->caprows * sizeof *b->rows);
    }
    Row *r = &b->rows[b->nrows];
    r->id = p->next_doc;
    r->offset = p->tokens;
    r->n_tokens = d->n;
    r->n_bytes = -1;
    for (int i = 0; i < 6; i++) r->len[i] = NOSTR, r->off[i] = 0;
    if (json_parse_object(&p->obj, d->meta, d->meta_len)) {
        return error("%s: document %llu: meta is not a JSON object: %s at byte %zu", p->o->input,
                     (unsigned long long)p->next_doc + 1, p->obj.err, p->obj.err_pos);
    }
    int64_t size = -1, nb = -1;
    size_t extra_start = p->cur->arena.len;
    int nextra = 0;
    for (int i = 0; i < p->obj.n; i++) {
        const JsonField *f = &p->obj.f[i];
        if (key_is(f, "repo_name")) row_set_string(p, r, F_REPO, f);
        else if (key_is(f, "path")) row_set_string(p, r, F_PATH, f);
        else if (key_is(f, "license")) row_set_string(p, r, F_LICENSE, f);
        else if (key_is(f, "content_hash")) row_set_string(p, r, F_HASH, f);
        else if (key_is(f, "imports")) {
            if (f->type == JSON_NULL) continue;
            uint32_t off = (uint32_t)p->cur->arena.len;
            if (f->type == JSON_STRING) buf_addc(&p->cur->arena, '"');
            buf_add(&p->cur->arena, f->raw, f->rawlen);
            if (f->type == JSON_STRING) buf_addc(&p->cur->arena, '"');
            r->off[F_IMPORTS] = off;
            r->len[F_IMPORTS] = (uint32_t)(p->cur->arena.len - off);
        } else if (key_is(f, "n_bytes") && f->type == JSON_NUMBER) {
            nb = strtoll(f->raw, NULL, 10);
        } else if (key_is(f, "size") && f->type == JSON_NUMBER) {
            size = strtoll(f->raw, NULL, 10);
        } else {
            continue;
        }
    }
    /* the other fields, as one JSON object, in input order: a second pass, because the object
    ** must be contiguous in the arena and the first pass appends the named fields to it */
    for (int i = 0; i < p->obj.n; i++) {
        const JsonField *f = &p->obj.f[i];
        if (key_is(f, "repo_name") || key_is(f, "path") || key_is(f, "license") ||
            key_is(f, "content_hash") || key_is(f, "imports") || key_is(f, "n_bytes") ||
            key_is(f, "size") || key_is(f, "content"))
            continue;
        if (nextra == 0) extra_start = p->cur->arena.len;
        buf_addc(&p->cur->arena, nextra++ ? ',' : '{');
        buf_addc(&p->cur->arena, '"');
        buf_add(&p->cur->arena, f->key, f->klen);
        buf_add(&p->cur->arena, "\":", 2);
        if (f->type == JSON_STRING) buf_addc(&p->cur->arena, '"');
        buf_add(&p->cur->arena, f->raw, f->rawlen);
        if (f->type == JSON_STRING) buf_addc(&p->cur->arena, '"');
    }
    if (nextra) {
        buf_addc(&p->cur->arena, '}');
        r->off[F_EXTRA] = (uint32_t)extra_start;
        r->len[F_EXTRA] = (uint32_t)(p->cur->arena.len - extra_start);
    }
    r->n_bytes = nb >= 0 ? nb : size;
    r->valid = (char)split_is_valid(r->len[F_REPO] == NOSTR ? "" : p->cur->arena.buf + r->off[F_REPO],
                                    r->len[F_REPO] == NOSTR ? 0 : r->len[F_REPO],
                                    p->valid_fraction, p->split_seed);
    b->nrows++;
    return 0;
}

// ----------------------------------------------------------------------------
// shards
//
// The main thread reads the stream, parses metadata into the current Batch and hands the
// shard's tokens to the writer thread (swriter.c); at the end of a shard it waits for the
// writer, writes the header and hands the Batch to the index thread, which fdatasyncs, renames,
// fsyncs the directory and inserts the rows in one transaction (the crash-safety order above),
// while the main thread fills the other Batch.
// At most one Batch is in the index thread's hands.

/*
** Start shard p->shard_id: create its .tmp file (the writer leaves room for the header).
*/
static void pack_shard_begin(Packer *p)
{
    Batch *b = p->cur;
    char name[64];
    shard_file_name(name, sizeof name, p->shard_id);
    b->shard_id = p->shard_id;
    snprintf(b->final, sizeof b->final, "%s/%s", p->o->dir, name);
    snprintf(b->tmp, sizeof b->tmp, "%s.tmp", b->final);
    if (sw_begin(p->sw, b->tmp, SHARD_PAYLOAD_OFFSET))
        die(CM_EIO, "cannot create '%s': %s", b->tmp, strerror(errno));
    p->open = 1;
    p->tokens = 0;
    b->nrows = 0;
    buf_reset(&b->arena);
}

/*
** Append a document's ids (n little-endian u32 in the stream's read buffer, maybe unaligned) to
** the current shard: narrowed (dtype 2) or copied straight into the writer's chunk. Returns 0,
** or -1 with a message when a write of the shard failed.
*/
static int pack_shard_write(Packer *p, const unsigned char *ids, uint32_t n)
{
    p->tokens += n;
    while (n > 0) {
        size_t room;
        unsigned char *dst = sw_space(p->sw, &room);
        if (!dst) return error("cannot write to '%s': %s", p->cur->tmp, strerror(errno));
        room /= p->dtype; /* chunks are a multiple of 4 bytes: never 0 */
        size_t k = n < room ? n : room;
        if (p->dtype == 4) {
            memcpy(dst, ids, 4 * k); /* little-endian in, little-endian out */
        } else {
            for (size_t i = 0; i < k; i++) /* the low half of each id (ids < 65536) */
                le_put16(dst + 2 * i, (uint16_t)le_get32(ids + 4 * i));
        }
        sw_commit(p->sw, k * p->dtype);
        ids += 4 * k;
        n -= (uint32_t)k;
    }
    return 0;
}

/*
** Bind a row string (or NULL) to parameter i.
*/
static void bind_str(const Batch *b, sqlite3_stmt *st, int i, const Row *r, int f)
{
    if (r->len[f] == NOSTR) sqlite3_bind_null(st, i);
    else sqlite3_bind_text(st, i, b->arena.buf + r->off[f], (int)r->len[f], SQLITE_STATIC);
}

/*
** Bind a documents row to the 12 parameters after `base`.
*/
static void bind_doc(const Batch *b, sqlite3_stmt *st, int base, const Row *r)
{
    sqlite3_bind_int64(st, base + 1, (sqlite3_int64)r->id);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)b->shard_id);
    sqlite3_bind_int64(st, base + 3, (sqlite3_int64)r->offset);
    sqlite3_bind_int64(st, base + 4, r->n_tokens);
    if (r->n_bytes >= 0) sqlite3_bind_int64(st, base + 5, r->n_bytes);
    else sqlite3_bind_null(st, base + 5);
    bind_str(b, st, base + 6, r, F_REPO);
    bind_str(b, st, base + 7, r, F_PATH);
    bind_str(b, st, base + 8, r, F_LICENSE);
    bind_str(b, st, base + 9, r, F_IMPORTS);
    bind_str(b, st, base + 10, r, F_HASH);
    sqlite3_bind_text(st, base + 11, r->valid ? "valid" : "train", 5, SQLITE_STATIC);
    bind_str(b, st, base + 12, r, F_EXTRA);
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
    struct { const char *s; size_t n; } seen[16]; /* modules already inserted (raw text) */
    int quoted_list = n > 0 && s[0] == '[';
    if (!quoted_list && n >= 2 && s[0] == '"') { s++; n -= 2; } /* one string: "a,b" */
    while (i < n) {
        const char *start;
        size_t len;
        int escaped = 0;
        if (quoted_list) {
            while (i < n && s[i] != '"') i++;
            if (i >= n) break;
            start = s + ++i;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\') { escaped = 1; i++; }
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
        if (nseen < 16) { seen[nseen].s = start; seen[nseen].n = len; nseen++; }
        p->imp_id[p->nimp] = id;
        p->imp_mod[p->nimp] = start; /* the Batch arena outlives the flush: no copy */
        if (escaped) { /* decoded into wdec; its address is taken at the flush */
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
static int pack_shard_index(Packer *p, const Batch *b, const char *name)
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
        for (size_t j = 0; j < k; j++) bind_doc(b, st, 12 * (int)j, &b->rows[i + j]);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) break; /* reset after the message: it keeps the OS errno */
        sqlite3_reset(st);
        for (size_t j = 0; j < k && rc == SQLITE_DONE; j++) {
            const Row *r = &b->rows[i + j];
            if (r->len[F_IMPORTS] != NOSTR)
                rc = pack_insert_imports(p, r->id, b->arena.buf + r->off[F_IMPORTS],
                                         r->len[F_IMPORTS]);
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
static int pack_shard_commit(Packer *p, Batch *b)
{
    double t0 = now_sec();
    if (fdatasync(b->fd)) {
        int e = errno;
        close(b->fd);
        b->fd = -1;
        unlink(b->tmp);
        error("cannot write to '%s': %s", b->tmp, strerror(e));
        return CM_EIO;
    }
    close(b->fd);
    b->fd = -1;
    if (rename(b->tmp, b->final)) {
        error("cannot rename '%s' to '%s': %s", b->tmp, b->final, strerror(errno));
        unlink(b->tmp);
        return CM_EIO;
    }
    if (fsync_dir(p->o->dir)) {
        error("cannot sync directory '%s': %s", p->o->dir, strerror(errno));
        unlink(b->final);
        return CM_EIO;
    }
    const char *name = strrchr(b->final, '/') + 1;
    double t1 = now_sec(), c1 = thread_cpu_sec();
    p->t_sync += t1 - t0;
    int irc = pack_shard_index(p, b, name);
    p->t_insert += now_sec() - t1;
    p->c_insert += thread_cpu_sec() - c1;
    if (irc) {
        unlink(b->final); /* not recorded: remove it so the directory matches the index */
        return CM_EIO;
    }
    p->docs_done += b->nrows;
    p->tokens_done += b->tokens;
    return 0;
}

/*
** The index thread: commit each Batch handed over, until told to stop.
*/
static void *pack_index_thread(void *arg)
{
    Packer *p = arg;
    cm_thread_block_stop_signals(); /* SIGINT/SIGTERM go to the main thread */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->pending && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->pending) break;
        Batch *b = p->pending;
        p->pending = NULL;
        p->busy = 1;
        pthread_mutex_unlock(&p->mu);
        int rc = p->werr ? p->werr : pack_shard_commit(p, b);
        if (rc && b->fd >= 0) { close(b->fd); b->fd = -1; unlink(b->tmp); }
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
static int pack_wait_idle(Packer *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->pending || p->busy) pthread_cond_wait(&p->cv, &p->mu);
    int rc = p->werr;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/*
** Finish writing the current shard (flush, header) and hand it to the index thread; the main
** thread goes on with the other Batch. Returns 0, or an exit status.
*/
static int pack_shard_finish(Packer *p)
{
    if (!p->open) return 0;
    Batch *b = p->cur;
    p->open = 0;
    if (b->nrows == 0) { /* nothing was added (bad first document): no empty shard */
        sw_abort(p->sw);
        unlink(b->tmp);
        return 0;
    }
    ShardHeader h = {0};
    int fd = -1;
    if (sw_flush(p->sw, &h.checksum) == 0) {
        h.version = SHARD_VERSION;
        h.dtype = p->dtype;
        h.tokens = p->tokens;
        h.fingerprint = p->ts.hdr.fingerprint;
        h.eot_id = p->ts.hdr.eot_id;
        h.vocab_size = p->ts.hdr.vocab_size;
        h.documents = b->nrows;
        h.payload_offset = SHARD_PAYLOAD_OFFSET;
        unsigned char hb[SHARD_HEADER_BYTES];
        shard_header_encode(&h, hb);
        fd = sw_end(p->sw, hb, sizeof hb);
    }
    if (fd < 0) {
        int e = errno;
        sw_abort(p->sw);
        unlink(b->tmp);
        error("cannot write to '%s': %s", b->tmp, strerror(e));
        return CM_EIO;
    }
    b->fd = fd;
    b->tokens = p->tokens;
    b->checksum = h.checksum;
    /* hand over: wait for the previous shard to be committed, then swap batches */
    double t0 = now_sec();
    int rc = pack_wait_idle(p);
    p->t_wait += now_sec() - t0;
    if (rc) {
        close(b->fd);
        b->fd = -1;
        unlink(b->tmp);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    p->pending = b;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->cur = b == &p->bt[0] ? &p->bt[1] : &p->bt[0];
    p->shard_id++;
    return 0;
}

/*
** Stop the index thread (after it has committed what it holds). Returns its error status.
*/
static int pack_stop_thread(Packer *p)
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

// ----------------------------------------------------------------------------
// the pack loop

/*
** Create the secondary indexes, mark the corpus complete when the input ended cleanly, and
** leave the index as a single rollback-journal file. Returns 0 or -1.
*/
static int pack_finalize_index(Packer *p, int complete)
{
    double t0 = now_sec(), c0 = thread_cpu_sec();
    /* serial, ~0.3 us per document with the pragmas of index_sql_indexes (measured: PRAGMA
    ** threads does not help, keeping the index up to date during the inserts costs the index
    ** thread twice the time) */
    if (index_exec(p->db, index_sql_indexes, p->ipath)) {
        if ((sqlite3_errcode(p->db) & 0xff) == SQLITE_FULL) {
            const char *t = getenv("SQLITE_TMPDIR");
            if (!t || !*t) t = getenv("TMPDIR");
            error("building the path index sorts the paths in temporary files: is there room in "
                  "'%s' (SQLITE_TMPDIR, else TMPDIR, else /var/tmp)? The shards and their "
                  "documents are recorded: 'pack --resume' with the same input builds it", t && *t ? t : "/var/tmp");
        }
        return -1;
    }
    p->t_final = now_sec() - t0;
    p->c_final = thread_cpu_sec() - c0;
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

int pack_run(const PackOpts *o)
{
    Packer pk, *p = &pk;
    memset(p, 0, sizeof *p);
    p->o = o;
    p->bt[0].fd = p->bt[1].fd = -1;
    p->cur = &p->bt[0];
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = CM_OK, input_ok = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pack_on_signal;
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* SQLite's memory statistics take a global mutex on every allocation; cm-shards never
    ** reads them. Only possible before SQLite is initialised (else SQLITE_MISUSE: ignored). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    p->sw = sw_new(!getenv("CM_SHARDS_BUFFERED"));
    if (!p->sw) {
        error("cannot start the shard writer: %s", strerror(errno));
        rc = CM_EINTERNAL;
        goto done;
    }
    p->ts_open = 1; /* ts_close is needed even when ts_open fails */
    if (ts_open(&p->ts, o->fd, o->input)) {
        error("%s", p->ts.err);
        rc = CM_EDATA;
        goto done;
    }
    rc = pack_open(p);
    if (rc == -1) { rc = CM_OK; goto done; } /* already complete */
    if (rc) goto done;
    rc = pack_skip_done(p);
    if (rc) goto done;
    if (pthread_create(&p->th, NULL, pack_index_thread, p)) {
        error("cannot start the index thread: %s", strerror(errno));
        rc = CM_EINTERNAL;
        goto done;
    }
    p->th_started = 1;
    pthread_setname_np(p->th, "cm-shards-index");
    progress_init(&p->prog, o->progress);
    for (;;) {
        if (g_interrupted) break;
        TsDoc d;
        const unsigned char *ids;
        int r = ts_next_raw(&p->ts, &d, &ids);
        if (r == 0) { input_ok = 1; break; }
        if (r < 0) {
            error("%s", p->ts.err);
            rc = CM_EDATA;
            break;
        }
        Batch *b = p->cur;
        if (p->open && p->tokens > 0 &&
            (p->tokens + d.n > p->shard_tokens ||
             b->arena.len + b->nrows * sizeof(Row) >= PACK_MAX_ROW_BYTES)) {
            int frc = pack_shard_finish(p);
            if (frc) { rc = frc; goto done; }
        }
        if (!p->open) pack_shard_begin(p);
        if (pack_add_row(p, &d)) {
            rc = CM_EDATA;
            break;
        }
        if (pack_shard_write(p, ids, d.n)) {
            rc = CM_EIO;
            goto done;
        }
        p->next_doc++;
        if ((p->next_doc & 1023) == 0)
            progress_update(&p->prog, "%llu documents, %llu shards",
                            (unsigned long long)p->next_doc, (unsigned long long)p->shard_id);
    }
    /* keep what was read completely: the current shard holds only whole documents */
    int frc = pack_shard_finish(p);
    if (frc) { rc = frc; goto done; }
    frc = pack_stop_thread(p);
    if (frc) { rc = frc; goto done; }
    progress_end(&p->prog);
    if (pack_finalize_index(p, input_ok && !g_interrupted)) {
        rc = CM_EIO;
        goto done;
    }
    if (getenv("CM_SHARDS_TIMING"))
        fprintf(stderr, "%s: timing: %.3f s shard sync, %.3f s row inserts (%.3f s CPU), "
                "%.3f s path index (%.3f s CPU), %.3f s CPU in the main thread (index "
                "included), %.3f s waiting for the index thread\n", cm_prog, p->t_sync,
                p->t_insert, p->c_insert, p->t_final, p->c_final, thread_cpu_sec(), p->t_wait);
    if (g_interrupted) {
        error("interrupted: %llu documents packed in %s; run 'cm-shards pack --resume' with the "
              "same input to finish", (unsigned long long)p->next_doc, o->dir);
        rc = CM_EINTR;
    } else if (rc == CM_EDATA) {
        error("kept the %llu complete documents before the fault in %s ('pack --resume' with a "
              "complete input finishes the job)", (unsigned long long)p->next_doc, o->dir);
    } else if (p->prog.on && !o->quiet) {
        fprintf(stderr, "%s: packed %llu documents, %llu tokens into %llu shards in %s\n",
                cm_prog, (unsigned long long)p->docs_done, (unsigned long long)p->tokens_done,
                (unsigned long long)p->shard_id, o->dir);
    }
done:
    pack_stop_thread(p);
    if (p->open) { /* a failure part way through a shard */
        sw_abort(p->sw);
        unlink(p->cur->tmp);
    }
    sw_free(p->sw);
    sqlite3_finalize(p->ins_doc);
    sqlite3_finalize(p->ins_docs);
    sqlite3_finalize(p->ins_imp);
    sqlite3_finalize(p->ins_imps);
    sqlite3_finalize(p->ins_shard);
    if (p->db) sqlite3_close(p->db);
    if (p->ts_open) ts_close(&p->ts);
    free(p->ipath);
    for (int i = 0; i < 2; i++) {
        free(p->bt[i].rows);
        buf_free(&p->bt[i].arena);
    }
    buf_free(&p->dec);
    buf_free(&p->wdec);
    json_obj_free(&p->obj);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
