/* Unit tests for codegen/lower_linalg.c and codegen/lower_data.c: every op
 * they lower runs through the reference interpreter and through compiled
 * code (cg_compile at -O0 and -O2, ORC JIT, cg_jit_run_tensors) on
 * fixed-seed random inputs, and the results are compared.
 *
 * Graphs use only the ops under test plus graph inputs, so these tests do
 * not depend on the elementwise lowerings.
 *
 * Tolerances (close_enough):
 *  - data movement, max/min reductions, argmax/argmin and integer results:
 *    bitwise equal (NaN equals NaN).
 *  - float sums (matmul, reduce_sum/mean, cumsum) and products (reduce_prod,
 *    cumprod): compiled code accumulates f32/f16/bf16 in float, the
 *    interpreter in double. A sequential float sum or product of n terms is
 *    within gamma_n = n*2^-24 of exact relative to sum|terms| (resp.
 *    prod|x|); the tests use n <= 80, so gamma_n <= 5e-6 and the bound
 *    |got - ref| <= 1e-5 * mag holds, where mag is the same graph evaluated
 *    by the interpreter on |inputs| (sum|terms| exactly).
 *  - softmax: relative 1e-5 (exp is within an ulp, the row sum within
 *    gamma_n); layernorm, logsumexp and logcumsumexp: 1e-5 * (|ref| + 1),
 *    as their outputs are O(1) and their error comes from O(1) row sums.
 *  - f16/bf16/f32 outputs get one ulp of their dtype on top: the exact
 *    value is rounded once from double by the interpreter and once from
 *    float by compiled code, which may pick neighbouring values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_harness.h"

static ir_val scalar_input(ch_harness *h, ir_dtype dt, double v) {
  return ch_input_with(h, dt, "", 0, NULL, (const double[]){v});
}

/* ---- comparing ------------------------------------------------------------------------- */

typedef enum cmp_mode { CMP_EXACT, CMP_SUM, CMP_REL, CMP_ABSREL } cmp_mode;
typedef struct tolerance {
  cmp_mode mode;
  double tol;
} tolerance;
#define EXACT ((tolerance){CMP_EXACT, 0})
#define SUM_BOUND ((tolerance){CMP_SUM, 1e-5})
#define RELATIVE ((tolerance){CMP_REL, 1e-5})
#define ABS_REL ((tolerance){CMP_ABSREL, 1e-5})

/* One unit in the last place of x in dtype dt (0 for f64 and integers). */
static double ulp(ir_dtype dt, double x) {
  int digits = dt == IR_F16 ? 11 : dt == IR_BF16 ? 8 : dt == IR_F32 ? 24 : 0;
  if (!digits || x == 0 || !isfinite(x)) return 0;
  int e;
  frexp(x, &e);
  int emin = dt == IR_F16 ? -13 : -125;
  if (e < emin) e = emin;
  return ldexp(1.0, e - digits);
}

static bool close_enough(ir_dtype dt, double ref, double got, double mag, tolerance t) {
  if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got);
  /* Integers as values: the interpreter's double products can hold -0. */
  if (!ir_dtype_is_float(dt)) return ref == got;
  if (t.mode == CMP_EXACT) return ref == got && signbit(ref) == signbit(got);
  if (ref == got) return true;
  if (isinf(ref) || isinf(got)) return false;
  double bound = t.mode == CMP_SUM ? t.tol * mag : t.mode == CMP_REL ? t.tol * fabs(ref) : t.tol * (fabs(ref) + 1);
  return fabs(got - ref) <= bound + ulp(dt, ref);
}

/* The interpreter on |float inputs|: sum|terms| for sums and products. */
static void magnitudes(const ch_harness *h, ir_tensor *mag) {
  ir_tensor abs_args[CH_MAX_ARGS];
  for (int32_t i = 0; i < h->n_args; i++) {
    const ir_tensor *a = &h->args[i];
    assert_true(ir_tensor_alloc(&abs_args[i], a->dtype, a->rank, a->shape, 0, NULL));
    for (int64_t e = 0; e < a->numel; e++)
      abs_args[i].data[e] = ir_dtype_is_float(a->dtype) ? fabs(a->data[e]) : a->data[e];
  }
  ir_buf err = {0};
  bool ok = ir_interp_run(h->g, abs_args, h->n_args, mag, NULL, &err);
  if (!ok) print_error("interpreter on |inputs|: %s\n", err.s);
  assert_true(ok);
  ir_buf_free(&err);
  for (int32_t i = 0; i < h->n_args; i++) ir_tensor_free(&abs_args[i]);
}

/* A ch_compare_fn: every output within the tolerance *(const tolerance *)ud;
 * sum bounds take their magnitudes from the interpreter on |inputs|. */
