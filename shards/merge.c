// SPDX-License-Identifier: MIT
/*
** merge.c: `cm-shards merge` -- combine corpora packed in parallel into a new one without
** copying token data (see shards.h). Every source is opened and its shards checked by the one
** checker of corpus_index.h; their tokenizers and split settings must match. The shard files
** are hard-linked (else symbolically linked) under new numbers, and the index rows copied with
** their ids shifted, one transaction per source; the corpus row says complete = 0 until every
** source is in. The result is an index of the current version (3): the documents of a source
** of version 1 or 2 get n_prompt 0 (plain documents), so an instruction corpus merged with an
** old plain one gives examples and plain documents side by side; the --split-from pins of the
** sources (of the merged corpus's unit kind) are kept (split_from.c).
*/
#include "shards.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "atomic.h"       // defines: cm_stopping
#include "cli.h"          // defines: CM_VERSION
#include "corpus_index.h" // defines: CorpusIndex, corpus_index_open, corpus_check_shards
#include "shard.h"        // defines: index_sql_schema, index_exec, shard_file_name
#include "util.h"         // defines: error, fsync_dir, exit codes

typedef struct {
    sqlite3 *db;           /* the new index */
    char ipath[4200];      /* DST/index.sqlite */
    const char *dst;       /* the new corpus directory */
    uint64_t shard_off;    /* shards of the sources merged so far */
    uint64_t doc_off;      /* documents of the sources merged so far */
    double valid_fraction; /* the sources' split settings (the first one's unit) */
    uint64_t split_seed;
    int split_by;
} Merger;

/*
** Open every source and check it against the first. Sets *complete when all are complete.
** Returns 0 or an exit status.
*/
static int merge_check_sources(const char *const *srcs, int nsrc, int *complete, Merger *mg)
{
    CorpusIndex first, x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_open(&first, srcs[0], CORPUS_INDEX_READ, &f);
    if (!rc) rc = corpus_check_shards(&first, &f);
    *complete = first.complete;
    mg->valid_fraction = first.valid_fraction;
    mg->split_seed = first.split_seed;
    mg->split_by = first.split_by;
    for (int i = 1; i < nsrc && !rc; i++) {
        rc = corpus_index_open(&x, srcs[i], CORPUS_INDEX_READ, &f);
        if (!rc) rc = corpus_check_shards(&x, &f);
        if (!rc &&
            (x.fingerprint != first.fingerprint || x.dtype != first.dtype ||
             x.vocab_size != first.vocab_size || x.eot_id != first.eot_id)) {
            error("%s: made with another tokenizer than %s: cannot merge", srcs[i], srcs[0]);
            rc = CM_EDATA;
        }
        if (!rc && (x.valid_fraction != first.valid_fraction || x.split_seed != first.split_seed)) {
            error("%s: packed with another --valid-fraction or --split-seed than %s: cannot merge "
                  "(use 'cm-shards split' on one of them first)",
                  srcs[i], srcs[0]);
            rc = CM_EDATA;
        }
        *complete &= x.complete;
        corpus_index_close(&x);
    }
    corpus_index_close(&first);
    return rc;
}

/*
** Make dst an empty corpus directory: create it, or (with force) remove the corpus files in it.
** Returns 0 or an exit status.
*/
static int merge_clear_dst(const char *dst, int force)
{
    struct stat sb;
    if (stat(dst, &sb) != 0) {
        if (mkdir(dst, 0777) == 0) return 0;
        error("cannot create directory '%s': %s", dst, strerror(errno));
        return CM_EIO;
    }
    if (!S_ISDIR(sb.st_mode)) return error("%s: exists and is not a directory", dst), CM_EUSAGE;
    DIR *d = opendir(dst);
    struct dirent *e;
    int has = 0;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "shard-", 6) && strncmp(e->d_name, "index.sqlite", 12)) continue;
        has = 1;
        if (force) {
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", dst, e->d_name);
            unlink(p);
        }
    }
    if (d) closedir(d);
    if (has && !force) {
        error("%s: already holds a corpus: use --force to replace it", dst);
        return CM_EUSAGE;
    }
    return 0;
}

