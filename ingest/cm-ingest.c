// SPDX-License-Identifier: MIT
/*
** cm-ingest: repository dumps in, one JSONL record per text file out (docs/FORMATS.md).
**
** This file is the command line only: options, usage, the loop over inputs, the summary and
** the exit status. The work is in ingest/walk.c (inputs), ingest/naming.c (names, filters)
** and ingest/notebook.c (.ipynb).
*/
#include "ingest.h"   // defines: Ingest, IngestOpts, IngestStats, ingest_*
#include "io.h"       // defines: Out, Progress
#include "util.h"     // defines: error/warn/die, exit codes, parse_size

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CM_VERSION "0.1.0"

// ---------------------------------------------------------------------------------------------
// Usage

static const char usage_text[] =
"usage: cm-ingest [OPTION]... [INPUT]...\n"
"Read repository dumps and write one JSONL record per text file (format: docs/FORMATS.md).\n"
"\n"
"INPUT is an archive (tar, tar.gz/bz2/xz/zst, zip, whl, 7z, ar, deb, cpio, iso: anything\n"
"libarchive reads), a directory (walked in sorted order), a JSONL dump in the codeparrot /\n"
"The Stack schema (.jsonl .ndjson .json, plain or .gz .zst .xz .bz2: validated and passed\n"
"through with our fields added), a plain file, or - for stdin (the default; sniffed: JSONL,\n"
"archive or plain text). Archives inside archives are opened too (a .deb's data.tar.xz, a zip\n"
"inside a tar). repo_name is the GitHub NAME-SHA/ wrapper's NAME when there is one, else the\n"
"archive's or directory's base name; path is relative to the repository.\n"
"\n"
"Selection:\n"
"  --ext LIST              only these extensions, e.g. py,ipynb (default: every text file)\n"
"  --include GLOB          only paths matching GLOB (repeatable; a GLOB without '/' also\n"
"                          matches the base name)\n"
"  --exclude GLOB          drop paths matching GLOB (repeatable)\n"
"  --max-file-size SIZE    skip files bigger than SIZE (default 1M; k, M, G suffixes)\n"
"  --utf8=skip|replace     skip files that are not UTF-8 (default), or repair them with U+FFFD\n"
"\n"
"Limits:\n"
"  --max-depth N           open archives nested up to N levels deep (default 4, max 16)\n"
"  --max-expansion RATIO   stop an input whose decompressed bytes exceed RATIO times its\n"
"                          compressed bytes (counted as at least 1 MiB; default 200)\n"
"  --max-expanded-size SIZE  ... or exceed SIZE in all (default 64G)\n"
"  --max-line SIZE         longest JSONL input line (default 64M)\n"
"\n"
"Output:\n"
"  -o, --output FILE       write records to FILE (default: stdout)\n"
"  --no-source             do not add the \"source\" field\n"
"  --threads N             2 (default): decompress in one thread, check and write records in\n"
"                          another (same output); 1: a single thread\n"
"  --stats FILE            write a JSON summary (entries seen, emitted, skipped by reason,\n"
"                          bytes in/out) to FILE (- for stderr)\n"
"  -q, --quiet             no summary line on stderr\n"
"  --progress, --no-progress  progress on stderr (default: when stderr is a terminal)\n"
"  -h, --help              this help\n"
"  --version               print the version\n"
"\n"
"Files are skipped with a counted reason (see --stats): binary (a NUL byte), invalid_utf8,\n"
"symlink, special, oversized, excluded, notebook_error, expansion_cap, read_error, too_deep.\n"
"Notebooks (.ipynb) become one Python file in the \"percent\" format (# %% cells, magics\n"
"commented) with \"notebook\":true.\n"
"\n"
"Memory: about (max-depth + 6) x max-file-size + 4 x max-file-size for a notebook + one JSONL\n"
"line + 8 MiB of output buffer + libarchive's decoders (up to 64 MiB for xz -9); it does not\n"
"grow with the size of the dump (defaults: under 150 MiB).\n"
"\n"
"Example: cm-ingest --ext py,ipynb --stats st.json python3-*.deb repo-abc1234.zip >corpus.jsonl\n"
"\n"
"Exit status: 0 all inputs read, 1 some input was bad (corrupt or truncated archive, malformed\n"
"JSONL line, expansion cap: the good records are kept), 2 usage, 3 I/O error (output),\n"
"5 internal error, 141 the consumer closed the pipe.\n";

