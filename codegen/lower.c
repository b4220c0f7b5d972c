/*
 * lower.c - the lowering driver and the toolkit every op lowering uses
 * (lower.h): dims, buffers, loops, element access, conversions, checks, and
 * the two generated functions NAME_run and NAME_scratch_bytes.
 *
 * Memory. Intermediate tensors live in the caller's scratch block, handed
 * out by a bump pointer (`sp`, an offset). A scan resets the pointer after
 * every step, so its body's buffers are reused from step to step.
 * NAME_scratch_bytes is built by the same walker with `measuring` set: it
 * performs every allocation in the same order but emits no computation and
 * never resets, so it returns an upper bound of what NAME_run uses.
 *
 * Dims are computed once per function, in its entry block, from the symbol
 * values, and cached by dim id; every buffer's dims are those SSA values.
 *
 * The walk of the graph body skips the ops a later scan computes chunk by
 * chunk (its input projections: cg_chunk_plan, lower_scan.c): they get no
 * buffers where they stand and are lowered inside the scan's lowering.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

enum { SCRATCH_ALIGN = 64 };

/* ---- constants and dims ------------------------------------------------------ */

LLVMValueRef cg_i64(cg_lower *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(cg_lower *c, int32_t v) { return LLVMConstInt(c->i32, (unsigned long long)v, 1); }

static LLVMValueRef checked(cg_lower *c, const char *intrinsic, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  LLVMValueRef pair = cg_intrinsic(c, intrinsic, c->i64, 2, args);
  LLVMValueRef seen = LLVMBuildLoad2(c->b, c->i1, c->overflow, "");
  LLVMBuildStore(c->b, LLVMBuildOr(c->b, seen, LLVMBuildExtractValue(c->b, pair, 1, ""), ""), c->overflow);
  return LLVMBuildExtractValue(c->b, pair, 0, "");
}

LLVMValueRef cg_size_mul(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return c->measuring ? checked(c, "llvm.smul.with.overflow", a, b) : LLVMBuildMul(c->b, a, b, "");
}

LLVMValueRef cg_size_add(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return c->measuring ? checked(c, "llvm.sadd.with.overflow", a, b) : LLVMBuildAdd(c->b, a, b, "");
}

static int32_t symbol_index(const cg_lower *c, const char *name) {
  for (int32_t i = 0; i < c->n_symbols; i++)
    if (!strcmp(c->symbols[i], name)) return i;
  return -1;
}

/* floor(a / b) and ceil(a / b) for b != 0; a zero divisor (only possible
 * for a symbolic one) is replaced by 1 so the arithmetic is defined. */
static LLVMValueRef build_div(cg_lower *c, LLVMValueRef a, LLVMValueRef b, bool ceil) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef zero = cg_i64(c, 0);
  b = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, b, zero, ""), cg_i64(c, 1), b, "");
  LLVMValueRef q = LLVMBuildSDiv(B, a, b, "");
  LLVMValueRef r = LLVMBuildSRem(B, a, b, "");
  LLVMValueRef inexact = LLVMBuildICmp(B, LLVMIntNE, r, zero, "");
  LLVMValueRef signs_differ = LLVMBuildICmp(B, LLVMIntNE, LLVMBuildICmp(B, LLVMIntSLT, r, zero, ""),
                                            LLVMBuildICmp(B, LLVMIntSLT, b, zero, ""), "");
  if (ceil) {
    LLVMValueRef up = LLVMBuildAnd(B, inexact, LLVMBuildNot(B, signs_differ, ""), "");
    return LLVMBuildAdd(B, q, LLVMBuildZExt(B, up, c->i64, ""), "");
  }
  LLVMValueRef down = LLVMBuildAnd(B, inexact, signs_differ, "");
  return LLVMBuildSub(B, q, LLVMBuildZExt(B, down, c->i64, ""), "");
}

