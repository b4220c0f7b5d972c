/*
 * lower_linalg.c - matmul, reductions (reduce_*, argmax, argmin), softmax,
 * layernorm and the cumulative ops (cumsum, cumprod, logcumsumexp) as loop
 * nests over buffers. ir/interp.c defines what each computes; this file
 * only chooses loop orders and accumulators.
 *
 * Accumulation. The interpreter accumulates in double. Compiled code
 * accumulates in an accumulator type (acc_dtype): float for f32, f16 and
 * bf16, double for f64, i64 for both integer dtypes. Every reduction adds
 * its terms in one fixed order and never reassociates, so a result depends
 * on the shapes and the inputs only: row-major over the reduced positions
 * (k ascending for matmul), except that f32/f64 sums along a contiguous row
 * (a sum over the last axis, a matmul dot product with transpose_b) use
 * SUM_LANES explicit vector accumulators in a spelled-out order (lane_sum),
 * and the row sums of softmax ROW_LANES of them, the last chunk padded
 * (row_fold_lanes; softmax_exp_lanes adds its exponentials the same way).
 * Either way a float sum of n terms is within n*eps*sum|terms| of the exact
 * one. layernorm's mean and variance are Welford's, in the same ROW_LANES
 * lanes (row_moments), merged in a fixed tree.
 *
 * Integers. The interpreter fails when an integer result does not fit its
 * dtype exactly (the i32 range; |x| < 2^53 for i64). Compiled code
 * accumulates integers in i64 with overflow-checked arithmetic and checks
 * every stored result the same way; all such failures return
 * CG_INT_OVERFLOW. (The interpreter's double partial sums stop being exact
 * above 2^53 while i64 ones stay exact, so whenever the interpreter's
 * result is exact both agree.)
 *
 * Loop orders. Innermost loops run over the last, contiguous dim where
 * the accumulator allows it:
 *  - matmul is a plain loop nest, i-k-j accumulating into a zeroed output
 *    (the inner j loop is contiguous in B and C) for f32/f64 without
 *    transpose_b, and i-j-k with an accumulator per output element
 *    otherwise (a dot product over two contiguous rows when transpose_b;
 *    f16/bf16/integers need an accumulator wider than their storage). Both
 *    add the same terms in the same order. A generated GEMM replaces this.
 *  - reductions accumulate into the output buffer with the trailing kept
 *    dims innermost when those exist and the output stores the
 *    accumulator type (f32, f64); otherwise (the last axis is reduced,
 *    logsumexp, or a narrower or integer output) one accumulator per output
 *    element walks the reduced positions.
 *  - cumulative ops along a non-last axis walk the axis outside the
 *    trailing dims, reading the previous output back, whenever the output
 *    holds the running value exactly (every dtype but f16/bf16).
 *  - softmax, argmax/argmin and layernorm walk one row at a time along
 *    their axis (contiguous for the last axis, which is the common case).
 *
 * exp, log and log1p (softmax, logsumexp, logcumsumexp) come from vmath.h:
 * vectorizable polynomials in float, libm with the interpreter's formulas
 * in double.
 */
#include "lower.h"
#include "vmath.h"

#include <math.h>
#include <stdlib.h>

/* ---- shared helpers ------------------------------------------------------------ */

LLVMValueRef cg_entry_alloca(cg_lower *c, LLVMTypeRef t, const char *name) {
  LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
  IR_ASSERT(here != c->entry);
  LLVMPositionBuilderBefore(c->b, c->entry_end);
  LLVMValueRef slot = LLVMBuildAlloca(c->b, t, name);
  LLVMPositionBuilderAtEnd(c->b, here);
  return slot;
}

cg_nest cg_nest_axes(cg_lower *c, const cg_buf *b, int32_t n, const int32_t *axes,
                     LLVMValueRef *idx) {
  LLVMValueRef *dims = ir_xcalloc((size_t)n + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0; i < n; i++) dims[i] = b->dims[axes[i]];
  cg_nest nest = cg_nest_begin(c, n, dims);
  for (int32_t i = 0; i < n; i++) idx[axes[i]] = nest.ivs[i];
  free(dims);
  return nest;
}

/* The axes of a rank-`rank` tensor for which pick[axis] == want, in order;
 * returns how many. */
static int32_t axes_where(int32_t rank, const bool *pick, bool want, int32_t *axes) {
  int32_t n = 0;
  for (int32_t d = 0; d < rank; d++)
    if (pick[d] == want) axes[n++] = d;
  return n;
}

/* Every axis but `skip`. */
static int32_t axes_except(int32_t rank, int32_t skip, int32_t *axes) {
  int32_t n = 0;
  for (int32_t d = 0; d < rank; d++)
    if (d != skip) axes[n++] = d;
  return n;
}

static LLVMValueRef is_nan(cg_lower *c, LLVMValueRef a) { return cg_fcmp(c, LLVMRealUNO, a, a); }

static LLVMValueRef unary_intrinsic(cg_lower *c, const char *name, LLVMValueRef x) {
  return cg_fp(c, cg_intrinsic(c, name, LLVMTypeOf(x), 1, &x));
}
/* f(x) in x's type, float or double. */
static LLVMValueRef vmath(cg_lower *c, cg_vm_fn f, LLVMValueRef x) {
  return LLVMTypeOf(x) == c->f64 ? cg_vm_f64(c, f, x) : cg_vm_f32(c, f, x);
}
static LLVMValueRef fexp(cg_lower *c, LLVMValueRef x) { return vmath(c, CG_VM_EXP, x); }
static LLVMValueRef flog(cg_lower *c, LLVMValueRef x) { return vmath(c, CG_VM_LOG, x); }

static LLVMValueRef is_finite(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef inf = LLVMConstReal(LLVMTypeOf(x), INFINITY);
  return cg_fcmp(c, LLVMRealOLT, unary_intrinsic(c, "llvm.fabs", x), inf);
}

/* max/min that propagate NaN and otherwise pick `a > b ? a : b` exactly as
 * the interpreter (so the sign of equal zeros matches too). */
static LLVMValueRef nan_extremum(cg_lower *c, LLVMValueRef a, LLVMValueRef b, bool max) {
  LLVMValueRef unordered = cg_fcmp(c, LLVMRealUNO, a, b);
  LLVMValueRef better = cg_fcmp(c, max ? LLVMRealOGT : LLVMRealOLT, a, b);
  LLVMValueRef pick = LLVMBuildSelect(c->b, better, a, b, "");
  return LLVMBuildSelect(c->b, unordered, cg_fadd(c, a, b), pick, "");
}

/* log(e^a + e^b) without overflow, as the interpreter's log_add_exp. */
static LLVMValueRef log_add_exp(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef m = LLVMBuildSelect(c->b, cg_fcmp(c, LLVMRealOGT, a, b), a, b, "");
  LLVMValueRef gap = unary_intrinsic(c, "llvm.fabs", cg_fsub(c, a, b));
  LLVMValueRef general = cg_fadd(c, m, vmath(c, CG_VM_LOG1P, fexp(c, cg_fp(c, LLVMBuildFNeg(c->b, gap, "")))));
  LLVMValueRef twice = cg_fadd(c, a, LLVMConstReal(t, 0.69314718055994530942) /* ln 2 */); /* also right for a == b == +-inf */
  LLVMValueRef r = LLVMBuildSelect(c->b, cg_fcmp(c, LLVMRealOEQ, a, b), twice, general, "");
  LLVMValueRef any_nan = cg_fcmp(c, LLVMRealUNO, a, b);
  return LLVMBuildSelect(c->b, any_nan, cg_fadd(c, a, b), r, "");
}

/* ---- accumulators ------------------------------------------------------------ */

typedef enum combine_kind { COMBINE_SUM, COMBINE_PROD, COMBINE_MAX, COMBINE_MIN } combine_kind;

static ir_dtype acc_dtype(ir_dtype dt) {
  if (ir_dtype_is_int(dt)) return IR_I64;
  return dt == IR_F64 ? IR_F64 : IR_F32;
}

/* Element `lin` of b in the accumulator type of b's dtype. */
static LLVMValueRef load_acc(cg_lower *c, const cg_buf *b, LLVMValueRef lin) {
  ir_dtype dt = b->type.dtype;
  return cg_convert(c, cg_load(c, b, lin), dt, acc_dtype(dt));
}

/* An i64 operation with overflow, which fails the run with CG_INT_OVERFLOW. */
static LLVMValueRef checked_i64(cg_lower *c, const char *intrinsic, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  LLVMValueRef pair = cg_intrinsic(c, intrinsic, c->i64, 2, args);
  cg_check(c, LLVMBuildNot(c->b, LLVMBuildExtractValue(c->b, pair, 1, ""), ""), CG_INT_OVERFLOW);
  return LLVMBuildExtractValue(c->b, pair, 0, "");
}

static LLVMValueRef combine(cg_lower *c, combine_kind k, ir_dtype acc_dt, LLVMValueRef acc,
                            LLVMValueRef x) {
  if (ir_dtype_is_float(acc_dt)) {
    switch (k) {
    case COMBINE_SUM: return cg_fadd(c, acc, x);
    case COMBINE_PROD: return cg_fmul(c, acc, x);
    case COMBINE_MAX: return nan_extremum(c, acc, x, true);
    case COMBINE_MIN: return nan_extremum(c, acc, x, false);
    }
  }
  switch (k) {
  case COMBINE_SUM: return checked_i64(c, "llvm.sadd.with.overflow", acc, x);
  case COMBINE_PROD: return checked_i64(c, "llvm.smul.with.overflow", acc, x);
  case COMBINE_MAX:
  case COMBINE_MIN: {
    LLVMValueRef better = LLVMBuildICmp(c->b, k == COMBINE_MAX ? LLVMIntSGT : LLVMIntSLT, x, acc, "");
    return LLVMBuildSelect(c->b, better, x, acc, "");
  }
  }
  IR_ASSERT(!"unknown combine kind");
  return NULL;
}

/* The identity of k; integer max/min get the extreme i64 values (the
 * callers reject empty integer max/min, whose identity is infinite). */
static LLVMValueRef identity(cg_lower *c, combine_kind k, ir_dtype acc_dt) {
  switch (k) {
  case COMBINE_SUM: return cg_const(c, acc_dt, 0);
  case COMBINE_PROD: return cg_const(c, acc_dt, 1);
  case COMBINE_MAX: return ir_dtype_is_float(acc_dt) ? cg_const(c, acc_dt, -INFINITY) : cg_i64(c, INT64_MIN);
  case COMBINE_MIN: return ir_dtype_is_float(acc_dt) ? cg_const(c, acc_dt, INFINITY) : cg_i64(c, INT64_MAX);
  }
  IR_ASSERT(!"unknown combine kind");
  return NULL;
}

