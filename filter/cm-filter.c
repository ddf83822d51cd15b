// SPDX-License-Identifier: MIT
/*
** cm-filter: keep the Python data-science files of a JSONL stream, drop low-quality files and
** duplicates.
**
**   cm-ingest repo.tar.gz | cm-filter --stats stats.json > kept.jsonl
**
** One decision per record, in this order (the first rule that fails names the rejection):
**   not-python   the path is not .py/.pyw/.pyi/.ipynb and the record has no "notebook":true
**                (a record without a path counts as Python: The Stack's Python subset)
**   imports      it imports none of --imports (default numpy,pandas,sklearn); with
**                --keywords, `keywords`: none of the words occurs anywhere in content
**   codeparrot's quality rules (filter/quality.h), then exact-dup and near-dup
**                (filter/dedup.h): first seen wins.
** Kept records are written with an added "imports" field listing the wanted modules found.
** Memory: about 3 x the longest line (the line, its decoded content, a scratch copy) + 2 MiB of
** output buffers, plus the dedup tables, which grow by ~1.5 KB per kept document up to
** --dedup-memory.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"              // defines: cm_init, error, warn, exit codes, Buf, parse_*
#include "io.h"                // defines: Out, LineReader, Progress
#include "record.h"            // defines: Record, record_parse, record_write
#include "filter/imports.h"    // defines: ImportScanner
#include "filter/quality.h"    // defines: QualityOpts, quality_check
#include "filter/dedup.h"      // defines: ExactSet, NearIndex

#define CM_FILTER_VERSION "1.0"

/* --- rules -------------------------------------------------------------------------- */

/* Rejection reasons in decision order; quality rules keep their Q_* order in between. */
enum {
    R_KEPT = 0,
    R_NOT_PYTHON,
    R_SELECT,                          /* "imports" or "keywords" */
    R_QUALITY,                         /* + Q_* - 1: R_QUALITY .. R_QUALITY + Q_NRULES - 2 */
    R_EXACT = R_QUALITY + Q_NRULES - 1,
    R_NEAR,
    R_N
};

typedef struct {
    uint64_t nRec;                     /* records */
    uint64_t nBytes;                   /* bytes of content */
} Count;

/* All state of one run (sqlite style: one global). */
static struct {
    /* options */
    char **azImports;                  /* wanted modules */
    int nImports;                      /* their count */
    char **azKeywords;                 /* --keywords words, or NULL */
    int nKeywords;                     /* their count */
    int bSelect;                       /* apply the imports/keywords rule */
    int bAnyFile;                      /* skip the Python-only rule */
    int bQuality;                      /* apply the quality rules */
    QualityOpts q;                     /* their thresholds */
    int bExact;                        /* exact dedup */
    int bNear;                         /* near dedup */
    double nearThreshold;              /* Jaccard threshold */
    uint64_t dedupMemory;              /* cap of the dedup tables in bytes */
    const char *zOutput;               /* -o FILE or "-" */
    const char *zRejects;              /* --rejects FILE or NULL */
    const char *zStats;                /* --stats FILE or NULL */
    int bSkipErrors;                   /* --on-error skip */
    uint64_t maxLine;                  /* longest input line */
    int bQuiet;                        /* -q */
    int progressMode;                  /* -1 auto, 0 off, 1 on */
    const char *zBench;                /* hidden --bench-stage */
    /* run state */
    ImportScanner *pScan;              /* import scanner */
    ExactSet exact;                    /* exact fingerprints of kept documents */
    NearIndex near;                    /* MinHash index of kept documents */
    int bDedupFull;                    /* the cap was reached: tables no longer grow */
    Buf scratch;                       /* reused by fingerprint and quality rules */
    Out out;                           /* kept records */
    Out rej;                           /* rejected records */
    int bRej;                          /* rej is open */
    Count aCount[R_N];                 /* per rule */
    Count input;                       /* all well-formed records */
    uint64_t nMalformed;               /* bad lines */
    Progress prog;                     /* terminal progress */
} g;

