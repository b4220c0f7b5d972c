/* Unit tests for the pass manager (passes/pass.c) and the canonicalize, cse,
 * dce and const-hoist passes. Graphs are written in the text form; every pass test runs
 * with the verifier after each pass and checks with the reference
 * interpreter that the graph computes bit-identical outputs before and after
 * on fixed inputs (which include -0.0, +0.0 and infinities). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_builder.h"
#include "ir/interp.h"
#include "ir/ir.h"
#include "passes/pass.h"

/* ---- helpers ---------------------------------------------------------------- */

/* A pass context whose diagnostics go to `msgs` and dumps to `dump`. */
typedef struct harness {
  ir_diag diag;
  ir_buf msgs;
  pass_ctx ctx;
  char *dump_text;
  size_t dump_len;
} harness;

static void harness_init(harness *h) {
  memset(h, 0, sizeof *h);
  ir_diag_init(&h->diag);
  h->diag.capture = &h->msgs;
  pass_ctx_init(&h->ctx, &h->diag);
  h->ctx.verify_each = true;
  h->ctx.dump = open_memstream(&h->dump_text, &h->dump_len);
  assert_non_null(h->ctx.dump);
}

static const char *harness_dump(harness *h) {
  fflush(h->ctx.dump);
  return h->dump_text ? h->dump_text : "";
}

static const char *harness_msgs(const harness *h) { return h->msgs.s ? h->msgs.s : ""; }

static void harness_free(harness *h) {
  fclose(h->ctx.dump);
  free(h->dump_text);
  ir_buf_free(&h->msgs);
}

static int count_occurrences(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static ir_opid first_op(ir_graph *g, ir_opkind kind) {
  for (ir_opid op = 0; op < g->n_ops; op++)
    if (!ir_o(g, op)->erased && ir_o(g, op)->block != IR_NONE && ir_o(g, op)->kind == kind) return op;
  return IR_NONE;
}

/* The value the graph yields as output i. */
static ir_val graph_output(const ir_graph *g, int32_t i) {
  return ir_o(g, ir_block_terminator(g, g->body))->in[i];
}

/* A fixed input sequence: small integers and halves, with signed zeros and
 * infinities mixed in for float tensors. */
static double input_value(ir_dtype dt, int64_t k) {
  static const double specials[] = {-0.0, 0.0, INFINITY, -INFINITY};
  if (ir_dtype_is_float(dt) && k % 7 == 3) return specials[(k / 7) % 4];
  if (dt == IR_BOOL) return (double)(k % 3 == 0);
  double x = (double)((k * 37 + 11) % 17) - 8.0;
  return ir_dtype_is_float(dt) ? x / 2 : x;
}

/* Runs g on the fixed inputs and returns its outputs as bytes (shapes and
 * data), so two runs compare bitwise. Shapes must be static. */
static ir_buf run_interpreter(ir_graph *g) {
  const ir_block *body = ir_b(g, g->body);
  ir_tensor *args = calloc((size_t)body->n_args + 1, sizeof *args);
  ir_tensor *outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  ir_buf err = {0}, bytes = {0};
  for (int32_t a = 0; a < body->n_args; a++) {
    ir_type t = ir_vtype(g, body->args[a]);
    int64_t shape[8];
    assert_true(t.rank <= 8);
    for (int32_t i = 0; i < t.rank; i++) assert_true(ir_dim_is_const(g->dims, t.dims[i], &shape[i]));
    assert_true(ir_tensor_alloc(&args[a], t.dtype, t.rank, shape, 1 << 20, &err));
    for (int64_t k = 0; k < args[a].numel; k++)
      args[a].data[k] = ir_round_to_dtype(t.dtype, input_value(t.dtype, k + 5 * a));
  }
  if (!ir_interp_run(g, args, body->n_args, outs, NULL, &err)) fail_msg("interpreter: %s", err.s);
  for (int32_t o = 0; o < g->n_outputs; o++) {
    ir_buf_printf(&bytes, "out %d rank %d:", o, outs[o].rank);
    for (int32_t i = 0; i < outs[o].rank; i++) ir_buf_printf(&bytes, " %lld", (long long)outs[o].shape[i]);
    ir_buf_putc(&bytes, '\n');
    ir_tensor_to_bytes(&outs[o], &bytes);
    ir_tensor_free(&outs[o]);
  }
  for (int32_t a = 0; a < body->n_args; a++) ir_tensor_free(&args[a]);
  free(args);
  free(outs);
  ir_buf_free(&err);
  return bytes;
}

static void assert_same_bytes(const ir_buf *a, const ir_buf *b) {
  assert_int_equal(a->len, b->len);
  assert_memory_equal(a->s, b->s, a->len);
}

/* Parses text, runs pipeline (verifying after each pass), checks that the
 * outputs did not change and returns the transformed graph. */
static ir_graph *optimize(const char *text, const char *pipeline) {
  ir_graph *g = tb_parse(text);
  ir_buf before = run_interpreter(g);
  harness h;
  harness_init(&h);
  if (!pass_run_pipeline(g, pipeline, &h.ctx)) fail_msg("pipeline failed:\n%s", harness_msgs(&h));
  harness_free(&h);
  ir_buf after = run_interpreter(g);
  assert_same_bytes(&before, &after);
  ir_buf_free(&before);
  ir_buf_free(&after);
  return g;
}

/* ---- pass manager ------------------------------------------------------------- */

static const char *dead_add_text =
    "graph @g(%x: f32[4]) -> (y: f32[4]) {\n"
    "  %dead: f32[4] = add %x, %x\n"
    "  %y: f32[4] = mul %x, %x\n"
    "  yield %y\n"
    "}\n";

static void test_registry_and_levels(void **state) {
  (void)state;
  int n = 0;
  for (const pass_info *const *p = pass_all(); *p; p++, n++) {
    assert_ptr_equal(pass_lookup((*p)->name, strlen((*p)->name)), *p);
    assert_non_null((*p)->summary);
    assert_non_null((*p)->run);
  }
  assert_true(n >= 3);
  assert_string_equal(pass_lookup("cse", 3)->name, "cse");
  assert_null(pass_lookup("cs", 2));
  assert_null(pass_lookup("csex", 4));
  assert_string_equal(pass_lookup("dce,cse", 3)->name, "dce"); /* length-delimited */
  assert_string_equal(pass_pipeline_for_level(0), "decompose");
  assert_string_equal(pass_pipeline_for_level(1), "decompose,canonicalize,dce,const-hoist");
  assert_string_equal(pass_pipeline_for_level(2), "decompose,canonicalize,cse,scan-hoist,pack-weights,cse,dce,const-hoist,bidir,fuse,memplan");
  assert_string_equal(pass_pipeline_for_level(3), "decompose,canonicalize,cse,fold-biases,scan-hoist,pack-weights,cse,dce,const-hoist,bidir,fuse,memplan");
}

static void test_pipeline_parsing(void **state) {
  (void)state;
  harness h;
  harness_init(&h);
  ir_graph *g = tb_parse(dead_add_text);
  char *orig = tb_print(g);

  assert_true(pass_run_pipeline(g, "", &h.ctx));
  assert_true(pass_run_pipeline(g, " \t ", &h.ctx));
  char *same = tb_print(g);
  assert_string_equal(same, orig);
  free(same);

  /* Nothing runs unless the whole list is valid: dce would remove %dead. */
  const char *bad[] = {"dce,bogus", "dce,,cse", "dce,", ",dce", " , "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_false(pass_run_pipeline(g, bad[i], &h.ctx));
    char *now = tb_print(g);
    assert_string_equal(now, orig);
    free(now);
  }
  assert_non_null(strstr(harness_msgs(&h),
                          "seqc: error: unknown pass 'bogus' in pipeline; known passes: "
                          "canonicalize, cse, dce"));
  assert_int_equal(count_occurrences(harness_msgs(&h), "empty pass name"), 4);
  assert_int_equal(h.diag.n_errors, 5);

  assert_true(pass_run_pipeline(g, "  dce , cse\t", &h.ctx));
  assert_int_equal(tb_count_ops(g, IR_OP_ADD), 0);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 1);
  free(orig);
  ir_graph_free(g);
  harness_free(&h);
}

