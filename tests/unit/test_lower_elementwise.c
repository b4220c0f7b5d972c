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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "ir/interp.h"

#define MAX_ARGS 32
#define MAX_OUTS 32

static const ir_loc NOLOC = {NULL, 0, 0};

/* ---- building graphs ----------------------------------------------------------- */

static ir_dim dim_of(ir_graph *g, const char *text) {
  size_t used = 0, pos = 0;
  ir_buf err = {0};
  ir_dim d = ir_dim_parse(g->dims, text, strlen(text), &used, &err, &pos);
  ir_buf_free(&err);
  assert_int_not_equal(d, IR_DIM_INVALID);
  return d;
}

/* A type from text dims, e.g. type_of(g, IR_F32, "B, T+1, 8"); "" is a scalar. */
static ir_type type_of(ir_graph *g, ir_dtype dt, const char *dims) {
  ir_dim d[16];
  int32_t rank = 0;
  char part[64];
  for (const char *p = dims; *p;) {
    size_t n = strchr(p, ',') ? (size_t)(strchr(p, ',') - p) : strlen(p);
    assert_true(n < sizeof part && rank < 16);
    memcpy(part, p, n);
    part[n] = 0;
    d[rank++] = dim_of(g, part);
    p += n;
    if (*p == ',') p++;
  }
  return ir_type_make(g, dt, rank, d);
}

/* Attributes to set on an op, ended by {NULL}. */
typedef enum attr_kind { A_INT, A_FLOAT, A_DIM, A_INTS, A_DIMS } attr_kind;
typedef struct attr_set {
  const char *name;
  attr_kind kind;
  int64_t i;
  double f;
  const char *dim;
  int32_t n;
  const int64_t *ints;
  const char *const *dims;
} attr_set;
#define AINT(nm, v) {.name = nm, .kind = A_INT, .i = (v)}
#define AFLOAT(nm, v) {.name = nm, .kind = A_FLOAT, .f = (v)}
#define ADIM(nm, text) {.name = nm, .kind = A_DIM, .dim = (text)}
#define AINTS(nm, cnt, ...) {.name = nm, .kind = A_INTS, .n = (cnt), .ints = (const int64_t[]){__VA_ARGS__}}
#define ADIMS(nm, cnt, ...) {.name = nm, .kind = A_DIMS, .n = (cnt), .dims = (const char *const[]){__VA_ARGS__}}
#define ATTRS(...) ((const attr_set[]){__VA_ARGS__, {.name = NULL}})
#define NO_ATTRS ((const attr_set[]){{.name = NULL}})

static void apply_attrs(ir_graph *g, ir_opid op, void *ud) {
  for (const attr_set *a = ud; a->name; a++) {
    switch (a->kind) {
    case A_INT: ir_set_int(g, op, a->name, a->i); break;
    case A_FLOAT: ir_set_float(g, op, a->name, a->f); break;
    case A_DIM: ir_set_dim(g, op, a->name, dim_of(g, a->dim)); break;
    case A_INTS: ir_set_ints(g, op, a->name, a->n, a->ints); break;
    case A_DIMS: {
      ir_dim d[16];
      for (int32_t i = 0; i < a->n; i++) d[i] = dim_of(g, a->dims[i]);
      ir_set_dims(g, op, a->name, a->n, d);
      break;
    }
    }
  }
}

/* ---- random tensors --------------------------------------------------------------- */

typedef struct harness {
  ir_graph *g;
  ir_tensor args[MAX_ARGS];
  int32_t n_args;
  uint64_t rng;
  double range; /* floats are uniform in [-range, range) */
} harness;

static uint32_t next_random(harness *h) {
  h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(h->rng >> 33);
}

/* Uniform in [-range, range) for floats (rounded to the dtype), [-5, 5]
 * for integers, 0/1 for bool. */
static double random_value(harness *h, ir_dtype dt) {
  uint32_t r = next_random(h);
  if (ir_dtype_is_float(dt)) return ir_round_to_dtype(dt, ((double)r / 2147483648.0 - 1.0) * h->range);
  if (dt == IR_BOOL) return r & 1;
  return (double)(r % 11) - 5.0;
}

static harness *harness_new(const char *name, uint64_t seed) {
  harness *h = calloc(1, sizeof *h);
  h->g = ir_graph_new(name);
  h->rng = seed;
  h->range = 2;
  return h;
}

