/*
 * cse.c - common subexpression elimination.
 *
 * Algorithm: one forward sweep over each block with a hash table of the
 * pure, region-less ops seen so far in that block. Two ops are the same
 * computation when they have the same kind, the same operands (either order
 * for IR_COMMUTATIVE binary ops), the same attributes compared by value
 * (integers and enums by their effective value, so an absent optional
 * attribute equals its default; floats and tensor data bitwise, so 0.0 and
 * -0.0 stay apart; dims by interned id) and the same result types. A later
 * duplicate's results are recorded in a value map to the earlier op's
 * results and the duplicate is erased when the block is done.
 *
 * Instead of ir_replace_all_uses (a walk of the whole graph per replaced
 * value) the sweep rewrites each op's operands through the map as it
 * reaches the op: in SSA form every use of a value comes after its
 * definition in the same block (regions are isolated from above, so no value
 * crosses into a nested region), and the block's terminator is visited
 * last. The pass is thus linear in the size of the graph.
 *
 * Each region is its own scope: ops in a scan body are merged with each
 * other, never with ops outside, and ops with regions are never merged (two
 * scans with identical operands may have different bodies).
 *
 * Needs: a verified graph. Invalidates: value ids of removed duplicates;
 * leaves no dead code behind except what was already dead.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>

typedef struct cse_state {
  ir_graph *g;
  ir_valmap repl;    /* results of erased duplicates -> surviving results */
  ir_opid *dead;     /* duplicates to erase, a stack shared by nested blocks */
  int32_t n_dead, cap_dead;
} cse_state;

/* Open-addressing table of op ids, one per block. */
typedef struct op_table {
  ir_opid *slot; /* IR_NONE = empty */
  uint64_t *hash;
  size_t mask;
} op_table;

/* ---- hashing ---------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return mix(h, n);
}

static bool is_commutative_pair(const ir_op *o) {
  return (ir_opinfo_of(o->kind)->flags & IR_COMMUTATIVE) && o->n_in == 2;
}

/* The value of a scalar attribute, its declared default when absent. */
static int64_t effective_int(const ir_attr *a, const ir_attr_decl *d) {
  return a->present ? a->u.i : (int64_t)d->dflt;
}

static double effective_float(const ir_attr *a, const ir_attr_decl *d) {
  return a->present ? a->u.f : d->dflt;
}

static uint64_t hash_tensor(uint64_t h, const ir_tensor_data *t) {
  h = mix(h, (uint64_t)t->n);
  if (t->f) h = mix_bytes(h, t->f, sizeof(double) * (size_t)t->n);
  if (t->i) h = mix_bytes(h, t->i, sizeof(int64_t) * (size_t)t->n);
  return h;
}

static uint64_t hash_attr(uint64_t h, const ir_attr *a, const ir_attr_decl *d) {
  switch (d->kind) {
  case IR_ATTR_INT: case IR_ATTR_BOOL: case IR_ATTR_ENUM:
    return mix(h, (uint64_t)effective_int(a, d));
  case IR_ATTR_FLOAT: {
    double f = effective_float(a, d);
    return mix_bytes(h, &f, sizeof f);
  }
  default:
    break;
  }
  h = mix(h, a->present);
  if (!a->present) return h;
  switch (d->kind) {
  case IR_ATTR_DIM:
    return mix(h, (uint64_t)a->u.d);
  case IR_ATTR_INTS:
    return mix_bytes(h, a->u.ints.v, sizeof(int64_t) * (size_t)a->u.ints.n);
  case IR_ATTR_DIMS:
    return mix_bytes(h, a->u.dims.v, sizeof(ir_dim) * (size_t)a->u.dims.n);
  case IR_ATTR_TENSOR:
    return hash_tensor(h, a->u.t);
  default:
    return h;
  }
}

static uint64_t hash_op(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  const ir_opinfo *info = ir_opinfo_of(o->kind);
  uint64_t h = mix((uint64_t)o->kind, (uint64_t)o->n_in);
  if (is_commutative_pair(o)) {
    ir_val a = o->in[0] < o->in[1] ? o->in[0] : o->in[1];
    ir_val b = o->in[0] < o->in[1] ? o->in[1] : o->in[0];
    h = mix(mix(h, (uint64_t)a), (uint64_t)b);
  } else {
    for (int32_t i = 0; i < o->n_in; i++) h = mix(h, (uint64_t)o->in[i]);
  }
  for (int32_t i = 0; i < info->n_attrs; i++) h = hash_attr(h, &o->attrs[i], &info->attrs[i]);
  h = mix(h, (uint64_t)o->n_out);
  for (int32_t i = 0; i < o->n_out; i++) {
    ir_type t = ir_vtype(g, o->out[i]);
    h = mix(mix(h, t.dtype), (uint64_t)t.rank);
    if (t.rank) h = mix_bytes(h, t.dims, sizeof(ir_dim) * (size_t)t.rank);
  }
  return h;
}

/* ---- equality ----------------------------------------------------------------- */

static bool same_array(const void *a, const void *b, size_t bytes) {
  return bytes == 0 || memcmp(a, b, bytes) == 0;
}

static bool same_tensor(const ir_tensor_data *a, const ir_tensor_data *b) {
  if (a->n != b->n || !a->f != !b->f || !a->i != !b->i) return false;
  return (!a->f || same_array(a->f, b->f, sizeof(double) * (size_t)a->n)) &&
         (!a->i || same_array(a->i, b->i, sizeof(int64_t) * (size_t)a->n));
}

