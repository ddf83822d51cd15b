// SPDX-License-Identifier: MIT
/*
** cli.c: option tables to getopt_long, --help, short usage and --version (see cli.h).
*/
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { ID_HELP = CLI_ID_RESERVED, ID_VERSION, ID_QUIET, ID_PROGRESS, ID_NO_PROGRESS };

static const CliOpt common_opts[] = {
    { "quiet", 'q', NULL, NULL, "no summary line on stderr (errors are still printed)", ID_QUIET },
    { "progress", 0, NULL, NULL, "show progress on stderr even when it is not a terminal",
      ID_PROGRESS },
    { "no-progress", 0, NULL, NULL, "never show progress (default: only on a terminal)",
      ID_NO_PROGRESS },
    { "help", 'h', NULL, NULL, "print this help and exit", ID_HELP },
    { "version", 0, NULL, NULL, "print the version and exit", ID_VERSION },
    { 0 }
};

static size_t opts_count(const CliOpt *o)
{
    size_t n = 0;
    while (o && o[n].name) n++;
    return n;
}

/* Is the short option ch taken by the verb's own table (then the common one yields)? */
static int short_taken(const CliOpt *o, char ch)
{
    for (; o && o->name; o++)
        if (o->short_name == ch) return 1;
    return 0;
}

void cli_init(Cli *c, const CliSpec *spec, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->spec = spec;
    c->argc = argc;
    c->argv = argv;
    c->progress = -1;
    size_t n = opts_count(spec->opts), m = opts_count(common_opts);
    c->lopts = xcalloc(n + m + 1, sizeof *c->lopts);
    c->sopts = xcalloc(2 * (n + m) + 3, 1);
    char *s = c->sopts;
    *s++ = ':'; /* ':' first: a missing argument returns ':' */
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        const CliOpt *t = pass ? common_opts : spec->opts;
        for (; t && t->name; t++) {
            c->lopts[k++] = (struct option){ t->name, t->arg ? required_argument : no_argument,
                                             NULL, t->id };
            /* a common short option the verb took for itself stays long-only */
            if (t->short_name && !(pass && short_taken(spec->opts, t->short_name))) {
                *s++ = t->short_name;
                if (t->arg) *s++ = ':';
            }
        }
    }
    optind = 0; /* glibc: start afresh (a verb's parse after the program's) */
    opterr = 0;
}

void cli_free(Cli *c)
{
    free(c->lopts);
    free(c->sopts);
    c->lopts = NULL;
    c->sopts = NULL;
}

static const CliOpt *find_id(const CliSpec *s, int id)
{
    for (int pass = 0; pass < 2; pass++)
        for (const CliOpt *t = pass ? common_opts : s->opts; t && t->name; t++)
            if (t->id == id) return t;
    return NULL;
}

static const CliOpt *find_short(const CliSpec *s, int ch)
{
    for (const CliOpt *t = s->opts; t && t->name; t++)
        if (t->short_name == ch) return t;
    for (const CliOpt *t = common_opts; t->name; t++)
        if (t->short_name == ch) return t;
    return NULL;
}

static void prefix(const CliSpec *s, char *out, size_t cap)
{
    if (s->verb)
        snprintf(out, cap, "%s %s", s->prog, s->verb);
    else
        snprintf(out, cap, "%s", s->prog);
}

static int vusage(const CliSpec *s, const char *fmt, va_list ap)
{
    char who[128];
    prefix(s, who, sizeof who);
    if (fmt) {
        char msg[2048];
        vsnprintf(msg, sizeof msg, fmt, ap);
        fprintf(stderr, "%s: %s\n", who, msg);
    }
    fprintf(stderr, "usage: %s %s\nTry '%s --help' for the options.\n", who,
            s->synopsis ? s->synopsis : "[options]", who);
    return CM_EUSAGE;
}

