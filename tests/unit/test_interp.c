/* Unit tests for ir/interp.c, the reference interpreter: every op in
 * ops.def against hand-computed values (broadcasting, empty dims, size-1
 * dims, NaN and inf where they matter), scans (running sum, Elman RNN,
 * reverse, nested, T = 0 and 1), run-time errors, dtype rounding and raw
 * bytes. Graphs are built with the IR API; nothing here depends on the
 * verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph_builder.h"
#include "ir/interp.h"

/* ---- building graphs ---------------------------------------------------------- */

#define VALS(...) ((ir_val[]){__VA_ARGS__})
#define NVALS(...) ((int32_t)(sizeof(VALS(__VA_ARGS__)) / sizeof(ir_val)))
/* One-result op in block b: OPB(g, b, kind, type, operands...). */
#define OPB(g, b, k, t, ...) tb_op_in(g, b, k, NVALS(__VA_ARGS__), VALS(__VA_ARGS__), 1, (ir_type[]){t})
#define OP1(g, k, t, ...) OPB(g, (g)->body, k, t, __VA_ARGS__)

/* ---- tensors and running ------------------------------------------------------ */

#define SHAPE(...) ((int64_t[]){__VA_ARGS__})
#define RANK(...) ((int32_t)(sizeof(SHAPE(__VA_ARGS__)) / sizeof(int64_t)))
#define DATA(...) ((double[]){__VA_ARGS__})
#define NDATA(...) ((int64_t)(sizeof(DATA(__VA_ARGS__)) / sizeof(double)))

static ir_tensor tensor(ir_dtype dt, int32_t rank, const int64_t *shape, const double *v) {
  ir_tensor t;
  assert_true(ir_tensor_alloc(&t, dt, rank, shape, 0, NULL));
  if (t.numel) memcpy(t.data, v, sizeof(double) * (size_t)t.numel);
  return t;
}
/* T(dtype, SHAPE(2, 3), DATA(...)); S(dtype, x) is a scalar. */
#define T(dt, shape, data) tensor(dt, (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, data)
#define S(dt, x) tensor(dt, 0, NULL, DATA(x))
#define EMPTY(dt, shape) tensor(dt, (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, NULL)

/* A graph, its argument tensors and its results. */
typedef struct run {
  ir_tensor args[8];
  int32_t n_args;
  ir_tensor outs[4];
  ir_buf err;
} run;

static bool execute(ir_graph *g, run *r, const ir_interp_opts *opts) {
  r->err.len = 0;
  return ir_interp_run(g, r->args, r->n_args, r->outs, opts, &r->err);
}

static void run_ok(ir_graph *g, run *r) {
  bool ok = execute(g, r, NULL);
  if (!ok) print_error("unexpected run-time error: %s\n", r->err.s);
  assert_true(ok);
}

/* Runs and expects a failure whose message contains every `parts` entry. */
static void run_fails(ir_graph *g, run *r, const ir_interp_opts *opts, const char *const *parts) {
  bool ok = execute(g, r, opts);
  assert_false(ok);
  assert_non_null(r->err.s);
  for (; *parts; parts++) {
    if (!strstr(r->err.s, *parts)) print_error("'%s' not in: %s\n", *parts, r->err.s);
    assert_non_null(strstr(r->err.s, *parts));
  }
  for (int32_t i = 0; i < g->n_outputs; i++) assert_null(r->outs[i].data); /* nothing to free */
}
#define MSG(...) ((const char *const[]){__VA_ARGS__, NULL})

static void run_free(ir_graph *g, run *r) {
  for (int32_t i = 0; i < r->n_args; i++) ir_tensor_free(&r->args[i]);
  for (int32_t i = 0; i < 4; i++) ir_tensor_free(&r->outs[i]);
  ir_buf_free(&r->err);
  ir_graph_free(g);
}

/* Equal within tol (relative above 1, absolute below); NaN equals NaN and
 * infinities must match exactly. */
static bool close_to(double have, double want, double tol) {
  if (isnan(want) || isnan(have)) return isnan(want) && isnan(have);
  if (isinf(want) || isinf(have)) return have == want;
  return fabs(have - want) <= tol * fmax(1.0, fabs(want));
}

static void expect_tol(const ir_tensor *t, int32_t rank, const int64_t *shape, const double *want,
                       double tol) {
  assert_int_equal(t->rank, rank);
  for (int32_t i = 0; i < rank; i++) assert_int_equal(t->shape[i], shape[i]);
  for (int64_t e = 0; e < t->numel; e++) {
    if (!close_to(t->data[e], want[e], tol))
      print_error("element %lld: have %.17g, want %.17g\n", (long long)e, t->data[e], want[e]);
    assert_true(close_to(t->data[e], want[e], tol));
  }
}
/* EXPECT(tensor, SHAPE(...), DATA(...)): exact values. */
#define EXPECT(t, shape, data) \
  expect_tol(t, (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, data, 0)
#define EXPECT_NEAR(t, shape, data) \
  expect_tol(t, (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, data, 1e-12)
#define EXPECT_SCALAR(t, x) expect_tol(t, 0, NULL, DATA(x), 1e-12)

/* The common case: graph inputs x0, x1... with the args' dtypes and static
 * shapes, one op of result type `rt` (text dims), its result as output. */
typedef struct single {
  ir_graph *g;
  ir_opid op;
  run r;
} single;

static single single_op(ir_opkind k, ir_dtype rdt, const char *rdims, int32_t n, const ir_tensor *args) {
  single s;
  memset(&s, 0, sizeof s);
  s.g = ir_graph_new("t");
  ir_val in[8];
  for (int32_t i = 0; i < n; i++) {
    ir_dim d[8];
    for (int32_t a = 0; a < args[i].rank; a++) d[a] = ir_dim_const(s.g->dims, args[i].shape[a]);
    char name[8];
    snprintf(name, sizeof name, "x%d", i);
    in[i] = tb_input(s.g, name, ir_type_make(s.g, args[i].dtype, args[i].rank, d));
    s.r.args[i] = args[i];
  }
  s.r.n_args = n;
  ir_type rt = tb_type(s.g, rdt, rdims);
  s.op = tb_op_in(s.g, s.g->body, k, n, in, 1, &rt);
  if (ir_attr_index(k, "axis") >= 0) ir_set_int(s.g, s.op, "axis", 0); /* tests may override */
  ir_value_set_name(s.g, tb_res(s.g, s.op, 0), "y");
  tb_finish(s.g, 1, (ir_val[]){tb_res(s.g, s.op, 0)});
  return s;
}
#define ARGS(...) ((ir_tensor[]){__VA_ARGS__})
#define NARGS(...) ((int32_t)(sizeof(ARGS(__VA_ARGS__)) / sizeof(ir_tensor)))
#define SINGLE(k, rdt, rdims, ...) single_op(k, rdt, rdims, NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))

/* Runs a single-op case and checks its one result. */
static void check_single(single *s, int32_t rank, const int64_t *shape, const double *want, double tol) {
  run_ok(s->g, &s->r);
  expect_tol(&s->r.outs[0], rank, shape, want, tol);
  run_free(s->g, &s->r);
}
#define CHECK(s, shape, data) check_single(&(s), (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, data, 0)
#define CHECK_SCALAR(s, x) check_single(&(s), 0, NULL, DATA x, 0)
#define CHECK_NEAR(s, shape, data) \
  check_single(&(s), (int32_t)(sizeof(shape) / sizeof(int64_t)), shape, data, 1e-12)

static void check_fails(single *s, const ir_interp_opts *opts, const char *const *parts) {
  run_fails(s->g, &s->r, opts, parts);
  run_free(s->g, &s->r);
}

/* ---- structure --------------------------------------------------------------------- */

static void test_constant(void **state) {
  (void)state;
  single s = single_op(IR_OP_CONSTANT, IR_F64, "2, 2", 0, NULL);
  ir_set_tensor(s.g, s.op, "value", &(ir_tensor_data){1, DATA(1.5), NULL});
  CHECK(s, SHAPE(2, 2), DATA(1.5, 1.5, 1.5, 1.5));

  s = single_op(IR_OP_CONSTANT, IR_I32, "3", 0, NULL);
  ir_set_tensor(s.g, s.op, "value", &(ir_tensor_data){3, NULL, (int64_t[]){1, -2, 3}});
  CHECK(s, SHAPE(3), DATA(1, -2, 3));

  /* f32 constants are rounded on store; NaN and inf survive. */
  s = single_op(IR_OP_CONSTANT, IR_F32, "3", 0, NULL);
  ir_set_tensor(s.g, s.op, "value", &(ir_tensor_data){3, DATA(0.1, NAN, -INFINITY), NULL});
  CHECK(s, SHAPE(3), DATA((double)0.1f, NAN, -INFINITY));

  s = single_op(IR_OP_CONSTANT, IR_BOOL, "0", 0, NULL);
  ir_set_tensor(s.g, s.op, "value", &(ir_tensor_data){1, NULL, (int64_t[]){1}});
  CHECK(s, SHAPE(0), NULL);

  s = single_op(IR_OP_CONSTANT, IR_F64, "", 0, NULL);
  ir_set_tensor(s.g, s.op, "value", &(ir_tensor_data){1, DATA(-2.25), NULL});
  run_ok(s.g, &s.r);
  EXPECT_SCALAR(&s.r.outs[0], -2.25);
  run_free(s.g, &s.r);
}

static void test_iota(void **state) {
  (void)state;
  single s = single_op(IR_OP_IOTA, IR_I64, "2, 3", 0, NULL);
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 3), DATA(0, 1, 2, 0, 1, 2));
  s = single_op(IR_OP_IOTA, IR_F32, "2, 3", 0, NULL);
  ir_set_int(s.g, s.op, "axis", 0);
  CHECK(s, SHAPE(2, 3), DATA(0, 0, 0, 1, 1, 1));
}

/* ---- elementwise ------------------------------------------------------------------------ */

static void check_unary(ir_opkind k, ir_dtype dt, int64_t n, const double *x, const double *want) {
  single s = single_op(k, dt, n == 1 ? "1" : n == 2 ? "2" : n == 3 ? "3" : n == 4 ? "4" : "5", 1,
                       (ir_tensor[]){tensor(dt, 1, &n, x)});
  if (k == IR_OP_ELU) ir_set_float(s.g, s.op, "alpha", 2.0);
  check_single(&s, 1, &n, want, 1e-15);
}
#define UNARY(k, dt, x, want) check_unary(k, dt, NDATA x, DATA x, DATA want)

