// SPDX-License-Identifier: MIT
/*
** hf_import.c: read a transformers GPT-2 checkpoint as the Hub serves it into a cm-train model:
** config.json; model.safetensors, or model.safetensors.index.json and the shards it names;
** names with or without "transformer."; an LM head stored apart (lm_head.weight) is accepted
** only when it equals the token embedding, since cm-train ties the two; F32, F16 and BF16
** tensors become f32. The causal-mask buffers older exports carry (h.N.attn.bias,
** h.N.attn.masked_bias) are skipped; any other tensor is refused.
*/
#include "trainer/interchange.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"                /* defines: error, Buf, exit statuses */
#include "json.h"                /* defines: json_parse_object, json_decode_string */
#include "trainer/safetensors.h" /* defines: StFile, st_open, st_find, st_read_f32 */

/* Where the tensors are: one file, or the shards of an index. */
typedef struct {
    const char *dir;
    StFile *files; /* opened safetensors files */
    int nfiles;
    char *index_path; /* the index, when sharded (NULL: one file) */
    char **map_name;  /* sharded: tensor name -> */
    int *map_file;    /*   index in files */
    int nmap;
} Src;

static char *join(const char *dir, const char *name)
{
    Buf b = { 0 };
    buf_addf(&b, "%s/%s", dir, name);
    return buf_detach(&b, NULL);
}


/* Open shard `name` of the index unless open already; its index in s->files, or -(exit
** status) after a message. */
static int open_shard(Src *s, const char *name, size_t pos)
{
    for (int i = 0; i < s->nfiles; i++)
        if (strcmp(strrchr(s->files[i].path, '/') + 1, name) == 0) return i;
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        error("%s: offset %zu: shard name '%s' is not a file name in the directory", s->index_path,
              pos, name);
        return -CM_EFORMAT;
    }
    char *p = join(s->dir, name);
    s->files = xrealloc(s->files, (size_t)(s->nfiles + 1) * sizeof *s->files);
    int rc = st_open(&s->files[s->nfiles], p);
    free(p);
    return rc == 0 ? s->nfiles++ : rc == -1 ? -CM_EIO : -CM_EFORMAT;
}

/* The weight_map of an index (its raw JSON object at `raw`); 0 or an exit status. */
static int read_weight_map(Src *s, const char *text, const JsonField *wm)
{
    JsonObj o = { 0 };
    size_t base = (size_t)(wm->raw - text);
    int rc = 0;
    if (json_parse_object(&o, wm->raw, wm->rawlen) != 0) {
        error("%s: offset %zu: %s", s->index_path, base + o.err_pos, o.err);
        json_obj_free(&o);
        return CM_EFORMAT;
    }
    s->map_name = xcalloc((size_t)o.n + 1, sizeof *s->map_name);
    s->map_file = xcalloc((size_t)o.n + 1, sizeof *s->map_file);
    for (int i = 0; i < o.n && rc == 0; i++) {
        const JsonField *f = &o.f[i];
        size_t pos = (size_t)(f->key - text);
        Buf k = { 0 }, v = { 0 };
        json_decode_string(f->key, f->klen, &k);
        if (f->type == JSON_STRING) json_decode_string(f->raw, f->rawlen, &v);
        buf_grow(&k, 1);
        buf_grow(&v, 1);
        if (f->type != JSON_STRING) {
            error("%s: offset %zu: tensor '%s': the shard is not a string", s->index_path, pos,
                  k.buf);
            rc = CM_EFORMAT;
        } else {
            int fi = open_shard(s, v.buf, pos);
            if (fi < 0) rc = -fi;
            s->map_name[s->nmap] = buf_detach(&k, NULL);
            s->map_file[s->nmap++] = fi;
        }
        buf_free(&k);
        buf_free(&v);
    }
    json_obj_free(&o);
    return rc;
}

/* Open the weights of dir: model.safetensors, else the index and its shards. */
static int src_open(Src *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    s->dir = dir;
    char *single = join(dir, "model.safetensors");
    if (access(single, F_OK) == 0) {
        s->files = xcalloc(1, sizeof *s->files);
        int rc = st_open(&s->files[0], single);
        free(single);
        if (rc) return rc == -1 ? CM_EIO : CM_EFORMAT;
        s->nfiles = 1;
        return 0;
    }
    free(single);
    s->index_path = join(dir, "model.safetensors.index.json");
    char *text;
    size_t n;
    int rc = read_whole_file(s->index_path, 1, &text, &n);
    if (rc == -1) {
        error("%s: neither model.safetensors nor model.safetensors.index.json (only "
              "safetensors weights are read)",
              dir);
        return CM_EIO;
    }
    if (rc) return rc;
    JsonObj o = { 0 };
    const JsonField *wm = NULL;
    if (json_parse_object(&o, text, n) != 0) {
        error("%s: offset %zu: %s", s->index_path, o.err_pos, o.err);
        rc = CM_EFORMAT;
    } else if (!(wm = json_get(&o, "weight_map")) || wm->type != JSON_OBJECT) {
        error("%s: no \"weight_map\" object", s->index_path);
        rc = CM_EFORMAT;
    } else {
        rc = read_weight_map(s, text, wm);
    }
    json_obj_free(&o);
    free(text);
    return rc;
}

