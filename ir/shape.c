/*
 * shape.c - shape and dtype inference: the result types every op must have
 * given its operands and attributes (ir_infer_types in ir.h).
 *
 * Each op in ir/ops.def names a rule in its `shape` column; the rule
 * infer_<shape> below computes the result types, and the dispatch table is
 * generated from ops.def, so an op whose rule is missing does not compile.
 * Ops flagged IR_DECLARED (constant, iota, cast, reshape, broadcast) carry
 * their result type as the source of truth: their rule checks the declared
 * type against the operands and returns it unchanged.
 *
 * Dims are symbolic expressions (dim.h). Two dims are *provably equal* when
 * they are the same interned expression, and *provably different* when their
 * difference simplifies to a nonzero constant (T vs T+1, 64 vs 128).
 * Everything in between (B vs T) is accepted and the first operand's dim is
 * kept: DESIGN.md makes equalities the verifier cannot prove run-time checks,
 * which the interpreter and generated code perform at entry. Broadcasting
 * follows numpy (ranks right-aligned) but only a *constant* 1 expands;
 * symbolic dims never broadcast.
 *
 * Axis conventions: a single `axis` attribute must satisfy 0 <= axis < rank
 * (the frontend normalizes PyTorch's negative dims before building IR); the
 * `axes` list of reductions also accepts -rank..-1, counted from the end.
 *
 * Every error is reported once at the op's location as "<op>: <what was
 * expected>", and inference returns false; nothing here aborts on input.
 * When an op has more results than `cap` entries of `out`, only the first
 * `cap` are written and *n_out still says how many there are.
 */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct infer_ctx {
  ir_graph *g;
  ir_opid op;
  const ir_opinfo *info;
  ir_diag *d;
  ir_type *out;       /* caller's result array */
  int32_t cap;        /* its capacity */
  int32_t n_out;      /* results emitted so far */
  ir_dim *scratch;    /* dims of the result being built */
  int32_t scratch_cap;
  ir_buf text[6];     /* rotating buffers for printing types into messages */
  int32_t next_text;
} infer_ctx;

static const ir_op *cur_op(const infer_ctx *c) { return ir_o(c->g, c->op); }
static ir_type in_type(const infer_ctx *c, int32_t i) { return ir_vtype(c->g, cur_op(c)->in[i]); }
static int32_t n_in(const infer_ctx *c) { return cur_op(c)->n_in; }

/* ---- diagnostics ----------------------------------------------------------- */

static IR_PRINTF(2, 3) bool fail(infer_ctx *c, const char *fmt, ...) {
  ir_buf msg = {0};
  va_list ap;
  va_start(ap, fmt);
  ir_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  ir_error_at(c->d, cur_op(c)->loc, "%s: %s", c->info->name, msg.s);
  ir_buf_free(&msg);
  return false;
}

/* Text of a type or a dim for a message. Up to six stay valid at once. */
static ir_buf *next_text(infer_ctx *c) {
  ir_buf *b = &c->text[c->next_text];
  c->next_text = (c->next_text + 1) % 6;
  b->len = 0;
  ir_buf_puts(b, "");
  return b;
}

static const char *ty(infer_ctx *c, ir_type t) {
  ir_buf *b = next_text(c);
  ir_print_type(c->g, t, b);
  return b->s;
}

static const char *dm(infer_ctx *c, ir_dim d) {
  ir_buf *b = next_text(c);
  ir_dim_print(c->g->dims, d, b);
  return b->s;
}

/* ---- dim facts ----------------------------------------------------------- */

static bool dim_const(const infer_ctx *c, ir_dim d, int64_t *v) {
  return d != IR_DIM_INVALID && ir_dim_is_const(c->g->dims, d, v);
}

static bool dim_is_one(const infer_ctx *c, ir_dim d) {
  int64_t v;
  return dim_const(c, d, &v) && v == 1;
}

/* a - b as a constant, if the dim algebra reduces it to one. */
static bool dim_diff_const(const infer_ctx *c, ir_dim a, ir_dim b, int64_t *v) {
  if (a == b) {
    *v = 0;
    return true;
  }
  return dim_const(c, ir_dim_sub(c->g->dims, a, b), v);
}

static bool dims_differ(const infer_ctx *c, ir_dim a, ir_dim b) {
  int64_t v;
  return dim_diff_const(c, a, b, &v) && v != 0;
}

/* True when a < b holds for every binding of the symbols (a - b is a
 * negative constant). */
static bool dim_provably_less(const infer_ctx *c, ir_dim a, ir_dim b) {
  int64_t v;
  return dim_diff_const(c, a, b, &v) && v < 0;
}

static bool dim_provably_negative(const infer_ctx *c, ir_dim d) {
  int64_t v;
  return dim_const(c, d, &v) && v < 0;
}

/* ---- building results ---------------------------------------------------- */

static ir_dim *scratch_dims(infer_ctx *c, int32_t n) {
  if (n > c->scratch_cap) ir_grow((void **)&c->scratch, &c->scratch_cap, n, sizeof(ir_dim));
  return c->scratch;
}

static void emit(infer_ctx *c, ir_type t) {
  if (c->n_out < c->cap) c->out[c->n_out] = t;
  c->n_out++;
}

/* A type the rules can read safely. */
static bool type_well_formed(const ir_graph *g, ir_type t) {
  if ((int)t.dtype < 0 || t.dtype >= IR_DTYPE_COUNT || t.rank < 0) return false;
  if (t.rank > 0 && !t.dims) return false;
  for (int32_t i = 0; i < t.rank; i++)
    if (t.dims[i] == IR_DIM_INVALID) return false;
  return true;
}

/* Emit a type from scratch dims. When the op already has a result of the
 * same type (the verifier's common case) its dims are reused, so verifying
 * a graph allocates nothing in its arena. */
static void emit_dims(infer_ctx *c, ir_dtype dt, int32_t rank, const ir_dim *dims) {
  const ir_op *o = cur_op(c);
  if (c->n_out < o->n_out) {
    ir_type have = ir_vtype(c->g, o->out[c->n_out]);
    if (type_well_formed(c->g, have) && have.dtype == dt && have.rank == rank &&
        (rank == 0 || memcmp(have.dims, dims, sizeof(ir_dim) * (size_t)rank) == 0)) {
      emit(c, have);
      return;
    }
  }
  emit(c, ir_type_make(c->g, dt, rank, dims));
}

