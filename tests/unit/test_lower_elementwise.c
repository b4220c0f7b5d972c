/* Unit tests for codegen/lower_elementwise.c: every op it lowers (unary,
 * binary, compare, select, cast, constant, iota) runs through the reference
 * interpreter and through compiled code (cg_compile at -O0 and -O2, ORC
 * JIT, cg_jit_run_tensors) on fixed-seed random inputs, and the results are
 * compared. Shapes include empty (0), size-1, odd and prime dims, symbolic
 * dims, and numpy broadcasting of declared 1s.
 *
 * Tolerances (docs/numerics.md):
 *  - exact (same bits; NaN equals NaN, signed zeros must match): neg, abs,
 *    relu, sqrt, rsqrt (f32/f64), add, sub, mul, div, max, min, pow
 *    (f32/f64), compare, select, cast, constant, iota, every integer and
 *    bool op. + - * / sqrt of two f32 (f16, bf16) rounded from double or
 *    from float give the same bits (double rounding is innocuous when the
 *    wider format has at least 2p+2 bits), and rsqrt/pow of f32 are
 *    computed in double like the interpreter does.
 *  - f32 transcendental functions (vmath): 4 ulp of the output (the vmath
 *    bounds are at most 3 ulp from the exact value; the interpreter is
 *    within half an ulp of it).
 *  - f16/bf16 transcendentals, rsqrt and pow: 1 ulp of the output dtype
 *    (a float result close to a rounding boundary of the narrow type may
 *    round the other way).
 *  - f64 transcendentals: the same libm calls and formulas as the
 *    interpreter; 2 ulp allow for FMA contraction at -O2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg_harness.h"

/* ---- comparing ------------------------------------------------------------------------- */

/* EXACT: the same bits (NaN equals NaN, zeros keep their sign). ULPS(n):
 * within n units in the last place of the output dtype at the reference
 * value (integers and bools are always compared exactly). */
typedef struct tolerance {
  double ulps; /* < 0: exact */
} tolerance;
#define EXACT ((tolerance){-1})
#define ULPS(n) ((tolerance){n})

static double ulp(ir_dtype dt, double x) {
  int digits = dt == IR_F16 ? 11 : dt == IR_BF16 ? 8 : dt == IR_F32 ? 24 : 53;
  int emin = dt == IR_F16 ? -14 : dt == IR_F64 ? -1022 : -126;
  int e;
  frexp(x, &e);
  e -= 1; /* |x| in [2^e, 2^(e+1)) */
  if (x == 0 || e < emin) e = emin;
  return ldexp(1.0, e - digits + 1);
}

static bool close_enough(ir_dtype dt, double ref, double got, tolerance t) {
  if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got);
  if (!ir_dtype_is_float(dt)) return ref == got;
  if (t.ulps < 0) return ref == got && signbit(ref) == signbit(got);
  if (ref == got) return true;
  if (isinf(ref) || isinf(got)) return false;
  return fabs(got - ref) <= t.ulps * ulp(dt, ref);
}

/* A ch_compare_fn: output o within tolerance ((const tolerance *)ud)[o].
 * A mismatch shows the first argument's element too when the shapes agree
 * (the input of a unary op). */
static void compare_outputs(const ch_harness *h, const ir_tensor *ref, const ir_tensor *got, int32_t n, int opt,
                            const void *ud) {
  const tolerance *t = ud;
  for (int32_t o = 0; o < n; o++) {
    ch_assert_same_shape(&ref[o], &got[o]);
    for (int64_t e = 0; e < ref[o].numel; e++) {
      if (close_enough(ref[o].dtype, ref[o].data[e], got[o].data[e], t[o])) continue;
      double x0 = h->args[0].numel == ref[o].numel ? h->args[0].data[e] : NAN;
      print_error("-O%d output %d (%s) element %lld (x0 %a): interpreter %a, compiled %a\n", opt, o,
                  ir_dtype_name(ref[o].dtype), (long long)e, x0, ref[o].data[e], got[o].data[e]);
      fail();
    }
  }
}

/* Finish the graph with outputs outs, run it both ways and compare output
 * i with tolerance t[i]. Frees h. */
