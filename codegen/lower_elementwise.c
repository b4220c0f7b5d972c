/*
 * lower_elementwise.c - elementwise ops (unary, binary, compare, select,
 * cast), constants and iota as loop nests over the result.
 *
 * One loop shape serves every elementwise op: when every operand has the
 * result's dims (the common case) a single flat loop runs over all
 * elements; otherwise a nest runs over the result's dims, innermost last,
 * and each operand is indexed with numpy broadcasting (a dim declared as
 * the constant 1 is read at index 0; any other dim must equal the result's,
 * checked at run time where the two dims differ structurally). Either way
 * the innermost loop walks contiguous memory, so LLVM's loop vectorizer
 * can vectorize it; the f32 transcendental functions it calls are
 * branch-free and always inlined for the same reason (vmath.c).
 *
 * Semantics are the interpreter's (ir/interp.c), which computes in double
 * and rounds once per result. Where computing in the compute type gives the
 * same bits (+ - * / sqrt, comparisons, max/min, casts) that is what is
 * emitted; rsqrt and pow of f32 are computed in double for the same
 * reason. Transcendental f32 functions differ by the few ulp documented in
 * docs/numerics.md. Integer add/sub/mul/neg/abs wrap on overflow where the
 * interpreter reports an error (checking would cost vectorization);
 * integer division checks for zero and INT_MIN / -1.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "vmath.h"

/* ---- broadcasting ------------------------------------------------------------- */

void cg_broadcast_check(cg_lower *c, ir_type operand, ir_type result) {
  IR_ASSERT(operand.rank <= result.rank);
  int32_t off = result.rank - operand.rank;
  for (int32_t i = 0; i < operand.rank; i++)
    if (!ir_dim_is_one(c->g->dims, operand.dims[i])) cg_check_dim_eq(c, operand.dims[i], result.dims[off + i]);
}

LLVMValueRef cg_broadcast_linear(cg_lower *c, const cg_buf *operand, int32_t result_rank,
                                 LLVMValueRef const *ivs) {
  int32_t off = result_rank - operand->type.rank;
  IR_ASSERT(off >= 0);
  LLVMValueRef lin = cg_i64(c, 0);
  for (int32_t i = 0; i < operand->type.rank; i++) {
    if (ir_dim_is_one(c->g->dims, operand->type.dims[i])) continue; /* index 0 of a dim of 1 */
    lin = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lin, operand->dims[i], ""), ivs[off + i], "");
  }
  return lin;
}

/* ---- conversions ------------------------------------------------------------------ */

/* The float nearest to double d, except that an inexact result gets its
 * last bit set (round to odd): rounding that float again to f16 or bf16
 * then gives the correctly rounded result, where rounding to nearest twice
 * could be off by one at ties. */
static LLVMValueRef f64_to_f32_odd(cg_lower *c, LLVMValueRef d) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef f = LLVMBuildFPTrunc(B, d, c->f32, "");
  LLVMValueRef back = LLVMBuildFPExt(B, f, c->f64, "");
  LLVMValueRef inexact = LLVMBuildFCmp(B, LLVMRealONE, back, d, "");
  LLVMValueRef fabs_back = cg_intrinsic(c, "llvm.fabs", c->f64, 1, &back);
  LLVMValueRef fabs_d = cg_intrinsic(c, "llvm.fabs", c->f64, 1, &d);
  LLVMValueRef away = LLVMBuildFCmp(B, LLVMRealOGT, fabs_back, fabs_d, "");
  LLVMValueRef u = LLVMBuildBitCast(B, f, c->i32, "");
  u = LLVMBuildSub(B, u, LLVMBuildZExt(B, away, c->i32, ""), "");
  u = LLVMBuildOr(B, u, LLVMBuildZExt(B, inexact, c->i32, ""), "");
  return LLVMBuildBitCast(B, u, c->f32, "");
}

static bool is_half(ir_dtype dt) { return dt == IR_F16 || dt == IR_BF16; }

