/* Unit tests for ir/shape.c (ir_infer_types) and ir/verify.c (ir_verify):
 * graphs built with the API, the result types each shape rule infers, and
 * every verifier error, checked through captured diagnostics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "graph_builder.h"
#include "ir/ir.h"

/* ---- building helpers ------------------------------------------------------- */

static ir_val op1(ir_graph *g, ir_opkind k, int32_t n_in, const ir_val *in, ir_type t) {
  return ir_o(g, tb_op_in(g, g->body, k, n_in, in, 1, &t))->out[0];
}

/* ---- checking helpers ------------------------------------------------------- */

static bool verify(ir_graph *g, ir_buf *msgs, int *n_errors) {
  ir_diag d;
  ir_diag_init(&d);
  d.capture = msgs;
  bool ok = ir_verify(g, &d);
  if (n_errors) *n_errors = d.n_errors;
  return ok;
}

static void expect_valid(ir_graph *g) {
  ir_buf msgs = {0};
  bool ok = verify(g, &msgs, NULL);
  if (!ok) print_error("unexpected: %s\n", msgs.s);
  assert_true(ok);
  assert_true(msgs.len == 0);
  ir_buf_free(&msgs);
}

static void expect_invalid(ir_graph *g, const char *substr) {
  ir_buf msgs = {0};
  assert_false(verify(g, &msgs, NULL));
  assert_non_null(msgs.s);
  if (!strstr(msgs.s, substr)) print_error("missing '%s' in:\n%s\n", substr, msgs.s);
  assert_non_null(strstr(msgs.s, substr));
  ir_buf_free(&msgs);
}

/* Inference of the single-result op `op`; the type printed, or NULL with
 * the message in *msg. */
static char *infer_text(ir_graph *g, ir_opid op, ir_buf *msg) {
  ir_diag d;
  ir_diag_init(&d);
  d.capture = msg;
  ir_type out[4];
  int32_t n = 0;
  if (!ir_infer_types(g, op, out, 4, &n, &d)) return NULL;
  assert_int_equal(d.n_errors, 0);
  ir_buf b = {0};
  for (int32_t i = 0; i < n; i++) {
    if (i) ir_buf_puts(&b, ", ");
    ir_print_type(g, out[i], &b);
  }
  if (!b.s) ir_buf_puts(&b, "");
  return b.s;
}

static void expect_infer(ir_graph *g, ir_opid op, const char *want) {
  ir_buf msg = {0};
  char *got = infer_text(g, op, &msg);
  if (!got) print_error("inference failed: %s\n", msg.s);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
  ir_buf_free(&msg);
}

static void expect_infer_error(ir_graph *g, ir_opid op, const char *substr) {
  ir_buf msg = {0};
  char *got = infer_text(g, op, &msg);
  if (got) print_error("inferred %s, expected error '%s'\n", got, substr);
  assert_null(got);
  if (!strstr(msg.s, substr)) print_error("missing '%s' in:\n%s\n", substr, msg.s);
  assert_non_null(strstr(msg.s, substr));
  ir_buf_free(&msg);
}

/* A detached op for inference only (results declared as `decl`). */
static ir_opid lone(ir_graph *g, ir_opkind k, int32_t n_in, const ir_val *in, ir_type decl) {
  int32_t n_out = ir_opinfo_of(k)->n_out < 0 ? 1 : ir_opinfo_of(k)->n_out;
  ir_type outs[1] = {decl};
  return ir_op_new(g, k, n_in, in, n_out, outs, TB_NOLOC);
}

/* ---- the Elman RNN of docs/ir.md ---------------------------------------- */

typedef struct elman {
  ir_graph *g;
  ir_opid scan;
  ir_blockid body;
  ir_val x, h0, hc, pre;
} elman;