static void check_each(ch_harness *h, int32_t n, const ir_val *outs, const tolerance *t) {
  ch_check(h, n, outs, compare_outputs, t);
}
static void check(ch_harness *h, int32_t n, const ir_val *outs, tolerance t) {
  tolerance ts[CH_MAX_OUTS];
  for (int32_t i = 0; i < n; i++) ts[i] = t;
  check_each(h, n, outs, ts);
}
#define CHECK(h, t, ...) check(h, TB_NVALS(__VA_ARGS__), TB_VALS(__VA_ARGS__), t)

static const ir_dtype FLOATS[] = {IR_F32, IR_F64, IR_F16, IR_BF16};
static const ir_dtype INTS[] = {IR_I32, IR_I64};
static const ir_dtype ALL[] = {IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64, IR_BOOL};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Shapes every elementwise op runs on: empty, a single element, odd and
 * prime sizes, a symbolic dim bound to 0 and to 1. */
typedef struct shape_case {
  const char *dims;
  int32_t rank;
  int64_t shape[3];
} shape_case;
static const shape_case SHAPES[] = {
    {"0", 1, {0}},          {"1", 1, {1}},           {"", 0, {0}},            {"7, 13", 2, {7, 13}},
    {"B, 3", 2, {0, 3}},    {"B, 5", 2, {1, 5}},     {"2, 3, 37", 3, {2, 3, 37}}, {"T", 1, {1031}},
};

/* Unary ops and casts compile to the same flat loop for every shape: a
 * few of the shapes suffice (compiling is what takes time here). */
static const int FEW_SHAPES[] = {2, 4, 7};

/* Transcendental tolerance of the output dtype (see the top). */
static tolerance approx(ir_dtype dt) { return dt == IR_F32 ? ULPS(4) : dt == IR_F64 ? ULPS(2) : ULPS(1); }

/* ---- unary ---------------------------------------------------------------------------- */

typedef struct unary_case {
  ir_opkind kind;
  double range; /* inputs uniform in [-range, range) */
  bool exact;   /* bitwise in every float dtype */
  const tb_attr *attrs;
} unary_case;

/* The interpreter's gelu forms, 0.5 x (1 + erf(x/sqrt2)) and
 * 0.5 x (1 + tanh(...)), cancel in double below x = -5 (docs/numerics.md);
 * their inputs stay above. */
static const unary_case UNARY[] = {
    {IR_OP_NEG, 4, true, NULL},        {IR_OP_ABS, 4, true, NULL},       {IR_OP_EXP, 90, false, NULL},
    {IR_OP_LOG, 100, false, NULL},     {IR_OP_SQRT, 100, true, NULL},    {IR_OP_RSQRT, 100, false, NULL},
    {IR_OP_TANH, 12, false, NULL},     {IR_OP_SIGMOID, 20, false, NULL}, {IR_OP_RELU, 4, true, NULL},
    {IR_OP_GELU, 5, false, NULL},      {IR_OP_ERF, 5, false, NULL},      {IR_OP_SILU, 20, false, NULL},
    {IR_OP_SOFTPLUS, 30, false, NULL}, {IR_OP_SIN, 200, false, NULL},    {IR_OP_COS, 200, false, NULL},
    {IR_OP_ELU, 6, false, NULL},       {IR_OP_GELU, 5, false, TB_ATTRS(TB_INT("approximate", IR_GELU_TANH))},
    {IR_OP_ELU, 6, false, TB_ATTRS(TB_FLOAT("alpha", 0.3))},
};

static tolerance unary_tolerance(const unary_case *u, ir_dtype dt) {
  if (u->exact || (u->kind == IR_OP_RSQRT && (dt == IR_F32 || dt == IR_F64))) return EXACT;
  return approx(dt);
}

