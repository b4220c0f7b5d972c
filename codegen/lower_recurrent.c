/*
 * lower_recurrent.c - the persistent recurrent kernel: a scan whose work
 * that depends on the carries is products of a carry with packed weights
 * plus elementwise math runs as one team of threads for all its steps (or
 * one per chunk of steps, when the scan computes its input projections
 * chunk by chunk: lower_scan.c), each thread owning a block of the
 * carries' units (their last axis).
 *
 * Which scans. Nothing is matched by name: the body (fused groups seen
 * through to their ops) may hold
 *   - matmul_packed of a carry (read whole) by a captured packed weight;
 *   - elementwise ops whose operands are read FULL, as a column
 *     [rows..., 1] (one value per row: a sequence mask), or ROW / SCALAR
 *     from a captured value, a constant or the step index
 *     (ir_broadcast_class); none that can fail (an integer division, a
 *     cast to an integer);
 *   - split and slice along the last axis (slice with step 1);
 *   - constants (computed once, before the loop);
 * and every carry and per-step output must be f32 with the carries' one
 * type [rows..., U], U a constant. Working back from the yields, each
 * value gets the column offsets it is read at: a next carry at 0, a gate
 * that split cuts at column 2U from a product at 2U, and so on (at most
 * MAX_OFFSETS each). So the unit j of every next carry and output needs
 * only columns o + j of the values before it: the gate math of unit j is
 * one elementwise pass over those columns, after the products.
 *
 * The kernel. A team of n members cuts the units into n blocks of whole
 * panels of 32. Each step, for every block not yet taken (a
 * compare-exchange on the block's step counter), a member of the team
 * (exec->team_run)
 *   1. computes the columns o + [lo, hi) of every product at the offsets o
 *      the product is read at, from the whole current carry: the GEMM's
 *      own tile code on those panels (cg_gemm_block), so each element is
 *      the same multiply-add chain as in a plain product;
 *   2. runs the gate math over rows x [lo, hi), values in registers, and
 *      stores the block's units of the next carries and of the step's
 *      outputs;
 *   3. counts the block done (a release add).
 * Then it waits until the step's last block is done (exec->team_wait).
 * Member i tries its own block, block i, first, so its share of the
 * packed weights is the same every step and stays in its core's cache;
 * it takes another only when that block's member is late. The carries
 * alternate between the scan's results and the staging buffers
 * (ping-pong), so one wait per step is enough: step s reads one set whole
 * and writes its units of the other, which nobody reads before every
 * block of step s is done. After an odd number of steps NAME_run copies
 * the last carries back into the results, once the teams have ended.
 *
 * Ranges. A team runs a range of steps [s0, s1) (closure field F_RANGE;
 * all of them, or one chunk's): the carries' parity is the step's number
 * s in the whole scan, so the ranges continue one another; the team's
 * counters are zeroed before each team and count the range's steps from
 * 0 (the next team may have another size). A per-step input held in a
 * chunk buffer (windowed) is read at t - origin, the chunk's first
 * position.
 *
 * Teams. Several members need U and every product offset to be multiples
 * of 32 and a product's offsets to be at least U apart (blocks write
 * disjoint columns); otherwise one member runs it all. A step with less
 * than MEMBER_WORK multiply-adds per member (a small cell, where the wait
 * costs more than it saves) gets fewer members, one at the least, which
 * takes every block without atomics. Inside a task (a concurrent group's
 * scan) the member function is called directly, a team of one (and
 * inlined there). Waiting is for blocks, never for
 * a member: one that starts late or is preempted finds its blocks taken
 * and catches up, so no thread can stall the team. Results do not depend
 * on the team: every element is computed by the same operations whichever
 * member computes it.
 *
 * The member function, <first result>_recurrent, emits no run-time check
 * (they all run in NAME_run before the first team starts), so no member
 * can stop before its blocks are done.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

#define MAX_OFFSETS 8
#define COLUMN INT64_MIN  /* the offset of a value [rows..., 1] read for every unit of its row */
#define MEMBER_WORK 65536 /* multiply-adds per step a member should at least get */
#define UNITS IR_PACK_WIDTH
#define COUNTER_STRIDE 8  /* i64s between the team's counters: a cache line */
#define MAX_BLOCKS 64     /* members of a team at most */

typedef enum role {
  R_NONE, /* not a value of the cell (or not read) */
  R_STEP,
  R_CARRY,
  R_XS,
  R_CAPTURED,
  R_PRODUCT,
  R_ONCE, /* a constant: computed before the loop */
  R_ELEMENTWISE,
  R_SHIFT /* split or slice along the last axis: its operand at `shift` columns on */
} role;

typedef struct offsets {
  int32_t n;
  int64_t at[MAX_OFFSETS];
} offsets;

typedef struct cell {
  const ir_graph *g;
  ir_opid scan;
  ir_blockid body;
  int32_t carries, xs, captured, outputs, axis;
  bool reverse, split; /* split: members may share the units */
  ir_type carry;       /* [rows..., U] */
  int64_t units;
  ir_val *real;        /* by value id: what a fused region's argument or result stands for */
  uint8_t *role;       /* by value id (real values) */
  int32_t *index;      /* by value id: carry / xs / captured index */
  int64_t *shift;      /* by value id: R_SHIFT's column offset in its operand */
  offsets *want;       /* by value id: the column offsets it is read at */
  ir_opid *ops;        /* the body's ops with fused groups opened, in order */
  int32_t n_ops;
} cell;

/* ---- which scans ------------------------------------------------------------ */

static bool add_offset(offsets *o, int64_t at) {
  for (int32_t i = 0; i < o->n; i++)
    if (o->at[i] == at) return true;
  if (o->n == MAX_OFFSETS) return false;
  o->at[o->n++] = at;
  return true;
}

/* Appends block b's ops to k->ops, opening fused groups: their arguments
 * and results stand for the values outside and inside. */
