/*
 * fuse.c - the fuse pass: kernel groups (ALGORITHMS.md section 5).
 *
 * A group is a chain of ops of one block in which every value but the
 * last is read by one op only (maybe twice), the next of the chain. Two kinds:
 *  - a GEMM and its epilogue: a matmul_packed, then elementwise f32 ops
 *    over its result's dims whose other operands are read whole, as one
 *    row (a bias) or as a scalar: act(A B + bias) + residual;
 *  - an elementwise chain of at least two ops over one iteration space.
 * The chain becomes one `fused` op standing where its last op stood (the
 * forms are ir_fused_form_of's, ir/ir.h). That keeps the graph acyclic and
 * in order: every operand read from outside is defined before the last op,
 * and nothing outside reads the values inside. Groups never cross a block:
 * a scan body is fused on its own, so the scan axis is a barrier; init is
 * left alone (it runs once). A group means what its ops mean, so the
 * interpreter's results do not change, and codegen computes every element
 * with the same operations, so its results do not change either.
 *
 * Before grouping, scans take in their pointwise neighbours
 * (scan_fuse.c): a producer of a per-step input moves into the body's
 * loads, a consumer of a per-step output into its stores, so that neither
 * is a whole-sequence buffer; what would be a GEMM's epilogue stays
 * (marked here), so the chunked input projection keeps its bias and
 * activation. Then the groups form, in the rebuilt bodies too.
 */
#include "pass.h"

#include <stdlib.h>

#define MAX_GROUP_OPS 16 /* ops per group: bounds the registers an epilogue needs */

typedef struct chain {
  ir_opid ops[MAX_GROUP_OPS];
  int32_t n;
  ir_type space; /* the iteration space: the root's result */
  bool gemm;
} chain;

static bool is_elementwise(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  return (ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE) && o->n_out == 1;
}

/* The one op of v's block that reads v (maybe as several of its
 * operands), when no other op does and it is not the block's terminator;
 * else IR_NONE. uses[v] counts v's operands in the graph as the pass
 * started: fusing only removes reads, so a stale count errs toward no
 * group. */
ir_opid fuse_only_reader(const ir_graph *g, const int32_t *uses, ir_opid def, ir_val v) {
  for (ir_opid op = ir_o(g, def)->next; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    int32_t reads = 0;
    for (int32_t i = 0; i < o->n_in; i++) reads += o->in[i] == v;
    if (!reads) continue;
    bool terminator = ir_opinfo_of(o->kind)->flags & IR_TERMINATOR;
    return reads == uses[v] && !terminator ? op : IR_NONE;
  }
  return IR_NONE;
}

/* Whether op may join the chain after its last op (whose value it reads). */
static bool may_join(const ir_graph *g, const chain *c, ir_opid op) {
  if (c->n == MAX_GROUP_OPS || !is_elementwise(g, op)) return false;
  const ir_op *o = ir_o(g, op);
  ir_type r = ir_vtype(g, o->out[0]);
  if (!ir_dims_equal(r, c->space)) return false;
  if (!c->gemm) return true;
  if (r.dtype != IR_F32) return false;
  ir_val inside = ir_o(g, c->ops[c->n - 1])->out[0];
  for (int32_t i = 0; i < o->n_in; i++) {
    ir_type t = ir_vtype(g, o->in[i]);
    if (t.dtype != IR_F32) return false;
    if (o->in[i] != inside && ir_broadcast_class(g, t, c->space) == IR_BCAST_OTHER) return false;
  }
  return true;
}

/* The longest chain starting at root. */
static void grow_chain(const ir_graph *g, const int32_t *uses, ir_opid root, chain *c) {
  c->ops[0] = root;
  c->n = 1;
  c->space = ir_vtype(g, ir_o(g, root)->out[0]);
  c->gemm = ir_o(g, root)->kind == IR_OP_MATMUL_PACKED;
  for (;;) {
    ir_opid last = c->ops[c->n - 1];
    ir_opid next = fuse_only_reader(g, uses, last, ir_o(g, last)->out[0]);
    if (next == IR_NONE || !may_join(g, c, next)) return;
    c->ops[c->n++] = next;
  }
}

static bool is_member(const chain *c, ir_opid op) {
  for (int32_t i = 0; i < c->n; i++)
    if (c->ops[i] == op) return true;
  return false;
}

