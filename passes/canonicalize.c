/*
 * canonicalize.c - constant folding and algebraic simplification.
 *
 * Algorithm: one rewrite function driven by the greedy worklist rewriter
 * (ir_rewrite_greedy), which visits every op of every region and revisits
 * the users of anything replaced, until nothing changes. Every rewrite
 * removes an op, shortens a chain or moves an elementwise op above a data
 * movement it was below (nothing moves one back), so the fixpoint is reached
 * in a number of rewrites linear in the graph; a generous bound turns a
 * looping pattern (a bug) into an error rather than a hang.
 *
 * Folding. A pure op without regions whose operands are all `constant` ops
 * of static shape, with at most FOLD_MAX_ELEMENTS elements in every operand
 * and result, is evaluated by the reference interpreter (ir_interp_eval_op)
 * and replaced by constants: a splat when every element is bitwise equal.
 * The interpreter defines the IR's semantics, so folding cannot disagree
 * with it; when it reports a run-time error (integer division by zero, an
 * index out of range) the op is left alone and the error stays a run-time
 * one. Operands are read through the interpreter too (ir_interp_eval_op on
 * the constant), so rounding to the dtype and the exact-integer range are
 * its rules, not copies of them. Ops without operands (iota) are not
 * folded: they are already as simple as a literal and much smaller.
 *
 * Identities, applied only when exact in IEEE arithmetic and when the
 * replacement has exactly the op's result type (binary ops broadcast, so
 * x + zeros[4, 8] with x: f32[8] must stay):
 *   x + (-0.0) -> x, (-0.0) + x -> x   but NOT x + (+0.0): -0.0 + +0.0 is +0.0
 *   x - (+0.0) -> x                    but NOT x - (-0.0), which is x + +0.0
 *   x * 1 -> x, 1 * x -> x, x / 1 -> x (integers: 0 and 1, any sign rules moot)
 *   neg(neg x) -> x
 *   cast, reshape or broadcast to x's own type -> x
 *   transpose with the identity permutation -> x
 *   transpose(transpose x) -> one transpose with the composed permutation
 *   reshape(reshape x) -> one reshape
 *   slice of a whole axis with step 1 -> x
 *   concat of a single operand -> x
 *   reverse(reverse x) along the same axis -> x
 * A zero or one is a constant all of whose elements have that value (a splat
 * or a full literal). NaN payloads are not part of the IR's semantics; apart
 * from them each identity returns bit-identical results.
 *
 * Moving elementwise ops first. An elementwise op (IR_ELEMENTWISE) whose
 * operands are all scalars (every dim the constant 1, or rank 0) but one,
 * that one the result of a reshape or transpose read by nothing else, is
 * moved before it, down the whole chain of such ops at once:
 *   f(transpose(x), s) -> transpose(f(x, s)), likewise through reshape.
 * Attention's q * scale thus goes from after the heads' reshape and
 * transpose to right after the bias add, where a fusion can absorb it. Each
 * element gets the same operation, so results are bit-identical. A scalar
 * of higher rank than the moved op's new operand stops the chain (it would
 * widen the result). The data-movement ops are rebuilt with f's result
 * dtype (compare, cast) and the old ones erased; the outermost keeps f's
 * result name, inner ones the names they had, and f's copy is named
 * "<f's name>.pre".
 *
 * Needs: a verified graph. Leaves dead ops behind (the folded constants'
 * former operands, inner transposes...) for dce. Invalidates nothing else:
 * no op kinds or region structures change, scans are never touched.
 */
#include "pass.h"

#include "../ir/interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest operand or result folding evaluates: bounds compile time and the
 * size of literals it writes into the IR. */
enum { FOLD_MAX_ELEMENTS = 65536 };

/* Integers the interpreter represents exactly: |x| < 2^53. */
#define EXACT_INT_LIMIT 9007199254740992.0

/* ---- inspecting operands --------------------------------------------------- */

static bool same_type(const ir_graph *g, ir_val a, ir_val b) {
  return ir_type_equal(ir_vtype(g, a), ir_vtype(g, b));
}

/* True if v is a constant each of whose elements is x: compared bitwise for
 * float dtypes (so -0.0 and +0.0 differ), by value for integer dtypes. */
