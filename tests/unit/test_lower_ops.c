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

#include "codegen/cg.h"
#include "ir/interp.h"

#define MAX_ARGS 12
#define MAX_OUTS 16

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
} harness;

static uint32_t next_random(harness *h) {
  h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(h->rng >> 33);
}

/* Uniform in [-2, 2) for floats (rounded to the dtype), [-5, 5] for
 * integers, 0/1 for bool. */
static double random_value(harness *h, ir_dtype dt) {
  uint32_t r = next_random(h);
  if (ir_dtype_is_float(dt)) return ir_round_to_dtype(dt, (double)r / 2147483648.0 * 2.0 - 2.0);
  if (dt == IR_BOOL) return r & 1;
  return (double)(r % 11) - 5.0;
}

static harness *harness_new(const char *name, uint64_t seed) {
  harness *h = calloc(1, sizeof *h);
  h->g = ir_graph_new(name);
  h->rng = seed;
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
static ir_val scalar_input(harness *h, ir_dtype dt, double v) {
  return input_with(h, dt, "", 0, NULL, (const double[]){v});
}

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

static void compare_outputs(const ir_tensor *ref, const ir_tensor *got, const ir_tensor *mag,
                            int32_t n, tolerance t, int opt) {
  for (int32_t o = 0; o < n; o++) {
    assert_int_equal(ref[o].rank, got[o].rank);
    for (int32_t d = 0; d < ref[o].rank; d++) assert_int_equal(ref[o].shape[d], got[o].shape[d]);
    assert_int_equal(ref[o].numel, got[o].numel);
    for (int64_t e = 0; e < ref[o].numel; e++) {
      double m = mag ? fabs(mag[o].data[e]) : 0;
      if (close_enough(ref[o].dtype, ref[o].data[e], got[o].data[e], m, t)) continue;
      print_error("-O%d output %d (%s) element %lld: interpreter %.17g, compiled %.17g (mag %g)\n", opt, o, ir_dtype_name(ref[o].dtype),
                  (long long)e, ref[o].data[e], got[o].data[e], m);
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

/* The interpreter on |float inputs|: sum|terms| for sums and products. */
static void magnitudes(harness *h, ir_tensor *mag) {
  ir_tensor abs_args[MAX_ARGS];
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

/* Rewrites the harness's argument tensors for variant v (same dtypes;
 * shapes may change where the input types are symbolic). */
typedef void (*vary_fn)(harness *h, int32_t v, const void *ud);

/* Replace argument i by a random tensor of the given shape. */
static void refill(harness *h, int32_t i, int32_t rank, const int64_t *shape) {
  ir_dtype dt = h->args[i].dtype;
  ir_tensor_free(&h->args[i]);
  assert_true(ir_tensor_alloc(&h->args[i], dt, rank, shape, 0, NULL));
  for (int64_t e = 0; e < h->args[i].numel; e++) h->args[i].data[e] = random_value(h, dt);
}

/* Finish the graph with outputs outs, compile it at -O0 and -O2, and for
 * every variant of the arguments run it both ways and compare. */
static void check_variants(harness *h, int32_t n, const ir_val *outs, tolerance t, int32_t n_variants,
                           vary_fn vary, const void *ud) {
  finish(h, n, outs);
  cg_program *p[2];
  cg_jit *j[2] = {compile(h->g, 0, &p[0]), compile(h->g, 2, &p[1])};
  ir_buf err = {0};
  for (int32_t v = 0; v < n_variants; v++) {
    if (vary) vary(h, v, ud);
    ir_tensor ref[MAX_OUTS], got[MAX_OUTS], mag[MAX_OUTS];
    err.len = 0;
    bool ok = ir_interp_run(h->g, h->args, h->n_args, ref, NULL, &err);
    if (!ok) print_error("interpreter: %s\n", err.s);
    assert_true(ok);
    if (t.mode == CMP_SUM) magnitudes(h, mag);
    for (int k = 0; k < 2; k++) {
      err.len = 0;
      ok = cg_jit_run_tensors(j[k], h->g, h->args, h->n_args, got, NULL, &err);
      if (!ok) print_error("compiled -O%d: %s\n", 2 * k, err.s);
      assert_true(ok);
      compare_outputs(ref, got, t.mode == CMP_SUM ? mag : NULL, n, t, 2 * k);
      free_outputs(got, n);
    }
    free_outputs(ref, n);
    if (t.mode == CMP_SUM) free_outputs(mag, n);
  }
  for (int k = 0; k < 2; k++) {
    cg_jit_free(j[k]);
    cg_program_free(p[k]);
  }
  ir_buf_free(&err);
  harness_free(h);
}

static void check(harness *h, int32_t n, const ir_val *outs, tolerance t) {
  check_variants(h, n, outs, t, 1, NULL, NULL);
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
static const ir_dtype NUMERIC[] = {IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64};
static const ir_dtype ALL[] = {IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64, IR_BOOL};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- matmul ----------------------------------------------------------------------------------- */

/* All four transpose variants of an M x K by K x N product in one graph. */
static void matmul_variants(ir_dtype dt, int64_t m, int64_t k, int64_t n, uint64_t seed) {
  harness *h = harness_new("matmul", seed);
  char mk[32], km[32], kn[32], nk[32];
  snprintf(mk, sizeof mk, "%lld, %lld", (long long)m, (long long)k);
  snprintf(km, sizeof km, "%lld, %lld", (long long)k, (long long)m);
  snprintf(kn, sizeof kn, "%lld, %lld", (long long)k, (long long)n);
  snprintf(nk, sizeof nk, "%lld, %lld", (long long)n, (long long)k);
  ir_val a = input_with(h, dt, mk, 2, SHAPE(m, k), NULL), at = input_with(h, dt, km, 2, SHAPE(k, m), NULL);
  ir_val b = input_with(h, dt, kn, 2, SHAPE(k, n), NULL), bt = input_with(h, dt, nk, 2, SHAPE(n, k), NULL);
  ir_val r0 = op(h, IR_OP_MATMUL, NO_ATTRS, a, b);
  ir_val r1 = op(h, IR_OP_MATMUL, ATTRS(AINT("transpose_a", 1)), at, b);
  ir_val r2 = op(h, IR_OP_MATMUL, ATTRS(AINT("transpose_b", 1)), a, bt);
  ir_val r3 = op(h, IR_OP_MATMUL, ATTRS(AINT("transpose_a", 1), AINT("transpose_b", 1)), at, bt);
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
    harness *h = harness_new("batched", 7);
    ir_val a = input(h, NUMERIC[d], "2, 3, 4, 5", 2, 3, 4, 5), b = input(h, NUMERIC[d], "5, 6", 5, 6);
    ir_val a1 = input(h, NUMERIC[d], "1, 3, 5", 1, 3, 5), b3 = input(h, NUMERIC[d], "4, 5, 2", 4, 5, 2);
    ir_val as = input(h, NUMERIC[d], "B, M, K", 3, 7, 5), bs = input(h, NUMERIC[d], "B, N, K", 3, 2, 5);
    ir_val bb = input(h, NUMERIC[d], "2, 1, 6, 5", 2, 1, 6, 5);
    ir_val r0 = op(h, IR_OP_MATMUL, NO_ATTRS, a, b);
    ir_val r1 = op(h, IR_OP_MATMUL, NO_ATTRS, a1, b3);
    ir_val r2 = op(h, IR_OP_MATMUL, ATTRS(AINT("transpose_b", 1)), as, bs);
    ir_val r3 = op(h, IR_OP_MATMUL, ATTRS(AINT("transpose_b", 1)), a, bb);
    CHECK(h, SUM_BOUND, r0, r1, r2, r3);
  }
}

/* ---- reductions -------------------------------------------------------------------------------- */

typedef struct axes_case {
  int32_t n;
  int64_t v[3];
} axes_case;

static ir_val reduce(harness *h, ir_opkind k, ir_val x, axes_case a, bool keep) {
  const attr_set attrs[] = {{.name = "axes", .kind = A_INTS, .n = a.n, .ints = a.v},
                            AINT("keepdims", keep), {.name = NULL}};
  return op(h, k, attrs, x);
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
                            int32_t n_variants, vary_fn vary) {
  harness *h = harness_new("reduce", 11);
  ir_val x = input_with(h, dt, dims, 3, shape, NULL);
  ir_val r[MAX_OUTS];
  for (int a = 0; a < COUNT(AXES); a++) r[a] = reduce(h, k, x, AXES[a], keep);
  check_variants(h, COUNT(AXES), r, reduce_tolerance(k), n_variants, vary, NULL);
}

/* Shapes for the symbolic operand: odd sizes, all ones, an empty axis. */
static void reduce_shapes(harness *h, int32_t v, const void *ud) {
  static const int64_t shapes[][3] = {{3, 5, 7}, {1, 1, 1}, {2, 0, 3}};
  refill(h, 0, 3, shapes[v]);
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
      reduce_all_axes(k, dt, "3, 5, 7", SHAPE(3, 5, 7), d & 1, 1, NULL);
      /* Symbolic dims compile slowly at -O2 (vector loops with run-time
       * trip counts): a few dtypes, one program for all shapes. */
      if (dt == IR_F32 || dt == IR_I32 || dt == IR_BF16)
        reduce_all_axes(k, dt, "A, B, C", SHAPE(3, 5, 7), !(d & 1), int_extremum ? 2 : 3, reduce_shapes);
    }
}

/* NaN and infinities: max/min propagate NaN, logsumexp of +inf is +inf and
 * of all -inf is -inf, sums of inf - inf are NaN. */
static void test_reduce_special_values(void **state) {
  static const ir_opkind kinds[] = {IR_OP_REDUCE_SUM, IR_OP_REDUCE_MAX, IR_OP_REDUCE_MIN,
                                    IR_OP_REDUCE_MEAN, IR_OP_REDUCE_PROD, IR_OP_REDUCE_LOGSUMEXP};
  for (int d = 0; d < COUNT(FLOATS); d++) {
    harness *h = harness_new("special", 5);
    ir_val x = input_data(h, FLOATS[d], "4, 3",
                          DATA(1, NAN, 2, -INFINITY, -INFINITY, -INFINITY, INFINITY, 1, -2, INFINITY, -INFINITY, 0),
                          4, 3);
    ir_val r[6];
    for (int k = 0; k < 6; k++) r[k] = reduce(h, kinds[k], x, (axes_case){1, {1}}, false);
    CHECK(h, ABS_REL, r[0], r[1], r[2], r[3], r[4], r[5]);
  }
}

/* ---- argmax / argmin ------------------------------------------------------------------------------ */

static void test_argreduce(void **state) {
  for (int d = 0; d < COUNT(NUMERIC); d++)
    for (int keep = 0; keep <= 1; keep++) {
      harness *h = harness_new("arg", 21 + (uint64_t)keep);
      ir_val x = input(h, NUMERIC[d], "4, 6, 5", 4, 6, 5);
      /* Few distinct values: ties, where the first index must win. */
      for (int64_t e = 0; e < h->args[0].numel; e++) h->args[0].data[e] = (double)(next_random(h) % 3);
      ir_val y = input(h, NUMERIC[d], "T, 1", 7, 1);
      ir_val r[MAX_OUTS];
      int n = 0;
      for (int axis = 0; axis < 3; axis++) {
        r[n++] = op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", axis), AINT("keepdims", keep)), x);
        r[n++] = op(h, IR_OP_ARGMIN, ATTRS(AINT("axis", axis), AINT("keepdims", keep)), x);
      }
      r[n++] = op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", 0), AINT("keepdims", keep)), y);
      r[n++] = op(h, IR_OP_ARGMIN, ATTRS(AINT("axis", 1), AINT("keepdims", keep)), y);
      check(h, n, r, EXACT);
    }
  /* A NaN wins over everything, the first NaN over later ones. */
  for (int d = 0; d < COUNT(FLOATS); d++) {
    harness *h = harness_new("arg_nan", 3);
    ir_val x = input_data(h, FLOATS[d], "3, 4", DATA(1, NAN, 5, NAN, -INFINITY, -INFINITY, 2, 2, 3, 1, 3, NAN), 3, 4);
    ir_val a0 = op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", 1)), x), a1 = op(h, IR_OP_ARGMIN, ATTRS(AINT("axis", 1)), x);
    ir_val a2 = op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", 0)), x), a3 = op(h, IR_OP_ARGMIN, ATTRS(AINT("axis", 0)), x);
    CHECK(h, EXACT, a0, a1, a2, a3);
  }
  /* An empty axis is fine when the result is empty too. */
  harness *h = harness_new("arg_empty", 4);
  ir_val x = input(h, IR_F32, "0, 0", 0, 0);
  ir_val r = op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", 1)), x);
  CHECK(h, EXACT, r);
}

/* ---- softmax, layernorm ------------------------------------------------------------------------------ */

static void test_softmax(void **state) {
  for (int d = 0; d < COUNT(FLOATS); d++) {
    harness *h = harness_new("softmax", 31);
    ir_val x = input(h, FLOATS[d], "3, 5, 7", 3, 5, 7);
    ir_val z = input(h, FLOATS[d], "2, 0, 3", 2, 0, 3), one = input(h, FLOATS[d], "1", 1);
    ir_val s = input(h, FLOATS[d], "B, T", 4, 13);
    ir_val r0 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 2)), x), r1 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 1)), x);
    ir_val r2 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 0)), x), r3 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 1)), z);
    ir_val r4 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 0)), one), r5 = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 1)), s);
    CHECK(h, RELATIVE, r0, r1, r2, r3, r4, r5);
  }
  /* Rows with infinities: -inf entries give 0, an all -inf row NaN. */
  harness *h = harness_new("softmax_inf", 1);
  ir_val x = input_data(h, IR_F32, "2, 3", DATA(-INFINITY, 0, 1, -INFINITY, -INFINITY, -INFINITY), 2, 3);
  ir_val r = op(h, IR_OP_SOFTMAX, ATTRS(AINT("axis", 1)), x);
  CHECK(h, RELATIVE, r);
}