/* One graph per dtype and shape, one input and one output per case. */
static void test_unary_float(void **state) {
  uint64_t seed = 1;
  for (int d = 0; d < COUNT(FLOATS); d++)
    for (int i = 0; i < COUNT(FEW_SHAPES); i++) {
      int s = FEW_SHAPES[i];
      ch_harness *h = ch_new("unary", seed++);
      ir_val outs[COUNT(UNARY)];
      tolerance ts[COUNT(UNARY)];
      for (int k = 0; k < COUNT(UNARY); k++) {
        h->range = UNARY[k].range;
        ir_val x = ch_input_with(h, FLOATS[d], SHAPES[s].dims, SHAPES[s].rank, SHAPES[s].shape, NULL);
        outs[k] = ch_op(h, UNARY[k].kind, UNARY[k].attrs ? UNARY[k].attrs : TB_NO_ATTRS, x);
        ts[k] = unary_tolerance(&UNARY[k], FLOATS[d]);
      }
      check_each(h, COUNT(UNARY), outs, ts);
    }
}

/* NaN, infinities, signed zeros, subnormals and large values through every
 * float op (sin and cos only within their accurate range). */
static void test_unary_special_values(void **state) {
  const double v[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 0x1p-149, -0x1p-149, 1e-30, -1e-30, 88.7, -88.7, 1e30, -1e30};
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("special", 7);
    double data[COUNT(v)], trig[COUNT(v)];
    for (int i = 0; i < COUNT(v); i++) {
      data[i] = ir_round_to_dtype(FLOATS[d], v[i]);
      trig[i] = ir_round_to_dtype(FLOATS[d], fabs(v[i]) == 1e30 ? v[i] * 1e-26 : v[i]);
    }
    ir_val x = ch_input_with(h, FLOATS[d], "13", 1, CH_SHAPE(13), data);
    ir_val xt = ch_input_with(h, FLOATS[d], "13", 1, CH_SHAPE(13), trig);
    ir_val outs[COUNT(UNARY)];
    tolerance ts[COUNT(UNARY)];
    for (int k = 0; k < COUNT(UNARY); k++) {
      bool is_trig = UNARY[k].kind == IR_OP_SIN || UNARY[k].kind == IR_OP_COS;
      outs[k] = ch_op(h, UNARY[k].kind, UNARY[k].attrs ? UNARY[k].attrs : TB_NO_ATTRS, is_trig ? xt : x);
      ts[k] = unary_tolerance(&UNARY[k], FLOATS[d]);
    }
    check_each(h, COUNT(UNARY), outs, ts);
  }
}

static void test_unary_int_and_bool(void **state) {
  for (int d = 0; d < COUNT(INTS); d++)
    for (int s = 0; s < COUNT(SHAPES); s++) {
      ch_harness *h = ch_new("int", 50 + s);
      ir_val x = ch_input_with(h, INTS[d], SHAPES[s].dims, SHAPES[s].rank, SHAPES[s].shape, NULL);
      ir_val a = ch_op(h, IR_OP_NEG, TB_NO_ATTRS, x), b = ch_op(h, IR_OP_ABS, TB_NO_ATTRS, x);
      CHECK(h, EXACT, a, b);
    }
  ch_harness *h = ch_new("not", 3);
  ir_val x = ch_input(h, IR_BOOL, "5, 7", 5, 7);
  CHECK(h, EXACT, ch_op(h, IR_OP_NOT, TB_NO_ATTRS, x));
}

/* ---- binary ------------------------------------------------------------------------------ */

/* Operand and result shapes for broadcasting: [5,1,7] with [3,1], a
 * scalar with a vector, a symbolic dim against a declared 1. */
typedef struct bcast_case {
  const char *a_dims, *b_dims;
  int32_t a_rank, b_rank;
  int64_t a_shape[3], b_shape[3];
} bcast_case;
static const bcast_case BCASTS[] = {
    {"5, 1, 7", "3, 1", 3, 2, {5, 1, 7}, {3, 1}},
    {"", "11", 0, 1, {0}, {11}},
    {"B, 1", "1, T", 2, 2, {4, 1}, {1, 9}},
    {"B, 1", "1, T", 2, 2, {0, 1}, {1, 9}},
    {"1", "2, 17", 1, 2, {1}, {2, 17}},
    {"6, 13", "6, 13", 2, 2, {6, 13}, {6, 13}},
};

