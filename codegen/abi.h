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

typedef struct abi_plan {
  const char *name;              /* the model's C identifier: the NAME_ prefix */
  const char *const *symbols;    /* the program's symbols (NAME_run's order) */
  int32_t n_symbols;
  char **symbol_cnames;          /* each symbol as a C parameter name */
  bool *is_param_symbol;         /* fixed by a parameter's shape at open */
  abi_arg *args;                 /* graph arguments in signature order, then outputs */
  int32_t n_args, cap_args;
} abi_plan;

bool abi_plan_make(abi_plan *p, ir_graph *g, const char *name, const char *const *symbols,
                   int32_t n_symbols, ir_diag *d);
void abi_plan_free(abi_plan *p);

/* NAME.h: the public header (self-contained, C11 and C++). */
void abi_write_header(const abi_plan *p, const ir_graph *g, ir_buf *out);
/* NAME.c: the glue implementing NAME.h with runtime/model.h. */
void abi_write_glue(const abi_plan *p, const ir_graph *g, uint64_t fingerprint, ir_buf *out);

/* The public types every generated header carries (seqrt_options,
 * seqrt_tensor_desc, seqrt_model_desc): the text of runtime/seqrt_types.h,
 * embedded when seqc is built. */
extern const char abi_public_types[];

#endif