static volatile sig_atomic_t g_interrupted;   /* SIGINT/SIGTERM seen */

/* Name of rejection reason r. */
static const char *rule_name(int r)
{
    if (r == R_KEPT) return "kept";
    if (r == R_NOT_PYTHON) return "not-python";
    if (r == R_SELECT) return g.azKeywords ? "keywords" : "imports";
    if (r == R_EXACT) return "exact-dup";
    if (r == R_NEAR) return "near-dup";
    return quality_rule_name(r - R_QUALITY + 1);
}

/* --- usage -------------------------------------------------------------------------- */

static const char usage_short[] =
    "usage: cm-filter [OPTIONS] [INPUT.jsonl ...] > kept.jsonl\n"
    "Try 'cm-filter --help' for more information.\n";

static const char usage_long[] =
    "usage: cm-filter [OPTIONS] [INPUT.jsonl ...] > kept.jsonl\n"
    "\n"
    "Keep the Python files of a JSONL stream (cm-ingest, codeparrot, The Stack) that import\n"
    "data-science modules, drop low-quality files (codeparrot's rules) and duplicates.\n"
    "INPUT '-' or none reads stdin. Kept records gain \"imports\":[...] (the modules found).\n"
    "\n"
    "Selection:\n"
    "  --imports LIST            modules to look for (default numpy,pandas,sklearn)\n"
    "  --keywords LIST           keep instead when any word occurs anywhere in content\n"
    "                            (the Hugging Face course rule, e.g. pandas,sklearn,matplotlib,seaborn)\n"
    "  --no-select               keep every Python file (no imports/keywords rule)\n"
    "  --any-file                do not require a Python path\n"
    "Quality (codeparrot's defaults; 0 disables a limit):\n"
    "  --max-line-length N       longest line in characters (1000)\n"
    "  --max-mean-line-length N  mean line length (100)\n"
    "  --min-alnum F             alphanumeric fraction (0.25)\n"
    "  --min-equals N            fewest '=' characters (5)\n"
    "  --no-autogen              keep files marked auto-generated in their first 5 lines\n"
    "  --no-config-test          keep configuration and test files\n"
    "  --no-keywords-rule        keep files with no def/class/for/while\n"
    "  --drop-prob P             config-test and no-keywords drop probability (0.7)\n"
    "  --seed N                  seed of the content hash deciding that drop (0)\n"
    "  --no-quality              none of the quality rules\n"
    "Deduplication (first seen wins):\n"
    "  --no-dedup                neither exact nor near dedup\n"
    "  --no-near-dedup           exact dedup only\n"
    "  --near-threshold F        MinHash Jaccard estimate for near copies (0.85)\n"
    "  --dedup-memory SIZE       cap of the dedup tables, ~1.5 KB per kept file (2G)\n"
    "Output and errors:\n"
    "  -o, --output FILE         kept records to FILE (default stdout)\n"
    "  --rejects FILE            rejected records, with \"reject\":\"RULE\"\n"
    "  --stats FILE              counts and content bytes per rule, as JSON\n"
    "  --on-error fail|skip      on a malformed line: stop (default) or skip it; exit 1 either way\n"
    "  --max-line SIZE           longest input line (256M)\n"
    "  -q, --quiet               no summary line (nor progress) on stderr\n"
    "  --progress, --no-progress force progress on stderr on or off (default: if a terminal)\n"
    "  -h, --help, --version\n"
    "\n"
    "Memory: about 3 x the longest input line + 2 MiB, plus the dedup tables (~1.5 KB per\n"
    "kept file, at most --dedup-memory).\n"
    "Exit: 0 ok, 1 malformed input (good records kept), 2 usage, 3 I/O, 130 interrupted,\n"
    "141 the reader of stdout went away.\n";

