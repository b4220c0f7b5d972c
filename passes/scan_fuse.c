/*
 * scan_fuse.c - the fuse pass's first step (fuse.c): pointwise producers
 * of a scan's per-step inputs move into its loads, pointwise consumers of
 * its per-step outputs into its stores (ALGORITHMS.md section 5, rule 4).
 *
 * scan-hoist moves every op of a body that reads no carry out of the loop
 * as one op over the whole sequence, which is what an input projection
 * wants (one GEMM over T x B rows) but not a pointwise op: a selective
 * SSM's exp(dt * A) or a masked input x * mask becomes a [T, ...] buffer
 * written once and read once, one step at a time. This step moves such an
 * op back into the body, where it computes one step's slice in registers.
 *
 *  - Producer: an op P of the scan's block, pointwise (elementwise, one
 *    result, none that can fail at run time), whose result is read by
 *    nothing but the scan, as one of its per-step inputs (xs). The body
 *    computes P per step: each operand of P that is a sequence along the
 *    scan axis becomes a per-step input, each operand without the scan
 *    axis a captured value (an operand the scan already takes that way is
 *    taken once). P's operands may be produced the same way, so a chain
 *    moves one op at a time.
 *  - Consumer: an op C of the scan's block, pointwise, reading one per-step
 *    output (ys) of the scan that nothing else reads. The body yields C's
 *    value in that output's place; C's other operands must be defined
 *    before the scan (before its concurrent group), sequences becoming
 *    per-step inputs, the rest captured, or be made after it by pointwise
 *    ops reading only such values, which move up before the group first
 *    (silu(z) gating the scan's output). A carry's final value is not a
 *    per-step output, and an op reading across steps (a reduction over the
 *    scan axis, a reverse, a slice) is not pointwise: neither moves.
 *
 * Shapes. A sequence operand has the result's rank and the scan's length
 * (the same dim) at the scan axis; an operand without the axis has at most
 * as many dims as follow the axis (numpy broadcasting aligns it the same
 * way per step). Per step, each operand must be read whole (the result's
 * dims) or as a column (the result's dims with the last one 1: a mask),
 * and an operand without the axis also as a row or a scalar; a consumer's
 * result has its per-step output's type. These are the reads the
 * persistent recurrent kernel (codegen/lower_recurrent.c) indexes, so a
 * scan that ran as one keeps running as one; they also need no run-time
 * dim check, which would otherwise not run when the scan runs no step.
 *
 * Not moved: an op of a GEMM epilogue (fuse.c marks them: a product's
 * bias and activation stay where the chunked input projection computes
 * them), an op with several readers (never duplicated) or read as a
 * graph output. Each move rebuilds the scan with the new operands and
 * body, the moved op first in the body (a producer) or last before the
 * yield (a consumer), keeping its name; the scan keeps its results' names
 * except a consumer's output, which takes the consumer's. Every element
 * is computed by the same op on the same values, so results are bitwise
 * unchanged. Needs: a verified graph. Deterministic: block order.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>

typedef enum operand_kind { OPND_NONE, OPND_SEQ, OPND_INV } operand_kind;

typedef struct scan_view {
  ir_opid op;
  int32_t carries, xs, captured, outputs, axis;
  ir_dim length;
} scan_view;

static scan_view view_of(const ir_graph *g, ir_opid scan) {
  scan_view s;
  s.op = scan;
  s.carries = (int32_t)ir_get_int(g, scan, "carries");
  s.xs = (int32_t)ir_get_int(g, scan, "xs");
  s.captured = ir_o(g, scan)->n_in - s.carries - s.xs;
  s.outputs = ir_o(g, scan)->n_out - s.carries;
  s.axis = (int32_t)ir_get_int(g, scan, "axis");
  s.length = ir_get_dim(g, scan, "length");
  return s;
}

/* t is r's column: r's dims but a last dim declared 1. */
static bool is_column(const ir_graph *g, ir_type t, ir_type r) {
  if (t.rank != r.rank || t.rank == 0 || !ir_dim_is_one(g->dims, t.dims[t.rank - 1])) return false;
  for (int32_t d = 0; d + 1 < t.rank; d++)
    if (t.dims[d] != r.dims[d]) return false;
  return true;
}

