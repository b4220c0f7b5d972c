/*
 * const_hoist.c - move what depends only on parameters and constants into
 * the graph's `init` op, which compiled code runs once when the model
 * opens (NAME_init, codegen/cg.h): weight transposes, reshapes, folded
 * biases (b_ih + b_hh) are then paid for once, not on every call.
 *
 * Algorithm: one forward sweep over the graph body classifies every value
 * by where it comes from: PARAM when it derives from a parameter (a `param`
 * argument, a result of an existing init, or a hoistable op reading such a
 * value), CONST when a hoistable op computes it from constants alone, NONE
 * otherwise (inputs and everything they reach). An op is hoistable when it
 * is pure, has no regions (scans stay: their bodies are the product), every
 * operand is PARAM or CONST, and every dim of its results and dim
 * attributes is built from parameter symbols only: symbols that are a
 * whole dim of some parameter's type, the only ones NAME_init is given.
 *
 * Every PARAM op moves. A CONST op moves only as a copy feeding a moved op
 * (found by one backward sweep): a bare `constant` or `iota` gains nothing
 * from moving and a splat would become a buffer, so the original stays
 * where it is as long as something outside still reads it. The moved ops
 * keep their order inside the init region; the region's arguments are the
 * parameters they read, in signature order, and it yields exactly the PARAM
 * values that something left outside reads (other ops, the graph's yield),
 * which become the init op's results. Everything else stays internal.
 *
 * The init op is placed before every other op of the body. If the graph
 * already has one and there is new work, a single new init replaces it:
 * the old region's ops first, then the new ones; the old results still
 * read outside come first among the results. With nothing new to move the
 * graph is left exactly as it is, so the pass is idempotent.
 *
 * Needs: a verified graph, dead code removed (dead PARAM ops would move
 * into the region and stay dead there until the next dce). Invalidates:
 * value and op ids of moved ops. Deterministic: everything follows the
 * order of the body.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>

typedef enum origin { FROM_INPUT = 0, FROM_CONST, FROM_PARAM } origin;

typedef struct hoist_state {
  ir_graph *g;
  ir_opid old_init;      /* the existing init op, IR_NONE if none */
  const char **psyms;    /* parameter symbols */
  int32_t n_psyms, cap_psyms;
  uint8_t *origin;       /* by value id */
  bool *moved;           /* by op id: goes into the init region */
  bool *read_outside;    /* by value id: read by a body op that stays */
  ir_opid *order;        /* moved ops in body order */
  int32_t n_order;
} hoist_state;

/* ---- parameter symbols -------------------------------------------------------- */

static bool is_psym(const hoist_state *s, const char *name) {
  for (int32_t i = 0; i < s->n_psyms; i++)
    if (!strcmp(s->psyms[i], name)) return true;
  return false;
}

static void collect_psyms(hoist_state *s) {
  const ir_block *body = ir_b(s->g, s->g->body);
  for (int32_t a = 0; a < body->n_args; a++) {
    const ir_value *v = ir_v(s->g, body->args[a]);
    for (int32_t i = 0; v->is_param && i < v->type.rank; i++) {
      const char *name;
      if (!ir_dim_is_sym(s->g->dims, v->type.dims[i], &name) || is_psym(s, name)) continue;
      ir_grow((void **)&s->psyms, &s->cap_psyms, s->n_psyms + 1, sizeof(char *));
      s->psyms[s->n_psyms++] = name;
    }
  }
}

/* Whether d can be computed from parameter symbols alone. */
static bool dim_ok(const hoist_state *s, ir_dim d) {
  int32_t n = ir_dim_symbols(s->g->dims, d, NULL, 0);
  if (n == 0) return true;
  const char **names = ir_xmalloc(sizeof(char *) * (size_t)n);
  ir_dim_symbols(s->g->dims, d, names, n);
  bool ok = true;
  for (int32_t i = 0; i < n && ok; i++) ok = is_psym(s, names[i]);
  free(names);
  return ok;
}

static bool dims_ok(const hoist_state *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  for (int32_t r = 0; r < o->n_out; r++) {
    ir_type t = ir_vtype(s->g, o->out[r]);
    for (int32_t i = 0; i < t.rank; i++)
      if (!dim_ok(s, t.dims[i])) return false;
  }
  const ir_opinfo *info = ir_opinfo_of(o->kind);
  for (int32_t a = 0; a < info->n_attrs; a++) {
    const ir_attr *at = &o->attrs[a];
    if (!at->present) continue;
    if (info->attrs[a].kind == IR_ATTR_DIM && !dim_ok(s, at->u.d)) return false;
    for (int32_t i = 0; info->attrs[a].kind == IR_ATTR_DIMS && i < at->u.dims.n; i++)
      if (!dim_ok(s, at->u.dims.v[i])) return false;
  }
  return true;
}

/* ---- classification ------------------------------------------------------------- */

