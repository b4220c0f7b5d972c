/*
 * lower_data.c - data movement ops (reshape, transpose, slice,
 * dynamic_slice, dynamic_update_slice, concat, split, broadcast, gather,
 * reverse, reverse_sequence, pad) as loop nests that copy storage values
 * bit for bit: no element is converted, so results equal the
 * interpreter's exactly (NaN payloads included).
 *
 * Each op loops over the buffer it writes, in row-major order with the
 * last dim innermost (contiguous stores), and computes the index it reads
 * from. Layouts are dense row-major, so reshape is a plain copy.
 *
 * Run-time checks. What the verifier accepts but cannot prove is checked
 * before anything is written, in the interpreter's terms: dim equalities
 * (matching dims of concat operands, split sizes summing to the dim,
 * element counts of reshape, broadcast dims, the lengths of
 * reverse_sequence) fail with CG_DIM_MISMATCH; ranges (slice bounds,
 * dynamic slice sizes, pad amounts, gather indices, sequence lengths) fail
 * with CG_INDEX_RANGE. gather and reverse_sequence validate every index
 * before copying, because the interpreter rejects a bad index even where
 * the result is empty.
 *
 * attention is not lowered here: the decompose pass expands it into
 * primitive ops first.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

/* dst[dlin] = src[slin], storage to storage (same dtype). */
static void move_element(cg_lower *c, const cg_buf *dst, LLVMValueRef dlin, const cg_buf *src,
                         LLVMValueRef slin) {
  IR_ASSERT(dst->type.dtype == src->type.dtype);
  LLVMTypeRef st = cg_storage_type(c, src->type.dtype);
  LLVMValueRef from = LLVMBuildGEP2(c->b, st, src->ptr, &slin, 1, "");
  LLVMValueRef to = LLVMBuildGEP2(c->b, st, dst->ptr, &dlin, 1, "");
  LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, st, from, ""), to);
}

/* A copy of idx[0..rank), to modify one entry. */
static LLVMValueRef *index_copy(const LLVMValueRef *idx, int32_t rank) {
  LLVMValueRef *copy = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  if (rank) memcpy(copy, idx, sizeof(LLVMValueRef) * (size_t)rank);
  return copy;
}

/* For every element of `part` (a nest over its dims), move between part
 * and whole at the same index except `offset + i` along axis: BAND_READ
 * copies whole -> part, BAND_WRITE part -> whole. */
typedef enum band_dir { BAND_READ, BAND_WRITE } band_dir;

static void copy_band(cg_lower *c, const cg_buf *whole, const cg_buf *part, int32_t axis,
                      LLVMValueRef offset, band_dir dir) {
  int32_t rank = part->type.rank;
  cg_nest n = cg_nest_begin(c, rank, part->dims);
  LLVMValueRef *widx = index_copy(n.ivs, rank);
  widx[axis] = LLVMBuildAdd(c->b, offset, n.ivs[axis], "");
  LLVMValueRef wlin = cg_linear(c, whole, widx), plin = cg_linear(c, part, n.ivs);
  if (dir == BAND_READ)
    move_element(c, part, plin, whole, wlin);
  else
    move_element(c, whole, wlin, part, plin);
  free(widx);
  cg_nest_end(c, &n);
}

/* Fails with `code` unless lo <= v <= hi (i64, signed). */
static void check_between(cg_lower *c, LLVMValueRef lo, LLVMValueRef v, LLVMValueRef hi, cg_status code) {
  LLVMValueRef ok = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, lo, v, ""),
                                 LLVMBuildICmp(c->b, LLVMIntSLE, v, hi, ""), "");
  cg_check(c, ok, code);
}

/* An integer element of b as i64. */
static LLVMValueRef load_index(cg_lower *c, const cg_buf *b, LLVMValueRef lin) {
  LLVMValueRef v = cg_load(c, b, lin);
  return b->type.dtype == IR_I64 ? v : LLVMBuildSExt(c->b, v, c->i64, "");
}

/* ---- reshape, transpose, broadcast ------------------------------------------------ */

bool lower_reshape(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  ir_dim nx = ir_type_numel_dim(c->g, x->type), ny = ir_type_numel_dim(c->g, y->type);
  if (nx == IR_DIM_INVALID || ny == IR_DIM_INVALID || nx != ny)
    cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, cg_numel(c, x), cg_numel(c, y), ""), CG_DIM_MISMATCH);
  return true; /* the walker gave y x's buffer */
}

