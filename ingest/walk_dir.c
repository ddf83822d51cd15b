// SPDX-License-Identifier: MIT
/*
** walk_dir.c: cm-ingest's directories. fts walks them sorted by name, so the output does not
** depend on the file system; every regular file is an input (an archive in it is opened, a
** plain file is a record) whose repo_name is the directory's base name and whose path is
** relative to it. Symbolic links and special files are counted and skipped.
*/
#include "walk.h"

#include <errno.h>
#include <fts.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
** fts comparison: by name, bytewise, so that the walk order is the same everywhere.
*/
static int fts_cmp(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

/*
** Walk a directory in sorted order; every regular file is an input whose repo is the
** directory's base name and whose path is relative to it.
*/
int walk_dir(Ingest *g, const char *dir)
{
    char *argv[2] = { (char *)dir, NULL };
    FTS *f = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, fts_cmp);
    if (!f) {
        g->bad = 1;
        return error("%s: cannot walk: %s", dir, strerror(errno));
    }
    Buf repo = { 0 };
    char cwd[PATH_MAX];
    if (!strcmp(dir, ".") || !strcmp(dir, "./"))
        walk_base_name(getcwd(cwd, sizeof cwd) ? cwd : ".", &repo);
    else
        walk_base_name(dir, &repo);
    Scope sc = { 0 };
    sc.repo = repo.buf ? repo.buf : "";
    sc.repo_n = repo.len;
    sc.prefix = "";
    sc.source = dir;
    sc.source_n = strlen(dir);
    int rc = 0;
    FTSENT *e;
    size_t root = strlen(dir);
    while ((e = fts_read(f)) != NULL) {
        const char *rel = e->fts_path + root;
        while (*rel == '/') rel++;
        if (walk_stopping(g)) { /* a safe point: between entries */
            rc = walk_stop(g, "%s: at '%s'", dir, *rel ? rel : e->fts_name);
            break;
        }
        switch (e->fts_info) {
        case FTS_D:
        case FTS_DP:
        case FTS_DOT: break;
        case FTS_DNR:
        case FTS_ERR:
        case FTS_NS:
            error("%s: %s", e->fts_path, strerror(e->fts_errno));
            g->bad = 1;
            rc = -1;
            break;
        case FTS_SL:
        case FTS_SLNONE:
            g->st.seen++;
            walk_skip(g, SKIP_SYMLINK);
            break;
        case FTS_F:
            if (!*rel) rel = e->fts_name; /* the "directory" was a file */
            if (walk_file(g, e->fts_path, &sc, rel, 0, (int64_t)e->fts_statp->st_size) < 0) rc = -1;
            break;
        default:
            g->st.seen++;
            walk_skip(g, SKIP_SPECIAL);
            break;
        }
    }
    fts_close(f);
    buf_free(&repo);
    return rc;
}
