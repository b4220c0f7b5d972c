/*
 * decompose.c - expands high-level ops that no earlier pass claimed into
 * primitive ops, so that lowering only ever sees primitives. Today that is
 * `attention`; every level's pipeline starts with this pass.
 *
 * attention(q, k, v [, lengths]) {mask, scale, window} with q[..., Tq, D],
 * k[..., Tk, D], v[..., Tk, Dv] becomes, in the block of the attention op
 * and just before it (names derived from the result's, here %att):
 *
 *   %att.q_scaled = mul q, scale                     [..., Tq, D]
 *   %att.logits = matmul %att.q_scaled, k {transpose_b}  [..., Tq, Tk]
 *   %att.mask   = which keys each query sees (bool, broadcastable shape)
 *   %att.masked = select %att.mask, %att.logits, -inf
 *   %att.probs  = softmax over the last axis
 *   %att        = matmul %att.probs, v               [..., Tq, Dv]
 *
 * Scaling q rather than the scores, as PyTorch does, multiplies Tq x D
 * elements instead of Tq x Tk; for the usual scale 1/sqrt(D) with D a power
 * of 4 the scale is a power of two and both orders round identically.
 *
 * The mask follows the interpreter's definition (ir/interp.c): query i sees
 * key j under
 *   causal   j <= i + (Tk - Tq)
 *   padding  j < lengths[b]            (b indexes the first dim of q)
 *   window   causal and (i + Tk - Tq) - j < window
 *   prefix   j < lengths[b] or causal
 *   causal_padding  j < lengths[b] and causal.
 * Tk - Tq may be symbolic, and no op turns a dim into a value, so the causal
 * and window tests are written with positions counted from the end instead:
 * with i' = Tq-1-i and j' = Tk-1-j (an iota reversed along its axis),
 * j <= i + Tk - Tq is j' >= i', and (i + Tk - Tq) - j is j' - i'. Query
 * positions are an iota of shape [Tq, 1], key positions one of [1, Tk], and
 * lengths are reshaped to [B, 1, ..., 1] (q's rank), so each mask is built
 * at the smallest shape that broadcasts against the scores.
 *
 * softmax of a row whose logits are all -inf is NaN, but attention gives 0
 * for a query that sees no key. So when such a row can exist, the softmax is
 * followed by
 *   %att.seen  = reduce_max (cast %att.mask to q's dtype) over the last axis
 *   %att.any   = compare gt %att.seen, 0
 *   %att.probs = select %att.any, %att.softmax, 0
 * It cannot exist, and the guard is left out, for the causal, window and
 * prefix masks when Tk - Tq is provably a constant >= 0: query i then sees
 * key i + Tk - Tq (window >= 1 is guaranteed by the verifier).
 *
 * Numerics: the interpreter's attention computes each row in double and
 * rounds once; the expansion rounds after each op, so results agree within
 * a few ulps of the dtype. One difference is inherent to expressing the mask
 * as a zero probability: a non-finite element of v at a masked key makes
 * the output NaN (0 * inf), where the interpreter never reads it.
 *
 * Needs: a verified graph. Invalidates: the ids of erased attention ops.
 */
#include "pass.h"

#include <math.h>
#include <stdlib.h>

/* ---- building ops in front of the attention op ------------------------------------ */

/* Builds ops one at a time before `anchor`. Ops are created with
 * ir_op_new and typed by ir_infer_types, then inserted, rather than with
 * ir_build_before, because some are declared ops (reshape, cast) whose
 * result type is given, not inferred. The first failure sticks: later
 * calls do nothing and `undo` erases everything already inserted. */
typedef struct expander {
  ir_graph *g;
  ir_diag *diag;
  ir_opid anchor;
  ir_loc loc;
  const char *base; /* name of the attention result, NULL if anonymous */
  ir_opid *made;    /* ops inserted so far, for undo */
  int32_t n_made, cap_made;
  bool ok;
} expander;

static void name_result(expander *x, ir_val v, const char *suffix) {
  if (!x->base) return;
  if (!suffix) {
    ir_value_set_name(x->g, v, x->base);
    return;
  }
  ir_buf b = {0};
  ir_buf_printf(&b, "%s.%s", x->base, suffix);
  ir_value_set_name(x->g, v, b.s);
  ir_buf_free(&b);
}

/* A detached op of kind k; `type` is its result type for declared ops and
 * a placeholder that inference overwrites for the others. */
static ir_opid start(expander *x, ir_opkind k, int32_t n_in, const ir_val *in, ir_type type) {
  return ir_op_new(x->g, k, n_in, in, 1, &type, x->loc);
}

