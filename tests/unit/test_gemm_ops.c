/* Unit tests for the GEMM ops pack_rhs and matmul_packed: their shape rules
 * (ir/shape.c) and every error they report, the interpreter's panel layout
 * (ir/interp.c) against hand-computed values and against matmul, and the
 * tile functions lower_gemm.c emits for a target's feature string (vector
 * width and tile height). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "graph_builder.h"
#include "ir/interp.h"

/* ---- shape rules ------------------------------------------------------------------- */

/* Parses and verifies text; the diagnostics in *msgs. */
static bool parse_verify(const char *text, ir_buf *msgs, ir_graph **out) {
  ir_diag d;
  ir_diag_init(&d);
  d.capture = msgs;
  ir_graph *g = ir_parse(text, strlen(text), "gemm.sqir", &d);
  bool ok = g && ir_verify(g, &d);
  *out = g;
  return ok;
}

static void expect_valid(const char *text) {
  ir_buf msgs = {0};
  ir_graph *g;
  bool ok = parse_verify(text, &msgs, &g);
  if (!ok) print_error("unexpected: %s\n", msgs.s ? msgs.s : "");
  assert_true(ok);
  ir_graph_free(g);
  ir_buf_free(&msgs);
}

static void expect_error(const char *text, const char *substr) {
  ir_buf msgs = {0};
  ir_graph *g;
  assert_false(parse_verify(text, &msgs, &g));
  if (!msgs.s || !strstr(msgs.s, substr)) print_error("missing '%s' in:\n%s\n", substr, msgs.s ? msgs.s : "");
  assert_non_null(msgs.s);
  assert_non_null(strstr(msgs.s, substr));
  if (g) ir_graph_free(g);
  ir_buf_free(&msgs);
}

static void test_pack_rhs_shapes(void **state) {
  (void)state;
  /* Panels of 32 columns, the last one partly zero: 97 columns -> 4. */
  expect_valid("graph @p(%b: f32[37, 97]) -> (p: f32[4, 37, 32]) {\n"
               "  %p: f32[4, 37, 32] = pack_rhs %b\n  yield %p\n}\n");
  /* transpose_b reads b[N, K]. */
  expect_valid("graph @p(%b: f32[97, 37]) -> (p: f32[4, 37, 32]) {\n"
               "  %p: f32[4, 37, 32] = pack_rhs %b {transpose_b = true}\n  yield %p\n}\n");
  expect_valid("graph @p(%b: f32[K, N]) -> (p: f32[ceildiv(N, 32), K, 32]) {\n"
               "  %p: f32[ceildiv(N, 32), K, 32] = pack_rhs %b\n  yield %p\n}\n");
  expect_valid("graph @p(%b: f32[0, 32]) -> (p: f32[1, 0, 32]) {\n"
               "  %p: f32[1, 0, 32] = pack_rhs %b\n  yield %p\n}\n");
  expect_valid("graph @p(%b: f32[5, 0]) -> (p: f32[0, 5, 32]) {\n"
               "  %p: f32[0, 5, 32] = pack_rhs %b\n  yield %p\n}\n");
  /* 33 columns take two panels, 32 one. */
  expect_error("graph @p(%b: f32[8, 33]) -> (p: f32[1, 8, 32]) {\n"
               "  %p: f32[1, 8, 32] = pack_rhs %b\n  yield %p\n}\n",
               "declared type f32[1, 8, 32] but inferred f32[2, 8, 32]");
  expect_error("graph @p(%b: f32[K, N]) -> (p: f32[ceildiv(N, 32), K, 32]) {\n"
               "  %p: f32[ceildiv(N, 32), K, 32] = pack_rhs %b {transpose_b = true}\n  yield %p\n}\n",
               "inferred f32[ceildiv(K, 32), N, 32]");
  expect_error("graph @p(%b: f64[4, 8]) -> (p: f32[1, 4, 32]) {\n"
               "  %p: f32[1, 4, 32] = pack_rhs %b\n  yield %p\n}\n",
               "gemm.sqir:2:23: error: pack_rhs: operand must be an f32 matrix, got f64[4, 8]");
  expect_error("graph @p(%b: f32[2, 4, 8]) -> (p: f32[1, 4, 32]) {\n"
               "  %p: f32[1, 4, 32] = pack_rhs %b\n  yield %p\n}\n",
               "pack_rhs: operand must be an f32 matrix, got f32[2, 4, 8]");
  expect_error("graph @p(%b: f32[8]) -> (p: f32[1, 8, 32]) {\n"
               "  %p: f32[1, 8, 32] = pack_rhs %b\n  yield %p\n}\n",
               "pack_rhs: operand must be an f32 matrix, got f32[8]");
}

