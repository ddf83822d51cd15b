// SPDX-License-Identifier: MIT
/*
** tools.c: the inspecting verbs of cm-shards: verify, stats, cat, merge, split (see shards.h).
*/
#include "shards.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "corpus.h"        // defines: corpus_open, corpus_read_tokens
#include "cli.h"         // defines: CM_VERSION
#include "hash.h"          // defines: hash64, hash_hex
#include "io.h"            // defines: Out, Progress
#include "json.h"          // defines: json_escape_out
#include "shard.h"         // defines: ShardHeader, index_sql_schema
#include "tokenize/bpe.h"  // defines: bpe_load_mem, bpe_decode
#include "util.h"          // defines: error, Buf

/* What every verb reads from the corpus row. */
typedef struct {
    char ipath[4200];        /* DIR/index.sqlite */
    sqlite3 *db;             /* the open index */
    uint64_t fingerprint;    /* tokenizer fingerprint */
    uint32_t vocab_size;     /* vocabulary size */
    uint32_t eot_id;         /* end-of-text id */
    uint32_t dtype;          /* 2 or 4 */
    double valid_fraction;   /* split share */
    uint64_t split_seed;     /* split seed */
    int complete;            /* the pack finished */
} Index;

/*
** Open DIR/index.sqlite (read-only unless rw) and read the corpus row. Returns 0, or an exit
** status after a message.
*/
static int index_open(Index *x, const char *dir, int rw)
{
    memset(x, 0, sizeof *x);
    snprintf(x->ipath, sizeof x->ipath, "%s/%s", dir, INDEX_NAME);
    if (access(x->ipath, F_OK)) {
        error("%s: cannot open: %s (is '%s' a corpus made by cm-shards pack?)", x->ipath,
              strerror(errno), dir);
        return CM_EIO;
    }
    if ((rw ? sqlite3_open_v2(x->ipath, &x->db, SQLITE_OPEN_READWRITE, NULL) :
              index_open_read(x->ipath, &x->db)) != SQLITE_OK) {
        error("%s: cannot open: %s", x->ipath, index_error(x->db));
        return CM_EIO;
    }
    sqlite3_busy_timeout(x->db, 5000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, "SELECT format_version, tokenizer_fingerprint, vocab_size, "
                           "eot_id, dtype, valid_fraction, split_seed, complete FROM corpus",
                           -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        error("%s: not a codemill corpus index: %s", x->ipath, index_error(x->db));
        sqlite3_finalize(st);
        return CM_EFORMAT;
    }
    int ver = sqlite3_column_int(st, 0);
    int bad = index_parse_hex64((const char *)sqlite3_column_text(st, 1), &x->fingerprint) ||
              index_parse_hex64((const char *)sqlite3_column_text(st, 6), &x->split_seed);
    x->vocab_size = (uint32_t)sqlite3_column_int64(st, 2);
    x->eot_id = (uint32_t)sqlite3_column_int64(st, 3);
    x->dtype = (uint32_t)sqlite3_column_int(st, 4);
    x->valid_fraction = sqlite3_column_double(st, 5);
    x->complete = sqlite3_column_int(st, 7);
    sqlite3_finalize(st);
    if (ver != INDEX_VERSION) {
        error("%s: index format version %d is not supported (this build reads %d)", x->ipath,
              ver, INDEX_VERSION);
        return CM_EFORMAT;
    }
    if (bad || (x->dtype != 2 && x->dtype != 4)) {
        error("%s: damaged corpus row", x->ipath);
        return CM_EFORMAT;
    }
    return 0;
}

static void index_close(Index *x)
{
    if (x->db) sqlite3_close(x->db);
    x->db = NULL;
}

// ----------------------------------------------------------------------------
// verify

