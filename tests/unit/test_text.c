/* Unit tests for the text form: ir/print.c and ir/parse.c.
 *
 * The central property is print(parse(print(g))) == print(g), byte for
 * byte, checked on graphs parsed from text (together covering every op in
 * ops.def), on graphs built with the API (awkward names, special reals,
 * nested scans, locations), and on every mutant of a valid text that still
 * parses. Each parse error is checked for its message and its position;
 * mutated and random inputs must give an error, never a crash (run under
 * ASan+UBSan by `make SANITIZE=1 unit`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* ---- helpers ------------------------------------------------------------- */

static char *print_text(const ir_graph *g, bool locations) {
  ir_print_opts opts = {locations};
  ir_buf out = {0};
  ir_print_graph(g, &opts, &out);
  return out.s;
}

/* Parse into *g; returns the diagnostics (caller frees). */
static char *parse_capture(const char *text, size_t len, ir_graph **g) {
  ir_buf errors = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &errors;
  *g = ir_parse(text, len, "t.sqir", &d);
  assert_int_equal(d.n_sources, 0); /* nothing left pointing at ir_parse's stack */
  if (!*g) assert_true(d.n_errors > 0 && errors.len > 0);
  if (*g) assert_int_equal(d.n_errors, 0);
  return errors.s;
}

static ir_graph *parse_ok(const char *text) {
  ir_graph *g;
  char *errors = parse_capture(text, strlen(text), &g);
  if (!g) fail_msg("unexpected parse error:\n%s", errors);
  free(errors);
  return g;
}

/* print(parse(print(g))) == print(g), and printing is repeatable. */
static void assert_round_trip(const ir_graph *g, bool locations) {
  char *first = print_text(g, locations);
  char *again = print_text(g, locations);
  assert_string_equal(first, again);
  ir_graph *back = parse_ok(first);
  char *second = print_text(back, locations);
  assert_string_equal(first, second);
  free(first);
  free(again);
  free(second);
  ir_graph_free(back);
}

/* `text` is already in printed form: parsing and printing reproduce it. */
static void assert_canonical(const char *text) {
  ir_graph *g = parse_ok(text);
  char *printed = print_text(g, false);
  assert_string_equal(printed, text);
  assert_round_trip(g, false);
  assert_round_trip(g, true);
  free(printed);
  ir_graph_free(g);
}

static void assert_parse_error(const char *text, const char *expected) {
  ir_graph *g;
  char *errors = parse_capture(text, strlen(text), &g);
  if (g) fail_msg("expected an error containing '%s', but the text parsed", expected);
  if (getenv("TEXT_TEST_SHOW_ERRORS")) fprintf(stderr, "----\n%s", errors);
  if (!strstr(errors, expected)) fail_msg("expected '%s' in:\n%s", expected, errors);
  free(errors);
}

static const ir_loc NOLOC = {NULL, 0, 0};

/* ---- texts --------------------------------------------------------------- */