/* The values the chain reads from outside, each once, in order of first read. */
static int32_t outside_operands(const ir_graph *g, const chain *c, ir_val *out) {
  int32_t n = 0;
  for (int32_t k = 0; k < c->n; k++) {
    const ir_op *o = ir_o(g, c->ops[k]);
    for (int32_t i = 0; i < o->n_in; i++) {
      ir_opid def = ir_v(g, o->in[i])->def;
      bool seen = def != IR_NONE && is_member(c, def);
      for (int32_t j = 0; j < n && !seen; j++) seen = out[j] == o->in[i];
      if (!seen) out[n++] = o->in[i];
    }
  }
  return n;
}

/* Replaces the chain with one fused op where its last op stood. */
static void make_group(ir_graph *g, const chain *c) {
  ir_val outside[MAX_GROUP_OPS * 3];
  int32_t n_in = outside_operands(g, c, outside);
  ir_opid last = c->ops[c->n - 1];
  ir_val result = ir_o(g, last)->out[0];
  ir_type t = ir_vtype(g, result);
  ir_opid fused = ir_op_new(g, IR_OP_FUSED, n_in, outside, 1, &t, ir_o(g, last)->loc);
  ir_blockid region = ir_o(g, fused)->regions[0];
  ir_valmap m;
  ir_valmap_init(&m);
  for (int32_t i = 0; i < n_in; i++)
    ir_valmap_set(&m, outside[i], ir_block_add_arg(g, region, ir_vtype(g, outside[i]), ir_v(g, outside[i])->name));
  for (int32_t k = 0; k < c->n; k++) ir_op_clone(g, c->ops[k], region, &m);
  ir_val yielded = ir_valmap_get(&m, result);
  ir_op_append(g, region, ir_op_new(g, IR_OP_YIELD, 1, &yielded, 0, NULL, ir_o(g, last)->loc));
  ir_valmap_free(&m);
  ir_op_insert_before(g, last, fused);
  ir_v(g, ir_o(g, fused)->out[0])->name = ir_v(g, result)->name;
  ir_replace_all_uses(g, result, ir_o(g, fused)->out[0]);
  for (int32_t k = c->n - 1; k >= 0; k--) ir_op_erase(g, c->ops[k]);
}

static bool may_root(const ir_graph *g, ir_opid op) {
  return ir_o(g, op)->kind == IR_OP_MATMUL_PACKED || is_elementwise(g, op);
}

static void fuse_block(ir_graph *g, const int32_t *uses, ir_blockid b) {
  for (ir_opid op = ir_b(g, b)->first, next; op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    if (ir_o(g, op)->kind == IR_OP_SCAN) fuse_block(g, uses, ir_o(g, op)->regions[0]);
    if (!may_root(g, op)) continue;
    chain c;
    grow_chain(g, uses, op, &c);
    if (c.n < 2) continue;
    /* Ops between the members stay where they are, and are visited next. */
    while (next != IR_NONE && is_member(&c, next)) next = ir_o(g, next)->next;
    make_group(g, &c);
  }
}

/* keep[op]: op would join a GEMM's epilogue in block b. */
static bool *epilogue_ops(const ir_graph *g, const int32_t *uses, ir_blockid b) {
  bool *keep = ir_xcalloc((size_t)g->n_ops + 1, sizeof(bool));
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    if (ir_o(g, op)->kind != IR_OP_MATMUL_PACKED) continue;
    chain c;
    grow_chain(g, uses, op, &c);
    for (int32_t k = 0; k < c.n; k++) keep[c.ops[k]] = true;
  }
  return keep;
}

/* The scans of block b, and of their bodies, take in their pointwise
 * producers and consumers (scan_fuse.c). */
static void fuse_scans(ir_graph *g, ir_blockid b) {
  int32_t *uses = ir_use_counts(g), n_keep = g->n_ops;
  bool *keep = epilogue_ops(g, uses, b);
  free(uses);
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    if (ir_o(g, op)->kind != IR_OP_SCAN) continue;
    op = scan_fuse_pointwise(g, op, keep, n_keep);
    fuse_scans(g, ir_o(g, op)->regions[0]);
  }
  free(keep);
}

bool pass_fuse(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  fuse_scans(g, g->body);
  int32_t *uses = ir_use_counts(g);
  fuse_block(g, uses, g->body);
  free(uses);
  return true;
}