static void test_layernorm(void **state) {
  for (int d = 0; d < COUNT(FLOATS); d++) {
    harness *h = harness_new("layernorm", 41);
    ir_dtype dt = FLOATS[d];
    ir_val x = input(h, dt, "3, 7", 3, 7), g = input(h, dt, "7", 7), b = input(h, dt, "7", 7);
    ir_val x3 = input(h, dt, "2, 3, 1", 2, 3, 1), xs = input(h, dt, "B, D", 5, 11);
    ir_val gs = input(h, dt, "E", 11), ze = input(h, dt, "0, 4", 0, 4), zd = input(h, dt, "3, 0", 3, 0);
    ir_val r0 = op(h, IR_OP_LAYERNORM, NO_ATTRS, x), r1 = op(h, IR_OP_LAYERNORM, NO_ATTRS, x, g);
    ir_val r2 = op(h, IR_OP_LAYERNORM, ATTRS(AFLOAT("eps", 0.5)), x, g, b);
    ir_val r3 = op(h, IR_OP_LAYERNORM, NO_ATTRS, x3), r4 = op(h, IR_OP_LAYERNORM, NO_ATTRS, xs, gs);
    ir_val r5 = op(h, IR_OP_LAYERNORM, NO_ATTRS, ze), r6 = op(h, IR_OP_LAYERNORM, NO_ATTRS, zd);
    CHECK(h, ABS_REL, r0, r1, r2, r3, r4, r5, r6);
  }
}

