/*
 * verify.c - the IR verifier (ir_verify in ir.h): checks that a graph is
 * well formed before passes or codegen rely on it, and reports every
 * problem it finds rather than stopping at the first.
 *
 * Because regions are isolated from above, each block can be checked on its
 * own: the values an op may read are exactly its block's arguments and the
 * results of earlier ops in the same block. The verifier therefore walks
 * blocks from a work queue (the graph body first, then each region as its
 * op is met) instead of recursing, so deeply nested regions cannot exhaust
 * the stack. Within a block it walks ops in order and records, per value,
 * the block whose walk has reached its definition; an operand is visible
 * iff that record is the current block.
 *
 * Per op it checks that the op is live and linked into this block, that
 * yield comes only last, that operands are defined, visible and not results
 * of erased ops, and that regions belong to the op; then it asks
 * ir_infer_types (shape.c, which also checks arity, region count and
 * attributes) for the result types and compares them with the declared
 * ones. Inference is skipped for an op whose operands or results cannot be
 * read or whose region lacks a terminator, since its errors are already
 * reported and would only cascade. Per block it checks the terminator; for
 * the graph it checks the outputs' count and names.
 *
 * `init` (values computed once when a compiled model opens) has a place of
 * its own: at most one per graph, in the graph body, reading graph
 * parameters only, since the generated NAME_init gets nothing else.
 *
 * Concurrent scans (`concurrent = k`, k > 0) are checked once the blocks
 * are known to be sound: the scans of group k form one run of adjacent ops
 * of one block (ids are graph-wide), and none reads another's results, so
 * they may run in any order or at once. Adjacency makes a direct read the
 * only way one could depend on another.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct verifier {
  ir_graph *g;
  ir_diag *d;
  bool ok;
  ir_blockid *defined_in; /* per value: block whose walk reached its definition */
  bool *op_seen;          /* per op: already walked (guards broken op lists) */
  bool *block_seen;       /* per block: already queued */
  ir_blockid *queue;      /* blocks still to walk, in FIFO order */
  int32_t q_head, q_len, q_cap;
  ir_type *types;         /* inferred result types of the current op */
  int32_t types_cap;
  ir_buf text[6];         /* rotating buffers for names and types in messages */
  int32_t next_text;
  ir_opid init;           /* the first init op met, IR_NONE before */
} verifier;

static IR_PRINTF(3, 4) void report(verifier *V, ir_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(V->d, loc, fmt, ap);
  va_end(ap);
  V->ok = false;
}

static ir_buf *next_text(verifier *V) {
  ir_buf *b = &V->text[V->next_text];
  V->next_text = (V->next_text + 1) % 6;
  b->len = 0;
  ir_buf_puts(b, "");
  return b;
}

static const char *op_name(const verifier *V, ir_opid o) {
  return ir_opinfo_of(ir_o(V->g, o)->kind)->name;
}

static bool valid_val(const verifier *V, ir_val v) { return v >= 0 && v < V->g->n_vals; }
static bool valid_op(const verifier *V, ir_opid o) { return o >= 0 && o < V->g->n_ops; }
static bool valid_block(const verifier *V, ir_blockid b) { return b >= 0 && b < V->g->n_blocks; }

/* "the graph body" or "the scan body". */
static const char *block_desc(verifier *V, ir_blockid b) {
  ir_opid parent = ir_b(V->g, b)->parent;
  if (b == V->g->body || !valid_op(V, parent)) return "the graph body";
  ir_buf *t = next_text(V);
  ir_buf_printf(t, "the %s body", op_name(V, parent));
  return t->s;
}

/* A value as messages name it: its own name, else its position. */
static const char *val_desc(verifier *V, ir_val v) {
  const ir_value *val = ir_v(V->g, v);
  ir_buf *t = next_text(V);
  if (val->name)
    ir_buf_printf(t, "'%%%s'", val->name);
  else if (valid_op(V, val->def))
    ir_buf_printf(t, "result %d of %s", val->index, op_name(V, val->def));
  else if (valid_block(V, val->block) && val->block != V->g->body)
    ir_buf_printf(t, "argument %d of %s", val->index, block_desc(V, val->block));
  else
    ir_buf_printf(t, "graph argument %d", val->index);
  return t->s;
}

