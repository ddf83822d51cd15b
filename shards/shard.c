// SPDX-License-Identifier: MIT
/*
** shard.c: shard header encoding and checking, and the index.sqlite schema (see shard.h).
*/
#include "shard.h"

#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hash.h" // defines: hash64
#include "le.h"   // defines: le_get32, le_get64, le_put32, le_put64
#include "util.h" // defines: error

// ----------------------------------------------------------------------------
// shard header

/*
** Write the header fields of h into out[0..SHARD_HEADER_BYTES), reserved bytes zeroed and the
** header checksum in the last 8 bytes.
*/
void shard_header_encode(const ShardHeader *h, unsigned char *out)
{
    memset(out, 0, SHARD_HEADER_BYTES);
    memcpy(out, SHARD_MAGIC, 8);
    le_put32(out + 8, SHARD_VERSION);
    le_put32(out + 12, h->dtype);
    le_put64(out + 16, h->tokens);
    le_put64(out + 24, h->fingerprint);
    le_put64(out + 32, h->checksum);
    le_put32(out + 40, h->eot_id);
    le_put32(out + 44, h->vocab_size);
    le_put64(out + 48, h->documents);
    le_put64(out + 56, SHARD_PAYLOAD_OFFSET);
    le_put64(out + 248, hash64(out, 248));
}

/*
** Parse a shard header from buf[0..n). Checks the magic, the header checksum, the version and
** the dtype. Returns 0, or -1 with the reason in err.
*/
int shard_header_decode(ShardHeader *h, const unsigned char *buf, size_t n, char *err,
                        size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (n < SHARD_HEADER_BYTES) {
        snprintf(err, errlen, "truncated: %zu bytes, shorter than the %d-byte header", n,
                 SHARD_HEADER_BYTES);
        return -1;
    }
    if (memcmp(buf, SHARD_MAGIC, 8)) {
        snprintf(err, errlen, "not a codemill shard (bad magic)");
        return -1;
    }
    if (le_get64(buf + 248) != hash64(buf, 248)) {
        snprintf(err, errlen, "header checksum mismatch (damaged header)");
        return -1;
    }
    h->version = le_get32(buf + 8);
    if (h->version != SHARD_VERSION) {
        snprintf(err, errlen, "shard format version %u is not supported (this build reads %d)",
                 h->version, SHARD_VERSION);
        return -1;
    }
    h->dtype = le_get32(buf + 12);
    h->tokens = le_get64(buf + 16);
    h->fingerprint = le_get64(buf + 24);
    h->checksum = le_get64(buf + 32);
    h->eot_id = le_get32(buf + 40);
    h->vocab_size = le_get32(buf + 44);
    h->documents = le_get64(buf + 48);
    h->payload_offset = le_get64(buf + 56);
    if (h->dtype != 2 && h->dtype != 4) {
        snprintf(err, errlen, "bad dtype %u (want 2 or 4 bytes per token)", h->dtype);
        return -1;
    }
    if (h->payload_offset != SHARD_PAYLOAD_OFFSET) {
        snprintf(err, errlen, "bad payload offset %llu", (unsigned long long)h->payload_offset);
        return -1;
    }
    return 0;
}

/*
** Bytes per stored token for a vocabulary of vocab_size ids.
*/
uint32_t shard_dtype_for_vocab(uint32_t vocab_size)
{
    return vocab_size <= 65536 ? 2 : 4;
}

/*
** The file name of shard number id.
*/
void shard_file_name(char *out, size_t n, uint64_t id)
{
    snprintf(out, n, "shard-%05llu.bin", (unsigned long long)id);
}

// ----------------------------------------------------------------------------
// index.sqlite schema v3 (documented in docs/FORMATS.md "SQLite index")

/* Instruction examples (documents with a prompt), their prompt and response lengths. */
#define INDEX_SQL_EXAMPLES_VIEW \
    "CREATE VIEW IF NOT EXISTS examples AS\n" \
    "  SELECT id AS document, repo_name, path, split, n_prompt,\n" \
    "         n_tokens - n_prompt AS n_response, n_tokens FROM documents WHERE n_prompt > 0;\n"

