/*
 * lower_parallel.c - calls from NAME_run back into the runtime that runs it
 * (runtime/exec.h): profiling hooks around every top-level op, and ops split
 * into tasks for the context's thread pool.
 *
 * Splitting. An op whose leading result axes are independent work (an
 * elementwise op or group: every axis but the last; softmax and layernorm:
 * the axes before the reduced one; a matmul of another dtype: the batch or
 * the rows of a) is lowered a second time into its own function,
 * NAME_run.op<k>(closure, task) (<result>_fused for a group), on views of
 * its buffers: a task covers one index of each cut axis but the last and
 * R rows of the last, in the result and in every operand that has those
 * axes (aligned right; a declared 1 or a missing axis is read whole), so a
 * batch of one still splits over its time axis. The op's ordinary lowering
 * runs unchanged on those views, so every element is computed exactly as
 * without splitting. R depends only on the shapes (enough work per task to
 * pay for handing it out), never on the number of threads: the results
 * are bitwise the same for any thread count, and NAME_run goes through the
 * same tasks whether or not a pool runs them.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

/* Field indices of seqrt_exec (runtime/exec.h); a unit test pins them. */
enum { EXEC_PARALLEL_FOR, EXEC_KERNEL_BEGIN, EXEC_KERNEL_END };

/* Multiply-adds (or element operations) a task should at least get. */
#define TASK_WORK 32768

/* ---- calls into exec ------------------------------------------------------------- */

/* exec->field, in a block reached only when exec is not null; returns the
 * block to continue in when either pointer is null. */
static LLVMValueRef load_exec_field(cg_lower *c, int field, LLVMBasicBlockRef *skip) {
  *skip = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exec.skip");
  LLVMBasicBlockRef have = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exec.have");
  LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exec.call");
  LLVMBuildCondBr(c->b, LLVMBuildIsNull(c->b, c->exec, ""), *skip, have);
  LLVMPositionBuilderAtEnd(c->b, have);
  LLVMValueRef slot = LLVMBuildGEP2(c->b, c->ptr, c->exec, (LLVMValueRef[]){cg_i64(c, field)}, 1, "");
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->ptr, slot, "hook");
  LLVMBuildCondBr(c->b, LLVMBuildIsNull(c->b, fn, ""), *skip, call);
  LLVMPositionBuilderAtEnd(c->b, call);
  return fn;
}

static void kernel_hook(cg_lower *c, int field, ir_opid op) {
  LLVMBasicBlockRef skip;
  LLVMValueRef fn = load_exec_field(c, field, &skip);
  LLVMTypeRef params[2] = {c->ptr, c->i32};
  LLVMBuildCall2(c->b, LLVMFunctionType(c->void_t, params, 2, 0), fn,
                 (LLVMValueRef[]){c->exec, cg_i32(c, (int32_t)op)}, 2, "");
  LLVMBuildBr(c->b, skip);
  LLVMPositionBuilderAtEnd(c->b, skip);
}

void cg_kernel_begin(cg_lower *c, ir_opid op) {
  if (c->exec) kernel_hook(c, EXEC_KERNEL_BEGIN, op);
}

void cg_kernel_end(cg_lower *c, ir_opid op) {
  if (c->exec) kernel_hook(c, EXEC_KERNEL_END, op);
}

void cg_copy_target_attrs(cg_lower *c, LLVMValueRef fn) {
  static const char *const keys[] = {"target-cpu", "target-features", "prefer-vector-width"};
  for (int i = 0; i < 3; i++) {
    LLVMAttributeRef a = LLVMGetStringAttributeAtIndex(c->fn, LLVMAttributeFunctionIndex, keys[i],
                                                       (unsigned)strlen(keys[i]));
    if (a) LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
  }
}

/* ---- which ops split, and how ------------------------------------------------------ */

#define MAX_SPLIT_OPERANDS 32

typedef struct split_plan {
  int32_t n_in;
  int32_t axes;                      /* the result's leading axes that are cut */
  bool whole[MAX_SPLIT_OPERANDS];    /* operand i is read whole (matmul's b) */
  int32_t cost_operand, cost_axis;   /* work per result element: that dim (matmul's K), or 1 */
} split_plan;

static bool declared_one(const ir_graph *g, ir_dim d) {
  int64_t v;
  return ir_dim_is_const(g->dims, d, &v) && v == 1;
}