/* A graph input of the given (possibly symbolic) type and a tensor of the
 * given shape, filled by `fill` (NULL: random). */
static ir_val input_with(harness *h, ir_dtype dt, const char *dims, int32_t rank, const int64_t *shape,
                         const double *fill) {
  assert_true(h->n_args < MAX_ARGS);
  char name[16];
  snprintf(name, sizeof name, "x%d", h->n_args);
  ir_val v = ir_graph_add_input(h->g, type_of(h->g, dt, dims), name, false);
  ir_tensor *t = &h->args[h->n_args++];
  assert_true(ir_tensor_alloc(t, dt, rank, shape, 0, NULL));
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = fill ? fill[i] : random_value(h, dt);
  return v;
}
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define RANK(...) ((int32_t)(sizeof(SHAPE(__VA_ARGS__)) / sizeof(int64_t)))
/* input(h, dtype, "B, 3", 2, 3): a random input; the shape follows the dims. */
#define input(h, dt, dims, ...) input_with(h, dt, dims, RANK(__VA_ARGS__), SHAPE(__VA_ARGS__), NULL)
#define DATA(...) ((const double[]){__VA_ARGS__})
/* input_data(h, dtype, "2, 3", DATA(...), 2, 3): an input with given values. */
#define input_data(h, dt, dims, data, ...) \
  input_with(h, dt, dims, RANK(__VA_ARGS__), SHAPE(__VA_ARGS__), data)

/* An op with inferred result types; returns it. */
static ir_opid build(harness *h, ir_opkind k, int32_t n_in, const ir_val *in, const attr_set *attrs) {
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  ir_opid op = ir_build(h->g, h->g->body, k, n_in, in, apply_attrs, (void *)attrs, &d, NOLOC);
  if (op == IR_NONE) print_error("ir_build failed: %s\n", msgs.s ? msgs.s : "");
  ir_buf_free(&msgs);
  assert_int_not_equal(op, IR_NONE);
  return op;
}
#define VALS(...) ((const ir_val[]){__VA_ARGS__})
#define NVALS(...) ((int32_t)(sizeof(VALS(__VA_ARGS__)) / sizeof(ir_val)))
/* op(h, kind, attrs, operands...): the first result of a new op. */
#define op(h, k, attrs, ...) ir_o((h)->g, build(h, k, NVALS(__VA_ARGS__), VALS(__VA_ARGS__), attrs))->out[0]

/* An op whose result type is declared (reshape, broadcast). */
static ir_val declared(harness *h, ir_opkind k, ir_val x, ir_type t) {
  ir_opid o = ir_op_new(h->g, k, 1, &x, 1, &t, NOLOC);
  ir_op_append(h->g, h->g->body, o);
  return ir_o(h->g, o)->out[0];
}

static void finish(harness *h, int32_t n, const ir_val *outs) {
  assert_true(n <= MAX_OUTS);
  ir_opid y = ir_op_new(h->g, IR_OP_YIELD, n, outs, 0, NULL, NOLOC);
  ir_op_append(h->g, h->g->body, y);
  h->g->output_names = ir_arena_alloc(h->g->arena, sizeof(char *) * MAX_OUTS);
  for (int32_t i = 0; i < n; i++) {
    char name[16];
    snprintf(name, sizeof name, "o%d", i);
    h->g->output_names[i] = ir_arena_strdup(h->g->arena, name);
  }
  h->g->n_outputs = n;
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  bool ok = ir_verify(h->g, &d);
  if (!ok) print_error("verifier: %s\n", msgs.s ? msgs.s : "");
  ir_buf_free(&msgs);
  assert_true(ok);
}

static void harness_free(harness *h) {
  for (int32_t i = 0; i < h->n_args; i++) ir_tensor_free(&h->args[i]);
  ir_graph_free(h->g);
  free(h);
}

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

