/*
 * threads_check.c - bitwise determinism across thread counts, through the
 * descriptor of any seqc shared object: opens the model with
 * seqrt_options.num_threads = 1, 2 and 3 in turn, runs forward on the same
 * pseudo-random inputs (floats uniform in [-1, 1), inexact, so that a
 * change of summation order shows), and compares every output byte for
 * byte with the one-thread run. Before each run the output buffers are
 * filled with a different byte, so an element the run leaves unwritten
 * differs too.
 *
 *   threads_check MODEL.so WEIGHTS.safetensors SYM=N ... [--dump DIR]
 *                 [--threads N,N,...] [--int NAME=V]...
 *
 * Every symbol of the model is given as SYM=N, those bound by the weights
 * with the values the file's shapes give them (buffers are sized from
 * these values). --dump DIR also writes the inputs and the one-thread
 * outputs as DIR/NAME.bin (the raw format of `seqc run --input/--output`).
 * --threads gives the thread counts instead of 1,2,3 (the first is the
 * reference); --int fills the i32/i64 input NAME with V instead of zeros.
 * Prints "threads ok: N outputs, B bytes" or the first difference,
 * exiting 1; a failing forward prints the model's last error.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../tools/so_driver.h"

static const seqrt_model_desc *load(const char *so_path) {
  char err[512];
  const seqrt_model_desc *d = so_load_descriptor(so_path, NULL, err, sizeof err);
  if (!d) {
    printf("threads_check: %s\n", err);
    exit(1);
  }
  return d;
}

/* Bytes of a tensor of dtype dt with the given dims. */
static size_t bytes_of(int32_t dt, int32_t rank, const int64_t *dims) {
  size_t b = so_dtype_size(dt);
  for (int32_t a = 0; a < rank; a++) b *= (size_t)dims[a];
  return b;
}

/* f32 inputs uniform in [-1, 1) from a fixed LCG; other dtypes zero. */
static void fill(int32_t dt, float *p, size_t bytes, uint32_t seed) {
  if (dt != SEQRT_F32) return;
  for (size_t i = 0; i < bytes / 4; i++) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = (float)((double)(seed >> 8) / 16777216.0 * 2.0 - 1.0);
  }
}

/* An i32/i64 input filled with v. */
static void fill_int(int32_t dt, void *p, size_t bytes, int64_t v) {
  for (size_t i = 0; dt == SEQRT_I64 && i < bytes / 8; i++) ((int64_t *)p)[i] = v;
  for (size_t i = 0; dt == SEQRT_I32 && i < bytes / 4; i++) ((int32_t *)p)[i] = (int32_t)v;
}

static void dump(const char *dir, const char *name, const void *p, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) {
    printf("threads_check: cannot write %s\n", path);
    exit(1);
  }
}