/* Print the short usage to stderr and return CM_EUSAGE. */
static int usage_error(const char *fmt, const char *arg)
{
    if (fmt) {
        char msg[512];
        snprintf(msg, sizeof msg, fmt, arg);
        error("%s", msg);
    }
    fputs(usage_short, stderr);
    return CM_EUSAGE;
}

/* --- selection ---------------------------------------------------------------------- */

/* Does the path (or the notebook flag) say this record is Python source? */
static int record_is_python(const Record *r)
{
    static const char *const ext[] = { ".py", ".pyw", ".pyi", ".ipynb", NULL };
    const JsonField *nb = json_get(&r->obj, "notebook");
    if (nb && nb->type == JSON_TRUE) return 1;
    if (!r->path.s || r->path.n == 0) return 1;
    for (int i = 0; ext[i]; i++) {
        size_t k = strlen(ext[i]);
        if (r->path.n >= k && !strncasecmp(r->path.s + r->path.n - k, ext[i], k)) return 1;
    }
    return 0;
}

/* Does any --keywords word occur in s[0..n)? (case-sensitive substring, as the HF course) */
static int has_keyword(const char *s, size_t n)
{
    for (int i = 0; i < g.nKeywords; i++)
        if (memmem(s, n, g.azKeywords[i], strlen(g.azKeywords[i]))) return 1;
    return 0;
}

/*
** Would adding one more document take the dedup tables past --dedup-memory (counting the
** doubling a table may need)? Warn once when it would.
*/
static int dedup_room(void)
{
    if (g.bDedupFull) return 0;
    size_t next = (g.bExact ? exactset_bytes_next(&g.exact) : 0) +
                  (g.bNear ? near_bytes_next(&g.near) : 0);
    if (next <= g.dedupMemory) return 1;
    g.bDedupFull = 1;
    warn("dedup tables reached --dedup-memory (%llu bytes) after %zu kept files: later files "
         "are compared with those only", (unsigned long long)g.dedupMemory,
         g.bNear ? g.near.nDocs : g.exact.n);
    return 0;
}

/*
** Decide one record: R_KEPT or the rule that rejects it. extra receives the `"imports":[..]`
** field (length *pExtra) when the imports were scanned.
*/
static int filter_decide(Record *r, char *extra, size_t cap, size_t *pExtra)
{
    const char *s = r->content.s;
    size_t n = r->content.n;
    *pExtra = 0;
    if (!g.bAnyFile && !record_is_python(r)) return R_NOT_PYTHON;
    uint64_t mask = imports_scan(g.pScan, s, n);
    *pExtra = imports_format(g.pScan, mask, extra, cap);
    if (g.bSelect) {
        if (g.azKeywords ? !has_keyword(s, n) : !mask) return R_SELECT;
    }
    if (g.bQuality) {
        int q = quality_check(&g.q, s, n, &g.scratch);
        if (q != Q_OK) return R_QUALITY + q - 1;
    }
    uint64_t fp = 0;
    if (g.bExact) {
        fp = dedup_fingerprint(s, n, &g.scratch);
        if (exactset_has(&g.exact, fp)) return R_EXACT;
    }
    uint32_t sig[MH_PERMS];
    size_t nSh = 0;
    if (g.bNear) {
        nSh = near_signature(&g.near, s, n, sig);
        if (nSh && near_find(&g.near, sig) >= 0) return R_NEAR;
    }
    if ((g.bExact || g.bNear) && dedup_room()) {
        if (g.bExact) exactset_add(&g.exact, fp);
        if (g.bNear && nSh) near_add(&g.near, sig);
    }
    return R_KEPT;
}

/* --- input loop --------------------------------------------------------------------- */