static void src_close(Src *s)
{
    for (int i = 0; i < s->nfiles; i++) st_close(&s->files[i]);
    for (int i = 0; i < s->nmap; i++) free(s->map_name[i]);
    free(s->files);
    free(s->map_name);
    free(s->map_file);
    free(s->index_path);
}

/*
** Find tensor `name` (exactly). 1 found (*f, *t set), 0 absent, or an exit status (< 0 never):
** CM_EFORMAT when the index names a shard that lacks it.
*/
static int src_find_exact(const Src *s, const char *name, const StFile **f, const StTensor **t)
{
    if (!s->index_path) {
        *f = &s->files[0];
        *t = st_find(*f, name);
        return *t ? 1 : 0;
    }
    for (int i = 0; i < s->nmap; i++) {
        if (strcmp(s->map_name[i], name)) continue;
        *f = &s->files[s->map_file[i]];
        *t = st_find(*f, name);
        if (*t) return 1;
        error("%s: tensor '%s': the index places it in %s, which does not hold it", s->index_path,
              name, (*f)->path);
        return -CM_EFORMAT;
    }
    return 0;
}

/* Find `name` with or without "transformer."; 1, 0 or -status (both spellings: refused). */
static int src_find(const Src *s, const char *name, const StFile **f, const StTensor **t)
{
    char full[96];
    snprintf(full, sizeof full, "transformer.%s", name);
    const StFile *f2;
    const StTensor *t2;
    int a = src_find_exact(s, full, f, t);
    if (a < 0) return a;
    int b = src_find_exact(s, name, a ? &f2 : f, a ? &t2 : t);
    if (b < 0) return b;
    if (a && b) {
        error("%s: offset %llu: tensor '%s' is there as '%s' too", f2->path,
              (unsigned long long)st_file_offset(f2, t2), name, full);
        return -CM_EFORMAT;
    }
    return a || b;
}

/* Check a tensor's shape against what config.json implies; 0 or CM_EFORMAT. */
static int check_shape(const StFile *f, const StTensor *t, int ndim, const uint64_t *want)
{
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == want[i];
    if (same) return 0;
    char got[160] = "", exp[64] = "";
    size_t k = 0;
    for (int i = 0; i < t->ndim && k < sizeof got - 24; i++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    k = 0;
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(exp + k, sizeof exp - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)want[i]);
    error("%s: offset %llu: tensor '%s': shape [%s], config.json implies [%s]", f->path,
          (unsigned long long)st_file_offset(f, t), t->name, got, exp);
    return CM_EFORMAT;
}

/* --------------------------------------------------------------------------------------- */
/* Reading the model                                                                       */

/* transformers' shape of a table tensor. */
static int hf_shape(const IxTensor *t, uint64_t *shape)
{
    if (t->is_vector) {
        shape[0] = t->rows;
        return 1;
    }
    shape[0] = t->transpose ? t->cols : t->rows;
    shape[1] = t->transpose ? t->rows : t->cols;
    return 2;
}

/* Read every table tensor into m (scratch: room for the largest transposed one, 4 C x C);
** 0 or an exit status. */
static int read_tensors(const Src *s, Gpt *m, float *scratch)
{
    for (int k = 0; k < ix_tensor_count(&m->cfg); k++) {
        IxTensor t;
        ix_tensor(m, k, &t);
        const StFile *f;
        const StTensor *st;
        int r = src_find(s, t.hf, &f, &st);
        if (r < 0) return -r;
        if (r == 0) {
            error("%s: tensor 'transformer.%s' (or '%s') is missing",
                  s->index_path ? s->index_path : s->files[0].path, t.hf, t.hf);
            return CM_EFORMAT;
        }
        uint64_t shape[2];
        int nd = hf_shape(&t, shape);
        if (check_shape(f, st, nd, shape) != 0) return CM_EFORMAT;
        /* straight into the model; a transposed tensor from the mapped file when it is f32
        ** already, else through the scratch */
        const float *view = t.transpose ? st_f32_view(f, st) : NULL;
        float *dst = t.transpose ? scratch : (float *)t.data;
        if (!view && st_read_f32(f, st, dst) != 0) return CM_EFORMAT;
        if (t.transpose) ix_from_hf_layout(&t, view ? view : scratch, (float *)t.data);
    }
    return 0;
}