/* An i64 result must be below 2^53 in magnitude, as the interpreter's. */
static void check_exact_i64(cg_lower *c, LLVMValueRef v) {
  const int64_t limit = ((int64_t)1 << 53) - 1;
  LLVMValueRef shifted = LLVMBuildAdd(c->b, v, cg_i64(c, limit), "");
  cg_check(c, LLVMBuildICmp(c->b, LLVMIntULE, shifted, cg_i64(c, 2 * limit), ""), CG_INT_OVERFLOW);
}

/* Store an accumulator value into out, checked as the interpreter checks
 * integer results (cg_convert checks the i32 range). */
static void store_acc(cg_lower *c, const cg_buf *out, LLVMValueRef lin, LLVMValueRef v) {
  ir_dtype dt = out->type.dtype;
  if (dt == IR_I64) check_exact_i64(c, v);
  if (dt == IR_I32) {
    LLVMValueRef narrow = LLVMBuildTrunc(c->b, v, c->i32, "");
    cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSExt(c->b, narrow, c->i64, ""), v, ""),
             CG_INT_OVERFLOW);
  }
  cg_store(c, out, lin, cg_convert(c, v, acc_dtype(dt), dt));
}

/* Whether out stores the accumulator type itself, so it can accumulate. */
static bool stores_accumulator(ir_dtype dt) { return dt == IR_F32 || dt == IR_F64; }

static LLVMValueRef load_slot(cg_lower *c, LLVMValueRef slot, ir_dtype acc_dt) {
  return LLVMBuildLoad2(c->b, cg_compute_type(c, acc_dt), slot, "");
}

/* ---- sums with explicit vector accumulators --------------------------------------- */

/* Lanes of the explicit vector accumulators; fixed, so results do not
 * depend on the target's vector width. */
enum { SUM_LANES = 8 };

static LLVMValueRef element_at(cg_lower *c, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildGEP2(c->b, t, base, &i, 1, "");
}

static LLVMValueRef load_lanes(cg_lower *c, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMVectorType(t, SUM_LANES), element_at(c, t, base, i), "");
  LLVMSetAlignment(v, t == c->f64 ? 8 : 4); /* element alignment: rows start anywhere */
  return v;
}

/* sum_{i<n} a[i] * b[i] (or a[i] when b is NULL) over contiguous f32/f64
 * elements. Instead of reassociating, the order is spelled out: lane l of
 * SUM_LANES vector accumulators adds the terms i = l (mod SUM_LANES) below
 * the last multiple of SUM_LANES, the lanes are combined pairwise in a fixed
 * tree, and the remaining terms are added one by one. The order depends on
 * n only, so results are identical from run to run. */
static LLVMValueRef lane_sum(cg_lower *c, ir_dtype dt, LLVMValueRef a, LLVMValueRef b, LLVMValueRef n) {
  LLVMTypeRef t = cg_compute_type(c, dt), vt = LLVMVectorType(t, SUM_LANES);
  LLVMValueRef lanes = cg_entry_alloca(c, vt, "lanes"), rest = cg_entry_alloca(c, t, "rest");
  LLVMBuildStore(c->b, LLVMConstNull(vt), lanes);
  LLVMBuildStore(c->b, LLVMConstNull(t), rest);
  LLVMValueRef chunks = LLVMBuildSDiv(c->b, n, cg_i64(c, SUM_LANES), "");
  cg_loop ch = cg_for_begin(c, chunks, "chunk");
  LLVMValueRef at = LLVMBuildMul(c->b, ch.iv, cg_i64(c, SUM_LANES), "");
  LLVMValueRef v = load_lanes(c, t, a, at), sum = LLVMBuildLoad2(c->b, vt, lanes, "");
  LLVMBuildStore(c->b, b ? cg_fmuladd(c, v, load_lanes(c, t, b, at), sum) : cg_fadd(c, sum, v), lanes);
  cg_for_end(c, &ch);
  LLVMValueRef done = LLVMBuildMul(c->b, chunks, cg_i64(c, SUM_LANES), "");
  cg_loop r = cg_for_begin(c, LLVMBuildSub(c->b, n, done, ""), "rest");
  LLVMValueRef i = LLVMBuildAdd(c->b, done, r.iv, "");
  LLVMValueRef x = LLVMBuildLoad2(c->b, t, element_at(c, t, a, i), ""), part_sum = LLVMBuildLoad2(c->b, t, rest, "");
  LLVMBuildStore(c->b, b ? cg_fmuladd(c, x, LLVMBuildLoad2(c->b, t, element_at(c, t, b, i), ""), part_sum)
                         : cg_fadd(c, part_sum, x), rest);
  cg_for_end(c, &r);
  LLVMValueRef acc = LLVMBuildLoad2(c->b, vt, lanes, ""), part[SUM_LANES];
  for (int l = 0; l < SUM_LANES; l++) part[l] = LLVMBuildExtractElement(c->b, acc, cg_i32(c, l), "");
  for (int width = SUM_LANES / 2; width >= 1; width /= 2)
    for (int l = 0; l < width; l++) part[l] = cg_fadd(c, part[2 * l], part[2 * l + 1]);
  return cg_fadd(c, part[0], LLVMBuildLoad2(c->b, t, rest, ""));
}

/* Whether a buffer's elements are its accumulator type (f32, f64), so
 * lane_sum can load them directly. */
static bool lane_summable(ir_dtype dt) { return dt == IR_F32 || dt == IR_F64; }

/* ---- matmul ------------------------------------------------------------------- */

/* Where element (row, col) of a matrix operand lives: base + row*rs + col*cs. */
typedef struct matrix_view {
  const cg_buf *buf;
  LLVMValueRef base, row_stride, col_stride;
} matrix_view;

/* Checks the operand's batch dims against the result's: a dim declared as
 * 1 broadcasts, every other dim must equal the result's. */
static void check_batch_dims(cg_lower *c, const cg_buf *x, const cg_buf *out) {
  int32_t batch = x->type.rank - 2, offset = out->type.rank - 2 - batch;
  for (int32_t s = 0; s < batch; s++) {
    int64_t v;
    if (ir_dim_is_const(c->g->dims, x->type.dims[s], &v) && v == 1) continue;
    cg_check_dim_eq(c, x->type.dims[s], out->type.dims[offset + s]);
  }
}

/* Operand i of op's matrix at the result batch index bidx; `transposed`
 * swaps its last two dims. Read through its strides when it is a
 * transpose left in place (cg_transpose_in_place). */
static matrix_view view_at(cg_lower *c, ir_opid op, int32_t i, const cg_buf *out, const LLVMValueRef *bidx,
                           bool transposed) {
  const cg_buf *x = cg_operand(c, op, i);
  LLVMValueRef *strides = c->strides[ir_o(c->g, op)->in[i]];
  int32_t rank = x->type.rank, batch = rank - 2, offset = out->type.rank - 2 - batch;
  LLVMValueRef *idx = ir_xcalloc((size_t)rank, sizeof(LLVMValueRef));
  for (int32_t s = 0; s < batch; s++) {
    int64_t v;
    bool one = ir_dim_is_const(c->g->dims, x->type.dims[s], &v) && v == 1;
    idx[s] = one ? cg_i64(c, 0) : bidx[offset + s];
  }
  idx[rank - 2] = idx[rank - 1] = cg_i64(c, 0);
  matrix_view m = {x, cg_linear(c, x, idx), x->dims[rank - 1], cg_i64(c, 1)};
  if (strides) {
    m.base = cg_i64(c, 0);
    for (int32_t s = 0; s < batch; s++) m.base = LLVMBuildAdd(c->b, m.base, LLVMBuildMul(c->b, idx[s], strides[s], ""), "");
    m.row_stride = strides[rank - 2], m.col_stride = strides[rank - 1];
  }
  free(idx);
  if (transposed) {
    LLVMValueRef t = m.row_stride;
    m.row_stride = m.col_stride;
    m.col_stride = t;
  }
  return m;
}

static LLVMValueRef view_load(cg_lower *c, const matrix_view *m, LLVMValueRef row, LLVMValueRef col) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef off = LLVMBuildAdd(B, LLVMBuildMul(B, row, m->row_stride, ""),
                                  LLVMBuildMul(B, col, m->col_stride, ""), "");
  return load_acc(c, m->buf, LLVMBuildAdd(B, m->base, off, ""));
}

static LLVMValueRef product(cg_lower *c, ir_dtype acc_dt, LLVMValueRef a, LLVMValueRef b) {
  if (ir_dtype_is_float(acc_dt)) return cg_fmul(c, a, b);
  return checked_i64(c, "llvm.smul.with.overflow", a, b);
}

/* C = A B for one batch by rows: C[i,:] = 0, then C[i,:] += A[i,k] B[k,:]
 * for k ascending (f32/f64 only: C holds the accumulator). */
static void matmul_rows(cg_lower *c, const matrix_view *a, const matrix_view *b, const cg_buf *out,
                        LLVMValueRef cbase, LLVMValueRef m, LLVMValueRef k, LLVMValueRef n) {
  ir_dtype acc_dt = acc_dtype(out->type.dtype);
  cg_loop i = cg_for_begin(c, m, "i");
  LLVMValueRef row = LLVMBuildAdd(c->b, cbase, LLVMBuildMul(c->b, i.iv, n, ""), "");
  cg_loop j0 = cg_for_begin(c, n, "j");
  cg_store(c, out, LLVMBuildAdd(c->b, row, j0.iv, ""), cg_const(c, acc_dt, 0));
  cg_for_end(c, &j0);
  cg_loop kk = cg_for_begin(c, k, "k");
  LLVMValueRef aik = view_load(c, a, i.iv, kk.iv);
  cg_loop j = cg_for_begin(c, n, "j");
  LLVMValueRef at = LLVMBuildAdd(c->b, row, j.iv, "");
  LLVMValueRef sum = cg_fmuladd(c, aik, view_load(c, b, kk.iv, j.iv), cg_load(c, out, at));
  cg_store(c, out, at, sum);
  cg_for_end(c, &j);
  cg_for_end(c, &kk);
  cg_for_end(c, &i);
}

/* C = A B^T for one batch when the rows of A and of B^T are contiguous
 * (no transpose_a, transpose_b) in f32/f64: one lane_sum per element. */
static void matmul_row_dots(cg_lower *c, const matrix_view *a, const matrix_view *b, const cg_buf *out,
                            LLVMValueRef cbase, LLVMValueRef m, LLVMValueRef k, LLVMValueRef n) {
  ir_dtype dt = out->type.dtype;
  LLVMTypeRef t = cg_compute_type(c, dt);
  cg_loop i = cg_for_begin(c, m, "i");
  LLVMValueRef arow = element_at(c, t, a->buf->ptr, LLVMBuildAdd(c->b, a->base, LLVMBuildMul(c->b, i.iv, a->row_stride, ""), ""));
  cg_loop j = cg_for_begin(c, n, "j");
  LLVMValueRef brow = element_at(c, t, b->buf->ptr, LLVMBuildAdd(c->b, b->base, LLVMBuildMul(c->b, j.iv, b->col_stride, ""), ""));
  LLVMValueRef at = LLVMBuildAdd(c->b, cbase, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, i.iv, n, ""), j.iv, ""), "");
  cg_store(c, out, at, lane_sum(c, dt, arow, brow, k));
  cg_for_end(c, &j);
  cg_for_end(c, &i);
}

