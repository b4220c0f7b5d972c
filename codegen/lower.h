/*
 * lower.h - internal interface of the lowering (codegen/lower*.c): the
 * lowering context, tensors as buffers, loops, element access and run-time
 * checks that every op's lowering is written with.
 *
 * Model. Every IR value is a dense row-major buffer (cg_buf) whose dims are
 * i64 SSA values computed once, in the function's entry block, from the
 * symbol values. Every op is lowered by `lower_<eval>` (the `eval` column of
 * ir/ops.def names it, as for the interpreter) into loops that read its
 * operands' buffers and write its results' buffers, which the walker has
 * allocated before calling it: a lowering never allocates. Elements are
 * computed in a compute type (float for f32/f16/bf16, double for f64, i32,
 * i64, i1 for bool) and converted on load and store. One exception: a
 * transpose in the graph body that only GEMM matmuls read is its
 * operand's buffer read through strides (cg_transpose_in_place,
 * cg_lower.strides).
 */
#ifndef SEQC_CODEGEN_LOWER_H
#define SEQC_CODEGEN_LOWER_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "cg.h"

typedef struct cg_buf {
  LLVMValueRef ptr;   /* element 0 */
  ir_type type;
  LLVMValueRef *dims; /* type.rank i64 values */
} cg_buf;

typedef struct cg_memplan cg_memplan;

#define CG_GEMM_MAX_MR 16
#define CG_GEMV_MAX_PANELS 8

typedef struct cg_lower {
  ir_graph *g;
  ir_diag *diag;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMValueRef fn;          /* the function being built */
  LLVMBasicBlockRef entry;  /* where dims are computed */
  LLVMValueRef entry_end;   /* the entry block's terminator: dims go before it */
  LLVMBasicBlockRef fail;   /* returns *status */
  LLVMValueRef status;      /* i32 alloca */
  LLVMValueRef syms;        /* i64* */
  LLVMValueRef args;        /* NAME_run's argument array: graph arguments, then the init
                               op's results (lower_init); NULL in every other function */
  LLVMValueRef scratch;     /* i8* */
  LLVMValueRef exec;        /* seqrt_exec* (runtime/exec.h): NAME_run's last argument, else NULL */
  bool split;               /* lowering NAME_run: top-level ops may split into tasks */
  LLVMValueRef sp;          /* i64 alloca: bump offset into scratch */
  LLVMValueRef overflow;    /* i1 alloca (measuring only): a size overflowed int64 */
  LLVMTypeRef i1, i8, i16, i32, i64, f32, f64, ptr, void_t;
  LLVMValueRef *dim_cache;  /* by dim id, per function */
  int32_t dim_cache_cap;
  cg_buf *bufs;             /* by value id */
  const char **symbols;     /* sorted */
  int32_t n_symbols;
  bool contract;            /* cg_fmuladd is llvm.fmuladd (opt level >= 2) */
  bool measuring;           /* building NAME_scratch_bytes: allocate, emit no computation */
  const char *prefix;       /* C identifier for the graph's functions */
  ir_opid current;          /* the op being lowered: run-time checks name it */
  /* GEMM (lower_gemm.c): the target's f32 vector lanes, the tile height,
   * the k block, the most rows and panels a task takes; the module's tile functions
   * and its task functions (one matrix, a batch of them), built on first use. */
  int32_t f32_lanes, gemm_mr, gemm_kc, gemm_rows, gemm_panels;
  bool has_fma; /* llvm.fma is an instruction on the target, not a call of fmaf */
  LLVMValueRef gemm_tiles[CG_GEMM_MAX_MR + 1];     /* one panel, by rows */
  LLVMValueRef gemv_tiles[CG_GEMV_MAX_PANELS + 1]; /* one row, by panels */
  LLVMValueRef gemm_task, gemm_batch_task;
  LLVMValueRef *op_temp;    /* by op id: scratch an op uses besides its results (cg_temp_type) */
  /* by value id: a transpose's result left in its operand's buffer, its
   * element idx at sum idx[d] * strides[v][d] (cg_transpose_in_place);
   * NULL for every other value (dense, row-major) */
  LLVMValueRef **strides;
  /* Building NAME_init or NAME_init_scratch_bytes: the init region, whose
   * yielded values are computed straight into the caller's hoisted[k]
   * (init_outs, NULL when measuring) instead of scratch; IR_NONE otherwise. */
  ir_blockid init_region;
  LLVMValueRef init_outs;
  /* While the graph body is lowered (cg_lower_block): by op id, the scan
   * that computes the op chunk by chunk inside its own lowering, or
   * IR_NONE (cg_chunk_plan); NULL in every other walk. */
  ir_opid *deferred;
  cg_memplan *memplan;      /* the graph body's memory plan while the body is lowered, else NULL */
  cg_memplan_check memplan_check; /* its test mode (cg.h) */
} cg_lower;