/* ---- cumulative ops -------------------------------------------------------------------------------- */

/* Every axis, each forward/reverse and inclusive/exclusive, in one graph. */
static void cumulative_variants(ir_opkind k, ir_dtype dt, const char *dims, int32_t rank,
                                const int64_t *shape, uint64_t seed, tolerance t) {
  harness *h = harness_new("cumulative", seed);
  ir_val x = input_with(h, dt, dims, rank, shape, NULL);
  ir_val r[MAX_OUTS];
  int32_t n = 0;
  for (int axis = 0; axis < rank; axis++)
    for (int v = 0; v < 4; v++)
      r[n++] = op(h, k, ATTRS(AINT("axis", axis), AINT("reverse", v & 1), AINT("exclusive", v >> 1)), x);
  check(h, n, r, t);
}

static void test_cumulative(void **state) {
  for (int d = 0; d < COUNT(NUMERIC); d++) {
    ir_dtype dt = NUMERIC[d];
    cumulative_variants(IR_OP_CUMSUM, dt, "3, 5, 7", 3, SHAPE(3, 5, 7), 51, SUM_BOUND);
    cumulative_variants(IR_OP_CUMSUM, dt, "T, 1, 0", 3, SHAPE(4, 1, 0), 52, SUM_BOUND);
    cumulative_variants(IR_OP_CUMPROD, dt, "2, 6, 3", 3, SHAPE(2, 6, 3), 53, SUM_BOUND);
    cumulative_variants(IR_OP_CUMPROD, dt, "B, T", 2, SHAPE(1, 5), 54, SUM_BOUND);
    if (!ir_dtype_is_float(dt)) continue;
    cumulative_variants(IR_OP_LOGCUMSUMEXP, dt, "3, 5, 7", 3, SHAPE(3, 5, 7), 55, ABS_REL);
    cumulative_variants(IR_OP_LOGCUMSUMEXP, dt, "0, 2", 2, SHAPE(0, 2), 56, ABS_REL);
  }
  /* logcumsumexp through infinities and NaN. */
  harness *h = harness_new("lcse_special", 2);
  ir_val x = input_data(h, IR_F32, "2, 4", DATA(-INFINITY, -INFINITY, 3, INFINITY, 1, NAN, 1, 1), 2, 4);
  ir_val r0 = op(h, IR_OP_LOGCUMSUMEXP, ATTRS(AINT("axis", 1)), x);
  ir_val r1 = op(h, IR_OP_LOGCUMSUMEXP, ATTRS(AINT("axis", 0), AINT("exclusive", 1)), x);
  CHECK(h, ABS_REL, r0, r1);
}