static elman build_elman(void) {
  elman e;
  ir_graph *g = e.g = ir_graph_new("elman");
  e.x = tb_input(g, "x", tb_type(g, IR_F32, "T, B, 4"));
  e.h0 = tb_input(g, "h0", tb_type(g, IR_F32, "B, 8"));
  ir_val W = ir_graph_add_input(g, tb_type(g, IR_F32, "8, 4"), "W", true);
  ir_val U = ir_graph_add_input(g, tb_type(g, IR_F32, "8, 8"), "U", true);
  ir_val b = ir_graph_add_input(g, tb_type(g, IR_F32, "8"), "b", true);
  ir_val ins[5] = {e.h0, e.x, W, U, b};
  ir_type outs[2] = {tb_type(g, IR_F32, "B, 8"), tb_type(g, IR_F32, "T, B, 8")};
  e.scan = tb_op_in(g, g->body, IR_OP_SCAN, 5, ins, 2, outs);
  ir_set_dim(g, e.scan, "length", tb_dim(g, "T"));
  ir_set_int(g, e.scan, "carries", 1);
  ir_set_int(g, e.scan, "xs", 1);
  ir_blockid body = e.body = ir_o(g, e.scan)->regions[0];
  ir_block_add_arg(g, body, tb_type(g, IR_I64, ""), "t");
  e.hc = ir_block_add_arg(g, body, tb_type(g, IR_F32, "B, 8"), "hc");
  ir_val xt = ir_block_add_arg(g, body, tb_type(g, IR_F32, "B, 4"), "xt");
  ir_val Wi = ir_block_add_arg(g, body, tb_type(g, IR_F32, "8, 4"), "Wi");
  ir_val Ui = ir_block_add_arg(g, body, tb_type(g, IR_F32, "8, 8"), "Ui");
  ir_val bi = ir_block_add_arg(g, body, tb_type(g, IR_F32, "8"), "bi");
  ir_type h = tb_type(g, IR_F32, "B, 8");
  ir_opid xw = tb_op_in(g, body, IR_OP_MATMUL, 2, (ir_val[]){xt, Wi}, 1, &h);
  ir_set_int(g, xw, "transpose_b", 1);
  ir_opid hu = tb_op_in(g, body, IR_OP_MATMUL, 2, (ir_val[]){e.hc, Ui}, 1, &h);
  ir_set_int(g, hu, "transpose_b", 1);
  ir_opid s = tb_op_in(g, body, IR_OP_ADD, 2, (ir_val[]){tb_res(g, xw, 0), tb_res(g, hu, 0)}, 1, &h);
  ir_opid pre = tb_op_in(g, body, IR_OP_ADD, 2, (ir_val[]){tb_res(g, s, 0), bi}, 1, &h);
  e.pre = tb_res(g, pre, 0);
  ir_opid hn = tb_op_in(g, body, IR_OP_TANH, 1, &e.pre, 1, &h);
  tb_op_in(g, body, IR_OP_YIELD, 2, (ir_val[]){tb_res(g, hn, 0), tb_res(g, hn, 0)}, 0, NULL);
  ir_value_set_name(g, tb_res(g, hn, 0), "hn");
  tb_finish(g, 2, (ir_val[]){tb_res(g, e.scan, 0), tb_res(g, e.scan, 1)});
  return e;
}

static void test_accepts_elman(void **state) {
  (void)state;
  elman e = build_elman();
  expect_valid(e.g);
  expect_infer(e.g, e.scan, "f32[B, 8], f32[T, B, 8]");
  ir_graph_free(e.g);
}

static void test_scan_stacks_along_axis(void **state) {
  (void)state;
  elman e = build_elman();
  /* With axis = 1 the per-step input is sliced along its second dim (B vs
   * T is left to a run-time check), so the body's slice has the wrong type. */
  ir_graph *g = e.g;
  ir_set_int(g, e.scan, "axis", 1);
  expect_infer_error(g, e.scan,
                     "body argument 2 (per-step slice) has type f32[B, 4], expected f32[T, 4]");
  g->vals[e.x].type = tb_type(g, IR_F32, "B, T, 4");
  expect_infer(g, e.scan, "f32[B, 8], f32[B, T, 8]");
  ir_graph_free(g);
}

static void test_scan_signature_errors(void **state) {
  (void)state;
  elman e = build_elman();
  e.g->vals[e.hc].type = tb_type(e.g, IR_F32, "B, 9");
  expect_infer_error(e.g, e.scan, "body argument 1 (carry) has type f32[B, 9], expected f32[B, 8]");
  ir_graph_free(e.g);

  e = build_elman();
  ir_set_dim(e.g, e.scan, "length", tb_dim(e.g, "T+1"));
  expect_infer_error(e.g, e.scan, "has T steps along axis 0, length is T+1");
  ir_graph_free(e.g);

  e = build_elman();
  ir_set_int(e.g, e.scan, "carries", 5);
  expect_infer_error(e.g, e.scan, "carries = 5 and xs = 1 do not fit 5 operands");
  ir_graph_free(e.g);
}

static void test_scan_body_isolated(void **state) {
  (void)state;
  elman e = build_elman();
  /* The body reads the graph input %h0 directly instead of its carry. */
  ir_opid hu = ir_o(e.g, ir_b(e.g, e.body)->first)->next;
  ir_val in[2] = {e.h0, ir_o(e.g, hu)->in[1]};
  ir_op_set_operands(e.g, hu, 2, in);
  expect_invalid(e.g, "scan body uses '%h0' defined outside its region");
  ir_graph_free(e.g);
}

/* ---- elementwise and broadcasting ----------------------------------------- */