/* Every op of ops.def but scan, in printed form. */
static const char ALL_OPS[] =
    "graph @all_ops(%x: f32[B, T, 8], %m: f32[B, T, 8], %c: bool[B, T, 8], %ids: i32[B, T], "
    "%len: i64[B], %idx: i64[], param %w: f32[8, 16], param %g: f32[8], param %beta: f32[8]) -> "
    "(y: f32[B, T, 8], n: i64[B, T, 8], z: f32[B, T+3, 8]) {\n"
    "  %k: f32[] = constant {value = 0.5}\n"
    "  %tab: f32[2, 3] = constant {value = [1.0, -2.5, nan, inf, -inf, -0.0]}\n"
    "  %flags: bool[2] = constant {value = [true, false]}\n"
    "  %ints: i64[3] = constant {value = [1, -2, 9223372036854775807]}\n"
    "  %one: i32[] = constant {value = -2147483648}\n"
    "  %empty: f64[0] = constant {value = []}\n"
    "  %pos: i64[T] = iota {axis = 0}\n"
    "  %0: f32[B, T, 8] = neg %x\n"
    "  %1: f32[B, T, 8] = abs %0\n"
    "  %2: f32[B, T, 8] = exp %1\n"
    "  %3: f32[B, T, 8] = log %2\n"
    "  %4: f32[B, T, 8] = sqrt %3\n"
    "  %5: f32[B, T, 8] = rsqrt %4\n"
    "  %6: f32[B, T, 8] = tanh %5\n"
    "  %7: f32[B, T, 8] = sigmoid %6\n"
    "  %8: f32[B, T, 8] = relu %7\n"
    "  %9: f32[B, T, 8] = gelu %8 {approximate = tanh}\n"
    "  %10: f32[B, T, 8] = gelu %9\n"
    "  %11: f32[B, T, 8] = erf %10\n"
    "  %12: f32[B, T, 8] = silu %11\n"
    "  %13: f32[B, T, 8] = softplus %12\n"
    "  %14: f32[B, T, 8] = elu %13 {alpha = 0.1}\n"
    "  %15: f32[B, T, 8] = sin %14\n"
    "  %16: f32[B, T, 8] = cos %15\n"
    "  %nc: bool[B, T, 8] = not %c\n"
    "  %a: f32[B, T, 8] = add %16, %m\n"
    "  %s: f32[B, T, 8] = sub %a, %k\n"
    "  %mu: f32[B, T, 8] = mul %s, %k\n"
    "  %dv: f32[B, T, 8] = div %mu, %k\n"
    "  %mx: f32[B, T, 8] = max %dv, %x\n"
    "  %mn: f32[B, T, 8] = min %mx, %x\n"
    "  %pw: f32[B, T, 8] = pow %mn, %k\n"
    "  %an: bool[B, T, 8] = and %c, %nc\n"
    "  %o: bool[B, T, 8] = or %an, %c\n"
    "  %lt: bool[B, T, 8] = compare %pw, %x {predicate = lt}\n"
    "  %sel: f32[B, T, 8] = select %lt, %pw, %x\n"
    "  %ci: i64[B, T, 8] = cast %sel\n"
    "  %proj: f32[B, T, 16] = matmul %sel, %w\n"
    "  %projt: f32[B, T, 8] = matmul %proj, %w {transpose_a = false, transpose_b = true}\n"
    "  %wp: f32[1, 16, 32] = pack_rhs %w {transpose_b = true}\n"
    "  %projp: f32[B, T, 8] = matmul_packed %proj, %wp {n = 8}\n"
    "  %rs: f32[B] = reduce_sum %projt {axes = [1, 2]}\n"
    "  %rmax: f32[B, 1, 1] = reduce_max %projt {axes = [1, 2], keepdims = true}\n"
    "  %rmin: f32[B, T] = reduce_min %projt {axes = [2]}\n"
    "  %rmean: f32[B, T] = reduce_mean %projt {axes = [2]}\n"
    "  %rprod: f32[B, T] = reduce_prod %projt {axes = [2]}\n"
    "  %rlse: f32[B, T] = reduce_logsumexp %projt {axes = [2]}\n"
    "  %am: i64[B, T] = argmax %projt {axis = 2}\n"
    "  %ami: i64[B, T, 1] = argmin %projt {axis = 2, keepdims = true}\n"
    "  %sm: f32[B, T, 8] = softmax %projt {axis = 2}\n"
    "  %ln: f32[B, T, 8] = layernorm %sm, %g, %beta {eps = 1e-05}\n"
    "  %cs: f32[B, T, 8] = cumsum %ln {axis = 1, reverse = true, exclusive = true}\n"
    "  %cp: f32[B, T, 8] = cumprod %cs {axis = 1}\n"
    "  %lc: f32[B, T, 8] = logcumsumexp %cp {axis = 1}\n"
    "  %rsh: f32[B*T, 8] = reshape %lc\n"
    "  %tr: f32[T, B, 8] = transpose %lc {perm = [1, 0, 2]}\n"
    "  %sl: f32[B, T-1, 8] = slice %lc {axis = 1, start = 1, end = T, step = 1}\n"
    "  %ds: f32[B, 1, 8] = dynamic_slice %lc, %idx {axis = 1, size = 1}\n"
    "  %dus: f32[B, T, 8] = dynamic_update_slice %lc, %ds, %idx {axis = 1}\n"
    "  %cat: f32[B, 2*T, 8] = concat %dus, %lc {axis = 1}\n"
    "  %lo, %hi: f32[B, T, 8], f32[B, T, 8] = split %cat {axis = 1, sizes = [T, T]}\n"
    "  %bc: f32[B, T, 8] = broadcast %k\n"
    "  %emb: f32[B, T, 3] = gather %tab, %ids {axis = 0}\n"
    "  %rev: f32[B, T, 8] = reverse %lo {axis = 1}\n"
    "  %rseq: f32[B, T, 8] = reverse_sequence %rev, %len {seq_axis = 1, batch_axis = 0}\n"
    "  %pd: f32[B, T+3, 8] = pad %rseq {axis = 1, low = 1, high = 2, value = -inf}\n"
    "  %att: f32[B, T, 8] = attention %hi, %lo, %bc {mask = causal, scale = 0.35355339059327373}\n"
    "  %attp: f32[B, T, 8] = attention %hi, %lo, %bc, %len {mask = window, scale = 0.125, "
    "window = 4}\n"
    "  %dsl: f32[B, ceildiv(T, 64), 8] = slice %attp {axis = 1, start = 0, end = ceildiv(T, 64)}\n"
    "  yield %att, %ci, %pd\n"
    "}\n";

/* Scans three deep, names with dots, dollars and dashes. */
static const char NESTED_SCANS[] =
    "graph @nested(%h0: f32[B, 8], %xs: f32[T, B, 8], param %enc.l0.w: f32[8, 8]) -> (h: f32[B, "
    "8], ys: f32[T, B, 8]) {\n"
    "  %enc.h, %enc.ys: f32[B, 8], f32[T, B, 8] = scan %h0, %xs, %enc.l0.w {length = T, carries "
    "= 1, xs = 1} {\n"
    "  ^(%t: i64[], %h: f32[B, 8], %x: f32[B, 8], %w: f32[8, 8]):\n"
    "    %inner$1: f32[B, 8] = scan %h, %w {length = 4, carries = 1, xs = 0, reverse = true} {\n"
    "    ^(%t2: i64[], %acc: f32[B, 8], %w2: f32[8, 8]):\n"
    "      %deep: f32[B, 8] = scan %acc {length = 2, carries = 1, xs = 0} {\n"
    "      ^(%t3: i64[], %a3: f32[B, 8]):\n"
    "        %a3-next: f32[B, 8] = tanh %a3\n"
    "        yield %a3-next\n"
    "      }\n"
    "      %mm: f32[B, 8] = matmul %deep, %w2 {transpose_b = true}\n"
    "      yield %mm\n"
    "    }\n"
    "    %hn: f32[B, 8] = add %inner$1, %x\n"
    "    yield %hn, %hn\n"
    "  }\n"
    "  yield %enc.h, %enc.ys\n"
    "}\n";

/* An init op, as const-hoist writes it: a region over a parameter. */
static const char WITH_INIT[] =
    "graph @hoisted(%x: f32[B, 4], param %w: f32[8, 4]) -> (y: f32[B, 8]) {\n"
    "  %wt: f32[4, 8] = init %w {\n"
    "  ^(%wi: f32[8, 4]):\n"
    "    %t: f32[4, 8] = transpose %wi {perm = [1, 0]}\n"
    "    yield %t\n"
    "  }\n"
    "  %y: f32[B, 8] = fused %x, %wt {\n"
    "  ^(%xi: f32[B, 4], %wti: f32[4, 8]):\n"
    "    %m: f32[B, 8] = matmul %xi, %wti\n"
    "    %r: f32[B, 8] = relu %m\n"
    "    yield %r\n"
    "  }\n"
    "  yield %y\n"
    "}\n";