static void compare_outputs(const ch_harness *h, const ir_tensor *ref, const ir_tensor *got, int32_t n, int opt,
                            const void *ud) {
  tolerance t = *(const tolerance *)ud;
  ir_tensor mag[CH_MAX_OUTS];
  if (t.mode == CMP_SUM) magnitudes(h, mag);
  for (int32_t o = 0; o < n; o++) {
    ch_assert_same_shape(&ref[o], &got[o]);
    for (int64_t e = 0; e < ref[o].numel; e++) {
      double m = t.mode == CMP_SUM ? fabs(mag[o].data[e]) : 0;
      if (close_enough(ref[o].dtype, ref[o].data[e], got[o].data[e], m, t)) continue;
      print_error("-O%d output %d (%s) element %lld: interpreter %.17g, compiled %.17g (mag %g)\n", opt, o,
                  ir_dtype_name(ref[o].dtype), (long long)e, ref[o].data[e], got[o].data[e], m);
      fail();
    }
  }
  if (t.mode == CMP_SUM) ch_free_outputs(mag, n);
}

/* Finish the graph with outputs outs, compile it at -O0 and -O2, and for
 * every variant of the arguments run it both ways and compare. Frees h. */
static void check_variants(ch_harness *h, int32_t n, const ir_val *outs, tolerance t, int32_t n_variants,
                           ch_vary_fn vary, const void *ud) {
  ch_check_variants(h, n, outs, n_variants, vary, ud, compare_outputs, &t);
}

static void check(ch_harness *h, int32_t n, const ir_val *outs, tolerance t) {
  check_variants(h, n, outs, t, 1, NULL, NULL);
}
#define CHECK(h, t, ...) check(h, TB_NVALS(__VA_ARGS__), TB_VALS(__VA_ARGS__), t)

static const ir_dtype FLOATS[] = {IR_F32, IR_F64, IR_F16, IR_BF16};
static const ir_dtype NUMERIC[] = {IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64};
static const ir_dtype ALL[] = {IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64, IR_BOOL};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- matmul ----------------------------------------------------------------------------------- */

/* All four transpose variants of an M x K by K x N product in one graph. */
static void matmul_variants(ir_dtype dt, int64_t m, int64_t k, int64_t n, uint64_t seed) {
  ch_harness *h = ch_new("matmul", seed);
  char mk[32], km[32], kn[32], nk[32];
  snprintf(mk, sizeof mk, "%lld, %lld", (long long)m, (long long)k);
  snprintf(km, sizeof km, "%lld, %lld", (long long)k, (long long)m);
  snprintf(kn, sizeof kn, "%lld, %lld", (long long)k, (long long)n);
  snprintf(nk, sizeof nk, "%lld, %lld", (long long)n, (long long)k);
  ir_val a = ch_input_with(h, dt, mk, 2, CH_SHAPE(m, k), NULL), at = ch_input_with(h, dt, km, 2, CH_SHAPE(k, m), NULL);
  ir_val b = ch_input_with(h, dt, kn, 2, CH_SHAPE(k, n), NULL), bt = ch_input_with(h, dt, nk, 2, CH_SHAPE(n, k), NULL);
  ir_val r0 = ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a, b);
  ir_val r1 = ch_op(h, IR_OP_MATMUL, TB_ATTRS(TB_INT("transpose_a", 1)), at, b);
  ir_val r2 = ch_op(h, IR_OP_MATMUL, TB_ATTRS(TB_INT("transpose_b", 1)), a, bt);
  ir_val r3 = ch_op(h, IR_OP_MATMUL, TB_ATTRS(TB_INT("transpose_a", 1), TB_INT("transpose_b", 1)), at, bt);
  CHECK(h, SUM_BOUND, r0, r1, r2, r3);
}

static void test_matmul_shapes_and_dtypes(void **state) {
  static const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {0, 4, 3}, {4, 0, 3}, {2, 3, 0}, {13, 17, 11}, {8, 16, 9}};
  for (int d = 0; d < COUNT(NUMERIC); d++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      matmul_variants(NUMERIC[d], shapes[s][0], shapes[s][1], shapes[s][2], 100 + s);
}

/* Batch dims broadcast when declared 1 (either side), b may have no batch
 * dims, and symbolic dims are bound at run time. */
static void test_matmul_batched(void **state) {
  for (int d = 0; d < COUNT(NUMERIC); d++) {
    ch_harness *h = ch_new("batched", 7);
    ir_val a = ch_input(h, NUMERIC[d], "2, 3, 4, 5", 2, 3, 4, 5), b = ch_input(h, NUMERIC[d], "5, 6", 5, 6);
    ir_val a1 = ch_input(h, NUMERIC[d], "1, 3, 5", 1, 3, 5), b3 = ch_input(h, NUMERIC[d], "4, 5, 2", 4, 5, 2);
    ir_val as = ch_input(h, NUMERIC[d], "B, M, K", 3, 7, 5), bs = ch_input(h, NUMERIC[d], "B, N, K", 3, 2, 5);
    ir_val bb = ch_input(h, NUMERIC[d], "2, 1, 6, 5", 2, 1, 6, 5);
    ir_val r0 = ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a, b);
    ir_val r1 = ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a1, b3);
    ir_val r2 = ch_op(h, IR_OP_MATMUL, TB_ATTRS(TB_INT("transpose_b", 1)), as, bs);
    ir_val r3 = ch_op(h, IR_OP_MATMUL, TB_ATTRS(TB_INT("transpose_b", 1)), a, bb);
    CHECK(h, SUM_BOUND, r0, r1, r2, r3);
  }
}