/* ---- dtype classes --------------------------------------------------------- */

typedef enum dtclass { DT_ANY, DT_NUM, DT_FLOAT, DT_INT, DT_BOOL } dtclass;

static bool dtype_in(ir_dtype dt, dtclass k) {
  switch (k) {
  case DT_ANY: return true;
  case DT_NUM: return ir_dtype_is_float(dt) || ir_dtype_is_int(dt);
  case DT_FLOAT: return ir_dtype_is_float(dt);
  case DT_INT: return ir_dtype_is_int(dt);
  case DT_BOOL: return dt == IR_BOOL;
  }
  return false;
}

static const char *dtclass_name(dtclass k) {
  switch (k) {
  case DT_ANY: return "any";
  case DT_NUM: return "a float or integer";
  case DT_FLOAT: return "a float";
  case DT_INT: return "an integer";
  case DT_BOOL: return "a bool";
  }
  return "?";
}

static bool require_class(infer_ctx *c, const char *what, ir_type t, dtclass k) {
  if (dtype_in(t.dtype, k)) return true;
  return fail(c, "%s must have %s dtype, got %s", what, dtclass_name(k), ty(c, t));
}

static bool require_same_dtype(infer_ctx *c, const char *what, ir_type a, ir_type b) {
  if (a.dtype == b.dtype) return true;
  return fail(c, "%s dtypes differ: %s vs %s (no implicit promotion; use cast)", what,
              ty(c, a), ty(c, b));
}

/* An i32/i64 scalar, as run-time indices are. */
static bool require_index_scalar(infer_ctx *c, const char *what, ir_type t) {
  if (ir_dtype_is_int(t.dtype) && t.rank == 0) return true;
  return fail(c, "%s must be an i32 or i64 scalar, got %s", what, ty(c, t));
}

static bool require_axis(infer_ctx *c, const char *attr, int64_t axis, ir_type t) {
  if (axis >= 0 && axis < t.rank) return true;
  return fail(c, "%s %lld out of range for %s (expected 0 <= %s < %d)", attr, (long long)axis,
              ty(c, t), attr, t.rank);
}

/* Dims that must be equal without broadcasting (contraction dims, concat's
 * other dims...): only a provable difference is an error. */
static bool require_dims_match(infer_ctx *c, const char *what, ir_dim a, ir_dim b) {
  if (!dims_differ(c, a, b)) return true;
  return fail(c, "%s differ: %s vs %s", what, dm(c, a), dm(c, b));
}

/* ---- broadcasting -------------------------------------------------------- */

/* One aligned dim pair; false if they provably cannot broadcast. */
static bool broadcast_dim(const infer_ctx *c, ir_dim a, ir_dim b, ir_dim *out) {
  if (a == b || dim_is_one(c, b)) {
    *out = a;
  } else if (dim_is_one(c, a)) {
    *out = b;
  } else if (dims_differ(c, a, b)) {
    return false;
  } else {
    *out = a; /* checked at run time */
  }
  return true;
}

/* Broadcast the shapes of n types into c->scratch; *rank gets the result
 * rank. Messages print `shown` (the full operand types; matmul broadcasts
 * only its batch dims). */
static bool broadcast_shapes(infer_ctx *c, int32_t n, const ir_type *ts, const ir_type *shown,
                             int32_t *rank) {
  int32_t r = 0;
  for (int32_t i = 0; i < n; i++)
    if (ts[i].rank > r) r = ts[i].rank;
  ir_dim *dims = scratch_dims(c, r);
  for (int32_t k = 0; k < r; k++) dims[k] = ir_dim_const(c->g->dims, 1);
  for (int32_t i = 0; i < n; i++) {
    int32_t off = r - ts[i].rank;
    for (int32_t k = 0; k < ts[i].rank; k++) {
      ir_dim prev = dims[off + k];
      if (broadcast_dim(c, prev, ts[i].dims[k], &dims[off + k])) continue;
      if (n == 2)
        return fail(c, "cannot broadcast %s with %s: dim %s vs %s", ty(c, shown[0]),
                    ty(c, shown[1]), dm(c, prev), dm(c, ts[i].dims[k]));
      return fail(c, "cannot broadcast operand %d %s with the others: dim %s vs %s", i,
                  ty(c, shown[i]), dm(c, prev), dm(c, ts[i].dims[k]));
    }
  }
  *rank = r;
  return true;
}

/* ---- elementwise ------------------------------------------------------------ */

static bool infer_unary(infer_ctx *c, dtclass k) {
  ir_type x = in_type(c, 0);
  if (!require_class(c, "operand", x, k)) return false;
  emit(c, x);
  return true;
}

static bool infer_unary_num(infer_ctx *c) { return infer_unary(c, DT_NUM); }
static bool infer_unary_float(infer_ctx *c) { return infer_unary(c, DT_FLOAT); }
static bool infer_unary_bool(infer_ctx *c) { return infer_unary(c, DT_BOOL); }

/* Equal dtypes of class k (any dtype for compare), broadcast shapes. */
static bool infer_binary(infer_ctx *c, dtclass k, ir_dtype *dt, int32_t *rank) {
  ir_type ts[2] = {in_type(c, 0), in_type(c, 1)};
  if (!require_same_dtype(c, "operand", ts[0], ts[1])) return false;
  if (!require_class(c, "operands", ts[0], k)) return false;
  *dt = ts[0].dtype;
  return broadcast_shapes(c, 2, ts, ts, rank);
}

static bool infer_binary_as(infer_ctx *c, dtclass k) {
  ir_dtype dt;
  int32_t rank;
  if (!infer_binary(c, k, &dt, &rank)) return false;
  emit_dims(c, dt, rank, c->scratch);
  return true;
}