static void test_unary(void **state) {
  (void)state;
  const double e = 2.718281828459045, pi = 3.141592653589793;
  UNARY(IR_OP_NEG, IR_F64, (1.5, -2, 0), (-1.5, 2, -0.0));
  UNARY(IR_OP_NEG, IR_I32, (3, -4), (-3, 4));
  UNARY(IR_OP_ABS, IR_F64, (-1.5, 2, -INFINITY), (1.5, 2, INFINITY));
  UNARY(IR_OP_ABS, IR_I64, (-7, 7), (7, 7));
  UNARY(IR_OP_EXP, IR_F64, (0, 1, -INFINITY, 1000), (1, e, 0, INFINITY));
  UNARY(IR_OP_LOG, IR_F64, (1, e, 0, -1), (0, 1, -INFINITY, NAN));
  UNARY(IR_OP_SQRT, IR_F64, (4, 2, -1), (2, 1.4142135623730951, NAN));
  UNARY(IR_OP_RSQRT, IR_F64, (4, 0, INFINITY), (0.5, INFINITY, 0));
  UNARY(IR_OP_TANH, IR_F64, (0, 0.5, INFINITY, -INFINITY), (0, 0.46211715726000974, 1, -1));
  UNARY(IR_OP_SIGMOID, IR_F64, (0, 2, -2, -800, NAN),
        (0.5, 0.8807970779778823, 0.11920292202211755, 0, NAN));
  UNARY(IR_OP_RELU, IR_F64, (-1, 2, NAN, -INFINITY), (0, 2, NAN, 0));
  UNARY(IR_OP_GELU, IR_F64, (1, -1, 0), (0.8413447460685429, -0.15865525393145707, 0));
  UNARY(IR_OP_ERF, IR_F64, (0, 1, -INFINITY), (0, 0.8427007929497149, -1));
  UNARY(IR_OP_SILU, IR_F64, (1, -2, 0), (0.7310585786300049, -0.2384058440442351, 0));
  /* Stable: the naive log(1 + e^1000) would be inf. */
  UNARY(IR_OP_SOFTPLUS, IR_F64, (0, 1, -1, 1000, -1000),
        (0.6931471805599453, 1.3132616875182228, 0.31326168751822286, 1000, 0));
  UNARY(IR_OP_ELU, IR_F64, (1, -1, 0, -INFINITY), (1, -1.2642411176571153, 0, -2)); /* alpha 2 */
  UNARY(IR_OP_SIN, IR_F64, (0, pi / 2), (0, 1));
  UNARY(IR_OP_COS, IR_F64, (0, pi), (1, -1));
  UNARY(IR_OP_NOT, IR_BOOL, (1, 0), (0, 1));

  /* gelu with approximate = tanh, as PyTorch's. */
  single s = SINGLE(IR_OP_GELU, IR_F64, "2", T(IR_F64, SHAPE(2), DATA(1, -1)));
  ir_set_int(s.g, s.op, "approximate", IR_GELU_TANH);
  CHECK_NEAR(s, SHAPE(2), DATA(0.8411919906082768, -0.15880800939172324));
  /* elu's default alpha is 1. */
  s = SINGLE(IR_OP_ELU, IR_F64, "1", T(IR_F64, SHAPE(1), DATA(-1)));
  CHECK_NEAR(s, SHAPE(1), DATA(1 / e - 1));
}

static void test_binary_broadcasting(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_ADD, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)),
                    T(IR_F64, SHAPE(3), DATA(10, 20, 30)));
  CHECK(s, SHAPE(2, 3), DATA(11, 22, 33, 14, 25, 36));
  /* [2, 1] with [1, 3]: both expand. */
  s = SINGLE(IR_OP_SUB, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 1), DATA(10, 20)),
             T(IR_F64, SHAPE(1, 3), DATA(1, 2, 3)));
  CHECK(s, SHAPE(2, 3), DATA(9, 8, 7, 19, 18, 17));
  /* A scalar with an empty tensor is empty. */
  s = SINGLE(IR_OP_MUL, IR_F64, "0, 2", T(IR_F64, SHAPE(0, 2), NULL), S(IR_F64, 3));
  CHECK(s, SHAPE(0, 2), NULL);
  s = SINGLE(IR_OP_MUL, IR_I64, "3", T(IR_I64, SHAPE(3), DATA(2, -3, 4)), S(IR_I64, -5));
  CHECK(s, SHAPE(3), DATA(-10, 15, -20));
}

static void test_div_max_min_pow_logic(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_DIV, IR_F64, "4", T(IR_F64, SHAPE(4), DATA(1, -1, 0, 7)),
                    T(IR_F64, SHAPE(4), DATA(0, 0, 0, 2)));
  CHECK(s, SHAPE(4), DATA(INFINITY, -INFINITY, NAN, 3.5));
  /* Integer division truncates toward zero. */
  s = SINGLE(IR_OP_DIV, IR_I32, "4", T(IR_I32, SHAPE(4), DATA(7, -7, 7, -7)),
             T(IR_I32, SHAPE(4), DATA(2, 2, -2, -2)));
  CHECK(s, SHAPE(4), DATA(3, -3, -3, 3));
  s = SINGLE(IR_OP_MAX, IR_F64, "4", T(IR_F64, SHAPE(4), DATA(1, NAN, 3, -INFINITY)),
             T(IR_F64, SHAPE(4), DATA(2, 5, NAN, -1)));
  CHECK(s, SHAPE(4), DATA(2, NAN, NAN, -1));
  s = SINGLE(IR_OP_MIN, IR_F64, "4", T(IR_F64, SHAPE(4), DATA(1, NAN, 3, -INFINITY)),
             T(IR_F64, SHAPE(4), DATA(2, 5, NAN, -1)));
  CHECK(s, SHAPE(4), DATA(1, NAN, NAN, -INFINITY));
  s = SINGLE(IR_OP_MAX, IR_I32, "2", T(IR_I32, SHAPE(2), DATA(-3, 8)), S(IR_I32, 0));
  CHECK(s, SHAPE(2), DATA(0, 8));
  s = SINGLE(IR_OP_POW, IR_F64, "4", T(IR_F64, SHAPE(4), DATA(2, 4, -8, 0)),
             T(IR_F64, SHAPE(4), DATA(3, 0.5, 1.0 / 3, 0)));
  CHECK(s, SHAPE(4), DATA(8, 2, NAN, 1));
  s = SINGLE(IR_OP_AND, IR_BOOL, "4", T(IR_BOOL, SHAPE(4), DATA(0, 0, 1, 1)),
             T(IR_BOOL, SHAPE(4), DATA(0, 1, 0, 1)));
  CHECK(s, SHAPE(4), DATA(0, 0, 0, 1));
  s = SINGLE(IR_OP_OR, IR_BOOL, "2, 2", T(IR_BOOL, SHAPE(2, 1), DATA(0, 1)),
             T(IR_BOOL, SHAPE(2), DATA(0, 1)));
  CHECK(s, SHAPE(2, 2), DATA(0, 1, 1, 1));
}

static void test_compare(void **state) {
  (void)state;
  /* a = [1, 2, NaN], b = [2, 2, NaN]: NaN compares false except with ne. */
  static const double want[6][3] = {
      [IR_CMP_EQ] = {0, 1, 0}, [IR_CMP_NE] = {1, 0, 1}, [IR_CMP_LT] = {1, 0, 0},
      [IR_CMP_LE] = {1, 1, 0}, [IR_CMP_GT] = {0, 0, 0}, [IR_CMP_GE] = {0, 1, 0},
  };
  for (int p = IR_CMP_EQ; p <= IR_CMP_GE; p++) {
    single s = SINGLE(IR_OP_COMPARE, IR_BOOL, "3", T(IR_F64, SHAPE(3), DATA(1, 2, NAN)),
                      T(IR_F64, SHAPE(3), DATA(2, 2, NAN)));
    ir_set_int(s.g, s.op, "predicate", p);
    CHECK(s, SHAPE(3), want[p]);
  }
  single s = SINGLE(IR_OP_COMPARE, IR_BOOL, "2, 2", T(IR_I32, SHAPE(2, 1), DATA(1, 5)),
                    T(IR_I32, SHAPE(2), DATA(3, 5)));
  ir_set_int(s.g, s.op, "predicate", IR_CMP_GE);
  CHECK(s, SHAPE(2, 2), DATA(0, 0, 1, 1));
}

static void test_select(void **state) {
  (void)state;
  /* cond [2, 1], a [2, 2], b a scalar: all three broadcast. */
  single s = SINGLE(IR_OP_SELECT, IR_F64, "2, 2", T(IR_BOOL, SHAPE(2, 1), DATA(1, 0)),
                    T(IR_F64, SHAPE(2, 2), DATA(1, 2, 3, 4)), S(IR_F64, -1));
  CHECK(s, SHAPE(2, 2), DATA(1, 2, -1, -1));
}

static void test_cast(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_CAST, IR_I32, "4", T(IR_F64, SHAPE(4), DATA(2.7, -2.7, 0.5, -0.0)));
  CHECK(s, SHAPE(4), DATA(2, -2, 0, 0));
  s = SINGLE(IR_OP_CAST, IR_BOOL, "4", T(IR_F64, SHAPE(4), DATA(0, 0.1, NAN, -3)));
  CHECK(s, SHAPE(4), DATA(0, 1, 1, 1));
  s = SINGLE(IR_OP_CAST, IR_F32, "3", T(IR_F64, SHAPE(3), DATA(0.1, 1e39, -1e39)));
  CHECK(s, SHAPE(3), DATA(0.100000001490116119384765625, INFINITY, -INFINITY));
  s = SINGLE(IR_OP_CAST, IR_F32, "1", T(IR_I64, SHAPE(1), DATA(16777217)));
  CHECK(s, SHAPE(1), DATA(16777216));
  /* f16: the largest finite is 65504; from 65520 on it is inf; ties go to
   * even; 2^-24 is the smallest subnormal. */
  s = SINGLE(IR_OP_CAST, IR_F16, "8",
             T(IR_F64, SHAPE(8),
               DATA(65519, 65520, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 0x1p-25, 3 * 0x1p-26, 3 * 0x1p-25, NAN)));
  CHECK(s, SHAPE(8), DATA(65504, INFINITY, 1, 1 + 0x1p-9, 0, 0x1p-24, 0x1p-23, NAN));
  /* bf16: 8 significand bits, f32's range. */
  s = SINGLE(IR_OP_CAST, IR_BF16, "5",
             T(IR_F64, SHAPE(5), DATA(1 + 0x1p-8, 1 + 3 * 0x1p-8, 3.39e38, 3.4e38, -0x1p-133)));
  CHECK(s, SHAPE(5), DATA(1, 1 + 0x1p-6, 3.3895313892515355e38, INFINITY, -0x1p-133));
  s = SINGLE(IR_OP_CAST, IR_I64, "2", T(IR_BOOL, SHAPE(2), DATA(1, 0)));
  CHECK(s, SHAPE(2), DATA(1, 0));
}

/* ---- linear algebra and reductions ----------------------------------------------------- */

static void test_matmul(void **state) {
  (void)state;
  /* [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] */
  single s = SINGLE(IR_OP_MATMUL, IR_F64, "2, 2", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)),
                    T(IR_F64, SHAPE(3, 2), DATA(1, 0, 0, 1, 1, 1)));
  CHECK(s, SHAPE(2, 2), DATA(4, 5, 10, 11));
  /* The same product with both operands stored transposed. */
  s = SINGLE(IR_OP_MATMUL, IR_F64, "2, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 4, 2, 5, 3, 6)),
             T(IR_F64, SHAPE(2, 3), DATA(1, 0, 1, 0, 1, 1)));
  ir_set_int(s.g, s.op, "transpose_a", 1);
  ir_set_int(s.g, s.op, "transpose_b", 1);
  CHECK(s, SHAPE(2, 2), DATA(4, 5, 10, 11));
  /* Batch dims broadcast: a [2, 1, 2] against b [2, 2] with no batch. */
  s = SINGLE(IR_OP_MATMUL, IR_F64, "2, 1, 2", T(IR_F64, SHAPE(2, 1, 2), DATA(1, 2, 3, 4)),
             T(IR_F64, SHAPE(2, 2), DATA(1, 1, 0, 1)));
  CHECK(s, SHAPE(2, 1, 2), DATA(1, 3, 3, 7));
  /* A batch dim of 1 expands against 2. */
  s = SINGLE(IR_OP_MATMUL, IR_F64, "2, 1, 1", T(IR_F64, SHAPE(1, 1, 2), DATA(1, 2)),
             T(IR_F64, SHAPE(2, 2, 1), DATA(1, 1, 10, 100)));
  CHECK(s, SHAPE(2, 1, 1), DATA(3, 210));
  /* K = 0 gives zeros. */
  s = SINGLE(IR_OP_MATMUL, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 0), NULL), T(IR_F64, SHAPE(0, 3), NULL));
  CHECK(s, SHAPE(2, 3), DATA(0, 0, 0, 0, 0, 0));
  s = SINGLE(IR_OP_MATMUL, IR_I32, "1, 1", T(IR_I32, SHAPE(1, 2), DATA(3, -4)),
             T(IR_I32, SHAPE(2, 1), DATA(5, 6)));
  CHECK(s, SHAPE(1, 1), DATA(-9));
}