static void open_block(cell *k, ir_blockid b) {
  const ir_graph *g = k->g;
  ir_opid y = ir_block_terminator(g, b);
  for (ir_opid op = ir_b(g, b)->first; op != y; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    if (o->kind != IR_OP_FUSED) {
      k->ops[k->n_ops++] = op;
      for (int32_t r = 0; r < o->n_out; r++) k->real[o->out[r]] = o->out[r];
      continue;
    }
    const ir_block *rb = ir_b(g, o->regions[0]);
    for (int32_t i = 0; i < rb->n_args && i < o->n_in; i++) k->real[rb->args[i]] = k->real[o->in[i]];
    open_block(k, o->regions[0]);
    const ir_op *ry = ir_o(g, ir_block_terminator(g, o->regions[0]));
    for (int32_t r = 0; r < o->n_out && r < ry->n_in; r++) k->real[o->out[r]] = k->real[ry->in[r]];
  }
}

static int32_t count_ops(const ir_graph *g, ir_blockid b) {
  int32_t n = 0;
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    n++;
    for (int32_t r = 0; r < ir_o(g, op)->n_regions; r++) n += count_ops(g, ir_o(g, op)->regions[r]);
  }
  return n;
}

static void set_arg_roles(cell *k) {
  const ir_block *body = ir_b(k->g, k->body);
  for (int32_t i = 0; i < body->n_args; i++) {
    ir_val a = body->args[i];
    k->real[a] = a;
    k->role[a] = i == 0 ? R_STEP : i <= k->carries ? R_CARRY : i <= k->carries + k->xs ? R_XS : R_CAPTURED;
    k->index[a] = i == 0 ? 0 : i <= k->carries ? i - 1 : i <= k->carries + k->xs ? i - 1 - k->carries
                                                                               : i - 1 - k->carries - k->xs;
  }
}

static bool is_last_axis(const ir_graph *g, ir_opid op, int32_t rank) {
  int64_t axis = ir_get_int(g, op, "axis");
  return axis == rank - 1 || axis == -1;
}

/* The op's role, or R_NONE when the kernel cannot run it. */
static role role_of_op(const cell *k, ir_opid op) {
  const ir_graph *g = k->g;
  const ir_op *o = ir_o(g, op);
  bool float_result = o->n_out == 1 && ir_dtype_is_float(ir_vtype(g, o->out[0]).dtype);
  int32_t rank = o->n_in ? ir_vtype(g, o->in[0]).rank : 0;
  int64_t v;
  switch (o->kind) {
  case IR_OP_MATMUL_PACKED:
    if (!float_result || ir_vtype(g, o->out[0]).dtype != IR_F32) return R_NONE;
    return k->role[k->real[o->in[0]]] == R_CARRY && k->role[k->real[o->in[1]]] == R_CAPTURED ? R_PRODUCT : R_NONE;
  case IR_OP_CONSTANT: return R_ONCE;
  case IR_OP_SPLIT: return is_last_axis(g, op, rank) ? R_SHIFT : R_NONE;
  case IR_OP_SLICE:
    return is_last_axis(g, op, rank) && ir_get_int(g, op, "step") == 1 &&
                   ir_dim_is_const(g->dims, ir_get_dim(g, op, "start"), &v)
               ? R_SHIFT
               : R_NONE;
  default: break;
  }
  bool elementwise = (ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE) && o->n_out == 1 && o->n_in <= 3;
  /* No run-time check may stop one member (see the top). */
  bool may_fail = (o->kind == IR_OP_DIV || o->kind == IR_OP_CAST) && !float_result;
  return elementwise && !may_fail ? R_ELEMENTWISE : R_NONE;
}

/* Roles of every op's results, and the shifts of split and slice. */
static bool set_op_roles(cell *k) {
  const ir_graph *g = k->g;
  for (int32_t i = 0; i < k->n_ops; i++) {
    ir_opid op = k->ops[i];
    const ir_op *o = ir_o(g, op);
    role r = role_of_op(k, op);
    if (r == R_NONE) return false;
    int64_t at = 0, size;
    if (o->kind == IR_OP_SLICE) ir_dim_is_const(g->dims, ir_get_dim(g, op, "start"), &at);
    const ir_attr *sizes = o->kind == IR_OP_SPLIT ? ir_get_attr(g, op, "sizes") : NULL;
    for (int32_t q = 0; q < o->n_out; q++) {
      k->role[o->out[q]] = (uint8_t)r;
      k->shift[o->out[q]] = at;
      if (!sizes) continue;
      if (q >= sizes->u.dims.n || !ir_dim_is_const(g->dims, sizes->u.dims.v[q], &size)) return false;
      at += size;
    }
  }
  return true;
}

/* Whether a value read ROW or SCALAR is one the kernel can index. */
static bool readable_whole(const cell *k, ir_val v) {
  role r = (role)k->role[k->real[v]];
  return r == R_CAPTURED || r == R_ONCE || r == R_STEP;
}

/* t is r's column: r's dims but a last dim declared 1. */
static bool is_column(const ir_graph *g, ir_type t, ir_type r) {
  if (t.rank != r.rank || !ir_dim_is_one(g->dims, t.dims[t.rank - 1])) return false;
  for (int32_t d = 0; d + 1 < t.rank; d++)
    if (t.dims[d] != r.dims[d]) return false;
  return true;
}

/* Hands the offsets of op's results on to its operands. */
static bool pass_offsets_back(cell *k, ir_opid op) {
  const ir_graph *g = k->g;
  const ir_op *o = ir_o(g, op);
  for (int32_t q = 0; q < o->n_out; q++) {
    const offsets *w = &k->want[o->out[q]];
    if (w->n == 0) continue;
    if (k->role[o->out[q]] == R_SHIFT) {
      for (int32_t i = 0; i < w->n; i++)
        if (w->at[i] == COLUMN || !add_offset(&k->want[k->real[o->in[0]]], w->at[i] + k->shift[o->out[q]])) return false;
      continue;
    }
    if (k->role[o->out[q]] != R_ELEMENTWISE) continue; /* products and constants are leaves */
    for (int32_t x = 0; x < o->n_in; x++) {
      ir_type t = ir_vtype(g, o->in[x]), r = ir_vtype(g, o->out[0]);
      ir_bcast cls = ir_broadcast_class(g, t, r);
      offsets *to = &k->want[k->real[o->in[x]]];
      if (cls == IR_BCAST_ROW || cls == IR_BCAST_SCALAR) {
        if (!readable_whole(k, o->in[x])) return false;
      } else if (cls == IR_BCAST_OTHER) {
        if (!is_column(g, t, r) || !add_offset(to, COLUMN)) return false;
      } else {
        for (int32_t i = 0; i < w->n; i++)
          if (!add_offset(to, w->at[i])) return false;
      }
    }
  }
  return true;
}