bool lower_transpose(cg_lower *c, ir_opid op) {
  if (cg_transpose_in_place(c->g, op)) return true; /* the walker gave y x's buffer, strided */
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  const ir_attr *perm = ir_get_attr(c->g, op, "perm");
  int32_t rank = y->type.rank;
  cg_nest n = cg_nest_begin(c, rank, y->dims);
  LLVMValueRef *xidx = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0; i < rank; i++) xidx[perm->u.ints.v[i]] = n.ivs[i];
  move_element(c, y, cg_linear(c, y, n.ivs), x, cg_linear(c, x, xidx));
  free(xidx);
  cg_nest_end(c, &n);
  return true;
}

/* Right-aligned numpy broadcast: a dim declared as 1 expands (reads index
 * 0); every other dim must equal the result's. */
bool lower_broadcast(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  cg_broadcast_check(c, x->type, y->type);
  cg_nest n = cg_nest_begin(c, y->type.rank, y->dims);
  move_element(c, y, cg_linear(c, y, n.ivs), x, cg_broadcast_linear(c, x, y->type.rank, n.ivs));
  cg_nest_end(c, &n);
  return true;
}

/* ---- slices ----------------------------------------------------------------------- */

/* Elements start, start + step, ... < end along axis; 0 <= start <= end <= dim. */
bool lower_slice(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis"), rank = x->type.rank;
  int64_t step = ir_get_int(c->g, op, "step");
  LLVMValueRef start = cg_dim(c, ir_get_dim(c->g, op, "start")), end = cg_dim(c, ir_get_dim(c->g, op, "end"));
  check_between(c, cg_i64(c, 0), start, end, CG_INDEX_RANGE);
  check_between(c, start, end, x->dims[axis], CG_INDEX_RANGE);
  cg_nest n = cg_nest_begin(c, rank, y->dims);
  LLVMValueRef *xidx = index_copy(n.ivs, rank);
  xidx[axis] = LLVMBuildAdd(c->b, start, LLVMBuildMul(c->b, n.ivs[axis], cg_i64(c, step), ""), "");
  move_element(c, y, cg_linear(c, y, n.ivs), x, cg_linear(c, x, xidx));
  free(xidx);
  cg_nest_end(c, &n);
  return true;
}

/* A run-time scalar index clamped to [0, hi]. */
static LLVMValueRef clamped_index(cg_lower *c, const cg_buf *index, LLVMValueRef hi) {
  LLVMValueRef v = load_index(c, index, cg_i64(c, 0));
  return cg_smin(c, cg_smax(c, v, cg_i64(c, 0)), hi);
}

bool lower_dynamic_slice(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *index = cg_operand(c, op, 1), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis");
  LLVMValueRef size = y->dims[axis], n = x->dims[axis];
  check_between(c, cg_i64(c, 0), size, n, CG_INDEX_RANGE);
  LLVMValueRef at = clamped_index(c, index, LLVMBuildSub(c->b, n, size, ""));
  copy_band(c, x, y, axis, at, BAND_READ);
  return true;
}

/* y = x, then the update written at the clamped index along axis. */
bool lower_dynamic_update_slice(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *u = cg_operand(c, op, 1), *index = cg_operand(c, op, 2);
  const cg_buf *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis");
  for (int32_t d = 0; d < x->type.rank; d++)
    if (d != axis) cg_check_dim_eq(c, u->type.dims[d], x->type.dims[d]);
  LLVMValueRef size = u->dims[axis], n = x->dims[axis];
  check_between(c, cg_i64(c, 0), size, n, CG_INDEX_RANGE);
  LLVMValueRef at = clamped_index(c, index, LLVMBuildSub(c->b, n, size, ""));
  cg_copy(c, y, x);
  copy_band(c, y, u, axis, at, BAND_WRITE);
  return true;
}

/* ---- concat, split ------------------------------------------------------------------- */

