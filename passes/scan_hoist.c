/*
 * scan_hoist.c - work in a scan body that does not depend on the carries
 * moves out of the loop as one op over the whole sequence.
 *
 * In a top-level scan (axis 0), a body value is per-step when it is
 * computed from the sliced inputs (xs) and captured values only, never
 * from a carry or the step index. A per-step op is lifted when it keeps
 * its meaning with the time axis in front of its per-step operands:
 *   - an elementwise op whose per-step operands all have the result's
 *     rank (they gain the leading T; captured operands broadcast from the
 *     right as before);
 *   - a matmul whose left operand is per-step and whose right operand is a
 *     captured matrix (rank 2): the left operand gains a batch axis;
 *   - a split with constant sizes of a constant dim (its axis moves up).
 * Lifted ops are cloned before the scan, reading the scan's xs operands
 * (already [T, ...]) in place of the slices; a lifted value that the
 * remaining body reads becomes a new xs operand of the scan, sliced per
 * step like the others. A split of captured values only (constant sizes)
 * runs once before the loop too, its pieces the body reads becoming new
 * captured operands (last).
 *
 * Results are bitwise unchanged: every element is computed by the same op
 * on the same values (a matmul row is the same multiply-add chain in a
 * batched matmul). The recurrent biases stay in the body: folding them
 * into the lifted projection regroups float adds, which the separate
 * fold-biases pass does (-O3 only; scan_hoist_fold_biases below). Memory:
 * a lifted value takes T times its per-step size in scratch, except a
 * product only its scan reads, which codegen computes chunk by chunk
 * (codegen/lower_scan.c, at most 1 MiB or one step).
 *
 * Scans inside regions, scans along another axis and ops with regions are
 * left alone. Needs: a verified graph. Deterministic: body order.
 */
#include "pass.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum vclass { V_OTHER = 0, V_STEP, V_INV } vclass;

typedef struct hoist {
  ir_graph *g;
  ir_opid scan;
  ir_blockid body;
  int32_t carries, xs;
  uint8_t *cls;     /* by value id (values existing when last classified) */
  bool *lift;       /* by op id: lifted out of the loop */
  int32_t n_cls;    /* values classified; newer ones count as V_OTHER */
  ir_valmap outer;  /* body value -> its whole-sequence value before the scan */
  ir_diag *diag;
} hoist;

static vclass cls_of(const hoist *h, ir_val v) {
  return v >= 0 && v < h->n_cls ? (vclass)h->cls[v] : V_OTHER;
}

/* A split whose sizes and cut dim are constants: the verifier has checked
 * them, so it cannot fail at run time (not even copied out of the loop). */
static bool static_split(const ir_graph *g, ir_opid op) {
  if (ir_o(g, op)->kind != IR_OP_SPLIT) return false;
  const ir_attr *sizes = ir_get_attr(g, op, "sizes");
  int64_t v;
  for (int32_t i = 0; i < sizes->u.dims.n; i++)
    if (!ir_dim_is_const(g->dims, sizes->u.dims.v[i], &v)) return false;
  ir_type t = ir_vtype(g, ir_o(g, op)->in[0]);
  return ir_dim_is_const(g->dims, t.dims[ir_get_int(g, op, "axis")], &v);
}

static bool liftable(const hoist *h, ir_opid op) {
  const ir_graph *g = h->g;
  const ir_op *o = ir_o(g, op);
  unsigned flags = ir_opinfo_of(o->kind)->flags;
  if (!(flags & IR_PURE) || (flags & IR_DECLARED) || o->n_regions) return false;
  if (o->kind == IR_OP_SPLIT) return static_split(g, op); /* its one operand is per-step */
  if (o->n_out != 1) return false;
  int32_t rank = ir_vtype(g, o->out[0]).rank;
  if (o->kind == IR_OP_MATMUL)
    return h->cls[o->in[0]] == V_STEP && h->cls[o->in[1]] == V_INV && ir_vtype(g, o->in[1]).rank == 2;
  if (!(flags & IR_ELEMENTWISE)) return false;
  for (int32_t i = 0; i < o->n_in; i++)
    if (h->cls[o->in[i]] == V_STEP && ir_vtype(g, o->in[i]).rank != rank) return false;
  return true;
}