static bool infer_binary_num(infer_ctx *c) { return infer_binary_as(c, DT_NUM); }
static bool infer_binary_float(infer_ctx *c) { return infer_binary_as(c, DT_FLOAT); }
static bool infer_binary_bool(infer_ctx *c) { return infer_binary_as(c, DT_BOOL); }

static bool infer_compare(infer_ctx *c) {
  ir_dtype dt;
  int32_t rank;
  if (!infer_binary(c, DT_ANY, &dt, &rank)) return false;
  emit_dims(c, IR_BOOL, rank, c->scratch);
  return true;
}

static bool infer_select(infer_ctx *c) {
  ir_type ts[3] = {in_type(c, 0), in_type(c, 1), in_type(c, 2)};
  if (!require_class(c, "condition", ts[0], DT_BOOL)) return false;
  if (!require_same_dtype(c, "value", ts[1], ts[2])) return false;
  int32_t rank;
  if (!broadcast_shapes(c, 3, ts, ts, &rank)) return false;
  emit_dims(c, ts[1].dtype, rank, c->scratch);
  return true;
}

/* Declared result type of a declared op (checked to exist beforehand). */
static ir_type declared_type(const infer_ctx *c) { return ir_vtype(c->g, cur_op(c)->out[0]); }

static bool infer_cast(infer_ctx *c) {
  ir_type x = in_type(c, 0), r = declared_type(c);
  bool same = x.rank == r.rank;
  for (int32_t k = 0; same && k < x.rank; k++) same = x.dims[k] == r.dims[k];
  if (!same) return fail(c, "result shape of %s differs from operand %s", ty(c, r), ty(c, x));
  emit(c, r);
  return true;
}

/* ---- linear algebra and reductions ------------------------------------- */

static bool infer_matmul(infer_ctx *c) {
  ir_type a = in_type(c, 0), b = in_type(c, 1);
  if (a.rank < 2 || b.rank < 2)
    return fail(c, "operands must have rank >= 2, got %s and %s", ty(c, a), ty(c, b));
  if (!require_same_dtype(c, "operand", a, b) || !require_class(c, "operands", a, DT_NUM))
    return false;
  bool ta = ir_get_int(c->g, c->op, "transpose_a"), tb = ir_get_int(c->g, c->op, "transpose_b");
  ir_dim m = a.dims[a.rank - 2 + ta], ka = a.dims[a.rank - 1 - ta];
  ir_dim kb = b.dims[b.rank - 2 + tb], n = b.dims[b.rank - 1 - tb];
  if (!require_dims_match(c, "contraction dims", ka, kb)) return false;
  ir_type batch[2] = {{a.dtype, a.rank - 2, a.dims}, {b.dtype, b.rank - 2, b.dims}};
  ir_type full[2] = {a, b};
  int32_t rank;
  if (!broadcast_shapes(c, 2, batch, full, &rank)) return false;
  ir_dim *dims = scratch_dims(c, rank + 2);
  dims[rank] = m;
  dims[rank + 1] = n;
  emit_dims(c, a.dtype, rank + 2, dims);
  return true;
}

/* pack_rhs: b[K, N] (b[N, K] with transpose_b) -> [ceildiv(N, W), K, W]. */
static bool infer_pack_rhs(infer_ctx *c) {
  ir_type b = in_type(c, 0);
  if (b.rank != 2 || b.dtype != IR_F32) return fail(c, "operand must be an f32 matrix, got %s", ty(c, b));
  bool tb = ir_get_int(c->g, c->op, "transpose_b");
  ir_dim k = b.dims[tb], n = b.dims[!tb], *dims = scratch_dims(c, 3);
  dims[0] = ir_dim_ceildiv(c->g->dims, n, ir_dim_const(c->g->dims, IR_PACK_WIDTH));
  dims[1] = k;
  dims[2] = ir_dim_const(c->g->dims, IR_PACK_WIDTH);
  if (dims[0] == IR_DIM_INVALID) return fail(c, "panel count of %s overflows", ty(c, b));
  emit_dims(c, IR_F32, 3, dims);
  return true;
}

/* matmul_packed: a[..., M, K] x p[ceildiv(n, W), K, W] -> [..., M, n]. */
static bool infer_matmul_packed(infer_ctx *c) {
  ir_type a = in_type(c, 0), p = in_type(c, 1);
  if (a.rank < 2 || a.dtype != IR_F32) return fail(c, "operand a must be f32 of rank >= 2, got %s", ty(c, a));
  ir_dim n = ir_get_dim(c->g, c->op, "n"), w = ir_dim_const(c->g->dims, IR_PACK_WIDTH);
  if (p.rank != 3 || p.dtype != IR_F32 || dims_differ(c, p.dims[2], w))
    return fail(c, "operand b must be packed f32[P, K, %d] (pack_rhs), got %s", IR_PACK_WIDTH, ty(c, p));
  if (!require_dims_match(c, "contraction dims", a.dims[a.rank - 1], p.dims[1]) ||
      !require_dims_match(c, "panel counts (ceildiv(n, 32) and b's)", ir_dim_ceildiv(c->g->dims, n, w), p.dims[0]))
    return false;
  ir_dim *dims = scratch_dims(c, a.rank);
  memcpy(dims, a.dims, sizeof(ir_dim) * (size_t)a.rank);
  dims[a.rank - 1] = n;
  emit_dims(c, IR_F32, a.rank, dims);
  return true;
}

static bool infer_reduce(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  ir_opkind k = cur_op(c)->kind;
  dtclass need = (k == IR_OP_REDUCE_MEAN || k == IR_OP_REDUCE_LOGSUMEXP) ? DT_FLOAT : DT_NUM;
  if (!require_class(c, "operand", x, need)) return false;
  const ir_attr *axes = ir_get_attr(c->g, c->op, "axes");
  bool keep = ir_get_int(c->g, c->op, "keepdims");
  bool *reduced = ir_xcalloc((size_t)x.rank + 1, sizeof(bool));
  bool ok = true;
  for (int32_t i = 0; ok && i < axes->u.ints.n; i++) {
    int64_t a = axes->u.ints.v[i];
    if (a < -(int64_t)x.rank || a >= x.rank) {
      ok = fail(c, "axis %lld out of range for %s (expected -%d <= axis < %d)", (long long)a,
                ty(c, x), x.rank, x.rank);
    } else {
      int64_t norm = a < 0 ? a + x.rank : a;
      if (reduced[norm]) ok = fail(c, "axis %lld listed twice", (long long)norm);
      reduced[norm] = true;
    }
  }
  if (ok) {
    ir_dim *dims = scratch_dims(c, x.rank);
    int32_t rank = 0;
    for (int32_t i = 0; i < x.rank; i++) {
      if (!reduced[i])
        dims[rank++] = x.dims[i];
      else if (keep)
        dims[rank++] = ir_dim_const(c->g->dims, 1);
    }
    emit_dims(c, x.dtype, rank, dims);
  }
  free(reduced);
  return ok;
}

