// SPDX-License-Identifier: MIT
/*
** cm-filter: keep the Python data-science files of a JSONL stream, drop low-quality files and
** duplicates.
**
**   cm-ingest repo.tar.gz | cm-filter --stats stats.json > kept.jsonl
**
** One decision per record (filter/rules.h gives the rules and their order; the first that
** fails names the rejection); duplicates are decided in input order, first seen wins.
** Kept records are written with an added "imports" field listing the wanted modules found.
** Threads (filter/pool.h, filter/batch.h): the main thread reads batches of lines; workers
** parse them and apply every rule that does not depend on other records; the main thread takes
** the batches back in input order, decides the duplicates and writes. The output is the same
** for every --threads.
** --pairs (filter/pairs.h): a kept file is written as the instruction records of its documented
** functions, methods and classes instead; workers make them, the main thread writes those of
** the files it keeps in input order, an exact copy of an earlier record's output not again.
*/
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h" // defines: atomic_signals_init, cm_stopping, atomic_write_file
#include "cli.h"    // defines: Cli, CliSpec, CliOpt, cli_*
#include "io.h"     // defines: Out, Progress
#include "record.h" // defines: Record, RecordInput, record_write
#include "json.h"
#include "util.h"         // defines: cm_init, error, warn, exit codes, Buf
#include "filter/batch.h" // defines: FilterBatch, FilterItem, reject_field
#include "filter/bench.h" // defines: bench_run, bench_stages
#include "filter/dedup.h" // defines: Dedup
#include "filter/pairs.h" // defines: PairsTally, pairs_take
#include "filter/pool.h"  // defines: FilterPool, pool_*
#include "filter/rules.h" // defines: FilterRules, Judge, RULE_*

typedef struct {
    uint64_t records; /* records */
    uint64_t bytes;   /* bytes of content */
} Count;

/* One run of cm-filter: its options, its state and its counts. */
typedef struct {
    /* options */
    FilterRules rules;        /* what to keep */
    const char *imports_list; /* --imports, as given */
    uint64_t dedup_memory;    /* cap of the dedup tables in bytes */
    const char *output_path;  /* -o FILE or "-" */
    const char *rejects_path; /* --rejects FILE or NULL */
    const char *stats_path;   /* --stats FILE or NULL */
    int skip_bad;             /* --on-error skip */
    uint64_t max_line;        /* longest input line */
    int quiet;                /* -q */
    int progress_mode;        /* -1 auto, 0 off, 1 on */
    const char *bench_stage;  /* --bench-stage */
    long threads;             /* --threads */
    /* state */
    Judge judge;        /* checks --imports; --bench-stage's rules */
    FilterPool *pool;   /* worker threads and batches in flight */
    Record rec;         /* a line too long for a worker to render, parsed again */
    uint64_t done_line; /* the last line of the input taken back */
    Dedup dedup;        /* exact and near copies of kept records */
    PairsTally pairs;   /* --pairs: outputs written, counts */
    int dedup_warned;   /* the --dedup-memory warning was printed */
    Out out;            /* kept records */
    Out rejects;        /* rejected records */
    int out_fd;         /* -1 until opened */
    int rejects_fd;     /* -1 unless --rejects */
    Progress progress;  /* terminal progress */
    /* counts */
    Count count[RULE_COUNT]; /* per decision */
    Count input;             /* all well-formed records */
    uint64_t malformed;      /* bad lines */
} FilterRun;

/* --- command line ----------------------------------------------------------------------- */

enum {
    OPT_IMPORTS = 1,
    OPT_KEYWORDS,
    OPT_NO_SELECT,
    OPT_ANY_FILE,
    OPT_MAX_LINE_LENGTH,
    OPT_MAX_MEAN_LINE_LENGTH,
    OPT_MIN_ALNUM,
    OPT_MIN_EQUALS,
    OPT_NO_AUTOGEN,
    OPT_NO_CONFIG_TEST,
    OPT_NO_KEYWORDS_RULE,
    OPT_DROP_PROB,
    OPT_SEED,
    OPT_NO_QUALITY,
    OPT_NO_DEDUP,
    OPT_NO_NEAR_DEDUP,
    OPT_NEAR_THRESHOLD,
    OPT_DEDUP_MEMORY,
    OPT_OUTPUT,
    OPT_REJECTS,
    OPT_STATS,
    OPT_ON_ERROR,
    OPT_MAX_LINE,
    OPT_THREADS,
    OPT_BENCH_STAGE,
    OPT_PAIRS,
    OPT_PAIRS_MIN_WORDS,
    OPT_PAIRS_MAX_BYTES,
    OPT_PAIRS_PRIVATE
};

