// SPDX-License-Identifier: MIT
/*
** bpe.c: byte-level BPE (GPT-2 / Hugging Face `tokenizers`): load a tokenizer.json, encode
** text to ids, decode ids to bytes. See bpe.h for the interface and docs/FORMATS.md
** "tokenizer.json" for what is accepted.
**
** How encoding works, in order (the same steps as Hugging Face's pipeline):
**   1. added tokens (e.g. <|endoftext|>) are cut out of the text, leftmost-longest first;
**   2. each remaining piece is pre-tokenized with the GPT-2 split regex (PCRE2, JIT); bytes the
**      regex does not cover (invalid UTF-8 only) form pre-tokens of their own, so nothing is lost;
**   3. each pre-token's bytes become byte symbols, then merges are applied lowest rank first,
**      leftmost first on ties (Hugging Face's Word::merge_all), with a per-encoder cache.
** Internally tokens are kept as raw bytes: the GPT-2 byte-to-unicode map is applied only when
** reading and writing tokenizer.json.
*/
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bpe.h"
#include "hash.h"
#include "tokstream.h"

/* ------------------------------------------------------------------------------------------ */
/* The GPT-2 byte <-> unicode map                                                              */
/* ------------------------------------------------------------------------------------------ */

/*
** Code point that byte b is written as in a byte-level tokenizer.json: printable Latin-1 bytes
** stand for themselves, the 68 others are moved to 256.. in byte order.
*/
uint32_t bpe_byte_char(unsigned b)
{
    static uint32_t map[256];
    static int ready;
    if (!ready) {
        uint32_t next = 256;
        for (unsigned i = 0; i < 256; i++) {
            if ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))
                map[i] = i;
            else
                map[i] = next++;
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return map[b & 255];
}

/*
** Inverse of bpe_byte_char: the byte a code point stands for, or -1.
*/
static int char_byte(uint32_t c)
{
    if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)) return (int)c;
    if (c >= 256 && c < 256 + 68) {
        for (unsigned i = 0; i < 256; i++)
            if (bpe_byte_char(i) == c) return (int)i;
    }
    return -1;
}

/*
** Append the UTF-8 encoding of code point c to out.
*/
static void put_utf8(Buf *out, uint32_t c)
{
    char t[4];
    if (c < 0x80) {
        buf_addc(out, (char)c);
        return;
    }
    if (c < 0x800) {
        t[0] = (char)(0xC0 | (c >> 6));
        t[1] = (char)(0x80 | (c & 63));
        buf_add(out, t, 2);
        return;
    }
    t[0] = (char)(0xE0 | (c >> 12));
    t[1] = (char)(0x80 | ((c >> 6) & 63));
    t[2] = (char)(0x80 | (c & 63));
    buf_add(out, t, 3);
}

/*
** Append the byte-level form (GPT-2 map) of raw bytes p[0..n) to out.
*/
void bpe_bytes_to_chars(const unsigned char *p, size_t n, Buf *out)
{
    for (size_t i = 0; i < n; i++) put_utf8(out, bpe_byte_char(p[i]));
}

/*
** Decode the byte-level string s[0..n) (UTF-8) back to raw bytes into out. Returns 0, or -1 when
** a character is not part of the byte-level alphabet (out then holds garbage).
*/
static int chars_to_bytes(const char *s, size_t n, Buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        if (p[i] < 0x80) {
            c = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n) {
            c = ((p[i] & 31u) << 6) | (p[i + 1] & 63u);
            i += 2;
        } else
            return -1; /* the byte-level alphabet stops at U+0143 */
        int b = char_byte(c);
        if (b < 0) return -1;
        buf_addc(out, (char)b);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Hash tables: bytes -> id, pair -> (rank, id)                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint32_t *slot; /* id+1 per slot, 0 = empty */
    size_t mask;    /* slots - 1 */
} StrMap;

typedef struct {
    uint64_t *key;  /* (left << 32 | right) + 1, 0 = empty */
    uint32_t *rank; /* merge rank */
    uint32_t *id;   /* id of the merged token */
    size_t mask;    /* slots - 1 */
} PairMap;

struct Bpe {
    char *json;           /* the tokenizer.json bytes as loaded */
    size_t json_len;      /* their length */
    uint64_t fingerprint; /* XXH3-64 of json */
    uint32_t n_ids;       /* highest id + 1 */
    uint32_t *tok_off;    /* per id: offset of its bytes in tok_bytes */
    uint32_t *tok_len;    /* per id: byte length; UINT32_MAX when no token has this id */
    char *tok_bytes;      /* every token's raw bytes */
    StrMap vocab;         /* raw bytes -> id, model vocab only */
    PairMap merges;       /* (left, right) -> (rank, merged id) */
    uint32_t n_merges;    /* number of merges */
    int32_t byte_id[256]; /* id of each single byte, -1 when the vocab lacks it */
    uint32_t n_added;     /* added tokens (matched in text before pre-tokenization) */
    uint32_t *added_id;   /* their ids */
    int64_t eot;          /* end-of-text id or -1 */
    int ignore_merges;    /* model.ignore_merges: a pre-token found whole in vocab is one id */
    pcre2_code *re;       /* the GPT-2 split regex, JIT-compiled */
};

/*
** A 64-bit finaliser (murmur3 fmix) for pair keys.
*/
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/*
** Find raw token bytes p[0..n) in the vocab map; returns the id or -1.
*/
static int64_t strmap_get(const Bpe *b, const char *p, size_t n)
{
    if (!b->vocab.slot) return -1;
    size_t i = hash64(p, n) & b->vocab.mask;
    for (;;) {
        uint32_t v = b->vocab.slot[i];
        if (!v) return -1;
        uint32_t id = v - 1;
        if (b->tok_len[id] == n && memcmp(b->tok_bytes + b->tok_off[id], p, n) == 0) return id;
        i = (i + 1) & b->vocab.mask;
    }
}

/*
** Insert id (whose bytes are already stored) into the vocab map; returns the id already holding
** the same bytes, or -1 when it was new.
*/
static int64_t strmap_put(Bpe *b, uint32_t id)
{
    const char *p = b->tok_bytes + b->tok_off[id];
    size_t n = b->tok_len[id];
    size_t i = hash64(p, n) & b->vocab.mask;
    for (;;) {
        uint32_t v = b->vocab.slot[i];
        if (!v) {
            b->vocab.slot[i] = id + 1;
            return -1;
        }
        uint32_t o = v - 1;
        if (b->tok_len[o] == n && memcmp(b->tok_bytes + b->tok_off[o], p, n) == 0) return o;
        i = (i + 1) & b->vocab.mask;
    }
}

/*
** Look up the merge of (l, r): returns 1 and sets *rank, *id, or 0.
*/
static inline int pair_get(const PairMap *m, uint32_t l, uint32_t r, uint32_t *rank, uint32_t *id)
{
    uint64_t k = (((uint64_t)l << 32) | r) + 1;
    size_t i = mix64(k) & m->mask;
    for (;;) {
        uint64_t s = m->key[i];
        if (s == k) {
            *rank = m->rank[i];
            *id = m->id[i];
            return 1;
        }
        if (!s) return 0;
        i = (i + 1) & m->mask;
    }
}