/* C = A B for one batch by dot products: acc = sum_k A[i,k] B[k,j]. */
static void matmul_dots(cg_lower *c, const matrix_view *a, const matrix_view *b, const cg_buf *out,
                        LLVMValueRef cbase, LLVMValueRef m, LLVMValueRef k, LLVMValueRef n) {
  ir_dtype acc_dt = acc_dtype(out->type.dtype);
  LLVMValueRef slot = cg_entry_alloca(c, cg_compute_type(c, acc_dt), "dot");
  cg_loop i = cg_for_begin(c, m, "i");
  cg_loop j = cg_for_begin(c, n, "j");
  LLVMBuildStore(c->b, identity(c, COMBINE_SUM, acc_dt), slot);
  cg_loop kk = cg_for_begin(c, k, "k");
  LLVMValueRef x = view_load(c, a, i.iv, kk.iv), y = view_load(c, b, kk.iv, j.iv), acc = load_slot(c, slot, acc_dt);
  LLVMBuildStore(c->b, ir_dtype_is_float(acc_dt) ? cg_fmuladd(c, x, y, acc)
                                                 : combine(c, COMBINE_SUM, acc_dt, acc, product(c, acc_dt, x, y)), slot);
  cg_for_end(c, &kk);
  LLVMValueRef at = LLVMBuildAdd(c->b, cbase, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, i.iv, n, ""), j.iv, ""), "");
  store_acc(c, out, at, load_slot(c, slot, acc_dt));
  cg_for_end(c, &j);
  cg_for_end(c, &i);
}

/* One batch matrix as a GEMM: B packed into the op's scratch, then the
 * product (lower_gemm.c). */
static void gemm_batch(cg_lower *c, LLVMValueRef a, LLVMValueRef a_row, LLVMValueRef a_k, const matrix_view *vb,
                       LLVMValueRef out, LLVMValueRef m, LLVMValueRef k, LLVMValueRef n, ir_opid op) {
  LLVMValueRef packed = c->op_temp[op];
  cg_gemm_pack(c, element_at(c, c->f32, vb->buf->ptr, vb->base), vb->row_stride, vb->col_stride, k, n, packed);
  cg_gemm g = {a, a_row, a_k, packed, out, m, n, k};
  cg_gemm_run(c, &g);
}

/* Whether a GEMM reads the rows of every batch matrix of A as one matrix
 * (B has no batch dims, A's rows are contiguous and dense). */
static bool rows_as_one_matrix(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  return ir_vtype(c->g, o->in[1]).rank == 2 && !ir_get_int(c->g, op, "transpose_a") && !c->strides[o->in[0]];
}

bool cg_matmul_batched(cg_lower *c, ir_opid op) {
  return ir_vtype(c->g, ir_o(c->g, op)->out[0]).rank > 2 && !rows_as_one_matrix(c, op);
}

/* The row-major index of x's batch matrix at the result batch index bidx
 * among x's batch matrices (a dim declared as 1 broadcasts). */
static LLVMValueRef matrix_index(cg_lower *c, const cg_buf *x, const cg_buf *out, const LLVMValueRef *bidx) {
  int32_t batch = x->type.rank - 2, offset = out->type.rank - 2 - batch;
  LLVMValueRef at = cg_i64(c, 0);
  for (int32_t s = 0; s < batch; s++) {
    int64_t v;
    bool one = ir_dim_is_const(c->g->dims, x->type.dims[s], &v) && v == 1;
    at = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, at, x->dims[s], ""), one ? cg_i64(c, 0) : bidx[offset + s], "");
  }
  return at;
}

/* Every batch matrix of GEMM matmul op in one parallel_for
 * (cg_gemm_run_batch), so that threads never wait between matrices (heads):
 * first B's matrices packed one after another into the op's scratch (a B
 * without batch dims once), then the table after them of each result
 * matrix's A, packed B and C (cg_temp_type). */
static void gemm_batched(cg_lower *c, ir_opid op, bool ta, bool tb, LLVMValueRef m, LLVMValueRef k, LLVMValueRef n) {
  LLVMBuilderRef B = c->b;
  const cg_buf *a = cg_operand(c, op, 0), *b = cg_operand(c, op, 1), *out = cg_result(c, op, 0);
  int32_t nb = out->type.rank - 2, bb = b->type.rank - 2;
  LLVMValueRef packed = c->op_temp[op], *bidx = ir_xcalloc((size_t)nb, sizeof(LLVMValueRef));
  LLVMValueRef w = cg_i64(c, IR_PACK_WIDTH);
  LLVMValueRef panels = LLVMBuildSDiv(B, LLVMBuildAdd(B, n, cg_i64(c, IR_PACK_WIDTH - 1), ""), w, "");
  LLVMValueRef pack_size = LLVMBuildMul(B, LLVMBuildMul(B, panels, k, ""), w, ""); /* floats */
  for (int32_t d = 0; d < nb; d++) bidx[d] = cg_i64(c, 0);
  matrix_view va = view_at(c, op, 0, out, bidx, ta); /* strides: the same for every matrix */
  cg_nest pb = cg_nest_begin(c, bb, b->dims);
  for (int32_t s = 0; s < bb; s++) bidx[nb - bb + s] = pb.ivs[s];
  matrix_view vb = view_at(c, op, 1, out, bidx, tb);
  LLVMValueRef slice = LLVMBuildMul(B, matrix_index(c, b, out, bidx), pack_size, "");
  cg_gemm_pack(c, element_at(c, c->f32, b->ptr, vb.base), vb.row_stride, vb.col_stride, k, n,
               element_at(c, c->f32, packed, slice));
  cg_nest_end(c, &pb);
  LLVMValueRef matrices = cg_i64(c, 1);
  for (int32_t s = 0; s < bb; s++) matrices = LLVMBuildMul(B, matrices, b->dims[s], "");
  LLVMValueRef table = element_at(c, c->f32, packed, LLVMBuildMul(B, matrices, pack_size, ""));
  cg_nest batch = cg_nest_begin(c, nb, out->dims);
  matrix_view vab = view_at(c, op, 0, out, batch.ivs, ta);
  LLVMValueRef *cidx = ir_xcalloc((size_t)nb + 2, sizeof(LLVMValueRef));
  for (int32_t d = 0; d < nb + 2; d++) cidx[d] = d < nb ? batch.ivs[d] : cg_i64(c, 0);
  LLVMValueRef entry[CG_GEMM_ENTRY] = {
      element_at(c, c->f32, a->ptr, vab.base),
      element_at(c, c->f32, packed, LLVMBuildMul(B, matrix_index(c, b, out, batch.ivs), pack_size, "")),
      element_at(c, c->f32, out->ptr, cg_linear(c, out, cidx))};
  LLVMValueRef at = LLVMBuildMul(B, matrix_index(c, out, out, batch.ivs), cg_i64(c, CG_GEMM_ENTRY), "");
  for (int32_t i = 0; i < CG_GEMM_ENTRY; i++)
    LLVMBuildStore(B, entry[i], element_at(c, c->ptr, table, LLVMBuildAdd(B, at, cg_i64(c, i), "")));
  cg_nest_end(c, &batch);
  free(cidx);
  free(bidx);
  LLVMValueRef count = cg_i64(c, 1);
  for (int32_t d = 0; d < nb; d++) count = LLVMBuildMul(B, count, out->dims[d], "");
  cg_gemm g = {NULL, va.row_stride, va.col_stride, NULL, NULL, m, n, k};
  cg_gemm_run_batch(c, &g, table, count);
}

bool lower_matmul(cg_lower *c, ir_opid op) {
  const cg_buf *a = cg_operand(c, op, 0), *b = cg_operand(c, op, 1), *out = cg_result(c, op, 0);
  bool ta = ir_get_int(c->g, op, "transpose_a") != 0, tb = ir_get_int(c->g, op, "transpose_b") != 0;
  int32_t ra = a->type.rank, rb = b->type.rank, ro = out->type.rank;
  cg_check_dim_eq(c, a->type.dims[ra - 1 - ta], b->type.dims[rb - 2 + tb]);
  check_batch_dims(c, a, out);
  check_batch_dims(c, b, out);
  LLVMValueRef m = a->dims[ra - 2 + ta], k = a->dims[ra - 1 - ta], n = b->dims[rb - 1 - tb];
  if (cg_gemm_applies(c->g, op) && cg_matmul_batched(c, op)) {
    gemm_batched(c, op, ta, tb, m, k, n);
    return true;
  }
  if (cg_gemm_applies(c->g, op) && rows_as_one_matrix(c, op)) { /* the rows of every batch of a as one matrix */
    matrix_view vb = view_at(c, op, 1, out, NULL, tb);
    for (int32_t d = 0; d < ra - 2; d++) m = LLVMBuildMul(c->b, m, out->dims[d], "");
    gemm_batch(c, a->ptr, k, cg_i64(c, 1), &vb, out->ptr, m, k, n, op);
    return true;
  }
  cg_nest batch = cg_nest_begin(c, ro - 2, out->dims);
  matrix_view va = view_at(c, op, 0, out, batch.ivs, ta), vb = view_at(c, op, 1, out, batch.ivs, tb);
  LLVMValueRef *cidx = ir_xcalloc((size_t)ro, sizeof(LLVMValueRef));
  for (int32_t d = 0; d < ro - 2; d++) cidx[d] = batch.ivs[d];
  cidx[ro - 2] = cidx[ro - 1] = cg_i64(c, 0);
  LLVMValueRef cbase = cg_linear(c, out, cidx);
  free(cidx);
  bool same = a->type.dtype == out->type.dtype && b->type.dtype == out->type.dtype;
  if (cg_gemm_applies(c->g, op))
    gemm_batch(c, element_at(c, c->f32, a->ptr, va.base), va.row_stride, va.col_stride, &vb,
               element_at(c, c->f32, out->ptr, cbase), m, k, n, op);
  else if (stores_accumulator(out->type.dtype) && !tb)
    matmul_rows(c, &va, &vb, out, cbase, m, k, n);
  else if (lane_summable(out->type.dtype) && same && !ta && tb)
    matmul_row_dots(c, &va, &vb, out, cbase, m, k, n);
  else
    matmul_dots(c, &va, &vb, out, cbase, m, k, n);
  cg_nest_end(c, &batch);
  return true;
}