/* ---- data movement ------------------------------------------------------------------------------------ */

static void test_reshape_transpose(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    harness *h = harness_new("reshape", 61);
    ir_val x = input(h, dt, "2, 3, 5", 2, 3, 5), s = input(h, dt, "B, T, 4", 3, 7, 4);
    ir_val sc = input_with(h, dt, "", 0, NULL, NULL), z = input(h, dt, "0, 3", 0, 3);
    ir_val r0 = declared(h, IR_OP_RESHAPE, x, type_of(h->g, dt, "5, 6"));
    ir_val r1 = declared(h, IR_OP_RESHAPE, s, type_of(h->g, dt, "B*T, 4"));
    ir_val r2 = op(h, IR_OP_TRANSPOSE, ATTRS(AINTS("perm", 3, 2, 0, 1)), x);
    ir_val r3 = op(h, IR_OP_TRANSPOSE, ATTRS(AINTS("perm", 3, 1, 0, 2)), s);
    ir_val r4 = op(h, IR_OP_TRANSPOSE, ATTRS(AINTS("perm", 3, 0, 1, 2)), x);
    ir_val r5 = op(h, IR_OP_TRANSPOSE, ATTRS(AINTS("perm", 0, 0)), sc);
    ir_val r6 = op(h, IR_OP_TRANSPOSE, ATTRS(AINTS("perm", 2, 1, 0)), z);
    ir_val r7 = declared(h, IR_OP_RESHAPE, sc, type_of(h->g, dt, "1, 1"));
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6, r7);
  }
}