/* FROM_PARAM or FROM_CONST if op may run in init, FROM_INPUT otherwise. */
static origin classify(const hoist_state *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  unsigned flags = ir_opinfo_of(o->kind)->flags;
  if (!(flags & IR_PURE) || (flags & IR_TERMINATOR) || o->n_regions > 0 || o->n_out == 0)
    return FROM_INPUT;
  origin from = FROM_CONST;
  for (int32_t i = 0; i < o->n_in; i++) {
    if (s->origin[o->in[i]] == FROM_INPUT) return FROM_INPUT;
    if (s->origin[o->in[i]] == FROM_PARAM) from = FROM_PARAM;
  }
  return dims_ok(s, op) ? from : FROM_INPUT;
}

/* Forward: origins of every body value; PARAM ops are moved. Backward:
 * CONST ops that a moved op reads are moved too (as copies). Returns
 * whether a PARAM op outside the old init exists, i.e. there is work. */
static bool plan(hoist_state *s) {
  ir_graph *g = s->g;
  const ir_block *body = ir_b(g, g->body);
  for (int32_t a = 0; a < body->n_args; a++)
    if (ir_v(g, body->args[a])->is_param) s->origin[body->args[a]] = FROM_PARAM;
  bool work = false;
  for (ir_opid op = body->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    origin from = op == s->old_init ? FROM_PARAM : classify(s, op);
    for (int32_t r = 0; r < o->n_out; r++) s->origin[o->out[r]] = (uint8_t)from;
    if (from == FROM_PARAM && op != s->old_init) s->moved[op] = work = true;
  }
  for (ir_opid op = body->last; op != IR_NONE; op = ir_o(g, op)->prev) {
    if (!s->moved[op]) continue;
    const ir_op *o = ir_o(g, op);
    for (int32_t i = 0; i < o->n_in; i++) {
      const ir_value *v = ir_v(g, o->in[i]);
      if (v->def != IR_NONE && s->origin[o->in[i]] == FROM_CONST) s->moved[v->def] = true;
    }
  }
  return work;
}

/* A CONST op that was copied into the region stays in place as well while
 * something that stays reads it. */
static bool keeps_original(const hoist_state *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  for (int32_t r = 0; r < o->n_out; r++)
    if (s->origin[o->out[r]] == FROM_CONST && s->read_outside[o->out[r]]) return true;
  return false;
}

/* read_outside[v] for every value read by a body op that stays (backward,
 * so a kept CONST op's own operands count), and the moved ops in order. */
static void find_escapes(hoist_state *s) {
  ir_graph *g = s->g;
  for (ir_opid op = ir_b(g, g->body)->last; op != IR_NONE; op = ir_o(g, op)->prev) {
    const ir_op *o = ir_o(g, op);
    if (s->moved[op] && !keeps_original(s, op)) continue;
    for (int32_t i = 0; i < o->n_in; i++) s->read_outside[o->in[i]] = true;
  }
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (s->moved[op]) s->order[s->n_order++] = op;
}

/* ---- rewriting ------------------------------------------------------------------ */

/* The values the new init yields: old init results still read outside,
 * then moved PARAM values read outside. Returns how many; *out holds them. */
static int32_t escaping_values(const hoist_state *s, ir_val **out) {
  ir_graph *g = s->g;
  int32_t n = 0, cap = 0;
  ir_val *vals = NULL;
  for (int32_t k = s->old_init != IR_NONE ? -1 : 0; k < s->n_order; k++) {
    const ir_op *o = ir_o(g, k < 0 ? s->old_init : s->order[k]);
    for (int32_t r = 0; r < o->n_out; r++) {
      ir_val v = o->out[r];
      if (!s->read_outside[v] || s->origin[v] != FROM_PARAM) continue;
      ir_grow((void **)&vals, &cap, n + 1, sizeof(ir_val));
      vals[n++] = v;
    }
  }
  *out = vals;
  return n;
}

/* The parameters the new init reads, in signature order. */
static int32_t init_params(const hoist_state *s, ir_val *params) {
  ir_graph *g = s->g;
  const ir_block *body = ir_b(g, g->body);
  bool *read = ir_xcalloc((size_t)body->n_args + 1, sizeof(bool));
  for (int32_t k = s->old_init != IR_NONE ? -1 : 0; k < s->n_order; k++) {
    const ir_op *o = ir_o(g, k < 0 ? s->old_init : s->order[k]);
    for (int32_t i = 0; i < o->n_in; i++) {
      const ir_value *v = ir_v(g, o->in[i]);
      if (v->def == IR_NONE && v->block == g->body && v->is_param) read[v->index] = true;
    }
  }
  int32_t n = 0;
  for (int32_t a = 0; a < body->n_args; a++)
    if (read[a]) params[n++] = body->args[a];
  free(read);
  return n;
}

/* Copy the old init's region into `region` (its arguments mapped through
 * m by parameter) and map the old results to the copies of what it yields. */
