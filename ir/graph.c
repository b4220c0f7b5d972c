/*
 * graph.c - building, walking and mutating graphs: the API every pass uses.
 *
 * Values, ops and blocks live in growable arrays of the graph and are named
 * by index, so ids stay valid when the arrays move; pointers obtained with
 * ir_v/ir_o/ir_b do not survive the creation of another value/op/block.
 * Ops of a block form a doubly linked list (prev/next ids) so rewrites can
 * insert and erase in O(1). Erased ops stay in the array, marked, so ids are
 * never reused within a graph.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

ir_graph *ir_graph_new(const char *name) {
  ir_graph *g = ir_xcalloc(1, sizeof *g);
  g->arena = ir_arena_new();
  g->dims = ir_dimtab_new();
  g->name = ir_arena_strdup(g->arena, name ? name : "main");
  g->body = ir_block_new(g, IR_NONE);
  return g;
}

void ir_graph_free(ir_graph *g) {
  if (!g) return;
  ir_dimtab_free(g->dims);
  ir_arena_free(g->arena);
  free(g->vals);
  free(g->ops);
  free(g->blocks);
  free(g);
}

/* ---- types --------------------------------------------------------------- */

ir_type ir_type_make(ir_graph *g, ir_dtype dt, int32_t rank, const ir_dim *dims) {
  IR_ASSERT(rank >= 0);
  ir_type t = {dt, rank, NULL};
  t.dims = rank ? ir_arena_memdup(g->arena, dims, sizeof(ir_dim) * (size_t)rank) : NULL;
  return t;
}

ir_type ir_type_without_dim(ir_graph *g, ir_type t, int64_t axis) {
  ir_dim *d = ir_arena_alloc(g->arena, sizeof(ir_dim) * (size_t)(t.rank ? t.rank : 1));
  int32_t n = 0;
  for (int32_t k = 0; k < t.rank; k++)
    if (k != axis) d[n++] = t.dims[k];
  return (ir_type){t.dtype, n, n ? d : NULL};
}

ir_type ir_type_static(ir_graph *g, ir_dtype dt, int32_t rank, const int64_t *dims) {
  ir_dim *d = ir_arena_alloc(g->arena, sizeof(ir_dim) * (size_t)(rank ? rank : 1));
  for (int32_t i = 0; i < rank; i++) d[i] = ir_dim_const(g->dims, dims[i]);
  return (ir_type){dt, rank, rank ? d : NULL};
}

bool ir_dims_equal(ir_type a, ir_type b) {
  if (a.rank != b.rank) return false;
  for (int32_t i = 0; i < a.rank; i++)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

bool ir_type_equal(ir_type a, ir_type b) { return a.dtype == b.dtype && ir_dims_equal(a, b); }

ir_dim ir_type_numel_dim(ir_graph *g, ir_type t) {
  ir_dim n = ir_dim_const(g->dims, 1);
  for (int32_t i = 0; i < t.rank && n != IR_DIM_INVALID; i++) n = ir_dim_mul(g->dims, n, t.dims[i]);
  return n;
}

int64_t ir_type_static_numel(const ir_graph *g, ir_type t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t.rank; i++) {
    int64_t d;
    if (!ir_dim_is_const(g->dims, t.dims[i], &d) || d < 0) return -1;
    if (__builtin_mul_overflow(n, d, &n)) return -1;
  }
  return n;
}

/* ---- values and blocks --------------------------------------------------- */

static ir_val new_value(ir_graph *g, ir_type t, const char *name) {
  ir_grow((void **)&g->vals, &g->cap_vals, g->n_vals + 1, sizeof(ir_value));
  ir_val v = g->n_vals++;
  g->vals[v] = (ir_value){t, NULL, IR_NONE, IR_NONE, 0, false};
  if (name) g->vals[v].name = ir_arena_strdup(g->arena, name);
  return v;
}