/* Where block-level problems are reported: at the op owning the region. */
static ir_loc block_loc(const verifier *V, ir_blockid b) {
  ir_opid parent = ir_b(V->g, b)->parent;
  if (valid_op(V, parent)) return ir_o(V->g, parent)->loc;
  ir_opid last = ir_b(V->g, b)->last;
  return valid_op(V, last) ? ir_o(V->g, last)->loc : (ir_loc){0};
}

/* ---- types --------------------------------------------------------------- */

static bool type_readable(ir_type t) {
  if ((int)t.dtype < 0 || t.dtype >= IR_DTYPE_COUNT || t.rank < 0) return false;
  if (t.rank > 0 && !t.dims) return false;
  for (int32_t i = 0; i < t.rank; i++)
    if (t.dims[i] == IR_DIM_INVALID) return false;
  return true;
}

/* A value's type at its definition: readable, no negative constant dims,
 * and a static element count that fits in int64. */
static bool check_value_type(verifier *V, ir_val v, ir_loc loc) {
  ir_type t = ir_vtype(V->g, v);
  if (!type_readable(t)) {
    report(V, loc, "%s has a malformed type", val_desc(V, v));
    return false;
  }
  bool all_const = true;
  int64_t numel = 1;
  bool overflow = false;
  for (int32_t i = 0; i < t.rank; i++) {
    int64_t c;
    if (!ir_dim_is_const(V->g->dims, t.dims[i], &c)) {
      all_const = false;
      continue;
    }
    if (c < 0) {
      ir_buf *s = next_text(V);
      ir_print_type(V->g, t, s);
      report(V, loc, "%s has a negative dim in %s", val_desc(V, v), s->s);
      return false;
    }
    overflow = overflow || __builtin_mul_overflow(numel, c, &numel);
  }
  if (all_const && overflow) {
    ir_buf *s = next_text(V);
    ir_print_type(V->g, t, s);
    report(V, loc, "%s: element count of %s overflows", val_desc(V, v), s->s);
    return false;
  }
  return true;
}

/* ---- operands ---------------------------------------------------------- */

typedef enum operand_status {
  OPERAND_OK,
  OPERAND_MISPLACED, /* readable, but not visible here: inference still runs */
  OPERAND_UNUSABLE,  /* no value or an unreadable type: inference is skipped */
} operand_status;

/* The block that defines v, or IR_NONE with *why set. */
static ir_blockid home_block(const verifier *V, ir_val v, const char **why) {
  const ir_value *val = ir_v(V->g, v);
  if (val->def == IR_NONE) {
    if (!valid_block(V, val->block)) *why = "which is not attached to any block";
    return valid_block(V, val->block) ? val->block : IR_NONE;
  }
  if (!valid_op(V, val->def)) {
    *why = "whose defining op does not exist";
    return IR_NONE;
  }
  const ir_op *def = ir_o(V->g, val->def);
  if (def->erased) {
    *why = "whose defining op was erased";
    return IR_NONE;
  }
  if (!valid_block(V, def->block)) {
    *why = "whose defining op is not in any block";
    return IR_NONE;
  }
  return def->block;
}

static operand_status check_operand(verifier *V, ir_blockid b, ir_opid o, int32_t i) {
  const ir_op *op = ir_o(V->g, o);
  ir_val v = op->in[i];
  if (!valid_val(V, v)) {
    report(V, op->loc, "%s: operand %d refers to no value", op_name(V, o), i);
    return OPERAND_UNUSABLE;
  }
  if (!type_readable(ir_vtype(V->g, v))) {
    /* Reported where it is defined if the walk got there. */
    if (V->defined_in[v] == IR_NONE)
      report(V, op->loc, "%s uses %s, which has a malformed type", op_name(V, o), val_desc(V, v));
    return OPERAND_UNUSABLE;
  }
  const char *why = NULL;
  ir_blockid home = home_block(V, v, &why);
  if (home == IR_NONE) {
    report(V, op->loc, "%s uses %s, %s", op_name(V, o), val_desc(V, v), why);
    return OPERAND_MISPLACED;
  }
  if (home == b) {
    if (V->defined_in[v] == b) return OPERAND_OK;
    report(V, op->loc, "%s uses %s before its definition", op_name(V, o), val_desc(V, v));
    return OPERAND_MISPLACED;
  }
  ir_opid parent = ir_b(V->g, b)->parent;
  if (b != V->g->body && valid_op(V, parent))
    report(V, op->loc, "%s body uses %s defined outside its region", op_name(V, parent),
           val_desc(V, v));
  else
    report(V, op->loc, "%s uses %s, which is defined inside a region", op_name(V, o),
           val_desc(V, v));
  return OPERAND_MISPLACED;
}

