/*
 * stream.c - the causality analysis and the step graph (stream.h).
 *
 * The step graph starts as a copy of the forward graph (printed and parsed
 * back, which is lossless and keeps locations). The analysis then walks its
 * top-level ops once, in order, classifying every value; the ops whose rule
 * carries state are remembered and rewritten afterwards, so the analysis
 * sees only the original ops.
 */
#include "stream.h"

#include "pass.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum sv_kind { SV_INV, SV_SEQ, SV_FINAL } sv_kind;

typedef struct sv_info {
  sv_kind kind;
  int32_t axis; /* SEQ: the T axis */
} sv_info;

typedef struct sctx {
  ir_graph *g;
  ir_dim time;      /* the T dim */
  sv_info *info;    /* by value id (values of the copy before rewriting) */
  ir_opid *carriers; /* ops whose rule carries state, in order */
  int32_t n_carriers, cap_carriers;
  ir_buf why;       /* the first reason the model cannot stream */
  /* Rewriting. */
  ir_val pos, started;
  ir_val *state_out;
  int32_t n_state, cap_state;
  ir_dim past, cap; /* symbols, created on first use */
  const char *past_name, *cap_name;
} sctx;

/* ---- classification ----------------------------------------------------------- */

/* Whether dim d involves T (T itself, T+1, floordiv(T, 2), ...). */
static bool dim_uses_time(const sctx *s, ir_dim d) {
  if (d == s->time) return true;
  const char *few[8];
  int32_t n = ir_dim_symbols(s->g->dims, d, few, 8);
  const char **names = n > 8 ? ir_xmalloc(sizeof(char *) * (size_t)n) : few;
  if (n > 8) ir_dim_symbols(s->g->dims, d, names, n);
  bool found = false;
  for (int32_t i = 0; i < n && !found; i++) found = !strcmp(names[i], STREAM_TIME_SYMBOL);
  if (names != few) free(names);
  return found;
}

/* The T axis of t: -1 when there is none, -2 when T appears twice or
 * inside a larger dim expression (T+1, 2*T), which no rule handles. */
static int32_t time_axis_of_type(const sctx *s, ir_type t) {
  int32_t axis = -1;
  for (int32_t k = 0; k < t.rank; k++) {
    if (t.dims[k] == s->time) {
      if (axis >= 0) return -2;
      axis = k;
    } else if (dim_uses_time(s, t.dims[k])) {
      return -2;
    }
  }
  return axis;
}

/* Whether a dim attribute of op (a slice bound, a scan length) involves T. */
static bool attrs_use_time(const sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  const ir_opinfo *info = ir_opinfo_of(o->kind);
  for (int32_t a = 0; a < info->n_attrs; a++) {
    if (!o->attrs[a].present) continue;
    if (info->attrs[a].kind == IR_ATTR_DIM && dim_uses_time(s, o->attrs[a].u.d)) return true;
    for (int32_t i = 0; info->attrs[a].kind == IR_ATTR_DIMS && i < o->attrs[a].u.dims.n; i++)
      if (dim_uses_time(s, o->attrs[a].u.dims.v[i])) return true;
  }
  return false;
}

typedef struct region_scan {
  const sctx *s;
  bool found;
} region_scan;

static bool op_uses_time(ir_graph *g, ir_opid op, void *ud) {
  region_scan *r = ud;
  const ir_op *o = ir_o(g, op);
  for (int32_t i = 0; i < o->n_out && !r->found; i++) r->found = time_axis_of_type(r->s, ir_vtype(g, o->out[i])) != -1;
  r->found = r->found || attrs_use_time(r->s, op);
  return !r->found;
}

/* Whether anything inside op's regions involves T: in a step, T is the
 * number of new steps, so a body that uses it would see a different
 * length than forward's. */
static bool regions_use_time(const sctx *s, ir_opid op) {
  region_scan r = {s, false};
  const ir_op *o = ir_o(s->g, op);
  for (int32_t i = 0; i < o->n_regions && !r.found; i++) {
    const ir_block *b = ir_b(s->g, o->regions[i]);
    for (int32_t k = 0; k < b->n_args && !r.found; k++) r.found = time_axis_of_type(s, ir_vtype(s->g, b->args[k])) != -1;
    if (!r.found) ir_walk(s->g, o->regions[i], op_uses_time, &r);
  }
  return r.found;
}

/* Records why op cannot stream (the first reason only). Returns false. */
static bool block(sctx *s, ir_opid op, const char *fmt, ...) IR_PRINTF(3, 4);
static bool block(sctx *s, ir_opid op, const char *fmt, ...) {
  if (s->why.len) return false;
  const ir_op *o = ir_o(s->g, op);
  ir_op_describe(s->g, op, &s->why);
  if (o->loc.file) ir_buf_printf(&s->why, " at %s:%d:%d", o->loc.file, o->loc.line, o->loc.col);
  ir_buf_puts(&s->why, " ");
  va_list ap;
  va_start(ap, fmt);
  ir_buf_vprintf(&s->why, fmt, ap);
  va_end(ap);
  return false;
}

static sv_info in_info(const sctx *s, ir_opid op, int32_t i) {
  return s->info[ir_o(s->g, op)->in[i]];
}

static int32_t in_axis(const sctx *s, ir_opid op, int32_t i) {
  sv_info v = in_info(s, op, i);
  return v.kind == SV_SEQ ? v.axis : -1;
}

static bool any_operand(const sctx *s, ir_opid op, sv_kind k) {
  const ir_op *o = ir_o(s->g, op);
  for (int32_t i = 0; i < o->n_in; i++)
    if (s->info[o->in[i]].kind == k) return true;
  return false;
}

static int32_t norm_axis(int64_t axis, int32_t rank) {
  return (int32_t)(axis < 0 ? axis + rank : axis);
}