/* A sliced input counts as per-step only when its leading dim is the
 * scan's length itself: a dim the verifier left to a run-time check (a
 * declared 1, another constant) must keep failing inside the scan, not
 * broadcast or mismatch in a lifted op. */
static bool sliced_by_length(const hoist *h, ir_val outer) {
  ir_type t = ir_vtype(h->g, outer);
  return t.rank > 0 && t.dims[0] == ir_get_dim(h->g, h->scan, "length");
}

/* Whether the lifted op's result type, T times the body's, would exceed
 * int64 elements (the verifier's limit); only static shapes can tell. */
static bool too_big_lifted(const hoist *h, ir_opid op) {
  int64_t len, n = ir_type_static_numel(h->g, ir_vtype(h->g, ir_o(h->g, op)->out[0]));
  if (!ir_dim_is_const(h->g->dims, ir_get_dim(h->g, h->scan, "length"), &len) || n < 0) return false;
  return len > 0 && n > INT64_MAX / len;
}

/* Classes of the body's values (again after a rewrite); marks the ops to
 * lift. Whether any. Invariant body ops other than constants and static
 * splits stay V_OTHER: copied out of the loop, one that can fail (an
 * integer division, a gather) would run even when the scan runs no step. */
static bool classify(hoist *h) {
  ir_graph *g = h->g;
  free(h->cls);
  free(h->lift);
  h->n_cls = g->n_vals;
  h->cls = ir_xcalloc((size_t)g->n_vals + 1, 1);
  h->lift = ir_xcalloc((size_t)g->n_ops + 1, sizeof(bool));
  const ir_block *b = ir_b(g, h->body);
  for (int32_t a = 1 + h->carries; a < b->n_args; a++) {
    bool xs = a < 1 + h->carries + h->xs;
    h->cls[b->args[a]] = !xs ? V_INV : sliced_by_length(h, ir_o(g, h->scan)->in[a - 1]) ? V_STEP : V_OTHER;
  }
  bool any = false;
  for (ir_opid op = b->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    bool step = false, other = o->n_regions > 0 || !(ir_opinfo_of(o->kind)->flags & IR_PURE);
    for (int32_t i = 0; i < o->n_in; i++) {
      step |= h->cls[o->in[i]] == V_STEP;
      other |= h->cls[o->in[i]] == V_OTHER;
    }
    bool inv = o->kind == IR_OP_CONSTANT || static_split(g, op);
    vclass c = other ? V_OTHER : step ? V_STEP : inv ? V_INV : V_OTHER;
    if (c == V_STEP && (!liftable(h, op) || too_big_lifted(h, op))) c = V_OTHER;
    /* A static split of captured values is computed once before the loop
     * too, the body reading its pieces as captured operands. */
    h->lift[op] = c == V_STEP || (c == V_INV && o->kind != IR_OP_CONSTANT);
    any |= h->lift[op];
    for (int32_t r = 0; r < o->n_out; r++) h->cls[o->out[r]] = (uint8_t)c;
  }
  return any;
}

/* ---- folding captured biases into the lifted values (fold-biases) --------
 * A sum of the body mixing per-step terms S, captured (invariant) terms B
 * and carry-dependent terms M, in any grouping, say S + (M + B), is
 * regrouped as (S + B) + M: S + B is per-step, so it is lifted and each
 * step adds one term less. So the input projection of a layer takes in its
 * recurrent bias b_hh. Only adds are taken apart: a bias inside another
 * op, as GRU's b_hn in r * (W_hn h + b_hn), stays where it is. A split of
 * M + B along its last axis, with B a row, is first turned into splits of
 * M and of B and per-piece adds (the same values), so that the pieces a
 * per-step value is added to (GRU's r and z) can be regrouped too.
 * Regrouping rounds differently: float adds do not associate, so the
 * result can move by an ulp of the largest partial sum, which under
 * cancellation (x_t W and h U nearly opposite, or their sum overflowing)
 * is all of a small result. That is why only fold-biases (-O3) does it,
 * and only on f32 and f64. */

/* The adds taken apart in a sum and its terms, left to right. */
typedef struct sum {
  ir_opid *adds; /* the root first, then inner adds, each before its operands' */
  ir_val *terms;
  int32_t n_adds, n_terms;
} sum;

