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
 *     captured matrix (rank 2): the left operand gains a batch axis.
 * Lifted ops are cloned before the scan, reading the scan's xs operands
 * (already [T, ...]) in place of the slices; a lifted value that the
 * remaining body reads becomes a new xs operand of the scan, sliced per
 * step like the others. So the input projection of every RNN, LSTM and GRU
 * layer, x_t W^T + b, becomes one matmul over all T x B rows, then an add,
 * before the recurrence. GRU's b_hn, added to the carry's matmul, stays.
 *
 * Results are bitwise unchanged: every element is computed by the same op
 * on the same values (a matmul row is the same multiply-add chain in a
 * batched matmul). Memory: a lifted value takes T times its per-step size
 * in scratch (not chunked over time yet).
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
  uint8_t *cls;     /* by value id (values existing when the pass started) */
  bool *lift;       /* by op id: lifted out of the loop */
  ir_valmap outer;  /* body value -> its whole-sequence value before the scan */
  ir_diag *diag;
} hoist;

static bool liftable(const hoist *h, ir_opid op) {
  const ir_graph *g = h->g;
  const ir_op *o = ir_o(g, op);
  unsigned flags = ir_opinfo_of(o->kind)->flags;
  if (!(flags & IR_PURE) || (flags & IR_DECLARED) || o->n_regions || o->n_out != 1) return false;
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

/* Classes of the body's values; marks the ops to lift. Whether any.
 * Invariant body ops other than constants stay V_OTHER: copied out of the
 * loop, one that can fail (an integer division, a gather) would run even
 * when the scan runs no step. */
static bool classify(hoist *h) {
  ir_graph *g = h->g;
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
    vclass c = other ? V_OTHER : step ? V_STEP : o->kind == IR_OP_CONSTANT ? V_INV : V_OTHER;
    if (c == V_STEP && (!liftable(h, op) || too_big_lifted(h, op))) c = V_OTHER;
    h->lift[op] = c == V_STEP;
    any |= h->lift[op];
    for (int32_t r = 0; r < o->n_out; r++) h->cls[o->out[r]] = (uint8_t)c;
  }
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
    ir_type t;
    int32_t n = 0;
    if (!ir_infer_types(g, c, &t, 1, &n, h->diag) || n != 1) return false;
    ir_v(g, ir_o(g, c)->out[0])->type = t;
  }
  return true;
}

/* Lifted values the rest of the body (or its yield) reads. */
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

/* The scan again, with the needed lifted values as extra xs. */
static void rebuild(hoist *h, int32_t n_new, const ir_val *inside) {
  ir_graph *g = h->g;
  const ir_op *s = ir_o(g, h->scan);
  int32_t first_captured = h->carries + h->xs, n_in = s->n_in + n_new;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * ((size_t)n_in + 1));
  ir_type *types = ir_xmalloc(sizeof(ir_type) * ((size_t)s->n_out + 1));
  for (int32_t i = 0, j = 0; i < s->n_in; i++) {
    if (i == first_captured)
      for (int32_t k = 0; k < n_new; k++) in[j++] = ir_valmap_get(&h->outer, inside[k]);
    in[j++] = s->in[i];
  }
  if (first_captured == s->n_in)
    for (int32_t k = 0; k < n_new; k++) in[first_captured + k] = ir_valmap_get(&h->outer, inside[k]);
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

static bool hoist_scan(ir_graph *g, ir_opid scan, ir_diag *d) {
  if (ir_get_int(g, scan, "axis") != 0) return true;
  hoist h = {g, scan, ir_o(g, scan)->regions[0], (int32_t)ir_get_int(g, scan, "carries"),
             (int32_t)ir_get_int(g, scan, "xs"), NULL, NULL, {0}, d};
  h.cls = ir_xcalloc((size_t)g->n_vals + 1, 1);
  h.lift = ir_xcalloc((size_t)g->n_ops + 1, sizeof(bool));
  ir_valmap_init(&h.outer);
  bool ok = true;
  if (classify(&h)) {
    map_args_outside(&h);
    ok = clone_lifted(&h);
    if (ok) {
      ir_val *inside;
      int32_t n = needed_inside(&h, &inside);
      rebuild(&h, n, inside);
      free(inside);
    }
  }
  ir_valmap_free(&h.outer);
  free(h.cls);
  free(h.lift);
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
