/* Accuracy of the f32 vector math (codegen/vmath.c), end to end: for each
 * function a graph with one unary op over x: f32[N] is compiled at -O2,
 * JIT-compiled and run on samples of all floats; every result is compared
 * with the exact value (libm in double; gelu and gelu_tanh from formulas
 * that do not cancel) in units of the float ulp at the exact value.
 *
 * Samples: every STRIDE-th bit pattern over all 2^32 (NaNs included) and
 * every DENSE-th float of [-1, 1] (and of [-64, 64] for the functions that
 * live there); SEQC_VMATH_STRIDE=61 in the environment gives the dense
 * sweep docs/numerics.md quotes (slow; the default keeps the test within a
 * few seconds under ASan). Edge values (signed zeros, infinities, NaN,
 * subnormals, overflow thresholds) are checked exactly. The bounds below
 * are the documented ones (docs/numerics.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static const ir_loc NOLOC = {NULL, 0, 0};
enum { CHUNK = 1 << 18 };

typedef double (*ref_fn)(double);

/* ---- exact references ---------------------------------------------------------- */

static double ref_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double ref_softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double ref_gelu(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752440); }
/* 0.5 x (1 + tanh(y)) = x / (1 + e^(-2y)), without the cancellation. */
static double ref_gelu_tanh(double x) {
  double v = 2 * 0.79788456080286535588 * (x + 0.044715 * x * x * x);
  return v >= 0 ? x / (1 + exp(-v)) : x * exp(v) / (1 + exp(v));
}

/* ---- the compiled function ------------------------------------------------------ */

typedef struct vm_case {
  const char *name;
  ir_opkind kind;
  bool gelu_tanh;
  ref_fn ref;
  double max_ulp;   /* the documented bound */
  double dense_lim; /* second dense range [-lim, lim] */
  double domain;    /* accuracy holds for |x| <= domain; beyond, |f| <= 1 */
} vm_case;

typedef struct compiled {
  ir_graph *g;
  cg_program *p;
  cg_jit *j;
  cg_run_fn run;
  void *scratch;
} compiled;

static void set_tanh(ir_graph *g, ir_opid op, void *ud) { ir_set_int(g, op, "approximate", IR_GELU_TANH); }

static compiled compile_unary(const vm_case *vc, int opt) {
  compiled c = {0};
  c.g = ir_graph_new("vm");
  ir_dim n = ir_dim_sym(c.g->dims, "N", 1);
  ir_val x = ir_graph_add_input(c.g, ir_type_make(c.g, IR_F32, 1, &n), "x", false);
  ir_diag diag;
  ir_diag_init(&diag);
  ir_diag *d = &diag;
  ir_opid op = ir_build(c.g, c.g->body, vc->kind, 1, &x, vc->gelu_tanh ? set_tanh : NULL, NULL, d, NOLOC);
  assert_int_not_equal(op, IR_NONE);
  ir_opid y = ir_op_new(c.g, IR_OP_YIELD, 1, &ir_o(c.g, op)->out[0], 0, NULL, NOLOC);
  ir_op_append(c.g, c.g->body, y);
  c.g->output_names = ir_arena_alloc(c.g->arena, sizeof(char *));
  c.g->output_names[0] = "y";
  c.g->n_outputs = 1;
  cg_options o = {.opt_level = opt};
  c.p = cg_compile(c.g, &o, d);
  assert_non_null(c.p);
  c.j = cg_jit_new(c.p, d);
  assert_non_null(c.j);
  c.run = cg_jit_run_fn(c.j);
  int64_t syms[1] = {CHUNK};
  int64_t bytes = cg_jit_scratch_fn(c.j)(syms);
  c.scratch = aligned_alloc(64, (size_t)(bytes + 63) / 64 * 64 + 64);
  return c;
}

static void compiled_free(compiled *c) {
  free(c->scratch);
  cg_jit_free(c->j);
  cg_program_free(c->p);
  ir_graph_free(c->g);
}

