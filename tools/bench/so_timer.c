/*
 * so_timer.c - times `forward` of a shared object built by seqc, for
 * `make bench` (tools/bench/bench.py).
 *
 *   so_timer MODEL.so WEIGHTS.safetensors DIR THREADS REPS BUDGET_S [--dump] SYM=N ...
 *
 * Like tests/torch/run_so.c it knows the model only through its descriptor
 * (dlopen + NAME_descriptor, NAME the file's base name up to the first '.').
 * It opens the model with `THREADS` threads per context (seqrt_options),
 * creates one ctx for the given dims, reads every input from DIR/NAME.bin
 * (raw little-endian, exactly the bytes of its shape) and allocates every
 * output once: nothing is allocated during the timed calls. Then it runs the
 * warm-up and timed calls of bench_common.h. With --dump it writes every
 * output of the last warm-up call to DIR/NAME.out (bench.py compares them
 * with PyTorch's before timing anything).
 *
 * Every symbol of the model must be given as SYM=N. Output: one line of
 * JSON on stdout (bench_common.h, plus "open_ms"); errors on stderr, exit 1.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../so_driver.h"
#include "bench_common.h"

enum { MAX_TENSORS = 256, MAX_SYMBOLS = 64, MAX_DIMS = 4096 };

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("so_timer: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static const seqrt_model_desc *load(const char *so_path, void **handle) {
  char err[512];
  const seqrt_model_desc *d = so_load_descriptor(so_path, handle, err, sizeof err);
  if (!d) fail("%s", err);
  return d;
}

/* The value of symbol `name` among the SYM=N arguments, or -1. */
static int64_t dim_arg(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 7; i < argc; i++)
    if (!strncmp(argv[i], name, n) && argv[i][n] == '=') return bench_int_arg(argv[i] + n + 1);
  return -1;
}

/* Bytes of a tensor with these dims, or -1 when a dim is negative. */
static int64_t tensor_bytes(const int64_t *dims, int32_t rank, int32_t dtype) {
  int64_t n = 1;
  for (int32_t k = 0; k < rank; k++) {
    if (dims[k] < 0) return -1;
    n *= dims[k];
  }
  return n * (int64_t)so_dtype_size(dtype);
}

/* A zeroed, 64-byte aligned block of at least `bytes` bytes (at least 64,
 * so an empty tensor still gets a pointer). */
static void *alloc_block(int64_t bytes) {
  size_t n = ((size_t)bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, n ? n : 64);
  if (p) memset(p, 0, n ? n : 64);
  return p;
}

/* Reads DIR/NAME.bin, which must hold exactly `bytes` bytes, into `buf`. */
static int read_input(const char *dir, const char *name, void *buf, int64_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return fail("cannot open input %s", path);
  size_t got = fread(buf, 1, (size_t)bytes, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != (size_t)bytes || extra)
    return fail("input %s: the file size differs from the %lld bytes of the input's shape", path,
                (long long)bytes);
  return 0;
}

typedef struct run {
  const seqrt_model_desc *d;
  void *ctx;
  const int64_t *call;
  void *ins[MAX_TENSORS], *outs[MAX_TENSORS];
  int64_t out_bytes[MAX_TENSORS];
  const char *dir;
} run;

static int forward(void *arg) {
  run *r = arg;
  if (r->d->entry->forward(r->ctx, r->call, (const void *const *)r->ins, r->outs))
    return fail("forward: %s", r->d->entry->last_error());
  return 0;
}

static int dump(void *arg) {
  run *r = arg;
  for (int32_t i = 0; i < r->d->n_outputs; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.out", r->dir, r->d->outputs[i].name);
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(r->outs[i], 1, (size_t)r->out_bytes[i], f) != (size_t)r->out_bytes[i];
    if (f && fclose(f)) bad = 1;
    if (bad) return fail("cannot write %s", path);
  }
  return 0;
}

/* Allocates and reads the inputs, allocates the outputs, runs the timing
 * loop and prints the result; the model and ctx are open. */