/*
** Set the merge of (l, r); a later rank replaces an earlier one (as Hugging Face's map does).
*/
static void pair_put(PairMap *m, uint32_t l, uint32_t r, uint32_t rank, uint32_t id)
{
    uint64_t k = (((uint64_t)l << 32) | r) + 1;
    size_t i = mix64(k) & m->mask;
    while (m->key[i] && m->key[i] != k) i = (i + 1) & m->mask;
    m->key[i] = k;
    m->rank[i] = rank;
    m->id[i] = id;
}

/* ------------------------------------------------------------------------------------------ */
/* Pre-tokenizer                                                                               */
/* ------------------------------------------------------------------------------------------ */

const char BPE_GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* The same for PCRE2, made to split exactly as Hugging Face does (tested code point by code
** point in t3002 against tokenizers 0.23.2). Hugging Face runs the pattern with Oniguruma:
**  - its Unicode \s is \t \n \v \f \r, U+0085 and the Z categories; PCRE2's \s also takes
**    U+180E and lacks U+0085, so the class is spelled out (\S is its complement);
**  - its Unicode tables are version 16, PCRE2 10.42's are 14: the letters and digits assigned
**    since (all unassigned, so "other", for PCRE2) are added to \p{L} and \p{N} by hand. */
#define WS "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}"
#define NEW_L \
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}" \
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{1123F}-\\x{11240}" \
    "\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}" \
    "\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}" \
    "\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}\\x{16D40}-" \
    "\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}\\x{1E030}-\\x{1E06D}" \
    "\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}\\x{2EBF0}-\\x{2EE5D}" \
    "\\x{31350}-\\x{323AF}"
#define NEW_N \
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}" \
    "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}" \
    "\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}"
static const char gpt2_pcre2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?[\\p{L}" NEW_L "]+| ?[\\p{N}" NEW_N "]+"
                                 "| ?[^" WS "\\p{L}\\p{N}" NEW_L NEW_N "]+|[" WS "]+(?![^" WS
                                 "])|[" WS "]+";
/* The three classes alone, for the hand-written matcher: group 1 letter, 2 digit, 3 space. */
static const char gpt2_classes[] = "([\\p{L}" NEW_L "])|([\\p{N}" NEW_N "])|([" WS "])";
#undef WS
#undef NEW_L
#undef NEW_N

/*
** Compile the GPT-2 split regex (UTF, Unicode properties, invalid UTF-8 tolerated) and JIT it.
** Returns NULL with a message in err.
*/
static pcre2_code *regex_compile(char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)gpt2_pcre2,                          /* pattern */
                                   PCRE2_ZERO_TERMINATED,                           /* its length */
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, /* options */
                                   &ec, &eo, /* OUT: error, offset */
                                   NULL);    /* default context */
    if (!re) {
        PCRE2_UCHAR m[200];
        pcre2_get_error_message(ec, m, sizeof m);
        snprintf(err, errlen, "cannot compile the GPT-2 regex at %zu: %s", (size_t)eo, (char *)m);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return re;
}

static pthread_once_t g_cls_once = PTHREAD_ONCE_INIT;
static void cls_init(void);

struct BpePretok {
    pcre2_code *re;          /* compiled regex (owned when own_re) */
    int own_re;              /* free re with the splitter */
    pcre2_match_data *md;    /* match data, reused */
    pcre2_match_context *mc; /* match context holding the JIT stack */
    pcre2_jit_stack *js;     /* JIT stack (long runs need more than the default 32 KiB) */
    int use_pcre2;           /* split with the regex instead of the hand-written matcher */
};

/*
** A pre-tokenizer for re (or for a fresh copy of the GPT-2 regex when re is NULL).
*/
static BpePretok *pretok_make(pcre2_code *re)
{
    char err[256];
    BpePretok *p = xcalloc(1, sizeof *p);
    pthread_once(&g_cls_once, cls_init);
    if (!re) {
        re = regex_compile(err, sizeof err);
        if (!re) die(CM_EINTERNAL, "%s", err);
        p->own_re = 1;
    }
    p->re = re;
    p->md = pcre2_match_data_create_from_pattern(re, NULL);
    p->mc = pcre2_match_context_create(NULL);
    p->js = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!p->md || !p->mc || !p->js) die(CM_EINTERNAL, "out of memory (PCRE2)");
    pcre2_jit_stack_assign(p->mc, NULL, p->js);
    return p;
}

BpePretok *bpe_pretok_new(void)
{
    return pretok_make(NULL);
}

/*
** Free a pre-tokenizer (NULL is fine).
*/
void bpe_pretok_free(BpePretok *p)
{
    if (!p) return;
    pcre2_match_data_free(p->md);
    pcre2_match_context_free(p->mc);
    pcre2_jit_stack_free(p->js);
    if (p->own_re) pcre2_code_free(p->re);
    free(p);
}

/*
** Split text[0..len) into pre-tokens with the GPT-2 regex, calling fn(ctx, piece, n) for each in
** order. Bytes no alternative matches (only possible in invalid UTF-8) are passed as pieces of
** their own, so the pieces always concatenate back to the text. Returns 0, or -1 on a PCRE2
** error (message printed).
*/
static int split_pcre2(BpePretok *p, const char *text, size_t len, BpePieceFn fn, void *ctx)
{
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, 0, p->md, p->mc);
        if (rc == PCRE2_ERROR_NOMATCH) {
            fn(ctx, text + pos, len - pos);
            return 0;
        }
        if (rc < 0) {
            PCRE2_UCHAR m[200];
            pcre2_get_error_message(rc, m, sizeof m);
            return error("pre-tokenizer: at byte %zu: %s", pos, (char *)m);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
        size_t s = ov[0], e = ov[1];
        if (s > pos) fn(ctx, text + pos, s - pos); /* uncovered (invalid) bytes */
        if (e == s) {                              /* cannot happen: no empty match */
            fn(ctx, text + s, 1);
            e = s + 1;
        } else {
            fn(ctx, text + s, e - s);
        }
        pos = e;
    }
    return 0;
}

/* --- The hand-written matcher ----------------------------------------------------------------
**
** The regex, alternative by alternative, at a position holding character c:
**   's 't 're 've 'm 'll 'd           the contraction (checked first);
**   ' ?\p{L}+' ' ?\p{N}+' ' ?O+'      a run of one class (L letter, N digit, O other: neither
**                                      L, N nor white space), with one leading ' ' if any;
**   \s+(?!\S)                          a white-space run, less its last character when a
**                                      non-space character follows and the run has two or more;
**   \s+                                else the whole (one-character) run.
** Invalid UTF-8 matches nothing: such bytes (up to the next byte that starts a valid character)
** are a piece of their own, and runs and look-aheads stop at them, as PCRE2 with
** PCRE2_MATCH_INVALID_UTF does. Classes of non-ASCII code points come from the PCRE2 classes
** (so both matchers agree by construction), looked up once per code point and remembered.
** The PCRE2 path stays as the reference; t3003 checks that both split identically. */

