/* Unit tests for the decompose pass (passes/decompose.c): for every mask
 * kind, with as many queries as keys, fewer and more, symbolic dims, fully
 * masked rows (lengths 0) and attention inside a scan body, the reference
 * interpreter gives the same outputs before and after the expansion on
 * fixed-seed random inputs, and no attention op is left. The expansion
 * rounds after every op where the interpreter's attention rounds once, so
 * results are compared with a tolerance (f32: 1e-5 relative plus 1e-6
 * absolute; f64: 1e-12), and NaN must stay NaN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_builder.h"
#include "ir/interp.h"
#include "ir/ir.h"
#include "passes/pass.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Runs decompose with the verifier after it; fails the test on an error. */
static void decompose(ir_graph *g) {
  ir_diag d;
  ir_buf msgs = {0};
  ir_diag_init(&d);
  d.capture = &msgs;
  pass_ctx ctx;
  pass_ctx_init(&ctx, &d);
  ctx.verify_each = true;
  if (!pass_run_pipeline(g, "decompose", &ctx)) fail_msg("decompose failed:\n%s", msgs.s);
  ir_buf_free(&msgs);
}

/* splitmix64, so the inputs are the same on every machine. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Shapes of the graph arguments for one run, and the lengths to use. */
typedef struct run_shapes {
  int32_t n_args;
  int32_t rank[4];
  int64_t shape[4][6];
  int64_t lengths[4]; /* for an integer argument: its values, cycled */
  int32_t n_lengths;
} run_shapes;

/* Arguments for g: floats uniform in [-2, 2), integers from s->lengths. */
static ir_tensor *make_args(ir_graph *g, const run_shapes *s, uint64_t seed) {
  const ir_block *body = ir_b(g, g->body);
  assert_int_equal(body->n_args, s->n_args);
  ir_tensor *args = calloc((size_t)s->n_args + 1, sizeof *args);
  uint64_t state = seed;
  ir_buf err = {0};
  for (int32_t a = 0; a < s->n_args; a++) {
    ir_dtype dt = ir_vtype(g, body->args[a]).dtype;
    assert_true(ir_tensor_alloc(&args[a], dt, s->rank[a], s->shape[a], 1 << 20, &err));
    for (int64_t k = 0; k < args[a].numel; k++) {
      double x = ir_dtype_is_float(dt)
                     ? (double)(next_random(&state) >> 11) / 4503599627370496.0 * 4.0 - 2.0
                     : (double)s->lengths[k % s->n_lengths];
      args[a].data[k] = ir_round_to_dtype(dt, x);
    }
  }
  ir_buf_free(&err);
  return args;
}

static void free_tensors(ir_tensor *t, int32_t n) {
  for (int32_t i = 0; i < n; i++) ir_tensor_free(&t[i]);
  free(t);
}

static ir_tensor *run(ir_graph *g, const ir_tensor *args, int32_t n_args) {
  ir_tensor *outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  ir_buf err = {0};
  if (!ir_interp_run(g, args, n_args, outs, NULL, &err)) fail_msg("interpreter: %s", err.s);
  ir_buf_free(&err);
  return outs;
}

static void assert_close(const ir_tensor *want, const ir_tensor *got, double rtol, double atol) {
  assert_int_equal(want->rank, got->rank);
  for (int32_t i = 0; i < want->rank; i++) assert_int_equal(want->shape[i], got->shape[i]);
  for (int64_t e = 0; e < want->numel; e++) {
    double w = want->data[e], x = got->data[e];
    if (isnan(w) || isnan(x)) {
      if (!(isnan(w) && isnan(x))) fail_msg("element %lld: want %.9g, got %.9g", (long long)e, w, x);
      continue;
    }
    if (fabs(w - x) > atol + rtol * fmax(fabs(w), fabs(x)))
      fail_msg("element %lld: want %.9g, got %.9g (difference %.3g)", (long long)e, w, x,
               fabs(w - x));
  }
}

/* Decomposes the graph in `text` and checks it against the original on
 * inputs of the given shapes, for a few seeds. Returns the decomposed
 * graph. */
static ir_graph *check_decomposition(const char *text, const run_shapes *s, double rtol,
                                     double atol) {
  ir_graph *before = tb_parse(text), *after = tb_parse(text);
  assert_true(tb_count_ops(before, IR_OP_ATTENTION) > 0);
  decompose(after);
  assert_int_equal(tb_count_ops(after, IR_OP_ATTENTION), 0);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    ir_tensor *args = make_args(before, s, seed);
    ir_tensor *want = run(before, args, s->n_args), *got = run(after, args, s->n_args);
    for (int32_t o = 0; o < before->n_outputs; o++) assert_close(&want[o], &got[o], rtol, atol);
    free_tensors(want, before->n_outputs);
    free_tensors(got, after->n_outputs);
    free_tensors(args, s->n_args);
  }
  ir_graph_free(before);
  return after;
}

