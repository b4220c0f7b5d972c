/*
 * interp.c - the reference interpreter: the numeric oracle every pass and
 * every generated kernel is compared against, so it is written to be
 * obviously right rather than fast.
 *
 * How it works. Every tensor element is a double. An op's kernel computes
 * in double (sums and dot products accumulate in double, left to right) and
 * every result is then rounded to its value's dtype when stored: f32 by a
 * (float) cast, f16/bf16 to nearest even (with overflow to inf, NaN kept,
 * subnormals), integers truncated toward zero and required to be exact
 * (|x| < 2^53, and within i32 for i32), bool to 0/1. An integer result that
 * does not fit is a run-time error, never a silent wrap.
 *
 * A graph runs with an environment mapping value ids to tensors. Symbols
 * (B, T...) are bound from the caller's bindings and by unifying each
 * argument's declared type with the given tensor. Each op's result shape is
 * its declared type evaluated under the bindings, and must agree with what
 * the operands imply: that is where run-time dim checks the verifier could
 * not prove happen (add of [3] and [4] because B and T were both symbols).
 * A scan evaluates its body once per step with the step's values bound in
 * the same environment and frees them after each step, so memory stays
 * bounded for long sequences; nested scans simply recurse.
 *
 * Kernels are generated from ir/ops.def: its `eval` column names a function
 * eval_<name> here and the dispatch table is an X-macro, so an op without a
 * kernel does not compile.
 *
 * Limits: one tensor holds at most max_elements elements (default 2^28),
 * counting a zero dim as 1 so that loops over empty tensors are bounded
 * too; ranks are at most INTERP_MAX_RANK; a scan runs at most max_elements
 * steps, and all scans of a run together at most max_elements /
 * STEP_BUDGET_DIVISOR. Every violation is an error message, never a crash.
 *
 * Semantic choices where ops.def is silent:
 *  - axis attributes satisfy 0 <= axis < rank (as the verifier requires);
 *    reduce axes may also count from the end (-rank..-1).
 *  - Broadcasting is numpy's, but only a dim *declared* as the constant 1
 *    expands: a symbolic dim that happens to be 1 at run time does not.
 *  - max/min propagate NaN; compare is false with NaN except `ne`.
 *  - argmax/argmin return the first extremum; a NaN counts as both the
 *    largest and the smallest value, so the first NaN wins (as PyTorch).
 *    Over an empty axis they are an error (there is no index to return).
 *  - Reductions over zero elements give the identity: sum 0, prod 1,
 *    max -inf, min +inf, logsumexp -inf, mean NaN (0/0). In an integer
 *    dtype an infinite identity is an error when stored.
 *  - softmax subtracts the row maximum; a row that is all -inf gives NaN
 *    (exp(-inf - -inf)), as PyTorch does. attention, by contrast, gives 0
 *    for a query row whose keys are all masked (ops.def).
 *  - logcumsumexp and logsumexp are computed stably; exclusive cumulative
 *    ops start from the identity (0, 1, -inf).
 *  - softplus = max(x, 0) + log1p(exp(-|x|)) (no linear threshold; the
 *    difference from PyTorch's threshold 20 is below f32 resolution).
 *    gelu is exact (erf) or PyTorch's tanh form with approximate = tanh.
 *  - Integer division truncates toward zero; a zero divisor is an error.
 *    Integer sums and products are exact as long as partial results stay
 *    below 2^53 in magnitude (the stored result is always checked).
 *  - gather: an index outside [0, dim) (negative included) is an error
 *    naming the index, its position and the valid range.
 *  - dynamic_slice / dynamic_update_slice clamp the index to
 *    [0, dim - size]; a non-scalar or NaN index is an error.
 *  - reverse_sequence: a length outside [0, dim] is an error.
 *  - attention: query i (of Tq) may see key j (of Tk) under
 *      causal  j <= i + (Tk - Tq)   (bottom-right aligned, like a KV cache
 *                                    holding Tk - Tq earlier keys)
 *      padding j < lengths[b]       (b indexes the FIRST dim of q)
 *      window  causal and (i + Tk - Tq) - j < window
 *      prefix  j < lengths[b] or causal
 *      causal_padding  j < lengths[b] and causal;
 *    a row with no visible key gives 0.
 *  - scan: see eval_scan; init and fused: see eval_init, eval_fused.
 */
#include "interp.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INTERP_MAX_RANK 32
#define DEFAULT_MAX_ELEMENTS ((int64_t)1 << 28)
/* All the scans of one run take at most max_elements / 16 steps together
 * (2^24 by default), so nested scans cannot multiply into hours of work. */
#define STEP_BUDGET_DIVISOR 16
#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53: integers stay exact below */
#define SQRT_HALF 0.70710678118654752440
#define SQRT_2_OVER_PI 0.79788456080286535588

/* ---- rounding to a dtype ------------------------------------------------- */

static double round_half_even(double y) {
  double f = floor(y), d = y - f;
  if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0)) f += 1;
  return f;
}

/* Nearest value (ties to even) of a binary format with `digits` significand
 * bits, smallest normal exponent `emin` and largest finite `max_finite`.
 * Below 2^emin the spacing stays that of the smallest normals, which gives
 * subnormals; results past the largest finite become infinite. Dividing by
 * a power of two is exact, so this rounds once, from the double. */
static double round_to_format(double x, int digits, int emin, double max_finite) {
  if (x == 0 || !isfinite(x)) return x;
  int e;
  frexp(x, &e);
  e -= 1; /* |x| in [2^e, 2^(e+1)) */
  if (e < emin) e = emin;
  double ulp = ldexp(1.0, e - digits + 1);
  double r = round_half_even(x / ulp) * ulp;
  if (fabs(r) > max_finite) return copysign(INFINITY, x);
  return r == 0 ? copysign(0.0, x) : r;
}

#define F16_MAX 65504.0
#define BF16_MAX 3.38953138925153547590e38 /* (2 - 2^-7) * 2^127 */

/* Integers saturate here; the interpreter checks the range before storing
 * (store_rounded), so saturation only concerns direct callers. */
double ir_round_to_dtype(ir_dtype dt, double x) {
  switch (dt) {
  case IR_F64: return x;
  case IR_F32:
    /* (float) of a finite double beyond FLT_MAX is undefined in C. */
    return fabs(x) <= FLT_MAX ? (double)(float)x : round_to_format(x, 24, -126, FLT_MAX);
  case IR_F16: return round_to_format(x, 11, -14, F16_MAX);
  case IR_BF16: return round_to_format(x, 8, -126, BF16_MAX);
  case IR_I32:
    if (isnan(x)) return 0;
    x = trunc(x);
    return x < INT32_MIN ? INT32_MIN : x > INT32_MAX ? INT32_MAX : x;
  case IR_I64:
    if (isnan(x)) return 0;
    x = trunc(x);
    /* -2^63 and the largest double below 2^63 convert to int64_t safely. */
    return x < -9223372036854775808.0 ? -9223372036854775808.0
           : x >= 9223372036854775808.0 ? 9223372036854774784.0
                                        : x;
  case IR_BOOL: return x != 0 ? 1 : 0;
  case IR_DTYPE_COUNT: break;
  }
  IR_ASSERT(!"unknown dtype");
  return x;
}

/* Why integer x cannot be stored in dt after truncation, or NULL. */
static const char *int_store_problem(ir_dtype dt, double x) {
  if (isnan(x)) return "NaN is not an integer";
  double t = trunc(x);
  if (!(fabs(t) < EXACT_INT_LIMIT)) return "outside the exact integer range (-2^53, 2^53)";
  if (dt == IR_I32 && (t < INT32_MIN || t > INT32_MAX)) return "outside the i32 range";
  return NULL;
}

/* ---- raw bytes ------------------------------------------------------------ */

static double f16_to_double(uint16_t h) {
  int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY)
                                                     : ldexp(mant + 1024, exp - 25);
  return (h & 0x8000) ? -v : v;
}

static uint16_t double_to_f16(double x) {
  x = ir_round_to_dtype(IR_F16, x);
  uint16_t sign = signbit(x) ? 0x8000 : 0;
  double a = fabs(x);
  if (isnan(x)) return sign | 0x7e00;
  if (isinf(a)) return sign | 0x7c00;
  if (a < 0x1p-14) return sign | (uint16_t)(a * 0x1p24); /* subnormal or zero */
  int e;
  double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
  return sign | (uint16_t)((e + 14) << 10) | (uint16_t)((m * 2 - 1) * 1024);
}

