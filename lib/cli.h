// SPDX-License-Identifier: MIT
/*
** cli.h: one command-line module for every codemill executable and verb.
**
** A verb is described once, by a CliSpec: its synopsis, what it does, its options (one CliOpt
** row each: long and short name, argument, default, help line) and closing notes (memory bound,
** examples). From that one table come the getopt_long options, the --help text, the short
** usage printed on a bad command line (exit 2) and --version. Every verb also takes the common
** options -h/--help, --version, -q/--quiet, --progress and --no-progress; their values land in
** the Cli (quiet, progress) so a stage never declares them itself.
**
**   static const CliOpt opts[] = {
**       {"output", 'o', "FILE", "stdout", "write the records here", 'o'},
**       {"threads", 0, "N", "cores", "worker threads", OPT_THREADS},
**       {0}
**   };
**   static const CliSpec spec = {"cm-x", NULL, "[options] [FILE...]", "About.", NULL, opts};
**   Cli c;
**   int k, rc = CM_OK;
**   cli_init(&c, &spec, argc, argv);
**   while (rc == CM_OK && (k = cli_next(&c)) > 0) {
**       switch (k) {
**       case 'o': out = c.arg; break;
**       case OPT_THREADS: rc = cli_long(&c, 1, 256, &threads); break;
**       }
**   }
**   if (k == CLI_STOP) rc = c.status;        // --help/--version printed (0) or a usage error (2)
**   // operands: argv[c.optind .. argc)
**   cli_free(&c);
**
** Messages: "PROG VERB: what is wrong" then "usage: PROG VERB SYNOPSIS" and
** "Try 'PROG VERB --help' for the options." on stderr, exit status CM_EUSAGE (2).
*/
#ifndef CM_CLI_H
#define CM_CLI_H

#include <getopt.h>
#include <stdint.h>

/* The one version of every codemill executable (docs/FORMATS.md versions the formats apart). */
#define CM_VERSION "0.2.0"

typedef struct {
    const char *name; /* long name without "--"; NULL ends the table */
    char short_name;  /* 'o', or 0 for none */
    const char *arg;  /* NULL: a flag; else the argument's placeholder in --help ("N", "FILE") */
    const char *def;  /* the default as --help shows it, or NULL */
    const char *help; /* one line; "\n" continues it on an indented line */
    int id;           /* what cli_next returns for it: >= 1 and < CLI_ID_RESERVED */
} CliOpt;

typedef struct {
    const char *prog;     /* "cm-shards" */
    const char *verb;     /* "pack", or NULL for a program without verbs */
    const char *synopsis; /* "[options] -o DIR [STREAM|-]" */
    const char *about;    /* what the verb does, before the options (may hold newlines) */
    const char *notes;    /* after the options: memory bound, examples; or NULL */
    const CliOpt *opts;   /* the verb's own options */
    const char *(*version_extra)(void); /* more for --version (library versions), or NULL */
} CliSpec;

enum {
    CLI_STOP = -1,           /* stop: return c.status (--help/--version done, or usage error) */
    CLI_DONE = 0,            /* the options have ended: operands are argv[c.optind..argc) */
    CLI_ID_RESERVED = 0x7000 /* ids from here on are the common options' */
};

typedef struct {
    const CliSpec *spec;
    int argc;
    char **argv;
    const CliOpt *opt; /* the option cli_next returned last */
    const char *arg;   /* its argument, or NULL */
    int quiet;         /* -q/--quiet was given */
    int progress; /* -1: when stderr is a terminal (default), 0: --no-progress, 1: --progress */
    int optind;   /* after CLI_DONE: index of the first operand */
    int status;   /* after CLI_STOP: the exit status */
    struct option *lopts; /* built from spec->opts and the common options */
    char *sopts;
} Cli;

void cli_init(Cli *c, const CliSpec *spec, int argc, char **argv);
/* Next option: its id (> 0), CLI_DONE, or CLI_STOP (c->status set, message or help printed). */
int cli_next(Cli *c);
void cli_free(Cli *c);

/* Print "PROG VERB: MESSAGE" and the short usage on stderr; returns CM_EUSAGE. fmt may be NULL
** (the short usage alone). */
int cli_usage_error(const Cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a CliSpec without a parser at hand. */
int cli_spec_usage_error(const CliSpec *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The current option's argument as a value, range-checked. 0, or CM_EUSAGE after the message
** "PROG VERB: --NAME: 'ARG' is not ...". */
int cli_long(Cli *c, long lo, long hi, long *out);
int cli_int(Cli *c, int lo, int hi, int *out);
int cli_size(Cli *c, uint64_t lo, uint64_t hi, uint64_t *out); /* 64k, 10M, 2G too */
int cli_double(Cli *c, double lo, double hi, double *out);
/* One of a NULL-terminated list of words; *out is its index. */
int cli_choice(Cli *c, const char *const *words, int *out);
/* A value the stage checked itself was wrong: "--NAME: 'ARG' is not WHAT"; returns CM_EUSAGE. */
int cli_bad_value(const Cli *c, const char *what);

/* Print the whole --help text of a verb on stdout. 0, CM_EPIPE (reader gone, quiet) or
** CM_EIO (message printed). */
int cli_help(const CliSpec *s);
/* "PROG (codemill) VERSION" [extra] on stdout; same statuses as cli_help. */
int cli_version(const CliSpec *s);

/* Programs with verbs (cm-shards pack|verify|..., cm-tokenize train|encode|decode, cm-train). */
typedef struct {
    const char *name;                  /* "pack"; NULL ends the table */
    const char *summary;               /* one line for the program's --help */
    int (*run)(int argc, char **argv); /* gets argv[0] = the verb */
} CliVerb;

/* Run the verb named by argv[1]. `prog --help` lists the verbs, `prog --version` prints the
** version, no verb or an unknown one is a usage error (2). default_verb, when not NULL, is run
** when argv[1] is absent or begins with '-' (and is not --help/--version). Returns the status. */
int cli_dispatch(const char *prog, const char *about, const CliVerb *verbs,
                 const char *default_verb, int argc, char **argv);

#endif