static bool fold_dtype(ir_type t) { return t.dtype == IR_F32 || t.dtype == IR_F64; }

/* Whether v is an add made in the body that the sum of type t may take
 * apart: carry-dependent, of type t and read only by the sum. */
static bool inner_add(const hoist *h, ir_val v, ir_type t) {
  const ir_graph *g = h->g;
  return ir_def_of_kind(g, v, IR_OP_ADD) != IR_NONE && cls_of(h, v) == V_OTHER &&
         ir_type_equal(ir_vtype(g, v), t) && ir_value_use_count(g, v) == 1;
}

static void take_apart(const hoist *h, ir_opid root, sum *s) {
  const ir_graph *g = h->g;
  ir_type t = ir_vtype(g, ir_o(g, root)->out[0]);
  ir_val *stack = ir_xmalloc(sizeof(ir_val) * ((size_t)g->n_vals + 2));
  int32_t n = 0;
  s->adds[s->n_adds++] = root;
  stack[n++] = ir_o(g, root)->in[1];
  stack[n++] = ir_o(g, root)->in[0];
  while (n > 0) {
    ir_val v = stack[--n];
    if (!inner_add(h, v, t)) {
      s->terms[s->n_terms++] = v;
      continue;
    }
    ir_opid d = ir_v(g, v)->def;
    s->adds[s->n_adds++] = d;
    stack[n++] = ir_o(g, d)->in[1];
    stack[n++] = ir_o(g, d)->in[0];
  }
  free(stack);
}

/* Regroups the sum whose last add is root when it mixes the three kinds
 * of terms (see above); *changed says whether it did. */
static bool regroup(hoist *h, ir_opid root, bool *changed) {
  ir_graph *g = h->g;
  ir_val out = ir_o(g, root)->out[0];
  ir_type t = ir_vtype(g, out);
  if (cls_of(h, out) != V_OTHER || !fold_dtype(t)) return true;
  sum s = {ir_xmalloc(sizeof(ir_opid) * ((size_t)g->n_ops + 1)),
           ir_xmalloc(sizeof(ir_val) * ((size_t)g->n_vals + 1)), 0, 0};
  take_apart(h, root, &s);
  /* Ordered: per-step terms of the sum's type, captured rows or scalars,
   * then the rest as they came. */
  ir_val *order = ir_xmalloc(sizeof(ir_val) * ((size_t)s.n_terms + 1));
  int32_t n = 0, n_step = 0, n_inv = 0;
  for (int32_t i = 0; i < s.n_terms; i++)
    if (cls_of(h, s.terms[i]) == V_STEP && ir_type_equal(ir_vtype(g, s.terms[i]), t)) order[n++] = s.terms[i], n_step++;
  for (int32_t i = 0; i < s.n_terms; i++)
    if (cls_of(h, s.terms[i]) == V_INV && ir_broadcast_class(g, ir_vtype(g, s.terms[i]), t) != IR_BCAST_OTHER)
      order[n++] = s.terms[i], n_inv++;
  bool ok = true;
  if (n_step > 0 && n_inv > 0 && n < s.n_terms) {
    for (int32_t i = 0; i < s.n_terms; i++) {
      bool front = false;
      for (int32_t k = 0; k < n_step + n_inv; k++) front |= order[k] == s.terms[i];
      if (!front) order[n++] = s.terms[i];
    }
    ir_val acc = order[0];
    for (int32_t i = 1; ok && i < n; i++) {
      ir_opid a = ir_build_before(g, root, IR_OP_ADD, 2, (ir_val[]){acc, order[i]}, NULL, NULL, h->diag);
      ok = a != IR_NONE;
      if (ok) acc = ir_o(g, a)->out[0];
    }
    if (ok) {
      ir_v(g, acc)->name = ir_v(g, out)->name;
      ir_replace_all_uses(g, out, acc);
      for (int32_t i = 0; i < s.n_adds; i++) ir_op_erase(g, s.adds[i]);
      *changed = true;
    }
  }
  free(order);
  free(s.adds);
  free(s.terms);
  return ok;
}

/* Whether a result of split op is added to a per-step value. */
static bool piece_meets_step(const hoist *h, ir_opid split) {
  const ir_graph *g = h->g;
  for (ir_opid op = ir_b(g, h->body)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    if (o->kind != IR_OP_ADD) continue;
    for (int32_t i = 0; i < 2; i++)
      if (ir_v(g, o->in[i])->def == split && cls_of(h, o->in[1 - i]) == V_STEP) return true;
  }
  return false;
}