static double bf16_to_double(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static uint16_t double_to_bf16(double x) {
  x = ir_round_to_dtype(IR_BF16, x);
  if (isnan(x)) return signbit(x) ? 0xffc0 : 0x7fc0;
  float f = (float)x; /* exact: every bf16 value is a float */
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (uint16_t)(u >> 16);
}

static uint64_t load_le(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

static void store_le(unsigned char *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++, v >>= 8) p[i] = (unsigned char)v;
}

static void set_err(ir_buf *err, const char *fmt, ...) IR_PRINTF(2, 3);
static void set_err(ir_buf *err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  ir_buf_vprintf(err, fmt, ap);
  va_end(ap);
}

/* One element from its little-endian bytes; false if it is an i64 that a
 * double cannot hold exactly. */
static bool decode_element(ir_dtype dt, const unsigned char *p, double *out) {
  uint64_t u = load_le(p, ir_dtype_size(dt));
  switch (dt) {
  case IR_F32: {
    uint32_t w = (uint32_t)u;
    float f;
    memcpy(&f, &w, sizeof f);
    *out = f;
    return true;
  }
  case IR_F64: memcpy(out, &u, sizeof *out); return true;
  case IR_F16: *out = f16_to_double((uint16_t)u); return true;
  case IR_BF16: *out = bf16_to_double((uint16_t)u); return true;
  case IR_I32: *out = (double)((int64_t)u - ((u & 0x80000000u) ? ((int64_t)1 << 32) : 0)); return true;
  case IR_I64: {
    int64_t v = (u >> 63) ? -(int64_t)(~u) - 1 : (int64_t)u;
    *out = (double)v;
    return v > -(int64_t)EXACT_INT_LIMIT && v < (int64_t)EXACT_INT_LIMIT;
  }
  case IR_BOOL: *out = u != 0; return true;
  case IR_DTYPE_COUNT: break;
  }
  IR_ASSERT(!"unknown dtype");
  return false;
}

static uint64_t encode_element(ir_dtype dt, double x) {
  switch (dt) {
  case IR_F32: {
    float f = (float)ir_round_to_dtype(IR_F32, x);
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
  }
  case IR_F64: {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
  }
  case IR_F16: return double_to_f16(x);
  case IR_BF16: return double_to_bf16(x);
  case IR_I32:
  case IR_I64: return (uint64_t)(int64_t)ir_round_to_dtype(dt, x);
  case IR_BOOL: return x != 0;
  case IR_DTYPE_COUNT: break;
  }
  IR_ASSERT(!"unknown dtype");
  return 0;
}

/* t is allocated with its shape; bytes must hold exactly its elements. Bool
 * bytes are true when nonzero. */
bool ir_tensor_from_bytes(ir_tensor *t, const void *bytes, size_t n, ir_buf *err) {
  size_t size = ir_dtype_size(t->dtype);
  if ((uint64_t)t->numel > SIZE_MAX / size || n != (size_t)t->numel * size) {
    set_err(err, "expected %lld bytes (%lld elements of %s), got %zu",
            (long long)t->numel * (long long)size, (long long)t->numel, ir_dtype_name(t->dtype), n);
    return false;
  }
  const unsigned char *p = bytes;
  for (int64_t i = 0; i < t->numel; i++, p += size) {
    if (!decode_element(t->dtype, p, &t->data[i])) {
      set_err(err, "element %lld is outside the exact integer range (-2^53, 2^53)", (long long)i);
      return false;
    }
  }
  return true;
}

void ir_tensor_to_bytes(const ir_tensor *t, ir_buf *out) {
  size_t size = ir_dtype_size(t->dtype);
  unsigned char *bytes = ir_xmalloc((size_t)t->numel * size);
  for (int64_t i = 0; i < t->numel; i++)
    store_le(bytes + (size_t)i * size, encode_element(t->dtype, t->data[i]), size);
  ir_buf_putn(out, (const char *)bytes, (size_t)t->numel * size);
  free(bytes);
}

/* ---- tensors ---------------------------------------------------------------- */

static void put_shape(ir_buf *b, int32_t rank, const int64_t *shape) {
  ir_buf_putc(b, '[');
  for (int32_t i = 0; i < rank; i++) ir_buf_printf(b, "%s%lld", i ? ", " : "", (long long)shape[i]);
  ir_buf_putc(b, ']');
}

/* The element count of a shape, checked against the limit with zero dims
 * counted as 1: then every loop over the tensor's index space, and every
 * stride, fits in the limit even when the tensor is empty. */
static bool count_elements(int32_t rank, const int64_t *shape, int64_t max_elements,
                           int64_t *numel, ir_buf *err) {
  if (rank < 0 || rank > INTERP_MAX_RANK) {
    set_err(err, "rank %d is outside the interpreter's range 0..%d", rank, INTERP_MAX_RANK);
    return false;
  }
  int64_t span = 1;
  bool empty = false;
  for (int32_t i = 0; i < rank; i++) {
    if (shape[i] < 0) {
      set_err(err, "dim %d is negative (%lld)", i, (long long)shape[i]);
      return false;
    }
    empty |= shape[i] == 0;
    if (shape[i] > 1 && span > max_elements / shape[i]) {
      set_err(err, "a tensor of shape ");
      if (err) put_shape(err, rank, shape);
      set_err(err, " exceeds the limit of %lld elements", (long long)max_elements);
      return false;
    }
    if (shape[i] > 1) span *= shape[i];
  }
  *numel = empty ? 0 : span;
  return true;
}

bool ir_tensor_alloc(ir_tensor *t, ir_dtype dt, int32_t rank, const int64_t *shape,
                     int64_t max_elements, ir_buf *err) {
  memset(t, 0, sizeof *t);
  int64_t numel;
  if (!count_elements(rank, shape, max_elements > 0 ? max_elements : DEFAULT_MAX_ELEMENTS, &numel,
                      err))
    return false;
  t->dtype = dt;
  t->rank = rank;
  t->shape = ir_xmalloc(sizeof(int64_t) * (size_t)(rank ? rank : 1));
  if (rank) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)rank);
  t->numel = numel;
  t->data = ir_xcalloc((size_t)(numel ? numel : 1), sizeof(double));
  return true;
}

void ir_tensor_free(ir_tensor *t) {
  free(t->shape);
  free(t->data);
  memset(t, 0, sizeof *t);
}

static void tensor_copy(ir_tensor *dst, const ir_tensor *src) {
  bool ok = ir_tensor_alloc(dst, src->dtype, src->rank, src->shape, INT64_MAX, NULL);
  IR_ASSERT(ok); /* src exists, so its shape is within the limits */
  if (src->numel) memcpy(dst->data, src->data, sizeof(double) * (size_t)src->numel);
}

static bool same_shape(const ir_tensor *a, int32_t rank, const int64_t *shape) {
  if (a->rank != rank) return false;
  for (int32_t i = 0; i < rank; i++)
    if (a->shape[i] != shape[i]) return false;
  return true;
}

/* ---- interpreter state and errors -------------------------------------------- */

typedef struct slot {
  ir_tensor t;
  bool live;
  bool borrowed; /* a view of a tensor owned elsewhere (scan invariants, carries) */
} slot;

typedef struct interp {
  ir_graph *g;
  slot *env; /* by value id; NULL when evaluating a single op */
  ir_dim_binding *binds;
  int32_t n_binds, cap_binds;
  int64_t max_elements;
  int64_t steps_left; /* scan steps this run may still take, over all scans */
  ir_buf *err;
} interp;

/* "<op> '<first result name>': message", appended to err; returns false. */
static bool fail(interp *ip, ir_opid id, const char *fmt, ...) IR_PRINTF(3, 4);
static bool fail(interp *ip, ir_opid id, const char *fmt, ...) {
  if (!ip->err) return false;
  if (id != IR_NONE) {
    const ir_op *op = ir_o(ip->g, id);
    ir_buf_puts(ip->err, ir_opinfo_of(op->kind)->name);
    const char *name = op->n_out > 0 ? ir_v(ip->g, op->out[0])->name : NULL;
    if (name) ir_buf_printf(ip->err, " '%s'", name);
    ir_buf_puts(ip->err, ": ");
  }
  va_list ap;
  va_start(ap, fmt);
  ir_buf_vprintf(ip->err, fmt, ap);
  va_end(ap);
  return false;
}

static void interp_init(interp *ip, ir_graph *g, const ir_interp_opts *opts, ir_buf *err) {
  memset(ip, 0, sizeof *ip);
  ip->g = g;
  ip->err = err;
  ip->max_elements = opts && opts->max_elements > 0 ? opts->max_elements : DEFAULT_MAX_ELEMENTS;
  ip->steps_left = ip->max_elements / STEP_BUDGET_DIVISOR;
  for (int32_t i = 0; opts && i < opts->n_bindings; i++) {
    ir_grow((void **)&ip->binds, &ip->cap_binds, ip->n_binds + 1, sizeof *ip->binds);
    ip->binds[ip->n_binds++] = opts->bindings[i];
  }
}

static const ir_dim_binding *binding_of(const interp *ip, const char *name) {
  for (int32_t i = 0; i < ip->n_binds; i++)
    if (ip->binds[i].name && strcmp(ip->binds[i].name, name) == 0) return &ip->binds[i];
  return NULL;
}

static void bind(interp *ip, const char *name, int64_t v) {
  ir_grow((void **)&ip->binds, &ip->cap_binds, ip->n_binds + 1, sizeof *ip->binds);
  ip->binds[ip->n_binds++] = (ir_dim_binding){name, v};
}

/* d evaluated under the bindings; `what` prefixes the message. */
static bool eval_dim(interp *ip, ir_opid id, ir_dim d, const char *what, int64_t *v) {
  ir_buf e = {0};
  bool ok = ir_dim_eval(ip->g->dims, d, ip->binds, ip->n_binds, v, &e);
  if (!ok) fail(ip, id, "%s: %s", what, e.s ? e.s : "cannot be evaluated");
  ir_buf_free(&e);
  return ok;
}

static bool eval_dim_attr(interp *ip, ir_opid id, const char *name, int64_t *v) {
  if (!ir_has_attr(ip->g, id, name)) return fail(ip, id, "attribute '%s' is missing", name);
  return eval_dim(ip, id, ir_get_dim(ip->g, id, name), name, v);
}

/* A single-axis attribute, which the verifier keeps in [0, rank). */
static bool axis_attr(interp *ip, ir_opid id, const char *name, int32_t rank, int32_t *axis) {
  int64_t a = ir_get_int(ip->g, id, name);
  *axis = 0;
  if (a < 0 || a >= rank) return fail(ip, id, "%s %lld is outside [0, %d)", name, (long long)a, rank);
  *axis = (int32_t)a;
  return true;
}

static const char *dim_text(interp *ip, ir_dim d, ir_buf *b) {
  b->len = 0;
  ir_buf_puts(b, "");
  ir_dim_print(ip->g->dims, d, b);
  return b->s;
}

/* ---- unifying declared types with actual shapes ------------------------------- */

/* Pass 1 of unification: every dim of `ty` that is a bare symbol binds it
 * to the actual size, or must equal its existing binding. */
static bool unify_symbols(interp *ip, ir_opid id, const char *what, ir_type ty, const ir_tensor *t) {
  if (ty.rank > INTERP_MAX_RANK)
    return fail(ip, id, "%s has rank %d, above the interpreter's limit %d", what, ty.rank,
                INTERP_MAX_RANK);
  if (ty.dtype != t->dtype)
    return fail(ip, id, "%s is declared %s but the tensor is %s", what, ir_dtype_name(ty.dtype),
                ir_dtype_name(t->dtype));
  if (ty.rank != t->rank)
    return fail(ip, id, "%s is declared with rank %d but the tensor has rank %d", what, ty.rank,
                t->rank);
  for (int32_t i = 0; i < ty.rank; i++) {
    const char *name;
    if (!ir_dim_is_sym(ip->g->dims, ty.dims[i], &name)) continue;
    const ir_dim_binding *b = binding_of(ip, name);
    if (!b)
      bind(ip, name, t->shape[i]);
    else if (b->value != t->shape[i])
      return fail(ip, id, "%s axis %d: %s is bound to %lld, got %lld", what, i, name,
                  (long long)b->value, (long long)t->shape[i]);
  }
  return true;
}

/* Pass 2: every dim evaluates to the actual size. */
static bool unify_check(interp *ip, ir_opid id, const char *what, ir_type ty, const ir_tensor *t) {
  for (int32_t i = 0; i < ty.rank; i++) {
    int64_t v;
    char where[160];
    snprintf(where, sizeof where, "%s axis %d", what, i);
    if (!eval_dim(ip, id, ty.dims[i], where, &v)) return false;
    if (v != t->shape[i]) {
      ir_buf b = {0};
      fail(ip, id, "%s: expected %s = %lld, got %lld", where, dim_text(ip, ty.dims[i], &b),
           (long long)v, (long long)t->shape[i]);
      ir_buf_free(&b);
      return false;
    }
  }
  return true;
}

/* The shape of result r from its declared type under the bindings. When the
 * operands imply a shape (`implied` not NULL) they must agree, and a bare
 * symbol not bound yet is bound from it. */
static bool resolve_result_shape(interp *ip, ir_opid id, int32_t r, int32_t rank,
                                 const int64_t *implied, int64_t *shape) {
  ir_type ty = ir_vtype(ip->g, ir_o(ip->g, id)->out[r]);
  if (ty.rank > INTERP_MAX_RANK)
    return fail(ip, id, "result %d has rank %d, above the interpreter's limit %d", r, ty.rank,
                INTERP_MAX_RANK);
  if (implied && ty.rank != rank)
    return fail(ip, id, "result %d is declared with rank %d but the operands give rank %d", r,
                ty.rank, rank);
  for (int32_t i = 0; i < ty.rank; i++) {
    const char *name;
    if (implied && ir_dim_is_sym(ip->g->dims, ty.dims[i], &name) && !binding_of(ip, name)) {
      bind(ip, name, implied[i]);
      shape[i] = implied[i];
      continue;
    }
    char where[64];
    snprintf(where, sizeof where, "result %d dim %d", r, i);
    if (!eval_dim(ip, id, ty.dims[i], where, &shape[i])) return false;
    if (implied && shape[i] != implied[i]) {
      ir_buf b = {0};
      fail(ip, id, "%s is %s = %lld but the operands give %lld", where,
           dim_text(ip, ty.dims[i], &b), (long long)shape[i], (long long)implied[i]);
      ir_buf_free(&b);
      return false;
    }
  }
  return true;
}