/* A graph c = matmul_packed(a: A, p: P) {n = N} -> C, as text. */
static char *packed_graph(const char *a, const char *p, const char *n, const char *c) {
  ir_buf b = {0};
  ir_buf_printf(&b,
                "graph @mp(%%a: %s, %%p: %s) -> (c: %s) {\n"
                "  %%c: %s = matmul_packed %%a, %%p%s%s%s\n  yield %%c\n}\n",
                a, p, c, c, n ? " {n = " : "", n ? n : "", n ? "}" : "");
  return b.s;
}

static void expect_packed(const char *a, const char *p, const char *n, const char *c, const char *error) {
  char *text = packed_graph(a, p, n, c);
  if (error)
    expect_error(text, error);
  else
    expect_valid(text);
  free(text);
}

static void test_matmul_packed_shapes(void **state) {
  (void)state;
  expect_packed("f32[3, 37]", "f32[4, 37, 32]", "97", "f32[3, 97]", NULL);
  /* a's batch dims stay; n may be symbolic when the panel count is too. */
  expect_packed("f32[2, T, 37]", "f32[4, 37, 32]", "97", "f32[2, T, 97]", NULL);
  expect_packed("f32[B, K]", "f32[ceildiv(N, 32), K, 32]", "N", "f32[B, N]", NULL);
  expect_packed("f32[3, 0]", "f32[1, 0, 32]", "5", "f32[3, 5]", NULL);
  expect_packed("f32[3, 4]", "f32[0, 4, 32]", "0", "f32[3, 0]", NULL);
  expect_packed("f32[3, 37]", "f32[4, 37, 32]", "97", "f32[3, 96]", "declared type f32[3, 96] but inferred f32[3, 97]");
  /* Panel count: 97 columns need 4 panels, and 96 need 3. */
  expect_packed("f32[3, 4]", "f32[2, 4, 32]", "97", "f32[3, 97]",
                "matmul_packed: panel counts (ceildiv(n, 32) and b's) differ: 4 vs 2");
  expect_packed("f32[3, 4]", "f32[4, 4, 32]", "96", "f32[3, 96]",
                "matmul_packed: panel counts (ceildiv(n, 32) and b's) differ: 3 vs 4");
  expect_packed("f32[3, 5]", "f32[4, 4, 32]", "97", "f32[3, 97]", "gemm.sqir:2:20: error: matmul_packed: contraction dims differ: 5 vs 4");
  expect_packed("f64[3, 4]", "f32[4, 4, 32]", "97", "f32[3, 97]",
                "matmul_packed: operand a must be f32 of rank >= 2, got f64[3, 4]");
  expect_packed("f32[4]", "f32[4, 4, 32]", "97", "f32[97]", "matmul_packed: operand a must be f32 of rank >= 2, got f32[4]");
  expect_packed("f32[3, 4]", "f32[4, 4, 16]", "97", "f32[3, 97]",
                "matmul_packed: operand b must be packed f32[P, K, 32] (pack_rhs), got f32[4, 4, 16]");
  expect_packed("f32[3, 4]", "f64[4, 4, 32]", "97", "f32[3, 97]",
                "matmul_packed: operand b must be packed f32[P, K, 32] (pack_rhs), got f64[4, 4, 32]");
  expect_packed("f32[3, 4]", "f32[4, 32]", "97", "f32[3, 97]",
                "matmul_packed: operand b must be packed f32[P, K, 32] (pack_rhs), got f32[4, 32]");
  expect_packed("f32[3, 4]", "f32[4, 4, 32]", NULL, "f32[3, 97]", "op 'matmul_packed' needs attribute 'n'");
}

/* ---- the interpreter ------------------------------------------------------------------ */

static ir_tensor tensor(int32_t rank, const int64_t *shape) {
  ir_tensor t;
  assert_true(ir_tensor_alloc(&t, IR_F32, rank, shape, 0, NULL));
  return t;
}

/* Runs the single-output graph `text` on args; the output in *out. */
static void interp(const char *text, const ir_tensor *args, int32_t n_args, ir_tensor *out) {
  ir_graph *g = tb_parse(text);
  ir_buf err = {0};
  bool ok = ir_interp_run(g, args, n_args, out, NULL, &err);
  if (!ok) print_error("interpreter: %s\n", err.s);
  assert_true(ok);
  ir_buf_free(&err);
  ir_graph_free(g);
}

