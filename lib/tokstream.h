// SPDX-License-Identifier: MIT
/*
** tokstream.h: the token stream between `cm-tokenize encode` and `cm-shards pack`
** (format v2, docs/FORMATS.md "Token stream"; v1 is still read). All integers little-endian.
**
**   header : magic "CMTOKSTR" (8) | u32 version=2 | u32 flags=0 | u32 vocab_size | u32 eot_id
**            | u64 tokenizer fingerprint | u64 json_len | tokenizer.json bytes (json_len)
**   doc    : "DOC2" | u32 meta_len | u32 n_tokens | u32 check | u32 n_prompt
**            | meta (JSON object, meta_len bytes)
**            | n_tokens x u32 ids (the document's ids, end-of-text id last)
**            check = low 32 bits of XXH3-64(n_prompt || meta || ids)
**            n_prompt: leading ids that are an instruction example's prompt (0: a plain
**            document, every id is trained on); n_prompt < n_tokens
**   v1 doc : "DOC1" | u32 meta_len | u32 n_tokens | u32 check | meta | ids, check over
**            meta || ids (a v1 stream has only these; read with n_prompt = 0)
**   end    : "END1" | u32 0 | u64 documents | u64 tokens     (counts of this stream)
**
** A stream without its end frame was cut short (the producer died): the reader reports it.
** Several streams may be concatenated (`cat a.tok b.tok`); each keeps its header and end frame,
** and all must carry the same tokenizer fingerprint.
*/
#ifndef CM_TOKSTREAM_H
#define CM_TOKSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "io.h"

#define TS_MAGIC "CMTOKSTR"
#define TS_VERSION 2                    /* written; 1 and 2 are read */
#define TS_MAX_META (1u << 20)          /* 1 MiB of metadata per document */
#define TS_MAX_TOKENS (1u << 28)        /* 268M tokens per document */
#define TS_MAX_JSON ((uint64_t)1 << 26) /* 64 MiB tokenizer.json (GPT-2's is 1.4 MB) */

typedef struct {
    uint32_t version;     /* TS_VERSION */
    uint32_t vocab_size;  /* ids are < vocab_size */
    uint32_t eot_id;      /* end-of-text id that ends every document */
    uint64_t fingerprint; /* XXH3-64 of the tokenizer.json bytes */
    char *json;           /* the tokenizer.json (NUL-terminated) */
    size_t json_len;      /* its length */
} TsHeader;

typedef struct {
    const char *meta;    /* JSON object: the record without `content` (see FORMATS.md) */
    uint32_t meta_len;   /* its length */
    const uint32_t *ids; /* the ids, eot last */
    uint32_t n;          /* number of ids */
    uint32_t n_prompt;   /* leading ids that are prompt (v2; 0: a plain document) */
} TsDoc;

typedef struct {
    int fd;                 /* source */
    const char *name;       /* for messages */
    unsigned char *buf;     /* read buffer */
    size_t start, end, cap; /* unread bytes are buf[start..end) */
    int eof;                /* read() returned 0 */
    uint64_t offset;        /* stream offset of buf[start] */
    uint64_t docs;          /* documents returned so far (all streams) */
    uint64_t stream_docs;   /* documents in the current stream */
    uint64_t stream_tokens; /* tokens in the current stream */
    TsHeader hdr;           /* header of the first stream */
    uint32_t version;       /* format version of the current stream (frames differ) */
    uint32_t *idbuf;        /* aligned copy of ids when a frame leaves them unaligned */
    uint32_t idcap;         /* its capacity in ids */
    char err[256];          /* last error: "NAME: at byte N (document K): what" */
} TsReader;

/* Read the header. Returns 0, or -1 with r->err set. */
int ts_open(TsReader *r, int fd, const char *name);
/* Next document: 1 and *d filled (valid until the next call); 0 at a clean end (end frame then
** end of input); -1 with r->err set on a damaged or truncated stream. */
int ts_next(TsReader *r, TsDoc *d);
/* Same, but without the aligned copy: *raw = the ids as they lie in the read buffer (n
** little-endian u32, maybe unaligned) and d->ids = NULL. For a consumer that converts the ids
** anyway (cm-shards pack narrows them to u16). */
int ts_next_raw(TsReader *r, TsDoc *d, const unsigned char **raw);
void ts_close(TsReader *r);

void ts_write_header(Out *o, uint32_t vocab_size, uint32_t eot_id, uint64_t fingerprint,
                     const char *json, size_t json_len);
/* A document; ts_write_doc is ts_write_doc_prompt with n_prompt 0 (a plain document). */
void ts_write_doc(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids, uint32_t n);
void ts_write_doc_prompt(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids,
                         uint32_t n, uint32_t n_prompt);
/* The old format, for tests of its reader: a v1 header, then v1 frames. */
void ts_write_header_version(Out *o, uint32_t version, uint32_t vocab_size, uint32_t eot_id,
                             uint64_t fingerprint, const char *json, size_t json_len);
void ts_write_doc_v1(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids, uint32_t n);
void ts_write_end(Out *o, uint64_t docs, uint64_t tokens);

#endif
