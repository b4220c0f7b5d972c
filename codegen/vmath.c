/*
 * vmath.c - vectorizable f32 transcendental functions emitted as LLVM IR,
 * and the libm-based f64 ones (vmath.h).
 *
 * Every f32 function is straight-line code: special cases (NaN, infinities,
 * zeros, overflow and underflow) are handled by clamping inputs and
 * selecting results, never by branches, so that a loop calling the
 * (always-inlined) function vectorizes. Integer tricks stand in for calls:
 * rounding to an integer adds and subtracts 1.5 * 2^23 (or 2^52 in double),
 * whose bit pattern then holds the integer; powers of two are built from
 * exponent bits. Nothing here calls libm or a compiler-rt helper. exp
 * can also be built directly on a vector (cg_vm_exp_lanes): the same
 * instructions lane by lane, hence the same bits as the scalar function
 * (on AVX-512 one vscalefps applies 2^k, rounding the same product once).
 *
 * Building blocks (comments at each say why):
 *   exp   e^x = 2^k * e^r, k = round(x / ln2), r = x - k ln2 by Cody-Waite
 *         (ln2 split so that k * LN2_HI is exact), e^r - 1 by a polynomial,
 *         2^k applied as two factors so that k from -161 to 128 works and a
 *         subnormal result is rounded once.
 *   log   x = 2^k * m with m in [sqrt(1/2), sqrt(2)), log(m) = log1p(f) with
 *         f = m - 1 by the atanh series in s = f / (2 + f) (fdlibm's form:
 *         f - f^2/2 + s (f^2/2 + R(s^2))).
 *   tanh  x + x^3 T(x^2) below 0.5625; beyond, expm1(2|x|) / (expm1(2|x|) + 2).
 *   sigmoid, silu, gelu_tanh  x / (1 + e^-v) and x e^v / (1 + e^v) with the
 *         quotient in double, rounded once (silu: v = x; gelu_tanh: v the
 *         doubled tanh argument, computed in double).
 *   erf   x * A(x^2) for |x| < 0.875; beyond, 1 - erfc(|x|) where
 *         erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a/2) (the form of
 *         Numerical Recipes' erfcc, refitted), with a^2 and P computed in
 *         double (a float's square is exact in double) so that the large
 *         exponent costs no accuracy.
 *   gelu  x Phi(x) with Phi(x) = erfc(-x/sqrt2) / 2, so that no 1 + erf(x)
 *         cancels for negative x.
 *   sin, cos in double: Cody-Waite reduction by pi/2 with a 33-bit leading
 *         part (fdlibm's __rem_pio2f medium case, exact for |x| < 2^28 pi/2),
 *         then sin/cos polynomials on [-pi/4, pi/4].
 *
 * Fused multiply-adds. At -O2 and above every polynomial's Horner steps
 * and the multiply-adds of exp's reduction (the rounding to k, Cody-Waite,
 * r + r^2 Q; expm1's 2^k em + (2^k - 1), exact either way) are cg_fmuladd,
 * one FMA each on targets that have one: 40% fewer vector instructions in
 * exp, where softmax spends most of its time. The scalar and the vector
 * exp fuse the same operations, so they still agree bit for bit; results
 * can differ from -O0's (and a target's without FMA) by the polynomials'
 * rounding, within the bounds of docs/numerics.md, measured for both. The
 * other multiply-adds (log's final sum, the outer terms of tanh, sin and
 * cos) are a multiply then an add at every level.
 *
 * Coefficients. Fitted with mpmath's chebyfit (Chebyshev interpolation,
 * within a small factor of minimax) in 40-digit arithmetic, on the
 * reduced intervals named at each table, and rounded to float (f32 tables)
 * or double (tables evaluated in double). The quoted fit error is mpmath's
 * estimate of the maximum absolute error of the polynomial before rounding
 * its coefficients. docs/numerics.md has the measured end-to-end errors.
 */
#include "vmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- instruction helpers at c->b ------------------------------------------ */

static LLVMValueRef fconst(LLVMTypeRef t, double v) { return LLVMConstReal(t, v); }
static LLVMValueRef f32k(cg_lower *c, double v) { return LLVMConstReal(c->f32, v); }
static LLVMValueRef f64k(cg_lower *c, double v) { return LLVMConstReal(c->f64, v); }
static LLVMValueRef u32k(cg_lower *c, uint32_t v) { return LLVMConstInt(c->i32, v, 0); }

static LLVMValueRef sel(cg_lower *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, cond, a, b, "");
}

/* The exp path (gen_exp and what it calls) also runs on vectors of floats
 * (cg_vm_exp_lanes): its helpers take the shape, a scalar or a vector
 * type, from their operands. `elem` (i32 or float) in that shape: */
