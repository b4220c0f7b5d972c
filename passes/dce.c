/*
 * dce.c - dead code elimination, including dead scan carries and unread
 * stacked scan outputs.
 *
 * Algorithm. Each block is swept once from its terminator upwards with use
 * counts of the block's values. Regions are isolated from above, so a
 * block's values are read only by the ops directly in that block, and the
 * counts are gathered per block (linear overall, and new values created by
 * rebuilding a scan get counts without a walk of the whole graph). A pure op
 * whose results are all unread is erased and its operands' counts drop;
 * since operands are defined above their readers, one upward sweep reaches
 * the block's fixpoint. The terminator and everything it reads stay, so the
 * graph's outputs and what computes them are never removed.
 *
 * A live `scan` is trimmed before its body is swept. Its body arguments are
 * (t, carries, per-step slices, invariants) and its yield gives (new
 * carries, per-step outputs); its results are (final carries, stacked
 * outputs). Liveness inside the body is a worklist fixpoint over values:
 *   - the yield operand of every stacked output whose result is read, and
 *     the operands of any impure op, are needed;
 *   - a carry is live when its final result is read or its body argument is
 *     needed; the yield operand of a live carry is needed;
 *   - the operands of the op defining a needed value are needed.
 * Dead carries, unread outputs, and slices or invariants whose arguments are
 * not needed are then dropped by building a new scan with the live ones only
 * (same attributes, `carries` and `xs` updated; `length` keeps the trip
 * count even when no per-step input remains) whose body is a copy of the
 * needed ops of the old body. Nested scans count as single ops in this
 * analysis; trimming one may free more of the enclosing body, so the whole
 * sweep repeats after a scan inside a region was rebuilt.
 *
 * Needs: a verified graph. Invalidates: ids of erased ops and values, and
 * the identity (op and block ids) of rebuilt scans. Removing dead ops may
 * remove run-time errors they would have raised; results never change.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>

typedef struct dce_state {
  ir_graph *g;
  int32_t *uses;    /* by value id: readers in the value's own block */
  int32_t cap_uses;
  uint8_t *needed;  /* by value id: needed by a live scan yield; cleared after use */
  int32_t cap_needed;
  ir_val *marked;   /* values marked needed, also the worklist */
  int32_t n_marked, cap_marked;
  bool sweep_again; /* a scan inside a region was trimmed */
} dce_state;

static void fit_value_arrays(dce_state *st) {
  ir_grow((void **)&st->uses, &st->cap_uses, st->g->n_vals + 1, sizeof(int32_t));
  ir_grow((void **)&st->needed, &st->cap_needed, st->g->n_vals + 1, sizeof(uint8_t));
}

static unsigned op_flags(const ir_graph *g, ir_opid op) {
  return ir_opinfo_of(ir_o(g, op)->kind)->flags;
}

static void count_block_uses(dce_state *st, ir_blockid b) {
  ir_graph *g = st->g;
  fit_value_arrays(st);
  for (int32_t i = 0; i < ir_b(g, b)->n_args; i++) st->uses[ir_b(g, b)->args[i]] = 0;
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next)
    for (int32_t i = 0; i < ir_o(g, op)->n_out; i++) st->uses[ir_o(g, op)->out[i]] = 0;
  for (ir_opid op = ir_b(g, b)->first; op != IR_NONE; op = ir_o(g, op)->next)
    for (int32_t i = 0; i < ir_o(g, op)->n_in; i++) st->uses[ir_o(g, op)->in[i]]++;
}

static bool results_unused(const dce_state *st, ir_opid op) {
  for (int32_t i = 0; i < ir_o(st->g, op)->n_out; i++)
    if (st->uses[ir_o(st->g, op)->out[i]] > 0) return false;
  return true;
}

static bool removable(const dce_state *st, ir_opid op) {
  unsigned flags = op_flags(st->g, op);
  return (flags & IR_PURE) && !(flags & IR_TERMINATOR) && results_unused(st, op);
}

