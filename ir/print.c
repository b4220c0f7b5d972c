/*
 * print.c - the text form (.sqir) of a graph: the inverse of parse.c.
 *
 * The output is a pure function of the graph, so it is byte-identical
 * across runs, and it reads back through ir_parse to a graph that prints
 * the same text again (docs/ir.md, "Text form").
 *
 * Printing runs in two sweeps over the ops in program order (pre-order:
 * an op's results, then its regions' arguments and ops). The first sweep
 * gives every printed value its text name; the second writes the text.
 * Naming happens up front so that an operand always has its final name,
 * even in a graph that reads a value before defining it (the printer is
 * also used to dump graphs that the verifier has just rejected).
 *
 * Names. A named value keeps its name, sanitized to the VALUE alphabet
 * [A-Za-z0-9_.$-] (other bytes become '_'; an all-digit name gets a
 * leading '_' because all-digit names are anonymous in the text). When
 * that name is already taken, `.1`, `.2`, ... is appended until it is
 * unique. A per-name counter remembers the next suffix to try, so a
 * thousand values all named `h` cost linear time, not quadratic. Anonymous
 * values are numbered %0, %1, ... in print order; no named value prints as
 * all digits, so numbers never collide with names. After one print every
 * name is unique and valid, so printing a parsed graph reproduces each
 * name exactly.
 */
#include "ir.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a set of taken names, each with its next collision suffix ---------- */

typedef struct name_slot {
  const char *name; /* NULL: empty slot */
  int64_t next_suffix;
} name_slot;

typedef struct name_set {
  name_slot *slots;
  size_t cap, n; /* cap is a power of two, kept at most half full */
} name_set;

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static name_slot *name_set_find(const name_set *set, const char *name) {
  size_t i = (size_t)hash_name(name) & (set->cap - 1);
  while (set->slots[i].name && strcmp(set->slots[i].name, name) != 0) i = (i + 1) & (set->cap - 1);
  return &set->slots[i];
}

static void name_set_grow(name_set *set) {
  name_set bigger = {ir_xcalloc(set->cap * 2, sizeof(name_slot)), set->cap * 2, set->n};
  for (size_t i = 0; i < set->cap; i++)
    if (set->slots[i].name) *name_set_find(&bigger, set->slots[i].name) = set->slots[i];
  free(set->slots);
  *set = bigger;
}

/* The slot of `name`, inserted (with suffix counter 1) if absent. *fresh
 * tells whether it was absent. `name` must outlive the set. */
static name_slot *name_set_claim(name_set *set, const char *name, bool *fresh) {
  if (2 * (set->n + 1) > set->cap) name_set_grow(set);
  name_slot *s = name_set_find(set, name);
  *fresh = s->name == NULL;
  if (*fresh) {
    s->name = name;
    s->next_suffix = 1;
    set->n++;
  }
  return s;
}

/* ---- value naming -------------------------------------------------------- */

typedef struct printer {
  const ir_graph *g;
  const ir_print_opts *opts;
  ir_buf *out;
  ir_arena *arena;     /* printed names */
  const char **names;  /* by value id; NULL: not printed (or not yet named) */
  name_set taken;
  int64_t next_number; /* for anonymous values */
} printer;

static bool is_value_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '$' || c == '-';
}