/* Elementwise, one result, no region, nothing that can fail at run time
 * (an integer division, a conversion to an integer). */
static bool is_pointwise(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  if (!(ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE) || o->n_out != 1 || o->n_regions) return false;
  bool float_result = ir_dtype_is_float(ir_vtype(g, o->out[0]).dtype);
  return !((o->kind == IR_OP_DIV || o->kind == IR_OP_CAST) && !float_result);
}

/* How op (result type r, the scan axis at s->axis with the scan's length)
 * reads operand v per step, or OPND_NONE when it may not move (see the
 * top: shapes). */
static operand_kind operand_kind_of(ir_graph *g, const scan_view *s, ir_type r, ir_val v) {
  ir_type t = ir_vtype(g, v), rs = ir_type_without_dim(g, r, s->axis);
  if (t.rank == r.rank) {
    if (t.dims[s->axis] != s->length) return OPND_NONE;
    ir_type ts = ir_type_without_dim(g, t, s->axis);
    return ir_dims_equal(ts, rs) || is_column(g, ts, rs) ? OPND_SEQ : OPND_NONE;
  }
  if (t.rank > r.rank - 1 - s->axis) return OPND_NONE;
  bool ok = ir_broadcast_class(g, t, rs) != IR_BCAST_OTHER || is_column(g, t, rs);
  return ok ? OPND_INV : OPND_NONE;
}

/* Whether every operand of op (but `skip`, the per-step output a consumer
 * reads) may move into the scan, and op's result runs along the scan. */
static bool operands_move(ir_graph *g, const scan_view *s, ir_opid op, ir_val skip) {
  ir_type r = ir_vtype(g, ir_o(g, op)->out[0]);
  if (r.rank <= s->axis || r.dims[s->axis] != s->length) return false;
  for (int32_t i = 0; i < ir_o(g, op)->n_in; i++) {
    ir_val v = ir_o(g, op)->in[i];
    if (v != skip && operand_kind_of(g, s, r, v) == OPND_NONE) return false;
  }
  return true;
}

/* Whether v is defined before op anchor in its block (or is an argument). */
static bool defined_before(const ir_graph *g, ir_val v, ir_opid anchor) {
  ir_opid def = ir_v(g, v)->def;
  if (def == IR_NONE) return true;
  for (ir_opid op = ir_o(g, anchor)->prev; op != IR_NONE; op = ir_o(g, op)->prev)
    if (op == def) return true;
  return false;
}

#define MAX_HOIST_DEPTH 8 /* pointwise ops a consumer's operand may need moved up */

/* Whether v is defined before anchor, or made after it by pointwise ops
 * (at most `depth` deep) that read only such values: those may move up
 * to just before anchor (silu(z) written after the scan whose output it
 * gates). */
static bool available_before(const ir_graph *g, ir_val v, ir_opid anchor, int32_t depth) {
  if (defined_before(g, v, anchor)) return true;
  ir_opid def = ir_v(g, v)->def;
  if (depth == 0 || !is_pointwise(g, def)) return false;
  for (int32_t i = 0; i < ir_o(g, def)->n_in; i++)
    if (!available_before(g, ir_o(g, def)->in[i], anchor, depth - 1)) return false;
  return true;
}

/* Moves what makes v (available_before) up to just before anchor. */
static void move_up(ir_graph *g, ir_val v, ir_opid anchor) {
  if (defined_before(g, v, anchor)) return;
  ir_opid def = ir_v(g, v)->def;
  for (int32_t i = 0; i < ir_o(g, def)->n_in; i++) move_up(g, ir_o(g, def)->in[i], anchor);
  ir_op_move_before(g, anchor, def);
}

/* ---- candidates ------------------------------------------------------------ */

typedef struct move {
  ir_opid op;    /* the producer or consumer, IR_NONE for none */
  bool producer;
  int32_t slot;  /* producer: the xs it makes; consumer: the ys it reads */
} move;