static bool infer_argreduce(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  if (!require_class(c, "operand", x, DT_NUM) || !require_axis(c, "axis", axis, x)) return false;
  bool keep = ir_get_int(c->g, c->op, "keepdims");
  ir_dim *dims = scratch_dims(c, x.rank);
  int32_t rank = 0;
  for (int32_t i = 0; i < x.rank; i++) {
    if (i != axis)
      dims[rank++] = x.dims[i];
    else if (keep)
      dims[rank++] = ir_dim_const(c->g->dims, 1);
  }
  emit_dims(c, IR_I64, rank, dims);
  return true;
}

/* softmax, cumulative ops and reverse: the result is the operand's type. */
static bool infer_same(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  ir_opkind k = cur_op(c)->kind;
  dtclass need = DT_FLOAT;
  if (k == IR_OP_CUMSUM || k == IR_OP_CUMPROD) need = DT_NUM;
  if (k == IR_OP_REVERSE) need = DT_ANY;
  if (!require_class(c, "operand", x, need)) return false;
  if (!require_axis(c, "axis", ir_get_int(c->g, c->op, "axis"), x)) return false;
  emit(c, x);
  return true;
}

static bool infer_layernorm(infer_ctx *c) {
  static const char *const names[] = {"x", "gamma", "beta"};
  ir_type x = in_type(c, 0);
  if (!require_class(c, "operand", x, DT_FLOAT)) return false;
  if (x.rank < 1) return fail(c, "operand must have rank >= 1, got %s", ty(c, x));
  ir_dim last = x.dims[x.rank - 1];
  for (int32_t i = 1; i < n_in(c); i++) {
    ir_type p = in_type(c, i);
    if (!require_same_dtype(c, names[i], x, p)) return false;
    if (p.rank != 1 || dims_differ(c, p.dims[0], last))
      return fail(c, "%s must be rank 1 of the last dim %s, got %s", names[i], dm(c, last),
                  ty(c, p));
  }
  emit(c, x);
  return true;
}

/* ---- data movement --------------------------------------------------------- */

static bool infer_reshape(infer_ctx *c) {
  ir_type x = in_type(c, 0), r = declared_type(c);
  if (!require_same_dtype(c, "operand and result", x, r)) return false;
  ir_dim nx = ir_type_numel_dim(c->g, x), nr = ir_type_numel_dim(c->g, r);
  if (nx == IR_DIM_INVALID || nr == IR_DIM_INVALID)
    return fail(c, "element count of %s or %s overflows", ty(c, x), ty(c, r));
  if (dims_differ(c, nx, nr))
    return fail(c, "element counts differ: %s has %s, %s has %s", ty(c, x), dm(c, nx), ty(c, r),
                dm(c, nr));
  emit(c, r);
  return true;
}

static bool infer_transpose(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  const ir_attr *perm = ir_get_attr(c->g, c->op, "perm");
  if (perm->u.ints.n != x.rank)
    return fail(c, "perm has %d entries, operand %s has rank %d", perm->u.ints.n, ty(c, x),
                x.rank);
  bool *used = ir_xcalloc((size_t)x.rank + 1, sizeof(bool));
  ir_dim *dims = scratch_dims(c, x.rank);
  bool ok = true;
  for (int32_t i = 0; ok && i < x.rank; i++) {
    int64_t p = perm->u.ints.v[i];
    if (p < 0 || p >= x.rank || used[p]) {
      ok = fail(c, "perm is not a permutation of 0..%d: entry %d is %lld", x.rank - 1, i,
                (long long)p);
    } else {
      used[p] = true;
      dims[i] = x.dims[p];
    }
  }
  free(used);
  if (ok) emit_dims(c, x.dtype, x.rank, dims);
  return ok;
}

/* x's type with dim `axis` replaced by d. */
static void emit_with_dim(infer_ctx *c, ir_type x, int64_t axis, ir_dim d) {
  ir_dim *dims = scratch_dims(c, x.rank);
  memcpy(dims, x.dims, sizeof(ir_dim) * (size_t)x.rank);
  dims[axis] = d;
  emit_dims(c, x.dtype, x.rank, dims);
}

static bool infer_slice(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis"), step = ir_get_int(c->g, c->op, "step");
  if (!require_axis(c, "axis", axis, x)) return false;
  ir_dim start = ir_get_dim(c->g, c->op, "start"), end = ir_get_dim(c->g, c->op, "end");
  ir_dim dim = x.dims[axis];
  if (step < 1) return fail(c, "step must be >= 1, got %lld", (long long)step);
  if (dim_provably_negative(c, start)) return fail(c, "start %s is negative", dm(c, start));
  if (dim_provably_negative(c, end)) return fail(c, "end %s is negative", dm(c, end));
  if (dim_provably_less(c, end, start))
    return fail(c, "start %s is past end %s", dm(c, start), dm(c, end));
  if (dim_provably_less(c, dim, end))
    return fail(c, "end %s is past dim %lld of %s", dm(c, end), (long long)axis, ty(c, x));
  ir_dimtab *t = c->g->dims;
  ir_dim len = ir_dim_sub(t, end, start);
  if (step != 1) len = ir_dim_ceildiv(t, len, ir_dim_const(t, step));
  if (len == IR_DIM_INVALID) return fail(c, "slice length overflows");
  emit_with_dim(c, x, axis, len);
  return true;
}