static void compare_outputs(const ir_tensor *ref, const ir_tensor *got, int32_t n, const tolerance *t, int opt,
                            const ir_tensor *args) {
  for (int32_t o = 0; o < n; o++) {
    assert_int_equal(ref[o].rank, got[o].rank);
    for (int32_t d = 0; d < ref[o].rank; d++) assert_int_equal(ref[o].shape[d], got[o].shape[d]);
    assert_int_equal(ref[o].numel, got[o].numel);
    for (int64_t e = 0; e < ref[o].numel; e++) {
      if (close_enough(ref[o].dtype, ref[o].data[e], got[o].data[e], t[o])) continue;
      double x0 = args[0].numel == ref[o].numel ? args[0].data[e] : NAN;
      print_error("-O%d output %d (%s) element %lld (x0 %a): interpreter %a, compiled %a\n", opt, o,
                  ir_dtype_name(ref[o].dtype), (long long)e, x0, ref[o].data[e], got[o].data[e]);
      fail();
    }
  }
}

/* ---- running both ways ------------------------------------------------------------------ */

static cg_jit *compile(ir_graph *g, int opt, cg_program **p) {
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, opt};
  *p = cg_compile(g, &o, &d);
  if (!*p) print_error("cg_compile -O%d: %s\n", opt, msgs.s ? msgs.s : "");
  assert_non_null(*p);
  cg_jit *j = cg_jit_new(*p, &d);
  if (!j) print_error("cg_jit_new: %s\n", msgs.s ? msgs.s : "");
  assert_non_null(j);
  ir_buf_free(&msgs);
  return j;
}

static void free_outputs(ir_tensor *t, int32_t n) {
  for (int32_t i = 0; i < n; i++) ir_tensor_free(&t[i]);
}

/* Finish the graph with outputs outs, run it both ways and compare. */
/* Output i compared with tolerance t[i]. */
static void check_each(harness *h, int32_t n, const ir_val *outs, const tolerance *t) {
  finish(h, n, outs);
  ir_tensor ref[MAX_OUTS], got[MAX_OUTS];
  ir_buf err = {0};
  bool ok = ir_interp_run(h->g, h->args, h->n_args, ref, NULL, &err);
  if (!ok) print_error("interpreter: %s\n", err.s);
  assert_true(ok);
  for (int opt = 0; opt <= 2; opt += 2) {
    cg_program *p;
    cg_jit *j = compile(h->g, opt, &p);
    err.len = 0;
    ok = cg_jit_run_tensors(j, h->g, h->args, h->n_args, got, NULL, &err);
    if (!ok) print_error("compiled -O%d: %s\n", opt, err.s);
    assert_true(ok);
    compare_outputs(ref, got, n, t, opt, h->args);
    free_outputs(got, n);
    cg_jit_free(j);
    cg_program_free(p);
  }
  free_outputs(ref, n);
  ir_buf_free(&err);
  harness_free(h);
}
static void check(harness *h, int32_t n, const ir_val *outs, tolerance t) {
  tolerance ts[MAX_OUTS];
  for (int32_t i = 0; i < n; i++) ts[i] = t;
  check_each(h, n, outs, ts);
}
#define CHECK(h, t, ...) check(h, NVALS(__VA_ARGS__), VALS(__VA_ARGS__), t)

/* Both ways must fail: the interpreter with any message, compiled code
 * with the message of `code`. */