/* A value read at offsets: [rows..., N] with the carries' rows and every
 * offset + U within N; a column [rows..., 1] read as one (not a product's). */
static bool fits(const cell *k, ir_val v) {
  ir_type t = ir_vtype(k->g, v);
  int64_t n;
  if (t.rank != k->carry.rank || !ir_dim_is_const(k->g->dims, t.dims[t.rank - 1], &n)) return false;
  for (int32_t d = 0; d + 1 < t.rank; d++)
    if (t.dims[d] != k->carry.dims[d]) return false;
  for (int32_t i = 0; i < k->want[v].n; i++) {
    int64_t at = k->want[v].at[i];
    if (at == COLUMN ? n != 1 || k->role[v] == R_PRODUCT : at < 0 || at + k->units > n) return false;
  }
  return k->role[v] != R_STEP;
}

/* Members may split the units when every product's columns of different
 * offsets are disjoint whole panels. */
static bool splits_units(const cell *k) {
  if (k->units % UNITS) return false;
  for (int32_t i = 0; i < k->n_ops; i++) {
    ir_val p = ir_o(k->g, k->ops[i])->out[0];
    if (k->role[p] != R_PRODUCT) continue;
    const offsets *w = &k->want[p];
    for (int32_t a = 0; a < w->n; a++) {
      if (w->at[a] % UNITS) return false;
      for (int32_t b = 0; b < a; b++)
        if (llabs(w->at[a] - w->at[b]) < k->units) return false;
    }
  }
  return true;
}

static bool carries_agree(cell *k) {
  const ir_graph *g = k->g;
  const ir_op *o = ir_o(g, k->scan);
  if (k->carries < 1) return false;
  k->carry = ir_vtype(g, o->out[0]);
  if (k->carry.dtype != IR_F32 || k->carry.rank < 1 ||
      !ir_dim_is_const(g->dims, k->carry.dims[k->carry.rank - 1], &k->units) || k->units < 1)
    return false;
  for (int32_t r = 0; r < o->n_out; r++)
    if (ir_vtype(g, o->out[r]).dtype != IR_F32) return false;
  for (int32_t i = 0; i < k->carries; i++) {
    ir_type t = ir_vtype(g, o->out[i]);
    if (!ir_dims_equal(t, k->carry)) return false;
  }
  return true;
}

/* Offsets from the yields back to the leaves; false unless every value
 * the yields need is one the kernel computes. */
static bool plan_offsets(cell *k) {
  const ir_graph *g = k->g;
  const ir_op *y = ir_o(g, ir_block_terminator(g, k->body));
  for (int32_t i = 0; i < y->n_in; i++) {
    if (!ir_dims_equal(ir_vtype(g, y->in[i]), k->carry)) return false;
    if (!add_offset(&k->want[k->real[y->in[i]]], 0)) return false;
  }
  for (int32_t i = k->n_ops - 1; i >= 0; i--)
    if (!pass_offsets_back(k, k->ops[i])) return false;
  for (ir_val v = 0; v < g->n_vals; v++)
    if (k->want[v].n && !fits(k, v)) return false;
  return true;
}

static void free_cell(cell *k) {
  if (!k) return;
  free(k->real);
  free(k->role);
  free(k->index);
  free(k->shift);
  free(k->want);
  free(k->ops);
  free(k);
}

static cell *cell_of(const ir_graph *g, ir_opid scan) {
  const ir_op *o = ir_o(g, scan);
  cell *k = ir_xcalloc(1, sizeof *k);
  size_t nv = (size_t)g->n_vals + 1;
  k->g = g;
  k->scan = scan;
  k->body = o->regions[0];
  k->carries = (int32_t)ir_get_int(g, scan, "carries");
  k->xs = (int32_t)ir_get_int(g, scan, "xs");
  k->captured = o->n_in - k->carries - k->xs;
  k->outputs = o->n_out - k->carries;
  k->axis = (int32_t)ir_get_int(g, scan, "axis");
  k->reverse = ir_get_int(g, scan, "reverse") != 0;
  k->real = ir_xcalloc(nv, sizeof *k->real);
  k->role = ir_xcalloc(nv, sizeof *k->role);
  k->index = ir_xcalloc(nv, sizeof *k->index);
  k->shift = ir_xcalloc(nv, sizeof *k->shift);
  k->want = ir_xcalloc(nv, sizeof *k->want);
  k->ops = ir_xcalloc((size_t)count_ops(g, k->body) + 1, sizeof *k->ops);
  set_arg_roles(k);
  open_block(k, k->body);
  if (!carries_agree(k) || !set_op_roles(k) || !plan_offsets(k)) {
    free_cell(k);
    return NULL;
  }
  k->split = splits_units(k);
  return k;
}

/* ---- the kernel ------------------------------------------------------------------ */

/* Closure fields: syms, exec, the team's counters, the step range (three
 * i64: the first step, the end, the per-step inputs' origin), then one
 * pointer per buffer (buffer number F_BUFS + k). */
enum { F_SYMS, F_EXEC, F_STATE, F_RANGE, F_BUFS };
enum { RANGE_FIRST, RANGE_END, RANGE_ORIGIN, RANGE_FIELDS };