static single reduce_case(ir_opkind k, const char *rdims, ir_tensor x, int32_t n_axes,
                          const int64_t *axes, bool keep) {
  single s = single_op(k, x.dtype, rdims, 1, &x);
  ir_set_ints(s.g, s.op, "axes", n_axes, axes);
  if (keep) ir_set_int(s.g, s.op, "keepdims", 1);
  return s;
}

static void test_reduce(void **state) {
  (void)state;
#define X23 T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6))
  single s = reduce_case(IR_OP_REDUCE_SUM, "2", X23, 1, SHAPE(1), false);
  CHECK(s, SHAPE(2), DATA(6, 15));
  s = reduce_case(IR_OP_REDUCE_SUM, "1, 3", X23, 1, SHAPE(0), true);
  CHECK(s, SHAPE(1, 3), DATA(5, 7, 9));
  s = reduce_case(IR_OP_REDUCE_SUM, "", X23, 2, SHAPE(0, -1), false);
  CHECK_SCALAR(s, (21));
  s = reduce_case(IR_OP_REDUCE_PROD, "2", X23, 1, SHAPE(1), false);
  CHECK(s, SHAPE(2), DATA(6, 120));
  s = reduce_case(IR_OP_REDUCE_MEAN, "2", X23, 1, SHAPE(1), false);
  CHECK(s, SHAPE(2), DATA(2, 5));
  s = reduce_case(IR_OP_REDUCE_MAX, "3", X23, 1, SHAPE(0), false);
  CHECK(s, SHAPE(3), DATA(4, 5, 6));
  s = reduce_case(IR_OP_REDUCE_MIN, "2, 1", X23, 1, SHAPE(1), true);
  CHECK(s, SHAPE(2, 1), DATA(1, 4));
  /* No axes: every element is its own reduction. */
  s = reduce_case(IR_OP_REDUCE_MAX, "2, 3", X23, 0, SHAPE(0), false);
  CHECK(s, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6));
#undef X23
  /* NaN propagates through max and min. */
  s = reduce_case(IR_OP_REDUCE_MAX, "", T(IR_F64, SHAPE(3), DATA(1, NAN, 5)), 1, SHAPE(0), false);
  CHECK_SCALAR(s, (NAN));
  s = reduce_case(IR_OP_REDUCE_MIN, "", T(IR_F64, SHAPE(3), DATA(1, NAN, -5)), 1, SHAPE(0), false);
  CHECK_SCALAR(s, (NAN));
  /* logsumexp is stable and handles infinities. */
  s = reduce_case(IR_OP_REDUCE_LOGSUMEXP, "3", T(IR_F64, SHAPE(3, 2), DATA(0, 0, 1000, 1000, -INFINITY, -INFINITY)),
                  1, SHAPE(1), false);
  CHECK_NEAR(s, SHAPE(3), DATA(0.6931471805599453, 1000.6931471805599453, -INFINITY));
  s = reduce_case(IR_OP_REDUCE_LOGSUMEXP, "2", T(IR_F64, SHAPE(2, 2), DATA(INFINITY, 0, NAN, 0)), 1,
                  SHAPE(1), false);
  CHECK(s, SHAPE(2), DATA(INFINITY, NAN));
  /* Integer sums are exact. */
  s = reduce_case(IR_OP_REDUCE_SUM, "", T(IR_I64, SHAPE(2), DATA(4503599627370496, 3)), 1, SHAPE(0), false);
  CHECK_SCALAR(s, (4503599627370499));
}

static void test_reduce_empty(void **state) {
  (void)state;
  /* Reducing [2, 0] over its empty axis gives the identity. */
  static const struct {
    ir_opkind k;
    double want;
  } cases[] = {
      {IR_OP_REDUCE_SUM, 0}, {IR_OP_REDUCE_PROD, 1}, {IR_OP_REDUCE_MAX, -INFINITY},
      {IR_OP_REDUCE_MIN, INFINITY}, {IR_OP_REDUCE_MEAN, NAN}, {IR_OP_REDUCE_LOGSUMEXP, -INFINITY},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    single s = reduce_case(cases[i].k, "2", T(IR_F64, SHAPE(2, 0), NULL), 1, SHAPE(1), false);
    CHECK(s, SHAPE(2), DATA(cases[i].want, cases[i].want));
  }
  /* Over the other axis the result itself is empty. */
  single s = reduce_case(IR_OP_REDUCE_SUM, "0", T(IR_F64, SHAPE(2, 0), NULL), 1, SHAPE(0), false);
  CHECK(s, SHAPE(0), NULL);
  /* An infinite identity does not fit an integer dtype. */
  s = reduce_case(IR_OP_REDUCE_MAX, "2", T(IR_I32, SHAPE(2, 0), NULL), 1, SHAPE(1), false);
  check_fails(&s, NULL, MSG("reduce_max 'y'", "does not fit in i32"));
}

static void test_argmax_argmin(void **state) {
  (void)state;
  /* The first extremum wins. */
  single s = SINGLE(IR_OP_ARGMAX, IR_I64, "", T(IR_F64, SHAPE(4), DATA(3, 1, 3, 0)));
  CHECK_SCALAR(s, (0));
  s = SINGLE(IR_OP_ARGMIN, IR_I64, "", T(IR_F64, SHAPE(4), DATA(3, 0, 3, 0)));
  CHECK_SCALAR(s, (1));
  /* NaN counts as the extremum both ways. */
  s = SINGLE(IR_OP_ARGMAX, IR_I64, "", T(IR_F64, SHAPE(4), DATA(1, NAN, 5, NAN)));
  CHECK_SCALAR(s, (1));
  s = SINGLE(IR_OP_ARGMIN, IR_I64, "", T(IR_F64, SHAPE(3), DATA(1, -2, NAN)));
  CHECK_SCALAR(s, (2));
  /* Along axis 0 of [[1, 9], [5, 2]], keeping the axis. */
  s = SINGLE(IR_OP_ARGMAX, IR_I64, "1, 2", T(IR_I32, SHAPE(2, 2), DATA(1, 9, 5, 2)));
  ir_set_int(s.g, s.op, "keepdims", 1);
  CHECK(s, SHAPE(1, 2), DATA(1, 0));
  s = SINGLE(IR_OP_ARGMIN, IR_I64, "2", T(IR_F64, SHAPE(2, 3), DATA(4, -INFINITY, 2, 7, 8, 9)));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2), DATA(1, 0));
  s = SINGLE(IR_OP_ARGMAX, IR_I64, "2", T(IR_F64, SHAPE(2, 0), NULL));
  ir_set_int(s.g, s.op, "axis", 1);
  check_fails(&s, NULL, MSG("argmax 'y'", "empty"));
}

static void test_softmax(void **state) {
  (void)state;
  const double ln3 = 1.0986122886681098;
  single s = SINGLE(IR_OP_SOFTMAX, IR_F64, "3, 2",
                    T(IR_F64, SHAPE(3, 2), DATA(0, ln3, 1000, 1000, -INFINITY, -INFINITY)));
  ir_set_int(s.g, s.op, "axis", 1);
  /* Stable for large inputs; an all -inf row is NaN, as in PyTorch. */
  CHECK_NEAR(s, SHAPE(3, 2), DATA(0.25, 0.75, 0.5, 0.5, NAN, NAN));
  s = SINGLE(IR_OP_SOFTMAX, IR_F64, "2, 2", T(IR_F64, SHAPE(2, 2), DATA(0, 5, -INFINITY, 5)));
  ir_set_int(s.g, s.op, "axis", 0);
  CHECK_NEAR(s, SHAPE(2, 2), DATA(1, 0.5, 0, 0.5));
  s = SINGLE(IR_OP_SOFTMAX, IR_F64, "3", T(IR_F64, SHAPE(3), DATA(1, NAN, 2)));
  CHECK(s, SHAPE(3), DATA(NAN, NAN, NAN));
  s = SINGLE(IR_OP_SOFTMAX, IR_F64, "2, 0", T(IR_F64, SHAPE(2, 0), NULL));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 0), NULL);
}

static void test_layernorm(void **state) {
  (void)state;
  /* Rows [1, 3] (mean 2, biased variance 1) and [2, 2] (variance 0). */
  const double r = 0.9999950000374997; /* 1 / sqrt(1 + 1e-5) */
  single s = SINGLE(IR_OP_LAYERNORM, IR_F64, "2, 2", T(IR_F64, SHAPE(2, 2), DATA(1, 3, 2, 2)));
  CHECK_NEAR(s, SHAPE(2, 2), DATA(-r, r, 0, 0));
  s = SINGLE(IR_OP_LAYERNORM, IR_F64, "2, 2", T(IR_F64, SHAPE(2, 2), DATA(1, 3, 2, 2)),
             T(IR_F64, SHAPE(2), DATA(2, 3)), T(IR_F64, SHAPE(2), DATA(1, -1)));
  CHECK_NEAR(s, SHAPE(2, 2), DATA(-2 * r + 1, 3 * r - 1, 1, -1));
  /* eps = 0.25 and gamma only, over a rank-3 input: [0, 2] -> var 1. */
  s = SINGLE(IR_OP_LAYERNORM, IR_F64, "1, 1, 2", T(IR_F64, SHAPE(1, 1, 2), DATA(0, 2)),
             T(IR_F64, SHAPE(2), DATA(1, 10)));
  ir_set_float(s.g, s.op, "eps", 0.25);
  CHECK_NEAR(s, SHAPE(1, 1, 2), DATA(-1 / sqrt(1.25), 10 / sqrt(1.25)));
}

static single cumulative_case(ir_opkind k, ir_tensor x, int64_t axis, bool reverse, bool exclusive) {
  char dims[32];
  snprintf(dims, sizeof dims, x.rank == 1 ? "%lld" : "%lld, %lld", (long long)x.shape[0],
           (long long)(x.rank > 1 ? x.shape[1] : 0));
  single s = single_op(k, x.dtype, dims, 1, &x);
  ir_set_int(s.g, s.op, "axis", axis);
  if (reverse) ir_set_int(s.g, s.op, "reverse", 1);
  if (exclusive) ir_set_int(s.g, s.op, "exclusive", 1);
  return s;
}

