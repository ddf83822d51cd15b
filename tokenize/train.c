// SPDX-License-Identifier: MIT
/*
** train.c: learn byte-level BPE merges (see train.h).
**
** Two phases, as in Hugging Face's BpeTrainer (tokenizers/src/models/bpe/trainer.rs), whose
** choices are kept so that the same text gives the same merges:
**   1. count words: each document is cut around special tokens and pre-tokenized with the
**      GPT-2 regex; every pre-token's count goes into a hash table (64-bit counts). Each thread
**      has its own table and a fixed share of each batch; tables are added up at the end.
**   2. merges: ids are the specials, then the 256 byte tokens in the order of their byte-level
**      characters (Hugging Face sorts the alphabet the same way but keeps only the bytes it
**      saw). Pair counts, and for each queued pair the words it occurs in, feed a max-heap
**      ordered by (count, then the smaller (left id, right id)); stale entries are re-queued
**      with their current count when they surface (lazy update). Merging a pair in its words
**      yields count changes for the neighbouring pairs; pairs that gained occurrences are
**      queued again with those words. Counts are 64-bit (Hugging Face's i32 overflows).
*/
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenize/bpe.h"
#include "tokenize/train.h"
#include "hash.h"

/* ------------------------------------------------------------------------------------------ */
/* Word table                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint64_t hash;  /* hash64 of the word, 0 = empty slot (real hashes of 0 become 1) */
    uint64_t count; /* occurrences */
    uint64_t off;   /* bytes at arena.buf + off */
    uint32_t len;   /* byte length */
} WordEnt;

typedef struct {
    WordEnt *e;  /* slots */
    size_t mask; /* slots - 1 */
    size_t n;    /* used */
    Buf arena;   /* word bytes */
} WordMap;

/*
** An empty word table with `slots` slots (a power of two).
*/
static void wm_init(WordMap *m, size_t slots)
{
    memset(m, 0, sizeof *m);
    m->e = xcalloc(slots, sizeof *m->e);
    m->mask = slots - 1;
}

/*
** Free a word table.
*/
static void wm_free(WordMap *m)
{
    free(m->e);
    buf_free(&m->arena);
}

/*
** Double the slots of a word table.
*/
static void wm_grow(WordMap *m)
{
    size_t ns = (m->mask + 1) * 2;
    WordEnt *ne = xcalloc(ns, sizeof *ne);
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->e[i].hash) continue;
        size_t j = m->e[i].hash & (ns - 1);
        while (ne[j].hash) j = (j + 1) & (ns - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->mask = ns - 1;
}

/*
** Add c occurrences of word p[0..n) whose hash is h.
*/
static void wm_add(WordMap *m, const char *p, size_t n, uint64_t h, uint64_t c)
{
    if (!h) h = 1;
    size_t i = h & m->mask;
    for (;;) {
        WordEnt *e = &m->e[i];
        if (!e->hash) break;
        if (e->hash == h && e->len == n && !memcmp(m->arena.buf + e->off, p, n)) {
            e->count += c;
            return;
        }
        i = (i + 1) & m->mask;
    }
    WordEnt *e = &m->e[i];
    e->hash = h;
    e->count = c;
    e->off = m->arena.len;
    e->len = (uint32_t)n;
    buf_add(&m->arena, p, n);
    if (++m->n * 2 > m->mask + 1) wm_grow(m);
}

/*
** Keep at most max/2 words: drop every word whose count is at most a threshold chosen so that
** the rest fits (the rarest words go first; words tied at the threshold all go). Returns the
** number of words dropped. Deterministic: depends only on the table's contents.
*/
static uint64_t wm_prune(WordMap *m, uint64_t max)
{
    enum { H = 4096 };
    uint64_t hist[H + 1] = { 0 };
    for (size_t i = 0; i <= m->mask; i++)
        if (m->e[i].hash) hist[m->e[i].count >= H ? H : m->e[i].count]++;
    uint64_t keep = max / 2, above = m->n, t = 0;
    while (t < H && above > keep) {
        t++;
        above -= hist[t];
    }
    /* 'above' is now the number of words with count > t */
    uint64_t dropped = 0;
    WordMap nm;
    size_t slots = 1024;
    while (slots < above * 2 + 16) slots <<= 1;
    wm_init(&nm, slots);
    for (size_t i = 0; i <= m->mask; i++) {
        WordEnt *e = &m->e[i];
        if (!e->hash) continue;
        if (e->count <= t) {
            dropped++;
            continue;
        }
        wm_add(&nm, m->arena.buf + e->off, e->len, e->hash, e->count);
    }
    wm_free(m);
    *m = nm;
    return dropped;
}