static void test_broadcasting(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("bc");
  ir_val a = tb_input(g, "a", tb_type(g, IR_F32, "B, 1, 8"));
  ir_val b = tb_input(g, "b", tb_type(g, IR_F32, "4, 1"));
  ir_val c = tb_input(g, "c", tb_type(g, IR_F32, "T, 1, 8"));
  ir_val d = tb_input(g, "d", tb_type(g, IR_F32, "B+1, 1, 8"));
  ir_val e = tb_input(g, "e", tb_type(g, IR_F32, "B, 4, 4"));
  ir_val h = tb_input(g, "h", tb_type(g, IR_F16, "B, 1, 8"));
  ir_val i = tb_input(g, "i", tb_type(g, IR_I32, "B, 1, 8"));
  ir_val bo = tb_input(g, "bo", tb_type(g, IR_BOOL, "B, 1, 1"));
  ir_type any = tb_type(g, IR_F32, "");
  expect_infer(g, lone(g, IR_OP_ADD, 2, (ir_val[]){a, b}, any), "f32[B, 4, 8]");
  /* B vs T cannot be decided: accepted with the first operand's dim. */
  expect_infer(g, lone(g, IR_OP_MUL, 2, (ir_val[]){c, a}, any), "f32[T, 1, 8]");
  expect_infer_error(g, lone(g, IR_OP_SUB, 2, (ir_val[]){a, d}, any),
                     "sub: cannot broadcast f32[B, 1, 8] with f32[B+1, 1, 8]: dim B vs B+1");
  expect_infer_error(g, lone(g, IR_OP_ADD, 2, (ir_val[]){a, e}, any), "dim 8 vs 4");
  expect_infer_error(g, lone(g, IR_OP_ADD, 2, (ir_val[]){a, h}, any), "add: operand dtypes differ");
  expect_infer_error(g, lone(g, IR_OP_POW, 2, (ir_val[]){i, i}, any), "must have a float dtype");
  expect_infer_error(g, lone(g, IR_OP_AND, 2, (ir_val[]){a, a}, any), "must have a bool dtype");
  expect_infer_error(g, lone(g, IR_OP_EXP, 1, &i, any), "exp: operand must have a float dtype");
  expect_infer(g, lone(g, IR_OP_NEG, 1, &i, any), "i32[B, 1, 8]");
  expect_infer_error(g, lone(g, IR_OP_NEG, 1, &bo, any), "neg: operand must have a float or integer");
  expect_infer(g, lone(g, IR_OP_NOT, 1, &bo, any), "bool[B, 1, 1]");
  ir_opid cmp = lone(g, IR_OP_COMPARE, 2, (ir_val[]){a, b}, any);
  ir_set_int(g, cmp, "predicate", IR_CMP_LT);
  expect_infer(g, cmp, "bool[B, 4, 8]");
  expect_infer(g, lone(g, IR_OP_SELECT, 3, (ir_val[]){bo, b, a}, any), "f32[B, 4, 8]");
  expect_infer_error(g, lone(g, IR_OP_SELECT, 3, (ir_val[]){a, a, a}, any),
                     "condition must have a bool dtype");
  ir_graph_free(g);
}

static void test_cast_keeps_shape(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("cast");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, 8"));
  expect_infer(g, lone(g, IR_OP_CAST, 1, &x, tb_type(g, IR_I32, "B, 8")), "i32[B, 8]");
  expect_infer_error(g, lone(g, IR_OP_CAST, 1, &x, tb_type(g, IR_I32, "B, 4")),
                     "cast: result shape of i32[B, 4] differs from operand f32[B, 8]");
  ir_graph_free(g);
}

/* ---- linear algebra and reductions ------------------------------------------ */

static void test_matmul(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("mm");
  ir_val a = tb_input(g, "a", tb_type(g, IR_F32, "2, B, T, 64"));
  ir_val w = tb_input(g, "w", tb_type(g, IR_F32, "64, 128"));
  ir_val wt = tb_input(g, "wt", tb_type(g, IR_F32, "128, 64"));
  ir_val bb = tb_input(g, "bb", tb_type(g, IR_F32, "1, 1, 64, 32"));
  ir_type any = tb_type(g, IR_F32, "");
  expect_infer(g, lone(g, IR_OP_MATMUL, 2, (ir_val[]){a, w}, any), "f32[2, B, T, 128]");
  expect_infer(g, lone(g, IR_OP_MATMUL, 2, (ir_val[]){a, bb}, any), "f32[2, B, T, 32]");
  ir_opid t = lone(g, IR_OP_MATMUL, 2, (ir_val[]){a, wt}, any);
  expect_infer_error(g, t, "matmul: contraction dims differ: 64 vs 128");
  ir_set_int(g, t, "transpose_b", 1);
  expect_infer(g, t, "f32[2, B, T, 128]");
  ir_opid ta = lone(g, IR_OP_MATMUL, 2, (ir_val[]){w, w}, any);
  ir_set_int(g, ta, "transpose_a", 1);
  expect_infer(g, ta, "f32[128, 128]");
  ir_val v = tb_input(g, "v", tb_type(g, IR_F32, "64"));
  expect_infer_error(g, lone(g, IR_OP_MATMUL, 2, (ir_val[]){v, w}, any), "rank >= 2");
  ir_graph_free(g);
}