static void test_slice(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    harness *h = harness_new("slice", 71);
    ir_val x = input(h, dt, "4, 11, 3", 4, 11, 3), s = input(h, dt, "T, 2", 9, 2);
    ir_val r0 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 1), ADIM("start", "2"), ADIM("end", "9")), x);
    ir_val r1 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 1), ADIM("start", "1"), ADIM("end", "11"), AINT("step", 3)), x);
    ir_val r2 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 2), ADIM("start", "0"), ADIM("end", "3"), AINT("step", 2)), x);
    ir_val r3 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 0), ADIM("start", "2"), ADIM("end", "2")), x);
    ir_val r4 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 0), ADIM("start", "1"), ADIM("end", "T-1")), s);
    ir_val r5 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 0), ADIM("start", "0"), ADIM("end", "T"), AINT("step", 4)), s);
    ir_val r6 = op(h, IR_OP_SLICE, ATTRS(AINT("axis", 1), ADIM("start", "1"), ADIM("end", "2")), s);
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6);
  }
}

/* Indices before the start, inside, and past the end are clamped. */
static void set_index(harness *h, int32_t v, const void *ud) {
  static const double indices[] = {-3, 0, 2, 4, 100};
  h->args[h->n_args - 1].data[0] = indices[v];
}

static void test_dynamic_slices(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], index_dt = it ? IR_I64 : IR_I32;
      harness *h = harness_new("dynamic", 81);
      ir_val x = input(h, dt, "3, 6, 2", 3, 6, 2), u = input(h, dt, "3, 2, 2", 3, 2, 2);
      ir_val s = input(h, dt, "T, 5", 4, 5), us = input(h, dt, "3, 5", 3, 5);
      ir_val idx = scalar_input(h, index_dt, 0);
      ir_val r0 = op(h, IR_OP_DYNAMIC_SLICE, ATTRS(AINT("axis", 1), ADIM("size", "2")), x, idx);
      ir_val r1 = op(h, IR_OP_DYNAMIC_SLICE, ATTRS(AINT("axis", 0), ADIM("size", "T-1")), s, idx);
      ir_val r2 = op(h, IR_OP_DYNAMIC_SLICE, ATTRS(AINT("axis", 2), ADIM("size", "0")), x, idx);
      ir_val r3 = op(h, IR_OP_DYNAMIC_UPDATE_SLICE, ATTRS(AINT("axis", 1)), x, u, idx);
      ir_val r4 = op(h, IR_OP_DYNAMIC_UPDATE_SLICE, ATTRS(AINT("axis", 0)), s, us, idx);
      ir_val r5 = op(h, IR_OP_DYNAMIC_SLICE, ATTRS(AINT("axis", 1), ADIM("size", "6")), x, idx);
      const ir_val outs[] = {r0, r1, r2, r3, r4, r5};
      check_variants(h, 6, outs, EXACT, 5, set_index, NULL);
    }
}