/* Every op of kinds[] on (a, b) and (b, a) in one graph. */
/* Broadcast cases for the tests that also loop over many dtypes: a
 * broadcast nest, an empty symbolic one, and the flat loop. */
static const int FEW_BCASTS[] = {0, 3, 5};

static void binaries_on(const ir_opkind *kinds, int n, ir_dtype dt, const bcast_case *bc, uint64_t seed) {
  ch_harness *h = ch_new("binary", seed);
  ir_val a = ch_input_with(h, dt, bc->a_dims, bc->a_rank, bc->a_shape, NULL);
  ir_val b = ch_input_with(h, dt, bc->b_dims, bc->b_rank, bc->b_shape, NULL);
  for (int i = 0; i < 2 && !ir_dtype_is_float(dt); i++) /* no integer division by zero */
    for (int64_t e = 0; e < h->args[i].numel; e++)
      if (h->args[i].data[e] == 0) h->args[i].data[e] = 3;
  ir_val outs[CH_MAX_OUTS];
  tolerance ts[CH_MAX_OUTS];
  for (int k = 0; k < n; k++) {
    outs[2 * k] = ch_op(h, kinds[k], TB_NO_ATTRS, a, b);
    outs[2 * k + 1] = ch_op(h, kinds[k], TB_NO_ATTRS, b, a);
    bool narrow_pow = kinds[k] == IR_OP_POW && (dt == IR_F16 || dt == IR_BF16);
    ts[2 * k] = ts[2 * k + 1] = narrow_pow ? ULPS(1) : EXACT;
  }
  check_each(h, 2 * n, outs, ts);
}

static void test_binary_float(void **state) {
  static const ir_opkind kinds[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV, IR_OP_MAX, IR_OP_MIN, IR_OP_POW};
  uint64_t seed = 1000;
  for (int d = 0; d < COUNT(FLOATS); d++)
    for (int c = 0; c < COUNT(BCASTS); c++) binaries_on(kinds, COUNT(kinds), FLOATS[d], &BCASTS[c], seed++);
}

/* max/min propagate NaN from either side; signed zeros pick b on ties. */
static void test_binary_special_values(void **state) {
  const double a[] = {NAN, 1, NAN, INFINITY, -INFINITY, 0.0, -0.0, 2, -3, 0x1p-149};
  const double b[] = {1, NAN, NAN, -INFINITY, -INFINITY, -0.0, 0.0, 0, 0, -0x1p-149};
  static const ir_opkind kinds[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV, IR_OP_MAX, IR_OP_MIN, IR_OP_POW};
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ch_harness *h = ch_new("special", 1);
    double ad[10], bd[10];
    for (int i = 0; i < 10; i++) {
      ad[i] = ir_round_to_dtype(FLOATS[d], a[i]);
      bd[i] = ir_round_to_dtype(FLOATS[d], b[i]);
    }
    ir_val x = ch_input_with(h, FLOATS[d], "10", 1, CH_SHAPE(10), ad),
           y = ch_input_with(h, FLOATS[d], "10", 1, CH_SHAPE(10), bd);
    ir_val r[COUNT(kinds)];
    for (int k = 0; k < COUNT(kinds); k++) r[k] = ch_op(h, kinds[k], TB_NO_ATTRS, x, y);
    check(h, COUNT(kinds), r, EXACT);
  }
}

static void test_binary_int_and_bool(void **state) {
  static const ir_opkind kinds[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV, IR_OP_MAX, IR_OP_MIN};
  static const ir_opkind logic[] = {IR_OP_AND, IR_OP_OR};
  uint64_t seed = 5000;
  for (int i = 0; i < COUNT(FEW_BCASTS); i++) {
    const bcast_case *bc = &BCASTS[FEW_BCASTS[i]];
    for (int d = 0; d < COUNT(INTS); d++) binaries_on(kinds, COUNT(kinds), INTS[d], bc, seed++);
    binaries_on(logic, COUNT(logic), IR_BOOL, bc, seed++);
  }
}