typedef struct split_attrs {
  int64_t axis;
  int32_t n;
  const ir_dim *sizes;
} split_attrs;

static void set_split_attrs(ir_graph *g, ir_opid op, void *ud) {
  const split_attrs *a = ud;
  ir_set_int(g, op, "axis", a->axis);
  ir_set_dims(g, op, "sizes", a->n, a->sizes);
}

/* split(M + B) along the last axis, B a captured row: split(M) and split(B)
 * added piece by piece, when a piece meets a per-step value (see above). */
static bool split_sum(hoist *h, ir_opid op, bool *changed) {
  ir_graph *g = h->g;
  if (ir_o(g, op)->kind != IR_OP_SPLIT || cls_of(h, ir_o(g, op)->out[0]) != V_OTHER || !static_split(g, op))
    return true;
  ir_val a = ir_o(g, op)->in[0];
  ir_type t = ir_vtype(g, a);
  ir_opid add = ir_def_of_kind(g, a, IR_OP_ADD);
  if (add == IR_NONE || !fold_dtype(t) || ir_get_int(g, op, "axis") != t.rank - 1 || ir_value_use_count(g, a) != 1)
    return true;
  int32_t bi = -1;
  for (int32_t i = 0; i < 2; i++) {
    ir_val b = ir_o(g, add)->in[i], m = ir_o(g, add)->in[1 - i];
    if (cls_of(h, b) == V_INV && ir_vtype(g, b).rank == 1 && ir_broadcast_class(g, ir_vtype(g, b), t) == IR_BCAST_ROW &&
        cls_of(h, m) == V_OTHER && ir_type_equal(ir_vtype(g, m), t))
      bi = i;
  }
  if (bi < 0 || !piece_meets_step(h, op)) return true;
  const ir_attr *sz = ir_get_attr(g, op, "sizes");
  int32_t n = sz->u.dims.n;
  ir_dim *sizes = ir_xmalloc(sizeof(ir_dim) * (size_t)n);
  memcpy(sizes, sz->u.dims.v, sizeof(ir_dim) * (size_t)n);
  split_attrs sm = {t.rank - 1, n, sizes}, sb = {0, n, sizes};
  ir_val m = ir_o(g, add)->in[1 - bi], b = ir_o(g, add)->in[bi];
  ir_opid pm = ir_build_before(g, op, IR_OP_SPLIT, 1, &m, set_split_attrs, &sm, h->diag);
  ir_opid pb = pm == IR_NONE ? IR_NONE : ir_build_before(g, op, IR_OP_SPLIT, 1, &b, set_split_attrs, &sb, h->diag);
  bool ok = pb != IR_NONE;
  for (int32_t i = 0; ok && i < n; i++) {
    ir_val in[2];
    in[1 - bi] = ir_o(g, pm)->out[i];
    in[bi] = ir_o(g, pb)->out[i];
    ir_opid piece = ir_build_before(g, op, IR_OP_ADD, 2, in, NULL, NULL, h->diag);
    ok = piece != IR_NONE;
    if (!ok) break;
    ir_val old = ir_o(g, op)->out[i], now = ir_o(g, piece)->out[0];
    ir_v(g, now)->name = ir_v(g, old)->name;
    ir_replace_all_uses(g, old, now);
  }
  if (ok) {
    ir_op_erase(g, op);
    ir_op_erase(g, add);
    *changed = true;
  }
  free(sizes);
  return ok;
}

/* Both rewrites over the body, each followed by classifying again. Whether
 * any op is to be lifted then; *ok false on an error. */
static bool fold_biases(hoist *h, bool *ok) {
  ir_graph *g = h->g;
  bool any = classify(h), changed = false;
  for (ir_opid op = ir_b(g, h->body)->first, next; *ok && op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    *ok = split_sum(h, op, &changed);
  }
  if (changed) any = classify(h);
  changed = false;
  for (ir_opid op = ir_b(g, h->body)->first, next; *ok && op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    if (ir_o(g, op)->kind == IR_OP_ADD) *ok = regroup(h, op, &changed);
  }
  if (changed) any = classify(h);
  return any;
}

