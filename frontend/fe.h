/*
 * fe.h - internals shared by the YAML frontend's files (not a public
 * header; frontend.h is). The model builder (model.c) walks the document
 * tree (yaml_doc.h) with the schema helpers of schema.c, parses text inside
 * scalars (types, dims, numbers) with scalar.c, turns op lines into ops with
 * opline.c, and dispatches block nodes (`- scan: ...`) through the table in
 * blocks.c.
 *
 * Every function that can fail reports one error through the context's
 * diag and returns false; the first error stops the load.
 */
#ifndef SEQC_FRONTEND_FE_H
#define SEQC_FRONTEND_FE_H

#include "../ir/ir.h"
#include "yaml_doc.h"

enum {
  FE_MAX_CALL_DEPTH = 64, /* nested calls in one op line */
  FE_MAX_RANK = 64,       /* dims in a type or shape */
};

typedef struct fe_ctx {
  ir_graph *g;
  ir_diag *d;
  const char *file; /* interned in g->arena: ops keep it in their locations */
  ir_buf text[6];   /* rotating buffers for excerpts and types in messages */
  int32_t next_text;
} fe_ctx;

/* ---- locations and messages (schema.c) ---------------------------------- */

ir_loc fe_loc(const fe_ctx *c, const fe_ynode *n);
/* Location of byte `offset` of a scalar's value: exact when the value stands
 * verbatim on one source line, else the scalar's start. */
ir_loc fe_loc_at(const fe_ctx *c, const fe_ynode *scalar, size_t offset);
bool fe_fail(fe_ctx *c, ir_loc loc, const char *fmt, ...) IR_PRINTF(3, 4);
/* An empty buffer for a message fragment, valid for six more calls. */
ir_buf *fe_msg_buf(fe_ctx *c);
/* Printable excerpt of untrusted text / a type, valid for six more calls. */
const char *fe_show(fe_ctx *c, const char *s, size_t n);
const char *fe_show_type(fe_ctx *c, ir_type t);
const char *fe_show_dim(fe_ctx *c, ir_dim d);

/* ---- names and scopes (schema.c) ------------------------------------------ */

/* Value names: [A-Za-z_][A-Za-z0-9_.]* (PyTorch state_dict keys such as
 * enc.weight_ih_l0 or layers.0.w), except the reserved words nan, inf, true
 * and false, which op lines read as literals. */
bool fe_is_name(const char *s, size_t n);
bool fe_is_c_ident(const char *s, size_t n);

typedef struct fe_name {
  const char *name; /* NUL-terminated, in the graph's arena */
  ir_val v;
  ir_loc loc; /* where it was defined */
} fe_name;

/* The names visible in one block: the graph body, or a scan body, which is
 * isolated from above (`outer` only serves hints in messages). */
typedef struct fe_scope {
  ir_blockid block;
  const struct fe_scope *outer;
  const char *what; /* "the graph", "the scan body" */
  fe_name *slots;   /* open addressing; name == NULL is free */
  int32_t cap, n;
} fe_scope;

void fe_scope_init(fe_scope *s, ir_blockid block, const fe_scope *outer, const char *what);
void fe_scope_free(fe_scope *s);
const fe_name *fe_scope_find(const fe_scope *s, const char *name, size_t n);
/* Record a name known to be new (no message, the value keeps its name). */
const fe_name *fe_scope_add(fe_ctx *c, fe_scope *s, const char *name, size_t n, ir_val v,
                            ir_loc loc);
/* Bind name to v (and name the value); an error if already bound. */
bool fe_define(fe_ctx *c, fe_scope *s, const char *name, size_t n, ir_val v, ir_loc loc);
/* Resolve a use; the error names it and, in a scan body, suggests `with`. */
bool fe_use(fe_ctx *c, const fe_scope *s, const char *name, size_t n, ir_loc loc, ir_val *out);

/* ---- schema checks (schema.c) --------------------------------------------- */