/* Every operand not read whole, aligned right with the result, must have
 * each cut axis as the result has it, as a declared 1 (broadcast) or not
 * at all; any other dim (one only proven equal at run time) prevents the
 * split. */
static bool operands_align(const ir_graph *g, ir_opid op, const split_plan *p) {
  const ir_op *o = ir_o(g, op);
  ir_type r = ir_vtype(g, o->out[0]);
  for (int32_t i = 0; i < o->n_in; i++) {
    ir_type t = ir_vtype(g, o->in[i]);
    if (p->whole[i]) continue;
    if (t.rank > r.rank) return false;
    for (int32_t a = 0; a < p->axes; a++) {
      int32_t d = a - (r.rank - t.rank);
      if (d >= 0 && !declared_one(g, t.dims[d]) && t.dims[d] != r.dims[a]) return false;
    }
  }
  return true;
}

/* matmul: the batch axis 0 when there is one, else the rows of a (a's
 * leading axis: not with transpose_a); b is read whole when it has no
 * batch. */
static bool plan_matmul(const ir_graph *g, ir_opid op, split_plan *p) {
  const ir_op *o = ir_o(g, op);
  ir_type a = ir_vtype(g, o->in[0]), r = ir_vtype(g, o->out[0]);
  bool ta = ir_get_int(g, op, "transpose_a") != 0;
  p->cost_operand = 0;
  p->cost_axis = ta ? a.rank - 2 : a.rank - 1;
  p->axes = 1;
  if (r.rank == 2) {
    p->whole[1] = true;
    return !ta && a.rank == 2;
  }
  return true;
}

/* Row-wise ops along another axis: the axes before it are cut. */
static bool plan_rows(const ir_graph *g, ir_opid op, split_plan *p) {
  const ir_op *o = ir_o(g, op);
  ir_type x = ir_vtype(g, o->in[0]);
  int64_t axis = o->kind == IR_OP_SOFTMAX ? ir_get_int(g, op, "axis") : x.rank - 1;
  if (axis < 0) axis += x.rank;
  if (x.rank < 2 || axis <= 0 || axis >= x.rank) return false;
  p->axes = (int32_t)axis;
  for (int32_t i = 1; i < o->n_in; i++) p->whole[i] = true; /* gamma, beta */
  return true;
}

/* Whether the cut axes hold at least two rows, as far as known now. */
static bool worth_splitting(const ir_graph *g, ir_type r, int32_t axes) {
  int64_t rows = 1, v;
  for (int32_t a = 0; a < axes; a++) {
    if (!ir_dim_is_const(g->dims, r.dims[a], &v)) return true;
    rows *= v;
  }
  return rows >= 2;
}

static bool plan_split(const ir_graph *g, ir_opid op, split_plan *p) {
  const ir_op *o = ir_o(g, op);
  memset(p, 0, sizeof *p);
  p->n_in = o->n_in;
  p->cost_operand = -1;
  bool group = o->kind == IR_OP_FUSED && ir_fused_form_of(g, op) == IR_FUSED_ELEMENTWISE;
  if (o->n_out != 1 || o->n_in > MAX_SPLIT_OPERANDS || (o->n_regions && !group)) return false;
  ir_type r = ir_vtype(g, o->out[0]);
  if (r.rank < 1) return false;
  bool ok;
  if (o->kind == IR_OP_MATMUL)
    ok = !cg_gemm_applies(g, op) && plan_matmul(g, op, p); /* GEMM: own tasks */
  else if (o->kind == IR_OP_SOFTMAX || o->kind == IR_OP_LAYERNORM)
    ok = plan_rows(g, op, p);
  else if (group || (ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE))
    ok = (p->axes = r.rank > 1 ? r.rank - 1 : 1) > 0; /* every axis but the contiguous last */
  else
    ok = false;
  return ok && worth_splitting(g, r, p->axes) && operands_align(g, op, p);
}

/* ---- the task function ------------------------------------------------------------- */

/* The closure NAME_run passes to each task: {syms, status*, rows per task,
 * one buffer pointer per operand, the result's}. */
enum { CL_SYMS, CL_STATUS, CL_ROWS, CL_BUFS };

static LLVMTypeRef closure_type(cg_lower *c, int32_t n_bufs) {
  LLVMTypeRef fields[CL_BUFS + MAX_SPLIT_OPERANDS + 1];
  fields[CL_SYMS] = c->ptr;
  fields[CL_STATUS] = c->ptr;
  fields[CL_ROWS] = c->i64;
  for (int32_t i = 0; i < n_bufs; i++) fields[CL_BUFS + i] = c->ptr;
  return LLVMStructTypeInContext(c->ctx, fields, (unsigned)(CL_BUFS + n_bufs), 0);
}

