/*
 * model_impl.h - the representation of an opened model, shared by model.c
 * (opening, binding weights) and model_ctx.c (contexts, forward). Not part
 * of the glue contract.
 */
#ifndef SEQC_RUNTIME_MODEL_IMPL_H
#define SEQC_RUNTIME_MODEL_IMPL_H

#include "runtime/model.h"

#include <stdbool.h>

struct rt_model {
  const rt_model_desc *desc;
  int num_threads;  /* from rt_options, 1 when defaulted */
  int64_t n_dims;   /* entries desc->dims writes: the sum of all ranks */
  int64_t *syms;    /* n_symbols values: parameter symbols bound at open, call symbols 0 */
  void **params;    /* n_params pointers into data */
  void *data;       /* every parameter, each at a 64-byte aligned offset; owned */
};

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