static bool is_constant_all(const ir_graph *g, ir_val v, double x) {
  const ir_tensor_data *t = ir_constant_data(g, v);
  ir_dtype dt = ir_vtype(g, v).dtype;
  if (!t || t->n < 1) return false;
  if (ir_dtype_is_float(dt)) {
    if (!t->f) return false;
    for (int64_t k = 0; k < t->n; k++)
      if (memcmp(&t->f[k], &x, sizeof x) != 0) return false;
    return true;
  }
  if (!ir_dtype_is_int(dt) || !t->i) return false;
  for (int64_t k = 0; k < t->n; k++)
    if ((double)t->i[k] != x) return false;
  return true;
}

/* The additive identity of v's dtype: -0.0 for floats (x + -0.0 == x for
 * every x, including -0.0), 0 for integers. */
static double additive_identity(const ir_graph *g, ir_val v) {
  return ir_dtype_is_float(ir_vtype(g, v).dtype) ? -0.0 : 0.0;
}

static bool valid_axis(int64_t axis, int32_t rank) { return axis >= 0 && axis < rank; }

static bool valid_perm(const ir_attr *perm, int32_t rank) {
  if (!perm->present || perm->u.ints.n != rank) return false;
  for (int32_t i = 0; i < rank; i++)
    if (perm->u.ints.v[i] < 0 || perm->u.ints.v[i] >= rank) return false;
  return true;
}

/* ---- folding ---------------------------------------------------------------- */

static bool small_static(const ir_graph *g, ir_type t) {
  int64_t n = ir_type_static_numel(g, t);
  return n >= 0 && n <= FOLD_MAX_ELEMENTS;
}

/* The interpreter's view of constant v, evaluated by the interpreter itself
 * (rounding to the dtype, the exact-integer range); false if v is not a
 * small static constant or the interpreter rejects it. */
static bool constant_to_tensor(ir_graph *g, ir_val v, ir_tensor *out) {
  ir_opid c = ir_def_of_kind(g, v, IR_OP_CONSTANT);
  if (c == IR_NONE || !small_static(g, ir_vtype(g, v))) return false;
  ir_interp_opts opts = {NULL, 0, FOLD_MAX_ELEMENTS};
  ir_buf err = {0};
  bool ok = ir_interp_eval_op(g, c, NULL, out, &opts, &err);
  ir_buf_free(&err);
  return ok;
}

static bool all_bitwise_equal(const void *data, int64_t n, size_t size) {
  const char *p = data;
  for (int64_t k = 1; k < n; k++)
    if (memcmp(p, p + (size_t)k * size, size) != 0) return false;
  return true;
}

/* Constant data (heap arrays, caller frees) for interpreter result t, which
 * must have exactly type ty; a splat when all elements are bitwise equal. */
static bool tensor_to_data(const ir_graph *g, const ir_tensor *t, ir_type ty, ir_tensor_data *out) {
  memset(out, 0, sizeof *out);
  int64_t numel = ir_type_static_numel(g, ty);
  if (t->dtype != ty.dtype || t->rank != ty.rank || t->numel != numel) return false;
  for (int32_t i = 0; i < ty.rank; i++) {
    int64_t d = 0;
    if (!ir_dim_is_const(g->dims, ty.dims[i], &d) || d != t->shape[i]) return false;
  }
  size_t n = (size_t)(numel > 0 ? numel : 1);
  if (ir_dtype_is_float(ty.dtype)) {
    out->f = ir_xmalloc(sizeof(double) * n);
    if (numel > 0) memcpy(out->f, t->data, sizeof(double) * (size_t)numel);
    else out->f[0] = 0;
    out->n = numel > 0 && all_bitwise_equal(out->f, numel, sizeof(double)) ? 1 : numel;
    return true;
  }
  out->i = ir_xmalloc(sizeof(int64_t) * n);
  for (int64_t k = 0; k < numel; k++) {
    double x = t->data[k];
    if (!(fabs(x) < EXACT_INT_LIMIT) || x != trunc(x)) {
      free(out->i);
      out->i = NULL;
      return false;
    }
    out->i[k] = (int64_t)x;
  }
  if (numel == 0) out->i[0] = 0;
  out->n = numel > 0 && all_bitwise_equal(out->i, numel, sizeof(int64_t)) ? 1 : numel;
  return true;
}