LLVMValueRef cg_cast_value(cg_lower *c, LLVMValueRef v, ir_dtype from, ir_dtype to) {
  if (is_half(to) && (from == IR_F64 || from == IR_I32 || from == IR_I64)) {
    /* Integers below 2^53 (all the interpreter accepts) are exact in double. */
    LLVMValueRef d = from == IR_F64 ? v : LLVMBuildSIToFP(c->b, v, c->f64, "");
    return f64_to_f32_odd(c, d);
  }
  return cg_convert(c, v, from, to);
}

/* ---- the elementwise loop -------------------------------------------------------- */

typedef LLVMValueRef (*elem_fn)(cg_lower *c, ir_opid op, const LLVMValueRef *x);

enum { MAX_OPERANDS = 3 };

/* result[i] = f(operands at i), every operand converted to its compute type
 * on load and the result converted to storage on store. */
static bool elementwise_loop(cg_lower *c, ir_opid op, elem_fn f) {
  int32_t n = ir_o(c->g, op)->n_in;
  IR_ASSERT(n >= 1 && n <= MAX_OPERANDS);
  const cg_buf *res = cg_result(c, op, 0);
  const cg_buf *in[MAX_OPERANDS];
  bool flat = true;
  for (int32_t k = 0; k < n; k++) {
    in[k] = cg_operand(c, op, k);
    cg_broadcast_check(c, in[k]->type, res->type);
    flat = flat && ir_dims_equal(in[k]->type, res->type);
  }
  LLVMValueRef x[MAX_OPERANDS];
  if (flat) {
    cg_loop l = cg_for_begin(c, cg_numel(c, res), "e");
    for (int32_t k = 0; k < n; k++) x[k] = cg_load(c, in[k], l.iv);
    cg_store(c, res, l.iv, f(c, op, x));
    cg_for_end(c, &l);
    return true;
  }
  cg_nest nest = cg_nest_begin(c, res->type.rank, res->dims);
  for (int32_t k = 0; k < n; k++)
    x[k] = cg_load(c, in[k], cg_broadcast_linear(c, in[k], res->type.rank, nest.ivs));
  cg_store(c, res, cg_linear(c, res, nest.ivs), f(c, op, x));
  cg_nest_end(c, &nest);
  return true;
}

static ir_dtype operand_dtype(cg_lower *c, ir_opid op, int32_t i) {
  return ir_vtype(c->g, ir_o(c->g, op)->in[i]).dtype;
}
static ir_dtype result_dtype(cg_lower *c, ir_opid op) {
  return ir_vtype(c->g, ir_o(c->g, op)->out[0]).dtype;
}
static ir_opkind kind_of(cg_lower *c, ir_opid op) { return ir_o(c->g, op)->kind; }

/* ---- unary ------------------------------------------------------------------------- */

static LLVMValueRef fp(cg_lower *c, LLVMValueRef inst) { return cg_fp(c, inst); }

/* A vmath function in the compute type of dt. */
static LLVMValueRef vm(cg_lower *c, ir_dtype dt, cg_vm_fn f, LLVMValueRef x) {
  return dt == IR_F64 ? cg_vm_f64(c, f, x) : cg_vm_f32(c, f, x);
}

/* 1/sqrt(x) in double, rounded once to the compute type, as the
 * interpreter computes it. */
static LLVMValueRef rsqrt_of(cg_lower *c, ir_dtype dt, LLVMValueRef x) {
  LLVMValueRef d = dt == IR_F64 ? x : LLVMBuildFPExt(c->b, x, c->f64, "");
  LLVMValueRef s = cg_intrinsic(c, "llvm.sqrt", c->f64, 1, &d);
  LLVMValueRef r = fp(c, LLVMBuildFDiv(c->b, LLVMConstReal(c->f64, 1), s, ""));
  return dt == IR_F64 ? r : LLVMBuildFPTrunc(c->b, r, c->f32, "");
}