static void test_cumulative(void **state) {
  (void)state;
#define X3 T(IR_F64, SHAPE(3), DATA(1, 2, 3))
  single s = cumulative_case(IR_OP_CUMSUM, X3, 0, false, false);
  CHECK(s, SHAPE(3), DATA(1, 3, 6));
  s = cumulative_case(IR_OP_CUMSUM, X3, 0, true, false);
  CHECK(s, SHAPE(3), DATA(6, 5, 3));
  s = cumulative_case(IR_OP_CUMSUM, X3, 0, false, true);
  CHECK(s, SHAPE(3), DATA(0, 1, 3));
  s = cumulative_case(IR_OP_CUMSUM, X3, 0, true, true);
  CHECK(s, SHAPE(3), DATA(5, 3, 0));
  s = cumulative_case(IR_OP_CUMPROD, X3, 0, false, false);
  CHECK(s, SHAPE(3), DATA(1, 2, 6));
  s = cumulative_case(IR_OP_CUMPROD, X3, 0, true, true);
  CHECK(s, SHAPE(3), DATA(6, 3, 1));
#undef X3
  const double ln2 = 0.6931471805599453, ln3 = 1.0986122886681098;
  s = cumulative_case(IR_OP_LOGCUMSUMEXP, T(IR_F64, SHAPE(3), DATA(0, 0, 0)), 0, false, false);
  CHECK_NEAR(s, SHAPE(3), DATA(0, ln2, ln3));
  s = cumulative_case(IR_OP_LOGCUMSUMEXP, T(IR_F64, SHAPE(3), DATA(0, 0, 0)), 0, false, true);
  CHECK_NEAR(s, SHAPE(3), DATA(-INFINITY, 0, ln2));
  s = cumulative_case(IR_OP_LOGCUMSUMEXP, T(IR_F64, SHAPE(3), DATA(1000, -INFINITY, 1000)), 0, false, false);
  CHECK_NEAR(s, SHAPE(3), DATA(1000, 1000, 1000 + ln2));
  /* Along axis 0 of a matrix; integer sums. */
  s = cumulative_case(IR_OP_CUMSUM, T(IR_I32, SHAPE(2, 2), DATA(1, 2, 3, 4)), 0, false, false);
  CHECK(s, SHAPE(2, 2), DATA(1, 2, 4, 6));
  s = cumulative_case(IR_OP_CUMSUM, T(IR_F64, SHAPE(2, 0), NULL), 1, false, false);
  CHECK(s, SHAPE(2, 0), NULL);
}

/* ---- data movement ------------------------------------------------------------------- */

static void test_reshape_transpose(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_RESHAPE, IR_F64, "3, 2", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)));
  CHECK(s, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6));
  s = SINGLE(IR_OP_RESHAPE, IR_I32, "", T(IR_I32, SHAPE(1, 1), DATA(7)));
  CHECK_SCALAR(s, (7));
  s = SINGLE(IR_OP_TRANSPOSE, IR_F64, "3, 2", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)));
  ir_set_ints(s.g, s.op, "perm", 2, SHAPE(1, 0));
  CHECK(s, SHAPE(3, 2), DATA(1, 4, 2, 5, 3, 6));
  /* x[i][j][k] = 100i + 10j + k over [2, 1, 3]; perm [2, 0, 1] gives [3, 2, 1]. */
  s = SINGLE(IR_OP_TRANSPOSE, IR_F64, "3, 2, 1",
             T(IR_F64, SHAPE(2, 1, 3), DATA(0, 1, 2, 100, 101, 102)));
  ir_set_ints(s.g, s.op, "perm", 3, SHAPE(2, 0, 1));
  CHECK(s, SHAPE(3, 2, 1), DATA(0, 100, 1, 101, 2, 102));
}

static single slice_case(const char *rdims, ir_tensor x, int64_t axis, const char *start,
                         const char *end, int64_t step) {
  single s = single_op(IR_OP_SLICE, x.dtype, rdims, 1, &x);
  ir_set_int(s.g, s.op, "axis", axis);
  ir_set_dim(s.g, s.op, "start", tb_dim(s.g, start));
  ir_set_dim(s.g, s.op, "end", tb_dim(s.g, end));
  if (step != 1) ir_set_int(s.g, s.op, "step", step);
  return s;
}

static void test_slice(void **state) {
  (void)state;
  single s = slice_case("3", T(IR_F64, SHAPE(6), DATA(0, 1, 2, 3, 4, 5)), 0, "1", "6", 2);
  CHECK(s, SHAPE(3), DATA(1, 3, 5));
  s = slice_case("2", T(IR_F64, SHAPE(6), DATA(0, 1, 2, 3, 4, 5)), 0, "0", "5", 3);
  CHECK(s, SHAPE(2), DATA(0, 3));
  s = slice_case("2, 2", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)), 1, "1", "3", 1);
  CHECK(s, SHAPE(2, 2), DATA(2, 3, 5, 6));
  s = slice_case("2, 0", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)), 1, "3", "3", 1);
  CHECK(s, SHAPE(2, 0), NULL);
}

static single dynamic_slice_case(ir_tensor x, ir_tensor index, const char *size, int64_t axis,
                                 const char *rdims) {
  single s = single_op(IR_OP_DYNAMIC_SLICE, x.dtype, rdims, 2, (ir_tensor[]){x, index});
  ir_set_int(s.g, s.op, "axis", axis);
  ir_set_dim(s.g, s.op, "size", tb_dim(s.g, size));
  return s;
}

static void test_dynamic_slice(void **state) {
  (void)state;
#define X5 T(IR_F64, SHAPE(5), DATA(10, 11, 12, 13, 14))
  single s = dynamic_slice_case(X5, S(IR_I32, 1), "2", 0, "2");
  CHECK(s, SHAPE(2), DATA(11, 12));
  /* The index is clamped to [0, 5 - 2]. */
  s = dynamic_slice_case(X5, S(IR_I64, 4), "2", 0, "2");
  CHECK(s, SHAPE(2), DATA(13, 14));
  s = dynamic_slice_case(X5, S(IR_I32, -2), "2", 0, "2");
  CHECK(s, SHAPE(2), DATA(10, 11));
  s = dynamic_slice_case(X5, S(IR_I64, 3), "0", 0, "0");
  CHECK(s, SHAPE(0), NULL);
#undef X5
  s = dynamic_slice_case(T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)), S(IR_I32, 2), "1", 1, "2, 1");
  CHECK(s, SHAPE(2, 1), DATA(3, 6));
}

static void test_dynamic_update_slice(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_DYNAMIC_UPDATE_SLICE, IR_F64, "5", T(IR_F64, SHAPE(5), DATA(0, 0, 0, 0, 0)),
                    T(IR_F64, SHAPE(2), DATA(7, 8)), S(IR_I32, 1));
  CHECK(s, SHAPE(5), DATA(0, 7, 8, 0, 0));
  /* Clamped to 5 - 2 = 3. */
  s = SINGLE(IR_OP_DYNAMIC_UPDATE_SLICE, IR_F64, "5", T(IR_F64, SHAPE(5), DATA(0, 0, 0, 0, 0)),
             T(IR_F64, SHAPE(2), DATA(7, 8)), S(IR_I64, 4));
  CHECK(s, SHAPE(5), DATA(0, 0, 0, 7, 8));
  s = SINGLE(IR_OP_DYNAMIC_UPDATE_SLICE, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)),
             T(IR_F64, SHAPE(2, 1), DATA(-1, -2)), S(IR_I32, 0));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 3), DATA(-1, 2, 3, -2, 5, 6));
}

static void test_concat_split(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_CONCAT, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 1), DATA(1, 2)),
                    T(IR_F64, SHAPE(2, 0), NULL), T(IR_F64, SHAPE(2, 2), DATA(3, 4, 5, 6)));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 3), DATA(1, 3, 4, 2, 5, 6));
  s = SINGLE(IR_OP_CONCAT, IR_I32, "3", T(IR_I32, SHAPE(1), DATA(1)), T(IR_I32, SHAPE(2), DATA(2, 3)));
  CHECK(s, SHAPE(3), DATA(1, 2, 3));

  /* split [2, 3] along axis 1 into sizes 1, 0, 2. */
  ir_graph *g = ir_graph_new("split");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "2, 3"));
  ir_type rt[3] = {tb_type(g, IR_F64, "2, 1"), tb_type(g, IR_F64, "2, 0"), tb_type(g, IR_F64, "2, 2")};
  ir_opid op = tb_op_in(g, g->body, IR_OP_SPLIT, 1, &x, 3, rt);
  ir_set_int(g, op, "axis", 1);
  ir_set_dims(g, op, "sizes", 3, (ir_dim[]){tb_dim(g, "1"), tb_dim(g, "0"), tb_dim(g, "2")});
  tb_finish(g, 3, VALS(tb_res(g, op, 0), tb_res(g, op, 1), tb_res(g, op, 2)));
  run r = {.args = {T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6))}, .n_args = 1};
  run_ok(g, &r);
  EXPECT(&r.outs[0], SHAPE(2, 1), DATA(1, 4));
  EXPECT(&r.outs[1], SHAPE(2, 0), NULL);
  EXPECT(&r.outs[2], SHAPE(2, 2), DATA(2, 3, 5, 6));
  run_free(g, &r);
}

static void test_broadcast(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_BROADCAST, IR_F64, "2, 3", T(IR_F64, SHAPE(3), DATA(1, 2, 3)));
  CHECK(s, SHAPE(2, 3), DATA(1, 2, 3, 1, 2, 3));
  s = SINGLE(IR_OP_BROADCAST, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 1), DATA(1, 2)));
  CHECK(s, SHAPE(2, 3), DATA(1, 1, 1, 2, 2, 2));
  s = SINGLE(IR_OP_BROADCAST, IR_I64, "2, 2", S(IR_I64, 9));
  CHECK(s, SHAPE(2, 2), DATA(9, 9, 9, 9));
  s = SINGLE(IR_OP_BROADCAST, IR_F64, "0, 3", T(IR_F64, SHAPE(1, 3), DATA(1, 2, 3)));
  CHECK(s, SHAPE(0, 3), NULL);
}

static void test_gather(void **state) {
  (void)state;
  /* Rows 2 and 0 of a [3, 2] table. */
  single s = SINGLE(IR_OP_GATHER, IR_F64, "2, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)),
                    T(IR_I64, SHAPE(2), DATA(2, 0)));
  CHECK(s, SHAPE(2, 2), DATA(5, 6, 1, 2));
  /* Along axis 1 with a [2, 2] index: the result is [2, 2, 2]. */
  s = SINGLE(IR_OP_GATHER, IR_F64, "2, 2, 2", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)),
             T(IR_I32, SHAPE(2, 2), DATA(0, 2, 1, 1)));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 2, 2), DATA(1, 3, 2, 2, 4, 6, 5, 5));
  /* A scalar index drops the axis; an empty index gives an empty result. */
  s = SINGLE(IR_OP_GATHER, IR_F64, "2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)), S(IR_I32, 1));
  CHECK(s, SHAPE(2), DATA(3, 4));
  s = SINGLE(IR_OP_GATHER, IR_F64, "0, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)),
             T(IR_I32, SHAPE(0), NULL));
  CHECK(s, SHAPE(0, 2), NULL);
}