/* A transpose that feeds only GEMMs (a GEMM reads A through a row and a k
 * stride and packs B from any two strides) need not be copied: multi-head
 * attention's q, k and v, [B, T, H, D] read as [B, H, T, D]. Only in the
 * graph body, where memplan keeps the operand's buffer live through the
 * alias (regions' buffers are bound otherwise: scan bodies, the
 * recurrent kernel). */
bool cg_transpose_in_place(const ir_graph *g, ir_opid op) {
  const ir_op *t = ir_o(g, op);
  if (t->kind != IR_OP_TRANSPOSE || t->block != g->body) return false;
  for (ir_opid r = t->next; r != IR_NONE; r = ir_o(g, r)->next) {
    const ir_op *o = ir_o(g, r);
    for (int32_t i = 0; i < o->n_in; i++)
      if (o->in[i] == t->out[0] && !(o->kind == IR_OP_MATMUL && cg_gemm_applies(g, r))) return false;
  }
  return true;
}

/* ---- reductions ---------------------------------------------------------------- */

typedef struct reduce_plan {
  ir_opkind kind;
  int32_t rank;        /* of the operand */
  bool *reduced;       /* by operand axis */
  bool keepdims;
  int32_t last_reduced; /* -1 when no axis is reduced */
} reduce_plan;

static reduce_plan plan_reduce(cg_lower *c, ir_opid op, const cg_buf *x) {
  reduce_plan p = {ir_o(c->g, op)->kind, x->type.rank, NULL, ir_get_int(c->g, op, "keepdims") != 0, -1};
  p.reduced = ir_xcalloc((size_t)p.rank + 1, sizeof(bool));
  const ir_attr *axes = ir_get_attr(c->g, op, "axes");
  for (int32_t i = 0; i < axes->u.ints.n; i++) {
    int64_t a = axes->u.ints.v[i];
    p.reduced[a < 0 ? a + p.rank : a] = true; /* the verifier keeps a in [-rank, rank) */
  }
  for (int32_t d = 0; d < p.rank; d++)
    if (p.reduced[d]) p.last_reduced = d;
  return p;
}

static combine_kind reduce_combine(ir_opkind k) {
  switch (k) {
  case IR_OP_REDUCE_PROD: return COMBINE_PROD;
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_LOGSUMEXP: return COMBINE_MAX; /* logsumexp's first pass */
  case IR_OP_REDUCE_MIN: return COMBINE_MIN;
  default: return COMBINE_SUM;
  }
}

/* Linear index in out of the operand position xidx. */
static LLVMValueRef reduced_linear(cg_lower *c, const reduce_plan *p, const cg_buf *out,
                                   const LLVMValueRef *xidx) {
  LLVMValueRef *idx = ir_xcalloc((size_t)p->rank + 1, sizeof(LLVMValueRef));
  int32_t r = 0;
  for (int32_t d = 0; d < p->rank; d++) {
    if (!p->reduced[d])
      idx[r++] = xidx[d];
    else if (p->keepdims)
      idx[r++] = cg_i64(c, 0);
  }
  LLVMValueRef lin = cg_linear(c, out, idx);
  free(idx);
  return lin;
}

/* Number of reduced positions per output element. */
static LLVMValueRef reduced_count(cg_lower *c, const reduce_plan *p, const cg_buf *x) {
  LLVMValueRef n = cg_i64(c, 1);
  for (int32_t d = 0; d < p->rank; d++)
    if (p->reduced[d]) n = LLVMBuildMul(c->b, n, x->dims[d], "");
  return n;
}

/* Folds the reduced positions of x around xidx (row-major) into one
 * accumulator starting at init; with `shift`, the terms are exp(x - shift). */
static LLVMValueRef fold_reduced(cg_lower *c, const reduce_plan *p, const cg_buf *x,
                                 LLVMValueRef *xidx, combine_kind k, LLVMValueRef init,
                                 LLVMValueRef shift) {
  ir_dtype acc_dt = acc_dtype(x->type.dtype);
  LLVMValueRef slot = cg_entry_alloca(c, cg_compute_type(c, acc_dt), "acc");
  LLVMBuildStore(c->b, init, slot);
  int32_t *axes = ir_xcalloc((size_t)p->rank + 1, sizeof(int32_t));
  cg_nest r = cg_nest_axes(c, x, axes_where(p->rank, p->reduced, true, axes), axes, xidx);
  LLVMValueRef v = load_acc(c, x, cg_linear(c, x, xidx));
  if (shift) v = fexp(c, cg_fsub(c, v, shift));
  LLVMBuildStore(c->b, combine(c, k, acc_dt, load_slot(c, slot, acc_dt), v), slot);
  cg_nest_end(c, &r);
  free(axes);
  return load_slot(c, slot, acc_dt);
}

/* The sum of x's reduced positions around xidx when the last axis is among
 * them: rows along the last axis in row-major order, each by lane_sum. */
static LLVMValueRef fold_rows(cg_lower *c, const reduce_plan *p, const cg_buf *x, LLVMValueRef *xidx) {
  ir_dtype dt = x->type.dtype;
  LLVMTypeRef t = cg_compute_type(c, dt);
  LLVMValueRef slot = cg_entry_alloca(c, t, "acc");
  LLVMBuildStore(c->b, LLVMConstNull(t), slot);
  int32_t *axes = ir_xcalloc((size_t)p->rank + 1, sizeof(int32_t));
  int32_t n = axes_where(p->rank - 1, p->reduced, true, axes);
  cg_nest r = cg_nest_axes(c, x, n, axes, xidx);
  xidx[p->rank - 1] = cg_i64(c, 0);
  LLVMValueRef row = element_at(c, t, x->ptr, cg_linear(c, x, xidx));
  LLVMValueRef sum = lane_sum(c, dt, row, NULL, x->dims[p->rank - 1]);
  LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, t, slot, ""), sum), slot);
  cg_nest_end(c, &r);
  free(axes);
  return LLVMBuildLoad2(c->b, t, slot, "");
}

/* One accumulator per output element. */
static void reduce_per_element(cg_lower *c, const reduce_plan *p, const cg_buf *x, const cg_buf *out) {
  ir_dtype acc_dt = acc_dtype(x->type.dtype);
  combine_kind k = reduce_combine(p->kind);
  LLVMValueRef *xidx = ir_xcalloc((size_t)p->rank + 1, sizeof(LLVMValueRef));
  int32_t *axes = ir_xcalloc((size_t)p->rank + 1, sizeof(int32_t));
  LLVMValueRef count = reduced_count(c, p, x);
  cg_nest kept = cg_nest_axes(c, x, axes_where(p->rank, p->reduced, false, axes), axes, xidx);
  LLVMValueRef olin = reduced_linear(c, p, out, xidx);
  bool rows = k == COMBINE_SUM && p->kind != IR_OP_REDUCE_LOGSUMEXP && p->rank > 0 &&
              p->reduced[p->rank - 1] && lane_summable(x->type.dtype);
  LLVMValueRef v = rows ? fold_rows(c, p, x, xidx) : fold_reduced(c, p, x, xidx, k, identity(c, k, acc_dt), NULL);
  if (p->kind == IR_OP_REDUCE_MEAN) v = cg_fdiv(c, v, LLVMBuildSIToFP(c->b, count, LLVMTypeOf(v), ""));
  if (p->kind == IR_OP_REDUCE_LOGSUMEXP) {
    /* An infinite or NaN maximum is already the answer. */
    LLVMValueRef sum = fold_reduced(c, p, x, xidx, COMBINE_SUM, cg_const(c, acc_dt, 0), v);
    v = LLVMBuildSelect(c->b, is_finite(c, v), cg_fadd(c, v, flog(c, sum)), v, "");
  }
  store_acc(c, out, olin, v);
  cg_nest_end(c, &kept);
  free(axes);
  free(xidx);
}

/* Accumulates into out (which stores the accumulator type) with the kept
 * dims after the last reduced axis innermost: for each kept prefix
 * position, out = identity, then out = out (op) x over the reduced
 * positions in row-major order, each a contiguous sweep of the tail. */
static void reduce_into_output(cg_lower *c, const reduce_plan *p, const cg_buf *x, const cg_buf *out) {
  ir_dtype acc_dt = acc_dtype(x->type.dtype);
  combine_kind k = reduce_combine(p->kind);
  int32_t rank = p->rank, n_prefix = 0, n_red = 0, n_tail = 0;
  int32_t *prefix = ir_xcalloc((size_t)rank, sizeof(int32_t)), *red = ir_xcalloc((size_t)rank, sizeof(int32_t));
  int32_t *tail = ir_xcalloc((size_t)rank, sizeof(int32_t));
  for (int32_t d = 0; d < rank; d++) {
    if (d > p->last_reduced)
      tail[n_tail++] = d;
    else if (p->reduced[d])
      red[n_red++] = d;
    else
      prefix[n_prefix++] = d;
  }
  LLVMValueRef *xidx = ir_xcalloc((size_t)rank, sizeof(LLVMValueRef));
  LLVMValueRef count = reduced_count(c, p, x);
  cg_nest outer = cg_nest_axes(c, x, n_prefix, prefix, xidx);
  cg_nest t0 = cg_nest_axes(c, x, n_tail, tail, xidx);
  cg_store(c, out, reduced_linear(c, p, out, xidx), identity(c, k, acc_dt));
  cg_nest_end(c, &t0);
  cg_nest r = cg_nest_axes(c, x, n_red, red, xidx);
  cg_nest t = cg_nest_axes(c, x, n_tail, tail, xidx);
  LLVMValueRef olin = reduced_linear(c, p, out, xidx);
  LLVMValueRef v = combine(c, k, acc_dt, cg_load(c, out, olin), cg_load(c, x, cg_linear(c, x, xidx)));
  cg_store(c, out, olin, v);
  cg_nest_end(c, &t);
  cg_nest_end(c, &r);
  if (p->kind == IR_OP_REDUCE_MEAN) {
    cg_nest t2 = cg_nest_axes(c, x, n_tail, tail, xidx);
    LLVMValueRef lin = reduced_linear(c, p, out, xidx);
    LLVMValueRef sum = cg_load(c, out, lin);
    cg_store(c, out, lin, cg_fdiv(c, sum, LLVMBuildSIToFP(c->b, count, LLVMTypeOf(sum), "")));
    cg_nest_end(c, &t2);
  }
  cg_nest_end(c, &outer);
  free(xidx);
  free(prefix);
  free(red);
  free(tail);
}

