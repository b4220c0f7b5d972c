/*
 * lower_scan.c - `scan` as a loop.
 *
 * Buffers. The scan's carry results double as the current carries: the
 * initial values are copied in before the loop and every step copies the
 * next values back. Body arguments alias buffers wherever they can: carries
 * alias the carry results, invariants alias their operands. The step index
 * and the per-step input slices get buffers allocated once, before the
 * loop; the body's own values are allocated per step and freed by resetting
 * the scratch pointer after each step.
 *
 * Order of the copies at the end of a step matters: per-step outputs are
 * stored first (one may be a carry argument, i.e. the current carry), then
 * next carries go through staging buffers (a next carry may be another
 * carry's current value, as in a swap), then into the carry buffers.
 *
 * reverse runs t = L-1 ... 0; the outputs of step t go to position t.
 * Step s (s = 0, 1, ... in the order steps run) is at t = s, or L-1-s.
 *
 * Steps run as a loop here or, when the body fits, as the persistent
 * recurrent kernel (lower_recurrent.c) over ranges of steps.
 *
 * Chunked input projections. scan-hoist leaves a recurrence's input
 * projection before its scan as one product over all T x B rows (a
 * matmul_packed or a GEMM group), f32[T, B..., N], which the scan reads
 * one step at a time: T times a step's size in scratch. When that product
 * (the producer) is read by this scan only, as a per-step input (xs),
 * directly or through a split (of constant sizes, along another axis)
 * that only this scan reads, and is no graph output, the scan computes it
 * itself, chunk by chunk (cg_chunk_plan decides, once per walk of the
 * graph body; the walker then neither places nor lowers the producer and
 * its split): steps are cut into chunks of Tc, and before each chunk's
 * steps the producer runs on the rows of the positions they visit
 * ([t0, t1), t0 = s0, or L - s1 reversed), with its own lowering on
 * views: its left matrix and the epilogue arguments it reads element by
 * element (FULL) seen from row t0 on, its weights and row or scalar
 * arguments whole, its result Tc steps of a chunk buffer. The split never
 * runs: the scan reads its pieces inside that buffer. The steps read
 * these per-step inputs at t - t0. A GEMM element is one multiply-add
 * chain over k whatever rows are computed with it, so the results are
 * bitwise those of the whole product. Only scans of the graph body along
 * axis 0 are chunked, the producer's rows being that axis; its operands
 * stay live until the scan (lower_memplan.c).
 *
 * Tc depends on the shapes only: the most steps whose chunk buffers fit
 * CG_CHUNK_BYTES together (one at least), evened out over the chunks that
 * makes, Tc = ceildiv(L, ceildiv(L, most)), so no chunk is a sliver.
 *
 * Chunk buffers. The walker places them with the scan's results
 * (cg_chunk_place), as slots of the memory plan held by the producers'
 * results and free after the scan, so the next chunked scan reuses them.
 * Each takes min(L steps, CG_CHUNK_BYTES), one step at least (chunk_type):
 * enough for Tc steps, and never more for smaller dims, as a context's
 * scratch is sized for its maximum dims. The scans of a concurrent group
 * (the two directions of a bidirectional layer, one task each,
 * lower_parallel.c) are all placed before any of them runs and released
 * after the last: each holds chunk buffers of its own while they run side
 * by side, and its task receives them, and its producers' operands, with
 * its other buffers. There each scan computes its own projection chunk by
 * chunk, its GEMM inline on the task's thread.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

/* The most bytes a chunk of one scan's projections takes (Tc steps of
 * all its producers, see chunk_steps), and of each chunk buffer
 * (chunk_type). Each chunk adds a team's start and end and a GEMM's tasks
 * (points where a thread that is late holds the others) and makes the
 * members reload their recurrent weights after the GEMM has gone through
 * their caches, so chunks should not be small: at 1 MiB, B2's two 16 MiB
 * projections take 16 chunks of 8 steps each (128 rows, about the GEMM's
 * row block) and B1's 4 MiB one 4 chunks (docs/codegen.md). */
#ifndef CG_CHUNK_BYTES
#define CG_CHUNK_BYTES (1 << 20)
#endif

typedef enum slice_dir { SLICE_READ, SLICE_WRITE } slice_dir;

/* READ: part = whole[..., t, ...]; WRITE: whole[..., t, ...] = part, where
 * `axis` of whole is the sliced one and part has that axis removed. */