/* ---- dims and buffers ------------------------------------------------------ */

LLVMValueRef cg_dim(cg_lower *c, ir_dim d);
LLVMValueRef cg_i64(cg_lower *c, int64_t v);
LLVMValueRef cg_i32(cg_lower *c, int32_t v);
/* a*b and a+b on sizes: plain in NAME_run; in NAME_scratch_bytes checked,
 * with any overflow recorded so the function returns -1 instead of a
 * wrapped size (NAME_run only runs after it succeeded). */
LLVMValueRef cg_size_mul(cg_lower *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_size_add(cg_lower *c, LLVMValueRef a, LLVMValueRef b);
/* min(a, b) and max(a, b) of signed i64 values (sizes, counts, indices). */
LLVMValueRef cg_smin(cg_lower *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smax(cg_lower *c, LLVMValueRef a, LLVMValueRef b);
/* Product of the buffer's dims. */
LLVMValueRef cg_numel(cg_lower *c, const cg_buf *b);
cg_buf *cg_operand(cg_lower *c, ir_opid op, int32_t i);
cg_buf *cg_result(cg_lower *c, ir_opid op, int32_t i);
/* Row-major linear index of idx[0..rank) in b. */
LLVMValueRef cg_linear(cg_lower *c, const cg_buf *b, LLVMValueRef const *idx);
/* Bytes for `n` elements of dtype dt. */
LLVMValueRef cg_bytes(cg_lower *c, ir_dtype dt, LLVMValueRef n);

/* ---- element access ----------------------------------------------------------- */

LLVMTypeRef cg_storage_type(cg_lower *c, ir_dtype dt);
LLVMTypeRef cg_compute_type(cg_lower *c, ir_dtype dt);
/* Element `linear` of b, converted to the compute type. */
LLVMValueRef cg_load(cg_lower *c, const cg_buf *b, LLVMValueRef linear);
/* Store a compute-type value, converted to b's storage type. */
void cg_store(cg_lower *c, const cg_buf *b, LLVMValueRef linear, LLVMValueRef v);
/* v (compute type of dt) rounded as storing and loading it would round:
 * f16/bf16 values pass through their 16 bits, others are unchanged. */
LLVMValueRef cg_round_to_storage(cg_lower *c, LLVMValueRef v, ir_dtype dt);
/* Convert a compute-type value of dtype `from` to the compute type of `to`
 * with cast semantics (float->int truncates and is checked, ->bool is != 0). */
LLVMValueRef cg_convert(cg_lower *c, LLVMValueRef v, ir_dtype from, ir_dtype to);
/* A constant of dtype dt's compute type. */
LLVMValueRef cg_const(cg_lower *c, ir_dtype dt, double v);
/* Copy all of src into dst (same dtype and element count). */
void cg_copy(cg_lower *c, const cg_buf *dst, const cg_buf *src);

/* ---- control flow ----------------------------------------------------------- */

/* for (iv = 0; iv < n; iv++) { body }: cg_for_begin leaves the builder in the
 * body; cg_for_end closes the loop and continues after it. */
typedef struct cg_loop {
  LLVMBasicBlockRef pre, header, body, latch, exit;
  LLVMValueRef iv;
} cg_loop;
cg_loop cg_for_begin(cg_lower *c, LLVMValueRef n, const char *name);
void cg_for_end(cg_lower *c, cg_loop *l);

/* A loop nest over dims[0..rank): ivs[i] are the induction variables,
 * innermost last. Returns the loops to close with cg_nest_end. */
typedef struct cg_nest {
  int32_t rank;
  cg_loop *loops;
  LLVMValueRef *ivs;
} cg_nest;
cg_nest cg_nest_begin(cg_lower *c, int32_t rank, LLVMValueRef const *dims);
void cg_nest_end(cg_lower *c, cg_nest *n);

/* Branch to the failure exit with `code` unless `ok` (i1) holds. */
void cg_check(cg_lower *c, LLVMValueRef ok, cg_status code);
/* Check a == b at run time unless they are the same dim. */
void cg_check_dim_eq(cg_lower *c, ir_dim a, ir_dim b);

/* Floating-point instructions: seqc sets no fast-math flags (never
 * nnan/ninf/nsz/reassoc, and no implicit contract: see cg_fmuladd). */
LLVMValueRef cg_fp(cg_lower *c, LLVMValueRef inst);
/* acc + a*b: at -O2 and above llvm.fmuladd, which the target fuses into one
 * FMA wherever it has one, the same way in vector and scalar code; below,
 * a multiply then an add. For dot products and matmul accumulation,
 * layernorm, and the f32 math's polynomials (vmath.c). */
LLVMValueRef cg_fmuladd(cg_lower *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);

/* Floating arithmetic with the flags of cg_fp; compares carry none. */
static inline LLVMValueRef cg_fadd(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return cg_fp(c, LLVMBuildFAdd(c->b, a, b, ""));
}
static inline LLVMValueRef cg_fsub(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return cg_fp(c, LLVMBuildFSub(c->b, a, b, ""));
}
static inline LLVMValueRef cg_fmul(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return cg_fp(c, LLVMBuildFMul(c->b, a, b, ""));
}
static inline LLVMValueRef cg_fdiv(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return cg_fp(c, LLVMBuildFDiv(c->b, a, b, ""));
}
static inline LLVMValueRef cg_fneg(cg_lower *c, LLVMValueRef a) { return LLVMBuildFNeg(c->b, a, ""); }
static inline LLVMValueRef cg_fcmp(cg_lower *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(c->b, p, a, b, "");
}

/* Function attribute `name` (an LLVM enum attribute, e.g. "noinline") with
 * value val (0 for flags) on fn. */
void cg_add_fn_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *name, uint64_t val);

/* A call to an intrinsic, e.g. cg_intrinsic(c, "llvm.fabs", ty, 1, &x). */
LLVMValueRef cg_intrinsic(cg_lower *c, const char *name, LLVMTypeRef overload, int n,
                          LLVMValueRef *args);

/* x in every lane of an n-lane vector. */
LLVMValueRef cg_splat(cg_lower *c, int32_t n, LLVMValueRef x);
/* llvm.masked.load of a vector of type vt at ptr (lanes off the mask take
 * passthru) and llvm.masked.store of val; align is the element's. */
LLVMValueRef cg_masked_load(cg_lower *c, LLVMTypeRef vt, LLVMValueRef ptr, unsigned align, LLVMValueRef mask,
                            LLVMValueRef passthru);
void cg_masked_store(cg_lower *c, LLVMValueRef val, LLVMValueRef ptr, unsigned align, LLVMValueRef mask);

/* ---- op lowerings -------------------------------------------------------------- */

typedef bool (*cg_lower_fn)(cg_lower *c, ir_opid op);
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  bool lower_##eval(cg_lower *c, ir_opid op);
#include "../ir/ops.def"

/* Starts function fn: its entry block with the status, bump-pointer and
 * overflow slots (c->fn, c->entry, c->status, c->sp, c->overflow set). The
 * builder stays in the entry block, where the caller loads what the dims
 * need and ends it with a branch to the returned (empty) block. */
LLVMBasicBlockRef cg_begin_entry(cg_lower *c, LLVMValueRef fn);

/* ---- lower_parallel.c: calls back into the runtime (runtime/exec.h) ---- */

/* Profiling hooks around a top-level op of NAME_run (nothing elsewhere). */
void cg_kernel_begin(cg_lower *c, ir_opid op);
void cg_kernel_end(cg_lower *c, ir_opid op);
/* Lowers op as tasks over its result's outermost axis when it can be
 * split (*done set); otherwise leaves it to the caller (*done false).
 * False after an error. */
bool cg_lower_split(cg_lower *c, ir_opid op, cg_lower_fn lower, bool *done);

/* Lowers the concurrent scans first..last of NAME_run's body (one
 * `concurrent` group, at least two scans) as one task per scan, each with
 * its own scratch region. The walker has placed every scan's results, in
 * the same order in NAME_scratch_bytes. False after an error. */
bool cg_lower_concurrent(cg_lower *c, ir_opid first, ir_opid last);

/* The lowering state of the function being built, kept while a task
 * function is built in between: cg_save_fn leaves a fresh dim cache,
 * cg_restore_fn frees it and puts everything back. */
typedef struct cg_fn_state {
  LLVMValueRef fn, entry_end, status, syms, args, scratch, sp, overflow, exec;
  LLVMBasicBlockRef entry, fail, at;
  LLVMValueRef *dim_cache;
  int32_t dim_cache_cap;
} cg_fn_state;
cg_fn_state cg_save_fn(cg_lower *c);
void cg_restore_fn(cg_lower *c, const cg_fn_state *s);
/* Ends a task function's entry block (c->entry_end; c->args and c->exec
 * become NULL) and builds its failure exit, which stores the status at
 * status_out for NAME_run and returns; the builder continues in `start`. */
void cg_end_task_entry(cg_lower *c, LLVMValueRef fn, LLVMBasicBlockRef start, LLVMValueRef status_out);
/* After tasks: fail with the status they stored at `slot`, if any. */
void cg_fail_on_status(cg_lower *c, LLVMValueRef slot);
/* member(closure, i, n) for i in [0, n) on n threads at once, n <= max
 * chosen by the runtime (exec->team_run); without one (no exec, no pool,
 * inside a task) member(closure, 0, 1) on this thread. */
void cg_team_run(cg_lower *c, LLVMValueRef member, LLVMValueRef closure, LLVMValueRef max);
/* Inside a member of a team of n > 1: exec->team_wait(exec, count, target). */
void cg_team_wait(cg_lower *c, LLVMValueRef exec, LLVMValueRef count, LLVMValueRef target);
/* Run task(closure, i) for i in [0, n_tasks): on the context's pool when
 * NAME_run's exec has one, else in a loop, in order. The tasks must not
 * fail. */
void cg_parallel_for(cg_lower *c, LLVMValueRef task, LLVMValueRef closure, LLVMValueRef n_tasks);
/* The current function's target-cpu/target-features on fn. */
void cg_copy_target_attrs(cg_lower *c, LLVMValueRef fn);
/* The module's internal function `name` of `type`, never inlined (and
 * optsize when asked), with the current function's target attributes:
 * body(c, fn) builds it the first time, with c->b and c->fn on it
 * meanwhile; later calls find it by name. */
typedef void cg_fn_body(cg_lower *c, LLVMValueRef fn);
LLVMValueRef cg_module_fn(cg_lower *c, const char *name, LLVMTypeRef type, bool optsize, cg_fn_body *body);

/* ---- lower_gemm.c: f32 matrix products ---- */

/* C[m, n] = A B with A[i, k] at a[i*a_row + k*a_k], B packed in panels
 * at bp (pack_rhs layout) and C row-major at c. */
typedef struct cg_gemm {
  LLVMValueRef a, a_row, a_k, bp, c, m, n, k;
} cg_gemm;
void cg_gemm_run(cg_lower *c, const cg_gemm *g);
/* Pointers a batch matrix has in a batched product's table: its A, its B
 * packed, its C. */
enum { CG_GEMM_ENTRY = 3 };
/* C_b = A_b B_b for `matrices` matrices b of g's shape and A strides, A_b,
 * B_b packed and C_b the pointers of table entry b (g's a, bp and c
 * unused), all in one parallel_for: no thread waits between matrices. */
void cg_gemm_run_batch(cg_lower *c, const cg_gemm *g, LLVMValueRef table, LLVMValueRef matrices);
/* Rows [i0, i1) by the columns of panels [q0, q1) of C = A B, every k
 * block, on the calling thread: what one task of cg_gemm_run computes for
 * that block (so the same sums, bitwise). panel_outer: the row tiles
 * take the panels a block at a time, so that panels streamed from beyond
 * L2 are read once per call, not once per row tile, and prefetch them
 * ahead of their k loop. */
void cg_gemm_block(cg_lower *c, const cg_gemm *g, LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef q0,
                   LLVMValueRef q1, bool panel_outer);
/* out (ceildiv(n, 32) x k x 32 floats) = B[k, n] packed, B[k, j] at b[k*b_k + j*b_j]. */
void cg_gemm_pack(cg_lower *c, LLVMValueRef b, LLVMValueRef b_k, LLVMValueRef b_j, LLVMValueRef k,
                  LLVMValueRef n, LLVMValueRef out);
/* Whether matmul op runs as a GEMM (every operand f32). */
bool cg_gemm_applies(const ir_graph *g, ir_opid op);
/* Whether GEMM matmul op runs as a batch of matrices (cg_gemm_run_batch;
 * lower_linalg.c), not as one (operands' buffers bound). */
bool cg_matmul_batched(cg_lower *c, ir_opid op);
/* Whether transpose op of the graph body leaves its result in its
 * operand's buffer, read through strides: every reader is a GEMM matmul,
 * which reads its operands through strides anyway (lower_linalg.c). */
bool cg_transpose_in_place(const ir_graph *g, ir_opid op);
/* Whether op needs scratch besides its results while it runs (a GEMM
 * matmul's packed B), and its type: the walker places it in
 * c->op_temp[op] after the results, in both walks. */
bool cg_temp_type(cg_lower *c, ir_opid op, ir_type *type);

/* ---- lower_recurrent.c: the persistent recurrent kernel ---- */

/* The persistent kernel of scan op (its body's buffers bound, its
 * carries' initial values in its results, staging[i] a second buffer per
 * carry) when its body is products of a carry plus elementwise math: the
 * run-time checks, constants and product buffers are set up in NAME_run
 * and the member function is built. windowed[i] (NULL: none) says that
 * xs operand i's buffer holds the sequence from each range's origin on
 * (a chunk, lower_scan.c). NULL when the body does not fit (*ok true) or
 * after an error (*ok false). */
typedef struct cg_recurrent cg_recurrent;
cg_recurrent *cg_recurrent_new(cg_lower *c, ir_opid op, const cg_buf *staging, const bool *windowed, bool *ok);
/* A team over steps [s0, s1) of the scan (numbered in the order they run,
 * whatever `reverse`), the windowed per-step inputs read at t - origin
 * along the scan's axis, the others at t. Step ranges must follow each
 * other from 0 to the scan's length. */
void cg_recurrent_run(cg_lower *c, cg_recurrent *r, LLVMValueRef s0, LLVMValueRef s1, LLVMValueRef origin);
/* After the last range: the last carries into the scan's results; frees r. */
void cg_recurrent_end(cg_lower *c, cg_recurrent *r);

/* ---- lower_scan.c: input projections chunk by chunk ---- */

/* Which ops of the graph body a top-level scan computes chunk by chunk
 * (docs/codegen.md, "Chunked input projections"): by op id, that scan, or
 * IR_NONE. The caller frees it. */
ir_opid *cg_chunk_plan(const ir_graph *g);
/* The ops scan computes chunk by chunk in this walk, in body order (a
 * producer before its split): *n of them, NULL when none. Caller frees. */
ir_opid *cg_chunk_ops(const cg_lower *c, ir_opid scan, int32_t *n);
/* The walker places scan's chunk buffers with its results: each result of
 * a producer it computes gets its chunk buffer in c->bufs (a slot of
 * c->memplan when there is one), which the scan's lowering (in NAME_run,
 * or in its task for a concurrent group) then fills chunk by chunk. */
void cg_chunk_place(cg_lower *c, ir_opid scan);

/* ---- lower_fused.c: kernel groups ---- */

/* The name of op's own function: <result>_fused for a named fused group,
 * else NAME_run.op<k>. */
void cg_group_name(cg_lower *c, ir_opid op, ir_buf *out);
/* Computes the ops of fused's region from `from` to its yield, one element
 * each, reading operands from vals (by value id: the arguments and the
 * values before `from` must be there) and recording results in it;
 * returns the first yielded value. */
LLVMValueRef cg_group_values(cg_lower *c, ir_opid fused, ir_opid from, LLVMValueRef *vals);
/* A fused op of the GEMM form (lower_gemm.c), its arguments bound. */
bool cg_gemm_fused(cg_lower *c, ir_opid op);

/* Lower every op of block b (used by the graph body and by scan bodies). */
bool cg_lower_block(cg_lower *c, ir_blockid b);
/* Op's own lowering (lower_<eval>) on the buffers bound now, nothing
 * placed or split: what the chunked scans run their producers with. */
bool cg_lower_op(cg_lower *c, ir_opid op);
/* Whether value v, yielded at position k of the init region, was computed
 * straight into the caller's hoisted[k] (so NAME_init copies nothing). */
bool cg_init_yield_in_place(const cg_lower *c, ir_val v, int32_t k);
/* Give every result of op a scratch buffer (the walker does this before
 * lowering the op; scan lowering reuses it for its step buffers). */
void cg_alloc_results(cg_lower *c, ir_opid op);
/* A fresh scratch buffer of type t (dims from the type). */
void cg_alloc_buf(cg_lower *c, cg_buf *out, ir_type t);
/* out = the buffer at ptr seen with type t (dims from the type). */
void cg_view_buf(cg_lower *c, cg_buf *out, ir_type t, LLVMValueRef ptr);

/* ---- lower_memplan.c: buffer reuse in the graph body (plan_memory) ---- */

/* Liveness of the body's values; slots start empty. */
cg_memplan *cg_memplan_new(cg_lower *c);
void cg_memplan_free(cg_memplan *p);
/* Buffers for op's results: a free slot of the same byte size, else new scratch. */
void cg_memplan_alloc_results(cg_lower *c, cg_memplan *p, ir_opid op);
/* Scratch of type t that op uses while it runs (cg_temp_type), placed as
 * its results are; free again after op (cg_memplan_release). */
LLVMValueRef cg_memplan_alloc_temp(cg_lower *c, cg_memplan *p, ir_opid op, ir_type t);
/* After op: the slots of values it read for the last time (or made and nobody reads) are free. */
void cg_memplan_release(cg_lower *c, cg_memplan *p, ir_opid op);
/* v's buffer, of type t rather than v's own (the chunk buffer of a
 * producer a scan computes chunk by chunk): a free slot of its byte size,
 * else new scratch; free after the scan (cg_memplan_release). */
void cg_memplan_alloc_as(cg_lower *c, cg_memplan *p, ir_val v, ir_type t);
/* In the memory plan's test mode (a module whose code poisons slots: cg.h),
 * every function mod defines is sanitized by LLVM's AddressSanitizer, run
 * after the pipeline; nothing otherwise. False after reporting an error. */
bool cg_memplan_instrument(LLVMModuleRef mod, LLVMTargetMachineRef tm, ir_diag *d);

/* ---- helpers exported by lower_elementwise.c (its owner edits this section) ---- */

/* Run-time checks that `operand` broadcasts to `result` (numpy rules,
 * ranks right-aligned): every operand dim not declared as the constant 1
 * must equal the result's. */
void cg_broadcast_check(cg_lower *c, ir_type operand, ir_type result);
/* Linear index into `operand` of the element that broadcasts to result
 * index ivs[0..result_rank): dims declared as 1 are read at index 0. */
LLVMValueRef cg_broadcast_linear(cg_lower *c, const cg_buf *operand, int32_t result_rank,
                                 LLVMValueRef const *ivs);
/* One element of elementwise op `op` from its operands' elements x (in
 * their compute types): what the op's own loop computes. */
LLVMValueRef cg_elementwise_value(cg_lower *c, ir_opid op, const LLVMValueRef *x);
/* cg_convert, except that conversions to f16/bf16 from f64 and integers
 * round once (through a round-to-odd float) as the interpreter does. */
LLVMValueRef cg_cast_value(cg_lower *c, LLVMValueRef v, ir_dtype from, ir_dtype to);

/* ---- helpers exported by lower_linalg.c / lower_data.c (their owner edits this section) ---- */

/* A stack slot of type t in the function's entry block (where LLVM
 * promotes it to a register): loop-carried accumulators. */
LLVMValueRef cg_entry_alloca(cg_lower *c, LLVMTypeRef t, const char *name);
/* A loop nest over the axes axes[0..n) of b, in that order (innermost
 * last); the induction variable of axes[i] is stored into idx[axes[i]].
 * Close it with cg_nest_end. */
cg_nest cg_nest_axes(cg_lower *c, const cg_buf *b, int32_t n, const int32_t *axes,
                     LLVMValueRef *idx);

/* The program's module, for jit.c (which copies it into its own context)
 * after cg_program_optimize, which runs LLVM's pipeline on it (once). */
LLVMModuleRef cg_program_module(const cg_program *p);
bool cg_program_optimize(cg_program *p, ir_diag *d);

#endif
