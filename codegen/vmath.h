/*
 * vmath.h - transcendental functions for generated code (codegen/vmath.c).
 *
 * f32 functions are branch-free polynomial implementations emitted into the
 * module as internal, always-inlined LLVM functions (seqc.vm.NAME.f32), so
 * that after inlining LLVM's loop vectorizer turns a loop calling them into
 * vector code. Their measured accuracy is in docs/numerics.md and asserted
 * by tests/unit/test_vmath.c. f64 functions call libm (the generated .so
 * may depend on libm) with exactly the formulas of the reference
 * interpreter (ir/interp.c); they are not vectorized.
 */
#ifndef SEQC_CODEGEN_VMATH_H
#define SEQC_CODEGEN_VMATH_H

#include "lower.h"

typedef enum cg_vm_fn {
  CG_VM_EXP,
  CG_VM_EXPM1,
  CG_VM_LOG,
  CG_VM_LOG1P,     /* for x > -1; used by softplus */
  CG_VM_TANH,
  CG_VM_SIGMOID,
  CG_VM_SILU,      /* x * sigmoid(x) */
  CG_VM_ERF,
  CG_VM_GELU,      /* x * Phi(x), Phi the normal CDF (exact gelu) */
  CG_VM_GELU_TANH, /* PyTorch's tanh approximation of gelu */
  CG_VM_SOFTPLUS,  /* log(1 + e^x) */
  CG_VM_SIN,
  CG_VM_COS,
  CG_VM_COUNT
} cg_vm_fn;

/* "exp", "gelu_tanh", ... */
const char *cg_vm_name(cg_vm_fn f);

/* f(x) for a float x, built at c's insertion point (the function is added
 * to the module on first use). */
LLVMValueRef cg_vm_f32(cg_lower *c, cg_vm_fn f, LLVMValueRef x);

/* exp(x) lane by lane for a vector of at most CG_VM_MAX_LANES floats x,
 * built inline at c's insertion point: the instructions of cg_vm_f32's
 * exp on vectors (on AVX-512 with one instruction, vscalefps, in place of
 * six that give the same result), so every lane has the bits cg_vm_f32
 * gives for it. at_most_zero: the caller knows every lane is <= 0 or NaN
 * (softmax's x - max), which saves the clamp against overflow. For loops
 * that keep their own vector shape (softmax's 32-lane chunks) rather than
 * leave vectorizing to LLVM. */
enum { CG_VM_MAX_LANES = 64 };
LLVMValueRef cg_vm_exp_lanes(cg_lower *c, LLVMValueRef x, bool at_most_zero);

/* f(x) for a double x through libm, inline at c's insertion point. */
LLVMValueRef cg_vm_f64(cg_lower *c, cg_vm_fn f, LLVMValueRef x);

/* A call of the libm function `name` taking and returning doubles
 * (n_args of them), e.g. "pow". */
LLVMValueRef cg_libm_call(cg_lower *c, const char *name, int n_args, LLVMValueRef *args);

#endif