bool lower_reduce(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *out = cg_result(c, op, 0);
  reduce_plan p = plan_reduce(c, op, x);
  bool int_extremum = ir_dtype_is_int(x->type.dtype) &&
                      (p.kind == IR_OP_REDUCE_MAX || p.kind == IR_OP_REDUCE_MIN);
  if (int_extremum) {
    /* Over zero elements the identity is infinite: no integer holds it. */
    LLVMValueRef some = LLVMBuildICmp(c->b, LLVMIntNE, reduced_count(c, &p, x), cg_i64(c, 0), "");
    LLVMValueRef none_stored = LLVMBuildICmp(c->b, LLVMIntEQ, cg_numel(c, out), cg_i64(c, 0), "");
    cg_check(c, LLVMBuildOr(c->b, some, none_stored, ""), CG_INT_OVERFLOW);
  }
  bool has_tail = p.last_reduced < p.rank - 1;
  if (has_tail && stores_accumulator(x->type.dtype) && p.kind != IR_OP_REDUCE_LOGSUMEXP)
    reduce_into_output(c, &p, x, out);
  else
    reduce_per_element(c, &p, x, out);
  free(p.reduced);
  return true;
}

/* ---- argmax / argmin --------------------------------------------------------------- */

/* Whether v replaces the current best b: the first extremum wins, and a NaN
 * beats everything (once the best is NaN nothing replaces it). */
static LLVMValueRef replaces_best(cg_lower *c, ir_dtype dt, LLVMValueRef v, LLVMValueRef b, bool max) {
  if (!ir_dtype_is_float(dt))
    return LLVMBuildICmp(c->b, max ? LLVMIntSGT : LLVMIntSLT, v, b, "");
  LLVMValueRef better = cg_fcmp(c, max ? LLVMRealOGT : LLVMRealOLT, v, b);
  LLVMValueRef takes = LLVMBuildOr(c->b, is_nan(c, v), better, "");
  return LLVMBuildAnd(c->b, LLVMBuildNot(c->b, is_nan(c, b), ""), takes, "");
}

bool lower_argreduce(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *out = cg_result(c, op, 0);
  int32_t rank = x->type.rank, axis = (int32_t)ir_get_int(c->g, op, "axis");
  bool keep = ir_get_int(c->g, op, "keepdims") != 0, max = ir_o(c->g, op)->kind == IR_OP_ARGMAX;
  ir_dtype dt = x->type.dtype;
  LLVMValueRef n = x->dims[axis];
  /* An empty axis has no index to return (unless nothing is returned). */
  LLVMValueRef nonempty = LLVMBuildICmp(c->b, LLVMIntSGT, n, cg_i64(c, 0), "");
  LLVMValueRef none_stored = LLVMBuildICmp(c->b, LLVMIntEQ, cg_numel(c, out), cg_i64(c, 0), "");
  cg_check(c, LLVMBuildOr(c->b, nonempty, none_stored, ""), CG_INDEX_RANGE);
  LLVMValueRef best = cg_entry_alloca(c, c->i64, "best");
  LLVMValueRef best_v = cg_entry_alloca(c, cg_compute_type(c, dt), "best_v");
  LLVMValueRef *xidx = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  int32_t *axes = ir_xcalloc((size_t)rank + 1, sizeof(int32_t));
  cg_nest rows = cg_nest_axes(c, x, axes_except(rank, axis, axes), axes, xidx);
  bool *reduced = ir_xcalloc((size_t)rank + 1, sizeof(bool));
  reduced[axis] = true;
  reduce_plan p = {ir_o(c->g, op)->kind, rank, reduced, keep, axis};
  LLVMValueRef olin = reduced_linear(c, &p, out, xidx);
  xidx[axis] = cg_i64(c, 0);
  LLVMBuildStore(c->b, cg_i64(c, 0), best);
  LLVMBuildStore(c->b, cg_load(c, x, cg_linear(c, x, xidx)), best_v);
  cg_loop i = cg_for_begin(c, LLVMBuildSub(c->b, n, cg_i64(c, 1), ""), "i");
  xidx[axis] = LLVMBuildAdd(c->b, i.iv, cg_i64(c, 1), "");
  LLVMValueRef v = cg_load(c, x, cg_linear(c, x, xidx));
  LLVMValueRef b = LLVMBuildLoad2(c->b, cg_compute_type(c, dt), best_v, "");
  LLVMValueRef take = replaces_best(c, dt, v, b, max);
  LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, v, b, ""), best_v);
  LLVMValueRef bi = LLVMBuildLoad2(c->b, c->i64, best, "");
  LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, xidx[axis], bi, ""), best);
  cg_for_end(c, &i);
  cg_store(c, out, olin, LLVMBuildLoad2(c->b, c->i64, best, ""));
  cg_nest_end(c, &rows);
  free(reduced);
  free(axes);
  free(xidx);
  return true;
}

/* ---- row kernels: reductions along one contiguous row ----------------------------- */

/* Lanes of the vector accumulators of the row kernels (softmax, layernorm).
 * Fixed, so results do not depend on the target's vector width; 32 so that
 * a sum is bound by its loads rather than by the latency of one add chain
 * (32 floats are two AVX-512 or four AVX2 registers, each its own chain). */
enum { ROW_LANES = 32 };

/* One chunk of a row walk (row_walk): the k-th, ROW_LANES elements from
 * element `start` of the row; in the last, padded chunk `mask` (a vector of
 * i1) says which lanes hold elements, `live` (i64) how many; NULL and
 * ROW_LANES in full chunks. */
typedef struct row_chunk_at {
  LLVMValueRef k, start, live, mask;
} row_chunk_at;
typedef void row_chunk_fn(cg_lower *c, void *state, const row_chunk_at *at);

/* 0, 1, ..., ROW_LANES - 1 as i32 lanes. */
static LLVMValueRef lane_indices(cg_lower *c) {
  LLVMValueRef ix[ROW_LANES];
  for (int l = 0; l < ROW_LANES; l++) ix[l] = cg_i32(c, l);
  return LLVMConstVector(ix, ROW_LANES);
}

/* Walks a row of n elements in chunks of ROW_LANES, calling `chunk` on the
 * chunks from the `from`-th on, in order: element i goes to lane
 * i mod ROW_LANES. The last chunk is padded (a mask, no scalar tail), in a
 * loop that runs once or never. */
static void row_walk(cg_lower *c, LLVMValueRef n, int64_t from, row_chunk_fn *chunk, void *state) {
  LLVMValueRef full = LLVMBuildSDiv(c->b, n, cg_i64(c, ROW_LANES), "");
  LLVMValueRef rest = LLVMBuildSub(c->b, full, cg_i64(c, from), "");
  cg_loop ch = cg_for_begin(c, LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, rest, cg_i64(c, 0), ""), rest,
                                               cg_i64(c, 0), ""), "chunk");
  LLVMValueRef k = LLVMBuildAdd(c->b, ch.iv, cg_i64(c, from), "");
  row_chunk_at at = {k, LLVMBuildMul(c->b, k, cg_i64(c, ROW_LANES), ""), cg_i64(c, ROW_LANES), NULL};
  chunk(c, state, &at);
  cg_for_end(c, &ch);
  LLVMValueRef done = LLVMBuildMul(c->b, full, cg_i64(c, ROW_LANES), "");
  LLVMValueRef left = LLVMBuildSub(c->b, n, done, ""); /* 0 .. ROW_LANES - 1 */
  LLVMValueRef has_tail = LLVMBuildZExt(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, left, cg_i64(c, 0), ""), c->i64, "");
  cg_loop tail = cg_for_begin(c, has_tail, "tail");
  LLVMValueRef live = cg_splat(c, ROW_LANES, LLVMBuildTrunc(c->b, left, c->i32, ""));
  at = (row_chunk_at){full, done, left, LLVMBuildICmp(c->b, LLVMIntSLT, lane_indices(c), live, "")};
  chunk(c, state, &at);
  cg_for_end(c, &tail);
}

/* ROW_LANES contiguous float or double elements at p; with a mask, only
 * its lanes are read, the others are `passthru`. */
static LLVMValueRef load_row_chunk(cg_lower *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef mask,
                                   LLVMValueRef passthru) {
  LLVMTypeRef vt = LLVMVectorType(t, ROW_LANES);
  unsigned align = t == c->f64 ? 8 : 4; /* element alignment: rows start anywhere */
  if (mask) return cg_masked_load(c, vt, p, align, mask, passthru);
  LLVMValueRef v = LLVMBuildLoad2(c->b, vt, p, "");
  LLVMSetAlignment(v, align);
  return v;
}

/* The halves [0, width) and [width, 2 width) of a vector. */
static void split_lanes(cg_lower *c, LLVMValueRef v, int width, LLVMValueRef *lo, LLVMValueRef *hi) {
  LLVMValueRef l[ROW_LANES / 2], h[ROW_LANES / 2];
  for (int i = 0; i < width; i++) l[i] = cg_i32(c, i), h[i] = cg_i32(c, width + i);
  *lo = LLVMBuildShuffleVector(c->b, v, v, LLVMConstVector(l, (unsigned)width), "");
  *hi = LLVMBuildShuffleVector(c->b, v, v, LLVMConstVector(h, (unsigned)width), "");
}

/* What a row reduction folds: the elements' sum or their maximum. */
typedef enum row_fold { ROW_SUM, ROW_MAX } row_fold;

/* One row_fold_lanes in the making. */
typedef struct row_reduce {
  row_fold fold;
  LLVMTypeRef t, vt;     /* element type (float, double), ROW_LANES of it */
  LLVMValueRef row;      /* the row's first element */
  LLVMValueRef identity; /* ROW_LANES of 0, or of -inf for ROW_MAX */
  LLVMValueRef acc;      /* alloca of vt: the lanes */
} row_reduce;

/* v in each of ROW_LANES lanes of type t. */
static LLVMValueRef splat_const(LLVMTypeRef t, double v) {
  LLVMValueRef k[ROW_LANES];
  for (int l = 0; l < ROW_LANES; l++) k[l] = LLVMConstReal(t, v);
  return LLVMConstVector(k, ROW_LANES);
}

/* The maximum as `v > acc ? v : acc` (one maxps on x86): a NaN element is
 * never taken, which cannot change a softmax (its exponential is NaN, so
 * are the sum and every quotient), and without NaNs the maximum does not
 * depend on the order. Either zero may win over the other; x - m and then
 * exp(x - m) are the same for both. */
static LLVMValueRef row_combine(cg_lower *c, row_fold f, LLVMValueRef acc, LLVMValueRef v) {
  if (f == ROW_MAX) return LLVMBuildSelect(c->b, cg_fcmp(c, LLVMRealOGT, v, acc), v, acc, "");
  return cg_fadd(c, acc, v);
}

/* Folds a chunk into the lanes (row_chunk_fn); padding lanes add the
 * identity. */
static void row_fold_chunk(cg_lower *c, void *state, const row_chunk_at *at) {
  row_reduce *r = state;
  LLVMValueRef v = load_row_chunk(c, r->t, element_at(c, r->t, r->row, at->start), at->mask, r->identity);
  LLVMBuildStore(c->b, row_combine(c, r->fold, LLVMBuildLoad2(c->b, r->vt, r->acc, ""), v), r->acc);
}

/* The ROW_LANES lanes of acc folded as f says in a fixed tree, halving the
 * width. */