static void count_operands(dce_state *st, ir_opid op, int32_t delta) {
  for (int32_t i = 0; i < ir_o(st->g, op)->n_in; i++) st->uses[ir_o(st->g, op)->in[i]] += delta;
}

/* ---- scan liveness ---------------------------------------------------------- */

/* A scan's operand and result layout, read from its attributes. */
typedef struct scan_shape {
  int32_t carries, xs, invariants, outputs;
  ir_blockid body;
  ir_opid yield;
} scan_shape;

static bool read_scan_shape(const ir_graph *g, ir_opid scan, scan_shape *s) {
  const ir_op *o = ir_o(g, scan);
  int64_t c = ir_get_int(g, scan, "carries"), x = ir_get_int(g, scan, "xs");
  if (c < 0 || x < 0 || c + x > o->n_in || c > o->n_out || o->n_regions != 1) return false;
  s->carries = (int32_t)c;
  s->xs = (int32_t)x;
  s->invariants = o->n_in - s->carries - s->xs;
  s->outputs = o->n_out - s->carries;
  s->body = o->regions[0];
  s->yield = ir_block_terminator(g, s->body);
  return s->yield != IR_NONE && ir_o(g, s->yield)->n_in == o->n_out &&
         ir_b(g, s->body)->n_args == 1 + o->n_in;
}

static void mark_needed(dce_state *st, ir_val v) {
  if (st->needed[v]) return;
  st->needed[v] = 1;
  ir_grow((void **)&st->marked, &st->cap_marked, st->n_marked + 1, sizeof(ir_val));
  st->marked[st->n_marked++] = v;
}

static void clear_needed(dce_state *st) {
  for (int32_t i = 0; i < st->n_marked; i++) st->needed[st->marked[i]] = 0;
  st->n_marked = 0;
}

static void make_carry_live(dce_state *st, const scan_shape *s, bool *carry_live, int32_t i) {
  if (carry_live[i]) return;
  carry_live[i] = true;
  mark_needed(st, ir_o(st->g, s->yield)->in[i]);
}

/* Marks every body value needed for a live result (the fixpoint described
 * at the top) and sets carry_live. */
