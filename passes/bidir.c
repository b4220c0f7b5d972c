/*
 * bidir.c - independent top-level scans run concurrently.
 *
 * A bidirectional RNN, LSTM or GRU layer is two scans over the same input,
 * one with reverse = true, each preceded (after scan-hoist) by its own
 * input projection; neither reads the other's results. This pass finds
 * such scans among the top-level ops, makes them adjacent and gives them
 * one `concurrent = k` (docs/ir.md), which compiled code runs as one task
 * per scan (codegen/lower_parallel.c). Any independent scans qualify, not
 * only the two directions of a layer.
 *
 * Algorithm, greedy in body order. Each top-level scan not yet in a group
 * leads a new one. Walking forward from it, a value is tainted when it is a
 * result of a member or computed from one (regions are isolated, so the
 * operands alone decide). A later scan joins when it is untainted (it reads
 * no member's results, directly or through other ops) and balanced with the
 * leader: the same length and the same carry types, a cheap proxy for equal
 * work per step (a long recurrence grouped with a short one would lose the
 * threads its GEMMs use for little). Joining moves the ops between the
 * group and the scan that the scan depends on before the group, in their
 * order (none is tainted, or the scan would be), and the scan right after
 * the group's last member; the other ops in between stay, in order, after
 * it. Every op still follows what it reads and every op is pure, so results
 * do not change; only which of two failing run-time checks reports first
 * may.
 *
 * Every scan not in a group tries once, in body order, to lead one (a walk
 * over the ops after it: linear per leader); after a join moved scans
 * before the group, the walk resumes at the first op moved.
 * Scans in regions are left alone, and so are scans already in a group:
 * running the pass again changes nothing. New group ids follow the largest
 * in use. The input projections of the two directions stay two GEMMs (one
 * GEMM over the concatenated weights would need the scans to read column
 * slices of its result); each already runs on every thread.
 *
 * Needs: a verified graph. Invalidates: the order of top-level ops.
 * Deterministic: body order.
 */
#include "pass.h"

#include <stdlib.h>

typedef struct grouper {
  ir_graph *g;
  int32_t *tainted; /* by value id: == taint_gen when computed from the current group */
  int32_t *needed;  /* by value id: == need_gen when the joining scan depends on it */
  int32_t taint_gen, need_gen;
  ir_opid *pulled;  /* ops of one join moved before the group, in reverse order */
  int32_t n_pulled, cap_pulled;
  ir_opid resume;   /* the first op moved before the current group, IR_NONE if none */
} grouper;

static bool is_free_scan(const ir_graph *g, ir_opid op) {
  return ir_o(g, op)->kind == IR_OP_SCAN && ir_concurrent_group(g, op) == 0;
}

/* Same length and carry types: about the same work per step and in all. */
static bool balanced(const ir_graph *g, ir_opid a, ir_opid b) {
  int64_t carries = ir_get_int(g, a, "carries");
  if (ir_get_dim(g, a, "length") != ir_get_dim(g, b, "length") || ir_get_int(g, b, "carries") != carries)
    return false;
  for (int32_t i = 0; i < carries; i++)
    if (!ir_type_equal(ir_vtype(g, ir_o(g, a)->in[i]), ir_vtype(g, ir_o(g, b)->in[i]))) return false;
  return true;
}

static bool reads_marked(const ir_graph *g, ir_opid op, const int32_t *mark, int32_t gen) {
  for (int32_t i = 0; i < ir_o(g, op)->n_in; i++)
    if (mark[ir_o(g, op)->in[i]] == gen) return true;
  return false;
}

static void mark_results(const ir_graph *g, ir_opid op, int32_t *mark, int32_t gen) {
  for (int32_t i = 0; i < ir_o(g, op)->n_out; i++) mark[ir_o(g, op)->out[i]] = gen;
}

static void mark_operands(const ir_graph *g, ir_opid op, int32_t *mark, int32_t gen) {
  for (int32_t i = 0; i < ir_o(g, op)->n_in; i++) mark[ir_o(g, op)->in[i]] = gen;
}

