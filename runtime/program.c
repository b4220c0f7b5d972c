/*
 * program.c - a model's compiled programs (forward, step) at open: each
 * program's init runs once, right after the parameters are bound, and
 * computes the values the const-hoist pass moved out of run (transposed or
 * packed weights, folded biases). They live as long as the model and are
 * passed to every run after the program's own arguments.
 */
#include "runtime/model_impl.h"

#include <stdlib.h>
#include <string.h>

void rt_program_syms(const seqrt_program *p, const int64_t *syms, int64_t past, int64_t cap,
                     int64_t *out) {
  for (int32_t i = 0; i < p->n_symbols; i++) {
    int32_t k = p->symbol_map ? p->symbol_map[i] : i;
    out[i] = k == SEQRT_SYM_PAST ? past : k == SEQRT_SYM_CAP ? cap : syms[k];
  }
}

static int64_t sum_ranks(const seqrt_tensor_desc *t, int32_t n) {
  int64_t r = 0;
  for (int32_t i = 0; i < n; i++) r += t[i].rank;
  return r;
}

/* Allocates the hoisted values of p: one 64-byte aligned block. */
static rt_status alloc_hoisted(const rt_model_desc *d, rt_prog *p, const int64_t *psyms) {
  const seqrt_program *code = p->code;
  int64_t *dims = calloc((size_t)sum_ranks(code->hoisted, code->n_hoisted) + 1, sizeof *dims);
  p->hoisted = calloc((size_t)code->n_hoisted + 1, sizeof *p->hoisted);
  int64_t *offset = calloc((size_t)code->n_hoisted + 1, sizeof *offset);
  rt_status st = dims && p->hoisted && offset ? RT_OK : rt_fail(RT_ENOMEM, "out of memory");
  if (st == RT_OK && code->n_hoisted) code->hoisted_dims(psyms, dims);
  int64_t total = 0, *at = dims;
  for (int32_t k = 0; st == RT_OK && k < code->n_hoisted; at += code->hoisted[k].rank, k++) {
    int64_t bytes;
    if (!rt_tensor_bytes(at, code->hoisted[k].rank, rt_dtype_size(code->hoisted[k].dtype), &bytes) ||
        bytes > INT64_MAX / 2 - total - 64)
      st = rt_model_fail(d, RT_ENOMEM, "a value computed at open ('%s') is too large",
                         code->hoisted[k].name);
    offset[k] = total;
    total += (bytes + 63) / 64 * 64;
  }
  if (st == RT_OK && (uint64_t)total > SIZE_MAX - 64) st = rt_model_fail(d, RT_ENOMEM, "the values computed at open are too large");
  if (st == RT_OK && !(p->hoisted_data = aligned_alloc(64, (size_t)total + 64)))
    st = rt_model_fail(d, RT_ENOMEM, "out of memory for %lld bytes computed at open", (long long)total);
  for (int32_t k = 0; st == RT_OK && k < code->n_hoisted; k++)
    p->hoisted[k] = (unsigned char *)p->hoisted_data + offset[k];
  free(dims);
  free(offset);
  return st;
}

/* The program's graph arguments with the parameters in place (inputs, pos
 * and state NULL: init reads parameters only). */
static void **init_args(const rt_model *m, int32_t n_args) {
  const rt_model_desc *d = m->desc;
  void **args = calloc((size_t)n_args + 1, sizeof *args);
  if (!args) return NULL;
  for (int32_t i = 0; i < d->n_inputs + d->n_params; i++) {
    int32_t k = d->arg_order[i];
    if (k >= d->n_inputs) args[i] = m->params[k - d->n_inputs];
  }
  return args;
}

/* `what` names the init in messages ("open: forward init"). */
static rt_status run_init(rt_model *m, rt_prog *p, const char *what) {
  const rt_model_desc *d = m->desc;
  int64_t *psyms = calloc((size_t)p->code->n_symbols + 1, sizeof *psyms);
  if (!psyms) return rt_fail(RT_ENOMEM, "out of memory");
  rt_program_syms(p->code, m->syms, 0, 0, psyms);
  rt_status st = alloc_hoisted(d, p, psyms);
  int64_t need = st == RT_OK ? p->code->init_scratch_bytes(psyms) : 0;
  if (st == RT_OK && (need < 0 || (uint64_t)need > SIZE_MAX - 128))
    st = rt_model_fail(d, RT_ENOMEM, "the %s init needs too much scratch", what);
  void *scratch = st == RT_OK ? aligned_alloc(64, ((size_t)need + 63) / 64 * 64 + 64) : NULL;
  void **args = st == RT_OK ? init_args(m, p->n_args) : NULL;
  if (st == RT_OK && (!scratch || !args)) st = rt_fail(RT_ENOMEM, "out of memory");
  if (st == RT_OK) {
    int32_t code = p->code->init(psyms, args, p->hoisted, scratch);
    if (code != 0) st = rt_run_failure(d, p->code, what, code);
  }
  free(args);
  free(scratch);
  free(psyms);
  return st;
}

rt_status rt_model_init_programs(rt_model *m) {
  const rt_model_desc *d = m->desc;
  m->forward = (rt_prog){d->forward, d->n_inputs + d->n_params, NULL, NULL};
  rt_status st = run_init(m, &m->forward, "open: forward init");
  if (st == RT_OK && d->step) {
    m->step = (rt_prog){d->step, d->n_inputs + d->n_params + 1 + d->n_state, NULL, NULL};
    st = run_init(m, &m->step, "open: step init");
  }
  return st;
}

void rt_model_free_programs(rt_model *m) {
  rt_prog *progs[] = {&m->forward, &m->step};
  for (int i = 0; i < 2; i++) {
    free(progs[i]->hoisted);
    free(progs[i]->hoisted_data);
    progs[i]->hoisted = NULL;
    progs[i]->hoisted_data = NULL;
  }
}