void ir_value_set_name(ir_graph *g, ir_val v, const char *name) {
  g->vals[v].name = name ? ir_arena_strdup(g->arena, name) : NULL;
}

ir_blockid ir_block_new(ir_graph *g, ir_opid parent) {
  ir_grow((void **)&g->blocks, &g->cap_blocks, g->n_blocks + 1, sizeof(ir_block));
  ir_blockid b = g->n_blocks++;
  g->blocks[b] = (ir_block){0, NULL, IR_NONE, IR_NONE, parent};
  return b;
}

ir_val ir_block_add_arg(ir_graph *g, ir_blockid b, ir_type t, const char *name) {
  ir_val v = new_value(g, t, name);
  ir_block *blk = &g->blocks[b];
  ir_val *args = ir_arena_alloc(g->arena, sizeof(ir_val) * (size_t)(blk->n_args + 1));
  if (blk->n_args) memcpy(args, blk->args, sizeof(ir_val) * (size_t)blk->n_args);
  args[blk->n_args] = v;
  blk->args = args;
  g->vals[v].block = b;
  g->vals[v].index = blk->n_args++;
  return v;
}

ir_val ir_graph_add_input(ir_graph *g, ir_type t, const char *name, bool is_param) {
  ir_val v = ir_block_add_arg(g, g->body, t, name);
  g->vals[v].is_param = is_param;
  return v;
}

/* ---- ops ----------------------------------------------------------------- */

ir_opid ir_op_new(ir_graph *g, ir_opkind k, int32_t n_in, const ir_val *in, int32_t n_out,
                  const ir_type *out_types, ir_loc loc) {
  const ir_opinfo *info = ir_opinfo_of(k);
  ir_grow((void **)&g->ops, &g->cap_ops, g->n_ops + 1, sizeof(ir_op));
  ir_opid id = g->n_ops++;
  ir_op op = {0};
  op.kind = k;
  op.n_in = n_in;
  op.in = ir_arena_memdup(g->arena, in, sizeof(ir_val) * (size_t)n_in);
  op.n_out = n_out;
  op.out = ir_arena_alloc(g->arena, sizeof(ir_val) * (size_t)n_out);
  op.attrs = ir_arena_alloc(g->arena, sizeof(ir_attr) * (size_t)info->n_attrs);
  op.n_regions = info->n_regions;
  op.regions = ir_arena_alloc(g->arena, sizeof(ir_blockid) * (size_t)info->n_regions);
  op.block = op.prev = op.next = IR_NONE;
  op.loc = loc;
  g->ops[id] = op;
  for (int32_t i = 0; i < n_out; i++) {
    ir_val v = new_value(g, out_types[i], NULL);
    g->vals[v].def = id;
    g->vals[v].index = i;
    g->ops[id].out[i] = v;
  }
  for (int32_t r = 0; r < info->n_regions; r++) {
    ir_blockid b = ir_block_new(g, id);
    g->ops[id].regions[r] = b;
  }
  return id;
}

void ir_op_append(ir_graph *g, ir_blockid b, ir_opid op) {
  ir_op *o = &g->ops[op];
  ir_block *blk = &g->blocks[b];
  IR_ASSERT(o->block == IR_NONE && !o->erased);
  o->block = b;
  o->prev = blk->last;
  o->next = IR_NONE;
  if (blk->last != IR_NONE)
    g->ops[blk->last].next = op;
  else
    blk->first = op;
  blk->last = op;
}

void ir_op_insert_before(ir_graph *g, ir_opid anchor, ir_opid op) {
  ir_op *a = &g->ops[anchor], *o = &g->ops[op];
  IR_ASSERT(o->block == IR_NONE && a->block != IR_NONE);
  o->block = a->block;
  o->next = anchor;
  o->prev = a->prev;
  if (a->prev != IR_NONE)
    g->ops[a->prev].next = op;
  else
    g->blocks[a->block].first = op;
  a->prev = op;
}