static void test_reverse_and_reverse_sequence(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_REVERSE, IR_F64, "2, 3", T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)));
  ir_set_int(s.g, s.op, "axis", 1);
  CHECK(s, SHAPE(2, 3), DATA(3, 2, 1, 6, 5, 4));
  s = SINGLE(IR_OP_REVERSE, IR_BOOL, "3", T(IR_BOOL, SHAPE(3), DATA(1, 0, 0)));
  CHECK(s, SHAPE(3), DATA(0, 0, 1));
  /* x[b, s] with lengths [3, 0, 4]: only the first lengths[b] reverse. */
  s = SINGLE(IR_OP_REVERSE_SEQUENCE, IR_F64, "3, 4",
             T(IR_F64, SHAPE(3, 4), DATA(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)),
             T(IR_I32, SHAPE(3), DATA(3, 0, 4)));
  ir_set_int(s.g, s.op, "seq_axis", 1);
  ir_set_int(s.g, s.op, "batch_axis", 0);
  CHECK(s, SHAPE(3, 4), DATA(3, 2, 1, 4, 5, 6, 7, 8, 12, 11, 10, 9));
  /* Time-major x[s, b]. */
  s = SINGLE(IR_OP_REVERSE_SEQUENCE, IR_F64, "3, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)),
             T(IR_I64, SHAPE(2), DATA(2, 1)));
  ir_set_int(s.g, s.op, "seq_axis", 0);
  ir_set_int(s.g, s.op, "batch_axis", 1);
  CHECK(s, SHAPE(3, 2), DATA(3, 2, 1, 4, 5, 6));
  s = SINGLE(IR_OP_REVERSE_SEQUENCE, IR_F64, "1, 2", T(IR_F64, SHAPE(1, 2), DATA(1, 2)),
             T(IR_I32, SHAPE(1), DATA(3)));
  ir_set_int(s.g, s.op, "seq_axis", 1);
  ir_set_int(s.g, s.op, "batch_axis", 0);
  check_fails(&s, NULL, MSG("reverse_sequence 'y'", "lengths[0] = 3 is outside [0, 2]"));
}

static void test_pad(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_PAD, IR_F64, "5", T(IR_F64, SHAPE(2), DATA(1, 2)));
  ir_set_dim(s.g, s.op, "low", tb_dim(s.g, "1"));
  ir_set_dim(s.g, s.op, "high", tb_dim(s.g, "2"));
  ir_set_float(s.g, s.op, "value", 9);
  CHECK(s, SHAPE(5), DATA(9, 1, 2, 9, 9));
  s = SINGLE(IR_OP_PAD, IR_I32, "3, 2", T(IR_I32, SHAPE(2, 2), DATA(1, 2, 3, 4)));
  ir_set_dim(s.g, s.op, "low", tb_dim(s.g, "0"));
  ir_set_dim(s.g, s.op, "high", tb_dim(s.g, "1"));
  CHECK(s, SHAPE(3, 2), DATA(1, 2, 3, 4, 0, 0));
  s = SINGLE(IR_OP_PAD, IR_F64, "2, 2", T(IR_F64, SHAPE(2, 0), NULL));
  ir_set_int(s.g, s.op, "axis", 1);
  ir_set_dim(s.g, s.op, "low", tb_dim(s.g, "2"));
  ir_set_dim(s.g, s.op, "high", tb_dim(s.g, "0"));
  ir_set_float(s.g, s.op, "value", -INFINITY);
  CHECK(s, SHAPE(2, 2), DATA(-INFINITY, -INFINITY, -INFINITY, -INFINITY));
}

/* ---- attention --------------------------------------------------------------------- */

/* q = [1, 1], k = [0, ln 3], v = [1, 5] as [1, 2, 1] (B = 1, T = 2, D = 1):
 * both rows score (0, ln 3), so softmax is (1/4, 3/4) and the unmasked
 * output is 1/4 + 15/4 = 4; seeing only key 0 gives 1, only key 1 gives 5. */
static single attention_case(int64_t mask, int64_t window, double length) {
  const double ln3 = 1.0986122886681098;
  ir_tensor q = T(IR_F64, SHAPE(1, 2, 1), DATA(1, 1)), k = T(IR_F64, SHAPE(1, 2, 1), DATA(0, ln3));
  ir_tensor v = T(IR_F64, SHAPE(1, 2, 1), DATA(1, 5));
  bool lengths = ir_mask_uses_lengths(mask);
  single s = lengths ? SINGLE(IR_OP_ATTENTION, IR_F64, "1, 2, 1", q, k, v, T(IR_I32, SHAPE(1), DATA(length)))
                     : SINGLE(IR_OP_ATTENTION, IR_F64, "1, 2, 1", q, k, v);
  ir_set_int(s.g, s.op, "mask", mask);
  ir_set_float(s.g, s.op, "scale", 1.0);
  if (window) ir_set_int(s.g, s.op, "window", window);
  return s;
}

static void test_attention_masks(void **state) {
  (void)state;
  single s = attention_case(IR_MASK_NONE, 0, 0);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(4, 4));
  s = attention_case(IR_MASK_CAUSAL, 0, 0);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 4));
  s = attention_case(IR_MASK_PADDING, 0, 1);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 1));
  s = attention_case(IR_MASK_PADDING, 0, 0); /* no visible key: rows are 0 */
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(0, 0));
  s = attention_case(IR_MASK_WINDOW, 1, 0); /* each query sees only its own key */
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 5));
  s = attention_case(IR_MASK_WINDOW, 2, 0);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 4));
  s = attention_case(IR_MASK_PREFIX, 0, 2);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(4, 4));
  s = attention_case(IR_MASK_PREFIX, 0, 0); /* an empty prefix is causal */
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 4));
  s = attention_case(IR_MASK_CAUSAL_PADDING, 0, 2); /* both keys valid: causal */
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 4));
  s = attention_case(IR_MASK_CAUSAL_PADDING, 0, 1); /* the padded key is never seen */
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(1, 1));
  s = attention_case(IR_MASK_CAUSAL_PADDING, 0, 0);
  CHECK_NEAR(s, SHAPE(1, 2, 1), DATA(0, 0));
}

static void test_attention_shapes(void **state) {
  (void)state;
  const double ln3 = 1.0986122886681098;
  /* Causal with Tq = 1 < Tk = 2 is bottom-right aligned: the query is the
   * last position and sees both keys. Scale 0.5 with k doubled. */
  single s = SINGLE(IR_OP_ATTENTION, IR_F64, "1, 1, 1", T(IR_F64, SHAPE(1, 1, 1), DATA(1)),
                    T(IR_F64, SHAPE(1, 2, 1), DATA(0, 2 * ln3)), T(IR_F64, SHAPE(1, 2, 1), DATA(1, 5)));
  ir_set_int(s.g, s.op, "mask", IR_MASK_CAUSAL);
  ir_set_float(s.g, s.op, "scale", 0.5);
  CHECK_NEAR(s, SHAPE(1, 1, 1), DATA(4));
  /* D = 2, Dv = 2, no batch dims: scores q.k = (1, 2), weights
   * (1 - sigmoid(1), sigmoid(1)). */
  const double sg = 0.7310585786300049;
  s = SINGLE(IR_OP_ATTENTION, IR_F64, "1, 2", T(IR_F64, SHAPE(1, 2), DATA(1, 2)),
             T(IR_F64, SHAPE(2, 2), DATA(1, 0, 0, 1)), T(IR_F64, SHAPE(2, 2), DATA(0, 10, 1, 20)));
  ir_set_int(s.g, s.op, "mask", IR_MASK_NONE);
  ir_set_float(s.g, s.op, "scale", 1.0);
  CHECK_NEAR(s, SHAPE(1, 2), DATA(sg, 10 * (1 - sg) + 20 * sg));
  /* Padding over the first dim of [B = 2, H = 2, T = 2, 1]: lengths (1, 2). */
  s = SINGLE(IR_OP_ATTENTION, IR_F64, "2, 2, 2, 1", T(IR_F64, SHAPE(2, 2, 2, 1), DATA(1, 1, 1, 1, 1, 1, 1, 1)),
             T(IR_F64, SHAPE(2, 2, 2, 1), DATA(0, ln3, 0, ln3, 0, ln3, 0, ln3)),
             T(IR_F64, SHAPE(2, 2, 2, 1), DATA(1, 5, 2, 6, 1, 5, 2, 6)), T(IR_I64, SHAPE(2), DATA(1, 2)));
  ir_set_int(s.g, s.op, "mask", IR_MASK_PADDING);
  ir_set_float(s.g, s.op, "scale", 1.0);
  CHECK_NEAR(s, SHAPE(2, 2, 2, 1), DATA(1, 1, 2, 2, 4, 4, 5, 5));
  /* Tq = 0 and Tk = 0. */
  s = SINGLE(IR_OP_ATTENTION, IR_F64, "1, 0, 1", T(IR_F64, SHAPE(1, 0, 1), NULL),
             T(IR_F64, SHAPE(1, 2, 1), DATA(0, 0)), T(IR_F64, SHAPE(1, 2, 1), DATA(1, 1)));
  ir_set_int(s.g, s.op, "mask", IR_MASK_CAUSAL);
  ir_set_float(s.g, s.op, "scale", 1.0);
  CHECK(s, SHAPE(1, 0, 1), NULL);
  s = SINGLE(IR_OP_ATTENTION, IR_F64, "1, 2, 1", T(IR_F64, SHAPE(1, 2, 1), DATA(1, 1)),
             T(IR_F64, SHAPE(1, 0, 1), NULL), T(IR_F64, SHAPE(1, 0, 1), NULL));
  ir_set_int(s.g, s.op, "mask", IR_MASK_NONE);
  ir_set_float(s.g, s.op, "scale", 1.0);
  CHECK(s, SHAPE(1, 2, 1), DATA(0, 0));
}

/* ---- scan -------------------------------------------------------------------------- */

/* A scan op in block b over `operands` with result types `rt`; its body
 * gets arguments of types `arg_types` (t first). */
static ir_opid scan_op(ir_graph *g, ir_blockid b, int32_t n_in, const ir_val *in, int32_t n_out,
                       const ir_type *rt, const char *length, int64_t carries, int64_t xs) {
  ir_opid op = tb_op_in(g, b, IR_OP_SCAN, n_in, in, n_out, rt);
  ir_set_dim(g, op, "length", tb_dim(g, length));
  ir_set_int(g, op, "carries", carries);
  ir_set_int(g, op, "xs", xs);
  return op;
}

static ir_val body_arg(ir_graph *g, ir_opid scan, ir_type t, const char *name) {
  return ir_block_add_arg(g, ir_o(g, scan)->regions[0], t, name);
}

/* (acc, sums, ts, prev) = scan acc0, x[T]: acc += x_t, stacking the new
 * acc, t and the acc before the step (a carry argument passed straight
 * through to an output). */