/*
** Check one shard file against its row and its documents' rows. Returns the number of problems
** (each reported on stderr).
*/
static int verify_shard(Index *x, const char *dir, sqlite3_stmt *docs, int64_t id,
                        const char *file, uint64_t tokens, uint64_t ndocs, uint64_t bytes,
                        const char *checksum, int64_t first)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int bad = 0;
    uint64_t want = SHARD_PAYLOAD_OFFSET + tokens * x->dtype;
    if (bytes != want) {
        error("%s: index row says %llu bytes, but %llu tokens need %llu", path,
              (unsigned long long)bytes, (unsigned long long)tokens, (unsigned long long)want);
        bad++;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error("%s: cannot open: %s", path, strerror(errno));
        return bad + 1;
    }
    struct stat sb;
    if (fstat(fd, &sb) || (uint64_t)sb.st_size != want) {
        error("%s: %s: %llu bytes, the index says %llu", path,
              (uint64_t)sb.st_size < want ? "truncated" : "wrong size",
              (unsigned long long)sb.st_size, (unsigned long long)want);
        close(fd);
        return bad + 1;
    }
    unsigned char *map = mmap(NULL, (size_t)want, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        error("%s: cannot mmap: %s", path, strerror(errno));
        return bad + 1;
    }
    madvise(map, (size_t)want, MADV_SEQUENTIAL);
    ShardHeader h;
    char why[160], hex[17], got[17];
    if (shard_header_decode(&h, map, (size_t)want, why, sizeof why)) {
        error("%s: %s", path, why);
        bad++;
    } else {
        if (h.tokens != tokens) error("%s: header says %llu tokens, the index %llu", path,
                                      (unsigned long long)h.tokens, (unsigned long long)tokens), bad++;
        if (h.dtype != x->dtype) error("%s: header dtype %u, the index %u", path, h.dtype,
                                       x->dtype), bad++;
        if (h.fingerprint != x->fingerprint)
            error("%s: made with another tokenizer than the index's", path), bad++;
        if (h.eot_id != x->eot_id || h.vocab_size != x->vocab_size)
            error("%s: header eot id/vocabulary %u/%u, the index %u/%u", path, h.eot_id,
                  h.vocab_size, x->eot_id, x->vocab_size), bad++;
        if (h.documents != ndocs) error("%s: header says %llu documents, the index %llu", path,
                                        (unsigned long long)h.documents,
                                        (unsigned long long)ndocs), bad++;
    }
    uint64_t sum = hash64(map + SHARD_PAYLOAD_OFFSET, (size_t)(want - SHARD_PAYLOAD_OFFSET));
    hash_hex(sum, got);
    if (!checksum || strcmp(got, checksum)) {
        error("%s: payload checksum mismatch: the index says %s, the data hashes to %s", path,
              checksum ? checksum : "nothing", got);
        bad++;
    }
    if (bad == 0 && h.checksum != sum) {
        hash_hex(h.checksum, hex);
        error("%s: payload checksum mismatch: the header says %s, the data hashes to %s", path,
              hex, got);
        bad++;
    }
    /* documents: ids first.., contiguous from token 0, each ending with the eot id, covering
    ** every token (a pack writes a shard's documents in id order) */
    sqlite3_bind_int64(docs, 1, first);
    sqlite3_bind_int64(docs, 2, (sqlite3_int64)ndocs);
    uint64_t pos = 0, count = 0;
    int rc, doc_bad = 0;
    const unsigned char *pay = map + SHARD_PAYLOAD_OFFSET;
    while ((rc = sqlite3_step(docs)) == SQLITE_ROW) {
        int64_t did = sqlite3_column_int64(docs, 0);
        uint64_t off = (uint64_t)sqlite3_column_int64(docs, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(docs, 2);
        count++;
        if (doc_bad >= 10) continue;
        if (sqlite3_column_int64(docs, 3) != id) {
            error("%s: document %lld lies in this shard's id range but its row names shard %lld",
                  path, (long long)did, (long long)sqlite3_column_int64(docs, 3));
            doc_bad++;
        } else if (off != pos || n == 0 || off + n > tokens) {
            error("%s: document %lld: tokens [%llu, +%llu) %s", path, (long long)did,
                  (unsigned long long)off, (unsigned long long)n,
                  off + n > tokens ? "lie outside the shard" : off != pos ?
                  "do not follow the previous document" : "are empty");
            doc_bad++;
        } else {
            uint64_t last = off + n - 1;
            uint32_t t;
            shard_tokens_get(pay, x->dtype, last, 1, &t);
            if (t != x->eot_id) {
                error("%s: document %lld does not end with the end-of-text id (%u, found %u)",
                      path, (long long)did, x->eot_id, t);
                doc_bad++;
            }
        }
        pos = off + n;
    }
    sqlite3_reset(docs);
    if (rc != SQLITE_DONE) error("%s: %s", x->ipath, index_error(x->db)), bad++;
    if (count != ndocs) error("%s: the shards row says %llu documents, the documents table "
                              "holds %llu", path, (unsigned long long)ndocs,
                              (unsigned long long)count), doc_bad++;
    else if (pos != tokens && !doc_bad)
        error("%s: documents cover %llu of its %llu tokens", path, (unsigned long long)pos,
              (unsigned long long)tokens), doc_bad++;
    munmap(map, (size_t)want);
    return bad + doc_bad;
}

