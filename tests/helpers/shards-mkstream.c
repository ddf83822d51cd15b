// SPDX-License-Identifier: MIT
/*
** shards-mkstream: make token streams for the cm-shards tests and benchmark, without cm-tokenize.
**
**   shards-mkstream [--no-end] [--vocab N] < records.jsonl > out.tok
**       one document per JSONL line: ids = the bytes of `content` (or the JSON array `ids` when
**       present) then the end-of-text id 256; meta = the line without content/ids plus n_bytes.
**       The tokenizer in the header is a real byte-level BPE tokenizer.json with no merges
**       (id b = byte b, 256 = <|endoftext|>), so `cm-shards cat` can decode with it.
**       --vocab N declares a larger vocabulary (N > 65536 makes uint32 shards).
**       A string field `prompt` makes the line an instruction example: ids = the bytes of
**       prompt, then of content, then 256, with n_prompt = the prompt's bytes (not in meta).
**       --v1 writes the old stream format (version 1 header, DOC1 frames: no prompts).
**   shards-mkstream --gen N [--seed S] [--repos R] [--mean-tokens M] [--vocab V]
**       N synthetic documents with realistic metadata (repo, path, license, imports) and
**       random ids, document lengths spread around M tokens (default 256).
**   shards-mkstream --tokenizer     print the tokenizer.json only
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "io.h"
#include "json.h"
#include "tokstream.h"
#include "util.h"

/*
** The GPT-2 byte-level BPE tokenizer.json with the 256 byte tokens and <|endoftext|>.
*/
static void make_tokenizer(Buf *b)
{
    int cs[256], n = 0, used[256] = { 0 };
    for (int c = '!'; c <= '~'; c++) used[c] = 1;
    for (int c = 0xA1; c <= 0xAC; c++) used[c] = 1;
    for (int c = 0xAE; c <= 0xFF; c++) used[c] = 1;
    for (int c = 0; c < 256; c++) cs[c] = used[c] ? c : 256 + n++;
    buf_adds(b,
             "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":"
             "[{\"id\":256,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,"
             "\"rstrip\":false,\"normalized\":true,\"special\":true}],\"normalizer\":null,"
             "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
             "\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":null,"
             "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
             "\"trim_offsets\":true,\"use_regex\":true},\"model\":{\"type\":\"BPE\","
             "\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":null,"
             "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,"
             "\"vocab\":{");
    for (int c = 0; c < 256; c++) {
        unsigned u = (unsigned)cs[c];
        char s[4];
        size_t k;
        if (u < 0x80) {
            s[0] = (char)u;
            k = 1;
        } else {
            s[0] = (char)(0xC0 | (u >> 6));
            s[1] = (char)(0x80 | (u & 0x3F));
            k = 2;
        }
        json_escape(b, s, k);
        buf_addf(b, ":%d,", c);
    }
    buf_adds(b, "\"<|endoftext|>\":256},\"merges\":[]}}");
}

/*
** Convert JSONL records on stdin to a token stream on stdout.
*/
static int from_jsonl(Out *o, int no_end, uint32_t vocab, int v1)
{
    Buf tok = { 0 }, meta = { 0 }, content = { 0 }, prompt = { 0 };
    make_tokenizer(&tok);
    if (v1)
        ts_write_header_version(o, 1, vocab, 256, hash64(tok.buf, tok.len), tok.buf, tok.len);
    else
        ts_write_header(o, vocab, 256, hash64(tok.buf, tok.len), tok.buf, tok.len);
    LineReader lr;
    lr_init(&lr, 0, "stdin", 0);
    JsonObj obj = { 0 };
    uint32_t *ids = NULL;
    size_t cap = 0;
    uint64_t docs = 0, tokens = 0;
    char *line;
    size_t len;
    int rc = 0;
    while (lr_next(&lr, &line, &len) == 1) {
        if (len == 0) continue;
        if (json_parse_object(&obj, line, len)) {
            fprintf(stderr, "shards-mkstream: line %llu: %s\n", (unsigned long long)lr.lineno,
                    obj.err);
            rc = 1;
            break;
        }
        buf_reset(&meta);
        buf_reset(&content);
        buf_reset(&prompt);
        size_t n = 0;
        const JsonField *idf = NULL;
        buf_addc(&meta, '{');
        int first = 1;
        for (int i = 0; i < obj.n; i++) {
            const JsonField *f = &obj.f[i];
            if (f->klen == 7 && !memcmp(f->key, "content", 7)) {
                json_decode_string(f->raw, f->rawlen, &content);
                continue;
            }
            if (f->klen == 3 && !memcmp(f->key, "ids", 3)) {
                idf = f;
                continue;
            }
            if (f->klen == 6 && !memcmp(f->key, "prompt", 6) && f->type == JSON_STRING) {
                json_decode_string(f->raw, f->rawlen, &prompt);
                continue;
            }
            if (!first) buf_addc(&meta, ',');
            first = 0;
            buf_addf(&meta, "\"%.*s\":", (int)f->klen, f->key);
            if (f->type == JSON_STRING) buf_addc(&meta, '"');
            buf_add(&meta, f->raw, f->rawlen);
            if (f->type == JSON_STRING) buf_addc(&meta, '"');
        }
        buf_addf(&meta, "%s\"n_bytes\":%zu}", first ? "" : ",", content.len);
        size_t need = prompt.len + (idf ? idf->rawlen : content.len) + 1;
        if (need > cap) {
            cap = need;
            ids = xrealloc(ids, cap * sizeof *ids);
        }
        if (idf) {
            const char *s = idf->raw, *e = idf->raw + idf->rawlen;
            while (s < e) {
                while (s < e && (*s < '0' || *s > '9')) s++;
                if (s >= e) break;
                ids[n++] = (uint32_t)strtoul(s, (char **)&s, 10);
            }
        } else {
            for (size_t i = 0; i < prompt.len; i++) ids[n++] = (unsigned char)prompt.buf[i];
            for (size_t i = 0; i < content.len; i++) ids[n++] = (unsigned char)content.buf[i];
        }
        ids[n++] = 256;
        if (v1)
            ts_write_doc_v1(o, meta.buf, (uint32_t)meta.len, ids, (uint32_t)n);
        else
            ts_write_doc_prompt(o, meta.buf, (uint32_t)meta.len, ids, (uint32_t)n,
                                idf ? 0 : (uint32_t)prompt.len);
        docs++;
        tokens += n;
    }
    if (!no_end) ts_write_end(o, docs, tokens);
    free(ids);
    json_obj_free(&obj);
    lr_free(&lr);
    buf_free(&tok);
    buf_free(&meta);
    buf_free(&content);
    buf_free(&prompt);
    return rc;
}