static void copy_slice(cg_lower *c, const cg_buf *whole, const cg_buf *part, int32_t axis,
                       LLVMValueRef t, slice_dir dir) {
  cg_nest n = cg_nest_begin(c, part->type.rank, part->dims);
  LLVMValueRef *widx = ir_xcalloc((size_t)whole->type.rank + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0, j = 0; i < whole->type.rank; i++) widx[i] = i == axis ? t : n.ivs[j++];
  LLVMValueRef wlin = cg_linear(c, whole, widx), plin = cg_linear(c, part, n.ivs);
  /* Same dtype on both sides: move storage values without conversion. */
  LLVMTypeRef st = cg_storage_type(c, whole->type.dtype);
  LLVMValueRef wp = LLVMBuildGEP2(c->b, st, whole->ptr, &wlin, 1, "");
  LLVMValueRef pp = LLVMBuildGEP2(c->b, st, part->ptr, &plin, 1, "");
  LLVMValueRef from = dir == SLICE_READ ? wp : pp, to = dir == SLICE_READ ? pp : wp;
  LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, st, from, ""), to);
  free(widx);
  cg_nest_end(c, &n);
}

typedef struct scan_shape {
  int32_t carries, xs, invariants, outputs, axis;
  bool reverse;
  ir_blockid body;
} scan_shape;

static scan_shape shape_of(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  scan_shape s;
  s.carries = (int32_t)ir_get_int(c->g, op, "carries");
  s.xs = (int32_t)ir_get_int(c->g, op, "xs");
  s.invariants = o->n_in - s.carries - s.xs;
  s.outputs = o->n_out - s.carries;
  s.axis = (int32_t)ir_get_int(c->g, op, "axis");
  s.reverse = ir_get_int(c->g, op, "reverse") != 0;
  s.body = o->regions[0];
  return s;
}

/* Buffers of the body's arguments, and staging buffers for the carries.
 * Allocation order is identical whether measuring or not. */
static cg_buf *bind_body_args(cg_lower *c, ir_opid op, const scan_shape *s) {
  const ir_op *o = ir_o(c->g, op);
  const ir_block *body = ir_b(c->g, s->body);
  cg_alloc_buf(c, &c->bufs[body->args[0]], ir_vtype(c->g, body->args[0]));
  for (int32_t i = 0; i < s->carries; i++) c->bufs[body->args[1 + i]] = c->bufs[o->out[i]];
  for (int32_t i = 0; i < s->xs; i++) {
    ir_val arg = body->args[1 + s->carries + i];
    cg_alloc_buf(c, &c->bufs[arg], ir_vtype(c->g, arg));
  }
  for (int32_t i = 0; i < s->invariants; i++) {
    int32_t k = s->carries + s->xs + i;
    c->bufs[body->args[1 + k]] = c->bufs[o->in[k]];
  }
  cg_buf *staging = ir_xcalloc((size_t)s->carries + 1, sizeof(cg_buf));
  for (int32_t i = 0; i < s->carries; i++) cg_alloc_buf(c, &staging[i], ir_vtype(c->g, o->out[i]));
  return staging;
}

static void finish_step(cg_lower *c, ir_opid op, const scan_shape *s, const cg_buf *staging,
                        LLVMValueRef t) {
  const ir_op *o = ir_o(c->g, op);
  const ir_op *y = ir_o(c->g, ir_block_terminator(c->g, s->body));
  for (int32_t k = 0; k < s->outputs; k++)
    copy_slice(c, &c->bufs[o->out[s->carries + k]], &c->bufs[y->in[s->carries + k]], s->axis, t,
               SLICE_WRITE);
  for (int32_t i = 0; i < s->carries; i++) cg_copy(c, &staging[i], &c->bufs[y->in[i]]);
  for (int32_t i = 0; i < s->carries; i++) cg_copy(c, &c->bufs[o->out[i]], &staging[i]);
}

/* ---- chunked input projections: the plan ---------------------------------------- */

/* The operand of producer op that is its product's left matrix: a
 * matmul_packed's first, a GEMM group's argument that its product reads
 * first; -1 when op is neither. */
static int32_t lhs_operand(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  if (o->kind == IR_OP_MATMUL_PACKED) return 0;
  if (o->kind != IR_OP_FUSED || ir_fused_form_of(g, op) != IR_FUSED_GEMM) return -1;
  const ir_value *a = ir_v(g, ir_o(g, ir_b(g, o->regions[0])->first)->in[0]);
  return a->def == IR_NONE && a->index < o->n_in ? a->index : -1;
}