/* Types op by shape inference, inserts it and names its result. */
static ir_val finish(expander *x, ir_opid op, const char *suffix) {
  ir_val out = ir_o(x->g, op)->out[0];
  ir_type t;
  int32_t n = 0;
  if (!x->ok || !ir_infer_types(x->g, op, &t, 1, &n, x->diag) || n != 1) {
    x->ok = false;
    ir_op_erase(x->g, op); /* never inserted: only marks it dead */
    return out;
  }
  ir_v(x->g, out)->type = t;
  ir_op_insert_before(x->g, x->anchor, op);
  ir_grow((void **)&x->made, &x->cap_made, x->n_made + 1, sizeof(ir_opid));
  x->made[x->n_made++] = op;
  name_result(x, out, suffix);
  return out;
}

static void undo(expander *x) {
  while (x->n_made > 0) ir_op_erase(x->g, x->made[--x->n_made]);
}

static ir_val op2(expander *x, ir_opkind k, ir_val a, ir_val b, const char *suffix) {
  ir_val in[2] = {a, b};
  return finish(x, start(x, k, 2, in, ir_vtype(x->g, a)), suffix);
}

static ir_val select3(expander *x, ir_val cond, ir_val a, ir_val b, const char *suffix) {
  ir_val in[3] = {cond, a, b};
  return finish(x, start(x, IR_OP_SELECT, 3, in, ir_vtype(x->g, a)), suffix);
}

static ir_val compare(expander *x, int64_t predicate, ir_val a, ir_val b, const char *suffix) {
  ir_val in[2] = {a, b};
  ir_opid op = start(x, IR_OP_COMPARE, 2, in, ir_vtype(x->g, a));
  ir_set_int(x->g, op, "predicate", predicate);
  return finish(x, op, suffix);
}

static ir_val matmul(expander *x, ir_val a, ir_val b, bool transpose_b, const char *suffix) {
  ir_val in[2] = {a, b};
  ir_opid op = start(x, IR_OP_MATMUL, 2, in, ir_vtype(x->g, a));
  if (transpose_b) ir_set_int(x->g, op, "transpose_b", 1);
  return finish(x, op, suffix);
}

static ir_val with_axis(expander *x, ir_opkind k, ir_val a, int32_t axis, const char *suffix) {
  ir_opid op = start(x, k, 1, &a, ir_vtype(x->g, a));
  ir_set_int(x->g, op, "axis", axis);
  return finish(x, op, suffix);
}

/* A scalar of dtype dt. f32/f16/bf16 constants hold the nearest float, as
 * the text form does, so the graph prints and reparses to itself. */
static ir_val scalar(expander *x, ir_dtype dt, double value, const char *suffix) {
  ir_opid op = start(x, IR_OP_CONSTANT, 0, NULL, ir_type_make(x->g, dt, 0, NULL));
  double f = dt == IR_F64 ? value : (double)(float)value;
  int64_t i = (int64_t)value;
  ir_tensor_data data = {1, NULL, NULL};
  if (ir_dtype_is_float(dt))
    data.f = &f;
  else
    data.i = &i;
  ir_set_tensor(x->g, op, "value", &data);
  return finish(x, op, suffix);
}

/* Positions 0..n-1 along `axis` of a [rows, cols] tensor of dtype dt. */
static ir_val iota2(expander *x, ir_dtype dt, ir_dim rows, ir_dim cols, int32_t axis,
                    const char *suffix) {
  ir_dim dims[2] = {rows, cols};
  ir_opid op = start(x, IR_OP_IOTA, 0, NULL, ir_type_make(x->g, dt, 2, dims));
  ir_set_int(x->g, op, "axis", axis);
  return finish(x, op, suffix);
}

static ir_val declared1(expander *x, ir_opkind k, ir_val a, ir_type type, const char *suffix) {
  return finish(x, start(x, k, 1, &a, type), suffix);
}

/* ---- the attention expansion ---------------------------------------------------- */

typedef struct attention {
  ir_val q, k, v, lengths; /* lengths: IR_NONE without a padding or prefix mask */
  int64_t mask, window;
  double scale;
  int32_t rank;
  ir_dtype dtype;       /* of q, k, v */
  ir_dtype index_dtype; /* of positions: the lengths' dtype, i64 without lengths */
  ir_dim tq, tk;
} attention;

static attention read_attention(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  attention a;
  a.q = o->in[0];
  a.k = o->in[1];
  a.v = o->in[2];
  a.lengths = o->n_in > 3 ? o->in[3] : IR_NONE;
  a.mask = ir_get_int(g, op, "mask");
  a.window = ir_get_int(g, op, "window");
  a.scale = ir_get_float(g, op, "scale");
  ir_type q = ir_vtype(g, a.q);
  a.rank = q.rank;
  a.dtype = q.dtype;
  a.index_dtype = a.lengths != IR_NONE ? ir_vtype(g, a.lengths).dtype : IR_I64;
  a.tq = q.dims[q.rank - 2];
  a.tk = ir_vtype(g, a.k).dims[q.rank - 2];
  return a;
}