static LLVMValueRef build_dim(cg_lower *c, ir_dim d) {
  ir_dim_view v;
  IR_ASSERT(ir_dim_view_of(c->g->dims, d, &v));
  LLVMBuilderRef B = c->b;
  switch (v.kind) {
  case IR_DIM_CONST:
    return cg_i64(c, v.value);
  case IR_DIM_SYM: {
    int32_t i = symbol_index(c, v.name);
    IR_ASSERT(i >= 0);
    LLVMValueRef p = LLVMBuildGEP2(B, c->i64, c->syms, (LLVMValueRef[]){cg_i64(c, i)}, 1, "");
    return LLVMBuildLoad2(B, c->i64, p, v.name);
  }
  case IR_DIM_FLOORDIV:
  case IR_DIM_CEILDIV:
    return build_div(c, cg_dim(c, v.a), cg_dim(c, v.b), v.kind == IR_DIM_CEILDIV);
  case IR_DIM_MIN:
  case IR_DIM_MAX: {
    LLVMValueRef a = cg_dim(c, v.a), b = cg_dim(c, v.b);
    LLVMIntPredicate p = v.kind == IR_DIM_MIN ? LLVMIntSLT : LLVMIntSGT;
    return LLVMBuildSelect(B, LLVMBuildICmp(B, p, a, b, ""), a, b, "");
  }
  case IR_DIM_MUL: {
    LLVMValueRef r = cg_dim(c, v.factors[0]);
    for (int32_t i = 1; i < v.n; i++) r = cg_size_mul(c, r, cg_dim(c, v.factors[i]));
    return r;
  }
  case IR_DIM_SUM: {
    LLVMValueRef r = cg_i64(c, v.value);
    for (int32_t i = 0; i < v.n; i++) {
      ir_dim_term t = v.terms[i];
      r = cg_size_add(c, r, cg_size_mul(c, cg_i64(c, t.coef), cg_dim(c, t.mono)));
    }
    return r;
  }
  }
  IR_ASSERT(!"unknown dim kind");
  return NULL;
}

LLVMValueRef cg_dim(cg_lower *c, ir_dim d) {
  IR_ASSERT(d >= 0);
  ir_grow((void **)&c->dim_cache, &c->dim_cache_cap, d + 1, sizeof(LLVMValueRef));
  if (c->dim_cache[d]) return c->dim_cache[d];
  /* Dims are function-wide: compute them in the entry block, before its
   * branch (nested calls are already there). Elsewhere the builder is
   * always at the end of its block, so that is where it goes back to. */
  LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
  bool in_entry = here == c->entry;
  if (!in_entry) LLVMPositionBuilderBefore(c->b, c->entry_end);
  LLVMValueRef v = build_dim(c, d);
  if (!in_entry) LLVMPositionBuilderAtEnd(c->b, here);
  c->dim_cache[d] = v;
  return v;
}

/* ---- buffers ---------------------------------------------------------------- */

LLVMValueRef cg_numel(cg_lower *c, const cg_buf *b) {
  LLVMValueRef n = cg_i64(c, 1);
  for (int32_t i = 0; i < b->type.rank; i++) n = cg_size_mul(c, n, b->dims[i]);
  return n;
}

LLVMValueRef cg_bytes(cg_lower *c, ir_dtype dt, LLVMValueRef n) {
  return cg_size_mul(c, n, cg_i64(c, (int64_t)ir_dtype_size(dt)));
}

cg_buf *cg_operand(cg_lower *c, ir_opid op, int32_t i) {
  cg_buf *b = &c->bufs[ir_o(c->g, op)->in[i]];
  IR_ASSERT(b->ptr);
  return b;
}

cg_buf *cg_result(cg_lower *c, ir_opid op, int32_t i) {
  cg_buf *b = &c->bufs[ir_o(c->g, op)->out[i]];
  IR_ASSERT(b->ptr);
  return b;
}

LLVMValueRef cg_linear(cg_lower *c, const cg_buf *b, LLVMValueRef const *idx) {
  LLVMValueRef lin = cg_i64(c, 0);
  for (int32_t i = 0; i < b->type.rank; i++)
    lin = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lin, b->dims[i], ""), idx[i], "");
  return lin;
}

static void set_buf_dims(cg_lower *c, cg_buf *out, ir_type t) {
  out->type = t;
  out->dims = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(t.rank + 1));
  for (int32_t i = 0; i < t.rank; i++) out->dims[i] = cg_dim(c, t.dims[i]);
}

LLVMValueRef cg_smin(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smax(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, b, ""), a, b, "");
}

void cg_add_fn_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *name, uint64_t val) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  IR_ASSERT(kind != 0);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, val));
}

void cg_alloc_buf(cg_lower *c, cg_buf *out, ir_type t) {
  set_buf_dims(c, out, t);
  LLVMBuilderRef B = c->b;
  LLVMValueRef bytes = cg_bytes(c, t.dtype, cg_numel(c, out));
  /* A dim that is negative for these inputs fails the op's own checks
   * before anything is written; meanwhile its buffer takes no room. */
  bytes = cg_smax(c, bytes, cg_i64(c, 0));
  bytes = LLVMBuildAnd(B, cg_size_add(c, bytes, cg_i64(c, SCRATCH_ALIGN - 1)), cg_i64(c, -SCRATCH_ALIGN), "");
  LLVMValueRef off = LLVMBuildLoad2(B, c->i64, c->sp, "sp");
  out->ptr = LLVMBuildGEP2(B, c->i8, c->scratch, &off, 1, "buf");
  LLVMBuildStore(B, cg_size_add(c, off, bytes), c->sp);
}