bool lower_concat(cg_lower *c, ir_opid op) {
  const cg_buf *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis"), n_in = ir_o(c->g, op)->n_in;
  for (int32_t k = 0; k < n_in; k++) {
    const cg_buf *x = cg_operand(c, op, k);
    for (int32_t d = 0; d < x->type.rank; d++)
      if (d != axis) cg_check_dim_eq(c, x->type.dims[d], y->type.dims[d]);
  }
  LLVMValueRef at = cg_i64(c, 0);
  for (int32_t k = 0; k < n_in; k++) {
    const cg_buf *x = cg_operand(c, op, k);
    copy_band(c, y, x, axis, at, BAND_WRITE);
    at = LLVMBuildAdd(c->b, at, x->dims[axis], "");
  }
  return true;
}

bool lower_split(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis"), n_out = ir_o(c->g, op)->n_out;
  ir_dim total = ir_dim_const(c->g->dims, 0);
  LLVMValueRef sum = cg_i64(c, 0);
  for (int32_t k = 0; k < n_out; k++) {
    const cg_buf *y = cg_result(c, op, k);
    check_between(c, cg_i64(c, 0), y->dims[axis], x->dims[axis], CG_INDEX_RANGE);
    sum = LLVMBuildAdd(c->b, sum, y->dims[axis], "");
    if (total != IR_DIM_INVALID) total = ir_dim_add(c->g->dims, total, y->type.dims[axis]);
  }
  if (total != x->type.dims[axis])
    cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, sum, x->dims[axis], ""), CG_DIM_MISMATCH);
  LLVMValueRef at = cg_i64(c, 0);
  for (int32_t k = 0; k < n_out; k++) {
    const cg_buf *y = cg_result(c, op, k);
    copy_band(c, x, y, axis, at, BAND_READ);
    at = LLVMBuildAdd(c->b, at, y->dims[axis], "");
  }
  return true;
}

/* ---- gather -------------------------------------------------------------------------- */

/* Fails with CG_INDEX_RANGE unless every element v of idx has 0 <= v <
 * bound (0 <= v <= bound when inclusive). The loop only ands a flag, so it
 * has no exit but its end; one branch follows it. */
static void check_all_indices(cg_lower *c, const cg_buf *idx, LLVMValueRef bound, bool inclusive) {
  LLVMValueRef ok = cg_entry_alloca(c, c->i1, "in_range");
  LLVMBuildStore(c->b, LLVMConstInt(c->i1, 1, 0), ok);
  cg_loop l = cg_for_begin(c, cg_numel(c, idx), "j");
  LLVMValueRef v = load_index(c, idx, l.iv);
  /* Unsigned: a negative index is a huge one. */
  LLVMValueRef fits = LLVMBuildICmp(c->b, inclusive ? LLVMIntULE : LLVMIntULT, v, bound, "");
  LLVMBuildStore(c->b, LLVMBuildAnd(c->b, LLVMBuildLoad2(c->b, c->i1, ok, ""), fits, ""), ok);
  cg_for_end(c, &l);
  cg_check(c, LLVMBuildLoad2(c->b, c->i1, ok, ""), CG_INDEX_RANGE);
}

/* y[o..., j..., r...] = table[o..., idx[j...], r...]. */
bool lower_gather(cg_lower *c, ir_opid op) {
  const cg_buf *table = cg_operand(c, op, 0), *idx = cg_operand(c, op, 1), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis"), ri = idx->type.rank;
  check_all_indices(c, idx, table->dims[axis], false);
  cg_nest n = cg_nest_begin(c, y->type.rank, y->dims);
  LLVMValueRef *tidx = ir_xcalloc((size_t)table->type.rank + 1, sizeof(LLVMValueRef));
  for (int32_t d = 0; d < axis; d++) tidx[d] = n.ivs[d];
  tidx[axis] = load_index(c, idx, cg_linear(c, idx, n.ivs + axis));
  for (int32_t d = axis + 1; d < table->type.rank; d++) tidx[d] = n.ivs[d - 1 + ri];
  move_element(c, y, cg_linear(c, y, n.ivs), table, cg_linear(c, table, tidx));
  free(tidx);
  cg_nest_end(c, &n);
  return true;
}

/* ---- reverse, reverse_sequence ---------------------------------------------------------- */

bool lower_reverse(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis"), rank = x->type.rank;
  cg_nest n = cg_nest_begin(c, rank, y->dims);
  LLVMValueRef *xidx = index_copy(n.ivs, rank);
  LLVMValueRef last = LLVMBuildSub(c->b, x->dims[axis], cg_i64(c, 1), "");
  xidx[axis] = LLVMBuildSub(c->b, last, n.ivs[axis], "");
  move_element(c, y, cg_linear(c, y, n.ivs), x, cg_linear(c, x, xidx));
  free(xidx);
  cg_nest_end(c, &n);
  return true;
}