static bool may_move(const ir_graph *g, const bool *keep, int32_t n_keep, ir_opid op) {
  return !(op < n_keep && keep[op]) && is_pointwise(g, op);
}

/* The first per-step input made by a producer that may move. */
static move find_producer(ir_graph *g, const int32_t *uses, const bool *keep, int32_t n_keep, const scan_view *s) {
  const ir_op *o = ir_o(g, s->op);
  for (int32_t i = 0; i < s->xs; i++) {
    ir_val v = o->in[s->carries + i];
    ir_opid def = ir_v(g, v)->def;
    if (def == IR_NONE || uses[v] != 1 || ir_o(g, def)->block != o->block) continue;
    if (may_move(g, keep, n_keep, def) && operands_move(g, s, def, IR_NONE)) return (move){def, true, i};
  }
  return (move){IR_NONE, false, 0};
}

/* Whether consumer op, reading the scan's output y, may take its place:
 * y's type, and every other operand available before the scan's group. */
static bool consumer_fits(ir_graph *g, const scan_view *s, ir_opid op, ir_val y) {
  const ir_op *o = ir_o(g, op);
  if (!ir_type_equal(ir_vtype(g, o->out[0]), ir_vtype(g, y))) return false;
  ir_opid front = ir_concurrent_front(g, s->op);
  for (int32_t i = 0; i < o->n_in; i++)
    if (o->in[i] != y && !available_before(g, o->in[i], front, MAX_HOIST_DEPTH)) return false;
  return operands_move(g, s, op, y);
}

/* The first per-step output whose one reader is a consumer that may move. */
static move find_consumer(ir_graph *g, const int32_t *uses, const bool *keep, int32_t n_keep, const scan_view *s) {
  for (int32_t k = 0; k < s->outputs; k++) {
    ir_val y = ir_o(g, s->op)->out[s->carries + k];
    if (uses[y] == 0) continue;
    ir_opid c = fuse_only_reader(g, uses, s->op, y);
    if (c != IR_NONE && may_move(g, keep, n_keep, c) && consumer_fits(g, s, c, y)) return (move){c, false, k};
  }
  return (move){IR_NONE, false, 0};
}

/* ---- the rebuilt scan ------------------------------------------------------ */

typedef struct operands {
  ir_val *xs, *cap;    /* whole values outside, in the new order */
  int32_t n_xs, n_cap;
  int32_t *old_xs;     /* by old xs index: its new index, -1 when it goes */
  int32_t *at;         /* by operand of the moved op: its new xs index, or
                        * -1 - its captured index (unused for the output a
                        * consumer reads) */
} operands;

static int32_t add_unique(ir_val *list, int32_t *n, ir_val v) {
  for (int32_t i = 0; i < *n; i++)
    if (list[i] == v) return i;
  list[*n] = v;
  return (*n)++;
}

/* The new scan's xs and captured operands: the old ones (less the xs a
 * producer makes), then the moved op's operands not already taken. */
static operands new_operands(ir_graph *g, const scan_view *s, const move *m) {
  const ir_op *o = ir_o(g, s->op), *mo = ir_o(g, m->op);
  operands p = {ir_xmalloc(sizeof(ir_val) * (size_t)(s->xs + mo->n_in + 1)),
                ir_xmalloc(sizeof(ir_val) * (size_t)(s->captured + mo->n_in + 1)), 0, 0,
                ir_xmalloc(sizeof(int32_t) * (size_t)(s->xs + 1)),
                ir_xmalloc(sizeof(int32_t) * (size_t)(mo->n_in + 1))};
  for (int32_t i = 0; i < s->xs; i++) {
    p.old_xs[i] = m->producer && i == m->slot ? -1 : p.n_xs;
    if (p.old_xs[i] >= 0) p.xs[p.n_xs++] = o->in[s->carries + i];
  }
  for (int32_t i = 0; i < s->captured; i++) p.cap[p.n_cap++] = o->in[s->carries + s->xs + i];
  ir_type r = ir_vtype(g, mo->out[0]);
  ir_val y = m->producer ? IR_NONE : o->out[s->carries + m->slot];
  for (int32_t i = 0; i < mo->n_in; i++) {
    ir_val v = mo->in[i];
    if (v == y) continue;
    if (operand_kind_of(g, s, r, v) == OPND_SEQ) p.at[i] = add_unique(p.xs, &p.n_xs, v);
    else p.at[i] = -1 - add_unique(p.cap, &p.n_cap, v);
  }
  return p;
}