/* Hand-written: comments, line breaks, the second result form, extra
 * spaces, all-digit (anonymous) names out of order. */
static const char HAND_WRITTEN[] =
    "// a comment before the graph\n"
    "graph @hand(%x: f32[T,4],   // the input\n"
    "            param %w: f32[ 4 , 4 ]) -> (y: f32[T, 4], z: f32[T, 4]) {\n"
    "  %7: f32[T, 4] = matmul %x, %w\n"
    "  %a: f32[T,2], %b: f32[T,2] = split %7 {axis=1,sizes=[2 ,2]} // no region\n"
    "  %3: f32[T, 4] = concat %a,%b {axis = 1}\n"
    "  yield %3,\n"
    "        %7\n"
    "}   // trailing comment";

static const char HAND_WRITTEN_PRINTED[] =
    "graph @hand(%x: f32[T, 4], param %w: f32[4, 4]) -> (y: f32[T, 4], z: f32[T, 4]) {\n"
    "  %0: f32[T, 4] = matmul %x, %w\n"
    "  %a, %b: f32[T, 2], f32[T, 2] = split %0 {axis = 1, sizes = [2, 2]}\n"
    "  %1: f32[T, 4] = concat %a, %b {axis = 1}\n"
    "  yield %1, %0\n"
    "}\n";

/* ---- round trips of texts ------------------------------------------------ */

static void test_canonical_texts_print_unchanged(void **state) {
  (void)state;
  assert_canonical(ALL_OPS);
  assert_canonical(NESTED_SCANS);
  assert_canonical(WITH_INIT);
  assert_canonical(HAND_WRITTEN_PRINTED);
}

static void test_hand_written_text_is_normalized(void **state) {
  (void)state;
  ir_graph *g = parse_ok(HAND_WRITTEN);
  char *printed = print_text(g, false);
  assert_string_equal(printed, HAND_WRITTEN_PRINTED);
  free(printed);
  ir_graph_free(g);
}

static bool mark_kind(ir_graph *g, ir_opid op, void *ud) {
  ((bool *)ud)[ir_o(g, op)->kind] = true;
  return true;
}

/* When an op is added to ops.def, this fails until a text above uses it. */
static void test_texts_cover_every_op(void **state) {
  (void)state;
  bool seen[IR_OP_COUNT] = {false};
  const char *texts[] = {ALL_OPS, NESTED_SCANS, WITH_INIT, HAND_WRITTEN};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    ir_graph *g = parse_ok(texts[i]);
    ir_walk(g, g->body, mark_kind, seen);
    ir_graph_free(g);
  }
  for (int k = 0; k < IR_OP_COUNT; k++)
    if (!seen[k]) fail_msg("no text uses op '%s'", ir_opinfo_of((ir_opkind)k)->name);
}

static void test_parsed_graph_structure(void **state) {
  (void)state;
  ir_graph *g = parse_ok(NESTED_SCANS);
  assert_string_equal(g->name, "nested");
  assert_int_equal(g->n_outputs, 2);
  assert_string_equal(g->output_names[0], "h");
  assert_string_equal(g->output_names[1], "ys");
  const ir_block *body = ir_b(g, g->body);
  assert_int_equal(body->n_args, 3);
  assert_false(ir_v(g, body->args[0])->is_param);
  assert_true(ir_v(g, body->args[2])->is_param);
  assert_string_equal(ir_v(g, body->args[2])->name, "enc.l0.w");
  const ir_op *scan = ir_o(g, body->first);
  assert_int_equal(scan->kind, IR_OP_SCAN);
  assert_int_equal(scan->n_in, 3);
  assert_int_equal(scan->n_out, 2);
  assert_int_equal(ir_get_int(g, body->first, "carries"), 1);
  const char *sym;
  assert_true(ir_dim_is_sym(g->dims, ir_get_dim(g, body->first, "length"), &sym));
  assert_int_equal(sym[0], 'T');
  const ir_block *region = ir_b(g, scan->regions[0]);
  assert_int_equal(region->n_args, 4);
  assert_int_equal(region->parent, body->first);
  /* op locations point at the op names in the text */
  assert_string_equal(scan->loc.file, "t.sqir");
  assert_int_equal(scan->loc.line, 2);
  assert_int_equal(scan->loc.col, 46);
  ir_graph_free(g);
}

static void test_all_digit_names_are_anonymous(void **state) {
  (void)state;
  ir_graph *g = parse_ok(HAND_WRITTEN);
  const ir_op *mm = ir_o(g, ir_b(g, g->body)->first);
  assert_null(ir_v(g, mm->out[0])->name);
  assert_string_equal(ir_v(g, ir_o(g, mm->next)->out[1])->name, "b");
  ir_graph_free(g);
}

/* ---- round trips of graphs built with the API --------------------------- */

static ir_val add_input(ir_graph *g, const char *name, ir_dtype dt, int32_t rank,
                        const int64_t *dims, bool is_param) {
  return ir_graph_add_input(g, ir_type_static(g, dt, rank, dims), name, is_param);
}

static ir_opid append_op(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in,
                         int32_t n_out, const ir_type *types, ir_loc loc) {
  ir_opid op = ir_op_new(g, k, n_in, in, n_out, types, loc);
  ir_op_append(g, b, op);
  return op;
}

static void set_outputs(ir_graph *g, int32_t n, const char *const *names) {
  const char **copy = ir_arena_alloc(g->arena, sizeof(char *) * (size_t)n);
  for (int32_t i = 0; i < n; i++) copy[i] = ir_arena_strdup(g->arena, names[i]);
  g->output_names = copy;
  g->n_outputs = n;
}

/* One value of each awkward kind per dtype, and float attributes at the
 * edges of double. */