/*
** Filter one input. Returns CM_OK, CM_EDATA when a malformed line was skipped, or a status
** that ends the run: CM_EDATA (malformed with --on-error fail), CM_EIO, CM_EINTR.
*/
static int filter_input(const char *zName, int *pStop)
{
    int fd = 0;
    const char *name = "stdin";
    int rc = CM_OK;
    if (strcmp(zName, "-")) {
        fd = open(zName, O_RDONLY);
        if (fd < 0) {
            error("cannot open '%s': %s", zName, strerror(errno));
            *pStop = 1;
            return CM_EIO;
        }
        name = zName;
    }
    LineReader lr;
    lr_init(&lr, fd, name, (size_t)g.maxLine);
    Record r;
    record_init(&r);
    char extra[IMPORTS_FIELD_MAX];
    char *line;
    size_t len;
    for (;;) {
        if (g_interrupted) {
            error("%s: interrupted at line %llu: output stops before it", name,
                  (unsigned long long)lr.lineno + 1);
            rc = CM_EINTR;
            *pStop = 1;
            break;
        }
        int k = lr_next(&lr, &line, &len);
        if (k == 0) break;
        int bad = 0;
        if (k < 0) {
            if (lr.err) {                  /* read error: message printed by lr_next */
                rc = CM_EIO;
                *pStop = 1;
                break;
            }
            bad = 1;                       /* line too long: message printed by lr_next */
        } else if (len == 0 || (len == 1 && line[0] == '\r')) {
            continue;                      /* blank lines carry no record */
        } else if (record_parse(&r, line, len)) {
            error("%s: line %llu: byte %llu: %s", name, (unsigned long long)lr.lineno,
                  (unsigned long long)(lr.offset + r.err_pos), r.err);
            bad = 1;
        }
        if (bad) {
            g.nMalformed++;
            if (!g.bSkipErrors) {
                error("%s: output stopped at line %llu (use --on-error skip to go on)", name,
                      (unsigned long long)lr.lineno);
                rc = CM_EDATA;
                *pStop = 1;
                break;
            }
            rc = CM_EDATA;
            continue;
        }
        g.input.nRec++;
        g.input.nBytes += r.content.n;
        size_t nExtra;
        int rule = filter_decide(&r, extra, sizeof extra, &nExtra);
        g.aCount[rule].nRec++;
        g.aCount[rule].nBytes += r.content.n;
        if (rule == R_KEPT) {
            record_write(&g.out, &r, extra, nExtra);
        } else if (g.bRej) {
            char rx[sizeof extra + 64];
            int m = snprintf(rx, sizeof rx, "\"reject\":\"%s\"%s%.*s", rule_name(rule),
                             nExtra ? "," : "", (int)nExtra, extra);
            record_write(&g.rej, &r, rx, (size_t)m);
        }
        if ((g.input.nRec & 255) == 0)
            progress_update(&g.prog, "%llu records, %llu kept", (unsigned long long)g.input.nRec,
                            (unsigned long long)g.aCount[R_KEPT].nRec);
    }
    record_free(&r);
    lr_free(&lr);
    if (fd > 0) close(fd);
    return rc;
}

/* --- statistics --------------------------------------------------------------------- */