/* Truncation toward zero with negative operands. */
static void test_int_div_signs(void **state) {
  for (int d = 0; d < COUNT(INTS); d++) {
    ch_harness *h = ch_new("div", 1);
    ir_val a = ch_input_data(h, INTS[d], "6", CH_DATA(7, -7, 7, -7, 0, 5), 6);
    ir_val b = ch_input_data(h, INTS[d], "6", CH_DATA(2, 2, -2, -2, 3, 5), 6);
    CHECK(h, EXACT, ch_op(h, IR_OP_DIV, TB_NO_ATTRS, a, b));
  }
}

/* ---- compare, select, cast ------------------------------------------------------------------- */

static void test_compare(void **state) {
  uint64_t seed = 7000;
  for (int d = 0; d < COUNT(ALL); d++)
    for (int i = 0; i < COUNT(FEW_BCASTS); i++) {
      ch_harness *h = ch_new("compare", seed++);
      h->range = 1; /* f16/bf16 draws then tie often */
      const bcast_case *bc = &BCASTS[FEW_BCASTS[i]];
      ir_val a = ch_input_with(h, ALL[d], bc->a_dims, bc->a_rank, bc->a_shape, NULL);
      ir_val b = ch_input_with(h, ALL[d], bc->b_dims, bc->b_rank, bc->b_shape, NULL);
      ir_val r[6];
      for (int p = IR_CMP_EQ; p <= IR_CMP_GE; p++)
        r[p] = ch_op(h, IR_OP_COMPARE, TB_ATTRS(TB_INT("predicate", p)), a, b);
      check(h, 6, r, EXACT);
    }
  /* NaN: false except ne. */
  ch_harness *h = ch_new("compare-nan", 1);
  ir_val a = ch_input_data(h, IR_F32, "4", CH_DATA(NAN, 1, NAN, 2), 4),
         b = ch_input_data(h, IR_F32, "4", CH_DATA(1, NAN, NAN, 2), 4);
  ir_val r[6];
  for (int p = IR_CMP_EQ; p <= IR_CMP_GE; p++) r[p] = ch_op(h, IR_OP_COMPARE, TB_ATTRS(TB_INT("predicate", p)), a, b);
  check(h, 6, r, EXACT);
}

static void test_select(void **state) {
  uint64_t seed = 8000;
  for (int d = 0; d < COUNT(ALL); d++) {
    ch_harness *h = ch_new("select", seed++);
    ir_val c = ch_input(h, IR_BOOL, "4, 1", 4, 1);
    ir_val a = ch_input(h, ALL[d], "1, 6", 1, 6), b = ch_input(h, ALL[d], "4, 6", 4, 6);
    ir_val e = ch_input(h, IR_BOOL, "B, 3", 0, 3), f = ch_input(h, ALL[d], "B, 3", 0, 3),
           g = ch_input(h, ALL[d], "3", 3);
    CHECK(h, EXACT, ch_op(h, IR_OP_SELECT, TB_NO_ATTRS, c, a, b), ch_op(h, IR_OP_SELECT, TB_NO_ATTRS, e, f, g));
  }
}

static void test_cast_all_pairs(void **state) {
  uint64_t seed = 9000;
  for (int f = 0; f < COUNT(ALL); f++)
    for (int i = 0; i < COUNT(FEW_SHAPES); i++) {
      int s = FEW_SHAPES[i];
      ch_harness *h = ch_new("cast", seed++);
      h->range = 300; /* beyond f16's integers and bf16's precision, inside i32 */
      const shape_case *sc = &SHAPES[s];
      ir_val x = ch_input_with(h, ALL[f], sc->dims, sc->rank, sc->shape, NULL);
      ir_val outs[COUNT(ALL)];
      for (int t = 0; t < COUNT(ALL); t++) outs[t] = ch_declared(h, IR_OP_CAST, x, tb_type(h->g, ALL[t], sc->dims));
      check(h, COUNT(ALL), outs, EXACT);
    }
}

/* Rounding once: to f16/bf16 from f64 and from integers, at and next to
 * ties, overflow, subnormals, NaN. */
