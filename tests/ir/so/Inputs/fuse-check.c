/*
 * fuse-check.c - runs builds of one model (a seqc shared object each, for
 * instance with and without the fuse pass) on the same pseudo-random
 * weights and inputs with 1, 2 and 3 threads, and checks that every run
 * gives the bytes of the first build's 1-thread run.
 *
 *   fuse-check A.so [B.so ...] SYM=N ... [NAME<N ...] [--dump DIR] [--weights-out FILE]
 *
 * Each build is dlopened from its own path (same base name: the
 * descriptor is NAME_descriptor) and must have the same inputs, outputs
 * and parameters. Every symbol of the model is given as SYM=N (those bound
 * by parameter shapes too: the weights are made here, in memory, from the
 * descriptor's parameter shapes, and opened with open_memory). Weights are
 * uniform in [-0.25, 0.25), float inputs in [-1, 1) (f16 and bf16 rounded
 * from the f32 value), integer inputs in [0, 2) or [0, N) for an input
 * given as NAME<N, bools 0 or 1. Floats are inexact (24 random bits), so
 * a change in rounding shows. Output buffers are pre-filled with a
 * different byte for each run, so that an element left unwritten differs
 * too.
 *
 * --dump DIR writes every input and the reference outputs as DIR/NAME.bin
 * (the raw format of `seqc run --input/--output`), --weights-out FILE the
 * weights (for `seqc run --weights`). Prints "fuse-check ok: M builds,
 * N outputs, B bytes" or the first difference, exiting 1.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../tools/so_driver.h"

enum { MAX_TENSORS = 256 };

static const char *const st_dtypes[] = {"F32", "F64", "F16", "BF16", "I32", "I64", "BOOL"};

static void die(const char *what) {
  printf("fuse-check: %s\n", what);
  exit(1);
}

static const seqrt_model_desc *load(const char *so_path) {
  char err[512];
  const seqrt_model_desc *d = so_load_descriptor(so_path, NULL, err, sizeof err);
  if (!d) die(err);
  return d;
}

static size_t count_of(int32_t rank, const int64_t *dims) {
  size_t n = 1;
  for (int32_t a = 0; a < rank; a++) n *= (size_t)dims[a];
  return n;
}

static uint32_t next(uint32_t *seed) {
  *seed = *seed * 1664525u + 1013904223u;
  return *seed >> 8; /* 24 bits */
}