/* Allocate result r with its declared dtype and resolved shape. */
static bool alloc_result(interp *ip, ir_opid id, int32_t r, int32_t rank, const int64_t *implied,
                         ir_tensor *out) {
  int64_t shape[INTERP_MAX_RANK];
  if (!resolve_result_shape(ip, id, r, rank, implied, shape)) return false;
  ir_type ty = ir_vtype(ip->g, ir_o(ip->g, id)->out[r]);
  ir_buf e = {0};
  bool ok = ir_tensor_alloc(out, ty.dtype, ty.rank, shape, ip->max_elements, &e);
  if (!ok) fail(ip, id, "result %d: %s", r, e.s ? e.s : "cannot be allocated");
  ir_buf_free(&e);
  return ok;
}

/* Round every element of a fresh result to its dtype (see the top). */
static bool store_rounded(interp *ip, ir_opid id, int32_t r, ir_tensor *t) {
  bool is_int = ir_dtype_is_int(t->dtype);
  for (int64_t e = 0; e < t->numel; e++) {
    const char *problem = is_int ? int_store_problem(t->dtype, t->data[e]) : NULL;
    if (problem)
      return fail(ip, id, "result %d element %lld: %g does not fit in %s: %s", r, (long long)e,
                  t->data[e], ir_dtype_name(t->dtype), problem);
    t->data[e] = ir_round_to_dtype(t->dtype, t->data[e]);
  }
  return true;
}

/* ---- index arithmetic ------------------------------------------------------- */

static void strides_of(int32_t rank, const int64_t *shape, int64_t *st) {
  int64_t s = 1;
  for (int32_t d = rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d] ? shape[d] : 1;
  }
}

/* Sizes before and after `axis`: element (o, i, r) is at (o*dim + i)*inner + r. */
static void around_axis(const int64_t *shape, int32_t rank, int32_t axis, int64_t *outer,
                        int64_t *inner) {
  *outer = *inner = 1;
  for (int32_t d = 0; d < axis; d++) *outer *= shape[d];
  for (int32_t d = axis + 1; d < rank; d++) *inner *= shape[d];
}

/* Walks a multi-index over `shape` in row-major order, keeping the offsets
 * of up to three tensors (with arbitrary strides: 0 for broadcast dims,
 * permuted for transposes) in step. */
#define ODO_STREAMS 3
typedef struct odometer {
  int32_t rank;
  int64_t shape[INTERP_MAX_RANK], idx[INTERP_MAX_RANK];
  int64_t stride[ODO_STREAMS][INTERP_MAX_RANK];
  int64_t off[ODO_STREAMS];
} odometer;

static void odo_init(odometer *o, int32_t rank, const int64_t *shape) {
  memset(o, 0, sizeof *o);
  o->rank = rank;
  if (rank) memcpy(o->shape, shape, sizeof(int64_t) * (size_t)rank);
}

static void odo_next(odometer *o) {
  for (int32_t d = o->rank - 1; d >= 0; d--) {
    o->idx[d]++;
    for (int k = 0; k < ODO_STREAMS; k++) o->off[k] += o->stride[k][d];
    if (o->idx[d] < o->shape[d]) return;
    for (int k = 0; k < ODO_STREAMS; k++) o->off[k] -= o->stride[k][d] * o->shape[d];
    o->idx[d] = 0;
  }
}

/* Strides that read tensor t (its first `used` dims, right-aligned) while
 * walking `shape`: 0 where t's dim is expanded. */
static void broadcast_strides(const ir_tensor *t, int32_t used, int32_t rank, const int64_t *shape,
                              int64_t *st) {
  int64_t full[INTERP_MAX_RANK];
  strides_of(t->rank, t->shape, full);
  for (int32_t d = 0; d < rank; d++) {
    int32_t s = d - (rank - used);
    st[d] = (s < 0 || t->shape[s] != shape[d]) ? 0 : full[s];
  }
}

static bool declared_one(interp *ip, ir_val v, int32_t axis) {
  int64_t c;
  return ir_dim_is_const(ip->g->dims, ir_vtype(ip->g, v).dims[axis], &c) && c == 1;
}

/* The numpy broadcast of the first n operands, leaving out their last
 * `trailing` dims (matmul and attention broadcast only batch dims). Only a
 * dim declared as the constant 1 expands. Sets up an odometer over the
 * broadcast shape with one stream per operand. */
static bool broadcast_operands(interp *ip, ir_opid id, int32_t n, const ir_tensor *in,
                               int32_t trailing, odometer *o) {
  const ir_op *op = ir_o(ip->g, id);
  int32_t rank = 0;
  for (int32_t k = 0; k < n; k++)
    if (in[k].rank - trailing > rank) rank = in[k].rank - trailing;
  int64_t shape[INTERP_MAX_RANK];
  bool expandable[INTERP_MAX_RANK];
  for (int32_t d = 0; d < rank; d++) {
    shape[d] = 1;
    expandable[d] = true;
  }
  for (int32_t k = 0; k < n; k++) {
    int32_t used = in[k].rank - trailing, off = rank - used;
    for (int32_t s = 0; s < used; s++) {
      int64_t have = shape[off + s], dim = in[k].shape[s];
      bool one = declared_one(ip, op->in[k], s);
      if (expandable[off + s] && (have == 1 || have == dim)) {
        shape[off + s] = dim;
        expandable[off + s] = one;
      } else if (!(one || dim == have)) {
        ir_buf b = {0};
        put_shape(&b, in[k].rank, in[k].shape);
        fail(ip, id, "operand %d of shape %s does not broadcast: dim %d is %lld, others give %lld",
             k, b.s, s, (long long)dim, (long long)have);
        ir_buf_free(&b);
        return false;
      }
    }
  }
  odo_init(o, rank, shape);
  for (int32_t k = 0; k < n; k++)
    broadcast_strides(&in[k], in[k].rank - trailing, rank, shape, o->stride[k]);
  return true;
}

/* ---- structure: yield, constant, iota ------------------------------------------ */

/* A yield has no results; the block evaluator reads its operands. */
static bool eval_yield(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) { return true; }

static bool eval_constant(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_attr *a = ir_get_attr(ip->g, id, "value");
  if (!a->present || !a->u.t) return fail(ip, id, "attribute 'value' is missing");
  const ir_tensor_data *d = a->u.t;
  if (!alloc_result(ip, id, 0, 0, NULL, out)) return false;
  if (d->n != 1 && d->n != out->numel)
    return fail(ip, id, "%lld values for %lld elements", (long long)d->n, (long long)out->numel);
  bool use_f = d->f && (ir_dtype_is_float(out->dtype) || !d->i);
  if (d->n > 0 && !use_f && !d->i) return fail(ip, id, "attribute 'value' has no data");
  for (int64_t e = 0; e < out->numel; e++) {
    int64_t k = d->n == 1 ? 0 : e;
    if (use_f) {
      out->data[e] = d->f[k];
    } else {
      if (!(d->i[k] > -(int64_t)EXACT_INT_LIMIT && d->i[k] < (int64_t)EXACT_INT_LIMIT))
        return fail(ip, id, "value %lld is outside the exact integer range", (long long)d->i[k]);
      out->data[e] = (double)d->i[k];
    }
  }
  return true;
}

static bool eval_iota(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  int32_t axis;
  if (!alloc_result(ip, id, 0, 0, NULL, out) || !axis_attr(ip, id, "axis", out->rank, &axis))
    return false;
  odometer o;
  odo_init(&o, out->rank, out->shape);
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o)) out->data[e] = (double)o.idx[axis];
  return true;
}

/* ---- elementwise -------------------------------------------------------------- */

typedef double (*scalar_fn)(double x, double param);

static double sigmoid(double x) {
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x); /* no overflow for large negative x */
  return e / (1 + e);
}

static double f_neg(double x, double p) { return -x; }
static double f_abs(double x, double p) { return fabs(x); }
static double f_exp(double x, double p) { return exp(x); }
static double f_log(double x, double p) { return log(x); }
static double f_sqrt(double x, double p) { return sqrt(x); }
static double f_rsqrt(double x, double p) { return 1 / sqrt(x); }
static double f_tanh(double x, double p) { return tanh(x); }
static double f_sigmoid(double x, double p) { return sigmoid(x); }
static double f_relu(double x, double p) { return isnan(x) ? x : x > 0 ? x : 0.0; }
/* x*Phi(x) written with erfc and 1/(1+e^-2u) so that neither form cancels
 * for large negative x (1 + erf(...) and 1 + tanh(...) lose every digit). */
static double f_gelu(double x, double p) { return 0.5 * x * erfc(-x * SQRT_HALF); }
static double f_gelu_tanh(double x, double p) {
  return x / (1 + exp(-2 * SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}
static double f_erf(double x, double p) { return erf(x); }
static double f_silu(double x, double p) { return x * sigmoid(x); }
static double f_softplus(double x, double p) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double f_elu(double x, double alpha) { return x > 0 ? x : alpha * expm1(x); }
static double f_sin(double x, double p) { return sin(x); }
static double f_cos(double x, double p) { return cos(x); }
static double f_not(double x, double p) { return x == 0; }

/* The scalar function of a unary op and its parameter. */
static scalar_fn unary_fn(const ir_graph *g, ir_opid id, double *param) {
  *param = 0;
  switch (ir_o(g, id)->kind) {
  case IR_OP_NEG: return f_neg;
  case IR_OP_ABS: return f_abs;
  case IR_OP_EXP: return f_exp;
  case IR_OP_LOG: return f_log;
  case IR_OP_SQRT: return f_sqrt;
  case IR_OP_RSQRT: return f_rsqrt;
  case IR_OP_TANH: return f_tanh;
  case IR_OP_SIGMOID: return f_sigmoid;
  case IR_OP_RELU: return f_relu;
  case IR_OP_GELU: return ir_get_int(g, id, "approximate") == IR_GELU_TANH ? f_gelu_tanh : f_gelu;
  case IR_OP_ERF: return f_erf;
  case IR_OP_SILU: return f_silu;
  case IR_OP_SOFTPLUS: return f_softplus;
  case IR_OP_ELU: *param = ir_get_float(g, id, "alpha"); return f_elu;
  case IR_OP_SIN: return f_sin;
  case IR_OP_COS: return f_cos;
  case IR_OP_NOT: return f_not;
  default: return NULL;
  }
}

static bool eval_unary(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  double param;
  scalar_fn f = unary_fn(ip->g, id, &param);
  if (!f) return fail(ip, id, "the interpreter has no scalar function for this op");
  if (!alloc_result(ip, id, 0, in[0].rank, in[0].shape, out)) return false;
  for (int64_t e = 0; e < out->numel; e++) out->data[e] = f(in[0].data[e], param);
  return true;
}

static double nan_max(double a, double b) { return isnan(a) || isnan(b) ? a + b : a > b ? a : b; }
static double nan_min(double a, double b) { return isnan(a) || isnan(b) ? a + b : a < b ? a : b; }

static double apply_binary(ir_opkind k, double a, double b) {
  switch (k) {
  case IR_OP_ADD: return a + b;
  case IR_OP_SUB: return a - b;
  case IR_OP_MUL: return a * b;
  case IR_OP_DIV: return a / b;
  case IR_OP_MAX: return nan_max(a, b);
  case IR_OP_MIN: return nan_min(a, b);
  case IR_OP_POW: return pow(a, b);
  case IR_OP_AND: return a != 0 && b != 0;
  case IR_OP_OR: return a != 0 || b != 0;
  default: IR_ASSERT(!"not a binary op"); return 0;
  }
}

static bool eval_binary(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  ir_opkind k = ir_o(ip->g, id)->kind;
  odometer o;
  if (!broadcast_operands(ip, id, 2, in, 0, &o) || !alloc_result(ip, id, 0, o.rank, o.shape, out))
    return false;
  /* Integer division in int64, which is exact where doubles could round. */
  bool int_div = k == IR_OP_DIV && ir_dtype_is_int(out->dtype) && ir_dtype_is_int(in[0].dtype) &&
                 ir_dtype_is_int(in[1].dtype);
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o)) {
    double a = in[0].data[o.off[0]], b = in[1].data[o.off[1]];
    if (int_div) {
      if (b == 0) return fail(ip, id, "integer division by zero at element %lld", (long long)e);
      out->data[e] = (double)((int64_t)a / (int64_t)b);
    } else {
      out->data[e] = apply_binary(k, a, b);
    }
  }
  return true;
}