static void test_cast_rounding(void **state) {
  const double f64s[] = {1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-11, 1 + 0x3p-11, 65519.999, 65520, 1e300, -1e-300,
                         0x1p-25 + 0x1p-60, 1 + 0x1p-8 + 0x1p-50, 3.4e38, NAN, -0.0, 0x1.fffffffp-127};
  const double ints[] = {16777216 + 65536 + 1, 16777216 + 65536, 2049, 2051, 65521, -65521, 1 << 30, -(1 << 29) - 1, 0,
                         4503599627370497.0, -4503599627370497.0, 16777217, 255};
  for (int t = IR_F16; t <= IR_BF16; t++) {
    ch_harness *h = ch_new("round", 1);
    ir_val a = ch_input_with(h, IR_F64, "13", 1, CH_SHAPE(13), f64s);
    ir_val b = ch_input_with(h, IR_I64, "13", 1, CH_SHAPE(13), ints);
    ir_val c = ch_input_with(h, IR_I32, "9", 1, CH_SHAPE(9), ints);
    ir_type t13 = tb_type(h->g, (ir_dtype)t, "13"), t9 = tb_type(h->g, (ir_dtype)t, "9");
    CHECK(h, EXACT, ch_declared(h, IR_OP_CAST, a, t13), ch_declared(h, IR_OP_CAST, b, t13),
          ch_declared(h, IR_OP_CAST, c, t9));
  }
}

/* ---- constant, iota ------------------------------------------------------------------------------ */

static ir_val constant(ch_harness *h, ir_dtype dt, const char *dims, int64_t n, const double *f, const int64_t *i) {
  ir_type t = tb_type(h->g, dt, dims);
  ir_opid o = ir_op_new(h->g, IR_OP_CONSTANT, 0, NULL, 1, &t, TB_NOLOC);
  ir_tensor_data *d = ir_arena_alloc(h->g->arena, sizeof *d);
  d->n = n;
  d->f = f ? ir_arena_alloc(h->g->arena, sizeof(double) * (size_t)n) : NULL;
  d->i = i ? ir_arena_alloc(h->g->arena, sizeof(int64_t) * (size_t)n) : NULL;
  if (f) memcpy(d->f, f, sizeof(double) * (size_t)n);
  if (i) memcpy(d->i, i, sizeof(int64_t) * (size_t)n);
  ir_set_tensor(h->g, o, "value", d);
  ir_op_append(h->g, h->g->body, o);
  return ir_o(h->g, o)->out[0];
}

static void test_constant(void **state) {
  const double f[] = {1.5, -0.0, NAN, INFINITY, 1 + 0x1p-11 + 0x1p-40, 1e300, 0x1p-140, 65520, -3.75, 1e-8, 0.1, 7};
  const int64_t i64[] = {0, 1, -1, 2147483647, -2147483648LL, 4503599627370497LL, 3, -3, 5, 6, 7, 8};
  const int64_t i32[] = {0, 1, -1, 2147483647, -2147483648LL, 5, 3, -3, 5, 6, 7, 8};
  const int64_t bools[] = {0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0};
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    ch_harness *h = ch_new("constant", 1);
    ch_input(h, dt, "N", 2); /* binds N for the splat */
    bool fl = ir_dtype_is_float(dt);
    const int64_t *ints = dt == IR_I32 ? i32 : dt == IR_BOOL ? bools : i64;
    ir_val full = constant(h, dt, "3, 4", 12, fl ? f : NULL, fl ? NULL : ints);
    ir_val splat =
        constant(h, dt, "N, 5", 1, fl ? CH_DATA(-2.5) : NULL, fl ? NULL : (const int64_t[]){-2 * (dt != IR_BOOL) + 1});
    ir_val empty = constant(h, dt, "0, 3", 1, fl ? CH_DATA(1) : NULL, fl ? NULL : (const int64_t[]){1});
    ir_val scalar =
        constant(h, dt, "", 1, fl ? CH_DATA(0.1) : NULL, fl ? NULL : (const int64_t[]){7 * (dt != IR_BOOL) + 1});
    CHECK(h, EXACT, full, splat, empty, scalar);
  }
}

