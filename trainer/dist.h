// SPDX-License-Identifier: MIT
/*
** dist.h: the processes of a data-parallel cm-train run (MPI), behind a few calls.
**
** Built with -DCM_MPI (trainer/module.mk does so when OpenMPI's mpicc is installed) and started
** by an MPI launcher (mpirun, or srun --mpi=pmix: its environment says so), dist_init() calls
** MPI_Init and the run has dist_size() ranks. Otherwise (no MPI in the build, or a plain
** `cm-train` command) there is one rank and every call below is the identity: nothing is sent,
** nothing is changed. A launch with one rank behaves the same way.
**
** Errors: MPI_ERRORS_ARE_FATAL on MPI_COMM_WORLD, so a failed transfer ends the job (mpirun
** then kills every rank and names the one that died); dist_abort() ends the job on purpose.
** Collectives are called by every rank in the same order; dist_sum_floats and dist_bcast send
** in pieces of DIST_PIECE values; the shard transfers take one piece (zero.c cuts its tensors
** so) and refuse more than INT_MAX values.
*/
#ifndef CM_TRAIN_DIST_H
#define CM_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Start: MPI_Init when an MPI launcher started this process (the environment has
** OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK), else one rank. Sets the program name of error
** messages to "cm-train[R]" on ranks R > 0. 0, or the exit status after a message (a launcher
** that started several tasks that MPI cannot join, e.g. srun without --mpi=pmix). */
int dist_init(void);
/* MPI_Finalize (when dist_init started MPI). */
void dist_finalize(void);
/* This rank (0 ..) and the number of ranks (1 without MPI). */
int dist_rank(void);
int dist_size(void);
/* Ranks on this host and the CPUs this process may run on (its affinity mask): for the
** default thread count of a rank. */
int dist_local_size(void);
int dist_cpus(void);
/* A word for the start-up line: "OpenMPI 4.1.4" (the library's version string, first line). */
const char *dist_library(void);
/* End the whole job with status (MPI_Abort; exit(status) with one rank). */
void dist_abort(int status) __attribute__((noreturn));

/* The largest status of all ranks (each rank's 0 or exit status): every rank learns that one
** failed, so that none waits for it in a later collective. */
int dist_agree(int status);
/* 1 on every rank when flag is nonzero on any. */
int dist_any(int flag);
/* Sum over the ranks, the result on every rank: x[0..n) in place, and one double. */
void dist_sum_floats(float *x, size_t n);
double dist_sum_double(double x);
/* Rank 0's bytes p[0..n) to every rank. */
void dist_bcast(void *p, size_t n);
/* Whether a 64-bit value is the same on every rank (a consistency check). */
int dist_same_u64(uint64_t v);

/* Values per MPI call in the sums and shard transfers (16 MiB of floats): the collectives'
** own temporary buffers (OpenMPI's ring algorithms allocate a share of the message) stay
** bounded by it rather than by the model. */
#define DIST_PIECE ((size_t)1 << 22)

/* ZeRO-1: the n values of a flat tensor split into dist_size() contiguous shards, the first
** n % size one longer; this rank's shard is [*lo, *lo + *len). */
void dist_shard(size_t n, size_t *lo, size_t *len);
/* shard = this rank's shard of the sum of every rank's full[0..n). */
void dist_reduce_scatter(const float *full, float *shard, size_t n);
/* Every rank's shard of full[0..n) (in place) to every rank. */
void dist_allgather(float *full, size_t n);
/* Every rank's shard to rank 0's full[0..n) (full is read only on rank 0). */
void dist_gather(const float *shard, float *full, size_t n);
/* Rank 0's full[0..n) split into the ranks' shards. */
void dist_scatter(const float *full, float *shard, size_t n);

/* Seconds spent in the calls above since the start (for --profile), and their bytes sent as
** the collectives' payload (each rank's buffer size: n floats for a sum of n floats). */
double dist_comm_seconds(void);
uint64_t dist_comm_bytes(void);

#endif