/* p[q, k, r] = b[k, 32q + r], zero from column N on, whether b comes as
 * [K, N] or transposed. */
static void test_interp_pack_layout(void **state) {
  (void)state;
  int64_t k = 3, n = 33;
  ir_tensor b = tensor(2, (int64_t[]){k, n}), bt = tensor(2, (int64_t[]){n, k}), p, pt;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < n; j++) b.data[i * n + j] = bt.data[j * k + i] = (double)(100 * i + j + 1);
  interp("graph @p(%b: f32[K, N]) -> (p: f32[ceildiv(N, 32), K, 32]) {\n"
         "  %p: f32[ceildiv(N, 32), K, 32] = pack_rhs %b\n  yield %p\n}\n",
         &b, 1, &p);
  interp("graph @p(%b: f32[N, K]) -> (p: f32[ceildiv(N, 32), K, 32]) {\n"
         "  %p: f32[ceildiv(N, 32), K, 32] = pack_rhs %b {transpose_b = true}\n  yield %p\n}\n",
         &bt, 1, &pt);
  assert_int_equal(p.rank, 3);
  assert_int_equal(p.shape[0], 2);
  assert_int_equal(p.shape[1], k);
  assert_int_equal(p.shape[2], 32);
  for (int64_t q = 0; q < 2; q++)
    for (int64_t i = 0; i < k; i++)
      for (int64_t r = 0; r < 32; r++) {
        int64_t j = 32 * q + r;
        double want = j < n ? (double)(100 * i + j + 1) : 0.0;
        assert_true(p.data[(q * k + i) * 32 + r] == want);
        assert_true(pt.data[(q * k + i) * 32 + r] == want);
      }
  ir_tensor_free(&b);
  ir_tensor_free(&bt);
  ir_tensor_free(&p);
  ir_tensor_free(&pt);
}

/* matmul_packed(a, pack_rhs(b)) is matmul(a, b) exactly: the same sums in
 * the same order, with a batched a and a ragged last panel. */
static void test_interp_packed_equals_matmul(void **state) {
  (void)state;
  int64_t k = 37, n = 45;
  ir_tensor args[2] = {tensor(3, (int64_t[]){2, 3, k}), tensor(2, (int64_t[]){n, k})}, outs[2];
  uint32_t seed = 12345;
  for (int i = 0; i < 2; i++)
    for (int64_t e = 0; e < args[i].numel; e++) {
      seed = seed * 1664525u + 1013904223u;
      args[i].data[e] = ir_round_to_dtype(IR_F32, (double)(seed >> 8) / 16777216.0 * 2.0 - 1.0);
    }
  interp("graph @mm(%a: f32[2, 3, K], %b: f32[N, K]) -> (c: f32[2, 3, N], d: f32[2, 3, N]) {\n"
         "  %c: f32[2, 3, N] = matmul %a, %b {transpose_b = true}\n"
         "  %p: f32[ceildiv(N, 32), K, 32] = pack_rhs %b {transpose_b = true}\n"
         "  %d: f32[2, 3, N] = matmul_packed %a, %p {n = N}\n"
         "  yield %c, %d\n}\n",
         args, 2, outs);
  assert_int_equal(outs[1].numel, 2 * 3 * n);
  assert_memory_equal(outs[0].data, outs[1].data, sizeof(double) * (size_t)outs[0].numel);
  bool nonzero = false;
  for (int64_t e = 0; e < outs[0].numel; e++) nonzero |= outs[0].data[e] != 0;
  assert_true(nonzero);
  for (int i = 0; i < 2; i++) {
    ir_tensor_free(&args[i]);
    ir_tensor_free(&outs[i]);
  }
}

/* A packed operand that does not hold [K, n] is a run-time error. */
static void test_interp_packed_mismatch(void **state) {
  (void)state;
  ir_graph *g = tb_parse("graph @mp(%a: f32[3, K], %p: f32[P, K, 32]) -> (c: f32[3, N]) {\n"
                         "  %c: f32[3, N] = matmul_packed %a, %p {n = N}\n  yield %c\n}\n");
  ir_tensor args[2] = {tensor(2, (int64_t[]){3, 4}), tensor(3, (int64_t[]){2, 4, 32})}, out;
  ir_dim_binding n = {"N", 97};
  ir_interp_opts opts = {&n, 1, 0};
  ir_buf err = {0};
  assert_false(ir_interp_run(g, args, 2, &out, &opts, &err));
  assert_non_null(strstr(err.s, "matmul_packed 'c': packed operand [2, 4, 32] does not hold [4, 97]"));
  err.len = 0;
  n.value = 64;
  assert_true(ir_interp_run(g, args, 2, &out, &opts, &err));
  assert_int_equal(out.shape[1], 64);
  ir_tensor_free(&out);
  for (int i = 0; i < 2; i++) ir_tensor_free(&args[i]);
  ir_buf_free(&err);
  ir_graph_free(g);
}