/* A graph with one attention over q[B, 2, TQ, 4], k[B, 2, TK, 4],
 * v[B, 2, TK, 3], with lengths[B] for the padding, prefix and causal_padding masks. */
static char *attention_text(const char *mask, const char *tq, const char *tk, int window,
                            const char *dtype, const char *len_dtype) {
  bool lengths = !strcmp(mask, "padding") || !strcmp(mask, "prefix") || !strcmp(mask, "causal_padding");
  ir_buf b = {0};
  ir_buf_printf(&b,
                "graph @att(%%q: %s[B, 2, %s, 4], %%k: %s[B, 2, %s, 4], %%v: %s[B, 2, %s, 3]",
                dtype, tq, dtype, tk, dtype, tk);
  if (lengths) ir_buf_printf(&b, ", %%len: %s[B]", len_dtype);
  ir_buf_printf(&b, ") -> (y: %s[B, 2, %s, 3]) {\n", dtype, tq);
  ir_buf_printf(&b, "  %%y: %s[B, 2, %s, 3] = attention %%q, %%k, %%v%s {mask = %s, scale = 0.5",
                dtype, tq, lengths ? ", %len" : "", mask);
  if (window) ir_buf_printf(&b, ", window = %d", window);
  ir_buf_puts(&b, "}\n  yield %y\n}\n");
  return b.s;
}

/* Shapes for attention_text: batch 3, Tq queries, Tk keys; lengths 0 (a
 * batch entry whose rows are all masked under padding), 2 and Tk+1. */
static run_shapes attention_shapes(int64_t tq, int64_t tk, bool lengths) {
  run_shapes s = {lengths ? 4 : 3,
                  {4, 4, 4, 1},
                  {{3, 2, tq, 4}, {3, 2, tk, 4}, {3, 2, tk, 3}, {3}},
                  {0, 2, tk + 1, 0},
                  3};
  return s;
}

static const char *const all_masks[] = {"none", "causal", "padding", "window", "prefix", "causal_padding"};

static void check_every_mask(const char *tq_name, const char *tk_name, int64_t tq, int64_t tk) {
  for (size_t m = 0; m < sizeof all_masks / sizeof all_masks[0]; m++) {
    const char *mask = all_masks[m];
    bool lengths = !strcmp(mask, "padding") || !strcmp(mask, "prefix") || !strcmp(mask, "causal_padding");
    int window = !strcmp(mask, "window") ? 2 : 0;
    char *text = attention_text(mask, tq_name, tk_name, window, "f32", m % 2 ? "i32" : "i64");
    run_shapes s = attention_shapes(tq, tk, lengths);
    ir_graph *g = check_decomposition(text, &s, 1e-5, 1e-6);
    ir_graph_free(g);
    free(text);
  }
}

/* ---- equivalence ------------------------------------------------------------- */

static void test_as_many_queries_as_keys(void **state) {
  (void)state;
  check_every_mask("T", "T", 5, 5);
}

static void test_fewer_queries_than_keys(void **state) {
  (void)state;
  check_every_mask("Tq", "Tk", 3, 6); /* a KV cache holding 3 earlier keys */
  check_every_mask("2", "7", 2, 7);   /* static dims */
  check_every_mask("Tq", "Tk", 1, 4); /* one decoding step */
}

/* More queries than keys: under causal and window masks the first Tq - Tk
 * queries see nothing and must give 0, not NaN. */
static void test_more_queries_than_keys(void **state) {
  (void)state;
  check_every_mask("Tq", "Tk", 6, 3);
}

static void test_distinct_symbols_of_equal_size(void **state) {
  (void)state;
  check_every_mask("Tq", "Tk", 4, 4);
}

static void test_empty_keys_and_queries(void **state) {
  (void)state;
  check_every_mask("Tq", "Tk", 3, 0);
  check_every_mask("Tq", "Tk", 0, 3);
}

/* Logits up to about 1300 overflow exp even in double unless softmax
 * subtracts the row maximum. (In f64: f32 rounding of logits that large
 * moves the probabilities by about |logit| * 2^-24, well above 1e-5.) The
 * window, 2^60, is beyond the integers a constant holds exactly. */
static void test_wide_window_and_large_scale(void **state) {
  (void)state;
  const char *text =
      "graph @att(%q: f64[2, T, 8], %k: f64[2, T, 8], %v: f64[2, T, 5]) -> (y: f64[2, T, 5]) {\n"
      "  %y: f64[2, T, 5] = attention %q, %k, %v {mask = window, scale = 40.0, window = 1152921504606846976}\n"
      "  yield %y\n"
      "}\n";
  run_shapes s = {3, {3, 3, 3}, {{2, 6, 8}, {2, 6, 8}, {2, 6, 5}}, {0}, 1};
  ir_graph *g = check_decomposition(text, &s, 1e-10, 1e-12);
  ir_graph_free(g);
}