static void find_needed(dce_state *st, ir_opid scan, const scan_shape *s, bool *carry_live) {
  ir_graph *g = st->g;
  for (int32_t j = 0; j < s->outputs; j++)
    if (st->uses[ir_o(g, scan)->out[s->carries + j]] > 0)
      mark_needed(st, ir_o(g, s->yield)->in[s->carries + j]);
  for (int32_t i = 0; i < s->carries; i++)
    if (st->uses[ir_o(g, scan)->out[i]] > 0) make_carry_live(st, s, carry_live, i);
  for (ir_opid op = ir_b(g, s->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (!(op_flags(g, op) & (IR_PURE | IR_TERMINATOR)))
      for (int32_t i = 0; i < ir_o(g, op)->n_in; i++) mark_needed(st, ir_o(g, op)->in[i]);
  for (int32_t next = 0; next < st->n_marked; next++) {
    ir_val v = st->marked[next];
    const ir_value *val = ir_v(g, v);
    if (val->def != IR_NONE) {
      for (int32_t i = 0; i < ir_o(g, val->def)->n_in; i++) mark_needed(st, ir_o(g, val->def)->in[i]);
    } else if (val->block == s->body && val->index >= 1 && val->index <= s->carries) {
      make_carry_live(st, s, carry_live, val->index - 1);
    }
  }
}

static bool body_op_needed(const dce_state *st, ir_opid op) {
  if (!(op_flags(st->g, op) & IR_PURE)) return true;
  for (int32_t i = 0; i < ir_o(st->g, op)->n_out; i++)
    if (st->needed[ir_o(st->g, op)->out[i]]) return true;
  return false;
}

/* ---- rebuilding a scan -------------------------------------------------------- */

/* What survives of a scan: keep_in[k] for operand k (and body argument
 * k+1), keep_out[k] for result k (and yield operand k). */
typedef struct scan_keep {
  bool *keep_in, *keep_out;
  int32_t n_in, n_out, carries, xs;
} scan_keep;

static bool decide_keep(dce_state *st, ir_opid scan, const scan_shape *s, const bool *carry_live,
                        scan_keep *k) {
  ir_graph *g = st->g;
  const ir_block *body = ir_b(g, s->body);
  int32_t n_in = ir_o(g, scan)->n_in, n_out = ir_o(g, scan)->n_out;
  k->keep_in = ir_xcalloc((size_t)n_in + 1, sizeof(bool));
  k->keep_out = ir_xcalloc((size_t)n_out + 1, sizeof(bool));
  k->n_in = k->n_out = k->carries = k->xs = 0;
  for (int32_t i = 0; i < n_in; i++) {
    bool is_carry = i < s->carries;
    k->keep_in[i] = is_carry ? carry_live[i] : st->needed[body->args[1 + i]] != 0;
    k->n_in += k->keep_in[i];
    k->carries += is_carry && k->keep_in[i];
    k->xs += !is_carry && i < s->carries + s->xs && k->keep_in[i];
  }
  for (int32_t i = 0; i < n_out; i++) {
    k->keep_out[i] = i < s->carries ? carry_live[i] : st->uses[ir_o(g, scan)->out[i]] > 0;
    k->n_out += k->keep_out[i];
  }
  return k->n_in < n_in || k->n_out < n_out;
}

/* The new scan's body: t, the kept arguments, copies of the needed ops and
 * a yield of the kept operands. */
static void build_body(dce_state *st, const scan_shape *s, const scan_keep *k, ir_blockid dst) {
  ir_graph *g = st->g;
  ir_valmap m;
  ir_valmap_init(&m);
  for (int32_t a = 0; a < ir_b(g, s->body)->n_args; a++) {
    if (a > 0 && !k->keep_in[a - 1]) continue;
    ir_val arg = ir_b(g, s->body)->args[a];
    ir_val copy = ir_block_add_arg(g, dst, ir_vtype(g, arg), NULL);
    ir_v(g, copy)->name = ir_v(g, arg)->name;
    ir_valmap_set(&m, arg, copy);
  }
  for (ir_opid op = ir_b(g, s->body)->first; op != s->yield; op = ir_o(g, op)->next)
    if (body_op_needed(st, op)) ir_op_clone(g, op, dst, &m);
  ir_val *vals = ir_xmalloc(sizeof(ir_val) * (size_t)(k->n_out + 1));
  int32_t n = 0;
  for (int32_t i = 0; i < ir_o(g, s->yield)->n_in; i++)
    if (k->keep_out[i]) vals[n++] = ir_valmap_get(&m, ir_o(g, s->yield)->in[i]);
  ir_opid y = ir_op_new(g, IR_OP_YIELD, n, vals, 0, NULL, ir_o(g, s->yield)->loc);
  ir_op_append(g, dst, y);
  free(vals);
  ir_valmap_free(&m);
}

/* Readers of a block's values are later ops of the same block. */
static void replace_uses_after(ir_graph *g, ir_opid op, const ir_valmap *m) {
  for (ir_opid user = ir_o(g, op)->next; user != IR_NONE; user = ir_o(g, user)->next) {
    int32_t n = ir_o(g, user)->n_in;
    ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(n + 1));
    bool changed = false;
    for (int32_t i = 0; i < n; i++) {
      in[i] = ir_valmap_get(m, ir_o(g, user)->in[i]);
      changed |= in[i] != ir_o(g, user)->in[i];
    }
    if (changed) ir_op_set_operands(g, user, n, in);
    free(in);
  }
}

static ir_opid rebuild_scan(dce_state *st, ir_opid scan, const scan_shape *s, const scan_keep *k) {
  ir_graph *g = st->g;
  ir_val *in = ir_xmalloc(sizeof(ir_val) * (size_t)(k->n_in + 1));
  ir_type *types = ir_xmalloc(sizeof(ir_type) * (size_t)(k->n_out + 1));
  int32_t n_in = 0, n_out = 0;
  for (int32_t i = 0; i < ir_o(g, scan)->n_in; i++)
    if (k->keep_in[i]) in[n_in++] = ir_o(g, scan)->in[i];
  for (int32_t i = 0; i < ir_o(g, scan)->n_out; i++)
    if (k->keep_out[i]) types[n_out++] = ir_vtype(g, ir_o(g, scan)->out[i]);
  ir_opid fresh = ir_op_new(g, IR_OP_SCAN, n_in, in, n_out, types, ir_o(g, scan)->loc);
  free(in);
  free(types);
  memcpy(ir_o(g, fresh)->attrs, ir_o(g, scan)->attrs,
         sizeof(ir_attr) * (size_t)ir_opinfo_of(IR_OP_SCAN)->n_attrs);
  ir_set_int(g, fresh, "carries", k->carries);
  ir_set_int(g, fresh, "xs", k->xs);
  build_body(st, s, k, ir_o(g, fresh)->regions[0]);
  ir_op_insert_before(g, scan, fresh);

  fit_value_arrays(st);
  ir_valmap results;
  ir_valmap_init(&results);
  for (int32_t i = 0, j = 0; i < ir_o(g, scan)->n_out; i++) {
    if (!k->keep_out[i]) continue;
    ir_val old = ir_o(g, scan)->out[i], now = ir_o(g, fresh)->out[j++];
    ir_v(g, now)->name = ir_v(g, old)->name;
    st->uses[now] = st->uses[old];
    ir_valmap_set(&results, old, now);
  }
  replace_uses_after(g, scan, &results);
  ir_valmap_free(&results);
  count_operands(st, scan, -1);
  count_operands(st, fresh, +1);
  ir_op_erase(g, scan);
  return fresh;
}

/* Drops what the scan does not need; returns the scan now in its place. */
static ir_opid trim_scan(dce_state *st, ir_opid scan) {
  scan_shape s;
  if (!read_scan_shape(st->g, scan, &s)) return scan;
  fit_value_arrays(st);
  bool *carry_live = ir_xcalloc((size_t)s.carries + 1, sizeof(bool));
  find_needed(st, scan, &s, carry_live);
  scan_keep k;
  if (decide_keep(st, scan, &s, carry_live, &k)) {
    st->sweep_again |= ir_o(st->g, scan)->block != st->g->body;
    scan = rebuild_scan(st, scan, &s, &k);
  }
  clear_needed(st);
  free(k.keep_in);
  free(k.keep_out);
  free(carry_live);
  return scan;
}

/* ---- the sweep ------------------------------------------------------------------- */

static void dce_block(dce_state *st, ir_blockid b) {
  ir_graph *g = st->g;
  count_block_uses(st, b);
  for (ir_opid op = ir_b(g, b)->last, prev; op != IR_NONE; op = prev) {
    prev = ir_o(g, op)->prev;
    if (removable(st, op)) {
      count_operands(st, op, -1);
      ir_op_erase(g, op);
      continue;
    }
    if (ir_o(g, op)->kind == IR_OP_SCAN) op = trim_scan(st, op);
    for (int32_t r = 0; r < ir_o(g, op)->n_regions; r++) dce_block(st, ir_o(g, op)->regions[r]);
  }
}

bool pass_dce(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  dce_state st;
  memset(&st, 0, sizeof st);
  st.g = g;
  /* Within a block one upward sweep is a fixpoint. The scan analysis treats
   * a nested scan as one op, so trimming one may free arguments of the
   * enclosing body: then sweep again. Each repeat follows a rebuild that
   * removed operands or results, so this ends. */
  do {
    st.sweep_again = false;
    dce_block(&st, g->body);
  } while (st.sweep_again);
  free(st.uses);
  free(st.needed);
  free(st.marked);
  return true;
}