static void test_print_after(void **state) {
  (void)state;
  harness h;
  harness_init(&h);
  ir_graph *g = tb_parse(dead_add_text);
  h.ctx.print_after = "dce";
  assert_true(pass_run_pipeline(g, "canonicalize,dce,cse", &h.ctx));
  const char *dump = harness_dump(&h);
  assert_int_equal(count_occurrences(dump, "// -----// IR after "), 1);
  const char *header = strstr(dump, "// -----// IR after dce //----- //\ngraph @g(");
  assert_ptr_equal(header, dump);
  assert_null(strstr(dump, "add"));
  ir_graph_free(g);
  harness_free(&h);

  harness_init(&h);
  g = tb_parse(dead_add_text);
  h.ctx.print_after_all = true;
  assert_true(pass_run_pipeline(g, "cse,dce", &h.ctx));
  dump = harness_dump(&h);
  const char *first = strstr(dump, "// -----// IR after cse //----- //\n");
  const char *second = strstr(dump, "// -----// IR after dce //----- //\n");
  assert_non_null(first);
  assert_true(second > first);
  assert_non_null(strstr(first, "add")); /* still there after cse */
  assert_null(strstr(second, "add"));
  ir_graph_free(g);
  harness_free(&h);

  harness_init(&h);
  g = tb_parse(dead_add_text);
  h.ctx.print_after = "dce,nope";
  assert_false(pass_run_pipeline(g, "dce", &h.ctx));
  assert_non_null(strstr(harness_msgs(&h), "unknown pass 'nope' in print-after list"));
  assert_int_equal(tb_count_ops(g, IR_OP_ADD), 1);
  ir_graph_free(g);
  harness_free(&h);
}