static bool defines_marked(const ir_graph *g, ir_opid op, const int32_t *mark, int32_t gen) {
  for (int32_t i = 0; i < ir_o(g, op)->n_out; i++)
    if (mark[ir_o(g, op)->out[i]] == gen) return true;
  return false;
}

/* Moves the ops strictly between `last` and `scan` that scan depends on
 * before `first`, keeping their order. */
/* The ops between last and scan that scan needs, into s->pulled (nearest
 * first); false when one of them is a member of another group, which
 * moving would tear from its partners. */
static bool find_inputs(grouper *s, ir_opid last, ir_opid scan) {
  ir_graph *g = s->g;
  s->need_gen++;
  s->n_pulled = 0;
  mark_operands(g, scan, s->needed, s->need_gen);
  for (ir_opid op = ir_o(g, scan)->prev; op != last; op = ir_o(g, op)->prev) {
    if (!defines_marked(g, op, s->needed, s->need_gen)) continue;
    if (ir_concurrent_group(g, op) != 0) return false;
    mark_operands(g, op, s->needed, s->need_gen);
    ir_grow((void **)&s->pulled, &s->cap_pulled, s->n_pulled + 1, sizeof(ir_opid));
    s->pulled[s->n_pulled++] = op;
  }
  return true;
}

/* Moves what find_inputs found before the group's first op. */
static void pull_inputs(grouper *s, ir_opid first) {
  ir_graph *g = s->g;
  for (int32_t i = s->n_pulled - 1; i >= 0; i--) ir_op_move_before(g, first, s->pulled[i]);
  if (s->n_pulled > 0 && s->resume == IR_NONE) s->resume = s->pulled[s->n_pulled - 1];
}

/* Grows the group led by `leader` as described at the top; returns its last
 * member (the leader alone when nothing joined, and then no id is set). */
static ir_opid grow_group(grouper *s, ir_opid leader, int64_t id) {
  ir_graph *g = s->g;
  s->taint_gen++;
  s->resume = IR_NONE;
  mark_results(g, leader, s->tainted, s->taint_gen);
  ir_opid last = leader;
  for (ir_opid op = ir_o(g, leader)->next, next; op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    bool tainted = reads_marked(g, op, s->tainted, s->taint_gen);
    if (tainted || !is_free_scan(g, op) || !balanced(g, leader, op) || !find_inputs(s, last, op)) {
      if (tainted) mark_results(g, op, s->tainted, s->taint_gen);
      continue;
    }
    pull_inputs(s, leader);
    if (ir_o(g, last)->next != op) ir_op_move_before(g, ir_o(g, last)->next, op);
    ir_set_int(g, leader, "concurrent", id);
    ir_set_int(g, op, "concurrent", id);
    mark_results(g, op, s->tainted, s->taint_gen);
    last = op;
  }
  return last;
}

typedef struct largest_id {
  int64_t id;
} largest_id;

static bool note_group(ir_graph *g, ir_opid op, void *ud) {
  largest_id *l = ud;
  int64_t k = ir_concurrent_group(g, op);
  if (k > l->id) l->id = k;
  return true;
}

bool pass_bidir(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  largest_id used = {0};
  ir_walk(g, g->body, note_group, &used);
  grouper s = {g, ir_xcalloc((size_t)g->n_vals + 1, sizeof(int32_t)),
               ir_xcalloc((size_t)g->n_vals + 1, sizeof(int32_t)), 0, 0, NULL, 0, 0, IR_NONE};
  int64_t id = used.id;
  for (ir_opid op = ir_b(g, g->body)->first, next; op != IR_NONE && id < INT64_MAX; op = next) {
    next = ir_o(g, op)->next;
    if (!is_free_scan(g, op)) continue;
    ir_opid last = grow_group(&s, op, id + 1);
    if (last == op) continue;
    id++;
    /* Scans moved before the group have not led a group yet. */
    next = s.resume != IR_NONE ? s.resume : ir_o(g, last)->next;
  }
  free(s.tainted);
  free(s.needed);
  free(s.pulled);
  return true;
}
