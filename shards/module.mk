# SPDX-License-Identifier: MIT
# cm-shards: -O3 vectorises pack's per-token loops (the vocabulary check of the stream reader,
# the uint32 -> uint16 narrowing); x86-64-v2 (SSE4.2, any x86-64 CPU since 2009) gives them
# pmaxud/packusdw. Not -march=native: the binary stays portable and valgrind can run it.
ifneq ($(SAN),1)
EXTRA_CFLAGS_shards = -O3 -march=x86-64-v2
endif