static LLVMTypeRef shaped(LLVMTypeRef like, LLVMTypeRef elem) {
  if (LLVMGetTypeKind(like) != LLVMVectorTypeKind) return elem;
  return LLVMVectorType(elem, LLVMGetVectorSize(like));
}
static LLVMValueRef bits(cg_lower *c, LLVMValueRef f) {
  return LLVMBuildBitCast(c->b, f, shaped(LLVMTypeOf(f), c->i32), "");
}
static LLVMValueRef from_bits(cg_lower *c, LLVMValueRef i) {
  return LLVMBuildBitCast(c->b, i, shaped(LLVMTypeOf(i), c->f32), "");
}
/* v as an i32 in the shape of `like` (every lane of a vector). */
static LLVMValueRef u32_like(cg_lower *c, LLVMValueRef like, uint32_t v) {
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return u32k(c, v);
  LLVMValueRef lanes[CG_VM_MAX_LANES];
  unsigned n = LLVMGetVectorSize(t);
  IR_ASSERT(n <= CG_VM_MAX_LANES);
  for (unsigned i = 0; i < n; i++) lanes[i] = u32k(c, v);
  return LLVMConstVector(lanes, n);
}
/* v as a float in the shape of `like` (LLVMConstReal splats over vectors). */
static LLVMValueRef f32_like(LLVMValueRef like, double v) { return fconst(LLVMTypeOf(like), v); }
static LLVMValueRef widen(cg_lower *c, LLVMValueRef f) { return LLVMBuildFPExt(c->b, f, c->f64, ""); }
static LLVMValueRef narrow(cg_lower *c, LLVMValueRef d) { return LLVMBuildFPTrunc(c->b, d, c->f32, ""); }

static LLVMValueRef fabs_of(cg_lower *c, LLVMValueRef x) {
  return cg_intrinsic(c, "llvm.fabs", LLVMTypeOf(x), 1, &x);
}
static LLVMValueRef copysign_of(cg_lower *c, LLVMValueRef mag, LLVMValueRef sign) {
  LLVMValueRef args[2] = {mag, sign};
  return cg_intrinsic(c, "llvm.copysign", LLVMTypeOf(mag), 2, args);
}

/* max(x, lo); a NaN stays NaN (the compare is false). */
static LLVMValueRef at_least(cg_lower *c, LLVMValueRef x, double lo) {
  LLVMTypeRef t = LLVMTypeOf(x);
  return sel(c, cg_fcmp(c, LLVMRealOLT, x, fconst(t, lo)), fconst(t, lo), x);
}

/* x clamped to [lo, hi]; a NaN stays NaN (both compares are false). */
static LLVMValueRef clamp(cg_lower *c, LLVMValueRef x, double lo, double hi) {
  LLVMTypeRef t = LLVMTypeOf(x);
  x = sel(c, cg_fcmp(c, LLVMRealOGT, x, fconst(t, hi)), fconst(t, hi), x);
  return at_least(c, x, lo);
}

/* coef[0] + x (coef[1] + x (...)) in x's type, each step one multiply-add
 * (fused at -O2: cg_fmuladd). */
static LLVMValueRef horner(cg_lower *c, LLVMValueRef x, const double *coef, int n) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef r = fconst(t, coef[n - 1]);
  for (int i = n - 2; i >= 0; i--) r = cg_fmuladd(c, x, r, fconst(t, coef[i]));
  return r;
}

/* ---- exp and friends ------------------------------------------------------------ */

#define ROUND_MAGIC_F 0x1.8p23 /* x + this - this rounds |x| < 2^22 to an integer */
#define ROUND_MAGIC_D 0x1.8p52
#define LOG2E_F 0x1.715476p+0
#define LN2_HI_F 0x1.62e4p-1      /* 15 significant bits: k * LN2_HI exact for |k| < 2^9 */
#define LN2_LO_F 0x1.7f7d1cp-20   /* ln2 - LN2_HI, rounded */
#define LN2_D 0x1.62e42fefa39efp-1

/* expm1(r) = r + r^2 Q(r) on |r| <= ln2/2; fit error 1.4e-9 (of Q). */
static const double EXPM1_Q[] = {0x1p-1, 0x1.555556p-3, 0x1.5554eap-5, 0x1.1110ep-7, 0x1.6d4316p-10,
                                 0x1.a124e4p-13};

/* e^x = (1 + em) 2^k. */
typedef struct exp_split {
  LLVMValueRef em; /* e^r - 1, |r| <= ln2/2 */
  LLVMValueRef k;  /* i32 */
  LLVMValueRef kf; /* k as a float */
} exp_split;

/* k and round(x/ln2) as a float, from x (|x| < 2^21). x LOG2E + magic lies
 * in [2^23, 2^24), where floats are the integers: rounded once (fused) or
 * twice, t - magic is an integer k, exactly, within 1/2 (fused) or
 * 1/2 + 2^-24 |x LOG2E| (not fused) of x LOG2E. */
static LLVMValueRef round_log2(cg_lower *c, LLVMValueRef x, LLVMValueRef *k) {
  LLVMValueRef magic = f32_like(x, ROUND_MAGIC_F);
  LLVMValueRef t = cg_fmuladd(c, x, f32_like(x, LOG2E_F), magic);
  *k = LLVMBuildSub(c->b, bits(c, t), bits(c, magic), "");
  return cg_fsub(c, t, magic);
}

static LLVMValueRef expm1_poly(cg_lower *c, LLVMValueRef r) {
  return cg_fmuladd(c, cg_fmul(c, r, r), horner(c, r, EXPM1_Q, 6), r);
}

/* Split of e^x for x already clamped to a range where k fits scale().
 * r = (x - k LN2_HI) - k LN2_LO: the first difference is exact (k LN2_HI
 * is, and x is within a factor 2 of it for k != 0), so fusing changes only
 * the second, which it rounds once instead of twice. */
