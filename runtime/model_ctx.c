/*
 * model_ctx.c - execution contexts and forward calls (docs/abi.md, "The
 * runtime core").
 *
 * A ctx is one thread's workspace: the scratch block for the generated code
 * and the symbol, dim and argument arrays a call fills in. Everything is
 * allocated by rt_ctx_new for the caller's maxima, so rt_forward allocates
 * nothing: it validates the call (symbol ranges, dims, overflow-checked
 * sizes, pointers) entirely before running generated code, which trusts
 * its arguments. Scratch is sized at the maxima and the exact need is
 * checked again per call, since the size need not grow monotonically with
 * every symbol.
 */
#include "runtime/model_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *rt_run_status_message(int32_t code) {
  switch (code) {
  case RT_RUN_DIM_MISMATCH: return "a dim equality does not hold for these inputs";
  case RT_RUN_INDEX_RANGE: return "an index or sequence length is out of range (a token id outside "
                                  "the vocabulary?)";
  case RT_RUN_INT_DIV_ZERO: return "integer division by zero or overflow";
  case RT_RUN_CAST_RANGE: return "a value is NaN or out of range for an integer conversion";
  case RT_RUN_INT_OVERFLOW: return "an integer result does not fit its dtype";
  default: return "unknown status";
  }
}

static const char *call_symbol_name(const rt_model_desc *d, int32_t k) {
  return d->symbols[d->call_symbols[k]];
}

static rt_status check_maxima(const rt_model_desc *d, const int64_t *max) {
  if (d->n_call_symbols > 0 && !max) return rt_model_fail(d, RT_EINVAL, "ctx_new: the maxima are NULL");
  for (int32_t k = 0; k < d->n_call_symbols; k++)
    if (max[k] < 0 || max[k] > RT_MAX_SYMBOL_VALUE)
      return rt_model_fail(d, RT_EINVAL, "ctx_new: max %s = %lld is outside [0, %lld]",
                           call_symbol_name(d, k), (long long)max[k], (long long)RT_MAX_SYMBOL_VALUE);
  return RT_OK;
}

/* The scratch block for the maxima (already in c->syms): forward's and
 * step's share it. */
static rt_status alloc_scratch(rt_ctx *c) {
  const rt_model_desc *d = c->model->desc;
  int64_t step = rt_stream_scratch_need(c); /* sets the call symbols to their maxima */
  int64_t need = d->forward->scratch_bytes(c->syms);
  if (need >= 0 && (step < 0 || step > need)) need = step;
  if (need < 0 || (uint64_t)need > SIZE_MAX - 128)
    return rt_model_fail(d, RT_EINVAL, "ctx_new: the scratch size overflows at these maxima");
  c->capacity = need;
  size_t bytes = need ? ((size_t)need + 63) / 64 * 64 : 64;
  c->scratch = aligned_alloc(64, bytes);
  if (!c->scratch)
    return rt_model_fail(d, RT_ENOMEM, "ctx_new: out of memory for %lld bytes of scratch", (long long)need);
  return RT_OK;
}

rt_status rt_ctx_new(const rt_model *m, const int64_t *max_call_symbols, rt_ctx **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_ctx_new: out is NULL");
  *out = NULL;
  if (!m) return rt_fail(RT_EINVAL, "rt_ctx_new: the model is NULL");
  const rt_model_desc *d = m->desc;
  rt_status st = check_maxima(d, max_call_symbols);
  if (st != RT_OK) return st;
  int32_t n_args = d->n_inputs + d->n_params;
  int32_t n_hoisted = d->forward->n_hoisted;
  if (d->step && d->step->n_hoisted > n_hoisted) n_hoisted = d->step->n_hoisted;
  int32_t n_state = d->step ? d->n_state : 0;
  rt_ctx *c = calloc(1, sizeof *c);
  if (c) {
    c->model = m;
    c->max = calloc((size_t)d->n_call_symbols + 1, sizeof *c->max);
    c->syms = calloc((size_t)d->n_symbols + 1, sizeof *c->syms);
    c->dims = calloc((size_t)m->n_dims + 1, sizeof *c->dims);
    c->slot = calloc((size_t)n_args + 1, sizeof *c->slot);
    c->args = calloc((size_t)n_args + 2 + n_state + n_hoisted, sizeof *c->args);
    c->outs = calloc((size_t)d->n_outputs + 1 + n_state, sizeof *c->outs);
  }
  if (!c || !c->max || !c->syms || !c->dims || !c->slot || !c->args || !c->outs) {
    rt_ctx_free(c);
    return rt_fail(RT_ENOMEM, "out of memory");
  }
  memcpy(c->syms, m->syms, (size_t)d->n_symbols * sizeof *c->syms);
  for (int32_t k = 0; k < d->n_call_symbols; k++)
    c->syms[d->call_symbols[k]] = c->max[k] = max_call_symbols[k];
  for (int32_t i = 0; i < n_args; i++) c->slot[d->arg_order[i]] = i;
  for (int32_t j = 0; j < d->n_params; j++) c->args[c->slot[d->n_inputs + j]] = m->params[j];
  st = rt_exec_init(&c->exec, m);
  if (st == RT_OK) st = rt_stream_init(c);
  if (st == RT_OK) st = alloc_scratch(c);
  if (st != RT_OK) {
    rt_ctx_free(c);
    return st;
  }
  *out = c;
  return RT_OK;
}