/* ------------------------------------------------------------------------------------------ */
/* Trainer state                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    BpeTrainer *t;           /* owner */
    BpePretok *pt;           /* this thread's pre-tokenizer */
    WordMap words;           /* this thread's counts for the current batch (thread 0: all counts) */
    const char *const *docs; /* current job */
    const size_t *lens;
    size_t from, to; /* docs[from..to) */
} Counter;

struct BpeTrainer {
    BpeTrainOpts o;    /* options (specials copied) */
    Counter *c;        /* one per thread */
    int nc;            /* threads */
    uint64_t n_words;  /* distinct words at finish */
    uint64_t n_pruned; /* words dropped */
    uint64_t n_merges; /* merges learned */
};

/*
** A trainer with options o (copied).
*/
BpeTrainer *bpe_trainer_new(const BpeTrainOpts *o)
{
    BpeTrainer *t = xcalloc(1, sizeof *t);
    t->o = *o;
    t->o.specials = xcalloc((size_t)o->n_specials + 1, sizeof(char *));
    for (int i = 0; i < o->n_specials; i++) t->o.specials[i] = xstrdup(o->specials[i]);
    t->nc = o->threads < 1 ? 1 : o->threads;
    t->c = xcalloc((size_t)t->nc, sizeof *t->c);
    for (int i = 0; i < t->nc; i++) {
        t->c[i].t = t;
        t->c[i].pt = bpe_pretok_new();
        wm_init(&t->c[i].words, 1 << 16);
    }
    return t;
}

/*
** Free a trainer (NULL is fine).
*/
void bpe_trainer_free(BpeTrainer *t)
{
    if (!t) return;
    for (int i = 0; i < t->nc; i++) {
        bpe_pretok_free(t->c[i].pt);
        wm_free(&t->c[i].words);
    }
    free(t->c);
    for (int i = 0; i < t->o.n_specials; i++) free(t->o.specials[i]);
    free(t->o.specials);
    free(t);
}

/*
** Counts of the last training (see train.h).
*/
void bpe_trainer_stats(const BpeTrainer *t, uint64_t *words, uint64_t *pruned, uint64_t *merges)
{
    *words = t->n_words;
    *pruned = t->n_pruned;
    *merges = t->n_merges;
}

/* ------------------------------------------------------------------------------------------ */
/* Phase 1: counting words                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void count_piece(void *ctx, const char *p, size_t n)
{
    Counter *c = ctx;
    wm_add(&c->words, p, n, hash64(p, n), 1);
}

/*
** Count the words of one document, leaving out special tokens found in it.
*/
static int count_doc(Counter *c, const char *d, size_t len)
{
    const BpeTrainOpts *o = &c->t->o;
    size_t pos = 0;
    while (pos < len) {
        size_t at = len, tl = 0;
        for (int i = 0; i < o->n_specials; i++) {
            size_t sl = strlen(o->specials[i]);
            const char *m = memmem(d + pos, len - pos, o->specials[i], sl);
            if (m && ((size_t)(m - d) < at || ((size_t)(m - d) == at && sl > tl))) {
                at = (size_t)(m - d);
                tl = sl;
            }
        }
        if (at > pos && bpe_pretok_split(c->pt, d + pos, at - pos, count_piece, c) != 0) return -1;
        if (at >= len) break;
        pos = at + tl;
    }
    return 0;
}

/*
** Counting thread: count the words of its share of the batch.
*/
static void *count_run(void *arg)
{
    Counter *c = arg;
    for (size_t i = c->from; i < c->to; i++)
        if (count_doc(c, c->docs[i], c->lens[i]) != 0) return (void *)1;
    return NULL;
}