static ir_graph *running_sum_graph(bool reverse) {
  ir_graph *g = ir_graph_new("running_sum");
  ir_val acc0 = tb_input(g, "acc0", tb_type(g, IR_F64, ""));
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "T"));
  ir_type rt[4] = {tb_type(g, IR_F64, ""), tb_type(g, IR_F64, "T"), tb_type(g, IR_I64, "T"), tb_type(g, IR_F64, "T")};
  ir_opid scan = scan_op(g, g->body, 2, VALS(acc0, x), 4, rt, "T", 1, 1);
  if (reverse) ir_set_int(g, scan, "reverse", 1);
  ir_blockid b = ir_o(g, scan)->regions[0];
  ir_val t = body_arg(g, scan, tb_type(g, IR_I64, ""), "t");
  ir_val acc = body_arg(g, scan, tb_type(g, IR_F64, ""), "acc");
  ir_val xt = body_arg(g, scan, tb_type(g, IR_F64, ""), "xt");
  ir_val next = tb_res(g, OPB(g, b, IR_OP_ADD, tb_type(g, IR_F64, ""), acc, xt), 0);
  tb_op_in(g, b, IR_OP_YIELD, 4, VALS(next, next, t, acc), 0, NULL);
  ir_value_set_name(g, tb_res(g, scan, 0), "total");
  tb_finish(g, 4, VALS(tb_res(g, scan, 0), tb_res(g, scan, 1), tb_res(g, scan, 2), tb_res(g, scan, 3)));
  return g;
}

static void test_scan_running_sum(void **state) {
  (void)state;
  ir_graph *g = running_sum_graph(false);
  run r = {.args = {S(IR_F64, 0.5), T(IR_F64, SHAPE(4), DATA(1, 2, 3, 4))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 10.5);
  EXPECT(&r.outs[1], SHAPE(4), DATA(1.5, 3.5, 6.5, 10.5));
  EXPECT(&r.outs[2], SHAPE(4), DATA(0, 1, 2, 3));
  EXPECT(&r.outs[3], SHAPE(4), DATA(0.5, 1.5, 3.5, 6.5));
  run_free(g, &r);

  /* Reversed: t runs 3..0 and outputs stay at position t. */
  g = running_sum_graph(true);
  r = (run){.args = {S(IR_F64, 0), T(IR_F64, SHAPE(4), DATA(1, 2, 3, 4))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 10);
  EXPECT(&r.outs[1], SHAPE(4), DATA(10, 9, 7, 4));
  EXPECT(&r.outs[2], SHAPE(4), DATA(0, 1, 2, 3));
  EXPECT(&r.outs[3], SHAPE(4), DATA(9, 7, 4, 0));
  run_free(g, &r);
}

static void test_scan_zero_and_one_step(void **state) {
  (void)state;
  /* T = 0: the initial carry and empty stacked outputs. */
  ir_graph *g = running_sum_graph(false);
  run r = {.args = {S(IR_F64, 2.5), EMPTY(IR_F64, SHAPE(0))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 2.5);
  EXPECT(&r.outs[1], SHAPE(0), NULL);
  EXPECT(&r.outs[2], SHAPE(0), NULL);
  run_free(g, &r);

  g = running_sum_graph(true);
  r = (run){.args = {S(IR_F64, 2.5), T(IR_F64, SHAPE(1), DATA(-1))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 1.5);
  EXPECT(&r.outs[1], SHAPE(1), DATA(1.5));
  EXPECT(&r.outs[2], SHAPE(1), DATA(0));
  EXPECT(&r.outs[3], SHAPE(1), DATA(2.5));
  run_free(g, &r);
}

/* h_t = tanh(x_t W^T + h_{t-1} U^T + b) over x[T, B, I], as in docs/ir.md. */
enum { EL_T = 3, EL_B = 2, EL_I = 3, EL_H = 2 };

static ir_graph *elman_graph(void) {
  ir_graph *g = ir_graph_new("elman");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "T, 2, 3"));
  ir_val h0 = tb_input(g, "h0", tb_type(g, IR_F64, "2, 2"));
  ir_val w = tb_input(g, "W", tb_type(g, IR_F64, "2, 3"));
  ir_val u = tb_input(g, "U", tb_type(g, IR_F64, "2, 2"));
  ir_val bias = tb_input(g, "b", tb_type(g, IR_F64, "2"));
  ir_type rt[2] = {tb_type(g, IR_F64, "2, 2"), tb_type(g, IR_F64, "T, 2, 2")};
  ir_opid scan = scan_op(g, g->body, 5, VALS(h0, x, w, u, bias), 2, rt, "T", 1, 1);
  ir_blockid b = ir_o(g, scan)->regions[0];
  body_arg(g, scan, tb_type(g, IR_I64, ""), "t");
  ir_val hc = body_arg(g, scan, tb_type(g, IR_F64, "2, 2"), "hc");
  ir_val xt = body_arg(g, scan, tb_type(g, IR_F64, "2, 3"), "xt");
  ir_val wi = body_arg(g, scan, tb_type(g, IR_F64, "2, 3"), "Wi");
  ir_val ui = body_arg(g, scan, tb_type(g, IR_F64, "2, 2"), "Ui");
  ir_val bi = body_arg(g, scan, tb_type(g, IR_F64, "2"), "bi");
  ir_type bh = tb_type(g, IR_F64, "2, 2");
  ir_opid xw = OPB(g, b, IR_OP_MATMUL, bh, xt, wi);
  ir_set_int(g, xw, "transpose_b", 1);
  ir_opid hu = OPB(g, b, IR_OP_MATMUL, bh, hc, ui);
  ir_set_int(g, hu, "transpose_b", 1);
  ir_val sum = tb_res(g, OPB(g, b, IR_OP_ADD, bh, tb_res(g, xw, 0), tb_res(g, hu, 0)), 0);
  ir_val pre = tb_res(g, OPB(g, b, IR_OP_ADD, bh, sum, bi), 0);
  ir_val hn = tb_res(g, OPB(g, b, IR_OP_TANH, bh, pre), 0);
  tb_op_in(g, b, IR_OP_YIELD, 2, VALS(hn, hn), 0, NULL);
  tb_finish(g, 2, VALS(tb_res(g, scan, 0), tb_res(g, scan, 1)));
  return g;
}

static void test_scan_elman_rnn(void **state) {
  (void)state;
  static const double x[EL_T][EL_B][EL_I] = {
      {{0.5, -1, 0.25}, {1, 0, -0.5}}, {{0, 0.75, 1}, {-1, 0.5, 0}}, {{0.2, 0.3, -0.4}, {2, -2, 1}}};
  static const double h0[EL_B][EL_H] = {{0, 0}, {0.5, -0.5}};
  static const double w[EL_H][EL_I] = {{0.5, -0.2, 0.1}, {0.3, 0.8, -0.5}};
  static const double u[EL_H][EL_H] = {{0.9, -0.4}, {0.2, 0.7}};
  static const double bias[EL_H] = {0.1, -0.1};
  /* The reference: the recurrence written out with plain loops. */
  double h[EL_B][EL_H], ys[EL_T][EL_B][EL_H];
  memcpy(h, h0, sizeof h);
  for (int t = 0; t < EL_T; t++) {
    double hn[EL_B][EL_H];
    for (int b = 0; b < EL_B; b++)
      for (int j = 0; j < EL_H; j++) {
        double s = bias[j];
        for (int i = 0; i < EL_I; i++) s += x[t][b][i] * w[j][i];
        for (int k = 0; k < EL_H; k++) s += h[b][k] * u[j][k];
        hn[b][j] = tanh(s);
      }
    memcpy(h, hn, sizeof h);
    memcpy(ys[t], hn, sizeof hn);
  }
  ir_graph *g = elman_graph();
  run r = {.args = {T(IR_F64, SHAPE(EL_T, EL_B, EL_I), &x[0][0][0]), T(IR_F64, SHAPE(EL_B, EL_H), &h0[0][0]),
                    T(IR_F64, SHAPE(EL_H, EL_I), &w[0][0]), T(IR_F64, SHAPE(EL_H, EL_H), &u[0][0]),
                    T(IR_F64, SHAPE(EL_H), bias)},
           .n_args = 5};
  run_ok(g, &r);
  expect_tol(&r.outs[0], 2, SHAPE(EL_B, EL_H), &h[0][0], 1e-14);
  expect_tol(&r.outs[1], 3, SHAPE(EL_T, EL_B, EL_H), &ys[0][0][0], 1e-14);
  /* First step by hand, batch 0: s = b + x W^T = (0.1 + 0.25 + 0.2 + 0.025,
   * -0.1 + 0.15 - 0.8 - 0.125) = (0.575, -0.875). */
  assert_true(close_to(r.outs[1].data[0], tanh(0.575), 1e-15));
  assert_true(close_to(r.outs[1].data[1], tanh(-0.875), 1e-15));
  run_free(g, &r);
}

/* Outer scan over the rows of x[R, C]; its body runs an inner scan over
 * the row's elements (a running sum) and adds the row total to its carry. */
static ir_graph *nested_graph(void) {
  ir_graph *g = ir_graph_new("nested");
  ir_val tot0 = tb_input(g, "tot0", tb_type(g, IR_F64, ""));
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "R, C"));
  ir_type ort[2] = {tb_type(g, IR_F64, ""), tb_type(g, IR_F64, "R, C")};
  ir_opid outer = scan_op(g, g->body, 2, VALS(tot0, x), 2, ort, "R", 1, 1);
  ir_blockid ob = ir_o(g, outer)->regions[0];
  body_arg(g, outer, tb_type(g, IR_I64, ""), "t");
  ir_val tot = body_arg(g, outer, tb_type(g, IR_F64, ""), "tot");
  ir_val row = body_arg(g, outer, tb_type(g, IR_F64, "C"), "row");
  ir_type scalar = tb_type(g, IR_F64, "");
  ir_opid zero = tb_op_in(g, ob, IR_OP_CONSTANT, 0, NULL, 1, &scalar);
  ir_set_tensor(g, zero, "value", &(ir_tensor_data){1, DATA(0), NULL});
  ir_type irt[2] = {tb_type(g, IR_F64, ""), tb_type(g, IR_F64, "C")};
  ir_opid inner = scan_op(g, ob, 2, VALS(tb_res(g, zero, 0), row), 2, irt, "C", 1, 1);
  ir_blockid ib = ir_o(g, inner)->regions[0];
  body_arg(g, inner, tb_type(g, IR_I64, ""), "s");
  ir_val acc = body_arg(g, inner, scalar, "acc");
  ir_val xs = body_arg(g, inner, scalar, "xs");
  ir_val next = tb_res(g, OPB(g, ib, IR_OP_ADD, scalar, acc, xs), 0);
  tb_op_in(g, ib, IR_OP_YIELD, 2, VALS(next, next), 0, NULL);
  ir_val ntot = tb_res(g, OPB(g, ob, IR_OP_ADD, scalar, tot, tb_res(g, inner, 0)), 0);
  tb_op_in(g, ob, IR_OP_YIELD, 2, VALS(ntot, tb_res(g, inner, 1)), 0, NULL);
  tb_finish(g, 2, VALS(tb_res(g, outer, 0), tb_res(g, outer, 1)));
  return g;
}

