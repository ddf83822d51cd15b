// SPDX-License-Identifier: MIT
/*
** cm-shards: lay out a token stream for training -- memory-mappable shard files plus an SQLite
** index with one row per document -- and inspect, check and combine such corpora.
**
**   cm-tokenize encode ... | cm-shards pack -o corpus/
**   cm-shards verify corpus/        cm-shards stats corpus/       cm-shards cat corpus/
**   cm-shards merge -o all/ part1/ part2/        cm-shards split --valid-fraction 0.1 corpus/
**
** The verbs live in shards/pack.c and shards/tools.c (library functions, see shards.h); this
** file parses the command line.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard.h"   // defines: CM_SHARDS_VERSION, SPLIT_SEED_DEFAULT
#include "shards.h"  // defines: pack_run, verify_run, stats_run, cat_run, merge_run, split_run
#include "util.h"    // defines: cm_init, error, parse_size, exit codes

static const char usage_short[] =
    "usage: cm-shards pack -o DIR [--shard-tokens N] [--valid-fraction F] [--resume|--force] [INPUT|-]\n"
    "       cm-shards verify DIR\n"
    "       cm-shards stats [--json] DIR\n"
    "       cm-shards cat [--where SQL] [--limit N] [--ids] DIR\n"
    "       cm-shards merge -o DIR [--force] SRC...\n"
    "       cm-shards split --valid-fraction F [--split-seed S] DIR\n"
    "Try 'cm-shards --help' for more information.\n";

static const char usage_long[] =
    "usage: cm-shards VERB [OPTIONS] ...\n"
    "\n"
    "Pack the token stream of 'cm-tokenize encode' into memory-mappable shard files with an\n"
    "SQLite index holding one row per document (repo_name, path, license, imports, split, ...),\n"
    "and check, inspect, query and combine such corpora. Formats: docs/FORMATS.md.\n"
    "\n"
    "  pack -o DIR [INPUT|-]     read a token stream (default stdin), write DIR/shard-NNNNN.bin\n"
    "                            and DIR/index.sqlite\n"
    "      --shard-tokens N      tokens per shard (default 64M; suffixes k, M, G)\n"
    "      --valid-fraction F    share of repositories in the 'valid' split (default 0.05); the\n"
    "                            split hashes repo_name, so no repository is in both splits\n"
    "      --split-seed S        seed of that hash (default 0x636f64656d696c6c)\n"
    "      --resume              finish an interrupted pack of the same input: documents already\n"
    "                            indexed are skipped, incomplete shards rewritten\n"
    "      --force               replace a corpus already in DIR\n"
    "      --progress, --no-progress   progress on stderr (default: when it is a terminal)\n"
    "      Memory: the largest document, at most 2 x 64 MiB of document metadata (the shard\n"
    "      being written and the one being indexed), 4 MiB of write chunks and a 64 MiB SQLite\n"
    "      cache, whatever the input size (the path index sort spills to SQLITE_TMPDIR or TMPDIR).\n"
    "      Shards are written with O_DIRECT when the file system allows it\n"
    "      (CM_SHARDS_BUFFERED=1: through the page cache).\n"
    "  verify DIR                recompute every shard checksum, check headers, sizes and document\n"
    "                            ranges against the index; exit 0 when sound, 4 when not\n"
    "  stats [--json] DIR        tokens, documents and bytes per split and per shard\n"
    "  cat DIR                   print documents back as JSONL, decoded with the stored tokenizer\n"
    "      --where SQL           an SQL condition on the documents table, e.g.\n"
    "                            \"split='valid' AND imports LIKE '%pandas%'\"\n"
    "      --limit N             at most N documents\n"
    "      --ids                 print the token ids instead of decoding them\n"
    "  merge -o DIR SRC...       combine corpora packed in parallel into DIR without copying\n"
    "                            token data (hard links, else symbolic links); tokenizers must match\n"
    "  split --valid-fraction F [--split-seed S] DIR\n"
    "                            recompute the train/valid assignment in the index\n"
    "\n"
    "  -h, --help                this help          --version   the version\n"
    "\n"
    "Exit status: 0 ok, 1 bad input (what came before is kept), 2 usage, 3 I/O error (disk\n"
    "full...), 4 damaged or unsound corpus, 5 internal error, 130 interrupted.\n"
    "Index views: tokens_per_repo, tokens_per_module, tokens_per_split, largest_documents,\n"
    "document_location (sqlite3 DIR/index.sqlite 'SELECT * FROM tokens_per_split').\n";

/*
** Print the short usage (with a reason) on stderr and return CM_EUSAGE.
*/
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vreport("", fmt, ap);
        va_end(ap);
    }
    fputs(usage_short, stderr);
    return CM_EUSAGE;
}

/*
** The command line as one string (stored in the index), in buf.
*/
static void join_args(int argc, char **argv, Buf *b)
{
    for (int i = 0; i < argc; i++) {
        if (i) buf_addc(b, ' ');
        buf_adds(b, argv[i]);
    }
}

enum { OPT_SHARD_TOKENS = 256, OPT_VALID, OPT_SEED, OPT_RESUME, OPT_FORCE, OPT_PROGRESS,
       OPT_NO_PROGRESS, OPT_JSON, OPT_WHERE, OPT_LIMIT, OPT_IDS, OPT_VERSION };

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"shard-tokens", required_argument, NULL, OPT_SHARD_TOKENS},
    {"valid-fraction", required_argument, NULL, OPT_VALID},
    {"split-seed", required_argument, NULL, OPT_SEED},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"force", no_argument, NULL, OPT_FORCE},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"json", no_argument, NULL, OPT_JSON},
    {"where", required_argument, NULL, OPT_WHERE},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"ids", no_argument, NULL, OPT_IDS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

