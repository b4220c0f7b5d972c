/*
 * ir.h - the seqc IR: what every later stage (frontend, passes, codegen)
 * builds, reads and rewrites. docs/ir.md explains the design; in short:
 *
 *  - A graph owns everything: an arena for arrays and strings, a table of
 *    interned dim expressions, and growable arrays of values, ops and blocks
 *    that are referred to by small integer ids (ir_val, ir_opid, ir_blockid),
 *    stable across growth. IR_NONE (-1) is "no such thing".
 *  - Values are SSA tensors with a dtype and a shape of dim expressions. A
 *    value is either an op result or a block argument.
 *  - An op has operands, results, typed attributes (schema from ops.def) and
 *    regions. A region is one block: arguments, a list of ops, and a
 *    terminating `yield`. Regions are isolated from above: a body only sees
 *    its own arguments and values it defines.
 *  - The graph body is a block whose arguments are the graph's inputs and
 *    parameters and whose `yield` gives the outputs (named in output_names).
 */
#ifndef SEQC_IR_H
#define SEQC_IR_H

#include "support.h"
#include "dim.h"

#define IR_NONE (-1)
/* Columns per panel of pack_rhs / matmul_packed: a fixed, target-independent
 * layout (two 16-lane, four 8-lane or eight 4-lane vectors). */
#define IR_PACK_WIDTH 32

typedef int32_t ir_val;     /* index into graph->vals */
typedef int32_t ir_opid;    /* index into graph->ops */
typedef int32_t ir_blockid; /* index into graph->blocks */

/* ---- dtypes ------------------------------------------------------------ */

typedef enum ir_dtype {
  IR_F32, IR_F64, IR_F16, IR_BF16, IR_I32, IR_I64, IR_BOOL,
  IR_DTYPE_COUNT
} ir_dtype;

const char *ir_dtype_name(ir_dtype dt);             /* "f32" ... */
bool ir_dtype_parse(const char *s, size_t n, ir_dtype *out);
size_t ir_dtype_size(ir_dtype dt);                  /* bytes per element */
bool ir_dtype_is_float(ir_dtype dt);                /* f32 f64 f16 bf16 */
bool ir_dtype_is_int(ir_dtype dt);                  /* i32 i64 */

/* ---- tensor types -------------------------------------------------------- */

typedef struct ir_type {
  ir_dtype dtype;
  int32_t rank;
  const ir_dim *dims; /* rank entries, in the graph's dim table and arena */
} ir_type;

/* ---- ops and attributes -------------------------------------------------- */

typedef enum ir_opkind {
#define OP(id, ...) IR_OP_##id,
#include "ops.def"
  IR_OP_COUNT
} ir_opkind;

enum ir_op_flags {
  IR_PURE = 1 << 0,
  IR_ELEMENTWISE = 1 << 1,
  IR_TERMINATOR = 1 << 2,
  IR_COMMUTATIVE = 1 << 3,
  IR_DECLARED = 1 << 4,
};

typedef enum ir_attr_kind {
  IR_ATTR_INT, IR_ATTR_INTS, IR_ATTR_FLOAT, IR_ATTR_BOOL, IR_ATTR_DIM, IR_ATTR_DIMS,
  IR_ATTR_TENSOR, IR_ATTR_ENUM
} ir_attr_kind;

/* Values of enumerated attributes (ops.def ENUM lines). */
enum { IR_CMP_EQ, IR_CMP_NE, IR_CMP_LT, IR_CMP_LE, IR_CMP_GT, IR_CMP_GE };
enum { IR_MASK_NONE, IR_MASK_CAUSAL, IR_MASK_PADDING, IR_MASK_WINDOW, IR_MASK_PREFIX, IR_MASK_CAUSAL_PADDING };
/* Masks that read attention's 4th operand, lengths. */
static inline bool ir_mask_uses_lengths(int64_t m) {
  return m == IR_MASK_PADDING || m == IR_MASK_PREFIX || m == IR_MASK_CAUSAL_PADDING;
}
enum { IR_GELU_NONE, IR_GELU_TANH };

/* Declared attribute of an op (from ops.def). */
typedef struct ir_attr_decl {
  const char *name;
  ir_attr_kind kind;
  bool required;
  double dflt;                 /* value when absent (INT/FLOAT/BOOL/ENUM) */
  const char *const *enum_names; /* for IR_ATTR_ENUM, NULL-terminated */
} ir_attr_decl;

/* Static facts about an op kind, derived from ops.def. */
typedef struct ir_opinfo {
  const char *name;
  const char *doc;
  const ir_attr_decl *attrs;
  int32_t n_attrs;
  int32_t min_in, max_in; /* max_in -1: variadic */
  int32_t n_out;          /* -1: decided by the op's shape rule */
  int32_t n_regions;
  unsigned flags;
} ir_opinfo;