static LLVMValueRef closure_field(cg_lower *c, LLVMTypeRef ct, LLVMValueRef closure, int field,
                                  LLVMTypeRef t) {
  return LLVMBuildLoad2(c->b, t, LLVMBuildStructGEP2(c->b, ct, closure, (unsigned)field, ""), "");
}

/* The lowering state of the function being built, saved while a task
 * function is built in between. */
typedef struct fn_state {
  LLVMValueRef fn, entry_end, status, syms, args, scratch, sp, overflow, exec;
  LLVMBasicBlockRef entry, fail, at;
  LLVMValueRef *dim_cache;
  int32_t dim_cache_cap;
} fn_state;

static fn_state save_state(cg_lower *c) {
  fn_state s = {c->fn, c->entry_end, c->status, c->syms, c->args, c->scratch, c->sp, c->overflow,
                c->exec, c->entry, c->fail, LLVMGetInsertBlock(c->b), c->dim_cache, c->dim_cache_cap};
  c->dim_cache = NULL;
  c->dim_cache_cap = 0;
  return s;
}

static void restore_state(cg_lower *c, const fn_state *s) {
  free(c->dim_cache);
  c->fn = s->fn, c->entry_end = s->entry_end, c->status = s->status, c->syms = s->syms;
  c->args = s->args, c->scratch = s->scratch, c->sp = s->sp, c->overflow = s->overflow;
  c->exec = s->exec, c->entry = s->entry, c->fail = s->fail;
  c->dim_cache = s->dim_cache, c->dim_cache_cap = s->dim_cache_cap;
  LLVMPositionBuilderAtEnd(c->b, s->at);
}

/* Entry (allocas, closure fields, dims) and a failure exit that stores
 * the status for NAME_run and returns. */
static LLVMValueRef begin_task(cg_lower *c, LLVMValueRef fn, LLVMTypeRef ct, LLVMValueRef *rows_per_task) {
  LLVMBasicBlockRef start = cg_begin_entry(c, fn);
  LLVMValueRef closure = LLVMGetParam(fn, 0);
  c->syms = closure_field(c, ct, closure, CL_SYMS, c->ptr);
  LLVMValueRef status_out = closure_field(c, ct, closure, CL_STATUS, c->ptr);
  *rows_per_task = closure_field(c, ct, closure, CL_ROWS, c->i64);
  c->scratch = LLVMConstPointerNull(c->ptr); /* lowerings never allocate */
  c->args = NULL;
  c->exec = NULL;
  c->entry_end = LLVMBuildBr(c->b, start);
  c->fail = LLVMAppendBasicBlockInContext(c->ctx, fn, "fail");
  LLVMPositionBuilderAtEnd(c->b, c->fail);
  /* Every failing task of one op stores the same status (code and op). */
  LLVMValueRef store = LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i32, c->status, ""), status_out);
  LLVMSetOrdering(store, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(store, 4);
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, start);
  return closure;
}

/* Where a task is: the index of each cut axis but the last, and rows
 * [first, first + n) of the last cut axis. */
typedef struct task_block {
  int32_t axes, result_rank;
  LLVMValueRef *idx; /* axes - 1 entries */
  LLVMValueRef first, n;
} task_block;

/* buf (type t) seen as the task's block: on each cut axis it has (aligned
 * right with the result, not a declared 1), one index, or the rows of the
 * last; the others whole. Whole when !cut. */
static void view_block(cg_lower *c, cg_buf *view, ir_type t, LLVMValueRef base, bool cut, const task_block *tb) {
  view->type = t;
  view->dims = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(t.rank + 1));
  view->ptr = base;
  LLVMValueRef offset = cg_i64(c, 0);
  for (int32_t d = 0; d < t.rank; d++) {
    int32_t a = d + tb->result_rank - t.rank;
    LLVMValueRef dim = cg_dim(c, t.dims[d]), at = cg_i64(c, 0);
    view->dims[d] = dim;
    if (cut && a < tb->axes && !declared_one(c->g, t.dims[d])) {
      bool rows = a == tb->axes - 1;
      at = rows ? tb->first : tb->idx[a];
      view->dims[d] = rows ? tb->n : cg_i64(c, 1);
    }
    offset = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, offset, dim, ""), at, "");
  }
  if (!cut) return;
  LLVMValueRef bytes = cg_bytes(c, t.dtype, offset);
  view->ptr = LLVMBuildGEP2(c->b, c->i8, base, &bytes, 1, "block");
}

