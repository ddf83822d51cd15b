# SPDX-License-Identifier: MIT
# cm-train: vectorised kernels and OpenMP threads. x86-64-v3 (AVX2 + FMA) rather than
# -march=native: the elementwise kernels are memory-bound (AVX-512 gains little there; sgemm is
# OpenBLAS's, which picks AVX-512 kernels at run time), and valgrind cannot run AVX-512 code.
# -fno-trapping-math lets gcc if-convert the clamps of the exp polynomial (AVX2 has no masks);
# -fno-math-errno lets it vectorise sqrtf (AdamW, LayerNorm): nothing here reads errno.
EXTRA_CFLAGS_trainer = -O3 -march=x86-64-v3 -mtune=native -fno-trapping-math -fno-math-errno -fopenmp
LDLIBS += -lgomp
# bf16 matmuls (--precision bf16): oneDNN, linked only where used (the other stages do not load it)
LDLIBS += -Wl,--push-state,--as-needed -ldnnl -Wl,--pop-state

# Data parallelism (trainer/dist.c): with OpenMPI's mpicc installed, dist.c is compiled with
# -DCM_MPI and mpicc's include flags and cm-train alone links libmpi; without it, or with
# `make MPI=0`, dist.c is the one-rank identity and cm-train is the plain program.
MPICC ?= mpicc
ifneq ($(MPI),0)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
endif
ifneq ($(MPI_LIBS),)
$(O)/trainer/dist.o: CM_CFLAGS += -DCM_MPI $(MPI_CFLAGS)
$(O)/bin/cm-train: LDLIBS += $(MPI_LIBS)
endif