/*
** Count the words of a batch of documents with the trainer's threads. Returns 0 or -1.
*/
int bpe_trainer_feed(BpeTrainer *t, const char *const *docs, const size_t *lens, size_t n)
{
    /* Fixed split by bytes: thread k gets a contiguous run of documents. */
    uint64_t total = 0, acc = 0;
    for (size_t i = 0; i < n; i++) total += lens[i];
    size_t at = 0;
    for (int k = 0; k < t->nc; k++) {
        Counter *c = &t->c[k];
        c->docs = docs;
        c->lens = lens;
        c->from = at;
        uint64_t goal = total * (uint64_t)(k + 1) / (uint64_t)t->nc;
        while (at < n && (k == t->nc - 1 || acc + lens[at] / 2 <= goal)) acc += lens[at++];
        c->to = at;
    }
    pthread_t th[64];
    int started[64] = { 0 }, bad = 0;
    for (int k = 1; k < t->nc; k++)
        if (t->c[k].to > t->c[k].from)
            started[k] = pthread_create(&th[k], NULL, count_run, &t->c[k]) == 0;
    if (count_run(&t->c[0])) bad = 1;
    for (int k = 1; k < t->nc; k++) {
        if (started[k]) {
            void *r;
            pthread_join(th[k], &r);
            if (r) bad = 1;
        } else if (t->c[k].to > t->c[k].from && count_run(&t->c[k])) {
            bad = 1;
        }
    }
    /* Add the other threads' counts into thread 0's table, which holds the counts of all
    ** batches so far: its contents do not depend on the number of threads, so neither does
    ** pruning (done here, between batches). */
    WordMap *all = &t->c[0].words;
    for (int k = 1; k < t->nc; k++) {
        WordMap *o = &t->c[k].words;
        if (!o->n) continue;
        for (size_t i = 0; i <= o->mask; i++)
            if (o->e[i].hash)
                wm_add(all, o->arena.buf + o->e[i].off, o->e[i].len, o->e[i].hash, o->e[i].count);
        memset(o->e, 0, (o->mask + 1) * sizeof *o->e);
        o->n = 0;
        buf_reset(&o->arena);
    }
    if (t->o.max_words && all->n > t->o.max_words) t->n_pruned += wm_prune(all, t->o.max_words);
    return bad ? error("the pre-tokenizer failed") : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Phase 2: merges                                                                             */
/* ------------------------------------------------------------------------------------------ */

#define PAIR(l, r) (((uint64_t)(l) << 32) | (uint32_t)(r))

typedef struct {    /* pair -> count (open addressing) */
    uint64_t *key;  /* pair + 1, 0 = empty */
    int64_t *val;   /* count */
    size_t mask, n; /* slots - 1, used */
} PairCounts;

/*
** An empty pair table with `slots` slots (a power of two).
*/
static void pc_init(PairCounts *m, size_t slots)
{
    m->key = xcalloc(slots, sizeof *m->key);
    m->val = xcalloc(slots, sizeof *m->val);
    m->mask = slots - 1;
    m->n = 0;
}

/*
** Hash of a pair key.
*/
static inline size_t pc_hash(uint64_t k)
{
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ull;
    k ^= k >> 29;
    return (size_t)k;
}

/* Slot of pair p, inserting it with 0 when absent. */
static int64_t *pc_slot(PairCounts *m, uint64_t p)
{
    uint64_t k = p + 1;
    size_t i = pc_hash(k) & m->mask;
    for (;;) {
        if (m->key[i] == k) return &m->val[i];
        if (!m->key[i]) break;
        i = (i + 1) & m->mask;
    }
    if ((m->n + 1) * 2 > m->mask + 1) {
        size_t ns = (m->mask + 1) * 2;
        uint64_t *nk = xcalloc(ns, sizeof *nk);
        int64_t *nv = xcalloc(ns, sizeof *nv);
        for (size_t j = 0; j <= m->mask; j++) {
            if (!m->key[j]) continue;
            size_t q = pc_hash(m->key[j]) & (ns - 1);
            while (nk[q]) q = (q + 1) & (ns - 1);
            nk[q] = m->key[j];
            nv[q] = m->val[j];
        }
        free(m->key);
        free(m->val);
        m->key = nk;
        m->val = nv;
        m->mask = ns - 1;
        i = pc_hash(k) & m->mask;
        while (m->key[i]) i = (i + 1) & m->mask;
    }
    m->key[i] = k;
    m->val[i] = 0;
    m->n++;
    return &m->val[i];
}

/*
** Count of pair p (0 when absent).
*/
static int64_t pc_get(const PairCounts *m, uint64_t p)
{
    uint64_t k = p + 1;
    size_t i = pc_hash(k) & m->mask;
    for (;;) {
        if (m->key[i] == k) return m->val[i];
        if (!m->key[i]) return 0;
        i = (i + 1) & m->mask;
    }
}

typedef struct {
    uint64_t count; /* pair count when queued */
    uint64_t pair;  /* left << 32 | right */
    uint64_t pos;   /* its words: pool[pos .. pos + npos) */
    uint64_t npos;  /* how many */
} QItem;

typedef struct {
    QItem *a;      /* binary max-heap */
    size_t n, cap; /* used, allocated */
} Queue;

/* Does x come out of the queue before y? Higher count; on ties the smaller pair. */
static inline int q_before(const QItem *x, const QItem *y)
{
    return x->count > y->count || (x->count == y->count && x->pair < y->pair);
}

/*
** Push a pair on the merge queue.
*/
static void q_push(Queue *q, QItem it)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1024;
        q->a = xrealloc(q->a, q->cap * sizeof *q->a);
    }
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!q_before(&it, &q->a[p])) break;
        q->a[i] = q->a[p];
        i = p;
    }
    q->a[i] = it;
}