/* A value the interpreter rejects is a compile-time error, not a crash. */
static void test_constant_out_of_range(void **state) {
  ch_harness *h = ch_new("constant", 1);
  ir_val v = constant(h, IR_I32, "2", 2, NULL, (const int64_t[]){1, 4000000000LL});
  /* The verifier rejects this graph too; lowering must not rely on that. */
  ir_opid y = ir_op_new(h->g, IR_OP_YIELD, 1, &v, 0, NULL, TB_NOLOC);
  ir_op_append(h->g, h->g->body, y);
  h->g->output_names = ir_arena_alloc(h->g->arena, sizeof(char *));
  h->g->output_names[0] = "o0";
  h->g->n_outputs = 1;
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, 0, CG_MEMPLAN_CHECK_OFF};
  cg_program *p = cg_compile(h->g, &o, &d);
  assert_null(p);
  assert_non_null(msgs.s);
  assert_non_null(strstr(msgs.s, "does not fit in i32"));
  ir_buf_free(&msgs);
  ch_free(h);
}

static void test_iota(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int axis = 0; axis < 3 && ALL[d] != IR_BOOL; axis++) {
      ch_harness *h = ch_new("iota", 1);
      ch_input(h, IR_F32, "T", 5); /* binds T */
      ir_type t = tb_type(h->g, ALL[d], "3, T, 7");
      ir_opid o = ir_op_new(h->g, IR_OP_IOTA, 0, NULL, 1, &t, TB_NOLOC);
      ir_set_int(h->g, o, "axis", axis);
      ir_op_append(h->g, h->g->body, o);
      CHECK(h, EXACT, ir_o(h->g, o)->out[0]);
    }
}

/* ---- run-time checks ------------------------------------------------------------------------------ */

static void test_int_div_by_zero(void **state) {
  for (int d = 0; d < COUNT(INTS); d++) {
    ch_harness *h = ch_new("div0", 1);
    ir_val a = ch_input_data(h, INTS[d], "3", CH_DATA(1, 2, 3), 3),
           b = ch_input_data(h, INTS[d], "3", CH_DATA(1, 0, 1), 3);
    ch_check_fails(h, ch_op(h, IR_OP_DIV, TB_NO_ATTRS, a, b), CG_INT_DIV_ZERO);
  }
  ch_harness *h = ch_new("div-overflow", 1);
  ir_val a = ch_input_data(h, IR_I32, "2", CH_DATA(-2147483648.0, 4), 2),
         b = ch_input_data(h, IR_I32, "2", CH_DATA(-1, 2), 2);
  ch_check_fails(h, ch_op(h, IR_OP_DIV, TB_NO_ATTRS, a, b), CG_INT_DIV_ZERO);
}

/* Two symbols the verifier cannot prove equal, bound to different values. */
static void test_dim_mismatch(void **state) {
  ch_harness *h = ch_new("mismatch", 1);
  ir_val a = ch_input(h, IR_F32, "N", 3), b = ch_input(h, IR_F32, "M", 4);
  ir_val r = ch_op(h, IR_OP_ADD, TB_NO_ATTRS, a, b);
  ch_finish(h, 1, &r);
  ir_tensor outs[1];
  ir_buf err = {0};
  for (int opt = 0; opt <= 2; opt += 2) {
    cg_program *p;
    cg_jit *j = ch_compile(h->g, opt, &p);
    err.len = 0;
    assert_false(cg_jit_run_tensors(j, h->g, h->args, h->n_args, outs, NULL, &err));
    assert_non_null(strstr(err.s, cg_status_message(CG_DIM_MISMATCH)));
    cg_jit_free(j);
    cg_program_free(p);
  }
  ir_buf_free(&err);
  ch_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_float),        cmocka_unit_test(test_unary_special_values),
      cmocka_unit_test(test_unary_int_and_bool), cmocka_unit_test(test_binary_float),
      cmocka_unit_test(test_binary_special_values), cmocka_unit_test(test_binary_int_and_bool),
      cmocka_unit_test(test_int_div_signs),      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_select),             cmocka_unit_test(test_cast_all_pairs),
      cmocka_unit_test(test_cast_rounding),      cmocka_unit_test(test_constant),
      cmocka_unit_test(test_constant_out_of_range), cmocka_unit_test(test_iota),
      cmocka_unit_test(test_int_div_by_zero),    cmocka_unit_test(test_dim_mismatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