enum { CL_UNK = 0, CL_L = 1, CL_N = 2, CL_WS = 3, CL_O = 4 };

static uint8_t g_ascii_cls[128];
static uint8_t *g_cls;       /* per code point class (0 = not looked up yet) */
static pcre2_code *g_cls_re; /* anchored: (L)|(N)|(WS) */

static void cls_init(void)
{
    for (int c = 0; c < 128; c++) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            g_ascii_cls[c] = CL_L;
        else if (c >= '0' && c <= '9')
            g_ascii_cls[c] = CL_N;
        else if (c == ' ' || (c >= 9 && c <= 13))
            g_ascii_cls[c] = CL_WS;
        else
            g_ascii_cls[c] = CL_O;
    }
    g_cls = xcalloc(0x110000, 1);
    int ec;
    PCRE2_SIZE eo;
    g_cls_re = pcre2_compile((PCRE2_SPTR)gpt2_classes, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &ec, &eo, NULL);
    if (!g_cls_re)
        die(CM_EINTERNAL, "cannot compile the character classes (PCRE2 error %d at %zu)", ec,
            (size_t)eo);
    (void)pcre2_jit_compile(g_cls_re, PCRE2_JIT_COMPLETE);
}

/*
** Class of non-ASCII code point cp (valid, already decoded from s[0..n)).
*/
static int cls_slow(uint32_t cp, const unsigned char *s, size_t n)
{
    uint8_t c = __atomic_load_n(&g_cls[cp], __ATOMIC_RELAXED);
    if (c) return c;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) die(CM_EINTERNAL, "out of memory (PCRE2)");
    int rc = pcre2_match(g_cls_re, s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL);
    c = CL_O;
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (int g = 1; g < rc; g++)
            if (ov[2 * g] != PCRE2_UNSET) {
                c = (uint8_t)g;
                break;
            } /* group g = CL_L, CL_N, CL_WS */
    }
    pcre2_match_data_free(md);
    __atomic_store_n(&g_cls[cp], c, __ATOMIC_RELAXED);
    return c;
}