static bool foldable_op(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  const ir_opinfo *info = ir_opinfo_of(o->kind);
  if (!(info->flags & IR_PURE) || o->n_regions > 0 || o->kind == IR_OP_CONSTANT || o->n_in == 0)
    return false;
  for (int32_t i = 0; i < o->n_in; i++)
    if (!ir_constant_data(g, o->in[i])) return false;
  for (int32_t i = 0; i < o->n_out; i++)
    if (!small_static(g, ir_vtype(g, o->out[i]))) return false;
  return true;
}

/* Evaluates op on its constant operands; on success data[k] holds result
 * k's literal (caller frees the arrays). */
static bool evaluate(ir_graph *g, ir_opid op, ir_tensor_data *data) {
  int32_t n_in = ir_o(g, op)->n_in, n_out = ir_o(g, op)->n_out;
  ir_tensor *ins = ir_xcalloc((size_t)n_in, sizeof *ins);
  ir_tensor *outs = ir_xcalloc((size_t)n_out + 1, sizeof *outs);
  int32_t converted = 0;
  while (converted < n_in && constant_to_tensor(g, ir_o(g, op)->in[converted], &ins[converted]))
    converted++;
  bool ok = converted == n_in;
  if (ok) {
    ir_interp_opts opts = {NULL, 0, FOLD_MAX_ELEMENTS};
    ir_buf err = {0};
    ok = ir_interp_eval_op(g, op, ins, outs, &opts, &err);
    ir_buf_free(&err);
  }
  int32_t made = 0;
  while (ok && made < n_out &&
         tensor_to_data(g, &outs[made], ir_vtype(g, ir_o(g, op)->out[made]), &data[made]))
    made++;
  if (ok && made < n_out) ok = false;
  for (int32_t k = 0; !ok && k < made; k++) {
    free(data[k].f);
    free(data[k].i);
  }
  for (int32_t k = 0; k < converted; k++) ir_tensor_free(&ins[k]);
  for (int32_t k = 0; k < n_out; k++) ir_tensor_free(&outs[k]);
  free(ins);
  free(outs);
  return ok;
}

static bool try_fold(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  if (!foldable_op(g, op)) return false;
  int32_t n_out = ir_o(g, op)->n_out;
  ir_tensor_data *data = ir_xcalloc((size_t)n_out + 1, sizeof *data);
  if (!evaluate(g, op, data)) {
    free(data);
    return false;
  }
  ir_val *consts = ir_xmalloc(sizeof(ir_val) * (size_t)(n_out + 1));
  for (int32_t k = 0; k < n_out; k++) {
    ir_val old = ir_o(g, op)->out[k];
    ir_type ty = ir_vtype(g, old);
    ir_opid c = ir_op_new(g, IR_OP_CONSTANT, 0, NULL, 1, &ty, ir_o(g, op)->loc);
    ir_set_tensor(g, c, "value", &data[k]);
    ir_op_insert_before(g, op, c);
    consts[k] = ir_o(g, c)->out[0];
    ir_v(g, consts[k])->name = ir_v(g, old)->name;
    free(data[k].f);
    free(data[k].i);
  }
  ir_rewrite_replace(rw, g, op, consts);
  free(consts);
  free(data);
  return true;
}

/* ---- identities ------------------------------------------------------------- */

/* Replaces op's single result with x when x has exactly the result's type. */
static bool forward_to(ir_rewriter *rw, ir_graph *g, ir_opid op, ir_val x) {
  if (!same_type(g, x, ir_o(g, op)->out[0])) return false;
  ir_rewrite_replace(rw, g, op, &x);
  return true;
}

