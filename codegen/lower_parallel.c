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
 *
 * Concurrent scans (a group made by the bidir pass) run the same way, one
 * task per scan; see "concurrent scans" below.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

/* Field indices of seqrt_exec (runtime/exec.h); a unit test pins them. */
enum { EXEC_PARALLEL_FOR, EXEC_KERNEL_BEGIN, EXEC_KERNEL_END, EXEC_TEAM_RUN, EXEC_TEAM_WAIT };

/* Multiply-adds (or element operations) a task should at least get. */
#define TASK_WORK 32768

/* ---- calls into exec ------------------------------------------------------------- */

/* Every call into exec from NAME_run goes through one of three small
 * functions of the module (seqc.exec.hook, .parallel_for, .team_run; built
 * on first use, never inlined): a hook or a set of tasks is one call in
 * NAME_run, with no branches of its own and no copy of the task inlined
 * for the case without a pool. NAME_run was the largest function of every
 * model, and those branches and inlined loops most of its build time
 * (issue 10, docs/performance.md). */

LLVMValueRef cg_module_fn(cg_lower *c, const char *name, LLVMTypeRef type, bool optsize, cg_fn_body *body) {
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (fn) return fn;
  fn = LLVMAddFunction(c->mod, name, type);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_add_fn_attr(c->ctx, fn, "noinline", 0);
  if (optsize) cg_add_fn_attr(c->ctx, fn, "optsize", 0);
  cg_copy_target_attrs(c, fn);
  LLVMBuilderRef outer_b = c->b;
  LLVMValueRef outer_fn = c->fn;
  c->b = LLVMCreateBuilderInContext(c->ctx);
  c->fn = fn;
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  body(c, fn);
  LLVMDisposeBuilder(c->b);
  c->b = outer_b;
  c->fn = outer_fn;
  return fn;
}

/* An exec helper: optsize also keeps LLVM from cloning it for each task
 * it is called with. */
static LLVMValueRef exec_helper(cg_lower *c, const char *name, LLVMTypeRef type, cg_fn_body *body) {
  return cg_module_fn(c, name, type, true, body);
}

/* In a helper: exec->field, in a block reached only when exec is not
 * null; branches to `skip` when either pointer is null. */
static LLVMValueRef load_exec_field(cg_lower *c, LLVMValueRef exec, LLVMValueRef field, LLVMBasicBlockRef skip) {
  LLVMBasicBlockRef have = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "have");
  LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "call");
  LLVMBuildCondBr(c->b, LLVMBuildIsNull(c->b, exec, ""), skip, have);
  LLVMPositionBuilderAtEnd(c->b, have);
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->ptr, LLVMBuildGEP2(c->b, c->ptr, exec, &field, 1, ""), "hook");
  LLVMBuildCondBr(c->b, LLVMBuildIsNull(c->b, fn, ""), skip, call);
  LLVMPositionBuilderAtEnd(c->b, call);
  return fn;
}

/* seqc.exec.hook(exec, field, op): exec->field(exec, op) when both are set. */
static void hook_body(cg_lower *c, LLVMValueRef fn) {
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "done");
  LLVMValueRef exec = LLVMGetParam(fn, 0);
  LLVMValueRef hook = load_exec_field(c, exec, LLVMGetParam(fn, 1), done);
  LLVMBuildCall2(c->b, LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i32}, 2, 0), hook,
                 (LLVMValueRef[]){exec, LLVMGetParam(fn, 2)}, 2, "");
  LLVMBuildBr(c->b, done);
  LLVMPositionBuilderAtEnd(c->b, done);
  LLVMBuildRetVoid(c->b);
}