static exp_split exp_reduce(cg_lower *c, LLVMValueRef x) {
  exp_split s;
  LLVMValueRef kf = round_log2(c, x, &s.k);
  LLVMValueRef r = cg_fmuladd(c, kf, f32_like(x, -LN2_LO_F), cg_fmuladd(c, kf, f32_like(x, -LN2_HI_F), x));
  s.em = expm1_poly(c, r);
  s.kf = kf;
  return s;
}

/* The same for a double argument: r is computed in double and rounded, so
 * the argument's extra bits are kept (|r| < 0.35 needs only float). */
static exp_split exp_reduce_wide(cg_lower *c, LLVMValueRef xd) {
  exp_split s;
  LLVMValueRef kf = round_log2(c, narrow(c, xd), &s.k);
  LLVMValueRef r = cg_fmuladd(c, widen(c, kf), f64k(c, -LN2_D), xd);
  s.em = expm1_poly(c, narrow(c, r));
  s.kf = kf;
  return s;
}

/* 2^k as a float for k in [-126, 127]. */
static LLVMValueRef pow2(cg_lower *c, LLVMValueRef k) {
  LLVMValueRef e = LLVMBuildAdd(c->b, k, u32_like(c, k, 127), "");
  return from_bits(c, LLVMBuildShl(c->b, e, u32_like(c, k, 23), ""));
}

/* m * 2^k for k in [-252, 254], in two exact-or-final steps: m * 2^(k/2)
 * stays normal, so only the last product rounds (once, into a subnormal or
 * to infinity when it must). */
static LLVMValueRef scale(cg_lower *c, LLVMValueRef m, LLVMValueRef k) {
  LLVMValueRef k1 = LLVMBuildAShr(c->b, k, u32_like(c, k, 1), "");
  LLVMValueRef k2 = LLVMBuildSub(c->b, k, k1, "");
  return cg_fmul(c, cg_fmul(c, m, pow2(c, k1)), pow2(c, k2));
}

/* exp(x): below -104 the result is 0, above 89 infinity; in between k is
 * in [-150, 128]. */
static LLVMValueRef gen_exp(cg_lower *c, LLVMValueRef x) {
  exp_split s = exp_reduce(c, clamp(c, x, -104, 89));
  return scale(c, cg_fadd(c, f32_like(x, 1), s.em), s.k);
}

/* expm1(x) = 2^k em + (2^k - 1), exact in its pieces for k <= 24; beyond,
 * the -1 is a rounding detail of e^x. Below -30 the result is -1. */
static LLVMValueRef gen_expm1(cg_lower *c, LLVMValueRef x) {
  exp_split s = exp_reduce(c, clamp(c, x, -30, 89));
  LLVMValueRef big_k = LLVMBuildICmp(c->b, LLVMIntSGT, s.k, u32k(c, 24), "");
  LLVMValueRef sv = pow2(c, sel(c, big_k, u32k(c, 24), s.k));
  LLVMValueRef small = cg_fmuladd(c, sv, s.em, cg_fsub(c, sv, f32k(c, 1))); /* sv em is exact */
  LLVMValueRef big = cg_fsub(c, scale(c, cg_fadd(c, f32k(c, 1), s.em), s.k), f32k(c, 1));
  LLVMValueRef r = sel(c, big_k, big, small);
  return sel(c, cg_fcmp(c, LLVMRealOEQ, x, f32k(c, 0)), x, r); /* keeps the sign of -0 */
}

/* ---- log --------------------------------------------------------------------- */

/* log1p(f) = f - f^2/2 + s (f^2/2 + z R(z)), s = f/(2+f), z = s^2 in
 * [0, 0.0295]; fit error of R 1.2e-9. */
static const double LOG_R[] = {0x1.555556p-1, 0x1.9999ecp-2, 0x1.245c44p-2, 0x1.ddced8p-3};
#define SQRT_HALF_BITS 0x3f3504f3u