static bool simplify_arith(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  ir_val a = ir_o(g, op)->in[0], b = ir_o(g, op)->in[1];
  switch (ir_o(g, op)->kind) {
  case IR_OP_ADD:
    if (is_constant_all(g, b, additive_identity(g, b)) && forward_to(rw, g, op, a)) return true;
    return is_constant_all(g, a, additive_identity(g, a)) && forward_to(rw, g, op, b);
  case IR_OP_SUB:
    return is_constant_all(g, b, 0.0) && forward_to(rw, g, op, a);
  case IR_OP_MUL:
    if (is_constant_all(g, b, 1.0) && forward_to(rw, g, op, a)) return true;
    return is_constant_all(g, a, 1.0) && forward_to(rw, g, op, b);
  case IR_OP_DIV:
    return is_constant_all(g, b, 1.0) && forward_to(rw, g, op, a);
  default:
    return false;
  }
}

static bool is_identity_perm(const ir_attr *perm) {
  for (int32_t i = 0; i < perm->u.ints.n; i++)
    if (perm->u.ints.v[i] != i) return false;
  return true;
}

/* transpose(transpose(x, p1), p2) reads x dim p1[p2[i]] as its dim i. */
static bool simplify_transpose(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  ir_val x = ir_o(g, op)->in[0];
  int32_t rank = ir_vtype(g, x).rank;
  const ir_attr *outer = ir_get_attr(g, op, "perm");
  if (!valid_perm(outer, rank)) return false;
  if (is_identity_perm(outer)) return forward_to(rw, g, op, x);
  ir_opid inner_op = ir_def_of_kind(g, x, IR_OP_TRANSPOSE);
  if (inner_op == IR_NONE) return false;
  const ir_attr *inner = ir_get_attr(g, inner_op, "perm");
  ir_val src = ir_o(g, inner_op)->in[0];
  if (!valid_perm(inner, rank) || ir_vtype(g, src).rank != rank) return false;
  int64_t *composed = ir_xmalloc(sizeof(int64_t) * (size_t)(rank + 1));
  for (int32_t i = 0; i < rank; i++) composed[i] = inner->u.ints.v[outer->u.ints.v[i]];
  ir_op_set_operands(g, op, 1, &src);
  ir_set_ints(g, op, "perm", rank, composed);
  free(composed);
  ir_rewrite_notify(rw, op);
  return true;
}

static bool simplify_reshape(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  ir_val x = ir_o(g, op)->in[0];
  if (forward_to(rw, g, op, x)) return true;
  ir_opid inner = ir_def_of_kind(g, x, IR_OP_RESHAPE);
  if (inner == IR_NONE) return false;
  ir_val src = ir_o(g, inner)->in[0];
  ir_op_set_operands(g, op, 1, &src);
  ir_rewrite_notify(rw, op);
  return true;
}

static bool slices_whole_axis(const ir_graph *g, ir_opid op) {
  ir_type in = ir_vtype(g, ir_o(g, op)->in[0]);
  int64_t axis = ir_get_int(g, op, "axis"), start;
  if (!valid_axis(axis, in.rank)) return false;
  return ir_get_int(g, op, "step") == 1 &&
         ir_dim_is_const(g->dims, ir_get_dim(g, op, "start"), &start) && start == 0 &&
         ir_get_dim(g, op, "end") == in.dims[axis];
}

static bool simplify_reverse(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  ir_opid inner = ir_def_of_kind(g, ir_o(g, op)->in[0], IR_OP_REVERSE);
  if (inner == IR_NONE) return false;
  int32_t rank = ir_vtype(g, ir_o(g, op)->in[0]).rank;
  int64_t axis = ir_get_int(g, op, "axis");
  if (!valid_axis(axis, rank) || ir_get_int(g, inner, "axis") != axis) return false;
  return forward_to(rw, g, op, ir_o(g, inner)->in[0]);
}

/* ---- moving elementwise ops before data movement -------------------------- */

/* A broadcast operand that contributes one element: rank 0 or every dim
 * the constant 1. */
static bool is_scalar(const ir_graph *g, ir_val v) {
  ir_type t = ir_vtype(g, v);
  for (int32_t i = 0; i < t.rank; i++) {
    int64_t d = 0;
    if (!ir_dim_is_const(g->dims, t.dims[i], &d) || d != 1) return false;
  }
  return true;
}

static bool moves_data(ir_opkind k) { return k == IR_OP_RESHAPE || k == IR_OP_TRANSPOSE; }

