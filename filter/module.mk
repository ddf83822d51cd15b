# SPDX-License-Identifier: MIT
# cm-filter: the MinHash loop and the byte loops vectorise with -O3 for this CPU.
ifneq ($(SAN),1)
EXTRA_CFLAGS_filter = -O3 -march=native
endif