typedef struct kernel {
  cell *k;
  /* buffers in the closure's order: the carries, the staging buffers, the
   * per-step inputs whole, the captured values, the outputs whole, the
   * products, the constants */
  int32_t n_bufs;
  ir_type *types;
  LLVMValueRef *ptrs;      /* in NAME_run */
  ir_val *product, *once;  /* by product / constant number */
  int32_t n_products, n_once;
  int64_t blocks;          /* the most blocks (and members): a panel of units each, or 1 */
  const bool *windowed;    /* by xs index: its buffer starts at the range's origin (or NULL) */
} kernel;

/* Buffer numbers (closure field F_BUFS + number) of product i, constant i. */
static int32_t product_buf(const kernel *kn, int32_t i) {
  const cell *k = kn->k;
  return 2 * k->carries + k->xs + k->captured + k->outputs + i;
}

static int32_t once_buf(const kernel *kn, int32_t i) { return product_buf(kn, kn->n_products) + i; }

/* Buffers and run-time checks in NAME_run: the products' and constants'
 * buffers, the constants' values, the checks every op would make. */
static bool prepare(cg_lower *c, kernel *kn, const cg_buf *staging) {
  cell *k = kn->k;
  const ir_graph *g = c->g;
  const ir_op *s = ir_o(g, k->scan);
  kn->product = ir_xcalloc((size_t)k->n_ops + 1, sizeof(ir_val));
  kn->once = ir_xcalloc((size_t)k->n_ops + 1, sizeof(ir_val));
  for (int32_t i = 0; i < k->n_ops; i++) {
    const ir_op *o = ir_o(g, k->ops[i]);
    if (k->role[o->out[0]] == R_PRODUCT) {
      kn->product[kn->n_products++] = o->out[0];
      const cg_buf *a = &c->bufs[k->real[o->in[0]]], *p = &c->bufs[k->real[o->in[1]]];
      cg_check_dim_eq(c, a->type.dims[a->type.rank - 1], p->type.dims[1]);
      cg_check_dim_eq(c, p->type.dims[2], ir_dim_const(g->dims, IR_PACK_WIDTH));
      cg_check_dim_eq(c, ir_dim_ceildiv(g->dims, ir_get_dim(g, k->ops[i], "n"), ir_dim_const(g->dims, IR_PACK_WIDTH)),
                      p->type.dims[0]);
      cg_alloc_buf(c, &c->bufs[o->out[0]], ir_vtype(g, o->out[0]));
    } else if (k->role[o->out[0]] == R_ONCE) {
      kn->once[kn->n_once++] = o->out[0];
      cg_alloc_results(c, k->ops[i]);
      c->current = k->ops[i];
      bool ok = lower_constant(c, k->ops[i]);
      c->current = k->scan;
      if (!ok) return false;
    } else if (k->role[o->out[0]] == R_ELEMENTWISE) {
      for (int32_t x = 0; x < o->n_in; x++) cg_broadcast_check(c, ir_vtype(g, o->in[x]), ir_vtype(g, o->out[0]));
    }
  }
  kn->n_bufs = once_buf(kn, kn->n_once);
  kn->types = ir_xcalloc((size_t)kn->n_bufs + 1, sizeof(ir_type));
  kn->ptrs = ir_xcalloc((size_t)kn->n_bufs + 1, sizeof(LLVMValueRef));
  int32_t f = 0;
  for (int32_t i = 0; i < k->carries; i++, f++) kn->types[f] = k->carry, kn->ptrs[f] = c->bufs[s->out[i]].ptr;
  for (int32_t i = 0; i < k->carries; i++, f++) kn->types[f] = k->carry, kn->ptrs[f] = staging[i].ptr;
  for (int32_t i = 0; i < k->xs + k->captured; i++, f++) {
    const cg_buf *b = cg_operand(c, k->scan, k->carries + i);
    kn->types[f] = b->type, kn->ptrs[f] = b->ptr;
  }
  for (int32_t i = 0; i < k->outputs; i++, f++) {
    const cg_buf *b = cg_result(c, k->scan, k->carries + i);
    kn->types[f] = b->type, kn->ptrs[f] = b->ptr;
  }
  for (int32_t i = 0; i < kn->n_products; i++, f++)
    kn->types[f] = c->bufs[kn->product[i]].type, kn->ptrs[f] = c->bufs[kn->product[i]].ptr;
  for (int32_t i = 0; i < kn->n_once; i++, f++)
    kn->types[f] = c->bufs[kn->once[i]].type, kn->ptrs[f] = c->bufs[kn->once[i]].ptr;
  IR_ASSERT(f == kn->n_bufs);
  return true;
}

/* What the member function works with: views of the closure's buffers. */
typedef struct member {
  cg_buf *bufs;        /* by buffer number */
  cg_buf *cur, *next;  /* the carries this step reads and writes */
  LLVMValueRef lo, hi; /* the member's units */
  LLVMValueRef t;      /* the step's position in the sequence */
  LLVMValueRef xs_t;   /* t in a windowed per-step input's buffer: t - origin */
  LLVMValueRef *rows;  /* the row's indices (carry rank - 1) */
  LLVMValueRef j;      /* the unit */
} member;

/* ---- one element of the gate math --------------------------------------------- */

typedef struct memo {
  int32_t n, cap;
  ir_val *v;
  int64_t *at;
  LLVMValueRef *x;
} memo;

static LLVMValueRef recall(const memo *m, ir_val v, int64_t at) {
  for (int32_t i = 0; i < m->n; i++)
    if (m->v[i] == v && m->at[i] == at) return m->x[i];
  return NULL;
}

static void remember(memo *m, ir_val v, int64_t at, LLVMValueRef x) {
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 16;
    m->v = ir_xrealloc(m->v, sizeof *m->v * (size_t)m->cap);
    m->at = ir_xrealloc(m->at, sizeof *m->at * (size_t)m->cap);
    m->x = ir_xrealloc(m->x, sizeof *m->x * (size_t)m->cap);
  }
  m->v[m->n] = v, m->at[m->n] = at, m->x[m->n] = x;
  m->n++;
}

/* Element (rows, column at + j) of b, which has the carries' rows; with
 * the position t inserted at axis when b is a whole sequence (axis >= 0). */