/* Whether producer op reads its operand i row by row with its result:
 * the product's left matrix, or an epilogue argument read FULL (it has
 * the product's dims). Rows [t0, t1) of the result need rows [t0, t1) of
 * these and all of the others. */
static bool reads_rows(const ir_graph *g, ir_opid op, int32_t i) {
  const ir_op *o = ir_o(g, op);
  if (i == lhs_operand(g, op)) return true;
  if (o->kind != IR_OP_FUSED) return false;
  ir_blockid body = o->regions[0];
  ir_opid root = ir_b(g, body)->first, y = ir_block_terminator(g, body);
  ir_val arg = ir_b(g, body)->args[i];
  ir_type space = ir_vtype(g, ir_o(g, root)->out[0]);
  for (ir_opid e = ir_o(g, root)->next; e != y; e = ir_o(g, e)->next)
    for (int32_t x = 0; x < ir_o(g, e)->n_in; x++)
      if (ir_o(g, e)->in[x] == arg && ir_broadcast_class(g, ir_vtype(g, arg), space) == IR_BCAST_FULL) return true;
  return false;
}

/* Whether op is a producer a scan of `length` steps can run chunk by
 * chunk: a product (matmul_packed or a GEMM group) whose result is
 * [length, rows..., N] and whose left matrix has the same leading dims,
 * so the rows of steps [t0, t1) are contiguous in both. */
static bool chunkable_producer(const ir_graph *g, ir_opid op, ir_dim length) {
  int32_t a = lhs_operand(g, op);
  if (a < 0 || ir_o(g, op)->n_out != 1) return false;
  ir_type r = ir_vtype(g, ir_o(g, op)->out[0]), t = ir_vtype(g, ir_o(g, op)->in[a]);
  if (r.rank < 2 || t.rank != r.rank || r.dims[0] != length) return false;
  for (int32_t d = 0; d + 1 < r.rank; d++)
    if (t.dims[d] != r.dims[d]) return false;
  return true;
}

/* Whether v is an xs operand of scan. */
static bool is_xs(const ir_graph *g, ir_opid scan, ir_val v) {
  int32_t carries = (int32_t)ir_get_int(g, scan, "carries"), xs = (int32_t)ir_get_int(g, scan, "xs");
  for (int32_t i = carries; i < carries + xs; i++)
    if (ir_o(g, scan)->in[i] == v) return true;
  return false;
}

/* Whether every result of op is read once, by scan as an xs operand (so
 * not by another op, nor as a graph output, which the yield reads). */
static bool only_xs_of(const ir_graph *g, const int32_t *uses, ir_opid op, ir_opid scan) {
  for (int32_t r = 0; r < ir_o(g, op)->n_out; r++)
    if (uses[ir_o(g, op)->out[r]] != 1 || !is_xs(g, scan, ir_o(g, op)->out[r])) return false;
  return true;
}

/* The axis of split op when it cuts another axis than the first into
 * pieces of constant sizes that add up to that axis's constant dim (so it
 * needs no run-time check), else -1. */
static int32_t static_split_axis(const ir_graph *g, ir_opid op) {
  ir_type t = ir_vtype(g, ir_o(g, op)->in[0]);
  int64_t axis = ir_get_int(g, op, "axis"), dim, size, total = 0;
  if (axis < 0) axis += t.rank;
  if (axis <= 0 || axis >= t.rank || !ir_dim_is_const(g->dims, t.dims[axis], &dim)) return -1;
  const ir_attr *sizes = ir_get_attr(g, op, "sizes");
  for (int32_t k = 0; k < sizes->u.dims.n; k++) {
    if (!ir_dim_is_const(g->dims, sizes->u.dims.v[k], &size) || size < 0) return -1;
    total += size;
  }
  return total == dim ? (int32_t)axis : -1;
}

/* The xs operand v of scan, when a producer makes it, or a static split
 * of a producer's result that nothing else reads: both are marked as the
 * scan's in plan. */