static void kernel_hook(cg_lower *c, int field, ir_opid op) {
  LLVMTypeRef t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64, c->i32}, 3, 0);
  LLVMValueRef hook = exec_helper(c, "seqc.exec.hook", t, hook_body);
  LLVMBuildCall2(c->b, t, hook, (LLVMValueRef[]){c->exec, cg_i64(c, field), cg_i32(c, (int32_t)op)}, 3, "");
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
      if (d >= 0 && !ir_dim_is_one(g->dims, t.dims[d]) && t.dims[d] != r.dims[a]) return false;
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
  /* A declared 1 as the last cut axis would make a task of every index
   * of the axes before it: cut those alone. */
  while (ok && p->axes > 1 && ir_dim_is_one(g->dims, r.dims[p->axes - 1])) p->axes--;
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

cg_fn_state cg_save_fn(cg_lower *c) {
  cg_fn_state s = {c->fn, c->entry_end, c->status, c->syms, c->args, c->scratch, c->sp, c->overflow,
                   c->exec, c->entry, c->fail, LLVMGetInsertBlock(c->b), c->dim_cache, c->dim_cache_cap};
  c->dim_cache = NULL;
  c->dim_cache_cap = 0;
  return s;
}

void cg_restore_fn(cg_lower *c, const cg_fn_state *s) {
  free(c->dim_cache);
  c->fn = s->fn, c->entry_end = s->entry_end, c->status = s->status, c->syms = s->syms;
  c->args = s->args, c->scratch = s->scratch, c->sp = s->sp, c->overflow = s->overflow;
  c->exec = s->exec, c->entry = s->entry, c->fail = s->fail;
  c->dim_cache = s->dim_cache, c->dim_cache_cap = s->dim_cache_cap;
  LLVMPositionBuilderAtEnd(c->b, s->at);
}

void cg_end_task_entry(cg_lower *c, LLVMValueRef fn, LLVMBasicBlockRef start, LLVMValueRef status_out) {
  c->args = NULL;
  c->exec = NULL;
  c->entry_end = LLVMBuildBr(c->b, start);
  c->fail = LLVMAppendBasicBlockInContext(c->ctx, fn, "fail");
  LLVMPositionBuilderAtEnd(c->b, c->fail);
  LLVMValueRef store = LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i32, c->status, ""), status_out);
  LLVMSetOrdering(store, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(store, 4);
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, start);
}

/* Entry (allocas, closure fields, dims) and a failure exit. Every failing
 * task of one op stores the same status (code and op) in one slot. */
static LLVMValueRef begin_task(cg_lower *c, LLVMValueRef fn, LLVMTypeRef ct, LLVMValueRef *rows_per_task) {
  LLVMBasicBlockRef start = cg_begin_entry(c, fn);
  LLVMValueRef closure = LLVMGetParam(fn, 0);
  c->syms = closure_field(c, ct, closure, CL_SYMS, c->ptr);
  LLVMValueRef status_out = closure_field(c, ct, closure, CL_STATUS, c->ptr);
  *rows_per_task = closure_field(c, ct, closure, CL_ROWS, c->i64);
  c->scratch = LLVMConstPointerNull(c->ptr); /* lowerings never allocate */
  cg_end_task_entry(c, fn, start, status_out);
  return closure;
}

/* max(v, 1): a count of blocks or tasks, or a divisor, that is never 0. */
static LLVMValueRef at_least_one(cg_lower *c, LLVMValueRef v) { return cg_smax(c, v, cg_i64(c, 1)); }

/* Blocks of per_task rows over `rows`, at least one: an op over no rows
 * still runs one task, on empty views, so that its run-time checks run
 * as they do unsplit. */
