// SPDX-License-Identifier: MIT
/*
** dist.c: cm-train's ranks over MPI, or one rank without it (see dist.h).
*/
#include "trainer/dist.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h" /* defines: cm_prog, error, now_sec, exit codes */

#ifdef CM_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 1;
static double g_comm_s = 0;
static uint64_t g_comm_bytes = 0;
static char g_lib[128] = "no MPI";
#ifdef CM_MPI
static int g_mpi = 0; /* MPI_Init was called */
static char g_prog[64];
#endif

/*
** An integer from the environment (-1 when unset or not a number).
*/
static long env_long(const char *name)
{
    const char *z = getenv(name);
    char *end;
    if (!z || !*z) return -1;
    long v = strtol(z, &end, 10);
    return *end ? -1 : v;
}

/*
** The tasks a launcher says it started (mpirun, MPICH's mpiexec, srun): when MPI does not
** join them (srun without --mpi=pmix, a build without MPI), each would train alone. 0 when
** there are not several, else their number.
*/
static long unjoined_tasks(void)
{
    long n = env_long("OMPI_COMM_WORLD_SIZE");
    if (n > 1) return n;
    if ((n = env_long("PMI_SIZE")) > 1) return n; /* MPICH's launcher, Slurm's pmi2 */
    n = env_long("SLURM_STEP_NUM_TASKS");
    return n > 1 && getenv("SLURM_PROCID") ? n : 0;
}

#ifdef CM_MPI
/*
** 1 when an MPI launcher started this process.
*/
static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

int dist_init(void)
{
#ifdef CM_MPI
    if (launched_by_mpi()) {
        int provided;
        MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_size);
        MPI_Comm local;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local);
        MPI_Comm_size(local, &g_local);
        MPI_Comm_free(&local);
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(v, &len);
        v[strcspn(v, ",\n")] = 0;
        snprintf(g_lib, sizeof g_lib, "%.100s", v);
        g_mpi = 1;
        if (g_rank > 0) {
            snprintf(g_prog, sizeof g_prog, "%s[%d]", cm_prog, g_rank);
            cm_prog = g_prog;
        }
        long want = unjoined_tasks();
        if (g_size == 1 && want > 1) {
            error("started as one of %ld tasks, but MPI sees one process: each would train "
                  "alone (under Slurm: srun --mpi=pmix)",
                  want);
            return CM_EUSAGE;
        }
        return 0;
    }
#endif
    long want = unjoined_tasks();
    if (want > 1) {
#ifdef CM_MPI
        error("started as one of %ld tasks without MPI's environment: each would train alone "
              "(under Slurm: srun --mpi=pmix)",
              want);
#else
        error("started as one of %ld tasks, but this cm-train was built without MPI: each would "
              "train alone (install libopenmpi-dev and rebuild)",
              want);
#endif
        return CM_EUSAGE;
    }
    return 0;
}

void dist_finalize(void)
{
#ifdef CM_MPI
    if (g_mpi) MPI_Finalize();
    g_mpi = 0;
#endif
}

int dist_rank(void)
{
    return g_rank;
}

int dist_size(void)
{
    return g_size;
}

int dist_local_size(void)
{
    return g_local;
}

int dist_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *dist_library(void)
{
    return g_lib;
}

void dist_abort(int status)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
    exit(status);
}

#ifdef CM_MPI
/* Largest count of one MPI call where the data may be cut into pieces. */
#define PIECE DIST_PIECE

/*
** The count of one piece as MPI's int.
*/
static int icount(size_t n)
{
    return (int)(n < PIECE ? n : PIECE);
}