/* Keys a query sees under the causal rule, j' >= i' with positions counted
 * from the end (see the top of the file); *lag receives j' - i' when
 * wanted, for the window rule. */
static ir_val causal_mask(expander *x, const attention *a, ir_val *lag, const char *suffix) {
  ir_dim one = ir_dim_const(x->g->dims, 1);
  ir_val row = iota2(x, a->index_dtype, a->tq, one, 0, "row");
  ir_val row_back = with_axis(x, IR_OP_REVERSE, row, 0, "row_back");
  ir_val col = iota2(x, a->index_dtype, one, a->tk, 1, "col");
  ir_val col_back = with_axis(x, IR_OP_REVERSE, col, 1, "col_back");
  ir_val causal = compare(x, IR_CMP_GE, col_back, row_back, suffix);
  if (lag) *lag = op2(x, IR_OP_SUB, col_back, row_back, "lag");
  return causal;
}

/* j < lengths[b]: key positions [1, Tk] against lengths [B, 1, ..., 1]. */
static ir_val padding_mask(expander *x, const attention *a, const char *suffix) {
  ir_dim one = ir_dim_const(x->g->dims, 1);
  ir_val col = iota2(x, a->index_dtype, one, a->tk, 1, "key");
  ir_type len = ir_vtype(x->g, a->lengths);
  ir_dim *dims = ir_xmalloc(sizeof(ir_dim) * (size_t)a->rank);
  /* q's first dim, not the lengths' own: a lengths declared [1] must still
   * be checked against the batch at run time, never broadcast over it. */
  dims[0] = ir_vtype(x->g, a->q).dims[0];
  for (int32_t i = 1; i < a->rank; i++) dims[i] = one;
  ir_type shape = ir_type_make(x->g, len.dtype, a->rank, dims);
  free(dims);
  ir_val lengths = declared1(x, IR_OP_RESHAPE, a->lengths, shape, "lengths");
  return compare(x, IR_CMP_LT, col, lengths, suffix);
}

static ir_val visibility_mask(expander *x, const attention *a) {
  switch (a->mask) {
  case IR_MASK_CAUSAL:
    return causal_mask(x, a, NULL, "mask");
  case IR_MASK_PADDING:
    return padding_mask(x, a, "mask");
  case IR_MASK_WINDOW: {
    ir_val lag;
    ir_val causal = causal_mask(x, a, &lag, "causal");
    /* A lag is below the element limit of any tensor, far below 2^52, and
     * integer constants must stay exact in the interpreter's doubles. */
    int64_t window = a->window < ((int64_t)1 << 52) ? a->window : (int64_t)1 << 52;
    ir_val width = scalar(x, a->index_dtype, (double)window, "window");
    ir_val near = compare(x, IR_CMP_LT, lag, width, "near");
    return op2(x, IR_OP_AND, causal, near, "mask");
  }
  case IR_MASK_CAUSAL_PADDING: {
    ir_val valid = padding_mask(x, a, "valid");
    ir_val causal = causal_mask(x, a, NULL, "causal");
    return op2(x, IR_OP_AND, valid, causal, "mask");
  }
  default: { /* IR_MASK_PREFIX (expand never asks for a mask under none) */
    ir_val valid = padding_mask(x, a, "valid");
    ir_val causal = causal_mask(x, a, NULL, "causal");
    return op2(x, IR_OP_OR, valid, causal, "mask");
  }
  }
}

/* Whether some query may see no key at all, so that its softmax row is NaN
 * and must be replaced by zeros. */
static bool may_have_blind_rows(const ir_graph *g, const attention *a) {
  if (a->mask == IR_MASK_NONE) return false;
  if (a->mask == IR_MASK_PADDING || a->mask == IR_MASK_CAUSAL_PADDING) return true;
  int64_t shift;
  ir_dim d = ir_dim_sub(g->dims, a->tk, a->tq);
  return !(d != IR_DIM_INVALID && ir_dim_is_const(g->dims, d, &shift) && shift >= 0);
}