static LLVMValueRef row_blocks(cg_lower *c, LLVMValueRef rows, LLVMValueRef per_task) {
  LLVMBuilderRef B = c->b;
  return at_least_one(c, LLVMBuildSDiv(B, LLVMBuildSub(B, LLVMBuildAdd(B, rows, per_task, ""), cg_i64(c, 1), ""),
                                       per_task, "blocks"));
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
    if (cut && a < tb->axes && !ir_dim_is_one(c->g->dims, t.dims[d])) {
      bool rows = a == tb->axes - 1;
      at = rows ? tb->first : tb->idx[a];
      /* an empty outer axis leaves the block empty (see row_blocks) */
      view->dims[d] = rows ? tb->n
                           : cg_smin(c, dim, cg_i64(c, 1));
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
  LLVMValueRef blocks = row_blocks(c, rows, per_task);
  LLVMValueRef outer = LLVMBuildSDiv(B, task, blocks, "outer");
  tb.first = LLVMBuildMul(B, LLVMBuildSRem(B, task, blocks, ""), per_task, "first");
  LLVMValueRef left = LLVMBuildSub(B, rows, tb.first, "");
  tb.n = cg_smin(c, left, per_task);
  for (int32_t a = axes - 2; a >= 0; a--) {
    LLVMValueRef dim = at_least_one(c, cg_dim(c, r.dims[a]));
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
    /* An operand the result overwrites in place (lower_memplan.c) is read
     * through the result's field, so that both are one pointer value. */
    int32_t field = i < o->n_in && saved[i].ptr == saved[o->n_in].ptr ? o->n_in : i;
    LLVMValueRef base = closure_field(c, ct, closure, CL_BUFS + field, c->ptr);
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
  per_row = at_least_one(c, per_row);
  return at_least_one(c, LLVMBuildSDiv(c->b, cg_i64(c, TASK_WORK), per_row, ""));
}

/* void (exec, task or member, closure, n): exec->parallel_for and
 * exec->team_run, and the helpers that call them. */
static LLVMTypeRef runner_type(cg_lower *c) {
  return LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->ptr, c->ptr, c->i64}, 4, 0);
}

/* task(closure, i) for i in [0, n) in a loop, in order. */
static void task_loop(cg_lower *c, LLVMValueRef task, LLVMValueRef closure, LLVMValueRef n) {
  LLVMTypeRef task_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64}, 2, 0);
  cg_loop t = cg_for_begin(c, n, "task");
  LLVMBuildCall2(c->b, task_t, task, (LLVMValueRef[]){closure, t.iv}, 2, "");
  cg_for_end(c, &t);
}

/* seqc.exec.parallel_for(exec, task, closure, n): on exec's pool when it
 * has one, else in a loop. */
static void parallel_for_body(cg_lower *c, LLVMValueRef fn) {
  LLVMValueRef exec = LLVMGetParam(fn, 0), task = LLVMGetParam(fn, 1), closure = LLVMGetParam(fn, 2),
               n = LLVMGetParam(fn, 3);
  LLVMBasicBlockRef alone = LLVMAppendBasicBlockInContext(c->ctx, fn, "alone");
  LLVMValueRef pfor = load_exec_field(c, exec, cg_i64(c, EXEC_PARALLEL_FOR), alone);
  LLVMBuildCall2(c->b, runner_type(c), pfor, (LLVMValueRef[]){exec, task, closure, n}, 4, "");
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, alone);
  task_loop(c, task, closure, n);
  LLVMBuildRetVoid(c->b);
}

void cg_parallel_for(cg_lower *c, LLVMValueRef task, LLVMValueRef closure, LLVMValueRef n_tasks) {
  if (!c->exec) { /* inside a task or init: the tasks in order, on this thread */
    task_loop(c, task, closure, n_tasks);
    return;
  }
  LLVMValueRef pfor = exec_helper(c, "seqc.exec.parallel_for", runner_type(c), parallel_for_body);
  LLVMBuildCall2(c->b, runner_type(c), pfor, (LLVMValueRef[]){c->exec, task, closure, n_tasks}, 4, "");
}

/* member(closure, 0, 1): a team of one, on this thread. */
static void run_alone(cg_lower *c, LLVMValueRef member, LLVMValueRef closure) {
  LLVMTypeRef member_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64, c->i64}, 3, 0);
  LLVMBuildCall2(c->b, member_t, member, (LLVMValueRef[]){closure, cg_i64(c, 0), cg_i64(c, 1)}, 3, "");
}