static bool compare(int64_t pred, double a, double b) {
  switch (pred) {
  case IR_CMP_EQ: return a == b;
  case IR_CMP_NE: return a != b;
  case IR_CMP_LT: return a < b;
  case IR_CMP_LE: return a <= b;
  case IR_CMP_GT: return a > b;
  default: return a >= b;
  }
}

static bool eval_compare(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  int64_t pred = ir_get_int(ip->g, id, "predicate");
  if (pred < IR_CMP_EQ || pred > IR_CMP_GE) return fail(ip, id, "unknown predicate %lld", (long long)pred);
  odometer o;
  if (!broadcast_operands(ip, id, 2, in, 0, &o) || !alloc_result(ip, id, 0, o.rank, o.shape, out))
    return false;
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o))
    out->data[e] = compare(pred, in[0].data[o.off[0]], in[1].data[o.off[1]]);
  return true;
}

static bool eval_select(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  odometer o;
  if (!broadcast_operands(ip, id, 3, in, 0, &o) || !alloc_result(ip, id, 0, o.rank, o.shape, out))
    return false;
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o))
    out->data[e] = in[0].data[o.off[0]] != 0 ? in[1].data[o.off[1]] : in[2].data[o.off[2]];
  return true;
}

/* The conversion itself is the rounding every result gets on store. */
static bool eval_cast(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  if (!alloc_result(ip, id, 0, in[0].rank, in[0].shape, out)) return false;
  if (out->numel) memcpy(out->data, in[0].data, sizeof(double) * (size_t)out->numel);
  return true;
}

/* ---- linear algebra and reductions ------------------------------------------- */

static bool eval_matmul(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *a = &in[0], *b = &in[1];
  if (a->rank < 2 || b->rank < 2) return fail(ip, id, "operands need rank >= 2");
  bool ta = ir_get_int(ip->g, id, "transpose_a"), tb = ir_get_int(ip->g, id, "transpose_b");
  int64_t m = a->shape[a->rank - 2 + ta], ka = a->shape[a->rank - 1 - ta];
  int64_t kb = b->shape[b->rank - 2 + tb], n = b->shape[b->rank - 1 - tb];
  if (ka != kb) return fail(ip, id, "contraction dims differ: %lld vs %lld", (long long)ka, (long long)kb);
  odometer o;
  if (!broadcast_operands(ip, id, 2, in, 2, &o)) return false;
  int64_t shape[INTERP_MAX_RANK];
  if (o.rank + 2 > INTERP_MAX_RANK) return fail(ip, id, "result rank is too large");
  memcpy(shape, o.shape, sizeof(int64_t) * (size_t)o.rank);
  shape[o.rank] = m;
  shape[o.rank + 1] = n;
  if (!alloc_result(ip, id, 0, o.rank + 2, shape, out)) return false;
  if (out->numel == 0) return true;
  /* Element (i, k) of A and (k, j) of B in their stored layouts. */
  int64_t a_i = ta ? 1 : ka, a_k = ta ? m : 1, b_k = tb ? 1 : n, b_j = tb ? kb : 1;
  int64_t batches = out->numel / (m * n);
  for (int64_t bi = 0; bi < batches; bi++, odo_next(&o)) {
    const double *pa = a->data + o.off[0], *pb = b->data + o.off[1];
    double *pc = out->data + bi * m * n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t k = 0; k < ka; k++) s += pa[i * a_i + k * a_k] * pb[k * b_k + j * b_j];
        pc[i * n + j] = s;
      }
  }
  return true;
}

static bool eval_pack_rhs(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *b = &in[0];
  if (b->rank != 2) return fail(ip, id, "operand needs rank 2");
  bool tb = ir_get_int(ip->g, id, "transpose_b");
  int64_t k = b->shape[tb], n = b->shape[!tb], w = IR_PACK_WIDTH;
  int64_t shape[3] = {(n + w - 1) / w, k, w};
  if (!alloc_result(ip, id, 0, 3, shape, out)) return false;
  for (int64_t q = 0; q < shape[0]; q++)
    for (int64_t kk = 0; kk < k; kk++)
      for (int64_t r = 0, j = q * w; r < w; r++, j++)
        out->data[(q * k + kk) * w + r] = j >= n ? 0 : b->data[tb ? j * k + kk : kk * n + j];
  return true;
}

static bool eval_matmul_packed(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *a = &in[0], *p = &in[1];
  int64_t n, w = IR_PACK_WIDTH;
  if (a->rank < 2 || p->rank != 3) return fail(ip, id, "operands need ranks >= 2 and 3");
  if (!eval_dim_attr(ip, id, "n", &n)) return false;
  int64_t k = a->shape[a->rank - 1];
  if (p->shape[1] != k || p->shape[2] != w || p->shape[0] != (n + w - 1) / w)
    return fail(ip, id, "packed operand [%lld, %lld, %lld] does not hold [%lld, %lld]", (long long)p->shape[0],
                (long long)p->shape[1], (long long)p->shape[2], (long long)k, (long long)n);
  int64_t shape[INTERP_MAX_RANK];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->rank);
  shape[a->rank - 1] = n;
  if (!alloc_result(ip, id, 0, a->rank, shape, out)) return false;
  int64_t rows = k ? a->numel / k : out->numel / (n ? n : 1);
  for (int64_t i = 0; i < rows && n; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t kk = 0; kk < k; kk++) s += a->data[i * k + kk] * p->data[(j / w * k + kk) * w + j % w];
      out->data[i * n + j] = s;
    }
  return true;
}

/* Shape with `axis` removed, or kept as 1. */
static int32_t drop_axis(const ir_tensor *x, int32_t axis, bool keep, int64_t *shape) {
  int32_t r = 0;
  for (int32_t d = 0; d < x->rank; d++) {
    if (d != axis)
      shape[r++] = x->shape[d];
    else if (keep)
      shape[r++] = 1;
  }
  return r;
}

static bool reduce_axes(interp *ip, ir_opid id, const ir_tensor *x, bool *reduced) {
  const ir_attr *axes = ir_get_attr(ip->g, id, "axes");
  if (!axes->present) return fail(ip, id, "attribute 'axes' is missing");
  memset(reduced, 0, sizeof(bool) * INTERP_MAX_RANK);
  for (int32_t i = 0; i < axes->u.ints.n; i++) {
    int64_t a = axes->u.ints.v[i];
    if (a < -(int64_t)x->rank || a >= x->rank)
      return fail(ip, id, "axis %lld is outside [-%d, %d)", (long long)a, x->rank, x->rank);
    if (a < 0) a += x->rank;
    if (reduced[a]) return fail(ip, id, "axis %lld is listed twice", (long long)a);
    reduced[a] = true;
  }
  return true;
}

static double reduce_identity(ir_opkind k) {
  switch (k) {
  case IR_OP_REDUCE_PROD: return 1;
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_LOGSUMEXP: return -INFINITY; /* logsumexp's first pass is a max */
  case IR_OP_REDUCE_MIN: return INFINITY;
  default: return 0;
  }
}

static double reduce_step(ir_opkind k, double acc, double x) {
  switch (k) {
  case IR_OP_REDUCE_PROD: return acc * x;
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_LOGSUMEXP: return nan_max(acc, x);
  case IR_OP_REDUCE_MIN: return nan_min(acc, x);
  default: return acc + x;
  }
}

/* Reductions walk the input once (twice for logsumexp: max, then the sum of
 * exp(x - max)), adding each element into its output slot. */
static bool eval_reduce(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  ir_opkind k = ir_o(ip->g, id)->kind;
  const ir_tensor *x = &in[0];
  bool reduced[INTERP_MAX_RANK], keep = ir_get_int(ip->g, id, "keepdims");
  if (!reduce_axes(ip, id, x, reduced)) return false;
  int64_t kept[INTERP_MAX_RANK], shape[INTERP_MAX_RANK], count = 1;
  int32_t rank = 0;
  for (int32_t d = 0; d < x->rank; d++) {
    kept[d] = reduced[d] ? 1 : x->shape[d];
    if (reduced[d]) count *= x->shape[d];
    if (!reduced[d] || keep) shape[rank++] = kept[d];
  }
  if (!alloc_result(ip, id, 0, rank, shape, out)) return false;
  odometer o;
  odo_init(&o, x->rank, x->shape);
  strides_of(x->rank, kept, o.stride[0]);
  for (int32_t d = 0; d < x->rank; d++)
    if (reduced[d]) o.stride[0][d] = 0;
  for (int64_t e = 0; e < out->numel; e++) out->data[e] = reduce_identity(k);
  for (int64_t e = 0; e < x->numel; e++, odo_next(&o))
    out->data[o.off[0]] = reduce_step(k, out->data[o.off[0]], x->data[e]);
  if (k == IR_OP_REDUCE_MEAN)
    for (int64_t e = 0; e < out->numel; e++) out->data[e] /= (double)count;
  if (k != IR_OP_REDUCE_LOGSUMEXP) return true;
  double *sum = ir_xcalloc((size_t)out->numel + 1, sizeof(double));
  odo_init(&o, x->rank, x->shape);
  strides_of(x->rank, kept, o.stride[0]);
  for (int32_t d = 0; d < x->rank; d++)
    if (reduced[d]) o.stride[0][d] = 0;
  for (int64_t e = 0; e < x->numel; e++, odo_next(&o))
    if (isfinite(out->data[o.off[0]])) sum[o.off[0]] += exp(x->data[e] - out->data[o.off[0]]);
  /* An infinite or NaN maximum is already the answer. */
  for (int64_t e = 0; e < out->numel; e++)
    if (isfinite(out->data[e])) out->data[e] += log(sum[e]);
  free(sum);
  return true;
}

/* Index of the first extremum; a NaN wins over everything. */
static int64_t arg_extremum(const double *p, int64_t n, int64_t stride, bool want_max) {
  int64_t best = 0;
  for (int64_t i = 1; i < n && !isnan(p[best * stride]); i++) {
    double v = p[i * stride], b = p[best * stride];
    if (isnan(v) || (want_max ? v > b : v < b)) best = i;
  }
  return best;
}