static void test_reductions(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("red");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, T, 8"));
  ir_val i = tb_input(g, "i", tb_type(g, IR_I32, "B, T"));
  ir_type any = tb_type(g, IR_F32, "");
  ir_opid r = lone(g, IR_OP_REDUCE_SUM, 1, &x, any);
  ir_set_ints(g, r, "axes", 2, (int64_t[]){-1, 0});
  expect_infer(g, r, "f32[T]");
  ir_set_int(g, r, "keepdims", 1);
  expect_infer(g, r, "f32[1, T, 1]");
  ir_set_ints(g, r, "axes", 2, (int64_t[]){1, -2});
  expect_infer_error(g, r, "reduce_sum: axis 1 listed twice");
  ir_set_ints(g, r, "axes", 1, (int64_t[]){3});
  expect_infer_error(g, r, "axis 3 out of range for f32[B, T, 8] (expected -3 <= axis < 3)");
  ir_opid m = lone(g, IR_OP_REDUCE_MEAN, 1, &i, any);
  ir_set_ints(g, m, "axes", 1, (int64_t[]){0});
  expect_infer_error(g, m, "reduce_mean: operand must have a float dtype");
  ir_opid am = lone(g, IR_OP_ARGMAX, 1, &x, any);
  ir_set_int(g, am, "axis", 2);
  expect_infer(g, am, "i64[B, T]");
  ir_set_int(g, am, "axis", -1);
  expect_infer_error(g, am, "argmax: axis -1 out of range for f32[B, T, 8] (expected 0 <= axis < 3)");
  ir_opid sm = lone(g, IR_OP_SOFTMAX, 1, &i, any);
  ir_set_int(g, sm, "axis", 1);
  expect_infer_error(g, sm, "softmax: operand must have a float dtype");
  ir_opid cs = lone(g, IR_OP_CUMSUM, 1, &i, any);
  ir_set_int(g, cs, "axis", 1);
  expect_infer(g, cs, "i32[B, T]");
  ir_val gamma = tb_input(g, "gamma", tb_type(g, IR_F32, "8"));
  ir_val beta = tb_input(g, "beta", tb_type(g, IR_F32, "4"));
  expect_infer(g, lone(g, IR_OP_LAYERNORM, 2, (ir_val[]){x, gamma}, any), "f32[B, T, 8]");
  expect_infer_error(g, lone(g, IR_OP_LAYERNORM, 3, (ir_val[]){x, gamma, beta}, any),
                     "layernorm: beta must be rank 1 of the last dim 8, got f32[4]");
  ir_graph_free(g);
}

/* ---- data movement -------------------------------------------------------- */

