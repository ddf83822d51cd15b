// SPDX-License-Identifier: MIT
/*
** cm-shards: lay out a token stream for training -- memory-mappable shard files plus an SQLite
** index with one row per document -- and inspect, check and combine such corpora.
**
**   cm-tokenize encode ... | cm-shards pack -o corpus/
**   cm-shards verify corpus/        cm-shards stats corpus/       cm-shards cat corpus/
**   cm-shards merge -o all/ part1/ part2/        cm-shards split --valid-fraction 0.1 corpus/
**
** The verbs live in shards/pack*.c, verify.c, stats.c, cat.c, merge.c and split.c (library
** functions, see shards.h); this file is the command line: one option table per verb
** (lib/cli.h), checked values, and the call.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h" // defines: atomic_signals_init
#include "cli.h"    // defines: CliSpec, CliOpt, cli_dispatch
#include "shard.h"  // defines: SPLIT_SEED_DEFAULT
#include "shards.h" // defines: pack_run, verify_run, stats_run, cat_run, merge_run, split_run
#include "util.h"   // defines: cm_init, error, exit codes

/* The whole command line, stored in the index by pack and merge (set by main). */
static Buf g_cmdline;

enum {
    OPT_OUTPUT = 'o',
    OPT_SHARD_TOKENS = 256,
    OPT_VALID,
    OPT_SEED,
    OPT_SPLIT_BY,
    OPT_SPLIT_FROM,
    OPT_RESUME,
    OPT_FORCE,
    OPT_JSON,
    OPT_WHERE,
    OPT_LIMIT,
    OPT_IDS
};

/* Run the parser of spec over argv; handle(c, id, ctx) takes each of the verb's own options.
** Returns CM_OK with c open (operands from c->optind), or an exit status with c freed. */
static int parse(Cli *c, const CliSpec *spec, int argc, char **argv,
                 int (*handle)(Cli *c, int id, void *ctx), void *ctx)
{
    int k = CLI_DONE, rc = CM_OK;
    cli_init(c, spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(c)) > 0) rc = handle(c, k, ctx);
    if (rc == CM_OK && k == CLI_STOP) rc = c->status ? c->status : -1;
    if (rc != CM_OK) cli_free(c);
    return rc;
}

/* parse()'s -1 (--help or --version printed) is exit status 0. */
static int parsed_status(int rc)
{
    return rc < 0 ? CM_OK : rc;
}

static const char *const split_units[] = { "repo", "path", NULL }; /* SPLIT_BY_* order */

/* --split-seed: any integer strtoull takes (decimal, 0x hex, 0 octal). */
static int parse_seed(Cli *c, uint64_t *out)
{
    char *e = NULL;
    errno = 0;
    *out = strtoull(c->arg, &e, 0);
    if (errno || !*c->arg || *e) return cli_bad_value(c, "an integer");
    return CM_OK;
}

// ----------------------------------------------------------------------------
// pack

static const CliOpt pack_opts[] = {
    { "output", 'o', "DIR", NULL, "the corpus directory to write (required)", OPT_OUTPUT },
    { "shard-tokens", 0, "N", "64M", "tokens per shard (suffixes k, M, G)", OPT_SHARD_TOKENS },
    { "valid-fraction", 0, "F", "0.05",
      "share of the tokens in the 'valid' split: whole\n"
      "repositories in hash order until the share is reached (never empty\n"
      "with two or more); no repository is in both splits",
      OPT_VALID },
    { "split-seed", 0, "S", "0x636f64656d696c6c", "seed of that hash order", OPT_SEED },
    { "split-by", 0, "UNIT", "repo", "repo, or path (one repository: path, with a warning)",
      OPT_SPLIT_BY },
    { "split-from", 0, "DIR", NULL,
      "units (repositories or paths) that corpus DIR has keep\n"
      "DIR's split (valid when any of their documents is valid\n"
      "there); the others go by --valid-fraction",
      OPT_SPLIT_FROM },
    { "resume", 0, NULL, NULL,
      "finish an interrupted pack of the same input: documents\n"
      "already indexed are skipped, incomplete shards rewritten",
      OPT_RESUME },
    { "force", 0, NULL, NULL, "replace a corpus already in DIR", OPT_FORCE },
    { 0 }
};