/* ---- regions and results ------------------------------------------------ */

static bool block_ends_with_yield(const verifier *V, ir_blockid b) {
  ir_opid last = ir_b(V->g, b)->last;
  return valid_op(V, last) && ir_o(V->g, last)->kind == IR_OP_YIELD && !ir_o(V->g, last)->erased;
}

static void enqueue_block(verifier *V, ir_blockid b) {
  if (V->q_len == V->q_cap) ir_grow((void **)&V->queue, &V->q_cap, V->q_len + 1, sizeof(ir_blockid));
  V->queue[V->q_len++] = b;
  V->block_seen[b] = true;
}

/* Queues the op's regions; false if one is unusable for inference. */
static bool check_regions(verifier *V, ir_opid o) {
  const ir_op *op = ir_o(V->g, o);
  bool usable = true;
  for (int32_t r = 0; r < op->n_regions; r++) {
    ir_blockid b = op->regions[r];
    if (!valid_block(V, b) || ir_b(V->g, b)->parent != o || V->block_seen[b]) {
      report(V, op->loc, "%s: region %d is not a block owned by this op", op_name(V, o), r);
      usable = false;
      continue;
    }
    enqueue_block(V, b);
    usable = usable && block_ends_with_yield(V, b);
  }
  return usable;
}

/* Results are registered to this op and well typed; marks them defined. */
static bool check_results(verifier *V, ir_blockid b, ir_opid o) {
  const ir_op *op = ir_o(V->g, o);
  bool usable = true;
  for (int32_t i = 0; i < op->n_out; i++) {
    ir_val v = op->out[i];
    if (!valid_val(V, v) || ir_v(V->g, v)->def != o || ir_v(V->g, v)->index != i) {
      report(V, op->loc, "%s: result %d is not a value defined by this op", op_name(V, o), i);
      usable = false;
      continue;
    }
    if (V->defined_in[v] != IR_NONE) {
      report(V, op->loc, "%s: %s is defined twice", op_name(V, o), val_desc(V, v));
      usable = false;
    }
    if (!check_value_type(V, v, op->loc)) usable = false;
    V->defined_in[v] = b;
  }
  return usable;
}

/* Declared result types against ir_infer_types's. */
static void check_inferred_types(verifier *V, ir_opid o) {
  const ir_op *op = ir_o(V->g, o);
  int32_t need = op->n_out > 0 ? op->n_out : 1;
  if (need > V->types_cap) ir_grow((void **)&V->types, &V->types_cap, need, sizeof(ir_type));
  int32_t n = 0;
  if (!ir_infer_types(V->g, o, V->types, V->types_cap, &n, V->d)) {
    V->ok = false;
    return;
  }
  op = ir_o(V->g, o);
  if (n != op->n_out) {
    report(V, op->loc, "%s: has %d result%s, expected %d", op_name(V, o), op->n_out,
           op->n_out == 1 ? "" : "s", n);
    return;
  }
  for (int32_t i = 0; i < n; i++) {
    ir_type have = ir_vtype(V->g, op->out[i]);
    if (ir_type_equal(have, V->types[i])) continue;
    ir_buf *hs = next_text(V), *is = next_text(V);
    ir_print_type(V->g, have, hs);
    ir_print_type(V->g, V->types[i], is);
    report(V, op->loc, "%s: declared type %s but inferred %s", val_desc(V, op->out[i]), hs->s,
           is->s);
  }
}

/* ---- init ------------------------------------------------------------------ */