static bool infer_dynamic_slice(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  ir_dim size = ir_get_dim(c->g, c->op, "size");
  if (!require_axis(c, "axis", axis, x) || !require_index_scalar(c, "index", in_type(c, 1)))
    return false;
  if (dim_provably_negative(c, size)) return fail(c, "size %s is negative", dm(c, size));
  if (dim_provably_less(c, x.dims[axis], size))
    return fail(c, "size %s exceeds dim %lld of %s", dm(c, size), (long long)axis, ty(c, x));
  emit_with_dim(c, x, axis, size);
  return true;
}

static bool infer_dynamic_update_slice(infer_ctx *c) {
  ir_type x = in_type(c, 0), u = in_type(c, 1);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  if (!require_axis(c, "axis", axis, x) || !require_same_dtype(c, "operand and update", x, u) ||
      !require_index_scalar(c, "index", in_type(c, 2)))
    return false;
  if (u.rank != x.rank) return fail(c, "update %s must have the rank of %s", ty(c, u), ty(c, x));
  for (int32_t i = 0; i < x.rank; i++) {
    if (i == axis ? dim_provably_less(c, x.dims[i], u.dims[i]) : dims_differ(c, x.dims[i], u.dims[i]))
      return fail(c, "update %s does not fit into %s at dim %d", ty(c, u), ty(c, x), i);
  }
  emit(c, x);
  return true;
}

static bool infer_concat(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  if (!require_axis(c, "axis", axis, x)) return false;
  ir_dim total = x.dims[axis];
  for (int32_t i = 1; i < n_in(c); i++) {
    ir_type y = in_type(c, i);
    if (!require_same_dtype(c, "operand", x, y)) return false;
    if (y.rank != x.rank)
      return fail(c, "operand %d %s must have the rank of operand 0 %s", i, ty(c, y), ty(c, x));
    for (int32_t k = 0; k < x.rank; k++)
      if (k != axis && dims_differ(c, x.dims[k], y.dims[k]))
        return fail(c, "operand %d %s differs from operand 0 %s at dim %d", i, ty(c, y),
                    ty(c, x), k);
    total = ir_dim_add(c->g->dims, total, y.dims[axis]);
  }
  if (total == IR_DIM_INVALID) return fail(c, "concatenated dim overflows");
  emit_with_dim(c, x, axis, total);
  return true;
}

static bool infer_split(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  const ir_attr *sizes = ir_get_attr(c->g, c->op, "sizes");
  if (!require_axis(c, "axis", axis, x)) return false;
  if (sizes->u.dims.n < 1) return fail(c, "sizes must not be empty");
  ir_dim total = ir_dim_const(c->g->dims, 0);
  for (int32_t i = 0; i < sizes->u.dims.n; i++) {
    if (dim_provably_negative(c, sizes->u.dims.v[i]))
      return fail(c, "size %d is negative: %s", i, dm(c, sizes->u.dims.v[i]));
    total = ir_dim_add(c->g->dims, total, sizes->u.dims.v[i]);
  }
  if (total == IR_DIM_INVALID) return fail(c, "sum of sizes overflows");
  if (dims_differ(c, total, x.dims[axis]))
    return fail(c, "sizes sum to %s but dim %lld of %s is %s", dm(c, total), (long long)axis,
                ty(c, x), dm(c, x.dims[axis]));
  for (int32_t i = 0; i < sizes->u.dims.n; i++) emit_with_dim(c, x, axis, sizes->u.dims.v[i]);
  return true;
}

static bool infer_broadcast(infer_ctx *c) {
  ir_type x = in_type(c, 0), r = declared_type(c);
  if (!require_same_dtype(c, "operand and result", x, r)) return false;
  if (x.rank > r.rank) return fail(c, "cannot broadcast %s to lower rank %s", ty(c, x), ty(c, r));
  int32_t off = r.rank - x.rank;
  for (int32_t k = 0; k < x.rank; k++)
    if (!dim_is_one(c, x.dims[k]) && dims_differ(c, x.dims[k], r.dims[off + k]))
      return fail(c, "cannot broadcast %s to %s: dim %s vs %s", ty(c, x), ty(c, r),
                  dm(c, x.dims[k]), dm(c, r.dims[off + k]));
  emit(c, r);
  return true;
}

static bool infer_gather(infer_ctx *c) {
  ir_type table = in_type(c, 0), idx = in_type(c, 1);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  if (!require_axis(c, "axis", axis, table) || !require_class(c, "indices", idx, DT_INT))
    return false;
  int32_t rank = table.rank - 1 + idx.rank;
  ir_dim *dims = scratch_dims(c, rank);
  int32_t n = 0;
  for (int32_t k = 0; k < axis; k++) dims[n++] = table.dims[k];
  for (int32_t k = 0; k < idx.rank; k++) dims[n++] = idx.dims[k];
  for (int32_t k = (int32_t)axis + 1; k < table.rank; k++) dims[n++] = table.dims[k];
  emit_dims(c, table.dtype, rank, dims);
  return true;
}

static bool infer_reverse_sequence(infer_ctx *c) {
  ir_type x = in_type(c, 0), len = in_type(c, 1);
  int64_t seq = ir_get_int(c->g, c->op, "seq_axis"), batch = ir_get_int(c->g, c->op, "batch_axis");
  if (!require_axis(c, "seq_axis", seq, x) || !require_axis(c, "batch_axis", batch, x))
    return false;
  if (seq == batch) return fail(c, "seq_axis and batch_axis are both %lld", (long long)seq);
  if (!require_class(c, "lengths", len, DT_INT)) return false;
  if (len.rank != 1 || dims_differ(c, len.dims[0], x.dims[batch]))
    return fail(c, "lengths must be rank 1 of the batch dim %s, got %s", dm(c, x.dims[batch]),
                ty(c, len));
  emit(c, x);
  return true;
}

/* Whether the pad value can be stored in dtype dt without changing. */
static bool pad_value_fits(ir_dtype dt, double v) {
  if (ir_dtype_is_float(dt)) return true;
  if (dt == IR_BOOL) return v == 0 || v == 1;
  double limit = dt == IR_I32 ? 2147483648.0 : 9007199254740992.0; /* 2^31, 2^53 */
  return isfinite(v) && floor(v) == v && v >= -limit && v < limit;
}