void rt_ctx_free(rt_ctx *c) {
  if (!c) return;
  rt_exec_free(&c->exec, c->model);
  rt_stream_free(c);
  free(c->scratch);
  free(c->outs);
  free(c->args);
  free(c->slot);
  free(c->dims);
  free(c->syms);
  free(c->max);
  free(c);
}

static rt_status set_call_symbols(rt_ctx *c, const int64_t *values) {
  const rt_model_desc *d = c->model->desc;
  for (int32_t k = 0; k < d->n_call_symbols; k++) {
    if (values[k] < 0 || values[k] > c->max[k])
      return rt_model_fail(d, RT_EINVAL, "forward: %s = %lld is outside [0, %lld] (the ctx's maximum)",
                           call_symbol_name(d, k), (long long)values[k], (long long)c->max[k]);
    c->syms[d->call_symbols[k]] = values[k];
  }
  return RT_OK;
}

/* Checks one caller tensor against its dims and returns the pointer to pass:
 * an empty tensor may be NULL (the scratch stands in; it is never read). */
static rt_status check_tensor(rt_ctx *c, const char *call, const char *what, const rt_tensor_desc *t,
                              const int64_t *dims, const void *p, void **pass) {
  const rt_model_desc *d = c->model->desc;
  int64_t bytes;
  if (!rt_tensor_bytes(dims, t->rank, rt_dtype_size(t->dtype), &bytes)) {
    char shape[200];
    size_t len = 0;
    for (int32_t a = 0; a < t->rank && len < sizeof shape; a++)
      len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", a ? ", " : "", (long long)dims[a]);
    return rt_model_fail(d, RT_EINVAL, "%s: %s '%s' would have shape [%s]: a negative dim, or "
                         "more bytes than fit in 64 bits", call, what, t->name, shape);
  }
  if (bytes > 0 && !p) return rt_model_fail(d, RT_EINVAL, "%s: %s '%s' is NULL", call, what, t->name);
  *pass = p ? (void *)p : c->scratch;
  return RT_OK;
}

rt_status rt_check_tensors(rt_ctx *c, const char *call, const void *const *inputs,
                           void *const *outputs) {
  const rt_model_desc *d = c->model->desc;
  const int64_t *dims = c->dims;
  rt_status st = RT_OK;
  for (int32_t i = 0; i < d->n_inputs && st == RT_OK; dims += d->inputs[i].rank, i++)
    st = check_tensor(c, call, "input", &d->inputs[i], dims, inputs[i], &c->args[c->slot[i]]);
  for (int32_t j = 0; j < d->n_params; j++) dims += d->params[j].rank;
  for (int32_t i = 0; i < d->n_outputs && st == RT_OK; dims += d->outputs[i].rank, i++)
    st = check_tensor(c, call, "output", &d->outputs[i], dims, outputs[i], &c->outs[i]);
  return st;
}

rt_status rt_forward(rt_ctx *c, const int64_t *call_symbols, const void *const *inputs,
                     void *const *outputs) {
  if (!c) return rt_fail(RT_EINVAL, "rt_forward: the ctx is NULL");
  const rt_model_desc *d = c->model->desc;
  if ((d->n_call_symbols > 0 && !call_symbols) || (d->n_inputs > 0 && !inputs) ||
      (d->n_outputs > 0 && !outputs))
    return rt_model_fail(d, RT_EINVAL, "forward: the %s array is NULL",
                         d->n_call_symbols > 0 && !call_symbols ? "call symbol"
                         : d->n_inputs > 0 && !inputs           ? "input"
                                                                : "output");
  rt_status st = set_call_symbols(c, call_symbols);
  if (st != RT_OK) return st;
  d->dims(c->syms, c->dims);
  st = rt_check_tensors(c, "forward", inputs, outputs);
  if (st != RT_OK) return st;
  return rt_run_program(c, &c->model->forward, c->syms, "forward");
}

rt_status rt_run_failure(const rt_model_desc *d, const seqrt_program *p, const char *call,
                         int32_t status) {
  int32_t op = status / RT_RUN_OP_SCALE - 1;
  const char *what = op >= 0 && op < p->n_ops && p->op_names ? p->op_names[op] : NULL;
  return rt_model_fail(d, RT_EINVAL, "%s: %s%srun-time check failed: %s", call, what ? what : "",
                       what ? ": " : "", rt_run_status_message(status % RT_RUN_OP_SCALE));
}

rt_status rt_run_program(rt_ctx *c, const rt_prog *p, const int64_t *psyms, const char *call) {
  const rt_model_desc *d = c->model->desc;
  for (int32_t k = 0; k < p->code->n_hoisted; k++) c->args[p->n_args + k] = p->hoisted[k];
  int64_t need = p->code->scratch_bytes(psyms);
  if (need < 0 || need > c->capacity)
    return rt_model_fail(d, RT_EINVAL, "%s: these sizes need %lld bytes of scratch, but the "
                         "ctx has %lld (its maxima do not cover them)", call, (long long)need,
                         (long long)c->capacity);
  c->exec.running = p == &c->model->step;
  int32_t code = p->code->run(psyms, c->args, c->outs, c->scratch, &c->exec.pub);
  if (code != 0) return rt_run_failure(d, p->code, call, code);
  return RT_OK;
}