/* Expected T axis of op's results from its rule: AXIS_ANY when a result
 * may gain a T axis from nothing (a constant of shape [T, ...]). */
enum { AXIS_NONE = -1, AXIS_ANY = -3 };

/* Sets the class of every result of op, given the axis its rule expects
 * (AXIS_NONE: no result may have a T axis). */
static bool classify_results(sctx *s, ir_opid op, int32_t expected) {
  const ir_op *o = ir_o(s->g, op);
  bool final = any_operand(s, op, SV_FINAL);
  for (int32_t r = 0; r < o->n_out; r++) {
    int32_t ta = time_axis_of_type(s, ir_vtype(s->g, o->out[r]));
    if (ta == -2) return block(s, op, "has a result whose shape uses T other than as one whole axis");
    if (ta >= 0 && final)
      return block(s, op, "uses a value of the whole sequence (a final state) at every step");
    if (ta < 0 && expected >= 0)
      return block(s, op, "combines the time axis T away (its result has no T axis)");
    if (ta >= 0 && expected != AXIS_ANY && ta != expected)
      return block(s, op, "moves or mixes the time axis T (expected at axis %d, got %d)", expected, ta);
    s->info[o->out[r]] = (sv_info){ta >= 0 ? SV_SEQ : final ? SV_FINAL : SV_INV, ta};
  }
  return true;
}

/* Folds one operand's implied result axis into *expected. */
static bool agree(sctx *s, ir_opid op, int32_t *expected, int32_t axis) {
  if (axis < 0) return true;
  if (*expected >= 0 && *expected != axis)
    return block(s, op, "combines operands whose time axes do not line up");
  *expected = axis;
  return true;
}

static void add_carrier(sctx *s, ir_opid op) {
  ir_grow((void **)&s->carriers, &s->cap_carriers, s->n_carriers + 1, sizeof(ir_opid));
  s->carriers[s->n_carriers++] = op;
}

/* ---- the rules (one per `stream` name in ops.def) ------------------------------ */

static bool stream_yield(sctx *s, ir_opid op) { return true; }

static bool stream_elementwise(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t rank = ir_vtype(s->g, o->out[0]).rank, expected = AXIS_NONE;
  for (int32_t i = 0; i < o->n_in; i++) {
    int32_t a = in_axis(s, op, i);
    if (a >= 0 && !agree(s, op, &expected, a + rank - ir_vtype(s->g, o->in[i]).rank)) return false;
  }
  return classify_results(s, op, expected);
}

static bool stream_fill(sctx *s, ir_opid op) { return classify_results(s, op, AXIS_ANY); }

static bool stream_iota(sctx *s, ir_opid op) {
  int32_t ta = time_axis_of_type(s, ir_vtype(s->g, ir_o(s->g, op)->out[0]));
  if (ta >= 0 && ir_get_int(s->g, op, "axis") == ta) add_carrier(s, op);
  return classify_results(s, op, AXIS_ANY);
}

static bool stream_broadcast(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t a = in_axis(s, op, 0);
  if (a < 0) return classify_results(s, op, AXIS_ANY);
  return classify_results(s, op, a + ir_vtype(s->g, o->out[0]).rank - ir_vtype(s->g, o->in[0]).rank);
}

static bool stream_matmul(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t rank = ir_vtype(s->g, o->out[0]).rank, expected = AXIS_NONE;
  bool ta = ir_get_int(s->g, op, "transpose_a") != 0, tb = ir_get_int(s->g, op, "transpose_b") != 0;
  for (int32_t i = 0; i < 2; i++) {
    int32_t a = in_axis(s, op, i), r = ir_vtype(s->g, o->in[i]).rank;
    if (a < 0) continue;
    bool tr = i == 0 ? ta : tb;
    int32_t contract = i == 0 ? (tr ? r - 2 : r - 1) : (tr ? r - 1 : r - 2);
    int32_t kept = i == 0 ? (tr ? r - 1 : r - 2) : (tr ? r - 2 : r - 1);
    if (a == contract) return block(s, op, "contracts over the time axis T");
    int32_t to = a == kept ? rank - 2 + i : a + rank - r;
    if (!agree(s, op, &expected, to)) return false;
  }
  return classify_results(s, op, expected);
}

static bool stream_pack_rhs(sctx *s, ir_opid op) {
  if (in_axis(s, op, 0) >= 0) return block(s, op, "packs a matrix that changes over time");
  return classify_results(s, op, AXIS_NONE);
}

static bool stream_matmul_packed(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0), r = ir_vtype(s->g, ir_o(s->g, op)->in[0]).rank;
  if (in_axis(s, op, 1) >= 0) return block(s, op, "packs a matrix that changes over time");
  if (a == r - 1) return block(s, op, "contracts over the time axis T");
  return classify_results(s, op, a < 0 ? AXIS_NONE : a);
}

static bool stream_reduce(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0);
  if (a < 0) return classify_results(s, op, AXIS_NONE);
  const ir_attr *axes = ir_get_attr(s->g, op, "axes");
  int32_t rank = ir_vtype(s->g, ir_o(s->g, op)->in[0]).rank, before = 0;
  for (int32_t i = 0; i < axes->u.ints.n; i++) {
    int32_t x = norm_axis(axes->u.ints.v[i], rank);
    if (x == a) return block(s, op, "reduces over the time axis T");
    before += x < a;
  }
  return classify_results(s, op, ir_get_int(s->g, op, "keepdims") ? a : a - before);
}

static bool stream_argreduce(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0);
  if (a < 0) return classify_results(s, op, AXIS_NONE);
  int32_t x = norm_axis(ir_get_int(s->g, op, "axis"), ir_vtype(s->g, ir_o(s->g, op)->in[0]).rank);
  if (x == a) return block(s, op, "reduces over the time axis T");
  return classify_results(s, op, ir_get_int(s->g, op, "keepdims") || x > a ? a : a - 1);
}