void ir_op_insert_after(ir_graph *g, ir_opid anchor, ir_opid op) {
  ir_op *a = &g->ops[anchor];
  if (a->next != IR_NONE) {
    ir_op_insert_before(g, a->next, op);
    return;
  }
  ir_op_append(g, a->block, op);
}

static void unlink_op(ir_graph *g, ir_opid op) {
  ir_op *o = &g->ops[op];
  if (o->block == IR_NONE) return;
  ir_block *blk = &g->blocks[o->block];
  if (o->prev != IR_NONE)
    g->ops[o->prev].next = o->next;
  else
    blk->first = o->next;
  if (o->next != IR_NONE)
    g->ops[o->next].prev = o->prev;
  else
    blk->last = o->prev;
  o->block = o->prev = o->next = IR_NONE;
}

void ir_op_move_before(ir_graph *g, ir_opid anchor, ir_opid op) {
  unlink_op(g, op);
  ir_op_insert_before(g, anchor, op);
}

ir_opid ir_def_of_kind(const ir_graph *g, ir_val v, ir_opkind kind) {
  ir_opid d = ir_v(g, v)->def;
  return d != IR_NONE && ir_o(g, d)->kind == kind ? d : IR_NONE;
}

const ir_tensor_data *ir_constant_data(const ir_graph *g, ir_val v) {
  ir_opid c = ir_def_of_kind(g, v, IR_OP_CONSTANT);
  if (c == IR_NONE) return NULL;
  const ir_attr *a = ir_get_attr(g, c, "value");
  return a->present ? a->u.t : NULL;
}

ir_bcast ir_broadcast_class(const ir_graph *g, ir_type t, ir_type r) {
  if (t.rank > r.rank) return IR_BCAST_OTHER;
  bool ones = true;
  for (int32_t i = 0; i < t.rank; i++) ones = ones && ir_dim_is_one(g->dims, t.dims[i]);
  if (ones) return IR_BCAST_SCALAR;
  if (ir_dims_equal(t, r)) return IR_BCAST_FULL;
  for (int32_t i = 0; i + 1 < t.rank; i++)
    if (!ir_dim_is_one(g->dims, t.dims[i])) return IR_BCAST_OTHER;
  return t.dims[t.rank - 1] == r.dims[r.rank - 1] ? IR_BCAST_ROW : IR_BCAST_OTHER;
}

/* Whether v is the result of an op of block b (not one of its arguments). */
static bool made_in(const ir_graph *g, ir_val v, ir_blockid b) {
  ir_opid def = ir_v(g, v)->def;
  return def != IR_NONE && ir_o(g, def)->block == b;
}

/* Every op before y elementwise over dims `space`, every yielded value made
 * by one of them over those dims; when `epilogue`, f32 throughout and every
 * argument read FULL, ROW or SCALAR. */
static bool elementwise_ops(const ir_graph *g, ir_blockid b, ir_opid first, ir_opid y, ir_type space,
                            bool epilogue) {
  for (ir_opid op = first; op != y; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    if (!(ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE) || o->n_out != 1) return false;
    ir_type r = ir_vtype(g, o->out[0]);
    if (!ir_dims_equal(r, space) || (epilogue && r.dtype != IR_F32)) return false;
    for (int32_t i = 0; epilogue && i < o->n_in; i++) {
      ir_type t = ir_vtype(g, o->in[i]);
      if (t.dtype != IR_F32) return false;
      if (!made_in(g, o->in[i], b) && ir_broadcast_class(g, t, space) == IR_BCAST_OTHER) return false;
    }
  }
  const ir_op *yo = ir_o(g, y);
  for (int32_t i = 0; i < yo->n_in; i++)
    if (!made_in(g, yo->in[i], b) || !ir_dims_equal(ir_vtype(g, yo->in[i]), space)) return false;
  return yo->n_in > 0;
}

