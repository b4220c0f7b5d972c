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
  int num_threads; /* threads per context, the caller's included: 1..1024; 0: $SEQRT_NUM_THREADS or 1 */
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
 * of call_symbols, inputs and outputs one pointer each in signature order.
 * The streaming functions are NULL when the model has no step: step_n takes
 * n new steps (T = n), reset the call symbols other than T (in
 * call_symbols order, T skipped). */
typedef struct seqrt_entry_points {
  int (*open)(const char *safetensors_path, const seqrt_options *opt, void **model);
  int (*open_memory)(const void *buf, size_t n, const seqrt_options *opt, void **model);
  int (*ctx_new)(const void *model, const int64_t *max_call_symbols, void **ctx);
  int (*forward)(void *ctx, const int64_t *call_symbols, const void *const *inputs,
                 void *const *outputs);
  void (*ctx_free)(void *ctx);
  void (*close)(void *model);
  const char *(*last_error)(void);
  int (*step_n)(void *ctx, int64_t n, const void *const *inputs, void *const *outputs);
  int (*reset)(void *ctx, const int64_t *stream_symbols);
  size_t (*state_size)(const void *ctx);
  int (*state_save)(const void *ctx, void *buf, size_t n);
  int (*state_load)(void *ctx, const void *buf, size_t n);
  int (*state_copy)(const void *from, void *to);
} seqrt_entry_points;

/* Where a program symbol's value comes from (seqrt_program.symbol_map):
 * an index into the model's symbols, or one of these. */
enum {
  SEQRT_SYM_PAST = -1, /* the steps a stream consumed before this call (pos) */
  SEQRT_SYM_CAP = -2   /* the ctx's maximum of the time symbol: KV-cache capacity */
};

/* One compiled program (forward or step): generated functions and the
 * values its init computes once, at open, from the parameters. */
typedef struct seqrt_program {
  /* run(syms, args, outs, scratch, exec): args are the program's graph
   * arguments in signature order, then the hoisted values; exec is the
   * runtime's services for the call (thread pool, profiler) or NULL; 0 or a
   * status code. */
  int32_t (*run)(const int64_t *syms, void *const *args, void *const *outs, void *scratch,
                 void *exec);
  int64_t (*scratch_bytes)(const int64_t *syms); /* negative on overflow */
  /* init(syms, args, hoisted, scratch): reads only parameters. */
  int32_t (*init)(const int64_t *syms, void *const *args, void *const *hoisted, void *scratch);
  int64_t (*init_scratch_bytes)(const int64_t *syms);
  int32_t n_hoisted; /* dims depend on parameter symbols only */
  const seqrt_tensor_desc *hoisted;
  void (*hoisted_dims)(const int64_t *syms, int64_t *out); /* ranks concatenated */
  /* The program's symbols in the order run takes them: for each, a model
   * symbol index or a SEQRT_SYM_* value. */
  int32_t n_symbols;
  const int32_t *symbol_map;
  /* A run status names the failing op by its index (docs/abi.md): its
   * description ("gather 'emb' at model.yaml:12:5"), NULL when unknown. */
  int32_t n_ops;
  const char *const *op_names;
} seqrt_program;

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
  /* The generated code of forward (its symbol_map is the identity). */
  const seqrt_program *forward;
  /* Streaming (docs/abi.md, "Streaming"): time_symbol indexes T in symbols
   * (-1 when the model has none). step is NULL when the model cannot
   * stream, and no_step then says which op prevents it. The step program
   * takes the model's arguments, then pos (int64 scalar), then the state
   * tensors; it writes the outputs, then the new state tensors. */
  int32_t time_symbol;
  const char *no_step;
  const seqrt_program *step;
  int32_t n_state;
  const seqrt_tensor_desc *state; /* dim_symbols index the step program's symbols */
  void (*state_dims)(const int64_t *step_syms, int64_t *out); /* ranks concatenated */
  /* n_params flags: 1 when only the programs' inits read the parameter (a
   * weight that is only packed), so the runtime frees its bytes once the
   * inits ran; NULL when run reads every parameter. */
  const uint8_t *param_init_only;
} seqrt_model_desc;


#endif
