/*
 * generic_run.c - drives any shared object built by seqc through its
 * descriptor alone, as a generic tool would: no generated header, no
 * knowledge of the model at compile time.
 *
 *   cc examples/generic_run.c -ldl -o generic_run
 *   ./generic_run build/demo/elman.so models/elman.safetensors B=2 T=6 [--dump DIR]
 *
 * It dlopens NAME.so, looks up NAME_descriptor (NAME is the file's base
 * name), lists the model's inputs, parameters and outputs, fills every input
 * with a fixed pattern, runs forward with the dims given as SYM=N and prints
 * the first values of every output. With --dump DIR it also writes every
 * input and output to DIR/NAME.bin as raw little-endian data, the format
 * `seqc run --input/--output` uses, so the two can be compared.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The public types of every generated header (the same text seqc embeds). */
#include "../runtime/seqrt_types.h"

static const char *const dtype_names[] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};
static const size_t dtype_sizes[] = {4, 8, 2, 2, 4, 8, 1};

static const seqrt_model_desc *load(const char *so_path, void **handle) {
  *handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  if (!*handle) {
    fprintf(stderr, "generic_run: %s\n", dlerror());
    return NULL;
  }
  const char *base = strrchr(so_path, '/') ? strrchr(so_path, '/') + 1 : so_path;
  char symbol[256];
  size_t stem = strcspn(base, ".");
  snprintf(symbol, sizeof symbol, "%.*s_descriptor", (int)stem, base);
  const seqrt_model_desc *(*descriptor)(void);
  void *fn = dlsym(*handle, symbol);
  if (!fn) {
    fprintf(stderr, "generic_run: %s has no %s\n", so_path, symbol);
    return NULL;
  }
  memcpy(&descriptor, &fn, sizeof fn);
  return descriptor();
}

/* The directory after --dump, or NULL. */
static const char *dump_dir(int argc, char **argv) {
  for (int i = 3; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--dump")) return argv[i + 1];
  return NULL;
}

static int dump(const char *dir, const char *name, const void *data, size_t bytes) {
  if (!dir) return 0;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "wb");
  int bad = !f || fwrite(data, 1, bytes, f) != bytes;
  if (f && fclose(f)) bad = 1;
  if (bad) fprintf(stderr, "generic_run: cannot write %s\n", path);
  return bad;
}

/* The value of symbol `name` among the SYM=N arguments, or -1. */
static int64_t dim_arg(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 3; i < argc; i++)
    if (!strncmp(argv[i], name, n) && argv[i][n] == '=') return strtoll(argv[i] + n + 1, NULL, 10);
  return -1;
}

static void list(const char *what, int32_t n, const seqrt_tensor_desc *t) {
  for (int32_t i = 0; i < n; i++) printf("%s %s: %s rank %d\n", what, t[i].name, dtype_names[t[i].dtype], t[i].rank);
}

/* Element counts of every tensor, from the descriptor's dims function. */
static int64_t count(const int64_t *dims, int32_t rank) {
  int64_t n = 1;
  for (int32_t k = 0; k < rank; k++) n *= dims[k];
  return n;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.so WEIGHTS.safetensors [SYM=N ...]\n", argv[0]);
    return 2;
  }
  void *handle;
  const seqrt_model_desc *d = load(argv[1], &handle);
  if (!d) return 1;
  printf("model %s\n", d->name);
  list("input", d->n_inputs, d->inputs);
  list("param", d->n_params, d->params);
  list("output", d->n_outputs, d->outputs);
  const seqrt_entry_points *e = d->entry;
  void *model = NULL, *ctx = NULL;
  int64_t call[16] = {0};
  if (d->n_call_symbols > 16) return 1;
  for (int32_t i = 0; i < d->n_call_symbols; i++) {
    call[i] = dim_arg(argc, argv, d->symbols[d->call_symbols[i]]);
    if (call[i] < 0) {
      fprintf(stderr, "generic_run: give %s=N\n", d->symbols[d->call_symbols[i]]);
      return 2;
    }
  }
  if (e->open(argv[2], NULL, &model) || e->ctx_new(model, call, &ctx)) {
    fprintf(stderr, "generic_run: %s\n", e->last_error());
    e->close(model);
    return 1;
  }
  /* Symbol values for dims(): call symbols from the command line; those
   * the weights fix are not needed for inputs and outputs here, so 0. */
  int64_t syms[64] = {0}, dims[1024];
  for (int32_t i = 0; i < d->n_call_symbols; i++) syms[d->call_symbols[i]] = call[i];
  d->dims(syms, dims);
  const int64_t *at = dims;
  void *ins[64], *outs[64];
  const char *dir = dump_dir(argc, argv);
  int bad = 0;
  for (int32_t i = 0; i < d->n_inputs; i++, at += d->inputs[i - 1].rank) {
    int64_t n = count(at, d->inputs[i].rank);
    ins[i] = calloc((size_t)(n ? n : 1), dtype_sizes[d->inputs[i].dtype]);
    if (d->inputs[i].dtype == SEQRT_F32)
      for (int64_t k = 0; k < n; k++) ((float *)ins[i])[k] = (float)(k % 7) / 8.0f;
    bad |= dump(dir, d->inputs[i].name, ins[i], (size_t)n * dtype_sizes[d->inputs[i].dtype]);
  }
  for (int32_t i = 0; i < d->n_params; i++) at += d->params[i].rank;
  const int64_t *out_dims = at;
  for (int32_t i = 0; i < d->n_outputs; i++, at += d->outputs[i - 1].rank)
    outs[i] = calloc((size_t)(count(at, d->outputs[i].rank) + 1), dtype_sizes[d->outputs[i].dtype]);
  int rc = e->forward(ctx, call, (const void *const *)ins, outs);
  if (rc) fprintf(stderr, "generic_run: %s\n", e->last_error());
  for (int32_t i = 0; !rc && i < d->n_outputs; i++, out_dims += d->outputs[i - 1].rank) {
    printf("%s:", d->outputs[i].name);
    int64_t n = count(out_dims, d->outputs[i].rank);
    bad |= dump(dir, d->outputs[i].name, outs[i], (size_t)n * dtype_sizes[d->outputs[i].dtype]);
    for (int64_t k = 0; k < n && k < 4 && d->outputs[i].dtype == SEQRT_F32; k++)
      printf(" %.6f", ((float *)outs[i])[k]);
    printf("\n");
  }
  for (int32_t i = 0; i < d->n_inputs; i++) free(ins[i]);
  for (int32_t i = 0; i < d->n_outputs; i++) free(outs[i]);
  e->ctx_free(ctx);
  e->close(model);
  dlclose(handle);
  return rc != 0 || bad;
}