static void plan_xs(const ir_graph *g, const int32_t *uses, ir_opid scan, ir_val v, ir_opid *plan) {
  ir_opid def = ir_v(g, v)->def;
  ir_dim length = ir_get_dim(g, scan, "length");
  if (def == IR_NONE || plan[def] != IR_NONE || !only_xs_of(g, uses, def, scan)) return;
  if (chunkable_producer(g, def, length)) {
    plan[def] = scan;
    return;
  }
  if (ir_o(g, def)->kind != IR_OP_SPLIT || static_split_axis(g, def) < 0) return;
  ir_val whole = ir_o(g, def)->in[0];
  ir_opid producer = ir_v(g, whole)->def;
  if (producer == IR_NONE || uses[whole] != 1 || !chunkable_producer(g, producer, length)) return;
  plan[producer] = plan[def] = scan;
}

ir_opid *cg_chunk_plan(const ir_graph *g) {
  ir_opid *plan = ir_xmalloc(sizeof(ir_opid) * ((size_t)g->n_ops + 1));
  for (ir_opid op = 0; op < g->n_ops; op++) plan[op] = IR_NONE;
  int32_t *uses = ir_use_counts(g);
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    if (ir_o(g, op)->kind != IR_OP_SCAN || ir_get_int(g, op, "axis") != 0) continue;
    int32_t carries = (int32_t)ir_get_int(g, op, "carries"), xs = (int32_t)ir_get_int(g, op, "xs");
    for (int32_t i = carries; i < carries + xs; i++) plan_xs(g, uses, op, ir_o(g, op)->in[i], plan);
  }
  free(uses);
  return plan;
}

/* ---- chunked input projections: the lowering ------------------------------------- */

/* The ops a scan computes per chunk: producers, each with a chunk buffer
 * of Tc steps for its result, and splits of their results. */
typedef struct chunks {
  int32_t n;
  ir_opid *ops;        /* in body order (a producer before its split) */
  LLVMValueRef *base;  /* by value id of their results: where its chunk starts */
  LLVMValueRef steps;  /* steps per chunk, at least 1 */
  bool *windowed;      /* by xs index of the scan: read from a chunk buffer */
} chunks;

ir_opid *cg_chunk_ops(const cg_lower *c, ir_opid scan, int32_t *n) {
  const ir_graph *g = c->g;
  *n = 0;
  if (!c->deferred || ir_o(g, scan)->block != g->body) return NULL; /* a scan in a region computes none */
  ir_opid *ops = NULL;
  for (ir_opid d = ir_b(g, g->body)->first; d != scan; d = ir_o(g, d)->next) {
    if (c->deferred[d] != scan) continue;
    if (!ops) ops = ir_xmalloc(sizeof(ir_opid) * ((size_t)g->n_ops + 1));
    ops[(*n)++] = d;
  }
  return ops;
}

/* Bytes one step of v takes: its dims but the first, times its dtype size. */
static ir_dim step_bytes(ir_graph *g, ir_val v) {
  ir_type t = ir_vtype(g, v);
  ir_dim n = ir_dim_const(g->dims, (int64_t)ir_dtype_size(t.dtype));
  for (int32_t d = 1; d < t.rank; d++) n = ir_dim_mul(g->dims, n, t.dims[d]);
  return n;
}

/* Steps per chunk, from the shapes only: as many as keep every chunk
 * buffer together within CG_CHUNK_BYTES (one at least), then evened out
 * over the chunks that makes (ceildiv(L, ceildiv(L, most))), so the last
 * chunk is not a sliver. */
static ir_dim chunk_steps(ir_graph *g, const ir_opid *ops, int32_t n, ir_dim length) {
  ir_dimtab *t = g->dims;
  ir_dim bytes = ir_dim_const(t, 0);
  for (int32_t i = 0; i < n; i++)
    if (ir_o(g, ops[i])->kind != IR_OP_SPLIT) /* its pieces are views */
      bytes = ir_dim_add(t, bytes, step_bytes(g, ir_o(g, ops[i])->out[0]));
  ir_dim most = ir_dim_max(t, ir_dim_const(t, 1), ir_dim_floordiv(t, ir_dim_const(t, CG_CHUNK_BYTES), bytes));
  return ir_dim_ceildiv(t, length, ir_dim_ceildiv(t, length, most));
}

/* A split's pieces, read from its operand's chunk buffer in place: piece
 * k is bound as the whole operand ([L, ..., N, ...], so indexed with its
 * dims) from the piece's first element on. Element i of the piece, i[a] <
 * size k, is element i + offset k along axis a of the operand. The split
 * never runs (static_split_axis: nothing to check). */