static bool same_attr(const ir_attr *a, const ir_attr *b, const ir_attr_decl *d) {
  switch (d->kind) {
  case IR_ATTR_INT: case IR_ATTR_BOOL: case IR_ATTR_ENUM:
    return effective_int(a, d) == effective_int(b, d);
  case IR_ATTR_FLOAT: {
    double x = effective_float(a, d), y = effective_float(b, d);
    return memcmp(&x, &y, sizeof x) == 0;
  }
  default:
    break;
  }
  if (a->present != b->present) return false;
  if (!a->present) return true;
  switch (d->kind) {
  case IR_ATTR_DIM:
    return a->u.d == b->u.d;
  case IR_ATTR_INTS:
    return a->u.ints.n == b->u.ints.n &&
           same_array(a->u.ints.v, b->u.ints.v, sizeof(int64_t) * (size_t)a->u.ints.n);
  case IR_ATTR_DIMS:
    return a->u.dims.n == b->u.dims.n &&
           same_array(a->u.dims.v, b->u.dims.v, sizeof(ir_dim) * (size_t)a->u.dims.n);
  case IR_ATTR_TENSOR:
    return same_tensor(a->u.t, b->u.t);
  default:
    return false;
  }
}

static bool same_operands(const ir_op *a, const ir_op *b) {
  if (a->n_in != b->n_in) return false;
  if (same_array(a->in, b->in, sizeof(ir_val) * (size_t)a->n_in)) return true;
  return is_commutative_pair(a) && a->in[0] == b->in[1] && a->in[1] == b->in[0];
}

static bool same_computation(const ir_graph *g, ir_opid x, ir_opid y) {
  const ir_op *a = ir_o(g, x), *b = ir_o(g, y);
  if (a->kind != b->kind || a->n_out != b->n_out || !same_operands(a, b)) return false;
  const ir_opinfo *info = ir_opinfo_of(a->kind);
  for (int32_t i = 0; i < info->n_attrs; i++)
    if (!same_attr(&a->attrs[i], &b->attrs[i], &info->attrs[i])) return false;
  for (int32_t i = 0; i < a->n_out; i++)
    if (!ir_type_equal(ir_vtype(g, a->out[i]), ir_vtype(g, b->out[i]))) return false;
  return true;
}

/* ---- the table ------------------------------------------------------------------ */

static void table_init(op_table *t, int32_t n_ops) {
  size_t cap = 16;
  while (cap < 2 * (size_t)n_ops) cap *= 2;
  t->slot = ir_xmalloc(sizeof(ir_opid) * cap);
  t->hash = ir_xmalloc(sizeof(uint64_t) * cap);
  for (size_t i = 0; i < cap; i++) t->slot[i] = IR_NONE;
  t->mask = cap - 1;
}

static void table_free(op_table *t) {
  free(t->slot);
  free(t->hash);
}

/* The earlier op computing the same as `op`, or IR_NONE after adding op.
 * The table holds at most half its capacity, so probing ends. */
static ir_opid table_find_or_add(op_table *t, const ir_graph *g, ir_opid op) {
  uint64_t h = hash_op(g, op);
  size_t i = (size_t)h & t->mask;
  for (; t->slot[i] != IR_NONE; i = (i + 1) & t->mask)
    if (t->hash[i] == h && same_computation(g, t->slot[i], op)) return t->slot[i];
  t->slot[i] = op;
  t->hash[i] = h;
  return IR_NONE;
}

/* ---- the sweep ------------------------------------------------------------------- */

static void remap_operands(cse_state *st, ir_opid op) {
  ir_graph *g = st->g;
  int32_t n = ir_o(g, op)->n_in;
  for (int32_t i = 0; i < n; i++) {
    if (ir_valmap_get(&st->repl, ir_o(g, op)->in[i]) == ir_o(g, op)->in[i]) continue;
    ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)n);
    for (int32_t k = 0; k < n; k++) in[k] = ir_valmap_get(&st->repl, ir_o(g, op)->in[k]);
    ir_op_set_operands(g, op, n, in);
    free(in);
    return;
  }
}

static bool mergeable(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  unsigned flags = ir_opinfo_of(o->kind)->flags;
  return (flags & IR_PURE) && !(flags & IR_TERMINATOR) && o->n_regions == 0 && o->n_out > 0;
}

static void mark_duplicate(cse_state *st, ir_opid dup, ir_opid kept) {
  ir_graph *g = st->g;
  for (int32_t i = 0; i < ir_o(g, dup)->n_out; i++)
    ir_valmap_set(&st->repl, ir_o(g, dup)->out[i], ir_o(g, kept)->out[i]);
  ir_grow((void **)&st->dead, &st->cap_dead, st->n_dead + 1, sizeof(ir_opid));
  st->dead[st->n_dead++] = dup;
}

static int32_t count_ops(const ir_graph *g, ir_blockid b) {
  int32_t n = 0;
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next) n++;
  return n;
}

static void cse_block(cse_state *st, ir_blockid b) {
  ir_graph *g = st->g;
  op_table table;
  table_init(&table, count_ops(g, b));
  int32_t first_dead = st->n_dead;
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    remap_operands(st, op);
    for (int32_t r = 0; r < ir_o(g, op)->n_regions; r++) cse_block(st, ir_o(g, op)->regions[r]);
    if (!mergeable(g, op)) continue;
    ir_opid kept = table_find_or_add(&table, g, op);
    if (kept != IR_NONE) mark_duplicate(st, op, kept);
  }
  /* Every reader of a duplicate now reads the kept op instead. */
  for (int32_t i = first_dead; i < st->n_dead; i++) ir_op_erase(g, st->dead[i]);
  st->n_dead = first_dead;
  table_free(&table);
}

bool pass_cse(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  cse_state st = {g, {NULL, 0}, NULL, 0, 0};
  ir_valmap_init(&st.repl);
  cse_block(&st, g->body);
  ir_valmap_free(&st.repl);
  free(st.dead);
  return true;
}