static void test_scan_nested(void **state) {
  (void)state;
  ir_graph *g = nested_graph();
  run r = {.args = {S(IR_F64, 100), T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 121);
  EXPECT(&r.outs[1], SHAPE(2, 3), DATA(1, 3, 6, 4, 9, 15));
  run_free(g, &r);
  /* Empty inner loops: C = 0. */
  g = nested_graph();
  r = (run){.args = {S(IR_F64, 7), EMPTY(IR_F64, SHAPE(2, 0))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], 7);
  EXPECT(&r.outs[1], SHAPE(2, 0), NULL);
  run_free(g, &r);
}

/* h = h * w + x_t over x[2, T] sliced along axis 1, w a loop invariant. */
static void test_scan_axis_and_invariant(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("axis1");
  ir_val h0 = tb_input(g, "h0", tb_type(g, IR_F64, "2"));
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "2, T"));
  ir_val w = tb_input(g, "w", tb_type(g, IR_F64, "2"));
  ir_type rt[2] = {tb_type(g, IR_F64, "2"), tb_type(g, IR_F64, "2, T")};
  ir_opid scan = scan_op(g, g->body, 3, VALS(h0, x, w), 2, rt, "T", 1, 1);
  ir_set_int(g, scan, "axis", 1);
  ir_blockid b = ir_o(g, scan)->regions[0];
  body_arg(g, scan, tb_type(g, IR_I64, ""), "t");
  ir_val h = body_arg(g, scan, tb_type(g, IR_F64, "2"), "h");
  ir_val xt = body_arg(g, scan, tb_type(g, IR_F64, "2"), "xt");
  ir_val wi = body_arg(g, scan, tb_type(g, IR_F64, "2"), "wi");
  ir_val hw = tb_res(g, OPB(g, b, IR_OP_MUL, tb_type(g, IR_F64, "2"), h, wi), 0);
  ir_val hn = tb_res(g, OPB(g, b, IR_OP_ADD, tb_type(g, IR_F64, "2"), hw, xt), 0);
  tb_op_in(g, b, IR_OP_YIELD, 2, VALS(hn, hn), 0, NULL);
  tb_finish(g, 2, VALS(tb_res(g, scan, 0), tb_res(g, scan, 1)));
  run r = {.args = {T(IR_F64, SHAPE(2), DATA(0, 0)), T(IR_F64, SHAPE(2, 3), DATA(1, 2, 3, 4, 5, 6)),
                    T(IR_F64, SHAPE(2), DATA(2, 0.5))},
           .n_args = 3};
  run_ok(g, &r);
  /* Row 0: 1, 2*1+2 = 4, 2*4+3 = 11; row 1: 4, 0.5*4+5 = 7, 0.5*7+6 = 9.5. */
  EXPECT(&r.outs[0], SHAPE(2), DATA(11, 9.5));
  EXPECT(&r.outs[1], SHAPE(2, 3), DATA(1, 4, 11, 4, 7, 9.5));
  run_free(g, &r);
}

/* ---- run-time errors --------------------------------------------------------------- */

static void test_error_gather_out_of_range(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_GATHER, IR_F64, "2, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)),
                    T(IR_I64, SHAPE(2), DATA(0, 3)));
  check_fails(&s, NULL, MSG("gather 'y'", "index 3 at position 1 is out of range [0, 3)"));
  s = SINGLE(IR_OP_GATHER, IR_F64, "1, 2", T(IR_F64, SHAPE(3, 2), DATA(1, 2, 3, 4, 5, 6)),
             T(IR_I32, SHAPE(1), DATA(-1)));
  check_fails(&s, NULL, MSG("index -1 at position 0"));
}

static void test_error_argument_shapes(void **state) {
  (void)state;
  /* A static dim that differs. */
  ir_graph *g = ir_graph_new("t");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "2, 3"));
  tb_finish(g, 1, &x);
  run r = {.args = {T(IR_F64, SHAPE(2, 4), DATA(1, 2, 3, 4, 5, 6, 7, 8))}, .n_args = 1};
  run_fails(g, &r, NULL, MSG("argument 'x' axis 1", "expected 3 = 3, got 4"));
  run_free(g, &r);

  /* A symbol bound twice with different sizes; the wrong dtype; rank. */
  g = ir_graph_new("t");
  ir_val a = tb_input(g, "a", tb_type(g, IR_F64, "T"));
  tb_input(g, "b", tb_type(g, IR_F64, "T"));
  tb_finish(g, 1, &a);
  r = (run){.args = {T(IR_F64, SHAPE(3), DATA(1, 2, 3)), T(IR_F64, SHAPE(4), DATA(1, 2, 3, 4))}, .n_args = 2};
  run_fails(g, &r, NULL, MSG("argument 'b' axis 0: T is bound to 3, got 4"));
  ir_tensor_free(&r.args[1]);
  r.args[1] = T(IR_F32, SHAPE(3), DATA(1, 2, 3));
  run_fails(g, &r, NULL, MSG("argument 'b' is declared f64 but the tensor is f32"));
  ir_tensor_free(&r.args[1]);
  r.args[1] = T(IR_F64, SHAPE(3, 1), DATA(1, 2, 3));
  run_fails(g, &r, NULL, MSG("argument 'b' is declared with rank 1"));
  run_free(g, &r);

  /* A dim expression over a symbol bound by another argument; a caller
   * binding that disagrees. */
  g = ir_graph_new("t");
  ir_val p = tb_input(g, "p", tb_type(g, IR_F64, "T+1"));
  tb_input(g, "q", tb_type(g, IR_F64, "T"));
  tb_finish(g, 1, &p);
  r = (run){.args = {T(IR_F64, SHAPE(5), DATA(1, 2, 3, 4, 5)), T(IR_F64, SHAPE(3), DATA(1, 2, 3))}, .n_args = 2};
  run_fails(g, &r, NULL, MSG("argument 'p' axis 0: expected", "= 4, got 5"));
  ir_tensor_free(&r.args[0]);
  r.args[0] = T(IR_F64, SHAPE(4), DATA(1, 2, 3, 4));
  run_ok(g, &r);
  EXPECT(&r.outs[0], SHAPE(4), DATA(1, 2, 3, 4));
  ir_tensor_free(&r.outs[0]);
  ir_interp_opts opts = {(ir_dim_binding[]){{"T", 2}}, 1, 0};
  run_fails(g, &r, &opts, MSG("T is bound to 2, got 3"));
  run_free(g, &r);
}

/* add of x[T] and y[S] declared [T]: the verifier cannot prove T == S, so
 * the interpreter checks it when the op runs. */
static void test_error_runtime_dim_check(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val x = tb_input(g, "x", tb_type(g, IR_F64, "T"));
  ir_val y = tb_input(g, "y", tb_type(g, IR_F64, "S"));
  ir_opid add = OP1(g, IR_OP_ADD, tb_type(g, IR_F64, "T"), x, y);
  ir_value_set_name(g, tb_res(g, add, 0), "sum");
  tb_finish(g, 1, VALS(tb_res(g, add, 0)));
  run r = {.args = {T(IR_F64, SHAPE(3), DATA(1, 2, 3)), T(IR_F64, SHAPE(4), DATA(1, 2, 3, 4))}, .n_args = 2};
  run_fails(g, &r, NULL, MSG("add 'sum'", "does not broadcast"));
  /* A symbolic dim that is 1 at run time does not broadcast either. */
  ir_tensor_free(&r.args[1]);
  r.args[1] = T(IR_F64, SHAPE(1), DATA(10));
  run_fails(g, &r, NULL, MSG("add 'sum'", "does not broadcast"));
  ir_tensor_free(&r.args[1]);
  r.args[1] = T(IR_F64, SHAPE(3), DATA(10, 20, 30));
  run_ok(g, &r);
  EXPECT(&r.outs[0], SHAPE(3), DATA(11, 22, 33));
  run_free(g, &r);

  /* The declared result disagrees with what the operands give (the
   * verifier rejects this graph; the interpreter must not trust it). */
  g = ir_graph_new("t");
  x = tb_input(g, "x", tb_type(g, IR_F64, "T"));
  y = tb_input(g, "y", tb_type(g, IR_F64, "S"));
  add = OP1(g, IR_OP_ADD, tb_type(g, IR_F64, "S+1"), x, y);
  tb_finish(g, 1, VALS(tb_res(g, add, 0)));
  r = (run){.args = {T(IR_F64, SHAPE(3), DATA(1, 2, 3)), T(IR_F64, SHAPE(3), DATA(1, 2, 3))}, .n_args = 2};
  run_fails(g, &r, NULL, MSG("add: result 0 dim 0 is", "= 4 but the operands give 3"));
  run_free(g, &r);
}

static void test_error_integer_division_by_zero(void **state) {
  (void)state;
  single s = SINGLE(IR_OP_DIV, IR_I32, "3", T(IR_I32, SHAPE(3), DATA(1, 2, 3)),
                    T(IR_I32, SHAPE(3), DATA(1, 0, 1)));
  check_fails(&s, NULL, MSG("div 'y'", "integer division by zero at element 1"));

  /* Inside a scan the message says which step: c = c / x_t over i32. */
  ir_graph *g = ir_graph_new("t");
  ir_val c0 = tb_input(g, "c0", tb_type(g, IR_I32, ""));
  ir_val x = tb_input(g, "x", tb_type(g, IR_I32, "T"));
  ir_type rt[1] = {tb_type(g, IR_I32, "")};
  ir_opid scan = scan_op(g, g->body, 2, VALS(c0, x), 1, rt, "T", 1, 1);
  ir_value_set_name(g, tb_res(g, scan, 0), "c");
  ir_blockid b = ir_o(g, scan)->regions[0];
  body_arg(g, scan, tb_type(g, IR_I64, ""), "t");
  ir_val c = body_arg(g, scan, tb_type(g, IR_I32, ""), "ci");
  ir_val xt = body_arg(g, scan, tb_type(g, IR_I32, ""), "xt");
  ir_val q = tb_res(g, OPB(g, b, IR_OP_DIV, tb_type(g, IR_I32, ""), c, xt), 0);
  tb_op_in(g, b, IR_OP_YIELD, 1, &q, 0, NULL);
  tb_finish(g, 1, VALS(tb_res(g, scan, 0)));
  run r = {.args = {S(IR_I32, 100), T(IR_I32, SHAPE(3), DATA(5, -2, 4))}, .n_args = 2};
  run_ok(g, &r);
  EXPECT_SCALAR(&r.outs[0], -2); /* 100/5 = 20, 20/-2 = -10, -10/4 = -2 */
  ir_tensor_free(&r.outs[0]);
  ir_tensor_free(&r.args[1]);
  r.args[1] = T(IR_I32, SHAPE(3), DATA(5, 2, 0));
  run_fails(g, &r, NULL, MSG("integer division by zero", "in step 2 of scan 'c'"));
  run_free(g, &r);
}

static void test_error_limits_and_ranges(void **state) {
  (void)state;
  /* max_elements bounds every tensor. */
  single s = SINGLE(IR_OP_BROADCAST, IR_F64, "4, 3", T(IR_F64, SHAPE(3), DATA(1, 2, 3)));
  ir_interp_opts small = {NULL, 0, 10};
  check_fails(&s, &small, MSG("broadcast 'y'", "exceeds the limit of 10 elements"));
  s = SINGLE(IR_OP_NEG, IR_F64, "4, 3", T(IR_F64, SHAPE(4, 3), DATA(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)));
  check_fails(&s, &small, MSG("exceeds the limit of 10 elements"));
  /* An empty tensor's other dims count too, so loops stay bounded. */
  s = single_op(IR_OP_IOTA, IR_I64, "0, 11", 0, NULL);
  check_fails(&s, &small, MSG("iota 'y'", "exceeds the limit of 10 elements"));
  /* Integers must stay exact and in range. */
  s = SINGLE(IR_OP_CAST, IR_I32, "2", T(IR_F64, SHAPE(2), DATA(1, 3e9)));
  check_fails(&s, NULL, MSG("cast 'y'", "element 1", "does not fit in i32"));
  s = SINGLE(IR_OP_CAST, IR_I64, "1", T(IR_F64, SHAPE(1), DATA(NAN)));
  check_fails(&s, NULL, MSG("NaN is not an integer"));
  s = SINGLE(IR_OP_MUL, IR_I64, "1", T(IR_I64, SHAPE(1), DATA(4294967296)), T(IR_I64, SHAPE(1), DATA(4194304)));
  check_fails(&s, NULL, MSG("mul 'y'", "exact integer range"));
  /* An integer argument must hold integers. */
  s = SINGLE(IR_OP_NEG, IR_I32, "1", T(IR_I32, SHAPE(1), DATA(1.5)));
  check_fails(&s, NULL, MSG("argument 'x0' element 0", "not an integer"));
  /* A slice outside its dim (also a verifier error; never a crash here). */
  s = slice_case("2", T(IR_F64, SHAPE(3), DATA(1, 2, 3)), 0, "2", "4", 1);
  check_fails(&s, NULL, MSG("slice 'y'", "[2, 4) is not a range within dim 0 of size 3"));
}