/* `what` names the place in messages, e.g. "'inputs'" or "scan field 'carry'". */
bool fe_expect(fe_ctx *c, const fe_ynode *n, fe_ykind kind, const char *what, const char *shape);
/* Every key of map is in allowed (NULL-terminated); else an error naming the
 * key and listing the allowed ones. */
bool fe_check_keys(fe_ctx *c, const fe_ynode *map, const char *what, const char *const *allowed);
/* The value of a required key, or an error at the mapping. */
const fe_ynode *fe_require(fe_ctx *c, const fe_ynode *map, const char *key, const char *what);
/* A scalar holding a value name (fe_is_name). */
bool fe_expect_name(fe_ctx *c, const fe_ynode *n, const char *what);
bool fe_read_int(fe_ctx *c, const fe_ynode *n, const char *what, int64_t lo, int64_t hi,
                 int64_t *out);
bool fe_read_bool(fe_ctx *c, const fe_ynode *n, const char *what, bool *out);
bool fe_read_dim(fe_ctx *c, const fe_ynode *n, const char *what, ir_dim *out);
bool fe_read_type(fe_ctx *c, const fe_ynode *n, const char *what, ir_type *out);

/* ---- text inside a scalar (scalar.c) ------------------------------------ */

/* A position in a scalar's value; errors point at exact columns. */
typedef struct fe_text {
  fe_ctx *c;
  const fe_ynode *node;
  const char *s;
  size_t n, pos;
} fe_text;

fe_text fe_text_of(fe_ctx *c, const fe_ynode *scalar);
bool fe_text_fail(fe_text *t, size_t at, const char *fmt, ...) IR_PRINTF(3, 4);
void fe_text_skip_space(fe_text *t);
bool fe_text_at_end(fe_text *t); /* after skipping spaces */
bool fe_text_accept(fe_text *t, char ch); /* skips spaces first */
/* What stands at `at` (a short quoted excerpt, or "the end of the line"),
 * for "expected X, got Y" messages. */
const char *fe_text_found(fe_text *t, size_t at);
/* Length of a name ([A-Za-z_][A-Za-z0-9_.]*) at pos, 0 if none. */
size_t fe_text_name_len(const fe_text *t);
/* End of the expression starting at pos: the first ',' or unmatched ')' or
 * ']' outside brackets, trailing spaces excluded. */
size_t fe_text_extent(const fe_text *t);
/* The parsers below start at pos (after spaces), stop at `end`, and leave
 * pos after what they read. */
bool fe_text_dim(fe_text *t, size_t end, ir_dim *out);
bool fe_text_int(fe_text *t, size_t end, int64_t *out);
bool fe_text_real(fe_text *t, size_t end, double *out);
/* `[a, b, ...]` of dims or ints; *v is malloc'ed (caller frees). */
bool fe_text_dims(fe_text *t, ir_dim **v, int32_t *n);
bool fe_text_ints(fe_text *t, int64_t **v, int32_t *n);
/* `f32[T, B, 4]` */
bool fe_text_type(fe_text *t, ir_type *out);
/* A dtype name at pos. */
bool fe_text_dtype(fe_text *t, ir_dtype *out);

/* ---- building (model.c, opline.c) ---------------------------------------- */

/* Build a sequence of graph nodes (op lines and block nodes) into s->block. */
bool fe_build_nodes(fe_ctx *c, fe_scope *s, const fe_ynode *seq, const char *what);
/* One op line `a, b = op(x, f(y), 0.5, attr=value)`. */
bool fe_build_opline(fe_ctx *c, fe_scope *s, const fe_ynode *line);

/* ---- block nodes (blocks.c) ----------------------------------------------- */

/* A block node is a one-key mapping `kind: spec`; its builder appends ops to
 * s->block and defines their result names in s. */
typedef bool (*fe_block_fn)(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec);
typedef struct fe_block_kind {
  const char *name;
  fe_block_fn build;
} fe_block_kind;

const fe_block_kind *fe_block_kind_find(const char *name, size_t n);
/* "scan, ..." for messages. */
void fe_block_kind_list(ir_buf *out);

#endif