static LLVMValueRef int_unary(cg_lower *c, ir_opkind k, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef neg = LLVMBuildSub(c->b, LLVMConstInt(t, 0, 0), x, "");
  if (k == IR_OP_NEG) return neg;
  IR_ASSERT(k == IR_OP_ABS);
  return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, x, LLVMConstInt(t, 0, 0), ""), neg, x, "");
}

static LLVMValueRef float_unary(cg_lower *c, ir_opid op, ir_dtype dt, LLVMValueRef x) {
  LLVMBuilderRef B = c->b;
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef zero = LLVMConstReal(t, 0);
  switch (kind_of(c, op)) {
  case IR_OP_NEG: return LLVMBuildFNeg(B, x, "");
  case IR_OP_ABS: return cg_intrinsic(c, "llvm.fabs", t, 1, &x);
  case IR_OP_EXP: return vm(c, dt, CG_VM_EXP, x);
  case IR_OP_LOG: return vm(c, dt, CG_VM_LOG, x);
  case IR_OP_SQRT: return cg_intrinsic(c, "llvm.sqrt", t, 1, &x);
  case IR_OP_RSQRT: return rsqrt_of(c, dt, x);
  case IR_OP_TANH: return vm(c, dt, CG_VM_TANH, x);
  case IR_OP_SIGMOID: return vm(c, dt, CG_VM_SIGMOID, x);
  case IR_OP_RELU: /* x when x > 0 or NaN, else +0 */
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealUGT, x, zero, ""), x, zero, "");
  case IR_OP_GELU: {
    bool tanh_form = ir_get_int(c->g, op, "approximate") == IR_GELU_TANH;
    return vm(c, dt, tanh_form ? CG_VM_GELU_TANH : CG_VM_GELU, x);
  }
  case IR_OP_ERF: return vm(c, dt, CG_VM_ERF, x);
  case IR_OP_SILU: return vm(c, dt, CG_VM_SILU, x);
  case IR_OP_SOFTPLUS: return vm(c, dt, CG_VM_SOFTPLUS, x);
  case IR_OP_ELU: {
    LLVMValueRef alpha = LLVMConstReal(t, ir_get_float(c->g, op, "alpha"));
    LLVMValueRef neg = fp(c, LLVMBuildFMul(B, alpha, vm(c, dt, CG_VM_EXPM1, x), ""));
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, x, zero, ""), x, neg, "");
  }
  case IR_OP_SIN: return vm(c, dt, CG_VM_SIN, x);
  case IR_OP_COS: return vm(c, dt, CG_VM_COS, x);
  default: break;
  }
  IR_ASSERT(!"not a float unary op");
  return NULL;
}

static LLVMValueRef unary_elem(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  ir_dtype dt = operand_dtype(c, op, 0);
  ir_opkind k = kind_of(c, op);
  if (k == IR_OP_NOT) return LLVMBuildNot(c->b, x[0], "");
  if (ir_dtype_is_int(dt)) return int_unary(c, k, x[0]);
  return fp(c, float_unary(c, op, dt, x[0]));
}

bool lower_unary(cg_lower *c, ir_opid op) { return elementwise_loop(c, op, unary_elem); }

/* ---- binary ------------------------------------------------------------------------ */

/* max/min with the interpreter's NaN rule: NaN if either is (a + b gives
 * it), otherwise a if a > b (max) / a < b (min), else b. */
static LLVMValueRef float_extremum(cg_lower *c, bool is_max, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef pick = LLVMBuildFCmp(B, is_max ? LLVMRealOGT : LLVMRealOLT, a, b, "");
  LLVMValueRef r = LLVMBuildSelect(B, pick, a, b, "");
  LLVMValueRef nan = LLVMBuildFCmp(B, LLVMRealUNO, a, b, "");
  return LLVMBuildSelect(B, nan, fp(c, LLVMBuildFAdd(B, a, b, "")), r, "");
}