static void test_concat_split(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    harness *h = harness_new("concat", 91);
    ir_val a = input(h, dt, "2, 3", 2, 3), b = input(h, dt, "2, 0", 2, 0), c = input(h, dt, "2, 5", 2, 5);
    ir_val s = input(h, dt, "T, 3", 4, 3), t = input(h, dt, "U, 3", 1, 3);
    ir_val x = input(h, dt, "3, 10", 3, 10), xs = input(h, dt, "N, 2", 7, 2);
    ir_val r0 = op(h, IR_OP_CONCAT, ATTRS(AINT("axis", 1)), a, b, c);
    ir_val r1 = op(h, IR_OP_CONCAT, ATTRS(AINT("axis", 0)), s, t, a);
    ir_val r2 = op(h, IR_OP_CONCAT, ATTRS(AINT("axis", 0)), a);
    ir_opid sp = build(h, IR_OP_SPLIT, 1, &x, ATTRS(AINT("axis", 1), ADIMS("sizes", 4, "3", "0", "6", "1")));
    ir_opid sp2 = build(h, IR_OP_SPLIT, 1, &xs, ATTRS(AINT("axis", 0), ADIMS("sizes", 2, "2", "N-2")));
    const ir_op *o = ir_o(h->g, sp), *o2 = ir_o(h->g, sp2);
    CHECK(h, EXACT, r0, r1, r2, o->out[0], o->out[1], o->out[2], o2->out[0], o2->out[1]);
  }
}

static void test_broadcast_reverse_pad(void **state) {
  for (int d = 0; d < COUNT(ALL); d++) {
    ir_dtype dt = ALL[d];
    harness *h = harness_new("bcast", 101);
    ir_val a = input(h, dt, "3, 1", 3, 1), b = input(h, dt, "1", 1), s = input(h, dt, "T, 2", 5, 2);
    ir_val r0 = declared(h, IR_OP_BROADCAST, a, type_of(h->g, dt, "2, 3, 5"));
    ir_val r1 = declared(h, IR_OP_BROADCAST, b, type_of(h->g, dt, "4"));
    ir_val r2 = declared(h, IR_OP_BROADCAST, s, type_of(h->g, dt, "3, T, 2"));
    ir_val r3 = op(h, IR_OP_REVERSE, ATTRS(AINT("axis", 0)), s);
    ir_val r4 = op(h, IR_OP_REVERSE, ATTRS(AINT("axis", 1)), s);
    double value = dt == IR_BOOL ? 1 : ir_dtype_is_float(dt) ? -1.3 : 7;
    ir_val r5 = op(h, IR_OP_PAD, ATTRS(AINT("axis", 0), ADIM("low", "2"), ADIM("high", "T"), AFLOAT("value", value)), s);
    ir_val r6 = op(h, IR_OP_PAD, ATTRS(AINT("axis", 1), ADIM("low", "0"), ADIM("high", "1")), a);
    ir_val r7 = declared(h, IR_OP_BROADCAST, b, type_of(h->g, dt, "0, 1"));
    CHECK(h, EXACT, r0, r1, r2, r3, r4, r5, r6, r7);
  }
}