static void free_operands(operands *p) {
  free(p->xs);
  free(p->cap);
  free(p->old_xs);
  free(p->at);
}

/* The new scan op, detached, with its operands and result types. */
static ir_opid new_scan(ir_graph *g, const scan_view *s, const move *m, const operands *p) {
  const ir_op *o = ir_o(g, s->op);
  int32_t n_in = s->carries + p->n_xs + p->n_cap, j = 0;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(n_in + 1));
  ir_type *types = ir_xmalloc(sizeof(ir_type) * (size_t)(o->n_out + 1));
  for (int32_t i = 0; i < s->carries; i++) in[j++] = o->in[i];
  for (int32_t i = 0; i < p->n_xs; i++) in[j++] = p->xs[i];
  for (int32_t i = 0; i < p->n_cap; i++) in[j++] = p->cap[i];
  for (int32_t r = 0; r < o->n_out; r++) types[r] = ir_vtype(g, o->out[r]);
  if (!m->producer) types[s->carries + m->slot] = ir_vtype(g, ir_o(g, m->op)->out[0]);
  ir_opid fresh = ir_op_new(g, IR_OP_SCAN, n_in, in, o->n_out, types, o->loc);
  memcpy(ir_o(g, fresh)->attrs, ir_o(g, s->op)->attrs, sizeof(ir_attr) * (size_t)ir_opinfo_of(IR_OP_SCAN)->n_attrs);
  ir_set_int(g, fresh, "xs", p->n_xs);
  free(in);
  free(types);
  return fresh;
}

/* The new body's arguments (written to args: the step, carries, xs,
 * captured values); maps the old body's arguments but a producer's xs to
 * them. An argument keeps the old one's name, a new one its value's. */
static void bind_args(ir_graph *g, const scan_view *s, const operands *p, ir_blockid dst, ir_valmap *map,
                      ir_val *args) {
  const ir_val *old = ir_b(g, ir_o(g, s->op)->regions[0])->args;
  int32_t n = 0;
  for (int32_t a = 0; a <= s->carries; a++) {
    args[n++] = ir_block_add_arg(g, dst, ir_vtype(g, old[a]), ir_v(g, old[a])->name);
    ir_valmap_set(map, old[a], args[n - 1]);
  }
  for (int32_t i = 0; i < p->n_xs; i++) {
    int32_t from = -1;
    for (int32_t k = 0; k < s->xs && from < 0; k++)
      if (p->old_xs[k] == i) from = k;
    ir_val src = from >= 0 ? old[1 + s->carries + from] : p->xs[i];
    args[n++] = ir_block_add_arg(g, dst, ir_type_without_dim(g, ir_vtype(g, p->xs[i]), s->axis), ir_v(g, src)->name);
    if (from >= 0) ir_valmap_set(map, src, args[n - 1]);
  }
  for (int32_t i = 0; i < p->n_cap; i++) {
    bool was = i < s->captured;
    ir_val src = was ? old[1 + s->carries + s->xs + i] : p->cap[i];
    args[n++] = ir_block_add_arg(g, dst, ir_vtype(g, p->cap[i]), ir_v(g, src)->name);
    if (was) ir_valmap_set(map, src, args[n - 1]);
  }
}

/* A copy of the moved op at the end of dst, typed for one step, reading
 * the new arguments (args) and, for a consumer, the body's value y_t of
 * the per-step output it reads. */