static LLVMValueRef gen_log(cg_lower *c, LLVMValueRef x) {
  LLVMBuilderRef B = c->b;
  /* Subnormals are scaled into the normal range first (exactly). */
  LLVMValueRef sub = cg_fcmp(c, LLVMRealOLT, x, f32k(c, 0x1p-126));
  LLVMValueRef xs = sel(c, sub, cg_fmul(c, x, f32k(c, 0x1p23)), x);
  LLVMValueRef e_adj = sel(c, sub, u32k(c, (uint32_t)-23), u32k(c, 0));
  /* Shift the mantissa range so that m lands in [sqrt(1/2), sqrt(2)). */
  LLVMValueRef ix = LLVMBuildAdd(B, bits(c, xs), u32k(c, 0x3f800000u - SQRT_HALF_BITS), "");
  LLVMValueRef k = LLVMBuildSub(B, LLVMBuildAShr(B, ix, u32k(c, 23), ""), u32k(c, 127), "");
  k = LLVMBuildAdd(B, k, e_adj, "");
  LLVMValueRef m = from_bits(c, LLVMBuildAdd(B, LLVMBuildAnd(B, ix, u32k(c, 0x7fffff), ""),
                                             u32k(c, SQRT_HALF_BITS), ""));
  LLVMValueRef f = cg_fsub(c, m, f32k(c, 1));
  LLVMValueRef s = cg_fdiv(c, f, cg_fadd(c, f32k(c, 2), f));
  LLVMValueRef z = cg_fmul(c, s, s);
  LLVMValueRef R = cg_fmul(c, z, horner(c, z, LOG_R, 4));
  LLVMValueRef hfsq = cg_fmul(c, f32k(c, 0.5), cg_fmul(c, f, f));
  LLVMValueRef kf = LLVMBuildSIToFP(B, k, c->f32, "");
  /* k ln2 + f - hfsq + s (hfsq + R), summed small terms first. */
  LLVMValueRef t = cg_fadd(c, cg_fmul(c, s, cg_fadd(c, hfsq, R)), cg_fmul(c, kf, f32k(c, LN2_LO_F)));
  LLVMValueRef r = cg_fsub(c, cg_fmul(c, kf, f32k(c, LN2_HI_F)), cg_fsub(c, cg_fsub(c, hfsq, t), f));
  LLVMValueRef inf = f32k(c, INFINITY);
  r = sel(c, cg_fcmp(c, LLVMRealOEQ, x, inf), inf, r);
  r = sel(c, cg_fcmp(c, LLVMRealOEQ, x, f32k(c, 0)), cg_fneg(c, inf), r);
  r = sel(c, cg_fcmp(c, LLVMRealOLT, x, f32k(c, 0)), f32k(c, NAN), r);
  return sel(c, cg_fcmp(c, LLVMRealUNO, x, x), x, r);
}

/* log1p(t) = log(u) * t / (u - 1) with u = 1 + t (Goldberg): the rounding
 * of u cancels between the two factors. */
static LLVMValueRef gen_log1p(cg_lower *c, LLVMValueRef t) {
  LLVMValueRef u = cg_fadd(c, f32k(c, 1), t);
  LLVMValueRef r = cg_fmul(c, gen_log(c, u), cg_fdiv(c, t, cg_fsub(c, u, f32k(c, 1))));
  r = sel(c, cg_fcmp(c, LLVMRealOEQ, t, f32k(c, INFINITY)), t, r);
  return sel(c, cg_fcmp(c, LLVMRealOEQ, u, f32k(c, 1)), t, r);
}

/* ---- tanh, sigmoid, softplus ---------------------------------------------------- */

/* tanh x = x + x^3 T(x^2) for |x| < 0.5625 (z = x^2 <= 0.3164); fit error
 * 4.9e-10. The expm1 form below loses an ulp or two to its division near 0. */
static const double TANH_T[] = {-0x1.555556p-2, 0x1.111102p-3, -0x1.ba12d8p-5, 0x1.655dcp-6,
                                -0x1.1680dcp-7, 0x1.460e8p-9};
#define TANH_SMALL 0.5625

/* Above |x| = 10, tanh rounds to +-1 (1 - tanh(9.02) < 2^-25). */
static LLVMValueRef gen_tanh(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef a = fabs_of(c, x);
  LLVMValueRef z = cg_fmul(c, x, x);
  LLVMValueRef small = cg_fadd(c, x, cg_fmul(c, cg_fmul(c, x, z), horner(c, z, TANH_T, 6)));
  small = copysign_of(c, small, x); /* -0 + +0 would lose the sign of -0 */
  LLVMValueRef em = gen_expm1(c, cg_fadd(c, a, a));
  LLVMValueRef r = cg_fdiv(c, em, cg_fadd(c, em, f32k(c, 2)));
  r = copysign_of(c, sel(c, cg_fcmp(c, LLVMRealOGT, a, f32k(c, 10)), f32k(c, 1), r), x);
  return sel(c, cg_fcmp(c, LLVMRealOLT, a, f32k(c, TANH_SMALL)), small, r);
}

/* 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below: e^-|x| never overflows. The
 * quotient is formed in double and rounded once. */
static LLVMValueRef sigmoid_from(cg_lower *c, LLVMValueRef nonneg, LLVMValueRef e) {
  LLVMValueRef ed = widen(c, e);
  LLVMValueRef num = sel(c, nonneg, f64k(c, 1), ed);
  return narrow(c, cg_fdiv(c, num, cg_fadd(c, f64k(c, 1), ed)));
}

static LLVMValueRef gen_sigmoid(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef e = gen_exp(c, cg_fneg(c, fabs_of(c, x)));
  return sigmoid_from(c, cg_fcmp(c, LLVMRealOGE, x, f32k(c, 0)), e);
}

/* max(x, 0) + log1p(e^-|x|), as the interpreter defines it. */
static LLVMValueRef gen_softplus(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef l = gen_log1p(c, gen_exp(c, cg_fneg(c, fabs_of(c, x))));
  return cg_fadd(c, sel(c, cg_fcmp(c, LLVMRealOGT, x, f32k(c, 0)), x, f32k(c, 0)), l);
}

/* ---- erf and gelu ------------------------------------------------------------------ */

/* erf(x) = x A(x^2) on |x| <= 0.9; fit error 3.0e-10. */
static const double ERF_A[] = {0x1.20dd76p+0,  -0x1.812744p-2, 0x1.ce2e5cp-4, -0x1.b815ccp-6,
                               0x1.551070p-8,  -0x1.acd92ap-11, 0x1.65bfc0p-14};