/* Task `task` of the op: blocks of `per_task` rows of the last cut axis,
 * for each index of the cut axes before it (the outer ones fastest last). */
static task_block locate_task(cg_lower *c, ir_type r, int32_t axes, LLVMValueRef task, LLVMValueRef per_task) {
  LLVMBuilderRef B = c->b;
  task_block tb = {.axes = axes, .result_rank = r.rank};
  tb.idx = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)axes);
  LLVMValueRef rows = cg_dim(c, r.dims[axes - 1]);
  LLVMValueRef blocks = LLVMBuildSDiv(B, LLVMBuildSub(B, LLVMBuildAdd(B, rows, per_task, ""), cg_i64(c, 1), ""),
                                      per_task, "blocks");
  LLVMValueRef outer = LLVMBuildSDiv(B, task, blocks, "outer");
  tb.first = LLVMBuildMul(B, LLVMBuildSRem(B, task, blocks, ""), per_task, "first");
  LLVMValueRef left = LLVMBuildSub(B, rows, tb.first, "");
  tb.n = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, left, per_task, ""), left, per_task, "n");
  for (int32_t a = axes - 2; a >= 0; a--) {
    LLVMValueRef dim = cg_dim(c, r.dims[a]);
    tb.idx[a] = LLVMBuildSRem(B, outer, dim, "");
    outer = LLVMBuildSDiv(B, outer, dim, "");
  }
  return tb;
}

/* NAME_run.op<k>(closure, task): the op's lowering on one task's rows. */
static LLVMValueRef build_task(cg_lower *c, ir_opid op, const split_plan *p, LLVMTypeRef ct,
                               cg_lower_fn lower) {
  const ir_op *o = ir_o(c->g, op);
  ir_buf name = {0};
  cg_group_name(c, op, &name);
  LLVMTypeRef params[2] = {c->ptr, c->i64};
  LLVMValueRef fn = LLVMAddFunction(c->mod, name.s, LLVMFunctionType(c->void_t, params, 2, 0));
  ir_buf_free(&name);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_copy_target_attrs(c, fn);
  LLVMValueRef rows_per_task;
  LLVMValueRef closure = begin_task(c, fn, ct, &rows_per_task);
  task_block tb = locate_task(c, ir_vtype(c->g, o->out[0]), p->axes, LLVMGetParam(fn, 1), rows_per_task);
  cg_buf saved[MAX_SPLIT_OPERANDS + 1];
  for (int32_t i = 0; i < o->n_in; i++) saved[i] = c->bufs[o->in[i]];
  saved[o->n_in] = c->bufs[o->out[0]];
  for (int32_t i = 0; i <= o->n_in; i++) {
    ir_val v = i < o->n_in ? o->in[i] : o->out[0];
    LLVMValueRef base = closure_field(c, ct, closure, CL_BUFS + i, c->ptr);
    view_block(c, &c->bufs[v], ir_vtype(c->g, v), base, i == o->n_in || !p->whole[i], &tb);
  }
  bool ok = lower(c, op);
  LLVMBuildRetVoid(c->b);
  for (int32_t i = o->n_in; i >= 0; i--) c->bufs[i < o->n_in ? o->in[i] : o->out[0]] = saved[i];
  return ok ? fn : NULL;
}

/* Rows per task: enough work for TASK_WORK, from the shapes only. */
static LLVMValueRef rows_per_task(cg_lower *c, ir_opid op, const split_plan *p) {
  const cg_buf *r = cg_result(c, op, 0);
  LLVMValueRef per_row = cg_i64(c, 1);
  for (int32_t d = p->axes; d < r->type.rank; d++) per_row = LLVMBuildMul(c->b, per_row, r->dims[d], "");
  if (p->cost_operand >= 0)
    per_row = LLVMBuildMul(c->b, per_row, cg_operand(c, op, p->cost_operand)->dims[p->cost_axis], "");
  LLVMValueRef one = cg_i64(c, 1);
  per_row = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, per_row, one, ""), one, per_row, "");
  LLVMValueRef want = LLVMBuildSDiv(c->b, cg_i64(c, TASK_WORK), per_row, "");
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, want, one, ""), one, want, "rows.task");
}

