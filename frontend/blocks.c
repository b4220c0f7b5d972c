/*
 * blocks.c - block nodes: graph nodes written as a one-key mapping
 * `- kind: {fields}` rather than an op line, for constructs with a body or
 * many named parts. The table below maps each kind to its builder; layers
 * (lstm, gru, attention, ...) are added as further entries.
 *
 * `scan` (docs/yaml.md, "scan") builds one IR scan op:
 *
 *   - scan:
 *       out: [h, ys]          final carries, then stacked per-step outputs
 *       carry: {hc: h0}       body name: initial value (outer name)
 *       over: {xt: x}         body name: sequence sliced along `axis`
 *       with: [W, U, b]       loop invariants, same names in the body
 *       index: t              optional name of the i64 step index
 *       axis: 0               optional, default 0
 *       reverse: false        optional
 *       length: T             required exactly when `over` is empty
 *       body: [op lines and block nodes]
 *       next: {hc: hn}        every carry's next value, exactly once
 *       emit: [hn]            per-step outputs
 *
 * The body is a region isolated from above: its scope holds only the index,
 * carries, slices and `with` values. The scan's result types are inferred
 * once its body exists, so the op is created with placeholder result types
 * that are replaced by ir_infer_types' answer before anything reads them.
 */
#include "fe.h"
#include "frontend.h"
#include "layers.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_SCAN_OPERANDS = 4096 };

static bool build_scan(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec);

static const fe_block_kind block_kinds[] = {
    {"scan", build_scan},
};

static const fe_block_kind *find_in(const fe_block_kind *kinds, size_t count, const char *name, size_t n) {
  for (size_t i = 0; i < count; i++)
    if (strlen(kinds[i].name) == n && memcmp(kinds[i].name, name, n) == 0) return &kinds[i];
  return NULL;
}

const fe_block_kind *fe_block_kind_find(const char *name, size_t n) {
  const fe_block_kind *k = find_in(block_kinds, sizeof block_kinds / sizeof block_kinds[0], name, n);
  return k ? k : find_in(fe_layer_kinds, (size_t)fe_n_layer_kinds, name, n);
}

void fe_block_kind_list(ir_buf *out) {
  for (size_t i = 0; i < sizeof block_kinds / sizeof block_kinds[0]; i++)
    ir_buf_printf(out, "%s%s", i ? ", " : "", block_kinds[i].name);
  for (int32_t i = 0; i < fe_n_layer_kinds; i++) ir_buf_printf(out, ", %s", fe_layer_kinds[i].name);
}

/* ---- scan ---------------------------------------------------------------------- */

typedef struct scan_fields {
  const fe_ynode *out, *carry, *over, *with, *index, *axis, *reverse, *length, *body, *next, *emit;
} scan_fields;

typedef struct scan_build {
  fe_ctx *c;
  fe_scope *outer;
  const fe_ynode *kind;
  scan_fields f;
  int32_t n_carries, n_xs, n_inv, n_emit;
  int64_t axis;
  bool reverse;
  ir_dim length;
  ir_val *in; /* operands: initial carries, sequences, invariants */
  ir_opid op;
  fe_scope body;
} scan_build;

static int32_t count_of(const fe_ynode *n) { return n ? n->n : 0; }

static bool read_fields(scan_build *b, const fe_ynode *spec) {
  static const char *const keys[] = {"out",    "carry", "over", "with", "index", "axis",
                                     "reverse", "length", "body", "next", "emit",  NULL};
  fe_ctx *c = b->c;
  if (!fe_expect(c, spec, FE_Y_MAP, "'scan'", "a mapping of its fields (out, carry, over, with, "
                 "body, next, emit, ...)") ||
      !fe_check_keys(c, spec, "scan", keys))
    return false;
  scan_fields *f = &b->f;
  f->out = fe_require(c, spec, "out", "scan");
  f->body = f->out ? fe_require(c, spec, "body", "scan") : NULL;
  if (!f->out || !f->body) return false;
  f->carry = fe_ymap_get(spec, "carry");
  f->over = fe_ymap_get(spec, "over");
  f->with = fe_ymap_get(spec, "with");
  f->index = fe_ymap_get(spec, "index");
  f->axis = fe_ymap_get(spec, "axis");
  f->reverse = fe_ymap_get(spec, "reverse");
  f->length = fe_ymap_get(spec, "length");
  f->next = fe_ymap_get(spec, "next");
  f->emit = fe_ymap_get(spec, "emit");
  return (!f->carry || fe_expect(c, f->carry, FE_Y_MAP, "scan field 'carry'", "a mapping of body name: initial value")) &&
         (!f->over || fe_expect(c, f->over, FE_Y_MAP, "scan field 'over'", "a mapping of body name: sequence")) &&
         (!f->with || fe_expect(c, f->with, FE_Y_SEQ, "scan field 'with'", "a sequence of value names")) &&
         (!f->next || fe_expect(c, f->next, FE_Y_MAP, "scan field 'next'", "a mapping of carry: next value")) &&
         (!f->emit || fe_expect(c, f->emit, FE_Y_SEQ, "scan field 'emit'", "a sequence of value names")) &&
         fe_expect(c, f->out, FE_Y_SEQ, "scan field 'out'", "a sequence of result names") &&
         (!f->index || fe_expect_name(c, f->index, "scan field 'index'"));
}

