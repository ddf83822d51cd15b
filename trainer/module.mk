# SPDX-License-Identifier: MIT
# cm-train: vectorised kernels and OpenMP threads. x86-64-v3 (AVX2 + FMA) rather than
# -march=native: the elementwise kernels are memory-bound (AVX-512 gains little there; sgemm is
# OpenBLAS's, which picks AVX-512 kernels at run time), and valgrind cannot run AVX-512 code.
# -fno-trapping-math lets gcc if-convert the clamps of the exp polynomial (AVX2 has no masks).
EXTRA_CFLAGS_trainer = -O3 -march=x86-64-v3 -mtune=native -fno-trapping-math -fopenmp
LDLIBS += -lgomp
# bf16 matmuls (--precision bf16): oneDNN, linked only where used (the other stages do not load it)
LDLIBS += -Wl,--push-state,--as-needed -ldnnl -Wl,--pop-state