/* Ops that work along `axis` and keep every other axis in place (softmax,
 * slice, concat, pad, ...): time must not be that axis. */
static bool stream_along_axis(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t x = norm_axis(ir_get_int(s->g, op, "axis"), ir_vtype(s->g, o->in[0]).rank);
  int32_t expected = AXIS_NONE;
  for (int32_t i = 0; i < o->n_in; i++) {
    int32_t a = in_axis(s, op, i);
    if (a == x) return block(s, op, "works along the time axis T (axis %d)", x);
    if (!agree(s, op, &expected, a)) return false;
  }
  return classify_results(s, op, expected);
}

static bool stream_layernorm(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t a = in_axis(s, op, 0);
  if (a >= 0 && a == ir_vtype(s->g, o->in[0]).rank - 1)
    return block(s, op, "normalizes over the time axis T");
  for (int32_t i = 1; i < o->n_in; i++)
    if (in_axis(s, op, i) >= 0) return block(s, op, "has a scale or shift that varies over time");
  return classify_results(s, op, a);
}

static bool stream_cumulative(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0);
  int32_t x = norm_axis(ir_get_int(s->g, op, "axis"), ir_vtype(s->g, ir_o(s->g, op)->in[0]).rank);
  if (a >= 0 && a == x) {
    if (ir_get_int(s->g, op, "reverse")) return block(s, op, "runs backward over the time axis T");
    add_carrier(s, op);
  }
  return classify_results(s, op, a);
}

/* The product of dims [0, n) of t. */
static ir_dim leading_product(ir_graph *g, ir_type t, int32_t n) {
  ir_dim p = ir_dim_const(g->dims, 1);
  for (int32_t k = 0; k < n; k++) p = ir_dim_mul(g->dims, p, t.dims[k]);
  return p;
}

/* A reshape keeps time in place when the elements before the T axis are
 * as many in the result as in the input (row-major order). */
static bool stream_reshape(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t a = in_axis(s, op, 0);
  if (a < 0) return classify_results(s, op, AXIS_NONE);
  ir_type in = ir_vtype(s->g, o->in[0]), out = ir_vtype(s->g, o->out[0]);
  int32_t ta = time_axis_of_type(s, out);
  if (ta < 0 || leading_product(s->g, in, a) != leading_product(s->g, out, ta))
    return block(s, op, "regroups elements across the time axis T");
  return classify_results(s, op, ta);
}

static bool stream_transpose(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0);
  if (a < 0) return classify_results(s, op, AXIS_NONE);
  const ir_attr *perm = ir_get_attr(s->g, op, "perm");
  for (int32_t j = 0; j < perm->u.ints.n; j++)
    if (perm->u.ints.v[j] == a) return classify_results(s, op, j);
  return block(s, op, "has a permutation without the time axis");
}

static bool stream_gather(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t x = norm_axis(ir_get_int(s->g, op, "axis"), ir_vtype(s->g, o->in[0]).rank);
  int32_t t = in_axis(s, op, 0), i = in_axis(s, op, 1), expected = AXIS_NONE;
  if (t == x) return block(s, op, "indexes along the time axis T");
  if (t >= 0 && !agree(s, op, &expected, t < x ? t : t - 1 + ir_vtype(s->g, o->in[1]).rank)) return false;
  if (i >= 0 && !agree(s, op, &expected, x + i)) return false;
  return classify_results(s, op, expected);
}

static bool stream_reverse_sequence(sctx *s, ir_opid op) {
  int32_t a = in_axis(s, op, 0);
  if (a >= 0 && a == ir_get_int(s->g, op, "seq_axis")) return block(s, op, "reverses the time axis T");
  if (in_axis(s, op, 1) >= 0) return block(s, op, "has lengths that vary over time");
  return classify_results(s, op, a);
}

/* Queries over T attending to keys and values that do not change over
 * time (cross-attention to a memory), with no mask on positions: each
 * query row is computed on its own, so the op streams without state. */
static bool stateless_cross_attention(const sctx *s, ir_opid op, int64_t mask) {
  const ir_op *o = ir_o(s->g, op);
  if (mask != IR_MASK_NONE && mask != IR_MASK_PADDING) return false;
  if (in_axis(s, op, 0) != ir_vtype(s->g, o->in[0]).rank - 2) return false;
  for (int32_t i = 1; i < o->n_in; i++)
    if (in_info(s, op, i).kind != SV_INV) return false;
  return true;
}

static bool stream_attention(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  if (!any_operand(s, op, SV_SEQ)) return classify_results(s, op, AXIS_NONE);
  int64_t mask = ir_get_int(s->g, op, "mask");
  if (stateless_cross_attention(s, op, mask)) return classify_results(s, op, ir_vtype(s->g, o->out[0]).rank - 2);
  if (mask != IR_MASK_CAUSAL && mask != IR_MASK_WINDOW)
    return block(s, op, "lets every query see future keys (only mask = causal or window streams, or no mask "
                        "over keys that do not change over time)");
  for (int32_t i = 0; i < 3; i++)
    if (in_axis(s, op, i) != ir_vtype(s->g, o->in[i]).rank - 2)
      return block(s, op, "needs queries, keys and values with time as their second-to-last axis");
  add_carrier(s, op);
  return classify_results(s, op, ir_vtype(s->g, o->out[0]).rank - 2);
}

/* A scan over T streams when its per-step inputs are sliced along their T
 * axis and everything else it reads is invariant: its carries become
 * state. Any other scan must not read per-step values. */