static void test_time_passes(void **state) {
  (void)state;
  harness h;
  harness_init(&h);
  ir_graph *g = tb_parse(dead_add_text);
  h.ctx.time_passes = true;
  assert_true(pass_run_pipeline(g, "cse,dce,cse", &h.ctx));
  const char *dump = harness_dump(&h);
  assert_int_equal(count_occurrences(dump, "  cse\n"), 2);
  assert_int_equal(count_occurrences(dump, "  dce\n"), 1);
  assert_int_equal(count_occurrences(dump, "  (verifier)\n"), 1);
  const char *total = strstr(dump, "  total\n");
  assert_non_null(total);
  assert_true(total > strstr(dump, "  dce\n"));
  ir_graph_free(g);
  harness_free(&h);
}

/* A graph that does not verify (the add's declared type is wrong) stays
 * wrong after a pass that does not touch it: the verifier reports it, naming
 * the pass, and the pipeline stops there. */
static void test_verify_each_names_the_pass(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("broken");
  int64_t four = 4, five = 5;
  ir_val x = ir_graph_add_input(g, ir_type_static(g, IR_F32, 1, &four), "x", false);
  ir_type wrong = ir_type_static(g, IR_F32, 1, &five);
  ir_val in[2] = {x, x};
  ir_opid add = ir_op_new(g, IR_OP_ADD, 2, in, 1, &wrong, (ir_loc){NULL, 0, 0});
  ir_op_append(g, g->body, add);
  ir_val sum = ir_o(g, add)->out[0];
  ir_opid y = ir_op_new(g, IR_OP_YIELD, 1, &sum, 0, NULL, (ir_loc){NULL, 0, 0});
  ir_op_append(g, g->body, y);
  static const char *names[] = {"y"};
  g->output_names = names;
  g->n_outputs = 1;

  harness h;
  harness_init(&h);
  h.ctx.print_after_all = true;
  assert_false(pass_run_pipeline(g, "dce,cse", &h.ctx));
  assert_non_null(strstr(harness_msgs(&h), "seqc: error: after pass 'dce': "));
  assert_null(strstr(harness_msgs(&h), "'cse'"));
  assert_string_equal(harness_dump(&h), "");

  h.ctx.verify_each = false;
  assert_true(pass_run_pipeline(g, "dce", &h.ctx));
  ir_graph_free(g);
  harness_free(&h);
}

/* ---- canonicalize: folding ------------------------------------------------------ */

static void test_fold_constants(void **state) {
  (void)state;
  ir_graph *g = optimize("graph @g() -> (y: f32[3], z: f32[2, 2]) {\n"
                         "  %a: f32[3] = constant {value = [1, 2.5, -3]}\n"
                         "  %b: f32[3] = constant {value = 0.5}\n"
                         "  %s: f32[3] = add %a, %b\n"
                         "  %y: f32[3] = neg %s\n"
                         "  %two: f32[2, 2] = constant {value = 2}\n"
                         "  %z: f32[2, 2] = mul %two, %two\n"
                         "  yield %y, %z\n"
                         "}\n",
                         "canonicalize,dce");
  assert_int_equal(tb_count_ops(g, IR_OP_ADD) + tb_count_ops(g, IR_OP_NEG) + tb_count_ops(g, IR_OP_MUL), 0);
  assert_int_equal(tb_count_ops(g, IR_OP_CONSTANT), 2);
  ir_opid y = ir_v(g, graph_output(g, 0))->def;
  const ir_tensor_data *t = ir_get_attr(g, y, "value")->u.t;
  assert_int_equal(t->n, 3);
  assert_true(t->f[0] == -1.5 && t->f[1] == -3.0 && t->f[2] == 2.5);
  ir_opid z = ir_v(g, graph_output(g, 1))->def;
  t = ir_get_attr(g, z, "value")->u.t;
  assert_int_equal(t->n, 1); /* splat */
  assert_true(t->f[0] == 4.0);
  assert_string_equal(ir_v(g, graph_output(g, 0))->name, "y");
  ir_graph_free(g);
}

static void test_fold_keeps_semantics_and_limits(void **state) {
  (void)state;
  /* Integer division by zero is a run-time error: not folded. f32 rounding
   * follows the interpreter (0.1 + 0.2 in f32). A tensor above the folding
   * limit, an op on a non-constant and a symbolic shape stay. */
  ir_graph *g = tb_parse("graph @g(%x: f32[2], %n: i32[T]) -> (a: i32[], b: f32[], c: f32[300, 300],"
                         " d: f32[2], e: i32[T]) {\n"
                         "  %one: i32[] = constant {value = 1}\n"
                         "  %zero: i32[] = constant {value = 0}\n"
                         "  %a: i32[] = div %one, %zero\n"
                         "  %p: f32[] = constant {value = 0.1}\n"
                         "  %q: f32[] = constant {value = 0.2}\n"
                         "  %b: f32[] = add %p, %q\n"
                         "  %big: f32[300, 300] = constant {value = 1}\n"
                         "  %c: f32[300, 300] = add %big, %big\n"
                         "  %d: f32[2] = add %x, %x\n"
                         "  %e: i32[T] = add %n, %n\n"
                         "  yield %a, %b, %c, %d, %e\n"
                         "}\n");
  harness h;
  harness_init(&h);
  assert_true(pass_run_pipeline(g, "canonicalize,dce", &h.ctx));
  assert_int_equal(tb_count_ops(g, IR_OP_DIV), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_ADD), 3);
  ir_opid b = ir_v(g, graph_output(g, 1))->def;
  assert_int_equal(ir_o(g, b)->kind, IR_OP_CONSTANT);
  assert_true(ir_get_attr(g, b, "value")->u.t->f[0] == (double)(0.1f + 0.2f));
  ir_graph_free(g);
  harness_free(&h);
}