/* One init, at the top level, whose operands are graph parameters. */
static void check_init_placement(verifier *V, ir_blockid b, ir_opid o) {
  const ir_op *op = ir_o(V->g, o);
  if (b != V->g->body) {
    report(V, op->loc, "init must be at the top level of the graph, not in %s", block_desc(V, b));
    return;
  }
  for (int32_t i = 0; i < op->n_in; i++) {
    ir_val v = op->in[i];
    if (!valid_val(V, v)) continue; /* reported by check_operand */
    const ir_value *val = ir_v(V->g, v);
    if (val->def != IR_NONE || val->block != V->g->body || !val->is_param)
      report(V, op->loc, "init operand %d is %s, not a graph parameter", i, val_desc(V, v));
  }
  if (V->init == IR_NONE) {
    V->init = o;
    return;
  }
  report(V, op->loc, "a graph has at most one init op");
  ir_note_at(V->d, ir_o(V->g, V->init)->loc, "the first init op is here");
}

/* ---- ops and blocks -------------------------------------------------------- */

static void check_op(verifier *V, ir_blockid b, ir_opid o, bool is_last) {
  const ir_op *op = ir_o(V->g, o);
  if (op->erased) {
    report(V, op->loc, "an erased op is still linked into %s", block_desc(V, b));
    return;
  }
  if ((int)op->kind < 0 || op->kind >= IR_OP_COUNT) {
    report(V, op->loc, "unknown op kind %d", (int)op->kind);
    return;
  }
  if (op->block != b)
    report(V, op->loc, "%s: linked into %s but records another block", op_name(V, o),
           block_desc(V, b));
  if (op->kind == IR_OP_YIELD && !is_last)
    report(V, op->loc, "yield must be the last op of %s", block_desc(V, b));
  if (op->kind == IR_OP_INIT) check_init_placement(V, b, o);
  bool can_infer = true;
  for (int32_t i = 0; i < op->n_in; i++)
    if (check_operand(V, b, o, i) == OPERAND_UNUSABLE) can_infer = false;
  if (!check_regions(V, o)) can_infer = false;
  if (!check_results(V, b, o)) can_infer = false;
  if (can_infer) check_inferred_types(V, o);
}

static void check_block_args(verifier *V, ir_blockid b) {
  const ir_block *blk = ir_b(V->g, b);
  for (int32_t i = 0; i < blk->n_args; i++) {
    ir_val v = blk->args[i];
    if (!valid_val(V, v) || ir_v(V->g, v)->block != b || ir_v(V->g, v)->def != IR_NONE ||
        ir_v(V->g, v)->index != i) {
      report(V, block_loc(V, b), "argument %d of %s is not registered as its argument", i,
             block_desc(V, b));
      continue;
    }
    check_value_type(V, v, block_loc(V, b));
    V->defined_in[v] = b;
  }
}

static void check_terminator(verifier *V, ir_blockid b) {
  if (!block_ends_with_yield(V, b)) {
    report(V, block_loc(V, b), "%s does not end with yield", block_desc(V, b));
    return;
  }
  const ir_op *y = ir_o(V->g, ir_b(V->g, b)->last);
  if (b == V->g->body && y->n_in != V->g->n_outputs)
    report(V, y->loc, "the graph yields %d value%s but declares %d output%s", y->n_in,
           y->n_in == 1 ? "" : "s", V->g->n_outputs, V->g->n_outputs == 1 ? "" : "s");
}

static void check_block(verifier *V, ir_blockid b) {
  check_block_args(V, b);
  const ir_block *blk = ir_b(V->g, b);
  for (ir_opid o = blk->first; o != IR_NONE;) {
    if (!valid_op(V, o) || V->op_seen[o]) {
      report(V, block_loc(V, b), "the op list of %s is broken", block_desc(V, b));
      return;
    }
    V->op_seen[o] = true;
    ir_opid next = ir_o(V->g, o)->next;
    check_op(V, b, o, next == IR_NONE);
    o = next;
  }
  check_terminator(V, b);
}

/* ---- concurrent scan groups ------------------------------------------------ */

/* A run of adjacent scans of one group: where it stands, for sorting. */
typedef struct group_run {
  int64_t id;
  int32_t run; /* runs are numbered in walk order */
  ir_opid first;
} group_run;

static int compare_runs(const void *a, const void *b) {
  const group_run *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->run < y->run ? -1 : x->run > y->run;
}