static void test_slices(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("slice");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, T, 8"));
  ir_val idx = tb_input(g, "idx", tb_type(g, IR_I64, ""));
  ir_type any = tb_type(g, IR_F32, "");
  ir_opid s = lone(g, IR_OP_SLICE, 1, &x, any);
  ir_set_int(g, s, "axis", 1);
  ir_set_dim(g, s, "start", tb_dim(g, "1"));
  ir_set_dim(g, s, "end", tb_dim(g, "T"));
  expect_infer(g, s, "f32[B, T-1, 8]");
  ir_set_int(g, s, "step", 2);
  expect_infer(g, s, "f32[B, ceildiv(T-1, 2), 8]");
  ir_set_dim(g, s, "end", tb_dim(g, "T+1"));
  expect_infer_error(g, s, "slice: end T+1 is past dim 1 of f32[B, T, 8]");
  ir_set_dim(g, s, "end", tb_dim(g, "0"));
  expect_infer_error(g, s, "slice: start 1 is past end 0");
  ir_set_dim(g, s, "end", tb_dim(g, "T"));
  ir_set_int(g, s, "step", 0);
  expect_infer_error(g, s, "step must be >= 1");

  ir_opid ds = lone(g, IR_OP_DYNAMIC_SLICE, 2, (ir_val[]){x, idx}, any);
  ir_set_int(g, ds, "axis", 2);
  ir_set_dim(g, ds, "size", tb_dim(g, "4"));
  expect_infer(g, ds, "f32[B, T, 4]");
  ir_set_dim(g, ds, "size", tb_dim(g, "9"));
  expect_infer_error(g, ds, "dynamic_slice: size 9 exceeds dim 2");
  ir_opid bad = lone(g, IR_OP_DYNAMIC_SLICE, 2, (ir_val[]){x, x}, any);
  ir_set_int(g, bad, "axis", 0);
  ir_set_dim(g, bad, "size", tb_dim(g, "1"));
  expect_infer_error(g, bad, "index must be an i32 or i64 scalar, got f32[B, T, 8]");

  ir_val u = tb_input(g, "u", tb_type(g, IR_F32, "B, 1, 8"));
  ir_val u4 = tb_input(g, "u4", tb_type(g, IR_F32, "B, 1, 4"));
  ir_opid dus = lone(g, IR_OP_DYNAMIC_UPDATE_SLICE, 3, (ir_val[]){x, u, idx}, any);
  ir_set_int(g, dus, "axis", 1);
  expect_infer(g, dus, "f32[B, T, 8]");
  ir_opid dus4 = lone(g, IR_OP_DYNAMIC_UPDATE_SLICE, 3, (ir_val[]){x, u4, idx}, any);
  ir_set_int(g, dus4, "axis", 1);
  expect_infer_error(g, dus4, "update f32[B, 1, 4] does not fit into f32[B, T, 8] at dim 2");
  ir_graph_free(g);
}

static void test_concat_split_pad(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("cat");
  ir_val a = tb_input(g, "a", tb_type(g, IR_F32, "B, T1"));
  ir_val b = tb_input(g, "b", tb_type(g, IR_F32, "B, T2"));
  ir_val c = tb_input(g, "c", tb_type(g, IR_F32, "B+2, T2"));
  ir_type any = tb_type(g, IR_F32, "");
  ir_opid cat = lone(g, IR_OP_CONCAT, 2, (ir_val[]){a, b}, any);
  ir_set_int(g, cat, "axis", 1);
  expect_infer(g, cat, "f32[B, T1+T2]");
  ir_opid bad = lone(g, IR_OP_CONCAT, 2, (ir_val[]){a, c}, any);
  ir_set_int(g, bad, "axis", 1);
  expect_infer_error(g, bad, "concat: operand 1 f32[B+2, T2] differs from operand 0 f32[B, T1] at dim 0");

  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, 3*H"));
  ir_dim sizes[3] = {tb_dim(g, "H"), tb_dim(g, "H"), tb_dim(g, "H")};
  ir_opid sp = ir_op_new(g, IR_OP_SPLIT, 1, &x, 0, NULL, TB_NOLOC);
  ir_set_int(g, sp, "axis", 1);
  ir_set_dims(g, sp, "sizes", 3, sizes);
  expect_infer(g, sp, "f32[B, H], f32[B, H], f32[B, H]");
  /* Fewer slots than results: the count is still reported. */
  ir_type one[1];
  int32_t n = 0;
  ir_diag d;
  ir_diag_init(&d);
  assert_true(ir_infer_types(g, sp, one, 1, &n, &d));
  assert_int_equal(n, 3);
  /* H + H + (H+1) differs from 3*H by a constant: provably wrong. */
  sizes[2] = tb_dim(g, "H+1");
  ir_set_dims(g, sp, "sizes", 3, sizes);
  expect_infer_error(g, sp, "split: sizes sum to 3*H+1 but dim 1 of f32[B, 3*H] is 3*H");

  ir_opid pad = lone(g, IR_OP_PAD, 1, &x, any);
  ir_set_int(g, pad, "axis", 0);
  ir_set_dim(g, pad, "low", tb_dim(g, "K-1"));
  ir_set_dim(g, pad, "high", tb_dim(g, "0"));
  expect_infer(g, pad, "f32[B+K-1, 3*H]");
  ir_set_dim(g, pad, "high", tb_dim(g, "-1"));
  expect_infer_error(g, pad, "pad: low K-1 and high -1 must be >= 0");
  ir_graph_free(g);
}

