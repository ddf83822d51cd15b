# cm-train: vectorised kernels (AVX-512 where the CPU has it) and OpenMP threads.
EXTRA_CFLAGS_trainer = -O3 -march=native -fopenmp
LDLIBS += -lgomp