static ir_val clone_moved(ir_graph *g, const scan_view *s, const move *m, const operands *p, ir_blockid dst,
                          const ir_val *args, ir_val y_t) {
  ir_valmap outer;
  ir_valmap_init(&outer);
  const ir_op *mo = ir_o(g, m->op);
  ir_val y = m->producer ? IR_NONE : ir_o(g, s->op)->out[s->carries + m->slot];
  int32_t first_xs = 1 + s->carries, first_cap = first_xs + p->n_xs;
  for (int32_t i = 0; i < mo->n_in; i++) {
    ir_val to = mo->in[i] == y ? y_t : p->at[i] >= 0 ? args[first_xs + p->at[i]] : args[first_cap - 1 - p->at[i]];
    ir_valmap_set(&outer, mo->in[i], to);
  }
  ir_opid c = ir_op_clone(g, m->op, dst, &outer);
  ir_valmap_free(&outer);
  ir_val v = ir_o(g, c)->out[0];
  ir_v(g, v)->type = ir_type_without_dim(g, ir_vtype(g, v), s->axis);
  return v;
}

/* Rebuilds the scan with the move done; the new scan's id. */
static ir_opid apply_move(ir_graph *g, const scan_view *s, const move *m) {
  if (!m->producer) {
    ir_val y = ir_o(g, s->op)->out[s->carries + m->slot];
    for (int32_t i = 0; i < ir_o(g, m->op)->n_in; i++)
      if (ir_o(g, m->op)->in[i] != y) move_up(g, ir_o(g, m->op)->in[i], ir_concurrent_front(g, s->op));
  }
  operands p = new_operands(g, s, m);
  ir_opid fresh = new_scan(g, s, m, &p);
  ir_blockid dst = ir_o(g, fresh)->regions[0], src = ir_o(g, s->op)->regions[0];
  ir_val *args = ir_xmalloc(sizeof(ir_val) * (size_t)(1 + s->carries + p.n_xs + p.n_cap));
  ir_valmap map;
  ir_valmap_init(&map);
  bind_args(g, s, &p, dst, &map, args);
  if (m->producer) {
    ir_val made = clone_moved(g, s, m, &p, dst, args, IR_NONE);
    ir_valmap_set(&map, ir_b(g, src)->args[1 + s->carries + m->slot], made);
  }
  ir_opid y = ir_block_clone_ops(g, src, dst, &map);
  if (!m->producer) {
    int32_t at = s->carries + m->slot, n = ir_o(g, y)->n_in;
    ir_val made = clone_moved(g, s, m, &p, dst, args, ir_o(g, y)->in[at]);
    ir_op_move_before(g, y, ir_v(g, made)->def);
    ir_val *yin = ir_xmalloc(sizeof(ir_val) * (size_t)n);
    memcpy(yin, ir_o(g, y)->in, sizeof(ir_val) * (size_t)n);
    yin[at] = made;
    ir_op_set_operands(g, y, n, yin);
    free(yin);
  }
  ir_valmap_free(&map);
  free(args);
  free_operands(&p);

  ir_op_insert_before(g, s->op, fresh);
  for (int32_t r = 0; r < ir_o(g, fresh)->n_out; r++) {
    ir_val old = ir_o(g, s->op)->out[r], now = ir_o(g, fresh)->out[r];
    if (!m->producer && r == s->carries + m->slot) old = ir_o(g, m->op)->out[0];
    ir_v(g, now)->name = ir_v(g, old)->name;
    ir_replace_all_uses(g, old, now);
  }
  /* Readers first: the consumer reads the old scan, which reads the producer. */
  if (!m->producer) ir_op_erase(g, m->op);
  ir_op_erase(g, s->op);
  if (m->producer) ir_op_erase(g, m->op);
  return fresh;
}

ir_opid scan_fuse_pointwise(ir_graph *g, ir_opid scan, const bool *keep, int32_t n_keep) {
  for (;;) {
    scan_view s = view_of(g, scan);
    int32_t *uses = ir_use_counts(g);
    move m = find_producer(g, uses, keep, n_keep, &s);
    if (m.op == IR_NONE) m = find_consumer(g, uses, keep, n_keep, &s);
    free(uses);
    if (m.op == IR_NONE) return scan;
    scan = apply_move(g, &s, &m);
  }
}