static bool infer_pad(infer_ctx *c) {
  ir_type x = in_type(c, 0);
  int64_t axis = ir_get_int(c->g, c->op, "axis");
  ir_dim lo = ir_get_dim(c->g, c->op, "low"), hi = ir_get_dim(c->g, c->op, "high");
  double value = ir_get_float(c->g, c->op, "value");
  if (!require_axis(c, "axis", axis, x)) return false;
  if (dim_provably_negative(c, lo) || dim_provably_negative(c, hi))
    return fail(c, "low %s and high %s must be >= 0", dm(c, lo), dm(c, hi));
  if (!pad_value_fits(x.dtype, value))
    return fail(c, "value %g is not representable in %s", value, ir_dtype_name(x.dtype));
  ir_dimtab *t = c->g->dims;
  ir_dim d = ir_dim_add(t, ir_dim_add(t, x.dims[axis], lo), hi);
  if (d == IR_DIM_INVALID) return fail(c, "padded dim overflows");
  emit_with_dim(c, x, axis, d);
  return true;
}

/* ---- attention --------------------------------------------------------- */

static bool check_attention_lengths(infer_ctx *c, ir_type q, int64_t mask) {
  bool needs = ir_mask_uses_lengths(mask);
  if (!needs) {
    if (n_in(c) == 4) return fail(c, "a lengths operand is only allowed with padding, prefix or causal_padding masks");
    return true;
  }
  if (n_in(c) != 4) return fail(c, "padding, prefix and causal_padding masks need a 4th operand lengths[B]");
  ir_type len = in_type(c, 3);
  if (q.rank < 3) return fail(c, "padding, prefix and causal_padding masks need a batch dim: q is %s", ty(c, q));
  if (!require_class(c, "lengths", len, DT_INT)) return false;
  if (len.rank != 1 || dims_differ(c, len.dims[0], q.dims[0]))
    return fail(c, "lengths must be rank 1 of q's first dim %s, got %s", dm(c, q.dims[0]),
                ty(c, len));
  return true;
}

static bool infer_attention(infer_ctx *c) {
  ir_type q = in_type(c, 0), k = in_type(c, 1), v = in_type(c, 2);
  int32_t n = q.rank;
  if (n < 2 || k.rank != n || v.rank != n)
    return fail(c, "q, k, v must have the same rank >= 2, got %s, %s, %s", ty(c, q), ty(c, k),
                ty(c, v));
  if (!require_class(c, "q", q, DT_FLOAT) || !require_same_dtype(c, "q and k", q, k) ||
      !require_same_dtype(c, "q and v", q, v))
    return false;
  for (int32_t i = 0; i < n - 2; i++)
    if (dims_differ(c, q.dims[i], k.dims[i]) || dims_differ(c, q.dims[i], v.dims[i]))
      return fail(c, "leading dims of q %s, k %s, v %s differ at dim %d", ty(c, q), ty(c, k),
                  ty(c, v), i);
  if (!require_dims_match(c, "head dims of q and k", q.dims[n - 1], k.dims[n - 1]) ||
      !require_dims_match(c, "key lengths of k and v", k.dims[n - 2], v.dims[n - 2]))
    return false;
  int64_t mask = ir_get_int(c->g, c->op, "mask");
  if (!check_attention_lengths(c, q, mask)) return false;
  if (mask == IR_MASK_WINDOW && ir_get_int(c->g, c->op, "window") < 1)
    return fail(c, "window mask needs window >= 1, got %lld",
                (long long)ir_get_int(c->g, c->op, "window"));
  emit_with_dim(c, q, n - 1, v.dims[n - 1]);
  return true;
}

/* ---- declared ops: constant and iota --------------------------------------- */

static bool check_constant_data(infer_ctx *c, ir_type r) {
  const ir_tensor_data *t = ir_get_attr(c->g, c->op, "value")->u.t;
  bool is_float = ir_dtype_is_float(r.dtype);
  if ((is_float && !t->f) || (!is_float && !t->i))
    return fail(c, "value data does not match dtype %s", ir_dtype_name(r.dtype));
  int64_t numel = ir_type_static_numel(c->g, r);
  if (t->n != 1 && numel < 0)
    return fail(c, "%lld values need a static shape, result is %s", (long long)t->n, ty(c, r));
  if (t->n != 1 && t->n != numel)
    return fail(c, "%lld values for %s, which has %lld elements (give 1 to splat)",
                (long long)t->n, ty(c, r), (long long)numel);
  for (int64_t i = 0; !is_float && i < t->n; i++) {
    bool fits = r.dtype == IR_BOOL  ? (t->i[i] == 0 || t->i[i] == 1)
                : r.dtype == IR_I32 ? (t->i[i] >= INT32_MIN && t->i[i] <= INT32_MAX)
                                    : true;
    if (!fits)
      return fail(c, "value %lld at index %lld does not fit %s", (long long)t->i[i],
                  (long long)i, ir_dtype_name(r.dtype));
  }
  return true;
}

static bool infer_declared(infer_ctx *c) {
  ir_type r = declared_type(c);
  if (cur_op(c)->kind == IR_OP_CONSTANT) {
    if (!check_constant_data(c, r)) return false;
  } else {
    IR_ASSERT(cur_op(c)->kind == IR_OP_IOTA);
    if (!require_axis(c, "axis", ir_get_int(c->g, c->op, "axis"), r)) return false;
    if (r.dtype == IR_BOOL) return fail(c, "result must not be bool, got %s", ty(c, r));
  }
  emit(c, r);
  return true;
}

/* ---- regions --------------------------------------------------------------- */

static bool infer_yield(infer_ctx *c) { return true; }

/* Operand ranges of a scan: [0, carries) inits, [carries, carries+xs) per-step
 * inputs, the rest loop invariants. */
typedef struct scan_parts {
  int32_t carries, xs, invariants;
  int64_t axis;
  ir_dim length;
} scan_parts;

