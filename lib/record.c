// SPDX-License-Identifier: MIT
/*
** record.c: parse and write codemill JSONL records (see record.h).
*/
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void record_init(Record *r)
{
    memset(r, 0, sizeof *r);
    r->size = -1;
}

void record_free(Record *r)
{
    json_obj_free(&r->obj);
    buf_free(&r->store);
}

static const char *known[] = { "repo_name", "path", "content", "size", "license", NULL };

int record_is_known_field(const char *key, size_t klen)
{
    for (int i = 0; known[i]; i++)
        if (strlen(known[i]) == klen && !memcmp(known[i], key, klen)) return 1;
    return 0;
}

/* String field `key`: its value, decoded into r->store by the parser (record_parse), as an
** offset (pointers are set once parsing is done). */
static int take_string(Record *r, const char *key, Str *dst, size_t *off, int required)
{
    const JsonField *f = json_get(&r->obj, key);
    dst->s = NULL;
    dst->n = 0;
    *off = (size_t)-1;
    if (!f) {
        if (required) {
            snprintf(r->err, sizeof r->err, "missing field '%s'", key);
            return -1;
        }
        return 0;
    }
    if (f->type == JSON_NULL && !required) return 0;
    if (f->type != JSON_STRING) {
        snprintf(r->err, sizeof r->err, "field '%s' is not a string", key);
        return -1;
    }
    *off = f->dec_off;
    dst->n = f->dec_len;
    return 0;
}

int record_parse(Record *r, const char *line, size_t len)
{
    r->err[0] = 0;
    r->err_pos = 0;
    r->size = -1;
    r->line = line;
    buf_reset(&r->store);
    r->obj.decode = &r->store; /* string values decoded while parsed */
    if (json_parse_object(&r->obj, line, len)) {
        snprintf(r->err, sizeof r->err, "%s", r->obj.err);
        r->err_pos = r->obj.err_pos;
        return -1;
    }
    size_t o_repo, o_path, o_content, o_lic;
    if (take_string(r, "content", &r->content, &o_content, !r->content_optional) ||
        take_string(r, "repo_name", &r->repo_name, &o_repo, 0) ||
        take_string(r, "path", &r->path, &o_path, 0) ||
        take_string(r, "license", &r->license, &o_lic, 0))
        return -1;
    const JsonField *sz = json_get(&r->obj, "size");
    if (sz) {
        int64_t v;
        if (sz->type == JSON_STRING) {
            /* some dumps store size as a string */
            char tmp[32];
            if (sz->rawlen < sizeof tmp) {
                memcpy(tmp, sz->raw, sz->rawlen);
                tmp[sz->rawlen] = 0;
                char *end;
                long long x = strtoll(tmp, &end, 10);
                if (!*end && end != tmp) r->size = x;
            }
        } else if (!json_get_int(&r->obj, "size", &v)) {
            r->size = v;
        } else if (sz->type != JSON_NULL) {
            snprintf(r->err, sizeof r->err, "field 'size' is not an integer");
            return -1;
        }
    }
    const char *base = r->store.buf;
    if (o_content != (size_t)-1) r->content.s = base + o_content;
    if (o_repo != (size_t)-1) r->repo_name.s = base + o_repo;
    if (o_path != (size_t)-1) r->path.s = base + o_path;
    if (o_lic != (size_t)-1) r->license.s = base + o_lic;
    return 0;
}

/* Append `"key":` (klen bytes, with its leading '{' or ',') and the escaped s[0..n) to o,
** which has room (checked by the caller). */
static void put_field(Out *o, const char *key, size_t klen, const char *s, size_t n)
{
    memcpy(o->buf + o->len, key, klen);
    o->len += klen;
    o->len += json_escape_into(o->buf + o->len, s, n);
}

/* Same, for a field that may not fit the buffer: through out_write / json_escape_out. */
static void put_field_slow(Out *o, const char *key, size_t klen, const char *s, size_t n)
{
    out_write(o, key, klen);
    json_escape_out(o, s, n);
}