static void test_reshape_transpose_broadcast(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("rs");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, T, 8"));
  expect_infer(g, lone(g, IR_OP_RESHAPE, 1, &x, tb_type(g, IR_F32, "B*T, 8")), "f32[B*T, 8]");
  expect_infer(g, lone(g, IR_OP_RESHAPE, 1, &x, tb_type(g, IR_F32, "N, 8")), "f32[N, 8]");
  /* 8*B*T vs 4*B*T agree when B = 0: left to run time. 8*T vs 8*T+8 never do. */
  expect_infer(g, lone(g, IR_OP_RESHAPE, 1, &x, tb_type(g, IR_F32, "B*T, 4")), "f32[B*T, 4]");
  ir_val x2 = tb_input(g, "x2", tb_type(g, IR_F32, "T, 8"));
  expect_infer_error(g, lone(g, IR_OP_RESHAPE, 1, &x2, tb_type(g, IR_F32, "T+1, 8")),
                     "reshape: element counts differ: f32[T, 8] has ");
  expect_infer_error(g, lone(g, IR_OP_RESHAPE, 1, &x, tb_type(g, IR_I32, "B*T, 8")), "dtypes differ");

  ir_opid tr = lone(g, IR_OP_TRANSPOSE, 1, &x, tb_type(g, IR_F32, ""));
  ir_set_ints(g, tr, "perm", 3, (int64_t[]){1, 0, 2});
  expect_infer(g, tr, "f32[T, B, 8]");
  ir_set_ints(g, tr, "perm", 3, (int64_t[]){1, 1, 2});
  expect_infer_error(g, tr, "transpose: perm is not a permutation of 0..2: entry 1 is 1");
  ir_set_ints(g, tr, "perm", 2, (int64_t[]){1, 0});
  expect_infer_error(g, tr, "perm has 2 entries");

  ir_val b = tb_input(g, "b", tb_type(g, IR_F32, "1, 8"));
  expect_infer(g, lone(g, IR_OP_BROADCAST, 1, &b, tb_type(g, IR_F32, "B, T, 8")), "f32[B, T, 8]");
  expect_infer_error(g, lone(g, IR_OP_BROADCAST, 1, &b, tb_type(g, IR_F32, "B, 4")),
                     "broadcast: cannot broadcast f32[1, 8] to f32[B, 4]: dim 8 vs 4");
  ir_graph_free(g);
}

static void test_gather_and_reverse_sequence(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("g");
  ir_val table = tb_input(g, "table", tb_type(g, IR_F32, "V, D"));
  ir_val tok = tb_input(g, "tok", tb_type(g, IR_I32, "B, T"));
  ir_val len = tb_input(g, "len", tb_type(g, IR_I64, "B"));
  ir_val len2 = tb_input(g, "len2", tb_type(g, IR_I64, "B, 2"));
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "T, B, D"));
  ir_type any = tb_type(g, IR_F32, "");
  ir_opid ga = lone(g, IR_OP_GATHER, 2, (ir_val[]){table, tok}, any);
  ir_set_int(g, ga, "axis", 0);
  expect_infer(g, ga, "f32[B, T, D]");
  ir_set_int(g, ga, "axis", 1);
  expect_infer(g, ga, "f32[V, B, T]");
  ir_opid gb = lone(g, IR_OP_GATHER, 2, (ir_val[]){table, table}, any);
  ir_set_int(g, gb, "axis", 0);
  expect_infer_error(g, gb, "gather: indices must have an integer dtype");
  ir_opid rs = lone(g, IR_OP_REVERSE_SEQUENCE, 2, (ir_val[]){x, len}, any);
  ir_set_int(g, rs, "seq_axis", 0);
  ir_set_int(g, rs, "batch_axis", 1);
  expect_infer(g, rs, "f32[T, B, D]");
  ir_opid rs2 = lone(g, IR_OP_REVERSE_SEQUENCE, 2, (ir_val[]){x, len2}, any);
  ir_set_int(g, rs2, "seq_axis", 0);
  ir_set_int(g, rs2, "batch_axis", 1);
  expect_infer_error(g, rs2, "lengths must be rank 1 of the batch dim B, got i64[B, 2]");
  ir_set_int(g, rs, "batch_axis", 0);
  expect_infer_error(g, rs, "seq_axis and batch_axis are both 0");
  ir_graph_free(g);
}