void cg_view_buf(cg_lower *c, cg_buf *out, ir_type t, LLVMValueRef ptr) {
  set_buf_dims(c, out, t);
  out->ptr = ptr;
}

void cg_alloc_results(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  for (int32_t i = 0; i < o->n_out; i++) cg_alloc_buf(c, &c->bufs[o->out[i]], ir_vtype(c->g, o->out[i]));
}

/* A reshape's result is its operand's buffer under new dims: buffers are
 * dense and row-major, and none is written after the op that makes it
 * (scan carries change only inside their scan, and graph outputs are
 * copied out), so sharing one is safe. lower_reshape checks the sizes. */
static void alias_reshape(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  cg_view_buf(c, &c->bufs[o->out[0]], ir_vtype(c->g, o->out[0]), c->bufs[o->in[0]].ptr);
}

/* A transpose that only GEMM matmuls read (cg_transpose_in_place) is its
 * operand's buffer under the permuted strides: result axis i steps as
 * operand axis perm[i]. Nothing is written after the op that makes a
 * buffer, as for reshape; memplan keeps the operand's buffer live to the
 * last matmul (lower_memplan.c). */
static void alias_transpose(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  const cg_buf *x = &c->bufs[o->in[0]];
  const ir_attr *perm = ir_get_attr(c->g, op, "perm");
  int32_t rank = x->type.rank;
  LLVMValueRef *dense = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  for (int32_t d = rank - 1; d >= 0; d--)
    dense[d] = d == rank - 1 ? cg_i64(c, 1) : LLVMBuildMul(c->b, dense[d + 1], x->dims[d + 1], "");
  cg_view_buf(c, &c->bufs[o->out[0]], ir_vtype(c->g, o->out[0]), x->ptr);
  LLVMValueRef *s = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(rank + 1));
  for (int32_t i = 0; i < rank; i++) s[i] = dense[perm->u.ints.v[i]];
  c->strides[o->out[0]] = s;
  free(dense);
}

/* ---- element access ------------------------------------------------------------ */

LLVMTypeRef cg_storage_type(cg_lower *c, ir_dtype dt) {
  switch (dt) {
  case IR_F32: return c->f32;
  case IR_F64: return c->f64;
  case IR_F16:
  case IR_BF16: return c->i16;
  case IR_I32: return c->i32;
  case IR_I64: return c->i64;
  case IR_BOOL: return c->i8;
  default: break;
  }
  IR_ASSERT(!"bad dtype");
  return NULL;
}

LLVMTypeRef cg_compute_type(cg_lower *c, ir_dtype dt) {
  switch (dt) {
  case IR_F32:
  case IR_F16:
  case IR_BF16: return c->f32;
  case IR_F64: return c->f64;
  case IR_I32: return c->i32;
  case IR_I64: return c->i64;
  case IR_BOOL: return c->i1;
  default: break;
  }
  IR_ASSERT(!"bad dtype");
  return NULL;
}

static LLVMValueRef u32(cg_lower *c, uint32_t v) { return LLVMConstInt(c->i32, v, 0); }

/* bf16 is the top half of an f32. */
static LLVMValueRef bf16_to_f32(cg_lower *c, LLVMValueRef h) {
  LLVMValueRef w = LLVMBuildShl(c->b, LLVMBuildZExt(c->b, h, c->i32, ""), u32(c, 16), "");
  return LLVMBuildBitCast(c->b, w, c->f32, "");
}

/* Round to nearest even on the dropped half; NaNs stay NaN (quieted). */
static LLVMValueRef f32_to_bf16(cg_lower *c, LLVMValueRef f) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef u = LLVMBuildBitCast(B, f, c->i32, "");
  LLVMValueRef lsb = LLVMBuildAnd(B, LLVMBuildLShr(B, u, u32(c, 16), ""), u32(c, 1), "");
  LLVMValueRef rounded = LLVMBuildAdd(B, u, LLVMBuildAdd(B, u32(c, 0x7FFF), lsb, ""), "");
  LLVMValueRef nan = LLVMBuildOr(B, u, u32(c, 0x00400000), "");
  LLVMValueRef is_nan = LLVMBuildFCmp(B, LLVMRealUNO, f, f, "");
  LLVMValueRef r = LLVMBuildSelect(B, is_nan, nan, rounded, "");
  return LLVMBuildTrunc(B, LLVMBuildLShr(B, r, u32(c, 16), ""), c->i16, "");
}

/* Exact: shifting the exponent/mantissa into f32 position and scaling by
 * 2^112 handles normals and subnormals; inf/NaN get the f32 exponent. */