/* ---- reductions -------------------------------------------------------------------------------- */

typedef struct axes_case {
  int32_t n;
  int64_t v[3];
} axes_case;

static ir_val reduce(ch_harness *h, ir_opkind k, ir_val x, axes_case a, bool keep) {
  const tb_attr attrs[] = {
      {.name = "axes", .kind = TB_A_INTS, .n = a.n, .ints = a.v}, TB_INT("keepdims", keep), {.name = NULL}};
  return ch_op(h, k, attrs, x);
}

static const axes_case AXES[] = {{1, {2}}, {1, {-1}}, {1, {0}}, {1, {1}}, {2, {0, 2}}, {2, {-3, 1}},
                                 {3, {0, 1, 2}}, {0, {0}}};

static tolerance reduce_tolerance(ir_opkind k) {
  switch (k) {
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_MIN: return EXACT;
  case IR_OP_REDUCE_LOGSUMEXP: return ABS_REL;
  default: return SUM_BOUND;
  }
}

static void reduce_all_axes(ir_opkind k, ir_dtype dt, const char *dims, const int64_t *shape, bool keep,
                            int32_t n_variants, ch_vary_fn vary) {
  ch_harness *h = ch_new("reduce", 11);
  ir_val x = ch_input_with(h, dt, dims, 3, shape, NULL);
  ir_val r[CH_MAX_OUTS];
  for (int a = 0; a < COUNT(AXES); a++) r[a] = reduce(h, k, x, AXES[a], keep);
  check_variants(h, COUNT(AXES), r, reduce_tolerance(k), n_variants, vary, NULL);
}

/* Shapes for the symbolic operand: odd sizes, all ones, an empty axis. */
static void reduce_shapes(ch_harness *h, int32_t v, const void *ud) {
  static const int64_t shapes[][3] = {{3, 5, 7}, {1, 1, 1}, {2, 0, 3}};
  ch_refill(h, 0, 3, shapes[v]);
}

static void test_reduce(void **state) {
  static const ir_opkind kinds[] = {IR_OP_REDUCE_SUM, IR_OP_REDUCE_MAX, IR_OP_REDUCE_MIN,
                                    IR_OP_REDUCE_MEAN, IR_OP_REDUCE_PROD, IR_OP_REDUCE_LOGSUMEXP};
  for (int ki = 0; ki < COUNT(kinds); ki++)
    for (int d = 0; d < COUNT(NUMERIC); d++) {
      ir_opkind k = kinds[ki];
      ir_dtype dt = NUMERIC[d];
      bool float_only = k == IR_OP_REDUCE_MEAN || k == IR_OP_REDUCE_LOGSUMEXP;
      if (float_only && !ir_dtype_is_float(dt)) continue;
      /* Empty reductions give the identity; max/min of integers have none. */
      bool int_extremum = !ir_dtype_is_float(dt) && (k == IR_OP_REDUCE_MAX || k == IR_OP_REDUCE_MIN);
      reduce_all_axes(k, dt, "3, 5, 7", CH_SHAPE(3, 5, 7), d & 1, 1, NULL);
      /* Symbolic dims compile slowly at -O2 (vector loops with run-time
       * trip counts): a few dtypes, one program for all shapes. */
      if (dt == IR_F32 || dt == IR_I32 || dt == IR_BF16)
        reduce_all_axes(k, dt, "A, B, C", CH_SHAPE(3, 5, 7), !(d & 1), int_extremum ? 2 : 3, reduce_shapes);
    }
}

/* NaN and infinities: max/min propagate NaN, logsumexp of +inf is +inf and
 * of all -inf is -inf, sums of inf - inf are NaN. */
static void test_reduce_special_values(void **state) {
  static const ir_opkind kinds[] = {IR_OP_REDUCE_SUM, IR_OP_REDUCE_MAX, IR_OP_REDUCE_MIN,
                                    IR_OP_REDUCE_MEAN, IR_OP_REDUCE_PROD, IR_OP_REDUCE_LOGSUMEXP};
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("special", 5);
    ir_val x = ch_input_data(
        h, FLOATS[d], "4, 3",
        CH_DATA(1, NAN, 2, -INFINITY, -INFINITY, -INFINITY, INFINITY, 1, -2, INFINITY, -INFINITY, 0), 4, 3);
    ir_val r[6];
    for (int k = 0; k < 6; k++) r[k] = reduce(h, kinds[k], x, (axes_case){1, {1}}, false);
    CHECK(h, ABS_REL, r[0], r[1], r[2], r[3], r[4], r[5]);
  }
}

/* ---- argmax / argmin ------------------------------------------------------------------------------ */