/* seqc.exec.team_run(exec, member, closure, max): exec's team when it has
 * one, else a team of one. */
static void team_run_body(cg_lower *c, LLVMValueRef fn) {
  LLVMValueRef exec = LLVMGetParam(fn, 0), member = LLVMGetParam(fn, 1), closure = LLVMGetParam(fn, 2);
  LLVMBasicBlockRef alone = LLVMAppendBasicBlockInContext(c->ctx, fn, "alone");
  LLVMValueRef run = load_exec_field(c, exec, cg_i64(c, EXEC_TEAM_RUN), alone);
  LLVMBuildCall2(c->b, runner_type(c), run, (LLVMValueRef[]){exec, member, closure, LLVMGetParam(fn, 3)}, 4, "");
  LLVMBuildRetVoid(c->b);
  LLVMPositionBuilderAtEnd(c->b, alone);
  run_alone(c, member, closure);
  LLVMBuildRetVoid(c->b);
}

void cg_team_run(cg_lower *c, LLVMValueRef member, LLVMValueRef closure, LLVMValueRef max) {
  if (!c->exec) {
    run_alone(c, member, closure);
    return;
  }
  LLVMValueRef run = exec_helper(c, "seqc.exec.team_run", runner_type(c), team_run_body);
  LLVMBuildCall2(c->b, runner_type(c), run, (LLVMValueRef[]){c->exec, member, closure, max}, 4, "");
}

void cg_team_wait(cg_lower *c, LLVMValueRef exec, LLVMValueRef count, LLVMValueRef target) {
  LLVMValueRef slot = LLVMBuildGEP2(c->b, c->ptr, exec, (LLVMValueRef[]){cg_i64(c, EXEC_TEAM_WAIT)}, 1, "");
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->ptr, slot, "wait");
  LLVMTypeRef t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->ptr, c->i64}, 3, 0);
  LLVMBuildCall2(c->b, t, fn, (LLVMValueRef[]){exec, count, target}, 3, "");
}

void cg_fail_on_status(cg_lower *c, LLVMValueRef slot) {
  LLVMValueRef st = LLVMBuildLoad2(c->b, c->i32, slot, "");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.fail");
  LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks.ok");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32(c, 0), ""), good, bad);
  LLVMPositionBuilderAtEnd(c->b, bad);
  LLVMBuildStore(c->b, st, c->status);
  LLVMBuildBr(c->b, c->fail);
  LLVMPositionBuilderAtEnd(c->b, good);
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
  LLVMValueRef n_tasks = at_least_one(c, LLVMBuildMul(c->b, outer, row_blocks(c, rows, per_task), "tasks"));
  cg_parallel_for(c, task, closure, n_tasks);
  cg_fail_on_status(c, status);
}

bool cg_lower_split(cg_lower *c, ir_opid op, cg_lower_fn lower, bool *done) {
  split_plan p;
  *done = false;
  if (c->measuring || !c->split || !plan_split(c->g, op, &p)) return true;
  LLVMTypeRef ct = closure_type(c, p.n_in + 1);
  LLVMValueRef per_task = rows_per_task(c, op, &p);
  cg_fn_state s = cg_save_fn(c);
  LLVMValueRef task = build_task(c, op, &p, ct, lower);
  cg_restore_fn(c, &s);
  if (!task) return false;
  run_tasks(c, op, task, ct, per_task, p.axes);
  *done = true;
  return true;
}

/* ---- concurrent scans ------------------------------------------------------------ */