static const CliOpt filter_opts[] = {
    { "imports", 0, "LIST", "numpy,pandas,sklearn", "modules to look for", OPT_IMPORTS },
    { "keywords", 0, "LIST", NULL,
      "keep instead when any word occurs anywhere in content\n"
      "(the Hugging Face course rule, e.g. pandas,sklearn,matplotlib,seaborn)",
      OPT_KEYWORDS },
    { "no-select", 0, NULL, NULL, "keep every Python file (no imports/keywords rule)",
      OPT_NO_SELECT },
    { "any-file", 0, NULL, NULL, "do not require a Python path", OPT_ANY_FILE },
    { "max-line-length", 0, "N", "1000", "quality: longest line in characters (0: no limit)",
      OPT_MAX_LINE_LENGTH },
    { "max-mean-line-length", 0, "N", "100", "quality: mean line length (0: no limit)",
      OPT_MAX_MEAN_LINE_LENGTH },
    { "min-alnum", 0, "F", "0.25", "quality: alphanumeric fraction (0: no limit)", OPT_MIN_ALNUM },
    { "min-equals", 0, "N", "5", "quality: fewest '=' characters (0: no limit)", OPT_MIN_EQUALS },
    { "no-autogen", 0, NULL, NULL, "keep files marked auto-generated in their first 5 lines",
      OPT_NO_AUTOGEN },
    { "no-config-test", 0, NULL, NULL, "keep configuration and test files", OPT_NO_CONFIG_TEST },
    { "no-keywords-rule", 0, NULL, NULL, "keep files with no def/class/for/while",
      OPT_NO_KEYWORDS_RULE },
    { "drop-prob", 0, "P", "0.7", "config-test and no-keywords drop probability", OPT_DROP_PROB },
    { "seed", 0, "N", "0", "seed of the content hash deciding that drop", OPT_SEED },
    { "no-quality", 0, NULL, NULL, "none of the quality rules (codeparrot's)", OPT_NO_QUALITY },
    { "no-dedup", 0, NULL, NULL, "neither exact nor near dedup", OPT_NO_DEDUP },
    { "no-near-dedup", 0, NULL, NULL, "exact dedup only", OPT_NO_NEAR_DEDUP },
    { "near-threshold", 0, "F", "0.85", "MinHash Jaccard estimate for near copies",
      OPT_NEAR_THRESHOLD },
    { "dedup-memory", 0, "SIZE", "2G", "cap of the dedup tables, ~1.5 KB per kept file",
      OPT_DEDUP_MEMORY },
    { "pairs", 0, NULL, NULL,
      "write each kept file as instruction records (instruction,\n"
      "input, output) of its documented functions, methods and\n"
      "classes; an output seen before is not written again",
      OPT_PAIRS },
    { "pairs-min-words", 0, "N", "3", "pairs: fewest words in the docstring's summary",
      OPT_PAIRS_MIN_WORDS },
    { "pairs-max-bytes", 0, "SIZE", "8K", "pairs: longest output (the definition's source)",
      OPT_PAIRS_MAX_BYTES },
    { "pairs-private", 0, NULL, NULL, "pairs: also names starting with '_' (and dunders)",
      OPT_PAIRS_PRIVATE },
    { "output", 'o', "FILE", "stdout", "kept records to FILE", OPT_OUTPUT },
    { "rejects", 0, "FILE", NULL, "rejected records, with \"reject\":\"RULE\"", OPT_REJECTS },
    { "stats", 0, "FILE", NULL, "counts and content bytes per rule, as JSON", OPT_STATS },
    { "on-error", 0, "fail|skip", "fail", "on a malformed line: stop or skip it; exit 1 either way",
      OPT_ON_ERROR },
    { "max-line", 0, "SIZE", "256M", "longest input line", OPT_MAX_LINE },
    { "threads", 0, "N", "the CPUs, at most 8",
      "threads that parse and judge records; the output\n"
      "is the same for every N",
      OPT_THREADS },
    { "bench-stage", 0, "STAGE", NULL,
      "time one rule in memory over the input's Python files\n"
      "(regex, heuristics, exact, near or all; for bench/filter.sh)",
      OPT_BENCH_STAGE },
    { 0 }
};