static bool eval_argreduce(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  if (!axis_attr(ip, id, "axis", x->rank, &axis)) return false;
  int64_t shape[INTERP_MAX_RANK], outer, inner, n = x->shape[axis];
  int32_t rank = drop_axis(x, axis, ir_get_int(ip->g, id, "keepdims"), shape);
  if (!alloc_result(ip, id, 0, rank, shape, out)) return false;
  if (n == 0 && out->numel > 0) return fail(ip, id, "axis %d is empty: no index to return", axis);
  bool want_max = ir_o(ip->g, id)->kind == IR_OP_ARGMAX;
  around_axis(x->shape, x->rank, axis, &outer, &inner);
  for (int64_t o = 0; o < outer && n > 0; o++)
    for (int64_t r = 0; r < inner; r++)
      out->data[o * inner + r] = (double)arg_extremum(x->data + o * n * inner + r, n, inner, want_max);
  return true;
}

static bool eval_softmax(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !alloc_result(ip, id, 0, x->rank, x->shape, out))
    return false;
  int64_t outer, inner, n = x->shape[axis];
  around_axis(x->shape, x->rank, axis, &outer, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t r = 0; r < inner; r++) {
      const double *px = x->data + o * n * inner + r;
      double *py = out->data + o * n * inner + r;
      double m = -INFINITY, sum = 0;
      for (int64_t i = 0; i < n; i++) m = nan_max(m, px[i * inner]);
      for (int64_t i = 0; i < n; i++) sum += py[i * inner] = exp(px[i * inner] - m);
      for (int64_t i = 0; i < n; i++) py[i * inner] /= sum;
    }
  return true;
}

static bool eval_layernorm(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t n_in = ir_o(ip->g, id)->n_in;
  if (x->rank < 1) return fail(ip, id, "operand needs rank >= 1");
  int64_t d = x->shape[x->rank - 1];
  for (int32_t i = 1; i < n_in; i++)
    if (in[i].rank != 1 || in[i].shape[0] != d)
      return fail(ip, id, "%s has %lld elements, the last dim is %lld", i == 1 ? "gamma" : "beta",
                  (long long)in[i].numel, (long long)d);
  if (!alloc_result(ip, id, 0, x->rank, x->shape, out)) return false;
  double eps = ir_get_float(ip->g, id, "eps");
  int64_t rows = d ? x->numel / d : 0;
  for (int64_t row = 0; row < rows; row++) {
    const double *px = x->data + row * d;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; i++) mean += px[i];
    mean /= (double)d;
    for (int64_t i = 0; i < d; i++) var += (px[i] - mean) * (px[i] - mean);
    var /= (double)d; /* biased, as PyTorch's layer_norm */
    double inv = 1 / sqrt(var + eps);
    for (int64_t i = 0; i < d; i++) {
      double y = (px[i] - mean) * inv;
      if (n_in > 1) y *= in[1].data[i];
      if (n_in > 2) y += in[2].data[i];
      out->data[row * d + i] = y;
    }
  }
  return true;
}

/* log(e^a + e^b) without overflow. */
static double log_add_exp(double a, double b) {
  if (isnan(a) || isnan(b)) return a + b;
  if (a == b) return a + log(2.0); /* also +-inf + log 2 = +-inf */
  double m = a > b ? a : b;
  return m + log1p(exp(-fabs(a - b)));
}

static bool eval_cumulative(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  ir_opkind k = ir_o(ip->g, id)->kind;
  int32_t axis;
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !alloc_result(ip, id, 0, x->rank, x->shape, out))
    return false;
  bool reverse = ir_get_int(ip->g, id, "reverse"), exclusive = ir_get_int(ip->g, id, "exclusive");
  double identity = k == IR_OP_CUMSUM ? 0 : k == IR_OP_CUMPROD ? 1 : -INFINITY;
  int64_t outer, inner, n = x->shape[axis];
  around_axis(x->shape, x->rank, axis, &outer, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t r = 0; r < inner; r++) {
      double acc = identity;
      for (int64_t s = 0; s < n; s++) {
        int64_t at = (o * n + (reverse ? n - 1 - s : s)) * inner + r;
        if (exclusive) out->data[at] = acc;
        double v = x->data[at];
        acc = k == IR_OP_CUMSUM ? acc + v : k == IR_OP_CUMPROD ? acc * v : log_add_exp(acc, v);
        if (!exclusive) out->data[at] = acc;
      }
    }
  return true;
}

/* ---- data movement -------------------------------------------------------------- */

static bool eval_reshape(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  if (!alloc_result(ip, id, 0, 0, NULL, out)) return false;
  if (out->numel != in[0].numel)
    return fail(ip, id, "%lld elements cannot be reshaped to %lld", (long long)in[0].numel,
                (long long)out->numel);
  if (out->numel) memcpy(out->data, in[0].data, sizeof(double) * (size_t)out->numel);
  return true;
}

static bool eval_transpose(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  const ir_attr *perm = ir_get_attr(ip->g, id, "perm");
  if (!perm->present || perm->u.ints.n != x->rank)
    return fail(ip, id, "perm must have %d entries", x->rank);
  int64_t xst[INTERP_MAX_RANK], shape[INTERP_MAX_RANK];
  bool used[INTERP_MAX_RANK] = {0};
  strides_of(x->rank, x->shape, xst);
  odometer o;
  for (int32_t i = 0; i < x->rank; i++) {
    int64_t p = perm->u.ints.v[i];
    if (p < 0 || p >= x->rank || used[p]) return fail(ip, id, "perm is not a permutation");
    used[p] = true;
    shape[i] = x->shape[p];
  }
  if (!alloc_result(ip, id, 0, x->rank, shape, out)) return false;
  odo_init(&o, x->rank, shape);
  for (int32_t i = 0; i < x->rank; i++) o.stride[0][i] = xst[perm->u.ints.v[i]];
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o)) out->data[e] = x->data[o.off[0]];
  return true;
}

/* Copy `count` positions along the axis from src (positions src_at +
 * i*step) to dst (positions dst_at + i), for every outer/inner index. */
typedef struct axis_copy {
  int64_t outer, inner;
  int64_t src_n, src_at, step;
  int64_t dst_n, dst_at;
  int64_t count;
} axis_copy;

static void copy_along_axis(const axis_copy *c, const double *src, double *dst) {
  for (int64_t o = 0; o < c->outer; o++)
    for (int64_t i = 0; i < c->count; i++) {
      const double *s = src + (o * c->src_n + c->src_at + i * c->step) * c->inner;
      double *d = dst + (o * c->dst_n + c->dst_at + i) * c->inner;
      if (c->inner) memcpy(d, s, sizeof(double) * (size_t)c->inner);
    }
}

/* x's shape with dim `axis` set to n. */
static void shape_with(const ir_tensor *x, int32_t axis, int64_t n, int64_t *shape) {
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->rank);
  shape[axis] = n;
}

static bool eval_slice(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  int64_t start, end, step = ir_get_int(ip->g, id, "step"), shape[INTERP_MAX_RANK];
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !eval_dim_attr(ip, id, "start", &start) ||
      !eval_dim_attr(ip, id, "end", &end))
    return false;
  int64_t n = x->shape[axis];
  if (step < 1) return fail(ip, id, "step %lld is not positive", (long long)step);
  if (!(0 <= start && start <= end && end <= n))
    return fail(ip, id, "[%lld, %lld) is not a range within dim %d of size %lld", (long long)start,
                (long long)end, axis, (long long)n);
  int64_t count = (end - start + step - 1) / step;
  shape_with(x, axis, count, shape);
  if (!alloc_result(ip, id, 0, x->rank, shape, out)) return false;
  axis_copy c = {0, 0, n, start, step, count, 0, count};
  around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
  copy_along_axis(&c, x->data, out->data);
  return true;
}

/* A run-time index clamped to [0, hi]. */
static bool clamped_index(interp *ip, ir_opid id, const ir_tensor *t, int64_t hi, int64_t *v) {
  if (t->numel != 1) return fail(ip, id, "the index must be a scalar, it has %lld elements", (long long)t->numel);
  double x = t->data[0];
  if (isnan(x)) return fail(ip, id, "the index is NaN");
  *v = x <= 0 ? 0 : x >= (double)hi ? hi : (int64_t)x;
  return true;
}

static bool eval_dynamic_slice(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  int64_t size, at, shape[INTERP_MAX_RANK];
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !eval_dim_attr(ip, id, "size", &size))
    return false;
  int64_t n = x->shape[axis];
  if (size < 0 || size > n)
    return fail(ip, id, "size %lld does not fit dim %d of size %lld", (long long)size, axis, (long long)n);
  if (!clamped_index(ip, id, &in[1], n - size, &at)) return false;
  shape_with(x, axis, size, shape);
  if (!alloc_result(ip, id, 0, x->rank, shape, out)) return false;
  axis_copy c = {0, 0, n, at, 1, size, 0, size};
  around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
  copy_along_axis(&c, x->data, out->data);
  return true;
}

static bool eval_dynamic_update_slice(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0], *u = &in[1];
  int32_t axis;
  int64_t at;
  if (!axis_attr(ip, id, "axis", x->rank, &axis)) return false;
  int64_t n = x->shape[axis], size = u->rank == x->rank ? u->shape[axis] : -1;
  bool fits = size >= 0 && size <= n;
  for (int32_t d = 0; fits && d < x->rank; d++) fits = d == axis || u->shape[d] == x->shape[d];
  if (!fits) return fail(ip, id, "the update does not fit into the operand along axis %d", axis);
  if (!clamped_index(ip, id, &in[2], n - size, &at)) return false;
  if (!alloc_result(ip, id, 0, x->rank, x->shape, out)) return false;
  if (x->numel) memcpy(out->data, x->data, sizeof(double) * (size_t)x->numel);
  axis_copy c = {0, 0, size, 0, 1, n, at, size};
  around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
  copy_along_axis(&c, u->data, out->data);
  return true;
}

static bool eval_concat(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  int32_t n_in = ir_o(ip->g, id)->n_in, axis;
  const ir_tensor *x = &in[0];
  if (!axis_attr(ip, id, "axis", x->rank, &axis)) return false;
  int64_t total = 0, shape[INTERP_MAX_RANK];
  for (int32_t k = 0; k < n_in; k++) {
    bool match = in[k].rank == x->rank;
    for (int32_t d = 0; match && d < x->rank; d++) match = d == axis || in[k].shape[d] == x->shape[d];
    if (!match) return fail(ip, id, "operand %d does not match operand 0 outside axis %d", k, axis);
    total += in[k].shape[axis];
  }
  shape_with(x, axis, total, shape);
  if (!alloc_result(ip, id, 0, x->rank, shape, out)) return false;
  int64_t at = 0;
  for (int32_t k = 0; k < n_in; k++) {
    axis_copy c = {0, 0, in[k].shape[axis], 0, 1, total, at, in[k].shape[axis]};
    around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
    copy_along_axis(&c, in[k].data, out->data);
    at += in[k].shape[axis];
  }
  return true;
}