/* A group of concurrent scans (`concurrent = k`, the bidir pass) in NAME_run
 * runs as one parallel_for with one task per scan: NAME_run.group<op>(closure,
 * i) lowers the group's scan i, unchanged, on its operands' and results'
 * buffers. Nested parallel_for calls (the GEMMs of the bodies, and of the
 * input projections a scan computes chunk by chunk) get no exec and run
 * their tasks inline, on the scan's thread.
 *
 * Scratch. All that a scan allocates (step index, slices, staging, one
 * step's body values, reused from step to step) must be its own while it
 * runs next to the others. NAME_run gives scan i the region that starts
 * where the bump pointer stands after the regions before it and spans what
 * the measuring walk of scan i allocates: that walk (NAME_scratch_bytes's)
 * runs right there, emitting only the bump pointer's arithmetic, so the
 * regions are exactly what NAME_scratch_bytes counted for the same scans
 * (its walk measures them one after the other) and cannot drift from it.
 * Each task starts its bump pointer at its region. A scan's chunk buffers
 * are not in its region: the walker placed them with its results, every
 * member's before any runs (lower_scan.c), and they reach the task with
 * its other buffers.
 *
 * Status. Each task has its own slot. After the tasks, the first scan of
 * the group that failed fails NAME_run, as it would have failed first when
 * run in order.
 *
 * Closure: {syms, status slots, scratch, then per scan: its region's
 * offset and a pointer per buffer it receives (scan_vals)}. */
enum { GC_SYMS, GC_STATUS, GC_SCRATCH, GC_SCANS };

typedef struct scan_group {
  ir_opid *scans;
  int32_t n;
  int32_t *field; /* per scan: the closure field of its region offset, its buffers' after it */
  ir_val *vals;   /* the buffers scan i receives: vals[first[i] .. first[i + 1]) */
  int32_t *first;
  int32_t n_vals, cap_vals, n_fields;
} scan_group;

static void add_val(scan_group *s, ir_val v) {
  ir_grow((void **)&s->vals, &s->cap_vals, s->n_vals + 1, sizeof(ir_val));
  s->vals[s->n_vals++] = v;
}

/* The buffers scan's task receives: its operands and results, and the
 * operands and results (chunk buffers) of the producers it computes chunk
 * by chunk, not the operands it computes itself (its task binds them in
 * those chunk buffers, a split's pieces included). */
static void scan_vals(const cg_lower *c, scan_group *s, ir_opid scan) {
  const ir_op *o = ir_o(c->g, scan);
  int32_t n;
  ir_opid *ops = cg_chunk_ops(c, scan, &n);
  for (int32_t k = 0; k < o->n_in; k++) {
    ir_opid d = ir_v(c->g, o->in[k])->def;
    if (d == IR_NONE || !c->deferred || c->deferred[d] != scan) add_val(s, o->in[k]);
  }
  for (int32_t k = 0; k < o->n_out; k++) add_val(s, o->out[k]);
  for (int32_t i = 0; i < n; i++) {
    const ir_op *p = ir_o(c->g, ops[i]);
    for (int32_t k = 0; p->kind != IR_OP_SPLIT && k < p->n_in + p->n_out; k++)
      add_val(s, k < p->n_in ? p->in[k] : p->out[k - p->n_in]);
  }
  free(ops);
}

static scan_group group_of(const cg_lower *c, ir_opid first) {
  const ir_graph *g = c->g;
  scan_group s = {0};
  int64_t id = ir_concurrent_group(g, first);
  for (ir_opid op = first; op != IR_NONE && ir_concurrent_group(g, op) == id; op = ir_o(g, op)->next) s.n++;
  s.scans = ir_xmalloc(sizeof(ir_opid) * (size_t)s.n);
  s.field = ir_xmalloc(sizeof(int32_t) * (size_t)s.n);
  s.first = ir_xmalloc(sizeof(int32_t) * ((size_t)s.n + 1));
  s.n_fields = GC_SCANS;
  ir_opid op = first;
  for (int32_t i = 0; i < s.n; i++, op = ir_o(g, op)->next) {
    s.scans[i] = op;
    s.field[i] = s.n_fields;
    s.first[i] = s.n_vals;
    scan_vals(c, &s, op);
    s.n_fields += 1 + s.n_vals - s.first[i];
  }
  s.first[s.n] = s.n_vals;
  return s;
}