static bool scan_read_parts(infer_ctx *c, scan_parts *s) {
  int64_t carries = ir_get_int(c->g, c->op, "carries"), xs = ir_get_int(c->g, c->op, "xs");
  if (carries < 0 || xs < 0 || carries + xs > n_in(c))
    return fail(c, "carries = %lld and xs = %lld do not fit %d operands", (long long)carries,
                (long long)xs, n_in(c));
  s->carries = (int32_t)carries;
  s->xs = (int32_t)xs;
  s->invariants = n_in(c) - s->carries - s->xs;
  s->axis = ir_get_int(c->g, c->op, "axis");
  s->length = ir_get_dim(c->g, c->op, "length");
  if (s->axis < 0) return fail(c, "axis must be >= 0, got %lld", (long long)s->axis);
  if (dim_provably_negative(c, s->length))
    return fail(c, "length %s is negative", dm(c, s->length));
  return true;
}

static bool scan_check_xs(infer_ctx *c, const scan_parts *s) {
  for (int32_t i = 0; i < s->xs; i++) {
    ir_type x = in_type(c, s->carries + i);
    if (s->axis >= x.rank)
      return fail(c, "per-step input %d %s has no axis %lld", i, ty(c, x), (long long)s->axis);
    if (dims_differ(c, x.dims[s->axis], s->length))
      return fail(c, "per-step input %d %s has %s steps along axis %lld, length is %s", i,
                  ty(c, x), dm(c, x.dims[s->axis]), (long long)s->axis, dm(c, s->length));
  }
  return true;
}

/* The type body argument `i` must have. */
static ir_type scan_arg_type(infer_ctx *c, const scan_parts *s, int32_t i) {
  if (i == 0) return (ir_type){IR_I64, 0, NULL};
  int32_t operand = i - 1;
  ir_type t = in_type(c, operand);
  if (operand < s->carries || operand >= s->carries + s->xs) return t;
  ir_dim *dims = scratch_dims(c, t.rank);
  int32_t n = 0;
  for (int32_t k = 0; k < t.rank; k++)
    if (k != s->axis) dims[n++] = t.dims[k];
  return (ir_type){t.dtype, n, dims};
}

static const char *scan_arg_role(const scan_parts *s, int32_t i) {
  if (i == 0) return "step index";
  if (i <= s->carries) return "carry";
  if (i <= s->carries + s->xs) return "per-step slice";
  return "loop invariant";
}

static bool scan_check_args(infer_ctx *c, const scan_parts *s, ir_blockid body) {
  const ir_block *b = ir_b(c->g, body);
  int32_t want = 1 + n_in(c);
  if (b->n_args != want)
    return fail(c, "body has %d arguments, expected %d (t, %d carries, %d slices, %d invariants)",
                b->n_args, want, s->carries, s->xs, s->invariants);
  for (int32_t i = 0; i < want; i++) {
    ir_val a = b->args[i];
    if (a < 0 || a >= c->g->n_vals || !type_well_formed(c->g, ir_vtype(c->g, a)))
      return fail(c, "body argument %d is not a well-formed value", i);
    ir_type expect = scan_arg_type(c, s, i), have = ir_vtype(c->g, a);
    if (!ir_type_equal(expect, have))
      return fail(c, "body argument %d (%s) has type %s, expected %s", i, scan_arg_role(s, i),
                  ty(c, have), ty(c, expect));
  }
  return true;
}

/* The stacked type of a per-step output: `length` inserted at `axis`. */
static bool scan_emit_stacked(infer_ctx *c, const scan_parts *s, int32_t i, ir_type y) {
  if (s->axis > y.rank)
    return fail(c, "per-step output %d %s cannot be stacked along axis %lld", i, ty(c, y),
                (long long)s->axis);
  ir_dim *dims = scratch_dims(c, y.rank + 1);
  int32_t n = 0;
  for (int32_t k = 0; k <= y.rank; k++) {
    if (k == s->axis) dims[n++] = s->length;
    if (k < y.rank) dims[n++] = y.dims[k];
  }
  emit_dims(c, y.dtype, y.rank + 1, dims);
  return true;
}

static bool scan_check_yield(infer_ctx *c, const scan_parts *s, ir_blockid body) {
  ir_opid y = ir_block_terminator(c->g, body);
  if (y == IR_NONE || ir_o(c->g, y)->kind != IR_OP_YIELD)
    return fail(c, "body does not end with yield");
  const ir_op *yo = ir_o(c->g, y);
  if (yo->n_in < s->carries)
    return fail(c, "body yields %d values, fewer than its %d carries", yo->n_in, s->carries);
  for (int32_t i = 0; i < yo->n_in; i++)
    if (yo->in[i] < 0 || yo->in[i] >= c->g->n_vals || !type_well_formed(c->g, ir_vtype(c->g, yo->in[i])))
      return fail(c, "body yield operand %d is not a well-formed value", i);
  for (int32_t i = 0; i < s->carries; i++) {
    ir_type init = in_type(c, i), next = ir_vtype(c->g, yo->in[i]);
    if (!ir_type_equal(init, next))
      return fail(c, "body yields %s for carry %d, whose initial value is %s", ty(c, next), i,
                  ty(c, init));
  }
  for (int32_t i = 0; i < s->carries; i++) emit(c, in_type(c, i));
  for (int32_t i = s->carries; i < yo->n_in; i++)
    if (!scan_emit_stacked(c, s, i - s->carries, ir_vtype(c->g, yo->in[i]))) return false;
  return true;
}

static bool infer_scan(infer_ctx *c) {
  scan_parts s = {0};
  ir_blockid body = cur_op(c)->regions[0];
  if (body < 0 || body >= c->g->n_blocks) return fail(c, "body region is not a block");
  return scan_read_parts(c, &s) && scan_check_xs(c, &s) && scan_check_args(c, &s, body) &&
         scan_check_yield(c, &s, body);
}

/* init and fused: the region is isolated like a scan body, its arguments
 * being the operands themselves (same types, in order); the results are
 * whatever it yields. Where an init may stand and what it may read is
 * ir_verify's business (verify.c), not a typing matter. */
