/*
 * run_so.c - runs a seqc shared object on inputs read from files, for the
 * PyTorch parity harness (tests/torch/parity.py).
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L tests/torch/run_so.c -o run_so -ldl
 *   run_so MODEL.so WEIGHTS.safetensors DIR [SYM=N ...]
 *
 * Like examples/generic_run.c it knows the model only through its
 * descriptor (dlopen + NAME_descriptor, NAME the file's base name up to the
 * first '.'). It reads every input from DIR/NAME.bin (raw little-endian, the
 * format of `seqc run --input`), checks each file holds exactly the bytes the
 * input's shape needs, runs forward once and writes every output to
 * DIR/NAME.out in the same format. Every symbol of the model must be given
 * as SYM=N: call symbols are passed to ctx_new and forward, and the
 * parameter symbols are needed to size the outputs (the descriptor has no
 * entry point that reports the values the weights bound).
 * Exit status: 0 on success, 1 on any error (with a message on stderr).
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The public types of every generated header (the same text seqc embeds). */
#include "../../tools/so_driver.h"

enum { MAX_TENSORS = 256, MAX_SYMBOLS = 64, MAX_DIMS = 4096 };

/* Prints "run_so: MESSAGE" to stderr; returns 1, the exit status. */
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("run_so: ", stderr);
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
  for (int i = 4; i < argc; i++) {
    if (strncmp(argv[i], name, n) || argv[i][n] != '=') continue;
    char *end;
    long long v = strtoll(argv[i] + n + 1, &end, 10);
    return (*end || v < 0) ? -1 : (int64_t)v;
  }
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

/* Reads DIR/NAME.bin, which must hold exactly `bytes` bytes, into a new
 * buffer (at least 1 byte, so an empty tensor still gets a pointer). */
static void *read_input(const char *dir, const char *name, int64_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail("cannot open input %s", path);
    return NULL;
  }
  void *buf = malloc((size_t)bytes + 1);
  size_t got = buf ? fread(buf, 1, (size_t)bytes + 1, f) : 0;
  fclose(f);
  if (!buf || got != (size_t)bytes) {
    fail("input %s: the file size differs from the %lld bytes of the input's shape", path,
         (long long)bytes);
    free(buf);
    return NULL;
  }
  return buf;
}

static int write_output(const char *dir, const char *name, const void *data, int64_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.out", dir, name);
  FILE *f = fopen(path, "wb");
  int bad = !f || fwrite(data, 1, (size_t)bytes, f) != (size_t)bytes;
  if (f && fclose(f)) bad = 1;
  return bad ? fail("cannot write %s", path) : 0;
}

/* Reads the inputs, runs forward and writes the outputs; the model and ctx
 * are open. */
static int run(const seqrt_model_desc *d, void *ctx, const int64_t *call, const int64_t *syms,
               const char *dir) {
  static int64_t dims[MAX_DIMS];
  int32_t total = 0;
  for (int32_t i = 0; i < d->n_inputs; i++) total += d->inputs[i].rank;
  for (int32_t i = 0; i < d->n_params; i++) total += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; i++) total += d->outputs[i].rank;
  if (total > MAX_DIMS || d->n_inputs > MAX_TENSORS || d->n_outputs > MAX_TENSORS)
    return fail("model %s has more tensors or dims than this runner handles", d->name);
  d->dims(syms, dims);
  void *ins[MAX_TENSORS] = {0}, *outs[MAX_TENSORS] = {0};
  int64_t out_bytes[MAX_TENSORS];
  const int64_t *at = dims;
  int bad = 0;
  for (int32_t i = 0; i < d->n_inputs; i++) {
    int64_t bytes = tensor_bytes(at, d->inputs[i].rank, d->inputs[i].dtype);
    at += d->inputs[i].rank;
    ins[i] = bytes < 0 ? NULL : read_input(dir, d->inputs[i].name, bytes);
    if (!ins[i]) bad = 1;
  }
  for (int32_t i = 0; i < d->n_params; i++) at += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; i++) {
    out_bytes[i] = tensor_bytes(at, d->outputs[i].rank, d->outputs[i].dtype);
    at += d->outputs[i].rank;
    outs[i] = out_bytes[i] < 0 ? NULL : calloc((size_t)out_bytes[i] + 1, 1);
    if (!outs[i]) bad = fail("output %s: bad shape or out of memory", d->outputs[i].name);
  }
  if (!bad && d->entry->forward(ctx, call, (const void *const *)ins, outs))
    bad = fail("forward: %s", d->entry->last_error());
  for (int32_t i = 0; !bad && i < d->n_outputs; i++)
    bad = write_output(dir, d->outputs[i].name, outs[i], out_bytes[i]);
  for (int32_t i = 0; i < d->n_inputs; i++) free(ins[i]);
  for (int32_t i = 0; i < d->n_outputs; i++) free(outs[i]);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.so WEIGHTS.safetensors DIR [SYM=N ...]\n", argv[0]);
    return 1;
  }
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
  void *model = NULL, *ctx = NULL;
  int rc = 1;
  if (e->open(argv[2], NULL, &model) || e->ctx_new(model, call, &ctx))
    fail("%s", e->last_error());
  else
    rc = run(d, ctx, call, syms, argv[3]);
  e->ctx_free(ctx);
  e->close(model);
  dlclose(handle);
  return rc;
}