static void check_fails(harness *h, ir_val out, cg_status code) {
  finish(h, 1, &out);
  ir_tensor outs[1];
  ir_buf err = {0};
  assert_false(ir_interp_run(h->g, h->args, h->n_args, outs, NULL, &err));
  for (int opt = 0; opt <= 2; opt += 2) {
    cg_program *p;
    cg_jit *j = compile(h->g, opt, &p);
    err.len = 0;
    assert_false(cg_jit_run_tensors(j, h->g, h->args, h->n_args, outs, NULL, &err));
    assert_non_null(err.s);
    if (!strstr(err.s, cg_status_message(code))) print_error("unexpected failure: %s\n", err.s);
    assert_non_null(strstr(err.s, cg_status_message(code)));
    cg_jit_free(j);
    cg_program_free(p);
  }
  ir_buf_free(&err);
  harness_free(h);
}

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
  const attr_set *attrs;
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
    {IR_OP_ELU, 6, false, NULL},       {IR_OP_GELU, 5, false, ATTRS(AINT("approximate", IR_GELU_TANH))},
    {IR_OP_ELU, 6, false, ATTRS(AFLOAT("alpha", 0.3))},
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
      harness *h = harness_new("unary", seed++);
      ir_val outs[COUNT(UNARY)];
      tolerance ts[COUNT(UNARY)];
      for (int k = 0; k < COUNT(UNARY); k++) {
        h->range = UNARY[k].range;
        ir_val x = input_with(h, FLOATS[d], SHAPES[s].dims, SHAPES[s].rank, SHAPES[s].shape, NULL);
        outs[k] = op(h, UNARY[k].kind, UNARY[k].attrs ? UNARY[k].attrs : NO_ATTRS, x);
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
    harness *h = harness_new("special", 7);
    double data[COUNT(v)], trig[COUNT(v)];
    for (int i = 0; i < COUNT(v); i++) {
      data[i] = ir_round_to_dtype(FLOATS[d], v[i]);
      trig[i] = ir_round_to_dtype(FLOATS[d], fabs(v[i]) == 1e30 ? v[i] * 1e-26 : v[i]);
    }
    ir_val x = input_with(h, FLOATS[d], "13", 1, SHAPE(13), data);
    ir_val xt = input_with(h, FLOATS[d], "13", 1, SHAPE(13), trig);
    ir_val outs[COUNT(UNARY)];
    tolerance ts[COUNT(UNARY)];
    for (int k = 0; k < COUNT(UNARY); k++) {
      bool is_trig = UNARY[k].kind == IR_OP_SIN || UNARY[k].kind == IR_OP_COS;
      outs[k] = op(h, UNARY[k].kind, UNARY[k].attrs ? UNARY[k].attrs : NO_ATTRS, is_trig ? xt : x);
      ts[k] = unary_tolerance(&UNARY[k], FLOATS[d]);
    }
    check_each(h, COUNT(UNARY), outs, ts);
  }
}

static void test_unary_int_and_bool(void **state) {
  for (int d = 0; d < COUNT(INTS); d++)
    for (int s = 0; s < COUNT(SHAPES); s++) {
      harness *h = harness_new("int", 50 + s);
      ir_val x = input_with(h, INTS[d], SHAPES[s].dims, SHAPES[s].rank, SHAPES[s].shape, NULL);
      ir_val a = op(h, IR_OP_NEG, NO_ATTRS, x), b = op(h, IR_OP_ABS, NO_ATTRS, x);
      CHECK(h, EXACT, a, b);
    }
  harness *h = harness_new("not", 3);
  ir_val x = input(h, IR_BOOL, "5, 7", 5, 7);
  CHECK(h, EXACT, op(h, IR_OP_NOT, NO_ATTRS, x));
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
  harness *h = harness_new("binary", seed);
  ir_val a = input_with(h, dt, bc->a_dims, bc->a_rank, bc->a_shape, NULL);
  ir_val b = input_with(h, dt, bc->b_dims, bc->b_rank, bc->b_shape, NULL);
  for (int i = 0; i < 2 && !ir_dtype_is_float(dt); i++) /* no integer division by zero */
    for (int64_t e = 0; e < h->args[i].numel; e++)
      if (h->args[i].data[e] == 0) h->args[i].data[e] = 3;
  ir_val outs[MAX_OUTS];
  tolerance ts[MAX_OUTS];
  for (int k = 0; k < n; k++) {
    outs[2 * k] = op(h, kinds[k], NO_ATTRS, a, b);
    outs[2 * k + 1] = op(h, kinds[k], NO_ATTRS, b, a);
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
    harness *h = harness_new("special", 1);
    double ad[10], bd[10];
    for (int i = 0; i < 10; i++) {
      ad[i] = ir_round_to_dtype(FLOATS[d], a[i]);
      bd[i] = ir_round_to_dtype(FLOATS[d], b[i]);
    }
    ir_val x = input_with(h, FLOATS[d], "10", 1, SHAPE(10), ad), y = input_with(h, FLOATS[d], "10", 1, SHAPE(10), bd);
    ir_val r[COUNT(kinds)];
    for (int k = 0; k < COUNT(kinds); k++) r[k] = op(h, kinds[k], NO_ATTRS, x, y);
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
    harness *h = harness_new("div", 1);
    ir_val a = input_data(h, INTS[d], "6", DATA(7, -7, 7, -7, 0, 5), 6);
    ir_val b = input_data(h, INTS[d], "6", DATA(2, 2, -2, -2, 3, 5), 6);
    CHECK(h, EXACT, op(h, IR_OP_DIV, NO_ATTRS, a, b));
  }
}