/*
** Make dst a name of src's data: a hard link, else a symbolic link to its absolute path.
*/
static int link_shard(const char *src, const char *dst)
{
    if (link(src, dst) == 0) return 0;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return error("cannot link '%s' to '%s': %s", dst, src, strerror(errno));
    char abs[PATH_MAX];
    if (!realpath(src, abs)) return error("cannot resolve '%s': %s", src, strerror(errno));
    if (symlink(abs, dst)) return error("cannot link '%s' to '%s': %s", dst, abs, strerror(errno));
    return 0;
}

/*
** Link the shard files of the attached source `src` under their new numbers; *nsh: the
** source's shard count (max id + 1). Returns 0 or -1 (reported).
*/
static int merge_link_shards(Merger *mg, const char *src, const char *sp, uint64_t *nsh)
{
    sqlite3_stmt *sh = NULL;
    if (sqlite3_prepare_v2(mg->db, "SELECT id, file FROM src.shards ORDER BY id", -1, &sh, NULL) !=
        SQLITE_OK)
        return error("%s: %s", sp, index_error(mg->db));
    int rc = 0;
    *nsh = 0;
    while (rc == 0 && sqlite3_step(sh) == SQLITE_ROW) {
        char from[4200], to[4200], name[64];
        uint64_t id = (uint64_t)sqlite3_column_int64(sh, 0);
        snprintf(from, sizeof from, "%s/%s", src, sqlite3_column_text(sh, 1));
        shard_file_name(name, sizeof name, mg->shard_off + id);
        snprintf(to, sizeof to, "%s/%s", mg->dst, name);
        rc = link_shard(from, to);
        *nsh = id + 1;
    }
    sqlite3_finalize(sh);
    return rc;
}

/*
** Copy the --split-from pins of the attached source (those of the merged corpus's unit kind; a
** unit pinned 'valid' by any source stays valid). Returns 0 or -1 (reported).
*/
static int merge_copy_pins(Merger *mg, const char *sp)
{
    int has = index_has_column(mg->db, "src", "split_pins", "unit");
    if (has < 0) return error("%s: %s", sp, index_error(mg->db));
    if (!has) return 0;
    char *sql = sqlite3_mprintf(SPLIT_PINS_SQL
                                "INSERT INTO split_pins(split_by, unit, split) SELECT split_by, "
                                "unit, split FROM src.split_pins WHERE split_by = %Q "
                                "ON CONFLICT(split_by, unit) DO UPDATE SET split = 'valid' "
                                "WHERE excluded.split = 'valid'",
                                split_by_name(mg->split_by));
    int bad = index_exec(mg->db, sql, mg->ipath);
    sqlite3_free(sql);
    return bad ? -1 : 0;
}

