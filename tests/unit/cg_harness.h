/*
 * cg_harness.h - runs a graph through the reference interpreter and through
 * compiled code (cg_compile at -O0 and at -O2, ORC JIT, cg_jit_run_tensors)
 * and hands both results to a comparison the test supplies; the unit tests
 * of the lowerings share it. A harness owns a graph under construction and
 * its argument tensors: each graph input comes with a tensor, random
 * (fixed-seed, so every run sees the same values) or given. Failures are
 * cmocka assertion failures.
 *
 *   ch_harness *h = ch_new("add", 1);
 *   ir_val x = ch_input(h, IR_F32, "B, 3", 2, 3), y = ch_input(h, IR_F32, "3", 3);
 *   ch_check(h, 1, TB_VALS(ch_op(h, IR_OP_ADD, TB_NO_ATTRS, x, y)), compare, NULL);
 */
#ifndef SEQC_TESTS_CG_HARNESS_H
#define SEQC_TESTS_CG_HARNESS_H

#include <stdint.h>

#include "codegen/cg.h"
#include "graph_builder.h"
#include "ir/interp.h"

#define CH_MAX_ARGS 32
#define CH_MAX_OUTS 32

typedef struct ch_harness {
  ir_graph *g;
  ir_tensor args[CH_MAX_ARGS]; /* args[i] feeds graph input i */
  int32_t n_args;
  uint64_t rng;
  double range; /* random floats are uniform in [-range, range); 2 at first */
} ch_harness;

/* A harness with an empty graph; seed starts its random sequence. */
ch_harness *ch_new(const char *name, uint64_t seed);

/* Frees the graph, the argument tensors and h. */
void ch_free(ch_harness *h);

/* The next 32 random bits of h's sequence. */
uint32_t ch_next_random(ch_harness *h);

/* The next random value for dtype dt: uniform in [-range, range) for floats
 * (rounded to the dtype), in [-5, 5] for integers, 0 or 1 for bool. */
double ch_random_value(ch_harness *h, ir_dtype dt);

/* A graph input of the given (possibly symbolic) text dims and its tensor
 * of the given shape, filled from `fill` (NULL: random). */
ir_val ch_input_with(ch_harness *h, ir_dtype dt, const char *dims, int32_t rank, const int64_t *shape,
                     const double *fill);

/* Replaces argument i by a random tensor of the given shape (same dtype). */
void ch_refill(ch_harness *h, int32_t i, int32_t rank, const int64_t *shape);

#define CH_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define CH_RANK(...) ((int32_t)(sizeof(CH_SHAPE(__VA_ARGS__)) / sizeof(int64_t)))
#define CH_DATA(...) ((const double[]){__VA_ARGS__})
/* ch_input(h, dtype, "B, 3", 2, 3): a random input; the shape binds the dims. */
#define ch_input(h, dt, dims, ...) ch_input_with(h, dt, dims, CH_RANK(__VA_ARGS__), CH_SHAPE(__VA_ARGS__), NULL)
/* ch_input_data(h, dtype, "2, 3", CH_DATA(...), 2, 3): an input with given values. */
#define ch_input_data(h, dt, dims, data, ...) \
  ch_input_with(h, dt, dims, CH_RANK(__VA_ARGS__), CH_SHAPE(__VA_ARGS__), data)

/* An op built by ir_build (result types inferred) with the attribute table
 * `attrs`, appended to the body. */
ir_opid ch_build(ch_harness *h, ir_opkind k, int32_t n_in, const ir_val *in, const tb_attr *attrs);

/* ch_op(h, kind, attrs, operands...): the first result of a new op. */
#define ch_op(h, k, attrs, ...) \
  ir_o((h)->g, ch_build(h, k, TB_NVALS(__VA_ARGS__), TB_VALS(__VA_ARGS__), attrs))->out[0]

/* The result of a one-operand op whose result type t is declared rather
 * than inferred (reshape, broadcast). */
ir_val ch_declared(ch_harness *h, ir_opkind k, ir_val x, ir_type t);

/* Ends the graph with outputs outs[0..n) (at most CH_MAX_OUTS) and checks
 * that it verifies. */
void ch_finish(ch_harness *h, int32_t n, const ir_val *outs);

/* Asserts that ref and got have the same rank, shape and element count. */
void ch_assert_same_shape(const ir_tensor *ref, const ir_tensor *got);

/* Compares the interpreter's outputs ref[0..n) with those of the code
 * compiled at -O<opt>, got[0..n); fails the test on a mismatch. ud is the
 * pointer given to ch_check_variants. */
typedef void (*ch_compare_fn)(const ch_harness *h, const ir_tensor *ref, const ir_tensor *got, int32_t n, int opt,
                              const void *ud);

/* Rewrites h->args for variant v (same dtypes; shapes may change where the
 * input types are symbolic). */
typedef void (*ch_vary_fn)(ch_harness *h, int32_t v, const void *ud);

/* Finishes the graph with outputs outs[0..n), compiles it at -O0 and -O2
 * and, for each of n_variants variants of the arguments (vary NULL: the
 * arguments as they are), runs it both ways and compares. Frees h. */
void ch_check_variants(ch_harness *h, int32_t n, const ir_val *outs, int32_t n_variants, ch_vary_fn vary,
                       const void *vary_ud, ch_compare_fn compare, const void *compare_ud);

/* ch_check_variants with the arguments as they are. */
void ch_check(ch_harness *h, int32_t n, const ir_val *outs, ch_compare_fn compare, const void *compare_ud);

/* Ends the graph with output `out`; both ways must fail: the interpreter
 * with any message, compiled code (-O0 and -O2) with the message of
 * `code`. Frees h. */
void ch_check_fails(ch_harness *h, ir_val out, cg_status code);

/* Compiles g at -O<opt> and loads it; the program is returned in *p. */
cg_jit *ch_compile(ir_graph *g, int opt, cg_program **p);

/* Frees t[0..n). */
void ch_free_outputs(ir_tensor *t, int32_t n);

#endif