const ir_opinfo *ir_opinfo_of(ir_opkind k);
bool ir_opkind_parse(const char *s, size_t n, ir_opkind *out);
/* Index of attribute `name` in kind's schema, or -1. */
int32_t ir_attr_index(ir_opkind k, const char *name);

/* Constant data: `n` elements (1 = splat) in the constant's dtype category:
 * f for float dtypes, i for integer and bool dtypes. */
typedef struct ir_tensor_data {
  int64_t n;
  double *f;
  int64_t *i;
} ir_tensor_data;

typedef struct ir_attr {
  bool present;
  union {
    int64_t i;    /* INT, BOOL (0/1), ENUM (index) */
    double f;     /* FLOAT */
    ir_dim d;     /* DIM */
    struct { int32_t n; const int64_t *v; } ints;  /* INTS */
    struct { int32_t n; const ir_dim *v; } dims;   /* DIMS */
    const ir_tensor_data *t;                       /* TENSOR */
  } u;
} ir_attr;

typedef struct ir_value {
  ir_type type;
  const char *name; /* NULL: anonymous, the printer numbers it */
  ir_opid def;      /* defining op, IR_NONE for a block argument */
  ir_blockid block; /* owning block of an argument; IR_NONE for results */
  int32_t index;    /* result index, or argument index */
  bool is_param;    /* graph argument that is a weight, not an input */
} ir_value;

typedef struct ir_op {
  ir_opkind kind;
  int32_t n_in, n_out, n_regions;
  ir_val *in;
  ir_val *out;
  ir_blockid *regions;
  ir_attr *attrs;    /* one per declared attribute of the kind */
  ir_blockid block;  /* containing block, IR_NONE while detached */
  ir_opid prev, next;
  ir_loc loc;
  bool erased;
} ir_op;

typedef struct ir_block {
  int32_t n_args;
  ir_val *args;
  ir_opid first, last;
  ir_opid parent; /* op owning this region; IR_NONE for the graph body */
} ir_block;

typedef struct ir_graph {
  ir_arena *arena;
  ir_dimtab *dims;
  const char *name;
  ir_value *vals;
  int32_t n_vals, cap_vals;
  ir_op *ops;
  int32_t n_ops, cap_ops;
  ir_block *blocks;
  int32_t n_blocks, cap_blocks;
  ir_blockid body;
  const char **output_names; /* one per operand of the body's yield */
  int32_t n_outputs;
  bool plan_memory; /* the memplan pass ran: codegen reuses dead buffers (text: `memplan` after the results) */
} ir_graph;

/* ---- construction -------------------------------------------------------- */

ir_graph *ir_graph_new(const char *name);
void ir_graph_free(ir_graph *g);

ir_type ir_type_make(ir_graph *g, ir_dtype dt, int32_t rank, const ir_dim *dims);
ir_type ir_type_static(ir_graph *g, ir_dtype dt, int32_t rank, const int64_t *dims);
/* t without its dim `axis` (a scan step's slice of a sequence along axis). */
ir_type ir_type_without_dim(ir_graph *g, ir_type t, int64_t axis);
bool ir_type_equal(ir_type a, ir_type b); /* dims interned in the same table */
bool ir_dims_equal(ir_type a, ir_type b); /* the same dims, whatever the dtypes */
/* Element count if every dim is a constant; -1 otherwise or on overflow. */
int64_t ir_type_static_numel(const ir_graph *g, ir_type t);
/* The element count of t as a dim (the product of its dims by dim
 * algebra), IR_DIM_INVALID on overflow. */
ir_dim ir_type_numel_dim(ir_graph *g, ir_type t);

static inline ir_value *ir_v(const ir_graph *g, ir_val v) { return &g->vals[v]; }
static inline ir_op *ir_o(const ir_graph *g, ir_opid o) { return &g->ops[o]; }
static inline ir_block *ir_b(const ir_graph *g, ir_blockid b) { return &g->blocks[b]; }
static inline ir_type ir_vtype(const ir_graph *g, ir_val v) { return g->vals[v].type; }

void ir_value_set_name(ir_graph *g, ir_val v, const char *name);

ir_blockid ir_block_new(ir_graph *g, ir_opid parent);
ir_val ir_block_add_arg(ir_graph *g, ir_blockid b, ir_type t, const char *name);
/* Graph inputs and parameters are arguments of the body block. */
ir_val ir_graph_add_input(ir_graph *g, ir_type t, const char *name, bool is_param);

/* A detached op with fresh results of the given types and empty regions
 * (each a new block owned by the op). Attributes start absent. */
ir_opid ir_op_new(ir_graph *g, ir_opkind k, int32_t n_in, const ir_val *in,
                  int32_t n_out, const ir_type *out_types, ir_loc loc);