static void test_argreduce(void **state) {
  for (int d = 0; d < COUNT(NUMERIC); d++)
    for (int keep = 0; keep <= 1; keep++) {
      ch_harness *h = ch_new("arg", 21 + (uint64_t)keep);
      ir_val x = ch_input(h, NUMERIC[d], "4, 6, 5", 4, 6, 5);
      /* Few distinct values: ties, where the first index must win. */
      for (int64_t e = 0; e < h->args[0].numel; e++) h->args[0].data[e] = (double)(ch_next_random(h) % 3);
      ir_val y = ch_input(h, NUMERIC[d], "T, 1", 7, 1);
      ir_val r[CH_MAX_OUTS];
      int n = 0;
      for (int axis = 0; axis < 3; axis++) {
        r[n++] = ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", axis), TB_INT("keepdims", keep)), x);
        r[n++] = ch_op(h, IR_OP_ARGMIN, TB_ATTRS(TB_INT("axis", axis), TB_INT("keepdims", keep)), x);
      }
      r[n++] = ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", 0), TB_INT("keepdims", keep)), y);
      r[n++] = ch_op(h, IR_OP_ARGMIN, TB_ATTRS(TB_INT("axis", 1), TB_INT("keepdims", keep)), y);
      check(h, n, r, EXACT);
    }
  /* A NaN wins over everything, the first NaN over later ones. */
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("arg_nan", 3);
    ir_val x =
        ch_input_data(h, FLOATS[d], "3, 4", CH_DATA(1, NAN, 5, NAN, -INFINITY, -INFINITY, 2, 2, 3, 1, 3, NAN), 3, 4);
    ir_val a0 = ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", 1)), x),
           a1 = ch_op(h, IR_OP_ARGMIN, TB_ATTRS(TB_INT("axis", 1)), x);
    ir_val a2 = ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", 0)), x),
           a3 = ch_op(h, IR_OP_ARGMIN, TB_ATTRS(TB_INT("axis", 0)), x);
    CHECK(h, EXACT, a0, a1, a2, a3);
  }
  /* An empty axis is fine when the result is empty too. */
  ch_harness *h = ch_new("arg_empty", 4);
  ir_val x = ch_input(h, IR_F32, "0, 0", 0, 0);
  ir_val r = ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", 1)), x);
  CHECK(h, EXACT, r);
}

/* ---- softmax, layernorm ------------------------------------------------------------------------------ */

static void test_softmax(void **state) {
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("softmax", 31);
    ir_val x = ch_input(h, FLOATS[d], "3, 5, 7", 3, 5, 7);
    ir_val z = ch_input(h, FLOATS[d], "2, 0, 3", 2, 0, 3), one = ch_input(h, FLOATS[d], "1", 1);
    ir_val s = ch_input(h, FLOATS[d], "B, T", 4, 13);
    ir_val r0 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 2)), x),
           r1 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 1)), x);
    ir_val r2 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 0)), x),
           r3 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 1)), z);
    ir_val r4 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 0)), one),
           r5 = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 1)), s);
    CHECK(h, RELATIVE, r0, r1, r2, r3, r4, r5);
  }
  /* Rows with infinities: -inf entries give 0, an all -inf row NaN. */
  ch_harness *h = ch_new("softmax_inf", 1);
  ir_val x = ch_input_data(h, IR_F32, "2, 3", CH_DATA(-INFINITY, 0, 1, -INFINITY, -INFINITY, -INFINITY), 2, 3);
  ir_val r = ch_op(h, IR_OP_SOFTMAX, TB_ATTRS(TB_INT("axis", 1)), x);
  CHECK(h, RELATIVE, r);
}

static void test_layernorm(void **state) {
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("layernorm", 41);
    ir_dtype dt = FLOATS[d];
    ir_val x = ch_input(h, dt, "3, 7", 3, 7), g = ch_input(h, dt, "7", 7), b = ch_input(h, dt, "7", 7);
    ir_val x3 = ch_input(h, dt, "2, 3, 1", 2, 3, 1), xs = ch_input(h, dt, "B, D", 5, 11);
    ir_val gs = ch_input(h, dt, "E", 11), ze = ch_input(h, dt, "0, 4", 0, 4), zd = ch_input(h, dt, "3, 0", 3, 0);
    ir_val r0 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, x), r1 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, x, g);
    ir_val r2 = ch_op(h, IR_OP_LAYERNORM, TB_ATTRS(TB_FLOAT("eps", 0.5)), x, g, b);
    ir_val r3 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, x3), r4 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, xs, gs);
    ir_val r5 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, ze), r6 = ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, zd);
    CHECK(h, ABS_REL, r0, r1, r2, r3, r4, r5, r6);
  }
}

/* ---- cumulative ops -------------------------------------------------------------------------------- */

/* Every axis, each forward/reverse and inclusive/exclusive, in one graph. */
static void cumulative_variants(ir_opkind k, ir_dtype dt, const char *dims, int32_t rank,
                                const int64_t *shape, uint64_t seed, tolerance t) {
  ch_harness *h = ch_new("cumulative", seed);
  ir_val x = ch_input_with(h, dt, dims, rank, shape, NULL);
  ir_val r[CH_MAX_OUTS];
  int32_t n = 0;
  for (int axis = 0; axis < rank; axis++)
    for (int v = 0; v < 4; v++)
      r[n++] = ch_op(h, k, TB_ATTRS(TB_INT("axis", axis), TB_INT("reverse", v & 1), TB_INT("exclusive", v >> 1)), x);
  check(h, n, r, t);
}

