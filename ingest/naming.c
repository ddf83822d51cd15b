// SPDX-License-Identifier: MIT
/*
** naming.c: how cm-ingest names things (repo_name, path), recognises archives by name and by
** magic, and applies --ext / --include / --exclude. Pure functions, unit-tested in
** tests/unit/test_ingest.c.
*/
#include "ingest.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ---------------------------------------------------------------------------------------------
// Names

/* Suffixes, longest first where one ends another (".tar.gz" before ".gz"). */
static const struct {
    const char *sfx;
    int kind;
} suffixes[] = {
    { ".tar.gz", NAME_ARCHIVE },  { ".tar.bz2", NAME_ARCHIVE }, { ".tar.xz", NAME_ARCHIVE },
    { ".tar.zst", NAME_ARCHIVE }, { ".tar.lz4", NAME_ARCHIVE }, { ".tar.lzma", NAME_ARCHIVE },
    { ".tar.z", NAME_ARCHIVE },   { ".tgz", NAME_ARCHIVE },     { ".tbz2", NAME_ARCHIVE },
    { ".tbz", NAME_ARCHIVE },     { ".txz", NAME_ARCHIVE },     { ".tzst", NAME_ARCHIVE },
    { ".tar", NAME_ARCHIVE },     { ".zip", NAME_ARCHIVE },     { ".whl", NAME_ARCHIVE },
    { ".egg", NAME_ARCHIVE },     { ".jar", NAME_ARCHIVE },     { ".7z", NAME_ARCHIVE },
    { ".ar", NAME_ARCHIVE },      { ".cpio", NAME_ARCHIVE },    { ".iso", NAME_ARCHIVE },
    { ".deb", NAME_DEB },         { ".udeb", NAME_DEB },        { NULL, 0 }
};

static const char *const jsonl_sfx[] = { ".jsonl", ".ndjson", ".json", NULL };
static const char *const comp_sfx[] = { ".gz", ".zst", ".xz", ".bz2", NULL };

/*
** Does s[0..n) end with sfx (ASCII case-insensitive)? Return the suffix length or 0.
*/
static size_t ends_with(const char *s, size_t n, const char *sfx)
{
    size_t k = strlen(sfx);
    if (k >= n) return 0; /* a bare ".zip" is not an archive name */
    return strncasecmp(s + n - k, sfx, k) == 0 ? k : 0;
}

/*
** Length of the JSONL suffix (with its optional compression suffix) ending s[0..n), or 0.
*/
static size_t jsonl_suffix(const char *s, size_t n)
{
    size_t c = 0;
    for (int i = 0; comp_sfx[i]; i++)
        if ((c = ends_with(s, n, comp_sfx[i])) != 0) break;
    for (int i = 0; jsonl_sfx[i]; i++) {
        size_t k = ends_with(s, n - c, jsonl_sfx[i]);
        if (k) return k + c;
    }
    return 0;
}

/*
** Classify a file name (see ingest.h).
*/
int ingest_name_kind(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(base);
    for (int i = 0; suffixes[i].sfx; i++)
        if (ends_with(base, n, suffixes[i].sfx)) return suffixes[i].kind;
    if (jsonl_suffix(base, n)) return NAME_JSONL;
    return NAME_PLAIN;
}

/*
** Length of base without its archive/compression/JSONL suffix.
*/
size_t ingest_strip_archive_ext(const char *base)
{
    size_t n = strlen(base);
    for (int i = 0; suffixes[i].sfx; i++) {
        size_t k = ends_with(base, n, suffixes[i].sfx);
        if (k) return n - k;
    }
    size_t k = jsonl_suffix(base, n);
    if (k) return n - k;
    for (int i = 0; comp_sfx[i]; i++) {
        k = ends_with(base, n, comp_sfx[i]);
        if (k) return n - k;
    }
    return n;
}