static bool eval_split(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  const ir_attr *sizes = ir_get_attr(ip->g, id, "sizes");
  int32_t axis, n_out = ir_o(ip->g, id)->n_out;
  if (!axis_attr(ip, id, "axis", x->rank, &axis)) return false;
  if (!sizes->present || sizes->u.dims.n != n_out)
    return fail(ip, id, "'sizes' must have one entry per result (%d)", n_out);
  int64_t n = x->shape[axis], at = 0, shape[INTERP_MAX_RANK];
  for (int32_t k = 0; k < n_out; k++) {
    int64_t size;
    char what[32];
    snprintf(what, sizeof what, "size %d", k);
    if (!eval_dim(ip, id, sizes->u.dims.v[k], what, &size)) return false;
    if (size < 0 || size > n - at)
      return fail(ip, id, "size %d (%lld) does not fit the %lld elements left of dim %d", k,
                  (long long)size, (long long)(n - at), axis);
    shape_with(x, axis, size, shape);
    if (!alloc_result(ip, id, k, x->rank, shape, &out[k])) return false;
    axis_copy c = {0, 0, n, at, 1, size, 0, size};
    around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
    copy_along_axis(&c, x->data, out[k].data);
    at += size;
  }
  if (at != n) return fail(ip, id, "sizes sum to %lld but dim %d is %lld", (long long)at, axis, (long long)n);
  return true;
}

static bool eval_broadcast(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  ir_val xv = ir_o(ip->g, id)->in[0];
  if (!alloc_result(ip, id, 0, 0, NULL, out)) return false;
  int32_t off = out->rank - x->rank;
  if (off < 0) return fail(ip, id, "cannot broadcast to a lower rank");
  for (int32_t d = 0; d < x->rank; d++)
    if (x->shape[d] != out->shape[off + d] && !declared_one(ip, xv, d))
      return fail(ip, id, "operand dim %d is %lld, cannot broadcast to %lld", d,
                  (long long)x->shape[d], (long long)out->shape[off + d]);
  odometer o;
  odo_init(&o, out->rank, out->shape);
  broadcast_strides(x, x->rank, out->rank, out->shape, o.stride[0]);
  for (int64_t e = 0; e < out->numel; e++, odo_next(&o)) out->data[e] = x->data[o.off[0]];
  return true;
}

static bool eval_gather(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *table = &in[0], *idx = &in[1];
  int32_t axis;
  if (!axis_attr(ip, id, "axis", table->rank, &axis)) return false;
  int32_t rank = table->rank - 1 + idx->rank;
  if (rank > INTERP_MAX_RANK) return fail(ip, id, "result rank %d is too large", rank);
  int64_t shape[INTERP_MAX_RANK], n = table->shape[axis];
  memcpy(shape, table->shape, sizeof(int64_t) * (size_t)axis);
  memcpy(shape + axis, idx->shape, sizeof(int64_t) * (size_t)idx->rank);
  memcpy(shape + axis + idx->rank, table->shape + axis + 1,
         sizeof(int64_t) * (size_t)(table->rank - axis - 1));
  for (int64_t j = 0; j < idx->numel; j++)
    if (!(idx->data[j] >= 0 && idx->data[j] < (double)n))
      return fail(ip, id, "index %g at position %lld is out of range [0, %lld)", idx->data[j],
                  (long long)j, (long long)n);
  if (!alloc_result(ip, id, 0, rank, shape, out)) return false;
  int64_t outer, inner;
  around_axis(table->shape, table->rank, axis, &outer, &inner);
  for (int64_t j = 0; j < idx->numel; j++) {
    axis_copy c = {outer, inner, n, (int64_t)idx->data[j], 1, idx->numel, j, 1};
    copy_along_axis(&c, table->data, out->data);
  }
  return true;
}

static bool eval_reverse(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !alloc_result(ip, id, 0, x->rank, x->shape, out))
    return false;
  int64_t outer, inner, n = x->shape[axis];
  around_axis(x->shape, x->rank, axis, &outer, &inner);
  for (int64_t i = 0; i < n; i++) {
    axis_copy c = {outer, inner, n, n - 1 - i, 1, n, i, 1};
    copy_along_axis(&c, x->data, out->data);
  }
  return true;
}

static bool eval_reverse_sequence(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0], *len = &in[1];
  int32_t seq, batch;
  if (!axis_attr(ip, id, "seq_axis", x->rank, &seq) || !axis_attr(ip, id, "batch_axis", x->rank, &batch))
    return false;
  if (seq == batch) return fail(ip, id, "seq_axis and batch_axis are both %d", seq);
  int64_t n = x->shape[seq];
  if (len->numel != x->shape[batch])
    return fail(ip, id, "%lld lengths for a batch dim of %lld", (long long)len->numel,
                (long long)x->shape[batch]);
  for (int64_t b = 0; b < len->numel; b++)
    if (!(len->data[b] >= 0 && len->data[b] <= (double)n))
      return fail(ip, id, "lengths[%lld] = %g is outside [0, %lld]", (long long)b, len->data[b],
                  (long long)n);
  if (!alloc_result(ip, id, 0, x->rank, x->shape, out)) return false;
  int64_t st[INTERP_MAX_RANK];
  strides_of(x->rank, x->shape, st);
  odometer o;
  odo_init(&o, x->rank, x->shape);
  for (int64_t e = 0; e < x->numel; e++, odo_next(&o)) {
    int64_t l = (int64_t)len->data[o.idx[batch]], s = o.idx[seq];
    int64_t from = s < l ? l - 1 - s : s;
    out->data[e] = x->data[e + (from - s) * st[seq]];
  }
  return true;
}

static bool eval_pad(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *x = &in[0];
  int32_t axis;
  int64_t lo, hi, shape[INTERP_MAX_RANK];
  if (!axis_attr(ip, id, "axis", x->rank, &axis) || !eval_dim_attr(ip, id, "low", &lo) ||
      !eval_dim_attr(ip, id, "high", &hi))
    return false;
  int64_t n = x->shape[axis];
  if (lo < 0 || hi < 0 || lo > ip->max_elements || hi > ip->max_elements)
    return fail(ip, id, "low %lld and high %lld must be in [0, %lld]", (long long)lo, (long long)hi,
                (long long)ip->max_elements);
  shape_with(x, axis, n + lo + hi, shape);
  if (!alloc_result(ip, id, 0, x->rank, shape, out)) return false;
  double value = ir_get_float(ip->g, id, "value");
  for (int64_t e = 0; e < out->numel; e++) out->data[e] = value;
  axis_copy c = {0, 0, n, 0, 1, n + lo + hi, lo, n};
  around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
  copy_along_axis(&c, x->data, out->data);
  return true;
}

/* ---- attention ------------------------------------------------------------------- */

typedef struct attn_mask {
  int64_t kind;
  int64_t shift; /* Tk - Tq: queries are the last Tq positions of the keys */
  int64_t window;
} attn_mask;

static bool key_visible(const attn_mask *m, int64_t i, int64_t j, double length) {
  bool causal = j <= i + m->shift;
  switch (m->kind) {
  case IR_MASK_CAUSAL: return causal;
  case IR_MASK_PADDING: return (double)j < length;
  case IR_MASK_WINDOW: return causal && i + m->shift - j < m->window;
  case IR_MASK_PREFIX: return (double)j < length || causal;
  case IR_MASK_CAUSAL_PADDING: return (double)j < length && causal;
  default: return true;
  }
}

/* One query row: softmax over the visible keys' scores, times v. */
static void attend_row(const double *q, const double *k, const double *v, double *y, int64_t tk,
                       int64_t d, int64_t dv, double scale, const bool *visible, double *score) {
  double m = -INFINITY, sum = 0;
  bool any = false;
  for (int64_t j = 0; j < tk; j++) {
    if (!visible[j]) continue;
    double s = 0;
    for (int64_t c = 0; c < d; c++) s += q[c] * k[j * d + c];
    score[j] = s * scale;
    m = any ? nan_max(m, score[j]) : score[j];
    any = true;
  }
  for (int64_t c = 0; c < dv; c++) y[c] = 0;
  if (!any) return; /* every key masked: the row is 0 */
  for (int64_t j = 0; j < tk; j++) {
    if (!visible[j]) continue;
    double p = exp(score[j] - m);
    sum += p;
    for (int64_t c = 0; c < dv; c++) y[c] += p * v[j * dv + c];
  }
  for (int64_t c = 0; c < dv; c++) y[c] /= sum;
}

static bool attention_shapes(interp *ip, ir_opid id, const ir_tensor *in, int64_t *shape) {
  const ir_tensor *q = &in[0], *k = &in[1], *v = &in[2];
  int32_t r = q->rank;
  if (r < 2 || k->rank != r || v->rank != r) return fail(ip, id, "q, k, v need the same rank >= 2");
  for (int32_t d = 0; d < r - 2; d++)
    if (k->shape[d] != q->shape[d] || v->shape[d] != q->shape[d])
      return fail(ip, id, "leading dim %d differs: q %lld, k %lld, v %lld", d, (long long)q->shape[d],
                  (long long)k->shape[d], (long long)v->shape[d]);
  if (k->shape[r - 1] != q->shape[r - 1])
    return fail(ip, id, "head dims differ: q %lld, k %lld", (long long)q->shape[r - 1],
                (long long)k->shape[r - 1]);
  if (v->shape[r - 2] != k->shape[r - 2])
    return fail(ip, id, "key lengths differ: k %lld, v %lld", (long long)k->shape[r - 2],
                (long long)v->shape[r - 2]);
  memcpy(shape, q->shape, sizeof(int64_t) * (size_t)r);
  shape[r - 1] = v->shape[r - 1];
  return true;
}

static bool eval_attention(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_tensor *q = &in[0], *k = &in[1], *v = &in[2];
  attn_mask mask = {ir_get_int(ip->g, id, "mask"), 0, ir_get_int(ip->g, id, "window")};
  bool uses_lengths = ir_mask_uses_lengths(mask.kind);
  int64_t shape[INTERP_MAX_RANK];
  if (mask.kind < IR_MASK_NONE || mask.kind > IR_MASK_CAUSAL_PADDING)
    return fail(ip, id, "unknown mask kind %lld", (long long)mask.kind);
  if (!attention_shapes(ip, id, in, shape)) return false;
  int32_t r = q->rank;
  int64_t tq = q->shape[r - 2], tk = k->shape[r - 2], d = q->shape[r - 1], dv = v->shape[r - 1];
  const ir_tensor *lengths = NULL;
  if (uses_lengths) {
    if (ir_o(ip->g, id)->n_in < 4 || r < 3)
      return fail(ip, id, "padding, prefix and causal_padding masks need lengths over a batch dim");
    lengths = &in[3];
    if (lengths->numel != q->shape[0])
      return fail(ip, id, "%lld lengths for a first dim of %lld", (long long)lengths->numel,
                  (long long)q->shape[0]);
  }
  if (!alloc_result(ip, id, 0, r, shape, out)) return false;
  mask.shift = tk - tq;
  int64_t batches = 1, per_batch_0 = 1;
  for (int32_t i = 0; i < r - 2; i++) batches *= q->shape[i];
  for (int32_t i = 1; i < r - 2; i++) per_batch_0 *= q->shape[i];
  bool *visible = ir_xcalloc((size_t)tk + 1, sizeof(bool));
  double *score = ir_xcalloc((size_t)tk + 1, sizeof(double));
  double scale = ir_get_float(ip->g, id, "scale");
  for (int64_t bi = 0; bi < batches && tq > 0; bi++) {
    double length = lengths ? lengths->data[bi / per_batch_0] : 0;
    for (int64_t i = 0; i < tq; i++) {
      for (int64_t j = 0; j < tk; j++) visible[j] = key_visible(&mask, i, j, length);
      attend_row(q->data + (bi * tq + i) * d, k->data + bi * tk * d, v->data + bi * tk * dv,
                 out->data + (bi * tq + i) * dv, tk, d, dv, scale, visible, score);
    }
  }
  free(visible);
  free(score);
  return true;
}

