// SPDX-License-Identifier: MIT
/*
** json.c: strict JSON object reader and string escaper (see json.h).
*/
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <emmintrin.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s; /* text */
    size_t n;      /* its length */
    size_t i;      /* cursor */
    JsonObj *o;    /* where errors go */
} P;

static int fail(P *p, const char *msg)
{
    if (p->o) {
        p->o->err_pos = p->i;
        snprintf(p->o->err, sizeof p->o->err, "%s", msg);
    }
    return -1;
}

static void skip_ws(P *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Mask of the bytes of v that end a plain run in a string: '"', '\\', a control byte (<= 0x1f)
** or a byte >= 0x80 (min(v, 0x1f) == v catches <= 0x1f; the high bit the rest). */
static inline int special_mask(__m128i v)
{
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v));
    return _mm_movemask_epi8(m) | _mm_movemask_epi8(v);
}

/* Store the 16 bytes at s whole at d and return how many come before the first one that
** matters (special_mask's bytes with `all`, else backslashes only): 16 if none. The caller
** moves both cursors by that much; what was stored past it is overwritten later. */
static inline size_t block_copy(const char *s, char *d, int all)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    _mm_storeu_si128((__m128i *)(void *)d, v);
    int mask = all ? special_mask(v) : _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    return mask ? (size_t)__builtin_ctz((unsigned)mask) : 16;
}

/* Find the first byte in s[i..n) that is '"', '\\', a control byte or >= 0x80. */
static size_t scan_plain(const unsigned char *s, size_t i, size_t n)
{
    while (i + 16 <= n) {
        int mask = special_mask(_mm_loadu_si128((const __m128i *)(s + i)));
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return i;
        i++;
    }
    return n;
}

/* Is e the letter of a one-character escape (\" \\ \/ \b \f \n \r \t)? A switch, not a
** strchr per escape: Python source has an escape on every line (\n), and the call was 4% of
** cm-filter's time. */
static inline int simple_escape(unsigned char e)
{
    switch (e) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't': return 1;
    default: return 0;
    }
}

enum { STOP_QUOTE, STOP_ESCAPE, STOP_UTF8 };

/*
** What ends a plain run of a string at s[i] (i < n): the closing quote (STOP_QUOTE), a valid
** escape (STOP_ESCAPE, *len its bytes) or a valid run of UTF-8 (STOP_UTF8, *len its bytes);
** -1 after fail() for a bad escape, a control character or invalid UTF-8. Shared by
** parse_string and parse_string_decode, so both give the same messages at the same places.
*/
static inline __attribute__((always_inline)) int string_stop(P *p, size_t i, size_t *len)
{
    const unsigned char *s = (const unsigned char *)p->s;
    unsigned char c = s[i];
    if (c == '"') return STOP_QUOTE;
    if (c == '\\') {
        if (i + 1 >= p->n) {
            p->i = i;
            return fail(p, "unterminated string");
        }
        unsigned char e = s[i + 1];
        if (e == 'u') {
            if (i + 6 > p->n || hexval((char)s[i + 2]) < 0 || hexval((char)s[i + 3]) < 0 ||
                hexval((char)s[i + 4]) < 0 || hexval((char)s[i + 5]) < 0) {
                p->i = i;
                return fail(p, "bad \\u escape");
            }
            *len = 6;
        } else if (simple_escape(e)) {
            *len = 2;
        } else {
            p->i = i;
            return fail(p, "bad escape in string");
        }
        return STOP_ESCAPE;
    }
    if (c < 0x20) {
        p->i = i;
        return fail(p, "control character in string");
    }
    /* c >= 0x80: validate the UTF-8 run */
    size_t j = i;
    while (j < p->n && s[j] >= 0x80) j++;
    size_t ok = utf8_valid_prefix(s + i, j - i);
    if (ok != j - i) {
        /* a sequence may continue past j only if truncated: treat as invalid */
        p->i = i + ok;
        return fail(p, "invalid UTF-8 in string");
    }
    *len = j - i;
    return STOP_UTF8;
}

/* Parse a string starting at the opening quote; sets raw span (without quotes). */
static int parse_string(P *p, const char **raw, size_t *rawlen, int *escaped)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t i = p->i + 1, start = i, len = 0;
    int esc = 0, stop;
    for (;;) {
        i = scan_plain(s, i, p->n);
        if (i >= p->n) {
            p->i = i;
            return fail(p, "unterminated string");
        }
        if ((stop = string_stop(p, i, &len)) < 0) return -1;
        if (stop == STOP_QUOTE) break;
        esc |= stop == STOP_ESCAPE;
        i += len;
    }
    *raw = p->s + start;
    *rawlen = i - start;
    *escaped = esc;
    p->i = i + 1;
    return 0;
}