ir_fused_form ir_fused_form_of(const ir_graph *g, ir_opid fused) {
  const ir_op *f = ir_o(g, fused);
  if (f->kind != IR_OP_FUSED || f->n_regions != 1) return IR_FUSED_GENERIC;
  ir_blockid b = f->regions[0];
  ir_opid y = ir_block_terminator(g, b), first = ir_b(g, b)->first;
  if (y == IR_NONE || first == y || ir_o(g, y)->n_in < 1) return IR_FUSED_GENERIC;
  const ir_op *root = ir_o(g, first);
  if (root->kind == IR_OP_MATMUL_PACKED) {
    ir_type space = ir_vtype(g, root->out[0]);
    bool args = !made_in(g, root->in[0], b) && !made_in(g, root->in[1], b);
    return args && space.dtype == IR_F32 && ir_o(g, y)->n_in == 1 &&
                   elementwise_ops(g, b, root->next, y, space, true)
               ? IR_FUSED_GEMM
               : IR_FUSED_GENERIC;
  }
  ir_type space = ir_vtype(g, ir_o(g, y)->in[0]);
  return elementwise_ops(g, b, first, y, space, false) ? IR_FUSED_ELEMENTWISE : IR_FUSED_GENERIC;
}

int64_t ir_concurrent_group(const ir_graph *g, ir_opid op) {
  return ir_o(g, op)->kind == IR_OP_SCAN ? ir_get_int(g, op, "concurrent") : 0;
}

ir_opid ir_concurrent_front(const ir_graph *g, ir_opid op) {
  int64_t k = ir_concurrent_group(g, op);
  if (k <= 0) return op;
  while (ir_o(g, op)->prev != IR_NONE && ir_concurrent_group(g, ir_o(g, op)->prev) == k) op = ir_o(g, op)->prev;
  return op;
}

void ir_op_describe(const ir_graph *g, ir_opid op, ir_buf *out) {
  const ir_op *o = ir_o(g, op);
  ir_buf_puts(out, ir_opinfo_of(o->kind)->name);
  const char *name = o->n_out > 0 ? ir_v(g, o->out[0])->name : NULL;
  if (name) ir_buf_printf(out, " '%s'", name);
}

/* ---- symbols ------------------------------------------------------------ */

typedef struct symset {
  const char **names;
  int32_t n, cap;
} symset;