/* Index of an elementwise op's only non-scalar operand, -1 if it has none
 * or several; *scalar_rank is the largest rank of the others. */
static int32_t lone_tensor_operand(const ir_graph *g, ir_opid op, int32_t *scalar_rank) {
  const ir_op *o = ir_o(g, op);
  if (!(ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE) || o->n_out != 1) return -1;
  int32_t found = -1;
  *scalar_rank = 0;
  for (int32_t i = 0; i < o->n_in; i++) {
    int32_t rank = ir_vtype(g, o->in[i]).rank;
    if (!is_scalar(g, o->in[i])) {
      if (found >= 0) return -1;
      found = i;
    } else if (rank > *scalar_rank) {
      *scalar_rank = rank;
    }
  }
  return found;
}

/* The reshapes and transposes v comes out of, outermost first, as far as
 * each result has no other use and the scalars' rank fits the operand the
 * moved op would get (a scalar of higher rank would widen its result);
 * *chain is heap-allocated, caller frees. */
static int32_t movement_chain(const ir_graph *g, ir_val v, int32_t scalar_rank, ir_opid **chain) {
  int32_t n = 0, cap = 0;
  *chain = NULL;
  for (;;) {
    ir_opid def = ir_v(g, v)->def;
    if (def == IR_NONE || !moves_data(ir_o(g, def)->kind)) break;
    ir_val src = ir_o(g, def)->in[0];
    if (ir_vtype(g, src).rank < scalar_rank || ir_value_use_count(g, v) != 1) break;
    ir_grow((void **)chain, &cap, n + 1, sizeof(ir_opid));
    (*chain)[n++] = def;
    v = src;
  }
  return n;
}

/* A copy of op `like` (kind, attributes, location) reading `in`, typed by
 * inference from `type` (taken as is by declared ops: reshape, cast) and
 * inserted before `anchor`; IR_NONE if inference rejects it. */
static ir_opid build_like(ir_graph *g, ir_opid like, const ir_val *in, ir_type type, ir_opid anchor,
                          ir_diag *d) {
  ir_opkind kind = ir_o(g, like)->kind;
  ir_opid op = ir_op_new(g, kind, ir_o(g, like)->n_in, in, 1, &type, ir_o(g, like)->loc);
  size_t attr_bytes = sizeof(ir_attr) * (size_t)ir_opinfo_of(kind)->n_attrs;
  memcpy(ir_o(g, op)->attrs, ir_o(g, like)->attrs, attr_bytes);
  ir_type t;
  int32_t n = 0;
  if (!ir_infer_types(g, op, &t, 1, &n, d) || n != 1) {
    ir_op_erase(g, op); /* never inserted: only marks it dead */
    return IR_NONE;
  }
  ir_v(g, ir_o(g, op)->out[0])->type = t;
  ir_op_insert_before(g, anchor, op);
  return op;
}

/* Builds elementwise op `op` on the chain's source (operand k replaced),
 * then the chain again from the inside out with op's result dtype, all
 * before op: made[0] is op's copy, made[n] gives op's value. Inference
 * cannot reject any of them in a verified graph; if it did, everything
 * built is erased, its message dropped, and false returned. */
static bool build_moved(ir_graph *g, ir_opid op, int32_t k, const ir_opid *chain, int32_t n,
                        ir_opid *made) {
  ir_diag quiet;
  ir_buf dropped = {0};
  ir_diag_init(&quiet);
  quiet.capture = &dropped;
  ir_dtype dt = ir_vtype(g, ir_o(g, op)->out[0]).dtype;
  int32_t n_in = ir_o(g, op)->n_in;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)n_in);
  memcpy(in, ir_o(g, op)->in, sizeof(ir_val) * (size_t)n_in);
  in[k] = ir_o(g, chain[n - 1])->in[0];
  ir_type t = ir_vtype(g, in[k]);
  t.dtype = dt;
  int32_t n_made = 0;
  made[0] = build_like(g, op, in, t, op, &quiet);
  bool ok = made[0] != IR_NONE;
  for (int32_t i = n - 1; ok && i >= 0; i--) {
    ir_val prev = ir_o(g, made[n_made++])->out[0];
    t = ir_vtype(g, ir_o(g, chain[i])->out[0]);
    t.dtype = dt;
    made[n_made] = build_like(g, chain[i], &prev, t, op, &quiet);
    ok = made[n_made] != IR_NONE;
  }
  while (!ok && n_made > 0) ir_op_erase(g, made[--n_made]);
  free(in);
  ir_buf_free(&dropped);
  return ok;
}

