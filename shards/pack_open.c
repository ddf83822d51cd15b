// SPDX-License-Identifier: MIT
/*
** pack_open.c: the corpus directory and its index for `cm-shards pack` (see pack.h): a new
** corpus (schema and corpus row), one replaced (--force: its files removed), or one resumed
** (--resume: read back and checked through the one corpus opener/checker of corpus_index.h,
** files the index does not know removed, the documents it holds skipped in the input), and
** the units of --split-from recorded (split_from.c).
*/
#include "pack.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "cli.h"          // defines: CM_VERSION
#include "corpus_index.h" // defines: CorpusIndex, corpus_index_attach, corpus_check_shards
#include "hash.h"         // defines: hash_hex
#include "shard.h"        // defines: index_sql_schema, index_exec, INDEX_NAME

/*
** Prepare a statement or report. Returns 0 or -1.
*/
int pack_prepare(Packer *p, const char *sql, sqlite3_stmt **st)
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
        if (unlink(path) && errno != ENOENT)
            rc = error("cannot remove '%s': %s", path, strerror(errno));
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
    if (pack_prepare(p,
                     "INSERT INTO corpus(format_version, tokenizer_fingerprint, tokenizer_json,"
                     " vocab_size, eot_id, dtype, shard_tokens, valid_fraction, split_seed,"
                     " created_by, codemill_version, created_at, split_by, complete)"
                     " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
                     &st))
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
    sqlite3_bind_text(st, 10, p->o->cmdline ? p->o->cmdline : "cm-shards pack", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, CM_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 13, split_by_name(p->split_by), -1, SQLITE_STATIC);
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
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'corpus'",
                           -1, &st, NULL) == SQLITE_OK &&
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
              "than the corpus being resumed (%u, %u)",
              p->o->input, h->vocab_size, h->eot_id, x->vocab_size, x->eot_id);
        return CM_EDATA;
    }
    if (x->fingerprint != h->fingerprint) {
        char a[17], b[17];
        hash_hex(x->fingerprint, a);
        hash_hex(h->fingerprint, b);
        error("%s: the input was made with another tokenizer (fingerprint %s) than the corpus "
              "being resumed (%s)",
              p->o->input, b, a);
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
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_attach(&x, p->o->dir, p->db, &f);
    if (!rc) rc = corpus_check_shards(&x, &f);
    if (!rc) rc = pack_check_tokenizer(p, &x);
    p->dtype = x.dtype;
    p->shard_tokens = x.shard_tokens;
    p->valid_fraction = x.valid_fraction;
    p->split_seed = x.split_seed;
    p->split_by = x.split_by;
    *complete = x.complete;
    corpus_index_close(&x);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT (SELECT COALESCE(MAX(id) + 1, 0) FROM documents), "
                           "(SELECT COALESCE(MAX(id) + 1, 0) FROM shards)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
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
int pack_skip_done(Packer *p)
{
    if (p->next_doc == 0) return 0;
    sqlite3_stmt *st = NULL;
    if (pack_prepare(p, "SELECT id, n_tokens, n_prompt FROM documents ORDER BY id", &st))
        return CM_EFORMAT;
    uint64_t k = 0;
    int rc = CM_OK;
    while (k < p->next_doc) {
        TsDoc d;
        int r = ts_next(&p->ts, &d);
        if (r <= 0) {
            if (r < 0) error("%s", p->ts.err);
            error("%s: the input ended after %llu documents but the corpus already holds %llu: "
                  "is it the input the corpus was packed from?",
                  p->o->input, (unsigned long long)k, (unsigned long long)p->next_doc);
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
                  "is not the one this corpus was packed from",
                  p->o->input, (unsigned long long)k, d.n, (long long)sqlite3_column_int64(st, 1));
            rc = CM_EDATA;
            break;
        }
        if ((uint64_t)sqlite3_column_int64(st, 2) != d.n_prompt) {
            error("%s: document %llu has a prompt of %u tokens but the corpus holds %lld for it: "
                  "the input is not the one this corpus was packed from (a corpus packed before "
                  "index version 3 kept no prompt lengths: pack it again with --force)",
                  p->o->input, (unsigned long long)k, d.n_prompt,
                  (long long)sqlite3_column_int64(st, 2));
            rc = CM_EDATA;
            break;
        }
        k++;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
** A resumed corpus of index version 1 or 2 becomes version 3 (its documents get n_prompt 0;
** pack_skip_done then refuses an input whose first documents have prompts). 0 or -1.
*/
static int pack_upgrade(Packer *p)
{
    int has = index_has_column(p->db, NULL, "documents", "n_prompt");
    if (has < 0) return error("%s: %s", p->ipath, index_error(p->db));
    if (has) return 0;
    if (index_exec(p->db, "BEGIN", p->ipath) || index_upgrade(p->db, p->ipath)) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return index_exec(p->db, "COMMIT", p->ipath);
}

/*
** Check the directory: not a file, not holding a corpus unless --resume or --force; create it.
** Returns 0 or an exit status.
*/
static int pack_prepare_dir(const PackOpts *o)
{
    struct stat sb;
    int exists = stat(o->dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode)) {
        error("%s: exists and is not a directory", o->dir);
        return CM_EUSAGE;
    }
    if (exists && !o->resume && !o->force && dir_has_corpus_files(o->dir)) {
        error("%s: already holds a corpus: use --resume to finish an interrupted pack, or "
              "--force to replace it",
              o->dir);
        return CM_EUSAGE;
    }
    if (!exists && mkdir(o->dir, 0777) && errno != EEXIST) {
        error("cannot create directory '%s': %s", o->dir, strerror(errno));
        return CM_EIO;
    }
    return 0;
}

/*
** --force: remove the index (and its journals) and every shard file. Returns 0 or CM_EIO.
*/
static int pack_remove_corpus(Packer *p, size_t n)
{
    const char *sfx[] = { "", "-wal", "-shm", "-journal" };
    for (int i = 0; i < 4; i++) {
        snprintf(p->ipath, n, "%s/%s%s", p->o->dir, INDEX_NAME, sfx[i]);
        if (unlink(p->ipath) && errno != ENOENT) {
            error("cannot remove '%s': %s", p->ipath, strerror(errno));
            return CM_EIO;
        }
    }
    return pack_remove_orphans(p, 1) ? CM_EIO : 0;
}

/*
** Open the index and, resuming, read it back. *fresh: the corpus is to be created. Returns 0,
** -1 when a resumed corpus is already complete, or an exit status.
*/
static int pack_open_index(Packer *p, int *fresh)
{
    const PackOpts *o = p->o;
    int had_index = access(p->ipath, F_OK) == 0;
    /* NOMUTEX: the connection is used by one thread at a time (the main thread before and
    ** after the index thread runs, which gets it through p->mu), so SQLite's per-call
    ** connection mutex is pure cost (measured: ~20% of the index thread's CPU with the
    ** allocator's statistics mutex, turned off in pack_run) */
    if (sqlite3_open_v2(p->ipath, &p->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        error("%s: cannot open: %s", p->ipath, index_error(p->db));
        return CM_EIO;
    }
    sqlite3_busy_timeout(p->db, 5000);
    *fresh = 1;
    if (had_index && o->resume) { /* read before the pragmas: a damaged index is refused as such */
        int complete = 0;
        int rc = pack_load_resume(p, &complete);
        if (rc > 0) return rc;
        if (rc == 0) {
            *fresh = 0;
            if (complete) {
                warn("%s: the corpus is already complete (%llu documents): nothing to do", o->dir,
                     (unsigned long long)p->next_doc);
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
    if (!pragmas)
        pragmas = "PRAGMA page_size = 16384; PRAGMA journal_mode = TRUNCATE; "
                  "PRAGMA synchronous = FULL; "
                  "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY";
    return index_exec(p->db, pragmas, p->ipath) ? CM_EIO : 0;
}

/*
** The insert statements of the index thread. Returns 0 or CM_EFORMAT.
*/
static int pack_prepare_inserts(Packer *p)
{
    Buf sql = { 0 };
    buf_adds(&sql,
             "INSERT INTO documents(id, shard, token_offset, n_tokens, n_bytes, repo_name,"
             " path, license, imports, content_hash, split, extra, n_prompt) VALUES");
    for (int i = 0; i < DOC_BATCH; i++)
        buf_adds(&sql, i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    int bad = pack_prepare(p, sql.buf, &p->ins_docs);
    buf_reset(&sql);
    buf_adds(&sql, "INSERT INTO document_imports(document, module) VALUES");
    for (int i = 0; i < IMP_BATCH; i++) buf_adds(&sql, i ? ",(?,?)" : "(?,?)");
    bad = bad || pack_prepare(p, sql.buf, &p->ins_imps);
    buf_free(&sql);
    if (bad ||
        pack_prepare(p,
                     "INSERT INTO documents(id, shard, token_offset, n_tokens, n_bytes, "
                     "repo_name, path, license, imports, content_hash, split, extra, n_prompt) "
                     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     &p->ins_doc) ||
        pack_prepare(p, "INSERT INTO document_imports(document, module) VALUES(?,?)",
                     &p->ins_imp) ||
        pack_prepare(p,
                     "INSERT INTO shards(id, file, tokens, documents, bytes, checksum, "
                     "first_document) VALUES(?,?,?,?,?,?,?)",
                     &p->ins_shard))
        return CM_EFORMAT;
    return 0;
}

/*
** --split-from: record the other corpus's units and their split (split_from.c) in one
** transaction. 0 or an exit status.
*/
static int pack_pin(Packer *p)
{
    if (index_exec(p->db, "BEGIN", p->ipath)) return CM_EIO;
    int rc = split_pin(p->db, p->ipath, p->o->split_from, p->split_by, p->o->quiet);
    if (!rc && index_exec(p->db, "COMMIT", p->ipath)) rc = CM_EIO;
    if (rc) sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int pack_open(Packer *p)
{
    const PackOpts *o = p->o;
    int rc = o->split_from ? split_from_check(o->split_from) : 0; /* before anything is made */
    if (!rc) rc = pack_prepare_dir(o);
    if (rc) return rc;
    size_t n = strlen(o->dir) + sizeof INDEX_NAME + 16;
    p->ipath = xmalloc(n);
    if (o->force && !o->resume && (rc = pack_remove_corpus(p, n))) return rc;
    snprintf(p->ipath, n, "%s/%s", o->dir, INDEX_NAME);
    int fresh;
    rc = pack_open_index(p, &fresh);
    if (rc) return rc;
    if (fresh) {
        p->dtype = shard_dtype_for_vocab(p->ts.hdr.vocab_size);
        p->shard_tokens = o->shard_tokens;
        p->valid_fraction = o->valid_fraction;
        p->split_seed = o->split_seed;
        p->split_by = o->split_by;
        p->next_doc = 0;
        p->shard_id = 0;
        if (o->resume && pack_remove_orphans(p, 1)) return CM_EIO;
        if (pack_create_index(p)) return CM_EIO;
    } else if (pack_upgrade(p) || pack_remove_orphans(p, 0)) {
        return CM_EIO;
    }
    if (o->split_from && (rc = pack_pin(p))) return rc;
    return pack_prepare_inserts(p);
}