static void test_cumulative(void **state) {
  for (int d = 0; d < COUNT(NUMERIC); d++) {
    ir_dtype dt = NUMERIC[d];
    cumulative_variants(IR_OP_CUMSUM, dt, "3, 5, 7", 3, CH_SHAPE(3, 5, 7), 51, SUM_BOUND);
    cumulative_variants(IR_OP_CUMSUM, dt, "T, 1, 0", 3, CH_SHAPE(4, 1, 0), 52, SUM_BOUND);
    cumulative_variants(IR_OP_CUMPROD, dt, "2, 6, 3", 3, CH_SHAPE(2, 6, 3), 53, SUM_BOUND);
    cumulative_variants(IR_OP_CUMPROD, dt, "B, T", 2, CH_SHAPE(1, 5), 54, SUM_BOUND);
    if (!ir_dtype_is_float(dt)) continue;
    cumulative_variants(IR_OP_LOGCUMSUMEXP, dt, "3, 5, 7", 3, CH_SHAPE(3, 5, 7), 55, ABS_REL);
    cumulative_variants(IR_OP_LOGCUMSUMEXP, dt, "0, 2", 2, CH_SHAPE(0, 2), 56, ABS_REL);
  }
  /* logcumsumexp through infinities and NaN. */
  ch_harness *h = ch_new("lcse_special", 2);
  ir_val x = ch_input_data(h, IR_F32, "2, 4", CH_DATA(-INFINITY, -INFINITY, 3, INFINITY, 1, NAN, 1, 1), 2, 4);
  ir_val r0 = ch_op(h, IR_OP_LOGCUMSUMEXP, TB_ATTRS(TB_INT("axis", 1)), x);
  ir_val r1 = ch_op(h, IR_OP_LOGCUMSUMEXP, TB_ATTRS(TB_INT("axis", 0), TB_INT("exclusive", 1)), x);
  CHECK(h, ABS_REL, r0, r1);
}

/* ---- data movement ------------------------------------------------------------------------------------ */

static void test_reshape_transpose(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    ch_harness *h = ch_new("reshape", 61);
    ir_val x = ch_input(h, dt, "2, 3, 5", 2, 3, 5), s = ch_input(h, dt, "B, T, 4", 3, 7, 4);
    ir_val sc = ch_input_with(h, dt, "", 0, NULL, NULL), z = ch_input(h, dt, "0, 3", 0, 3);
    ir_val r0 = ch_declared(h, IR_OP_RESHAPE, x, tb_type(h->g, dt, "5, 6"));
    ir_val r1 = ch_declared(h, IR_OP_RESHAPE, s, tb_type(h->g, dt, "B*T, 4"));
    ir_val r2 = ch_op(h, IR_OP_TRANSPOSE, TB_ATTRS(TB_INTS("perm", 3, 2, 0, 1)), x);
    ir_val r3 = ch_op(h, IR_OP_TRANSPOSE, TB_ATTRS(TB_INTS("perm", 3, 1, 0, 2)), s);
    ir_val r4 = ch_op(h, IR_OP_TRANSPOSE, TB_ATTRS(TB_INTS("perm", 3, 0, 1, 2)), x);
    ir_val r5 = ch_op(h, IR_OP_TRANSPOSE, TB_ATTRS(TB_INTS("perm", 0, 0)), sc);
    ir_val r6 = ch_op(h, IR_OP_TRANSPOSE, TB_ATTRS(TB_INTS("perm", 2, 1, 0)), z);
    ir_val r7 = ch_declared(h, IR_OP_RESHAPE, sc, tb_type(h->g, dt, "1, 1"));
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6, r7);
  }
}

static void test_slice(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    ch_harness *h = ch_new("slice", 71);
    ir_val x = ch_input(h, dt, "4, 11, 3", 4, 11, 3), s = ch_input(h, dt, "T, 2", 9, 2);
    ir_val r0 = ch_op(h, IR_OP_SLICE, TB_ATTRS(TB_INT("axis", 1), TB_DIM("start", "2"), TB_DIM("end", "9")), x);
    ir_val r1 = ch_op(h, IR_OP_SLICE,
                      TB_ATTRS(TB_INT("axis", 1), TB_DIM("start", "1"), TB_DIM("end", "11"), TB_INT("step", 3)), x);
    ir_val r2 = ch_op(h, IR_OP_SLICE,
                      TB_ATTRS(TB_INT("axis", 2), TB_DIM("start", "0"), TB_DIM("end", "3"), TB_INT("step", 2)), x);
    ir_val r3 = ch_op(h, IR_OP_SLICE, TB_ATTRS(TB_INT("axis", 0), TB_DIM("start", "2"), TB_DIM("end", "2")), x);
    ir_val r4 = ch_op(h, IR_OP_SLICE, TB_ATTRS(TB_INT("axis", 0), TB_DIM("start", "1"), TB_DIM("end", "T-1")), s);
    ir_val r5 = ch_op(h, IR_OP_SLICE,
                      TB_ATTRS(TB_INT("axis", 0), TB_DIM("start", "0"), TB_DIM("end", "T"), TB_INT("step", 4)), s);
    ir_val r6 = ch_op(h, IR_OP_SLICE, TB_ATTRS(TB_INT("axis", 1), TB_DIM("start", "1"), TB_DIM("end", "2")), s);
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6);
  }
}