static LLVMValueRef float_binary(cg_lower *c, ir_opkind k, ir_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = c->b;
  switch (k) {
  case IR_OP_ADD: return fp(c, LLVMBuildFAdd(B, a, b, ""));
  case IR_OP_SUB: return fp(c, LLVMBuildFSub(B, a, b, ""));
  case IR_OP_MUL: return fp(c, LLVMBuildFMul(B, a, b, ""));
  case IR_OP_DIV: return fp(c, LLVMBuildFDiv(B, a, b, ""));
  case IR_OP_MAX: return float_extremum(c, true, a, b);
  case IR_OP_MIN: return float_extremum(c, false, a, b);
  case IR_OP_POW: {
    /* libm's pow in double, rounded once, as the interpreter does it. */
    if (dt == IR_F64) return cg_libm_call(c, "pow", 2, (LLVMValueRef[]){a, b});
    LLVMValueRef args[2] = {LLVMBuildFPExt(B, a, c->f64, ""), LLVMBuildFPExt(B, b, c->f64, "")};
    return LLVMBuildFPTrunc(B, cg_libm_call(c, "pow", 2, args), c->f32, "");
  }
  default: break;
  }
  IR_ASSERT(!"not a float binary op");
  return NULL;
}

/* Truncating division; a zero divisor and INT_MIN / -1 fail the run. */
static LLVMValueRef int_div(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = c->b;
  LLVMTypeRef t = LLVMTypeOf(a);
  unsigned width = LLVMGetIntTypeWidth(t);
  LLVMValueRef min = LLVMConstInt(t, 1ull << (width - 1), 0);
  LLVMValueRef nonzero = LLVMBuildICmp(B, LLVMIntNE, b, LLVMConstInt(t, 0, 0), "");
  LLVMValueRef overflow = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntEQ, a, min, ""),
                                       LLVMBuildICmp(B, LLVMIntEQ, b, LLVMConstAllOnes(t), ""), "");
  cg_check(c, LLVMBuildAnd(B, nonzero, LLVMBuildNot(B, overflow, ""), ""), CG_INT_DIV_ZERO);
  return LLVMBuildSDiv(B, a, b, "");
}

static LLVMValueRef int_binary(cg_lower *c, ir_opkind k, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = c->b;
  switch (k) {
  case IR_OP_ADD: return LLVMBuildAdd(B, a, b, "");
  case IR_OP_SUB: return LLVMBuildSub(B, a, b, "");
  case IR_OP_MUL: return LLVMBuildMul(B, a, b, "");
  case IR_OP_DIV: return int_div(c, a, b);
  case IR_OP_MAX: return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, a, b, ""), a, b, "");
  case IR_OP_MIN: return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, b, ""), a, b, "");
  case IR_OP_AND: return LLVMBuildAnd(B, a, b, "");
  case IR_OP_OR: return LLVMBuildOr(B, a, b, "");
  default: break;
  }
  IR_ASSERT(!"not an integer or bool binary op");
  return NULL;
}

static LLVMValueRef binary_elem(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  ir_dtype dt = operand_dtype(c, op, 0);
  ir_opkind k = kind_of(c, op);
  if (ir_dtype_is_float(dt)) return float_binary(c, k, dt, x[0], x[1]);
  return int_binary(c, k, x[0], x[1]);
}

bool lower_binary(cg_lower *c, ir_opid op) { return elementwise_loop(c, op, binary_elem); }

/* ---- compare, select, cast ------------------------------------------------------------ */