/*
** Pop the best pair of the merge queue (q->n > 0).
*/
static QItem q_pop(Queue *q)
{
    QItem top = q->a[0], last = q->a[--q->n];
    size_t n = q->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && q_before(&q->a[c + 1], &q->a[c])) c++;
        if (!q_before(&q->a[c], &last)) break;
        q->a[i] = q->a[c];
        i = c;
    }
    if (n) q->a[i] = last;
    return top;
}

typedef struct {
    uint64_t pair; /* pair that changed */
    uint32_t word; /* in which word */
    int32_t delta; /* +1 / -1 occurrences */
} Change;

typedef struct {
    Change *a;
    size_t n, cap;
} Changes;

/*
** Record that `pair` gained (delta > 0) or lost an occurrence in word `word`.
*/
static inline void ch_add(Changes *c, uint64_t pair, uint32_t word, int32_t delta)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->a = xrealloc(c->a, c->cap * sizeof *c->a);
    }
    c->a[c->n].pair = pair;
    c->a[c->n].word = word;
    c->a[c->n].delta = delta;
    c->n++;
}

/*
** qsort order of changes: by pair, then word.
*/
static int ch_cmp(const void *x, const void *y)
{
    const Change *a = x, *b = y;
    if (a->pair != b->pair) return a->pair < b->pair ? -1 : 1;
    return a->word < b->word ? -1 : a->word > b->word;
}

/*
** Merge pair (c1, c2) into `rep` everywhere in word w (symbols s[0..*len)), left to right,
** and record the neighbour changes, exactly as Hugging Face's Word::merge does, but in one
** compacting pass (Hugging Face removes symbols one by one: quadratic on a long word).
*/
static void word_merge(uint32_t *s, uint32_t *len, uint32_t c1, uint32_t c2, uint32_t rep,
                       uint32_t w, Changes *ch)
{
    uint32_t n = *len, r = 0, o = 0; /* read and write positions; s[0..o) is the new word */
    while (r < n) {
        if (s[r] == c1 && r + 1 < n && s[r + 1] == c2) {
            if (o > 0) {
                ch_add(ch, PAIR(s[o - 1], c1), w, -1);
                ch_add(ch, PAIR(s[o - 1], rep), w, 1);
            }
            s[o++] = rep;
            r += 2;
            if (r < n) {
                ch_add(ch, PAIR(c2, s[r]), w, -1);
                ch_add(ch, PAIR(rep, s[r]), w, 1);
            }
        } else {
            s[o++] = s[r++];
        }
    }
    *len = o;
}

/* Token strings (raw bytes) by id, with a bytes -> id index. */
typedef struct {
    Buf bytes;      /* all tokens back to back */
    uint64_t *off;  /* per id */
    uint32_t *len;  /* per id */
    size_t n, cap;  /* ids, allocated */
    uint32_t *slot; /* id + 1, open addressing */
    size_t mask;    /* slots - 1 */
} Toks;

/*
** Id of token p[0..n), or -1 with *slot set to where it would go.
*/
static int64_t toks_find(const Toks *t, const char *p, size_t n, size_t *slot)
{
    size_t i = hash64(p, n) & t->mask;
    for (;;) {
        uint32_t v = t->slot[i];
        if (!v) {
            *slot = i;
            return -1;
        }
        if (t->len[v - 1] == n && !memcmp(t->bytes.buf + t->off[v - 1], p, n)) return v - 1;
        i = (i + 1) & t->mask;
    }
}