static void test_attention(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("att");
  ir_val q = tb_input(g, "q", tb_type(g, IR_F32, "B, H, T, 64"));
  ir_val k = tb_input(g, "k", tb_type(g, IR_F32, "B, H, S, 64"));
  ir_val v = tb_input(g, "v", tb_type(g, IR_F32, "B, H, S, 32"));
  ir_val kbad = tb_input(g, "kbad", tb_type(g, IR_F32, "B, H, S, 32"));
  ir_val len = tb_input(g, "len", tb_type(g, IR_I32, "B"));
  ir_type any = tb_type(g, IR_F32, "");
  ir_opid a = lone(g, IR_OP_ATTENTION, 3, (ir_val[]){q, k, v}, any);
  ir_set_int(g, a, "mask", IR_MASK_CAUSAL);
  ir_set_float(g, a, "scale", 0.125);
  expect_infer(g, a, "f32[B, H, T, 32]");
  ir_set_int(g, a, "mask", IR_MASK_PADDING);
  expect_infer_error(g, a, "padding, prefix and causal_padding masks need a 4th operand lengths[B]");
  ir_set_int(g, a, "mask", IR_MASK_WINDOW);
  expect_infer_error(g, a, "window mask needs window >= 1, got 0");
  ir_set_int(g, a, "window", 16);
  expect_infer(g, a, "f32[B, H, T, 32]");
  ir_opid p = lone(g, IR_OP_ATTENTION, 4, (ir_val[]){q, k, v, len}, any);
  ir_set_int(g, p, "mask", IR_MASK_PREFIX);
  ir_set_float(g, p, "scale", 1);
  expect_infer(g, p, "f32[B, H, T, 32]");
  ir_set_int(g, p, "mask", IR_MASK_NONE);
  expect_infer_error(g, p, "lengths operand is only allowed with padding, prefix or causal_padding masks");
  ir_opid bad = lone(g, IR_OP_ATTENTION, 3, (ir_val[]){q, kbad, v}, any);
  ir_set_int(g, bad, "mask", IR_MASK_NONE);
  ir_set_float(g, bad, "scale", 1);
  expect_infer_error(g, bad, "attention: head dims of q and k differ: 64 vs 32");
  ir_graph_free(g);
}

static void test_constant_and_iota(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("c");
  double vals[6] = {1, 2, 3, 4, 5, 6};
  ir_opid c = lone(g, IR_OP_CONSTANT, 0, NULL, tb_type(g, IR_F32, "2, 3"));
  ir_set_tensor(g, c, "value", &(ir_tensor_data){6, vals, NULL});
  expect_infer(g, c, "f32[2, 3]");
  ir_set_tensor(g, c, "value", &(ir_tensor_data){4, vals, NULL});
  expect_infer_error(g, c, "constant: 4 values for f32[2, 3], which has 6 elements");
  ir_opid s = lone(g, IR_OP_CONSTANT, 0, NULL, tb_type(g, IR_F32, "B, 3"));
  ir_set_tensor(g, s, "value", &(ir_tensor_data){1, vals, NULL});
  expect_infer(g, s, "f32[B, 3]");
  ir_set_tensor(g, s, "value", &(ir_tensor_data){6, vals, NULL});
  expect_infer_error(g, s, "6 values need a static shape");
  int64_t two = 2;
  ir_opid b = lone(g, IR_OP_CONSTANT, 0, NULL, tb_type(g, IR_BOOL, ""));
  ir_set_tensor(g, b, "value", &(ir_tensor_data){1, NULL, &two});
  expect_infer_error(g, b, "value 2 at index 0 does not fit bool");
  ir_opid missing = lone(g, IR_OP_CONSTANT, 0, NULL, tb_type(g, IR_F32, ""));
  expect_infer_error(g, missing, "constant: missing required attribute 'value'");

  ir_opid io = lone(g, IR_OP_IOTA, 0, NULL, tb_type(g, IR_I64, "T"));
  ir_set_int(g, io, "axis", 0);
  expect_infer(g, io, "i64[T]");
  ir_set_int(g, io, "axis", 1);
  expect_infer_error(g, io, "iota: axis 1 out of range for i64[T]");
  ir_graph_free(g);
}

/* ---- verifier errors --------------------------------------------------------- */

static void test_declared_type_mismatch(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "B, 8"));
  ir_val w = tb_input(g, "w", tb_type(g, IR_F32, "8, 4"));
  ir_val y = op1(g, IR_OP_MATMUL, 2, (ir_val[]){x, w}, tb_type(g, IR_F32, "B, 8"));
  ir_value_set_name(g, y, "y");
  tb_finish(g, 1, &y);
  expect_invalid(g, "'%y': declared type f32[B, 8] but inferred f32[B, 4]");
  ir_graph_free(g);
}

static void test_operand_and_attribute_errors(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "8"));
  ir_val s = op1(g, IR_OP_ADD, 3, (ir_val[]){x, x, x}, tb_type(g, IR_F32, "8"));
  ir_val r = op1(g, IR_OP_SOFTMAX, 1, &x, tb_type(g, IR_F32, "8"));
  tb_finish(g, 2, (ir_val[]){s, r});
  ir_buf msgs = {0};
  int n_errors = 0;
  assert_false(verify(g, &msgs, &n_errors));
  /* Both problems are reported, not just the first. */
  assert_int_equal(n_errors, 2);
  assert_non_null(strstr(msgs.s, "add: expected 2 operands, got 3"));
  assert_non_null(strstr(msgs.s, "softmax: missing required attribute 'axis'"));
  ir_buf_free(&msgs);
  ir_graph_free(g);
}

