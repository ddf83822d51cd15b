// SPDX-License-Identifier: MIT
/*
** fuzz_ingest.c: libFuzzer target for cm-ingest's input reading (ingest/ingest.h ingest_input):
** archives of every format libarchive reads, archives nested in archives, compressed streams,
** JSONL dumps and notebooks inside archives.
** fuzz-needs: ingest
**
** Input: byte 0 picks the file name's suffix (which steers cm-ingest as a user's file name
** would: none, .tar, .tar.gz, .zip, .deb, .jsonl, .7z, .tar.zst); the rest is written to a
** temporary file that ingest_input reads with small limits (256 KiB per file, 3 levels of
** nesting, 64 MiB expanded). Properties: every record written is one valid JSON line with a
** string `content` that is valid UTF-8; the counters add up (emitted <= seen).
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <archive.h>
#include <archive_entry.h>

#include "ingest/ingest.h"
#include "record.h"
#include "fuzz.h"

static const char *const suffixes[] = { "",     ".tar",   ".tar.gz", ".zip",
                                        ".deb", ".jsonl", ".7z",     ".tar.zst" };

static char g_dir[256];

/* Remove the temporary directory (empty: each input file is unlinked after use). */
static void tmp_dir_remove(void)
{
    rmdir(g_dir);
}

/* Create a private temporary directory for the input files once per process. */
static const char *tmp_dir(void)
{
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/cm-fuzz-ingest.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(tmp_dir_remove);
    }
    return g_dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/input%s", tmp_dir(), suffixes[data[0] % 8]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f)) abort();

    IngestOpts opts;
    memset(&opts, 0, sizeof opts);
    opts.max_file = 256 << 10;
    opts.max_line = 1 << 20;
    opts.max_ratio = 200;
    opts.max_expanded = 64 << 20;
    opts.max_depth = 3;
    int fd = fuzz_memfd("", 0);
    Out out;
    out_init(&out, fd, "memfd", 0);
    Ingest *g = ingest_new(&opts, &out, 0);
    int rc = ingest_input(g, path);
    FUZZ_ASSERT(rc == 0 || rc == 1);
    ingest_finish(g);
    const IngestStats *st = ingest_stats(g);
    uint64_t emitted = st->emitted;
    FUZZ_ASSERT(emitted <= st->seen + st->jsonl_lines);
    ingest_free(g);
    out_done(&out);

    size_t n;
    char *text = fuzz_slurp(fd, &n);
    close(fd);
    uint64_t lines = 0;
    for (char *p = text, *end = text + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_ASSERT(nl != NULL);
        Record r;
        record_init(&r);
        FUZZ_ASSERT(record_parse(&r, p, (size_t)(nl - p)) == 0);
        FUZZ_ASSERT(utf8_valid_prefix((const unsigned char *)r.content.s, r.content.n) ==
                    r.content.n);
        record_free(&r);
        lines++;
        p = nl + 1;
    }
    FUZZ_ASSERT(lines == emitted);
    free(text);
    unlink(path);
    return 0;
}

#ifdef FUZZ_SEEDS
/* --- Seeds: archives written with libarchive, nested ones included --- */

/* Write an archive of format/filter holding the given (name, data, size) entries into out. */
static void make_archive(Buf *out, int format, int filter, const char *const *names,
                         const Buf *datas, int n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format(a, format);
    if (filter) archive_write_add_filter(a, filter);
    size_t cap = 1 << 20, used = 0;
    buf_grow(out, cap);
    if (archive_write_open_memory(a, out->buf, cap, &used) != ARCHIVE_OK) abort();
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)datas[i].len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 1700000000, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK) abort();
        if (datas[i].len) archive_write_data(a, datas[i].buf, datas[i].len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    out->len = used;
}

/* Write seed DIR/NAME: the suffix selector byte then the bytes. */
static void seed_sel(const char *dir, const char *name, int sel, const Buf *b)
{
    Buf s = { 0 };
    buf_addc(&s, (char)sel);
    buf_add(&s, b->buf, b->len);
    seed_write(dir, name, s.buf, s.len);
    buf_free(&s);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    Buf files[3] = { { 0 }, { 0 }, { 0 } };
    buf_adds(&files[0], "import numpy as np\nprint(np.arange(3))\n");
    buf_adds(&files[1],
             "{\"nbformat\":4,\"metadata\":{},\"cells\":[{\"cell_type\":\"code\","
             "\"source\":[\"import pandas as pd\"],\"outputs\":[]}]}");
    buf_adds(&files[2], "caf\xe9 latin-1\n");
    const char *names[3] = { "proj-0123abc/pkg/a.py", "proj-0123abc/nb.ipynb",
                             "proj-0123abc/bad.py" };
    Buf tar = { 0 }, tgz = { 0 }, zip = { 0 }, nested = { 0 }, nested2 = { 0 }, zst = { 0 };
    make_archive(&tar, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, names, files, 3);
    seed_sel(d, "tar", 1, &tar);
    seed_sel(d, "tar-plain-name", 0, &tar);
    make_archive(&tgz, ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, names, files, 3);
    seed_sel(d, "tar-gz", 2, &tgz);
    make_archive(&zip, ARCHIVE_FORMAT_ZIP, 0, names, files, 3);
    seed_sel(d, "zip", 3, &zip);
    make_archive(&zst, ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_ZSTD, names, files, 2);
    seed_sel(d, "tar-zst", 7, &zst);
    const char *nn[2] = { "inner.tar.gz", "top.py" };
    Buf nd[2] = { tgz, files[0] };
    make_archive(&nested, ARCHIVE_FORMAT_TAR_USTAR, 0, nn, nd, 2);
    seed_sel(d, "nested", 1, &nested);
    const char *nn2[1] = { "data.zip" };
    make_archive(&nested2, ARCHIVE_FORMAT_ZIP, 0, nn2, &nested, 1);
    seed_sel(d, "nested-twice", 3, &nested2);
    Buf jl = { 0 };
    buf_adds(&jl,
             "{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"content\":\"x = 1\\n\"}\n"
             "not json\n{\"content\":\"y\",\"license\":\"mit\"}\n");
    seed_sel(d, "jsonl", 5, &jl);
    seed_sel(d, "jsonl-sniffed", 0, &jl);
    for (int i = 0; i < 3; i++) buf_free(&files[i]);
    buf_free(&tar);
    buf_free(&tgz);
    buf_free(&zip);
    buf_free(&nested);
    buf_free(&nested2);
    buf_free(&zst);
    buf_free(&jl);
    return 0;
}
#endif