/* ---- canonicalize: identities ---------------------------------------------------- */

/* Graph text with one input %x: f32[4] and output y = EXPR. */
static const char *const exact_identities[] = {
    "%c: f32[4] = constant {value = -0.0}\n  %y: f32[4] = add %x, %c\n",
    "%c: f32[4] = constant {value = [-0.0, -0.0, -0.0, -0.0]}\n  %y: f32[4] = add %c, %x\n",
    "%c: f32[] = constant {value = 0}\n  %y: f32[4] = sub %x, %c\n",
    "%c: f32[4] = constant {value = 1}\n  %y: f32[4] = mul %x, %c\n",
    "%c: f32[4] = constant {value = 1}\n  %y: f32[4] = mul %c, %x\n",
    "%c: f32[] = constant {value = 1}\n  %y: f32[4] = div %x, %c\n",
    "%n: f32[4] = neg %x\n  %y: f32[4] = neg %n\n",
    "%y: f32[4] = cast %x\n",
    "%y: f32[4] = reshape %x\n",
    "%y: f32[4] = broadcast %x\n",
    "%y: f32[4] = transpose %x {perm = [0]}\n",
    "%y: f32[4] = slice %x {axis = 0, start = 0, end = 4}\n",
    "%y: f32[4] = concat %x {axis = 0}\n",
    "%r: f32[4] = reverse %x {axis = 0}\n  %y: f32[4] = reverse %r {axis = 0}\n",
    "%r: f32[2, 2] = reshape %x\n  %y: f32[4] = reshape %r\n",
};

static void test_identities_forward_the_operand(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof exact_identities / sizeof exact_identities[0]; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "graph @g(%%x: f32[4]) -> (y: f32[4]) {\n  %s  yield %%y\n}\n", exact_identities[i]);
    ir_graph *g = optimize(text, "canonicalize,dce");
    if (graph_output(g, 0) != ir_b(g, g->body)->args[0])
      fail_msg("identity %zu not applied:\n%s", i, exact_identities[i]);
    assert_int_equal(tb_count_ops(g, IR_OP_YIELD), 1);
    ir_graph_free(g);
  }
}

/* Rewrites that look like identities but are not exact, or would change
 * the result type; each must leave its op in place. */
static const char *const inexact_identities[] = {
    /* -0.0 + +0.0 is +0.0 */
    "%c: f32[4] = constant {value = 0}\n  %y: f32[4] = add %x, %c\n",
    "%c: f32[4] = constant {value = [-0.0, 0, -0.0, -0.0]}\n  %y: f32[4] = add %x, %c\n",
    /* x - (-0.0) is x + +0.0 */
    "%c: f32[4] = constant {value = -0.0}\n  %y: f32[4] = sub %x, %c\n",
    "%c: f32[4] = constant {value = 0}\n  %y: f32[4] = sub %c, %x\n",
    "%c: f32[4] = constant {value = 1}\n  %y: f32[4] = div %c, %x\n",
    "%c: f32[4] = constant {value = -1}\n  %y: f32[4] = mul %x, %c\n",
};

static void test_inexact_identities_stay(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof inexact_identities / sizeof inexact_identities[0]; i++) {
    char text[512];
    snprintf(text, sizeof text, "graph @g(%%x: f32[4]) -> (y: f32[4]) {\n  %s  yield %%y\n}\n",
             inexact_identities[i]);
    ir_graph *g = optimize(text, "canonicalize,dce");
    if (ir_v(g, graph_output(g, 0))->def == IR_NONE)
      fail_msg("inexact identity %zu applied:\n%s", i, inexact_identities[i]);
    ir_graph_free(g);
  }
  /* The constant broadcasts x up: the result is not x's type. */
  ir_graph *g = optimize("graph @g(%x: f32[4]) -> (y: f32[3, 4]) {\n"
                         "  %c: f32[3, 4] = constant {value = 1}\n"
                         "  %y: f32[3, 4] = mul %x, %c\n"
                         "  yield %y\n"
                         "}\n",
                         "canonicalize");
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 1);
  ir_graph_free(g);
}