/* Ordered float predicates (false with NaN) except ne, which is true. */
static LLVMValueRef compare_elem(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  static const LLVMRealPredicate fpred[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                            LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
  static const LLVMIntPredicate spred[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
  static const LLVMIntPredicate upred[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
  int64_t p = ir_get_int(c->g, op, "predicate");
  IR_ASSERT(p >= IR_CMP_EQ && p <= IR_CMP_GE);
  ir_dtype dt = operand_dtype(c, op, 0);
  if (ir_dtype_is_float(dt)) return LLVMBuildFCmp(c->b, fpred[p], x[0], x[1], "");
  /* bool is 0 < 1, as the interpreter's doubles are */
  return LLVMBuildICmp(c->b, dt == IR_BOOL ? upred[p] : spred[p], x[0], x[1], "");
}

bool lower_compare(cg_lower *c, ir_opid op) { return elementwise_loop(c, op, compare_elem); }

static LLVMValueRef select_elem(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  return LLVMBuildSelect(c->b, x[0], x[1], x[2], "");
}

bool lower_select(cg_lower *c, ir_opid op) { return elementwise_loop(c, op, select_elem); }

static LLVMValueRef cast_elem(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  return cg_cast_value(c, x[0], operand_dtype(c, op, 0), result_dtype(c, op));
}

bool lower_cast(cg_lower *c, ir_opid op) { return elementwise_loop(c, op, cast_elem); }

/* ---- one element of any elementwise op (kernel groups, lower_fused.c) ----------- */

LLVMValueRef cg_elementwise_value(cg_lower *c, ir_opid op, const LLVMValueRef *x) {
  const ir_op *o = ir_o(c->g, op);
  IR_ASSERT(ir_opinfo_of(o->kind)->flags & IR_ELEMENTWISE);
  switch (o->kind) {
  case IR_OP_COMPARE: return compare_elem(c, op, x);
  case IR_OP_SELECT: return select_elem(c, op, x);
  case IR_OP_CAST: return cast_elem(c, op, x);
  default: return o->n_in == 1 ? unary_elem(c, op, x) : binary_elem(c, op, x);
  }
}

/* ---- constant ------------------------------------------------------------------------ */

#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53, the interpreter's integer range */

/* f16 bits of a double already rounded to f16 (exact from here on). */
static uint16_t f16_bits(double r) {
  uint16_t sign = signbit(r) ? 0x8000 : 0;
  double a = fabs(r);
  if (isnan(r)) return sign | 0x7e00;
  if (isinf(a)) return sign | 0x7c00;
  if (a < 0x1p-14) return sign | (uint16_t)(a * 0x1p24);
  int e;
  double m = frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
  return sign | (uint16_t)((e + 14) << 10) | (uint16_t)((m * 2 - 1) * 1024);
}

static uint16_t bf16_bits(double r) {
  if (isnan(r)) return signbit(r) ? 0xffc0 : 0x7fc0;
  float f = (float)r; /* exact: r is a bf16 value */
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (uint16_t)(u >> 16);
}

/* Storage bits of element k of a constant of dtype dt, as the interpreter
 * would store it; false with a diagnostic for values it would reject. */
static bool constant_bits(cg_lower *c, ir_opid op, const ir_tensor_data *d, int64_t k, ir_dtype dt,
                          uint64_t *out) {
  bool use_f = d->f && (ir_dtype_is_float(dt) || !d->i);
  double v;
  if (use_f) {
    v = d->f[k];
  } else {
    if (!(d->i[k] > -(int64_t)EXACT_INT_LIMIT && d->i[k] < (int64_t)EXACT_INT_LIMIT)) {
      ir_error_at(c->diag, ir_o(c->g, op)->loc, "constant value %lld is outside the exact integer range",
                  (long long)d->i[k]);
      return false;
    }
    v = (double)d->i[k];
  }
  if (ir_dtype_is_int(dt)) {
    double t = trunc(v);
    if (isnan(v) || !(fabs(t) < EXACT_INT_LIMIT) || (dt == IR_I32 && (t < INT32_MIN || t > INT32_MAX))) {
      ir_error_at(c->diag, ir_o(c->g, op)->loc, "constant value %g does not fit in %s", v, ir_dtype_name(dt));
      return false;
    }
    *out = (uint64_t)(int64_t)t;
    if (dt == IR_I32) *out &= 0xffffffffu;
    return true;
  }
  double r = ir_round_to_dtype(dt, v);
  switch (dt) {
  case IR_F64: memcpy(out, &r, sizeof r); return true;
  case IR_F32: {
    float f = (float)r; /* r is a float value (or inf/NaN) */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    *out = u;
    return true;
  }
  case IR_F16: *out = f16_bits(r); return true;
  case IR_BF16: *out = bf16_bits(r); return true;
  case IR_BOOL: *out = r != 0; return true;
  default: break;
  }
  IR_ASSERT(!"bad constant dtype");
  return false;
}

/* Every element as an integer of the storage width: memory holds the same
 * bytes either way, and a splat loop of integers becomes a memset or a
 * vector store. */
static LLVMTypeRef bits_type(cg_lower *c, ir_dtype dt) {
  return LLVMIntTypeInContext(c->ctx, (unsigned)ir_dtype_size(dt) * 8);
}

static void fill(cg_lower *c, const cg_buf *res, uint64_t value) {
  LLVMTypeRef t = bits_type(c, res->type.dtype);
  cg_loop l = cg_for_begin(c, cg_numel(c, res), "fill");
  LLVMValueRef p = LLVMBuildGEP2(c->b, t, res->ptr, &l.iv, 1, "");
  LLVMBuildStore(c->b, LLVMConstInt(t, value, 0), p);
  cg_for_end(c, &l);
}

/* The data as a private constant global of little-endian bytes (seqc
 * targets x86-64 and AArch64, both little-endian), copied into the result. */
static bool copy_data(cg_lower *c, ir_opid op, const cg_buf *res, const ir_tensor_data *d) {
  ir_dtype dt = res->type.dtype;
  size_t size = ir_dtype_size(dt), n = (size_t)d->n;
  unsigned char *bytes = ir_xcalloc(n * size + 1, 1);
  for (size_t k = 0; k < n; k++) {
    uint64_t b;
    if (!constant_bits(c, op, d, (int64_t)k, dt, &b)) {
      free(bytes);
      return false;
    }
    for (size_t j = 0; j < size; j++) bytes[k * size + j] = (unsigned char)(b >> (8 * j));
  }
  LLVMValueRef init = LLVMConstStringInContext2(c->ctx, (const char *)bytes, n * size, 1);
  free(bytes);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "seqc.const");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(g, 16);
  LLVMBuildMemCpy(c->b, res->ptr, 1, g, 16, cg_i64(c, (int64_t)(n * size)));
  return true;
}

bool lower_constant(cg_lower *c, ir_opid op) {
  const ir_attr *a = ir_get_attr(c->g, op, "value");
  const ir_tensor_data *d = a->present ? a->u.t : NULL;
  ir_loc loc = ir_o(c->g, op)->loc;
  if (!d || (d->n > 0 && !d->f && !d->i)) {
    ir_error_at(c->diag, loc, "constant has no data");
    return false;
  }
  const cg_buf *res = cg_result(c, op, 0);
  if (d->n == 1) {
    uint64_t b;
    if (!constant_bits(c, op, d, 0, res->type.dtype, &b)) return false;
    fill(c, res, b);
    return true;
  }
  int64_t numel = ir_type_static_numel(c->g, res->type);
  if (numel != d->n) {
    ir_error_at(c->diag, loc, "constant has %lld values for %s elements", (long long)d->n,
                numel < 0 ? "a symbolic number of" : "a different number of");
    return false;
  }
  return copy_data(c, op, res, d);
}

/* ---- iota ------------------------------------------------------------------------------ */

bool lower_iota(cg_lower *c, ir_opid op) {
  const cg_buf *res = cg_result(c, op, 0);
  int64_t axis = ir_get_int(c->g, op, "axis");
  if (axis < 0 || axis >= res->type.rank) {
    ir_error_at(c->diag, ir_o(c->g, op)->loc, "iota axis %lld is out of range for rank %d",
                (long long)axis, res->type.rank);
    return false;
  }
  cg_nest nest = cg_nest_begin(c, res->type.rank, res->dims);
  LLVMValueRef v = cg_cast_value(c, nest.ivs[axis], IR_I64, res->type.dtype);
  cg_store(c, res, cg_linear(c, res, nest.ivs), v);
  cg_nest_end(c, &nest);
  return true;
}