/*
** Decode the character at s[i] (strict UTF-8: no overlongs, surrogates or > U+10FFFF).
** Returns its length and sets *cp, or 0 when no valid character starts there.
*/
static inline int u8_at(const unsigned char *s, size_t n, size_t i, uint32_t *cp)
{
    unsigned a = s[i];
    if (a < 0x80) {
        *cp = a;
        return 1;
    }
    size_t r = n - i;
    if (a >= 0xC2 && a <= 0xDF) {
        if (r < 2 || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = ((a & 31u) << 6) | (s[i + 1] & 63u);
        return 2;
    }
    if (a >= 0xE0 && a <= 0xEF) {
        if (r < 3 || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        if (a == 0xE0 && s[i + 1] < 0xA0) return 0;
        if (a == 0xED && s[i + 1] > 0x9F) return 0;
        *cp = ((a & 15u) << 12) | ((s[i + 1] & 63u) << 6) | (s[i + 2] & 63u);
        return 3;
    }
    if (a >= 0xF0 && a <= 0xF4) {
        if (r < 4 || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
            (s[i + 3] & 0xC0) != 0x80)
            return 0;
        if (a == 0xF0 && s[i + 1] < 0x90) return 0;
        if (a == 0xF4 && s[i + 1] > 0x8F) return 0;
        *cp = ((a & 7u) << 18) | ((s[i + 1] & 63u) << 12) | ((s[i + 2] & 63u) << 6) |
            (s[i + 3] & 63u);
        return 4;
    }
    return 0;
}

/*
** Class of the character at s[i], or 0 (with *len 0) when no valid character starts there.
*/
static inline int cls_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    if (s[i] < 0x80) {
        *len = 1;
        return g_ascii_cls[s[i]];
    }
    uint32_t cp;
    *len = u8_at(s, n, i, &cp);
    if (!*len) return 0;
    return cls_slow(cp, s + i, (size_t)*len);
}

/*
** The hand-written matcher: same pieces as split_pcre2, calling fn for each. Returns 0.
*/
static int split_fast(const char *text, size_t len, BpePieceFn fn, void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    int l, l2;
    while (i < len) {
        int k = cls_at(s, len, i, &l);
        if (!l) { /* invalid bytes up to the next valid start */
            size_t j = i + 1;
            uint32_t cp;
            while (j < len && !u8_at(s, len, j, &cp)) j++;
            fn(ctx, text + i, j - i);
            i = j;
            continue;
        }
        if (s[i] == '\'' && i + 1 < len) { /* contractions */
            unsigned a = s[i + 1];
            if (a == 's' || a == 't' || a == 'm' || a == 'd') {
                fn(ctx, text + i, 2);
                i += 2;
                continue;
            }
            if (i + 2 < len) {
                unsigned b = s[i + 2];
                if ((b == 'e' && (a == 'r' || a == 'v')) || (a == 'l' && b == 'l')) {
                    fn(ctx, text + i, 3);
                    i += 3;
                    continue;
                }
            }
        }
        size_t j = i + (size_t)l;
        if (s[i] == ' ' && j < len) { /* ' ?X+': a space joins a following run */
            int k2 = cls_at(s, len, j, &l2);
            if (l2 && k2 != CL_WS) {
                k = k2;
                j += (size_t)l2;
            }
        }
        if (k != CL_WS) {
            while (j < len &&
                   (s[j] < 0x80 ? g_ascii_cls[s[j]] == k : (cls_at(s, len, j, &l2) == k && l2)))
                j += s[j] < 0x80 ? 1 : (size_t)l2;
            fn(ctx, text + i, j - i);
            i = j;
            continue;
        }
        size_t last = i; /* start of the run's last character */
        int kn = 0;
        while (j < len) {
            kn = cls_at(s, len, j, &l2);
            if (!l2 || kn != CL_WS) break;
            last = j;
            j += (size_t)l2;
        }
        if (j < len && l2 && kn != CL_WS && last > i) j = last; /* \s+(?!\S) gives one back */
        fn(ctx, text + i, j - i);
        i = j;
    }
    return 0;
}

void bpe_pretok_use_pcre2(BpePretok *p, int on)
{
    p->use_pcre2 = on;
}

/*
** Split text into GPT-2 pre-tokens with the matcher p is set to use (see bpe.h).
*/
int bpe_pretok_split(BpePretok *p, const char *text, size_t len, BpePieceFn fn, void *ctx)
{
    if (p->use_pcre2) return split_pcre2(p, text, len, fn, ctx);
    return split_fast(text, len, fn, ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading tokenizer.json                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
** Is JSON value v absent, null, or false?
*/
static int j_off(json_t *v)
{
    return !v || json_is_null(v) || json_is_false(v);
}

/*
** Check a ByteLevel component (pre_tokenizer with use_regex as wanted). Returns NULL or a reason.
*/
static const char *check_bytelevel_pre(json_t *pt, int want_regex)
{
    json_t *aps = json_object_get(pt, "add_prefix_space");
    if (aps && json_is_true(aps))
        return "pre_tokenizer ByteLevel add_prefix_space=true is not supported";
    json_t *ur = json_object_get(pt, "use_regex");
    int use_regex = ur ? json_is_true(ur) : 1;
    if (use_regex != want_regex)
        return want_regex
            ? "pre_tokenizer ByteLevel use_regex=false alone is not supported"
            : "pre_tokenizer Sequence: ByteLevel after Split must have use_regex=false";
    return NULL;
}

/*
** Check the pre_tokenizer: ByteLevel(use_regex) or Sequence[Split(GPT-2 regex, Isolated),
** ByteLevel(no regex)]. Returns NULL or a reason it is not supported.
*/
static const char *check_pre(json_t *pt, char *why, size_t whylen)
{
    if (!pt || json_is_null(pt))
        return "pre_tokenizer null is not supported (byte-level BPE needs ByteLevel)";
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return "pre_tokenizer has no type";
    if (!strcmp(type, "ByteLevel")) return check_bytelevel_pre(pt, 1);
    if (strcmp(type, "Sequence") != 0) {
        snprintf(why, whylen, "pre_tokenizer '%s' is not supported", type);
        return why;
    }
    json_t *seq = json_object_get(pt, "pretokenizers");
    if (!json_is_array(seq) || json_array_size(seq) != 2)
        return "pre_tokenizer Sequence must be [Split(GPT-2 regex), ByteLevel]";
    json_t *sp = json_array_get(seq, 0), *bl = json_array_get(seq, 1);
    const char *t0 = json_string_value(json_object_get(sp, "type"));
    const char *t1 = json_string_value(json_object_get(bl, "type"));
    if (!t0 || !t1 || strcmp(t0, "Split") || strcmp(t1, "ByteLevel"))
        return "pre_tokenizer Sequence must be [Split(GPT-2 regex), ByteLevel]";
    json_t *pat = json_object_get(sp, "pattern");
    const char *rx = json_string_value(json_object_get(pat, "Regex"));
    if (!rx || strcmp(rx, BPE_GPT2_PATTERN) != 0)
        return "pre_tokenizer Split pattern is not the GPT-2 regex";
    const char *beh = json_string_value(json_object_get(sp, "behavior"));
    if (beh && strcmp(beh, "Isolated") != 0) return "pre_tokenizer Split behavior must be Isolated";
    if (json_is_true(json_object_get(sp, "invert")))
        return "pre_tokenizer Split invert=true is not supported";
    return check_bytelevel_pre(bl, 0);
}

/*
** Store token bytes p[0..n) for id, growing the byte arena.
*/
static void tok_store(Bpe *b, Buf *arena, uint32_t id, const char *p, size_t n)
{
    b->tok_off[id] = (uint32_t)arena->len;
    b->tok_len[id] = (uint32_t)n;
    buf_add(arena, p, n);
}

/*
** The state of one load: the parsed JSON, the parts of it found so far, the byte arena the
** tokens go to, and room for a reason. Each step returns NULL, or the reason the file is
** refused (a constant or c->why).
*/
typedef struct {
    Bpe *b;            /* being filled */
    json_t *root;      /* the parsed tokenizer.json */
    json_t *model;     /* root.model */
    json_t *vocab;     /* model.vocab */
    json_t *merges;    /* model.merges */
    json_t *added;     /* root.added_tokens, or NULL */
    size_t n_added;    /* its length */
    Buf arena;         /* every token's bytes (becomes b->tok_bytes) */
    Buf tmp;           /* scratch */
    uint8_t *in_model; /* per id: 1 when the id is in model.vocab */
    char why[300];     /* a reason made with snprintf */
} Loader;

/*
** Check the model object: BPE without dropout, prefixes, suffixes or byte fallback.
*/
static const char *load_model(Loader *c)
{
    Bpe *b = c->b;
    if (!json_is_object(c->root)) return "not a JSON object";
    c->model = json_object_get(c->root, "model");
    if (!json_is_object(c->model)) return "no model object";
    const char *mtype = json_string_value(json_object_get(c->model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0) {
        snprintf(c->why, sizeof c->why, "model.type '%s' is not supported (only byte-level BPE)",
                 mtype);
        return c->why;
    }
    c->vocab = json_object_get(c->model, "vocab");
    c->merges = json_object_get(c->model, "merges");
    if (!json_is_object(c->vocab)) return "model.vocab is missing or not an object";
    if (!json_is_array(c->merges)) return "model.merges is missing or not an array";
    json_t *dr = json_object_get(c->model, "dropout");
    if (dr && !json_is_null(dr) && !(json_is_number(dr) && json_number_value(dr) == 0.0))
        return "model.dropout is not supported (encoding must be deterministic)";
    json_t *pre = json_object_get(c->model, "continuing_subword_prefix");
    if (pre && !json_is_null(pre) && !(json_is_string(pre) && !json_string_length(pre)))
        return "model.continuing_subword_prefix is not supported";
    json_t *suf = json_object_get(c->model, "end_of_word_suffix");
    if (suf && !json_is_null(suf) && !(json_is_string(suf) && !json_string_length(suf)))
        return "model.end_of_word_suffix is not supported";
    if (json_is_true(json_object_get(c->model, "byte_fallback")))
        return "model.byte_fallback=true is not supported";
    b->ignore_merges = json_is_true(json_object_get(c->model, "ignore_merges"));
    return NULL;
}

/*
** Check a post_processor or decoder: absent, null, false or ByteLevel.
*/
static const char *check_bytelevel_part(Loader *c, const char *part)
{
    json_t *v = json_object_get(c->root, part);
    if (j_off(v)) return NULL;
    const char *t = json_string_value(json_object_get(v, "type"));
    if (t && strcmp(t, "ByteLevel") == 0) return NULL;
    snprintf(c->why, sizeof c->why, "%s '%s' is not supported", part, t ? t : "?");
    return c->why;
}

/*
** Check the pipeline around the model: no normalizer, the GPT-2 pre-tokenizer, ByteLevel
** post-processor and decoder, added_tokens an array.
*/
static const char *load_pipeline(Loader *c)
{
    const char *bad;
    json_t *norm = json_object_get(c->root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const char *t = json_string_value(json_object_get(norm, "type"));
        snprintf(c->why, sizeof c->why, "normalizer '%s' is not supported", t ? t : "?");
        return c->why;
    }
    if ((bad = check_pre(json_object_get(c->root, "pre_tokenizer"), c->why, sizeof c->why)))
        return bad;
    if ((bad = check_bytelevel_part(c, "post_processor"))) return bad;
    if ((bad = check_bytelevel_part(c, "decoder"))) return bad;
    c->added = json_object_get(c->root, "added_tokens");
    if (c->added && !json_is_null(c->added) && !json_is_array(c->added))
        return "added_tokens is not an array";
    c->n_added = c->added ? json_array_size(c->added) : 0;
    return NULL;
}

/*
** Check one added token (an integer id in [0, 2^24), a non-empty string content, no lstrip,
** rstrip or single_word) and raise *maxid to its id.
*/
static const char *check_added(Loader *c, size_t i, int64_t *maxid)
{
    json_t *t = json_array_get(c->added, i);
    json_t *id = json_object_get(t, "id");
    if (!json_is_object(t) || !json_is_integer(id) ||
        !json_is_string(json_object_get(t, "content")) || json_integer_value(id) < 0 ||
        json_integer_value(id) >= (1 << 24)) {
        snprintf(c->why, sizeof c->why,
                 "added_tokens[%zu]: needs an integer id in [0, 2^24) and a string content", i);
        return c->why;
    }
    if (!json_string_length(json_object_get(t, "content"))) {
        snprintf(c->why, sizeof c->why, "added_tokens[%zu]: empty content", i);
        return c->why;
    }
    static const char *const flags[] = { "lstrip", "rstrip", "single_word" };
    for (int f = 0; f < 3; f++)
        if (json_is_true(json_object_get(t, flags[f]))) {
            snprintf(c->why, sizeof c->why, "added_tokens[%zu]: %s=true is not supported", i,
                     flags[f]);
            return c->why;
        }
    if (json_integer_value(id) > *maxid) *maxid = json_integer_value(id);
    return NULL;
}

/*
** Find the highest id (model vocab and added tokens, checking both) and size the tables.
*/
static const char *load_size(Loader *c)
{
    Bpe *b = c->b;
    int64_t maxid = -1;
    const char *key, *bad;
    json_t *val;
    json_object_foreach(c->vocab, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= (1 << 24)) {
            snprintf(c->why, sizeof c->why,
                     "model.vocab: id of '%.40s' is not an integer in [0, 2^24)", key);
            return c->why;
        }
        if (json_integer_value(val) > maxid) maxid = json_integer_value(val);
    }
    for (size_t i = 0; i < c->n_added; i++)
        if ((bad = check_added(c, i, &maxid))) return bad;
    if (maxid < 0) return "the vocabulary is empty";
    b->n_ids = (uint32_t)maxid + 1;
    b->tok_off = xcalloc(b->n_ids, sizeof *b->tok_off);
    b->tok_len = xmalloc(b->n_ids * sizeof *b->tok_len);
    c->in_model = xcalloc(b->n_ids, 1);
    memset(b->tok_len, 0xff, b->n_ids * sizeof *b->tok_len);
    size_t nv = json_object_size(c->vocab), slots = 16;
    while (slots < nv * 2 + 16) slots <<= 1;
    b->vocab.slot = xcalloc(slots, sizeof *b->vocab.slot);
    b->vocab.mask = slots - 1;
    for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
    return NULL;
}

/*
** The model vocab: each key's bytes (byte-level characters decoded; a key outside that
** alphabet is kept as UTF-8) under its id, the bytes -> id map, the single-byte ids.
*/
static const char *load_vocab(Loader *c)
{
    Bpe *b = c->b;
    const char *key;
    json_t *val;
    json_object_foreach(c->vocab, key, val)
    {
        uint32_t id = (uint32_t)json_integer_value(val);
        if (c->in_model[id]) {
            snprintf(c->why, sizeof c->why, "model.vocab: id %u is given to two tokens", id);
            return c->why;
        }
        buf_reset(&c->tmp);
        size_t klen = strlen(key);
        if (chars_to_bytes(key, klen, &c->tmp) != 0) { /* not byte-level: keep its UTF-8 as is */
            buf_reset(&c->tmp);
            buf_add(&c->tmp, key, klen);
        }
        tok_store(b, &c->arena, id, c->tmp.buf ? c->tmp.buf : "", c->tmp.len);
        c->in_model[id] = 1;
    }
    /* The map reads token bytes through b->tok_bytes: point it at the arena while loading. */
    b->tok_bytes = c->arena.buf;
    for (uint32_t id = 0; id < b->n_ids; id++) {
        if (!c->in_model[id]) continue;
        int64_t o = strmap_put(b, id);
        if (o >= 0) {
            snprintf(c->why, sizeof c->why, "model.vocab: ids %lld and %u are the same token",
                     (long long)o, id);
            return c->why;
        }
        if (b->tok_len[id] == 1)
            b->byte_id[(unsigned char)b->tok_bytes[b->tok_off[id]]] = (int32_t)id;
    }
    return NULL;
}

/*
** Merge i: "a b" or ["a", "b"], both halves and the merged token in the vocab; its rank is i.
*/
static const char *load_merge(Loader *c, size_t i)
{
    Bpe *b = c->b;
    json_t *m = json_array_get(c->merges, i);
    const char *l = NULL, *r = NULL;
    size_t ll = 0, rl = 0;
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (sp && !strchr(sp + 1, ' ')) {
            l = s;
            ll = (size_t)(sp - s);
            r = sp + 1;
            rl = strlen(r);
        }
    } else if (json_is_array(m) && json_array_size(m) == 2 &&
               json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        l = json_string_value(json_array_get(m, 0));
        ll = json_string_length(json_array_get(m, 0));
        r = json_string_value(json_array_get(m, 1));
        rl = json_string_length(json_array_get(m, 1));
    }
    if (!l) {
        snprintf(c->why, sizeof c->why, "model.merges[%zu]: not \"a b\" nor [\"a\", \"b\"]", i);
        return c->why;
    }
    int64_t id[3];
    int raw = 0; /* a half that is not byte-level is kept as is (as vocab keys are above) */
    for (int k = 0; k < 2; k++) {
        const char *t = k ? r : l;
        size_t tl = k ? rl : ll;
        buf_reset(&c->tmp);
        if (chars_to_bytes(t, tl, &c->tmp) != 0) {
            buf_reset(&c->tmp);
            buf_add(&c->tmp, t, tl);
            raw = 1;
        }
        id[k] = strmap_get(b, c->tmp.buf ? c->tmp.buf : "", c->tmp.len);
        if (id[k] < 0) {
            snprintf(c->why, sizeof c->why, "model.merges[%zu]: token '%.*s' is not in the vocab",
                     i, (int)(tl > 60 ? 60 : tl), t);
            return c->why;
        }
    }
    /* The merged token is the vocab key l+r: the two halves' bytes, or l+r as is. */
    buf_reset(&c->tmp);
    if (raw) {
        buf_add(&c->tmp, l, ll);
        buf_add(&c->tmp, r, rl);
    } else
        for (int k = 0; k < 2; k++)
            buf_add(&c->tmp, c->arena.buf + b->tok_off[id[k]], b->tok_len[id[k]]);
    id[2] = strmap_get(b, c->tmp.buf ? c->tmp.buf : "", c->tmp.len);
    if (id[2] < 0) {
        snprintf(c->why, sizeof c->why,
                 "model.merges[%zu]: merged token '%.*s%.*s' is not in the vocab", i,
                 (int)(ll > 30 ? 30 : ll), l, (int)(rl > 30 ? 30 : rl), r);
        return c->why;
    }
    pair_put(&b->merges, (uint32_t)id[0], (uint32_t)id[1], (uint32_t)i, (uint32_t)id[2]);
    return NULL;
}

/*
** The merges table, then every merge in rank order.
*/
static const char *load_merges(Loader *c)
{
    Bpe *b = c->b;
    const char *bad;
    size_t nm = json_array_size(c->merges), slots = 16;
    while (slots < nm * 2 + 16) slots <<= 1;
    b->merges.key = xcalloc(slots, sizeof *b->merges.key);
    b->merges.rank = xmalloc(slots * sizeof *b->merges.rank);
    b->merges.id = xmalloc(slots * sizeof *b->merges.id);
    b->merges.mask = slots - 1;
    b->n_merges = (uint32_t)nm;
    for (size_t i = 0; i < nm; i++)
        if ((bad = load_merge(c, i))) return bad;
    return NULL;
}

/*
** Added tokens: their bytes are their content (not byte-level); an id also in the model vocab
** must hold the same token there. Then the end-of-text id: <|endoftext|> among them, else in
** the vocab, else the first special one.
*/
static const char *load_added(Loader *c)
{
    Bpe *b = c->b;
    b->added_id = xmalloc((c->n_added ? c->n_added : 1) * sizeof *b->added_id);
    b->eot = -1;
    int64_t first_special = -1;
    for (size_t i = 0; i < c->n_added; i++) {
        json_t *t = json_array_get(c->added, i);
        uint32_t id = (uint32_t)json_integer_value(json_object_get(t, "id"));
        const char *s = json_string_value(json_object_get(t, "content"));
        size_t sl = json_string_length(json_object_get(t, "content"));
        if (b->tok_len[id] != UINT32_MAX && !c->in_model[id]) {
            snprintf(c->why, sizeof c->why, "added_tokens: id %u is given twice", id);
            return c->why;
        }
        if (c->in_model[id]) { /* also in the model vocab (GPT-2 does this): must agree */
            buf_reset(&c->tmp);
            if (chars_to_bytes(s, sl, &c->tmp) != 0 || c->tmp.len != b->tok_len[id] ||
                memcmp(c->tmp.buf, c->arena.buf + b->tok_off[id], c->tmp.len) != 0) {
                buf_reset(&c->tmp);
                if (sl != b->tok_len[id] || memcmp(s, c->arena.buf + b->tok_off[id], sl) != 0) {
                    snprintf(
                        c->why, sizeof c->why,
                        "added_tokens: id %u is '%.40s' but model.vocab has another token there",
                        id, s);
                    return c->why;
                }
            }
        }
        tok_store(b, &c->arena, id, s, sl);
        b->added_id[b->n_added++] = id;
        if (sl == 13 && !memcmp(s, "<|endoftext|>", 13)) b->eot = id;
        if (first_special < 0 && json_is_true(json_object_get(t, "special"))) first_special = id;
    }
    b->tok_bytes = c->arena.buf;
    if (b->eot < 0) {
        int64_t e = strmap_get(b, "<|endoftext|>", 13);
        b->eot = e >= 0 ? e : first_special;
    }
    return NULL;
}

/*
** Parse a tokenizer.json held in b->json into b. Returns 0 or -1 with err set.
*/
static int load_parse(Bpe *b, const char *name, char *err, size_t errlen)
{
    json_error_t je;
    Loader c;
    memset(&c, 0, sizeof c);
    c.b = b;
    c.root = json_loadb(b->json, b->json_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!c.root) {
        snprintf(err, errlen, "%s: not valid JSON: line %d, column %d: %s", name, je.line,
                 je.column, je.text);
        return -1;
    }
    const char *bad = load_model(&c);
    if (!bad) bad = load_pipeline(&c);
    if (!bad) bad = load_size(&c);
    if (!bad) bad = load_vocab(&c);
    if (!bad) bad = load_merges(&c);
    if (!bad) bad = load_added(&c);
    if (!bad && !(b->re = regex_compile(c.why, sizeof c.why))) bad = c.why;
    if (bad) {
        snprintf(err, errlen, "%s: %s", name, bad);
        b->tok_bytes = NULL;
        buf_free(&c.arena);
    } else {
        b->tok_bytes = c.arena.buf ? c.arena.buf : xcalloc(1, 1);
    }
    buf_free(&c.tmp);
    free(c.in_model);
    json_decref(c.root);
    return bad ? -1 : 0;
}

/*
** Load a tokenizer.json from memory (copied: the caller keeps json). NULL + err on failure.
*/
Bpe *bpe_load_mem(const char *json, size_t len, const char *name, char *err, size_t errlen)
{
    Bpe *b = xcalloc(1, sizeof *b);
    b->json = xmalloc(len + 1);
    memcpy(b->json, json, len);
    b->json[len] = 0;
    b->json_len = len;
    b->fingerprint = hash64(json, len);
    if (load_parse(b, name ? name : "tokenizer", err, errlen) != 0) {
        bpe_free(b);
        return NULL;
    }
    return b;
}

/*
** Read the file whole (at most TS_MAX_JSON bytes, what a token stream can carry) and load it.
** NULL + err ("PATH: ...") and *kind on failure.
*/
Bpe *bpe_load_file_kind(const char *path, char *err, size_t errlen, BpeLoadErr *kind)
{
    BpeLoadErr k = BPE_LOAD_IO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        if (kind) *kind = k;
        return NULL;
    }
    Buf b = { 0 };
    char tmp[65536];
    Bpe *bp = NULL;
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0) break;
        if (b.len + (size_t)r > TS_MAX_JSON) {
            snprintf(err, errlen, "%s: larger than %llu MiB: not a tokenizer", path,
                     (unsigned long long)(TS_MAX_JSON >> 20));
            k = BPE_LOAD_FORMAT;
            goto done;
        }
        buf_add(&b, tmp, (size_t)r);
    }
    k = BPE_LOAD_FORMAT;
    bp = bpe_load_mem(b.buf ? b.buf : "", b.len, path, err, errlen);
    if (bp) k = BPE_LOAD_OK;