static bool read_options(scan_build *b) {
  fe_ctx *c = b->c;
  scan_fields *f = &b->f;
  b->n_carries = count_of(f->carry);
  b->n_xs = count_of(f->over);
  b->n_inv = count_of(f->with);
  b->n_emit = count_of(f->emit);
  if ((int64_t)b->n_carries + b->n_xs + b->n_inv > MAX_SCAN_OPERANDS)
    return fe_fail(c, fe_loc(c, b->kind), "scan has more than %d carries, sequences and 'with' "
                   "values", MAX_SCAN_OPERANDS);
  if (f->axis && !fe_read_int(c, f->axis, "scan field 'axis'", 0, FE_MAX_RANK - 1, &b->axis))
    return false;
  if (f->reverse && !fe_read_bool(c, f->reverse, "scan field 'reverse'", &b->reverse)) return false;
  if (b->n_carries > 0 && !f->next)
    return fe_fail(c, fe_loc(c, b->kind), "scan has carries but no 'next'; give each carry's "
                   "next value, as in next: {%s: ...}",
                   fe_show(c, f->carry->items[0]->text, f->carry->items[0]->len));
  if (b->n_xs > 0 && f->length)
    return fe_fail(c, fe_loc(c, f->length), "scan field 'length' is only allowed when 'over' is "
                   "empty; the length is that of the 'over' sequences");
  if (b->n_xs == 0 && !f->length)
    return fe_fail(c, fe_loc(c, b->kind), "scan without 'over' sequences needs 'length', the "
                   "number of steps (a dim expression such as T)");
  if (f->length && !fe_read_dim(c, f->length, "scan field 'length'", &b->length)) return false;
  int64_t v;
  if (f->length && ir_dim_is_const(c->g->dims, b->length, &v) && v < 0)
    return fe_fail(c, fe_loc(c, f->length), "scan field 'length' is %lld; a length is at least 0",
                   (long long)v);
  int32_t want = b->n_carries + b->n_emit;
  if (f->out->n != want)
    return fe_fail(c, fe_loc(c, f->out), "scan field 'out' names %d result%s, but the scan has "
                   "%d carr%s and %d emitted value%s (%d results)", f->out->n,
                   f->out->n == 1 ? "" : "s", b->n_carries, b->n_carries == 1 ? "y" : "ies",
                   b->n_emit, b->n_emit == 1 ? "" : "s", want);
  return true;
}

/* The value an outer name denotes (a scalar value name in the outer scope). */
static bool outer_value(scan_build *b, const fe_ynode *n, const char *what, ir_val *out) {
  return fe_expect_name(b->c, n, what) &&
         fe_use(b->c, b->outer, n->text, n->len, fe_loc(b->c, n), out);
}

static bool dims_differ(ir_graph *g, ir_dim a, ir_dim bd) {
  int64_t v;
  return a != bd && ir_dim_is_const(g->dims, ir_dim_sub(g->dims, a, bd), &v) && v != 0;
}