static const CliSpec filter_spec = {
    "cm-filter",
    NULL,
    "[options] [INPUT.jsonl ...] > kept.jsonl",
    "Keep the Python files of a JSONL stream (cm-ingest, codeparrot, The Stack) that import\n"
    "data-science modules, drop low-quality files (codeparrot's rules) and duplicates (first\n"
    "seen wins). INPUT '-' or none reads stdin. Kept records gain \"imports\":[...] (the\n"
    "modules found).\n\n"
    "--pairs: each kept file gives instead one record per documented function, method or\n"
    "class: {repo_name, path, [license,] name, kind, line, instruction, input:\"\", output,\n"
    "[imports]}, output being its source dedented, instruction asking for its signature and\n"
    "docstring summary. Skipped, and counted: definitions inside functions, private names,\n"
    "no docstring, a summary under --pairs-min-words, stubs, outputs over --pairs-max-bytes.",
    "Memory: with N threads, about (5N + 2) x max(1 MiB, the longest input line) (lines are at\n"
    "most --max-line): 2N batches in flight (one with N = 1), each ~256 KiB of lines or one\n"
    "longer line with their output lines; ~3 x the longest line per thread to parse and judge;\n"
    "2 MiB of output buffers. Plus the dedup tables: ~1.5 KB per kept file, at most\n"
    "--dedup-memory. --pairs: the records of the batches in flight (at most --pairs-max-bytes\n"
    "of output per definition), and 16-32 bytes per record written.\n"
    "Exit: 0 ok, 1 malformed input (good records kept), 2 usage, 3 I/O, 130 interrupted,\n"
    "141 the reader of stdout went away.",
    filter_opts,
    NULL
};

/* --seed: any unsigned 64-bit number (decimal, 0x hex or 0 octal). */
static int parse_seed(Cli *c, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(c->arg, &end, 0);
    if (errno || *end || end == c->arg || c->arg[0] == '-')
        return cli_bad_value(c, "an unsigned 64-bit number");
    *out = v;
    return CM_OK;
}