static bool is_all_digits(const char *s) {
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* The name a value asks for in the text: its own name in the VALUE
 * alphabet, never all digits. */
static const char *sanitized_name(printer *p, const char *name) {
  size_t n = strlen(name);
  bool digits = is_all_digits(name);
  char *s = ir_arena_alloc(p->arena, n + 2);
  char *w = s;
  if (digits) *w++ = '_';
  for (size_t i = 0; i < n; i++) *w++ = is_value_char(name[i]) ? name[i] : '_';
  return s;
}

/* Claim `base`, or the first free `base.K` after the ones tried before. */
static const char *unique_name(printer *p, const char *base) {
  bool fresh;
  name_slot *slot = name_set_claim(&p->taken, base, &fresh);
  if (fresh) return base;
  ir_buf candidate = {0};
  for (;;) {
    int64_t k = slot->next_suffix++;
    candidate.len = 0;
    ir_buf_printf(&candidate, "%s.%" PRId64, base, k);
    const char *name = ir_arena_strdup(p->arena, candidate.s);
    name_set_claim(&p->taken, name, &fresh);
    /* The claim may have moved the table: find base's slot again. */
    slot = name_set_find(&p->taken, base);
    if (fresh) {
      ir_buf_free(&candidate);
      return name;
    }
  }
}

static void name_value(printer *p, ir_val v) {
  if (v < 0 || v >= p->g->n_vals || p->names[v]) return;
  const char *own = p->g->vals[v].name;
  if (own && *own) {
    p->names[v] = unique_name(p, sanitized_name(p, own));
  } else {
    ir_buf num = {0};
    ir_buf_printf(&num, "%" PRId64, p->next_number++);
    p->names[v] = ir_arena_strdup(p->arena, num.s);
    ir_buf_free(&num);
  }
}

static void name_block(printer *p, ir_blockid b) {
  const ir_block *blk = ir_b(p->g, b);
  for (int32_t i = 0; i < blk->n_args; i++) name_value(p, blk->args[i]);
  for (ir_opid o = blk->first; o != IR_NONE; o = ir_o(p->g, o)->next) {
    const ir_op *op = ir_o(p->g, o);
    for (int32_t i = 0; i < op->n_out; i++) name_value(p, op->out[i]);
    for (int32_t r = 0; r < op->n_regions; r++) name_block(p, op->regions[r]);
  }
}

/* ---- writing ------------------------------------------------------------- */

static void put_value(printer *p, ir_val v) {
  if (v >= 0 && v < p->g->n_vals && p->names[v])
    ir_buf_printf(p->out, "%%%s", p->names[v]);
  else /* dangling: only in graphs the verifier rejects */
    ir_buf_printf(p->out, "%%<invalid %" PRId32 ">", v);
}

static void put_indent(printer *p, int depth) {
  for (int i = 0; i < depth; i++) ir_buf_puts(p->out, "  ");
}

/* An identifier ([A-Za-z_][A-Za-z0-9_.]*) for the graph and output names. */
static void put_ident(printer *p, const char *s) {
  if (!s || !*s || (*s >= '0' && *s <= '9')) ir_buf_putc(p->out, '_');
  for (; s && *s; s++) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    ir_buf_putc(p->out, ok ? c : '_');
  }
}

void ir_print_type(const ir_graph *g, ir_type t, ir_buf *out) {
  ir_buf_puts(out, ir_dtype_name(t.dtype));
  ir_buf_putc(out, '[');
  for (int32_t i = 0; i < t.rank; i++) {
    if (i) ir_buf_puts(out, ", ");
    ir_dim_print(g->dims, t.dims[i], out);
  }
  ir_buf_putc(out, ']');
}

static void put_bool(ir_buf *b, bool v) { ir_buf_puts(b, v ? "true" : "false"); }

static void put_enum(ir_buf *b, const ir_attr_decl *decl, int64_t v) {
  for (int64_t i = 0; decl->enum_names && decl->enum_names[i]; i++)
    if (i == v) {
      ir_buf_puts(b, decl->enum_names[i]);
      return;
    }
  ir_buf_printf(b, "%" PRId64, v); /* out of range: the parser will say so */
}

/* The float nearest to x, as the parser stores f32/f16/bf16 constants: a
 * double beyond the float range prints as the infinity it reads back as
 * (and C's conversion there would be undefined). */
static double round_to_float(double x) {
  if (isnan(x) || isinf(x) || fabs(x) <= FLT_MAX) return (double)(float)x;
  return copysign(fabs(x) >= 0x1.ffffffp127 ? INFINITY : FLT_MAX, x);
}

/* One constant element, spelled by the result dtype: reals that read back
 * exactly in that dtype, integers, or true/false. */