static void test_gather(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], index_dt = it ? IR_I64 : IR_I32;
      harness *h = harness_new("gather", 111);
      ir_val table = input(h, dt, "V, 3", 5, 3), t3 = input(h, dt, "2, 4, 3", 2, 4, 3);
      ir_val i2 = input_data(h, index_dt, "2, 3", DATA(0, 2, 1, 2, 1, 0), 2, 3);
      ir_val i0 = scalar_input(h, index_dt, 3);
      ir_val ie = input(h, index_dt, "0", 0);
      ir_val r0 = op(h, IR_OP_GATHER, ATTRS(AINT("axis", 0)), table, i2);
      ir_val r1 = op(h, IR_OP_GATHER, ATTRS(AINT("axis", 1)), t3, i0);
      ir_val r2 = op(h, IR_OP_GATHER, ATTRS(AINT("axis", 2)), t3, i2);
      ir_val r3 = op(h, IR_OP_GATHER, ATTRS(AINT("axis", 0)), table, ie);
      CHECK(h, EXACT, r0, r1, r2, r3);
    }
}

static void test_reverse_sequence(void **state) {
  for (int d = 0; d < COUNT(ALL); d++)
    for (int it = 0; it < 2; it++) {
      ir_dtype dt = ALL[d], len_dt = it ? IR_I64 : IR_I32;
      harness *h = harness_new("revseq", 121);
      ir_val x = input(h, dt, "B, T, 2", 4, 5, 2), len = input_data(h, len_dt, "B", DATA(0, 5, 3, 1), 4);
      ir_val xt = input(h, dt, "6, 3", 6, 3), lt = input_data(h, len_dt, "3", DATA(6, 2, 4), 3);
      ir_val r0 = op(h, IR_OP_REVERSE_SEQUENCE, ATTRS(AINT("seq_axis", 1), AINT("batch_axis", 0)), x, len);
      ir_val r1 = op(h, IR_OP_REVERSE_SEQUENCE, ATTRS(AINT("seq_axis", 0), AINT("batch_axis", 1)), xt, lt);
      CHECK(h, EXACT, r0, r1);
    }
}

/* ---- run-time checks --------------------------------------------------------------------------------- */

static void test_index_checks(void **state) {
  static const double bad[] = {-1, 5};
  for (int i = 0; i < COUNT(bad); i++) {
    harness *h = harness_new("gather_oob", 1);
    ir_val table = input(h, IR_F32, "5, 2", 5, 2);
    ir_val idx = input_data(h, IR_I32, "3", DATA(0, bad[i], 1), 3);
    check_fails(h, op(h, IR_OP_GATHER, ATTRS(AINT("axis", 0)), table, idx), CG_INDEX_RANGE);
  }
  /* Even when the result is empty, as the interpreter checks. */
  harness *h = harness_new("gather_oob_empty", 1);
  ir_val table = input(h, IR_F32, "5, 0", 5, 0);
  ir_val idx = input_data(h, IR_I64, "1", DATA(7), 1);
  check_fails(h, op(h, IR_OP_GATHER, ATTRS(AINT("axis", 0)), table, idx), CG_INDEX_RANGE);
  static const double bad_len[] = {-1, 4};
  for (int i = 0; i < COUNT(bad_len); i++) {
    h = harness_new("revseq_len", 1);
    ir_val x = input(h, IR_F32, "2, 3", 2, 3), len = input_data(h, IR_I32, "2", DATA(1, bad_len[i]), 2);
    check_fails(h, op(h, IR_OP_REVERSE_SEQUENCE, ATTRS(AINT("seq_axis", 1), AINT("batch_axis", 0)), x, len),
                CG_INDEX_RANGE);
  }
  /* A slice whose symbolic end passes the dim. */
  h = harness_new("slice_range", 1);
  ir_val x = input(h, IR_F32, "T, 2", 3, 2), y = input(h, IR_F32, "U", 5);
  (void)y;
  check_fails(h, op(h, IR_OP_SLICE, ATTRS(AINT("axis", 0), ADIM("start", "0"), ADIM("end", "U")), x), CG_INDEX_RANGE);
  /* argmax over an empty axis has no index to return. */
  h = harness_new("argmax_empty", 1);
  x = input(h, IR_F32, "3, 0", 3, 0);
  check_fails(h, op(h, IR_OP_ARGMAX, ATTRS(AINT("axis", 1)), x), CG_INDEX_RANGE);
}