static void bind_pieces(cg_lower *c, chunks *ch, ir_opid split) {
  const ir_graph *g = c->g;
  const ir_op *o = ir_o(g, split);
  ir_type t = ir_vtype(g, o->in[0]);
  int32_t axis = static_split_axis(g, split);
  const ir_attr *sizes = ir_get_attr(g, split, "sizes");
  LLVMValueRef inner = cg_i64(c, 1);
  for (int32_t d = axis + 1; d < t.rank; d++) inner = LLVMBuildMul(c->b, inner, cg_dim(c, t.dims[d]), "");
  int64_t at = 0, size;
  for (int32_t k = 0; k < o->n_out; k++) {
    LLVMValueRef shift = LLVMBuildMul(c->b, cg_i64(c, at), inner, "");
    LLVMValueRef ptr = LLVMBuildGEP2(c->b, cg_storage_type(c, t.dtype), ch->base[o->in[0]], &shift, 1, "piece");
    cg_view_buf(c, &c->bufs[o->out[k]], t, ptr);
    ch->base[o->out[k]] = ptr;
    ir_dim_is_const(g->dims, sizes->u.dims.v[k], &size);
    at += size;
  }
}

/* The chunk buffer of a producer's result v ([L, ...]): the whole
 * sequence when it takes less than CG_CHUNK_BYTES, else that many bytes
 * (one step at least), as a flat array. That holds chunk_steps' Tc steps
 * (Tc <= L, and Tc steps of all the scan's producers take at most
 * CG_CHUNK_BYTES or one step), and unlike Tc steps it never grows when a
 * dim shrinks (Tc is 33 at L = 33 but 25 at L = 50): a ctx's scratch,
 * sized for its maximum dims, covers every call. */
static ir_type chunk_type(ir_graph *g, ir_val v, ir_dim length) {
  ir_dimtab *t = g->dims;
  ir_type r = ir_vtype(g, v);
  ir_dim step = ir_dim_const(t, 1);
  for (int32_t d = 1; d < r.rank; d++) step = ir_dim_mul(t, step, r.dims[d]);
  ir_dim cap = ir_dim_const(t, CG_CHUNK_BYTES / (int64_t)ir_dtype_size(r.dtype));
  ir_dim n = ir_dim_min(t, ir_dim_mul(t, length, step), ir_dim_max(t, step, cap));
  return ir_type_make(g, r.dtype, 1, &n);
}

void cg_chunk_place(cg_lower *c, ir_opid scan) {
  ir_graph *g = c->g;
  int32_t n;
  ir_opid *ops = cg_chunk_ops(c, scan, &n);
  for (int32_t i = 0; i < n; i++) {
    const ir_op *o = ir_o(g, ops[i]);
    for (int32_t r = 0; o->kind != IR_OP_SPLIT && r < o->n_out; r++) { /* a split's pieces are views */
      ir_type chunk = chunk_type(g, o->out[r], ir_get_dim(g, scan, "length"));
      if (c->memplan)
        cg_memplan_alloc_as(c, c->memplan, o->out[r], chunk);
      else
        cg_alloc_buf(c, &c->bufs[o->out[r]], chunk);
    }
  }
  free(ops);
}

/* The ops deferred to scan op and the scan's view of their chunk buffers
 * (cg_chunk_place put them in c->bufs, in NAME_run or, for a scan of a
 * concurrent group, in its task's closure): each result bound whole
 * ([L, ...]) over its chunk buffer, which holds the sequence from the
 * chunk's first position on, a split's pieces inside their operand's.
 * False when the scan computes none. */
static bool chunks_begin(cg_lower *c, ir_opid op, chunks *ch) {
  ir_graph *g = c->g;
  memset(ch, 0, sizeof *ch);
  ch->ops = cg_chunk_ops(c, op, &ch->n);
  if (ch->n == 0) return false;
  ir_dim steps = chunk_steps(g, ch->ops, ch->n, ir_get_dim(g, op, "length"));
  ch->steps = cg_smax(c, cg_dim(c, steps), cg_i64(c, 1));
  ch->base = ir_xcalloc((size_t)g->n_vals + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0; i < ch->n; i++) {
    const ir_op *o = ir_o(g, ch->ops[i]);
    if (o->kind == IR_OP_SPLIT) {
      bind_pieces(c, ch, ch->ops[i]);
      continue;
    }
    for (int32_t r = 0; r < o->n_out; r++) {
      ch->base[o->out[r]] = c->bufs[o->out[r]].ptr;
      cg_view_buf(c, &c->bufs[o->out[r]], ir_vtype(g, o->out[r]), ch->base[o->out[r]]);
    }
  }
  int32_t carries = (int32_t)ir_get_int(g, op, "carries"), xs = (int32_t)ir_get_int(g, op, "xs");
  ch->windowed = ir_xcalloc((size_t)xs + 1, sizeof(bool));
  for (int32_t i = 0; i < xs; i++) ch->windowed[i] = ch->base[ir_o(g, op)->in[carries + i]] != NULL;
  return true;
}