static LLVMValueRef f16_to_f32(cg_lower *c, LLVMValueRef h) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef w = LLVMBuildZExt(B, h, c->i32, "");
  LLVMValueRef sign = LLVMBuildShl(B, LLVMBuildAnd(B, w, u32(c, 0x8000), ""), u32(c, 16), "");
  LLVMValueRef em = LLVMBuildAnd(B, w, u32(c, 0x7FFF), "");
  LLVMValueRef shifted = LLVMBuildShl(B, em, u32(c, 13), "");
  LLVMValueRef scaled = LLVMBuildFMul(B, LLVMBuildBitCast(B, shifted, c->f32, ""),
                                      LLVMConstReal(c->f32, 0x1p112), "");
  LLVMValueRef finite = LLVMBuildBitCast(B, scaled, c->i32, "");
  LLVMValueRef special = LLVMBuildOr(B, shifted, u32(c, 0x7F800000), "");
  LLVMValueRef is_special = LLVMBuildICmp(B, LLVMIntUGE, em, u32(c, 0x7C00), "");
  LLVMValueRef bits = LLVMBuildOr(B, sign, LLVMBuildSelect(B, is_special, special, finite, ""), "");
  return LLVMBuildBitCast(B, bits, c->f32, "");
}

/* Round to nearest even, branch-free: overflow gives inf, NaN a quiet NaN,
 * results below the f16 normal range are rounded by an f32 addition of a
 * magic number that puts the f16 subnormal ulp at the f32 ulp. */
static LLVMValueRef f32_to_f16(cg_lower *c, LLVMValueRef f) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef u = LLVMBuildBitCast(B, f, c->i32, "");
  LLVMValueRef sign = LLVMBuildAnd(B, u, u32(c, 0x80000000u), "");
  LLVMValueRef a = LLVMBuildXor(B, u, sign, "");
  const uint32_t f16max = (127u + 16u) << 23, f32inf = 255u << 23;
  const uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  LLVMValueRef big = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntUGT, a, u32(c, f32inf), ""),
                                     u32(c, 0x7E00), u32(c, 0x7C00), "");
  LLVMValueRef magic = LLVMBuildBitCast(B, u32(c, denorm_magic), c->f32, "");
  LLVMValueRef sub_f = LLVMBuildFAdd(B, LLVMBuildBitCast(B, a, c->f32, ""), magic, "");
  LLVMValueRef sub = LLVMBuildSub(B, LLVMBuildBitCast(B, sub_f, c->i32, ""), u32(c, denorm_magic), "");
  LLVMValueRef odd = LLVMBuildAnd(B, LLVMBuildLShr(B, a, u32(c, 13), ""), u32(c, 1), "");
  LLVMValueRef norm = LLVMBuildAdd(B, a, u32(c, ((uint32_t)(15 - 127) << 23) + 0xFFF), "");
  norm = LLVMBuildLShr(B, LLVMBuildAdd(B, norm, odd, ""), u32(c, 13), "");
  LLVMValueRef is_sub = LLVMBuildICmp(B, LLVMIntULT, a, u32(c, 113u << 23), "");
  LLVMValueRef is_big = LLVMBuildICmp(B, LLVMIntUGE, a, u32(c, f16max), "");
  LLVMValueRef r = LLVMBuildSelect(B, is_big, big, LLVMBuildSelect(B, is_sub, sub, norm, ""), "");
  r = LLVMBuildOr(B, r, LLVMBuildLShr(B, sign, u32(c, 16), ""), "");
  return LLVMBuildTrunc(B, r, c->i16, "");
}

static LLVMValueRef element_ptr(cg_lower *c, const cg_buf *b, LLVMValueRef linear) {
  return LLVMBuildGEP2(c->b, cg_storage_type(c, b->type.dtype), b->ptr, &linear, 1, "");
}

LLVMValueRef cg_load(cg_lower *c, const cg_buf *b, LLVMValueRef linear) {
  ir_dtype dt = b->type.dtype;
  LLVMValueRef v = LLVMBuildLoad2(c->b, cg_storage_type(c, dt), element_ptr(c, b, linear), "");
  switch (dt) {
  case IR_F16: return f16_to_f32(c, v);
  case IR_BF16: return bf16_to_f32(c, v);
  case IR_BOOL: return LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->i8, 0, 0), "");
  default: return v;
  }
}

void cg_store(cg_lower *c, const cg_buf *b, LLVMValueRef linear, LLVMValueRef v) {
  switch (b->type.dtype) {
  case IR_F16: v = f32_to_f16(c, v); break;
  case IR_BF16: v = f32_to_bf16(c, v); break;
  case IR_BOOL: v = LLVMBuildZExt(c->b, v, c->i8, ""); break;
  default: break;
  }
  LLVMBuildStore(c->b, v, element_ptr(c, b, linear));
}