int cli_usage_error(const Cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vusage(c->spec, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_spec_usage_error(const CliSpec *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vusage(s, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_next(Cli *c)
{
    int idx = -1;
    int k = getopt_long(c->argc, c->argv, c->sopts, c->lopts, &idx);
    c->arg = optarg;
    c->opt = NULL;
    if (k == -1) {
        c->optind = optind;
        return CLI_DONE;
    }
    if (k == '?' || k == ':') {
        const char *bad = optind > 0 && optind <= c->argc ? c->argv[optind - 1] : "";
        int is_long = !strncmp(bad, "--", 2);
        int len = (int)strcspn(bad, "=");
        if (!is_long && optopt > 0 && optopt < 256) {
            if (k == ':')
                c->status = cli_usage_error(c, "option '-%c' needs a value", optopt);
            else
                c->status = cli_usage_error(c, "unknown option '-%c'", optopt);
        } else if (k == ':') {
            c->status = cli_usage_error(c, "option '%.*s' needs a value", len, bad);
        } else {
            c->status = cli_usage_error(c, "unknown option '%.*s'", len, bad);
        }
        return CLI_STOP;
    }
    if (k < 256 && k != idx) { /* a short option: map it to its row's id */
        const CliOpt *t = find_short(c->spec, k);
        if (t) k = t->id;
    }
    c->opt = find_id(c->spec, k);
    switch (k) {
    case ID_HELP: c->status = cli_help(c->spec); return CLI_STOP;
    case ID_VERSION: c->status = cli_version(c->spec); return CLI_STOP;
    case ID_QUIET: c->quiet = 1; return cli_next(c);
    case ID_PROGRESS: c->progress = 1; return cli_next(c);
    case ID_NO_PROGRESS: c->progress = 0; return cli_next(c);
    }
    return k;
}

/* --- values ---------------------------------------------------------------------------- */

static const char *opt_name(const Cli *c)
{
    return c->opt ? c->opt->name : "?";
}

int cli_bad_value(const Cli *c, const char *what)
{
    return cli_usage_error(c, "--%s: '%s' is not %s", opt_name(c), c->arg ? c->arg : "", what);
}

int cli_long(Cli *c, long lo, long hi, long *out)
{
    if (c->arg && parse_long(c->arg, lo, hi, out) == 0) return 0;
    char what[96];
    snprintf(what, sizeof what, "a whole number from %ld to %ld", lo, hi);
    return cli_bad_value(c, what);
}

int cli_int(Cli *c, int lo, int hi, int *out)
{
    long v;
    int rc = cli_long(c, lo, hi, &v);
    if (rc == 0) *out = (int)v;
    return rc;
}

int cli_size(Cli *c, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (c->arg && parse_size(c->arg, &v) == 0 && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    char what[128];
    snprintf(what, sizeof what, "a size from %llu to %llu (suffixes k, M, G)",
             (unsigned long long)lo, (unsigned long long)hi);
    return cli_bad_value(c, what);
}

int cli_double(Cli *c, double lo, double hi, double *out)
{
    double v;
    if (c->arg && parse_double(c->arg, &v) == 0 && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof what, "a number from %g to %g", lo, hi);
    return cli_bad_value(c, what);
}

int cli_choice(Cli *c, const char *const *words, int *out)
{
    for (int i = 0; words[i]; i++) {
        if (c->arg && !strcmp(c->arg, words[i])) {
            *out = i;
            return 0;
        }
    }
    Buf b = { 0 };
    buf_adds(&b, "one of ");
    for (int i = 0; words[i]; i++) buf_addf(&b, "%s%s", i ? ", " : "", words[i]);
    int rc = cli_bad_value(c, b.buf);
    buf_free(&b);
    return rc;
}

/* --- help and version -------------------------------------------------------------------- */

static int out_status(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout)) return CM_OK;
    if (errno == EPIPE) return CM_EPIPE;
    error("cannot write to stdout: %s", strerror(errno));
    return CM_EIO;
}

/* "  -o, --output FILE" */
static int left_part(const CliOpt *t, char *out, size_t cap)
{
    if (t->short_name)
        return snprintf(out, cap, "  -%c, --%s%s%s", t->short_name, t->name, t->arg ? " " : "",
                        t->arg ? t->arg : "");
    return snprintf(out, cap, "      --%s%s%s", t->name, t->arg ? " " : "", t->arg ? t->arg : "");
}

static void print_opt(const CliOpt *t, int width, const CliSpec *s)
{
    char left[160];
    int n = left_part(t, left, sizeof left);
    /* a common short option that the verb took for itself shows as long-only */
    if (t->id >= CLI_ID_RESERVED && t->short_name && short_taken(s->opts, t->short_name))
        n = snprintf(left, sizeof left, "      --%s", t->name);
    fputs(left, stdout);
    if (n + 2 > width)
        printf("\n%*s", width, "");
    else
        printf("%*s", width - n, "");
    for (const char *h = t->help ? t->help : ""; *h; h++) {
        if (*h == '\n')
            printf("\n%*s", width, "");
        else
            putchar(*h);
    }
    if (t->def) printf(" (default: %s)", t->def);
    putchar('\n');
}

int cli_help(const CliSpec *s)
{
    char who[128];
    prefix(s, who, sizeof who);
    printf("usage: %s %s\n", who, s->synopsis ? s->synopsis : "[options]");
    if (s->about) printf("\n%s\n", s->about);
    int width = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const CliOpt *t = pass ? common_opts : s->opts; t && t->name; t++) {
            char left[160];
            int n = left_part(t, left, sizeof left) + 2;
            if (n > width && n <= 30) width = n;
        }
    if (opts_count(s->opts)) {
        printf("\nOptions:\n");
        for (const CliOpt *t = s->opts; t->name; t++) print_opt(t, width, s);
    }
    printf("\nCommon options:\n");
    for (const CliOpt *t = common_opts; t->name; t++) print_opt(t, width, s);
    if (s->notes) printf("\n%s\n", s->notes);
    return out_status();
}

int cli_version(const CliSpec *s)
{
    const char *extra = s->version_extra ? s->version_extra() : NULL;
    printf("%s (codemill) %s%s%s\n", s->prog, CM_VERSION, extra ? "; " : "", extra ? extra : "");
    return out_status();
}

/* --- verbs ---------------------------------------------------------------------------------- */

static int dispatch_help(const char *prog, const char *about, const CliVerb *verbs,
                         const char *default_verb)
{
    printf("usage: %s VERB [options] ...\n", prog);
    if (default_verb)
        printf("       %s [options] ...   (the same as '%s %s')\n", prog, prog, default_verb);
    if (about) printf("\n%s\n", about);
    printf("\nVerbs:\n");
    for (const CliVerb *v = verbs; v->name; v++) printf("  %-10s %s\n", v->name, v->summary);
    printf("\n'%s VERB --help' gives each verb's options. '%s --version' prints the version.\n",
           prog, prog);
    return out_status();
}

int cli_dispatch(const char *prog, const char *about, const CliVerb *verbs,
                 const char *default_verb, int argc, char **argv)
{
    const char *a = argc > 1 ? argv[1] : NULL;
    if (a && (!strcmp(a, "--help") || !strcmp(a, "-h")))
        return dispatch_help(prog, about, verbs, default_verb);
    if (a && !strcmp(a, "--version")) {
        CliSpec s = { prog, NULL, NULL, NULL, NULL, NULL, NULL };
        return cli_version(&s);
    }
    if (!a || a[0] == '-') {
        if (default_verb) {
            for (const CliVerb *v = verbs; v->name; v++)
                if (!strcmp(v->name, default_verb)) {
                    argv[0] = (char *)v->name;
                    return v->run(argc, argv);
                }
        }
        fprintf(stderr, "%s: %s\n", prog, a ? "give a verb before the options" : "no verb given");
    } else {
        for (const CliVerb *v = verbs; v->name; v++)
            if (!strcmp(v->name, a)) return v->run(argc - 1, argv + 1);
        fprintf(stderr, "%s: unknown verb '%s'\n", prog, a);
    }
    fprintf(stderr, "usage: %s VERB [options] ...  (verbs:", prog);
    for (const CliVerb *v = verbs; v->name; v++) fprintf(stderr, " %s", v->name);
    fprintf(stderr, ")\nTry '%s --help'.\n", prog);
    return CM_EUSAGE;
}