static LLVMValueRef combine_lanes(cg_lower *c, row_fold f, LLVMValueRef acc) {
  for (int width = ROW_LANES / 2; width >= 1; width /= 2) {
    LLVMValueRef a, b;
    split_lanes(c, acc, width, &a, &b);
    acc = row_combine(c, f, a, b);
  }
  return LLVMBuildExtractElement(c->b, acc, cg_i32(c, 0), "");
}

/* Folds row[0..n) (contiguous float or double) as f says. Element i goes to
 * lane i mod ROW_LANES, each lane folding its elements in ascending order;
 * the last chunk is padded with the identity (row_walk) and the lanes are
 * combined in a fixed tree, halving the width. The order depends on n
 * only. Because of the padding, trailing zeros never change a sum,
 * whatever n is: a softmax row of a KV cache and the same row in forward
 * (masked keys are exactly 0) add the same terms in the same lanes. */
static LLVMValueRef row_fold_lanes(cg_lower *c, row_fold f, LLVMTypeRef t, LLVMValueRef row, LLVMValueRef n) {
  row_reduce r = {f, t, LLVMVectorType(t, ROW_LANES), row, splat_const(t, f == ROW_MAX ? -INFINITY : 0.0), NULL};
  r.acc = cg_entry_alloca(c, r.vt, f == ROW_MAX ? "lanes.max" : "lanes.sum");
  LLVMBuildStore(c->b, r.identity, r.acc);
  row_walk(c, n, 0, row_fold_chunk, &r);
  return combine_lanes(c, f, LLVMBuildLoad2(c->b, r.vt, r.acc, ""));
}

/* ---- softmax ----------------------------------------------------------------------- */

/* ROW_LANES floats at p; in a padded chunk (mask set) only the mask's. */
static void store_row_chunk(cg_lower *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
  if (mask) cg_masked_store(c, v, p, 4, mask);
  else LLVMSetAlignment(LLVMBuildStore(c->b, v, p), 4);
}

/* One f32 row of softmax_exp_lanes in the making. */
typedef struct softmax_exp {
  LLVMValueRef x, y; /* the row's first element in x and in y */
  LLVMValueRef next; /* where the next row of x starts */
  LLVMValueRef m;    /* the row maximum in every lane */
  LLVMValueRef acc;  /* alloca of ROW_LANES floats: the sum's lanes */
} softmax_exp;

/* A prefetch of the cache line at p into L2 (llvm.prefetch: never faults,
 * wherever p points). */
static void prefetch_l2(cg_lower *c, LLVMValueRef p) {
  LLVMValueRef args[4] = {p, cg_i32(c, 0) /* read */, cg_i32(c, 2) /* locality: L2 */, cg_i32(c, 1) /* data */};
  cg_intrinsic(c, "llvm.prefetch", c->ptr, 4, args);
}

/* e = exp(x - m) for a chunk (row_chunk_fn): stored into y and added into
 * the lanes, padding lanes adding 0 as row_fold_lanes' do. The same chunk
 * of the next row is prefetched: its maximum pass would otherwise wait for
 * memory, since the hardware prefetcher sees no new lines while this row
 * is worked on in L1 (12% faster on 2048 rows of 512). */
static void softmax_exp_chunk(cg_lower *c, void *state, const row_chunk_at *at) {
  softmax_exp *s = state;
  LLVMTypeRef vt = LLVMVectorType(c->f32, ROW_LANES);
  prefetch_l2(c, element_at(c, c->f32, s->next, at->start));
  prefetch_l2(c, element_at(c, c->f32, s->next, LLVMBuildAdd(c->b, at->start, cg_i64(c, ROW_LANES / 2), "")));
  LLVMValueRef x = load_row_chunk(c, c->f32, element_at(c, c->f32, s->x, at->start), at->mask, s->m);
  LLVMValueRef e = cg_vm_exp_lanes(c, cg_fsub(c, x, s->m), true); /* x <= m unless NaN */
  store_row_chunk(c, e, element_at(c, c->f32, s->y, at->start), at->mask);
  if (at->mask) e = LLVMBuildSelect(c->b, at->mask, e, LLVMConstNull(vt), "");
  LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, vt, s->acc, ""), e), s->acc);
}

/* y[i] = exp(x[i] - m) over an f32 row of n, returning their sum, in one
 * pass of ROW_LANES-lane chunks with exp built on the chunk
 * (cg_vm_exp_lanes: the bits of the scalar seqc.vm.exp.f32). Element i
 * goes to lane i mod ROW_LANES and the lanes combine as in row_fold_lanes,
 * so the sum is row_fold_lanes' sum of the stored exponentials, bit for
 * bit. */
static LLVMValueRef softmax_exp_lanes(cg_lower *c, LLVMValueRef xr, LLVMValueRef yr, LLVMValueRef m, LLVMValueRef n) {
  LLVMTypeRef vt = LLVMVectorType(c->f32, ROW_LANES);
  softmax_exp s = {xr, yr, element_at(c, c->f32, xr, n), cg_splat(c, ROW_LANES, m), cg_entry_alloca(c, vt, "lanes.sum")};
  LLVMBuildStore(c->b, LLVMConstNull(vt), s.acc);
  row_walk(c, n, 0, softmax_exp_chunk, &s);
  return combine_lanes(c, ROW_SUM, LLVMBuildLoad2(c->b, vt, s.acc, ""));
}

/* The same over a row of doubles (libm's exp, not vectorized): a loop,
 * then row_fold_lanes over the stored exponentials. */
static LLVMValueRef softmax_exp_loop(cg_lower *c, LLVMTypeRef t, LLVMValueRef xr, LLVMValueRef yr, LLVMValueRef m,
                                     LLVMValueRef n) {
  cg_loop i = cg_for_begin(c, n, "i");
  LLVMValueRef e = fexp(c, cg_fsub(c, LLVMBuildLoad2(c->b, t, element_at(c, t, xr, i.iv), ""), m));
  LLVMBuildStore(c->b, e, element_at(c, t, yr, i.iv));
  cg_for_end(c, &i);
  return row_fold_lanes(c, ROW_SUM, t, yr, n);
}

/* One f32 row of softmax_divide in the making. */
typedef struct softmax_div {
  LLVMValueRef y;      /* the row's first element */
  LLVMValueRef neg_s;  /* -sum in every lane */
  LLVMValueRef r;      /* 1/sum, correctly rounded, in every lane */
  LLVMValueRef s;      /* sum in every lane */
  LLVMValueRef small;  /* sum * 2^-100 in every lane */
} softmax_div;

static LLVMValueRef fma_of(cg_lower *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef addend) {
  LLVMValueRef args[3] = {a, b, addend};
  return cg_intrinsic(c, "llvm.fma", LLVMTypeOf(a), 3, args);
}

/* y = e / s for a chunk (row_chunk_fn), the IEEE quotient without a
 * division: q0 = e r (r = 1/s rounded) is within 2 ulp of e/s; one
 * correction q1 = q0 + (e - s q0) r, each step a fused multiply-add,
 * leaves q1 within 1/2 + 2^-21 ulp, a faithful quotient; a second one
 * gives the correctly rounded e/s by Markstein's theorem (r correctly
 * rounded, q faithful: RN(q + RN(e - s q) r) = RN(e/s); Markstein 1990, as
 * in Muller et al., Handbook of Floating-Point Arithmetic). The theorem
 * needs the remainders exact, which holds while e/s >= 2^-103 (s >= 1:
 * the row maximum adds exp(0) = 1): a chunk with some 0 < e < s 2^-100
 * (rare: logits more than 69 below the row maximum) is divided by fdiv
 * instead. */
static void softmax_div_chunk(cg_lower *c, void *state, const row_chunk_at *at) {
  softmax_div *d = state;
  LLVMTypeRef vt = LLVMVectorType(c->f32, ROW_LANES);
  LLVMValueRef zero = LLVMConstNull(vt), to = element_at(c, c->f32, d->y, at->start);
  LLVMValueRef e = load_row_chunk(c, c->f32, to, at->mask, zero);
  LLVMValueRef q = cg_fmul(c, e, d->r);
  for (int step = 0; step < 2; step++) q = fma_of(c, fma_of(c, d->neg_s, q, e), d->r, q);
  store_row_chunk(c, q, to, at->mask);
  LLVMValueRef tiny = LLVMBuildAnd(c->b, cg_fcmp(c, LLVMRealOGT, e, zero), cg_fcmp(c, LLVMRealOLT, e, d->small), "");
  LLVMValueRef any = cg_intrinsic(c, "llvm.vector.reduce.or", LLVMTypeOf(tiny), 1, &tiny);
  cg_loop exact = cg_for_begin(c, LLVMBuildZExt(c->b, any, c->i64, ""), "exact"); /* once or never */
  store_row_chunk(c, cg_fdiv(c, e, d->s), to, at->mask);
  cg_for_end(c, &exact);
}

/* y[i] /= sum over a row of n, by fdiv in a loop LLVM vectorizes. */
static void softmax_fdiv(cg_lower *c, LLVMTypeRef t, LLVMValueRef yr, LLVMValueRef sum, LLVMValueRef n) {
  cg_loop j = cg_for_begin(c, n, "i");
  LLVMValueRef at = element_at(c, t, yr, j.iv);
  LLVMBuildStore(c->b, cg_fdiv(c, LLVMBuildLoad2(c->b, t, at, ""), sum), at);
  cg_for_end(c, &j);
}

/* y[i] /= sum over a row of n, the same bits whichever way: for f32 on a
 * target with FMA in chunks (softmax_div_chunk), unless the sum is NaN
 * (the row is NaN: fdiv keeps the NaNs' bits the same on every target and
 * at every -O level, which fused multiply-adds of negated NaNs need not);
 * otherwise softmax_fdiv. */
static void softmax_divide(cg_lower *c, LLVMTypeRef t, LLVMValueRef yr, LLVMValueRef sum, LLVMValueRef n) {
  if (t != c->f32 || !c->has_fma) {
    softmax_fdiv(c, t, yr, sum, n);
    return;
  }
  LLVMValueRef nan = cg_fcmp(c, LLVMRealUNO, sum, sum);
  cg_loop fast = cg_for_begin(c, LLVMBuildZExt(c->b, LLVMBuildNot(c->b, nan, ""), c->i64, ""), "fma.div"); /* once or never */
  softmax_div d = {yr, cg_splat(c, ROW_LANES, cg_fneg(c, sum)),
                   cg_splat(c, ROW_LANES, cg_fdiv(c, LLVMConstReal(c->f32, 1), sum)), cg_splat(c, ROW_LANES, sum),
                   cg_splat(c, ROW_LANES, cg_fmul(c, sum, LLVMConstReal(c->f32, 0x1p-100)))};
  row_walk(c, n, 0, softmax_div_chunk, &d);
  cg_for_end(c, &fast);
  cg_loop slow = cg_for_begin(c, LLVMBuildZExt(c->b, nan, c->i64, ""), "nan.div");
  softmax_fdiv(c, t, yr, sum, n);
  cg_for_end(c, &slow);
}