static int parse_number(P *p)
{
    size_t i = p->i;
    const char *s = p->s;
    if (i < p->n && s[i] == '-') i++;
    if (i >= p->n) return fail(p, "bad number");
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return fail(p, "bad number");
    }
    if (i < p->n && s[i] == '.') {
        i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->i = i;
            return fail(p, "bad number");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->i = i;
            return fail(p, "bad number");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    p->i = i;
    return 0;
}

static int parse_value(P *p, int depth, int *type);

static int parse_container(P *p, int depth, char close)
{
    if (depth > MAX_DEPTH) return fail(p, "nesting too deep");
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (close == '}') {
            const char *k;
            size_t kl;
            int e;
            if (p->i >= p->n || p->s[p->i] != '"') return fail(p, "expected a key");
            if (parse_string(p, &k, &kl, &e)) return -1;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return fail(p, "expected ':'");
            p->i++;
            skip_ws(p);
        }
        int t;
        if (parse_value(p, depth + 1, &t)) return -1;
        skip_ws(p);
        if (p->i >= p->n) return fail(p, "unexpected end of line");
        char c = p->s[p->i];
        if (c == ',') {
            p->i++;
            continue;
        }
        if (c == close) {
            p->i++;
            return 0;
        }
        return fail(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(P *p, int depth, int *type)
{
    if (p->i >= p->n) return fail(p, "unexpected end of line");
    char c = p->s[p->i];
    switch (c) {
    case '"': {
        const char *r;
        size_t rl;
        int e;
        *type = JSON_STRING;
        return parse_string(p, &r, &rl, &e);
    }
    case '{': *type = JSON_OBJECT; return parse_container(p, depth, '}');
    case '[': *type = JSON_ARRAY; return parse_container(p, depth, ']');
    case 't':
        *type = JSON_TRUE;
        if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "true", 4)) {
            p->i += 4;
            return 0;
        }
        return fail(p, "bad literal");
    case 'f':
        *type = JSON_FALSE;
        if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "false", 5)) {
            p->i += 5;
            return 0;
        }
        return fail(p, "bad literal");
    case 'n':
        *type = JSON_NULL;
        if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "null", 4)) {
            p->i += 4;
            return 0;
        }
        return fail(p, "bad literal");
    default:
        *type = JSON_NUMBER;
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
        return fail(p, "unexpected character");
    }
}

static int parse_string_decode(P *p, Buf *out, JsonField *f);

int json_parse_object(JsonObj *o, const char *line, size_t len)
{
    P p = { line, len, 0, o };
    o->n = 0;
    o->err[0] = 0;
    o->err_pos = 0;
    skip_ws(&p);
    if (p.i >= p.n || p.s[p.i] != '{') return fail(&p, "expected a JSON object");
    p.i++;
    skip_ws(&p);
    if (p.i < p.n && p.s[p.i] == '}') {
        p.i++;
    } else {
        for (;;) {
            skip_ws(&p);
            JsonField f;
            if (p.i >= p.n || p.s[p.i] != '"') return fail(&p, "expected a key");
            if (parse_string(&p, &f.key, &f.klen, &f.escaped)) return -1;
            skip_ws(&p);
            if (p.i >= p.n || p.s[p.i] != ':') return fail(&p, "expected ':'");
            p.i++;
            skip_ws(&p);
            size_t vstart = p.i;
            if (p.i < p.n && p.s[p.i] == '"') {
                f.type = JSON_STRING;
                if (o->decode ? parse_string_decode(&p, o->decode, &f)
                              : parse_string(&p, &f.raw, &f.rawlen, &f.escaped))
                    return -1;
            } else {
                f.escaped = 0;
                if (parse_value(&p, 1, &f.type)) return -1;
                f.raw = line + vstart;
                f.rawlen = p.i - vstart;
            }
            if (o->n == o->cap) {
                o->cap = o->cap ? o->cap * 2 : 16;
                o->f = xrealloc(o->f, sizeof(JsonField) * (size_t)o->cap);
            }
            o->f[o->n++] = f;
            skip_ws(&p);
            if (p.i >= p.n) return fail(&p, "unexpected end of line");
            if (p.s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (p.s[p.i] == '}') {
                p.i++;
                break;
            }
            return fail(&p, "expected ',' or '}'");
        }
    }
    skip_ws(&p);
    if (p.i != p.n) return fail(&p, "text after the JSON object");
    return 0;
}

void json_obj_free(JsonObj *o)
{
    free(o->f);
    o->f = NULL;
    o->n = o->cap = 0;
}

const JsonField *json_get(const JsonObj *o, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < o->n; i++)
        if (o->f[i].klen == kl && !memcmp(o->f[i].key, key, kl)) return &o->f[i];
    return NULL;
}