static ir_graph *build_special_reals(void) {
  ir_graph *g = ir_graph_new("reals");
  int64_t four = 4;
  ir_val x = add_input(g, "x", IR_F64, 1, &four, false);
  static const double f64s[9] = {NAN, INFINITY, -INFINITY, -0.0, 5e-324, 2.2250738585072009e-308,
                                 1e300, 0.1, 1.0 / 3.0};
  static const double f32s[4] = {0.1, 1e300, 1.401298464324817e-45, -0.0};
  int64_t n9 = 9;
  ir_type t64 = ir_type_static(g, IR_F64, 1, &n9), t32 = ir_type_static(g, IR_F32, 1, &four);
  ir_type th = ir_type_static(g, IR_F16, 0, NULL), tb = ir_type_static(g, IR_BF16, 0, NULL);
  ir_type ti = ir_type_static(g, IR_I64, 1, (int64_t[]){2});
  ir_opid c64 = append_op(g, g->body, IR_OP_CONSTANT, 0, NULL, 1, &t64, NOLOC);
  ir_set_tensor(g, c64, "value", &(ir_tensor_data){9, (double *)f64s, NULL});
  ir_opid c32 = append_op(g, g->body, IR_OP_CONSTANT, 0, NULL, 1, &t32, NOLOC);
  ir_set_tensor(g, c32, "value", &(ir_tensor_data){4, (double *)f32s, NULL});
  ir_opid ch = append_op(g, g->body, IR_OP_CONSTANT, 0, NULL, 1, &th, NOLOC);
  ir_set_tensor(g, ch, "value", &(ir_tensor_data){1, (double[]){65504.0}, NULL});
  ir_opid cb = append_op(g, g->body, IR_OP_CONSTANT, 0, NULL, 1, &tb, NOLOC);
  ir_set_tensor(g, cb, "value", &(ir_tensor_data){1, (double[]){-3.0e38}, NULL});
  ir_opid ci = append_op(g, g->body, IR_OP_CONSTANT, 0, NULL, 1, &ti, NOLOC);
  ir_set_tensor(g, ci, "value", &(ir_tensor_data){2, NULL, (int64_t[]){INT64_MIN, INT64_MAX}});
  ir_type tx = ir_vtype(g, x);
  ir_opid elu = append_op(g, g->body, IR_OP_ELU, 1, &x, 1, &tx, NOLOC);
  ir_set_float(g, elu, "alpha", -0.0);
  ir_val e = ir_o(g, elu)->out[0];
  ir_opid ln = append_op(g, g->body, IR_OP_LAYERNORM, 1, &e, 1, &tx, NOLOC);
  ir_set_float(g, ln, "eps", 5e-324);
  ir_val l = ir_o(g, ln)->out[0];
  ir_opid pad = append_op(g, g->body, IR_OP_PAD, 1, &l, 1, &tx, NOLOC);
  ir_set_int(g, pad, "axis", 0);
  ir_set_dim(g, pad, "low", ir_dim_const(g->dims, 0));
  ir_set_dim(g, pad, "high", ir_dim_const(g->dims, 0));
  ir_set_float(g, pad, "value", 1e300);
  ir_val outs[2] = {ir_o(g, pad)->out[0], ir_o(g, c64)->out[0]};
  append_op(g, g->body, IR_OP_YIELD, 2, outs, 0, NULL, NOLOC);
  set_outputs(g, 2, (const char *const[]){"y", "consts"});
  return g;
}

static bool same_bits(double a, double b) {
  return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void test_special_reals_round_trip_exactly(void **state) {
  (void)state;
  ir_graph *g = build_special_reals();
  assert_round_trip(g, false);
  char *text = print_text(g, false);
  assert_non_null(strstr(text, "{value = [nan, inf, -inf, -0.0, 5e-324, 2.225073858507201e-308, "
                               "1e+300, 0.1, 0.3333333333333333]}"));
  /* f32 constants print the shortest float: 1e300 is infinite as an f32 */
  assert_non_null(strstr(text, "{value = [0.1, inf, 1e-45, -0.0]}"));
  assert_non_null(strstr(text, "{value = [-9223372036854775808, 9223372036854775807]}"));
  assert_non_null(strstr(text, "elu %x {alpha = -0.0}"));
  assert_non_null(strstr(text, "{eps = 5e-324}"));
  assert_non_null(strstr(text, "value = 1e+300}"));

  ir_graph *back = parse_ok(text);
  ir_opid c64 = ir_b(back, back->body)->first;
  const ir_tensor_data *t = ir_get_attr(back, c64, "value")->u.t;
  const ir_tensor_data *orig = ir_get_attr(g, ir_b(g, g->body)->first, "value")->u.t;
  assert_int_equal(t->n, 9);
  for (int i = 0; i < 9; i++) assert_true(same_bits(t->f[i], orig->f[i]));
  ir_opid c32 = ir_o(back, c64)->next;
  const ir_tensor_data *t32 = ir_get_attr(back, c32, "value")->u.t;
  assert_true(t32->f[0] == (double)0.1f); /* rounded to the f32 it stands for */
  assert_true(isinf(t32->f[1]));
  assert_true(t32->f[2] == (double)1.401298464324817e-45f);
  assert_true(signbit(t32->f[3]));
  free(text);
  ir_graph_free(back);
  ir_graph_free(g);
}

/* Values named so that the printer must rename: duplicates, a name that
 * equals another's renamed form, all digits, bytes outside the alphabet,
 * empty and absent names. */
static ir_graph *build_awkward_names(void) {
  ir_graph *g = ir_graph_new("names");
  ir_val x = ir_graph_add_input(g, ir_type_static(g, IR_F32, 0, NULL), "h", false);
  ir_type t = ir_vtype(g, x);
  const char *names[] = {"h", "h.1", "h", "7", "a b/c", "", NULL, "x.y.z", "$tmp-1", "h"};
  ir_val prev = x;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    ir_opid op = append_op(g, g->body, IR_OP_NEG, 1, &prev, 1, &t, NOLOC);
    prev = ir_o(g, op)->out[0];
    ir_value_set_name(g, prev, names[i]);
  }
  append_op(g, g->body, IR_OP_YIELD, 1, &prev, 0, NULL, NOLOC);
  set_outputs(g, 1, (const char *const[]){"out"});
  return g;
}

