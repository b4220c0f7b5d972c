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
 */
#include "lower.h"

#include <stdlib.h>

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

bool lower_scan(cg_lower *c, ir_opid op) {
  scan_shape s = shape_of(c, op);
  const ir_op *o = ir_o(c->g, op);
  const ir_block *body = ir_b(c->g, s.body);
  ir_opid term = ir_block_terminator(c->g, s.body);
  IR_ASSERT(term != IR_NONE);
  cg_buf *staging = bind_body_args(c, op, &s);
  if (c->measuring) { /* one step's allocations, never freed: an upper bound */
    bool ok = cg_lower_block(c, s.body);
    free(staging);
    return ok;
  }
  for (int32_t i = 0; i < s.carries; i++) cg_copy(c, &c->bufs[o->out[i]], cg_operand(c, op, i));
  for (int32_t i = 0; i < s.xs; i++)
    cg_check_dim_eq(c, ir_vtype(c->g, o->in[s.carries + i]).dims[s.axis], ir_get_dim(c->g, op, "length"));
  bool done, ok = cg_lower_recurrent(c, op, staging, &done);
  if (!ok || done) {
    free(staging);
    return ok;
  }
  LLVMValueRef length = cg_dim(c, ir_get_dim(c->g, op, "length"));
  LLVMValueRef mark = LLVMBuildLoad2(c->b, c->i64, c->sp, "mark");
  cg_loop step = cg_for_begin(c, length, "step");
  LLVMValueRef t = step.iv;
  if (s.reverse) t = LLVMBuildSub(c->b, LLVMBuildSub(c->b, length, cg_i64(c, 1), ""), step.iv, "t");
  cg_store(c, &c->bufs[body->args[0]], cg_i64(c, 0), t);
  for (int32_t i = 0; i < s.xs; i++)
    copy_slice(c, cg_operand(c, op, s.carries + i), &c->bufs[body->args[1 + s.carries + i]], s.axis,
               t, SLICE_READ);
  ok = cg_lower_block(c, s.body);
  if (ok) {
    finish_step(c, op, &s, staging, t);
    LLVMBuildStore(c->b, mark, c->sp);
  }
  cg_for_end(c, &step);
  free(staging);
  return ok;
}