/* Indices before the start, inside, and past the end are clamped. */
static void set_index(ch_harness *h, int32_t v, const void *ud) {
  static const double indices[] = {-3, 0, 2, 4, 100};
  h->args[h->n_args - 1].data[0] = indices[v];
}

static void test_dynamic_slices(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], index_dt = it ? IR_I64 : IR_I32;
      ch_harness *h = ch_new("dynamic", 81);
      ir_val x = ch_input(h, dt, "3, 6, 2", 3, 6, 2), u = ch_input(h, dt, "3, 2, 2", 3, 2, 2);
      ir_val s = ch_input(h, dt, "T, 5", 4, 5), us = ch_input(h, dt, "3, 5", 3, 5);
      ir_val idx = scalar_input(h, index_dt, 0);
      ir_val r0 = ch_op(h, IR_OP_DYNAMIC_SLICE, TB_ATTRS(TB_INT("axis", 1), TB_DIM("size", "2")), x, idx);
      ir_val r1 = ch_op(h, IR_OP_DYNAMIC_SLICE, TB_ATTRS(TB_INT("axis", 0), TB_DIM("size", "T-1")), s, idx);
      ir_val r2 = ch_op(h, IR_OP_DYNAMIC_SLICE, TB_ATTRS(TB_INT("axis", 2), TB_DIM("size", "0")), x, idx);
      ir_val r3 = ch_op(h, IR_OP_DYNAMIC_UPDATE_SLICE, TB_ATTRS(TB_INT("axis", 1)), x, u, idx);
      ir_val r4 = ch_op(h, IR_OP_DYNAMIC_UPDATE_SLICE, TB_ATTRS(TB_INT("axis", 0)), s, us, idx);
      ir_val r5 = ch_op(h, IR_OP_DYNAMIC_SLICE, TB_ATTRS(TB_INT("axis", 1), TB_DIM("size", "6")), x, idx);
      const ir_val outs[] = {r0, r1, r2, r3, r4, r5};
      check_variants(h, 6, outs, EXACT, 5, set_index, NULL);
    }
}

static void test_concat_split(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    ch_harness *h = ch_new("concat", 91);
    ir_val a = ch_input(h, dt, "2, 3", 2, 3), b = ch_input(h, dt, "2, 0", 2, 0), c = ch_input(h, dt, "2, 5", 2, 5);
    ir_val s = ch_input(h, dt, "T, 3", 4, 3), t = ch_input(h, dt, "U, 3", 1, 3);
    ir_val x = ch_input(h, dt, "3, 10", 3, 10), xs = ch_input(h, dt, "N, 2", 7, 2);
    ir_val r0 = ch_op(h, IR_OP_CONCAT, TB_ATTRS(TB_INT("axis", 1)), a, b, c);
    ir_val r1 = ch_op(h, IR_OP_CONCAT, TB_ATTRS(TB_INT("axis", 0)), s, t, a);
    ir_val r2 = ch_op(h, IR_OP_CONCAT, TB_ATTRS(TB_INT("axis", 0)), a);
    ir_opid sp = ch_build(h, IR_OP_SPLIT, 1, &x, TB_ATTRS(TB_INT("axis", 1), TB_DIMS("sizes", 4, "3", "0", "6", "1")));
    ir_opid sp2 = ch_build(h, IR_OP_SPLIT, 1, &xs, TB_ATTRS(TB_INT("axis", 0), TB_DIMS("sizes", 2, "2", "N-2")));
    const ir_op *o = ir_o(h->g, sp), *o2 = ir_o(h->g, sp2);
    CHECK(h, EXACT, r0, r1, r2, o->out[0], o->out[1], o->out[2], o2->out[0], o2->out[1]);
  }
}

static void test_broadcast_reverse_pad(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    ch_harness *h = ch_new("bcast", 101);
    ir_val a = ch_input(h, dt, "3, 1", 3, 1), b = ch_input(h, dt, "1", 1), s = ch_input(h, dt, "T, 2", 5, 2);
    ir_val r0 = ch_declared(h, IR_OP_BROADCAST, a, tb_type(h->g, dt, "2, 3, 5"));
    ir_val r1 = ch_declared(h, IR_OP_BROADCAST, b, tb_type(h->g, dt, "4"));
    ir_val r2 = ch_declared(h, IR_OP_BROADCAST, s, tb_type(h->g, dt, "3, T, 2"));
    ir_val r3 = ch_op(h, IR_OP_REVERSE, TB_ATTRS(TB_INT("axis", 0)), s);
    ir_val r4 = ch_op(h, IR_OP_REVERSE, TB_ATTRS(TB_INT("axis", 1)), s);
    double value = dt == IR_BOOL ? 1 : ir_dtype_is_float(dt) ? -1.3 : 7;
    ir_val r5 =
        ch_op(h, IR_OP_PAD,
              TB_ATTRS(TB_INT("axis", 0), TB_DIM("low", "2"), TB_DIM("high", "T"), TB_FLOAT("value", value)), s);
    ir_val r6 = ch_op(h, IR_OP_PAD, TB_ATTRS(TB_INT("axis", 1), TB_DIM("low", "0"), TB_DIM("high", "1")), a);
    ir_val r7 = ch_declared(h, IR_OP_BROADCAST, b, tb_type(h->g, dt, "0, 1"));
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6, r7);
  }
}