done:
    close(fd);
    buf_free(&b);
    if (kind) *kind = k;
    return bp;
}

/*
** The same without the kind (the contract function).
*/
Bpe *bpe_load_file(const char *path, char *err, size_t errlen)
{
    return bpe_load_file_kind(path, err, errlen, NULL);
}

/*
** Free a tokenizer (NULL is fine).
*/
void bpe_free(Bpe *b)
{
    if (!b) return;
    free(b->json);
    free(b->tok_off);
    free(b->tok_len);
    free(b->tok_bytes);
    free(b->vocab.slot);
    free(b->merges.key);
    free(b->merges.rank);
    free(b->merges.id);
    free(b->added_id);
    if (b->re) pcre2_code_free(b->re);
    free(b);
}

uint32_t bpe_vocab_size(const Bpe *b)
{
    return b->n_ids;
}
int64_t bpe_eot_id(const Bpe *b)
{
    return b->eot;
}
uint64_t bpe_fingerprint(const Bpe *b)
{
    return b->fingerprint;
}
uint32_t bpe_merge_count(const Bpe *b)
{
    return b->n_merges;
}

/*
** The tokenizer.json bytes as loaded.
*/
const char *bpe_json(const Bpe *b, size_t *len)
{
    *len = b->json_len;
    return b->json;
}

