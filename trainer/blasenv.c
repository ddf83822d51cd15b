// SPDX-License-Identifier: MIT
/*
** blasenv.c: OpenBLAS kernel choice, OpenMP wait policy and the re-execution that applies
** them, CPU and valgrind detection (see blasenv.h).
*/
#include "trainer/blasenv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char *openblas_get_corename(void);

/*
** 1 if the CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use.
*/
int blasenv_cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

/*
** 1 when running under valgrind (its preload library is in LD_PRELOAD, or /proc/self/exe is
** the valgrind tool).
*/
int blasenv_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    return (pre && strstr(pre, "vgpreload")) || strstr(exe, "valgrind") != NULL;
}

/*
** The value of --blas-core in argv ("auto" when absent): read before main's parser, since
** the libraries start before main().
*/
static const char *blas_core_wanted(char **argv)
{
    const char *want = "auto";
    for (int i = 1; argv[i]; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--blas-core") && argv[i + 1])
            want = argv[i + 1];
        else if (!strncmp(argv[i], "--blas-core=", 12))
            want = argv[i] + 12;
    }
    return want;
}

/*
** See blasenv.h.
*/
void blasenv_setup(char **argv)
{
    if (getenv("CM_TRAIN_REEXEC")) return;
    /* under valgrind /proc/self/exe is the tool, not this program: change nothing */
    if (blasenv_under_valgrind()) return;
    const char *want = blas_core_wanted(argv);
    int changed = 0;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (!strcmp(want, "auto")) {
        /* this CPU's best kernels, also over a preset naming slower ones (a machine-wide
        ** OPENBLAS_CORETYPE=Haswell costs 2-10x here); `--blas-core env` keeps the preset */
        if (blasenv_cpu_avx512() && (!ct || !blasenv_core_is_avx512(ct))) {
            if (ct) setenv("CM_TRAIN_BLAS_OVERRODE", ct, 1);
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
            changed = 1;
        }
    } else if (strcmp(want, "env") != 0 && (!ct || strcmp(ct, want) != 0)) {
        setenv("OPENBLAS_CORETYPE", want, 1);
        changed = 1;
    }
    setenv("CM_TRAIN_REEXEC", "1", 1);
    if (changed) execv("/proc/self/exe", argv); /* returns only on failure: go on as is */
}

/*
** 1 when OpenBLAS core type `name` uses AVX-512 kernels.
*/
int blasenv_core_is_avx512(const char *name)
{
    return !strcasecmp(name, "SkylakeX") || !strcasecmp(name, "Cooperlake") ||
        !strcasecmp(name, "SapphireRapids");
}

/*
** Name of the kernel set OpenBLAS selected.
*/
const char *blasenv_core(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}