const char index_sql_schema[] =
    "PRAGMA user_version = 3;\n"
    "CREATE TABLE corpus(\n"
    "  format_version INTEGER NOT NULL,       -- schema version: 3 (2: no n_prompt; 1: no split_by)\n"
    "  tokenizer_fingerprint TEXT NOT NULL,   -- XXH3-64 of tokenizer_json, 16 hex digits\n"
    "  tokenizer_json TEXT NOT NULL,          -- the tokenizer.json the tokens come from\n"
    "  vocab_size INTEGER NOT NULL,\n"
    "  eot_id INTEGER NOT NULL,               -- end-of-text id closing every document\n"
    "  dtype INTEGER NOT NULL,                -- bytes per token in the shards: 2 or 4\n"
    "  shard_tokens INTEGER NOT NULL,         -- target tokens per shard (--shard-tokens)\n"
    "  valid_fraction REAL NOT NULL,          -- --valid-fraction\n"
    "  split_seed TEXT NOT NULL,              -- seed of the split hash, 16 hex digits\n"
    "  created_by TEXT NOT NULL,              -- the command line\n"
    "  codemill_version TEXT NOT NULL,\n"
    "  created_at TEXT NOT NULL,              -- UTC, ISO 8601\n"
    "  complete INTEGER NOT NULL DEFAULT 0,   -- 1 once the whole input was packed\n"
    "  split_by TEXT NOT NULL DEFAULT 'repo'  -- unit of the split: 'repo' or 'path'\n"
    ");\n"
    "CREATE TABLE shards(\n"
    "  id INTEGER PRIMARY KEY,                -- 0, 1, ...\n"
    "  file TEXT NOT NULL UNIQUE,             -- name inside the corpus directory\n"
    "  tokens INTEGER NOT NULL,\n"
    "  documents INTEGER NOT NULL,\n"
    "  bytes INTEGER NOT NULL,                -- file size, header included\n"
    "  checksum TEXT NOT NULL,                -- XXH3-64 of the payload, 16 hex digits\n"
    "  first_document INTEGER NOT NULL        -- documents.id of its first document\n"
    ");\n"
    "CREATE TABLE documents(\n"
    "  id INTEGER PRIMARY KEY,                -- position in the input stream, from 0\n"
    "  shard INTEGER NOT NULL,                -- shards.id\n"
    "  token_offset INTEGER NOT NULL,         -- first token, counted from the shard's payload\n"
    "  n_tokens INTEGER NOT NULL,             -- tokens, the closing end-of-text included\n"
    "  n_bytes INTEGER,                       -- bytes of content (meta n_bytes or size)\n"
    "  repo_name TEXT,\n"
    "  path TEXT,\n"
    "  license TEXT,\n"
    "  imports TEXT,                          -- JSON text as in the record, e.g. '[\"numpy\"]'\n"
    "  content_hash TEXT,\n"
    "  split TEXT NOT NULL,                   -- 'train' or 'valid'\n"
    "  extra TEXT,                            -- other meta fields as a JSON object, or NULL\n"
    "  n_prompt INTEGER NOT NULL DEFAULT 0    -- leading tokens that are prompt (0: plain)\n"
    ");\n"
    "CREATE TABLE document_imports(           -- one row per (importing document, module)\n"
    "  document INTEGER NOT NULL,             -- documents.id\n"
    "  module TEXT NOT NULL                   -- one entry of the imports list\n"
    ");\n"
    "CREATE VIEW tokens_per_repo AS\n"
    "  SELECT repo_name, split, COUNT(*) AS documents, SUM(n_tokens) AS tokens,\n"
    "         SUM(n_bytes) AS bytes FROM documents GROUP BY repo_name;\n"
    "CREATE VIEW tokens_per_module AS\n"
    "  SELECT i.module AS module, COUNT(*) AS documents, SUM(d.n_tokens) AS tokens,\n"
    "         SUM(d.n_bytes) AS bytes\n"
    "  FROM document_imports i JOIN documents d ON d.id = i.document GROUP BY i.module;\n"
    "CREATE VIEW tokens_per_split AS\n"
    "  SELECT split, COUNT(*) AS documents, COUNT(DISTINCT repo_name) AS repos,\n"
    "         SUM(n_tokens) AS tokens, SUM(n_bytes) AS bytes FROM documents GROUP BY split;\n"
    "CREATE VIEW largest_documents AS\n"
    "  SELECT d.id AS document, d.repo_name, d.path, d.n_tokens, d.n_bytes, s.file\n"
    "  FROM documents d JOIN shards s ON s.id = d.shard ORDER BY d.n_tokens DESC, d.id;\n"
    "CREATE VIEW document_location AS\n"
    "  SELECT d.path, d.repo_name, d.id AS document, s.file, d.token_offset, d.n_tokens\n"
    "  FROM documents d JOIN shards s ON s.id = d.shard;\n" INDEX_SQL_EXAMPLES_VIEW;