LLVMValueRef cg_round_to_storage(cg_lower *c, LLVMValueRef v, ir_dtype dt) {
  if (dt == IR_F16) return f16_to_f32(c, f32_to_f16(c, v));
  if (dt == IR_BF16) return bf16_to_f32(c, f32_to_bf16(c, v));
  return v; /* every other compute type holds exactly what storage does */
}

LLVMValueRef cg_const(cg_lower *c, ir_dtype dt, double v) {
  LLVMTypeRef t = cg_compute_type(c, dt);
  if (ir_dtype_is_float(dt)) return LLVMConstReal(t, v);
  if (dt == IR_BOOL) return LLVMConstInt(c->i1, v != 0, 0);
  return LLVMConstInt(t, (unsigned long long)(int64_t)v, 1);
}

/* Float to integer: NaN and values outside the target range fail the
 * check, i64 included beyond 2^53 where the interpreter stops being exact
 * (it reports the same inputs as errors). */
static LLVMValueRef float_to_int(cg_lower *c, LLVMValueRef v, LLVMTypeRef ft, ir_dtype to) {
  double lim = to == IR_I32 ? 2147483648.0 : 9007199254740992.0;
  LLVMValueRef lo = LLVMBuildFCmp(c->b, LLVMRealOGE, v, LLVMConstReal(ft, -lim), "");
  LLVMValueRef hi = LLVMBuildFCmp(c->b, LLVMRealOLT, v, LLVMConstReal(ft, lim), "");
  cg_check(c, LLVMBuildAnd(c->b, lo, hi, ""), CG_CAST_RANGE);
  return LLVMBuildFPToSI(c->b, v, cg_compute_type(c, to), "");
}

LLVMValueRef cg_convert(cg_lower *c, LLVMValueRef v, ir_dtype from, ir_dtype to) {
  LLVMTypeRef ft = cg_compute_type(c, from), tt = cg_compute_type(c, to);
  LLVMBuilderRef B = c->b;
  if (to == IR_BOOL) {
    if (from == IR_BOOL) return v;
    if (ir_dtype_is_float(from)) return LLVMBuildFCmp(B, LLVMRealUNE, v, LLVMConstReal(ft, 0), "");
    return LLVMBuildICmp(B, LLVMIntNE, v, LLVMConstInt(ft, 0, 0), "");
  }
  if (from == IR_BOOL)
    return ir_dtype_is_float(to) ? LLVMBuildUIToFP(B, v, tt, "") : LLVMBuildZExt(B, v, tt, "");
  if (ir_dtype_is_float(from) && ir_dtype_is_float(to)) {
    if (ft == tt) return v;
    return ft == c->f32 ? LLVMBuildFPExt(B, v, tt, "") : LLVMBuildFPTrunc(B, v, tt, "");
  }
  if (ir_dtype_is_float(from)) return float_to_int(c, v, ft, to);
  if (ir_dtype_is_float(to)) return LLVMBuildSIToFP(B, v, tt, "");
  if (ft == tt) return v;
  if (tt == c->i64) return LLVMBuildSExt(B, v, tt, "");
  LLVMValueRef narrow = LLVMBuildTrunc(B, v, tt, "");
  cg_check(c, LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildSExt(B, narrow, ft, ""), v, ""), CG_CAST_RANGE);
  return narrow;
}

void cg_copy(cg_lower *c, const cg_buf *dst, const cg_buf *src) {
  IR_ASSERT(dst->type.dtype == src->type.dtype);
  LLVMValueRef bytes = cg_bytes(c, src->type.dtype, cg_numel(c, src));
  LLVMBuildMemCpy(c->b, dst->ptr, 1, src->ptr, 1, bytes);
}

LLVMBasicBlockRef cg_begin_entry(cg_lower *c, LLVMValueRef fn) {
  c->fn = fn;
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(c->ctx, fn, "start");
  LLVMPositionBuilderAtEnd(c->b, c->entry);
  c->status = LLVMBuildAlloca(c->b, c->i32, "status");
  c->sp = LLVMBuildAlloca(c->b, c->i64, "sp");
  LLVMBuildStore(c->b, cg_i64(c, 0), c->sp);
  c->overflow = LLVMBuildAlloca(c->b, c->i1, "overflow");
  LLVMBuildStore(c->b, LLVMConstInt(c->i1, 0, 0), c->overflow);
  return start;
}

/* ---- control flow ------------------------------------------------------------ */