static void test_value_names_are_unique_and_stable(void **state) {
  (void)state;
  ir_graph *g = build_awkward_names();
  char *text = print_text(g, false);
  assert_string_equal(text, "graph @names(%h: f32[]) -> (out: f32[]) {\n"
                            "  %h.1: f32[] = neg %h\n"
                            "  %h.1.1: f32[] = neg %h.1\n"
                            "  %h.2: f32[] = neg %h.1.1\n"
                            "  %_7: f32[] = neg %h.2\n"
                            "  %a_b_c: f32[] = neg %_7\n"
                            "  %0: f32[] = neg %a_b_c\n"
                            "  %1: f32[] = neg %0\n"
                            "  %x.y.z: f32[] = neg %1\n"
                            "  %$tmp-1: f32[] = neg %x.y.z\n"
                            "  %h.3: f32[] = neg %$tmp-1\n"
                            "  yield %h.3\n"
                            "}\n");
  assert_round_trip(g, false);
  free(text);
  ir_graph_free(g);
}

/* Many values with one name: suffixes are found in linear time. */
static void test_many_equal_names(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("many");
  ir_val v = ir_graph_add_input(g, ir_type_static(g, IR_F32, 0, NULL), "v", false);
  ir_type t = ir_vtype(g, v);
  for (int i = 0; i < 20000; i++) {
    ir_opid op = append_op(g, g->body, IR_OP_RELU, 1, &v, 1, &t, NOLOC);
    v = ir_o(g, op)->out[0];
    ir_value_set_name(g, v, "v");
  }
  append_op(g, g->body, IR_OP_YIELD, 1, &v, 0, NULL, NOLOC);
  set_outputs(g, 1, (const char *const[]){"y"});
  char *text = print_text(g, false);
  assert_non_null(strstr(text, "%v.20000: f32[] = relu %v.19999\n  yield %v.20000\n"));
  assert_round_trip(g, false);
  free(text);
  ir_graph_free(g);
}

/* scan { scan { scan } } built with the API, each op with a location. */
static ir_graph *build_nested_scans(int depth) {
  ir_graph *g = ir_graph_new("deep");
  int64_t dims[2] = {3, 5};
  ir_val h0 = add_input(g, NULL, IR_F32, 1, &dims[1], false);
  ir_type th = ir_vtype(g, h0), ti = ir_type_static(g, IR_I64, 0, NULL);
  ir_blockid b = g->body;
  ir_val carry = h0;
  ir_loc loc = {"model \"v2\"\\dir\n.yaml", 1, 1};
  for (int level = 0; level < depth; level++) {
    loc.line = level + 2;
    ir_opid scan = append_op(g, b, IR_OP_SCAN, 1, &carry, 1, &th, loc);
    ir_set_dim(g, scan, "length", ir_dim_sym(g->dims, "T", 1));
    ir_set_int(g, scan, "carries", 1);
    ir_set_int(g, scan, "xs", 0);
    if (level % 2) ir_set_int(g, scan, "reverse", 1);
    b = ir_o(g, scan)->regions[0];
    ir_block_add_arg(g, b, ti, "t");
    carry = ir_block_add_arg(g, b, th, level ? NULL : "h");
    if (level + 1 < depth) continue;
    loc.col = 9;
    ir_opid body = append_op(g, b, IR_OP_SIGMOID, 1, &carry, 1, &th, loc);
    carry = ir_o(g, body)->out[0];
  }
  /* close the regions from the inside out */
  for (ir_blockid r = b; r != g->body;) {
    ir_opid parent = ir_b(g, r)->parent;
    append_op(g, r, IR_OP_YIELD, 1, &carry, 0, NULL, loc);
    carry = ir_o(g, parent)->out[0];
    r = ir_o(g, parent)->block;
  }
  append_op(g, g->body, IR_OP_YIELD, 1, &carry, 0, NULL, loc);
  set_outputs(g, 1, (const char *const[]){"h"});
  return g;
}

static void test_nested_scans_and_locations(void **state) {
  (void)state;
  ir_graph *g = build_nested_scans(5);
  assert_round_trip(g, false);
  assert_round_trip(g, true);
  char *with = print_text(g, true), *without = print_text(g, false);
  assert_null(strstr(without, "loc("));
  assert_non_null(strstr(with, " loc(\"model \\\"v2\\\"\\\\dir\\0A.yaml\":2:1) {\n"));
  assert_non_null(strstr(with, "          ^(%t.4: i64[], %9: f32[5]):\n"
                               "            %10: f32[5] = sigmoid %9 loc("));
  /* parsed locations are the ones written, with the file name unescaped */
  ir_graph *back = parse_ok(with);
  const ir_op *scan = ir_o(back, ir_b(back, back->body)->first);
  assert_string_equal(scan->loc.file, "model \"v2\"\\dir\n.yaml");
  assert_int_equal(scan->loc.line, 2);
  assert_int_equal(scan->loc.col, 1);
  free(with);
  free(without);
  ir_graph_free(back);
  ir_graph_free(g);
}

/* Ops without a location get their position in the parsed text, so with
 * locations on, the second print is the fixed point. */
static void test_missing_locations_settle_after_one_parse(void **state) {
  (void)state;
  ir_graph *g = build_awkward_names();
  assert_round_trip(g, false);
  char *first = print_text(g, true);
  assert_null(strstr(first, "loc("));
  ir_graph *back = parse_ok(first);
  char *second = print_text(back, true);
  assert_non_null(strstr(second, "  %h.1: f32[] = neg %h loc(\"t.sqir\":2:17)\n"));
  assert_round_trip(back, true);
  free(first);
  free(second);
  ir_graph_free(back);
  ir_graph_free(g);
}