/*
** Write n synthetic documents.
*/
static void generate(Out *o, uint64_t n, uint64_t seed, uint64_t repos, uint32_t mean,
                     uint32_t vocab)
{
    static const char *mods[] = { "numpy",   "pandas",      "scipy", "matplotlib", "sklearn",
                                  "seaborn", "statsmodels", "torch", "os",         "sys" };
    static const char *lic[] = { "mit", "bsd-3-clause", "apache-2.0", "gpl-3.0" };
    Buf tok = { 0 }, meta = { 0 };
    make_tokenizer(&tok);
    ts_write_header(o, vocab, 256, hash64(tok.buf, tok.len), tok.buf, tok.len);
    uint32_t *ids = xmalloc(sizeof *ids * ((size_t)mean * 8 + 2));
    uint64_t x = seed, tokens = 0;
    for (uint64_t d = 0; d < n; d++) {
        uint64_t r = splitmix64(&x);
        uint64_t repo = (r >> 8) % repos;
        /* length: mean * 2^u with u in [-2, 2], roughly log-uniform, at most 8 x mean */
        uint32_t len = (uint32_t)(mean / 4 + (splitmix64(&x) % ((uint64_t)mean * 2)));
        if (splitmix64(&x) % 16 == 0) len *= 3;
        if (len < 2) len = 2;
        for (uint32_t i = 0; i + 1 < len; i += 2) {
            uint64_t v = splitmix64(&x);
            ids[i] = (uint32_t)((v & 0xffffffff) % vocab);
            ids[i + 1] = (uint32_t)((v >> 32) % vocab);
        }
        for (uint32_t i = 0; i + 1 < len; i++)
            if (ids[i] == 256) ids[i] = 257 % vocab;
        ids[len - 1] = 256;
        buf_reset(&meta);
        char h[17];
        hash_hex(r, h);
        buf_addf(&meta,
                 "{\"repo_name\":\"org%llu/project-%llu\",\"path\":\"src/pkg%llu/module_%llu.py\","
                 "\"license\":\"%s\",\"imports\":[\"%s\",\"%s\"],\"n_bytes\":%u,"
                 "\"content_hash\":\"%s\"}",
                 (unsigned long long)(repo % 97), (unsigned long long)repo,
                 (unsigned long long)(d % 13), (unsigned long long)d, lic[r % 4],
                 mods[(r >> 3) % 10], mods[(r >> 7) % 10], len * 3, h);
        ts_write_doc(o, meta.buf, (uint32_t)meta.len, ids, len);
        tokens += len;
    }
    ts_write_end(o, n, tokens);
    free(ids);
    buf_free(&tok);
    buf_free(&meta);
}

int main(int argc, char **argv)
{
    cm_init("shards-mkstream");
    int no_end = 0, v1 = 0;
    uint64_t gen = 0, seed = 1, repos = 1000, mean = 256, vocab = 257;
    int gen_mode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-end"))
            no_end = 1;
        else if (!strcmp(argv[i], "--v1"))
            v1 = 1;
        else if (!strcmp(argv[i], "--tokenizer")) {
            Buf b = { 0 };
            make_tokenizer(&b);
            fwrite(b.buf, 1, b.len, stdout);
            buf_free(&b);
            return 0;
        } else if (i + 1 < argc && !strcmp(argv[i], "--gen")) {
            gen = strtoull(argv[++i], NULL, 10);
            gen_mode = 1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--repos"))
            repos = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--mean-tokens"))
            mean = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--vocab"))
            vocab = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr,
                    "usage: shards-mkstream [--no-end] [--v1] [--vocab N] < in.jsonl\n"
                    "       shards-mkstream --gen N [--seed S] [--repos R] "
                    "[--mean-tokens M] [--vocab V]\n");
            return 2;
        }
    }
    if (vocab < 257 || repos == 0 || mean < 4) {
        fprintf(stderr, "shards-mkstream: need --vocab >= 257, --repos >= 1, --mean-tokens >= 4\n");
        return 2;
    }
    Out o;
    out_init(&o, 1, "stdout", 1u << 20);
    int rc = 0;
    if (gen_mode) {
        if (vocab == 257) vocab = 50257;
        generate(&o, gen, seed, repos, (uint32_t)mean, (uint32_t)vocab);
    } else {
        rc = from_jsonl(&o, no_end, (uint32_t)vocab, v1);
    }
    out_done(&o);
    return rc;
}