static bool stream_scan(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  int32_t carries = (int32_t)ir_get_int(s->g, op, "carries"), xs = (int32_t)ir_get_int(s->g, op, "xs");
  int32_t axis = (int32_t)ir_get_int(s->g, op, "axis");
  ir_dim length = ir_get_dim(s->g, op, "length");
  if (length != s->time) {
    if (dim_uses_time(s, length)) return block(s, op, "loops over a length computed from T");
    if (any_operand(s, op, SV_SEQ)) return block(s, op, "loops over something other than T but reads per-step values");
    return classify_results(s, op, AXIS_NONE);
  }
  if (ir_get_int(s->g, op, "reverse")) return block(s, op, "runs backward over the time axis T");
  for (int32_t i = 0; i < o->n_in; i++) {
    sv_info v = in_info(s, op, i);
    bool is_x = i >= carries && i < carries + xs;
    if (is_x && (v.kind != SV_SEQ || v.axis != axis))
      return block(s, op, "slices per-step input %d along an axis that is not T", i - carries);
    if (!is_x && v.kind == SV_SEQ)
      return block(s, op, "passes a whole sequence into its body (operand %d)", i);
    if (!is_x && v.kind == SV_FINAL)
      return block(s, op, "starts from or reads a final value of another sequence (operand %d)", i);
  }
  add_carrier(s, op);
  for (int32_t r = 0; r < o->n_out; r++) {
    bool stacked = r >= carries;
    int32_t ta = time_axis_of_type(s, ir_vtype(s->g, o->out[r]));
    if (stacked != (ta == axis) || ta == -2) return block(s, op, "has a carry whose shape uses T");
    s->info[o->out[r]] = (sv_info){stacked ? SV_SEQ : SV_FINAL, stacked ? axis : -1};
  }
  return true;
}

/* Values computed once at open from parameters: never per-step. */
static bool stream_init(sctx *s, ir_opid op) {
  if (any_operand(s, op, SV_SEQ)) return block(s, op, "reads a per-step value");
  return classify_results(s, op, AXIS_NONE);
}

static bool stream_by_rule(sctx *s, ir_opid op);

/* A kernel group streams as its ops do: each goes through its own rule,
 * the region's arguments taking their operands' classes. The fuse pass
 * runs after the step graph is derived, but a .sqir file may hold groups. */
static bool stream_fused(sctx *s, ir_opid op) {
  const ir_op *o = ir_o(s->g, op);
  ir_blockid body = o->regions[0];
  const ir_block *b = ir_b(s->g, body);
  for (int32_t i = 0; i < b->n_args && i < o->n_in; i++) s->info[b->args[i]] = s->info[o->in[i]];
  int32_t carriers = s->n_carriers;
  ir_opid y = ir_block_terminator(s->g, body);
  for (ir_opid r = b->first; r != IR_NONE && r != y; r = ir_o(s->g, r)->next) {
    if (attrs_use_time(s, r))
      return block(s, r, "has an attribute that depends on T (the length of the whole sequence)");
    if (!stream_by_rule(s, r)) return false;
  }
  if (s->n_carriers != carriers) return block(s, op, "is a kernel group whose ops carry state");
  for (int32_t r = 0; y != IR_NONE && r < o->n_out && r < ir_o(s->g, y)->n_in; r++)
    s->info[o->out[r]] = s->info[ir_o(s->g, y)->in[r]];
  return true;
}