static void test_print_type(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("types");
  ir_dim t = ir_dim_sym(g->dims, "T", 1), b = ir_dim_sym(g->dims, "B", 1);
  ir_dim dims[3] = {ir_dim_mul(g->dims, b, t),
                    ir_dim_ceildiv(g->dims, t, ir_dim_const(g->dims, 64)),
                    ir_dim_const(g->dims, 8)};
  ir_buf out = {0};
  ir_print_type(g, ir_type_make(g, IR_BF16, 3, dims), &out);
  assert_string_equal(out.s, "bf16[B*T, ceildiv(T, 64), 8]");
  out.len = 0;
  ir_print_type(g, ir_type_make(g, IR_BOOL, 0, NULL), &out);
  assert_string_equal(out.s, "bool[]");
  ir_buf_free(&out);
  ir_graph_free(g);
}

/* ---- parse errors -------------------------------------------------------- */

#define HDR "graph @g(%x: f32[4]) -> (y: f32[4]) {\n"

static void test_error_messages_and_positions(void **state) {
  (void)state;
  static const struct {
    const char *text, *expected;
  } cases[] = {
      {"", "t.sqir:1:1: error: expected 'graph', found end of input"},
      {"graph g", "t.sqir:1:7: error: expected '@' and the graph's name, found 'g'"},
      {HDR "  %y: f32[4] = frob %x\n  yield %y\n}\n",
       "t.sqir:2:16: error: unknown op 'frob'\n  %y: f32[4] = frob %x\n               ^\n"},
      {HDR "  %y: f32[4] = neg %z\n  yield %y\n}\n",
       "t.sqir:2:20: error: use of undefined value '%z'"},
      {HDR "  %x: f32[4] = neg %x\n  yield %x\n}\n",
       "t.sqir:2:3: error: value '%x' is defined twice\n  %x: f32[4] = neg %x\n  ^\n"
       "t.sqir:1:10: note: first defined here"},
      {HDR "  %y: f32[4] = neg %y\n  yield %y\n}\n",
       "t.sqir:2:20: error: use of undefined value '%y'"},
      {HDR "  %y: f32[4] = softmax %x\n  yield %y\n}\n",
       "t.sqir:2:16: error: op 'softmax' needs attribute 'axis'"},
      {HDR "  %y: f32[4] = softmax %x {axis = 0, dim = 1}\n  yield %y\n}\n",
       "t.sqir:2:38: error: op 'softmax' has no attribute 'dim'"},
      {HDR "  %y: f32[4] = softmax %x {axis = true}\n  yield %y\n}\n",
       "t.sqir:2:35: error: expected an integer for attribute 'axis', found 'true'"},
      {HDR "  %y: f32[4] = softmax %x {axis = 0, axis = 0}\n  yield %y\n}\n",
       "t.sqir:2:38: error: attribute 'axis' given twice"},
      {HDR "  %y: f32[4] = elu %x {alpha = x}\n  yield %y\n}\n",
       "t.sqir:2:32: error: expected a real number for attribute 'alpha', found 'x'"},
      {HDR "  %y: f32[4] = elu %x {alpha = 1e999}\n  yield %y\n}\n",
       "error: real number out of range for attribute 'alpha' (write inf)"},
      {HDR "  %y: f32[4] = softmax %x {axis = 99999999999999999999}\n  yield %y\n}\n",
       "t.sqir:2:35: error: integer out of range for attribute 'axis'"},
      {HDR "  %y: f32[4] = matmul %x, %x {transpose_a = 1}\n  yield %y\n}\n",
       "t.sqir:2:45: error: expected true or false for attribute 'transpose_a', found '1'"},
      {HDR "  %y: bool[4] = compare %x, %x {predicate = less}\n  yield %y\n}\n",
       "t.sqir:2:45: error: attribute 'predicate' must be one of eq, ne, lt, le, gt, ge, found "
       "'less'"},
      {HDR "  %y, %z: f32[4] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:3: error: 2 result names but 1 result type"},
      {HDR "  %y: f32[4], f32[4] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:3: error: 1 result name but 2 result types"},
      {HDR "  %y, %z: f32[4], f32[4] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:28: error: op 'neg' has 1 result, not 2"},
      {HDR "  %y: f32[4] = add %x\n  yield %y\n}\n",
       "t.sqir:2:16: error: op 'add' takes 2 operands, not 1"},
      {HDR "  %y: f32[4] = layernorm %x, %x, %x, %x\n  yield %y\n}\n",
       "t.sqir:2:16: error: op 'layernorm' takes 1 to 3 operands, not 4"},
      {HDR "  %y: f32[4] = concat {axis = 0}\n  yield %y\n}\n",
       "t.sqir:2:16: error: op 'concat' takes at least 1 operand, not 0"},
      {HDR "  %y: f32[4] = neg %x {\n  ^(%a: f32[4]):\n    yield %a\n  }\n  yield %y\n}\n",
       "t.sqir:2:23: error: op 'neg' has no region"},
      {HDR "  %y: f32[4] = scan %x {length = 4, carries = 1, xs = 0}\n  yield %y\n}\n",
       "t.sqir:3:3: error: expected '{' to open the op's region, found 'yield'"},
      {HDR "  %y: f32[4] = scan %x {length = 4, carries = 1, xs = 0} {\n  %z: f32[4] = neg %x\n",
       "t.sqir:3:3: error: expected '^(' to list the region's arguments, found '%z'"},
      {HDR "  %y: f32[4] = constant {value = [1.0, 2.0]}\n  yield %y\n}\n",
       "t.sqir:2:34: error: a constant of type f32[4] needs 1 or 4 elements, found 2"},
      {HDR "  %y: f32[4] = constant {value = [1, 2, 3, 4, 5]}\n  yield %y\n}\n",
       "t.sqir:2:47: error: too many elements for a constant of type f32[4] (4)"},
      {"graph @g(%x: f32[T]) -> (y: f32[T]) {\n  %y: f32[T] = constant {value = [1.0, 2.0]}\n"
       "  yield %y\n}\n",
       "t.sqir:2:40: error: a constant of type f32[T] holds one value (a splat): its shape is not "
       "static"},
      {HDR "  %y: i32[4] = constant {value = 2147483648}\n  yield %y\n}\n",
       "t.sqir:2:34: error: 2147483648 is out of range for i32"},
      {HDR "  %y: i32[4] = constant {value = 1.5}\n  yield %y\n}\n",
       "t.sqir:2:34: error: expected an integer for an int constant, found '1.5'"},
      {HDR "  %y: bool[4] = constant {value = 1}\n  yield %y\n}\n",
       "t.sqir:2:35: error: expected true or false for a bool constant, found '1'"},
      {HDR "  constant {value = 1.0}\n  yield %x\n}\n",
       "t.sqir:2:3: error: op 'constant' has 1 result, not 0"},
      {HDR "  %y: f33[4] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:7: error: unknown dtype 'f33' (f32, f64, f16, bf16, i32, i64, bool)"},
      {HDR "  %y: f32[4, ] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:14: error: expected a dim expression, found ']'"},
      {HDR "  %y: f32[4 + + ] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:15: error: expected a dim expression, found '+'"},
      {HDR "  %y: f32[T T] = neg %x\n  yield %y\n}\n",
       "t.sqir:2:12: error: unexpected text in a dim expression"},
      {HDR "  yield %x\n",
       "t.sqir:3:1: error: expected '}' to close the block, found end of input"},
      {HDR "}\n", "t.sqir:2:1: error: the graph body must end with yield"},
      {HDR "  yield %x, %x\n}\n",
       "t.sqir:2:3: error: yield gives 2 values but the graph declares 1 output"},
      {"graph @g(%x: f32[4]) -> (y: f32[5]) {\n  yield %x\n}\n",
       "t.sqir:2:3: error: output 'y' is declared f32[5] but yield gives f32[4]"},
      {"graph @g(%x: f32[4]) -> (y: f32[4], y: f32[4]) {\n  yield %x, %x\n}\n",
       "t.sqir:1:37: error: output 'y' declared twice"},
      {HDR "  yield %x\n}\n}\n",
       "t.sqir:4:1: error: expected end of input after the graph, found '}'"},
      {HDR "  yield %x\n}\ngraph", "t.sqir:4:1: error: expected end of input after the graph"},
      {HDR "  %y: f32[4] = neg %x loc(\"a.yaml\":1)\n  yield %y\n}\n",
       "t.sqir:2:37: error: expected ':' and a column, found ')'"},
      {HDR "  %y: f32[4] = neg %x loc(\"a.yaml:1:2)\n  yield %y\n}\n",
       "t.sqir:2:27: error: unterminated string"},
      {HDR "  %y: f32[4] = neg %x loc(\"a\\q\":1:2)\n  yield %y\n}\n",
       "t.sqir:2:29: error: invalid escape in a string"},
      {HDR "  %y: f32[4] = neg %x loc(\"a\\00\":1:2)\n  yield %y\n}\n",
       "t.sqir:2:29: error: NUL byte in a string"},
      {HDR "  %y: f32[4] = neg %x loc(\"a.yaml\":-1:2)\n  yield %y\n}\n",
       "t.sqir:2:36: error: location out of range"},
      {HDR "  %y: f32[4] = neg %x # comment\n  yield %y\n}\n",
       "t.sqir:2:23: error: unexpected character '#'"},
      {HDR "  %y: f32[4] = neg %\n", "t.sqir:2:20: error: expected a value name after '%'"},
      {HDR "  %y: f32[4] = neg %x\n  yield %y \xff\xfe\n}\n",
       "t.sqir:3:12: error: unexpected byte 0xFF"},
      {"graph @g(param x: f32[4]) -> () {\n  yield\n}\n",
       "t.sqir:1:16: error: expected an argument such as %x: f32[T], found 'x'"},
      {HDR "  %y: f32[4] neg %x\n  yield %y\n}\n",
       "t.sqir:2:14: error: expected '=' after the result types, found 'neg'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (getenv("TEXT_TEST_SHOW_ERRORS")) {
      ir_graph *g;
      fprintf(stderr, "----\n%s", parse_capture(cases[i].text, strlen(cases[i].text), &g));
      continue;
    }
    assert_parse_error(cases[i].text, cases[i].expected);
  }
}

