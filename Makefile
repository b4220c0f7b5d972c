# seqc - see README.md. `make` builds build/seqc and build/libseqrt.a;
# `make test` installs what is missing (make deps) and runs every suite.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
LLVM_DIR := /usr/lib/llvm-19
CPPFLAGS := -D_POSIX_C_SOURCE=200809L -I. -isystem $(LLVM_DIR)/include -MMD -MP
SAN     :=
LDLIBS  := -L$(LLVM_DIR)/lib -Wl,-rpath,$(LLVM_DIR)/lib -lLLVM-19 -lyaml -lm -pthread

ifeq ($(SANITIZE),1)
  BUILD := build/asan
  SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  CPPFLAGS += -DSEQC_TEST_BUILD
endif
ifeq ($(TESTBUILD),1)
  CPPFLAGS += -DSEQC_TEST_BUILD
endif

ALL_CFLAGS := $(WARN) $(CFLAGS) $(SAN)

COMPILER_SRC := $(wildcard ir/*.c passes/*.c frontend/*.c codegen/*.c)
RUNTIME_SRC  := $(wildcard runtime/*.c)
DRIVER_SRC   := $(wildcard driver/*.c)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
UNIT_SUPPORT := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

SEQC      := $(BUILD)/seqc
LIBSEQC   := $(BUILD)/libseqc.a
LIBSEQRT  := $(BUILD)/libseqrt.a
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps test unit demo clean bench
.SECONDARY:
all: $(SEQC) $(LIBSEQRT)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The runtime goes into every generated .so: position independent, hidden,
# one section per function and object so that the link drops what a model
# does not use (--gc-sections, codegen/link.c).
$(BUILD)/obj/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -ffunction-sections -fdata-sections -c $< -o $@

# The public types of generated headers, embedded in seqc as text
# (codegen/abi.h): runtime/seqrt_types.h is their one definition.
GEN_TYPES := $(BUILD)/gen/seqrt_types_text.c
$(GEN_TYPES): runtime/seqrt_types.h
	@mkdir -p $(dir $@)
	{ echo '/* generated from runtime/seqrt_types.h by the Makefile */'; \
	  echo 'const char abi_public_types[] ='; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# Where `seqc build` finds the runtime it links into shared objects: this
# tree's headers and its uninstrumented library (also for the ASan build).
$(BUILD)/obj/codegen/link.o: CPPFLAGS += -DSEQC_RUNTIME_INCLUDE='"$(CURDIR)"' \
	-DSEQC_RUNTIME_LIB='"$(CURDIR)/build/libseqrt.a"'

$(LIBSEQC): $(call obj,$(COMPILER_SRC)) $(GEN_TYPES:.c=.o)
	@rm -f $@
	ar rcs $@ $^

$(LIBSEQRT): $(call obj,$(RUNTIME_SRC))
	@rm -f $@
	ar rcs $@ $^

$(SEQC): $(call obj,$(DRIVER_SRC)) $(LIBSEQC) $(LIBSEQRT)
	$(CC) $(ALL_CFLAGS) -o $@ $(call obj,$(DRIVER_SRC)) $(LIBSEQC) $(LIBSEQRT) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call obj,$(UNIT_SUPPORT)) $(LIBSEQC) $(LIBSEQRT)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

unit: $(UNIT_BINS) $(SEQC)

# Installs the Debian packages seqc needs when any is missing.
deps:
	@sh tools/deps.sh

# Every suite: unit tests, the same under ASan+UBSan, lit IR tests against
# the sanitized compiler. Ends with one line "N passed, N failed, N skipped".
test: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory SANITIZE=1 unit
	@sh tests/run.sh

# The main job on a bundled model: run it, then build it into a shared
# object and drive that from C: through its header (examples/elman_forward.c)
# and through its descriptor alone (examples/generic_run.c).
demo: deps
	@$(MAKE) --no-print-directory all
	$(SEQC) run models/elman.yaml --random-weights 1 --random-inputs 2 --dim T=5 --dim B=2
	@mkdir -p $(BUILD)/demo
	$(SEQC) build models/elman.yaml -o $(BUILD)/demo/elman.so
	$(CC) -std=c11 -Wall -Wextra -Werror -I$(BUILD)/demo examples/elman_forward.c \
	  $(BUILD)/demo/elman.so -Wl,-rpath,$(CURDIR)/$(BUILD)/demo -o $(BUILD)/demo/elman_forward
	$(BUILD)/demo/elman_forward models/elman.safetensors
	$(CC) -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L examples/generic_run.c -ldl \
	  -o $(BUILD)/demo/generic_run
	$(BUILD)/demo/generic_run $(BUILD)/demo/elman.so models/elman.safetensors B=2 T=6

# seqc against PyTorch and OpenBLAS (docs/performance.md; not part of
# `make test`): installs the bench-only packages (tools/deps.sh --bench), builds
# seqc, the timers and probes, and runs tools/bench/bench.py, which prints
# the report and writes it to $(BUILD)/bench/results.md. Options, e.g.
# make bench BENCH_ARGS='--reps 3 --only B1,G1' (bench.py --help).
bench: deps
	@sh tools/deps.sh --bench
	@$(MAKE) --no-print-directory all
	@mkdir -p $(BUILD)/bench
	$(CC) $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L tools/bench/so_timer.c -ldl -o $(BUILD)/bench/so_timer
	$(CC) $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -I/usr/include/$(shell $(CC) -print-multiarch)/openblas-pthread \
	  tools/bench/gemm_openblas.c -lopenblas -lm -o $(BUILD)/bench/gemm_openblas
	$(CC) $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -march=native tools/bench/probes.c -pthread \
	  -o $(BUILD)/bench/probes
	/usr/bin/python3 tools/bench/bench.py --build $(BUILD) $(BENCH_ARGS)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/asan -name '*.d' -type f 2>/dev/null)
