// SPDX-License-Identifier: MIT
/*
** stats.c: cm-ingest's skip reasons by name and the --stats JSON object (docs/FORMATS.md).
*/
#include "ingest.h"
#include "json.h" // defines: JsonWriter

const char *const ingest_skip_names[SKIP__N] = { "binary",         "invalid_utf8",  "symlink",
                                                 "special",        "oversized",     "excluded",
                                                 "notebook_error", "expansion_cap", "read_error",
                                                 "too_deep" };

/*
** Write the --stats JSON object (see docs/FORMATS.md).
*/
void ingest_stats_json(const IngestStats *st, double secs, Buf *out)
{
    uint64_t skipped = 0;
    for (int i = 0; i < SKIP__N; i++) skipped += st->skipped[i];
    JsonWriter w;
    jw_begin(&w, out);
    jw_u64(&w, "version", 1);
    jw_u64(&w, "inputs", st->inputs);
    jw_u64(&w, "entries_seen", st->seen);
    jw_u64(&w, "emitted", st->emitted);
    jw_u64(&w, "skipped", skipped);
    jw_object(&w, "skipped_by_reason");
    for (int i = 0; i < SKIP__N; i++) jw_u64(&w, ingest_skip_names[i], st->skipped[i]);
    jw_close(&w);
    jw_u64(&w, "utf8_repaired", st->utf8_repaired);
    jw_u64(&w, "notebooks", st->notebooks);
    jw_u64(&w, "archives", st->archives);
    jw_u64(&w, "jsonl_lines", st->jsonl_lines);
    jw_u64(&w, "bad_lines", st->bad_lines);
    jw_u64(&w, "errors", st->errors);
    jw_u64(&w, "capped_inputs", st->capped_inputs);
    jw_u64(&w, "bytes_in", st->bytes_in);
    jw_u64(&w, "content_bytes_in", st->content_in);
    jw_u64(&w, "content_bytes_out", st->content_out);
    jw_fmt(&w, "seconds", "%.3f", secs);
    jw_close(&w);
    buf_addc(out, '\n');
}
