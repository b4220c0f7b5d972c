/*
 * interp.h - the reference interpreter: evaluates any verified graph with
 * plain loops, the numeric oracle for every pass and kernel.
 *
 * Every tensor element is held as a double: floating results are computed in
 * double and rounded to the value's dtype (f32, f16, bf16) when stored;
 * integers (exact up to 2^53, checked) and bools (0/1) use the same storage.
 * Reductions accumulate in double. Symbolic dims are bound from the argument
 * shapes and from caller bindings; every run-time dim equality the verifier
 * could not prove is checked. docs/ir.md lists each op's semantics.
 */
#ifndef SEQC_IR_INTERP_H
#define SEQC_IR_INTERP_H

#include "ir.h"

typedef struct ir_tensor {
  ir_dtype dtype;
  int32_t rank;
  int64_t *shape; /* rank entries, owned */
  int64_t numel;
  double *data;   /* numel entries, owned */
} ir_tensor;

/* A zero-filled tensor; false (and nothing allocated) if the element count
 * overflows or exceeds max_elements. */
bool ir_tensor_alloc(ir_tensor *t, ir_dtype dt, int32_t rank, const int64_t *shape,
                     int64_t max_elements, ir_buf *err);
void ir_tensor_free(ir_tensor *t);
/* Round x to what dtype dt can hold (f32/f16/bf16 nearest even, ints
 * truncated toward zero, bool to 0/1). */
double ir_round_to_dtype(ir_dtype dt, double x);
/* Raw little-endian element data in the tensor's dtype. */
bool ir_tensor_from_bytes(ir_tensor *t, const void *bytes, size_t n, ir_buf *err);
void ir_tensor_to_bytes(const ir_tensor *t, ir_buf *out);

typedef struct ir_interp_opts {
  const ir_dim_binding *bindings; /* symbols bound by the caller */
  int32_t n_bindings;
  int64_t max_elements; /* bound on the elements of any one tensor; 0 = 1<<28 */
} ir_interp_opts;

/* Evaluate g. args holds one tensor per body argument (inputs and
 * parameters, in order); outs receives n_outputs tensors the caller frees.
 * False with a message in err on a run-time error (shape mismatch, index out
 * of range, division by zero in integers, limits). */
bool ir_interp_run(ir_graph *g, const ir_tensor *args, int32_t n_args, ir_tensor *outs,
                   const ir_interp_opts *opts, ir_buf *err);

/* Bind every dim symbol from opts' bindings and the arguments' shapes, and
 * check every argument dim, exactly as ir_interp_run does before it runs;
 * *out (caller frees) receives all bindings. Compiled code uses this so it
 * accepts exactly the arguments the interpreter accepts. */
bool ir_interp_bind_args(ir_graph *g, const ir_tensor *args, int32_t n_args,
                         const ir_interp_opts *opts, ir_dim_binding **out, int32_t *n_out,
                         ir_buf *err);

/* Evaluate one op without regions on concrete operand tensors (constant
 * folding uses this, so folding and interpretation cannot disagree). outs
 * receives op->n_out tensors. Dims are bound from the operands' shapes. */
bool ir_interp_eval_op(ir_graph *g, ir_opid op, const ir_tensor *ins, ir_tensor *outs,
                       const ir_interp_opts *opts, ir_buf *err);

#endif