static void run_chunk(const compiled *c, const float *x, float *y, int64_t n) {
  int64_t syms[1] = {n};
  void *args[1] = {(void *)x}, *outs[1] = {y};
  assert_int_equal(c->run(syms, args, outs, c->scratch, NULL), 0);
}

/* ---- measuring -------------------------------------------------------------------- */

static double ulp_at(double exact) {
  double a = fabs(exact);
  if (a < 0x1p-126) return 0x1p-149;
  int e;
  frexp(a, &e);
  return ldexp(1, e - 24);
}

/* Error of got in ulps of the exact value; infinite when a NaN, an
 * infinity or an overflow does not match exactly. */
static double ulp_error(float got, double exact) {
  if (isnan(exact)) return isnan(got) ? 0 : INFINITY;
  double rounded = fabs(exact) <= FLT_MAX ? (double)(float)exact : copysign(INFINITY, exact);
  if (isinf(rounded) || isinf(got)) return (double)got == rounded ? 0 : INFINITY;
  if (isnan(got)) return INFINITY;
  return fabs((double)got - exact) / ulp_at(exact);
}

typedef struct stats {
  double max_ulp, worst_x;
  int64_t n;
} stats;

static void account(stats *s, const vm_case *vc, const float *x, const float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (!(fabsf(x[i]) <= vc->domain)) {
      if (!isnan(x[i]) && !isinf(x[i])) assert_true(fabsf(y[i]) <= 1);
      continue;
    }
    double e = ulp_error(y[i], vc->ref(x[i]));
    if (e > s->max_ulp || isnan(e)) {
      s->max_ulp = e;
      s->worst_x = x[i];
    }
  }
  s->n += n;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static uint32_t to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static int64_t env_stride(const char *name, int64_t dflt) {
  const char *s = getenv(name);
  long long v = s ? atoll(s) : 0;
  return v > 0 ? v : dflt;
}

/* Every stride-th bit pattern from `lo` for `count` patterns, chunked. */
static void sweep(const compiled *c, const vm_case *vc, stats *s, uint64_t lo, uint64_t count,
                  uint64_t stride, float *x, float *y) {
  int64_t n = 0;
  for (uint64_t k = 0; k < count; k += stride) {
    x[n++] = from_bits((uint32_t)(lo + k));
    if (n == CHUNK) {
      run_chunk(c, x, y, n);
      account(s, vc, x, y, n);
      n = 0;
    }
  }
  if (n) {
    run_chunk(c, x, y, n);
    account(s, vc, x, y, n);
  }
}

/* Floats of [-lim, lim]: the positive ones and their negations. */
static void sweep_symmetric(const compiled *c, const vm_case *vc, stats *s, float lim, uint64_t stride,
                            float *x, float *y) {
  uint64_t top = to_bits(lim) + 1ull;
  sweep(c, vc, s, 0, top, stride, x, y);
  sweep(c, vc, s, 0x80000000ull, top, stride, x, y);
}

static stats measure(const vm_case *vc, int opt) {
  compiled c = compile_unary(vc, opt);
  float *x = malloc(sizeof(float) * CHUNK), *y = malloc(sizeof(float) * CHUNK);
  stats s = {0, 0, 0};
  sweep(&c, vc, &s, 0, 1ull << 32, (uint64_t)env_stride("SEQC_VMATH_STRIDE", 4099), x, y);
  uint64_t dense = (uint64_t)env_stride("SEQC_VMATH_DENSE", 2053);
  sweep_symmetric(&c, vc, &s, 1.0f, dense, x, y);
  if (vc->dense_lim > 1) sweep_symmetric(&c, vc, &s, (float)vc->dense_lim, dense, x, y);
  free(x);
  free(y);
  compiled_free(&c);
  return s;
}

static void check_case(const vm_case *vc) {
  for (int opt = 0; opt <= 2; opt += 2) {
    stats s = measure(vc, opt);
    print_message("%-10s -O%d: max %.3f ulp at x = %a over %lld samples\n", vc->name, opt, s.max_ulp,
                  s.worst_x, (long long)s.n);
    assert_true(s.max_ulp <= vc->max_ulp);
  }
}

/* ---- edge values -------------------------------------------------------------------- */