static void chunks_end(chunks *ch) {
  free(ch->ops);
  free(ch->base);
  free(ch->windowed);
}

/* b seen from sequence position t0 on, n positions long (axis 0). */
static cg_buf rows_of(cg_lower *c, const cg_buf *b, LLVMValueRef base, LLVMValueRef t0, LLVMValueRef n) {
  cg_buf v = *b;
  v.dims = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(b->type.rank + 1));
  memcpy(v.dims, b->dims, sizeof(LLVMValueRef) * (size_t)b->type.rank);
  v.dims[0] = n;
  LLVMValueRef at = t0;
  for (int32_t d = 1; d < b->type.rank; d++) at = LLVMBuildMul(c->b, at, b->dims[d], "");
  v.ptr = LLVMBuildGEP2(c->b, cg_storage_type(c, b->type.dtype), base, &at, 1, "rows");
  return v;
}

/* The producers on positions [t0, t0 + n): each reads those rows of the
 * operands it reads by rows (its left matrix and FULL epilogue arguments)
 * in place and the others whole, and writes its chunk buffer. Its own
 * lowering runs on those views, so every element is computed as it would
 * be unchunked (a GEMM element is one multiply-add chain over k whatever
 * the rows around it). */
static bool chunks_produce(cg_lower *c, const chunks *ch, LLVMValueRef t0, LLVMValueRef n) {
  for (int32_t i = 0; i < ch->n; i++) {
    ir_opid op = ch->ops[i];
    const ir_op *o = ir_o(c->g, op);
    if (o->kind == IR_OP_SPLIT) continue; /* its pieces are views (bind_pieces) */
    int32_t nb = o->n_in + o->n_out;
    cg_buf *saved = ir_xcalloc((size_t)nb + 1, sizeof(cg_buf));
    for (int32_t k = 0; k < nb; k++) saved[k] = c->bufs[k < o->n_in ? o->in[k] : o->out[k - o->n_in]];
    for (int32_t k = 0; k < nb; k++) {
      ir_val v = k < o->n_in ? o->in[k] : o->out[k - o->n_in];
      if (k >= o->n_in) /* the chunk buffer starts at t0 */
        c->bufs[v] = rows_of(c, &saved[k], ch->base[v], cg_i64(c, 0), n);
      else if (reads_rows(c->g, op, k))
        c->bufs[v] = rows_of(c, &saved[k], saved[k].ptr, t0, n);
    }
    bool ok = cg_lower_op(c, op);
    for (int32_t k = nb - 1; k >= 0; k--) c->bufs[k < o->n_in ? o->in[k] : o->out[k - o->n_in]] = saved[k];
    free(saved);
    if (!ok) return false;
  }
  return true;
}

/* ---- the steps ---------------------------------------------------------------- */

/* Steps [s0, s1) as a loop (step s at t = s, or L-1-s reversed), the
 * per-step inputs read at t, those in chunk buffers (windowed) at
 * t - origin; the body's values are freed after each step by resetting
 * the bump pointer to mark. */
static bool loop_steps(cg_lower *c, ir_opid op, const scan_shape *s, const cg_buf *staging, const bool *windowed,
                       LLVMValueRef s0, LLVMValueRef s1, LLVMValueRef origin, LLVMValueRef mark) {
  const ir_block *body = ir_b(c->g, s->body);
  LLVMValueRef length = cg_dim(c, ir_get_dim(c->g, op, "length"));
  cg_loop step = cg_for_begin(c, LLVMBuildSub(c->b, s1, s0, ""), "step");
  LLVMValueRef t = LLVMBuildAdd(c->b, s0, step.iv, "t");
  if (s->reverse) t = LLVMBuildSub(c->b, LLVMBuildSub(c->b, length, cg_i64(c, 1), ""), t, "t");
  cg_store(c, &c->bufs[body->args[0]], cg_i64(c, 0), t);
  LLVMValueRef at = LLVMBuildSub(c->b, t, origin, "");
  for (int32_t i = 0; i < s->xs; i++)
    copy_slice(c, cg_operand(c, op, s->carries + i), &c->bufs[body->args[1 + s->carries + i]], s->axis,
               windowed && windowed[i] ? at : t, SLICE_READ);
  bool ok = cg_lower_block(c, s->body);
  if (ok) {
    finish_step(c, op, s, staging, t);
    LLVMBuildStore(c->b, mark, c->sp);
  }
  cg_for_end(c, &step);
  return ok;
}