/* Rank 3 (no head dim) with padding: lengths reshape to [B, 1, 1]. */
static void test_rank_three_padding(void **state) {
  (void)state;
  const char *text =
      "graph @att(%q: f32[B, T, 4], %k: f32[B, T, 4], %v: f32[B, T, 2], %len: i32[B])\n"
      "    -> (y: f32[B, T, 2]) {\n"
      "  %y: f32[B, T, 2] = attention %q, %k, %v, %len {mask = padding, scale = 0.5}\n"
      "  yield %y\n"
      "}\n";
  run_shapes s = {4, {3, 3, 3, 1}, {{4, 5, 4}, {4, 5, 4}, {4, 5, 2}, {4}}, {3, 0, 5, 1}, 4};
  ir_graph *g = check_decomposition(text, &s, 1e-5, 1e-6);
  ir_graph_free(g);
}

/* q's batch dim is declared 1 and k's is a symbol (equal at run time): the
 * matmuls broadcast it to the symbol, and a reshape restores the
 * attention's declared type. */
static void test_declared_one_against_symbolic_batch(void **state) {
  (void)state;
  const char *text =
      "graph @att(%q: f32[1, T, 4], %k: f32[B, T, 4], %v: f32[B, T, 2]) -> (y: f32[1, T, 2]) {\n"
      "  %y: f32[1, T, 2] = attention %q, %k, %v {mask = causal, scale = 0.5}\n"
      "  yield %y\n"
      "}\n";
  run_shapes s = {3, {3, 3, 3}, {{1, 4, 4}, {1, 4, 4}, {1, 4, 2}}, {0}, 1};
  ir_graph *g = check_decomposition(text, &s, 1e-5, 1e-6);
  assert_int_equal(tb_count_ops(g, IR_OP_RESHAPE), 1);
  ir_graph_free(g);
}

static void test_f64_is_tight(void **state) {
  (void)state;
  for (size_t m = 0; m < sizeof all_masks / sizeof all_masks[0]; m++) {
    const char *mask = all_masks[m];
    bool lengths = !strcmp(mask, "padding") || !strcmp(mask, "prefix") || !strcmp(mask, "causal_padding");
    char *text = attention_text(mask, "Tq", "Tk", !strcmp(mask, "window") ? 3 : 0, "f64", "i64");
    run_shapes s = attention_shapes(4, 6, lengths);
    ir_graph *g = check_decomposition(text, &s, 1e-12, 1e-14);
    ir_graph_free(g);
    free(text);
  }
}

/* Attention inside a scan body is expanded there (regions are walked). */
static void test_attention_in_scan_body(void **state) {
  (void)state;
  const char *text =
      "graph @s(%q: f32[L, 2, T, 4], %k: f32[2, T, 4], %v: f32[2, T, 4], %h0: f32[2, T, 4])\n"
      "    -> (h: f32[2, T, 4], ys: f32[L, 2, T, 4]) {\n"
      "  %h, %ys: f32[2, T, 4], f32[L, 2, T, 4] = scan %h0, %q, %k, %v "
      "{length = L, carries = 1, xs = 1} {\n"
      "  ^(%t: i64[], %hc: f32[2, T, 4], %qt: f32[2, T, 4], %ki: f32[2, T, 4], %vi: f32[2, T, 4]):\n"
      "    %a: f32[2, T, 4] = attention %qt, %ki, %vi {mask = causal, scale = 0.5}\n"
      "    %hn: f32[2, T, 4] = add %hc, %a\n"
      "    yield %hn, %a\n"
      "  }\n"
      "  yield %h, %ys\n"
      "}\n";
  run_shapes s = {4, {4, 3, 3, 3}, {{3, 2, 5, 4}, {2, 5, 4}, {2, 5, 4}, {2, 5, 4}}, {0}, 1};
  ir_graph *g = check_decomposition(text, &s, 1e-5, 1e-6);
  ir_opid scan = IR_NONE;
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (ir_o(g, op)->kind == IR_OP_SCAN) scan = op;
  assert_int_not_equal(scan, IR_NONE);
  assert_int_equal(tb_count_ops_in(g, ir_o(g, scan)->regions[0], IR_OP_SOFTMAX), 1);
  ir_graph_free(g);
}

/* ---- shape of the expansion ---------------------------------------------------- */

/* The "no visible key" guard is needed exactly when a row can be fully
 * masked: always with padding; for causal, window and prefix only when
 * Tk - Tq is not provably a constant >= 0. */