/*
** Id of token p[0..n), adding it when new.
*/
static uint32_t toks_add(Toks *t, const char *p, size_t n)
{
    size_t slot;
    int64_t id = toks_find(t, p, n, &slot);
    if (id >= 0) return (uint32_t)id;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->off = xrealloc(t->off, t->cap * sizeof *t->off);
        t->len = xrealloc(t->len, t->cap * sizeof *t->len);
    }
    t->off[t->n] = t->bytes.len;
    t->len[t->n] = (uint32_t)n;
    buf_add(&t->bytes, p, n);
    t->slot[slot] = (uint32_t)t->n + 1;
    t->n++;
    if (t->n * 2 > t->mask + 1) { /* grow the index */
        size_t ns = (t->mask + 1) * 2;
        free(t->slot);
        t->slot = xcalloc(ns, sizeof *t->slot);
        t->mask = ns - 1;
        for (size_t k = 0; k < t->n; k++) {
            size_t i = hash64(t->bytes.buf + t->off[k], t->len[k]) & t->mask;
            while (t->slot[i]) i = (i + 1) & t->mask;
            t->slot[i] = (uint32_t)k + 1;
        }
    }
    return (uint32_t)t->n - 1;
}

/*
** Build the tokenizer.json text (Hugging Face 0.23 layout) into out.
*/
static int write_json(const BpeTrainer *t, const Toks *tk, const uint64_t *mpair, size_t nm,
                      Buf *out)
{
    json_t *root = json_object();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_t *added = json_array();
    for (int i = 0; i < t->o.n_specials; i++) {
        json_t *a = json_object();
        json_object_set_new(a, "id", json_integer(i));
        json_object_set_new(a, "content", json_string(t->o.specials[i]));
        json_object_set_new(a, "single_word", json_false());
        json_object_set_new(a, "lstrip", json_false());
        json_object_set_new(a, "rstrip", json_false());
        json_object_set_new(a, "normalized", json_false());
        json_object_set_new(a, "special", json_true());
        json_array_append_new(added, a);
    }
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    const char *comp[3] = { "pre_tokenizer", "post_processor", "decoder" };
    for (int i = 0; i < 3; i++)
        json_object_set_new(root, comp[i],
                            json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel",
                                      "add_prefix_space", i != 0, "trim_offsets", i != 1,
                                      "use_regex", 1));
    json_t *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "dropout", json_null());
    json_object_set_new(model, "unk_token", json_null());
    json_object_set_new(model, "continuing_subword_prefix", json_null());
    json_object_set_new(model, "end_of_word_suffix", json_null());
    json_object_set_new(model, "fuse_unk", json_false());
    json_object_set_new(model, "byte_fallback", json_false());
    json_object_set_new(model, "ignore_merges", json_false());
    json_t *vocab = json_object();
    Buf s = { 0 };
    char **str = xcalloc(tk->n, sizeof *str);
    size_t *slen = xcalloc(tk->n, sizeof *slen);
    for (size_t id = 0; id < tk->n; id++) {
        buf_reset(&s);
        if (id < (size_t)t->o.n_specials)
            buf_add(&s, tk->bytes.buf + tk->off[id], tk->len[id]);
        else
            bpe_bytes_to_chars((const unsigned char *)tk->bytes.buf + tk->off[id], tk->len[id], &s);
        str[id] = xstrndup(s.buf ? s.buf : "", s.len);
        slen[id] = s.len;
        json_object_setn_new_nocheck(vocab, str[id], slen[id], json_integer((json_int_t)id));
    }
    json_object_set_new(model, "vocab", vocab);
    json_t *merges = json_array();
    for (size_t i = 0; i < nm; i++) {
        if (mpair[i] == UINT64_MAX) continue; /* repeated later: the later rank wins */
        uint32_t l = (uint32_t)(mpair[i] >> 32), r = (uint32_t)mpair[i];
        json_array_append_new(merges, json_pack("[s#, s#]", str[l], slen[l], str[r], slen[r]));
    }
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "model", model);
    char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int rc = 0;
    if (!txt)
        rc = error("cannot serialise the tokenizer (out of memory?)");
    else {
        buf_adds(out, txt);
        buf_addc(out, '\n');
        free(txt);
    }
    for (size_t id = 0; id < tk->n; id++) free(str[id]);
    free(str);
    free(slen);
    buf_free(&s);
    json_decref(root);
    return rc;
}

