// SPDX-License-Identifier: MIT
/*
** cm-ingest: repository dumps in, one JSONL record per text file out (docs/FORMATS.md).
**
** This file is the command line only: the option table (lib/cli.h), the loop over inputs, the
** summary and the exit status. The work is in ingest/walk*.c (inputs), ingest/naming.c
** (names, filters) and ingest/notebook.c (.ipynb).
*/
#include "atomic.h" // defines: AtomicFile, atomic_*, cm_stopping
#include "cli.h"    // defines: Cli, CliSpec, CliOpt, cli_*
#include "ingest.h" // defines: Ingest, IngestOpts, IngestStats, ingest_*
#include "io.h"     // defines: Out, Progress
#include "util.h"   // defines: error/warn/die, exit codes, parse_size

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------
// The command line

enum {
    OPT_EXT = 1,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_MAX_FILE,
    OPT_UTF8,
    OPT_MAX_DEPTH,
    OPT_MAX_EXPANSION,
    OPT_MAX_EXPANDED,
    OPT_MAX_LINE,
    OPT_OUTPUT,
    OPT_NO_SOURCE,
    OPT_INSTRUCTIONS,
    OPT_THREADS,
    OPT_STATS
};

static const CliOpt ingest_opts[] = {
    { "ext", 0, "LIST", "every text file", "only these extensions, e.g. py,ipynb", OPT_EXT },
    { "include", 0, "GLOB", NULL,
      "only paths matching GLOB (repeatable; a GLOB without '/' also\n"
      "matches the base name)",
      OPT_INCLUDE },
    { "exclude", 0, "GLOB", NULL, "drop paths matching GLOB (repeatable)", OPT_EXCLUDE },
    { "max-file-size", 0, "SIZE", "1M", "skip files bigger than SIZE (k, M, G suffixes; up to 1G)",
      OPT_MAX_FILE },
    { "utf8", 0, "MODE", "skip",
      "skip: skip files that are not UTF-8; replace: repair them\n"
      "with U+FFFD",
      OPT_UTF8 },
    { "max-depth", 0, "N", "4", "open archives nested up to N levels deep (0 to 16)",
      OPT_MAX_DEPTH },
    { "max-expansion", 0, "RATIO", "200",
      "stop an input whose decompressed bytes exceed RATIO\n"
      "times its compressed bytes (counted as at least 1 MiB)",
      OPT_MAX_EXPANSION },
    { "max-expanded-size", 0, "SIZE", "64G", "... or exceed SIZE in all", OPT_MAX_EXPANDED },
    { "max-line", 0, "SIZE", "64M", "longest JSONL input line (up to 4G)", OPT_MAX_LINE },
    { "output", 'o', "FILE", "stdout", "write the records to FILE", OPT_OUTPUT },
    { "no-source", 0, NULL, NULL, "do not add the \"source\" field", OPT_NO_SOURCE },
    { "instructions", 0, NULL, NULL,
      "JSONL dumps may hold instruction records (no `content`:\n"
      "instruction/input/output, prompt/completion, ...): such a\n"
      "record passes through unchanged, \"source\" added",
      OPT_INSTRUCTIONS },
    { "threads", 0, "N", "2",
      "2: decompress in one thread, check and write records in\n"
      "another (same output); 1: a single thread",
      OPT_THREADS },
    { "stats", 0, "FILE", NULL,
      "write a JSON summary (entries seen, emitted, skipped by\n"
      "reason, bytes in/out) to FILE (- for stderr)",
      OPT_STATS },
    { 0 }
};

static const char about_text[] =
    "Read repository dumps and write one JSONL record per text file (format: docs/FORMATS.md).\n"
    "\n"
    "INPUT is an archive (tar, tar.gz/bz2/xz/zst, zip, whl, 7z, ar, deb, cpio, iso: anything\n"
    "libarchive reads), a directory (walked in sorted order), a JSONL dump in the codeparrot /\n"
    "The Stack schema (.jsonl .ndjson .json, plain or .gz .zst .xz .bz2: validated and passed\n"
    "through with our fields added), a plain file, or - for stdin (the default; sniffed: JSONL,\n"
    "archive or plain text). Archives inside archives are opened too (a .deb's data.tar.xz, a zip\n"
    "inside a tar). repo_name is the GitHub NAME-SHA/ wrapper's NAME when there is one, else the\n"
    "archive's or directory's base name; path is relative to the repository.";