/* probs where the query's row of `mask` has a visible key, 0 elsewhere. */
static ir_val zero_blind_rows(expander *x, const attention *a, ir_val mask, ir_val probs) {
  ir_type mt = ir_vtype(x->g, mask);
  ir_val visible = declared1(x, IR_OP_CAST, mask, ir_type_make(x->g, a->dtype, mt.rank, mt.dims),
                             "visible");
  ir_opid seen_op = start(x, IR_OP_REDUCE_MAX, 1, &visible, mt);
  int64_t last = -1;
  ir_set_ints(x->g, seen_op, "axes", 1, &last);
  ir_set_int(x->g, seen_op, "keepdims", 1);
  ir_val seen = finish(x, seen_op, "seen");
  ir_val zero = scalar(x, a->dtype, 0.0, "zero");
  ir_val any = compare(x, IR_CMP_GT, seen, zero, "any");
  return select3(x, any, probs, zero, "probs");
}

static ir_val as_dtype(expander *x, ir_val v, ir_dtype dt) {
  ir_type t = ir_vtype(x->g, v);
  t.dtype = dt;
  return declared1(x, IR_OP_CAST, v, t, "f32");
}

/* The expansion of attention op `att`; returns its replacement value.
 * f16/bf16 attention is computed in f32 and rounded once at the end, as the
 * interpreter does in double: its logits and softmax would overflow or lose
 * most of their digits in the narrow type. */
static ir_val expand(expander *x, const attention *narrow, ir_type result) {
  attention wide = *narrow;
  const attention *a = &wide;
  bool in_f32 = narrow->dtype == IR_F16 || narrow->dtype == IR_BF16;
  ir_type declared = result;
  if (in_f32) {
    wide.q = as_dtype(x, narrow->q, IR_F32);
    wide.k = as_dtype(x, narrow->k, IR_F32);
    wide.v = as_dtype(x, narrow->v, IR_F32);
    wide.dtype = IR_F32;
    result.dtype = IR_F32;
  }
  ir_val scale = scalar(x, a->dtype, a->scale, "scale");
  ir_val scaled = op2(x, IR_OP_MUL, a->q, scale, "q_scaled");
  ir_val logits = matmul(x, scaled, a->k, true, "logits");
  int32_t last = a->rank - 1;
  ir_val probs;
  if (a->mask == IR_MASK_NONE) {
    probs = with_axis(x, IR_OP_SOFTMAX, logits, last, "probs");
  } else {
    bool guard = may_have_blind_rows(x->g, a);
    ir_val mask = visibility_mask(x, a);
    ir_val ninf = scalar(x, a->dtype, -INFINITY, "neg_inf");
    ir_val masked = select3(x, mask, logits, ninf, "masked");
    probs = with_axis(x, IR_OP_SOFTMAX, masked, last, guard ? "softmax" : "probs");
    if (guard) probs = zero_blind_rows(x, a, mask, probs);
  }
  ir_val out = matmul(x, probs, a->v, false, in_f32 ? "f32" : NULL);
  /* Batch dims q declares as 1 while k's are symbolic broadcast in the
   * matmuls (the attention requires them equal at run time): restore the
   * attention's declared type. */
  if (x->ok && !ir_type_equal(ir_vtype(x->g, out), result))
    out = declared1(x, IR_OP_RESHAPE, out, result, in_f32 ? "f32" : NULL);
  if (x->ok && in_f32) out = declared1(x, IR_OP_CAST, out, declared, NULL);
  return out;
}

static bool decompose_attention(ir_graph *g, ir_opid op, ir_diag *d) {
  ir_val result = ir_o(g, op)->out[0];
  expander x = {g, d, op, ir_o(g, op)->loc, ir_v(g, result)->name, NULL, 0, 0, true};
  attention a = read_attention(g, op);
  ir_val out = expand(&x, &a, ir_vtype(g, result));
  if (!x.ok) {
    undo(&x);
    ir_error_at(d, ir_o(g, op)->loc, "decompose: cannot expand this attention op");
  } else {
    ir_replace_all_uses(g, result, out);
    ir_op_erase(g, op);
  }
  free(x.made);
  return x.ok;
}

/* ---- the pass ------------------------------------------------------------------- */

typedef struct op_list {
  ir_opid *ops;
  int32_t n, cap;
} op_list;

static bool collect_attention(ir_graph *g, ir_opid op, void *ud) {
  op_list *l = ud;
  if (ir_o(g, op)->kind != IR_OP_ATTENTION) return true;
  ir_grow((void **)&l->ops, &l->cap, l->n + 1, sizeof(ir_opid));
  l->ops[l->n++] = op;
  return true;
}

bool pass_decompose(ir_graph *g, pass_ctx *ctx) {
  op_list found = {0};
  ir_walk(g, g->body, collect_attention, &found);
  bool ok = true;
  for (int32_t i = 0; i < found.n && ok; i++) ok = decompose_attention(g, found.ops[i], ctx->diag);
  free(found.ops);
  return ok;
}