/* IEEE half bits of f (round to nearest even), for |f| < 65504. */
static uint16_t half_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a < 0x38800000u) { /* subnormal half (or zero): round f * 2^24 */
    float m;
    memcpy(&m, &a, 4);
    float scaled = m * 16777216.0f;
    uint32_t q = (uint32_t)scaled;
    float rest = scaled - (float)q;
    if (rest > 0.5f || (rest == 0.5f && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t mant = a & 0x7fffffu, exp = (a >> 23) - 112u;
  uint32_t h = (exp << 10) | (mant >> 13), dropped = mant & 0x1fffu;
  if (dropped > 0x1000u || (dropped == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

/* n elements of dtype dt: floats uniform in [-scale, scale), integers in
 * [0, range), bools 0 or 1. */
static void fill(int32_t dt, void *p, size_t n, uint32_t seed, double scale, int64_t range) {
  for (size_t i = 0; i < n; i++) {
    double u = (double)next(&seed) / 16777216.0;
    float f = (float)((u * 2.0 - 1.0) * scale);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    switch (dt) {
    case SEQRT_F32: ((float *)p)[i] = f; break;
    case SEQRT_F64: ((double *)p)[i] = (u * 2.0 - 1.0) * scale; break;
    case SEQRT_F16: ((uint16_t *)p)[i] = half_bits(f); break;
    case SEQRT_BF16: ((uint16_t *)p)[i] = (uint16_t)(bits >> 16); break;
    case SEQRT_I32: ((int32_t *)p)[i] = (int32_t)(u * (double)range); break;
    case SEQRT_I64: ((int64_t *)p)[i] = (int64_t)(u * (double)range); break;
    case SEQRT_BOOL: ((uint8_t *)p)[i] = u >= 0.5; break;
    default: die("bad dtype");
    }
  }
}

/* A safetensors file in memory holding every parameter (dims from `at`). */
static void *make_weights(const seqrt_model_desc *d, const int64_t *at, size_t *size) {
  size_t cap = 4096 + (size_t)d->n_params * 512, len = 0, data = 0;
  char *header = malloc(cap);
  len += (size_t)snprintf(header + len, cap - len, "{");
  for (int32_t i = 0; i < d->n_params; at += d->params[i].rank, i++) {
    const seqrt_tensor_desc *t = &d->params[i];
    size_t bytes = count_of(t->rank, at) * so_dtype_size(t->dtype);
    len += (size_t)snprintf(header + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                            t->name, st_dtypes[t->dtype]);
    for (int32_t a = 0; a < t->rank; a++)
      len += (size_t)snprintf(header + len, cap - len, "%s%lld", a ? "," : "", (long long)at[a]);
    len += (size_t)snprintf(header + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", data, data + bytes);
    data += bytes;
    if (len + 512 > cap) die("header too long");
  }
  len += (size_t)snprintf(header + len, cap - len, "}");
  while (len % 8) header[len++] = ' ';
  unsigned char *file = calloc(8 + len + data + 1, 1);
  for (int b = 0; b < 8; b++) file[b] = (unsigned char)((uint64_t)len >> (8 * b));
  memcpy(file + 8, header, len);
  free(header);
  *size = 8 + len + data;
  return file;
}

/* Fills the data part of the weights file (params' dims from `at`). */
static void fill_weights(const seqrt_model_desc *d, const int64_t *at, unsigned char *file) {
  uint64_t hlen = 0;
  for (int b = 0; b < 8; b++) hlen |= (uint64_t)file[b] << (8 * b);
  unsigned char *p = file + 8 + hlen;
  for (int32_t i = 0; i < d->n_params; at += d->params[i].rank, i++) {
    size_t n = count_of(d->params[i].rank, at);
    fill(d->params[i].dtype, p, n, 999u + 31u * (uint32_t)i, 0.25, 2);
    p += n * so_dtype_size(d->params[i].dtype);
  }
}

static void dump(const char *dir, const char *name, const void *p, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) die("cannot write a dump");
}

typedef struct run_args {
  const seqrt_model_desc *d;
  const void *weights;
  size_t weights_size;
  const int64_t *call;
  const void *const *ins;
  void **outs;
  const size_t *out_bytes;
} run_args;

static void run(const run_args *r, int num_threads, int garbage) {
  const seqrt_entry_points *e = r->d->entry;
  seqrt_options opt = {sizeof opt, num_threads, 0};
  void *model = NULL, *ctx = NULL;
  if (e->open_memory(r->weights, r->weights_size, &opt, &model) != 0 || e->ctx_new(model, r->call, &ctx) != 0) {
    printf("fuse-check: %d threads: %s\n", num_threads, e->last_error());
    exit(1);
  }
  for (int32_t i = 0; i < r->d->n_outputs; i++) memset(r->outs[i], garbage, r->out_bytes[i]);
  if (e->forward(ctx, r->call, r->ins, r->outs) != 0) {
    printf("fuse-check: %d threads: forward: %s\n", num_threads, e->last_error());
    exit(1);
  }
  e->ctx_free(ctx);
  e->close(model);
}

/* The index of the symbol named by arg up to `end`, or -1. */
static int32_t symbol_of(const seqrt_model_desc *d, const char *arg, const char *end) {
  for (int32_t s = 0; s < d->n_symbols; s++)
    if ((size_t)(end - arg) == strlen(d->symbols[s]) && !strncmp(arg, d->symbols[s], (size_t)(end - arg))) return s;
  return -1;
}

/* The range of integer input `name` (NAME<N among the arguments), else 2. */
static int64_t range_of(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 1; i < argc; i++)
    if (!strncmp(argv[i], name, n) && argv[i][n] == '<') return atoll(argv[i] + n + 1);
  return 2;
}

/* Whether b has a's inputs, parameters and outputs. */
static int same_signature(const seqrt_model_desc *a, const seqrt_model_desc *b) {
  if (a->n_inputs != b->n_inputs || a->n_params != b->n_params || a->n_outputs != b->n_outputs ||
      a->n_symbols != b->n_symbols)
    return 0;
  for (int k = 0; k < 3; k++) {
    const seqrt_tensor_desc *x = k == 0 ? a->inputs : k == 1 ? a->params : a->outputs;
    const seqrt_tensor_desc *y = k == 0 ? b->inputs : k == 1 ? b->params : b->outputs;
    int32_t n = k == 0 ? a->n_inputs : k == 1 ? a->n_params : a->n_outputs;
    for (int32_t i = 0; i < n; i++)
      if (strcmp(x[i].name, y[i].name) || x[i].dtype != y[i].dtype || x[i].rank != y[i].rank) return 0;
  }
  return 1;
}

static int is_model(const char *arg) {
  size_t n = strlen(arg);
  return n > 3 && !strcmp(arg + n - 3, ".so");
}

int main(int argc, char **argv) {
  if (argc < 2 || !is_model(argv[1])) {
    fprintf(stderr, "usage: %s A.so [B.so ...] SYM=N ... [NAME<N ...] [--dump DIR] [--weights-out FILE]\n", argv[0]);
    return 2;
  }
  const seqrt_model_desc *models[8];
  const char *paths[8];
  int n_models = 0;
  for (int i = 1; i < argc && is_model(argv[i]) && n_models < 8; i++) {
    paths[n_models] = argv[i];
    models[n_models] = load(argv[i]);
    if (!same_signature(models[0], models[n_models])) die("the builds differ in inputs, parameters or outputs");
    n_models++;
  }
  const seqrt_model_desc *d = models[0];
  if (d->n_inputs > MAX_TENSORS || d->n_outputs > MAX_TENSORS || d->n_call_symbols > 64) die("too many tensors");
  int64_t *syms = calloc((size_t)d->n_symbols + 1, sizeof(int64_t));
  const char *dir = NULL, *weights_out = NULL;
  for (int i = 1 + n_models; i < argc; i++) {
    if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
      dir = argv[++i];
      continue;
    }
    if (!strcmp(argv[i], "--weights-out") && i + 1 < argc) {
      weights_out = argv[++i];
      continue;
    }
    if (strchr(argv[i], '<')) continue;
    const char *eq = strchr(argv[i], '=');
    int32_t s = eq ? symbol_of(d, argv[i], eq) : -1;
    if (s < 0) {
      printf("fuse-check: '%s' is not SYM=N for a symbol of %s\n", argv[i], d->name);
      return 2;
    }
    syms[s] = atoll(eq + 1);
  }
  int64_t total = 0, call[64];
  for (int32_t i = 0; i < d->n_inputs; i++) total += d->inputs[i].rank;
  for (int32_t i = 0; i < d->n_params; i++) total += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; i++) total += d->outputs[i].rank;
  int64_t *dims = calloc((size_t)total + 1, sizeof(int64_t));
  d->dims(syms, dims);
  for (int32_t k = 0; k < d->n_call_symbols; k++) call[k] = syms[d->call_symbols[k]];

  const int64_t *at = dims;
  void *ins[MAX_TENSORS], *first[MAX_TENSORS], *outs[MAX_TENSORS];
  size_t out_bytes[MAX_TENSORS], all = 0;
  for (int32_t i = 0; i < d->n_inputs; at += d->inputs[i].rank, i++) {
    size_t n = count_of(d->inputs[i].rank, at), b = n * so_dtype_size(d->inputs[i].dtype);
    ins[i] = calloc(b + 8, 1);
    fill(d->inputs[i].dtype, ins[i], n, 1234u + 77u * (uint32_t)i, 1.0, range_of(argc, argv, d->inputs[i].name));
    if (dir) dump(dir, d->inputs[i].name, ins[i], b);
  }
  size_t weights_size;
  unsigned char *weights = make_weights(d, at, &weights_size);
  fill_weights(d, at, weights);
  if (weights_out) {
    FILE *f = fopen(weights_out, "wb");
    if (!f || fwrite(weights, 1, weights_size, f) != weights_size || fclose(f) != 0) die("cannot write the weights");
  }
  for (int32_t i = 0; i < d->n_params; i++) at += d->params[i].rank;
  for (int32_t i = 0; i < d->n_outputs; at += d->outputs[i].rank, i++) {
    out_bytes[i] = count_of(d->outputs[i].rank, at) * so_dtype_size(d->outputs[i].dtype);
    first[i] = malloc(out_bytes[i] + 1);
    outs[i] = malloc(out_bytes[i] + 1);
    all += out_bytes[i];
  }
  run_args r = {d, weights, weights_size, call, (const void *const *)ins, first, out_bytes};
  run(&r, 1, 0x11);
  r.outs = outs;
  for (int m = 0; m < n_models; m++)
    for (int n = m == 0 ? 2 : 1; n <= 3; n++) {
      r.d = models[m];
      run(&r, n, 0x11 * (n + 3 * m));
      for (int32_t i = 0; i < d->n_outputs; i++) {
        int64_t k = so_first_difference(outs[i], first[i], out_bytes[i], so_dtype_size(d->outputs[i].dtype));
        if (k < 0) continue;
        printf("fuse-check: %s with %d threads: output '%s' differs from %s with 1 thread at element %lld", paths[m], n,
               d->outputs[i].name, paths[0], (long long)k);
        if (d->outputs[i].dtype == SEQRT_F32)
          printf(" (%.9g vs %.9g)", (double)((float *)outs[i])[k], (double)((float *)first[i])[k]);
        printf("\n");
        return 1;
      }
    }
  if (dir)
    for (int32_t i = 0; i < d->n_outputs; i++) dump(dir, d->outputs[i].name, first[i], out_bytes[i]);
  printf("fuse-check ok: %d builds, %d outputs, %zu bytes\n", n_models, (int)d->n_outputs, all);
  for (int32_t i = 0; i < d->n_inputs; i++) free(ins[i]);
  for (int32_t i = 0; i < d->n_outputs; i++) {
    free(first[i]);
    free(outs[i]);
  }
  free(weights);
  free(dims);
  free(syms);
  return 0;
}