static const char notes_text[] =
    "Files are skipped with a counted reason (see --stats): binary (a NUL byte), invalid_utf8,\n"
    "symlink, special, oversized, excluded, notebook_error, expansion_cap, read_error, too_deep.\n"
    "Notebooks (.ipynb) become one Python file in the \"percent\" format (# %% cells, magics\n"
    "commented) with \"notebook\":true.\n"
    "\n"
    "Memory: bounded by the options, not by the size of the dump: an entry buffer of up to\n"
    "--max-file-size per open nesting level (--max-depth + 1 levels), 4 x --max-file-size queued\n"
    "for the writer thread (--threads 2), about 4 x --max-file-size to convert a notebook, one\n"
    "JSONL line of up to --max-line and its decoded fields (about 2 x --max-line, only for lines\n"
    "that long), an 8 MiB output buffer, and libarchive's decoder state per open level (up to\n"
    "64 MiB for xz -9, the zstd window for zstd). With the defaults and one compressed level (a\n"
    ".deb, a tar.xz) that is under 150 MiB; the real Debian .debs of make demo peak under 30 MiB.\n"
    "\n"
    "Example: cm-ingest --ext py,ipynb --stats st.json python3-*.deb repo-abc1234.zip >corpus.jsonl\n"
    "\n"
    "Exit status: 0 all inputs read, 1 some input was bad (corrupt or truncated archive, malformed\n"
    "JSONL line, expansion cap: the good records are kept), 2 usage, 3 I/O error (output),\n"
    "5 internal error, 130 stopped by SIGINT/SIGTERM (at a safe point: the records written are\n"
    "whole; --stats is not written; a second signal ends it at once), 141 the consumer closed\n"
    "the pipe.\n"
    "\n"
    "-o FILE and --stats FILE are written under a temporary name in FILE's directory and renamed\n"
    "over FILE when complete (a device or fifo is written in place).";

static const char *archive_versions(void)
{
    return archive_version_details();
}

static const CliSpec ingest_spec = { "cm-ingest", NULL,        "[options] [INPUT]...", about_text,
                                     notes_text,  ingest_opts, archive_versions };

/* What the command line asks for besides the engine's options. */
typedef struct {
    const char *out_path;   /* -o FILE, or NULL for stdout */
    const char *stats_path; /* --stats FILE, or NULL */
    int quiet;              /* -q */
    int progress;           /* -1 (when stderr is a terminal), 0 or 1 */
    int first, argc;        /* inputs: argv[first..argc) */
} IngestArgs;

/* --ext LIST: extensions without their dot. */
static void set_ext(IngestOpts *o, const char *list)
{
    strv_free(o->ext);
    o->ext = strv_split(list, ',', NULL);
    for (int i = 0; o->ext[i]; i++)
        if (o->ext[i][0] == '.') memmove(o->ext[i], o->ext[i] + 1, strlen(o->ext[i]));
}

/* --include / --exclude GLOB: one more (the argv string itself). */
static void add_glob(char ***v, int *n, const char *glob)
{
    *v = xrealloc(*v, sizeof **v * (size_t)(*n + 1));
    (*v)[(*n)++] = (char *)glob;
}

/*
** Take one option of the table. 0, or CM_EUSAGE (message printed).
*/
static int take_option(Cli *c, int id, IngestOpts *o, IngestArgs *args)
{
    static const char *const utf8_modes[] = { "skip", "replace", NULL };
    switch (id) {
    case OPT_EXT: set_ext(o, c->arg); return 0;
    case OPT_INCLUDE: add_glob(&o->include, &o->n_include, c->arg); return 0;
    case OPT_EXCLUDE: add_glob(&o->exclude, &o->n_exclude, c->arg); return 0;
    case OPT_MAX_FILE: return cli_size(c, 1, 1ull << 30, &o->max_file);
    case OPT_MAX_LINE: return cli_size(c, 1, 4ull << 30, &o->max_line);
    case OPT_UTF8: return cli_choice(c, utf8_modes, &o->utf8_replace);
    case OPT_MAX_DEPTH: return cli_int(c, 0, 16, &o->max_depth);
    case OPT_MAX_EXPANSION:
        if (parse_double(c->arg, &o->max_ratio) || !(o->max_ratio >= 1))
            return cli_bad_value(c, "a ratio >= 1");
        return 0;
    case OPT_MAX_EXPANDED:
        if (parse_size(c->arg, &o->max_expanded) || o->max_expanded == 0)
            return cli_bad_value(c, "a size (k, M, G suffixes)");
        return 0;
    case OPT_OUTPUT: args->out_path = c->arg; return 0;
    case OPT_NO_SOURCE: o->no_source = 1; return 0;
    case OPT_INSTRUCTIONS: o->instructions = 1; return 0;
    case OPT_THREADS: return cli_int(c, 1, 2, &o->threads);
    case OPT_STATS: args->stats_path = c->arg; return 0;
    }
    return 0;
}