typedef bool (*stream_rule)(sctx *s, ir_opid op);
static const stream_rule rules[IR_OP_COUNT] = {
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  [IR_OP_##id] = stream_##stream,
#include "../ir/ops.def"
};

static bool stream_by_rule(sctx *s, ir_opid op) { return rules[ir_o(s->g, op)->kind](s, op); }

/* Classifies every top-level value; false (with s->why) when some op
 * cannot stream. Ops that read and make only invariant or final values
 * need no rule: they are recomputed on every call. */
static bool analyze(sctx *s) {
  ir_graph *g = s->g;
  const ir_block *body = ir_b(g, g->body);
  for (int32_t i = 0; i < body->n_args; i++) {
    int32_t ta = time_axis_of_type(s, ir_vtype(g, body->args[i]));
    if (ta == -2) {
      ir_buf_printf(&s->why, "argument '%s' uses T other than as one whole axis",
                    ir_v(g, body->args[i])->name ? ir_v(g, body->args[i])->name : "?");
      return false;
    }
    if (ta >= 0 && ir_v(g, body->args[i])->is_param) {
      ir_buf_printf(&s->why, "parameter '%s' has a T axis", ir_v(g, body->args[i])->name);
      return false;
    }
    s->info[body->args[i]] = (sv_info){ta >= 0 ? SV_SEQ : SV_INV, ta};
  }
  for (ir_opid op = body->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    if (o->kind != IR_OP_SCAN && attrs_use_time(s, op))
      return block(s, op, "has an attribute that depends on T (the length of the whole sequence)");
    bool body_time = o->kind != IR_OP_FUSED && regions_use_time(s, op); /* a group streams by its ops' rules */
    bool no_time = !any_operand(s, op, SV_SEQ) && !attrs_use_time(s, op) && !body_time;
    for (int32_t r = 0; r < o->n_out && no_time; r++) no_time = time_axis_of_type(s, ir_vtype(g, o->out[r])) == -1;
    if (no_time && o->kind != IR_OP_YIELD) {
      if (!classify_results(s, op, AXIS_NONE)) return false;
    } else if (!rules[o->kind](s, op)) {
      return false;
    } else if (body_time) {
      return block(s, op, "uses T inside its body, where a step sees only its own steps");
    }
  }
  return true;
}

/* ---- rewriting ------------------------------------------------------------------- */

/* Moves the last op of the body (just built, after the yield) before anchor. */
static ir_val place_before(sctx *s, ir_opid anchor, ir_opid op) {
  IR_ASSERT(op != IR_NONE);
  ir_op_move_before(s->g, anchor, op);
  return ir_o(s->g, op)->out[0];
}

typedef struct op_attrs {
  const char *int_name;
  int64_t int_value;
  ir_dim start, end; /* slice */
} op_attrs;

static void set_op_attrs(ir_graph *g, ir_opid op, void *ud) {
  const op_attrs *a = ud;
  if (a->int_name) ir_set_int(g, op, a->int_name, a->int_value);
  if (ir_o(g, op)->kind == IR_OP_SLICE) {
    ir_set_dim(g, op, "start", a->start);
    ir_set_dim(g, op, "end", a->end);
  }
}

/* A new inferred op before anchor, with anchor's location. */
static ir_val build_before(sctx *s, ir_opid anchor, ir_opkind k, int32_t n, const ir_val *in,
                           op_attrs attrs, ir_diag *d) {
  ir_opid op = ir_build(s->g, s->g->body, k, n, in, set_op_attrs, &attrs, d, ir_o(s->g, anchor)->loc);
  return place_before(s, anchor, op);
}

static ir_val constant_before(sctx *s, ir_opid anchor, ir_type t, double value) {
  ir_opid op = ir_op_new(s->g, IR_OP_CONSTANT, 0, NULL, 1, &t, ir_o(s->g, anchor)->loc);
  double f = value;
  int64_t i = (int64_t)value;
  ir_tensor_data data = {1, ir_dtype_is_float(t.dtype) ? &f : NULL, ir_dtype_is_float(t.dtype) ? NULL : &i};
  ir_set_tensor(s->g, op, "value", &data);
  ir_op_append(s->g, s->g->body, op);
  return place_before(s, anchor, op);
}

/* A fresh symbol name: `base`, then base_, base__, ... until unused in g. */
static const char *fresh_symbol(sctx *s, const char *base) {
  const char **names = NULL;
  int32_t n = ir_graph_symbols(s->g, &names);
  ir_buf b = {0};
  ir_buf_puts(&b, base);
  for (bool taken = true; taken;) {
    taken = false;
    for (int32_t i = 0; i < n && !taken; i++) taken = !strcmp(names[i], b.s);
    if (taken) ir_buf_putc(&b, '_');
  }
  free(names);
  const char *name = ir_arena_strdup(s->g->arena, b.s);
  ir_buf_free(&b);
  return name;
}

static ir_val state_arg(sctx *s, ir_type t) {
  ir_buf name = {0};
  ir_buf_printf(&name, "state%d", s->n_state);
  ir_val v = ir_graph_add_input(s->g, t, ir_arena_strdup(s->g->arena, name.s), false);
  ir_buf_free(&name);
  return v;
}

static void add_state(sctx *s, ir_val next) {
  ir_grow((void **)&s->state_out, &s->cap_state, s->n_state + 1, sizeof(ir_val));
  s->state_out[s->n_state++] = next;
}

/* `started` (pos > 0), built before the first op that needs it. */
static ir_val started(sctx *s, ir_opid anchor, ir_diag *d) {
  if (s->started != IR_NONE) return s->started;
  ir_val zero = constant_before(s, anchor, ir_vtype(s->g, s->pos), 0);
  s->started = build_before(s, anchor, IR_OP_COMPARE, 2, (ir_val[]){s->pos, zero},
                            (op_attrs){"predicate", IR_CMP_GT, 0, 0}, d);
  return s->started;
}

/* `first` before the stream starts, the state afterwards. */
static ir_val from_state(sctx *s, ir_opid anchor, ir_val state, ir_val first, ir_diag *d) {
  return build_before(s, anchor, IR_OP_SELECT, 3, (ir_val[]){started(s, anchor, d), state, first},
                      (op_attrs){0}, d);
}

static ir_type with_dim(sctx *s, ir_type t, int32_t axis, ir_dim dim) {
  ir_dim *dims = ir_arena_alloc(s->g->arena, sizeof(ir_dim) * (size_t)t.rank);
  memcpy(dims, t.dims, sizeof(ir_dim) * (size_t)t.rank);
  dims[axis] = dim;
  return ir_type_make(s->g, t.dtype, t.rank, dims);
}

/* The body's step index counts from pos: pos comes in as one more loop
 * invariant, and the body reads t + pos wherever it read t. */
static void offset_step_index(sctx *s, ir_opid op, ir_diag *d) {
  ir_graph *g = s->g;
  ir_blockid body = ir_o(g, op)->regions[0];
  ir_val t = ir_b(g, body)->args[0];
  if (ir_value_use_count(g, t) == 0) return;
  int32_t n = ir_o(g, op)->n_in;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(n + 1));
  memcpy(in, ir_o(g, op)->in, sizeof(ir_val) * (size_t)n);
  in[n] = s->pos;
  ir_op_set_operands(g, op, n + 1, in);
  free(in);
  ir_val pos = ir_block_add_arg(g, body, ir_vtype(g, s->pos), "pos");
  ir_opid add = ir_build(g, body, IR_OP_ADD, 2, (ir_val[]){t, pos}, NULL, NULL, d, ir_o(g, op)->loc);
  ir_op_move_before(g, ir_b(g, body)->first, add);
  ir_val global = ir_o(g, add)->out[0];
  ir_replace_all_uses(g, t, global);
  ir_op_set_operands(g, add, 2, (ir_val[]){t, pos});
}

/* The carries' selects go before the scan's concurrent group, if any, so
 * that the group stays adjacent. */
static void rewrite_scan(sctx *s, ir_opid op, ir_diag *d) {
  ir_op *o = ir_o(s->g, op);
  int32_t carries = (int32_t)ir_get_int(s->g, op, "carries");
  ir_opid front = ir_concurrent_front(s->g, op);
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)o->n_in);
  memcpy(in, o->in, sizeof(ir_val) * (size_t)o->n_in);
  for (int32_t i = 0; i < carries; i++) {
    ir_val st = state_arg(s, ir_vtype(s->g, in[i]));
    in[i] = from_state(s, front, st, in[i], d);
    add_state(s, ir_o(s->g, op)->out[i]);
  }
  ir_op_set_operands(s->g, op, ir_o(s->g, op)->n_in, in);
  free(in);
  offset_step_index(s, op, d);
}

