/*
 * cg.h - the codegen stage: verified IR -> LLVM IR -> native code, run in
 * process (ORC JIT) or written as LLVM IR, assembly or an object file.
 * docs/codegen.md explains the lowering; in short, every op becomes loops
 * over buffers, symbolic dims are computed from the symbol values passed at
 * run time, and intermediate tensors live in one caller-provided scratch
 * block whose size the generated code also computes.
 *
 * The generated module defines, for a graph named NAME (made a C
 * identifier):
 *
 *   int32_t NAME_run(const int64_t *syms, void *const *args,
 *                    void *const *outs, void *scratch);
 *   int64_t NAME_scratch_bytes(const int64_t *syms);
 *
 * syms holds the value of every dim symbol, in the order of
 * cg_program.symbols (sorted by name). args holds one pointer per graph
 * argument (inputs and parameters in signature order) and outs one per
 * output, each a dense row-major array in the value's dtype (f16/bf16 as
 * 16-bit patterns, bool as one byte). scratch is 64-byte aligned and holds
 * NAME_scratch_bytes(syms) bytes. NAME_run returns 0, or a cg_status code
 * when a run-time check fails.
 */
#ifndef SEQC_CODEGEN_CG_H
#define SEQC_CODEGEN_CG_H

#include "../ir/interp.h"
#include "../ir/ir.h"

/* Run-time check failures reported by generated code. NAME_run returns
 * code + CG_STATUS_OP_SCALE * (op + 1): the low bits say what failed
 * (cg_status_code), the rest which op of the compiled graph (cg_status_op,
 * IR_NONE when unknown). */
#define CG_STATUS_OP_SCALE 16
static inline int32_t cg_status_code(int32_t status) { return status % CG_STATUS_OP_SCALE; }
static inline int32_t cg_status_op(int32_t status) { return status / CG_STATUS_OP_SCALE - 1; }
typedef enum cg_status {
  CG_OK = 0,
  CG_DIM_MISMATCH = 1,    /* two dims the verifier could not prove equal differ */
  CG_INDEX_RANGE = 2,     /* gather index or sequence length out of range */
  CG_INT_DIV_ZERO = 3,    /* integer division by zero or overflow (INT_MIN / -1) */
  CG_CAST_RANGE = 4,      /* float to integer cast of NaN or out of range */
  CG_INT_OVERFLOW = 5,    /* an integer result does not fit its dtype (i64: |x| < 2^53) */
  CG_STATUS_COUNT
} cg_status;
const char *cg_status_message(int32_t code);

typedef enum cg_emit_kind { CG_EMIT_LLVM, CG_EMIT_ASM, CG_EMIT_OBJ } cg_emit_kind;

typedef struct cg_options {
  const char *triple;   /* NULL: the host */
  const char *cpu;      /* NULL: the host CPU (or "generic" for another triple) */
  const char *features; /* NULL: the host's features (or none for another triple) */
  int opt_level;        /* 0..3: LLVM's pipeline; contract only at >= 2 */
} cg_options;

typedef struct cg_program cg_program;

/* Lower g (verified; `attention` already decomposed, see the decompose pass)
 * into a module for the target and run LLVM's pipeline for opt_level. NULL
 * after reporting an error. */
cg_program *cg_compile(ir_graph *g, const cg_options *o, ir_diag *d);
void cg_program_free(cg_program *p);

/* Symbol names in the order NAME_run expects their values. */
int32_t cg_program_symbols(const cg_program *p, const char *const **names);
/* The C identifier used for NAME. */
const char *cg_program_name(const cg_program *p);

/* LLVM IR text, assembly text or object bytes for the program's target. */
bool cg_emit(cg_program *p, cg_emit_kind kind, ir_buf *out, ir_diag *d);

/* ---- shared objects (abi.c, link.c) ---------------------------------------- */

/* NAME.h for p compiled from g: the C interface of its shared object. */
bool cg_emit_header(cg_program *p, ir_graph *g, ir_buf *out, ir_diag *d);
/* Link p (compiled from g, PIC, for this architecture) with the runtime
 * into a self-contained shared object at so_path, written atomically; its
 * header NAME.h (the one the glue was compiled against) is appended to
 * `header`. Needs a C compiler (`cc`, or $CC) to compile the glue and link. */
bool cg_emit_shared(cg_program *p, ir_graph *g, const char *so_path, ir_buf *header, ir_diag *d);

/* ---- running in process (jit.c holds every ORC call) ---------------------- */

typedef struct cg_jit cg_jit;
/* JIT-compile p for the host. p must target the host (the default) and
 * must outlive the JIT. */
cg_jit *cg_jit_new(cg_program *p, ir_diag *d);
void cg_jit_free(cg_jit *j);
typedef int32_t (*cg_run_fn)(const int64_t *syms, void *const *args, void *const *outs,
                             void *scratch);
typedef int64_t (*cg_scratch_fn)(const int64_t *syms);
cg_run_fn cg_jit_run_fn(const cg_jit *j);
cg_scratch_fn cg_jit_scratch_fn(const cg_jit *j);
/* The symbol order of the run function (the program's). */
int32_t cg_jit_symbols(const cg_jit *j, const char *const **names);

/* Run compiled code on interpreter tensors (the same calling convention as
 * ir_interp_run, so `seqc run`, `seqc check` and the tests can swap one for
 * the other). */
bool cg_jit_run_tensors(cg_jit *j, ir_graph *g, const ir_tensor *args, int32_t n_args,
                        ir_tensor *outs, const ir_interp_opts *opts, ir_buf *err);

#endif