static void test_transpose_and_reverse_chains(void **state) {
  (void)state;
  ir_graph *g = optimize("graph @g(%x: f32[2, 3, 4]) -> (y: f32[3, 4, 2], z: f32[2, 3, 4],"
                         " w: f32[2, 3, 4]) {\n"
                         "  %a: f32[3, 2, 4] = transpose %x {perm = [1, 0, 2]}\n"
                         "  %y: f32[3, 4, 2] = transpose %a {perm = [0, 2, 1]}\n"
                         "  %b: f32[4, 3, 2] = transpose %x {perm = [2, 1, 0]}\n"
                         "  %z: f32[2, 3, 4] = transpose %b {perm = [2, 1, 0]}\n"
                         "  %r: f32[2, 3, 4] = reverse %x {axis = 0}\n"
                         "  %w: f32[2, 3, 4] = reverse %r {axis = 2}\n"
                         "  yield %y, %z, %w\n"
                         "}\n",
                         "canonicalize,dce");
  ir_val x = ir_b(g, g->body)->args[0];
  ir_opid y = ir_v(g, graph_output(g, 0))->def;
  assert_int_equal(ir_o(g, y)->kind, IR_OP_TRANSPOSE);
  assert_int_equal(ir_o(g, y)->in[0], x);
  const ir_attr *perm = ir_get_attr(g, y, "perm");
  assert_int_equal(perm->u.ints.n, 3);
  assert_true(perm->u.ints.v[0] == 1 && perm->u.ints.v[1] == 2 && perm->u.ints.v[2] == 0);
  assert_int_equal(graph_output(g, 1), x);
  assert_int_equal(tb_count_ops(g, IR_OP_TRANSPOSE), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_REVERSE), 2); /* different axes */
  ir_graph_free(g);
}

/* ---- cse ------------------------------------------------------------------------- */

static void test_cse_merges_equal_ops(void **state) {
  (void)state;
  ir_graph *g = optimize("graph @g(%x: f32[4], %w: f32[4]) -> (a: f32[4], b: f32[4], c: f32[4],"
                         " d: f32[4], e: f32[4], f: f32[4]) {\n"
                         "  %a: f32[4] = add %x, %w\n"
                         "  %b: f32[4] = add %w, %x\n"  /* commutative */
                         "  %s1: f32[4] = sub %x, %w\n"
                         "  %s2: f32[4] = sub %w, %x\n" /* not commutative */
                         "  %c: f32[4] = add %s1, %s2\n"
                         "  %k1: f32[4] = constant {value = 2}\n"
                         "  %k2: f32[4] = constant {value = 2}\n"
                         "  %z1: f32[4] = constant {value = 0}\n"
                         "  %z2: f32[4] = constant {value = -0.0}\n" /* bitwise different */
                         "  %d: f32[4] = mul %k1, %z1\n"
                         "  %e: f32[4] = mul %k2, %z2\n"
                         "  %f: f32[4] = mul %k2, %z1\n"
                         "  yield %a, %b, %c, %d, %e, %f\n"
                         "}\n",
                         "cse");
  assert_int_equal(graph_output(g, 0), graph_output(g, 1));
  assert_int_equal(tb_count_ops(g, IR_OP_SUB), 2);
  assert_int_equal(tb_count_ops(g, IR_OP_CONSTANT), 3);
  assert_int_not_equal(graph_output(g, 3), graph_output(g, 4));
  assert_int_equal(graph_output(g, 3), graph_output(g, 5));
  assert_int_equal(tb_count_ops(g, IR_OP_ADD), 2);
  ir_graph_free(g);
}

static void test_cse_compares_attributes(void **state) {
  (void)state;
  /* Equal attributes merge, an absent optional attribute equals its
   * default; different attributes or types never merge. */
  ir_graph *g = optimize("graph @g(%x: f32[2, 3], %w: f32[3, 3]) -> (a: f32[2, 3], b: f32[2, 3],"
                         " c: f32[2, 3], d: f32[2, 3], e: f32[2, 3], f: f32[2, 3]) {\n"
                         "  %a: f32[2, 3] = softmax %x {axis = 1}\n"
                         "  %b: f32[2, 3] = softmax %x {axis = 0}\n"
                         "  %c: f32[2, 3] = matmul %x, %w\n"
                         "  %d: f32[2, 3] = matmul %x, %w {transpose_b = false}\n"
                         "  %e: f32[2, 3] = matmul %x, %w {transpose_b = true}\n"
                         "  %f: f32[2, 3] = softmax %x {axis = 1}\n"
                         "  yield %a, %b, %c, %d, %e, %f\n"
                         "}\n",
                         "cse");
  assert_int_not_equal(graph_output(g, 0), graph_output(g, 1));
  assert_int_equal(graph_output(g, 0), graph_output(g, 5));
  assert_int_equal(graph_output(g, 2), graph_output(g, 3));
  assert_int_not_equal(graph_output(g, 2), graph_output(g, 4));
  assert_int_equal(tb_count_ops(g, IR_OP_MATMUL), 2);
  assert_int_equal(tb_count_ops(g, IR_OP_SOFTMAX), 2);
  ir_graph_free(g);
}