/* The value the lowering starts a cumulative op from (codegen/lower_linalg.c). */
static double cumulative_identity(ir_opkind k) {
  return k == IR_OP_CUMPROD ? 1.0 : k == IR_OP_LOGCUMSUMEXP ? -INFINITY : 0.0;
}

/* A cast of v to dtype dt before anchor (v itself when it has that dtype). */
static ir_val cast_before(sctx *s, ir_opid anchor, ir_val v, ir_dtype dt) {
  ir_type t = ir_vtype(s->g, v);
  if (t.dtype == dt) return v;
  ir_type to = ir_type_make(s->g, dt, t.rank, t.dims);
  ir_opid cast = ir_op_new(s->g, IR_OP_CAST, 1, &v, 1, &to, ir_o(s->g, anchor)->loc);
  ir_op_append(s->g, s->g->body, cast);
  return place_before(s, anchor, cast);
}

/* y = cum(x) over T becomes c = cum(concat(carry, x)): c[0] is the running
 * value so far, so the additions happen in forward's order exactly. The
 * running value of an f16/bf16 x is kept in f32, as the lowering keeps
 * its accumulator, and only the outputs are rounded. */
static void rewrite_cumulative(sctx *s, ir_opid op, ir_diag *d) {
  ir_graph *g = s->g;
  ir_val x = ir_o(g, op)->in[0], y = ir_o(g, op)->out[0];
  int32_t axis = s->info[x].axis;
  ir_dtype dt = ir_vtype(g, x).dtype, acc = dt == IR_F16 || dt == IR_BF16 ? IR_F32 : dt;
  ir_val xa = cast_before(s, op, x, acc);
  ir_dim one = ir_dim_const(g->dims, 1), n = s->time, n1 = ir_dim_add(g->dims, s->time, one);
  ir_type st_t = with_dim(s, ir_vtype(g, xa), axis, one);
  ir_val st = state_arg(s, st_t);
  ir_val ident = constant_before(s, op, st_t, cumulative_identity(ir_o(g, op)->kind));
  ir_val carry = from_state(s, op, st, ident, d);
  ir_val ext = build_before(s, op, IR_OP_CONCAT, 2, (ir_val[]){carry, xa}, (op_attrs){"axis", axis, 0, 0}, d);
  ir_val cum = build_before(s, op, ir_o(g, op)->kind, 1, &ext, (op_attrs){"axis", axis, 0, 0}, d);
  bool exclusive = ir_get_int(g, op, "exclusive") != 0;
  ir_val out = build_before(s, op, IR_OP_SLICE, 1, &cum,
                            (op_attrs){"axis", axis, exclusive ? ir_dim_const(g->dims, 0) : one, exclusive ? n : n1}, d);
  add_state(s, build_before(s, op, IR_OP_SLICE, 1, &cum, (op_attrs){"axis", axis, n, n1}, d));
  out = cast_before(s, op, out, dt);
  ir_value_set_name(g, out, ir_v(g, y)->name);
  ir_replace_all_uses(g, y, out);
  ir_op_erase(g, op);
}

/* iota along T counts from pos: in i64, converted once to its dtype (a
 * float iota rounds each index once, as forward's does). */
static void rewrite_iota(sctx *s, ir_opid op, ir_diag *d) {
  ir_graph *g = s->g;
  ir_val y = ir_o(g, op)->out[0];
  ir_type t = ir_vtype(g, y);
  ir_loc loc = ir_o(g, op)->loc;
  ir_opid next = ir_o(g, op)->next;
  ir_type index_t = ir_type_make(g, IR_I64, t.rank, t.dims);
  ir_opid iota = ir_op_new(g, IR_OP_IOTA, 0, NULL, 1, &index_t, loc);
  ir_set_int(g, iota, "axis", ir_get_int(g, op, "axis"));
  ir_op_append(g, g->body, iota);
  ir_val local = place_before(s, next, iota);
  ir_val global = build_before(s, next, IR_OP_ADD, 2, (ir_val[]){local, s->pos}, (op_attrs){0}, d);
  global = cast_before(s, next, global, t.dtype);
  ir_value_set_name(g, global, ir_v(g, y)->name);
  ir_replace_all_uses(g, y, global);
  ir_op_erase(g, op);
}

static ir_dim symbol_dim(sctx *s, const char **name, const char *base) {
  if (!*name) *name = fresh_symbol(s, base);
  return ir_dim_sym(s->g->dims, *name, strlen(*name));
}

/* Keys and values go into caches of capacity `cap` at pos; queries see the
 * first pos + n entries (the causal mask is bottom-right aligned). */
static void rewrite_attention(sctx *s, ir_opid op, ir_diag *d) {
  ir_graph *g = s->g;
  if (s->past == IR_DIM_INVALID) s->past = symbol_dim(s, &s->past_name, "T_past");
  if (s->cap == IR_DIM_INVALID) s->cap = symbol_dim(s, &s->cap_name, "T_cap");
  ir_val in[4];
  int32_t n_in = ir_o(g, op)->n_in;
  memcpy(in, ir_o(g, op)->in, sizeof(ir_val) * (size_t)n_in);
  for (int32_t i = 1; i <= 2; i++) {
    ir_type t = ir_vtype(g, in[i]);
    int32_t axis = t.rank - 2;
    ir_val cache = state_arg(s, with_dim(s, t, axis, s->cap));
    ir_val next = build_before(s, op, IR_OP_DYNAMIC_UPDATE_SLICE, 3, (ir_val[]){cache, in[i], s->pos},
                               (op_attrs){"axis", axis, 0, 0}, d);
    add_state(s, next);
    in[i] = build_before(s, op, IR_OP_SLICE, 1, &next,
                         (op_attrs){"axis", axis, ir_dim_const(g->dims, 0), ir_dim_add(g->dims, s->past, s->time)}, d);
  }
  ir_op_set_operands(g, op, n_in, in);
}