/* ---- compare, select, cast ------------------------------------------------------------------- */

static void test_compare(void **state) {
  uint64_t seed = 7000;
  for (int d = 0; d < COUNT(ALL); d++)
    for (int i = 0; i < COUNT(FEW_BCASTS); i++) {
      harness *h = harness_new("compare", seed++);
      h->range = 1; /* f16/bf16 draws then tie often */
      const bcast_case *bc = &BCASTS[FEW_BCASTS[i]];
      ir_val a = input_with(h, ALL[d], bc->a_dims, bc->a_rank, bc->a_shape, NULL);
      ir_val b = input_with(h, ALL[d], bc->b_dims, bc->b_rank, bc->b_shape, NULL);
      ir_val r[6];
      for (int p = IR_CMP_EQ; p <= IR_CMP_GE; p++) r[p] = op(h, IR_OP_COMPARE, ATTRS(AINT("predicate", p)), a, b);
      check(h, 6, r, EXACT);
    }
  /* NaN: false except ne. */
  harness *h = harness_new("compare-nan", 1);
  ir_val a = input_data(h, IR_F32, "4", DATA(NAN, 1, NAN, 2), 4), b = input_data(h, IR_F32, "4", DATA(1, NAN, NAN, 2), 4);
  ir_val r[6];
  for (int p = IR_CMP_EQ; p <= IR_CMP_GE; p++) r[p] = op(h, IR_OP_COMPARE, ATTRS(AINT("predicate", p)), a, b);
  check(h, 6, r, EXACT);
}

static void test_select(void **state) {
  uint64_t seed = 8000;
  for (int d = 0; d < COUNT(ALL); d++) {
    harness *h = harness_new("select", seed++);
    ir_val c = input(h, IR_BOOL, "4, 1", 4, 1);
    ir_val a = input(h, ALL[d], "1, 6", 1, 6), b = input(h, ALL[d], "4, 6", 4, 6);
    ir_val e = input(h, IR_BOOL, "B, 3", 0, 3), f = input(h, ALL[d], "B, 3", 0, 3), g = input(h, ALL[d], "3", 3);
    CHECK(h, EXACT, op(h, IR_OP_SELECT, NO_ATTRS, c, a, b), op(h, IR_OP_SELECT, NO_ATTRS, e, f, g));
  }
}

static void test_cast_all_pairs(void **state) {
  uint64_t seed = 9000;
  for (int f = 0; f < COUNT(ALL); f++)
    for (int i = 0; i < COUNT(FEW_SHAPES); i++) {
      int s = FEW_SHAPES[i];
      harness *h = harness_new("cast", seed++);
      h->range = 300; /* beyond f16's integers and bf16's precision, inside i32 */
      const shape_case *sc = &SHAPES[s];
      ir_val x = input_with(h, ALL[f], sc->dims, sc->rank, sc->shape, NULL);
      ir_val outs[COUNT(ALL)];
      for (int t = 0; t < COUNT(ALL); t++) outs[t] = declared(h, IR_OP_CAST, x, type_of(h->g, ALL[t], sc->dims));
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
    harness *h = harness_new("round", 1);
    ir_val a = input_with(h, IR_F64, "13", 1, SHAPE(13), f64s);
    ir_val b = input_with(h, IR_I64, "13", 1, SHAPE(13), ints);
    ir_val c = input_with(h, IR_I32, "9", 1, SHAPE(9), ints);
    ir_type t13 = type_of(h->g, (ir_dtype)t, "13"), t9 = type_of(h->g, (ir_dtype)t, "9");
    CHECK(h, EXACT, declared(h, IR_OP_CAST, a, t13), declared(h, IR_OP_CAST, b, t13), declared(h, IR_OP_CAST, c, t9));
  }
}

/* ---- constant, iota ------------------------------------------------------------------------------ */