/*
** Id of a token given as its text: an added token's content, else a model token's raw bytes.
*/
int64_t bpe_token_id(const Bpe *b, const char *tok, size_t n)
{
    for (uint32_t i = 0; i < b->n_added; i++) {
        uint32_t id = b->added_id[i];
        if (b->tok_len[id] == n && !memcmp(b->tok_bytes + b->tok_off[id], tok, n)) return id;
    }
    return strmap_get(b, tok, n);
}

/*
** The raw bytes of token id (NULL when no token has that id).
*/
const char *bpe_token_bytes(const Bpe *b, uint32_t id, size_t *n)
{
    if (id >= b->n_ids || b->tok_len[id] == UINT32_MAX) return NULL;
    *n = b->tok_len[id];
    return b->tok_bytes + b->tok_off[id];
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define CACHE_MAX_WORD 256           /* longer pre-tokens are not cached */
#define CACHE_MAX_ENTRIES (1u << 18) /* then the cache is emptied: bounded memory */

typedef struct {
    uint32_t c;   /* token id */
    int32_t prev; /* index of the previous live symbol, -1 at the start */
    int32_t next; /* index of the next live symbol, -1 at the end */
    uint32_t len; /* bytes covered; 0 once merged into its left neighbour */
} Sym;

typedef struct {
    uint32_t rank; /* merge rank (lower first) */
    uint32_t pos;  /* symbol index (leftmost first on equal ranks) */
} HeapItem;

/* A cache slot: 32 bytes, so that a hit on a short word costs one cache line. */
#define CACHE_INLINE_WORD 16
#define CACHE_INLINE_IDS 2
typedef struct {
    uint32_t hash; /* high half of the word's hash (the slot comes from the low half) */
    uint16_t wlen; /* word length, 0 = empty slot */
    uint16_t nids; /* number of ids */
    union {
        char w[CACHE_INLINE_WORD]; /* the word, when wlen <= CACHE_INLINE_WORD */
        uint32_t woff;             /* else its offset in words */
    } k;
    union {
        uint32_t id[CACHE_INLINE_IDS]; /* the ids, when nids <= CACHE_INLINE_IDS */
        uint32_t ioff;                 /* else their offset in cids */
    } v;
} CacheEnt;

struct BpeEncoder {
    const Bpe *b;          /* the tokenizer */
    BpePretok *pt;         /* pre-tokenizer (shares b->re) */
    Sym *sym;              /* work space for one word */
    size_t symcap;         /* its capacity */
    HeapItem *heap;        /* merge queue for one word */
    size_t heapcap;        /* its capacity */
    CacheEnt *ent;         /* cache table (open addressing, 2x entries) */
    uint32_t nent;         /* entries used */
    uint32_t entmask;      /* table size - 1 */
    Buf words;             /* cached words' bytes */
    uint32_t *cids;        /* cached ids */
    size_t ncids, capcids; /* used, allocated */
    uint32_t **out;        /* current output (during bpe_encoder_encode) */
    size_t *outn, *outcap;
};

/*
** An encoder for one thread; b must outlive it.
*/
BpeEncoder *bpe_encoder_new(const Bpe *b)
{
    BpeEncoder *e = xcalloc(1, sizeof *e);
    e->b = b;
    e->pt = pretok_make(b->re);
    e->entmask = 4095; /* grows to CACHE_MAX_ENTRIES * 2 slots */
    return e;
}

/*
** Free an encoder and its cache (NULL is fine).
*/
void bpe_encoder_free(BpeEncoder *e)
{
    if (!e) return;
    bpe_pretok_free(e->pt);
    free(e->sym);
    free(e->heap);
    free(e->ent);
    buf_free(&e->words);
    free(e->cids);
    free(e);
}

/*
** Append n ids to the caller's output array.
*/
static inline void out_ids(BpeEncoder *e, const uint32_t *ids, size_t n)
{
    if (n == 0) return;
    if (*e->outn + n > *e->outcap) {
        size_t c = *e->outcap ? *e->outcap * 2 : 1024;
        while (c < *e->outn + n) c *= 2;
        *e->out = xrealloc(*e->out, c * sizeof **e->out);
        *e->outcap = c;
    }
    memcpy(*e->out + *e->outn, ids, n * sizeof *ids);
    *e->outn += n;
}

/*
** Push (rank, pos) on the word's min-heap of *hn items.
*/
static void heap_push(BpeEncoder *e, size_t *hn, uint32_t rank, uint32_t pos)
{
    if (*hn == e->heapcap) {
        e->heapcap = e->heapcap ? e->heapcap * 2 : 64;
        e->heap = xrealloc(e->heap, e->heapcap * sizeof *e->heap);
    }
    HeapItem *h = e->heap;
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].rank < rank || (h[p].rank == rank && h[p].pos < pos)) break;
        h[i] = h[p];
        i = p;
    }
    h[i].rank = rank;
    h[i].pos = pos;
}