/* Appends the new states to the graph's outputs, named state0, state1, ... */
static void add_state_outputs(sctx *s) {
  ir_graph *g = s->g;
  ir_opid y = ir_block_terminator(g, g->body);
  int32_t n = ir_o(g, y)->n_in;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(n + s->n_state));
  memcpy(in, ir_o(g, y)->in, sizeof(ir_val) * (size_t)n);
  if (s->n_state) memcpy(in + n, s->state_out, sizeof(ir_val) * (size_t)s->n_state);
  ir_op_set_operands(g, y, n + s->n_state, in);
  free(in);
  const char **names = ir_arena_alloc(g->arena, sizeof(char *) * (size_t)(n + s->n_state));
  memcpy(names, g->output_names, sizeof(char *) * (size_t)n);
  for (int32_t i = 0; i < s->n_state; i++) {
    ir_buf b = {0};
    ir_buf_printf(&b, "state%d", i);
    for (bool taken = true; taken;) { /* never an output name of the model's */
      taken = false;
      for (int32_t k = 0; k < n + i && !taken; k++) taken = !strcmp(names[k], b.s);
      if (taken) ir_buf_putc(&b, '_');
    }
    names[n + i] = ir_arena_strdup(g->arena, b.s);
    ir_buf_free(&b);
  }
  g->output_names = names;
  g->n_outputs = n + s->n_state;
}

static bool rewrite(sctx *s, ir_diag *d) {
  ir_graph *g = s->g;
  s->pos = ir_graph_add_input(g, ir_type_make(g, IR_I64, 0, NULL), "pos", false);
  for (int32_t i = 0; i < s->n_carriers; i++) {
    ir_opid op = s->carriers[i];
    switch (ir_o(g, op)->kind) {
    case IR_OP_SCAN: rewrite_scan(s, op, d); break;
    case IR_OP_IOTA: rewrite_iota(s, op, d); break;
    case IR_OP_ATTENTION: rewrite_attention(s, op, d); break;
    default: rewrite_cumulative(s, op, d); break;
    }
  }
  add_state_outputs(s);
  return ir_verify(g, d);
}

/* ---- causal attention written with primitive ops --------------------------------- */

/* softmax(select(mask, q k^T * s)) v with a causal mask built from two
 * iotas has two T axes, so no rule streams it; it is exactly the
 * `attention` op with mask = causal and scale s (the op's decomposition is
 * the same sequence of float operations), which streams with a KV cache.
 * raise_attention rewrites the pattern in the step graph before the
 * analysis; forward keeps the model as written. */

/* The constant scalar v holds (a splat), in *x. */
static bool scalar_constant(const ir_graph *g, ir_val v, double *x) {
  const ir_tensor_data *t = ir_constant_data(g, v);
  if (!t || t->n != 1 || !t->f) return false;
  *x = t->f[0];
  return true;
}

/* The axis of cmp's result that the integer iota defining v counts along
 * (its own axis, right-aligned to the result's rank), or -1. The iota must
 * count exactly over T there: indexes, not values rounded to a float. */
static int64_t iota_axis(const sctx *s, ir_val v, int32_t result_rank) {
  ir_opid op = ir_def_of_kind(s->g, v, IR_OP_IOTA);
  ir_type t = ir_vtype(s->g, v);
  if (op == IR_NONE || !ir_dtype_is_int(t.dtype)) return -1;
  int64_t axis = norm_axis(ir_get_int(s->g, op, "axis"), t.rank);
  if (axis < 0 || axis >= t.rank || t.dims[axis] != s->time) return -1;
  return axis + result_rank - t.rank;
}

/* Whether cond (bool[.., T, T]) is true exactly where a key lies after its
 * query (future = true) or at or before it (future = false). */
static bool causal_condition(const sctx *s, ir_val cond, bool *future) {
  ir_opid cmp = ir_def_of_kind(s->g, cond, IR_OP_COMPARE);
  if (cmp == IR_NONE) return false;
  int32_t rank = ir_vtype(s->g, cond).rank;
  int64_t a = iota_axis(s, ir_o(s->g, cmp)->in[0], rank), b = iota_axis(s, ir_o(s->g, cmp)->in[1], rank);
  int64_t pred = ir_get_int(s->g, cmp, "predicate");
  bool col_first = a == rank - 1 && b == rank - 2, row_first = a == rank - 2 && b == rank - 1;
  if (!col_first && !row_first) return false;
  /* col > row is the future; col <= row the visible part. */
  if (pred == (col_first ? IR_CMP_GT : IR_CMP_LT)) *future = true;
  else if (pred == (col_first ? IR_CMP_LE : IR_CMP_GE)) *future = false;
  else return false;
  return true;
}

/* The scores q k^T * scale, or q k^T (scale 1): q and k in *q, *k. */
static bool scaled_scores(const ir_graph *g, ir_val s, ir_val *q, ir_val *k, double *scale) {
  ir_opid mul = ir_def_of_kind(g, s, IR_OP_MUL);
  *scale = 1.0;
  if (mul != IR_NONE) {
    int side = scalar_constant(g, ir_o(g, mul)->in[1], scale) ? 0 : scalar_constant(g, ir_o(g, mul)->in[0], scale) ? 1 : -1;
    if (side < 0) return false;
    s = ir_o(g, mul)->in[side];
  }
  ir_opid mm = ir_def_of_kind(g, s, IR_OP_MATMUL);
  if (mm == IR_NONE || ir_get_int(g, mm, "transpose_a") || !ir_get_int(g, mm, "transpose_b")) return false;
  *q = ir_o(g, mm)->in[0];
  *k = ir_o(g, mm)->in[1];
  return true;
}