static const CliSpec pack_spec = {
    "cm-shards",
    "pack",
    "-o DIR [options] [INPUT|-]",
    "Read a token stream of 'cm-tokenize encode' (INPUT, default stdin) and write\n"
    "DIR/shard-NNNNN.bin (memory-mappable tokens) and DIR/index.sqlite (one row per document:\n"
    "repo_name, path, license, imports, split, ...). Formats: docs/FORMATS.md.",
    "Memory: the largest document, at most 2 x 64 MiB of document metadata (the shard being\n"
    "written and the one being indexed), 4 MiB of write chunks and a 64 MiB SQLite cache,\n"
    "whatever the input size (the path index sort spills to SQLITE_TMPDIR or TMPDIR).\n"
    "Shards are written with O_DIRECT when the file system allows it (CM_SHARDS_BUFFERED=1:\n"
    "through the page cache). A first SIGINT/SIGTERM finishes the current shard and exits 130\n"
    "('pack --resume' goes on); a second removes the shard being written and exits 130.\n"
    "Exit status: 0 ok, 1 bad input (the documents before it are kept), 2 usage, 3 I/O error\n"
    "(disk full...), 4 damaged corpus, 5 internal error, 130 interrupted.",
    pack_opts,
    NULL
};

static int pack_option(Cli *c, int id, void *ctx)
{
    PackOpts *po = ctx;
    switch (id) {
    case OPT_OUTPUT: po->dir = c->arg; return CM_OK;
    case OPT_SHARD_TOKENS: return cli_size(c, 1, (uint64_t)1 << 40, &po->shard_tokens);
    case OPT_VALID: return cli_double(c, 0, 1, &po->valid_fraction);
    case OPT_SEED: return parse_seed(c, &po->split_seed);
    case OPT_SPLIT_BY: return cli_choice(c, split_units, &po->split_by);
    case OPT_SPLIT_FROM: po->split_from = c->arg; return CM_OK;
    case OPT_RESUME: po->resume = 1; return CM_OK;
    case OPT_FORCE: po->force = 1; return CM_OK;
    }
    return CM_EINTERNAL;
}