static LLVMTypeRef group_closure_type(cg_lower *c, const scan_group *s) {
  LLVMTypeRef *fields = ir_xmalloc(sizeof(LLVMTypeRef) * (size_t)s->n_fields);
  for (int32_t f = 0; f < s->n_fields; f++) fields[f] = c->ptr;
  for (int32_t i = 0; i < s->n; i++) fields[s->field[i]] = c->i64;
  LLVMTypeRef t = LLVMStructTypeInContext(c->ctx, fields, (unsigned)s->n_fields, 0);
  free(fields);
  return t;
}

/* Case i of the task: scan i on views of its buffers, its bump pointer at
 * its region. */
static bool build_group_case(cg_lower *c, const scan_group *s, int32_t i, LLVMTypeRef ct, LLVMValueRef closure) {
  ir_opid op = s->scans[i];
  LLVMBuildStore(c->b, closure_field(c, ct, closure, s->field[i], c->i64), c->sp);
  for (int32_t k = 0; k < s->first[i + 1] - s->first[i]; k++) {
    ir_val v = s->vals[s->first[i] + k];
    LLVMValueRef base = closure_field(c, ct, closure, s->field[i] + 1 + k, c->ptr);
    cg_view_buf(c, &c->bufs[v], ir_vtype(c->g, v), base);
  }
  c->current = op;
  return lower_scan(c, op);
}

/* NAME_run.group<op>(closure, i): a switch over the group's scans. */
static LLVMValueRef build_group_task(cg_lower *c, const scan_group *s, LLVMTypeRef ct) {
  ir_buf name = {0};
  ir_buf_printf(&name, "%s_run.group%d", c->prefix, (int)s->scans[0]);
  LLVMValueRef fn = LLVMAddFunction(c->mod, name.s,
                                    LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64}, 2, 0));
  ir_buf_free(&name);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_copy_target_attrs(c, fn);
  LLVMBasicBlockRef start = cg_begin_entry(c, fn);
  LLVMValueRef closure = LLVMGetParam(fn, 0), task = LLVMGetParam(fn, 1);
  c->syms = closure_field(c, ct, closure, GC_SYMS, c->ptr);
  c->scratch = closure_field(c, ct, closure, GC_SCRATCH, c->ptr);
  LLVMValueRef slots = closure_field(c, ct, closure, GC_STATUS, c->ptr);
  cg_end_task_entry(c, fn, start, LLVMBuildGEP2(c->b, c->i32, slots, &task, 1, "status.slot"));
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "done");
  LLVMValueRef sw = LLVMBuildSwitch(c->b, task, done, (unsigned)s->n);
  bool ok = true;
  for (int32_t i = 0; i < s->n && ok; i++) {
    LLVMBasicBlockRef at = LLVMAppendBasicBlockInContext(c->ctx, fn, "scan");
    LLVMAddCase(sw, cg_i64(c, i), at);
    LLVMPositionBuilderAtEnd(c->b, at);
    ok = build_group_case(c, s, i, ct, closure);
    LLVMBuildBr(c->b, done);
  }
  LLVMPositionBuilderAtEnd(c->b, done);
  LLVMBuildRetVoid(c->b);
  return ok ? fn : NULL;
}