/* Write code point cp as UTF-8 at d; returns the end. */
static char *put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* The value of 4 hex digits, or -1 if one is not a hex digit. */
static int32_t hex4(const char *s)
{
    int a = hexval(s[0]), b = hexval(s[1]), c = hexval(s[2]), d = hexval(s[3]);
    if ((a | b | c | d) < 0) return -1;
    return a << 12 | b << 8 | c << 4 | d;
}

/* Decode the escape at raw[*i] (a backslash; validated by the parser) to d; returns the end
** of what was written and moves *i past the escape. */
static char *decode_escape(const char *raw, size_t n, size_t *i, char *d)
{
    char e = raw[*i + 1];
    *i += 2;
    switch (e) {
    case 'n': *d++ = '\n'; return d;
    case 't': *d++ = '\t'; return d;
    case 'r': *d++ = '\r'; return d;
    case 'b': *d++ = '\b'; return d;
    case 'f': *d++ = '\f'; return d;
    case 'u': break;
    default: *d++ = e; return d; /* " \ / */
    }
    uint32_t cp = (uint32_t)hex4(raw + *i); /* validated by the parser */
    *i += 4;
    if (cp >= 0xD800 && cp < 0xDC00) {
        int32_t lo; /* -1 when not hex: then not a pair, and the parser rejects it */
        if (*i + 6 <= n && raw[*i] == '\\' && raw[*i + 1] == 'u' &&
            (lo = hex4(raw + *i + 2)) >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            *i += 6;
        } else {
            cp = 0xFFFD;
        }
    } else if (cp >= 0xDC00 && cp < 0xE000) {
        cp = 0xFFFD;
    }
    return put_utf8(d, cp);
}

/*
** One pass, straight into out's memory: the decoded text is never longer than the raw text
** (every escape shrinks), so the room is made once, with 16 bytes to spare for the block
** stores: each 16-byte block is stored whole and the cursor moves to its first backslash.
** Python source has an escaped newline on every line, so this loop, not memchr + copy calls
** per line, is what decoding costs.
*/
int json_decode_string(const char *raw, size_t n, Buf *out)
{
    buf_grow(out, n + 16);
    char *d = out->buf + out->len;
    size_t i = 0;
    while (i < n) {
        if (i + 16 <= n) {
            size_t k = block_copy(raw + i, d, 0);
            i += k;
            d += k;
            if (k == 16) continue;
        } else {
            const char *p = memchr(raw + i, '\\', n - i);
            size_t k = p ? (size_t)(p - (raw + i)) : n - i;
            memcpy(d, raw + i, k);
            i += k;
            d += k;
            if (i >= n) break;
        }
        d = decode_escape(raw, n, &i, d);
    }
    *d = 0; /* a Buf stays NUL-terminated */
    out->len = (size_t)(d - out->buf);
    return 0;
}

/*
** parse_string and json_decode_string in one pass: the value of the string at p (its opening
** quote) is validated and decoded into out (then a NUL), f gets its raw span, escaped flag and
** decoded span. The rest of the line bounds the decoded length, so the room is made once. The
** same rules and messages as parse_string.
*/
static int parse_string_decode(P *p, Buf *out, JsonField *f)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t n = p->n, i = p->i + 1, start = i, len = 0;
    buf_grow(out, n - i + 16);
    char *d0 = out->buf + out->len, *d = d0;
    int esc = 0, stop;
    for (;;) {
        if (i + 16 <= n) {
            size_t k = block_copy(p->s + i, d, 1);
            i += k;
            d += k;
            if (k == 16) continue;
        } else {
            size_t k = scan_plain(s, i, n) - i;
            memcpy(d, s + i, k);
            i += k;
            d += k;
            if (i >= n) {
                p->i = i;
                return fail(p, "unterminated string");
            }
        }
        if ((stop = string_stop(p, i, &len)) < 0) return -1;
        if (stop == STOP_QUOTE) break;
        if (stop == STOP_ESCAPE) {
            esc = 1;
            d = decode_escape(p->s, n, &i, d); /* a surrogate pair: both escapes */
        } else {
            memcpy(d, s + i, len);
            d += len;
            i += len;
        }
    }
    f->raw = p->s + start;
    f->rawlen = i - start;
    f->escaped = esc;
    f->dec_off = out->len;
    f->dec_len = (size_t)(d - d0);
    *d = 0;
    out->len += f->dec_len + 1;
    p->i = i + 1;
    return 0;
}

int json_get_int(const JsonObj *o, const char *key, int64_t *out)
{
    const JsonField *f = json_get(o, key);
    if (!f || f->type != JSON_NUMBER) return -1;
    char tmp[32];
    if (f->rawlen >= sizeof tmp) return -1;
    memcpy(tmp, f->raw, f->rawlen);
    tmp[f->rawlen] = 0;
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (*end) return -1;
    *out = v;
    return 0;
}