/* erfc(a) = t exp(-a^2 + P(t)), t = 1/(1 + a/2), a in [0.45, 10.6] (t in
 * [0.159, 0.816]); evaluated in double; fit error 2.9e-9. */
static const double ERFC_P[] = {-0x1.43fa5a522b7c9p+0, 0x1.0032e28a2db21p+0,  0x1.75f42c3443eb4p-2,
                                0x1.3bcb829b9388cp-3,  -0x1.a2c737142eb93p-2, 0x1.a3d8f4159caadp-1,
                                -0x1.f6d7e38ef28e9p+0, 0x1.21f7fde7bcc8dp+1,  -0x1.3a83c676f9118p+0,
                                0x1.0c119cee06a12p-2};
#define ERF_SMALL 0.875      /* erf uses x A(x^2) below */
#define GELU_SMALL 0.5       /* gelu uses 1/2 + erf/2 below |x|/sqrt2 = this */
#define ERFC_MAX_ARG 10.5    /* 15 erfc(10.5) / 2 < 2^-150: gelu underflows beyond */
#define GELU_MAX_X 14.849242404917497 /* ERFC_MAX_ARG sqrt2 */
#define ISQRT2_F 0x1.6a09e6p-1
#define ISQRT2_D 0x1.6a09e667f3bcdp-1

/* In double: float evaluation would cost an ulp or two. */
static LLVMValueRef erf_small(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef xd = widen(c, x);
  return narrow(c, cg_fmul(c, xd, horner(c, cg_fmul(c, xd, xd), ERF_A, 7)));
}

/* erfc(a) = m * 2^k with m = t e^(-sq + P(t) - k ln2) in double (sq = a^2,
 * exact when a is a float's value): the caller multiplies further factors
 * into m before scaling, so that a subnormal result is rounded once. */
typedef struct erfc_split {
  LLVMValueRef m, k; /* double, i32 */
} erfc_split;

static erfc_split erfc_tail(cg_lower *c, LLVMValueRef ad, LLVMValueRef sq) {
  LLVMValueRef t = cg_fdiv(c, f64k(c, 1), cg_fadd(c, f64k(c, 1), cg_fmul(c, f64k(c, 0.5), ad)));
  LLVMValueRef arg = cg_fsub(c, horner(c, t, ERFC_P, 10), sq);
  exp_split s = exp_reduce_wide(c, arg);
  erfc_split r = {cg_fmul(c, t, cg_fadd(c, f64k(c, 1), widen(c, s.em))), s.k};
  return r;
}

static LLVMValueRef gen_erf(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef a = fabs_of(c, x);
  LLVMValueRef ad = widen(c, clamp(c, a, ERF_SMALL, ERFC_MAX_ARG));
  erfc_split e = erfc_tail(c, ad, cg_fmul(c, ad, ad));
  LLVMValueRef big = copysign_of(c, cg_fsub(c, f32k(c, 1), scale(c, narrow(c, e.m), e.k)), x);
  return sel(c, cg_fcmp(c, LLVMRealOLT, a, f32k(c, ERF_SMALL)), erf_small(c, x), big);
}

/* x Phi(x): x/2 (1 + erf(x/sqrt2)) near 0; x/2 erfc(|x|/sqrt2) for x < 0;
 * x (1 - erfc(x/sqrt2)/2) for x > 0. Beyond |x| = ERFC_MAX_ARG sqrt2 the
 * negative side underflows: x * 0 gives -0 (and NaN for -inf, as the
 * interpreter's 0.5 x (1 + erf) does); on the positive side Phi is 1. */
static LLVMValueRef gen_gelu(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef half = f32k(c, 0.5);
  LLVMValueRef a = cg_fmul(c, fabs_of(c, x), f32k(c, ISQRT2_F));
  LLVMValueRef phi_small = cg_fadd(c, half, cg_fmul(c, half, erf_small(c, cg_fmul(c, x, f32k(c, ISQRT2_F)))));
  LLVMValueRef xc = clamp(c, x, -GELU_MAX_X, GELU_MAX_X);
  LLVMValueRef xd = widen(c, xc);
  LLVMValueRef ad = clamp(c, cg_fmul(c, fabs_of(c, xd), f64k(c, ISQRT2_D)), GELU_SMALL, ERFC_MAX_ARG);
  erfc_split e = erfc_tail(c, ad, cg_fmul(c, f64k(c, 0.5), cg_fmul(c, xd, xd)));
  LLVMValueRef h = cg_fmul(c, f64k(c, 0.5), e.m); /* erfc/2 = Phi(-|x|), before scaling */
  LLVMValueRef below = scale(c, narrow(c, cg_fmul(c, xd, h)), e.k);
  LLVMValueRef above = cg_fmul(c, xc, cg_fsub(c, f32k(c, 1), scale(c, narrow(c, h), e.k)));
  LLVMValueRef tail = sel(c, cg_fcmp(c, LLVMRealOLT, x, f32k(c, 0)), below, above);
  LLVMValueRef r = sel(c, cg_fcmp(c, LLVMRealOLT, a, f32k(c, GELU_SMALL)), cg_fmul(c, x, phi_small), tail);
  LLVMValueRef huge = sel(c, cg_fcmp(c, LLVMRealOGT, x, f32k(c, 0)), x, cg_fmul(c, x, f32k(c, 0)));
  return sel(c, cg_fcmp(c, LLVMRealOGT, fabs_of(c, x), f32k(c, GELU_MAX_X)), huge, r);
}