static void absorb_old_init(hoist_state *s, ir_blockid region, ir_valmap *m) {
  ir_graph *g = s->g;
  ir_blockid old = ir_o(g, s->old_init)->regions[0];
  for (int32_t i = 0; i < ir_o(g, s->old_init)->n_in; i++)
    ir_valmap_set(m, ir_b(g, old)->args[i], ir_valmap_get(m, ir_o(g, s->old_init)->in[i]));
  ir_opid y = ir_block_terminator(g, old);
  for (ir_opid op = ir_b(g, old)->first; op != IR_NONE && op != y; op = ir_o(g, op)->next)
    ir_op_clone(g, op, region, m);
  for (int32_t r = 0; r < ir_o(g, s->old_init)->n_out; r++)
    ir_valmap_set(m, ir_o(g, s->old_init)->out[r], ir_valmap_get(m, ir_o(g, y)->in[r]));
}

/* Build the init op at the top of the body; returns it. */
static ir_opid build_init(hoist_state *s, int32_t n_esc, const ir_val *esc) {
  ir_graph *g = s->g;
  ir_val *params = ir_xmalloc(sizeof(ir_val) * ((size_t)ir_b(g, g->body)->n_args + 1));
  int32_t n_params = init_params(s, params);
  ir_type *types = ir_xmalloc(sizeof(ir_type) * ((size_t)n_esc + 1));
  for (int32_t i = 0; i < n_esc; i++) types[i] = ir_vtype(g, esc[i]);
  ir_loc loc = ir_o(g, s->old_init != IR_NONE ? s->old_init : s->order[0])->loc;
  ir_opid init = ir_op_new(g, IR_OP_INIT, n_params, params, n_esc, types, loc);
  ir_blockid region = ir_o(g, init)->regions[0];
  ir_valmap m;
  ir_valmap_init(&m);
  for (int32_t i = 0; i < n_params; i++) {
    ir_val arg = ir_block_add_arg(g, region, ir_vtype(g, params[i]), ir_v(g, params[i])->name);
    ir_valmap_set(&m, params[i], arg);
  }
  if (s->old_init != IR_NONE) absorb_old_init(s, region, &m);
  for (int32_t k = 0; k < s->n_order; k++) ir_op_clone(g, s->order[k], region, &m);
  ir_val *yields = ir_xmalloc(sizeof(ir_val) * ((size_t)n_esc + 1));
  for (int32_t i = 0; i < n_esc; i++) yields[i] = ir_valmap_get(&m, esc[i]);
  ir_op_append(g, region, ir_op_new(g, IR_OP_YIELD, n_esc, yields, 0, NULL, loc));
  for (int32_t i = 0; i < n_esc; i++) ir_v(g, ir_o(g, init)->out[i])->name = ir_v(g, esc[i])->name;
  ir_opid first = ir_b(g, g->body)->first;
  if (first != IR_NONE)
    ir_op_insert_before(g, first, init);
  else
    ir_op_append(g, g->body, init);
  ir_valmap_free(&m);
  free(yields);
  free(types);
  free(params);
  return init;
}

/* Outside readers switch to the init's results; the moved ops go, except
 * CONST originals something outside still reads; the old init goes. */
static void retire_moved(hoist_state *s, ir_opid init, int32_t n_esc, const ir_val *esc) {
  ir_graph *g = s->g;
  for (int32_t i = 0; i < n_esc; i++) ir_replace_all_uses(g, esc[i], ir_o(g, init)->out[i]);
  for (int32_t k = s->n_order - 1; k >= 0; k--)
    if (!keeps_original(s, s->order[k])) ir_op_erase(g, s->order[k]);
  if (s->old_init != IR_NONE) ir_op_erase(g, s->old_init);
}

static ir_opid find_init(const ir_graph *g) {
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (ir_o(g, op)->kind == IR_OP_INIT) return op;
  return IR_NONE;
}

bool pass_const_hoist(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  hoist_state s = {.g = g, .old_init = find_init(g)};
  s.origin = ir_xcalloc((size_t)g->n_vals + 1, 1);
  s.moved = ir_xcalloc((size_t)g->n_ops + 1, sizeof(bool));
  s.read_outside = ir_xcalloc((size_t)g->n_vals + 1, sizeof(bool));
  s.order = ir_xmalloc(sizeof(ir_opid) * ((size_t)g->n_ops + 1));
  collect_psyms(&s);
  if (plan(&s)) {
    find_escapes(&s);
    ir_val *esc = NULL;
    int32_t n_esc = escaping_values(&s, &esc);
    ir_opid init = build_init(&s, n_esc, esc);
    retire_moved(&s, init, n_esc, esc);
    free(esc);
  }
  free(s.origin);
  free(s.moved);
  free(s.read_outside);
  free(s.order);
  free(s.psyms);
  return true;
}