/* Softmax along the last, contiguous axis of f32/f64 rows: the max in
 * vector lanes (row_fold_lanes), the exponentials and their sum (one pass
 * for f32, softmax_exp_lanes; two for f64), the division
 * (softmax_divide). The row stays in L1 between the passes. */
static void softmax_rows(cg_lower *c, const cg_buf *x, const cg_buf *y) {
  ir_dtype dt = x->type.dtype;
  LLVMTypeRef t = cg_compute_type(c, dt);
  int32_t rank = x->type.rank;
  LLVMValueRef n = x->dims[rank - 1], rows = cg_i64(c, 1);
  for (int32_t d = 0; d < rank - 1; d++) rows = LLVMBuildMul(c->b, rows, x->dims[d], "");
  cg_loop r = cg_for_begin(c, rows, "row");
  LLVMValueRef start = LLVMBuildMul(c->b, r.iv, n, "");
  LLVMValueRef xr = element_at(c, t, x->ptr, start), yr = element_at(c, t, y->ptr, start);
  LLVMValueRef m = row_fold_lanes(c, ROW_MAX, t, xr, n);
  LLVMValueRef sum = t == c->f32 ? softmax_exp_lanes(c, xr, yr, m, n) : softmax_exp_loop(c, t, xr, yr, m, n);
  softmax_divide(c, t, yr, sum, n);
  cg_for_end(c, &r);
}

/* Per row along axis: m = max (NaN-propagating), y = exp(x - m), s = sum y,
 * y /= s. When y stores the accumulator type the exponentials are kept in
 * y between the passes; otherwise (f16/bf16) they are recomputed, so y is
 * rounded once. Last-axis f32/f64 rows take softmax_rows. y may be x's
 * buffer (lower_memplan.c, in place): every line is read whole (the
 * maximum) before any of it is stored, and an element stored over is read
 * again only as y. */
bool lower_softmax(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t rank = x->type.rank, axis = (int32_t)ir_get_int(c->g, op, "axis");
  if (axis == rank - 1 && lane_summable(x->type.dtype) && y->type.dtype == x->type.dtype) {
    softmax_rows(c, x, y);
    return true;
  }
  ir_dtype acc_dt = acc_dtype(x->type.dtype);
  bool keep_exp = stores_accumulator(y->type.dtype);
  LLVMValueRef n = x->dims[axis];
  LLVMValueRef max_slot = cg_entry_alloca(c, cg_compute_type(c, acc_dt), "max");
  LLVMValueRef sum_slot = cg_entry_alloca(c, cg_compute_type(c, acc_dt), "sum");
  LLVMValueRef *xidx = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  int32_t *axes = ir_xcalloc((size_t)rank + 1, sizeof(int32_t));
  cg_nest rows = cg_nest_axes(c, x, axes_except(rank, axis, axes), axes, xidx);
  LLVMBuildStore(c->b, cg_const(c, acc_dt, -INFINITY), max_slot);
  LLVMBuildStore(c->b, cg_const(c, acc_dt, 0), sum_slot);
  cg_loop i1 = cg_for_begin(c, n, "i");
  xidx[axis] = i1.iv;
  LLVMValueRef m = nan_extremum(c, load_slot(c, max_slot, acc_dt), load_acc(c, x, cg_linear(c, x, xidx)), true);
  LLVMBuildStore(c->b, m, max_slot);
  cg_for_end(c, &i1);
  m = load_slot(c, max_slot, acc_dt);
  cg_loop i2 = cg_for_begin(c, n, "i");
  xidx[axis] = i2.iv;
  LLVMValueRef lin = cg_linear(c, x, xidx);
  LLVMValueRef e = fexp(c, cg_fsub(c, load_acc(c, x, lin), m));
  if (keep_exp) cg_store(c, y, lin, e);
  LLVMBuildStore(c->b, cg_fadd(c, load_slot(c, sum_slot, acc_dt), e), sum_slot);
  cg_for_end(c, &i2);
  LLVMValueRef sum = load_slot(c, sum_slot, acc_dt);
  cg_loop i3 = cg_for_begin(c, n, "i");
  xidx[axis] = i3.iv;
  lin = cg_linear(c, x, xidx);
  e = keep_exp ? cg_load(c, y, lin) : fexp(c, cg_fsub(c, load_acc(c, x, lin), m));
  cg_store(c, y, lin, cg_fdiv(c, e, sum));
  cg_for_end(c, &i3);
  cg_nest_end(c, &rows);
  free(axes);
  free(xidx);
  return true;
}

/* ---- layernorm ---------------------------------------------------------------------- */

/* Welford's mean and sum of squared deviations (M2) in ROW_LANES lanes
 * (row_moments), over y = x - x[0] rather than x: the running means stay
 * near 0, where their roundings are small, however far the row is from 0. */
typedef struct row_welford {
  const cg_buf *x;
  LLVMValueRef base;     /* linear index of the row's first element in x */
  LLVMTypeRef t, vt;     /* accumulator type (float, double), ROW_LANES of it */
  LLVMValueRef shift;    /* x[0] in every lane */
  LLVMValueRef mean, m2; /* allocas of vt: the lanes' running values */
  LLVMValueRef stage;    /* f16/bf16: alloca of vt a chunk is converted into */
} row_welford;

/* A chunk of y = x - x[0] in the accumulator type (padding lanes: -x[0]).
 * f32/f64 rows are loaded as they are; f16/bf16 elements are converted one
 * by one into `stage` first. */
static LLVMValueRef welford_load(cg_lower *c, const row_welford *w, const row_chunk_at *at) {
  LLVMValueRef zero = LLVMConstNull(w->vt), v;
  LLVMValueRef first = LLVMBuildAdd(c->b, w->base, at->start, "");
  if (w->stage) {
    cg_loop l = cg_for_begin(c, at->live, "lane");
    LLVMBuildStore(c->b, load_acc(c, w->x, LLVMBuildAdd(c->b, first, l.iv, "")), element_at(c, w->t, w->stage, l.iv));
    cg_for_end(c, &l);
    v = load_row_chunk(c, w->t, w->stage, at->mask, zero);
  } else {
    v = load_row_chunk(c, w->t, element_at(c, w->t, w->x->ptr, first), at->mask, zero);
  }
  return cg_fsub(c, v, w->shift);
}

/* The k-th chunk (k >= 1, or the padded one) gives each live lane its
 * (k+1)-th element y: d = y - mean; mean += d / (k+1); M2 += d * (y - mean).
 * All lanes share the count, so 1 / (k+1) is one scalar division per chunk
 * and the lanes multiply by it (no vector division in the loop). */
static void welford_chunk(cg_lower *c, void *state, const row_chunk_at *at) {
  row_welford *w = state;
  LLVMValueRef y = welford_load(c, w, at);
  LLVMValueRef mean = LLVMBuildLoad2(c->b, w->vt, w->mean, ""), m2 = LLVMBuildLoad2(c->b, w->vt, w->m2, "");
  LLVMValueRef count = LLVMBuildSIToFP(c->b, LLVMBuildAdd(c->b, at->k, cg_i64(c, 1), ""), w->t, "");
  LLVMValueRef r = cg_splat(c, ROW_LANES, cg_fdiv(c, LLVMConstReal(w->t, 1.0), count));
  LLVMValueRef d = cg_fsub(c, y, mean);
  LLVMValueRef mean2 = cg_fmuladd(c, d, r, mean);
  LLVMValueRef m22 = cg_fmuladd(c, d, cg_fsub(c, y, mean2), m2);
  if (at->mask) { /* padding lanes keep their values */
    mean2 = LLVMBuildSelect(c->b, at->mask, mean2, mean, "");
    m22 = LLVMBuildSelect(c->b, at->mask, m22, m2, "");
  }
  LLVMBuildStore(c->b, mean2, w->mean);
  LLVMBuildStore(c->b, m22, w->m2);
}

/* Merges the lanes of (n, mean, M2) pairwise, lanes [0, w) with [w, 2w) for
 * w = ROW_LANES/2 .. 1 (Chan et al.): n = na + nb, d = mean_b - mean_a,
 * mean = mean_a + d * nb/n, M2 = M2_a + M2_b + d^2 * na * nb/n. A lane with
 * no elements (mean 0, M2 0) merges with weight nb/n = 0; n = 0 divides by
 * 1 instead. The weights depend on the counts only, which LLVM hoists out
 * of the row loop. */
static void welford_merge(cg_lower *c, LLVMTypeRef t, LLVMValueRef n, LLVMValueRef *mean, LLVMValueRef *m2) {
  for (int width = ROW_LANES / 2; width >= 1; width /= 2) {
    LLVMValueRef na, nb, mua, mub, m2a, m2b;
    split_lanes(c, n, width, &na, &nb);
    split_lanes(c, *mean, width, &mua, &mub);
    split_lanes(c, *m2, width, &m2a, &m2b);
    n = cg_fadd(c, na, nb);
    LLVMValueRef empty = cg_fcmp(c, LLVMRealOEQ, n, LLVMConstNull(LLVMTypeOf(n)));
    LLVMValueRef wb = cg_fdiv(c, nb, LLVMBuildSelect(c->b, empty, cg_splat(c, width, LLVMConstReal(t, 1.0)), n, ""));
    LLVMValueRef d = cg_fsub(c, mub, mua);
    *mean = cg_fmuladd(c, d, wb, mua);
    *m2 = cg_fmuladd(c, cg_fmul(c, d, d), cg_fmul(c, na, wb), cg_fadd(c, m2a, m2b));
  }
}

/* The mean and the biased variance (M2 / d, as PyTorch) of the d elements
 * of x from linear index base, in the accumulator type, reading the row
 * once: Welford over y = x - x[0] in ROW_LANES lanes, lane l taking the
 * elements i = l mod ROW_LANES in order (the first whole chunk sets
 * mean = y, M2 = 0; welford_chunk the others, the last one padded), then
 * the lanes merged in a fixed tree (welford_merge) and mean = x[0] +
 * mean(y), rounded once. Lane l holds d / ROW_LANES elements, plus one
 * when l < d mod ROW_LANES. The order depends on d only. */