static LLVMValueRef element_index(cg_lower *c, const cell *k, const member *m, const cg_buf *b, int64_t at,
                                  int32_t axis, LLVMValueRef t) {
  LLVMValueRef *idx = ir_xcalloc((size_t)b->type.rank + 1, sizeof(LLVMValueRef));
  int32_t n = 0, part = k->carry.rank;
  for (int32_t d = 0; d < part; d++) {
    if (n == axis) idx[n++] = t;
    idx[n++] = d + 1 < part ? m->rows[d]
               : at == COLUMN ? cg_i64(c, 0)
                              : LLVMBuildAdd(c->b, m->j, cg_i64(c, at), "");
  }
  if (n == axis) idx[n++] = t;
  IR_ASSERT(n == b->type.rank);
  LLVMValueRef linear = cg_linear(c, b, idx);
  free(idx);
  return linear;
}

static const cg_buf *leaf_buf(const kernel *kn, const member *m, ir_val v) {
  const cell *k = kn->k;
  switch ((role)k->role[v]) {
  case R_CARRY: return &m->cur[k->index[v]];
  case R_XS: return &m->bufs[2 * k->carries + k->index[v]];
  case R_CAPTURED: return &m->bufs[2 * k->carries + k->xs + k->index[v]];
  default: break;
  }
  for (int32_t i = 0; i < kn->n_products; i++)
    if (kn->product[i] == v) return &m->bufs[product_buf(kn, i)];
  for (int32_t i = 0; i < kn->n_once; i++)
    if (kn->once[i] == v) return &m->bufs[once_buf(kn, i)];
  IR_ASSERT(!"a leaf of the cell has a buffer");
  return NULL;
}

static LLVMValueRef value_at(cg_lower *c, const kernel *kn, const member *m, memo *mm, ir_val v, int64_t at);

/* Operand x of elementwise op, read as its class says. */
static LLVMValueRef operand_at(cg_lower *c, const kernel *kn, const member *m, memo *mm, ir_opid op, int32_t x,
                               int64_t at) {
  const ir_graph *g = c->g;
  const ir_op *o = ir_o(g, op);
  ir_val v = kn->k->real[o->in[x]];
  switch (ir_broadcast_class(g, ir_vtype(g, o->in[x]), ir_vtype(g, o->out[0]))) {
  case IR_BCAST_FULL: return value_at(c, kn, m, mm, v, at);
  case IR_BCAST_OTHER: return value_at(c, kn, m, mm, v, COLUMN);
  case IR_BCAST_ROW:
    return cg_load(c, leaf_buf(kn, m, v), at == COLUMN ? cg_i64(c, 0) : LLVMBuildAdd(c->b, m->j, cg_i64(c, at), ""));
  case IR_BCAST_SCALAR: break;
  }
  if (kn->k->role[v] == R_STEP) return m->t;
  return cg_load(c, leaf_buf(kn, m, v), cg_i64(c, 0));
}

/* Value v at column at + j of the current row: from its buffer, or
 * computed from its operands, once per element. */
static LLVMValueRef value_at(cg_lower *c, const kernel *kn, const member *m, memo *mm, ir_val v, int64_t at) {
  const cell *k = kn->k;
  v = k->real[v];
  LLVMValueRef x = recall(mm, v, at);
  if (x) return x;
  role r = (role)k->role[v];
  if (r == R_SHIFT) {
    x = value_at(c, kn, m, mm, ir_o(c->g, ir_v(c->g, v)->def)->in[0], at + k->shift[v]);
  } else if (r == R_ELEMENTWISE) {
    ir_opid op = ir_v(c->g, v)->def;
    LLVMValueRef in[3];
    for (int32_t i = 0; i < ir_o(c->g, op)->n_in; i++) in[i] = operand_at(c, kn, m, mm, op, i, at);
    /* Rounded to its dtype as if stored: what the op means on its own. */
    x = cg_round_to_storage(c, cg_elementwise_value(c, op, in), ir_vtype(c->g, v).dtype);
  } else {
    const cg_buf *b = leaf_buf(kn, m, v);
    bool windowed = r == R_XS && kn->windowed && kn->windowed[k->index[v]];
    x = cg_load(c, b, element_index(c, k, m, b, at, r == R_XS ? k->axis : -1, windowed ? m->xs_t : m->t));
  }
  remember(mm, v, at, x);
  return x;
}

/* ---- the member function ----------------------------------------------------------- */

/* A loop nest over the carries' rows and the member's units [lo, hi); the
 * builder is left in the innermost body with m->rows and m->j set. */
typedef struct unit_loop {
  cg_nest rows;
  cg_loop unit;
} unit_loop;

static unit_loop units_begin(cg_lower *c, const cell *k, member *m) {
  unit_loop u;
  u.rows = cg_nest_begin(c, k->carry.rank - 1, m->cur[0].dims);
  m->rows = u.rows.ivs;
  u.unit = cg_for_begin(c, LLVMBuildSub(c->b, m->hi, m->lo, ""), "unit");
  m->j = LLVMBuildAdd(c->b, m->lo, u.unit.iv, "j");
  return u;
}

static void units_end(cg_lower *c, unit_loop *u) {
  cg_for_end(c, &u->unit);
  cg_nest_end(c, &u->rows);
}

/* Rows of the products: every dim of a carry but the last. */
static LLVMValueRef carry_rows(cg_lower *c, const cell *k) {
  LLVMValueRef rows = cg_i64(c, 1);
  for (int32_t d = 0; d + 1 < k->carry.rank; d++) rows = LLVMBuildMul(c->b, rows, cg_dim(c, k->carry.dims[d]), "");
  return rows;
}

/* at's offset number q (an i64 below at->n). */
static LLVMValueRef offset_at(cg_lower *c, const offsets *at, LLVMValueRef q) {
  LLVMValueRef off = cg_i64(c, at->at[0]);
  for (int32_t j = 1; j < at->n; j++)
    off = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, q, cg_i64(c, j), ""), cg_i64(c, at->at[j]), off, "");
  return off;
}

