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
 *   int32_t NAME_init(const int64_t *syms, void *const *args,
 *                     void *const *hoisted, void *scratch);
 *   int64_t NAME_init_scratch_bytes(const int64_t *syms);
 *   int32_t NAME_run(const int64_t *syms, void *const *args,
 *                    void *const *outs, void *scratch);
 *   int64_t NAME_scratch_bytes(const int64_t *syms);
 *
 * syms holds the value of every dim symbol, in the order of
 * cg_program.symbols (sorted by name). Every tensor is a dense row-major
 * array in the value's dtype (f16/bf16 as 16-bit patterns, bool as one
 * byte).
 *
 * NAME_init runs once, when the model opens: it computes the results of
 * the graph's `init` op (the const-hoist pass puts weight transposes,
 * folded biases... there) into hoisted[0..k), k = cg_graph_hoisted(g),
 * buffers the caller allocates from the init op's result types. Those
 * types involve parameter dims only, so syms needs only the symbols that
 * are whole dims of some parameter (others may be 0). args is laid out as
 * NAME_run's first part; only parameters are read (input pointers may be
 * NULL). Without an init op, NAME_init returns 0 and
 * NAME_init_scratch_bytes 0.
 *
 * NAME_run's args holds one pointer per graph argument (inputs and
 * parameters in signature order), then the k hoisted buffers NAME_init
 * filled, in order; outs holds one per output.
 *
 * scratch is 64-byte aligned and holds NAME_scratch_bytes(syms) bytes
 * (NAME_init_scratch_bytes(syms) for NAME_init); it need not survive
 * between calls. NAME_init and NAME_run return 0, or a cg_status code when
 * a run-time check fails.
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

/* The memory plan's test mode (docs/codegen.md, "Memory"; lower_memplan.c):
 * NAME_run keeps a poisoned redzone after every slot of the plan and
 * poisons a slot while no buffer lives in it, and the module is built with
 * LLVM's AddressSanitizer, so that an access outside the live buffers is
 * reported. The code calls the ASan runtime: only a process that has it
 * (seqc built with `make SANITIZE=1`) can run it. The last two plant a bug
 * in the plan, to show that the check fails. */
typedef enum cg_memplan_check {
  CG_MEMPLAN_CHECK_OFF,
  CG_MEMPLAN_CHECK_ON,
  CG_MEMPLAN_CHECK_SHARE_LIVE, /* a value's slot is free right after the op that makes it */
  CG_MEMPLAN_CHECK_UNDERSIZE,  /* a value takes a free slot of any size */
} cg_memplan_check;

typedef struct cg_options {
  const char *triple;   /* NULL: the host */
  const char *cpu;      /* NULL: the host CPU (or "generic" for another triple) */
  const char *features; /* NULL: the host's features (or none for another triple) */
  int opt_level;        /* 0..3: LLVM's pipeline; llvm.fmuladd (cg_fmuladd) only at >= 2 */
  cg_memplan_check memplan_check; /* a test mode, OFF but for tests (JIT only) */
} cg_options;

typedef struct cg_program cg_program;

/* Lower g (verified; `attention` already decomposed, see the decompose pass)
 * into a module for the target and run LLVM's pipeline for opt_level. NULL
 * after reporting an error. */
cg_program *cg_compile(ir_graph *g, const cg_options *o, ir_diag *d);
void cg_program_free(cg_program *p);

/* Number of results of g's `init` op (the hoisted tensors NAME_init
 * computes and NAME_run reads after the graph arguments), 0 when g has
 * none; *init_op (if not NULL) is that op or IR_NONE. Their types are the
 * init op's result types. */
int32_t cg_graph_hoisted(const ir_graph *g, ir_opid *init_op);

/* Symbol names in the order NAME_run expects their values. */
int32_t cg_program_symbols(const cg_program *p, const char *const **names);
/* The C identifier used for NAME. */
const char *cg_program_name(const cg_program *p);

/* LLVM IR text, assembly text or object bytes for the program's target.
 * LLVM's pipeline runs on the program's first emission. */
bool cg_emit(cg_program *p, cg_emit_kind kind, ir_buf *out, ir_diag *d);
/* A shared object's code: p's and other's (NULL, or a program of the
 * same model, whose functions p's share are then optimized and emitted
 * once) as one module, optimized for p's target and emitted as up to
 * CG_OBJECTS_MAX objects in objs, in a fixed order, on two threads
 * (module.c says how); how many (0 after reporting an error). Both
 * programs stay as they were; neither may have been emitted or
 * JIT-compiled before. */
#define CG_OBJECTS_MAX 3
int32_t cg_emit_objects(const cg_program *p, const cg_program *other, ir_buf objs[CG_OBJECTS_MAX], ir_diag *d);

/* ---- shared objects (abi.c, link.c) ---------------------------------------- */

/* What a shared object is built from: the forward program and, when the
 * model streams, the step program (passes/stream.h), each with the graph
 * it was compiled from. */
typedef struct cg_model {
  cg_program *forward;
  ir_graph *forward_graph;
  const char *time_sym;  /* the time dim symbol (T) */
  cg_program *step;      /* NULL when the model has no step */
  ir_graph *step_graph;
  const char *no_step;   /* why, when step is NULL */
  int32_t n_state;       /* state arguments of step, after its pos argument */
  const char *past_sym;  /* step's symbol for pos, or NULL */
  const char *cap_sym;   /* step's symbol for the KV-cache capacity, or NULL */
} cg_model;

/* NAME.h for m: the C interface of its shared object. */
bool cg_emit_header(const cg_model *m, ir_buf *out, ir_diag *d);
/* Link m (compiled PIC for this architecture) with the runtime into a
 * self-contained shared object at so_path, written atomically; its header
 * NAME.h (the one the glue was compiled against) is appended to `header`.
 * Needs a C compiler (`cc`, or $CC) to compile the glue and link. */
bool cg_emit_shared(const cg_model *m, const char *so_path, ir_buf *header, ir_diag *d);

/* ---- running in process (jit.c holds every ORC call) ---------------------- */

typedef struct cg_jit cg_jit;
/* JIT-compile p for the host. p must target the host (the default) and
 * must outlive the JIT. */
cg_jit *cg_jit_new(cg_program *p, ir_diag *d);
void cg_jit_free(cg_jit *j);
/* NAME_run; exec is a seqrt_exec (runtime/exec.h) or NULL. */
typedef int32_t (*cg_run_fn)(const int64_t *syms, void *const *args, void *const *outs,
                             void *scratch, void *exec);
/* NAME_init: NAME_run's arguments without exec. */
typedef int32_t (*cg_init_fn)(const int64_t *syms, void *const *args, void *const *hoisted,
                              void *scratch);
typedef int64_t (*cg_scratch_fn)(const int64_t *syms);
cg_run_fn cg_jit_run_fn(const cg_jit *j);
cg_scratch_fn cg_jit_scratch_fn(const cg_jit *j);
/* NAME_init and NAME_init_scratch_bytes. */
cg_init_fn cg_jit_init_fn(const cg_jit *j);
cg_scratch_fn cg_jit_init_scratch_fn(const cg_jit *j);
/* The symbol order of the run function (the program's). */
int32_t cg_jit_symbols(const cg_jit *j, const char *const **names);

/* Run compiled code on interpreter tensors (the same calling convention as
 * ir_interp_run, so `seqc run`, `seqc check` and the tests can swap one for
 * the other). */
bool cg_jit_run_tensors(cg_jit *j, ir_graph *g, const ir_tensor *args, int32_t n_args,
                        ir_tensor *outs, const ir_interp_opts *opts, ir_buf *err);

#endif
