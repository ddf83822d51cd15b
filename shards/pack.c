// SPDX-License-Identifier: MIT
/*
** pack.c: `cm-shards pack` -- token stream in, shard files and index.sqlite out: pack_run and
** its main loop. The crash-safety protocol, the memory bound and the threads are described in
** pack.h; the directory and index in pack_open.c, the rows in pack_meta.c, the shard files in
** pack_shard.c and the index thread in pack_index.c.
*/
#include "pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h" // defines: cm_stopping

/*
** Start: the shard writer, the stream header, the corpus directory and index, the documents a
** resumed corpus already holds skipped, the index thread. Returns 0, -1 when there is nothing
** to do, or an exit status.
*/
static int pack_start(Packer *p)
{
    /* SQLite's memory statistics take a global mutex on every allocation; cm-shards never
    ** reads them. Only possible before SQLite is initialised (else SQLITE_MISUSE: ignored). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    p->sw = sw_new(sw_direct_wanted() && !getenv("CM_SHARDS_BUFFERED"));
    if (!p->sw) {
        error("cannot start the shard writer: %s", strerror(errno));
        return CM_EINTERNAL;
    }
    p->ts_open = 1; /* ts_close is needed even when ts_open fails */
    if (ts_open(&p->ts, p->o->fd, p->o->input)) {
        error("%s", p->ts.err);
        return CM_EDATA;
    }
    int rc = pack_open(p);
    if (!rc) rc = pack_skip_done(p);
    if (rc) return rc;
    if (pthread_create(&p->th, NULL, pack_index_thread, p)) {
        error("cannot start the index thread: %s", strerror(errno));
        return CM_EINTERNAL;
    }
    p->th_started = 1;
    pthread_setname_np(p->th, "cm-shards-index");
    return 0;
}

/*
** Read documents into shards until the input ends (*input_ok), a stop signal, or a fault.
** Returns 0; CM_EDATA for bad input (what was read before is kept); or another exit status
** for a fault that ends the pack at once.
*/
static int pack_loop(Packer *p, int *input_ok)
{
    progress_init(&p->prog, p->o->progress);
    while (!cm_stopping()) {
        TsDoc d;
        const unsigned char *ids;
        int r = ts_next_raw(&p->ts, &d, &ids);
        if (r == 0) {
            *input_ok = 1;
            return CM_OK;
        }
        if (r < 0) {
            error("%s", p->ts.err);
            return CM_EDATA;
        }
        PackShard *b = p->cur;
        if (p->open && p->tokens > 0 &&
            (p->tokens + d.n > p->shard_tokens ||
             b->arena.len + b->nrows * sizeof(DocRow) >= PACK_MAX_ROW_BYTES)) {
            int rc = pack_shard_finish(p);
            if (rc) return rc;
        }
        if (!p->open) pack_shard_begin(p);
        if (pack_add_row(p, &d)) return CM_EDATA;
        if (pack_shard_write(p, ids, d.n)) return CM_EIO;
        p->next_doc++;
        if ((p->next_doc & 1023) == 0)
            progress_update(&p->prog, "%llu documents, %llu shards",
                            (unsigned long long)p->next_doc, (unsigned long long)p->shard_id);
    }
    return CM_OK;
}

/*
** Keep what was read completely (the current shard holds only whole documents): finish it,
** let the index thread commit, finalize the index, and say how it ended. rc: the loop's
** status. Returns the exit status.
*/
static int pack_keep(Packer *p, int rc, int input_ok)
{
    const PackOpts *o = p->o;
    int frc = pack_shard_finish(p);
    if (!frc) frc = pack_stop_thread(p);
    if (frc) return frc;
    progress_end(&p->prog);
    if (pack_finalize_index(p, input_ok && !cm_stopping())) return CM_EIO;
    if (getenv("CM_SHARDS_TIMING"))
        fprintf(stderr,
                "%s: timing: %.3f s shard sync, %.3f s row inserts (%.3f s CPU), "
                "%.3f s path index (%.3f s CPU), %.3f s CPU in the main thread (index "
                "included), %.3f s waiting for the index thread\n",
                cm_prog, p->t_sync, p->t_insert, p->c_insert, p->t_final, p->c_final,
                pack_thread_cpu_sec(), p->t_wait);
    if (cm_stopping()) {
        error("interrupted: %llu documents packed in %s; run 'cm-shards pack --resume' with the "
              "same input to finish",
              (unsigned long long)p->next_doc, o->dir);
        return CM_EINTR;
    }
    if (rc == CM_EDATA) {
        error("kept the %llu complete documents before the fault in %s ('pack --resume' with a "
              "complete input finishes the job)",
              (unsigned long long)p->next_doc, o->dir);
    } else if (p->prog.on && !o->quiet) {
        fprintf(stderr, "%s: packed %llu documents, %llu tokens into %llu shards in %s\n", cm_prog,
                (unsigned long long)p->docs_done, (unsigned long long)p->tokens_done,
                (unsigned long long)p->shard_id, o->dir);
    }
    return rc;
}

/*
** Stop the threads, remove a shard left part-written, free everything.
*/
static void pack_cleanup(Packer *p)
{
    pack_stop_thread(p);
    if (p->open) { /* a failure part way through a shard */
        sw_abort(p->sw);
        pack_shard_drop_tmp(p->cur);
    }
    sw_free(p->sw);
    sqlite3_finalize(p->ins_doc);
    sqlite3_finalize(p->ins_docs);
    sqlite3_finalize(p->ins_imp);
    sqlite3_finalize(p->ins_imps);
    sqlite3_finalize(p->ins_shard);
    if (p->db) sqlite3_close(p->db);
    if (p->ts_open) ts_close(&p->ts);
    free(p->ipath);
    for (int i = 0; i < 2; i++) {
        free(p->bt[i].rows);
        buf_free(&p->bt[i].arena);
    }
    buf_free(&p->dec);
    buf_free(&p->wdec);
    json_obj_free(&p->obj);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

int pack_run(const PackOpts *o)
{
    Packer pk, *p = &pk;
    memset(p, 0, sizeof *p);
    p->o = o;
    for (int i = 0; i < 2; i++) p->bt[i].fd = p->bt[i].tmp_slot = -1;
    p->cur = &p->bt[0];
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = pack_start(p), input_ok = 0;
    if (rc == -1) {
        rc = CM_OK; /* a resumed corpus already complete */
    } else if (rc == 0) {
        rc = pack_loop(p, &input_ok);
        if (rc == CM_OK || rc == CM_EDATA) rc = pack_keep(p, rc, input_ok);
    }
    pack_cleanup(p);
    return rc;
}