/* Apply option `id` (its argument in c->arg) to run; CM_OK or CM_EUSAGE (message printed). */
static int option_set(FilterRun *run, Cli *c, int id)
{
    FilterRules *r = &run->rules;
    QualityOpts *q = &r->quality_opts;
    static const char *const on_error[] = { "fail", "skip", NULL };
    int k;
    double d;
    switch (id) {
    case OPT_IMPORTS: run->imports_list = c->arg; return CM_OK;
    case OPT_KEYWORDS:
        strv_free(r->keywords);
        r->keywords = strv_split(c->arg, ',', &r->keywords_count);
        return r->keywords_count ? CM_OK : cli_usage_error(c, "--keywords needs at least one word");
    case OPT_NO_SELECT: r->select = 0; return CM_OK;
    case OPT_ANY_FILE: r->any_file = 1; return CM_OK;
    case OPT_MAX_LINE_LENGTH: return cli_long(c, 0, 1L << 40, &q->max_line);
    case OPT_MAX_MEAN_LINE_LENGTH: return cli_double(c, 0, INFINITY, &q->max_mean_line);
    case OPT_MIN_ALNUM: return cli_double(c, 0, 1, &q->min_alnum);
    case OPT_MIN_EQUALS: return cli_long(c, 0, 1L << 40, &q->min_equals);
    case OPT_NO_AUTOGEN: q->autogen = 0; return CM_OK;
    case OPT_NO_CONFIG_TEST: q->config_test = 0; return CM_OK;
    case OPT_NO_KEYWORDS_RULE: q->no_keywords = 0; return CM_OK;
    case OPT_DROP_PROB: return cli_double(c, 0, 1, &q->drop_prob);
    case OPT_SEED: return parse_seed(c, &q->seed);
    case OPT_NO_QUALITY: r->quality = 0; return CM_OK;
    case OPT_NO_DEDUP: r->exact = r->near = 0; return CM_OK;
    case OPT_NO_NEAR_DEDUP: r->near = 0; return CM_OK;
    case OPT_NEAR_THRESHOLD:
        if (cli_double(c, 0, 1, &d) != CM_OK) return CM_EUSAGE;
        if (d <= 0) return cli_bad_value(c, "a number in (0,1]");
        r->near_threshold = d;
        return CM_OK;
    case OPT_DEDUP_MEMORY: return cli_size(c, 0, UINT64_MAX, &run->dedup_memory);
    case OPT_OUTPUT: run->output_path = c->arg; return CM_OK;
    case OPT_REJECTS: run->rejects_path = c->arg; return CM_OK;
    case OPT_STATS: run->stats_path = c->arg; return CM_OK;
    case OPT_ON_ERROR:
        if (cli_choice(c, on_error, &k) != CM_OK) return CM_EUSAGE;
        run->skip_bad = k == 1;
        return CM_OK;
    case OPT_MAX_LINE: return cli_size(c, 16, SIZE_MAX, &run->max_line);
    case OPT_THREADS: return cli_long(c, 1, POOL_MAX_THREADS, &run->threads);
    case OPT_PAIRS: r->pairs = 1; return CM_OK;
    case OPT_PAIRS_MIN_WORDS: return cli_long(c, 0, 1000, &r->pairs_opts.min_words);
    case OPT_PAIRS_MAX_BYTES: return cli_size(c, 1, 1ull << 30, &r->pairs_opts.max_bytes);
    case OPT_PAIRS_PRIVATE: r->pairs_opts.private_names = 1; return CM_OK;
    case OPT_BENCH_STAGE:
        if (cli_choice(c, bench_stages, &k) != CM_OK) return CM_EUSAGE;
        run->bench_stage = bench_stages[k];
        return CM_OK;
    }
    return CM_OK;
}

/* The defaults: codeparrot's rules, both dedups, numpy/pandas/sklearn. */
static void options_default(FilterRun *run)
{
    memset(run, 0, sizeof *run);
    run->rules.select = 1;
    run->rules.quality = 1;
    quality_defaults(&run->rules.quality_opts);
    run->rules.exact = run->rules.near = 1;
    run->rules.near_threshold = 0.85;
    pairs_opts_default(&run->rules.pairs_opts);
    pairs_tally_init(&run->pairs);
    run->imports_list = "numpy,pandas,sklearn";
    run->dedup_memory = 2ull << 30;
    run->output_path = "-";
    run->max_line = 256ull << 20;
    run->progress_mode = -1;
    run->out_fd = run->rejects_fd = -1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    run->threads = cpus < 1 ? 1 : cpus > 8 ? 8 : cpus; /* as cm-tokenize encode */
    record_init(&run->rec);
}

/*
** Parse the command line into run (operands from argv[*first]). Returns -1 to go on, or an
** exit status (--help, --version, a usage error).
*/
static int options_parse(FilterRun *run, int argc, char **argv, int *first)
{
    Cli c;
    int k, rc = CM_OK;
    cli_init(&c, &filter_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) rc = option_set(run, &c, k);
    if (rc == CM_OK && k == CLI_STOP) rc = c.status;
    if (rc == CM_OK && k == CLI_DONE) {
        *first = c.optind;
        run->quiet = c.quiet;
        run->progress_mode = c.progress;
        if (run->quiet && run->progress_mode < 0)
            run->progress_mode = 0; /* -q: none unless asked */
        run->rules.imports = strv_split(run->imports_list, ',', &run->rules.imports_count);
        if (run->rules.imports_count < 1 || run->rules.imports_count > IMPORTS_MAX)
            rc = cli_usage_error(&c, "--imports needs 1 to %d module names, not '%s'", IMPORTS_MAX,
                                 run->imports_list);
        else if (judge_init(&run->judge, &run->rules) != 0)
            rc = cli_usage_error(&c, NULL);
        else
            rc = -1;
    }
    cli_free(&c);
    return rc;
}

/* --- one record ------------------------------------------------------------------------- */

