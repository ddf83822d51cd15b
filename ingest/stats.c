// SPDX-License-Identifier: MIT
/*
** stats.c: cm-ingest's skip reasons by name and the --stats JSON object (docs/FORMATS.md).
*/
#include "ingest.h"

const char *const ingest_skip_names[SKIP__N] = {
    "binary", "invalid_utf8", "symlink", "special", "oversized", "excluded",
    "notebook_error", "expansion_cap", "read_error", "too_deep"
};

/*
** Write the --stats JSON object (see docs/FORMATS.md).
*/
void ingest_stats_json(const IngestStats *st, double secs, Buf *out)
{
    uint64_t skipped = 0;
    for (int i = 0; i < SKIP__N; i++) skipped += st->skipped[i];
    buf_addf(out, "{\"version\":1,\"inputs\":%llu,\"entries_seen\":%llu,\"emitted\":%llu,"
             "\"skipped\":%llu,\"skipped_by_reason\":{",
             (unsigned long long)st->inputs, (unsigned long long)st->seen,
             (unsigned long long)st->emitted, (unsigned long long)skipped);
    for (int i = 0; i < SKIP__N; i++)
        buf_addf(out, "%s\"%s\":%llu", i ? "," : "", ingest_skip_names[i],
                 (unsigned long long)st->skipped[i]);
    buf_addf(out, "},\"utf8_repaired\":%llu,\"notebooks\":%llu,\"archives\":%llu,"
             "\"jsonl_lines\":%llu,\"bad_lines\":%llu,\"errors\":%llu,\"capped_inputs\":%llu,"
             "\"bytes_in\":%llu,\"content_bytes_in\":%llu,\"content_bytes_out\":%llu,"
             "\"seconds\":%.3f}\n",
             (unsigned long long)st->utf8_repaired, (unsigned long long)st->notebooks,
             (unsigned long long)st->archives, (unsigned long long)st->jsonl_lines,
             (unsigned long long)st->bad_lines, (unsigned long long)st->errors,
             (unsigned long long)st->capped_inputs,
             (unsigned long long)st->bytes_in, (unsigned long long)st->content_in,
             (unsigned long long)st->content_out, secs);
}
