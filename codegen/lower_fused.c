/*
 * lower_fused.c - kernel groups: a `fused` op (made by the fuse pass) as one
 * kernel, by the form ir_fused_form_of gives its region (ir/ir.h).
 *
 *  - ELEMENTWISE: one loop over the result's elements runs every op of the
 *    region per element, the values in between staying in registers. At
 *    top level the group splits into tasks like an elementwise op
 *    (lower_parallel.c), its task function named <result>_fused.
 *  - GEMM: the product's task function, <result>_fused, applies the
 *    epilogue to each task's block of C after the block's last k step,
 *    while it is in cache (lower_gemm.c).
 *  - GENERIC (a hand-written group of any other shape): the region's ops
 *    one after another, like a scan body, then its yields are copied out.
 *
 * Every element goes through the same operations as without the group
 * (cg_elementwise_value is what the elementwise loops compute), so results
 * are bitwise the same with and without the fuse pass.
 */
#include "lower.h"

#include <stdlib.h>

void cg_group_name(cg_lower *c, ir_opid op, ir_buf *out) {
  const char *name = ir_o(c->g, op)->n_out > 0 ? ir_v(c->g, ir_o(c->g, op)->out[0])->name : NULL;
  if (ir_o(c->g, op)->kind == IR_OP_FUSED && name)
    ir_buf_printf(out, "%s_fused", name);
  else
    ir_buf_printf(out, "%s_run.op%d%s", c->prefix, (int)op, ir_o(c->g, op)->kind == IR_OP_FUSED ? "_fused" : "");
}

LLVMValueRef cg_group_values(cg_lower *c, ir_opid fused, ir_opid from, LLVMValueRef *vals) {
  ir_blockid body = ir_o(c->g, fused)->regions[0];
  ir_opid y = ir_block_terminator(c->g, body);
  for (ir_opid op = from; op != y; op = ir_o(c->g, op)->next) {
    const ir_op *o = ir_o(c->g, op);
    LLVMValueRef x[3];
    IR_ASSERT(o->n_in <= 3);
    for (int32_t i = 0; i < o->n_in; i++) x[i] = vals[o->in[i]];
    /* Rounded to its dtype as if stored: what every op means on its own. */
    vals[o->out[0]] = cg_round_to_storage(c, cg_elementwise_value(c, op, x), ir_vtype(c->g, o->out[0]).dtype);
  }
  return vals[ir_o(c->g, y)->in[0]];
}

/* The region's arguments are the operands' buffers. */
static void bind_arguments(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  const ir_block *b = ir_b(c->g, o->regions[0]);
  for (int32_t i = 0; i < b->n_args; i++) c->bufs[b->args[i]] = *cg_operand(c, op, i);
}

/* ELEMENTWISE: one flat loop when every argument has the result's dims,
 * else a nest that reads each argument with numpy broadcasting. */
static bool lower_elementwise_group(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  const ir_block *b = ir_b(c->g, o->regions[0]);
  ir_opid y = ir_block_terminator(c->g, o->regions[0]);
  const cg_buf *res = cg_result(c, op, 0);
  /* Only the arguments some op reads take part (a hand-written group may
   * pass others, of any shape). */
  bool *read = ir_xcalloc((size_t)b->n_args + 1, sizeof(bool)), flat = true;
  for (ir_opid r = b->first; r != y; r = ir_o(c->g, r)->next)
    for (int32_t i = 0; i < ir_o(c->g, r)->n_in; i++) {
      const ir_value *v = ir_v(c->g, ir_o(c->g, r)->in[i]);
      if (v->def == IR_NONE) read[v->index] = true;
    }
  for (int32_t i = 0; i < b->n_args; i++) {
    if (!read[i]) continue;
    cg_broadcast_check(c, c->bufs[b->args[i]].type, res->type);
    flat = flat && ir_dims_equal(c->bufs[b->args[i]].type, res->type);
  }
  LLVMValueRef *vals = ir_xcalloc((size_t)c->g->n_vals + 1, sizeof(LLVMValueRef));
  cg_loop l = {0};
  cg_nest nest = {0};
  LLVMValueRef at;
  if (flat) {
    l = cg_for_begin(c, cg_numel(c, res), "fused");
    at = l.iv;
  } else {
    nest = cg_nest_begin(c, res->type.rank, res->dims);
    at = cg_linear(c, res, nest.ivs);
  }
  for (int32_t i = 0; i < b->n_args; i++) {
    const cg_buf *a = &c->bufs[b->args[i]];
    if (read[i]) vals[b->args[i]] = cg_load(c, a, flat ? at : cg_broadcast_linear(c, a, res->type.rank, nest.ivs));
  }
  cg_group_values(c, op, b->first, vals);
  for (int32_t r = 0; r < o->n_out; r++) cg_store(c, cg_result(c, op, r), at, vals[ir_o(c->g, y)->in[r]]);
  if (flat)
    cg_for_end(c, &l);
  else
    cg_nest_end(c, &nest);
  free(vals);
  free(read);
  return true;
}

/* GENERIC: the region's ops in order (allocating like any block, in the
 * measuring walk too), then the yielded values copied into the results. */
static bool lower_generic_group(cg_lower *c, ir_opid op) {
  ir_blockid body = ir_o(c->g, op)->regions[0];
  if (!cg_lower_block(c, body)) return false;
  if (c->measuring) return true;
  const ir_op *y = ir_o(c->g, ir_block_terminator(c->g, body));
  for (int32_t r = 0; r < ir_o(c->g, op)->n_out; r++) cg_copy(c, cg_result(c, op, r), &c->bufs[y->in[r]]);
  return true;
}

bool lower_fused(cg_lower *c, ir_opid op) {
  bind_arguments(c, op);
  switch (ir_fused_form_of(c->g, op)) {
  case IR_FUSED_ELEMENTWISE: return c->measuring || lower_elementwise_group(c, op);
  case IR_FUSED_GEMM: return c->measuring || cg_gemm_fused(c, op);
  case IR_FUSED_GENERIC: break;
  }
  return lower_generic_group(c, op);
}
