// SPDX-License-Identifier: MIT
/*
** ingest.h: cm-ingest's engine, split from its main() so that the unit tests reach the pieces.
**
** cm-ingest reads repository dumps (archives of any format libarchive reads, archives nested in
** archives, plain directories, JSONL dumps) and writes one JSONL record per text file.
**
**   naming.c        repo_name / path derivation, archive and JSONL names, magic sniffing, filters
**   notebook.c      .ipynb -> one Python file in the "percent" format (jansson)
**   stats.c         skip reason names, the --stats JSON object
**   walk.c          the engine; command-line inputs sniffed and dispatched; plain files
**   walk_archive.c  libarchive entries, nested archives, the expansion cap
**   walk_dir.c      directories, in sorted order
**   walk_jsonl.c    JSONL dumps, line by line
**   walk_writer.c   records (UTF-8, notebooks, our fields) and the writer thread
**   walk.h          the engine's private declarations, shared by the walk*.c files
**
** Memory bound (see --help and docs/FORMATS.md): one entry buffer of at most --max-file-size
** per nesting level, 4 x --max-file-size queued for the writer thread, a notebook conversion
** of about 4 x --max-file-size, one JSONL line of at most --max-line and its decoded fields,
** the output buffer (8 MiB), plus libarchive's decoder state per level (up to 64 MiB for an
** xz -9 stream, the zstd window for zstd). Nothing grows with the dump's size.
*/
#ifndef CM_INGEST_H
#define CM_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "io.h"

/* --- Skip reasons: every entry that is not emitted is counted under exactly one. --- */
enum {
    SKIP_BINARY,     /* a NUL byte in the content */
    SKIP_UTF8,       /* not valid UTF-8 (and --utf8=skip) */
    SKIP_SYMLINK,    /* symbolic or hard link */
    SKIP_SPECIAL,    /* device, fifo, socket */
    SKIP_OVERSIZED,  /* bigger than --max-file-size */
    SKIP_EXCLUDED,   /* --ext / --include / --exclude, or .deb control members */
    SKIP_NOTEBOOK,   /* .ipynb that is not a readable notebook, or not Python */
    SKIP_EXPANSION,  /* the entry being read when the expansion cap fired */
    SKIP_READ_ERROR, /* the entry could not be read (corrupt data, I/O error) */
    SKIP_DEPTH,      /* an archive nested deeper than --max-depth */
    SKIP__N
};

extern const char *const ingest_skip_names[SKIP__N]; /* "binary", "invalid_utf8", ... */

/* --- Options and counters --- */
typedef struct {
    uint64_t max_file;     /* --max-file-size: bytes of one file (default 1 MiB) */
    uint64_t max_line;     /* --max-line: bytes of one JSONL input line (default 64 MiB) */
    double max_ratio;      /* --max-expansion: expanded / compressed bytes per input (200) */
    uint64_t max_expanded; /* --max-expanded-size: absolute cap per input (64 GiB) */
    int max_depth;         /* --max-depth: archive nesting levels (default 4) */
    int utf8_replace;      /* --utf8=replace: repair invalid UTF-8 with U+FFFD */
    char **ext;            /* --ext: allowed extensions without dot (NULL: all) */
    char **include;        /* --include globs (NULL: all) */
    int n_include;         /* their count */
    char **exclude;        /* --exclude globs */
    int n_exclude;         /* their count */
    int no_source;         /* --no-source: do not add the "source" field */
    int instructions;      /* --instructions: JSONL records without content pass through */
    int threads;           /* --threads: 2 = a writer thread beside the reader, 1 = none */
} IngestOpts;

typedef struct {
    uint64_t inputs;           /* command-line inputs processed */
    uint64_t seen;             /* file entries seen (directories not counted) */
    uint64_t emitted;          /* records written */
    uint64_t skipped[SKIP__N]; /* by reason */
    uint64_t utf8_repaired;    /* records emitted after --utf8=replace changed them */
    uint64_t notebooks;        /* notebooks converted and emitted */
    uint64_t archives;         /* archives opened (every level) */
    uint64_t jsonl_lines;      /* JSONL input lines read */
    uint64_t bad_lines;        /* malformed JSONL lines skipped */
    uint64_t errors;           /* inputs or archives that failed part-way */
    uint64_t capped_inputs;    /* inputs abandoned by the expansion cap */
    uint64_t bytes_in;         /* bytes read from the inputs (compressed) */
    uint64_t content_in;       /* bytes of file content read (uncompressed) */
    uint64_t content_out;      /* bytes of content emitted */
} IngestStats;

