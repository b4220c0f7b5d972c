/* cg_harness.c - see cg_harness.h. */
#include "cg_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building -------------------------------------------------------------------- */

ch_harness *ch_new(const char *name, uint64_t seed) {
  ch_harness *h = calloc(1, sizeof *h);
  assert_non_null(h);
  h->g = ir_graph_new(name);
  h->rng = seed;
  h->range = 2;
  return h;
}

void ch_free(ch_harness *h) {
  for (int32_t i = 0; i < h->n_args; i++) ir_tensor_free(&h->args[i]);
  ir_graph_free(h->g);
  free(h);
}

/* A 64-bit LCG, so the inputs are the same on every machine. */
uint32_t ch_next_random(ch_harness *h) {
  h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(h->rng >> 33);
}

double ch_random_value(ch_harness *h, ir_dtype dt) {
  uint32_t r = ch_next_random(h);
  if (ir_dtype_is_float(dt)) return ir_round_to_dtype(dt, ((double)r / 2147483648.0 - 1.0) * h->range);
  if (dt == IR_BOOL) return r & 1;
  return (double)(r % 11) - 5.0;
}

ir_val ch_input_with(ch_harness *h, ir_dtype dt, const char *dims, int32_t rank, const int64_t *shape,
                     const double *fill) {
  assert_true(h->n_args < CH_MAX_ARGS);
  char name[16];
  snprintf(name, sizeof name, "x%d", (int)h->n_args);
  ir_val v = tb_input(h->g, name, tb_type(h->g, dt, dims));
  ir_tensor *t = &h->args[h->n_args++];
  assert_true(ir_tensor_alloc(t, dt, rank, shape, 0, NULL));
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = fill ? fill[i] : ch_random_value(h, dt);
  return v;
}

void ch_refill(ch_harness *h, int32_t i, int32_t rank, const int64_t *shape) {
  ir_dtype dt = h->args[i].dtype;
  ir_tensor_free(&h->args[i]);
  assert_true(ir_tensor_alloc(&h->args[i], dt, rank, shape, 0, NULL));
  for (int64_t e = 0; e < h->args[i].numel; e++) h->args[i].data[e] = ch_random_value(h, dt);
}

ir_opid ch_build(ch_harness *h, ir_opkind k, int32_t n_in, const ir_val *in, const tb_attr *attrs) {
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  ir_opid op = ir_build(h->g, h->g->body, k, n_in, in, tb_apply_attrs, (void *)attrs, &d, TB_NOLOC);
  if (op == IR_NONE) print_error("ir_build failed: %s\n", msgs.s ? msgs.s : "");
  ir_buf_free(&msgs);
  assert_int_not_equal(op, IR_NONE);
  return op;
}

ir_val ch_declared(ch_harness *h, ir_opkind k, ir_val x, ir_type t) {
  return tb_res(h->g, tb_op_in(h->g, h->g->body, k, 1, &x, 1, &t), 0);
}

void ch_finish(ch_harness *h, int32_t n, const ir_val *outs) {
  assert_true(n <= CH_MAX_OUTS);
  tb_finish(h->g, n, outs);
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  bool ok = ir_verify(h->g, &d);
  if (!ok) print_error("verifier: %s\n", msgs.s ? msgs.s : "");
  ir_buf_free(&msgs);
  assert_true(ok);
}

/* ---- running both ways ------------------------------------------------------------- */

cg_jit *ch_compile(ir_graph *g, int opt, cg_program **p) {
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, opt, CG_MEMPLAN_CHECK_OFF};
  *p = cg_compile(g, &o, &d);
  if (!*p) print_error("cg_compile -O%d: %s\n", opt, msgs.s ? msgs.s : "");
  assert_non_null(*p);
  cg_jit *j = cg_jit_new(*p, &d);
  if (!j) print_error("cg_jit_new: %s\n", msgs.s ? msgs.s : "");
  assert_non_null(j);
  ir_buf_free(&msgs);
  return j;
}

void ch_free_outputs(ir_tensor *t, int32_t n) {
  for (int32_t i = 0; i < n; i++) ir_tensor_free(&t[i]);
}

void ch_assert_same_shape(const ir_tensor *ref, const ir_tensor *got) {
  assert_int_equal(ref->rank, got->rank);
  for (int32_t d = 0; d < ref->rank; d++) assert_int_equal(ref->shape[d], got->shape[d]);
  assert_int_equal(ref->numel, got->numel);
}

/* The interpreter's outputs and those of the two compiled programs j[0]
 * (-O0) and j[1] (-O2) on the current arguments, compared. */
static void run_both_ways(ch_harness *h, int32_t n, cg_jit *const j[2], ch_compare_fn compare,
                          const void *compare_ud) {
  ir_tensor ref[CH_MAX_OUTS], got[CH_MAX_OUTS];
  ir_buf err = {0};
  bool ok = ir_interp_run(h->g, h->args, h->n_args, ref, NULL, &err);
  if (!ok) print_error("interpreter: %s\n", err.s);
  assert_true(ok);
  for (int k = 0; k < 2; k++) {
    err.len = 0;
    ok = cg_jit_run_tensors(j[k], h->g, h->args, h->n_args, got, NULL, &err);
    if (!ok) print_error("compiled -O%d: %s\n", 2 * k, err.s);
    assert_true(ok);
    compare(h, ref, got, n, 2 * k, compare_ud);
    ch_free_outputs(got, n);
  }
  ch_free_outputs(ref, n);
  ir_buf_free(&err);
}

void ch_check_variants(ch_harness *h, int32_t n, const ir_val *outs, int32_t n_variants, ch_vary_fn vary,
                       const void *vary_ud, ch_compare_fn compare, const void *compare_ud) {
  ch_finish(h, n, outs);
  cg_program *p[2];
  cg_jit *j[2] = {ch_compile(h->g, 0, &p[0]), ch_compile(h->g, 2, &p[1])};
  for (int32_t v = 0; v < n_variants; v++) {
    if (vary) vary(h, v, vary_ud);
    run_both_ways(h, n, j, compare, compare_ud);
  }
  for (int k = 0; k < 2; k++) {
    cg_jit_free(j[k]);
    cg_program_free(p[k]);
  }
  ch_free(h);
}

void ch_check(ch_harness *h, int32_t n, const ir_val *outs, ch_compare_fn compare, const void *compare_ud) {
  ch_check_variants(h, n, outs, 1, NULL, NULL, compare, compare_ud);
}

void ch_check_fails(ch_harness *h, ir_val out, cg_status code) {
  ch_finish(h, 1, &out);
  ir_tensor outs[1];
  ir_buf err = {0};
  assert_false(ir_interp_run(h->g, h->args, h->n_args, outs, NULL, &err));
  for (int opt = 0; opt <= 2; opt += 2) {
    cg_program *p;
    cg_jit *j = ch_compile(h->g, opt, &p);
    err.len = 0;
    assert_false(cg_jit_run_tensors(j, h->g, h->args, h->n_args, outs, NULL, &err));
    assert_non_null(err.s);
    if (!strstr(err.s, cg_status_message(code))) print_error("unexpected failure: %s\n", err.s);
    assert_non_null(strstr(err.s, cg_status_message(code)));
    cg_jit_free(j);
    cg_program_free(p);
  }
  ir_buf_free(&err);
  ch_free(h);
}