/* Steps [s0, s1), by the persistent kernel when there is one. */
static bool run_steps(cg_lower *c, ir_opid op, const scan_shape *s, const cg_buf *staging, const bool *windowed,
                      cg_recurrent *r, LLVMValueRef s0, LLVMValueRef s1, LLVMValueRef origin, LLVMValueRef mark) {
  if (!r) return loop_steps(c, op, s, staging, windowed, s0, s1, origin, mark);
  cg_recurrent_run(c, r, s0, s1, origin);
  return true;
}

/* Every step, chunk by chunk: chunk i is steps [i Tc, min((i + 1) Tc, L)),
 * the positions [t0, t1) they visit (the same, or mirrored when reversed)
 * produced first. */
static bool run_chunks(cg_lower *c, ir_opid op, const scan_shape *s, const cg_buf *staging, cg_recurrent *r,
                       const chunks *ch, LLVMValueRef mark) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef length = cg_dim(c, ir_get_dim(c->g, op, "length")), tc = ch->steps;
  LLVMValueRef last = LLVMBuildAdd(B, length, LLVMBuildSub(B, tc, cg_i64(c, 1), ""), "");
  LLVMValueRef count = LLVMBuildSDiv(B, last, tc, "chunks");
  cg_loop chunk = cg_for_begin(c, count, "chunk");
  LLVMValueRef s0 = LLVMBuildMul(B, chunk.iv, tc, "s0");
  LLVMValueRef s1 = cg_smin(c, LLVMBuildAdd(B, s0, tc, ""), length);
  LLVMValueRef t0 = s->reverse ? LLVMBuildSub(B, length, s1, "t0") : s0;
  bool ok = chunks_produce(c, ch, t0, LLVMBuildSub(B, s1, s0, "")) &&
            run_steps(c, op, s, staging, ch->windowed, r, s0, s1, t0, mark);
  cg_for_end(c, &chunk);
  return ok;
}

/* After the carries' initial values: the steps, chunk by chunk when the
 * scan computes its producers (ch not NULL). */
static bool lower_steps(cg_lower *c, ir_opid op, const scan_shape *s, const cg_buf *staging, const chunks *ch) {
  const ir_op *o = ir_o(c->g, op);
  for (int32_t i = 0; i < s->carries; i++) cg_copy(c, &c->bufs[o->out[i]], cg_operand(c, op, i));
  for (int32_t i = 0; i < s->xs; i++)
    cg_check_dim_eq(c, ir_vtype(c->g, o->in[s->carries + i]).dims[s->axis], ir_get_dim(c->g, op, "length"));
  bool ok;
  cg_recurrent *r = cg_recurrent_new(c, op, staging, ch ? ch->windowed : NULL, &ok);
  if (!ok) return false;
  LLVMValueRef mark = LLVMBuildLoad2(c->b, c->i64, c->sp, "mark");
  LLVMValueRef zero = cg_i64(c, 0), length = cg_dim(c, ir_get_dim(c->g, op, "length"));
  if (ch)
    ok = run_chunks(c, op, s, staging, r, ch, mark);
  else
    ok = run_steps(c, op, s, staging, NULL, r, zero, length, zero, mark);
  if (r) cg_recurrent_end(c, r);
  return ok;
}

bool lower_scan(cg_lower *c, ir_opid op) {
  scan_shape s = shape_of(c, op);
  IR_ASSERT(ir_block_terminator(c->g, s.body) != IR_NONE);
  chunks ch;
  bool chunked = chunks_begin(c, op, &ch);
  cg_buf *staging = bind_body_args(c, op, &s);
  /* Measuring: one step's allocations, never freed (an upper bound). */
  bool ok = c->measuring ? cg_lower_block(c, s.body) : lower_steps(c, op, &s, staging, chunked ? &ch : NULL);
  if (chunked) chunks_end(&ch);
  free(staging);
  return ok;
}