/*
** Ids of the alphabet: the specials first, then the 256 bytes in the order of their byte-level
** characters (code points); byte_id[b] is the id of byte b.
*/
static void base_ids(const BpeTrainer *t, Toks *tk, uint32_t byte_id[256])
{
    memset(tk, 0, sizeof *tk);
    tk->slot = xcalloc(1024, sizeof *tk->slot);
    tk->mask = 1023;
    for (int i = 0; i < t->o.n_specials; i++)
        toks_add(tk, t->o.specials[i], strlen(t->o.specials[i]));
    unsigned order[256];
    for (unsigned b = 0; b < 256; b++) order[b] = b;
    for (unsigned i = 1; i < 256; i++) { /* insertion sort by code point */
        unsigned v = order[i], j = i;
        while (j > 0 && bpe_byte_char(order[j - 1]) > bpe_byte_char(v)) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (unsigned i = 0; i < 256; i++) {
        char c = (char)order[i];
        byte_id[order[i]] = toks_add(tk, &c, 1);
    }
}

static void toks_free(Toks *tk)
{
    buf_free(&tk->bytes);
    free(tk->off);
    free(tk->len);
    free(tk->slot);
}

/* The distinct words as arrays of symbol ids, which the merges rewrite in place. */
typedef struct {
    uint32_t *sym;   /* every word's symbols back to back */
    uint32_t *off;   /* per word: its first symbol in sym */
    uint32_t *len;   /* per word: its symbols (fewer after each merge in it) */
    uint64_t *count; /* per word: occurrences */
    size_t n;        /* words */
} WordSyms;

static void ws_free(WordSyms *w)
{
    free(w->sym);
    free(w->off);
    free(w->len);
    free(w->count);
}

/*
** Turn the word table into symbol arrays (one byte id per byte), in table order, and empty
** the table. Returns 0, or -1 (message printed) when the symbols do not fit 32-bit offsets.
*/
static int words_to_syms(WordMap *wm, const uint32_t byte_id[256], WordSyms *w)
{
    size_t nw = wm->n, nsym = 0, k = 0;
    memset(w, 0, sizeof *w);
    w->off = xmalloc((nw + 1) * sizeof *w->off);
    w->len = xmalloc((nw + 1) * sizeof *w->len);
    w->count = xmalloc((nw + 1) * sizeof *w->count);
    for (size_t i = 0; i <= wm->mask; i++) {
        if (!wm->e[i].hash) continue;
        w->count[k] = wm->e[i].count;
        w->len[k] = wm->e[i].len;
        nsym += wm->e[i].len;
        k++;
    }
    if (nsym > UINT32_MAX) return error("too many distinct words to train on; use --max-words");
    w->n = nw;
    w->sym = xmalloc((nsym + 1) * sizeof *w->sym);
    k = 0;
    size_t at = 0;
    for (size_t i = 0; i <= wm->mask; i++) {
        if (!wm->e[i].hash) continue;
        const unsigned char *p = (const unsigned char *)wm->arena.buf + wm->e[i].off;
        w->off[k] = (uint32_t)at;
        for (uint32_t j = 0; j < wm->e[i].len; j++) w->sym[at++] = byte_id[p[j]];
        k++;
    }
    wm_free(wm);
    wm_init(wm, 16);
    return 0;
}

/* Pair counts and the merge queue; each queued item lists the words its pair occurs in. */
typedef struct {
    PairCounts pc;  /* pair -> current count */
    Queue q;        /* pairs, best first (lazily updated) */
    uint32_t *pool; /* word lists of the queued items */
    size_t pooln, poolcap;
} MergeState;

/* The distinct pairs of the words, in first-seen order, with the number of words of each. */
typedef struct {
    uint64_t *pair;   /* the pairs */
    uint32_t *last_w; /* per pair: the word it was last seen in (counts each word once) */
    uint32_t *nocc;   /* per pair: the words it occurs in */
    size_t n, cap;    /* pairs, allocated */
    PairCounts index; /* pair -> its position in pair + 1 */
} PairList;

/*
** First pass over the words: the count of every pair into m->pc, the distinct pairs and the
** number of words each occurs in into pl.
*/
static void pairs_count(const WordSyms *w, MergeState *m, PairList *pl)
{
    pc_init(&m->pc, 1 << 16);
    pc_init(&pl->index, 1 << 16);
    for (size_t wi = 0; wi < w->n; wi++) {
        const uint32_t *s = w->sym + w->off[wi];
        for (uint32_t j = 0; j + 1 < w->len[wi]; j++) {
            uint64_t p = PAIR(s[j], s[j + 1]);
            *pc_slot(&m->pc, p) += (int64_t)w->count[wi];
            int64_t *ix = pc_slot(&pl->index, p);
            if (*ix == 0) {
                if (pl->n == pl->cap) {
                    pl->cap = pl->cap ? pl->cap * 2 : 1 << 16;
                    pl->pair = xrealloc(pl->pair, pl->cap * sizeof *pl->pair);
                    pl->last_w = xrealloc(pl->last_w, pl->cap * sizeof *pl->last_w);
                    pl->nocc = xrealloc(pl->nocc, pl->cap * sizeof *pl->nocc);
                }
                pl->pair[pl->n] = p;
                pl->last_w[pl->n] = UINT32_MAX;
                pl->nocc[pl->n] = 0;
                *ix = (int64_t)++pl->n;
            }
            size_t q = (size_t)*ix - 1;
            if (pl->last_w[q] != wi) {
                pl->last_w[q] = (uint32_t)wi;
                pl->nocc[q]++;
            }
        }
    }
}

/*
** Second pass: each pair's words into the pool (one run per pair, CSR layout), then every
** pair with a positive count on the queue. Frees pl.
*/
static void pairs_queue(const WordSyms *w, MergeState *m, PairList *pl)
{
    uint64_t *start = xmalloc((pl->n + 1) * sizeof *start);
    uint64_t total = 0;
    for (size_t q = 0; q < pl->n; q++) {
        start[q] = total;
        total += pl->nocc[q];
        pl->last_w[q] = UINT32_MAX;
    }
    m->poolcap = total + (total >> 2) + 4096;
    m->pooln = total;
    m->pool = xmalloc(m->poolcap * sizeof *m->pool);
    uint64_t *fill = xmalloc((pl->n + 1) * sizeof *fill);
    memcpy(fill, start, pl->n * sizeof *fill);
    for (size_t wi = 0; wi < w->n; wi++) {
        const uint32_t *s = w->sym + w->off[wi];
        for (uint32_t j = 0; j + 1 < w->len[wi]; j++) {
            size_t q = (size_t)pc_get(&pl->index, PAIR(s[j], s[j + 1])) - 1;
            if (pl->last_w[q] != wi) {
                pl->last_w[q] = (uint32_t)wi;
                m->pool[fill[q]++] = (uint32_t)wi;
            }
        }
    }
    free(fill);
    free(pl->last_w);
    free(pl->index.key);
    free(pl->index.val);
    memset(&m->q, 0, sizeof m->q);
    for (size_t i = 0; i < pl->n; i++) {
        int64_t c = pc_get(&m->pc, pl->pair[i]);
        if (c > 0) q_push(&m->q, (QItem){ (uint64_t)c, pl->pair[i], start[i], pl->nocc[i] });
    }
    free(pl->pair);
    free(pl->nocc);
    free(start);
}

/*
** After a merge: apply the count changes, then queue again every pair that gained
** occurrences, with the words it gained them in (ch is reordered).
*/
static void queue_gained(MergeState *m, const WordSyms *w, Changes *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        *pc_slot(&m->pc, ch->a[i].pair) += (int64_t)ch->a[i].delta *
            (int64_t)w->count[ch->a[i].word];
    size_t np = 0;
    for (size_t i = 0; i < ch->n; i++)
        if (ch->a[i].delta > 0) ch->a[np++] = ch->a[i];
    qsort(ch->a, np, sizeof *ch->a, ch_cmp);
    for (size_t i = 0; i < np;) {
        size_t j = i;
        uint64_t p = ch->a[i].pair;
        uint64_t pos = m->pooln;
        while (j < np && ch->a[j].pair == p) {
            if (j == i || ch->a[j].word != ch->a[j - 1].word) {
                if (m->pooln == m->poolcap) {
                    m->poolcap *= 2;
                    m->pool = xrealloc(m->pool, m->poolcap * sizeof *m->pool);
                }
                m->pool[m->pooln++] = ch->a[j].word;
            }
            j++;
        }
        int64_t c = pc_get(&m->pc, p);
        if (c > 0)
            q_push(&m->q, (QItem){ (uint64_t)c, p, pos, m->pooln - pos });
        else
            m->pooln = pos;
        i = j;
    }
}

/* The merges learned, in order: pair (left << 32 | right), UINT64_MAX for one merged again later. */
typedef struct {
    uint64_t *pair;
    size_t n, cap;
} MergeList;

/*
** The merge loop: take the best pair (re-queue it if its count changed since it was queued),
** give the joined token the next id, rewrite the words it occurs in. Stops at the vocabulary
** size, an empty queue, a count below min_frequency, or the stop flag (returns 1 then).
*/
static int merge_loop(const BpeTrainer *t, Toks *tk, WordSyms *w, MergeState *m, MergeList *ml)
{
    Changes ch;
    memset(&ch, 0, sizeof ch);
    Buf nt = { 0 };
    int stopped = 0;
    while (tk->n < t->o.vocab_size && m->q.n) {
        if (t->o.stop && *t->o.stop) {
            stopped = 1;
            break;
        }
        QItem top = q_pop(&m->q);
        int64_t cur = pc_get(&m->pc, top.pair);
        if ((int64_t)top.count != cur) {
            top.count = (uint64_t)(cur < 0 ? 0 : cur);
            q_push(&m->q, top);
            continue;
        }
        if (top.count < 1 || t->o.min_frequency > top.count) break;
        uint32_t l = (uint32_t)(top.pair >> 32), r = (uint32_t)top.pair;
        buf_reset(&nt);
        buf_add(&nt, tk->bytes.buf + tk->off[l], tk->len[l]);
        buf_add(&nt, tk->bytes.buf + tk->off[r], tk->len[r]);
        uint32_t nid = toks_add(tk, nt.buf, nt.len);
        if (ml->n == ml->cap) {
            ml->cap = ml->cap ? ml->cap * 2 : 4096;
            ml->pair = xrealloc(ml->pair, ml->cap * sizeof *ml->pair);
        }
        ml->pair[ml->n++] = top.pair;
        ch.n = 0;
        for (uint64_t i = 0; i < top.npos; i++) {
            uint32_t wi = m->pool[top.pos + i];
            word_merge(w->sym + w->off[wi], &w->len[wi], l, r, nid, wi, &ch);
        }
        queue_gained(m, w, &ch);
    }
    free(ch.a);
    buf_free(&nt);
    return stopped;
}

/*
** A pair merged twice (Hugging Face's queue can do that) keeps its later rank: the earlier
** entries become UINT64_MAX.
*/
static void drop_repeated(MergeList *ml)
{
    PairCounts last;
    pc_init(&last, 1024);
    for (size_t i = 0; i < ml->n; i++) {
        int64_t *s = pc_slot(&last, ml->pair[i]);
        if (*s) ml->pair[*s - 1] = UINT64_MAX;
        *s = (int64_t)i + 1;
    }
    free(last.key);
    free(last.val);
}

/*
** Learn the merges from the counted words and write the tokenizer.json into out.
*/
int bpe_trainer_finish(BpeTrainer *t, Buf *out)
{
    WordMap *wm = &t->c[0].words; /* every word counted (bpe_trainer_feed gathers them here) */
    for (int k = 1; k < t->nc; k++) {
        wm_free(&t->c[k].words);
        wm_init(&t->c[k].words, 16);
    }
    t->n_words = wm->n;
    Toks tk;
    uint32_t byte_id[256];
    base_ids(t, &tk, byte_id);
    WordSyms w;
    if (words_to_syms(wm, byte_id, &w) != 0) {
        ws_free(&w);
        toks_free(&tk);
        return -1;
    }
    MergeState m;
    PairList pl;
    memset(&m, 0, sizeof m);
    memset(&pl, 0, sizeof pl);
    pairs_count(&w, &m, &pl);
    pairs_queue(&w, &m, &pl);
    MergeList ml = { 0 };
    int stopped = merge_loop(t, &tk, &w, &m, &ml);
    t->n_merges = ml.n;
    drop_repeated(&ml);
    int rc = stopped ? -2 : write_json(t, &tk, ml.pair, ml.n, out);
    free(ml.pair);
    free(m.q.a);
    free(m.pool);
    free(m.pc.key);
    free(m.pc.val);
    ws_free(&w);
    toks_free(&tk);
    return rc;
}