static void put_element(ir_buf *b, const ir_tensor_data *t, int64_t i, const ir_dtype *dt) {
  if (dt && *dt == IR_BOOL && t->i)
    put_bool(b, t->i[i] != 0);
  else if (t->f && dt && ir_dtype_is_float(*dt) && *dt != IR_F64)
    ir_buf_put_real(b, round_to_float(t->f[i]), true);
  else if (t->f && (!dt || ir_dtype_is_float(*dt) || !t->i))
    ir_buf_put_real(b, t->f[i], false);
  else if (t->i)
    ir_buf_printf(b, "%" PRId64, t->i[i]);
  else
    ir_buf_puts(b, "0");
}

static void put_tensor(printer *p, const ir_op *op, const ir_tensor_data *t) {
  ir_dtype dt;
  const ir_dtype *dtp = NULL;
  if (op->n_out > 0 && op->out[0] >= 0 && op->out[0] < p->g->n_vals) {
    dt = ir_vtype(p->g, op->out[0]).dtype;
    dtp = &dt;
  }
  if (!t) {
    ir_buf_puts(p->out, "[]");
    return;
  }
  if (t->n == 1) {
    put_element(p->out, t, 0, dtp);
    return;
  }
  ir_buf_putc(p->out, '[');
  for (int64_t i = 0; i < t->n; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    put_element(p->out, t, i, dtp);
  }
  ir_buf_putc(p->out, ']');
}

static void put_attr_value(printer *p, const ir_op *op, const ir_attr_decl *decl,
                           const ir_attr *a) {
  ir_buf *b = p->out;
  switch (decl->kind) {
  case IR_ATTR_INT: ir_buf_printf(b, "%" PRId64, a->u.i); break;
  case IR_ATTR_FLOAT: ir_buf_put_real(b, a->u.f, false); break;
  case IR_ATTR_BOOL: put_bool(b, a->u.i != 0); break;
  case IR_ATTR_ENUM: put_enum(b, decl, a->u.i); break;
  case IR_ATTR_DIM: ir_dim_print(p->g->dims, a->u.d, b); break;
  case IR_ATTR_INTS:
    ir_buf_putc(b, '[');
    for (int32_t i = 0; i < a->u.ints.n; i++)
      ir_buf_printf(b, "%s%" PRId64, i ? ", " : "", a->u.ints.v[i]);
    ir_buf_putc(b, ']');
    break;
  case IR_ATTR_DIMS:
    ir_buf_putc(b, '[');
    for (int32_t i = 0; i < a->u.dims.n; i++) {
      if (i) ir_buf_puts(b, ", ");
      ir_dim_print(p->g->dims, a->u.dims.v[i], b);
    }
    ir_buf_putc(b, ']');
    break;
  case IR_ATTR_TENSOR: put_tensor(p, op, a->u.t); break;
  }
}

/* ` {name = value, ...}` in schema order, present attributes only. */
static void put_attrs(printer *p, const ir_op *op) {
  const ir_opinfo *info = ir_opinfo_of(op->kind);
  bool any = false;
  for (int32_t i = 0; i < info->n_attrs; i++) {
    if (!op->attrs[i].present) continue;
    ir_buf_puts(p->out, any ? ", " : " {");
    any = true;
    ir_buf_printf(p->out, "%s = ", info->attrs[i].name);
    put_attr_value(p, op, &info->attrs[i], &op->attrs[i]);
  }
  if (any) ir_buf_putc(p->out, '}');
}

/* A file name as a STRING: `"` and `\` are escaped as \" and \\, control
 * bytes as \HH (two hex digits); other bytes go through unchanged. */
static void put_string(ir_buf *b, const char *s) {
  ir_buf_putc(b, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      ir_buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      ir_buf_printf(b, "\\%02X", c);
    else
      ir_buf_putc(b, (char)c);
  }
  ir_buf_putc(b, '"');
}

static void put_loc(printer *p, const ir_op *op) {
  if (!p->opts || !p->opts->locations || !op->loc.file) return;
  ir_buf_puts(p->out, " loc(");
  put_string(p->out, op->loc.file);
  ir_buf_printf(p->out, ":%" PRId32 ":%" PRId32 ")", op->loc.line, op->loc.col);
}

static void put_typed_value(printer *p, ir_val v) {
  put_value(p, v);
  ir_buf_puts(p->out, ": ");
  ir_print_type(p->g, ir_vtype(p->g, v), p->out);
}