/* The body argument's value outside: the scan operand it is bound to. */
static void map_args_outside(hoist *h) {
  const ir_block *b = ir_b(h->g, h->body);
  for (int32_t a = 1 + h->carries; a < b->n_args; a++)
    ir_valmap_set(&h->outer, b->args[a], ir_o(h->g, h->scan)->in[a - 1]);
}

/* Clones the lifted ops before the scan (before its concurrent group, if
 * any), typed for the whole sequence. Constants of the body are copied out
 * too, for lifted ops to read; they also stay inside, and dce drops the
 * copies nothing reads. */
static bool clone_lifted(hoist *h) {
  ir_graph *g = h->g;
  ir_opid front = ir_concurrent_front(g, h->scan);
  for (ir_opid op = ir_b(g, h->body)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    bool invariant = o->n_out > 0 && h->cls[o->out[0]] == V_INV;
    if (!h->lift[op] && !invariant) continue;
    ir_opid c = ir_op_clone(g, op, g->body, &h->outer);
    ir_op_move_before(g, front, c);
    if (invariant) continue;
    if (ir_o(g, c)->kind == IR_OP_SPLIT) ir_set_int(g, c, "axis", ir_get_int(g, c, "axis") + 1);
    int32_t n_out = ir_o(g, c)->n_out, n = 0;
    ir_type *t = ir_xmalloc(sizeof(ir_type) * (size_t)n_out);
    bool ok = ir_infer_types(g, c, t, n_out, &n, h->diag) && n == n_out;
    for (int32_t r = 0; ok && r < n; r++) ir_v(g, ir_o(g, c)->out[r])->type = t[r];
    free(t);
    if (!ok) return false;
  }
  return true;
}

/* Lifted values the rest of the body (or its yield) reads, in the order
 * first read. */
static int32_t needed_inside(const hoist *h, ir_val **out) {
  ir_graph *g = h->g;
  ir_val *vals = ir_xmalloc(sizeof(ir_val) * ((size_t)g->n_ops + 1));
  int32_t n = 0;
  bool *seen = ir_xcalloc((size_t)g->n_vals + 1, sizeof(bool));
  for (ir_opid op = ir_b(g, h->body)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    if (h->lift[op]) continue;
    const ir_op *o = ir_o(g, op);
    for (int32_t i = 0; i < o->n_in; i++) {
      ir_val v = o->in[i];
      if (v < 0 || seen[v] || ir_v(g, v)->def == IR_NONE || !h->lift[ir_v(g, v)->def]) continue;
      seen[v] = true;
      vals[n++] = v;
    }
  }
  free(seen);
  *out = vals;
  return n;
}

/* The scan again, with the needed lifted values as extra xs (inside) and
 * the needed invariant ones as extra captured operands, last (cap). */