/* f(x) for a handful of x through the compiled code. */
static void eval_points(const vm_case *vc, const float *x, float *y, int64_t n) {
  compiled c = compile_unary(vc, 2);
  run_chunk(&c, x, y, n);
  compiled_free(&c);
}

static bool same(float a, float b) { return (isnan(a) && isnan(b)) || to_bits(a) == to_bits(b); }

/* Every edge value within the bound, and the listed exact results. */
static void check_edges(const vm_case *vc, const float *expect_x, const float *expect_y, int n_expect) {
  static const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f, -0x1p-149f, 0x1p-126f,
                                -0x1p-126f, FLT_MAX, -FLT_MAX, 88.7228394f, 88.7228470f, -87.3365479f,
                                -103.972084f, -103.972092f, 1e-20f, -1e-20f, 0.875f, 10.5f, -14.8f, 9.0f};
  enum { NE = sizeof edges / sizeof edges[0] };
  float y[NE];
  eval_points(vc, edges, y, NE);
  for (int i = 0; i < NE; i++) {
    if (fabsf(edges[i]) > vc->domain) continue;
    double e = ulp_error(y[i], vc->ref(edges[i]));
    if (!(e <= vc->max_ulp)) fail_msg("%s(%a) = %a, exact %a", vc->name, edges[i], y[i], vc->ref(edges[i]));
  }
  float got[16];
  assert_true(n_expect <= 16);
  eval_points(vc, expect_x, got, n_expect);
  for (int i = 0; i < n_expect; i++)
    if (!same(got[i], expect_y[i])) fail_msg("%s(%a) = %a, expected %a", vc->name, expect_x[i], got[i], expect_y[i]);
}

#define PTS(...) ((const float[]){__VA_ARGS__})
#define NPTS(...) ((int)(sizeof(PTS(__VA_ARGS__)) / sizeof(float)))
#define EXPECT(xs, ys) PTS xs, PTS ys, NPTS xs

#define TRIG_DOMAIN 0x1.921fb6p+28 /* 2^28 pi/2 */

static const vm_case EXP = {"exp", IR_OP_EXP, false, exp, 1.0, 104, INFINITY};
static const vm_case LOG = {"log", IR_OP_LOG, false, log, 1.0, 0, INFINITY};
static const vm_case TANH = {"tanh", IR_OP_TANH, false, tanh, 2.0, 10, INFINITY};
static const vm_case SIGMOID = {"sigmoid", IR_OP_SIGMOID, false, ref_sigmoid, 2.0, 104, INFINITY};
static const vm_case ERF = {"erf", IR_OP_ERF, false, erf, 2.0, 4, INFINITY};
static const vm_case GELU = {"gelu", IR_OP_GELU, false, ref_gelu, 2.5, 15, INFINITY};
static const vm_case GELU_TANH = {"gelu_tanh", IR_OP_GELU, true, ref_gelu_tanh, 1.5, 15, INFINITY};
static double ref_silu(double x) { return x * ref_sigmoid(x); }
static const vm_case SILU = {"silu", IR_OP_SILU, false, ref_silu, 1.5, 104, INFINITY};
static double ref_elu(double x) { return x > 0 ? x : expm1(x); }
/* elu with alpha = 1 is expm1 below 0 (the multiplication by 1 is exact). */
static const vm_case ELU = {"elu", IR_OP_ELU, false, ref_elu, 1.5, 30, INFINITY};
static const vm_case SOFTPLUS = {"softplus", IR_OP_SOFTPLUS, false, ref_softplus, 3.0, 104, INFINITY};
static const vm_case SIN = {"sin", IR_OP_SIN, false, sin, 1.0, 1e4, TRIG_DOMAIN};
static const vm_case COS = {"cos", IR_OP_COS, false, cos, 1.0, 1e4, TRIG_DOMAIN};

static void test_exp(void **state) {
  check_case(&EXP);
  check_edges(&EXP, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, 89.0f, -104.0f),
                           (1.0f, 1.0f, INFINITY, 0.0f, NAN, INFINITY, 0.0f)));
}