/* x sigmoid(v) for v in double: x / (1 + e) for v >= 0, and for v < 0
 * x e / (1 + e) with e = e^v = p 2^k. The quotients are formed in double
 * and rounded once; for v < 0 the factor 2^k is applied in two halves, the
 * second after rounding, so that a result in the subnormal range is
 * rounded once more at most (rounding e^v first would lose most of its
 * bits when |x| lifts x e^v above e^v). */
static LLVMValueRef x_sigmoid(cg_lower *c, LLVMValueRef x, LLVMValueRef v) {
  LLVMValueRef neg = clamp(c, cg_fneg(c, fabs_of(c, v)), -160, 0);
  exp_split s = exp_reduce_wide(c, neg);
  LLVMValueRef xd = widen(c, x);
  LLVMValueRef pd = cg_fadd(c, f64k(c, 1), widen(c, s.em));
  LLVMValueRef d = cg_fadd(c, f64k(c, 1), widen(c, scale(c, cg_fadd(c, f32k(c, 1), s.em), s.k)));
  LLVMValueRef k1 = LLVMBuildAShr(c->b, s.k, u32k(c, 1), "");
  LLVMValueRef m = narrow(c, cg_fmul(c, cg_fdiv(c, cg_fmul(c, xd, pd), d), widen(c, pow2(c, k1))));
  LLVMValueRef below = cg_fmul(c, m, pow2(c, LLVMBuildSub(c->b, s.k, k1, "")));
  /* Below v = -160 the result underflows for every float x (the callers'
   * |x| is below 2^8 there): x * 0 gives -0, and NaN for -inf. */
  below = sel(c, cg_fcmp(c, LLVMRealOLT, v, f64k(c, -160)), cg_fmul(c, x, f32k(c, 0)), below);
  return sel(c, cg_fcmp(c, LLVMRealOGE, v, f64k(c, 0)), narrow(c, cg_fdiv(c, xd, d)), below);
}

static LLVMValueRef gen_silu(cg_lower *c, LLVMValueRef x) { return x_sigmoid(c, x, widen(c, x)); }

/* 0.5 x (1 + tanh(v/2)) = x sigmoid(v), v = 2 sqrt(2/pi) (x + 0.044715 x^3)
 * computed in double so that e^-|v| keeps its accuracy for large |v|. */
#define GELU_K1 0x1.9884533d43651p+0 /* 2 sqrt(2/pi) */
#define GELU_K2 0x1.2444f2a4d8b4bp-4 /* 2 sqrt(2/pi) 0.044715 */

static LLVMValueRef gen_gelu_tanh(cg_lower *c, LLVMValueRef x) {
  LLVMValueRef xd = widen(c, x);
  LLVMValueRef v = cg_fmul(c, xd, cg_fadd(c, f64k(c, GELU_K1), cg_fmul(c, f64k(c, GELU_K2), cg_fmul(c, xd, xd))));
  return x_sigmoid(c, x, v);
}

/* ---- sin and cos ------------------------------------------------------------------- */

/* sin r = r + r z S(z), cos r = 1 + z C(z), z = r^2 <= (pi/4)^2, in
 * double; fit errors 2.8e-11 (S) and 3.1e-10 (C). */
static const double SIN_S[] = {-0.1666666666385529, 0.008333331874710208, -0.00019840086735384846,
                               2.724992580305979e-06};
static const double COS_C[] = {-0.49999999969119313, 0.04166665064451703, -0.0013887589155600576,
                               2.4463788293265746e-05};
#define INV_PIO2_D 0x1.45f306dc9c883p-1
#define PIO2_1 1.57079631090164184570e+00  /* first 33 bits of pi/2 (fdlibm) */
#define PIO2_1T 1.58932547735281966916e-08 /* pi/2 - PIO2_1 */
#define TRIG_MAX 0x1.921fb6p+28         /* 2^28 pi/2: beyond, the reduction is not exact */

/* sin(x) (cos_shift 0) or cos(x) = sin(x + pi/2) (cos_shift 1). */
static LLVMValueRef gen_sincos(cg_lower *c, LLVMValueRef x, uint32_t cos_shift) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef xd = widen(c, x);
  LLVMValueRef t = cg_fadd(c, cg_fmul(c, xd, f64k(c, INV_PIO2_D)), f64k(c, ROUND_MAGIC_D));
  LLVMValueRef q = cg_fsub(c, t, f64k(c, ROUND_MAGIC_D));
  LLVMValueRef n = LLVMBuildTrunc(B, LLVMBuildBitCast(B, t, c->i64, ""), c->i32, "");
  n = LLVMBuildAdd(B, n, u32k(c, cos_shift), "");
  LLVMValueRef r = cg_fsub(c, cg_fsub(c, xd, cg_fmul(c, q, f64k(c, PIO2_1))), cg_fmul(c, q, f64k(c, PIO2_1T)));
  /* Out of range: a bounded, meaningless result rather than a polynomial
   * of a huge r (docs/numerics.md); x * 0 keeps infinities NaN. */
  r = sel(c, cg_fcmp(c, LLVMRealOGT, fabs_of(c, x), f32k(c, TRIG_MAX)), cg_fmul(c, xd, f64k(c, 0)), r);
  LLVMValueRef z = cg_fmul(c, r, r);
  LLVMValueRef s = cg_fadd(c, r, cg_fmul(c, cg_fmul(c, r, z), horner(c, z, SIN_S, 4)));
  LLVMValueRef co = cg_fadd(c, f64k(c, 1), cg_fmul(c, z, horner(c, z, COS_C, 4)));
  LLVMValueRef odd = LLVMBuildICmp(B, LLVMIntNE, LLVMBuildAnd(B, n, u32k(c, 1), ""), u32k(c, 0), "");
  LLVMValueRef neg = LLVMBuildICmp(B, LLVMIntNE, LLVMBuildAnd(B, n, u32k(c, 2), ""), u32k(c, 0), "");
  LLVMValueRef v = narrow(c, sel(c, odd, co, s));
  v = sel(c, neg, cg_fneg(c, v), v);
  if (cos_shift) return v;
  return sel(c, cg_fcmp(c, LLVMRealOEQ, x, f32k(c, 0)), x, v); /* sin(-0) = -0 */
}