/* Write the --stats JSON file. Returns 0 or -1 (message printed). */
static int stats_write(const char *zFile, int bComplete)
{
    Buf b = { 0 };
    buf_addf(&b, "{\"version\":1,\"complete\":%s,", bComplete ? "true" : "false");
    buf_addf(&b, "\"input\":{\"records\":%llu,\"bytes\":%llu},\"malformed\":%llu,",
             (unsigned long long)g.input.nRec, (unsigned long long)g.input.nBytes,
             (unsigned long long)g.nMalformed);
    buf_addf(&b, "\"kept\":{\"records\":%llu,\"bytes\":%llu},\"rejected\":{",
             (unsigned long long)g.aCount[R_KEPT].nRec, (unsigned long long)g.aCount[R_KEPT].nBytes);
    for (int r = 1; r < R_N; r++)
        buf_addf(&b, "%s\"%s\":{\"records\":%llu,\"bytes\":%llu}", r > 1 ? "," : "", rule_name(r),
                 (unsigned long long)g.aCount[r].nRec, (unsigned long long)g.aCount[r].nBytes);
    buf_addf(&b, "},\"dedup\":{\"exact_kept\":%zu,\"near_kept\":%zu,\"memory_bytes\":%zu,\"capped\":%s}}\n",
             g.exact.n, g.near.nDocs, exactset_bytes(&g.exact) + near_bytes(&g.near),
             g.bDedupFull ? "true" : "false");
    int fd = open(zFile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = 0;
    if (fd < 0 || write_all(fd, b.buf, b.len) || close(fd)) {
        rc = error("cannot write '%s': %s", zFile, strerror(errno));
    }
    buf_free(&b);
    return rc;
}

/* The summary line on stderr. */
static void summary_print(double secs)
{
    Buf b = { 0 };
    buf_addf(&b, "%llu records (%.1f MB) in %.2fs: kept %llu (%.1f MB); rejected",
             (unsigned long long)g.input.nRec, g.input.nBytes / 1e6, secs,
             (unsigned long long)g.aCount[R_KEPT].nRec, g.aCount[R_KEPT].nBytes / 1e6);
    for (int r = 1; r < R_N; r++)
        buf_addf(&b, "%s %s %llu", r > 1 ? "," : "", rule_name(r),
                 (unsigned long long)g.aCount[r].nRec);
    if (g.nMalformed) buf_addf(&b, "; malformed lines %llu", (unsigned long long)g.nMalformed);
    fprintf(stderr, "%s: %s\n", cm_prog, b.buf);
    buf_free(&b);
}

/* --- in-process stage timing (hidden --bench-stage) ----------------------------------- */

/*
** Load the Python records of zFile into memory and time one stage (regex, heuristics, exact,
** near, or all) over them, the fastest of 3 runs. Prints "stage records bytes seconds MB/s
** records/s passed" lines.
*/
static int bench_run(const char *zStage, const char *zFile)
{
    int fd = strcmp(zFile, "-") ? open(zFile, O_RDONLY) : 0;
    if (fd < 0) return error("cannot open '%s': %s", zFile, strerror(errno)), CM_EIO;
    LineReader lr;
    lr_init(&lr, fd, zFile, (size_t)g.maxLine);
    Record r;
    record_init(&r);
    Buf all = { 0 };
    size_t *aOff = NULL, nDoc = 0, cap = 0;
    char *line;
    size_t len;
    int k;
    while ((k = lr_next(&lr, &line, &len)) != 0) {
        if (k < 0 || record_parse(&r, line, len) || !record_is_python(&r)) continue;
        if (nDoc + 2 > cap) aOff = xrealloc(aOff, (cap = cap ? 2 * cap : 1024) * sizeof *aOff);
        aOff[nDoc++] = all.len;
        buf_add(&all, r.content.s, r.content.n);
    }
    if (!aOff) aOff = xmalloc(sizeof *aOff);
    aOff[nDoc] = all.len;
    record_free(&r);
    lr_free(&lr);
    if (fd > 0) close(fd);
    static const char *stages[] = { "regex", "heuristics", "exact", "near", NULL };
    for (int s = 0; stages[s]; s++) {
        if (strcmp(zStage, "all") && strcmp(zStage, stages[s])) continue;
        uint64_t passed = 0;
        double dt = 1e30;
        for (int rep = 0; rep < 3; rep++) {          /* the fastest of 3: load is noisy */
            exactset_free(&g.exact);
            near_free(&g.near);
            exactset_init(&g.exact);
            near_init(&g.near, g.nearThreshold);
            passed = 0;
            double t0 = now_sec();
            for (size_t i = 0; i < nDoc; i++) {
                const char *p = all.buf + aOff[i];
                size_t n = aOff[i + 1] - aOff[i];
                if (s == 0) {
                    passed += imports_scan(g.pScan, p, n) != 0;
                } else if (s == 1) {
                    passed += quality_check(&g.q, p, n, &g.scratch) == Q_OK;
                } else if (s == 2) {
                    uint64_t fp = dedup_fingerprint(p, n, &g.scratch);
                    if (!exactset_has(&g.exact, fp)) {
                        exactset_add(&g.exact, fp);
                        passed++;
                    }
                } else {
                    uint32_t sig[MH_PERMS];
                    size_t nSh = near_signature(&g.near, p, n, sig);
                    if (nSh && near_find(&g.near, sig) >= 0) continue;
                    if (nSh) near_add(&g.near, sig);
                    passed++;
                }
            }
            double t = now_sec() - t0;
            if (t < dt) dt = t;
        }
        printf("%s %zu %zu %.4f %.1f %.0f %llu\n", stages[s], nDoc, all.len, dt,
               all.len / dt / 1e6, nDoc / dt, (unsigned long long)passed);
    }
    buf_free(&all);
    free(aOff);
    return CM_OK;
}

/* --- main --------------------------------------------------------------------------- */

/*
** SIGINT/SIGTERM: the first one stops the run after the current record (output flushed, exit
** 130); a second one (e.g. while waiting for input that does not come) ends it at once.
*/
static void on_signal(int sig)
{
    if (g_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    g_interrupted = 1;
}

enum {
    O_IMPORTS = 256, O_KEYWORDS, O_NO_SELECT, O_ANY_FILE, O_MAX_LINE_LEN, O_MAX_MEAN, O_MIN_ALNUM,
    O_MIN_EQUALS, O_NO_AUTOGEN, O_NO_CONFIG, O_NO_KWRULE, O_DROP_PROB, O_SEED, O_NO_QUALITY,
    O_NO_DEDUP, O_NO_NEAR, O_NEAR_THR, O_DEDUP_MEM, O_REJECTS, O_STATS, O_ON_ERROR, O_MAX_LINE,
    O_PROGRESS, O_NO_PROGRESS, O_VERSION, O_BENCH
};

static const struct option long_opts[] = {
    { "imports", required_argument, 0, O_IMPORTS },
    { "keywords", required_argument, 0, O_KEYWORDS },
    { "no-select", no_argument, 0, O_NO_SELECT },
    { "any-file", no_argument, 0, O_ANY_FILE },
    { "max-line-length", required_argument, 0, O_MAX_LINE_LEN },
    { "max-mean-line-length", required_argument, 0, O_MAX_MEAN },
    { "min-alnum", required_argument, 0, O_MIN_ALNUM },
    { "min-equals", required_argument, 0, O_MIN_EQUALS },
    { "no-autogen", no_argument, 0, O_NO_AUTOGEN },
    { "no-config-test", no_argument, 0, O_NO_CONFIG },
    { "no-keywords-rule", no_argument, 0, O_NO_KWRULE },
    { "drop-prob", required_argument, 0, O_DROP_PROB },
    { "seed", required_argument, 0, O_SEED },
    { "no-quality", no_argument, 0, O_NO_QUALITY },
    { "no-dedup", no_argument, 0, O_NO_DEDUP },
    { "no-near-dedup", no_argument, 0, O_NO_NEAR },
    { "near-threshold", required_argument, 0, O_NEAR_THR },
    { "dedup-memory", required_argument, 0, O_DEDUP_MEM },
    { "output", required_argument, 0, 'o' },
    { "rejects", required_argument, 0, O_REJECTS },
    { "stats", required_argument, 0, O_STATS },
    { "on-error", required_argument, 0, O_ON_ERROR },
    { "max-line", required_argument, 0, O_MAX_LINE },
    { "quiet", no_argument, 0, 'q' },
    { "progress", no_argument, 0, O_PROGRESS },
    { "no-progress", no_argument, 0, O_NO_PROGRESS },
    { "help", no_argument, 0, 'h' },
    { "version", no_argument, 0, O_VERSION },
    { "bench-stage", required_argument, 0, O_BENCH },
    { 0, 0, 0, 0 }
};

/* Parse a fraction in [0,1] into *out; 0 or -1. */
static int parse_fraction(const char *s, double *out)
{
    return parse_double(s, out) || *out < 0 || *out > 1 ? -1 : 0;
}

/*
** Parse the command line into g. Returns -1 to go on, or an exit status (help, usage error).
*/
static int options_parse(int argc, char **argv)
{
    int c;
    long v;
    double d;
    const char *zImports = "numpy,pandas,sklearn";
    while ((c = getopt_long(argc, argv, "o:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case O_IMPORTS: zImports = optarg; break;
        case O_KEYWORDS:
            strv_free(g.azKeywords);
            g.azKeywords = strv_split(optarg, ',', &g.nKeywords);
            if (!g.nKeywords) return usage_error("--keywords needs at least one word", NULL);
            break;
        case O_NO_SELECT: g.bSelect = 0; break;
        case O_ANY_FILE: g.bAnyFile = 1; break;
        case O_MAX_LINE_LEN:
            if (parse_long(optarg, 0, 1L << 40, &v)) return usage_error("bad --max-line-length '%s'", optarg);
            g.q.maxLine = v;
            break;
        case O_MAX_MEAN:
            if (parse_double(optarg, &d) || d < 0) return usage_error("bad --max-mean-line-length '%s'", optarg);
            g.q.maxMeanLine = d;
            break;
        case O_MIN_ALNUM:
            if (parse_fraction(optarg, &d)) return usage_error("bad --min-alnum '%s' (a fraction in [0,1])", optarg);
            g.q.minAlnum = d;
            break;
        case O_MIN_EQUALS:
            if (parse_long(optarg, 0, 1L << 40, &v)) return usage_error("bad --min-equals '%s'", optarg);
            g.q.minEquals = v;
            break;
        case O_NO_AUTOGEN: g.q.bAutogen = 0; break;
        case O_NO_CONFIG: g.q.bConfigTest = 0; break;
        case O_NO_KWRULE: g.q.bNoKeywords = 0; break;
        case O_DROP_PROB:
            if (parse_fraction(optarg, &d)) return usage_error("bad --drop-prob '%s' (a fraction in [0,1])", optarg);
            g.q.dropProb = d;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || *end || end == optarg || optarg[0] == '-')
                return usage_error("bad --seed '%s'", optarg);
            g.q.seed = s;
            break;
        }
        case O_NO_QUALITY: g.bQuality = 0; break;
        case O_NO_DEDUP: g.bExact = g.bNear = 0; break;
        case O_NO_NEAR: g.bNear = 0; break;
        case O_NEAR_THR:
            if (parse_fraction(optarg, &d) || d <= 0) return usage_error("bad --near-threshold '%s' (in (0,1])", optarg);
            g.nearThreshold = d;
            break;
        case O_DEDUP_MEM:
            if (parse_size(optarg, &g.dedupMemory)) return usage_error("bad --dedup-memory '%s'", optarg);
            break;
        case 'o': g.zOutput = optarg; break;
        case O_REJECTS: g.zRejects = optarg; break;
        case O_STATS: g.zStats = optarg; break;
        case O_ON_ERROR:
            if (!strcmp(optarg, "skip")) g.bSkipErrors = 1;
            else if (!strcmp(optarg, "fail")) g.bSkipErrors = 0;
            else return usage_error("--on-error takes 'fail' or 'skip', not '%s'", optarg);
            break;
        case O_MAX_LINE:
            if (parse_size(optarg, &g.maxLine) || g.maxLine < 16) return usage_error("bad --max-line '%s'", optarg);
            break;
        case 'q': g.bQuiet = 1; break;
        case O_PROGRESS: g.progressMode = 1; break;
        case O_NO_PROGRESS: g.progressMode = 0; break;
        case 'h': fputs(usage_long, stdout); return CM_OK;
        case O_VERSION: printf("cm-filter %s\n", CM_FILTER_VERSION); return CM_OK;
        case O_BENCH: g.zBench = optarg; break;
        default: return usage_error(NULL, NULL);
        }
    }
    if (g.bQuiet && g.progressMode < 0) g.progressMode = 0;   /* -q: no progress unless asked */
    g.azImports = strv_split(zImports, ',', &g.nImports);
    if (g.nImports < 1 || g.nImports > IMPORTS_MAX)
        return usage_error("--imports needs 1 to 64 module names, not '%s'", zImports);
    g.pScan = imports_new(g.azImports, g.nImports);
    if (!g.pScan) return usage_error(NULL, NULL);
    if (g.zBench && strcmp(g.zBench, "regex") && strcmp(g.zBench, "heuristics") &&
        strcmp(g.zBench, "exact") && strcmp(g.zBench, "near") && strcmp(g.zBench, "all"))
        return usage_error("--bench-stage takes regex, heuristics, exact, near or all, not '%s'", g.zBench);
    return -1;
}

/*
** Parse the options, filter every input into stdout (or -o), write --rejects and --stats,
** print the summary; one cleanup path. Returns the exit status (util.h).
*/
int main(int argc, char **argv)
{
    int rc = CM_OK;
    int outFd = -1;
    int rejFd = -1;
    cm_init("cm-filter");
    g.bSelect = 1;
    g.bQuality = 1;
    quality_defaults(&g.q);
    g.bExact = g.bNear = 1;
    g.nearThreshold = 0.85;
    g.dedupMemory = 2ull << 30;
    g.zOutput = "-";
    g.maxLine = 256ull << 20;
    g.progressMode = -1;
    exactset_init(&g.exact);

    rc = options_parse(argc, argv);
    if (rc >= 0) goto done;          /* g.near is still all zero: near_free is harmless */
    rc = CM_OK;
    near_init(&g.near, g.nearThreshold);
    if (g.zBench) {
        rc = bench_run(g.zBench, optind < argc ? argv[optind] : "-");
        goto done;
    }

    outFd = 1;
    if (strcmp(g.zOutput, "-")) {
        outFd = open(g.zOutput, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (outFd < 0) {
            rc = CM_EIO;
            error("cannot create '%s': %s", g.zOutput, strerror(errno));
            goto done;
        }
    }
    out_init(&g.out, outFd, outFd == 1 ? "stdout" : g.zOutput, 1 << 20);
    if (g.zRejects) {
        rejFd = open(g.zRejects, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (rejFd < 0) {
            rc = CM_EIO;
            error("cannot create '%s': %s", g.zRejects, strerror(errno));
            goto done;
        }
        out_init(&g.rej, rejFd, g.zRejects, 1 << 20);
        g.bRej = 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    progress_init(&g.prog, g.progressMode);
    double t0 = now_sec();
    int stop = 0;
    if (optind >= argc) {
        rc = filter_input("-", &stop);
    } else {
        for (int i = optind; i < argc && !stop; i++) {
            int k = filter_input(argv[i], &stop);
            if (k != CM_OK) rc = k;
        }
    }
    progress_end(&g.prog);
    out_flush(&g.out);
    if (g.bRej) out_flush(&g.rej);
    if (g.zStats && stats_write(g.zStats, !stop) && rc == CM_OK) rc = CM_EIO;
    if (!g.bQuiet) summary_print(now_sec() - t0);

done:
    if (outFd >= 0) {
        out_done(&g.out);
        if (outFd != 1 && close(outFd) && rc == CM_OK) {
            error("cannot write '%s': %s", g.zOutput, strerror(errno));
            rc = CM_EIO;
        }
    }
    if (g.bRej) out_done(&g.rej);
    if (rejFd >= 0 && close(rejFd) && rc == CM_OK) {
        error("cannot write '%s': %s", g.zRejects, strerror(errno));
        rc = CM_EIO;
    }
    imports_free(g.pScan);
    exactset_free(&g.exact);
    near_free(&g.near);
    buf_free(&g.scratch);
    strv_free(g.azImports);
    strv_free(g.azKeywords);
    return rc;
}