/* Each sequence has `axis`, and all have the same length along it. */
static bool check_sequence(scan_build *b, int32_t i) {
  fe_ctx *c = b->c;
  const fe_ynode *v = b->f.over->values[i];
  ir_type t = ir_vtype(c->g, b->in[b->n_carries + i]);
  if (b->axis >= t.rank)
    return fe_fail(c, fe_loc(c, v), "scan over '%s': %s has no axis %lld to slice", v->text,
                   fe_show_type(c, t), (long long)b->axis);
  ir_dim len = t.dims[b->axis];
  if (i == 0) {
    b->length = len;
    return true;
  }
  if (!dims_differ(c->g, len, b->length)) return true;
  return fe_fail(c, fe_loc(c, v), "scan over '%s': %s has %s steps along axis %lld, but '%s' "
                 "has %s", v->text, fe_show_type(c, t), fe_show_dim(c, len), (long long)b->axis,
                 b->f.over->values[0]->text, fe_show_dim(c, b->length));
}

static bool gather_operands(scan_build *b) {
  const scan_fields *f = &b->f;
  int32_t k = 0;
  for (int32_t i = 0; i < b->n_carries; i++)
    if (!fe_expect_name(b->c, f->carry->items[i], "a carry's body name") ||
        !outer_value(b, f->carry->values[i], "a carry's initial value", &b->in[k++]))
      return false;
  for (int32_t i = 0; i < b->n_xs; i++)
    if (!fe_expect_name(b->c, f->over->items[i], "a sequence's body name") ||
        !outer_value(b, f->over->values[i], "a sequence in 'over'", &b->in[k++]) ||
        !check_sequence(b, i))
      return false;
  for (int32_t i = 0; i < b->n_inv; i++)
    if (!outer_value(b, f->with->items[i], "an entry of 'with'", &b->in[k++])) return false;
  return true;
}

/* A body argument of type t named by the scalar n (if any). */
static bool add_body_arg(scan_build *b, ir_type t, const fe_ynode *n) {
  ir_val v = ir_block_add_arg(b->c->g, b->body.block, t, NULL);
  return !n || fe_define(b->c, &b->body, n->text, n->len, v, fe_loc(b->c, n));
}

static bool add_body_args(scan_build *b) {
  ir_graph *g = b->c->g;
  const scan_fields *f = &b->f;
  if (!add_body_arg(b, (ir_type){IR_I64, 0, NULL}, f->index)) return false;
  int32_t k = 0;
  for (int32_t i = 0; i < b->n_carries; i++, k++)
    if (!add_body_arg(b, ir_vtype(g, b->in[k]), f->carry->items[i])) return false;
  for (int32_t i = 0; i < b->n_xs; i++, k++)
    if (!add_body_arg(b, ir_type_without_dim(g, ir_vtype(g, b->in[k]), b->axis), f->over->items[i]))
      return false;
  for (int32_t i = 0; i < b->n_inv; i++, k++)
    if (!add_body_arg(b, ir_vtype(g, b->in[k]), f->with->items[i])) return false;
  return true;
}

static int32_t carry_index(const scan_build *b, const fe_ynode *key) {
  for (int32_t i = 0; i < b->n_carries; i++) {
    const fe_ynode *k = b->f.carry->items[i];
    if (k->len == key->len && memcmp(k->text, key->text, k->len) == 0) return i;
  }
  return -1;
}

static bool body_value(scan_build *b, const fe_ynode *n, const char *what, ir_val *out) {
  return fe_expect_name(b->c, n, what) &&
         fe_use(b->c, &b->body, n->text, n->len, fe_loc(b->c, n), out);
}