static int time_forward(run *r, const int64_t *syms, int reps, double budget, int want_dump,
                        double open_ms) {
  static int64_t dims[MAX_DIMS];
  const seqrt_model_desc *d = r->d;
  int32_t total = 0;
  for (int32_t i = 0; i < d->n_inputs; i++) total += d->inputs[i].rank;
  for (int32_t i = 0; i < d->n_params; i++) total += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; i++) total += d->outputs[i].rank;
  if (total > MAX_DIMS || d->n_inputs > MAX_TENSORS || d->n_outputs > MAX_TENSORS)
    return fail("model %s has more tensors or dims than this timer handles", d->name);
  d->dims(syms, dims);
  const int64_t *at = dims;
  int bad = 0;
  for (int32_t i = 0; i < d->n_inputs && !bad; i++) {
    int64_t bytes = tensor_bytes(at, d->inputs[i].rank, d->inputs[i].dtype);
    at += d->inputs[i].rank;
    r->ins[i] = bytes < 0 ? NULL : alloc_block(bytes);
    bad = !r->ins[i] ? fail("input %s: bad shape or out of memory", d->inputs[i].name)
                     : read_input(r->dir, d->inputs[i].name, r->ins[i], bytes);
  }
  for (int32_t i = 0; i < d->n_params; i++) at += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs && !bad; i++) {
    r->out_bytes[i] = tensor_bytes(at, d->outputs[i].rank, d->outputs[i].dtype);
    at += d->outputs[i].rank;
    r->outs[i] = r->out_bytes[i] < 0 ? NULL : alloc_block(r->out_bytes[i]);
    if (!r->outs[i]) bad = fail("output %s: bad shape or out of memory", d->outputs[i].name);
  }
  bench_times t = {.ms = malloc(sizeof(double) * (size_t)(reps ? reps : 1))};
  if (!bad && !t.ms) bad = fail("out of memory");
  if (!bad) bad = bench_loop(forward, r, reps, budget, &t, want_dump ? dump : NULL);
  if (!bad) {
    bench_print_times(&t);
    printf(", \"open_ms\": %.3f}\n", open_ms);
  }
  free(t.ms);
  for (int32_t i = 0; i < d->n_inputs; i++) free(r->ins[i]);
  for (int32_t i = 0; i < d->n_outputs; i++) free(r->outs[i]);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s MODEL.so WEIGHTS.safetensors DIR THREADS REPS BUDGET_S [--dump] SYM=N ...\n",
            argv[0]);
    return 1;
  }
  long threads = bench_int_arg(argv[4]), reps = bench_int_arg(argv[5]);
  double budget = atof(argv[6]);
  if (threads < 1 || threads > 1024 || reps < 0) return fail("bad THREADS or REPS");
  int want_dump = 0;
  for (int i = 7; i < argc; i++) want_dump |= !strcmp(argv[i], "--dump");
  void *handle;
  const seqrt_model_desc *d = load(argv[1], &handle);
  if (!d) return 1;
  if (d->n_symbols > MAX_SYMBOLS) return fail("model %s has too many dim symbols", d->name);
  int64_t syms[MAX_SYMBOLS] = {0}, call[MAX_SYMBOLS] = {0};
  for (int32_t i = 0; i < d->n_symbols; i++) {
    syms[i] = dim_arg(argc, argv, d->symbols[i]);
    if (syms[i] < 0) return fail("give the model's dim symbol %s as %s=N", d->symbols[i], d->symbols[i]);
  }
  for (int32_t i = 0; i < d->n_call_symbols; i++) call[i] = syms[d->call_symbols[i]];
  const seqrt_entry_points *e = d->entry;
  seqrt_options opt = {sizeof opt, (int)threads, 0};
  void *model = NULL, *ctx = NULL;
  int rc = 1;
  double t0 = bench_now();
  if (e->open(argv[2], &opt, &model) || e->ctx_new(model, call, &ctx)) {
    fail("%s", e->last_error());
  } else {
    run r = {.d = d, .ctx = ctx, .call = call, .dir = argv[3]};
    rc = time_forward(&r, syms, (int)reps, budget, want_dump, 1e3 * (bench_now() - t0));
  }
  e->ctx_free(ctx);
  e->close(model);
  dlclose(handle);
  return rc;
}