/*
** GitHub wrapper "NAME-SHA" as the first path component (see ingest.h).
*/
size_t ingest_github_wrapper(const char *path, size_t n, size_t *comp_len)
{
    const char *slash = memchr(path, '/', n);
    size_t c = slash ? (size_t)(slash - path) : n;
    *comp_len = c;
    if (!slash) return 0; /* a wrapper holds files: it must be a directory */
    const char *dash = NULL;
    for (size_t i = c; i > 0; i--)
        if (path[i - 1] == '-') {
            dash = path + i - 1;
            break;
        }
    if (!dash || dash == path) return 0;
    size_t hex = (size_t)(path + c - dash - 1);
    if (hex < 7 || hex > 40) return 0;
    for (const char *q = dash + 1; q < path + c; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))) return 0;
    return (size_t)(dash - path);
}

/*
** Clean an entry path (see ingest.h).
*/
const char *ingest_clean_path(const char *p, size_t *n)
{
    size_t len = *n;
    for (;;) {
        if (len >= 2 && p[0] == '.' && p[1] == '/') {
            p += 2;
            len -= 2;
        } else if (len >= 1 && p[0] == '/') {
            p++;
            len--;
        } else
            break;
    }
    while (len > 0 && p[len - 1] == '/') len--;
    if (len == 1 && p[0] == '.') len = 0;
    *n = len;
    return p;
}

// ---------------------------------------------------------------------------------------------
// Magic

/*
** Sniff archive magic (see ingest.h).
*/
int ingest_sniff_archive(const unsigned char *p, size_t n)
{
    /* containers: worth opening whatever the entry's name */
    if (n >= 4 && !memcmp(p, "PK\003\004", 4)) return 1;         /* zip */
    if (n >= 4 && !memcmp(p, "PK\005\006", 4)) return 1;         /* empty zip */
    if (n >= 6 && !memcmp(p, "7z\274\257\047\034", 6)) return 1; /* 7z */
    if (n >= 8 && !memcmp(p, "!<arch>\n", 8)) return 1;          /* ar (.deb) */
    if (n >= 262 && !memcmp(p + 257, "ustar", 5)) return 1;      /* tar (POSIX, GNU) */
    /* compressed streams: an archive only when the name says so (x.csv.gz is not) */
    if (n >= 6 && !memcmp(p, "\3757zXZ\0", 6)) return 2;                        /* xz */
    if (n >= 4 && !memcmp(p, "\050\265\057\375", 4)) return 2;                  /* zstd */
    if (n >= 3 && !memcmp(p, "\037\213\010", 3)) return 2;                      /* gzip, deflate */
    if (n >= 4 && !memcmp(p, "BZh", 3) && p[3] >= '1' && p[3] <= '9') return 2; /* bzip2 */
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Filters

/*
** Match one glob against a path: patterns with a '/' match the whole path, others also
** match the base name (like .gitignore). '*' crosses '/' in whole-path matches.
*/
static int glob_match(const char *pat, const char *path, const char *base)
{
    if (fnmatch(pat, path, 0) == 0) return 1;
    if (!strchr(pat, '/') && fnmatch(pat, base, 0) == 0) return 1;
    return 0;
}

/*
** Do --ext/--include/--exclude let path[0..n) through?
*/
int ingest_path_wanted(const IngestOpts *o, const char *path, size_t n)
{
    if (!o->ext && !o->n_include && !o->n_exclude) return 1;
    char stack[1024];
    char *s = n < sizeof stack ? stack : xmalloc(n + 1);
    memcpy(s, path, n);
    s[n] = 0;
    const char *base = strrchr(s, '/');
    base = base ? base + 1 : s;
    int ok = 1;
    if (o->ext) {
        const char *dot = strrchr(base, '.');
        ok = 0;
        if (dot && dot != base)
            for (int i = 0; o->ext[i]; i++)
                if (!strcasecmp(dot + 1, o->ext[i])) {
                    ok = 1;
                    break;
                }
    }
    if (ok && o->n_include) {
        ok = 0;
        for (int i = 0; i < o->n_include && !ok; i++) ok = glob_match(o->include[i], s, base);
    }
    for (int i = 0; ok && i < o->n_exclude; i++)
        if (glob_match(o->exclude[i], s, base)) ok = 0;
    if (s != stack) free(s);
    return ok;
}
