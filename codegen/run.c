/*
 * run.c - calling compiled code on interpreter tensors, so that `seqc run`,
 * `seqc check` and the tests can run the same graph both ways. Arguments are
 * checked and symbols bound exactly as the interpreter does
 * (ir_interp_bind_args); tensors are converted to dense storage arrays and
 * back. A graph with an `init` op first runs NAME_init into buffers held for
 * the call (what a shared object does once, when it opens), then NAME_run
 * with those buffers after the arguments.
 */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

/* Raw scratch beyond this is refused rather than attempted. */
#define CG_MAX_SCRATCH_BYTES ((int64_t)16 << 30)

static bool symbol_values(cg_jit *j, const ir_dim_binding *b, int32_t nb, int64_t *syms,
                          ir_buf *err) {
  const char *const *names;
  int32_t n = cg_jit_symbols(j, &names);
  for (int32_t i = 0; i < n; i++) {
    int32_t k = 0;
    while (k < nb && strcmp(b[k].name, names[i]) != 0) k++;
    if (k == nb) {
      ir_buf_printf(err, "dim symbol '%s' is not bound by the arguments; bind it explicitly",
                    names[i]);
      return false;
    }
    syms[i] = b[k].value;
  }
  return true;
}

/* Output tensors sized from the declared output types. */
static bool alloc_outputs(ir_graph *g, const ir_dim_binding *b, int32_t nb, int64_t max_elements,
                          ir_tensor *outs, ir_buf *err) {
  const ir_op *y = ir_o(g, ir_block_terminator(g, g->body));
  for (int32_t i = 0; i < y->n_in; i++) {
    ir_type t = ir_vtype(g, y->in[i]);
    int64_t *shape = ir_xcalloc((size_t)t.rank + 1, sizeof(int64_t));
    bool ok = true;
    for (int32_t d = 0; d < t.rank && ok; d++) ok = ir_dim_eval(g->dims, t.dims[d], b, nb, &shape[d], err);
    ok = ok && ir_tensor_alloc(&outs[i], t.dtype, t.rank, shape, max_elements, err);
    free(shape);
    if (!ok) return false;
  }
  return true;
}

/* "<op> '<name>': <what failed>", as the interpreter words its errors. */
static void report_failure(const ir_graph *g, int32_t status, ir_buf *err) {
  ir_opid op = cg_status_op(status);
  if (op >= 0 && op < g->n_ops) {
    const ir_op *o = ir_o(g, op);
    ir_buf_puts(err, ir_opinfo_of(o->kind)->name);
    const char *name = o->n_out > 0 ? ir_v(g, o->out[0])->name : NULL;
    if (name) ir_buf_printf(err, " '%s'", name);
    ir_buf_puts(err, ": ");
  }
  ir_buf_printf(err, "run-time check failed: %s", cg_status_message(cg_status_code(status)));
}

static void *alloc_storage(const ir_tensor *t) {
  size_t bytes = (size_t)t->numel * ir_dtype_size(t->dtype);
  return ir_xcalloc(bytes ? bytes : 1, 1);
}

/* Zeroed dense storage for a value of type t under the bindings, at most
 * max_elements elements; NULL with a message otherwise. */
static void *alloc_typed(ir_graph *g, ir_type t, const ir_dim_binding *b, int32_t nb,
                         int64_t max_elements, const char *what, ir_buf *err) {
  int64_t numel = 1;
  for (int32_t d = 0; d < t.rank; d++) {
    int64_t n;
    if (!ir_dim_eval(g->dims, t.dims[d], b, nb, &n, err)) return NULL;
    if (n < 0 || __builtin_mul_overflow(numel, n, &numel) || numel > max_elements) {
      ir_buf_printf(err, "%s has more than %lld elements", what, (long long)max_elements);
      return NULL;
    }
  }
  size_t bytes = (size_t)numel * ir_dtype_size(t.dtype);
  return ir_xcalloc(bytes ? bytes : 1, 1);
}