/*
** The shards' counts and offsets as MPI's ints (refuses shards past INT_MAX).
*/
static void shard_table(size_t n, int **counts, int **displs)
{
    if (n > (size_t)INT_MAX) {
        error("%zu values: too many for one MPI shard table (ZeRO-1 is limited to 2^31)", n);
        dist_abort(CM_EINTERNAL);
    }
    *counts = xmalloc((size_t)g_size * sizeof(int));
    *displs = xmalloc((size_t)g_size * sizeof(int));
    for (int r = 0; r < g_size; r++) {
        size_t lo, len, save = (size_t)g_rank;
        g_rank = r; /* dist_shard reads the rank */
        dist_shard(n, &lo, &len);
        g_rank = (int)save;
        (*counts)[r] = (int)len;
        (*displs)[r] = (int)lo;
    }
}
#endif

int dist_agree(int status)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        int all = status;
        MPI_Allreduce(&status, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        return all;
    }
#endif
    return status;
}

int dist_any(int flag)
{
    return dist_agree(flag ? 1 : 0);
}

void dist_sum_floats(float *x, size_t n)
{
#ifdef CM_MPI
    if (!g_mpi || g_size == 1) return;
    double t = now_sec();
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, icount(n - i), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    g_comm_s += now_sec() - t;
    g_comm_bytes += n * sizeof(float);
#else
    (void)x;
    (void)n;
#endif
}

double dist_sum_double(double x)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        double s = 0;
        MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        return s;
    }
#endif
    return x;
}

void dist_bcast(void *p, size_t n)
{
#ifdef CM_MPI
    if (!g_mpi || g_size == 1) return;
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Bcast((char *)p + i, icount(n - i), MPI_BYTE, 0, MPI_COMM_WORLD);
#else
    (void)p;
    (void)n;
#endif
}

int dist_same_u64(uint64_t v)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        uint64_t lo = v, hi = v;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
        return lo == hi;
    }
#endif
    (void)v;
    return 1;
}

void dist_shard(size_t n, size_t *lo, size_t *len)
{
    size_t q = n / (size_t)g_size, rem = n % (size_t)g_size, r = (size_t)g_rank;
    *len = q + (r < rem);
    *lo = r * q + (r < rem ? r : rem);
}

void dist_reduce_scatter(const float *full, float *shard, size_t n)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        double t = now_sec();
        int *counts, *displs;
        shard_table(n, &counts, &displs);
        MPI_Reduce_scatter(full, shard, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        free(counts);
        free(displs);
        g_comm_s += now_sec() - t;
        g_comm_bytes += n * sizeof(float);
        return;
    }
#endif
    memcpy(shard, full, n * sizeof(float));
}

void dist_allgather(float *full, size_t n)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        double t = now_sec();
        int *counts, *displs;
        shard_table(n, &counts, &displs);
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, counts, displs, MPI_FLOAT,
                       MPI_COMM_WORLD);
        free(counts);
        free(displs);
        g_comm_s += now_sec() - t;
        g_comm_bytes += n * sizeof(float);
    }
#else
    (void)full;
    (void)n;
#endif
}

void dist_gather(const float *shard, float *full, size_t n)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        int *counts, *displs;
        shard_table(n, &counts, &displs);
        MPI_Gatherv(shard, counts[g_rank], MPI_FLOAT, full, counts, displs, MPI_FLOAT, 0,
                    MPI_COMM_WORLD);
        free(counts);
        free(displs);
        return;
    }
#endif
    if (full != shard) memcpy(full, shard, n * sizeof(float));
}

void dist_scatter(const float *full, float *shard, size_t n)
{
#ifdef CM_MPI
    if (g_mpi && g_size > 1) {
        int *counts, *displs;
        shard_table(n, &counts, &displs);
        MPI_Scatterv(full, counts, displs, MPI_FLOAT, shard, counts[g_rank], MPI_FLOAT, 0,
                     MPI_COMM_WORLD);
        free(counts);
        free(displs);
        return;
    }
#endif
    if (full != shard) memcpy(shard, full, n * sizeof(float));
}

double dist_comm_seconds(void)
{
    return g_comm_s;
}

uint64_t dist_comm_bytes(void)
{
    return g_comm_bytes;
}