static void put_results(printer *p, const ir_op *op) {
  if (op->n_out == 0) return;
  for (int32_t i = 0; i < op->n_out; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    put_value(p, op->out[i]);
  }
  ir_buf_puts(p->out, ": ");
  for (int32_t i = 0; i < op->n_out; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    ir_print_type(p->g, ir_vtype(p->g, op->out[i]), p->out);
  }
  ir_buf_puts(p->out, " = ");
}

static void put_block_ops(printer *p, ir_blockid b, int depth);

/* `^(%t: i64[], ...):` at the op's indentation, the ops one level deeper. */
static void put_region(printer *p, ir_blockid b, int depth) {
  const ir_block *blk = ir_b(p->g, b);
  put_indent(p, depth);
  ir_buf_puts(p->out, "^(");
  for (int32_t i = 0; i < blk->n_args; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    put_typed_value(p, blk->args[i]);
  }
  ir_buf_puts(p->out, "):\n");
  put_block_ops(p, b, depth + 1);
  put_indent(p, depth);
  ir_buf_putc(p->out, '}');
}

static void put_op(printer *p, ir_opid o, int depth) {
  const ir_op *op = ir_o(p->g, o);
  put_indent(p, depth);
  put_results(p, op);
  ir_buf_puts(p->out, ir_opinfo_of(op->kind)->name);
  for (int32_t i = 0; i < op->n_in; i++) {
    ir_buf_puts(p->out, i ? ", " : " ");
    put_value(p, op->in[i]);
  }
  put_attrs(p, op);
  put_loc(p, op);
  for (int32_t r = 0; r < op->n_regions; r++) {
    ir_buf_puts(p->out, " {\n");
    put_region(p, op->regions[r], depth);
  }
  ir_buf_putc(p->out, '\n');
}

static void put_block_ops(printer *p, ir_blockid b, int depth) {
  for (ir_opid o = ir_b(p->g, b)->first; o != IR_NONE; o = ir_o(p->g, o)->next)
    put_op(p, o, depth);
}

/* `graph @name(args) -> (outs) [memplan] {`; output types come from the body's
 * yield, the only place a graph records them. */
static void put_header(printer *p) {
  const ir_graph *g = p->g;
  const ir_block *body = ir_b(g, g->body);
  ir_buf_puts(p->out, "graph @");
  put_ident(p, g->name);
  ir_buf_putc(p->out, '(');
  for (int32_t i = 0; i < body->n_args; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    if (ir_v(g, body->args[i])->is_param) ir_buf_puts(p->out, "param ");
    put_typed_value(p, body->args[i]);
  }
  ir_buf_puts(p->out, ") -> (");
  ir_opid yield = ir_block_terminator(g, g->body);
  for (int32_t i = 0; i < g->n_outputs; i++) {
    if (i) ir_buf_puts(p->out, ", ");
    put_ident(p, g->output_names ? g->output_names[i] : NULL);
    ir_buf_puts(p->out, ": ");
    if (yield != IR_NONE && i < ir_o(g, yield)->n_in && ir_o(g, yield)->in[i] >= 0 &&
        ir_o(g, yield)->in[i] < g->n_vals)
      ir_print_type(g, ir_vtype(g, ir_o(g, yield)->in[i]), p->out);
    else
      ir_buf_puts(p->out, "<no yield operand>");
  }
  ir_buf_puts(p->out, g->plan_memory ? ") memplan {\n" : ") {\n");
}

void ir_print_graph(const ir_graph *g, const ir_print_opts *opts, ir_buf *out) {
  printer p = {g, opts, out, ir_arena_new(), NULL, {NULL, 0, 0}, 0};
  p.names = ir_xcalloc((size_t)g->n_vals + 1, sizeof(const char *));
  p.taken.cap = 64;
  p.taken.slots = ir_xcalloc(p.taken.cap, sizeof(name_slot));
  name_block(&p, g->body);
  put_header(&p);
  put_block_ops(&p, g->body, 1);
  ir_buf_puts(out, "}\n");
  free(p.taken.slots);
  free(p.names);
  ir_arena_free(p.arena);
}
