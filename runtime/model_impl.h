/*
 * model_impl.h - the representation of an opened model, shared by model.c
 * (opening, binding weights) and model_ctx.c (contexts, forward). Not part
 * of the glue contract.
 */
#ifndef SEQC_RUNTIME_MODEL_IMPL_H
#define SEQC_RUNTIME_MODEL_IMPL_H

#include "runtime/exec.h"
#include "runtime/model.h"
#include "runtime/pool.h"

#include <stdbool.h>

/* A compiled program bound to an opened model: what its init computed. */
typedef struct rt_prog {
  const seqrt_program *code; /* NULL: absent (a model without step) */
  int32_t n_args;            /* graph arguments of the program, before the hoisted values */
  void **hoisted;            /* code->n_hoisted pointers into hoisted_data */
  void *hoisted_data;        /* owned */
} rt_prog;

struct rt_model {
  const rt_model_desc *desc;
  int num_threads;  /* from rt_options, 1 when defaulted */
  int64_t n_dims;   /* entries desc->dims writes: the sum of all ranks */
  int64_t *syms;    /* n_symbols values: parameter symbols bound at open, call symbols 0 */
  void **params;    /* n_params pointers into data or init_data (NULL once that is freed) */
  void *data;       /* every parameter run reads, each at a 64-byte aligned offset; owned */
  void *init_data;  /* likewise the parameters only the inits read (desc->param_init_only):
                       freed right after them, so a packed weight is not kept twice */
  rt_prog forward, step;
};

/* A stream: the state of step calls (runtime/stream.c). */
typedef struct rt_stream {
  int64_t pos;        /* steps consumed since the last reset */
  int64_t *values;    /* n_call_symbols: the stream's call symbols (the time entry unused) */
  int64_t *spare;     /* n_call_symbols: where reset tries new values */
  int64_t *step_syms; /* the step program's symbol values for the current call */
  int64_t *state_dims;
  int64_t *offset;    /* n_state + 1: byte offsets of the state tensors; offset[n_state] = total */
  void *block[2];     /* state tensors: read from block[cur], written to the other */
  int cur;
  int64_t capacity;   /* bytes of each block */
  bool has_cache;     /* some state grows with pos up to the time maximum */
} rt_stream;

/* A ctx's services for generated code (runtime/exec.c). */
typedef struct rt_profile rt_profile;
typedef struct rt_exec {
  seqrt_exec pub;      /* first: what generated code is given */
  rt_pool *pool;       /* the ctx's threads */
  rt_profile *profile; /* NULL unless SEQRT_PROFILE=1 */
  int running;         /* 0 forward, 1 step: whose kernels are timed */
} rt_exec;

rt_status rt_exec_init(rt_exec *x, const rt_model *m);
/* Prints the profile (if any) to stderr, joins the threads, frees. */
void rt_exec_free(rt_exec *x, const rt_model *m);

struct rt_ctx {
  const rt_model *model;
  int64_t *max;     /* n_call_symbols: the largest value of each call symbol */
  int64_t *syms;    /* n_symbols: the model's values; call symbols set per call */
  int64_t *dims;    /* model->n_dims: written by desc->dims per call */
  int32_t *slot;    /* n_inputs + n_params: the position in args of input i / param n_inputs + j */
  void **args;      /* graph args in signature order (params filled once), then the step's pos
                       and state, then the hoisted values of the program running */
  void **outs;      /* n_outputs, then n_state */
  void *scratch;    /* 64-byte aligned, capacity bytes (at least 64) */
  int64_t capacity;
  rt_stream stream; /* used when the model has a step */
  rt_exec exec;
};

/* Runs every program's init (after the parameters are bound). */
rt_status rt_model_init_programs(rt_model *m);
void rt_model_free_programs(rt_model *m);
/* The program symbol values for the model's values `syms`, pos and cap. */
void rt_program_syms(const seqrt_program *p, const int64_t *syms, int64_t past, int64_t cap,
                     int64_t *out);

/* Validates the caller's inputs and outputs against c->dims (already
 * written), filling c->args and c->outs. */
rt_status rt_check_tensors(rt_ctx *c, const char *call, const void *const *inputs,
                           void *const *outputs);
/* The error for a failed run-time check of program p: the failing op's
 * description (from the status) and what failed. */
rt_status rt_run_failure(const rt_model_desc *d, const seqrt_program *p, const char *call,
                         int32_t status);
/* Runs a program with c->args/c->outs set; `call` names the entry. */
rt_status rt_run_program(rt_ctx *c, const rt_prog *p, const int64_t *psyms, const char *call);

/* Stream setup at ctx_new, and its teardown. */
rt_status rt_stream_init(rt_ctx *c);
void rt_stream_free(rt_ctx *c);
/* The largest scratch the step program needs at the ctx's maxima (0 without step). */
int64_t rt_stream_scratch_need(rt_ctx *c);

/* Writes "NAME: " + the formatted text into the thread's error and returns s. */
rt_status rt_model_fail(const rt_model_desc *d, rt_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* *out = product of dims[0..rank) * elem_size; false if a dim is negative or
 * the product overflows int64. */
bool rt_tensor_bytes(const int64_t *dims, int32_t rank, size_t elem_size, int64_t *out);

#endif
