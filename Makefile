# SPDX-License-Identifier: MIT
# codemill: one non-recursive Makefile.  `make help` lists the targets.
#
#   make              build bin/cm-ingest bin/cm-filter bin/cm-tokenize bin/cm-shards bin/cm-train
#   make test         install missing Debian packages, build, run every test (plain and ASan+UBSan)
#   make demo         install, build, download the real data set, run the pipeline on it
#   make bench        run codemill and its peers side by side; writes docs/BENCHMARKS.md
#   make install      PREFIX=/usr/local DESTDIR=
#   V=1               show the commands
#
# Layout: lib/*.c and every non-main .c file of the stage folders go into build/libcodemill.a;
# a stage's main() lives in STAGE/cm-*.c. Optional per-folder additions go in STAGE/module.mk.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=
SAN ?=
ifeq ($(SAN),1)
O ?= build-asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT ?= -O1
else
O ?= build
SANFLAGS =
OPT ?= -O2
endif

CC ?= cc
CFLAGS ?= $(OPT) -g
CM_CFLAGS = -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Wno-unused-parameter \
            -Wshadow -Wvla -Ilib -I. -pthread -MMD -MP $(SANFLAGS)
LDFLAGS ?=
LDLIBS = -larchive -lzstd -lpcre2-8 -lsqlite3 -lopenblas -lxxhash -ljansson -lm -lpthread
TEST_LDLIBS = -lcmocka

ifeq ($(V),1)
Q =
else
Q = @
endif

# STAGES may be narrowed to build a part (e.g. `make O=build-ingest STAGES=ingest`); a stage
# brings the stages whose library it uses (docs/DESIGN.md "Which stage uses which"):
# cm-shards uses tokenize/bpe.h, cm-train uses shards/corpus.h and tokenize/bpe.h.
STAGES ?= ingest filter tokenize shards trainer
USES_shards = tokenize
USES_trainer = shards tokenize
override STAGES := $(sort $(STAGES) $(foreach s,$(STAGES),$(USES_$(s))))
PROGS = cm-ingest cm-filter cm-tokenize cm-shards cm-train
MAIN_SRCS = $(foreach s,$(STAGES),$(wildcard $(s)/cm-*.c))
LIB_SRCS = $(wildcard lib/*.c) \
           $(filter-out $(MAIN_SRCS), $(foreach s,$(STAGES),$(wildcard $(s)/*.c)))
LIB_OBJS = $(LIB_SRCS:%.c=$(O)/%.o)
LIBCM = $(O)/libcodemill.a
BINS = $(addprefix $(O)/bin/,$(notdir $(basename $(MAIN_SRCS))))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
ifneq ($(TESTS_ONLY),)
UNIT_SRCS := $(filter $(addprefix tests/unit/,$(TESTS_ONLY)),$(UNIT_SRCS))
endif
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
TEST_HELPER_SRCS = $(wildcard tests/helpers/*.c)
TEST_HELPER_BINS = $(TEST_HELPER_SRCS:tests/helpers/%.c=$(O)/tests/%)

-include $(wildcard $(addsuffix /module.mk,$(STAGES)))

# lib/: -O3 vectorises the token stream's vocabulary check and the UTF-8 scans; x86-64-v2
# (SSE4.2, any x86-64 CPU since 2009) keeps the binaries portable and valgrind-friendly.
ifneq ($(SAN),1)
EXTRA_CFLAGS_lib = -O3 -march=x86-64-v2
endif

.PHONY: all help deps test test-quick unit demo bench install uninstall clean fuzz check-valgrind \
        format format-check
## all: build every executable into bin/
all: $(BINS) $(if $(filter build,$(O)),bin-links)

bin-links: $(BINS)
	$(Q)mkdir -p bin
	$(Q)for b in $(BINS); do ln -sf ../$$b bin/; done

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CM_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS_$(firstword $(subst /, ,$<))) -c $< -o $@

$(LIBCM): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/bin/cm-ingest: $(O)/ingest/cm-ingest.o $(LIBCM)
$(O)/bin/cm-filter: $(O)/filter/cm-filter.o $(LIBCM)
$(O)/bin/cm-tokenize: $(O)/tokenize/cm-tokenize.o $(LIBCM)
$(O)/bin/cm-shards: $(O)/shards/cm-shards.o $(LIBCM)
$(O)/bin/cm-train: $(O)/trainer/cm-train.o $(LIBCM)
$(BINS):
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/%: tests/unit/%.c $(LIBCM)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

$(O)/tests/%: tests/helpers/%.c $(LIBCM)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

## tests: build the unit tests and test helpers
tests: $(UNIT_BINS) $(TEST_HELPER_BINS)

## deps: install the Debian packages codemill needs (only those missing)
deps:
	$(Q)sh tools/deps.sh build

## test: install what is missing, build, run all tests plainly and under ASan+UBSan
test: deps
	$(Q)$(MAKE) --no-print-directory format-check
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)$(MAKE) --no-print-directory SAN=1 all tests
	$(Q)sh tests/run.sh build build-asan

## test-quick: the plain build's tests only (no sanitizers)
test-quick: all tests
	$(Q)sh tests/run.sh build

## demo: the main job end to end on the default real data set
demo: deps all
	$(Q)sh tools/demo.sh

## bench: codemill against its peers, side by side; updates docs/BENCHMARKS.md
bench: deps all
	$(Q)sh tools/deps.sh bench
	$(Q)sh tools/bench.sh

## fuzz: build the libFuzzer targets (clang, ASan+UBSan) and run each for FUZZ_SECONDS (default 300)
fuzz: deps
	$(Q)sh tools/fuzz.sh run $${FUZZ_SECONDS:-300}

## check-valgrind: run the test suite's executables under valgrind memcheck
check-valgrind: deps all tests
	$(Q)sh tools/check-valgrind.sh

## format-check: every C file laid out as .clang-format says (run by make test)
FORMAT_SRCS = $(sort $(wildcard lib/*.[ch] ingest/*.[ch] filter/*.[ch] tokenize/*.[ch] \
              shards/*.[ch] trainer/*.[ch] tests/unit/*.c tests/helpers/*.c tests/fuzz/*.[ch]))
format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS) || \
	    { echo "format-check: run 'make format' (clang-format -i) and commit" >&2; exit 1; }

## format: lay out every C file with clang-format
format:
	$(Q)clang-format -i $(FORMAT_SRCS)

## install: copy the executables to $(DESTDIR)$(BINDIR)
install: all
	$(Q)mkdir -p $(DESTDIR)$(BINDIR)
	$(Q)for b in $(BINS); do install -m 0755 $$b $(DESTDIR)$(BINDIR)/; done

uninstall:
	$(Q)for p in $(PROGS); do rm -f $(DESTDIR)$(BINDIR)/$$p; done

## clean: remove build outputs
clean:
	$(Q)rm -rf build build-asan build-fuzz bin

## help: list the targets
help:
	@sed -n 's/^## //p' Makefile

-include $(LIB_OBJS:.o=.d) $(MAIN_SRCS:%.c=$(O)/%.d)