static void row_moments(cg_lower *c, const cg_buf *x, LLVMValueRef base, LLVMValueRef d, LLVMValueRef *mean,
                        LLVMValueRef *var) {
  LLVMTypeRef t = cg_compute_type(c, acc_dtype(x->type.dtype)), vt = LLVMVectorType(t, ROW_LANES);
  row_welford w = {x, base, t, vt, NULL, cg_entry_alloca(c, vt, "lanes.mean"), cg_entry_alloca(c, vt, "lanes.m2"), NULL};
  if (!lane_summable(x->type.dtype)) w.stage = cg_entry_alloca(c, vt, "lanes.stage");
  LLVMValueRef zero = cg_i64(c, 0), one = cg_i64(c, 1);
  /* x[0], or 0 for an empty row (not read). */
  LLVMValueRef shift_slot = cg_entry_alloca(c, t, "shift");
  LLVMBuildStore(c->b, LLVMConstNull(t), shift_slot);
  cg_loop first = cg_for_begin(c, LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, d, zero, ""), one, zero, ""),
                               "first");
  LLVMBuildStore(c->b, load_acc(c, x, base), shift_slot);
  cg_for_end(c, &first);
  LLVMValueRef shift = LLVMBuildLoad2(c->b, t, shift_slot, "");
  w.shift = cg_splat(c, ROW_LANES, shift);
  LLVMBuildStore(c->b, LLVMConstNull(vt), w.mean);
  LLVMBuildStore(c->b, LLVMConstNull(vt), w.m2);
  LLVMValueRef whole = LLVMBuildICmp(c->b, LLVMIntSGE, d, cg_i64(c, ROW_LANES), "");
  cg_loop c0 = cg_for_begin(c, LLVMBuildSelect(c->b, whole, one, zero, ""), "chunk0");
  row_chunk_at at0 = {zero, zero, cg_i64(c, ROW_LANES), NULL};
  LLVMBuildStore(c->b, welford_load(c, &w, &at0), w.mean);
  cg_for_end(c, &c0);
  row_walk(c, d, 1, welford_chunk, &w);
  LLVMValueRef full = LLVMBuildSDiv(c->b, d, cg_i64(c, ROW_LANES), "");
  LLVMValueRef left = LLVMBuildTrunc(c->b, LLVMBuildSRem(c->b, d, cg_i64(c, ROW_LANES), ""), c->i32, "");
  LLVMValueRef extra = LLVMBuildICmp(c->b, LLVMIntSLT, lane_indices(c), cg_splat(c, ROW_LANES, left), "");
  LLVMValueRef n = cg_fadd(c, cg_splat(c, ROW_LANES, LLVMBuildSIToFP(c->b, full, t, "")),
                           LLVMBuildSelect(c->b, extra, splat_const(t, 1), splat_const(t, 0), ""));
  LLVMValueRef mu = LLVMBuildLoad2(c->b, vt, w.mean, ""), m2 = LLVMBuildLoad2(c->b, vt, w.m2, "");
  welford_merge(c, t, n, &mu, &m2);
  *mean = cg_fadd(c, shift, LLVMBuildExtractElement(c->b, mu, cg_i32(c, 0), ""));
  *var = cg_fdiv(c, LLVMBuildExtractElement(c->b, m2, cg_i32(c, 0), ""), LLVMBuildSIToFP(c->b, d, t, ""));
}

/* Per row over the last axis: mean and biased variance (row_moments), then
 * (x - mean) * inv, inv = 1 / sqrt(var + eps), times gamma, plus beta, in
 * a loop LLVM vectorizes; the last multiply and the add are one
 * cg_fmuladd (r * gamma + beta, or r * inv + beta without gamma). */
bool lower_layernorm(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t n_in = ir_o(c->g, op)->n_in, rank = x->type.rank;
  const cg_buf *gamma = n_in > 1 ? cg_operand(c, op, 1) : NULL;
  const cg_buf *beta = n_in > 2 ? cg_operand(c, op, 2) : NULL;
  ir_dim last = x->type.dims[rank - 1];
  if (gamma) cg_check_dim_eq(c, gamma->type.dims[0], last);
  if (beta) cg_check_dim_eq(c, beta->type.dims[0], last);
  ir_dtype acc_dt = acc_dtype(x->type.dtype);
  LLVMValueRef d = x->dims[rank - 1];
  LLVMValueRef eps = cg_const(c, acc_dt, ir_get_float(c->g, op, "eps"));
  cg_nest rows = cg_nest_begin(c, rank - 1, x->dims);
  rows.ivs[rank - 1] = cg_i64(c, 0); /* the nest's arrays hold rank entries */
  LLVMValueRef base = cg_linear(c, x, rows.ivs), mean, var;
  row_moments(c, x, base, d, &mean, &var);
  LLVMValueRef inv = cg_fdiv(c, cg_const(c, acc_dt, 1), unary_intrinsic(c, "llvm.sqrt", cg_fadd(c, var, eps)));
  cg_loop i = cg_for_begin(c, d, "i");
  LLVMValueRef at = LLVMBuildAdd(c->b, base, i.iv, "");
  LLVMValueRef r = cg_fsub(c, load_acc(c, x, at), mean), scale = inv;
  if (gamma) r = cg_fmul(c, r, inv), scale = load_acc(c, gamma, i.iv);
  r = beta ? cg_fmuladd(c, r, scale, load_acc(c, beta, i.iv)) : cg_fmul(c, r, scale);
  cg_store(c, y, at, r);
  cg_for_end(c, &i);
  cg_nest_end(c, &rows);
  return true;
}

/* ---- cumulative ops -------------------------------------------------------------------- */

typedef struct cumulative {
  ir_opkind kind;
  ir_dtype acc_dt;
  bool reverse, exclusive;
} cumulative;

static LLVMValueRef cumulative_identity(cg_lower *c, const cumulative *k) {
  if (k->kind == IR_OP_LOGCUMSUMEXP) return cg_const(c, k->acc_dt, -INFINITY);
  return identity(c, k->kind == IR_OP_CUMPROD ? COMBINE_PROD : COMBINE_SUM, k->acc_dt);
}

static LLVMValueRef cumulative_step(cg_lower *c, const cumulative *k, LLVMValueRef acc, LLVMValueRef v) {
  if (k->kind == IR_OP_LOGCUMSUMEXP) return log_add_exp(c, acc, v);
  return combine(c, k->kind == IR_OP_CUMPROD ? COMBINE_PROD : COMBINE_SUM, k->acc_dt, acc, v);
}

/* Position along the axis of the s-th step (reverse walks from the end). */
static LLVMValueRef step_position(cg_lower *c, const cumulative *k, LLVMValueRef n, LLVMValueRef s) {
  if (!k->reverse) return s;
  return LLVMBuildSub(c->b, LLVMBuildSub(c->b, n, cg_i64(c, 1), ""), s, "");
}

/* One running accumulator per row along the axis. */
static void cumulative_rows(cg_lower *c, const cumulative *k, const cg_buf *x, const cg_buf *y,
                            int32_t axis) {
  int32_t rank = x->type.rank;
  LLVMValueRef n = x->dims[axis];
  LLVMValueRef slot = cg_entry_alloca(c, cg_compute_type(c, k->acc_dt), "acc");
  LLVMValueRef *xidx = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  int32_t *axes = ir_xcalloc((size_t)rank + 1, sizeof(int32_t));
  cg_nest rows = cg_nest_axes(c, x, axes_except(rank, axis, axes), axes, xidx);
  LLVMBuildStore(c->b, cumulative_identity(c, k), slot);
  cg_loop s = cg_for_begin(c, n, "s");
  xidx[axis] = step_position(c, k, n, s.iv);
  LLVMValueRef lin = cg_linear(c, x, xidx);
  LLVMValueRef acc = load_slot(c, slot, k->acc_dt);
  LLVMValueRef next = cumulative_step(c, k, acc, load_acc(c, x, lin));
  store_acc(c, y, lin, k->exclusive ? acc : next);
  LLVMBuildStore(c->b, next, slot);
  cg_for_end(c, &s);
  cg_nest_end(c, &rows);
  free(axes);
  free(xidx);
}

/* Along a non-last axis, with the trailing dims innermost: step s reads
 * the running value back from y at the previous position (y holds it
 * exactly: f32/f64 store the accumulator, and integer outputs are exact).
 * Exclusive: y[pos] = y[prev] (op) x[prev]; inclusive: y[pos] = y[prev]
 * (op) x[pos]; the first position starts from the identity. */
static void cumulative_sweeps(cg_lower *c, const cumulative *k, const cg_buf *x, const cg_buf *y,
                              int32_t axis) {
  int32_t rank = x->type.rank;
  LLVMValueRef n = x->dims[axis];
  int32_t *lead = ir_xcalloc((size_t)rank + 1, sizeof(int32_t)), *tail = ir_xcalloc((size_t)rank + 1, sizeof(int32_t));
  int32_t n_lead = 0, n_tail = 0;
  for (int32_t d = 0; d < rank; d++) {
    if (d < axis) lead[n_lead++] = d;
    if (d > axis) tail[n_tail++] = d;
  }
  LLVMValueRef *idx = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  cg_nest outer = cg_nest_axes(c, x, n_lead, lead, idx);
  /* The first position: only when the axis is not empty. */
  cg_loop first = cg_for_begin(c, LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, n, cg_i64(c, 0), ""),
                                                  cg_i64(c, 1), cg_i64(c, 0), ""), "s0");
  idx[axis] = step_position(c, k, n, first.iv);
  cg_nest t0 = cg_nest_axes(c, x, n_tail, tail, idx);
  LLVMValueRef lin0 = cg_linear(c, x, idx), id = cumulative_identity(c, k);
  store_acc(c, y, lin0, k->exclusive ? id : cumulative_step(c, k, id, load_acc(c, x, lin0)));
  cg_nest_end(c, &t0);
  cg_for_end(c, &first);
  cg_loop s = cg_for_begin(c, LLVMBuildSub(c->b, n, cg_i64(c, 1), ""), "s");
  LLVMValueRef step = LLVMBuildAdd(c->b, s.iv, cg_i64(c, 1), "");
  LLVMValueRef pos = step_position(c, k, n, step), prev = step_position(c, k, n, s.iv);
  cg_nest t = cg_nest_axes(c, x, n_tail, tail, idx);
  idx[axis] = prev;
  LLVMValueRef prev_lin = cg_linear(c, x, idx);
  idx[axis] = pos;
  LLVMValueRef lin = cg_linear(c, x, idx);
  LLVMValueRef running = load_acc(c, y, prev_lin);
  LLVMValueRef v = load_acc(c, x, k->exclusive ? prev_lin : lin);
  store_acc(c, y, lin, cumulative_step(c, k, running, v));
  cg_nest_end(c, &t);
  cg_for_end(c, &s);
  cg_nest_end(c, &outer);
  free(idx);
  free(lead);
  free(tail);
}

bool lower_cumulative(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis");
  cumulative k = {ir_o(c->g, op)->kind, acc_dtype(x->type.dtype), ir_get_int(c->g, op, "reverse") != 0,
                  ir_get_int(c->g, op, "exclusive") != 0};
  bool exact_readback = x->type.dtype != IR_F16 && x->type.dtype != IR_BF16;
  if (axis < x->type.rank - 1 && exact_readback)
    cumulative_sweeps(c, &k, x, y, axis);
  else
    cumulative_rows(c, &k, x, y, axis);
  return true;
}