/* Step 1: the member's columns of every product. */
static void emit_products(cg_lower *c, const kernel *kn, const member *m) {
  const cell *k = kn->k;
  LLVMBuilderRef B = c->b;
  LLVMValueRef rows = carry_rows(c, k), zero = cg_i64(c, 0), w = cg_i64(c, UNITS);
  for (int32_t i = 0; i < kn->n_products; i++) {
    const ir_op *o = ir_o(c->g, ir_v(c->g, kn->product[i])->def);
    const cg_buf *a = leaf_buf(kn, m, k->real[o->in[0]]), *p = leaf_buf(kn, m, k->real[o->in[1]]);
    const cg_buf *out = &m->bufs[product_buf(kn, i)];
    LLVMValueRef depth = a->dims[a->type.rank - 1], n = out->dims[out->type.rank - 1];
    cg_gemm g = {a->ptr, depth, cg_i64(c, 1), p->ptr, out->ptr, rows, n, depth};
    if (!k->split) {
      LLVMValueRef panels = LLVMBuildSDiv(B, LLVMBuildAdd(B, n, cg_i64(c, UNITS - 1), ""), w, "");
      cg_gemm_block(c, &g, zero, rows, zero, panels, true);
      continue;
    }
    /* A loop over the offsets, not a copy of the tile code per offset:
     * that code is most of the kernel's build time. */
    const offsets *at = &k->want[kn->product[i]];
    cg_loop q = cg_for_begin(c, cg_i64(c, at->n), "offset");
    LLVMValueRef off = offset_at(c, at, q.iv);
    LLVMValueRef from = LLVMBuildAdd(B, m->lo, off, ""), to = LLVMBuildAdd(B, m->hi, off, "");
    cg_gemm_block(c, &g, zero, rows, LLVMBuildSDiv(B, from, w, ""), LLVMBuildSDiv(B, to, w, ""), true);
    cg_for_end(c, &q);
  }
}

/* Step 2: the gate math of the member's units, stored into the next
 * carries and the step's outputs. */
static void emit_gates(cg_lower *c, const kernel *kn, member *m) {
  const cell *k = kn->k;
  const ir_op *y = ir_o(c->g, ir_block_terminator(c->g, k->body));
  unit_loop u = units_begin(c, k, m);
  memo mm = {0};
  LLVMValueRef *x = ir_xcalloc((size_t)y->n_in + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0; i < y->n_in; i++) x[i] = value_at(c, kn, m, &mm, y->in[i], 0);
  for (int32_t i = 0; i < k->carries; i++)
    cg_store(c, &m->next[i], element_index(c, k, m, &m->next[i], 0, -1, NULL), x[i]);
  for (int32_t i = 0; i < k->outputs; i++) {
    const cg_buf *out = &m->bufs[2 * k->carries + k->xs + k->captured + i];
    cg_store(c, out, element_index(c, k, m, out, 0, k->axis, m->t), x[k->carries + i]);
  }
  free(x);
  free(mm.v);
  free(mm.at);
  free(mm.x);
  units_end(c, &u);
}

/* The carries of step s: odd steps read the staging buffers. */
static void pick_carries(cg_lower *c, const kernel *kn, member *m, LLVMValueRef s) {
  const cell *k = kn->k;
  LLVMValueRef odd = LLVMBuildTrunc(c->b, s, c->i1, "odd");
  for (int32_t i = 0; i < k->carries; i++) {
    const cg_buf *result = &m->bufs[i], *staging = &m->bufs[k->carries + i];
    m->cur[i] = m->next[i] = *result;
    m->cur[i].ptr = LLVMBuildSelect(c->b, odd, staging->ptr, result->ptr, "cur");
    m->next[i].ptr = LLVMBuildSelect(c->b, odd, result->ptr, staging->ptr, "next");
  }
}

static LLVMValueRef closure_field(cg_lower *c, LLVMValueRef closure, int32_t f) {
  LLVMValueRef at = LLVMBuildGEP2(c->b, c->ptr, closure, (LLVMValueRef[]){cg_i64(c, f)}, 1, "");
  return LLVMBuildLoad2(c->b, c->ptr, at, "");
}

/* Counter q of the team's state (each on its own cache line): 0 counts
 * the blocks done over all steps, 1 + b holds the steps block b was taken
 * for. */
static LLVMValueRef counter(cg_lower *c, LLVMValueRef state, LLVMValueRef q) {
  LLVMValueRef at = LLVMBuildMul(c->b, q, cg_i64(c, COUNTER_STRIDE), "");
  return LLVMBuildGEP2(c->b, c->i64, state, &at, 1, "");
}

/* Block b of step s, if no member took it yet: products, gate math, done.
 * A team of one takes every block without atomics. */
static void run_block(cg_lower *c, const kernel *kn, member *m, LLVMValueRef state, LLVMValueRef s, LLVMValueRef b,
                      LLVMValueRef width, LLVMValueRef shared) {
  const cell *k = kn->k;
  LLVMBuilderRef B = c->b;
  LLVMBasicBlockRef claim = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block.claim");
  LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block");
  LLVMBasicBlockRef count = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block.count");
  LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block.next");
  LLVMBuildCondBr(B, shared, claim, run);
  LLVMPositionBuilderAtEnd(B, claim);
  LLVMValueRef epoch = counter(c, state, LLVMBuildAdd(B, b, cg_i64(c, 1), ""));
  LLVMValueRef take = LLVMBuildAtomicCmpXchg(B, epoch, s, LLVMBuildAdd(B, s, cg_i64(c, 1), ""),
                                             LLVMAtomicOrderingMonotonic, LLVMAtomicOrderingMonotonic, 0);
  LLVMBuildCondBr(B, LLVMBuildExtractValue(B, take, 1, "taken"), run, skip);
  LLVMPositionBuilderAtEnd(B, run);
  LLVMValueRef u = cg_i64(c, k->units);
  m->lo = LLVMBuildMul(B, b, width, "lo");
  LLVMValueRef hi = LLVMBuildAdd(B, m->lo, width, "");
  m->hi = cg_smin(c, hi, u);
  emit_products(c, kn, m);
  emit_gates(c, kn, m);
  LLVMBuildCondBr(B, shared, count, skip);
  LLVMPositionBuilderAtEnd(B, count);
  /* release: the block's stores before the count that announces them */
  LLVMBuildAtomicRMW(B, LLVMAtomicRMWBinOpAdd, counter(c, state, cg_i64(c, 0)), cg_i64(c, 1),
                     LLVMAtomicOrderingRelease, 0);
  LLVMBuildBr(B, skip);
  LLVMPositionBuilderAtEnd(B, skip);
}