/*
** Write a record's fields, from '{' to the last of extra_json, without the closing "}\n":
** repo_name, path, size, license (when lic is not NULL), content, then extra_json. One
** capacity check, then straight into the buffer; a record bigger than the whole buffer goes
** field by field. Shared by record_write_parts and record_write.
*/
static void write_head(Out *o, const char *repo, size_t repo_n, const char *path, size_t path_n,
                       const char *lic, size_t lic_n, const char *content, size_t content_n,
                       const char *extra_json, size_t extra_len)
{
    if (!repo) repo = "", repo_n = 0;
    if (!path) path = "", path_n = 0;
    if (!content) content = "", content_n = 0;
    size_t need = JSON_ESCAPE_MAX(repo_n) + JSON_ESCAPE_MAX(path_n) + JSON_ESCAPE_MAX(lic_n) +
        JSON_ESCAPE_MAX(content_n) + extra_len + 128;
    if (need > o->cap - o->len) out_flush(o);
    void (*put)(Out *, const char *, size_t, const char *, size_t) = need > o->cap ? put_field_slow
                                                                                   : put_field;
    put(o, "{\"repo_name\":", 13, repo, repo_n);
    put(o, ",\"path\":", 8, path, path_n);
    char num[48];
    int k = snprintf(num, sizeof num, ",\"size\":%zu", content_n);
    out_write(o, num, (size_t)k);
    if (lic) put(o, ",\"license\":", 11, lic, lic_n);
    put(o, ",\"content\":", 11, content, content_n);
    if (extra_json && extra_len) {
        out_putc(o, ',');
        out_write(o, extra_json, extra_len);
    }
}

void record_write_parts(Out *o, const char *repo, size_t repo_n, const char *path, size_t path_n,
                        const char *content, size_t content_n, const char *license,
                        const char *extra_json, size_t extra_len)
{
    write_head(o, repo, repo_n, path, path_n, license, license ? strlen(license) : 0, content,
               content_n, extra_json, extra_len);
    out_write(o, "}\n", 2);
}

/* Does the formatted field list `json` hold the key k? */
static int key_in(const char *json, size_t n, const char *k, size_t kl)
{
    for (const char *p = json; (p = memchr(p, '"', (size_t)(json + n - p))) != NULL; p++) {
        if ((size_t)(json + n - p) >= kl + 3 && !memcmp(p + 1, k, kl) && p[kl + 1] == '"' &&
            p[kl + 2] == ':' && (p == json || p[-1] == ',' || p[-1] == '{'))
            return 1;
    }
    return 0;
}

/* Write field f as `"key":value` (raw, as parsed). */
static void put_raw_field(Out *o, const JsonField *f)
{
    out_putc(o, '"');
    out_write(o, f->key, f->klen);
    out_puts(o, "\":");
    if (f->type == JSON_STRING) out_putc(o, '"');
    out_write(o, f->raw, f->rawlen);
    if (f->type == JSON_STRING) out_putc(o, '"');
}

void record_write_raw(Out *o, const Record *r, const char *extra_json, size_t extra_len)
{
    int first = 1;
    out_putc(o, '{');
    for (int i = 0; i < r->obj.n; i++) {
        const JsonField *f = &r->obj.f[i];
        if (extra_json && key_in(extra_json, extra_len, f->key, f->klen)) continue;
        if (!first) out_putc(o, ',');
        first = 0;
        put_raw_field(o, f);
    }
    if (extra_json && extra_len) {
        if (!first) out_putc(o, ',');
        out_write(o, extra_json, extra_len);
    }
    out_write(o, "}\n", 2);
}

void record_write(Out *o, const Record *r, const char *extra_json, size_t extra_len)
{
    write_head(o, r->repo_name.s, r->repo_name.n, r->path.s, r->path.n, r->license.s, r->license.n,
               r->content.s, r->content.n, extra_json, extra_len);
    for (int i = 0; i < r->obj.n; i++) {
        const JsonField *f = &r->obj.f[i];
        if (record_is_known_field(f->key, f->klen)) continue;
        if (extra_json && key_in(extra_json, extra_len, f->key, f->klen)) continue;
        out_putc(o, ',');
        put_raw_field(o, f);
    }
    out_write(o, "}\n", 2);
}

/* --- record input ------------------------------------------------------------------------ */

int record_line_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') return 0;
    return 1;
}

void ri_init(RecordInput *ri, const char *name, int skip_bad)
{
    memset(ri, 0, sizeof *ri);
    ri->name = name;
    ri->skip_bad = skip_bad;
    ri->fd = -1;
    record_init(&ri->rec);
}