/*
** Copy the rows of the attached source with shifted ids and advance doc_off. Returns 0 or -1.
*/
static int merge_copy_rows(Merger *mg, const char *sp)
{
    unsigned long long so = mg->shard_off, dof = mg->doc_off;
    /* a source of index version 1 or 2 has no prompt lengths: its documents are plain */
    int has_np = index_has_column(mg->db, "src", "documents", "n_prompt");
    if (has_np < 0) return error("%s: %s", sp, index_error(mg->db));
    char *sql = sqlite3_mprintf(
        "INSERT INTO shards SELECT id + %llu, printf('shard-%%05d.bin', id + %llu), tokens, "
        "documents, bytes, checksum, first_document + %llu FROM src.shards;"
        "INSERT INTO documents SELECT id + %llu, shard + %llu, token_offset, n_tokens, "
        "n_bytes, repo_name, path, license, imports, content_hash, split, extra, %s "
        "FROM src.documents;"
        "INSERT INTO document_imports(document, module) SELECT document + %llu, module "
        "FROM src.document_imports ORDER BY rowid;",
        so, so, dof, dof, so, has_np ? "n_prompt" : "0", dof);
    int bad = index_exec(mg->db, sql, mg->ipath);
    sqlite3_free(sql);
    if (bad || merge_copy_pins(mg, sp)) return -1;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(mg->db, "SELECT COALESCE(MAX(id) + 1, 0) FROM src.documents", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        error("%s: %s", sp, index_error(mg->db));
        sqlite3_finalize(q);
        return -1;
    }
    mg->doc_off += (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return 0;
}

/*
** Merge one source: attach its index, (the first one) copy its corpus row, link its shards and
** copy its rows in one transaction, detach. Returns 0 or -1 (reported).
*/
static int merge_source(Merger *mg, const char *src, int is_first, const char *cmdline)
{
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/%s", src, INDEX_NAME);
    char *sql = sqlite3_mprintf("ATTACH %Q AS src", sp);
    int bad = index_exec(mg->db, sql, mg->ipath);
    sqlite3_free(sql);
    if (bad) return -1;
    if (is_first) {
        sql = sqlite3_mprintf(
            "INSERT INTO corpus(format_version, tokenizer_fingerprint, tokenizer_json, "
            "vocab_size, eot_id, dtype, shard_tokens, valid_fraction, split_seed, created_by, "
            "codemill_version, created_at, complete, split_by) SELECT %d, tokenizer_fingerprint, "
            "tokenizer_json, vocab_size, eot_id, dtype, shard_tokens, valid_fraction, "
            "split_seed, %Q, %Q, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ','now'), 0, %Q FROM src.corpus",
            INDEX_VERSION, cmdline ? cmdline : "cm-shards merge", CM_VERSION,
            split_by_name(mg->split_by));
        bad = index_exec(mg->db, sql, mg->ipath);
        sqlite3_free(sql);
        if (bad || index_exec(mg->db, "COMMIT", mg->ipath)) return -1;
    }
    uint64_t nsh = 0;
    if (index_exec(mg->db, "BEGIN", mg->ipath) || merge_link_shards(mg, src, sp, &nsh) ||
        merge_copy_rows(mg, sp))
        return -1;
    mg->shard_off += nsh;
    if (index_exec(mg->db, "COMMIT", mg->ipath) || index_exec(mg->db, "DETACH src", mg->ipath))
        return -1;
    return 0;
}

/*
** Create the new index with its schema, in an open transaction (DETACH is not allowed inside
** one: each source then gets its own). Returns 0 or an exit status.
*/
static int merge_open_index(Merger *mg)
{
    snprintf(mg->ipath, sizeof mg->ipath, "%s/%s", mg->dst, INDEX_NAME);
    if (sqlite3_open_v2(mg->ipath, &mg->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        error("%s: cannot open: %s", mg->ipath, index_error(mg->db));
        return CM_EIO;
    }
    if (index_exec(mg->db,
                   "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; "
                   "PRAGMA synchronous = NORMAL; "
                   "PRAGMA cache_size = -65536; BEGIN",
                   mg->ipath) ||
        index_exec(mg->db, index_sql_schema, mg->ipath))
        return CM_EIO;
    return 0;
}

/*
** The secondary indexes, the complete flag, a rollback-journal file again, the directory
** synced. Returns 0 or -1 (reported).
*/
static int merge_finish(Merger *mg, int complete)
{
    /* the sources' splits were made apart: one split of the whole (split.c), so that no
    ** repository is in both */
    if (index_exec(mg->db, "BEGIN", mg->ipath) ||
        split_assign(mg->db, mg->ipath, mg->valid_fraction, mg->split_seed, mg->split_by, 0) ||
        index_exec(mg->db, "COMMIT", mg->ipath))
        return -1;
    char *sql = sqlite3_mprintf("UPDATE corpus SET complete = %d", complete);
    int bad = index_exec(mg->db, index_sql_indexes, mg->ipath) ||
        index_exec(mg->db, sql, mg->ipath) ||
        index_exec(mg->db, "PRAGMA journal_mode = DELETE", mg->ipath);
    sqlite3_free(sql);
    if (bad) return -1;
    if (fsync_dir(mg->dst))
        return error("cannot sync directory '%s': %s", mg->dst, strerror(errno));
    return 0;
}

int merge_run(const char *dst, const char *const *srcs, int nsrc, int force, const char *cmdline)
{
    int complete = 0;
    Merger mg;
    memset(&mg, 0, sizeof mg);
    int rc = merge_check_sources(srcs, nsrc, &complete, &mg);
    if (!rc) rc = merge_clear_dst(dst, force);
    if (rc) return rc;
    mg.dst = dst;
    rc = merge_open_index(&mg);
    for (int i = 0; i < nsrc && !rc; i++) {
        if (cm_stopping()) {
            error("interrupted: %s holds the first %d of the %d corpora (complete = 0)", dst, i,
                  nsrc);
            rc = CM_EINTR;
        } else if (merge_source(&mg, srcs[i], i == 0, cmdline)) {
            rc = CM_EIO;
        }
    }
    if (!rc && merge_finish(&mg, complete)) rc = CM_EIO;
    sqlite3_close(mg.db);
    return rc;
}