/* Field f of the step range. */
static LLVMValueRef range_field(cg_lower *c, LLVMValueRef range, int32_t f) {
  return LLVMBuildLoad2(c->b, c->i64, LLVMBuildGEP2(c->b, c->i64, range, (LLVMValueRef[]){cg_i64(c, f)}, 1, ""), "");
}

/* The steps of the range: every block once (this member's first), then
 * the wait for the step's last block. A team of n cuts the units into n
 * blocks of whole panels: the blocks, like the team, depend on the run,
 * the results do not. The counters count the range's steps from 0 (they
 * start at zero for every team); the carries' parity is the step's
 * number in the whole scan. */
static void emit_steps(cg_lower *c, const kernel *kn, member *m, LLVMValueRef exec, LLVMValueRef state,
                       LLVMValueRef range, LLVMValueRef i, LLVMValueRef n) {
  const cell *k = kn->k;
  LLVMBuilderRef B = c->b;
  LLVMValueRef nb = n, first = i, panels = cg_i64(c, (k->units + UNITS - 1) / UNITS);
  LLVMValueRef per = LLVMBuildSDiv(B, LLVMBuildAdd(B, panels, LLVMBuildSub(B, n, cg_i64(c, 1), ""), ""), n, "");
  LLVMValueRef width = LLVMBuildMul(B, per, cg_i64(c, UNITS), "width");
  LLVMValueRef length = cg_dim(c, ir_get_dim(c->g, k->scan, "length"));
  LLVMValueRef s0 = range_field(c, range, RANGE_FIRST), s1 = range_field(c, range, RANGE_END);
  LLVMValueRef origin = range_field(c, range, RANGE_ORIGIN);
  cg_loop step = cg_for_begin(c, LLVMBuildSub(B, s1, s0, ""), "step");
  LLVMValueRef s = LLVMBuildAdd(B, s0, step.iv, "s");
  m->t = k->reverse ? LLVMBuildSub(B, LLVMBuildSub(B, length, cg_i64(c, 1), ""), s, "t") : s;
  m->xs_t = LLVMBuildSub(B, m->t, origin, "xs.t");
  pick_carries(c, kn, m, s);
  LLVMValueRef shared = LLVMBuildICmp(B, LLVMIntSGT, n, cg_i64(c, 1), "shared");
  cg_loop blk = cg_for_begin(c, nb, "blocks");
  run_block(c, kn, m, state, step.iv, LLVMBuildSRem(B, LLVMBuildAdd(B, first, blk.iv, ""), nb, "b"), width, shared);
  cg_for_end(c, &blk);
  LLVMBasicBlockRef wait = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "wait");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "step.next");
  LLVMBuildCondBr(B, shared, wait, next);
  LLVMPositionBuilderAtEnd(B, wait);
  LLVMValueRef all = LLVMBuildMul(B, LLVMBuildAdd(B, step.iv, cg_i64(c, 1), ""), nb, "");
  cg_team_wait(c, exec, counter(c, state, cg_i64(c, 0)), all);
  LLVMBuildBr(B, next);
  LLVMPositionBuilderAtEnd(B, next);
  cg_for_end(c, &step);
}

/* <first result>_recurrent(closure, i, n). */
static LLVMValueRef build_member(cg_lower *c, const kernel *kn) {
  const cell *k = kn->k;
  ir_buf name = {0};
  const char *first = ir_v(c->g, ir_o(c->g, k->scan)->out[0])->name;
  if (first)
    ir_buf_printf(&name, "%s_recurrent", first);
  else
    ir_buf_printf(&name, "%s_run.op%d_recurrent", c->prefix, (int)k->scan);
  LLVMTypeRef params[3] = {c->ptr, c->i64, c->i64};
  LLVMValueRef fn = LLVMAddFunction(c->mod, name.s, LLVMFunctionType(c->void_t, params, 3, 0));
  ir_buf_free(&name);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_copy_target_attrs(c, fn);
  LLVMBasicBlockRef start = cg_begin_entry(c, fn);
  LLVMValueRef closure = LLVMGetParam(fn, 0);
  c->syms = closure_field(c, closure, F_SYMS);
  LLVMValueRef exec = closure_field(c, closure, F_EXEC), state = closure_field(c, closure, F_STATE);
  LLVMValueRef range = closure_field(c, closure, F_RANGE);
  c->scratch = LLVMConstPointerNull(c->ptr);
  cg_end_task_entry(c, fn, start, LLVMConstPointerNull(c->ptr));
  member m = {0};
  m.bufs = ir_xcalloc((size_t)kn->n_bufs + 1, sizeof(cg_buf));
  m.cur = ir_xcalloc((size_t)k->carries + 1, sizeof(cg_buf));
  m.next = ir_xcalloc((size_t)k->carries + 1, sizeof(cg_buf));
  for (int32_t i = 0; i < kn->n_bufs; i++) cg_view_buf(c, &m.bufs[i], kn->types[i], closure_field(c, closure, F_BUFS + i));
  emit_steps(c, kn, &m, exec, state, range, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2));
  LLVMBuildRetVoid(c->b);
  /* No member may fail: the others would wait for its blocks. */
  IR_ASSERT(!LLVMGetFirstUse(LLVMBasicBlockAsValue(c->fail)));
  free(m.bufs);
  free(m.cur);
  free(m.next);
  return fn;
}