static void test_dim_checks(void **state) {
  harness *h = harness_new("matmul_k", 1);
  ir_val a = input(h, IR_F32, "M, K", 2, 3), b = input(h, IR_F32, "L, N", 4, 2);
  check_fails(h, op(h, IR_OP_MATMUL, NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = harness_new("matmul_batch", 1);
  a = input(h, IR_F32, "B, 2, 3", 2, 2, 3);
  b = input(h, IR_F32, "C, 3, 2", 3, 3, 2);
  check_fails(h, op(h, IR_OP_MATMUL, NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = harness_new("concat_dims", 1);
  a = input(h, IR_F32, "2, A", 2, 3);
  b = input(h, IR_F32, "2, B", 2, 4);
  check_fails(h, op(h, IR_OP_CONCAT, ATTRS(AINT("axis", 0)), a, b), CG_DIM_MISMATCH);
  h = harness_new("reshape_count", 1);
  a = input(h, IR_F32, "N", 6);
  (void)input(h, IR_F32, "M", 5);
  check_fails(h, declared(h, IR_OP_RESHAPE, a, type_of(h->g, IR_F32, "M")), CG_DIM_MISMATCH);
  h = harness_new("layernorm_gamma", 1);
  a = input(h, IR_F32, "3, D", 3, 4);
  b = input(h, IR_F32, "E", 5);
  check_fails(h, op(h, IR_OP_LAYERNORM, NO_ATTRS, a, b), CG_DIM_MISMATCH);
  h = harness_new("split_sum", 1);
  a = input(h, IR_F32, "N", 6);
  (void)input(h, IR_F32, "M", 2);
  ir_opid sp = build(h, IR_OP_SPLIT, 1, &a, ATTRS(AINT("axis", 0), ADIMS("sizes", 2, "M", "3")));
  check_fails(h, ir_o(h->g, sp)->out[0], CG_DIM_MISMATCH);
  h = harness_new("broadcast_dim", 1);
  a = input(h, IR_F32, "T", 3);
  (void)input(h, IR_F32, "U", 4);
  check_fails(h, declared(h, IR_OP_BROADCAST, a, type_of(h->g, IR_F32, "2, U")), CG_DIM_MISMATCH);
}

/* Integer results that do not fit their dtype fail, as in the interpreter. */
static void test_integer_range_checks(void **state) {
  harness *h = harness_new("sum_i32", 1);
  ir_val x = input_data(h, IR_I32, "2", DATA(2147483647, 1), 2);
  check_fails(h, reduce(h, IR_OP_REDUCE_SUM, x, (axes_case){1, {0}}, false), CG_INT_OVERFLOW);
  h = harness_new("prod_i64", 1);
  x = input_data(h, IR_I64, "3", DATA(4194304, 4194304, 4194304), 3); /* 2^66 */
  check_fails(h, reduce(h, IR_OP_REDUCE_PROD, x, (axes_case){1, {0}}, false), CG_INT_OVERFLOW);
  h = harness_new("cumsum_i64", 1);
  x = input_data(h, IR_I64, "2, 2", DATA(4503599627370496.0, 1, 4503599627370496.0, 1), 2, 2); /* 2^52 */
  check_fails(h, op(h, IR_OP_CUMSUM, ATTRS(AINT("axis", 0)), x), CG_INT_OVERFLOW);
  h = harness_new("matmul_i32", 1);
  ir_val a = input_data(h, IR_I32, "1, 2", DATA(65536, 65536), 1, 2);
  ir_val b = input_data(h, IR_I32, "2, 1", DATA(32768, 32768), 2, 1);
  check_fails(h, op(h, IR_OP_MATMUL, NO_ATTRS, a, b), CG_INT_OVERFLOW);
  h = harness_new("max_empty_int", 1);
  x = input(h, IR_I32, "2, 0", 2, 0);
  check_fails(h, reduce(h, IR_OP_REDUCE_MAX, x, (axes_case){1, {1}}, false), CG_INT_OVERFLOW);
}

static void test_attention_needs_decompose(void **state) {
  harness *h = harness_new("attn", 1);
  ir_val q = input(h, IR_F32, "2, 4", 2, 4), k = input(h, IR_F32, "3, 4", 3, 4), v = input(h, IR_F32, "3, 4", 3, 4);
  ir_val r = op(h, IR_OP_ATTENTION, ATTRS(AINT("mask", IR_MASK_NONE), AFLOAT("scale", 0.5)), q, k, v);
  finish(h, 1, &r);
  ir_diag d;
  ir_diag_init(&d);
  ir_buf msgs = {0};
  d.capture = &msgs;
  cg_options o = {NULL, NULL, NULL, 0};
  assert_null(cg_compile(h->g, &o, &d));
  assert_non_null(msgs.s);
  assert_non_null(strstr(msgs.s, "attention must be decomposed before lowering"));
  ir_buf_free(&msgs);
  harness_free(h);
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