cg_loop cg_for_begin(cg_lower *c, LLVMValueRef n, const char *name) {
  cg_loop l = {0};
  l.pre = LLVMGetInsertBlock(c->b);
  l.header = LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
  l.body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
  l.exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exit");
  LLVMBuildBr(c->b, l.header);
  LLVMPositionBuilderAtEnd(c->b, l.header);
  l.iv = LLVMBuildPhi(c->b, c->i64, name);
  LLVMValueRef zero = cg_i64(c, 0);
  LLVMAddIncoming(l.iv, &zero, &l.pre, 1);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, l.iv, n, ""), l.body, l.exit);
  LLVMPositionBuilderAtEnd(c->b, l.body);
  return l;
}

void cg_for_end(cg_lower *c, cg_loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMValueRef next = LLVMBuildAdd(c->b, l->iv, cg_i64(c, 1), "");
  LLVMBuildBr(c->b, l->header);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(c->b, l->exit);
}

cg_nest cg_nest_begin(cg_lower *c, int32_t rank, LLVMValueRef const *dims) {
  cg_nest n = {rank, NULL, NULL};
  n.loops = ir_xcalloc((size_t)rank + 1, sizeof(cg_loop));
  n.ivs = ir_xcalloc((size_t)rank + 1, sizeof(LLVMValueRef));
  for (int32_t i = 0; i < rank; i++) {
    n.loops[i] = cg_for_begin(c, dims[i], "i");
    n.ivs[i] = n.loops[i].iv;
  }
  return n;
}

void cg_nest_end(cg_lower *c, cg_nest *n) {
  for (int32_t i = n->rank - 1; i >= 0; i--) cg_for_end(c, &n->loops[i]);
  free(n->loops);
  free(n->ivs);
  n->loops = NULL;
  n->ivs = NULL;
}

void cg_check(cg_lower *c, LLVMValueRef ok, cg_status code) {
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "check.fail");
  LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "check.ok");
  LLVMBuildCondBr(c->b, ok, good, bad);
  LLVMPositionBuilderAtEnd(c->b, bad);
  int64_t status = (int64_t)code + (int64_t)CG_STATUS_OP_SCALE * (c->current + 1);
  if (status > INT32_MAX) status = code; /* an op id too large to report */
  LLVMBuildStore(c->b, cg_i32(c, (int32_t)status), c->status);
  LLVMBuildBr(c->b, c->fail);
  LLVMPositionBuilderAtEnd(c->b, good);
}

void cg_check_dim_eq(cg_lower *c, ir_dim a, ir_dim b) {
  if (a == b || c->measuring) return;
  cg_check(c, LLVMBuildICmp(c->b, LLVMIntEQ, cg_dim(c, a), cg_dim(c, b), ""), CG_DIM_MISMATCH);
}

/* No fast-math flags at all: an implicit `contract` lets LLVM fuse a
 * multiply-add in one loop shape and not in another (a vectorized body and
 * its scalar remainder), so the same element could round differently in
 * forward and in step. Fusion is explicit instead (cg_fmuladd). */
LLVMValueRef cg_fp(cg_lower *c, LLVMValueRef inst) {
  (void)c;
  return inst;
}

LLVMValueRef cg_fmuladd(cg_lower *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  if (!c->contract) return cg_fadd(c, acc, cg_fmul(c, a, b));
  LLVMValueRef args[3] = {a, b, acc};
  return cg_intrinsic(c, "llvm.fmuladd", LLVMTypeOf(a), 3, args);
}

LLVMValueRef cg_intrinsic(cg_lower *c, const char *name, LLVMTypeRef overload, int n,
                          LLVMValueRef *args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  IR_ASSERT(id != 0);
  LLVMTypeRef params[1] = {overload};
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, params, overload ? 1 : 0);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, params, overload ? 1 : 0);
  return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)n, "");
}

LLVMValueRef cg_splat(cg_lower *c, int32_t n, LLVMValueRef x) {
  LLVMValueRef one = LLVMBuildInsertElement(c->b, LLVMGetUndef(LLVMVectorType(LLVMTypeOf(x), (unsigned)n)), x,
                                            cg_i32(c, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(c->i32, (unsigned)n));
  return LLVMBuildShuffleVector(c->b, one, LLVMGetUndef(LLVMTypeOf(one)), zeros, "splat");
}

/* A call to the masked load or store intrinsic, overloaded on the vector
 * type and the pointer type. */
static LLVMValueRef masked_call(cg_lower *c, const char *name, LLVMTypeRef vt, LLVMValueRef *args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  IR_ASSERT(id != 0);
  LLVMTypeRef types[2] = {vt, c->ptr};
  return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, types, 2), LLVMGetIntrinsicDeclaration(c->mod, id, types, 2),
                        args, 4, "");
}

LLVMValueRef cg_masked_load(cg_lower *c, LLVMTypeRef vt, LLVMValueRef ptr, unsigned align, LLVMValueRef mask,
                            LLVMValueRef passthru) {
  LLVMValueRef args[4] = {ptr, cg_i32(c, (int32_t)align), mask, passthru};
  return masked_call(c, "llvm.masked.load", vt, args);
}

