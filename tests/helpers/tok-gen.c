// SPDX-License-Identifier: MIT
/*
** tok-gen: deterministic generator of Python-like source text for the tokenizer tests.
**
**   tok-gen [-s SEED] [-n DOCS] [-u] MODE
**   MODE: jsonl    one codemill record per document ({"repo_name","path","content"})
**         lines    one record per line of the text (the "\n" kept), as Hugging Face's file
**                  trainer sees it
**         text     the documents back to back (raw)
**         strings  one JSON string per document (input of hf-encode style scripts)
**         bytes    raw bytes (-n KiB): text, valid multi-byte characters, white space and
**                  every kind of invalid UTF-8 (truncated, overlong, surrogate, > U+10FFFF,
**                  stray continuation bytes, F5..FF), to compare the two pre-tokenizers
**         sweep    JSON strings that put every code point of the BMP (and every 97th above it)
**                  in the contexts that decide a split: after a letter, a digit, a space,
**                  itself, before a space and a newline (-n is ignored)
**   -u  add hard cases: all control characters, U+FFFD, lone CR, long whitespace runs, and
**       (jsonl/text only) every byte value is not possible in JSON, so only valid UTF-8 here.
**
** Text: identifiers, keywords, numbers (ints, floats, hex, 1e-5), strings with contractions
** ("don't", "we're", "it'll"), comments with accented words, CJK, emoji, tabs, CRLF lines,
** indentation runs of 1-40 spaces, blank lines.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "json.h"
#include "hash.h"

static uint64_t g_rng;
static int g_hard;

static unsigned rnd(unsigned n)
{
    return (unsigned)(splitmix64(&g_rng) % n);
}

static const char *kw[] = { "def",    "class", "return", "import",  "from",  "as",
                            "if",     "elif",  "else",   "for",     "while", "in",
                            "not",    "and",   "or",     "with",    "try",   "except",
                            "lambda", "yield", "None",   "True",    "False", "self",
                            "np",     "pd",    "plt",    "sklearn", "fit",   "predict" };
static const char *words[] = {
    "data",   "frame",   "model",   "train",    "test",      "score",     "value",
    "index",  "array",   "matrix",  "shape",    "axis",      "mean",      "std",
    "sum",    "label",   "feature", "weight",   "loss",      "grad",      "batch",
    "size",   "count",   "result",  "param",    "estimator", "transform", "pipeline",
    "column", "row",     "dtype",   "float64",  "int32",     "x",         "y",
    "df",     "X_train", "y_pred",  "__init__", "_private",  "CamelCase", "HTTPServer"
};
static const char *uni[] = { "café", "naïve",  "Straße", "résumé", "日本語",   "数据", "данные",
                             "λ",    "π≈3.14", "😀",      "🚀✨",     "👍🏽", "∑x²",  "→",
                             "—",    "…",      "€",      "µs",     "ﬁ",        "Ω",    "½" };
static const char *contr[] = { "don't", "we're", "it'll", "I've", "she'd", "it's",
                               "I'm",   "can't", "'s",    "'S",   "O'Neil" };
static const char *punct[] = { "(",  ")",  "[",  "]",  "{",  "}",  ":", ",", ".", "=",
                               "==", "!=", "+=", "->", "**", "//", "%", "@", "#", "\"",
                               "'",  "\\", "|",  "&",  "^",  "~",  "<", ">", "?", "!" };

#define PICK(a) a[rnd(sizeof a / sizeof a[0])]

static void add_number(Buf *b)
{
    switch (rnd(5)) {
    case 0: buf_addf(b, "%u", rnd(100)); break;
    case 1: buf_addf(b, "%u", rnd(1000000000)); break;
    case 2: buf_addf(b, "%u.%u", rnd(1000), rnd(100000)); break;
    case 3: buf_addf(b, "0x%x", rnd(65536)); break;
    default: buf_addf(b, "1e-%u", rnd(12)); break;
    }
}

static void add_line(Buf *b)
{
    unsigned indent = rnd(6) == 0 ? rnd(41) : 4 * rnd(4);
    for (unsigned i = 0; i < indent; i++) buf_addc(b, rnd(20) == 0 ? '\t' : ' ');
    unsigned n = 1 + rnd(12);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = rnd(20);
        if (i && rnd(3)) buf_addc(b, ' ');
        if (k < 4)
            buf_adds(b, PICK(kw));
        else if (k < 10)
            buf_adds(b, PICK(words));
        else if (k < 12)
            add_number(b);
        else if (k < 15)
            buf_adds(b, PICK(punct));
        else if (k < 16)
            buf_adds(b, PICK(uni));
        else if (k < 17)
            buf_adds(b, PICK(contr));
        else if (k < 18) {
            buf_adds(b, "# ");
            buf_adds(b, PICK(uni));
            buf_adds(b, " it's ");
            buf_adds(b, PICK(words));
        } else if (k < 19) {
            for (unsigned s = 1 + rnd(8); s; s--) buf_addc(b, ' ');
        } else {
            buf_addc(b, '"');
            buf_adds(b, PICK(contr));
            buf_addc(b, ' ');
            buf_adds(b, PICK(words));
            buf_addc(b, '"');
        }
    }
    if (g_hard && rnd(8) == 0) {
        switch (rnd(6)) {
        case 0: buf_addc(b, (char)(1 + rnd(31))); break; /* control char */
        case 1: buf_adds(b, "\xEF\xBF\xBD"); break;      /* U+FFFD */
        case 2: buf_addc(b, '\r'); break;                /* lone CR */
        case 3:
            for (unsigned s = 50 + rnd(300); s; s--) buf_addc(b, ' ');
            break;
        case 4:
            buf_adds(b, "\xC2\x85\xE2\x80\xA8\xC2\xA0\xE3\x80\x80");
            break; /* NEL LS NBSP ideographic space */
        default: buf_addc(b, 0x7f); break;
        }
    }
    buf_adds(b, rnd(10) == 0 ? "\r\n" : "\n");
    if (rnd(7) == 0) buf_adds(b, rnd(2) ? "\n" : "   \n");
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    long ndocs = 100;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            ndocs = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-u"))
            g_hard = 1;
        else {
            fprintf(
                stderr,
                "usage: tok-gen [-s SEED] [-n DOCS] [-u] jsonl|lines|text|strings|bytes|sweep\n");
            return 2;
        }
    }
    if (i + 1 != argc) {
        fprintf(stderr,
                "usage: tok-gen [-s SEED] [-n DOCS] [-u] jsonl|lines|text|strings|bytes|sweep\n");
        return 2;
    }
    const char *mode = argv[i];
    g_rng = seed;
    if (!strcmp(mode, "bytes")) {
        static const char *frag[] = { "abc",
                                      " def",
                                      "'s",
                                      "'ll",
                                      " 42",
                                      "  ",
                                      "\n",
                                      "\t ",
                                      " \xC3\xA9t\xC3\xA9",
                                      "\xE2\x80\xA8",
                                      "\xC2\x85",
                                      "\xE3\x80\x80",
                                      "\xF0\x9F\x98\x80",
                                      "(",
                                      ");",
                                      "\xC3",
                                      "\xE2\x82",
                                      "\xF0\x9F\x98",
                                      "\xC0\xAF",
                                      "\xE0\x80\xAF",
                                      "\xED\xA0\x80",
                                      "\xF4\x90\x80\x80",
                                      "\x80",
                                      "\xBF\xBF",
                                      "\xF5",
                                      "\xFF\xFE",
                                      "\xEF\xBF\xBD",
                                      " '",
                                      "\xE1\xA0\x8E",
                                      "\xE2\x80\x8B",
                                      "x\xCC\x81",
                                      "\xD9\xA3" };
        Buf o = { 0 };
        while (o.len < (size_t)ndocs * 1024) {
            if (rnd(8) == 0)
                buf_addc(&o, (char)rnd(256));
            else
                buf_adds(&o, PICK(frag));
        }
        fwrite(o.buf, 1, o.len, stdout);
        buf_free(&o);
        return fflush(stdout) ? 3 : 0;
    }
    if (!strcmp(mode, "sweep")) {
        Buf d = { 0 }, o = { 0 };
        for (uint32_t cp = 1; cp <= 0x10FFFF; cp += cp < 0x10000 ? 1 : 97) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            char u[4];
            int n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 63));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 63));
                u[2] = (char)(0x80 | (cp & 63));
                n = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 63));
                u[2] = (char)(0x80 | ((cp >> 6) & 63));
                u[3] = (char)(0x80 | (cp & 63));
                n = 4;
            }
            /* a<c>1<c> <c><c> x<c>'s <c>\n */
            buf_addc(&d, 'a');
            buf_add(&d, u, n);
            buf_addc(&d, '1');
            buf_add(&d, u, n);
            buf_addc(&d, ' ');
            buf_add(&d, u, n);
            buf_add(&d, u, n);
            buf_adds(&d, " x");
            buf_add(&d, u, n);
            buf_adds(&d, "'s ");
            buf_add(&d, u, n);
            buf_addc(&d, '\n');
            if ((cp & 63) == 0) {
                buf_reset(&o);
                json_escape(&o, d.buf, d.len);
                buf_addc(&o, '\n');
                if (fwrite(o.buf, 1, o.len, stdout) != o.len) return 3;
                buf_reset(&d);
            }
        }
        if (d.len) {
            buf_reset(&o);
            json_escape(&o, d.buf, d.len);
            buf_addc(&o, '\n');
            fwrite(o.buf, 1, o.len, stdout);
        }
        buf_free(&d);
        buf_free(&o);
        return fflush(stdout) ? 3 : 0;
    }
    Buf doc = { 0 }, out = { 0 }, carry = { 0 };
    for (long d = 0; d < ndocs; d++) {
        buf_reset(&doc);
        unsigned nl = 1 + rnd(60);
        for (unsigned l = 0; l < nl; l++) add_line(&doc);
        if (rnd(4) == 0) doc.len--; /* some documents do not end with a newline */
        doc.buf[doc.len] = 0;
        buf_reset(&out);
        if (!strcmp(mode, "jsonl")) {
            buf_addf(&out,
                     "{\"repo_name\":\"gen/r%ld\",\"path\":\"pkg/m%ld.py\",\"content\":", d % 7, d);
            json_escape(&out, doc.buf, doc.len);
            buf_adds(&out, ",\"stars\":[1,2]}\n");
        } else if (!strcmp(mode,
                           "lines")) { /* lines of the whole text, as a file reader sees them */
            buf_add(&carry, doc.buf, doc.len);
            size_t s = 0;
            for (size_t k = 0; k < carry.len; k++)
                if (carry.buf[k] == '\n') {
                    buf_adds(&out, "{\"content\":");
                    json_escape(&out, carry.buf + s, k + 1 - s);
                    buf_adds(&out, "}\n");
                    s = k + 1;
                }
            memmove(carry.buf, carry.buf + s, carry.len - s);
            carry.len -= s;
        } else if (!strcmp(mode, "text")) {
            buf_add(&out, doc.buf, doc.len);
        } else if (!strcmp(mode, "strings")) {
            json_escape(&out, doc.buf, doc.len);
            buf_addc(&out, '\n');
        } else {
            fprintf(stderr, "tok-gen: unknown mode '%s'\n", mode);
            return 2;
        }
        if (fwrite(out.buf, 1, out.len, stdout) != out.len) return 3;
    }
    if (carry.len) {
        buf_reset(&out);
        buf_adds(&out, "{\"content\":");
        json_escape(&out, carry.buf, carry.len);
        buf_adds(&out, "}\n");
        if (fwrite(out.buf, 1, out.len, stdout) != out.len) return 3;
    }
    buf_free(&carry);
    buf_free(&doc);
    buf_free(&out);
    return fflush(stdout) ? 3 : 0;
}