int main(int argc, char **argv)
{
    cm_init("cm-shards");
    int rc = CM_OK, fd = -1;
    Buf cmdline = {0};
    if (argc < 2) return usage_error(NULL);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_long, stdout);
        return CM_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cm-shards (codemill) %s\n", CM_SHARDS_VERSION);
        return CM_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "pack") && strcmp(verb, "verify") && strcmp(verb, "stats") &&
        strcmp(verb, "cat") && strcmp(verb, "merge") && strcmp(verb, "split"))
        return usage_error("unknown verb '%s'", verb);

    PackOpts po = {0};
    po.shard_tokens = PACK_SHARD_TOKENS_DEFAULT;
    po.valid_fraction = PACK_VALID_FRACTION_DEFAULT;
    po.split_seed = SPLIT_SEED_DEFAULT;
    po.progress = -1;
    const char *out_dir = NULL, *where = NULL;
    int json = 0, ids = 0, have_fraction = 0, have_seed = 0;
    int64_t limit = -1;
    join_args(argc, argv, &cmdline);
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'o': out_dir = optarg; break;
        case OPT_SHARD_TOKENS:
            if (parse_size(optarg, &po.shard_tokens) || po.shard_tokens == 0 ||
                po.shard_tokens > ((uint64_t)1 << 40)) {
                rc = usage_error("--shard-tokens: '%s' is not a token count (e.g. 64M)", optarg);
                goto end;
            }
            break;
        case OPT_VALID:
            if (parse_double(optarg, &po.valid_fraction) || !(po.valid_fraction >= 0) ||
                po.valid_fraction > 1) {
                rc = usage_error("--valid-fraction: '%s' is not a number in [0, 1]", optarg);
                goto end;
            }
            have_fraction = 1;
            break;
        case OPT_SEED: {
            char *e = NULL;
            errno = 0;
            po.split_seed = strtoull(optarg, &e, 0);
            if (errno || !*optarg || *e) {
                rc = usage_error("--split-seed: '%s' is not an integer", optarg);
                goto end;
            }
            have_seed = 1;
            break;
        }
        case OPT_RESUME: po.resume = 1; break;
        case OPT_FORCE: po.force = 1; break;
        case OPT_PROGRESS: po.progress = 1; break;
        case OPT_NO_PROGRESS: po.progress = 0; break;
        case OPT_JSON: json = 1; break;
        case OPT_WHERE: where = optarg; break;
        case OPT_LIMIT:
            if (parse_long(optarg, 0, LONG_MAX, &v)) {
                rc = usage_error("--limit: '%s' is not a count", optarg);
                goto end;
            }
            limit = v;
            break;
        case OPT_IDS: ids = 1; break;
        case 'h': fputs(usage_long, stdout); goto end;
        case OPT_VERSION: printf("cm-shards (codemill) %s\n", CM_SHARDS_VERSION); goto end;
        default: rc = usage_error(NULL); goto end;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;

    if (!strcmp(verb, "pack")) {
        if (!out_dir) { rc = usage_error("pack: missing -o DIR"); goto end; }
        if (nargs > 1) { rc = usage_error("pack: one input at most (got '%s' more)", args[1]); goto end; }
        if (po.resume && po.force) {
            rc = usage_error("pack: --resume and --force exclude each other");
            goto end;
        }
        if (nargs == 0 || !strcmp(args[0], "-")) {
            fd = 0;
            po.input = "stdin";
        } else {
            fd = open(args[0], O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                error("cannot open '%s': %s", args[0], strerror(errno));
                rc = CM_EIO;
                goto end;
            }
            po.input = args[0];
        }
        if (isatty(fd)) {
            rc = usage_error("pack: refusing to read a token stream from a terminal");
            goto end;
        }
        po.fd = fd;
        po.dir = out_dir;
        po.cmdline = cmdline.buf;
        rc = pack_run(&po);
    } else if (!strcmp(verb, "merge")) {
        if (!out_dir) { rc = usage_error("merge: missing -o DIR"); goto end; }
        if (nargs < 1) { rc = usage_error("merge: no source corpus given"); goto end; }
        rc = merge_run(out_dir, (const char *const *)args, nargs, po.force, cmdline.buf);
    } else {
        if (nargs != 1) {
            rc = usage_error(nargs ? "%s: one corpus directory expected" :
                                     "%s: missing the corpus directory", verb);
            goto end;
        }
        if (!strcmp(verb, "verify")) rc = verify_run(args[0], po.progress);
        else if (!strcmp(verb, "stats")) rc = stats_run(args[0], json);
        else if (!strcmp(verb, "cat")) rc = cat_run(args[0], where, limit, ids);
        else {
            if (!have_fraction) { rc = usage_error("split: missing --valid-fraction F"); goto end; }
            rc = split_run(args[0], po.valid_fraction, po.split_seed, have_seed);
        }
    }
end:
    if (fd > 0) close(fd);
    buf_free(&cmdline);
    if (fflush(stdout) || ferror(stdout)) {
        if (errno == EPIPE) return CM_EPIPE;
        error("cannot write to 'stdout': %s", strerror(errno));
        return CM_EIO;
    }
    return rc;
}