/* Position s of batch entry b reads l - 1 - s when s < l = lengths[b],
 * else s itself. */
bool lower_reverse_sequence(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *len = cg_operand(c, op, 1), *y = cg_result(c, op, 0);
  int32_t seq = (int32_t)ir_get_int(c->g, op, "seq_axis"), batch = (int32_t)ir_get_int(c->g, op, "batch_axis");
  int32_t rank = x->type.rank;
  cg_check_dim_eq(c, len->type.dims[0], x->type.dims[batch]);
  check_all_indices(c, len, x->dims[seq], true);
  cg_nest n = cg_nest_begin(c, rank, y->dims);
  LLVMValueRef *xidx = index_copy(n.ivs, rank);
  LLVMValueRef l = load_index(c, len, n.ivs[batch]), s = n.ivs[seq];
  LLVMValueRef mirrored = LLVMBuildSub(c->b, LLVMBuildSub(c->b, l, cg_i64(c, 1), ""), s, "");
  xidx[seq] = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, s, l, ""), mirrored, s, "");
  move_element(c, y, cg_linear(c, y, n.ivs), x, cg_linear(c, x, xidx));
  free(xidx);
  cg_nest_end(c, &n);
  return true;
}

/* ---- pad --------------------------------------------------------------------------------- */

/* The storage bits of v in dtype dt, rounded as the interpreter stores it
 * (one rounding from the double, also for f16/bf16). */
static LLVMValueRef storage_constant(cg_lower *c, ir_dtype dt, double v) {
  ir_tensor t;
  IR_ASSERT(ir_tensor_alloc(&t, dt, 0, NULL, 1, NULL));
  t.data[0] = v;
  ir_buf bytes = {0};
  ir_tensor_to_bytes(&t, &bytes);
  ir_tensor_free(&t);
  uint64_t bits = 0;
  for (size_t i = bytes.len; i-- > 0;) bits = bits << 8 | (unsigned char)bytes.s[i];
  ir_buf_free(&bytes);
  LLVMTypeRef st = cg_storage_type(c, dt);
  if (dt == IR_F32) {
    uint32_t w = (uint32_t)bits;
    float f;
    memcpy(&f, &w, sizeof f);
    return LLVMConstReal(st, f);
  }
  if (dt == IR_F64) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return LLVMConstReal(st, d);
  }
  return LLVMConstInt(st, bits, 0);
}

/* y = value everywhere, then x copied in at offset `low` along axis. */
bool lower_pad(cg_lower *c, ir_opid op) {
  const cg_buf *x = cg_operand(c, op, 0), *y = cg_result(c, op, 0);
  int32_t axis = (int32_t)ir_get_int(c->g, op, "axis");
  LLVMValueRef low = cg_dim(c, ir_get_dim(c->g, op, "low")), high = cg_dim(c, ir_get_dim(c->g, op, "high"));
  LLVMValueRef zero = cg_i64(c, 0);
  LLVMValueRef ok = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, low, zero, ""),
                                 LLVMBuildICmp(c->b, LLVMIntSGE, high, zero, ""), "");
  cg_check(c, ok, CG_INDEX_RANGE);
  LLVMValueRef value = storage_constant(c, y->type.dtype, ir_get_float(c->g, op, "value"));
  LLVMTypeRef st = cg_storage_type(c, y->type.dtype);
  cg_loop fill = cg_for_begin(c, cg_numel(c, y), "e");
  LLVMBuildStore(c->b, value, LLVMBuildGEP2(c->b, st, y->ptr, &fill.iv, 1, ""));
  cg_for_end(c, &fill);
  copy_band(c, y, x, axis, low, BAND_WRITE);
  return true;
}

/* ---- attention ------------------------------------------------------------------------- */

/* Final form: attention reaches codegen only if the pipeline skipped the
 * decompose pass, which expands it into primitive ops. */
bool lower_attention(cg_lower *c, ir_opid op) {
  ir_error_at(c->diag, ir_o(c->g, op)->loc,
              "attention must be decomposed before lowering (run the decompose pass)");
  return false;
}