static const char hexd[] = "0123456789abcdef";

/* Write the escape of the special byte c ('"', '\\' or a control character) at d. */
static inline char *put_escape(char *d, unsigned char c)
{
    *d++ = '\\';
    switch (c) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\n': *d++ = 'n'; break;
    case '\t': *d++ = 't'; break;
    case '\r': *d++ = 'r'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    default:
        *d++ = 'u';
        *d++ = '0';
        *d++ = '0';
        *d++ = hexd[c >> 4];
        *d++ = hexd[c & 15];
    }
    return d;
}

/*
** Escape s[0..n) as a JSON string literal (with quotes) into dst, which must have room for
** JSON_ESCAPE_MAX(n) bytes. Source code has a character to escape ('\n', '"') every 20-30
** bytes, so each 16-byte block is stored speculatively and only the cursor decides what
** counts: an escaped character costs a few instructions, not a memcpy. Returns bytes written.
*/
size_t json_escape_into(char *dst, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *d = dst;
    size_t i = 0;
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    *d++ = '"';
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        _mm_storeu_si128((__m128i *)(void *)d, v);
        if (!mask) {
            d += 16;
            i += 16;
            continue;
        }
        unsigned k = (unsigned)__builtin_ctz(mask);
        d += k;
        i += k;
        d = put_escape(d, u[i++]);
    }
    for (; i < n; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\' || c < 0x20)
            d = put_escape(d, c);
        else
            *d++ = (char)c;
    }
    *d++ = '"';
    return (size_t)(d - dst);
}

void json_escape(Buf *out, const char *s, size_t n)
{
    buf_grow(out, JSON_ESCAPE_MAX(n));
    out->len += json_escape_into(out->buf + out->len, s, n);
    out->buf[out->len] = 0;
}

void json_escape_out(Out *o, const char *s, size_t n)
{
    size_t need = JSON_ESCAPE_MAX(n);
    if (need > o->cap - o->len) {
        out_flush(o);
        if (need > o->cap) {
            Buf b = { 0 };
            json_escape(&b, s, n);
            out_write(o, b.buf, b.len);
            buf_free(&b);
            return;
        }
    }
    o->len += json_escape_into(o->buf + o->len, s, n);
}

/* --- the field writer ---------------------------------------------------------------------- */

/* Comma before every value but the first of its object or array, then the key. */
static void jw_sep(JsonWriter *w, const char *key)
{
    uint64_t bit = 1ull << (w->depth & 63);
    if (w->first & bit)
        w->first &= ~bit;
    else
        buf_addc(w->b, ',');
    if (key) {
        json_escape(w->b, key, strlen(key));
        buf_addc(w->b, ':');
    }
}

static void jw_open(JsonWriter *w, const char *key, char c)
{
    if (w->depth >= 0) jw_sep(w, key);
    buf_addc(w->b, c);
    w->depth++;
    uint64_t bit = 1ull << (w->depth & 63);
    w->first |= bit;
    if (c == '[')
        w->arrays |= bit;
    else
        w->arrays &= ~bit;
}

void jw_begin(JsonWriter *w, Buf *b)
{
    w->b = b;
    w->depth = -1;
    w->first = 0;
    w->arrays = 0;
    jw_open(w, NULL, '{');
}

void jw_object(JsonWriter *w, const char *key)
{
    jw_open(w, key, '{');
}

void jw_array(JsonWriter *w, const char *key)
{
    jw_open(w, key, '[');
}

void jw_close(JsonWriter *w)
{
    buf_addc(w->b, (w->arrays >> (w->depth & 63)) & 1 ? ']' : '}');
    w->depth--;
}

void jw_str(JsonWriter *w, const char *key, const char *s, size_t n)
{
    jw_sep(w, key);
    json_escape(w->b, s, n);
}

void jw_cstr(JsonWriter *w, const char *key, const char *s)
{
    if (!s) {
        jw_sep(w, key);
        buf_adds(w->b, "null");
        return;
    }
    jw_str(w, key, s, strlen(s));
}

void jw_u64(JsonWriter *w, const char *key, uint64_t v)
{
    jw_sep(w, key);
    buf_addf(w->b, "%llu", (unsigned long long)v);
}

void jw_i64(JsonWriter *w, const char *key, int64_t v)
{
    jw_sep(w, key);
    buf_addf(w->b, "%lld", (long long)v);
}

void jw_bool(JsonWriter *w, const char *key, int v)
{
    jw_sep(w, key);
    buf_adds(w->b, v ? "true" : "false");
}

void jw_fmt(JsonWriter *w, const char *key, const char *fmt, ...)
{
    jw_sep(w, key);
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof tmp) n = (int)sizeof tmp - 1;
    if (n > 0) buf_add(w->b, tmp, (size_t)n);
}