/*
** Pop the lowest (rank, pos) from the word's heap (*hn > 0).
*/
static HeapItem heap_pop(BpeEncoder *e, size_t *hn)
{
    HeapItem *h = e->heap, top = h[0], last = h[--*hn];
    size_t n = *hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n &&
            (h[c + 1].rank < h[c].rank || (h[c + 1].rank == h[c].rank && h[c + 1].pos < h[c].pos)))
            c++;
        if (last.rank < h[c].rank || (last.rank == h[c].rank && last.pos <= h[c].pos)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/*
** BPE on one pre-token p[0..n): leaves the ids in e->sym (live symbols chained from index 0
** via next) and returns how many symbols are live. Bytes the vocab lacks are dropped, as
** Hugging Face does when there is no unk token.
*/
static size_t word_merge(BpeEncoder *e, const unsigned char *p, size_t n, uint32_t *ids)
{
    const Bpe *b = e->b;
    if (n > e->symcap) {
        e->symcap = n + 64;
        e->sym = xrealloc(e->sym, e->symcap * sizeof *e->sym);
    }
    Sym *s = e->sym;
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[p[i]];
        if (id < 0) continue;
        s[ns].c = (uint32_t)id;
        s[ns].prev = (int32_t)ns - 1;
        s[ns].next = (int32_t)ns + 1;
        s[ns].len = 1;
        ns++;
    }
    if (!ns) return 0;
    s[ns - 1].next = -1;
    size_t hn = 0;
    uint32_t rank, nid;
    for (size_t i = 0; i + 1 < ns; i++)
        if (pair_get(&b->merges, s[i].c, s[i + 1].c, &rank, &nid))
            heap_push(e, &hn, rank, (uint32_t)i);
    while (hn) {
        HeapItem t = heap_pop(e, &hn);
        Sym *a = &s[t.pos];
        if (!a->len || a->next < 0) continue;
        Sym *r = &s[a->next];
        uint32_t rk;
        if (!pair_get(&b->merges, a->c, r->c, &rk, &nid) || rk != t.rank) continue; /* stale */
        a->c = nid;
        a->len += r->len;
        a->next = r->next;
        r->len = 0;
        if (a->next >= 0) s[a->next].prev = (int32_t)t.pos;
        if (a->prev >= 0 && pair_get(&b->merges, s[a->prev].c, a->c, &rank, &nid))
            heap_push(e, &hn, rank, (uint32_t)a->prev);
        if (a->next >= 0 && pair_get(&b->merges, a->c, s[a->next].c, &rank, &nid))
            heap_push(e, &hn, rank, t.pos);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = s[i].next) ids[k++] = s[i].c;
    return k;
}