void cg_masked_store(cg_lower *c, LLVMValueRef val, LLVMValueRef ptr, unsigned align, LLVMValueRef mask) {
  LLVMValueRef args[4] = {val, ptr, cg_i32(c, (int32_t)align), mask};
  masked_call(c, "llvm.masked.store", LLVMTypeOf(val), args);
}

/* ---- walking ----------------------------------------------------------------- */

static const cg_lower_fn lowerings[IR_OP_COUNT] = {
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  [IR_OP_##id] = lower_##eval,
#include "../ir/ops.def"
};

/* Position of v in the init region's yield, or -1. */
static int32_t init_yield_index(const cg_lower *c, ir_val v) {
  const ir_op *y = ir_o(c->g, ir_block_terminator(c->g, c->init_region));
  for (int32_t k = 0; k < y->n_in; k++)
    if (y->in[k] == v) return k;
  return -1;
}

bool cg_init_yield_in_place(const cg_lower *c, ir_val v, int32_t k) {
  ir_opid def = ir_v(c->g, v)->def;
  if (c->init_region == IR_NONE || def == IR_NONE || ir_o(c->g, def)->block != c->init_region) return false;
  ir_opkind kind = ir_o(c->g, def)->kind;
  return kind != IR_OP_RESHAPE && kind != IR_OP_INIT && init_yield_index(c, v) == k;
}

/* Results of an op of NAME_init's region that the region yields go
 * straight into the caller's hoisted buffers: no scratch for them and no
 * copy (the packed weights would otherwise take their whole size twice at
 * open). Those buffers are 64-byte aligned like scratch, and like any
 * buffer none is written after the op that makes it. */
static void alloc_init_results(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  for (int32_t i = 0; i < o->n_out; i++) {
    cg_buf *b = &c->bufs[o->out[i]];
    int32_t k = init_yield_index(c, o->out[i]);
    if (k < 0) {
      cg_alloc_buf(c, b, ir_vtype(c->g, o->out[i]));
      continue;
    }
    LLVMValueRef ptr = LLVMConstPointerNull(c->ptr);
    if (c->init_outs) {
      LLVMValueRef slot = LLVMBuildGEP2(c->b, c->ptr, c->init_outs, (LLVMValueRef[]){cg_i64(c, k)}, 1, "");
      ptr = LLVMBuildLoad2(c->b, c->ptr, slot, "hoisted");
    }
    cg_view_buf(c, b, ir_vtype(c->g, o->out[i]), ptr);
  }
}

/* The scratch op uses while it runs (cg_temp_type), if any: a slot of the
 * plan, taken by other ops' temps and values once op is done, or a buffer
 * of its own. */
static void place_temp(cg_lower *c, ir_opid op, cg_memplan *plan) {
  ir_type t;
  if (!cg_temp_type(c, op, &t)) return;
  if (plan) {
    c->op_temp[op] = cg_memplan_alloc_temp(c, plan, op, t);
    return;
  }
  cg_buf buf;
  cg_alloc_buf(c, &buf, t);
  c->op_temp[op] = buf.ptr;
}

/* Buffers for op's results: init's live in the caller's buffers
 * (lower_init), so do the values NAME_init yields, a reshape's in its
 * operand's, so does a transpose's that only GEMMs read, the others in
 * scratch, reused from dead values under a memory plan; and a scan's
 * chunk buffers (lower_scan.c). */
static void place_results(cg_lower *c, ir_blockid b, ir_opid op, cg_memplan *plan) {
  ir_opkind k = ir_o(c->g, op)->kind;
  if (k == IR_OP_RESHAPE)
    alias_reshape(c, op);
  else if (k == IR_OP_TRANSPOSE && cg_transpose_in_place(c->g, op))
    alias_transpose(c, op);
  else if (k != IR_OP_INIT && plan)
    cg_memplan_alloc_results(c, plan, op);
  else if (k != IR_OP_INIT && b == c->init_region)
    alloc_init_results(c, op);
  else if (k != IR_OP_INIT)
    cg_alloc_results(c, op);
  place_temp(c, op, plan);
  if (k == IR_OP_SCAN) cg_chunk_place(c, op);
}

static bool lower_op(cg_lower *c, ir_blockid b, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  if (c->measuring && o->n_regions == 0) return true;
  ir_opid outer = c->current;
  c->current = op;
  bool top = b == c->g->body && !c->measuring && o->kind != IR_OP_INIT;
  if (top) cg_kernel_begin(c, op);
  bool split = false;
  bool ok = !top || cg_lower_split(c, op, lowerings[o->kind], &split);
  if (ok && !split) ok = lowerings[o->kind](c, op);
  if (ok && top) cg_kernel_end(c, op);
  c->current = outer;
  return ok;
}

/* The last scan of op's concurrent group in the graph body (docs/ir.md),
 * op itself when it starts none. */
static ir_opid group_end(const cg_lower *c, ir_blockid b, ir_opid op) {
  int64_t k = b == c->g->body ? ir_concurrent_group(c->g, op) : 0;
  while (k > 0 && ir_o(c->g, op)->next != IR_NONE && ir_concurrent_group(c->g, ir_o(c->g, op)->next) == k)
    op = ir_o(c->g, op)->next;
  return op;
}

/* Ops first..last: one op, or a concurrent group, which NAME_run runs as
 * one task per scan (cg_lower_concurrent) and every other walk scan by
 * scan. */
static bool lower_ops(cg_lower *c, ir_blockid b, ir_opid first, ir_opid last) {
  if (first != last && !c->measuring && c->split) {
    ir_opid outer = c->current;
    c->current = first;
    cg_kernel_begin(c, first);
    bool ok = cg_lower_concurrent(c, first, last);
    if (ok) cg_kernel_end(c, first);
    c->current = outer;
    return ok;
  }
  bool ok = true;
  for (ir_opid op = first; ok; op = ir_o(c->g, op)->next) {
    ok = lower_op(c, b, op);
    if (op == last) break;
  }
  return ok;
}

bool cg_lower_op(cg_lower *c, ir_opid op) {
  ir_opid outer = c->current;
  c->current = op;
  bool ok = lowerings[ir_o(c->g, op)->kind](c, op);
  c->current = outer;
  return ok;
}

/* Whether op is computed chunk by chunk by a later scan (lower_scan.c):
 * it has no buffers of its own and is not lowered where it stands. */
static bool deferred(const cg_lower *c, ir_blockid b, ir_opid op) {
  return b == c->g->body && c->deferred && c->deferred[op] != IR_NONE;
}

bool cg_lower_block(cg_lower *c, ir_blockid b) {
  /* The chunk plan is made once per walk of the body, before the memory
   * plan, whose liveness depends on it. */
  bool planning = b == c->g->body && !c->deferred;
  if (planning) c->deferred = cg_chunk_plan(c->g);
  cg_memplan *plan = b == c->g->body && c->g->plan_memory ? cg_memplan_new(c) : NULL;
  cg_memplan *outer_plan = c->memplan;
  if (b == c->g->body) c->memplan = plan;
  bool ok = true;
  for (ir_opid op = ir_b(c->g, b)->first; ok && op != IR_NONE; op = ir_o(c->g, op)->next) {
    if (ir_opinfo_of(ir_o(c->g, op)->kind)->flags & IR_TERMINATOR) continue; /* the block's owner copies */
    if (deferred(c, b, op)) continue;
    /* A group's results are all placed before any of it runs, in every
     * walk, so NAME_scratch_bytes sees the layout NAME_run uses. */
    ir_opid last = group_end(c, b, op);
    for (ir_opid m = op;; m = ir_o(c->g, m)->next) {
      place_results(c, b, m, plan);
      if (m == last) break;
    }
    ok = lower_ops(c, b, op, last);
    for (ir_opid m = op; plan; m = ir_o(c->g, m)->next) {
      cg_memplan_release(c, plan, m);
      if (m == last) break;
    }
    op = last;
  }
  c->memplan = outer_plan;
  cg_memplan_free(plan);
  if (planning) {
    free(c->deferred);
    c->deferred = NULL;
  }
  return ok;
}

bool lower_yield(cg_lower *c, ir_opid op) {
  (void)c;
  (void)op;
  return true; /* terminators are handled by the owner of their block */
}

/* The init op's results were computed once by NAME_init (module.c) into
 * buffers the caller keeps: NAME_run finds them in its argument array after
 * the graph's own arguments, in result order. The measuring walk of
 * NAME_scratch_bytes only needs their dims. */
bool lower_init(cg_lower *c, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  int32_t first = ir_b(c->g, c->g->body)->n_args;
  for (int32_t i = 0; i < o->n_out; i++) {
    cg_buf *b = &c->bufs[o->out[i]];
    set_buf_dims(c, b, ir_vtype(c->g, o->out[i]));
    if (!c->args) {
      b->ptr = LLVMConstPointerNull(c->ptr);
      continue;
    }
    LLVMValueRef slot = LLVMBuildGEP2(c->b, c->ptr, c->args, (LLVMValueRef[]){cg_i64(c, first + i)}, 1, "");
    b->ptr = LLVMBuildLoad2(c->b, c->ptr, slot, "hoisted");
  }
  return true;
}