int verify_run(const char *dir, int progress)
{
    Index x;
    int rc = index_open(&x, dir, 0);
    if (rc) { index_close(&x); return rc; }
    sqlite3_stmt *sh = NULL, *docs = NULL, *q = NULL;
    int bad = 0;
    uint64_t nshards = 0, ndocs = 0, ntokens = 0;
    Progress prog;
    progress_init(&prog, progress);
    if (sqlite3_prepare_v2(x.db, "SELECT id, file, tokens, documents, bytes, checksum, "
                           "first_document FROM shards ORDER BY id", -1, &sh, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(x.db, "SELECT id, token_offset, n_tokens, shard FROM documents "
                           "WHERE id >= ?1 AND id < ?1 + ?2 ORDER BY id", -1, &docs, NULL)
            != SQLITE_OK) {
        error("%s: %s", x.ipath, index_error(x.db));
        bad++;
        goto out;
    }
    while ((rc = sqlite3_step(sh)) == SQLITE_ROW) {
        const char *file = (const char *)sqlite3_column_text(sh, 1);
        if (!file || strchr(file, '/')) {
            error("%s: shard %lld: bad file name", x.ipath, (long long)sqlite3_column_int64(sh, 0));
            bad++;
            continue;
        }
        progress_update(&prog, "verifying %s", file);
        uint64_t t = (uint64_t)sqlite3_column_int64(sh, 2), d = (uint64_t)sqlite3_column_int64(sh, 3);
        bad += verify_shard(&x, dir, docs, sqlite3_column_int64(sh, 0), file, t, d,
                            (uint64_t)sqlite3_column_int64(sh, 4),
                            (const char *)sqlite3_column_text(sh, 5),
                            sqlite3_column_int64(sh, 6));
        nshards++;
        ndocs += d;
        ntokens += t;
    }
    if (rc != SQLITE_DONE) error("%s: %s", x.ipath, index_error(x.db)), bad++;
    progress_end(&prog);
    if (sqlite3_prepare_v2(x.db, "SELECT COUNT(*) FROM documents WHERE shard NOT IN "
                           "(SELECT id FROM shards)", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > 0) {
        error("%s: %lld documents point at shards the index does not list", x.ipath,
              (long long)sqlite3_column_int64(q, 0));
        bad++;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(x.db, "SELECT COUNT(*) FROM documents", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) != ndocs) {
        error("%s: the documents table holds %lld rows, the shards %llu documents", x.ipath,
              (long long)sqlite3_column_int64(q, 0), (unsigned long long)ndocs);
        bad++;
    }
    if (!x.complete)
        warn("%s: the pack did not finish (cm-shards pack --resume with the same input "
             "completes it)", dir);
out:
    sqlite3_finalize(sh);
    sqlite3_finalize(docs);
    sqlite3_finalize(q);
    index_close(&x);
    if (bad) {
        error("%s: unsound: %d problem%s", dir, bad, bad == 1 ? "" : "s");
        return CM_EFORMAT;
    }
    printf("%s: sound: %llu shards, %llu documents, %llu tokens%s\n", dir,
           (unsigned long long)nshards, (unsigned long long)ndocs, (unsigned long long)ntokens,
           x.complete ? "" : " (incomplete pack)");
    return CM_OK;
}

// ----------------------------------------------------------------------------
// stats

int stats_run(const char *dir, int json)
{
    Index x;
    int rc = index_open(&x, dir, 0);
    if (rc) { index_close(&x); return rc; }
    sqlite3_stmt *sp = NULL, *sh = NULL;
    if (sqlite3_prepare_v2(x.db, "SELECT split, COUNT(*), COUNT(DISTINCT repo_name), "
                           "TOTAL(n_tokens), TOTAL(n_bytes) FROM documents GROUP BY split "
                           "ORDER BY split", -1, &sp, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(x.db, "SELECT id, file, documents, tokens, bytes FROM shards "
                           "ORDER BY id", -1, &sh, NULL) != SQLITE_OK) {
        error("%s: %s", x.ipath, index_error(x.db));
        rc = CM_EFORMAT;
        goto out;
    }
    double td = 0, tt = 0, tb = 0;
    if (json) {
        Buf name = {0};
        json_escape(&name, dir, strlen(dir));
        printf("{\"corpus\":%s", name.buf);
        buf_free(&name);
        printf(",\"complete\":%s,\"vocab_size\":%u,\"dtype\":%u,\"splits\":{",
               x.complete ? "true" : "false", x.vocab_size, x.dtype);
        int first = 1;
        while (sqlite3_step(sp) == SQLITE_ROW) {
            double d = sqlite3_column_double(sp, 1), t = sqlite3_column_double(sp, 3),
                   b = sqlite3_column_double(sp, 4);
            printf("%s\"%s\":{\"documents\":%.0f,\"repos\":%lld,\"tokens\":%.0f,\"bytes\":%.0f}",
                   first ? "" : ",", sqlite3_column_text(sp, 0), d,
                   (long long)sqlite3_column_int64(sp, 2), t, b);
            first = 0;
            td += d, tt += t, tb += b;
        }
        printf("},\"documents\":%.0f,\"tokens\":%.0f,\"bytes\":%.0f,\"shards\":[", td, tt, tb);
        first = 1;
        while (sqlite3_step(sh) == SQLITE_ROW) {
            printf("%s{\"id\":%lld,\"file\":\"%s\",\"documents\":%lld,\"tokens\":%lld,"
                   "\"bytes\":%lld}", first ? "" : ",", (long long)sqlite3_column_int64(sh, 0),
                   sqlite3_column_text(sh, 1), (long long)sqlite3_column_int64(sh, 2),
                   (long long)sqlite3_column_int64(sh, 3), (long long)sqlite3_column_int64(sh, 4));
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("%-8s %12s %8s %15s %15s\n", "split", "documents", "repos", "tokens", "bytes");
        while (sqlite3_step(sp) == SQLITE_ROW) {
            double d = sqlite3_column_double(sp, 1), t = sqlite3_column_double(sp, 3),
                   b = sqlite3_column_double(sp, 4);
            printf("%-8s %12.0f %8lld %15.0f %15.0f\n", sqlite3_column_text(sp, 0), d,
                   (long long)sqlite3_column_int64(sp, 2), t, b);
            td += d, tt += t, tb += b;
        }
        printf("%-8s %12.0f %8s %15.0f %15.0f\n\n", "total", td, "", tt, tb);
        printf("%-5s %-18s %12s %15s %15s\n", "shard", "file", "documents", "tokens", "bytes");
        while (sqlite3_step(sh) == SQLITE_ROW)
            printf("%-5lld %-18s %12lld %15lld %15lld\n", (long long)sqlite3_column_int64(sh, 0),
                   sqlite3_column_text(sh, 1), (long long)sqlite3_column_int64(sh, 2),
                   (long long)sqlite3_column_int64(sh, 3), (long long)sqlite3_column_int64(sh, 4));
        if (!x.complete) printf("\n(incomplete: the pack did not finish)\n");
    }
out:
    sqlite3_finalize(sp);
    sqlite3_finalize(sh);
    index_close(&x);
    return rc;
}

// ----------------------------------------------------------------------------
// cat

/*
** Write a JSON string member "key":"value" (value NULL: nothing written).
*/
static void put_str(Out *o, int *first, const char *key, const unsigned char *v, int n)
{
    if (!v) return;
    out_puts(o, *first ? "{\"" : ",\"");
    *first = 0;
    out_puts(o, key);
    out_puts(o, "\":");
    json_escape_out(o, (const char *)v, (size_t)n);
}

int cat_run(const char *dir, const char *where, int64_t limit, int ids_only)
{
    char err[512];
    Corpus *c = corpus_open(dir, err, sizeof err);
    if (!c) {
        error("%s", err);
        return CM_EFORMAT;
    }
    int rc = CM_OK;
    Bpe *bpe = NULL;
    sqlite3_stmt *st = NULL;
    uint32_t *ids = NULL;
    size_t cap = 0;
    Buf text = {0}, fixed = {0};
    Out o;
    out_init(&o, 1, "stdout", 0);
    if (!ids_only) {
        size_t jl;
        const char *js = corpus_tokenizer_json(c, &jl);
        bpe = bpe_load_mem(js, jl, "the tokenizer stored in the index", err, sizeof err);
        if (!bpe) {
            error("%s/%s: %s (use --ids to see the token ids)", dir, INDEX_NAME, err);
            rc = CM_EFORMAT;
            goto out;
        }
    }
    Buf sql = {0};
    buf_adds(&sql, "SELECT id, shard, token_offset, n_tokens, n_bytes, repo_name, path, license,"
                   " imports, split, extra FROM documents");
    if (where && *where) {
        buf_adds(&sql, " WHERE (");
        buf_adds(&sql, where);
        buf_adds(&sql, "\n)");
    }
    buf_adds(&sql, " ORDER BY id LIMIT ?");
    sqlite3 *db = corpus_index(c);
    if (sqlite3_prepare_v2(db, sql.buf, -1, &st, NULL) != SQLITE_OK) {
        error("--where '%s': %s", where ? where : "", index_error(db));
        buf_free(&sql);
        rc = CM_EUSAGE;
        goto out;
    }
    buf_free(&sql);
    sqlite3_bind_int64(st, 1, limit);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 3);
        if (n > cap) { cap = n; ids = xrealloc(ids, cap * sizeof *ids); }
        if (corpus_read_tokens(c, (uint32_t)sqlite3_column_int64(st, 1),
                               (uint64_t)sqlite3_column_int64(st, 2), n, ids)) {
            error("%s: document %lld points outside its shard (run cm-shards verify)", dir,
                  (long long)id);
            rc = CM_EFORMAT;
            break;
        }
        if (n && ids[n - 1] == corpus_eot_id(c)) n--; /* the closing end-of-text */
        int first = 1;
        put_str(&o, &first, "repo_name", sqlite3_column_text(st, 5), sqlite3_column_bytes(st, 5));
        put_str(&o, &first, "path", sqlite3_column_text(st, 6), sqlite3_column_bytes(st, 6));
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            char num[40];
            snprintf(num, sizeof num, "%s\"size\":%lld", first ? "{" : ",",
                     (long long)sqlite3_column_int64(st, 4));
            out_puts(&o, num);
            first = 0;
        }
        put_str(&o, &first, "license", sqlite3_column_text(st, 7), sqlite3_column_bytes(st, 7));
        if (ids_only) {
            out_puts(&o, first ? "{\"ids\":[" : ",\"ids\":[");
            first = 0;
            for (uint64_t i = 0; i < n; i++) {
                char num[16];
                int k = snprintf(num, sizeof num, i ? ",%u" : "%u", ids[i]);
                out_write(&o, num, (size_t)k);
            }
            out_putc(&o, ']');
        } else {
            buf_reset(&text);
            if (bpe_decode(bpe, ids, (size_t)n, &text)) {
                error("%s: document %lld: a token id is outside the stored tokenizer", dir,
                      (long long)id);
                rc = CM_EFORMAT;
                break;
            }
            const Buf *t = &text;
            if (utf8_valid_prefix((const unsigned char *)text.buf, text.len) != text.len) {
                buf_reset(&fixed);
                utf8_repair((const unsigned char *)text.buf, text.len, &fixed);
                t = &fixed;
            }
            put_str(&o, &first, "content", (const unsigned char *)(t->buf ? t->buf : ""),
                    (int)t->len);
        }
        if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
            out_puts(&o, ",\"imports\":");
            out_write(&o, sqlite3_column_text(st, 8), (size_t)sqlite3_column_bytes(st, 8));
        }
        const char *extra = (const char *)sqlite3_column_text(st, 10);
        int el = sqlite3_column_bytes(st, 10);
        if (extra && el > 2 && extra[0] == '{') {
            out_putc(&o, ',');
            out_write(&o, extra + 1, (size_t)el - 2);
        }
        out_puts(&o, "}\n");
    }
    if (r != SQLITE_DONE && rc == CM_OK) {
        error("--where '%s': %s", where ? where : "", index_error(db));
        rc = CM_EUSAGE;
    }
out:
    out_done(&o);
    sqlite3_finalize(st);
    bpe_free(bpe);
    free(ids);
    buf_free(&text);
    buf_free(&fixed);
    corpus_close(c);
    return rc;
}