static int run_pack(int argc, char **argv)
{
    PackOpts po = { 0 };
    po.shard_tokens = PACK_SHARD_TOKENS_DEFAULT;
    po.valid_fraction = PACK_VALID_FRACTION_DEFAULT;
    po.split_seed = SPLIT_SEED_DEFAULT;
    Cli c;
    int rc = parse(&c, &pack_spec, argc, argv, pack_option, &po);
    if (rc) return parsed_status(rc);
    int nargs = argc - c.optind;
    char **args = argv + c.optind;
    int fd = -1;
    if (!po.dir)
        rc = cli_usage_error(&c, "missing -o DIR");
    else if (nargs > 1)
        rc = cli_usage_error(&c, "one input at most (got '%s' more)", args[1]);
    else if (po.resume && po.force)
        rc = cli_usage_error(&c, "--resume and --force exclude each other");
    if (!rc && (nargs == 0 || !strcmp(args[0], "-"))) {
        fd = 0;
        po.input = "stdin";
    } else if (!rc) {
        fd = open(args[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            error("cannot open '%s': %s", args[0], strerror(errno));
            rc = CM_EIO;
        }
        po.input = args[0];
    }
    if (!rc && isatty(fd))
        rc = cli_usage_error(&c, "refusing to read a token stream from a terminal");
    if (!rc) {
        po.fd = fd;
        po.progress = c.progress;
        po.quiet = c.quiet;
        po.cmdline = g_cmdline.buf;
        rc = pack_run(&po);
    }
    if (fd > 0) close(fd);
    cli_free(&c);
    return rc;
}

// ----------------------------------------------------------------------------
// verify, stats, cat

static const CliOpt no_opts[] = { { 0 } };

static const CliSpec verify_spec = {
    "cm-shards",
    "verify",
    "[options] DIR",
    "Recompute every shard checksum and check the headers, the sizes and the document ranges\n"
    "against the index; print 'DIR: sound: ...' on stdout. Exit 0 when sound, 3 when the\n"
    "corpus cannot be read, 4 when it is damaged or unsound.",
    "Memory: SQLite's page cache (about 2 MiB) and one shard at a time, mapped read-only and\n"
    "read once from start to end (page cache, not private memory).",
    no_opts,
    NULL
};

static int no_option(Cli *c, int id, void *ctx)
{
    (void)c, (void)id, (void)ctx;
    return CM_EINTERNAL;
}

/* The one corpus directory operand of verify, stats, cat and split; NULL after the message. */
static const char *one_dir(Cli *c, int argc, char **argv)
{
    int nargs = argc - c->optind;
    if (nargs == 1) return argv[c->optind];
    cli_usage_error(c, nargs ? "one corpus directory expected" : "missing the corpus directory");
    return NULL;
}

static int run_verify(int argc, char **argv)
{
    Cli c;
    int rc = parse(&c, &verify_spec, argc, argv, no_option, NULL);
    if (rc) return parsed_status(rc);
    const char *dir = one_dir(&c, argc, argv);
    rc = dir ? verify_run(dir, c.progress) : CM_EUSAGE;
    cli_free(&c);
    return rc;
}

static const CliOpt stats_opts[] = {
    { "json", 0, NULL, NULL, "one JSON object instead of the tables", OPT_JSON }, { 0 }
};

static const CliSpec stats_spec = {
    "cm-shards",
    "stats",
    "[--json] DIR",
    "Print tokens, documents, repositories and bytes per split and per shard, from the index,\n"
    "and for instruction examples (n_prompt > 0) their prompt and response tokens per split.\n"
    "The shard files are checked first as the reader checks them (size, header against the\n"
    "index): a damaged corpus exits 4, one that cannot be read 3.",
    "Memory: SQLite's page cache (about 2 MiB); each shard is mapped and only its header page\n"
    "read.",
    stats_opts,
    NULL
};

static int stats_option(Cli *c, int id, void *ctx)
{
    (void)c;
    if (id != OPT_JSON) return CM_EINTERNAL;
    *(int *)ctx = 1;
    return CM_OK;
}

static int run_stats(int argc, char **argv)
{
    Cli c;
    int json = 0;
    int rc = parse(&c, &stats_spec, argc, argv, stats_option, &json);
    if (rc) return parsed_status(rc);
    const char *dir = one_dir(&c, argc, argv);
    rc = dir ? stats_run(dir, json) : CM_EUSAGE;
    cli_free(&c);
    return rc;
}

typedef struct {
    const char *where; /* --where */
    int64_t limit;     /* --limit, -1: none */
    int ids;           /* --ids */
} CatArgs;

static const CliOpt cat_opts[] = { { "where", 0, "SQL", NULL,
                                     "an SQL condition on the documents table, e.g.\n"
                                     "\"split='valid' AND imports LIKE '%pandas%'\"",
                                     OPT_WHERE },
                                   { "limit", 0, "N", NULL, "at most N documents", OPT_LIMIT },
                                   { "ids", 0, NULL, NULL,
                                     "print the token ids instead of decoding them", OPT_IDS },
                                   { 0 } };

static const CliSpec cat_spec = {
    "cm-shards",
    "cat",
    "[--where SQL] [--limit N] [--ids] DIR",
    "Print documents back as JSONL (repo_name, path, size, license, content, imports and the\n"
    "other meta fields), decoded with the tokenizer stored in the index, in document order.",
    "Memory: the stored tokenizer, the ids and text of the largest selected document, and\n"
    "SQLite's page cache (about 2 MiB); the shards are mapped read-only.\n"
    "Index views: tokens_per_repo, tokens_per_module, tokens_per_split, largest_documents,\n"
    "examples (instruction examples: n_prompt, n_response),\n"
    "document_location (sqlite3 DIR/index.sqlite 'SELECT * FROM tokens_per_split').",
    cat_opts,
    NULL
};

static int cat_option(Cli *c, int id, void *ctx)
{
    CatArgs *a = ctx;
    long v;
    switch (id) {
    case OPT_WHERE: a->where = c->arg; return CM_OK;
    case OPT_LIMIT:
        if (cli_long(c, 0, LONG_MAX, &v)) return CM_EUSAGE;
        a->limit = v;
        return CM_OK;
    case OPT_IDS: a->ids = 1; return CM_OK;
    }
    return CM_EINTERNAL;
}

static int run_cat(int argc, char **argv)
{
    Cli c;
    CatArgs a = { NULL, -1, 0 };
    int rc = parse(&c, &cat_spec, argc, argv, cat_option, &a);
    if (rc) return parsed_status(rc);
    const char *dir = one_dir(&c, argc, argv);
    rc = dir ? cat_run(dir, a.where, a.limit, a.ids) : CM_EUSAGE;
    cli_free(&c);
    return rc;
}

// ----------------------------------------------------------------------------
// merge, split

typedef struct {
    const char *dir; /* -o */
    int force;       /* --force */
} MergeArgs;

static const CliOpt merge_opts[] = {
    { "output", 'o', "DIR", NULL, "the corpus directory to create (required)", OPT_OUTPUT },
    { "force", 0, NULL, NULL, "replace a corpus already in DIR", OPT_FORCE },
    { 0 }
};

static const CliSpec merge_spec = {
    "cm-shards",
    "merge",
    "-o DIR [--force] SRC...",
    "Combine corpora packed in parallel into DIR without copying token data: the shard files\n"
    "are hard-linked (else symbolically linked), the index rows renumbered. The tokenizers and\n"
    "the split settings of the sources must match; their shards are checked as the reader\n"
    "checks them.",
    "Memory: a 64 MiB SQLite page cache for the new index and the path index sort (spills to\n"
    "SQLITE_TMPDIR or TMPDIR); no token data is read or copied.",
    merge_opts,
    NULL
};

static int merge_option(Cli *c, int id, void *ctx)
{
    MergeArgs *a = ctx;
    switch (id) {
    case OPT_OUTPUT: a->dir = c->arg; return CM_OK;
    case OPT_FORCE: a->force = 1; return CM_OK;
    }
    return CM_EINTERNAL;
}

static int run_merge(int argc, char **argv)
{
    Cli c;
    MergeArgs a = { NULL, 0 };
    int rc = parse(&c, &merge_spec, argc, argv, merge_option, &a);
    if (rc) return parsed_status(rc);
    int nargs = argc - c.optind;
    if (!a.dir)
        rc = cli_usage_error(&c, "missing -o DIR");
    else if (nargs < 1)
        rc = cli_usage_error(&c, "no source corpus given");
    else
        rc = merge_run(a.dir, (const char *const *)argv + c.optind, nargs, a.force, g_cmdline.buf);
    cli_free(&c);
    return rc;
}

typedef struct {
    double fraction;   /* --valid-fraction */
    int have_fraction; /* given */
    uint64_t seed;     /* --split-seed */
    int have_seed;     /* given */
    int by;            /* --split-by */
    const char *from;  /* --split-from */
} SplitArgs;

static const CliOpt split_opts[] = {
    { "valid-fraction", 0, "F", NULL, "share of the tokens in the 'valid' split (required)",
      OPT_VALID },
    { "split-seed", 0, "S", "the corpus's", "seed of the hash order", OPT_SEED },
    { "split-by", 0, "UNIT", "repo", "repo, or path (one repository: path, with a warning)",
      OPT_SPLIT_BY },
    { "split-from", 0, "DIR", NULL,
      "units that corpus DIR has keep DIR's split (recorded in\n"
      "the index: later splits, resumes and merges keep them)",
      OPT_SPLIT_FROM },
    { 0 }
};

static const CliSpec split_spec = {
    "cm-shards",
    "split",
    "--valid-fraction F [--split-seed S] [--split-by UNIT] [--split-from DIR] DIR",
    "Recompute the train/valid assignment of every document in the index (one transaction).",
    "Memory: SQLite's page cache (about 2 MiB); the changed pages go through the rollback\n"
    "journal on disk.",
    split_opts,
    NULL
};

static int split_option(Cli *c, int id, void *ctx)
{
    SplitArgs *a = ctx;
    switch (id) {
    case OPT_VALID: a->have_fraction = 1; return cli_double(c, 0, 1, &a->fraction);
    case OPT_SEED: a->have_seed = 1; return parse_seed(c, &a->seed);
    case OPT_SPLIT_BY: return cli_choice(c, split_units, &a->by);
    case OPT_SPLIT_FROM: a->from = c->arg; return CM_OK;
    }
    return CM_EINTERNAL;
}

static int run_split(int argc, char **argv)
{
    Cli c;
    SplitArgs a = { 0, 0, SPLIT_SEED_DEFAULT, 0, SPLIT_BY_REPO, NULL };
    int rc = parse(&c, &split_spec, argc, argv, split_option, &a);
    if (rc) return parsed_status(rc);
    const char *dir = one_dir(&c, argc, argv);
    if (!dir)
        rc = CM_EUSAGE;
    else if (!a.have_fraction)
        rc = cli_usage_error(&c, "missing --valid-fraction F");
    else
        rc = split_run(dir, a.fraction, a.seed, a.have_seed, a.by, a.from, c.quiet);
    cli_free(&c);
    return rc;
}

// ----------------------------------------------------------------------------

static const CliVerb verbs[] = {
    { "pack", "read a token stream, write shard files and index.sqlite", run_pack },
    { "verify", "recompute checksums, check headers, sizes and document ranges", run_verify },
    { "stats", "tokens, documents and bytes per split and per shard", run_stats },
    { "cat", "print documents back as JSONL (or their token ids)", run_cat },
    { "merge", "combine corpora without copying token data", run_merge },
    { "split", "recompute the train/valid assignment", run_split },
    { 0 }
};

static const char about[] =
    "Pack the token stream of 'cm-tokenize encode' into memory-mappable shard files with an\n"
    "SQLite index holding one row per document (repo_name, path, license, imports, split, ...),\n"
    "and check, inspect, query and combine such corpora. Formats: docs/FORMATS.md.\n"
    "\n"
    "Exit status: 0 ok, 1 bad input (what came before is kept), 2 usage, 3 I/O error (a corpus\n"
    "that cannot be read, disk full...), 4 damaged or unsound corpus, 5 internal error,\n"
    "130 interrupted.\n"
    "Index views: tokens_per_repo, tokens_per_module, tokens_per_split, largest_documents,\n"
    "examples (instruction examples: n_prompt, n_response),\n"
    "document_location (sqlite3 DIR/index.sqlite 'SELECT * FROM tokens_per_split').";

int main(int argc, char **argv)
{
    cm_init("cm-shards");
    atomic_signals_init(); /* stop signals: cm_stopping() in pack, verify, cat, merge, split */
    for (int i = 0; i < argc; i++) {
        if (i) buf_addc(&g_cmdline, ' ');
        buf_adds(&g_cmdline, argv[i]);
    }
    int rc = cli_dispatch("cm-shards", about, verbs, NULL, argc, argv);
    buf_free(&g_cmdline);
    if (fflush(stdout) || ferror(stdout)) {
        if (errno == EPIPE) return CM_EPIPE;
        error("cannot write to 'stdout': %s", strerror(errno));
        return CM_EIO;
    }
    return rc;
}