/* ---- blocks and scan ------------------------------------------------------------- */

static bool run_block(interp *ip, ir_blockid b, ir_opid *yield);

static void env_release(interp *ip, ir_val v) {
  slot *s = &ip->env[v];
  if (s->live && !s->borrowed) ir_tensor_free(&s->t);
  memset(s, 0, sizeof *s);
}

static void env_set(interp *ip, ir_val v, ir_tensor t, bool borrowed) {
  env_release(ip, v);
  ip->env[v] = (slot){t, true, borrowed};
}

/* Free everything block b defined (arguments, results, nested regions). */
static void release_block(interp *ip, ir_blockid b) {
  const ir_block *blk = ir_b(ip->g, b);
  for (int32_t i = 0; i < blk->n_args; i++) env_release(ip, blk->args[i]);
  for (ir_opid op = blk->first; op != IR_NONE; op = ir_o(ip->g, op)->next) {
    const ir_op *o = ir_o(ip->g, op);
    for (int32_t i = 0; i < o->n_out; i++) env_release(ip, o->out[i]);
    for (int32_t r = 0; r < o->n_regions; r++) release_block(ip, o->regions[r]);
  }
}

/* The parts of a scan op, read and checked once per evaluation. */
typedef struct scan_plan {
  int32_t n_carry, n_xs, n_inv, n_ys;
  int32_t axis;
  bool reverse;
  int64_t length;
  ir_blockid body;
  ir_opid yield;
} scan_plan;

static bool scan_plan_read(interp *ip, ir_opid id, const ir_tensor *in, scan_plan *p) {
  const ir_op *op = ir_o(ip->g, id);
  int64_t nc = ir_get_int(ip->g, id, "carries"), nx = ir_get_int(ip->g, id, "xs");
  int64_t axis = ir_get_int(ip->g, id, "axis");
  if (nc < 0 || nx < 0 || nc + nx > op->n_in || nc > op->n_out)
    return fail(ip, id, "carries = %lld and xs = %lld do not fit the operands and results",
                (long long)nc, (long long)nx);
  if (axis < 0 || axis >= INTERP_MAX_RANK) return fail(ip, id, "axis %lld is out of range", (long long)axis);
  p->n_carry = (int32_t)nc;
  p->n_xs = (int32_t)nx;
  p->n_inv = op->n_in - p->n_carry - p->n_xs;
  p->n_ys = op->n_out - p->n_carry;
  p->axis = (int32_t)axis;
  p->reverse = ir_get_int(ip->g, id, "reverse");
  p->body = op->regions[0];
  if (!eval_dim_attr(ip, id, "length", &p->length)) return false;
  if (p->length < 0 || p->length > ip->max_elements)
    return fail(ip, id, "length %lld is outside [0, %lld]", (long long)p->length,
                (long long)ip->max_elements);
  if (ir_b(ip->g, p->body)->n_args != 1 + op->n_in)
    return fail(ip, id, "the body has %d arguments, expected %d", ir_b(ip->g, p->body)->n_args,
                1 + op->n_in);
  p->yield = ir_block_terminator(ip->g, p->body);
  if (p->yield == IR_NONE || ir_o(ip->g, p->yield)->n_in != op->n_out)
    return fail(ip, id, "the body must end with a yield of %d values", op->n_out);
  for (int32_t i = 0; i < p->n_xs; i++) {
    const ir_tensor *x = &in[p->n_carry + i];
    if (p->axis >= x->rank || x->shape[p->axis] != p->length)
      return fail(ip, id, "per-step input %d has no axis %d of length %lld", i, p->axis,
                  (long long)p->length);
  }
  return true;
}

/* The slice of x at position t along axis (the axis removed). */
static void step_slice(const ir_tensor *x, int32_t axis, int64_t t, ir_tensor *s) {
  int64_t shape[INTERP_MAX_RANK];
  int32_t rank = drop_axis(x, axis, false, shape);
  bool ok = ir_tensor_alloc(s, x->dtype, rank, shape, INT64_MAX, NULL);
  IR_ASSERT(ok); /* no larger than x */
  axis_copy c = {0, 0, x->shape[axis], t, 1, 1, 0, 1};
  around_axis(x->shape, x->rank, axis, &c.outer, &c.inner);
  copy_along_axis(&c, x->data, s->data);
}

/* Bind symbols of the body arguments' types from the tensors they will get
 * (an argument may introduce a symbol of its own) and check them. Only
 * shapes matter here, so the arguments are data-less views. */
static bool scan_unify_args(interp *ip, ir_opid id, const scan_plan *p, const ir_tensor *in) {
  const ir_block *body = ir_b(ip->g, p->body);
  int32_t n = body->n_args;
  ir_tensor *views = ir_xcalloc((size_t)n, sizeof(ir_tensor));
  int64_t *shapes = ir_xcalloc((size_t)n * INTERP_MAX_RANK, sizeof(int64_t));
  views[0] = (ir_tensor){IR_I64, 0, shapes, 1, NULL};
  for (int32_t i = 1; i < n; i++) {
    const ir_tensor *src = &in[i - 1];
    views[i] = *src;
    if (i - 1 >= p->n_carry && i - 1 < p->n_carry + p->n_xs) {
      views[i].shape = shapes + (size_t)i * INTERP_MAX_RANK;
      views[i].rank = drop_axis(src, p->axis, false, views[i].shape);
    }
  }
  bool ok = true;
  for (int32_t pass = 0; ok && pass < 2; pass++)
    for (int32_t i = 0; ok && i < n; i++) {
      char what[48];
      snprintf(what, sizeof what, "body argument %d", i);
      ir_type ty = ir_vtype(ip->g, body->args[i]);
      ok = pass == 0 ? unify_symbols(ip, id, what, ty, &views[i])
                     : unify_check(ip, id, what, ty, &views[i]);
    }
  free(views);
  free(shapes);
  return ok;
}

/* Bind the body arguments for step t: the index, the current carries and
 * the invariants (borrowed), the step's slices (owned). */
static void scan_bind_step(interp *ip, const scan_plan *p, const ir_tensor *in, ir_tensor *carry,
                           int64_t t) {
  const ir_val *args = ir_b(ip->g, p->body)->args;
  ir_tensor index;
  bool ok = ir_tensor_alloc(&index, IR_I64, 0, NULL, 1, NULL);
  IR_ASSERT(ok);
  index.data[0] = (double)t;
  env_set(ip, args[0], index, false);
  for (int32_t c = 0; c < p->n_carry; c++) env_set(ip, args[1 + c], carry[c], true);
  for (int32_t i = 0; i < p->n_xs; i++) {
    ir_tensor s;
    step_slice(&in[p->n_carry + i], p->axis, t, &s);
    env_set(ip, args[1 + p->n_carry + i], s, false);
  }
  for (int32_t i = 0; i < p->n_inv; i++)
    env_set(ip, args[1 + p->n_carry + p->n_xs + i], in[p->n_carry + p->n_xs + i], true);
}

/* After a step: outputs are written at position t, then the new carries
 * replace the old ones. Both read the yield's operands before the old
 * carries go, since the body may pass a carry argument straight through. */
static bool scan_take_step(interp *ip, ir_opid id, const scan_plan *p, ir_tensor *carry,
                           ir_tensor *out, int64_t t) {
  const ir_val *ys = ir_o(ip->g, p->yield)->in;
  for (int32_t i = 0; i < p->n_carry + p->n_ys; i++)
    if (ys[i] < 0 || ys[i] >= ip->g->n_vals || !ip->env[ys[i]].live)
      return fail(ip, id, "yield operand %d is not defined", i);
  for (int32_t c = 0; c < p->n_carry; c++) {
    const ir_tensor *y = &ip->env[ys[c]].t;
    if (y->dtype != carry[c].dtype || !same_shape(y, carry[c].rank, carry[c].shape))
      return fail(ip, id, "carry %d changes its type or shape in the body", c);
  }
  for (int32_t k = 0; k < p->n_ys; k++) {
    const ir_tensor *y = &ip->env[ys[p->n_carry + k]].t;
    ir_tensor *stacked = &out[p->n_carry + k];
    int64_t shape[INTERP_MAX_RANK];
    int32_t rank = drop_axis(stacked, p->axis, false, shape);
    if (!same_shape(y, rank, shape))
      return fail(ip, id, "per-step output %d does not match the stacked result", k);
    axis_copy c = {0, 0, 1, 0, 1, p->length, t, 1};
    around_axis(stacked->shape, stacked->rank, p->axis, &c.outer, &c.inner);
    copy_along_axis(&c, y->data, stacked->data);
  }
  ir_tensor *next = ir_xcalloc((size_t)p->n_carry + 1, sizeof(ir_tensor));
  for (int32_t c = 0; c < p->n_carry; c++) tensor_copy(&next[c], &ip->env[ys[c]].t);
  for (int32_t c = 0; c < p->n_carry; c++) {
    ir_tensor_free(&carry[c]);
    carry[c] = next[c];
  }
  free(next);
  return true;
}

/* Results: final carries (shaped like the initial ones), then the stacked
 * outputs from their declared types, `length` along `axis`. */
static bool scan_alloc_results(interp *ip, ir_opid id, const scan_plan *p, const ir_tensor *in,
                               ir_tensor *out) {
  for (int32_t c = 0; c < p->n_carry; c++)
    if (!alloc_result(ip, id, c, in[c].rank, in[c].shape, &out[c])) return false;
  for (int32_t k = 0; k < p->n_ys; k++) {
    ir_tensor *s = &out[p->n_carry + k];
    if (!alloc_result(ip, id, p->n_carry + k, 0, NULL, s)) return false;
    if (p->axis >= s->rank || s->shape[p->axis] != p->length)
      return fail(ip, id, "result %d has no axis %d of length %lld", p->n_carry + k, p->axis,
                  (long long)p->length);
  }
  return true;
}

/*
 * scan: operands are `carries` initial carries, `xs` per-step inputs and
 * loop invariants. Step t runs the body with (t as an i64 scalar, carries,
 * each x's slice at t along `axis`, invariants); its yield gives the new
 * carries and the per-step outputs, which are stored at position t along
 * `axis` of the stacked results. t runs 0..L-1, or L-1..0 when `reverse`.
 * L = 0 gives the initial carries and empty stacked outputs.
 */