static bool infer_isolated(infer_ctx *c) {
  ir_blockid body = cur_op(c)->regions[0];
  if (body < 0 || body >= c->g->n_blocks) return fail(c, "region is not a block");
  const ir_block *b = ir_b(c->g, body);
  if (b->n_args != n_in(c))
    return fail(c, "region has %d arguments, expected %d (one per operand)", b->n_args, n_in(c));
  for (int32_t i = 0; i < b->n_args; i++) {
    ir_val a = b->args[i];
    if (a < 0 || a >= c->g->n_vals || !type_well_formed(c->g, ir_vtype(c->g, a)))
      return fail(c, "region argument %d is not a well-formed value", i);
    if (!ir_type_equal(ir_vtype(c->g, a), in_type(c, i)))
      return fail(c, "region argument %d has type %s, but operand %d is %s", i,
                  ty(c, ir_vtype(c->g, a)), i, ty(c, in_type(c, i)));
  }
  ir_opid y = ir_block_terminator(c->g, body);
  if (y == IR_NONE || ir_o(c->g, y)->kind != IR_OP_YIELD)
    return fail(c, "region does not end with yield");
  const ir_op *yo = ir_o(c->g, y);
  for (int32_t i = 0; i < yo->n_in; i++)
    if (yo->in[i] < 0 || yo->in[i] >= c->g->n_vals || !type_well_formed(c->g, ir_vtype(c->g, yo->in[i])))
      return fail(c, "region yield operand %d is not a well-formed value", i);
  for (int32_t i = 0; i < yo->n_in; i++) emit(c, ir_vtype(c->g, yo->in[i]));
  return true;
}

/* ---- dispatch -------------------------------------------------------------- */

typedef bool (*infer_fn)(infer_ctx *c);

static const infer_fn infer_rules[IR_OP_COUNT] = {
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  [IR_OP_##id] = infer_##shape,
#include "ops.def"
};

static bool check_values(infer_ctx *c, const char *what, int32_t n, const ir_val *vs) {
  for (int32_t i = 0; i < n; i++) {
    if (vs[i] < 0 || vs[i] >= c->g->n_vals) return fail(c, "%s %d is not a value", what, i);
    if (!type_well_formed(c->g, ir_vtype(c->g, vs[i])))
      return fail(c, "%s %d has a malformed type", what, i);
  }
  return true;
}

static bool check_arity(infer_ctx *c) {
  const ir_op *o = cur_op(c);
  int32_t lo = c->info->min_in, hi = c->info->max_in;
  if (o->n_in < lo || (hi >= 0 && o->n_in > hi)) {
    if (hi < 0) return fail(c, "expected at least %d operands, got %d", lo, o->n_in);
    if (lo == hi) return fail(c, "expected %d operand%s, got %d", lo, lo == 1 ? "" : "s", o->n_in);
    return fail(c, "expected %d to %d operands, got %d", lo, hi, o->n_in);
  }
  if (o->n_regions != c->info->n_regions)
    return fail(c, "expected %d region%s, got %d", c->info->n_regions,
                c->info->n_regions == 1 ? "" : "s", o->n_regions);
  if ((c->info->flags & IR_DECLARED) && o->n_out != c->info->n_out)
    return fail(c, "expected %d result%s, got %d", c->info->n_out, c->info->n_out == 1 ? "" : "s",
                o->n_out);
  return true;
}

static int32_t enum_count(const char *const *names) {
  int32_t n = 0;
  while (names && names[n]) n++;
  return n;
}

/* Required attributes present, and every present one readable. */
static bool check_attrs(infer_ctx *c) {
  const ir_op *o = cur_op(c);
  for (int32_t i = 0; i < c->info->n_attrs; i++) {
    const ir_attr_decl *decl = &c->info->attrs[i];
    const ir_attr *a = &o->attrs[i];
    if (!a->present) {
      if (decl->required) return fail(c, "missing required attribute '%s'", decl->name);
      continue;
    }
    bool ok = true;
    switch (decl->kind) {
    case IR_ATTR_ENUM: ok = a->u.i >= 0 && a->u.i < enum_count(decl->enum_names); break;
    case IR_ATTR_BOOL: ok = a->u.i == 0 || a->u.i == 1; break;
    case IR_ATTR_DIM: ok = a->u.d != IR_DIM_INVALID; break;
    case IR_ATTR_INTS: ok = a->u.ints.n >= 0 && (a->u.ints.n == 0 || a->u.ints.v); break;
    case IR_ATTR_DIMS:
      ok = a->u.dims.n >= 0 && (a->u.dims.n == 0 || a->u.dims.v);
      for (int32_t k = 0; ok && k < a->u.dims.n; k++) ok = a->u.dims.v[k] != IR_DIM_INVALID;
      break;
    case IR_ATTR_TENSOR: ok = a->u.t && a->u.t->n >= 1; break;
    case IR_ATTR_INT:
    case IR_ATTR_FLOAT: break;
    }
    if (!ok) return fail(c, "attribute '%s' has an invalid value", decl->name);
  }
  return true;
}

bool ir_infer_types(ir_graph *g, ir_opid op, ir_type *out, int32_t cap, int32_t *n_out,
                    ir_diag *d) {
  IR_ASSERT(op >= 0 && op < g->n_ops);
  const ir_op *o = ir_o(g, op);
  *n_out = 0;
  if ((int)o->kind < 0 || o->kind >= IR_OP_COUNT) {
    ir_error_at(d, o->loc, "unknown op kind %d", (int)o->kind);
    return false;
  }
  infer_ctx c = {.g = g, .op = op, .info = ir_opinfo_of(o->kind), .d = d, .out = out, .cap = cap};
  bool ok = check_arity(&c) && check_attrs(&c) && check_values(&c, "operand", o->n_in, o->in) &&
            ((c.info->flags & IR_DECLARED) == 0 || check_values(&c, "result", o->n_out, o->out)) &&
            infer_rules[o->kind](&c);
  *n_out = ok ? c.n_out : 0;
  free(c.scratch);
  for (int i = 0; i < 6; i++) ir_buf_free(&c.text[i]);
  return ok;
}