/* Members of the run that op continues must not define op's operands. */
static void check_group_reads(verifier *V, ir_blockid b, ir_opid o, int64_t id) {
  const ir_op *op = ir_o(V->g, o);
  for (int32_t i = 0; i < op->n_in; i++) {
    ir_opid def = ir_v(V->g, op->in[i])->def;
    if (def != IR_NONE && ir_o(V->g, def)->block == b && ir_concurrent_group(V->g, def) == id)
      report(V, op->loc, "scan of concurrent group %lld reads %s, a result of another scan of the group",
             (long long)id, val_desc(V, op->in[i]));
  }
}

/* Collects the runs of every block; a group found in two runs is split. */
static void check_concurrent_groups(verifier *V) {
  group_run *runs = NULL;
  int32_t n = 0, cap = 0;
  for (int32_t q = 0; q < V->q_len; q++) {
    ir_blockid b = V->queue[q];
    int64_t prev = 0;
    for (ir_opid o = ir_b(V->g, b)->first; o != IR_NONE; o = ir_o(V->g, o)->next) {
      int64_t id = ir_concurrent_group(V->g, o);
      if (id < 0) report(V, ir_o(V->g, o)->loc, "scan: concurrent = %lld, expected 0 (none) or a group id > 0", (long long)id);
      if (id > 0 && id == prev) check_group_reads(V, b, o, id);
      if (id > 0 && id != prev) {
        ir_grow((void **)&runs, &cap, n + 1, sizeof(group_run));
        runs[n] = (group_run){id, n, o};
        n++;
      }
      prev = id;
    }
  }
  if (n > 1) qsort(runs, (size_t)n, sizeof(group_run), compare_runs);
  for (int32_t i = 1; i < n; i++) {
    if (runs[i].id != runs[i - 1].id || (i >= 2 && runs[i - 2].id == runs[i].id)) continue;
    report(V, ir_o(V->g, runs[i].first)->loc,
           "the scans of concurrent group %lld are not adjacent ops of one block", (long long)runs[i].id);
    ir_note_at(V->d, ir_o(V->g, runs[i - 1].first)->loc, "the group starts here");
  }
  free(runs);
}

/* ---- graph outputs -------------------------------------------------------- */

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_output_names(verifier *V) {
  int32_t n = V->g->n_outputs;
  if (n == 0) return;
  if (!V->g->output_names) {
    report(V, (ir_loc){0}, "the graph's %d outputs have no names", n);
    return;
  }
  const char **sorted = ir_xmalloc(sizeof(char *) * (size_t)n);
  int32_t n_named = 0;
  for (int32_t i = 0; i < n; i++) {
    if (V->g->output_names[i])
      sorted[n_named++] = V->g->output_names[i];
    else
      report(V, (ir_loc){0}, "output %d has no name", i);
  }
  /* Sorting makes duplicates adjacent: n log n on untrusted input. */
  qsort(sorted, (size_t)n_named, sizeof(char *), compare_names);
  for (int32_t i = 1; i < n_named; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0 && (i < 2 || strcmp(sorted[i - 2], sorted[i]) != 0))
      report(V, (ir_loc){0}, "output name '%s' is used more than once", sorted[i]);
  free(sorted);
}

bool ir_verify(ir_graph *g, ir_diag *d) {
  verifier V = {.g = g, .d = d, .ok = true, .init = IR_NONE};
  if (g->body < 0 || g->body >= g->n_blocks) {
    ir_error_at(d, (ir_loc){0}, "graph '%s' has no body block", g->name ? g->name : "?");
    return false;
  }
  V.defined_in = ir_xmalloc(sizeof(ir_blockid) * ((size_t)g->n_vals + 1));
  for (int32_t v = 0; v < g->n_vals; v++) V.defined_in[v] = IR_NONE;
  V.op_seen = ir_xcalloc((size_t)g->n_ops + 1, sizeof(bool));
  V.block_seen = ir_xcalloc((size_t)g->n_blocks + 1, sizeof(bool));
  enqueue_block(&V, g->body);
  while (V.q_head < V.q_len) check_block(&V, V.queue[V.q_head++]);
  if (V.ok) check_concurrent_groups(&V);
  check_output_names(&V);
  free(V.defined_in);
  free(V.op_seen);
  free(V.block_seen);
  free(V.queue);
  free(V.types);
  for (int i = 0; i < 6; i++) ir_buf_free(&V.text[i]);
  return V.ok;
}