/* Warn once that the dedup tables stopped growing at --dedup-memory. */
static void dedup_cap_warn(FilterRun *run)
{
    if (!run->dedup.capped || run->dedup_warned) return;
    run->dedup_warned = 1;
    warn("dedup tables reached --dedup-memory (%llu bytes) after %zu kept files: later files "
         "are compared with those only",
         (unsigned long long)run->dedup_memory, dedup_docs(&run->dedup));
}

/* A line no worker rendered (longer than RENDER_MAX): parse it again and write it as `rule`. */
static void write_unrendered(FilterRun *run, const FilterBatch *b, const FilterItem *it, int rule)
{
    const char *imports = b->notes.buf + it->imports_off;
    if (record_parse(&run->rec, b->lines.buf + it->line_off, it->line_len) != 0)
        return; /* parsed before */
    if (rule == RULE_KEPT) {
        record_write(&run->out, &run->rec, imports, it->imports_len);
    } else if (run->rejects_fd >= 0) {
        char extra[IMPORTS_FIELD_MAX + 64];
        size_t n = reject_field(&run->rules, rule, imports, it->imports_len, extra, sizeof extra);
        record_write(&run->rejects, &run->rec, extra, n);
    }
}

/* Write the record of it as `rule`: its rendered kept line or --rejects line. */
static void write_item(FilterRun *run, const FilterBatch *b, const FilterItem *it, int rule)
{
    const char *text = b->text.buf;
    if (rule == RULE_KEPT && run->rules.pairs) {
        pairs_take(&run->pairs, &run->out, text, b->pairs.v + it->pair_first, it->pair_count,
                   &it->pair_counts);
    } else if (it->line_len > RENDER_MAX) {
        write_unrendered(run, b, it, rule);
    } else if (rule == RULE_KEPT) {
        out_write(&run->out, text + it->kept_off, it->kept_len);
    } else if (run->rejects_fd >= 0) {
        if (rule == RULE_NEAR)
            out_write(&run->rejects, text + it->near_off, it->near_len);
        else
            out_write(&run->rejects, text + it->reject_off, it->reject_len);
    }
}

/* Take back one judged record: decide the duplicates, count it, write it. */
static void take_record(FilterRun *run, const FilterBatch *b, const FilterItem *it)
{
    run->input.records++;
    run->input.bytes += it->content_bytes;
    int rule = it->rule;
    if (rule == RULE_KEPT && (run->rules.exact || run->rules.near)) {
        const uint32_t *sig = it->shingles ? b->sigs + it->sig_index * MH_PERMS : NULL;
        int d = dedup_check(&run->dedup, it->fingerprint, sig, it->shingles);
        dedup_cap_warn(run);
        rule = d == DEDUP_EXACT ? RULE_EXACT : d == DEDUP_NEAR ? RULE_NEAR : RULE_KEPT;
    }
    run->count[rule].records++;
    run->count[rule].bytes += it->content_bytes;
    write_item(run, b, it, rule);
    if ((run->input.records & 255) == 0)
        progress_update(&run->progress, "%llu records, %llu kept",
                        (unsigned long long)run->input.records,
                        (unsigned long long)run->count[RULE_KEPT].records);
}

enum { TAKE_ON = 0, TAKE_STOP_FAULT, TAKE_STOP_SIGNAL };

/*
** Take back a worked batch in order: report its faults (ri_report), decide and write its
** records. Stops before a record when a stop signal came, and at a fault that ends the input.
*/
static int take_batch(FilterRun *run, RecordInput *in, const FilterBatch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const FilterItem *it = &b->items[i];
        if (cm_stopping()) return TAKE_STOP_SIGNAL;
        if (it->kind == ITEM_FAULT) {
            const char *why = it->err == RI_ERR_PARSE ? b->notes.buf + it->why_off : "";
            if (ri_report(in, it->err, it->lineno, it->err_byte, why) != 0) return TAKE_STOP_FAULT;
        } else {
            take_record(run, b, it);
        }
        run->done_line = it->lineno;
    }
    return TAKE_ON;
}