/* The masked logits: select(future, -inf, s) or select(visible, s, -inf). */
static bool masked_scores(const sctx *s, ir_val x, ir_val *scores) {
  const ir_graph *g = s->g;
  ir_opid sel = ir_def_of_kind(g, x, IR_OP_SELECT);
  double inf;
  bool future;
  if (sel == IR_NONE || !causal_condition(s, ir_o(g, sel)->in[0], &future)) return false;
  ir_val masked = ir_o(g, sel)->in[future ? 1 : 2];
  *scores = ir_o(g, sel)->in[future ? 2 : 1];
  return scalar_constant(g, masked, &inf) && inf == -INFINITY;
}

static void set_attention(ir_graph *g, ir_opid op, void *ud) {
  ir_set_int(g, op, "mask", IR_MASK_CAUSAL);
  ir_set_float(g, op, "scale", *(const double *)ud);
}

/* matmul(softmax(masked q k^T s), v) becomes attention(q, k, v). */
static bool raise_one(sctx *s, ir_opid op, ir_diag *d) {
  ir_graph *g = s->g;
  const ir_op *o = ir_o(g, op);
  if (o->kind != IR_OP_MATMUL || ir_get_int(g, op, "transpose_a") || ir_get_int(g, op, "transpose_b")) return false;
  ir_opid sm = ir_def_of_kind(g, o->in[0], IR_OP_SOFTMAX);
  int32_t rank = ir_vtype(g, o->in[0]).rank;
  ir_val scores, q, k, v = o->in[1];
  double scale;
  if (sm == IR_NONE || norm_axis(ir_get_int(g, sm, "axis"), rank) != rank - 1 ||
      !masked_scores(s, ir_o(g, sm)->in[0], &scores) || !scaled_scores(g, scores, &q, &k, &scale))
    return false;
  if (ir_vtype(g, q).rank != rank || ir_vtype(g, k).rank != rank || ir_vtype(g, v).rank != rank) return false;
  ir_opid att = ir_build(g, g->body, IR_OP_ATTENTION, 3, (ir_val[]){q, k, v}, set_attention, &scale, d, o->loc);
  if (att == IR_NONE || !ir_type_equal(ir_vtype(g, ir_o(g, att)->out[0]), ir_vtype(g, o->out[0]))) {
    if (att != IR_NONE) ir_op_erase(g, att);
    return false;
  }
  ir_op_move_before(g, op, att);
  ir_value_set_name(g, ir_o(g, att)->out[0], ir_v(g, o->out[0])->name);
  ir_replace_all_uses(g, o->out[0], ir_o(g, att)->out[0]);
  return true;
}

/* Raises every match, then drops the ops only they used. */
static bool raise_attention(sctx *s, ir_diag *d) {
  bool any = false;
  for (ir_opid op = ir_b(s->g, s->g->body)->first; op != IR_NONE; op = ir_o(s->g, op)->next)
    any = raise_one(s, op, d) || any;
  if (!any) return true;
  pass_ctx pc;
  pass_ctx_init(&pc, d);
  return pass_dce(s->g, &pc);
}

/* ---- driver ------------------------------------------------------------------------ */

static ir_graph *copy_graph(const ir_graph *g, ir_diag *d) {
  ir_buf text = {0};
  ir_print_graph(g, &(ir_print_opts){true}, &text);
  ir_graph *copy = ir_parse(text.s, text.len, "<step graph>", d);
  ir_buf_free(&text);
  if (!copy) return NULL;
  ir_buf name = {0};
  ir_buf_printf(&name, "%s_step", g->name);
  copy->name = ir_arena_strdup(copy->arena, name.s);
  ir_buf_free(&name);
  return copy;
}

static bool uses_time(const ir_graph *g) {
  const char **names = NULL;
  int32_t n = ir_graph_symbols(g, &names);
  bool found = false;
  for (int32_t i = 0; i < n && !found; i++) found = !strcmp(names[i], STREAM_TIME_SYMBOL);
  free(names);
  return found;
}

/* Classifies and rewrites s->g (the copy); false with s->why when the
 * model cannot stream, or (s->why empty) after an internal error. */
static bool derive(sctx *s, ir_diag *d) {
  if (!uses_time(s->g)) {
    ir_buf_printf(&s->why, "it has no time dim %s", STREAM_TIME_SYMBOL);
    return false;
  }
  if (!raise_attention(s, d)) return false;
  s->info = ir_xcalloc((size_t)s->g->n_vals + 1, sizeof(sv_info));
  if (!analyze(s)) return false;
  if (rewrite(s, d)) return true;
  ir_error_at(d, (ir_loc){0}, "internal error: the step graph of '%s' does not verify", s->g->name);
  return false;
}

bool stream_derive(const ir_graph *g, stream_result *out, ir_diag *d) {
  memset(out, 0, sizeof *out);
  ir_graph *copy = copy_graph(g, d);
  if (!copy) return false;
  sctx s = {0};
  s.g = copy;
  s.time = ir_dim_sym(copy->dims, STREAM_TIME_SYMBOL, strlen(STREAM_TIME_SYMBOL));
  s.pos = s.started = IR_NONE;
  s.past = s.cap = IR_DIM_INVALID;
  bool streams = derive(&s, d), ok = streams || s.why.len > 0;
  if (streams) {
    out->step = copy;
    out->n_state = s.n_state;
    out->past_sym = s.past_name;
    out->cap_sym = s.cap_name;
  } else {
    out->why_not = s.why.s;
    s.why.s = NULL;
    ir_graph_free(copy);
  }
  ir_buf_free(&s.why);
  free(s.info);
  free(s.carriers);
  free(s.state_out);
  return ok;
}

void stream_result_free(stream_result *r) {
  ir_graph_free(r->step);
  free(r->why_not);
  memset(r, 0, sizeof *r);
}