/* ---- tile functions for a target ----------------------------------------------------- */

/* LLVM IR text of a plain f32 matmul compiled at -O0 (tile functions not
 * inlined) for triple/cpu/features. */
static char *tile_ir(const char *triple, const char *cpu, const char *features) {
  ir_graph *g = tb_parse("graph @mm(%a: f32[M, K], %b: f32[K, N]) -> (c: f32[M, N]) {\n"
                         "  %c: f32[M, N] = matmul %a, %b\n  yield %c\n}\n");
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0}, text = {0};
  d.capture = &msgs;
  cg_options o = {triple, cpu, features, 0, CG_MEMPLAN_CHECK_OFF};
  cg_program *p = cg_compile(g, &o, &d);
  if (!p) print_error("cg_compile: %s\n", msgs.s ? msgs.s : "");
  assert_non_null(p);
  assert_true(cg_emit(p, CG_EMIT_LLVM, &text, &d));
  cg_program_free(p);
  ir_graph_free(g);
  ir_buf_free(&msgs);
  return text.s;
}

/* The body of `define internal void @NAME(` in ir, up to its closing "\n}"
 * (a copy), or NULL. */
static char *function(const char *ir, const char *name) {
  char head[96];
  snprintf(head, sizeof head, "define internal void @%s(", name);
  const char *at = strstr(ir, head);
  if (!at) return NULL;
  const char *end = strstr(at, "\n}");
  assert_non_null(end);
  size_t len = (size_t)(end - at);
  char *s = malloc(len + 1);
  memcpy(s, at, len);
  s[len] = 0;
  return s;
}

/* Tiles of max_rows rows (and none taller) whose panel loads are vectors
 * `vec`; single rows run `gemv_panels` panels at once. */
static void expect_tiles(const char *ir, int max_rows, int gemv_panels, const char *vec) {
  char name[48], load[64];
  snprintf(load, sizeof load, "= load %s, ptr", vec);
  for (int rows = 1; rows <= max_rows + 1; rows++) {
    snprintf(name, sizeof name, "gemm.tile.m%dp1", rows);
    char *fn = function(ir, name);
    if (rows > max_rows) {
      if (fn) print_error("unexpected %s\n", name);
      assert_null(fn);
      break;
    }
    if (!fn || !strstr(fn, load)) print_error("%s missing or without '%s'\n", name, load);
    assert_non_null(fn);
    assert_non_null(strstr(fn, load));
    free(fn);
  }
  snprintf(name, sizeof name, "gemm.tile.m1p%d", gemv_panels);
  char *fn = function(ir, name);
  if (gemv_panels == 1) {
    assert_non_null(fn);
  } else {
    if (!fn || !strstr(fn, load)) print_error("%s missing or without '%s'\n", name, load);
    assert_non_null(fn);
    assert_non_null(strstr(fn, load));
  }
  free(fn);
}

static void test_tiles_follow_features(void **state) {
  (void)state;
  char *ir = tile_ir("x86_64-unknown-linux-gnu", "znver4", "+avx512f,+avx512vl,+avx2,+avx,+fma");
  expect_tiles(ir, 12, 4, "<16 x float>");
  free(ir);
  ir = tile_ir("x86_64-unknown-linux-gnu", "x86-64-v3", "+avx2,+avx,+fma");
  expect_tiles(ir, 3, 2, "<8 x float>");
  assert_null(strstr(ir, "<16 x float>"));
  free(ir);
  ir = tile_ir("aarch64-unknown-linux-gnu", "neoverse-n1", "+neon");
  expect_tiles(ir, 1, 1, "<4 x float>");
  assert_null(strstr(ir, "<8 x float>"));
  free(ir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pack_rhs_shapes),
      cmocka_unit_test(test_matmul_packed_shapes),
      cmocka_unit_test(test_interp_pack_layout),
      cmocka_unit_test(test_interp_packed_equals_matmul),
      cmocka_unit_test(test_interp_packed_mismatch),
      cmocka_unit_test(test_tiles_follow_features),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