// ----------------------------------------------------------------------------
// merge

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

int merge_run(const char *dst, const char *const *srcs, int nsrc, int force,
              const char *cmdline)
{
    Index first;
    int rc = index_open(&first, srcs[0], 0);
    if (rc) { index_close(&first); return rc; }
    int complete = first.complete;
    for (int i = 1; i < nsrc; i++) {
        Index x;
        rc = index_open(&x, srcs[i], 0);
        if (!rc && (x.fingerprint != first.fingerprint || x.dtype != first.dtype ||
                    x.vocab_size != first.vocab_size || x.eot_id != first.eot_id)) {
            error("%s: made with another tokenizer than %s: cannot merge", srcs[i], srcs[0]);
            rc = CM_EDATA;
        }
        if (!rc && (x.valid_fraction != first.valid_fraction || x.split_seed != first.split_seed)) {
            error("%s: packed with another --valid-fraction or --split-seed than %s: cannot merge "
                  "(use 'cm-shards split' on one of them first)", srcs[i], srcs[0]);
            rc = CM_EDATA;
        }
        complete &= x.complete;
        index_close(&x);
        if (rc) { index_close(&first); return rc; }
    }
    index_close(&first);

    struct stat sb;
    char ipath[4200];
    snprintf(ipath, sizeof ipath, "%s/%s", dst, INDEX_NAME);
    if (stat(dst, &sb) == 0) {
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
    } else if (mkdir(dst, 0777)) {
        error("cannot create directory '%s': %s", dst, strerror(errno));
        return CM_EIO;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(ipath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        error("%s: cannot open: %s", ipath, index_error(db));
        sqlite3_close(db);
        return CM_EIO;
    }
    rc = CM_EIO;
    sqlite3_stmt *sh = NULL, *q = NULL;
    /* one transaction per source (DETACH is not allowed inside a transaction); the corpus
    ** row says complete = 0 until every source is in */
    if (index_exec(db, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; "
                       "PRAGMA synchronous = NORMAL; "
                       "PRAGMA cache_size = -65536; BEGIN", ipath) ||
        index_exec(db, index_sql_schema, ipath))
        goto out;
    uint64_t shard_off = 0, doc_off = 0;
    char *sql = NULL;
    for (int i = 0; i < nsrc; i++) {
        char sp[4200];
        snprintf(sp, sizeof sp, "%s/%s", srcs[i], INDEX_NAME);
        sql = sqlite3_mprintf("ATTACH %Q AS src", sp);
        int bad = index_exec(db, sql, ipath);
        sqlite3_free(sql);
        if (bad) goto out;
        if (i == 0) {
            sql = sqlite3_mprintf(
                "INSERT INTO corpus SELECT format_version, tokenizer_fingerprint, "
                "tokenizer_json, vocab_size, eot_id, dtype, shard_tokens, valid_fraction, "
                "split_seed, %Q, %Q, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ','now'), 0 FROM src.corpus",
                cmdline ? cmdline : "cm-shards merge", CM_VERSION);
            bad = index_exec(db, sql, ipath);
            sqlite3_free(sql);
            if (bad || index_exec(db, "COMMIT", ipath)) goto out;
        }
        if (index_exec(db, "BEGIN", ipath)) goto out;
        if (sqlite3_prepare_v2(db, "SELECT id, file FROM src.shards ORDER BY id", -1, &sh, NULL)
            != SQLITE_OK) {
            error("%s: %s", sp, index_error(db));
            goto out;
        }
        uint64_t nsh = 0;
        while (sqlite3_step(sh) == SQLITE_ROW) {
            char from[4200], to[4200], name[64];
            snprintf(from, sizeof from, "%s/%s", srcs[i], sqlite3_column_text(sh, 1));
            shard_file_name(name, sizeof name, shard_off + (uint64_t)sqlite3_column_int64(sh, 0));
            snprintf(to, sizeof to, "%s/%s", dst, name);
            if (link_shard(from, to)) goto out;
            nsh = (uint64_t)sqlite3_column_int64(sh, 0) + 1;
        }
        sqlite3_finalize(sh);
        sh = NULL;
        sql = sqlite3_mprintf(
            "INSERT INTO shards SELECT id + %llu, printf('shard-%%05d.bin', id + %llu), tokens, "
            "documents, bytes, checksum, first_document + %llu FROM src.shards;"
            "INSERT INTO documents SELECT id + %llu, shard + %llu, token_offset, n_tokens, "
            "n_bytes, repo_name, path, license, imports, content_hash, split, extra "
            "FROM src.documents;"
            "INSERT INTO document_imports(document, module) SELECT document + %llu, module "
            "FROM src.document_imports ORDER BY rowid;",
            (unsigned long long)shard_off, (unsigned long long)shard_off,
            (unsigned long long)doc_off, (unsigned long long)doc_off,
            (unsigned long long)shard_off, (unsigned long long)doc_off);
        bad = index_exec(db, sql, ipath);
        sqlite3_free(sql);
        if (bad) goto out;
        if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(id) + 1, 0) FROM src.documents", -1, &q,
                               NULL) != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW) {
            error("%s: %s", sp, index_error(db));
            goto out;
        }
        doc_off += (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        q = NULL;
        shard_off += nsh;
        if (index_exec(db, "COMMIT", ipath) || index_exec(db, "DETACH src", ipath)) goto out;
    }
    sql = sqlite3_mprintf("UPDATE corpus SET complete = %d", complete);
    int bad = index_exec(db, index_sql_indexes, ipath) || index_exec(db, sql, ipath) ||
              index_exec(db, "PRAGMA journal_mode = DELETE", ipath);
    sqlite3_free(sql);
    if (bad) goto out;
    if (fsync_dir(dst)) {
        error("cannot sync directory '%s': %s", dst, strerror(errno));
        goto out;
    }
    rc = CM_OK;