static void add_dim_symbols(symset *s, const ir_dimtab *t, ir_dim d) {
  const char *found[16];
  int32_t n = ir_dim_symbols(t, d, found, 16);
  const char **all = n > 16 ? ir_xmalloc(sizeof(char *) * (size_t)n) : found;
  if (n > 16) ir_dim_symbols(t, d, all, n);
  for (int32_t i = 0; i < n; i++) {
    bool seen = false;
    for (int32_t j = 0; j < s->n && !seen; j++) seen = !strcmp(s->names[j], all[i]);
    if (seen) continue;
    ir_grow((void **)&s->names, &s->cap, s->n + 1, sizeof(char *));
    s->names[s->n++] = all[i];
  }
  if (all != found) free(all);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int32_t ir_graph_symbols(const ir_graph *g, const char ***names) {
  symset s = {0};
  for (ir_val v = 0; v < g->n_vals; v++)
    for (int32_t i = 0; i < g->vals[v].type.rank; i++) add_dim_symbols(&s, g->dims, g->vals[v].type.dims[i]);
  for (ir_opid op = 0; op < g->n_ops; op++) {
    const ir_op *o = ir_o(g, op);
    if (o->erased) continue;
    const ir_opinfo *info = ir_opinfo_of(o->kind);
    for (int32_t a = 0; a < info->n_attrs; a++) {
      if (!o->attrs[a].present) continue;
      if (info->attrs[a].kind == IR_ATTR_DIM) add_dim_symbols(&s, g->dims, o->attrs[a].u.d);
      if (info->attrs[a].kind == IR_ATTR_DIMS)
        for (int32_t i = 0; i < o->attrs[a].u.dims.n; i++) add_dim_symbols(&s, g->dims, o->attrs[a].u.dims.v[i]);
    }
  }
  if (s.n) qsort(s.names, (size_t)s.n, sizeof(char *), cmp_names);
  *names = s.names;
  return s.n;
}

void ir_op_erase(ir_graph *g, ir_opid op) {
  for (int32_t r = 0; r < g->ops[op].n_regions; r++) {
    ir_blockid b = g->ops[op].regions[r];
    while (g->blocks[b].last != IR_NONE) ir_op_erase(g, g->blocks[b].last);
  }
  unlink_op(g, op);
  g->ops[op].erased = true;
}

void ir_op_set_operands(ir_graph *g, ir_opid op, int32_t n, const ir_val *in) {
  g->ops[op].in = ir_arena_memdup(g->arena, in, sizeof(ir_val) * (size_t)n);
  g->ops[op].n_in = n;
}

ir_opid ir_block_terminator(const ir_graph *g, ir_blockid b) {
  ir_opid last = g->blocks[b].last;
  if (last == IR_NONE) return IR_NONE;
  return (ir_opinfo_of(g->ops[last].kind)->flags & IR_TERMINATOR) ? last : IR_NONE;
}

/* ---- attributes ---------------------------------------------------------- */

static ir_attr *attr_slot(const ir_graph *g, ir_opid op, const char *name, ir_attr_kind *kind) {
  ir_opkind k = g->ops[op].kind;
  int32_t i = ir_attr_index(k, name);
  if (i < 0) ir_bug(__FILE__, __LINE__, "op '%s' has no attribute '%s'", ir_opinfo_of(k)->name, name);
  if (kind) *kind = ir_opinfo_of(k)->attrs[i].kind;
  return &g->ops[op].attrs[i];
}

void ir_set_int(ir_graph *g, ir_opid op, const char *name, int64_t v) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_INT || k == IR_ATTR_BOOL || k == IR_ATTR_ENUM);
  a->present = true;
  a->u.i = v;
}

void ir_set_float(ir_graph *g, ir_opid op, const char *name, double v) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_FLOAT);
  a->present = true;
  a->u.f = v;
}

void ir_set_dim(ir_graph *g, ir_opid op, const char *name, ir_dim d) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_DIM);
  a->present = true;
  a->u.d = d;
}

void ir_set_ints(ir_graph *g, ir_opid op, const char *name, int32_t n, const int64_t *v) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_INTS && n >= 0);
  a->present = true;
  a->u.ints.n = n;
  a->u.ints.v = ir_arena_memdup(g->arena, v, sizeof(int64_t) * (size_t)n);
}

void ir_set_dims(ir_graph *g, ir_opid op, const char *name, int32_t n, const ir_dim *v) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_DIMS && n >= 0);
  a->present = true;
  a->u.dims.n = n;
  a->u.dims.v = ir_arena_memdup(g->arena, v, sizeof(ir_dim) * (size_t)n);
}

void ir_set_tensor(ir_graph *g, ir_opid op, const char *name, const ir_tensor_data *t) {
  ir_attr_kind k;
  ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_TENSOR && t->n >= 0);
  ir_tensor_data *c = ir_arena_alloc(g->arena, sizeof *c);
  c->n = t->n;
  if (t->f) c->f = ir_arena_memdup(g->arena, t->f, sizeof(double) * (size_t)t->n);
  if (t->i) c->i = ir_arena_memdup(g->arena, t->i, sizeof(int64_t) * (size_t)t->n);
  a->present = true;
  a->u.t = c;
}

bool ir_has_attr(const ir_graph *g, ir_opid op, const char *name) {
  return attr_slot(g, op, name, NULL)->present;
}

const ir_attr *ir_get_attr(const ir_graph *g, ir_opid op, const char *name) {
  return attr_slot(g, op, name, NULL);
}

static double attr_default(const ir_graph *g, ir_opid op, const char *name) {
  const ir_opinfo *info = ir_opinfo_of(g->ops[op].kind);
  return info->attrs[ir_attr_index(g->ops[op].kind, name)].dflt;
}