void ir_op_append(ir_graph *g, ir_blockid b, ir_opid op);
void ir_op_insert_before(ir_graph *g, ir_opid anchor, ir_opid op);
void ir_op_insert_after(ir_graph *g, ir_opid anchor, ir_opid op);
/* Unlink op from its block and insert it before anchor. */
void ir_op_move_before(ir_graph *g, ir_opid anchor, ir_opid op);
/* Unlink and mark erased, together with the ops of its regions. Its results
 * must be unused (ir_value_use_count). */
void ir_op_erase(ir_graph *g, ir_opid op);
void ir_op_set_operands(ir_graph *g, ir_opid op, int32_t n, const ir_val *in);
/* The terminator (yield) of a block, or IR_NONE. */
ir_opid ir_block_terminator(const ir_graph *g, ir_blockid b);

/* Attribute access by name; the name must be in the op's schema (a bug
 * otherwise). Getters return the declared default when absent. */
void ir_set_int(ir_graph *g, ir_opid op, const char *name, int64_t v);
void ir_set_float(ir_graph *g, ir_opid op, const char *name, double v);
void ir_set_dim(ir_graph *g, ir_opid op, const char *name, ir_dim d);
void ir_set_ints(ir_graph *g, ir_opid op, const char *name, int32_t n, const int64_t *v);
void ir_set_dims(ir_graph *g, ir_opid op, const char *name, int32_t n, const ir_dim *v);
void ir_set_tensor(ir_graph *g, ir_opid op, const char *name, const ir_tensor_data *t);
bool ir_has_attr(const ir_graph *g, ir_opid op, const char *name);
int64_t ir_get_int(const ir_graph *g, ir_opid op, const char *name);
double ir_get_float(const ir_graph *g, ir_opid op, const char *name);
ir_dim ir_get_dim(const ir_graph *g, ir_opid op, const char *name);
const ir_attr *ir_get_attr(const ir_graph *g, ir_opid op, const char *name);

/* A new op appended to block b with result types from shape inference
 * (ir_infer_types); IR_NONE and a diagnostic when inference fails.
 * Attributes are set through `setup`, if any, before inference. For ops
 * whose result types are not inferred (IR_DECLARED) or that have regions,
 * use ir_op_new. */
typedef void (*ir_attr_setup)(ir_graph *g, ir_opid op, void *ud);
ir_opid ir_build(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in,
                 ir_attr_setup setup, void *ud, ir_diag *d, ir_loc loc);
/* The same, inserted before op anchor, at anchor's location. */
ir_opid ir_build_before(ir_graph *g, ir_opid anchor, ir_opkind k, int32_t n_in, const ir_val *in,
                        ir_attr_setup setup, void *ud, ir_diag *d);

/* The op defining v when it is of `kind`, else IR_NONE. */
ir_opid ir_def_of_kind(const ir_graph *g, ir_val v, ir_opkind kind);
/* The data of v when a `constant` op defines it, else NULL. */
const ir_tensor_data *ir_constant_data(const ir_graph *g, ir_val v);

/* How an elementwise op reads an operand of type t for a result of type r,
 * seen as rows of r's last dim: every element (same dims), one row (dims
 * declared 1 except an equal last dim: a bias), one scalar (every dim
 * declared 1), or some other broadcast. */
typedef enum ir_bcast { IR_BCAST_OTHER, IR_BCAST_FULL, IR_BCAST_ROW, IR_BCAST_SCALAR } ir_bcast;
ir_bcast ir_broadcast_class(const ir_graph *g, ir_type t, ir_type r);

/* The kernel a `fused` op's region makes (codegen lowers each form its own
 * way; the fuse pass makes only the first two):
 *  - ELEMENTWISE: elementwise ops only, each over the result's dims (one
 *    loop computes every op per element);
 *  - GEMM: a matmul_packed of two arguments, then elementwise f32 ops over
 *    its result's dims whose arguments are read FULL, ROW or SCALAR (an
 *    epilogue on the product), one result;
 *  - GENERIC: anything else (its ops run one after another). */
typedef enum ir_fused_form { IR_FUSED_GENERIC, IR_FUSED_ELEMENTWISE, IR_FUSED_GEMM } ir_fused_form;
ir_fused_form ir_fused_form_of(const ir_graph *g, ir_opid fused);
/* Concurrent scans (docs/ir.md, the bidir pass): the group of op, k > 0
 * when op is a scan with `concurrent = k` (it may run at once with the
 * adjacent scans of the same k), else 0. */
int64_t ir_concurrent_group(const ir_graph *g, ir_opid op);
/* The first op of op's group, op itself when it has none: where a pass that
 * puts new ops before op must put them, so that the group stays adjacent
 * (what they read is defined before the group, as op's operands are). */