static const char *two_scans_text =
    "graph @g(%x: f32[5, 2], %h0: f32[2]) -> (h1: f32[2], h2: f32[2], h3: f32[2]) {\n"
    "  %h1: f32[2] = scan %h0, %x {length = 5, carries = 1, xs = 1} {\n"
    "  ^(%t: i64[], %h: f32[2], %xt: f32[2]):\n"
    "    %a: f32[2] = mul %h, %xt\n"
    "    %b: f32[2] = mul %xt, %h\n"
    "    %s: f32[2] = add %a, %b\n"
    "    yield %s\n"
    "  }\n"
    "  %h2: f32[2] = scan %h0, %x {length = 5, carries = 1, xs = 1} {\n"
    "  ^(%t2: i64[], %g2: f32[2], %x2: f32[2]):\n"
    "    %a2: f32[2] = mul %g2, %x2\n"
    "    %s2: f32[2] = sub %a2, %x2\n"
    "    yield %s2\n"
    "  }\n"
    "  %m: f32[2] = mul %h0, %h0\n"
    "  %h3: f32[2] = scan %h0, %x {length = 5, carries = 1, xs = 1} {\n"
    "  ^(%t3: i64[], %g3: f32[2], %x3: f32[2]):\n"
    "    %a3: f32[2] = mul %g3, %x3\n"
    "    %s3: f32[2] = sub %a3, %x3\n"
    "    yield %s3\n"
    "  }\n"
    "  yield %h1, %h2, %h3\n"
    "}\n";

static void test_cse_in_regions(void **state) {
  (void)state;
  /* Inside the first body the two muls merge; the scans are never merged,
   * not even the two with identical bodies; nothing crosses a region. */
  ir_graph *g = optimize(two_scans_text, "cse");
  assert_int_equal(tb_count_ops(g, IR_OP_SCAN), 3);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 4);
  ir_opid scan = first_op(g, IR_OP_SCAN);
  ir_opid add = first_op(g, IR_OP_ADD);
  assert_int_equal(ir_o(g, add)->in[0], ir_o(g, add)->in[1]);
  assert_int_equal(ir_o(g, add)->block, ir_o(g, scan)->regions[0]);
  ir_graph_free(g);
}

/* ---- dce ------------------------------------------------------------------------- */

static void test_dce_removes_unused_pure_ops(void **state) {
  (void)state;
  ir_graph *g = optimize("graph @g(%x: f32[4]) -> (y: f32[4], x2: f32[4]) {\n"
                         "  %a: f32[4] = exp %x\n"
                         "  %b: f32[4] = add %a, %a\n"   /* dead, and makes %a dead */
                         "  %c: f32[4] = tanh %x\n"
                         "  %y: f32[4] = mul %c, %x\n"
                         "  yield %y, %x\n"
                         "}\n",
                         "dce");
  assert_int_equal(tb_count_ops(g, IR_OP_EXP), 0);
  assert_int_equal(tb_count_ops(g, IR_OP_ADD), 0);
  assert_int_equal(tb_count_ops(g, IR_OP_TANH), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 1);
  ir_graph_free(g);
}

/* Carries: %h is returned; %c is not returned but feeds %h; %d is neither
 * returned nor read by anything live; output %ys1 is read, %ys2 is not.
 * Invariant %u is read only by the dead carry's update; slice %z only by the
 * unread output. */
static const char *carries_text =
    "graph @g(%x: f32[5, 2], %z: f32[5, 2], %h0: f32[2], %u: f32[2])"
    " -> (h: f32[2], ys: f32[5, 2]) {\n"
    "  %h, %c, %d, %ys1, %ys2: f32[2], f32[2], f32[2], f32[5, 2], f32[5, 2] = "
    "scan %h0, %h0, %h0, %x, %z, %u {length = 5, carries = 3, xs = 2} {\n"
    "  ^(%t: i64[], %hc: f32[2], %cc: f32[2], %dc: f32[2], %xt: f32[2], %zt: f32[2], %ui: f32[2]):\n"
    "    %cn: f32[2] = add %cc, %xt\n"
    "    %hn: f32[2] = mul %hc, %cn\n"
    "    %dn: f32[2] = mul %dc, %ui\n"
    "    %o2: f32[2] = exp %zt\n"
    "    %o1: f32[2] = tanh %hn\n"
    "    yield %hn, %cn, %dn, %o1, %o2\n"
    "  }\n"
    "  yield %h, %ys1\n"
    "}\n";