static LLVMValueRef gen_sin(cg_lower *c, LLVMValueRef x) { return gen_sincos(c, x, 0); }
static LLVMValueRef gen_cos(cg_lower *c, LLVMValueRef x) { return gen_sincos(c, x, 1); }

/* ---- the module functions ------------------------------------------------------------ */

typedef LLVMValueRef (*gen_fn)(cg_lower *c, LLVMValueRef x);

static const struct {
  const char *name;
  gen_fn gen;
} vm_table[CG_VM_COUNT] = {
    [CG_VM_EXP] = {"exp", gen_exp},
    [CG_VM_EXPM1] = {"expm1", gen_expm1},
    [CG_VM_LOG] = {"log", gen_log},
    [CG_VM_LOG1P] = {"log1p", gen_log1p},
    [CG_VM_TANH] = {"tanh", gen_tanh},
    [CG_VM_SIGMOID] = {"sigmoid", gen_sigmoid},
    [CG_VM_SILU] = {"silu", gen_silu},
    [CG_VM_ERF] = {"erf", gen_erf},
    [CG_VM_GELU] = {"gelu", gen_gelu},
    [CG_VM_GELU_TANH] = {"gelu_tanh", gen_gelu_tanh},
    [CG_VM_SOFTPLUS] = {"softplus", gen_softplus},
    [CG_VM_SIN] = {"sin", gen_sin},
    [CG_VM_COS] = {"cos", gen_cos},
};

const char *cg_vm_name(cg_vm_fn f) {
  IR_ASSERT(f >= 0 && f < CG_VM_COUNT);
  return vm_table[f].name;
}

/* Define seqc.vm.NAME.f32 with the builder borrowed from the lowering; its
 * insertion point (always the end of a block) is restored afterwards. */
static LLVMValueRef define_f32(cg_lower *c, cg_vm_fn f, const char *name) {
  LLVMTypeRef fty = LLVMFunctionType(c->f32, &c->f32, 1, 0);
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_add_fn_attr(c->ctx, fn, "alwaysinline", 0);
  cg_add_fn_attr(c->ctx, fn, "nounwind", 0);
  cg_add_fn_attr(c->ctx, fn, "willreturn", 0);
  cg_add_fn_attr(c->ctx, fn, "nosync", 0);
  cg_add_fn_attr(c->ctx, fn, "memory", 0); /* memory(none) */
  LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  LLVMBuildRet(c->b, vm_table[f].gen(c, LLVMGetParam(fn, 0)));
  if (here) LLVMPositionBuilderAtEnd(c->b, here);
  return fn;
}

LLVMValueRef cg_vm_f32(cg_lower *c, cg_vm_fn f, LLVMValueRef x) {
  IR_ASSERT(f >= 0 && f < CG_VM_COUNT);
  char name[64];
  snprintf(name, sizeof name, "seqc.vm.%s.f32", vm_table[f].name);
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (!fn) fn = define_f32(c, f, name);
  LLVMTypeRef fty = LLVMFunctionType(c->f32, &c->f32, 1, 0);
  return LLVMBuildCall2(c->b, fty, fn, &x, 1, "");
}

/* m * 2^k as vscalefps computes it (AVX-512), kf being k as a float, 16
 * lanes at a time: the exact product rounded once, which is what scale()
 * computes in two multiplies and six integer instructions. */
static LLVMValueRef scale_avx512(cg_lower *c, LLVMValueRef m, LLVMValueRef kf) {
  unsigned n = LLVMGetVectorSize(LLVMTypeOf(m));
  LLVMTypeRef v16 = LLVMVectorType(c->f32, 16);
  LLVMValueRef part[CG_VM_MAX_LANES / 16], ix[CG_VM_MAX_LANES];
  for (unsigned p = 0; p < n / 16; p++) {
    for (unsigned i = 0; i < 16; i++) ix[i] = u32k(c, 16 * p + i);
    LLVMValueRef pick = LLVMConstVector(ix, 16);
    LLVMValueRef args[5] = {LLVMBuildShuffleVector(c->b, m, m, pick, ""), LLVMBuildShuffleVector(c->b, kf, kf, pick, ""),
                            LLVMGetUndef(v16), LLVMConstInt(c->i16, 0xffff, 0), u32k(c, 4) /* current rounding */};
    part[p] = cg_intrinsic(c, "llvm.x86.avx512.mask.scalef.ps.512", NULL, 5, args);
  }
  /* Concatenate the parts pairwise until one vector of n lanes is left. */
  for (unsigned width = 16; width < n; width *= 2) {
    for (unsigned i = 0; i < 2 * width; i++) ix[i] = u32k(c, i);
    for (unsigned p = 0; p < n / (2 * width); p++)
      part[p] = LLVMBuildShuffleVector(c->b, part[2 * p], part[2 * p + 1], LLVMConstVector(ix, 2 * width), "");
  }
  return part[0];
}