static void test_gather(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], index_dt = it ? IR_I64 : IR_I32;
      ch_harness *h = ch_new("gather", 111);
      ir_val table = ch_input(h, dt, "V, 3", 5, 3), t3 = ch_input(h, dt, "2, 4, 3", 2, 4, 3);
      ir_val i2 = ch_input_data(h, index_dt, "2, 3", CH_DATA(0, 2, 1, 2, 1, 0), 2, 3);
      ir_val i0 = scalar_input(h, index_dt, 3);
      ir_val ie = ch_input(h, index_dt, "0", 0);
      ir_val r0 = ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 0)), table, i2);
      ir_val r1 = ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 1)), t3, i0);
      ir_val r2 = ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 2)), t3, i2);
      ir_val r3 = ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 0)), table, ie);
      CHECK(h, EXACT, r0, r1, r2, r3);
    }
}

static void test_reverse_sequence(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], len_dt = it ? IR_I64 : IR_I32;
      ch_harness *h = ch_new("revseq", 121);
      ir_val x = ch_input(h, dt, "B, T, 2", 4, 5, 2), len = ch_input_data(h, len_dt, "B", CH_DATA(0, 5, 3, 1), 4);
      ir_val xt = ch_input(h, dt, "6, 3", 6, 3), lt = ch_input_data(h, len_dt, "3", CH_DATA(6, 2, 4), 3);
      ir_val r0 = ch_op(h, IR_OP_REVERSE_SEQUENCE, TB_ATTRS(TB_INT("seq_axis", 1), TB_INT("batch_axis", 0)), x, len);
      ir_val r1 = ch_op(h, IR_OP_REVERSE_SEQUENCE, TB_ATTRS(TB_INT("seq_axis", 0), TB_INT("batch_axis", 1)), xt, lt);
      CHECK(h, EXACT, r0, r1);
    }
}

/* ---- run-time checks --------------------------------------------------------------------------------- */

static void test_index_checks(void **state) {
  static const double bad[] = {-1, 5};
  for (int i = 0; i < COUNT(bad); i++) {
    ch_harness *h = ch_new("gather_oob", 1);
    ir_val table = ch_input(h, IR_F32, "5, 2", 5, 2);
    ir_val idx = ch_input_data(h, IR_I32, "3", CH_DATA(0, bad[i], 1), 3);
    ch_check_fails(h, ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 0)), table, idx), CG_INDEX_RANGE);
  }
  /* Even when the result is empty, as the interpreter checks. */
  ch_harness *h = ch_new("gather_oob_empty", 1);
  ir_val table = ch_input(h, IR_F32, "5, 0", 5, 0);
  ir_val idx = ch_input_data(h, IR_I64, "1", CH_DATA(7), 1);
  ch_check_fails(h, ch_op(h, IR_OP_GATHER, TB_ATTRS(TB_INT("axis", 0)), table, idx), CG_INDEX_RANGE);
  static const double bad_len[] = {-1, 4};
  for (int i = 0; i < COUNT(bad_len); i++) {
    h = ch_new("revseq_len", 1);
    ir_val x = ch_input(h, IR_F32, "2, 3", 2, 3), len = ch_input_data(h, IR_I32, "2", CH_DATA(1, bad_len[i]), 2);
    ch_check_fails(h,
                   ch_op(h, IR_OP_REVERSE_SEQUENCE, TB_ATTRS(TB_INT("seq_axis", 1), TB_INT("batch_axis", 0)), x, len),
                   CG_INDEX_RANGE);
  }
  /* A slice whose symbolic end passes the dim. */
  h = ch_new("slice_range", 1);
  ir_val x = ch_input(h, IR_F32, "T, 2", 3, 2), y = ch_input(h, IR_F32, "U", 5);
  (void)y;
  ch_check_fails(h, ch_op(h, IR_OP_SLICE, TB_ATTRS(TB_INT("axis", 0), TB_DIM("start", "0"), TB_DIM("end", "U")), x),
                 CG_INDEX_RANGE);
  /* argmax over an empty axis has no index to return. */
  h = ch_new("argmax_empty", 1);
  x = ch_input(h, IR_F32, "3, 0", 3, 0);
  ch_check_fails(h, ch_op(h, IR_OP_ARGMAX, TB_ATTRS(TB_INT("axis", 1)), x), CG_INDEX_RANGE);
}

