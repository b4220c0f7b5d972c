/*
 * abi.h - internal: the interface of a model's shared object (abi.c) and
 * how it is linked (link.c).
 */
#ifndef SEQC_CODEGEN_ABI_H
#define SEQC_CODEGEN_ABI_H

#include "cg.h"

typedef enum abi_role { ABI_INPUT, ABI_PARAM, ABI_OUTPUT } abi_role;

typedef struct abi_arg {
  const char *name; /* as in the graph */
  char *cname;      /* as a C parameter: an identifier that collides with nothing */
  ir_type type;
  abi_role role;
} abi_arg;

/* A tensor of a program that is not a forward argument: a value computed
 * at open, or a state tensor of step. */
typedef struct abi_tensor {
  const char *name;
  ir_type type;
} abi_tensor;

/* One compiled program of the model (forward or step). */
typedef struct abi_prog {
  const char *fn;             /* prefix of its functions: NAME or NAME_step */
  const ir_graph *g;
  const char *const *symbols; /* its run's symbol order */
  int32_t n_symbols;
  abi_tensor *hoisted;        /* the results of its init op */
  int32_t n_hoisted;
} abi_prog;

typedef struct abi_plan {
  const char *name;              /* the model's C identifier: the NAME_ prefix */
  const char *const *symbols;    /* the model's symbols: forward's run order */
  int32_t n_symbols;
  char **symbol_cnames;          /* each symbol as a C parameter name */
  bool *is_param_symbol;         /* fixed by a parameter's shape at open */
  abi_arg *args;                 /* graph arguments in signature order, then outputs */
  int32_t n_args, cap_args;
  abi_prog forward, step;        /* step.g is NULL when the model has no step */
  const char *no_step;           /* why not, then */
  int32_t time_symbol;           /* index of T in symbols, or -1 */
  abi_tensor *state;             /* step's state arguments */
  int32_t n_state;
  const char *past_sym, *cap_sym;
} abi_plan;

bool abi_plan_make(abi_plan *p, const cg_model *m, ir_diag *d);
void abi_plan_free(abi_plan *p);

/* NAME.h: the public header (self-contained, C11 and C++). */
void abi_write_header(const abi_plan *p, ir_buf *out);
/* NAME.c: the glue implementing NAME.h with runtime/model.h. */
void abi_write_glue(const abi_plan *p, uint64_t fingerprint, ir_buf *out);

/* The public types every generated header carries (seqrt_options,
 * seqrt_tensor_desc, seqrt_model_desc): the text of runtime/seqrt_types.h,
 * embedded when seqc is built. */
extern const char abi_public_types[];

#endif