/* The body's yield: every carry's next value (type-checked), then emits. */
static bool build_yield(scan_build *b) {
  fe_ctx *c = b->c;
  const scan_fields *f = &b->f;
  int32_t n = b->n_carries + b->n_emit;
  ir_val *vals = ir_xcalloc((size_t)n + 1, sizeof(ir_val));
  bool ok = true;
  for (int32_t i = 0; ok && f->next && i < f->next->n; i++) {
    const fe_ynode *key = f->next->items[i], *v = f->next->values[i];
    int32_t ci = carry_index(b, key);
    if (ci < 0) {
      ir_buf *carries = fe_msg_buf(c);
      for (int32_t k = 0; k < b->n_carries; k++)
        ir_buf_printf(carries, "%s%s", k ? ", " : "", f->carry->items[k]->text);
      ok = fe_fail(c, fe_loc(c, key), "'%s' in 'next' is not a carry of this scan; its carries: %s",
                   fe_show(c, key->text, key->len), b->n_carries ? carries->s : "none");
    } else if ((ok = body_value(b, v, "a next value", &vals[ci]))) {
      ir_type want = ir_vtype(c->g, b->in[ci]), have = ir_vtype(c->g, vals[ci]);
      if (!ir_type_equal(want, have))
        ok = fe_fail(c, fe_loc(c, v), "next value '%s' of carry '%s' is %s, but the carry is %s",
                     v->text, key->text, fe_show_type(c, have), fe_show_type(c, want));
    }
  }
  for (int32_t i = 0; ok && i < b->n_carries; i++)
    if (!fe_ymap_get(f->next, f->carry->items[i]->text))
      ok = fe_fail(c, fe_loc(c, f->carry->items[i]), "carry '%s' has no next value; add '%s: "
                   "<value>' to 'next'", f->carry->items[i]->text, f->carry->items[i]->text);
  for (int32_t i = 0; ok && i < b->n_emit; i++)
    ok = body_value(b, f->emit->items[i], "an entry of 'emit'", &vals[b->n_carries + i]);
  if (ok) {
    const fe_ynode *at = f->next ? f->next : f->emit ? f->emit : f->body;
    ir_opid y = ir_op_new(c->g, IR_OP_YIELD, n, vals, 0, NULL, fe_loc(c, at));
    ir_op_append(c->g, b->body.block, y);
  }
  free(vals);
  return ok;
}

static bool create_op(scan_build *b) {
  ir_graph *g = b->c->g;
  int32_t n_in = b->n_carries + b->n_xs + b->n_inv, n_out = b->n_carries + b->n_emit;
  ir_type *placeholders = ir_xcalloc((size_t)n_out + 1, sizeof(ir_type));
  b->op = ir_op_new(g, IR_OP_SCAN, n_in, b->in, n_out, placeholders, fe_loc(b->c, b->kind));
  free(placeholders);
  ir_set_dim(g, b->op, "length", b->length);
  ir_set_int(g, b->op, "carries", b->n_carries);
  ir_set_int(g, b->op, "xs", b->n_xs);
  /* Defaults stay absent, so the printed IR says only what the file says. */
  if (b->f.axis) ir_set_int(g, b->op, "axis", b->axis);
  if (b->f.reverse) ir_set_int(g, b->op, "reverse", b->reverse);
  fe_scope_init(&b->body, ir_o(g, b->op)->regions[0], b->outer, "the scan body");
  return true;
}

/* Result types from inference, then the op joins the outer block and its
 * results get their `out` names. */
static bool finish_op(scan_build *b) {
  fe_ctx *c = b->c;
  int32_t n_out = ir_o(c->g, b->op)->n_out, n = 0;
  ir_type *types = ir_xcalloc((size_t)n_out + 1, sizeof(ir_type));
  bool ok = ir_infer_types(c->g, b->op, types, n_out, &n, c->d);
  if (ok) {
    IR_ASSERT(n == n_out);
    for (int32_t i = 0; i < n; i++) c->g->vals[ir_o(c->g, b->op)->out[i]].type = types[i];
    ir_op_append(c->g, b->outer->block, b->op);
  }
  free(types);
  for (int32_t i = 0; ok && i < n_out; i++) {
    const fe_ynode *name = b->f.out->items[i];
    ok = fe_expect_name(c, name, "a name in 'out'") &&
         fe_define(c, b->outer, name->text, name->len, ir_o(c->g, b->op)->out[i], fe_loc(c, name));
  }
  return ok;
}

static bool build_scan(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  scan_build b;
  memset(&b, 0, sizeof b);
  b.c = c;
  b.outer = s;
  b.kind = kind;
  b.op = IR_NONE;
  if (!read_fields(&b, spec) || !read_options(&b)) return false;
  b.in = ir_xcalloc((size_t)(b.n_carries + b.n_xs + b.n_inv) + 1, sizeof(ir_val));
  bool ok = gather_operands(&b) && create_op(&b) && add_body_args(&b) &&
            fe_build_nodes(c, &b.body, b.f.body, "scan field 'body'") && build_yield(&b) &&
            finish_op(&b);
  if (!ok && b.op != IR_NONE && ir_o(c->g, b.op)->block == IR_NONE) ir_o(c->g, b.op)->erased = true;
  fe_scope_free(&b.body);
  free(b.in);
  return ok;
}
