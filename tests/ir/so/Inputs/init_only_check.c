/*
 * init_only_check.c - prints which parameters of a shared object built by
 * seqc only its inits read (seqrt_model_desc.param_init_only) and the
 * scratch its forward init needs at the given sizes, then opens
 * the model and runs forward once on zeros, so a run that still read a
 * freed parameter would be caught by the sanitizers or crash.
 *
 *   init_only_check MODEL.so WEIGHTS SYM=N ...
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../tools/so_driver.h"

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: %s MODEL.so WEIGHTS SYM=N ...\n", argv[0]), 1;
  char err[512];
  void *h = NULL;
  const seqrt_model_desc *d = so_load_descriptor(argv[1], &h, err, sizeof err);
  if (!d) return fprintf(stderr, "%s\n", err), 1;
  for (int32_t i = 0; i < d->n_params; i++)
    printf("param %s: %s\n", d->params[i].name,
           d->param_init_only && d->param_init_only[i] ? "init only" : "read by run");
  int64_t syms[64] = {0}, call[64] = {0}, dims[1024];
  for (int32_t s = 0; s < d->n_symbols; s++)
    for (int a = 3; a < argc; a++) {
      size_t n = strlen(d->symbols[s]);
      if (!strncmp(argv[a], d->symbols[s], n) && argv[a][n] == '=') syms[s] = atoll(argv[a] + n + 1);
    }
  for (int32_t k = 0; k < d->n_call_symbols; k++) call[k] = syms[d->call_symbols[k]];
  void *model = NULL, *ctx = NULL;
  if (d->entry->open(argv[2], NULL, &model) || d->entry->ctx_new(model, call, &ctx))
    return fprintf(stderr, "%s\n", d->entry->last_error()), 1;
  d->dims(syms, dims);
  void *ins[64], *outs[64];
  const int64_t *at = dims;
  for (int32_t i = 0; i < d->n_inputs + d->n_params + d->n_outputs; i++) {
    const seqrt_tensor_desc *t = i < d->n_inputs ? &d->inputs[i]
                                 : i < d->n_inputs + d->n_params ? &d->params[i - d->n_inputs]
                                                                 : &d->outputs[i - d->n_inputs - d->n_params];
    size_t bytes = so_dtype_size(t->dtype);
    for (int32_t k = 0; k < t->rank; k++) bytes *= (size_t)at[k];
    at += t->rank;
    if (i < d->n_inputs) ins[i] = calloc(bytes + 1, 1);
    else if (i >= d->n_inputs + d->n_params) outs[i - d->n_inputs - d->n_params] = calloc(bytes + 1, 1);
  }
  /* The forward init's scratch at these sizes (the SEQRT_SYM_* symbols,
   * which init does not read, at 0). */
  int64_t psyms[64] = {0};
  for (int32_t k = 0; k < d->forward->n_symbols && k < 64; k++) {
    int32_t from = d->forward->symbol_map ? d->forward->symbol_map[k] : k; /* NULL: the model's order */
    if (from >= 0) psyms[k] = syms[from];
  }
  printf("forward init scratch: %lld bytes\n", (long long)d->forward->init_scratch_bytes(psyms));
  int rc = d->entry->forward(ctx, call, (const void *const *)ins, outs);
  printf("forward: %s\n", rc ? d->entry->last_error() : "ok");
  for (int32_t i = 0; i < d->n_inputs; i++) free(ins[i]);
  for (int32_t i = 0; i < d->n_outputs; i++) free(outs[i]);
  d->entry->ctx_free(ctx);
  d->entry->close(model);
  dlclose(h);
  return rc != 0;
}