ir_opid ir_concurrent_front(const ir_graph *g, ir_opid op);

/* "<kind> '<first result's name>'" ("matmul 'q'"; the kind alone when the
 * op has no named result), for messages about an op. */
void ir_op_describe(const ir_graph *g, ir_opid op, ir_buf *out);

/* Every dim symbol of g (in value types and dim attributes of live ops),
 * sorted by name; *names (caller frees) points into g's dim table. */
int32_t ir_graph_symbols(const ir_graph *g, const char ***names);

/* ---- walking, uses and mutation ----------------------------------------- */

/* Calls fn on every op of block b and, recursively, of their regions, in
 * order (pre-order: an op before its regions' ops). Stops when fn returns
 * false. Ops erased during the walk are skipped. */
typedef bool (*ir_walk_fn)(ir_graph *g, ir_opid op, void *ud);
bool ir_walk(ir_graph *g, ir_blockid b, ir_walk_fn fn, void *ud);

/* Number of operands (over all ops of the graph) that read v. */
int32_t ir_value_use_count(const ir_graph *g, ir_val v);
/* use_count[v] for every value at once; caller frees. */
int32_t *ir_use_counts(const ir_graph *g);
/* Replace every read of `from` with `to`. Regions are isolated, so only the
 * block defining `from` is searched (the whole graph for a detached op). */
void ir_replace_all_uses(ir_graph *g, ir_val from, ir_val to);

/* Maps values of a source region to values of its copy. */
typedef struct ir_valmap {
  ir_val *to; /* indexed by source value id; IR_NONE = unmapped */
  int32_t cap;
} ir_valmap;
void ir_valmap_init(ir_valmap *m);
void ir_valmap_set(ir_valmap *m, ir_val from, ir_val to);
ir_val ir_valmap_get(const ir_valmap *m, ir_val from); /* from itself if unmapped */
void ir_valmap_free(ir_valmap *m);

/* Copy op (with its regions, recursively) to the end of block `dst`,
 * remapping operands through m and recording its results in m. */
ir_opid ir_op_clone(ir_graph *g, ir_opid op, ir_blockid dst, ir_valmap *m);
/* Copy every op of block src into dst (arguments must already be mapped in
 * m); returns the copy of src's terminator, or IR_NONE if it has none. */
ir_opid ir_block_clone_ops(ir_graph *g, ir_blockid src, ir_blockid dst, ir_valmap *m);

/* Worklist rewriter: calls `rewrite` on every live op of the graph (all
 * regions) and again on ops whose operands changed, until no rewrite
 * reports a change or `max_iterations` rewrites were applied (a bug guard).
 * A rewrite may create, replace and erase ops; it returns true if it changed
 * something. ir_rewrite_notify marks ops to revisit. */
typedef struct ir_rewriter ir_rewriter;
typedef bool (*ir_rewrite_fn)(ir_rewriter *rw, ir_graph *g, ir_opid op, void *ud);
int64_t ir_rewrite_greedy(ir_graph *g, ir_rewrite_fn rewrite, void *ud, int64_t max_iterations);
void ir_rewrite_notify(ir_rewriter *rw, ir_opid op);
/* Replace op's results with `vals` (one per result), re-queue their users
 * and erase op. */
void ir_rewrite_replace(ir_rewriter *rw, ir_graph *g, ir_opid op, const ir_val *vals);

/* ---- text form, verifier, shapes (print.c, parse.c, verify.c, shape.c) --- */

typedef struct ir_print_opts {
  bool locations; /* print loc("file":line:col) after each op */
} ir_print_opts;
void ir_print_graph(const ir_graph *g, const ir_print_opts *opts, ir_buf *out);
void ir_print_type(const ir_graph *g, ir_type t, ir_buf *out);

/* Parse one graph from text `buf[0..len)` named `name` (for diagnostics).
 * Returns NULL with diagnostics in d on error. Does not verify. */
ir_graph *ir_parse(const char *buf, size_t len, const char *name, ir_diag *d);

/* Result types an op must have given its operands and attributes; returns
 * false with a diagnostic at the op's location when the operands or
 * attributes are invalid. For IR_DECLARED ops the results' current types are
 * checked for consistency instead. n_out is set to the number of results.
 * `out` must hold at least max(op->n_out, n) entries where n is known. */
bool ir_infer_types(ir_graph *g, ir_opid op, ir_type *out, int32_t cap, int32_t *n_out,
                    ir_diag *d);

/* Checks the whole graph: types and shapes (via ir_infer_types), use before
 * def, dangling values, region signatures, isolation of regions,
 * terminators, attribute presence and kinds. Reports every error found. */
bool ir_verify(ir_graph *g, ir_diag *d);

#endif
