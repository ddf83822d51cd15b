// SPDX-License-Identifier: MIT
/*
** bench.h: cm-filter --bench-stage: time one rule in-process over content already in memory
** (bench/filter.sh compares each stage with its Python peer).
*/
#ifndef CM_FILTER_BENCH_H
#define CM_FILTER_BENCH_H

#include <stddef.h>
#include "filter/rules.h" // defines: Judge

/* The stages bench_run knows, NULL-terminated: regex, heuristics, exact, near, all. */
extern const char *const bench_stages[];

/*
** Load the Python records of path ("-": stdin) and time `stage` (or every stage for "all")
** over their content, the fastest of 3 runs. Prints "stage records bytes seconds MB/s
** records/s passed" lines on stdout. Returns the exit status.
*/
int bench_run(Judge *j, const char *stage, const char *path, size_t max_line);

#endif