/* Is the input a regular file (reading it never waits for a writer: batches are filled up)? */
static int input_is_file(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/*
** Run one input through the pool: keep it fed with batches while taking the worked ones back
** in order (what is done first, so the output keeps up before a read that may block).
** Returns TAKE_ON at the end of the input, or why it stopped.
*/
static int input_pump(FilterRun *run, RecordInput *in)
{
    FilterPool *pool = run->pool;
    int fill_up = input_is_file(in->fd);
    int reading = 1;
    int take = TAKE_ON;
    FilterBatch *b;
    while (take == TAKE_ON) {
        while (take == TAKE_ON && (b = pool_head(pool, 0)) != NULL) {
            take = take_batch(run, in, b);
            pool_release(pool);
        }
        if (take != TAKE_ON) break;
        if (reading && (b = pool_free_batch(pool)) != NULL) {
            batch_fill(b, in, fill_up);
            reading = !b->end;
            if (b->count) pool_submit(pool);
            continue;
        }
        if (!pool_pending(pool)) break;
        take = take_batch(run, in, pool_head(pool, 1));
        pool_release(pool);
    }
    while (pool_head(pool, 1)) pool_release(pool); /* drop what a stop left in flight */
    return take;
}

/*
** Filter one input. Returns CM_OK, CM_EDATA when a malformed line was skipped, or a status
** that ends the run (*stop set): CM_EDATA (malformed with --on-error fail), CM_EIO, CM_EINTR.
*/
static int filter_input(FilterRun *run, const char *path, int *stop)
{
    RecordInput in;
    if (ri_open(&in, path, (size_t)run->max_line, run->skip_bad) != 0) {
        *stop = 1;
        return in.status;
    }
    run->done_line = 0;
    int take = input_pump(run, &in);
    int rc = in.status;
    if (take == TAKE_STOP_SIGNAL || (take == TAKE_ON && cm_stopping())) {
        error("%s: interrupted at line %llu: output stops before it", in.name,
              (unsigned long long)run->done_line + 1);
        rc = CM_EINTR;
    }
    if (take != TAKE_ON || rc == CM_EINTR) *stop = 1;
    run->malformed += in.bad;
    ri_close(&in);
    return rc;
}

/* --- outputs ---------------------------------------------------------------------------- */

/* Create path for writing; its fd, or -1 after the message. */
static int output_create(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) error("cannot create '%s': %s", path, strerror(errno));
    return fd;
}

/* Open -o and --rejects. CM_OK or CM_EIO. */
static int outputs_open(FilterRun *run)
{
    int stdout_used = !strcmp(run->output_path, "-");
    run->out_fd = stdout_used ? 1 : output_create(run->output_path);
    if (run->out_fd < 0) return CM_EIO;
    out_init(&run->out, run->out_fd, stdout_used ? "stdout" : run->output_path, 1 << 20);
    if (!run->rejects_path) return CM_OK;
    run->rejects_fd = output_create(run->rejects_path);
    if (run->rejects_fd < 0) return CM_EIO;
    out_init(&run->rejects, run->rejects_fd, run->rejects_path, 1 << 20);
    return CM_OK;
}

/* Flush and close the outputs that are open; a close error turns rc into CM_EIO. */
static int outputs_close(FilterRun *run, int rc)
{
    if (run->out_fd >= 0) {
        out_done(&run->out);
        if (run->out_fd != 1 && close(run->out_fd) && rc == CM_OK) {
            error("cannot write '%s': %s", run->output_path, strerror(errno));
            rc = CM_EIO;
        }
    }
    if (run->rejects_fd >= 0) {
        out_done(&run->rejects);
        if (close(run->rejects_fd) && rc == CM_OK) {
            error("cannot write '%s': %s", run->rejects_path, strerror(errno));
            rc = CM_EIO;
        }
    }
    run->out_fd = run->rejects_fd = -1;
    return rc;
}