static void test_dce_trims_scans(void **state) {
  (void)state;
  ir_graph *g = optimize(carries_text, "dce");
  ir_opid scan = first_op(g, IR_OP_SCAN);
  assert_int_not_equal(scan, IR_NONE);
  assert_int_equal(ir_get_int(g, scan, "carries"), 2);
  assert_int_equal(ir_get_int(g, scan, "xs"), 1);
  assert_int_equal(ir_o(g, scan)->n_in, 3); /* %h0, %h0, %x */
  assert_int_equal(ir_o(g, scan)->n_out, 3); /* %h, %c, %ys1 */
  ir_block *body = ir_b(g, ir_o(g, scan)->regions[0]);
  assert_int_equal(body->n_args, 4);
  assert_int_equal(tb_count_ops(g, IR_OP_EXP), 0);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 1);
  assert_int_equal(graph_output(g, 0), ir_o(g, scan)->out[0]);
  assert_int_equal(graph_output(g, 1), ir_o(g, scan)->out[2]);
  assert_string_equal(ir_v(g, ir_o(g, scan)->out[2])->name, "ys1");
  ir_graph_free(g);
}

static void test_dce_keeps_live_scans_and_removes_dead_ones(void **state) {
  (void)state;
  /* Everything in the first scan is live, so it stays as it is; the second
   * scan's results are all unread. */
  ir_graph *g = optimize("graph @g(%x: f32[5, 2], %h0: f32[2]) -> (h: f32[2]) {\n"
                         "  %h: f32[2] = scan %h0, %x {length = 5, carries = 1, xs = 1} {\n"
                         "  ^(%t: i64[], %hc: f32[2], %xt: f32[2]):\n"
                         "    %hn: f32[2] = add %hc, %xt\n"
                         "    yield %hn\n"
                         "  }\n"
                         "  %dead: f32[2] = scan %h0, %x {length = 5, carries = 1, xs = 1} {\n"
                         "  ^(%u: i64[], %dc: f32[2], %xu: f32[2]):\n"
                         "    %dn: f32[2] = mul %dc, %xu\n"
                         "    yield %dn\n"
                         "  }\n"
                         "  yield %h\n"
                         "}\n",
                         "dce");
  assert_int_equal(tb_count_ops(g, IR_OP_SCAN), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 0);
  ir_opid scan = first_op(g, IR_OP_SCAN);
  assert_int_equal(ir_o(g, scan)->n_in, 2);
  ir_graph_free(g);
}

static void test_dce_drops_all_slices(void **state) {
  (void)state;
  /* The only per-step input feeds a dead carry; `length` keeps the trip
   * count. */
  ir_graph *g = optimize("graph @g(%x: f32[5, 2], %h0: f32[2]) -> (n: f32[2]) {\n"
                         "  %n, %dead: f32[2], f32[2] = scan %h0, %h0, %x"
                         " {length = 5, carries = 2, xs = 1} {\n"
                         "  ^(%t: i64[], %nc: f32[2], %dc: f32[2], %xt: f32[2]):\n"
                         "    %two: f32[2] = add %nc, %nc\n"
                         "    %dn: f32[2] = add %dc, %xt\n"
                         "    yield %two, %dn\n"
                         "  }\n"
                         "  yield %n\n"
                         "}\n",
                         "dce");
  ir_opid scan = first_op(g, IR_OP_SCAN);
  assert_int_equal(ir_get_int(g, scan, "xs"), 0);
  assert_int_equal(ir_get_int(g, scan, "carries"), 1);
  assert_int_equal(ir_o(g, scan)->n_in, 1);
  int64_t len = 0;
  assert_true(ir_dim_is_const(g->dims, ir_get_dim(g, scan, "length"), &len));
  assert_int_equal(len, 5);
  ir_graph_free(g);
}

static void test_dce_nested_scans(void **state) {
  (void)state;
  /* The inner scan's invariant %vi is read only by its dead carry; once the
   * inner scan is trimmed, the outer invariant %v is unread as well. */
  ir_graph *g = optimize(
      "graph @g(%x: f32[3, 2], %h0: f32[2], %v: f32[2]) -> (h: f32[2]) {\n"
      "  %h: f32[2] = scan %h0, %x, %v {length = 3, carries = 1, xs = 1} {\n"
      "  ^(%t: i64[], %hc: f32[2], %xt: f32[2], %vo: f32[2]):\n"
      "    %ih, %id: f32[2], f32[2] = scan %hc, %hc, %xt, %vo {length = 2, carries = 2, xs = 0} {\n"
      "    ^(%s: i64[], %a: f32[2], %b: f32[2], %xi: f32[2], %vi: f32[2]):\n"
      "      %an: f32[2] = add %a, %xi\n"
      "      %bn: f32[2] = mul %b, %vi\n"
      "      yield %an, %bn\n"
      "    }\n"
      "    yield %ih\n"
      "  }\n"
      "  yield %h\n"
      "}\n",
      "dce");
  ir_opid outer = first_op(g, IR_OP_SCAN);
  assert_int_equal(ir_o(g, outer)->n_in, 2);
  ir_opid inner = ir_b(g, ir_o(g, outer)->regions[0])->first;
  assert_int_equal(ir_o(g, inner)->kind, IR_OP_SCAN);
  assert_int_equal(ir_o(g, inner)->n_in, 2);
  assert_int_equal(ir_get_int(g, inner, "carries"), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_MUL), 0);
  ir_graph_free(g);
}

