/*
 * model.h - the runtime core behind every generated shared object: a
 * compiled model's descriptor, its loaded weights (rt_model) and per-thread
 * execution contexts (rt_ctx). The generated "glue" C file emits one
 * rt_model_desc and exports thin NAME_* wrappers around these functions, so
 * all validation, binding and memory management lives here once.
 *
 * This is an internal but stable contract between seqc's glue generator and
 * the runtime (docs/abi.md, "The runtime core"): fields are never reordered
 * and enum values never change.
 *
 * Lifetimes: an rt_model owns one 64-byte aligned copy of every parameter;
 * the weights file is closed (unmapped) before rt_model_open returns, and a
 * memory buffer may be freed right after rt_model_open_memory. The model is
 * immutable afterwards and may be shared by any number of threads; each
 * thread uses its own rt_ctx (scratch memory and argument arrays, allocated
 * once by rt_ctx_new: rt_forward allocates nothing). A ctx must not outlive
 * its model, and the descriptor must outlive both (the glue's is static).
 *
 * Errors: every function returns an rt_status and records a message for the
 * calling thread (rt_last_error in seqrt.h); none crashes on bad arguments.
 */
#ifndef SEQC_RUNTIME_MODEL_H
#define SEQC_RUNTIME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/seqrt.h"
#include "runtime/seqrt_types.h"

/* Element types: the SEQRT_* values of seqrt_types.h, which are those of
 * ir_dtype. Fixed forever: they are compiled into generated descriptors. */
typedef enum rt_dtype {
  RT_DT_F32 = SEQRT_F32,
  RT_DT_F64 = SEQRT_F64,
  RT_DT_F16 = SEQRT_F16,   /* IEEE half, passed as 16-bit patterns */
  RT_DT_BF16 = SEQRT_BF16, /* bfloat16, passed as 16-bit patterns */
  RT_DT_I32 = SEQRT_I32,
  RT_DT_I64 = SEQRT_I64,
  RT_DT_BOOL = SEQRT_BOOL, /* one byte, 0 or 1 */
  RT_DT_COUNT = SEQRT_DTYPE_COUNT
} rt_dtype;

const char *rt_dtype_name(int32_t dt); /* "f32", ...; "?" when out of range */
size_t rt_dtype_size(int32_t dt);      /* bytes per element; 0 when out of range */

/* Status codes of a generated run function (the values of cg_status in
 * codegen/cg.h, which the runtime cannot include). */
enum {
  RT_RUN_DIM_MISMATCH = 1,  /* a dim equality the compiler could not prove fails */
  RT_RUN_INDEX_RANGE = 2,   /* a gather index (token id) or sequence length is out of range */
  RT_RUN_INT_DIV_ZERO = 3,  /* integer division by zero or overflow */
  RT_RUN_CAST_RANGE = 4,    /* float to integer conversion of NaN or out of range */
  RT_RUN_INT_OVERFLOW = 5,  /* an integer result does not fit its dtype */
};
/* A run status is code + RT_RUN_OP_SCALE * (op + 1) (the failing op of the
 * compiled graph); the message comes from the code. */
#define RT_RUN_OP_SCALE 16
/* The message for a run status code ("unknown status" for other values). */
const char *rt_run_status_message(int32_t code);

/* Limits on descriptors and call values. */
#define RT_MAX_RANK 64                         /* axes of one tensor */
#define RT_MAX_TENSORS 65536                   /* inputs, params or outputs of one model */
#define RT_MAX_SYMBOL_VALUE ((int64_t)1 << 31) /* largest max value of a call symbol */

/* The descriptor types are the public ones of seqrt_types.h (documented
 * there); generated glue fills them in. */
typedef seqrt_tensor_desc rt_tensor_desc;
typedef seqrt_model_desc rt_model_desc;

/* Options of rt_model_open (seqrt_types.h): NULL means all defaults. */
typedef seqrt_options rt_options;
#define RT_OPTIONS_SIZE_V1 16
#define RT_MAX_THREADS 1024

typedef struct rt_model rt_model;
typedef struct rt_ctx rt_ctx;

/* Loads the parameters of `d` from a safetensors file (rt_model_open) or a
 * buffer (not kept). Every parameter is bound by name; every missing, extra
 * or mismatched tensor is listed in one RT_EFORMAT message. Parameter
 * symbols are taken from the tensors' shapes; widening conversions
 * (F16/BF16 to f32 or f64, F32 to f64) are exact; narrowing is refused.
 * On failure *out is NULL. */
rt_status rt_model_open(const rt_model_desc *d, const char *path, const rt_options *opt,
                        rt_model **out);
rt_status rt_model_open_memory(const rt_model_desc *d, const void *buf, size_t n,
                               const rt_options *opt, rt_model **out);
void rt_model_close(rt_model *m); /* NULL allowed */

/* The descriptor the model was opened with (NULL, with an error, for NULL). */
const rt_model_desc *rt_model_descriptor(const rt_model *m);
/* The value of symbol `sym` (an index into d->symbols) bound at open, e.g.
 * the vocabulary size; RT_EINVAL for a call symbol or an index out of range. */
rt_status rt_model_symbol(const rt_model *m, int32_t sym, int64_t *value);

/* A context for calls with call symbols up to max_call_symbols (one value
 * per call symbol, each in [0, RT_MAX_SYMBOL_VALUE]; NULL when there are
 * none). Allocates the scratch memory for those maxima once. */
rt_status rt_ctx_new(const rt_model *m, const int64_t *max_call_symbols, rt_ctx **out);
void rt_ctx_free(rt_ctx *c); /* NULL allowed */

/* Runs the model: call_symbols has one value per call symbol (within the
 * ctx's maxima), inputs one pointer per input and outputs one per output
 * (dense row-major arrays, shapes from d->dims; a pointer may be NULL only
 * when its tensor has no elements). A failed run-time check in the generated
 * code is RT_EINVAL with rt_run_status_message in the message; outputs are
 * then unspecified. */
rt_status rt_forward(rt_ctx *c, const int64_t *call_symbols, const void *const *inputs,
                     void *const *outputs);

/* ---- streaming (runtime/stream.c; docs/abi.md, "Streaming") ----------------
 * Every function fails with RT_ESTATE when the model has no step. A ctx's
 * stream starts at ctx_new with every call symbol at its maximum. */

/* Starts a new stream: pos = 0, the call symbols other than time set to
 * `values` (in call_symbols order, the time symbol skipped; NULL when there
 * are none), each within the ctx's maxima. */
rt_status rt_reset(rt_ctx *c, const int64_t *values);
/* Runs n steps: inputs and outputs as for rt_forward with T = n. On
 * failure the stream is unchanged. With a KV cache, the stream holds at
 * most the ctx's maximum T steps. */
rt_status rt_step_n(rt_ctx *c, int64_t n, const void *const *inputs, void *const *outputs);
/* The saved state (format in runtime/stream.c): its size, a copy into buf,
 * a load from buf, and a copy between two contexts of one model. */
size_t rt_state_size(const rt_ctx *c);
rt_status rt_state_save(const rt_ctx *c, void *buf, size_t n);
rt_status rt_state_load(rt_ctx *c, const void *buf, size_t n);
rt_status rt_state_copy(const rt_ctx *from, rt_ctx *to);

#endif