typedef struct Ingest Ingest;

/* --- The engine (walk*.c; stats.c) --- */

/*
** Create an engine writing records to `out` with options `opts` (both must outlive it).
** `progress` is -1 (decide by isatty), 0 or 1.
*/
Ingest *ingest_new(const IngestOpts *opts, Out *out, int progress);

/*
** Process one command-line input: "-" (stdin), a directory, an archive, a JSONL dump or a
** plain file. Errors are reported on stderr and counted; records before a fault are kept.
** Returns 0, or 1 when some of the input was bad.
*/
int ingest_input(Ingest *g, const char *name);

/*
** Did a stop signal (lib/atomic.h: atomic_signals_init, cm_stopping) end the walk? Inputs poll
** it at safe points (between archive entries, JSONL lines, directory entries, inputs); there
** they stop, after printing "interrupted: INPUT: WHERE (records before it are complete)", and
** ingest_input returns at once from then on. The records handed to the output before the stop
** are whole; ingest_finish writes those still queued.
*/
int ingest_stopped(const Ingest *g);

const IngestStats *ingest_stats(const Ingest *g);
/* Write what is queued, stop the writer thread, end the progress line. Call before reading
** the stats or flushing the output. */
void ingest_finish(Ingest *g);
void ingest_free(Ingest *g);

/* Write the --stats JSON object for `st` (with elapsed seconds) into `out`. */
void ingest_stats_json(const IngestStats *st, double secs, Buf *out);

/* --- Naming and filtering (naming.c) --- */

/* Kinds of archive names. */
enum { NAME_PLAIN = 0, NAME_ARCHIVE = 1, NAME_DEB = 2, NAME_JSONL = 3 };

/*
** Classify a file name: NAME_DEB (.deb, .udeb), NAME_ARCHIVE (.tar, .tar.gz, .tgz, .tar.bz2,
** .tbz2, .tar.xz, .txz, .tar.zst, .tzst, .tar.lz4, .zip, .whl, .egg, .jar, .7z, .ar, .cpio,
** .iso), NAME_JSONL (.jsonl, .ndjson, .json, optionally followed by .gz .zst .xz .bz2; only
** meaningful for command-line inputs), else NAME_PLAIN.
*/
int ingest_name_kind(const char *name);

/*
** Length of `base` without its archive or compression suffixes ("x-1.0.tar.gz" -> 6).
*/
size_t ingest_strip_archive_ext(const char *base);

/*
** Does the first component of `path` look like a GitHub archive wrapper, "NAME-SHA" with a
** SHA of 7 to 40 lowercase hex digits? Returns the length of NAME (>0) or 0.
** `comp_len` receives the length of the whole first component.
*/
size_t ingest_github_wrapper(const char *path, size_t n, size_t *comp_len);

/*
** Clean an entry path in place: drop leading "./" and "/" runs, and a trailing "/".
** Returns the new start (inside p) and sets *n.
*/
const char *ingest_clean_path(const char *p, size_t *n);

/*
** Sniff the first bytes of an entry: 1 for the magic of a container format (zip, 7z, ar,
** tar "ustar" at 257), 2 for a compressed stream (xz, zstd, gzip, bzip2), else 0.
*/
int ingest_sniff_archive(const unsigned char *p, size_t n);

/* Do --ext/--include/--exclude let path[0..n) through? 1 yes, 0 no. */
int ingest_path_wanted(const IngestOpts *o, const char *path, size_t n);

/* --- Notebooks (notebook.c) --- */

/*
** Convert the notebook json[0..n) to Python in the "percent" format: each code cell starts
** with a "# %%" line; IPython magics ("%matplotlib inline", "!pip install x", "%%time") become
** comments, and a cell run by a non-Python cell magic (%%bash, %%writefile...) is commented
** whole. Appends to out. Returns the number of code cells (>= 0), or -1 with a reason in
** err[0..errlen) (not JSON, no cells, not a Python kernel).
*/
int notebook_to_py(const char *json, size_t n, Buf *out, char *err, size_t errlen);

#endif