int64_t ir_get_int(const ir_graph *g, ir_opid op, const char *name) {
  ir_attr_kind k;
  const ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_INT || k == IR_ATTR_BOOL || k == IR_ATTR_ENUM);
  return a->present ? a->u.i : (int64_t)attr_default(g, op, name);
}

double ir_get_float(const ir_graph *g, ir_opid op, const char *name) {
  ir_attr_kind k;
  const ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_FLOAT);
  return a->present ? a->u.f : attr_default(g, op, name);
}

ir_dim ir_get_dim(const ir_graph *g, ir_opid op, const char *name) {
  ir_attr_kind k;
  const ir_attr *a = attr_slot(g, op, name, &k);
  IR_ASSERT(k == IR_ATTR_DIM);
  return a->present ? a->u.d : IR_DIM_INVALID;
}

/* ---- building with inferred types ----------------------------------------- */

/* A detached op with inferred result types, or IR_NONE (reported). */
static ir_opid build_detached(ir_graph *g, ir_opkind k, int32_t n_in, const ir_val *in, ir_attr_setup setup,
                              void *ud, ir_diag *d, ir_loc loc) {
  IR_ASSERT(!(ir_opinfo_of(k)->flags & IR_DECLARED) && ir_opinfo_of(k)->n_regions == 0);
  ir_opid op = ir_op_new(g, k, n_in, in, 0, NULL, loc);
  if (setup) setup(g, op, ud);
  /* Inference reports the real result count even when it exceeds the
   * buffer (split), so a second call fills a buffer of the right size. */
  ir_type small[4], *types = small;
  int32_t n_out = 0;
  bool ok = ir_infer_types(g, op, types, 4, &n_out, d);
  if (ok && n_out > 4) {
    types = ir_xmalloc(sizeof(ir_type) * (size_t)n_out);
    ok = ir_infer_types(g, op, types, n_out, &n_out, d);
  }
  if (ok) {
    ir_val *outs = ir_arena_alloc(g->arena, sizeof(ir_val) * (size_t)n_out);
    for (int32_t i = 0; i < n_out; i++) {
      outs[i] = new_value(g, types[i], NULL);
      g->vals[outs[i]].def = op;
      g->vals[outs[i]].index = i;
    }
    g->ops[op].out = outs;
    g->ops[op].n_out = n_out;
  } else {
    g->ops[op].erased = true;
  }
  if (types != small) free(types);
  return ok ? op : IR_NONE;
}

ir_opid ir_build(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in,
                 ir_attr_setup setup, void *ud, ir_diag *d, ir_loc loc) {
  ir_opid op = build_detached(g, k, n_in, in, setup, ud, d, loc);
  if (op != IR_NONE) ir_op_append(g, b, op);
  return op;
}

ir_opid ir_build_before(ir_graph *g, ir_opid anchor, ir_opkind k, int32_t n_in, const ir_val *in,
                        ir_attr_setup setup, void *ud, ir_diag *d) {
  ir_opid op = build_detached(g, k, n_in, in, setup, ud, d, g->ops[anchor].loc);
  if (op != IR_NONE) ir_op_insert_before(g, anchor, op);
  return op;
}

/* ---- walking and uses ---------------------------------------------------- */

bool ir_walk(ir_graph *g, ir_blockid b, ir_walk_fn fn, void *ud) {
  for (ir_opid op = g->blocks[b].first, next; op != IR_NONE; op = next) {
    next = g->ops[op].next;
    if (g->ops[op].erased) continue;
    if (!fn(g, op, ud)) return false;
    if (g->ops[op].erased) continue;
    for (int32_t r = 0; r < g->ops[op].n_regions; r++)
      if (!ir_walk(g, g->ops[op].regions[r], fn, ud)) return false;
  }
  return true;
}

