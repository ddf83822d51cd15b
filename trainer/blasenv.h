// SPDX-License-Identifier: MIT
/*
** blasenv.h: the environment cm-train's libraries start with: which OpenBLAS kernel set runs
** (the CPU's best, detected here) and whether valgrind is in charge.
**
** OpenBLAS and libgomp read their settings in library constructors, before main(); so
** blasenv_setup() runs first in main() and, when the environment had to change, executes the
** program again with the same argv.
*/
#ifndef CM_TRAIN_BLASENV_H
#define CM_TRAIN_BLASENV_H

/* Call first in main(): Debian's OpenBLAS 0.3.21 does not recognise AVX-512 CPUs of this
** kind and falls back to its SSE3 "Prescott" kernels (10x slower). So with --blas-core auto
** (the default: the argv is scanned for --blas-core auto|env|NAME), if the CPU has AVX-512
** F/BW/DQ/VL and OPENBLAS_CORETYPE is unset or names slower kernels, set it to SkylakeX (a
** preset it overrides is kept in CM_TRAIN_BLAS_OVERRODE for the start-up line); with NAME set
** it to NAME; with env keep it. Then re-execute /proc/self/exe with the same argv once
** (CM_TRAIN_REEXEC guards against loops). OpenMP's wait policy is left to libgomp's default
** (spin briefly, then sleep): OpenBLAS runs single-threaded inside the OpenMP threads, so no
** other pool wants the cores (passive cost 10-40% of the kernels' time, DESIGN.md). Under
** valgrind nothing changes. */
void blasenv_setup(char **argv);
/* 1 when OpenBLAS core type `name` uses AVX-512 kernels (SkylakeX, Cooperlake, ...). */
int blasenv_core_is_avx512(const char *name);
/* 1 if the CPU has AVX-512 F/BW/DQ/VL (OpenBLAS's SkylakeX kernels run on it). */
int blasenv_cpu_avx512(void);
/* 1 when running under valgrind (then the kernels use one thread and no re-exec happens). */
int blasenv_under_valgrind(void);
/* OpenBLAS's kernel set name ("SkylakeX", "Prescott", ...). */
const char *blasenv_core(void);

#endif