/* gen_exp on a vector, without the clamp at 89 when every lane is <= 0
 * or NaN (the clamp changes none of those); on AVX-512 targets
 * (c->f32_lanes is 16 only for them, module.c) with lanes in multiples of
 * 16, 2^k is applied by vscalefps (scale_avx512: the same bits). */
LLVMValueRef cg_vm_exp_lanes(cg_lower *c, LLVMValueRef x, bool at_most_zero) {
  LLVMTypeRef t = LLVMTypeOf(x);
  IR_ASSERT(LLVMGetTypeKind(t) == LLVMVectorTypeKind && LLVMGetVectorSize(t) <= CG_VM_MAX_LANES);
  unsigned n = LLVMGetVectorSize(t);
  exp_split s = exp_reduce(c, at_most_zero ? at_least(c, x, -104) : clamp(c, x, -104, 89));
  LLVMValueRef m = cg_fadd(c, f32_like(x, 1), s.em);
  if (c->f32_lanes != 16 || n % 16 != 0) return scale(c, m, s.k);
  return scale_avx512(c, m, s.kf);
}

/* ---- f64 through libm ------------------------------------------------------------------ */

LLVMValueRef cg_libm_call(cg_lower *c, const char *name, int n_args, LLVMValueRef *args) {
  LLVMTypeRef params[2] = {c->f64, c->f64};
  IR_ASSERT(n_args >= 1 && n_args <= 2);
  LLVMTypeRef fty = LLVMFunctionType(c->f64, params, (unsigned)n_args, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (!fn) {
    fn = LLVMAddFunction(c->mod, name, fty);
    cg_add_fn_attr(c->ctx, fn, "nounwind", 0);
  }
  return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)n_args, "");
}

static LLVMValueRef libm1(cg_lower *c, const char *name, LLVMValueRef x) {
  return cg_libm_call(c, name, 1, &x);
}

/* The interpreter's formulas, operation for operation (ir/interp.c). */
static LLVMValueRef libm_formula(cg_lower *c, cg_vm_fn f, LLVMValueRef x) {
  LLVMValueRef zero = f64k(c, 0), one = f64k(c, 1), half = f64k(c, 0.5);
  switch (f) {
  case CG_VM_EXP: return libm1(c, "exp", x);
  case CG_VM_EXPM1: return libm1(c, "expm1", x);
  case CG_VM_LOG: return libm1(c, "log", x);
  case CG_VM_LOG1P: return libm1(c, "log1p", x);
  case CG_VM_TANH: return libm1(c, "tanh", x);
  case CG_VM_ERF: return libm1(c, "erf", x);
  case CG_VM_SIN: return libm1(c, "sin", x);
  case CG_VM_COS: return libm1(c, "cos", x);
  case CG_VM_SIGMOID: {
    LLVMValueRef e = libm1(c, "exp", cg_fneg(c, fabs_of(c, x)));
    LLVMValueRef nonneg = cg_fcmp(c, LLVMRealOGE, x, zero);
    return cg_fdiv(c, sel(c, nonneg, one, e), cg_fadd(c, one, e));
  }
  case CG_VM_SOFTPLUS: {
    LLVMValueRef l = libm1(c, "log1p", libm1(c, "exp", cg_fneg(c, fabs_of(c, x))));
    return cg_fadd(c, sel(c, cg_fcmp(c, LLVMRealOGT, x, zero), x, zero), l);
  }
  case CG_VM_SILU: return cg_fmul(c, x, libm_formula(c, CG_VM_SIGMOID, x));
  case CG_VM_GELU: {
    LLVMValueRef e = libm1(c, "erfc", cg_fmul(c, cg_fneg(c, x), f64k(c, ISQRT2_D)));
    return cg_fmul(c, cg_fmul(c, half, x), e);
  }
  case CG_VM_GELU_TANH: {
    LLVMValueRef cube = cg_fmul(c, cg_fmul(c, cg_fmul(c, f64k(c, 0.044715), x), x), x);
    LLVMValueRef v = cg_fmul(c, f64k(c, -2 * 0.79788456080286535588), cg_fadd(c, x, cube));
    return cg_fdiv(c, x, cg_fadd(c, one, libm1(c, "exp", v)));
  }
  case CG_VM_COUNT: break;
  }
  IR_ASSERT(!"unknown vmath function");
  return NULL;
}

/* Never fused (no cg_fmuladd here): with the same libm calls and the same
 * operations the result has the interpreter's bits, which an FMA would
 * change. */
LLVMValueRef cg_vm_f64(cg_lower *c, cg_vm_fn f, LLVMValueRef x) {
  return libm_formula(c, f, x);
}