static void test_log(void **state) {
  check_case(&LOG);
  check_edges(&LOG, EXPECT((0.0f, -0.0f, 1.0f, INFINITY, -INFINITY, -1.0f, NAN, 0x1p-149f),
                           (-INFINITY, -INFINITY, 0.0f, INFINITY, NAN, NAN, NAN, -103.278931f)));
}

static void test_tanh(void **state) {
  check_case(&TANH);
  check_edges(&TANH, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, 20.0f, 0x1p-149f),
                            (0.0f, -0.0f, 1.0f, -1.0f, NAN, 1.0f, 0x1p-149f)));
}

static void test_sigmoid(void **state) {
  check_case(&SIGMOID);
  check_edges(&SIGMOID, EXPECT((0.0f, INFINITY, -INFINITY, NAN, -200.0f), (0.5f, 1.0f, 0.0f, NAN, 0.0f)));
}

static void test_erf(void **state) {
  check_case(&ERF);
  check_edges(&ERF, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, 5.0f, 0x1p-149f),
                           (0.0f, -0.0f, 1.0f, -1.0f, NAN, 1.0f, 0x1p-149f)));
}

static void test_gelu(void **state) {
  check_case(&GELU);
  /* gelu(-inf) is NaN: the interpreter's 0.5 x (1 + erf) gives -inf * 0. */
  check_edges(&GELU, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, -30.0f, 30.0f),
                            (0.0f, -0.0f, INFINITY, NAN, NAN, -0.0f, 30.0f)));
}

static void test_gelu_tanh(void **state) {
  check_case(&GELU_TANH);
  check_edges(&GELU_TANH, EXPECT((0.0f, INFINITY, -INFINITY, NAN, -30.0f, 30.0f),
                                 (0.0f, INFINITY, NAN, NAN, -0.0f, 30.0f)));
}

static void test_silu(void **state) {
  check_case(&SILU);
  check_edges(&SILU, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, -200.0f),
                            (0.0f, -0.0f, INFINITY, NAN, NAN, -0.0f)));
}

static void test_elu(void **state) {
  check_case(&ELU);
  check_edges(&ELU, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, -100.0f), (0.0f, -0.0f, INFINITY, -1.0f, NAN, -1.0f)));
}

static void test_softplus(void **state) {
  check_case(&SOFTPLUS);
  check_edges(&SOFTPLUS, EXPECT((0.0f, INFINITY, -INFINITY, NAN, 100.0f, -200.0f),
                                (0.693147182f, INFINITY, 0.0f, NAN, 100.0f, 0.0f)));
}

/* Beyond 2^28 pi/2 the reduction is not exact: results stay in [-1, 1]. */
static void check_trig_far(const vm_case *vc) {
  float x[64], y[64];
  for (int i = 0; i < 64; i++) x[i] = (i % 2 ? -1.0f : 1.0f) * ldexpf(1.0f + (float)i / 64, 29 + i);
  eval_points(vc, x, y, 64);
  for (int i = 0; i < 64; i++)
    if (!(fabsf(y[i]) <= 1)) fail_msg("%s(%a) = %a is outside [-1, 1]", vc->name, x[i], y[i]);
}

static void test_sin(void **state) {
  check_case(&SIN);
  check_edges(&SIN, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f),
                           (0.0f, -0.0f, NAN, NAN, NAN, 0x1p-149f)));
  check_trig_far(&SIN);
}

static void test_cos(void **state) {
  check_case(&COS);
  check_edges(&COS, EXPECT((0.0f, -0.0f, INFINITY, -INFINITY, NAN), (1.0f, 1.0f, NAN, NAN, NAN)));
  check_trig_far(&COS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exp),      cmocka_unit_test(test_log),       cmocka_unit_test(test_tanh),
      cmocka_unit_test(test_sigmoid),  cmocka_unit_test(test_erf),       cmocka_unit_test(test_gelu),
      cmocka_unit_test(test_gelu_tanh), cmocka_unit_test(test_silu), cmocka_unit_test(test_elu), cmocka_unit_test(test_softplus), cmocka_unit_test(test_sin),
      cmocka_unit_test(test_cos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