static void test_nul_bytes_are_errors(void **state) {
  (void)state;
  static const char text[] = "graph @g(%x: f32[4]) -> (y: f32[4]) {\n  yield %x \0\n}\n";
  ir_graph *g;
  char *errors = parse_capture(text, sizeof text - 1, &g);
  assert_null(g);
  assert_non_null(
      strstr(errors, "t.sqir:2:12: error: unexpected byte 0x00\n  yield %x ?\n           ^\n"));
  free(errors);
}

/* A region nested MAX_REGION_DEPTH (64) deep parses; one more is refused. */
static char *nested_regions_text(int depth) {
  ir_buf b = {0};
  ir_buf_puts(&b, "graph @g(%x: f32[]) -> (y: f32[]) {\n");
  for (int i = 0; i < depth; i++)
    ir_buf_printf(&b, "scan {length = 1, carries = 0, xs = 0} {\n^(%%t%d: i64[]):\n", i);
  for (int i = 0; i < depth; i++) ir_buf_puts(&b, "yield\n}\n");
  ir_buf_puts(&b, "yield %x\n}\n");
  return b.s;
}

static void test_region_depth_is_bounded(void **state) {
  (void)state;
  char *ok = nested_regions_text(64);
  ir_graph *g = parse_ok(ok);
  assert_round_trip(g, false);
  ir_graph_free(g);
  char *deep = nested_regions_text(65);
  assert_parse_error(deep, "t.sqir:130:40: error: regions nested deeper than 64");
  free(ok);
  free(deep);
}

/* The caller's registered source is used, not registered twice, and left
 * in place; the parser's own registration is removed before it returns. */
