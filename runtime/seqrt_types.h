/*
 * seqrt_types.h - the types every header seqc generates shares: options for
 * opening a model, and the descriptor of a compiled model (its inputs,
 * parameters, outputs, dims, dtypes and entry points) for generic tools.
 *
 * This file is the one definition: seqc embeds its text in every generated
 * NAME.h, and the runtime (runtime/model.h) uses the same types, so the two
 * cannot drift. It is a stable ABI: fields are only ever appended, values
 * never change. Several generated headers may be included together.
 */
#ifndef SEQRT_TYPES_H
#define SEQRT_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Element types, with the values (and order) of ir_dtype. Fixed forever:
 * they are compiled into generated descriptors. */
enum seqrt_dtype {
  SEQRT_F32 = 0,
  SEQRT_F64 = 1,
  SEQRT_F16 = 2,  /* IEEE half, passed as 16-bit patterns */
  SEQRT_BF16 = 3, /* bfloat16, passed as 16-bit patterns */
  SEQRT_I32 = 4,
  SEQRT_I64 = 5,
  SEQRT_BOOL = 6, /* one byte, 0 or 1 */
  SEQRT_DTYPE_COUNT
};

/* Options of NAME_open; NULL means all defaults. struct_size is
 * sizeof(seqrt_options) as the caller was compiled: the runtime accepts the
 * sizes of every released version (older callers get defaults for newer
 * fields) and rejects 0 or an unknown size. Fields are only ever appended;
 * reserved fields must be 0 (they keep the size distinct per version). */
typedef struct seqrt_options {
  size_t struct_size;
  int num_threads; /* 0: default (1); 1..1024. Calls run on the calling thread for now */
  int reserved;    /* must be 0 */
} seqrt_options;

/* One input, parameter or output. */
typedef struct seqrt_tensor_desc {
  const char *name;           /* as in the model (a parameter's tensor name in the file) */
  int32_t dtype;              /* a SEQRT_* dtype */
  int32_t rank;               /* 0..64 */
  const int32_t *dim_symbols; /* rank entries: index into symbols when the axis is exactly that
                                 symbol, else -1; NULL means all -1 */
} seqrt_tensor_desc;

/* A model's functions in array form, for tools that know a model only by
 * its descriptor (dlopen + NAME_descriptor). They behave as the NAME_*
 * functions of its header; dims arrays hold the call symbols in the order
 * of call_symbols, inputs and outputs one pointer each in signature order. */
typedef struct seqrt_entry_points {
  int (*open)(const char *safetensors_path, const seqrt_options *opt, void **model);
  int (*open_memory)(const void *buf, size_t n, const seqrt_options *opt, void **model);
  int (*ctx_new)(const void *model, const int64_t *max_call_symbols, void **ctx);
  int (*forward)(void *ctx, const int64_t *call_symbols, const void *const *inputs,
                 void *const *outputs);
  void (*ctx_free)(void *ctx);
  void (*close)(void *model);
  const char *(*last_error)(void);
} seqrt_entry_points;

/* Everything the runtime knows about one compiled model, emitted by seqc. */
typedef struct seqrt_model_desc {
  const char *name;          /* C identifier; prefixes error messages */
  uint64_t fingerprint;      /* of the compiled graph; identifies saved states */
  int32_t n_symbols;         /* dim symbols, in the order run() takes their values */
  const char *const *symbols;
  int32_t n_inputs;          /* graph arguments that are inputs, in signature order */
  const seqrt_tensor_desc *inputs;
  int32_t n_params;          /* graph arguments that are parameters (weights) */
  const seqrt_tensor_desc *params;
  /* n_inputs + n_params entries: for each graph argument in signature order,
   * its input index, or n_inputs + its param index. A permutation. */
  const int32_t *arg_order;
  int32_t n_outputs;
  const seqrt_tensor_desc *outputs;
  /* Writes the dims of every input, then every param, then every output
   * (ranks concatenated) for the given symbol values. Must not trap for any
   * values; a dim that overflows or divides by zero is written negative. */
  void (*dims)(const int64_t *syms, int64_t *out);
  /* The generated code: run(syms, args, outs, scratch) computes the outputs
   * (args in signature order; 0 or a status code), scratch_bytes(syms) the
   * scratch memory run needs (negative on overflow). */
  int32_t (*run)(const int64_t *syms, void *const *args, void *const *outs, void *scratch);
  int64_t (*scratch_bytes)(const int64_t *syms);
  /* Symbols bound by parameter shapes at open (a vocabulary size V), as
   * indices into symbols; each is exactly some axis of some parameter
   * (dim_symbols). */
  int32_t n_param_symbols;
  const int32_t *param_symbols;
  /* The others, given to NAME_ctx_new (maxima) and NAME_forward (values)
   * in this order (B, T, ...). Parameter shapes never depend on them. Together with
   * param_symbols, every symbol exactly once. */
  int32_t n_call_symbols;
  const int32_t *call_symbols;
  /* The model's functions in array form (see seqrt_entry_points). */
  const seqrt_entry_points *entry;
} seqrt_model_desc;


#endif