static bool eval_scan(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  if (!ip->env) return fail(ip, id, "ops with regions need a whole graph (ir_interp_run)");
  scan_plan p;
  if (!scan_plan_read(ip, id, in, &p) || !scan_unify_args(ip, id, &p, in) ||
      !scan_alloc_results(ip, id, &p, in, out))
    return false;
  ir_tensor *carry = ir_xcalloc((size_t)p.n_carry + 1, sizeof(ir_tensor));
  for (int32_t c = 0; c < p.n_carry; c++) tensor_copy(&carry[c], &in[c]);
  bool ok = true;
  for (int64_t s = 0; ok && s < p.length; s++) {
    int64_t t = p.reverse ? p.length - 1 - s : s;
    ir_opid y;
    if (ip->steps_left-- <= 0) {
      ok = fail(ip, id, "more than %lld scan steps in one run (nested scans multiply)",
                (long long)(ip->max_elements / STEP_BUDGET_DIVISOR));
      break;
    }
    scan_bind_step(ip, &p, in, carry, t);
    ok = run_block(ip, p.body, &y) && scan_take_step(ip, id, &p, carry, out, t);
    release_block(ip, p.body);
    if (!ok && ip->err) {
      const ir_op *op = ir_o(ip->g, id);
      const char *name = op->n_out > 0 ? ir_v(ip->g, op->out[0])->name : NULL;
      ir_buf_printf(ip->err, " (in step %lld of scan%s%s%s)", (long long)t, name ? " '" : "",
                    name ? name : "", name ? "'" : "");
    }
  }
  for (int32_t c = 0; c < p.n_carry; c++) {
    if (ok && out[c].numel) memcpy(out[c].data, carry[c].data, sizeof(double) * (size_t)out[c].numel);
    ir_tensor_free(&carry[c]);
  }
  free(carry);
  return ok;
}

/* Runs op's isolated region with its arguments bound to the operands
 * (borrowed like scan invariants); the results are copies of what it
 * yields. `what` names the op in an error's context. */
static bool run_isolated_region(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out, const char *what) {
  if (!ip->env) return fail(ip, id, "ops with regions need a whole graph (ir_interp_run)");
  const ir_op *op = ir_o(ip->g, id);
  ir_blockid body = op->regions[0];
  const ir_block *blk = ir_b(ip->g, body);
  if (blk->n_args != op->n_in)
    return fail(ip, id, "the region has %d arguments, expected %d", blk->n_args, op->n_in);
  for (int32_t i = 0; i < op->n_in; i++) env_set(ip, blk->args[i], in[i], true);
  ir_opid y = IR_NONE;
  bool ok = run_block(ip, body, &y);
  if (ok && ir_o(ip->g, y)->n_in != op->n_out)
    ok = fail(ip, id, "the region yields %d values for %d results", ir_o(ip->g, y)->n_in, op->n_out);
  for (int32_t r = 0; ok && r < op->n_out; r++) {
    ir_val v = ir_o(ip->g, y)->in[r];
    if (v < 0 || v >= ip->g->n_vals || !ip->env[v].live) {
      ok = fail(ip, id, "yield operand %d is not defined", r);
      break;
    }
    const ir_tensor *t = &ip->env[v].t;
    ok = alloc_result(ip, id, r, t->rank, t->shape, &out[r]);
    if (ok && out[r].numel) memcpy(out[r].data, t->data, sizeof(double) * (size_t)out[r].numel);
  }
  release_block(ip, body);
  if (!ok && ip->err) ir_buf_printf(ip->err, " (in %s)", what);
  return ok;
}

/*
 * init: the region runs once with its arguments bound to the operands (the
 * graph's parameters). Compiled code runs it once when the model opens;
 * the interpreter simply evaluates it where it stands, so a graph means the
 * same with or without const-hoist.
 */
static bool eval_init(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  return run_isolated_region(ip, id, in, out, "init");
}

/* fused: a kernel group means exactly what its ops mean, in order (every
 * op of the region rounds to its own result type as it would outside). */
static bool eval_fused(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  return run_isolated_region(ip, id, in, out, "fused group");
}

/* ---- dispatch -------------------------------------------------------------------- */

typedef bool (*eval_fn)(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out);

static const eval_fn kernels[IR_OP_COUNT] = {
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  [IR_OP_##id] = eval_##eval,
#include "ops.def"
};

/* Arity checks, then the kernel, then rounding on store. On failure every
 * result is freed. */
static bool eval_checked(interp *ip, ir_opid id, const ir_tensor *in, ir_tensor *out) {
  const ir_op *op = ir_o(ip->g, id);
  const ir_opinfo *info = ir_opinfo_of(op->kind);
  int32_t n_out = op->n_out;
  if (op->n_in < info->min_in || (info->max_in >= 0 && op->n_in > info->max_in))
    return fail(ip, id, "has %d operands", op->n_in);
  if ((info->n_out >= 0 && n_out != info->n_out) || op->n_regions != info->n_regions)
    return fail(ip, id, "has %d results and %d regions", n_out, op->n_regions);
  bool ok = kernels[op->kind](ip, id, in, out);
  for (int32_t r = 0; ok && r < n_out; r++) ok = store_rounded(ip, id, r, &out[r]);
  if (!ok)
    for (int32_t r = 0; r < n_out; r++) ir_tensor_free(&out[r]);
  return ok;
}

static bool run_op(interp *ip, ir_opid id) {
  const ir_op *op = ir_o(ip->g, id);
  int32_t n_in = op->n_in, n_out = op->n_out;
  ir_tensor *in = ir_xcalloc((size_t)n_in + 1, sizeof(ir_tensor));
  ir_tensor *out = ir_xcalloc((size_t)n_out + 1, sizeof(ir_tensor));
  bool ok = true;
  for (int32_t i = 0; ok && i < n_in; i++) {
    ir_val v = op->in[i];
    if (v < 0 || v >= ip->g->n_vals || !ip->env[v].live)
      ok = fail(ip, id, "operand %d is not defined when the op runs", i);
    else
      in[i] = ip->env[v].t; /* a view: kernels only read operands */
  }
  ok = ok && eval_checked(ip, id, in, out);
  for (int32_t r = 0; ok && r < n_out; r++) env_set(ip, ir_o(ip->g, id)->out[r], out[r], false);
  free(in);
  free(out);
  return ok;
}

/* Run the ops of block b up to its yield. */
static bool run_block(interp *ip, ir_blockid b, ir_opid *yield) {
  for (ir_opid op = ir_b(ip->g, b)->first; op != IR_NONE; op = ir_o(ip->g, op)->next) {
    if (ir_o(ip->g, op)->kind == IR_OP_YIELD) {
      *yield = op;
      return true;
    }
    if (!run_op(ip, op)) return false;
  }
  return fail(ip, IR_NONE, "a block has no yield");
}

/* Copy an argument into the environment, rounded to its dtype; an integer
 * argument must hold integers. */
static bool bind_argument(interp *ip, ir_val v, const char *what, const ir_tensor *t) {
  ir_tensor c;
  tensor_copy(&c, t);
  for (int64_t e = 0; e < c.numel; e++) {
    double x = c.data[e];
    const char *problem = ir_dtype_is_int(c.dtype) ? int_store_problem(c.dtype, x) : NULL;
    if (!problem && ir_dtype_is_int(c.dtype) && x != trunc(x)) problem = "not an integer";
    if (problem) {
      ir_tensor_free(&c);
      return fail(ip, IR_NONE, "%s element %lld: %g: %s", what, (long long)e, x, problem);
    }
    c.data[e] = ir_round_to_dtype(c.dtype, x);
  }
  env_set(ip, v, c, false);
  return true;
}

static void argument_name(const ir_graph *g, ir_val v, int32_t i, char *buf, size_t n) {
  const char *name = ir_v(g, v)->name;
  if (name)
    snprintf(buf, n, "argument '%s'", name);
  else
    snprintf(buf, n, "argument %d", i);
}

/* Binds every symbol of the arguments' declared types (pass 1) and checks
 * every dim against the actual sizes (pass 2). */
static bool unify_arguments(interp *ip, const ir_tensor *args, int32_t n_args) {
  const ir_block *body = ir_b(ip->g, ip->g->body);
  if (n_args != body->n_args)
    return fail(ip, IR_NONE, "the graph takes %d arguments, %d were given", body->n_args, n_args);
  char what[128];
  for (int32_t pass = 0; pass < 2; pass++)
    for (int32_t i = 0; i < n_args; i++) {
      argument_name(ip->g, body->args[i], i, what, sizeof what);
      ir_type ty = ir_vtype(ip->g, body->args[i]);
      if (pass == 0 ? !unify_symbols(ip, IR_NONE, what, ty, &args[i])
                    : !unify_check(ip, IR_NONE, what, ty, &args[i]))
        return false;
    }
  return true;
}

bool ir_interp_bind_args(ir_graph *g, const ir_tensor *args, int32_t n_args,
                         const ir_interp_opts *opts, ir_dim_binding **out, int32_t *n_out,
                         ir_buf *err) {
  interp ip;
  interp_init(&ip, g, opts, err);
  bool ok = unify_arguments(&ip, args, n_args);
  *out = ip.binds;
  *n_out = ip.n_binds;
  if (!ok) {
    free(ip.binds);
    *out = NULL;
    *n_out = 0;
  }
  return ok;
}

static bool bind_arguments(interp *ip, const ir_tensor *args, int32_t n_args) {
  const ir_block *body = ir_b(ip->g, ip->g->body);
  if (!unify_arguments(ip, args, n_args)) return false;
  char what[128];
  for (int32_t i = 0; i < n_args; i++) {
    argument_name(ip->g, body->args[i], i, what, sizeof what);
    if (!bind_argument(ip, body->args[i], what, &args[i])) return false;
  }
  return true;
}

bool ir_interp_run(ir_graph *g, const ir_tensor *args, int32_t n_args, ir_tensor *outs,
                   const ir_interp_opts *opts, ir_buf *err) {
  for (int32_t i = 0; i < g->n_outputs; i++) memset(&outs[i], 0, sizeof outs[i]);
  interp ip;
  interp_init(&ip, g, opts, err);
  ip.env = ir_xcalloc((size_t)g->n_vals + 1, sizeof(slot));
  ir_opid y = IR_NONE;
  bool ok = bind_arguments(&ip, args, n_args) && run_block(&ip, g->body, &y);
  if (ok && ir_o(g, y)->n_in != g->n_outputs)
    ok = fail(&ip, IR_NONE, "the graph yields %d values for %d outputs", ir_o(g, y)->n_in,
              g->n_outputs);
  for (int32_t i = 0; ok && i < g->n_outputs; i++) {
    ir_val v = ir_o(g, y)->in[i];
    if (v < 0 || v >= g->n_vals || !ip.env[v].live)
      ok = fail(&ip, IR_NONE, "output %d is not defined", i);
    else
      tensor_copy(&outs[i], &ip.env[v].t);
  }
  if (!ok)
    for (int32_t i = 0; i < g->n_outputs; i++) ir_tensor_free(&outs[i]);
  for (ir_val v = 0; v < g->n_vals; v++) env_release(&ip, v);
  free(ip.env);
  free(ip.binds);
  return ok;
}

bool ir_interp_eval_op(ir_graph *g, ir_opid op, const ir_tensor *ins, ir_tensor *outs,
                       const ir_interp_opts *opts, ir_buf *err) {
  const ir_op *o = ir_o(g, op);
  for (int32_t i = 0; i < o->n_out; i++) memset(&outs[i], 0, sizeof outs[i]);
  interp ip;
  interp_init(&ip, g, opts, err);
  bool ok = true;
  if (o->n_regions > 0) ok = fail(&ip, op, "ops with regions need a whole graph (ir_interp_run)");
  for (int32_t pass = 0; ok && pass < 2; pass++)
    for (int32_t i = 0; ok && i < o->n_in; i++) {
      char what[32];
      snprintf(what, sizeof what, "operand %d", i);
      ir_type ty = ir_vtype(g, o->in[i]);
      ok = pass == 0 ? unify_symbols(&ip, op, what, ty, &ins[i]) : unify_check(&ip, op, what, ty, &ins[i]);
    }
  ok = ok && eval_checked(&ip, op, ins, outs);
  free(ip.binds);
  return ok;
}