/* ---- single ops (constant folding), rounding, bytes --------------------------------- */

static void test_eval_op(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("fold");
  ir_val a = tb_input(g, "a", tb_type(g, IR_F32, "N"));
  ir_val b = tb_input(g, "b", tb_type(g, IR_F32, "1"));
  ir_opid add = OP1(g, IR_OP_ADD, tb_type(g, IR_F32, "N"), a, b);
  ir_tensor ins[2] = {T(IR_F32, SHAPE(2), DATA(1, 0.5)), T(IR_F32, SHAPE(1), DATA(0x1p-24))};
  ir_tensor out[1];
  ir_buf err = {0};
  assert_true(ir_interp_eval_op(g, add, ins, out, NULL, &err));
  /* 1 + 2^-24 rounds to 1 in f32 (tie to even); 0.5 + 2^-24 is exact. */
  EXPECT(&out[0], SHAPE(2), DATA(1, 0.5 + 0x1p-24));
  ir_tensor_free(&out[0]);
  /* Operands are unified with their declared types. */
  ir_tensor_free(&ins[1]);
  ins[1] = T(IR_F32, SHAPE(2), DATA(1, 2));
  assert_false(ir_interp_eval_op(g, add, ins, out, NULL, &err));
  assert_non_null(strstr(err.s, "operand 1 axis 0"));
  assert_null(out[0].data);
  /* Ops with regions need the whole graph. */
  ir_type rt = tb_type(g, IR_F32, "");
  ir_opid scan = scan_op(g, g->body, 1, &a, 1, &rt, "0", 1, 0);
  err.len = 0;
  assert_false(ir_interp_eval_op(g, scan, ins, out, NULL, &err));
  assert_non_null(strstr(err.s, "need a whole graph"));
  for (int i = 0; i < 2; i++) ir_tensor_free(&ins[i]);
  ir_buf_free(&err);
  ir_graph_free(g);
}

static void test_round_to_dtype(void **state) {
  (void)state;
  assert_true(ir_round_to_dtype(IR_F32, 0.1) == (double)0.1f);
  assert_true(ir_round_to_dtype(IR_F32, 1 + 0x1p-24) == 1);
  assert_true(ir_round_to_dtype(IR_F32, 1 + 3 * 0x1p-24) == 1 + 0x1p-22);
  assert_true(ir_round_to_dtype(IR_F32, 1e300) == INFINITY);
  /* Just above FLT_MAX: below the halfway point it rounds down, at it (a
   * tie, FLT_MAX's last bit odd) to inf. */
  assert_true(ir_round_to_dtype(IR_F32, 0x1.fffffe8p127) == 0x1.fffffep127);
  assert_true(ir_round_to_dtype(IR_F32, 0x1.ffffffp127) == INFINITY);
  assert_true(ir_round_to_dtype(IR_F32, 0x1p-150) == 0);
  assert_true(ir_round_to_dtype(IR_F32, 0x1.8p-149) == 0x1p-148);
  assert_true(isnan(ir_round_to_dtype(IR_F16, NAN)));
  assert_true(ir_round_to_dtype(IR_F16, -65520) == -INFINITY);
  assert_true(ir_round_to_dtype(IR_F16, 0.1) == 0.0999755859375);
  assert_true(ir_round_to_dtype(IR_F16, 2049) == 2048); /* spacing 2 from 2048, tie to even */
  assert_true(ir_round_to_dtype(IR_F16, 2051) == 2052);
  assert_true(ir_round_to_dtype(IR_F16, 0x1p-14 - 0x1p-25) == 0x1p-14); /* subnormal rounds up to normal */
  assert_true(signbit(ir_round_to_dtype(IR_F16, -0x1p-26)) && ir_round_to_dtype(IR_F16, -0x1p-26) == 0);
  assert_true(ir_round_to_dtype(IR_BF16, 0.1) == 0.10009765625);
  assert_true(ir_round_to_dtype(IR_BF16, 257) == 256);
  assert_true(ir_round_to_dtype(IR_BF16, 259) == 260);
  assert_true(ir_round_to_dtype(IR_F64, 0.1) == 0.1);
  assert_true(ir_round_to_dtype(IR_I32, -2.9) == -2);
  assert_true(ir_round_to_dtype(IR_I32, 1e10) == 2147483647);
  assert_true(ir_round_to_dtype(IR_I64, -1e30) == -9223372036854775808.0);
  assert_true(ir_round_to_dtype(IR_I64, NAN) == 0);
  assert_true(ir_round_to_dtype(IR_BOOL, -0.5) == 1);
  assert_true(ir_round_to_dtype(IR_BOOL, 0) == 0);
}

static void check_bytes(ir_dtype dt, int64_t n, const double *vals, const unsigned char *bytes) {
  ir_tensor t = tensor(dt, 1, &n, vals);
  ir_buf out = {0};
  ir_tensor_to_bytes(&t, &out);
  size_t size = ir_dtype_size(dt) * (size_t)n;
  assert_int_equal(out.len, size);
  assert_memory_equal(out.s, bytes, size);
  ir_tensor back;
  assert_true(ir_tensor_alloc(&back, dt, 1, &n, 0, NULL));
  assert_true(ir_tensor_from_bytes(&back, bytes, size, NULL));
  for (int64_t i = 0; i < n; i++) assert_true(close_to(back.data[i], vals[i], 0));
  ir_tensor_free(&back);
  ir_tensor_free(&t);
  ir_buf_free(&out);
}
#define BYTES(...) ((const unsigned char[]){__VA_ARGS__})

static void test_bytes(void **state) {
  (void)state;
  check_bytes(IR_F16, 6, DATA(1, -2, 65504, INFINITY, 0x1p-24, NAN),
              BYTES(0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x7c, 0x01, 0x00, 0x00, 0x7e));
  check_bytes(IR_BF16, 3, DATA(1, -0.5, -INFINITY), BYTES(0x80, 0x3f, 0x00, 0xbf, 0x80, 0xff));
  check_bytes(IR_F32, 2, DATA(1, -0.0), BYTES(0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x80));
  check_bytes(IR_F64, 1, DATA(1), BYTES(0, 0, 0, 0, 0, 0, 0xf0, 0x3f));
  check_bytes(IR_I32, 2, DATA(-1, 258), BYTES(0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0, 0));
  check_bytes(IR_I64, 1, DATA(-2), BYTES(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
  check_bytes(IR_BOOL, 3, DATA(1, 0, 1), BYTES(1, 0, 1));
  check_bytes(IR_F32, 0, NULL, NULL);

  /* Every f16 bit pattern decodes and encodes back (NaNs to the quiet NaN). */
  int64_t n = 65536;
  ir_tensor t;
  assert_true(ir_tensor_alloc(&t, IR_F16, 1, &n, 0, NULL));
  unsigned char *all = malloc(2 * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    all[2 * i] = (unsigned char)(i & 0xff);
    all[2 * i + 1] = (unsigned char)(i >> 8);
  }
  assert_true(ir_tensor_from_bytes(&t, all, 2 * (size_t)n, NULL));
  ir_buf out = {0};
  ir_tensor_to_bytes(&t, &out);
  for (int64_t i = 0; i < n; i++) {
    unsigned h = (unsigned char)out.s[2 * i] | (unsigned)(unsigned char)out.s[2 * i + 1] << 8;
    bool is_nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
    assert_int_equal(h, is_nan ? (unsigned)((i & 0x8000) | 0x7e00) : (unsigned)i);
    assert_true(is_nan || ir_round_to_dtype(IR_F16, t.data[i]) == t.data[i]);
  }
  ir_buf_free(&out);
  free(all);
  ir_tensor_free(&t);

  /* Sizes must match; i64 beyond 2^53 is not exact in a double. */
  ir_buf err = {0};
  int64_t two = 2;
  assert_true(ir_tensor_alloc(&t, IR_I64, 1, &two, 0, NULL));
  assert_false(ir_tensor_from_bytes(&t, BYTES(1, 2, 3), 3, &err));
  assert_non_null(strstr(err.s, "expected 16 bytes"));
  err.len = 0;
  assert_false(ir_tensor_from_bytes(&t, BYTES(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x20, 0), 16, &err));
  assert_non_null(strstr(err.s, "element 1"));
  ir_tensor_free(&t);
  /* Allocation limits. */
  err.len = 0;
  assert_false(ir_tensor_alloc(&t, IR_F32, 2, SHAPE(1000, 1000), 999999, &err));
  assert_non_null(strstr(err.s, "[1000, 1000] exceeds the limit of 999999"));
  assert_null(t.data);
  err.len = 0;
  assert_false(ir_tensor_alloc(&t, IR_F32, 3, SHAPE(INT64_MAX, 0, 4), 0, &err));
  assert_null(t.data);
  err.len = 0;
  assert_false(ir_tensor_alloc(&t, IR_F32, 1, SHAPE(-1), 0, &err));
  assert_non_null(strstr(err.s, "negative"));
  ir_buf_free(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constant),
      cmocka_unit_test(test_iota),
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_binary_broadcasting),
      cmocka_unit_test(test_div_max_min_pow_logic),
      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_select),
      cmocka_unit_test(test_cast),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_reduce),
      cmocka_unit_test(test_reduce_empty),
      cmocka_unit_test(test_argmax_argmin),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_cumulative),
      cmocka_unit_test(test_reshape_transpose),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_dynamic_slice),
      cmocka_unit_test(test_dynamic_update_slice),
      cmocka_unit_test(test_concat_split),
      cmocka_unit_test(test_broadcast),
      cmocka_unit_test(test_gather),
      cmocka_unit_test(test_reverse_and_reverse_sequence),
      cmocka_unit_test(test_pad),
      cmocka_unit_test(test_attention_masks),
      cmocka_unit_test(test_attention_shapes),
      cmocka_unit_test(test_scan_running_sum),
      cmocka_unit_test(test_scan_zero_and_one_step),
      cmocka_unit_test(test_scan_elman_rnn),
      cmocka_unit_test(test_scan_nested),
      cmocka_unit_test(test_scan_axis_and_invariant),
      cmocka_unit_test(test_error_gather_out_of_range),
      cmocka_unit_test(test_error_argument_shapes),
      cmocka_unit_test(test_error_runtime_dim_check),
      cmocka_unit_test(test_error_integer_division_by_zero),
      cmocka_unit_test(test_error_limits_and_ranges),
      cmocka_unit_test(test_eval_op),
      cmocka_unit_test(test_round_to_dtype),
      cmocka_unit_test(test_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