static void test_diag_sources(void **state) {
  (void)state;
  const char *text = HDR "  yield %y\n}\n";
  ir_buf errors = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &errors;
  ir_source src = {"t.sqir", text, strlen(text)};
  ir_diag_add_source(&d, &src);
  assert_null(ir_parse(text, strlen(text), "t.sqir", &d));
  assert_int_equal(d.n_sources, 1);
  assert_ptr_equal(d.sources[0], &src);
  assert_string_equal(errors.s, "t.sqir:2:9: error: use of undefined value '%y'\n"
                                "  yield %y\n"
                                "        ^\n");
  ir_buf_free(&errors);
  /* no diag at all: errors go to stderr, still no crash */
  assert_null(ir_parse(text, strlen(text), NULL, NULL));
}

/* ---- untrusted input ----------------------------------------------------- */

typedef struct rng {
  uint64_t s;
} rng;

static uint32_t rng_next(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 11);
}

/* Either an error, or a graph that round-trips; true if it parsed. */
static bool parse_mutant(const char *text, size_t len) {
  ir_graph *g;
  char *errors = parse_capture(text, len, &g);
  free(errors);
  if (!g) return false;
  assert_round_trip(g, false);
  ir_graph_free(g);
  return true;
}

static void mutate(rng *r, ir_buf *b) {
  static const char tokens[] = "%{}[](),:=^@-\"\\/\n 0123456789Ttx.e+*";
  size_t at = b->len ? rng_next(r) % b->len : 0;
  switch (rng_next(r) % 6) {
  case 0: b->s[at] = (char)(rng_next(r) & 0xff); break;
  case 1: b->s[at] = tokens[rng_next(r) % (sizeof tokens - 1)]; break;
  case 2:
    memmove(b->s + at, b->s + at + 1, b->len - at);
    b->len -= b->len ? 1 : 0;
    break;
  case 3: b->len = at; break;
  case 4: { /* duplicate a chunk */
    size_t n = rng_next(r) % 64, from = rng_next(r) % (b->len + 1);
    if (from + n > b->len) n = b->len - from;
    char *chunk = malloc(n + 1);
    memcpy(chunk, b->s + from, n);
    ir_buf tail = {0};
    ir_buf_puts(&tail, b->s + at);
    b->len = at;
    ir_buf_putn(b, chunk, n);
    ir_buf_putn(b, tail.s, tail.len);
    ir_buf_free(&tail);
    free(chunk);
    break;
  }
  default: b->s[at] = tokens[rng_next(r) % 4]; break;
  }
  b->s[b->len] = 0;
}

static void test_mutated_texts_never_crash(void **state) {
  (void)state;
  const char *seeds[] = {ALL_OPS, NESTED_SCANS, HAND_WRITTEN};
  rng r = {0x9e3779b97f4a7c15ull};
  int parsed = 0;
  for (int i = 0; i < 1500; i++) {
    ir_buf b = {0};
    ir_buf_puts(&b, seeds[i % 3]);
    int n = 1 + (int)(rng_next(&r) % 4);
    for (int m = 0; m < n; m++) mutate(&r, &b);
    parsed += parse_mutant(b.s, b.len);
    ir_buf_free(&b);
  }
  assert_true(parsed > 20); /* the round-trip branch is exercised too (52 parse) */
}

static void test_every_prefix_is_an_error(void **state) {
  (void)state;
  size_t n = strlen(NESTED_SCANS);
  for (size_t len = 0; len + 1 < n; len++) {
    ir_graph *g;
    char *errors = parse_capture(NESTED_SCANS, len, &g);
    assert_null(g);
    free(errors);
  }
}

static void test_random_bytes_are_errors(void **state) {
  (void)state;
  rng r = {12345};
  char buf[256];
  for (int i = 0; i < 500; i++) {
    size_t n = rng_next(&r) % sizeof buf;
    for (size_t k = 0; k < n; k++) buf[k] = (char)(rng_next(&r) & 0xff);
    ir_graph *g;
    char *errors = parse_capture(buf, n, &g);
    assert_null(g);
    free(errors);
  }
}

/* A long constant literal costs memory in proportion to the text. */
static void test_long_constant(void **state) {
  (void)state;
  ir_buf b = {0};
  ir_buf_puts(&b, "graph @g() -> (y: f32[100000]) {\n  %y: f32[100000] = constant {value = [");
  for (int i = 0; i < 100000; i++) ir_buf_printf(&b, "%s%d.5", i ? ", " : "", i);
  ir_buf_puts(&b, "]}\n  yield %y\n}\n");
  ir_graph *g = parse_ok(b.s);
  const ir_tensor_data *t = ir_get_attr(g, ir_b(g, g->body)->first, "value")->u.t;
  assert_int_equal(t->n, 100000);
  assert_true(t->f[99999] == 99999.5);
  char *printed = print_text(g, false);
  assert_string_equal(printed, b.s);
  free(printed);
  ir_buf_free(&b);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canonical_texts_print_unchanged),
      cmocka_unit_test(test_hand_written_text_is_normalized),
      cmocka_unit_test(test_texts_cover_every_op),
      cmocka_unit_test(test_parsed_graph_structure),
      cmocka_unit_test(test_all_digit_names_are_anonymous),
      cmocka_unit_test(test_special_reals_round_trip_exactly),
      cmocka_unit_test(test_value_names_are_unique_and_stable),
      cmocka_unit_test(test_many_equal_names),
      cmocka_unit_test(test_nested_scans_and_locations),
      cmocka_unit_test(test_missing_locations_settle_after_one_parse),
      cmocka_unit_test(test_print_type),
      cmocka_unit_test(test_error_messages_and_positions),
      cmocka_unit_test(test_nul_bytes_are_errors),
      cmocka_unit_test(test_region_depth_is_bounded),
      cmocka_unit_test(test_diag_sources),
      cmocka_unit_test(test_mutated_texts_never_crash),
      cmocka_unit_test(test_every_prefix_is_an_error),
      cmocka_unit_test(test_random_bytes_are_errors),
      cmocka_unit_test(test_long_constant),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