static bool count_uses(ir_graph *g, ir_opid op, void *ud) {
  int32_t *counts = ud;
  for (int32_t i = 0; i < g->ops[op].n_in; i++) counts[g->ops[op].in[i]]++;
  return true;
}

int32_t *ir_use_counts(const ir_graph *g) {
  int32_t *counts = ir_xcalloc((size_t)g->n_vals + 1, sizeof(int32_t));
  ir_walk((ir_graph *)g, g->body, count_uses, counts);
  return counts;
}

int32_t ir_value_use_count(const ir_graph *g, ir_val v) {
  int32_t *counts = ir_use_counts(g);
  int32_t n = counts[v];
  free(counts);
  return n;
}

/* Regions are isolated from above, so every read of a value is in the block
 * that defines it: replacing its uses walks that block alone, not its
 * nested regions. A value of a detached op has no home block; then the whole
 * graph is searched. */
static ir_blockid home_block(const ir_graph *g, ir_val v) {
  const ir_value *val = &g->vals[v];
  return val->def == IR_NONE ? val->block : g->ops[val->def].block;
}

typedef struct replace_ctx {
  ir_val from, to;
} replace_ctx;

static bool replace_in_op(ir_graph *g, ir_opid op, void *ud) {
  replace_ctx *c = ud;
  for (int32_t i = 0; i < g->ops[op].n_in; i++)
    if (g->ops[op].in[i] == c->from) g->ops[op].in[i] = c->to;
  return true;
}

void ir_replace_all_uses(ir_graph *g, ir_val from, ir_val to) {
  replace_ctx c = {from, to};
  ir_blockid b = home_block(g, from);
  if (b == IR_NONE) {
    ir_walk(g, g->body, replace_in_op, &c);
    return;
  }
  for (ir_opid op = g->blocks[b].first; op != IR_NONE; op = g->ops[op].next)
    replace_in_op(g, op, &c);
}

/* ---- value maps and cloning ---------------------------------------------- */

void ir_valmap_init(ir_valmap *m) {
  m->to = NULL;
  m->cap = 0;
}

void ir_valmap_set(ir_valmap *m, ir_val from, ir_val to) {
  int32_t old = m->cap;
  ir_grow((void **)&m->to, &m->cap, from + 1, sizeof(ir_val));
  for (int32_t i = old; i < m->cap; i++) m->to[i] = IR_NONE;
  m->to[from] = to;
}

ir_val ir_valmap_get(const ir_valmap *m, ir_val from) {
  if (from < m->cap && m->to[from] != IR_NONE) return m->to[from];
  return from;
}

void ir_valmap_free(ir_valmap *m) {
  free(m->to);
  ir_valmap_init(m);
}

ir_opid ir_op_clone(ir_graph *g, ir_opid op, ir_blockid dst, ir_valmap *m) {
  int32_t n_in = g->ops[op].n_in, n_out = g->ops[op].n_out;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(n_in + 1));
  ir_type *types = ir_xmalloc(sizeof(ir_type) * (size_t)(n_out + 1));
  for (int32_t i = 0; i < n_in; i++) in[i] = ir_valmap_get(m, g->ops[op].in[i]);
  for (int32_t i = 0; i < n_out; i++) types[i] = g->vals[g->ops[op].out[i]].type;
  ir_opid c = ir_op_new(g, g->ops[op].kind, n_in, in, n_out, types, g->ops[op].loc);
  free(in);
  free(types);
  int32_t n_attrs = ir_opinfo_of(g->ops[op].kind)->n_attrs;
  memcpy(g->ops[c].attrs, g->ops[op].attrs, sizeof(ir_attr) * (size_t)n_attrs);
  for (int32_t i = 0; i < n_out; i++) {
    ir_val src = g->ops[op].out[i], copy = g->ops[c].out[i];
    g->vals[copy].name = g->vals[src].name;
    ir_valmap_set(m, src, copy);
  }
  for (int32_t r = 0; r < g->ops[op].n_regions; r++) {
    ir_blockid from = g->ops[op].regions[r], to = g->ops[c].regions[r];
    for (int32_t a = 0; a < g->blocks[from].n_args; a++) {
      ir_val arg = g->blocks[from].args[a];
      ir_val copy = ir_block_add_arg(g, to, g->vals[arg].type, NULL);
      g->vals[copy].name = g->vals[arg].name;
      ir_valmap_set(m, arg, copy);
    }
    ir_block_clone_ops(g, from, to, m);
  }
  ir_op_append(g, dst, c);
  return c;
}