/* 64-byte aligned scratch of size(syms) bytes, within the limit. */
static void *alloc_scratch(cg_scratch_fn size, const int64_t *syms, const char *what, ir_buf *err) {
  int64_t need = size(syms);
  if (need < 0 || need > CG_MAX_SCRATCH_BYTES) {
    ir_buf_printf(err, "%s needs %lld bytes of scratch memory, above the limit", what, (long long)need);
    return NULL;
  }
  return aligned_alloc(64, (size_t)((need + 63) / 64 * 64 + 64));
}

/* The hoisted values: NAME_init's results, in buffers appended to args
 * after the n_args graph arguments (args has room for them). */
static bool run_init(cg_jit *j, ir_graph *g, const ir_dim_binding *b, int32_t nb,
                     int64_t max_elements, const int64_t *syms, void **args, int32_t n_args,
                     ir_buf *err) {
  ir_opid init;
  int32_t k = cg_graph_hoisted(g, &init);
  for (int32_t i = 0; i < k; i++) {
    char what[48];
    snprintf(what, sizeof what, "hoisted value %d", i);
    args[n_args + i] = alloc_typed(g, ir_vtype(g, ir_o(g, init)->out[i]), b, nb, max_elements, what, err);
    if (!args[n_args + i]) return false;
  }
  void *scratch = alloc_scratch(cg_jit_init_scratch_fn(j), syms, "init", err);
  if (!scratch) return false;
  int32_t status = cg_jit_init_fn(j)(syms, args, args + n_args, scratch);
  free(scratch);
  if (status != 0) report_failure(g, status, err);
  return status == 0;
}

bool cg_jit_run_tensors(cg_jit *j, ir_graph *g, const ir_tensor *args, int32_t n_args,
                        ir_tensor *outs, const ir_interp_opts *opts, ir_buf *err) {
  for (int32_t i = 0; i < g->n_outputs; i++) memset(&outs[i], 0, sizeof outs[i]);
  ir_dim_binding *binds = NULL;
  int32_t nb = 0;
  if (!ir_interp_bind_args(g, args, n_args, opts, &binds, &nb, err)) return false;
  const char *const *names;
  int32_t n_syms = cg_jit_symbols(j, &names);
  int32_t n_in = n_args + cg_graph_hoisted(g, NULL);
  int64_t *syms = ir_xcalloc((size_t)n_syms + 1, sizeof(int64_t));
  void **in = ir_xcalloc((size_t)n_in + 1, sizeof(void *));
  void **out = ir_xcalloc((size_t)g->n_outputs + 1, sizeof(void *));
  int64_t max_elements = opts && opts->max_elements > 0 ? opts->max_elements : (int64_t)1 << 28;
  void *scratch = NULL;
  bool ok = symbol_values(j, binds, nb, syms, err) &&
            alloc_outputs(g, binds, nb, max_elements, outs, err);
  for (int32_t i = 0; ok && i < n_args; i++) {
    ir_buf bytes = {0};
    ir_tensor_to_bytes(&args[i], &bytes);
    in[i] = ir_xcalloc(bytes.len + 1, 1);
    if (bytes.len) memcpy(in[i], bytes.s, bytes.len);
    ir_buf_free(&bytes);
  }
  for (int32_t i = 0; ok && i < g->n_outputs; i++) out[i] = alloc_storage(&outs[i]);
  ok = ok && run_init(j, g, binds, nb, max_elements, syms, in, n_args, err);
  if (ok) ok = (scratch = alloc_scratch(cg_jit_scratch_fn(j), syms, "the graph", err)) != NULL;
  if (ok) {
    int32_t status = cg_jit_run_fn(j)(syms, in, out, scratch, NULL);
    ok = status == 0;
    if (!ok) report_failure(g, status, err);
  }
  for (int32_t i = 0; ok && i < g->n_outputs; i++) {
    size_t bytes = (size_t)outs[i].numel * ir_dtype_size(outs[i].dtype);
    ok = ir_tensor_from_bytes(&outs[i], out[i], bytes, err);
  }
  if (!ok)
    for (int32_t i = 0; i < g->n_outputs; i++) ir_tensor_free(&outs[i]);
  for (int32_t i = 0; i < n_in; i++) free(in[i]);
  for (int32_t i = 0; i < g->n_outputs; i++) free(out[i]);
  free(in);
  free(out);
  free(scratch);
  free(syms);
  free(binds);
  return ok;
}