out:
    sqlite3_finalize(sh);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

// ----------------------------------------------------------------------------
// split

static double g_split_fraction;
static uint64_t g_split_seed;

/*
** SQL function cm_split(repo_name): 'valid' or 'train'.
*/
static void sql_split(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    int v = split_is_valid(s ? s : "", s ? (size_t)n : 0, g_split_fraction, g_split_seed);
    sqlite3_result_text(ctx, v ? "valid" : "train", 5, SQLITE_STATIC);
}

int split_run(const char *dir, double valid_fraction, uint64_t seed, int have_seed)
{
    Index x;
    int rc = index_open(&x, dir, 1);
    if (rc) { index_close(&x); return rc; }
    g_split_fraction = valid_fraction;
    g_split_seed = have_seed ? seed : x.split_seed;
    char hex[17];
    hash_hex(g_split_seed, hex);
    sqlite3_create_function(x.db, "cm_split", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            sql_split, NULL, NULL);
    char *sql = sqlite3_mprintf("BEGIN; UPDATE documents SET split = cm_split(repo_name); "
                                "UPDATE corpus SET valid_fraction = %.17g, split_seed = %Q; COMMIT",
                                valid_fraction, hex);
    rc = index_exec(x.db, sql, x.ipath) ? CM_EIO : CM_OK;
    if (rc) sqlite3_exec(x.db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_free(sql);
    index_close(&x);
    return rc;
}
