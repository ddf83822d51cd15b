// SPDX-License-Identifier: MIT
/*
** shard.h: the shard file (format v1) and the SQLite index (schema v3) of a packed corpus.
**
** A corpus is a directory:  index.sqlite + shard-00000.bin, shard-00001.bin, ...
**
** Shard file v1 (all integers little-endian; docs/FORMATS.md "Shard file"):
**
**   offset  size  field
**        0     8  magic "CMSHARD\0"
**        8     4  u32 format version (1)
**       12     4  u32 dtype: bytes per token, 2 (uint16, vocab <= 65536) or 4 (uint32)
**       16     8  u64 token count
**       24     8  u64 tokenizer fingerprint (XXH3-64 of the tokenizer.json bytes)
**       32     8  u64 payload checksum (XXH3-64 of the payload bytes as stored)
**       40     4  u32 end-of-text id
**       44     4  u32 vocabulary size
**       48     8  u64 document count
**       56     8  u64 payload offset (4096)
**       64   184  reserved, zero
**      248     8  u64 header checksum (XXH3-64 of bytes 0..248)
**     4096     -  payload: token count x dtype bytes; documents follow each other, each ends with
**                 the end-of-text id. File size = 4096 + tokens x dtype exactly.
**
** The header holds nothing that depends on the shard's place in a corpus (no shard number),
** so `cm-shards merge` can hard-link shard files into another corpus unchanged.
*/
#ifndef CM_SHARD_H
#define CM_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "le.h"

#define SHARD_MAGIC "CMSHARD" /* 8 bytes with the NUL */
#define SHARD_VERSION 1
#define SHARD_HEADER_BYTES 256    /* meaningful header bytes */
#define SHARD_PAYLOAD_OFFSET 4096 /* page-aligned start of the tokens */
#define INDEX_VERSION 3           /* schema version of index.sqlite (1 and 2 are read too) */
#define INDEX_NAME "index.sqlite"
#define SPLIT_SEED_DEFAULT 0x636f64656d696c6cull /* "codemill" in ASCII */

typedef struct {
    uint32_t version;        /* SHARD_VERSION */
    uint32_t dtype;          /* 2 or 4 bytes per token */
    uint64_t tokens;         /* token count */
    uint64_t fingerprint;    /* tokenizer fingerprint */
    uint64_t checksum;       /* XXH3-64 of the payload */
    uint32_t eot_id;         /* end-of-text id */
    uint32_t vocab_size;     /* vocabulary size */
    uint64_t documents;      /* document count */
    uint64_t payload_offset; /* SHARD_PAYLOAD_OFFSET */
} ShardHeader;

/* Serialize h into out[SHARD_HEADER_BYTES] (reserved bytes zero, header checksum last). */
void shard_header_encode(const ShardHeader *h, unsigned char *out);

/* Parse and check buf[0..n) as a shard header. Returns 0, or -1 with a reason in err
** ("bad magic", "header checksum mismatch", "format version 7 not supported", ...). */
int shard_header_decode(ShardHeader *h, const unsigned char *buf, size_t n, char *err,
                        size_t errlen);

/* Copy n tokens of a payload (little-endian, dtype bytes each) from token `from` into out,
** widened to uint32. */
static inline void shard_tokens_get(const unsigned char *payload, uint32_t dtype, uint64_t from,
                                    size_t n, uint32_t *out)
{
    const unsigned char *p = payload + dtype * from;
    if (dtype == 4)
        for (size_t i = 0; i < n; i++) out[i] = le_get32(p + 4 * i);
    else
        for (size_t i = 0; i < n; i++) out[i] = le_get16(p + 2 * i);
}

/* Bytes per token for a vocabulary: 2 when every id fits in uint16, else 4. */
uint32_t shard_dtype_for_vocab(uint32_t vocab_size);

/* "shard-00042.bin" into out (at least 32 bytes). */
void shard_file_name(char *out, size_t n, uint64_t id);

/* The schema of index.sqlite v3 (tables and views; indexes are in index_sql_indexes). */
extern const char index_sql_schema[];
/* The secondary indexes, all `CREATE INDEX IF NOT EXISTS` (built after the bulk insert). */
extern const char index_sql_indexes[];

/* sqlite3_errmsg(db), plus the OS reason for I/O errors: "disk I/O error (File too large)". */
const char *index_error(sqlite3 *db);
const char *index_error_with(sqlite3 *db, const char *msg);

/* Open an index for reading (read-write + query_only when possible, so that a hot journal or
** WAL left by a killed writer is recovered); returns an SQLite result code, *db always set. */
int index_open_read(const char *path, sqlite3 **db);

/* Run SQL text (several statements); 0, or -1 after printing "cm-shards: WHAT: sqlite error". */
int index_exec(sqlite3 *db, const char *sql, const char *what);

/* 1 when table (of database schema, NULL: "main") has that column, 0 when not, -1 on an SQL
** error. */
int index_has_column(sqlite3 *db, const char *schema, const char *table, const char *column);
/* Bring an index of version 1 or 2 to the current version in place (documents.n_prompt = 0,
** split_by 'repo', the examples view, user_version and format_version). 0, or -1 (reported). */
int index_upgrade(sqlite3 *db, const char *ipath);

/* Parse a u64 stored as 16 hex digits in the index (fingerprints, checksums); 0 or -1. */
int index_parse_hex64(const char *s, uint64_t *out);

#endif