static ir_val constant(harness *h, ir_dtype dt, const char *dims, int64_t n, const double *f, const int64_t *i) {
  ir_type t = type_of(h->g, dt, dims);
  ir_opid o = ir_op_new(h->g, IR_OP_CONSTANT, 0, NULL, 1, &t, NOLOC);
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
    harness *h = harness_new("constant", 1);
    input(h, dt, "N", 2); /* binds N for the splat */
    bool fl = ir_dtype_is_float(dt);
    const int64_t *ints = dt == IR_I32 ? i32 : dt == IR_BOOL ? bools : i64;
    ir_val full = constant(h, dt, "3, 4", 12, fl ? f : NULL, fl ? NULL : ints);
    ir_val splat = constant(h, dt, "N, 5", 1, fl ? DATA(-2.5) : NULL, fl ? NULL : (const int64_t[]){-2 * (dt != IR_BOOL) + 1});
    ir_val empty = constant(h, dt, "0, 3", 1, fl ? DATA(1) : NULL, fl ? NULL : (const int64_t[]){1});
    ir_val scalar = constant(h, dt, "", 1, fl ? DATA(0.1) : NULL, fl ? NULL : (const int64_t[]){7 * (dt != IR_BOOL) + 1});
    CHECK(h, EXACT, full, splat, empty, scalar);
  }
}

/* A value the interpreter rejects is a compile-time error, not a crash. */
static void test_constant_out_of_range(void **state) {
  harness *h = harness_new("constant", 1);
  ir_val v = constant(h, IR_I32, "2", 2, NULL, (const int64_t[]){1, 4000000000LL});
  /* The verifier rejects this graph too; lowering must not rely on that. */
  ir_opid y = ir_op_new(h->g, IR_OP_YIELD, 1, &v, 0, NULL, NOLOC);
  ir_op_append(h->g, h->g->body, y);
  h->g->output_names = ir_arena_alloc(h->g->arena, sizeof(char *));
  h->g->output_names[0] = "o0";
  h->g->n_outputs = 1;
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, 0};
  cg_program *p = cg_compile(h->g, &o, &d);
  assert_null(p);
  assert_non_null(msgs.s);
  assert_non_null(strstr(msgs.s, "does not fit in i32"));
  ir_buf_free(&msgs);
  harness_free(h);
}

static void test_iota(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int axis = 0; axis < 3 && ALL[d] != IR_BOOL; axis++) {
      harness *h = harness_new("iota", 1);
      input(h, IR_F32, "T", 5); /* binds T */
      ir_type t = type_of(h->g, ALL[d], "3, T, 7");
      ir_opid o = ir_op_new(h->g, IR_OP_IOTA, 0, NULL, 1, &t, NOLOC);
      ir_set_int(h->g, o, "axis", axis);
      ir_op_append(h->g, h->g->body, o);
      CHECK(h, EXACT, ir_o(h->g, o)->out[0]);
    }
}

/* ---- run-time checks ------------------------------------------------------------------------------ */

static void test_int_div_by_zero(void **state) {
  for (int d = 0; d < COUNT(INTS); d++) {
    harness *h = harness_new("div0", 1);
    ir_val a = input_data(h, INTS[d], "3", DATA(1, 2, 3), 3), b = input_data(h, INTS[d], "3", DATA(1, 0, 1), 3);
    check_fails(h, op(h, IR_OP_DIV, NO_ATTRS, a, b), CG_INT_DIV_ZERO);
  }
  harness *h = harness_new("div-overflow", 1);
  ir_val a = input_data(h, IR_I32, "2", DATA(-2147483648.0, 4), 2), b = input_data(h, IR_I32, "2", DATA(-1, 2), 2);
  check_fails(h, op(h, IR_OP_DIV, NO_ATTRS, a, b), CG_INT_DIV_ZERO);
}

/* Two symbols the verifier cannot prove equal, bound to different values. */
static void test_dim_mismatch(void **state) {
  harness *h = harness_new("mismatch", 1);
  ir_val a = input(h, IR_F32, "N", 3), b = input(h, IR_F32, "M", 4);
  ir_val r = op(h, IR_OP_ADD, NO_ATTRS, a, b);
  finish(h, 1, &r);
  ir_tensor outs[1];
  ir_buf err = {0};
  for (int opt = 0; opt <= 2; opt += 2) {
    cg_program *p;
    cg_jit *j = compile(h->g, opt, &p);
    err.len = 0;
    assert_false(cg_jit_run_tensors(j, h->g, h->args, h->n_args, outs, NULL, &err));
    assert_non_null(strstr(err.s, cg_status_message(CG_DIM_MISMATCH)));
    cg_jit_free(j);
    cg_program_free(p);
  }
  ir_buf_free(&err);
  harness_free(h);
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