/*
** Encode one pre-token, through the cache.
*/
static void encode_piece(void *ctx, const char *p, size_t n)
{
    BpeEncoder *e = ctx;
    const Bpe *b = e->b;
    if (n == 1) { /* one byte: no merge possible */
        int32_t id = b->byte_id[(unsigned char)*p];
        if (id >= 0) {
            uint32_t u = (uint32_t)id;
            out_ids(e, &u, 1);
        }
        return;
    }
    if (b->ignore_merges) {
        int64_t id = strmap_get(b, p, n);
        if (id >= 0) {
            uint32_t u = (uint32_t)id;
            out_ids(e, &u, 1);
            return;
        }
    }
    uint64_t h = 0;
    size_t slot = 0;
    if (n <= CACHE_MAX_WORD) {
        h = hash64(p, n);
        if (!e->ent) e->ent = xcalloc((size_t)e->entmask + 1, sizeof *e->ent);
        slot = h & e->entmask;
        uint32_t hh = (uint32_t)(h >> 32);
        for (;;) {
            const CacheEnt *c = &e->ent[slot];
            if (!c->wlen) break;
            if (c->hash == hh && c->wlen == n &&
                !memcmp(n <= CACHE_INLINE_WORD ? c->k.w : e->words.buf + c->k.woff, p, n)) {
                out_ids(e, c->nids <= CACHE_INLINE_IDS ? c->v.id : e->cids + c->v.ioff, c->nids);
                return;
            }
            slot = (slot + 1) & e->entmask;
        }
    }
    /* Miss: merge into the cached-ids area (room for n ids), then copy out. */
    if (e->ncids + n > e->capcids) {
        e->capcids = (e->ncids + n) * 2 + 4096;
        e->cids = xrealloc(e->cids, e->capcids * sizeof *e->cids);
    }
    uint32_t *ids = e->cids + e->ncids;
    size_t k = word_merge(e, (const unsigned char *)p, n, ids);
    out_ids(e, ids, k);
    if (n > CACHE_MAX_WORD) return;
    if (e->nent >= CACHE_MAX_ENTRIES) { /* full: start over (keeps memory bounded) */
        memset(e->ent, 0, ((size_t)e->entmask + 1) * sizeof *e->ent);
        e->nent = 0;
        buf_reset(&e->words);
        memmove(e->cids, ids, k * sizeof *ids);
        e->ncids = 0;
        ids = e->cids;
        slot = h & e->entmask;
    } else if ((e->nent + 1) * 2 > e->entmask + 1) { /* half full: double the table */
        size_t ns = ((size_t)e->entmask + 1) * 2;
        CacheEnt *ne = xcalloc(ns, sizeof *ne);
        for (size_t i = 0; i <= e->entmask; i++) {
            if (!e->ent[i].wlen) continue;
            /* the slot index needs the low half of the hash: recompute it from the word */
            const CacheEnt *c = &e->ent[i];
            uint64_t hw = hash64(c->wlen <= CACHE_INLINE_WORD ? c->k.w : e->words.buf + c->k.woff,
                                 c->wlen);
            size_t j = hw & (ns - 1);
            while (ne[j].wlen) j = (j + 1) & (ns - 1);
            ne[j] = *c;
        }
        free(e->ent);
        e->ent = ne;
        e->entmask = (uint32_t)(ns - 1);
        slot = h & e->entmask;
        while (e->ent[slot].wlen) slot = (slot + 1) & e->entmask;
    }
    CacheEnt *c = &e->ent[slot];
    c->hash = (uint32_t)(h >> 32);
    c->wlen = (uint16_t)n;
    c->nids = (uint16_t)k;
    if (n <= CACHE_INLINE_WORD)
        memcpy(c->k.w, p, n);
    else {
        c->k.woff = (uint32_t)e->words.len;
        buf_add(&e->words, p, n);
    }
    if (k <= CACHE_INLINE_IDS)
        memcpy(c->v.id, ids, k * sizeof *ids);
    else {
        c->v.ioff = (uint32_t)(ids - e->cids);
        e->ncids += k;
    }
    e->nent++;
}

/*
** Find the leftmost-longest added token in t[from..len): returns 1 with *at, *id, *tl set.
*/
static int find_added(const Bpe *b, const char *t, size_t len, size_t from, size_t *at,
                      uint32_t *id, size_t *tl)
{
    int found = 0;
    for (uint32_t i = 0; i < b->n_added; i++) {
        uint32_t a = b->added_id[i];
        const char *c = b->tok_bytes + b->tok_off[a];
        size_t cl = b->tok_len[a];
        const char *m = memmem(t + from, len - from, c, cl);
        if (!m) continue;
        size_t pos = (size_t)(m - t);
        if (!found || pos < *at || (pos == *at && cl > *tl)) {
            *at = pos;
            *id = a;
            *tl = cl;
            found = 1;
        }
    }
    return found;
}

/*
** Encode text, appending ids to *ids (see bpe_encode). Returns 0 or -1.
*/
int bpe_encoder_encode(BpeEncoder *e, const char *text, size_t len, uint32_t **ids, size_t *n,
                       size_t *cap)
{
    const Bpe *b = e->b;
    e->out = ids;
    e->outn = n;
    e->outcap = cap;
    size_t pos = 0;
    while (pos < len) {
        size_t at = len, tl = 0;
        uint32_t aid = 0;
        int hit = b->n_added && find_added(b, text, len, pos, &at, &aid, &tl);
        if (!hit) at = len;
        if (at > pos && bpe_pretok_split(e->pt, text + pos, at - pos, encode_piece, e) != 0)
            return -1;
        if (!hit) break;
        out_ids(e, &aid, 1);
        pos = at + tl;
    }
    return 0;
}

/*
** Encode with a throw-away encoder (convenient for short texts such as prompts).
*/
int bpe_encode(const Bpe *b, const char *text, size_t len, uint32_t **ids, size_t *n, size_t *cap)
{
    BpeEncoder *e = bpe_encoder_new(b);
    int rc = bpe_encoder_encode(e, text, len, ids, n, cap);
    bpe_encoder_free(e);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding                                                                                    */
/* ------------------------------------------------------------------------------------------ */

int bpe_decode(const Bpe *b, const uint32_t *ids, size_t n, Buf *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= b->n_ids || b->tok_len[id] == UINT32_MAX) return -1;
        buf_add(out, b->tok_bytes + b->tok_off[id], b->tok_len[id]);
    }
    return 0;
}