static void test_dim_checks(void **state) {
  ch_harness *h = ch_new("matmul_k", 1);
  ir_val a = ch_input(h, IR_F32, "M, K", 2, 3), b = ch_input(h, IR_F32, "L, N", 4, 2);
  ch_check_fails(h, ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = ch_new("matmul_batch", 1);
  a = ch_input(h, IR_F32, "B, 2, 3", 2, 2, 3);
  b = ch_input(h, IR_F32, "C, 3, 2", 3, 3, 2);
  ch_check_fails(h, ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = ch_new("concat_dims", 1);
  a = ch_input(h, IR_F32, "2, A", 2, 3);
  b = ch_input(h, IR_F32, "2, B", 2, 4);
  ch_check_fails(h, ch_op(h, IR_OP_CONCAT, TB_ATTRS(TB_INT("axis", 0)), a, b), CG_DIM_MISMATCH);
  h = ch_new("reshape_count", 1);
  a = ch_input(h, IR_F32, "N", 6);
  (void)ch_input(h, IR_F32, "M", 5);
  ch_check_fails(h, ch_declared(h, IR_OP_RESHAPE, a, tb_type(h->g, IR_F32, "M")), CG_DIM_MISMATCH);
  h = ch_new("layernorm_gamma", 1);
  a = ch_input(h, IR_F32, "3, D", 3, 4);
  b = ch_input(h, IR_F32, "E", 5);
  ch_check_fails(h, ch_op(h, IR_OP_LAYERNORM, TB_NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = ch_new("split_sum", 1);
  a = ch_input(h, IR_F32, "N", 6);
  (void)ch_input(h, IR_F32, "M", 2);
  ir_opid sp = ch_build(h, IR_OP_SPLIT, 1, &a, TB_ATTRS(TB_INT("axis", 0), TB_DIMS("sizes", 2, "M", "3")));
  ch_check_fails(h, ir_o(h->g, sp)->out[0], CG_DIM_MISMATCH);
  h = ch_new("broadcast_dim", 1);
  a = ch_input(h, IR_F32, "T", 3);
  (void)ch_input(h, IR_F32, "U", 4);
  ch_check_fails(h, ch_declared(h, IR_OP_BROADCAST, a, tb_type(h->g, IR_F32, "2, U")), CG_DIM_MISMATCH);
}

/* Integer results that do not fit their dtype fail, as in the interpreter. */
static void test_integer_range_checks(void **state) {
  ch_harness *h = ch_new("sum_i32", 1);
  ir_val x = ch_input_data(h, IR_I32, "2", CH_DATA(2147483647, 1), 2);
  ch_check_fails(h, reduce(h, IR_OP_REDUCE_SUM, x, (axes_case){1, {0}}, false), CG_INT_OVERFLOW);
  h = ch_new("prod_i64", 1);
  x = ch_input_data(h, IR_I64, "3", CH_DATA(4194304, 4194304, 4194304), 3); /* 2^66 */
  ch_check_fails(h, reduce(h, IR_OP_REDUCE_PROD, x, (axes_case){1, {0}}, false), CG_INT_OVERFLOW);
  h = ch_new("cumsum_i64", 1);
  x = ch_input_data(h, IR_I64, "2, 2", CH_DATA(4503599627370496.0, 1, 4503599627370496.0, 1), 2, 2); /* 2^52 */
  ch_check_fails(h, ch_op(h, IR_OP_CUMSUM, TB_ATTRS(TB_INT("axis", 0)), x), CG_INT_OVERFLOW);
  h = ch_new("matmul_i32", 1);
  ir_val a = ch_input_data(h, IR_I32, "1, 2", CH_DATA(65536, 65536), 1, 2);
  ir_val b = ch_input_data(h, IR_I32, "2, 1", CH_DATA(32768, 32768), 2, 1);
  ch_check_fails(h, ch_op(h, IR_OP_MATMUL, TB_NO_ATTRS, a, b), CG_INT_OVERFLOW);
  h = ch_new("max_empty_int", 1);
  x = ch_input(h, IR_I32, "2, 0", 2, 0);
  ch_check_fails(h, reduce(h, IR_OP_REDUCE_MAX, x, (axes_case){1, {1}}, false), CG_INT_OVERFLOW);
}

static void test_attention_needs_decompose(void **state) {
  ch_harness *h = ch_new("attn", 1);
  ir_val q = ch_input(h, IR_F32, "2, 4", 2, 4), k = ch_input(h, IR_F32, "3, 4", 3, 4),
         v = ch_input(h, IR_F32, "3, 4", 3, 4);
  ir_val r = ch_op(h, IR_OP_ATTENTION, TB_ATTRS(TB_INT("mask", IR_MASK_NONE), TB_FLOAT("scale", 0.5)), q, k, v);
  ch_finish(h, 1, &r);
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, 0, CG_MEMPLAN_CHECK_OFF};
  assert_null(cg_compile(h->g, &o, &d));
  assert_non_null(msgs.s);
  assert_non_null(strstr(msgs.s, "attention must be decomposed before lowering"));
  ir_buf_free(&msgs);
  ch_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matmul_shapes_and_dtypes),
      cmocka_unit_test(test_matmul_batched),
      cmocka_unit_test(test_reduce),
      cmocka_unit_test(test_reduce_special_values),
      cmocka_unit_test(test_argreduce),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_cumulative),
      cmocka_unit_test(test_reshape_transpose),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_dynamic_slices),
      cmocka_unit_test(test_concat_split),
      cmocka_unit_test(test_broadcast_reverse_pad),
      cmocka_unit_test(test_gather),
      cmocka_unit_test(test_reverse_sequence),
      cmocka_unit_test(test_index_checks),
      cmocka_unit_test(test_dim_checks),
      cmocka_unit_test(test_integer_range_checks),
      cmocka_unit_test(test_attention_needs_decompose),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