ir_opid ir_block_clone_ops(ir_graph *g, ir_blockid src, ir_blockid dst, ir_valmap *m) {
  ir_opid last = IR_NONE;
  for (ir_opid op = g->blocks[src].first; op != IR_NONE; op = g->ops[op].next)
    last = ir_op_clone(g, op, dst, m);
  if (last == IR_NONE || !(ir_opinfo_of(g->ops[last].kind)->flags & IR_TERMINATOR)) return IR_NONE;
  return last;
}

/* ---- greedy worklist rewriter --------------------------------------------- */

struct ir_rewriter {
  ir_graph *g;
  ir_opid *queue;     /* LIFO worklist */
  int32_t n, cap;
  uint8_t *queued;    /* by op id */
  int32_t queued_cap;
};

void ir_rewrite_notify(ir_rewriter *rw, ir_opid op) {
  if (op == IR_NONE || rw->g->ops[op].erased) return;
  ir_grow((void **)&rw->queued, &rw->queued_cap, op + 1, 1);
  if (rw->queued[op]) return;
  rw->queued[op] = 1;
  ir_grow((void **)&rw->queue, &rw->cap, rw->n + 1, sizeof(ir_opid));
  rw->queue[rw->n++] = op;
}

static bool enqueue_op(ir_graph *g, ir_opid op, void *ud) {
  (void)g;
  ir_rewrite_notify(ud, op);
  return true;
}

/* Re-queue every op of `b` that reads `v`. */
static void enqueue_users(ir_rewriter *rw, ir_blockid b, ir_val v) {
  ir_graph *g = rw->g;
  for (ir_opid op = g->blocks[b].first; op != IR_NONE; op = g->ops[op].next)
    for (int32_t i = 0; i < g->ops[op].n_in; i++)
      if (g->ops[op].in[i] == v) {
        ir_rewrite_notify(rw, op);
        break;
      }
}

void ir_rewrite_replace(ir_rewriter *rw, ir_graph *g, ir_opid op, const ir_val *vals) {
  ir_blockid b = g->ops[op].block;
  IR_ASSERT(b != IR_NONE);
  for (int32_t i = 0; i < g->ops[op].n_out; i++) {
    ir_replace_all_uses(g, g->ops[op].out[i], vals[i]);
    enqueue_users(rw, b, vals[i]);
  }
  ir_op_erase(g, op);
}

int64_t ir_rewrite_greedy(ir_graph *g, ir_rewrite_fn rewrite, void *ud, int64_t max_iterations) {
  ir_rewriter rw = {g, NULL, 0, 0, NULL, 0};
  /* Seed in reverse program order so the LIFO pops ops front to back. */
  ir_rewriter seed = {g, NULL, 0, 0, NULL, 0};
  ir_walk(g, g->body, enqueue_op, &seed);
  for (int32_t i = seed.n - 1; i >= 0; i--) ir_rewrite_notify(&rw, seed.queue[i]);
  free(seed.queue);
  free(seed.queued);
  int64_t applied = 0;
  while (rw.n > 0 && applied < max_iterations) {
    ir_opid op = rw.queue[--rw.n];
    rw.queued[op] = 0;
    if (g->ops[op].erased || g->ops[op].block == IR_NONE) continue;
    if (rewrite(&rw, g, op, ud)) applied++;
  }
  free(rw.queue);
  free(rw.queued);
  return applied;
}