/*
** Parse the command line into o and args. -1 to go on, else the exit status (--help and
** --version printed: 0; a usage error: CM_EUSAGE).
*/
static int parse_args(int argc, char **argv, IngestOpts *o, IngestArgs *args)
{
    Cli c;
    int k = CLI_DONE, rc = CM_OK;
    cli_init(&c, &ingest_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) rc = take_option(&c, k, o, args);
    if (rc == CM_OK && k == CLI_STOP)
        rc = c.status;
    else if (rc == CM_OK)
        rc = -1;
    args->quiet = c.quiet;
    args->progress = c.progress;
    args->first = c.optind;
    args->argc = argc;
    cli_free(&c);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Output and summary

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

/* The record output: stdout, or FILE through an AtomicFile (written under a temporary name and
** renamed over FILE at the end; a device, fifo or link is written in place: lib/atomic.h). */
typedef struct {
    const char *path; /* -o FILE, or NULL for stdout */
    int fd;           /* where the records go */
    AtomicFile af;    /* -o FILE */
} RecordDest;

/*
** Open -o FILE (none or "-": stdout). 0, or -1 (message printed).
*/
static int dest_open(RecordDest *op, const char *path)
{
    memset(op, 0, sizeof *op);
    op->fd = 1;
    op->af.fd = -1;
    if (!path || !strcmp(path, "-")) return 0;
    op->path = path;
    atomic_sweep(path); /* a temporary of ours that kill -9 left */
    if (atomic_open(&op->af, path) != 0) return -1;
    op->fd = op->af.fd;
    return 0;
}

/*
** The records are all written: put FILE in place (fsync, rename), or close it. 0, or -1
** (message printed).
*/
static int dest_close(RecordDest *op)
{
    return op->path ? atomic_commit(&op->af) : 0;
}

/*
** Write the --stats JSON to path ("-": stderr; else through lib/atomic.h). 0 or CM_EIO
** (message printed).
*/
static int write_stats(const char *path, const IngestStats *st, double secs)
{
    Buf sj = { 0 };
    int rc = CM_OK;
    ingest_stats_json(st, secs, &sj);
    if (!strcmp(path, "-")) {
        if (fwrite(sj.buf, 1, sj.len, stderr) != sj.len)
            rc = error("cannot write '%s': %s", path, strerror(errno));
    } else {
        atomic_sweep(path);
        rc = atomic_write_file(path, sj.buf, sj.len);
    }
    buf_free(&sj);
    return rc ? CM_EIO : CM_OK;
}

/*
** Read every input into the engine's output, until the inputs end or a stop signal ends the
** walk at a safe point. CM_OK, or CM_EDATA when some input was bad.
*/
static int ingest_all(Ingest *g, char **argv, const IngestArgs *args)
{
    int rc = CM_OK;
    if (args->first == args->argc && ingest_input(g, "-")) rc = CM_EDATA;
    for (int i = args->first; i < args->argc && !ingest_stopped(g); i++)
        if (ingest_input(g, argv[i])) rc = CM_EDATA;
    return rc;
}

/*
** Ingest the inputs into the output; then the --stats file and the summary. On a stop signal
** the records before the stop point are all written and put in place, --stats is not written
** (its counts would describe a part of the inputs) and the status is CM_EINTR. Returns the
** exit status.
*/
static int run_ingest(const IngestOpts *o, const IngestArgs *args, char **argv)
{
    RecordDest op;
    Out out = { 0 };
    if (dest_open(&op, args->out_path)) return CM_EIO;
    out_init(&out, op.fd, op.path ? op.path : "stdout", 8u << 20);
    Ingest *g = ingest_new(o, &out, args->progress);
    double t0 = now_sec();
    int rc = ingest_all(g, argv, args);
    ingest_finish(g); /* writes the records still queued */
    out_done(&out);
    double secs = now_sec() - t0;
    int failed = dest_close(&op) != 0;
    int stopped = cm_stopping();
    if (stopped && !ingest_stopped(g))
        error("interrupted: at the end of the input (records before it are complete)");
    if (args->stats_path && !stopped && write_stats(args->stats_path, ingest_stats(g), secs))
        failed = 1;
    if (!args->quiet) print_summary(ingest_stats(g), secs);
    ingest_free(g);
    return failed ? CM_EIO : stopped ? CM_EINTR : rc;
}

int main(int argc, char **argv)
{
    IngestOpts o = { 0 };
    IngestArgs args = { 0 };

    cm_init("cm-ingest");
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
    int rc = parse_args(argc, argv, &o, &args);
    if (rc < 0) {
        atomic_signals_init(); /* SIGINT/SIGTERM: stop at a safe point, exit 130 */
        rc = run_ingest(&o, &args, argv);
    }
    strv_free(o.ext);
    free(o.include);
    free(o.exclude);
    return rc;
}