static void test_guard_only_when_rows_can_be_blind(void **state) {
  (void)state;
  static const struct {
    const char *mask, *tq, *tk;
    bool guard;
  } cases[] = {
      {"none", "T", "T", false},    {"causal", "T", "T", false},   {"causal", "T", "T+3", false},
      {"causal", "Tq", "Tk", true}, {"causal", "T+1", "T", true},  {"window", "T", "T", false},
      {"window", "4", "2", true},   {"padding", "T", "T", true},   {"prefix", "T", "T", false},
      {"prefix", "Tq", "Tk", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = attention_text(cases[i].mask, cases[i].tq, cases[i].tk,
                                !strcmp(cases[i].mask, "window") ? 2 : 0, "f32", "i32");
    ir_graph *g = tb_parse(text);
    decompose(g);
    int reduces = tb_count_ops(g, IR_OP_REDUCE_MAX);
    if (reduces != (cases[i].guard ? 1 : 0))
      fail_msg("case %zu (%s, Tq %s, Tk %s): %d reduce_max ops", i, cases[i].mask, cases[i].tq,
               cases[i].tk, reduces);
    assert_int_equal(tb_count_ops(g, IR_OP_SOFTMAX), 1);
    assert_int_equal(tb_count_ops(g, IR_OP_MATMUL), 2);
    ir_graph_free(g);
    free(text);
  }
}

static void test_names_derive_from_result(void **state) {
  (void)state;
  char *text = attention_text("causal", "Tq", "Tk", 0, "f32", "i32");
  ir_graph *g = tb_parse(text);
  decompose(g);
  char *printed = tb_print(g);
  assert_non_null(strstr(printed, "%y.logits: f32[B, 2, Tq, Tk] = matmul %y.q_scaled, %k {transpose_b = true}"));
  assert_non_null(strstr(printed, "%y.mask: bool[Tq, Tk] = compare %y.col_back, %y.row_back"));
  assert_non_null(strstr(printed, "%y: f32[B, 2, Tq, 3] = matmul %y.probs, %v\n  yield %y\n"));
  free(printed);
  ir_graph_free(g);
  free(text);
}

/* An anonymous attention result gives anonymous values, and the result
 * still prints and reparses to the same graph. */
static void test_anonymous_result_round_trips(void **state) {
  (void)state;
  const char *text =
      "graph @att(%q: f32[1, 3, 2], %k: f32[1, 3, 2], %v: f32[1, 3, 2]) -> (y: f32[1, 3, 2]) {\n"
      "  %0: f32[1, 3, 2] = attention %q, %k, %v {mask = causal, scale = 0.1}\n"
      "  yield %0\n"
      "}\n";
  ir_graph *g = tb_parse(text);
  decompose(g);
  char *printed = tb_print(g);
  assert_null(strstr(printed, "(null)"));
  assert_null(strstr(printed, "attention"));
  ir_graph *again = tb_parse(printed);
  char *reprinted = tb_print(again);
  assert_string_equal(printed, reprinted);
  free(printed);
  free(reprinted);
  ir_graph_free(again);
  ir_graph_free(g);
}

static void test_graph_without_attention_is_unchanged(void **state) {
  (void)state;
  const char *text =
      "graph @g(%x: f32[T, 4], %w: f32[4, 4]) -> (y: f32[T, 4]) {\n"
      "  %s: f32[T, 4] = matmul %x, %w\n"
      "  %y: f32[T, 4] = softmax %s {axis = 1}\n"
      "  yield %y\n"
      "}\n";
  ir_graph *g = tb_parse(text);
  char *before = tb_print(g);
  int32_t n_ops = g->n_ops;
  decompose(g);
  char *after = tb_print(g);
  assert_string_equal(before, after);
  assert_int_equal(g->n_ops, n_ops);
  free(before);
  free(after);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_as_many_queries_as_keys),
      cmocka_unit_test(test_fewer_queries_than_keys),
      cmocka_unit_test(test_more_queries_than_keys),
      cmocka_unit_test(test_distinct_symbols_of_equal_size),
      cmocka_unit_test(test_empty_keys_and_queries),
      cmocka_unit_test(test_wide_window_and_large_scale),
      cmocka_unit_test(test_rank_three_padding),
      cmocka_unit_test(test_declared_one_against_symbolic_batch),
      cmocka_unit_test(test_f64_is_tight),
      cmocka_unit_test(test_attention_in_scan_body),
      cmocka_unit_test(test_guard_only_when_rows_can_be_blind),
      cmocka_unit_test(test_names_derive_from_result),
      cmocka_unit_test(test_anonymous_result_round_trips),
      cmocka_unit_test(test_graph_without_attention_is_unchanged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