static void test_use_before_definition(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "8"));
  ir_type t = tb_type(g, IR_F32, "8");
  ir_opid first = ir_op_new(g, IR_OP_TANH, 1, &x, 1, &t, TB_NOLOC);
  ir_value_set_name(g, tb_res(g, first, 0), "a");
  ir_opid second = tb_op_in(g, g->body, IR_OP_EXP, 1, (ir_val[]){tb_res(g, first, 0)}, 1, &t);
  ir_op_insert_after(g, second, first);
  tb_finish(g, 1, (ir_val[]){tb_res(g, second, 0)});
  expect_invalid(g, "exp uses '%a' before its definition");
  ir_graph_free(g);
}

static void test_erased_and_detached_values(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "8"));
  ir_type t = tb_type(g, IR_F32, "8");
  ir_opid gone = tb_op_in(g, g->body, IR_OP_TANH, 1, &x, 1, &t);
  ir_value_set_name(g, tb_res(g, gone, 0), "gone");
  ir_opid user = tb_op_in(g, g->body, IR_OP_EXP, 1, (ir_val[]){tb_res(g, gone, 0)}, 1, &t);
  ir_opid loose = ir_op_new(g, IR_OP_NEG, 1, &x, 1, &t, TB_NOLOC);
  ir_val sum = op1(g, IR_OP_ADD, 2, (ir_val[]){tb_res(g, user, 0), tb_res(g, loose, 0)}, t);
  ir_op_erase(g, gone);
  tb_finish(g, 1, &sum);
  ir_buf msgs = {0};
  assert_false(verify(g, &msgs, NULL));
  assert_non_null(strstr(msgs.s, "exp uses '%gone', whose defining op was erased"));
  assert_non_null(strstr(msgs.s, "add uses result 0 of neg, whose defining op is not in any block"));
  ir_buf_free(&msgs);
  ir_graph_free(g);
}

static void test_terminators(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "8"));
  op1(g, IR_OP_TANH, 1, &x, tb_type(g, IR_F32, "8"));
  expect_invalid(g, "the graph body does not end with yield");
  tb_op_in(g, g->body, IR_OP_YIELD, 1, &x, 0, NULL);
  op1(g, IR_OP_TANH, 1, &x, tb_type(g, IR_F32, "8"));
  ir_buf msgs = {0};
  assert_false(verify(g, &msgs, NULL));
  assert_non_null(strstr(msgs.s, "yield must be the last op of the graph body"));
  assert_non_null(strstr(msgs.s, "the graph body does not end with yield"));
  ir_buf_free(&msgs);
  ir_graph_free(g);

  elman e = build_elman();
  ir_opid y = ir_b(e.g, e.body)->last;
  ir_op_erase(e.g, y);
  expect_invalid(e.g, "the scan body does not end with yield");
  ir_graph_free(e.g);
}

static void test_outputs(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("m");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F32, "8"));
  tb_finish(g, 2, (ir_val[]){x, x});
  expect_valid(g);
  g->output_names[1] = "o0";
  expect_invalid(g, "output name 'o0' is used more than once");
  g->output_names[1] = "o1";
  g->n_outputs = 3;
  expect_invalid(g, "the graph yields 2 values but declares 3 outputs");
  ir_graph_free(g);
}

static void test_scan_result_count(void **state) {
  (void)state;
  elman e = build_elman();
  /* The body yields one more per-step output than the scan has results. */
  ir_opid y = ir_b(e.g, e.body)->last;
  ir_val three[3] = {ir_o(e.g, y)->in[0], ir_o(e.g, y)->in[0], e.pre};
  ir_op_set_operands(e.g, y, 3, three);
  expect_invalid(e.g, "scan: has 2 results, expected 3");
  ir_graph_free(e.g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts_elman),
      cmocka_unit_test(test_scan_stacks_along_axis),
      cmocka_unit_test(test_scan_signature_errors),
      cmocka_unit_test(test_scan_body_isolated),
      cmocka_unit_test(test_broadcasting),
      cmocka_unit_test(test_cast_keeps_shape),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_reductions),
      cmocka_unit_test(test_slices),
      cmocka_unit_test(test_concat_split_pad),
      cmocka_unit_test(test_reshape_transpose_broadcast),
      cmocka_unit_test(test_gather_and_reverse_sequence),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_constant_and_iota),
      cmocka_unit_test(test_declared_type_mismatch),
      cmocka_unit_test(test_operand_and_attribute_errors),
      cmocka_unit_test(test_use_before_definition),
      cmocka_unit_test(test_erased_and_detached_values),
      cmocka_unit_test(test_terminators),
      cmocka_unit_test(test_outputs),
      cmocka_unit_test(test_scan_result_count),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