static void ri_bad(RecordInput *ri, RecordErr kind)
{
    ri->bad++;
    ri->err = kind;
    if (ri->status < CM_EDATA) ri->status = CM_EDATA;
}

int ri_parse_line(RecordInput *ri, const char *line, size_t len, uint64_t lineno, uint64_t off)
{
    if (record_line_blank(line, len)) return 0;
    if (record_parse(&ri->rec, line, len) != 0) {
        error("%s: line %llu: byte %llu: %s", ri->name, (unsigned long long)lineno,
              (unsigned long long)(off + ri->rec.err_pos), ri->rec.err);
        ri_bad(ri, RI_ERR_PARSE);
        return -1;
    }
    ri->records++;
    return 1;
}

int ri_open(RecordInput *ri, const char *path, size_t max_line, int skip_bad)
{
    int fd = 0;
    const char *name = "stdin";
    if (path && strcmp(path, "-")) {
        name = path;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    ri_init(ri, name, skip_bad);
    if (fd < 0) {
        error("cannot open '%s': %s", path, strerror(errno));
        ri->err = RI_ERR_OPEN;
        ri->status = CM_EIO;
        return -1;
    }
    ri->fd = fd;
    lr_init(&ri->lr, fd, name, max_line);
    return 0;
}

/* The input stops at a bad line under --on-error fail. */
static int ri_stop_here(RecordInput *ri)
{
    error("%s: output stopped at line %llu (use --on-error skip to go on)", ri->name,
          (unsigned long long)ri->lr.lineno);
    return -1;
}

int ri_next(RecordInput *ri)
{
    for (;;) {
        char *line;
        size_t len;
        int k = lr_next(&ri->lr, &line, &len);
        if (k == 0) {
            if (ri->lr.err) {
                ri->err = RI_ERR_READ;
                ri->status = CM_EIO;
                return -1;
            }
            return 0;
        }
        if (k < 0) {
            if (ri->lr.err) { /* read error: lr_next printed it */
                ri->err = RI_ERR_READ;
                ri->status = CM_EIO;
                return -1;
            }
            ri_bad(ri, RI_ERR_TOO_LONG); /* too long: lr_next printed it */
            if (!ri->skip_bad) return ri_stop_here(ri);
            continue;
        }
        ri->bytes += len + 1;
        int r = ri_parse_line(ri, line, len, ri->lr.lineno, ri->lr.offset);
        if (r > 0) return 1;
        if (r < 0 && !ri->skip_bad) return ri_stop_here(ri);
    }
}

int ri_take_line(RecordInput *ri, char **line, size_t *len)
{
    ri->lr.quiet = 1;
    int k = lr_next(&ri->lr, line, len);
    if (k > 0) {
        ri->bytes += *len + 1;
        return 1;
    }
    if (k == 0 && !ri->lr.err) return 0;
    ri->err = ri->lr.err ? RI_ERR_READ : RI_ERR_TOO_LONG;
    return -1;
}

int ri_report(RecordInput *ri, RecordErr kind, uint64_t lineno, uint64_t byte, const char *why)
{
    if (kind == RI_ERR_READ) {
        error("cannot read '%s': %s", ri->name, strerror(ri->lr.err));
        ri->err = RI_ERR_READ;
        ri->status = CM_EIO;
        return -1;
    }
    if (kind == RI_ERR_TOO_LONG)
        error("%s: line %llu: longer than the limit of %zu bytes", ri->name,
              (unsigned long long)lineno, ri->lr.max_line);
    else
        error("%s: line %llu: byte %llu: %s", ri->name, (unsigned long long)lineno,
              (unsigned long long)byte, why);
    ri_bad(ri, kind == RI_ERR_TOO_LONG ? RI_ERR_TOO_LONG : RI_ERR_PARSE);
    if (ri->skip_bad) return 0;
    error("%s: output stopped at line %llu (use --on-error skip to go on)", ri->name,
          (unsigned long long)lineno);
    return -1;
}

void ri_close(RecordInput *ri)
{
    if (ri->fd >= 0) lr_free(&ri->lr);
    if (ri->fd > 0) close(ri->fd);
    ri->fd = -1;
    record_free(&ri->rec);
}