static void test_default_pipeline_on_scan(void **state) {
  (void)state;
  ir_graph *g = optimize(carries_text, pass_pipeline_for_level(2));
  assert_int_equal(tb_count_ops(g, IR_OP_SCAN), 1);
  ir_graph_free(g);
  g = optimize(two_scans_text, pass_pipeline_for_level(3));
  assert_int_equal(tb_count_ops(g, IR_OP_SCAN), 3);
  ir_graph_free(g);
}

/* ---- const-hoist ------------------------------------------------------------ */

static const char *hoist_text =
    "graph @g(%x: f32[2, 4], param %W: f32[3, 4], param %b1: f32[3], param %b2: f32[3])\n"
    "    -> (y: f32[2, 3], c: f32[2, 3]) {\n"
    "  %Wt: f32[4, 3] = transpose %W {perm = [1, 0]}\n"
    "  %m: f32[2, 3] = matmul %x, %Wt\n"
    "  %k: f32[] = constant {value = 2.0}\n"
    "  %b: f32[3] = add %b1, %b2\n"
    "  %bk: f32[3] = mul %b, %k\n"
    "  %y: f32[2, 3] = add %m, %bk\n"
    "  %c: f32[2, 3] = mul %y, %k\n"
    "  yield %y, %c\n"
    "}\n";

static void test_const_hoist_moves_param_work(void **state) {
  (void)state;
  ir_graph *g = optimize(hoist_text, "const-hoist");
  ir_opid init = ir_b(g, g->body)->first;
  assert_int_equal(ir_o(g, init)->kind, IR_OP_INIT);
  assert_int_equal(tb_count_ops(g, IR_OP_INIT), 1);
  /* Wt and bk escape; b stays internal; k is copied in and kept outside. */
  assert_int_equal(ir_o(g, init)->n_out, 2);
  assert_int_equal(ir_o(g, init)->n_in, 3);
  ir_blockid region = ir_o(g, init)->regions[0];
  assert_int_equal(tb_count_ops_in(g, region, IR_OP_TRANSPOSE), 1);
  assert_int_equal(tb_count_ops_in(g, region, IR_OP_ADD), 1);
  assert_int_equal(tb_count_ops_in(g, region, IR_OP_CONSTANT), 1);
  assert_int_equal(tb_count_ops(g, IR_OP_CONSTANT), 2);
  assert_int_equal(tb_count_ops(g, IR_OP_TRANSPOSE), 1);
  /* Idempotent: a second run leaves the text unchanged. */
  char *once = tb_print(g);
  ir_graph_free(g);
  g = optimize(once, "const-hoist,const-hoist");
  char *twice = tb_print(g);
  assert_string_equal(once, twice);
  free(once);
  free(twice);
  ir_graph_free(g);
}

static void test_const_hoist_leaves_other_work(void **state) {
  (void)state;
  static const char *text =
      "graph @g(%x: f32[4], param %W: f32[4]) -> (y: f32[4], z: f32[4]) {\n"
      "  %z: f32[4] = constant {value = 1.0}\n"
      "  %a: f32[4] = add %x, %W\n"
      "  %y, %ys: f32[4], f32[2, 4] = scan %a, %W {length = 2, carries = 1, xs = 0} {\n"
      "  ^(%t: i64[], %c: f32[4], %w: f32[4]):\n"
      "    %n: f32[4] = mul %c, %w\n"
      "    yield %n, %n\n"
      "  }\n"
      "  yield %y, %z\n"
      "}\n";
  ir_graph *g = tb_parse(text);
  char *before = tb_print(g);
  ir_graph_free(g);
  g = optimize(text, "const-hoist");
  char *after = tb_print(g);
  assert_string_equal(before, after);
  assert_int_equal(tb_count_ops(g, IR_OP_INIT), 0);
  free(before);
  free(after);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_and_levels),
      cmocka_unit_test(test_pipeline_parsing),
      cmocka_unit_test(test_print_after),
      cmocka_unit_test(test_time_passes),
      cmocka_unit_test(test_verify_each_names_the_pass),
      cmocka_unit_test(test_fold_constants),
      cmocka_unit_test(test_fold_keeps_semantics_and_limits),
      cmocka_unit_test(test_identities_forward_the_operand),
      cmocka_unit_test(test_inexact_identities_stay),
      cmocka_unit_test(test_transpose_and_reverse_chains),
      cmocka_unit_test(test_cse_merges_equal_ops),
      cmocka_unit_test(test_cse_compares_attributes),
      cmocka_unit_test(test_cse_in_regions),
      cmocka_unit_test(test_dce_removes_unused_pure_ops),
      cmocka_unit_test(test_dce_trims_scans),
      cmocka_unit_test(test_dce_keeps_live_scans_and_removes_dead_ones),
      cmocka_unit_test(test_dce_drops_all_slices),
      cmocka_unit_test(test_dce_nested_scans),
      cmocka_unit_test(test_default_pipeline_on_scan),
      cmocka_unit_test(test_const_hoist_moves_param_work),
      cmocka_unit_test(test_const_hoist_leaves_other_work),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