/* Write the --stats JSON file (atomically). Returns 0 or -1 (message printed). */
static int stats_write(const FilterRun *run, int complete)
{
    Buf b = { 0 };
    JsonWriter w;
    jw_begin(&w, &b);
    jw_u64(&w, "version", 1);
    jw_bool(&w, "complete", complete);
    jw_object(&w, "input");
    jw_u64(&w, "records", run->input.records);
    jw_u64(&w, "bytes", run->input.bytes);
    jw_close(&w);
    jw_u64(&w, "malformed", run->malformed);
    jw_object(&w, "kept");
    jw_u64(&w, "records", run->count[RULE_KEPT].records);
    jw_u64(&w, "bytes", run->count[RULE_KEPT].bytes);
    jw_close(&w);
    jw_object(&w, "rejected");
    for (int r = 1; r < RULE_COUNT; r++) {
        jw_object(&w, rule_name(&run->rules, r));
        jw_u64(&w, "records", run->count[r].records);
        jw_u64(&w, "bytes", run->count[r].bytes);
        jw_close(&w);
    }
    jw_close(&w);
    jw_object(&w, "dedup");
    jw_u64(&w, "exact_kept", run->dedup.exact.count);
    jw_u64(&w, "near_kept", run->dedup.near.docs);
    jw_u64(&w, "memory_bytes", dedup_bytes(&run->dedup));
    jw_bool(&w, "capped", run->dedup.capped);
    jw_close(&w);
    if (run->rules.pairs) pairs_stats_json(&run->pairs, &w);
    jw_close(&w);
    buf_addc(&b, '\n');
    int rc = atomic_write_file(run->stats_path, b.buf, b.len);
    buf_free(&b);
    return rc;
}

/* The summary line on stderr. */
static void summary_print(const FilterRun *run, double secs)
{
    Buf b = { 0 };
    buf_addf(&b, "%llu records (%.1f MB) in %.2fs: kept %llu (%.1f MB); rejected",
             (unsigned long long)run->input.records, run->input.bytes / 1e6, secs,
             (unsigned long long)run->count[RULE_KEPT].records, run->count[RULE_KEPT].bytes / 1e6);
    for (int r = 1; r < RULE_COUNT; r++)
        buf_addf(&b, "%s %s %llu", r > 1 ? "," : "", rule_name(&run->rules, r),
                 (unsigned long long)run->count[r].records);
    if (run->rules.pairs) pairs_summary_line(&run->pairs, &b);
    if (run->malformed) buf_addf(&b, "; malformed lines %llu", (unsigned long long)run->malformed);
    fprintf(stderr, "%s: %s\n", cm_prog, b.buf);
    buf_free(&b);
}

/* --- main ------------------------------------------------------------------------------- */

/*
** Filter every input (argv[first..argc), or stdin) into the outputs; write --stats and the
** summary. Returns the exit status.
*/
static int filter_run(FilterRun *run, int argc, char **argv, int first)
{
    int rc = outputs_open(run);
    if (rc != CM_OK) return rc;
    run->pool = pool_new((int)run->threads, &run->rules, run->rejects_fd >= 0);
    if (!run->pool) return CM_EUSAGE;
    atomic_signals_init();
    progress_init(&run->progress, run->progress_mode);
    double t0 = now_sec();
    int stop = 0;
    if (first >= argc) {
        rc = filter_input(run, "-", &stop);
    } else {
        for (int i = first; i < argc && !stop; i++) {
            int k = filter_input(run, argv[i], &stop);
            if (k != CM_OK) rc = k;
        }
    }
    progress_end(&run->progress);
    pool_free(run->pool);
    run->pool = NULL;
    out_flush(&run->out);
    if (run->rejects_fd >= 0) out_flush(&run->rejects);
    if (run->stats_path && stats_write(run, !stop) && rc == CM_OK) rc = CM_EIO;
    if (!run->quiet) summary_print(run, now_sec() - t0);
    return rc;
}

/*
** Parse the options, run the filter (or the --bench-stage timing); one cleanup path.
** Returns the exit status (util.h).
*/
int main(int argc, char **argv)
{
    FilterRun run;
    int first = argc;
    cm_init("cm-filter");
    options_default(&run);
    int rc = options_parse(&run, argc, argv, &first);
    if (rc < 0) {
        dedup_init(&run.dedup, run.rules.exact, run.rules.near, run.rules.near_threshold,
                   run.dedup_memory);
        if (run.bench_stage)
            rc = bench_run(&run.judge, run.bench_stage, first < argc ? argv[first] : "-",
                           (size_t)run.max_line);
        else
            rc = filter_run(&run, argc, argv, first);
        dedup_free(&run.dedup);
    }
    rc = outputs_close(&run, rc);
    judge_free(&run.judge);
    record_free(&run.rec);
    pairs_tally_free(&run.pairs);
    strv_free(run.rules.imports);
    strv_free(run.rules.keywords);
    return rc;
}