/* In NAME_run: the regions, the closure, the tasks, the statuses in order. */
static void run_group(cg_lower *c, const scan_group *s, LLVMTypeRef ct, LLVMValueRef task,
                      const LLVMValueRef *offsets) {
  LLVMValueRef closure = cg_entry_alloca(c, ct, "group.closure");
  LLVMValueRef slots = cg_entry_alloca(c, LLVMArrayType(c->i32, (unsigned)s->n), "group.status");
  LLVMValueRef *slot = ir_xmalloc(sizeof(LLVMValueRef) * (size_t)s->n);
  LLVMBuildStore(c->b, c->syms, LLVMBuildStructGEP2(c->b, ct, closure, GC_SYMS, ""));
  LLVMBuildStore(c->b, slots, LLVMBuildStructGEP2(c->b, ct, closure, GC_STATUS, ""));
  LLVMBuildStore(c->b, c->scratch, LLVMBuildStructGEP2(c->b, ct, closure, GC_SCRATCH, ""));
  for (int32_t i = 0; i < s->n; i++) {
    slot[i] = LLVMBuildGEP2(c->b, c->i32, slots, (LLVMValueRef[]){cg_i64(c, i)}, 1, "");
    LLVMBuildStore(c->b, cg_i32(c, 0), slot[i]);
    LLVMBuildStore(c->b, offsets[i], LLVMBuildStructGEP2(c->b, ct, closure, (unsigned)s->field[i], ""));
    for (int32_t k = 0; k < s->first[i + 1] - s->first[i]; k++)
      LLVMBuildStore(c->b, c->bufs[s->vals[s->first[i] + k]].ptr,
                     LLVMBuildStructGEP2(c->b, ct, closure, (unsigned)(s->field[i] + 1 + k), ""));
  }
  cg_parallel_for(c, task, closure, cg_i64(c, s->n));
  for (int32_t i = 0; i < s->n; i++) cg_fail_on_status(c, slot[i]);
  free(slot);
}

/* Region i: where the bump pointer stands, then scan i's measuring walk. */
static bool lay_out_regions(cg_lower *c, const scan_group *s, LLVMValueRef *offsets) {
  bool ok = true;
  for (int32_t i = 0; i < s->n && ok; i++) {
    offsets[i] = LLVMBuildLoad2(c->b, c->i64, c->sp, "region");
    c->measuring = true;
    c->current = s->scans[i];
    ok = lower_scan(c, s->scans[i]);
    c->measuring = false;
  }
  return ok;
}

/* Saves the buffers the group's tasks receive into saved, or restores
 * them from it. All are saved before any changes, so restoring in any
 * order gives them back even where scans share an operand. */
static void keep_bufs(cg_lower *c, const scan_group *s, cg_buf *saved, bool restore) {
  for (int32_t f = 0; f < s->n_vals; f++) {
    cg_buf *b = &c->bufs[s->vals[f]];
    if (restore) *b = saved[f];
    else saved[f] = *b;
  }
}

/* The walker has placed every scan's results and chunk buffers. */
static bool lower_group(cg_lower *c, const scan_group *s) {
  LLVMValueRef *offsets = ir_xmalloc(sizeof(LLVMValueRef) * (size_t)s->n);
  cg_buf *saved = ir_xmalloc(sizeof(cg_buf) * ((size_t)s->n_vals + 1));
  ir_opid current = c->current;
  bool ok = lay_out_regions(c, s, offsets);
  LLVMTypeRef ct = group_closure_type(c, s);
  keep_bufs(c, s, saved, false);
  cg_fn_state st = cg_save_fn(c);
  LLVMValueRef task = ok ? build_group_task(c, s, ct) : NULL;
  cg_restore_fn(c, &st);
  keep_bufs(c, s, saved, true);
  c->current = current;
  if (task) run_group(c, s, ct, task, offsets);
  free(saved);
  free(offsets);
  return task != NULL;
}

bool cg_lower_concurrent(cg_lower *c, ir_opid first, ir_opid last) {
  scan_group s = group_of(c, first);
  IR_ASSERT(s.n >= 2 && s.scans[s.n - 1] == last);
  bool ok = lower_group(c, &s);
  free(s.scans);
  free(s.field);
  free(s.vals);
  free(s.first);
  return ok;
}