void cg_parallel_for(cg_lower *c, LLVMValueRef task, LLVMValueRef closure, LLVMValueRef n_tasks) {
  LLVMTypeRef task_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64}, 2, 0);
  LLVMBasicBlockRef inline_loop = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.inline");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.done");
  LLVMBasicBlockRef pooled;
  LLVMValueRef pfor = c->exec ? load_exec_field(c, EXEC_PARALLEL_FOR, &pooled) : NULL;
  if (pfor) {
    LLVMTypeRef pt = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->ptr, c->ptr, c->i64}, 4, 0);
    LLVMBuildCall2(c->b, pt, pfor, (LLVMValueRef[]){c->exec, task, closure, n_tasks}, 4, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, pooled); /* no exec or no pool: the same tasks in order */
  }
  LLVMBuildBr(c->b, inline_loop);
  LLVMPositionBuilderAtEnd(c->b, inline_loop);
  cg_loop t = cg_for_begin(c, n_tasks, "task");
  LLVMBuildCall2(c->b, task_t, task, (LLVMValueRef[]){closure, t.iv}, 2, "");
  cg_for_end(c, &t);
  LLVMBuildBr(c->b, done);
  LLVMPositionBuilderAtEnd(c->b, done);
}

/* In NAME_run: fill the closure, run the tasks (on the pool when exec has
 * one, else in a loop), and fail with the tasks' status if any failed. */
static void run_tasks(cg_lower *c, ir_opid op, LLVMValueRef task, LLVMTypeRef ct, LLVMValueRef per_task,
                      int32_t axes) {
  const ir_op *o = ir_o(c->g, op);
  LLVMValueRef closure = cg_entry_alloca(c, ct, "closure");
  LLVMValueRef status = cg_entry_alloca(c, c->i32, "task.status");
  LLVMBuildStore(c->b, cg_i32(c, 0), status);
  LLVMBuildStore(c->b, c->syms, LLVMBuildStructGEP2(c->b, ct, closure, CL_SYMS, ""));
  LLVMBuildStore(c->b, status, LLVMBuildStructGEP2(c->b, ct, closure, CL_STATUS, ""));
  LLVMBuildStore(c->b, per_task, LLVMBuildStructGEP2(c->b, ct, closure, CL_ROWS, ""));
  for (int32_t i = 0; i <= o->n_in; i++) {
    const cg_buf *b = i < o->n_in ? cg_operand(c, op, i) : cg_result(c, op, 0);
    LLVMBuildStore(c->b, b->ptr, LLVMBuildStructGEP2(c->b, ct, closure, (unsigned)(CL_BUFS + i), ""));
  }
  const cg_buf *r = cg_result(c, op, 0);
  LLVMValueRef rows = r->dims[axes - 1], outer = cg_i64(c, 1);
  for (int32_t a = 0; a + 1 < axes; a++) outer = LLVMBuildMul(c->b, outer, r->dims[a], "");
  LLVMValueRef blocks = LLVMBuildSDiv(c->b, LLVMBuildSub(c->b, LLVMBuildAdd(c->b, rows, per_task, ""), cg_i64(c, 1), ""),
                                      per_task, "blocks");
  LLVMValueRef n_tasks = LLVMBuildMul(c->b, outer, blocks, "tasks");
  cg_parallel_for(c, task, closure, n_tasks);
  LLVMValueRef st = LLVMBuildLoad2(c->b, c->i32, status, "");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.fail");
  LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.ok");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32(c, 0), ""), good, bad);
  LLVMPositionBuilderAtEnd(c->b, bad);
  LLVMBuildStore(c->b, st, c->status);
  LLVMBuildBr(c->b, c->fail);
  LLVMPositionBuilderAtEnd(c->b, good);
}

bool cg_lower_split(cg_lower *c, ir_opid op, cg_lower_fn lower, bool *done) {
  split_plan p;
  *done = false;
  if (c->measuring || !c->split || !plan_split(c->g, op, &p)) return true;
  LLVMTypeRef ct = closure_type(c, p.n_in + 1);
  LLVMValueRef per_task = rows_per_task(c, op, &p);
  fn_state s = save_state(c);
  LLVMValueRef task = build_task(c, op, &p, ct, lower);
  restore_state(c, &s);
  if (!task) return false;
  run_tasks(c, op, task, ct, per_task, p.axes);
  *done = true;
  return true;
}