/* The moved op computes the old result before the data movement: its
 * result is named "<name>.pre", anonymous if the old one was. */
static void name_moved(ir_graph *g, ir_val moved, const char *name) {
  if (!name) return;
  ir_buf b = {0};
  ir_buf_printf(&b, "%s.pre", name);
  ir_value_set_name(g, moved, b.s);
  ir_buf_free(&b);
}

/* f(transpose(x), s) -> transpose(f(x, s)), likewise through reshape and
 * down a whole chain of them at once (see the top of the file). Names: the
 * outermost rebuilt data movement takes f's result name (what later passes
 * and profiles know), the inner ones those of the ops they replace. */
static bool move_before_data_movement(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  int32_t scalar_rank = 0, k = lone_tensor_operand(g, op, &scalar_rank);
  if (k < 0) return false;
  ir_opid *chain = NULL;
  int32_t n = movement_chain(g, ir_o(g, op)->in[k], scalar_rank, &chain);
  ir_opid *made = ir_xmalloc(sizeof(ir_opid) * (size_t)(n + 1));
  bool ok = n > 0 && build_moved(g, op, k, chain, n, made);
  if (ok) {
    name_moved(g, ir_o(g, made[0])->out[0], ir_v(g, ir_o(g, op)->out[0])->name);
    for (int32_t i = 1; i < n; i++)
      ir_v(g, ir_o(g, made[n - i])->out[0])->name = ir_v(g, ir_o(g, chain[i])->out[0])->name;
    ir_val result = ir_o(g, made[n])->out[0];
    ir_v(g, result)->name = ir_v(g, ir_o(g, op)->out[0])->name;
    ir_rewrite_replace(rw, g, op, &result);
    for (int32_t i = 0; i < n; i++) ir_op_erase(g, chain[i]); /* outermost first: now unread */
    for (int32_t i = 0; i <= n; i++) ir_rewrite_notify(rw, made[i]);
  }
  free(made);
  free(chain);
  return ok;
}

static bool simplify(ir_rewriter *rw, ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  switch (o->kind) {
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV:
    return simplify_arith(rw, g, op);
  case IR_OP_NEG: {
    ir_opid inner = ir_def_of_kind(g, o->in[0], IR_OP_NEG);
    return inner != IR_NONE && forward_to(rw, g, op, ir_o(g, inner)->in[0]);
  }
  case IR_OP_CAST: case IR_OP_BROADCAST:
    return forward_to(rw, g, op, o->in[0]);
  case IR_OP_RESHAPE:
    return simplify_reshape(rw, g, op);
  case IR_OP_TRANSPOSE:
    return simplify_transpose(rw, g, op);
  case IR_OP_SLICE:
    return slices_whole_axis(g, op) && forward_to(rw, g, op, o->in[0]);
  case IR_OP_CONCAT:
    return o->n_in == 1 && forward_to(rw, g, op, o->in[0]);
  case IR_OP_REVERSE:
    return simplify_reverse(rw, g, op);
  default:
    return false;
  }
}

static bool canonicalize_op(ir_rewriter *rw, ir_graph *g, ir_opid op, void *ud) {
  (void)ud;
  return try_fold(rw, g, op) || simplify(rw, g, op) || move_before_data_movement(rw, g, op);
}

bool pass_canonicalize(ir_graph *g, pass_ctx *ctx) {
  int64_t limit = 4 * (int64_t)g->n_ops + 1024;
  int64_t applied = ir_rewrite_greedy(g, canonicalize_op, NULL, limit);
  if (applied >= limit) {
    ir_error_at(ctx->diag, (ir_loc){NULL, 0, 0},
                "canonicalize: no fixpoint after %lld rewrites (a bug in a pattern)",
                (long long)applied);
    return false;
  }
  return true;
}