static void rebuild(hoist *h, int32_t n_new, const ir_val *inside, int32_t n_cap, const ir_val *cap) {
  ir_graph *g = h->g;
  const ir_op *s = ir_o(g, h->scan);
  int32_t first_captured = h->carries + h->xs, n_in = s->n_in + n_new + n_cap;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * ((size_t)n_in + 1));
  ir_type *types = ir_xmalloc(sizeof(ir_type) * ((size_t)s->n_out + 1));
  for (int32_t i = 0, j = 0; i < s->n_in; i++) {
    if (i == first_captured)
      for (int32_t k = 0; k < n_new; k++) in[j++] = ir_valmap_get(&h->outer, inside[k]);
    in[j++] = s->in[i];
  }
  if (first_captured == s->n_in)
    for (int32_t k = 0; k < n_new; k++) in[first_captured + k] = ir_valmap_get(&h->outer, inside[k]);
  for (int32_t k = 0; k < n_cap; k++) in[s->n_in + n_new + k] = ir_valmap_get(&h->outer, cap[k]);
  for (int32_t r = 0; r < s->n_out; r++) types[r] = ir_vtype(g, s->out[r]);
  ir_opid fresh = ir_op_new(g, IR_OP_SCAN, n_in, in, s->n_out, types, s->loc);
  s = ir_o(g, h->scan);
  memcpy(ir_o(g, fresh)->attrs, s->attrs, sizeof(ir_attr) * (size_t)ir_opinfo_of(IR_OP_SCAN)->n_attrs);
  ir_set_int(g, fresh, "xs", h->xs + n_new);
  free(in);
  free(types);

  ir_blockid dst = ir_o(g, fresh)->regions[0];
  ir_valmap m;
  ir_valmap_init(&m);
  const ir_block *b = ir_b(g, h->body);
  for (int32_t a = 0; a < b->n_args; a++) {
    if (a == 1 + first_captured)
      for (int32_t k = 0; k < n_new; k++)
        ir_valmap_set(&m, inside[k], ir_block_add_arg(g, dst, ir_vtype(g, inside[k]), ir_v(g, inside[k])->name));
    ir_val arg = ir_b(g, h->body)->args[a];
    ir_valmap_set(&m, arg, ir_block_add_arg(g, dst, ir_vtype(g, arg), ir_v(g, arg)->name));
  }
  if (1 + first_captured == b->n_args)
    for (int32_t k = 0; k < n_new; k++)
      ir_valmap_set(&m, inside[k], ir_block_add_arg(g, dst, ir_vtype(g, inside[k]), ir_v(g, inside[k])->name));
  for (int32_t k = 0; k < n_cap; k++)
    ir_valmap_set(&m, cap[k], ir_block_add_arg(g, dst, ir_vtype(g, cap[k]), ir_v(g, cap[k])->name));
  for (ir_opid op = ir_b(g, h->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (!h->lift[op]) ir_op_clone(g, op, dst, &m);
  ir_valmap_free(&m);

  ir_op_insert_before(g, h->scan, fresh);
  for (int32_t r = 0; r < ir_o(g, fresh)->n_out; r++) {
    ir_val old = ir_o(g, h->scan)->out[r], now = ir_o(g, fresh)->out[r];
    ir_v(g, now)->name = ir_v(g, old)->name;
    ir_replace_all_uses(g, old, now);
  }
  ir_op_erase(g, h->scan);
}

static hoist new_hoist(ir_graph *g, ir_opid scan, ir_diag *d) {
  hoist h = {g, scan, ir_o(g, scan)->regions[0], (int32_t)ir_get_int(g, scan, "carries"),
             (int32_t)ir_get_int(g, scan, "xs"), NULL, NULL, 0, {0}, d};
  ir_valmap_init(&h.outer);
  return h;
}

static void free_hoist(hoist *h) {
  ir_valmap_free(&h->outer);
  free(h->cls);
  free(h->lift);
}

static bool hoist_scan(ir_graph *g, ir_opid scan, ir_diag *d) {
  if (ir_get_int(g, scan, "axis") != 0) return true;
  hoist h = new_hoist(g, scan, d);
  bool ok = true;
  if (classify(&h)) {
    map_args_outside(&h);
    ok = clone_lifted(&h);
    if (ok) {
      ir_val *inside;
      int32_t n = needed_inside(&h, &inside), n_xs = 0, n_cap = 0;
      ir_val *cap = ir_xmalloc(sizeof(ir_val) * ((size_t)n + 1));
      for (int32_t i = 0; i < n; i++) {
        if (h.cls[inside[i]] == V_STEP) inside[n_xs++] = inside[i];
        else cap[n_cap++] = inside[i];
      }
      rebuild(&h, n_xs, inside, n_cap, cap);
      free(inside);
      free(cap);
    }
  }
  free_hoist(&h);
  return ok;
}

bool scan_hoist_fold_biases(ir_graph *g, pass_ctx *ctx) {
  bool ok = true;
  for (ir_opid op = ir_b(g, g->body)->first; ok && op != IR_NONE; op = ir_o(g, op)->next) {
    if (ir_o(g, op)->kind != IR_OP_SCAN || ir_get_int(g, op, "axis") != 0) continue;
    hoist h = new_hoist(g, op, ctx->diag);
    fold_biases(&h, &ok);
    free_hoist(&h);
  }
  return ok;
}

bool pass_scan_hoist(ir_graph *g, pass_ctx *ctx) {
  bool ok = true;
  for (ir_opid op = ir_b(g, g->body)->first, next; ok && op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    if (ir_o(g, op)->kind == IR_OP_SCAN) ok = hoist_scan(g, op, ctx->diag);
  }
  return ok;
}