/* The sort of CREATE INDEX spills to temporary files with a small cache (measured on 2M
** documents: 0.65 s, against 1.2 s with temp_store = MEMORY and 0.9 s with a 64 MiB cache), and
** its memory stays bounded whatever the corpus size. */
const char index_sql_indexes[] = "PRAGMA temp_store = FILE; PRAGMA cache_size = -8000;\n"
                                 "CREATE INDEX IF NOT EXISTS documents_path ON documents(path);\n";

/*
** Does table (of the database `schema`, NULL: main) have that column? 1, 0, or -1.
*/
int index_has_column(sqlite3 *db, const char *schema, const char *table, const char *column)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM pragma_table_info(?1, ?3) WHERE name = ?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, schema ? schema : "main", -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) rc = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
** Bring an index of version 1 or 2 to version 3 in place (inside the caller's transaction, if
** any): the split_by column of the corpus row (v1), documents.n_prompt (0: the documents of an
** old corpus are plain), the examples view, the version numbers. 0, or -1 (reported).
*/
int index_upgrade(sqlite3 *db, const char *ipath)
{
    int has_by = index_has_column(db, NULL, "corpus", "split_by");
    int has_np = index_has_column(db, NULL, "documents", "n_prompt");
    if (has_by < 0 || has_np < 0) return error("%s: %s", ipath, index_error(db));
    if (!has_by &&
        index_exec(db, "ALTER TABLE corpus ADD COLUMN split_by TEXT NOT NULL DEFAULT 'repo'",
                   ipath))
        return -1;
    if (!has_np &&
        index_exec(db, "ALTER TABLE documents ADD COLUMN n_prompt INTEGER NOT NULL DEFAULT 0",
                   ipath))
        return -1;
    char sql[512];
    snprintf(sql, sizeof sql, "%sPRAGMA user_version = %d; UPDATE corpus SET format_version = %d",
             INDEX_SQL_EXAMPLES_VIEW, INDEX_VERSION, INDEX_VERSION);
    return index_exec(db, sql, ipath);
}

/*
** SQLite's message for msg plus the operating system's reason when there is one
** ("disk I/O error (File too large)"). The text lives in a static buffer.
*/
const char *index_error_with(sqlite3 *db, const char *msg)
{
    static char buf[600];
    int e = sqlite3_system_errno(db);
    int rc = sqlite3_extended_errcode(db);
    if (e &&
        ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL ||
         (rc & 0xff) == SQLITE_CANTOPEN))
        snprintf(buf, sizeof buf, "%s (%s)", msg, strerror(e));
    else if (rc == SQLITE_IOERR_WRITE || rc == SQLITE_IOERR_FSYNC || rc == SQLITE_FULL)
        snprintf(buf, sizeof buf, "%s (cannot write: disk full or file size limit?)", msg);
    else
        snprintf(buf, sizeof buf, "%s", msg);
    return buf;
}

const char *index_error(sqlite3 *db)
{
    return index_error_with(db, sqlite3_errmsg(db));
}

/*
** Open an index for reading. When the file and its directory are writable the connection is
** read-write with `PRAGMA query_only`, so that SQLite can roll back a hot journal or recover
** the WAL left by a killed writer (a read-only connection cannot, and fails with "attempt to
** write a readonly database"); otherwise it is read-only. Returns an SQLite result code; *db is
** set either way (close it).
*/
int index_open_read(const char *path, sqlite3 **db)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int writable = access(path, W_OK) == 0 && access(dir, W_OK) == 0;
    int rc = sqlite3_open_v2(path, db, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                             NULL);
    if (rc == SQLITE_OK && writable)
        rc = sqlite3_exec(*db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    return rc;
}

/*
** Run one or more SQL statements. Returns 0, or -1 after reporting "WHAT: sqlite message".
*/
int index_exec(sqlite3 *db, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        error("%s: %s", what, msg ? index_error_with(db, msg) : index_error(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/*
** Parse exactly 16 hex digits into *out. Returns 0, or -1.
*/
int index_parse_hex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s) return -1;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    if (s[16]) return -1;
    *out = v;
    return 0;
}