/* The most members worth having: MEMBER_WORK multiply-adds each per step,
 * at most one per block. */
static LLVMValueRef members_wanted(cg_lower *c, const kernel *kn) {
  const cell *k = kn->k;
  if (kn->blocks == 1) return cg_i64(c, 1);
  LLVMBuilderRef B = c->b;
  int64_t columns = 0;
  for (int32_t i = 0; i < kn->n_products; i++) {
    ir_type t = ir_vtype(c->g, kn->product[i]);
    int64_t n = 0;
    ir_dim_is_const(c->g->dims, t.dims[t.rank - 1], &n);
    columns += n;
  }
  LLVMValueRef work = LLVMBuildMul(B, carry_rows(c, k), cg_i64(c, columns * k->units), "work");
  LLVMValueRef want = LLVMBuildSDiv(B, work, cg_i64(c, MEMBER_WORK), "");
  return cg_smax(c, cg_smin(c, want, cg_i64(c, kn->blocks)), cg_i64(c, 1));
}

/* At most a block per panel of units (and MAX_BLOCKS: the team's counters
 * live on the caller's stack) when the units split, else one. */
static void choose_blocks(kernel *kn) {
  const cell *k = kn->k;
  kn->blocks = k->split ? k->units / UNITS : 1;
  if (kn->blocks > MAX_BLOCKS) kn->blocks = MAX_BLOCKS;
}

static void free_kernel(kernel *kn) {
  free(kn->types);
  free(kn->ptrs);
  free(kn->product);
  free(kn->once);
  free_cell(kn->k);
}

/* The team's counters in the caller's frame (zeroed before each team). */
static LLVMValueRef new_state(cg_lower *c, const kernel *kn) {
  LLVMValueRef state = cg_entry_alloca(c, LLVMArrayType(c->i64, (unsigned)((kn->blocks + 1) * COUNTER_STRIDE)),
                                       "recurrent.state");
  LLVMSetAlignment(state, 64);
  return state;
}

static void zero_state(cg_lower *c, const kernel *kn, LLVMValueRef state) {
  cg_loop z = cg_for_begin(c, cg_i64(c, (kn->blocks + 1) * COUNTER_STRIDE), "state");
  LLVMBuildStore(c->b, cg_i64(c, 0), LLVMBuildGEP2(c->b, c->i64, state, &z.iv, 1, ""));
  cg_for_end(c, &z);
}

struct cg_recurrent {
  kernel kn;
  LLVMValueRef member, closure, state, range, members;
  cg_buf *results, *staging; /* the carries' two buffers, in NAME_run */
};

cg_recurrent *cg_recurrent_new(cg_lower *c, ir_opid op, const cg_buf *staging, const bool *windowed, bool *ok) {
  *ok = true;
  cell *k = cell_of(c->g, op);
  if (!k) return NULL;
  cg_recurrent *r = ir_xcalloc(1, sizeof *r);
  kernel *kn = &r->kn;
  kn->k = k;
  kn->windowed = windowed;
  if (!prepare(c, kn, staging)) {
    *ok = false;
    cg_recurrent_end(c, r);
    return NULL;
  }
  choose_blocks(kn);
  r->closure = cg_entry_alloca(c, LLVMArrayType(c->ptr, (unsigned)(F_BUFS + kn->n_bufs)), "recurrent");
  r->range = cg_entry_alloca(c, LLVMArrayType(c->i64, RANGE_FIELDS), "recurrent.range");
  LLVMValueRef exec = c->exec ? c->exec : LLVMConstPointerNull(c->ptr);
  r->state = new_state(c, kn);
  for (int32_t f = 0; f < F_BUFS + kn->n_bufs; f++) {
    LLVMValueRef v = f == F_SYMS    ? c->syms
                     : f == F_EXEC  ? exec
                     : f == F_STATE ? r->state
                     : f == F_RANGE ? r->range
                                    : kn->ptrs[f - F_BUFS];
    LLVMBuildStore(c->b, v, LLVMBuildGEP2(c->b, c->ptr, r->closure, (LLVMValueRef[]){cg_i64(c, f)}, 1, ""));
  }
  r->members = members_wanted(c, kn);
  r->results = ir_xcalloc((size_t)k->carries + 1, sizeof(cg_buf));
  r->staging = ir_xcalloc((size_t)k->carries + 1, sizeof(cg_buf));
  for (int32_t i = 0; i < k->carries; i++) r->results[i] = *cg_result(c, op, i), r->staging[i] = staging[i];
  cg_fn_state st = cg_save_fn(c);
  r->member = build_member(c, kn);
  cg_restore_fn(c, &st);
  return r;
}

void cg_recurrent_run(cg_lower *c, cg_recurrent *r, LLVMValueRef s0, LLVMValueRef s1, LLVMValueRef origin) {
  LLVMValueRef v[RANGE_FIELDS] = {s0, s1, origin};
  for (int32_t f = 0; f < RANGE_FIELDS; f++)
    LLVMBuildStore(c->b, v[f], LLVMBuildGEP2(c->b, c->i64, r->range, (LLVMValueRef[]){cg_i64(c, f)}, 1, ""));
  zero_state(c, &r->kn, r->state);
  cg_team_run(c, r->member, r->closure, r->members);
}

/* After an odd number of steps the last carries are in the staging
 * buffers (the teams have ended: every block of every step is done). */
void cg_recurrent_end(cg_lower *c, cg_recurrent *r) {
  const cell *k = r->kn.k;
  if (r->member) {
    LLVMValueRef length = cg_dim(c, ir_get_dim(c->g, k->scan, "length"));
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "copy.back");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "copy.done");
    LLVMBuildCondBr(c->b, LLVMBuildTrunc(c->b, length, c->i1, "odd"), copy, done);
    LLVMPositionBuilderAtEnd(c->b, copy);
    for (int32_t i = 0; i < k->carries; i++) cg_copy(c, &r->results[i], &r->staging[i]);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
  }
  free(r->results);
  free(r->staging);
  free_kernel(&r->kn);
  free(r);
}