/*
** Print the full usage on stdout (--help) or a short one on stderr (bad usage), and exit.
*/
static void usage(int status)
{
    if (status == 0) {
        fputs(usage_text, stdout);
        exit(fflush(stdout) ? CM_EIO : 0);
    }
    fprintf(stderr, "usage: cm-ingest [OPTION]... [INPUT]...\nTry 'cm-ingest --help' for more.\n");
    exit(status);
}

// ---------------------------------------------------------------------------------------------
// Main

enum {
    OPT_EXT = 256, OPT_INCLUDE, OPT_EXCLUDE, OPT_MAX_FILE, OPT_UTF8, OPT_MAX_DEPTH,
    OPT_MAX_EXP, OPT_MAX_EXP_SIZE, OPT_MAX_LINE, OPT_NO_SOURCE, OPT_STATS, OPT_PROGRESS,
    OPT_NO_PROGRESS, OPT_VERSION, OPT_THREADS
};

static const struct option long_opts[] = {
    { "ext", required_argument, NULL, OPT_EXT },
    { "include", required_argument, NULL, OPT_INCLUDE },
    { "exclude", required_argument, NULL, OPT_EXCLUDE },
    { "max-file-size", required_argument, NULL, OPT_MAX_FILE },
    { "utf8", required_argument, NULL, OPT_UTF8 },
    { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
    { "max-expansion", required_argument, NULL, OPT_MAX_EXP },
    { "max-expanded-size", required_argument, NULL, OPT_MAX_EXP_SIZE },
    { "max-line", required_argument, NULL, OPT_MAX_LINE },
    { "output", required_argument, NULL, 'o' },
    { "no-source", no_argument, NULL, OPT_NO_SOURCE },
    { "stats", required_argument, NULL, OPT_STATS },
    { "quiet", no_argument, NULL, 'q' },
    { "progress", no_argument, NULL, OPT_PROGRESS },
    { "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, OPT_VERSION },
    { "threads", required_argument, NULL, OPT_THREADS },
    { NULL, 0, NULL, 0 }
};

static const char *out_path;     /* -o FILE, or NULL for stdout */

/*
** Print the one-line summary on stderr.
*/
static void print_summary(const IngestStats *st, double secs)
{
    uint64_t skipped = 0;
    for (int i = 0; i < SKIP__N; i++) skipped += st->skipped[i];
    char why[512];
    size_t k = 0;
    why[0] = 0;
    for (int i = 0; i < SKIP__N && k < sizeof why - 64; i++)
        if (st->skipped[i])
            k += (size_t)snprintf(why + k, sizeof why - k, "%s%s %llu", k ? ", " : " (",
                                  ingest_skip_names[i], (unsigned long long)st->skipped[i]);
    if (k) snprintf(why + k, sizeof why - k, ")");
    fprintf(stderr, "cm-ingest: %llu files: %llu emitted (%.1f MB), %llu skipped%s",
            (unsigned long long)st->seen, (unsigned long long)st->emitted,
            (double)st->content_out / 1e6, (unsigned long long)skipped, why);
    if (st->bad_lines) fprintf(stderr, ", %llu bad JSONL lines", (unsigned long long)st->bad_lines);
    if (st->errors) fprintf(stderr, ", %llu damaged inputs", (unsigned long long)st->errors);
    fprintf(stderr, ", %.1f s\n", secs);
}

int main(int argc, char **argv)
{
    IngestOpts o = {0};
    Ingest *g = NULL;
    Out out = {0};
    Buf sj = {0};
    const char *stats_path = NULL;
    int quiet = 0, progress = -1, rc = CM_OK, c, fd = 1;
    uint64_t v;
    long l;
    char **inc = NULL, **exc = NULL;

    cm_init("cm-ingest");
    argv[0] = (char *)"cm-ingest";      /* getopt names the program by argv[0] */
    if (!setlocale(LC_CTYPE, "C.UTF-8")) setlocale(LC_CTYPE, "");
    /* We never print local times; without TZ, glibc's mktime() stats /etc/localtime for every
    ** zip entry libarchive reads (a third of the system time on a zip of 15k files). */
    setenv("TZ", "UTC0", 1);
    o.max_file = 1u << 20;
    o.max_line = 64u << 20;
    o.max_ratio = 200;
    o.max_expanded = 64ull << 30;
    o.max_depth = 4;
    o.threads = 2;
    while ((c = getopt_long(argc, argv, "o:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_EXT:
            strv_free(o.ext);
            o.ext = strv_split(optarg, ',', NULL);
            for (int i = 0; o.ext[i]; i++)
                if (o.ext[i][0] == '.') memmove(o.ext[i], o.ext[i] + 1, strlen(o.ext[i]));
            break;
        case OPT_INCLUDE:
            inc = xrealloc(inc, sizeof *inc * (size_t)(o.n_include + 1));
            inc[o.n_include++] = optarg;
            break;
        case OPT_EXCLUDE:
            exc = xrealloc(exc, sizeof *exc * (size_t)(o.n_exclude + 1));
            exc[o.n_exclude++] = optarg;
            break;
        case OPT_MAX_FILE:
            if (parse_size(optarg, &v) || v == 0 || v > (1ull << 30)) {
                error("--max-file-size: '%s' is not a size between 1 and 1G", optarg);
                usage(CM_EUSAGE);
            }
            o.max_file = v;
            break;
        case OPT_MAX_LINE:
            if (parse_size(optarg, &v) || v == 0 || v > (4ull << 30)) {
                error("--max-line: '%s' is not a size between 1 and 4G", optarg);
                usage(CM_EUSAGE);
            }
            o.max_line = v;
            break;
        case OPT_UTF8:
            if (!strcmp(optarg, "skip")) o.utf8_replace = 0;
            else if (!strcmp(optarg, "replace")) o.utf8_replace = 1;
            else {
                error("--utf8: '%s' is not skip or replace", optarg);
                usage(CM_EUSAGE);
            }
            break;
        case OPT_MAX_DEPTH:
            if (parse_long(optarg, 0, 16, &l)) {
                error("--max-depth: '%s' is not a number from 0 to 16", optarg);
                usage(CM_EUSAGE);
            }
            o.max_depth = (int)l;
            break;
        case OPT_MAX_EXP:
            if (parse_double(optarg, &o.max_ratio) || !(o.max_ratio >= 1)) {
                error("--max-expansion: '%s' is not a ratio >= 1", optarg);
                usage(CM_EUSAGE);
            }
            break;
        case OPT_MAX_EXP_SIZE:
            if (parse_size(optarg, &o.max_expanded) || o.max_expanded == 0) {
                error("--max-expanded-size: '%s' is not a size", optarg);
                usage(CM_EUSAGE);
            }
            break;
        case 'o': out_path = optarg; break;
        case OPT_THREADS:
            if (parse_long(optarg, 1, 2, &l)) {
                error("--threads: '%s' is not 1 or 2", optarg);
                usage(CM_EUSAGE);
            }
            o.threads = (int)l;
            break;
        case OPT_NO_SOURCE: o.no_source = 1; break;
        case OPT_STATS: stats_path = optarg; break;
        case 'q': quiet = 1; break;
        case OPT_PROGRESS: progress = 1; break;
        case OPT_NO_PROGRESS: progress = 0; break;
        case 'h': usage(0); break;
        case OPT_VERSION:
            printf("cm-ingest %s (codemill; %s)\n", CM_VERSION, archive_version_details());
            return fflush(stdout) ? CM_EIO : 0;
        default: usage(CM_EUSAGE);
        }
    }
    o.include = inc;
    o.exclude = exc;
    if (out_path && strcmp(out_path, "-") != 0) {
        fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            error("cannot open '%s': %s", out_path, strerror(errno));
            rc = CM_EIO;
            goto out;
        }
    }
    out_init(&out, fd, fd == 1 ? "stdout" : out_path, 8u << 20);
    g = ingest_new(&o, &out, progress);
    double t0 = now_sec();
    if (optind == argc) {
        if (ingest_input(g, "-")) rc = CM_EDATA;
    }
    for (int i = optind; i < argc; i++)
        if (ingest_input(g, argv[i])) rc = CM_EDATA;
    ingest_finish(g);
    out_flush(&out);
    double secs = now_sec() - t0;
    if (stats_path) {
        ingest_stats_json(ingest_stats(g), secs, &sj);
        FILE *f = !strcmp(stats_path, "-") ? stderr : fopen(stats_path, "w");
        if (!f || fwrite(sj.buf, 1, sj.len, f) != sj.len || (f != stderr && fclose(f))) {
            error("cannot write '%s': %s", stats_path, strerror(errno));
            rc = CM_EIO;
        }
    }
    if (!quiet) print_summary(ingest_stats(g), secs);
out:
    if (out.buf) out_done(&out);
    if (fd > 1 && close(fd) < 0 && rc == CM_OK) {
        error("cannot write to '%s': %s", out_path, strerror(errno));
        rc = CM_EIO;
    }
    ingest_free(g);
    buf_free(&sj);
    strv_free(o.ext);
    free(inc);
    free(exc);
    return rc;
}