/*
** An lm_head.weight stored apart must equal the token embedding (cm-train ties them).
*/
static int check_head(const Src *s, const Gpt *m)
{
    const StFile *f;
    const StTensor *t;
    int r = src_find_exact(s, "lm_head.weight", &f, &t);
    if (r < 0) return -r;
    if (r == 0) return 0;
    uint64_t shape[2] = { (uint64_t)m->cfg.V, (uint64_t)m->cfg.C };
    if (check_shape(f, t, 2, shape) != 0) return CM_EFORMAT;
    size_t n = (size_t)m->cfg.V * m->cfg.C, differ = 0;
    float *head = xmalloc(n * sizeof(float));
    if (st_read_f32(f, t, head) != 0) {
        free(head);
        return CM_EFORMAT;
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&head[i], &m->params.wte[i], sizeof(float)) == 0) continue;
        differ++;
        double d = fabs((double)head[i] - m->params.wte[i]);
        if (d > worst || isnan(d)) worst = d;
    }
    free(head);
    if (differ == 0) return 0;
    error("%s: offset %llu: tensor 'lm_head.weight': an LM head untied from the token embedding "
          "(%zu of %zu values differ, by up to %g): cm-train ties its head to wte and cannot "
          "hold this model",
          f->path, (unsigned long long)st_file_offset(f, t), differ, n, worst);
    return CM_EFORMAT;
}

/* Is `name` one of GPT-2's tensors (or a buffer we skip)? */
static int known_name(const Gpt *m, const char *name)
{
    const char *n = strncmp(name, "transformer.", 12) == 0 ? name + 12 : name;
    if (strcmp(name, "lm_head.weight") == 0) return 1;
    for (int k = 0; k < ix_tensor_count(&m->cfg); k++) {
        IxTensor t;
        ix_tensor(m, k, &t);
        if (strcmp(n, t.hf) == 0) return 1;
    }
    int layer, len = 0;
    if (sscanf(n, "h.%d.attn.bias%n", &layer, &len) == 1 && n[len] == 0) return 1;
    len = 0;
    if (sscanf(n, "h.%d.attn.masked_bias%n", &layer, &len) == 1 && n[len] == 0) return 1;
    return 0;
}

/* Refuse tensors that are not GPT-2's: the model would not be what the file describes. */
static int check_unknown(const Src *s, const Gpt *m)
{
    for (int i = 0; i < s->nfiles; i++)
        for (int j = 0; j < s->files[i].n; j++) {
            const StFile *f = &s->files[i];
            const StTensor *t = &f->t[j];
            if (known_name(m, t->name)) continue;
            error("%s: offset %llu: tensor '%s' is not part of a GPT-2 (GPT2LMHeadModel) "
                  "checkpoint",
                  f->path, (unsigned long long)st_file_offset(f, t), t->name);
            return CM_EFORMAT;
        }
    return 0;
}

/* Before allocating: the files must be able to hold the model config.json describes, at two
** bytes per parameter at least (a hostile config could ask for terabytes). */
static int check_room(const Src *s, const GptConfig *cfg, const char *cpath)
{
    uint64_t have = 0, need = 2 * (uint64_t)gpt_param_count(cfg);
    for (int i = 0; i < s->nfiles; i++) have += s->files[i].size;
    if (need <= have) return 0;
    error("%s: describes a model of %llu parameters, more than the %llu bytes of weights hold",
          cpath, (unsigned long long)gpt_param_count(cfg), (unsigned long long)have);
    return CM_EFORMAT;
}

int hf_import(const char *dir, Gpt *m, char **tok, size_t *tok_len, int quiet)
{
    double t0 = now_sec();
    char *cpath = join(dir, "config.json"), *text = NULL;
    size_t n = 0;
    GptConfig cfg;
    Src s;
    int have_src = 0, have_model = 0;
    *tok = NULL;
    int rc = read_whole_file(cpath, 1, &text, &n);
    if (rc == -1) {
        error("cannot open '%s': %s", cpath, strerror(ENOENT));
        rc = CM_EIO;
    }
    if (rc == 0) rc = hf_config_parse(text, n, cpath, &cfg);
    if (rc == 0) {
        rc = src_open(&s, dir);
        have_src = 1;
    }
    if (rc == 0) rc = check_room(&s, &cfg, cpath);
    if (rc == 0) {
        gpt_init(m, &cfg);
        have_model = 1;
        rc = check_unknown(&s, m);
    }
    if (rc == 0) {
        float *scratch = xmalloc((size_t)4 * cfg.C * cfg.C * sizeof(float));
        rc = read_tensors(&s, m, scratch);
        free(scratch);
        if (rc == 0) rc = check_head(&s, m);
    }
    if (rc == 0) {
        char *tp = join(dir, "tokenizer.json");
        int r = read_whole_file(tp, 1, tok, tok_len);
        if (r == -1 && !quiet) warn("%s: no tokenizer.json: the checkpoint records none", dir);
        if (r > 0) rc = r;
        free(tp);
    }
    if (rc == 0 && !quiet)
        fprintf(stderr, "cm-train import: %s: GPT-2 L%d C%d H%d T%d V%d from %d file%s, %.2f s\n",
                dir, cfg.L, cfg.C, cfg.NH, cfg.T, cfg.V, s.nfiles, s.nfiles == 1 ? "" : "s",
                now_sec() - t0);
    if (have_src) src_close(&s);
    if (rc && have_model) gpt_free(m);
    if (rc) {
        free(*tok);
        *tok = NULL;
    }
    free(text);
    free(cpath);
    return rc;
}