/* forward with num_threads threads into outs (pre-filled with `garbage`). */
static void run(const seqrt_model_desc *d, const char *weights, int num_threads, const int64_t *call,
                const void *const *ins, void **outs, const size_t *out_bytes, int garbage) {
  const seqrt_entry_points *e = d->entry;
  seqrt_options opt = {sizeof opt, num_threads, 0};
  void *model = NULL, *ctx = NULL;
  if (e->open(weights, &opt, &model) != 0 || e->ctx_new(model, call, &ctx) != 0) {
    printf("threads_check: %d threads: %s\n", num_threads, e->last_error());
    exit(1);
  }
  for (int32_t i = 0; i < d->n_outputs; i++) memset(outs[i], garbage, out_bytes[i]);
  if (e->forward(ctx, call, ins, outs) != 0) {
    printf("threads_check: %d threads: forward: %s\n", num_threads, e->last_error());
    exit(1);
  }
  e->ctx_free(ctx);
  e->close(model);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.so WEIGHTS.safetensors SYM=N ... [--dump DIR] [--threads N,...] [--int NAME=V]\n", argv[0]);
    return 2;
  }
  const seqrt_model_desc *d = load(argv[1]);
  int64_t *syms = calloc((size_t)d->n_symbols + 1, sizeof(int64_t));
  const char *dir = NULL, *int_names[16];
  int64_t int_values[16];
  int threads[8] = {1, 2, 3}, n_threads = 3, n_ints = 0;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
      dir = argv[++i];
      continue;
    }
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      n_threads = 0;
      for (char *p = argv[++i]; *p && n_threads < 8; p += *p == ',') threads[n_threads++] = (int)strtol(p, &p, 10);
      continue;
    }
    if (!strcmp(argv[i], "--int") && i + 1 < argc && n_ints < 16 && strchr(argv[i + 1], '=')) {
      int_names[n_ints] = argv[++i];
      int_values[n_ints++] = atoll(strchr(argv[i], '=') + 1);
      continue;
    }
    const char *eq = strchr(argv[i], '=');
    int found = 0;
    for (int32_t s = 0; eq && s < d->n_symbols; s++)
      if ((size_t)(eq - argv[i]) == strlen(d->symbols[s]) && !strncmp(argv[i], d->symbols[s], (size_t)(eq - argv[i]))) {
        syms[s] = atoll(eq + 1);
        found = 1;
      }
    if (!found) {
      printf("threads_check: '%s' is not SYM=N for a symbol of %s\n", argv[i], d->name);
      return 2;
    }
  }
  int64_t total = 0, call[64];
  for (int32_t i = 0; i < d->n_inputs; i++) total += d->inputs[i].rank;
  for (int32_t i = 0; i < d->n_params; i++) total += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; i++) total += d->outputs[i].rank;
  int64_t *dims = calloc((size_t)total + 1, sizeof(int64_t));
  d->dims(syms, dims);
  for (int32_t k = 0; k < d->n_call_symbols && k < 64; k++) call[k] = syms[d->call_symbols[k]];

  const int64_t *at = dims;
  void *ins[64], *first[64], *outs[64];
  size_t out_bytes[64], all = 0;
  if (d->n_inputs > 64 || d->n_outputs > 64) return 2;
  for (int32_t i = 0; i < d->n_inputs; at += d->inputs[i].rank, i++) {
    size_t b = bytes_of(d->inputs[i].dtype, d->inputs[i].rank, at);
    ins[i] = calloc(b + 4, 1);
    fill(d->inputs[i].dtype, ins[i], b, 1234u + 77u * (uint32_t)i);
    for (int k = 0; k < n_ints; k++)
      if (!strncmp(int_names[k], d->inputs[i].name, strlen(d->inputs[i].name)) &&
          int_names[k][strlen(d->inputs[i].name)] == '=')
        fill_int(d->inputs[i].dtype, ins[i], b, int_values[k]);
    if (dir) dump(dir, d->inputs[i].name, ins[i], b);
  }
  for (int32_t i = 0; i < d->n_params; i++) at += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; at += d->outputs[i].rank, i++) {
    out_bytes[i] = bytes_of(d->outputs[i].dtype, d->outputs[i].rank, at);
    first[i] = malloc(out_bytes[i] + 1);
    outs[i] = malloc(out_bytes[i] + 1);
    all += out_bytes[i];
  }
  run(d, argv[2], threads[0], call, (const void *const *)ins, first, out_bytes, 0x11);
  for (int t = 1; t < n_threads; t++) {
    int n = threads[t];
    run(d, argv[2], n, call, (const void *const *)ins, outs, out_bytes, 0x11 * (t + 1));
    for (int32_t i = 0; i < d->n_outputs; i++) {
      int64_t k = so_first_difference(outs[i], first[i], out_bytes[i], so_dtype_size(d->outputs[i].dtype));
      if (k < 0) continue;
      printf("threads_check: %d threads: output '%s' differs from %d thread%s at element %lld", n,
             d->outputs[i].name, threads[0], threads[0] == 1 ? "" : "s", (long long)k);
      if (d->outputs[i].dtype == SEQRT_F32)
        printf(" (%.9g vs %.9g)", (double)((float *)outs[i])[k], (double)((float *)first[i])[k]);
      printf("\n");
      return 1;
    }
  }
  if (dir)
    for (int32_t i = 0; i < d->n_outputs; i++) dump(dir, d->outputs[i].name, first[i], out_bytes[i]);
  printf("threads ok: %d outputs, %zu bytes\n", (int)d->n_outputs, all);
  return 0;
}
