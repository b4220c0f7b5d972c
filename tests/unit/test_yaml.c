/* Unit tests for the YAML model frontend (frontend/, docs/yaml.md).
 *
 * Three groups:
 *  - the model zoo (the models/ YAML files) loads, verifies and computes what an
 *    independent oracle computes: a C loop (Elman, running sum) or the
 *    `attention` op evaluated by the interpreter (causal attention);
 *  - every schema feature builds the IR it should (checked on the printed
 *    text or the graph);
 *  - every error path reports `t.yaml:line:col: error: message` at the
 *    exact position, and hostile inputs (deep nesting, alias bombs, huge
 *    scalars, binary garbage, truncations and mutations of a valid model)
 *    fail quickly and cleanly (ASan+UBSan in `make SANITIZE=1 unit`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "ir/interp.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Load text (len bytes) named t.yaml; *errors gets the diagnostics. */
static ir_graph *load_n(const char *text, size_t len, char **errors) {
  ir_buf out = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &out;
  ir_graph *g = fe_load_yaml(text, len, "t.yaml", &d);
  assert_int_equal(d.n_sources, 0); /* nothing left pointing at the loader's stack */
  if (g) assert_int_equal(d.n_errors, 0);
  if (!g) assert_true(d.n_errors > 0 && out.len > 0);
  ir_buf_puts(&out, "");
  *errors = out.s;
  return g;
}

static ir_graph *load_ok(const char *text) {
  char *errors;
  ir_graph *g = load_n(text, strlen(text), &errors);
  if (!g) fail_msg("unexpected error:\n%s", errors);
  free(errors);
  return g;
}

/* The first diagnostic starts with "t.yaml:<where>: error: " and contains msg. */
static void expect_error_n(const char *text, size_t len, const char *where, const char *msg) {
  char *errors;
  ir_graph *g = load_n(text, len, &errors);
  if (g) fail_msg("expected an error at %s (%s), but the model loaded", where, msg);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "t.yaml:%s: error: ", where);
  const char *eol = strchr(errors, '\n');
  size_t first = eol ? (size_t)(eol - errors) : strlen(errors);
  char *line = strndup(errors, first);
  if (strncmp(line, prefix, strlen(prefix)) != 0 || !strstr(line, msg))
    fail_msg("expected \"%s...%s\", got:\n%s", prefix, msg, errors);
  free(line);
  free(errors);
}

static void expect_error(const char *text, const char *where, const char *msg) {
  expect_error_n(text, strlen(text), where, msg);
}

static char *print_graph(const ir_graph *g, bool locations) {
  ir_print_opts opts = {locations};
  ir_buf out = {0};
  ir_print_graph(g, &opts, &out);
  return out.s;
}

static void expect_ir(const char *yaml, const char *needle) {
  ir_graph *g = load_ok(yaml);
  char *text = print_graph(g, false);
  if (!strstr(text, needle)) fail_msg("expected IR containing\n%s\ngot\n%s", needle, text);
  free(text);
  ir_graph_free(g);
}

static char *read_model(const char *path, size_t *len) {
  ir_buf err = {0};
  char *text = ir_read_file(path, FE_YAML_MAX_BYTES, len, &err);
  if (!text) fail_msg("%s (run the tests from the repository root)", err.s);
  return text;
}

static ir_graph *load_model(const char *path) {
  size_t len;
  char *text = read_model(path, &len);
  char *errors;
  ir_graph *g = load_n(text, len, &errors);
  if (!g) fail_msg("%s does not load:\n%s", path, errors);
  free(errors);
  free(text);
  return g;
}

/* Deterministic inputs in [-1, 1). */
static uint64_t rng_state = 42;
static double next_uniform(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void tensor_random(ir_tensor *t, ir_dtype dt, int32_t rank, const int64_t *shape) {
  ir_buf err = {0};
  assert_true(ir_tensor_alloc(t, dt, rank, shape, 1 << 20, &err));
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = ir_round_to_dtype(dt, next_uniform());
}

static void run(ir_graph *g, ir_tensor *args, int32_t n_args, ir_tensor *outs) {
  ir_buf err = {0};
  ir_interp_opts opts = {0};
  if (!ir_interp_run(g, args, n_args, outs, &opts, &err)) fail_msg("interpreter: %s", err.s);
}

/* A valid model to derive error cases from: `graph` and `outputs` vary. */
#define HEAD "model: m\ninputs:\n  x: f32[4, 2]\n  h0: f32[2]\nparams:\n  W: f32[2, 2]\n"

/* ---- the model zoo -------------------------------------------------------------- */

static void test_elman_matches_c_loop(void **state) {
  (void)state;
  ir_graph *g = load_model("models/elman.yaml");
  enum { T = 5, B = 2, I = 4, H = 8 };
  ir_tensor args[5], outs[2];
  tensor_random(&args[0], IR_F32, 3, (int64_t[]){T, B, I});
  tensor_random(&args[1], IR_F32, 2, (int64_t[]){B, H});
  tensor_random(&args[2], IR_F32, 2, (int64_t[]){H, I});
  tensor_random(&args[3], IR_F32, 2, (int64_t[]){H, H});
  tensor_random(&args[4], IR_F32, 1, (int64_t[]){H});
  run(g, args, 5, outs);
  const double *x = args[0].data, *W = args[2].data, *U = args[3].data, *b = args[4].data;
  double h[B][H];
  for (int i = 0; i < B * H; i++) h[i / H][i % H] = args[1].data[i];
  for (int t = 0; t < T; t++) {
    double hn[B][H];
    for (int bi = 0; bi < B; bi++)
      for (int j = 0; j < H; j++) {
        double s = b[j];
        for (int k = 0; k < I; k++) s += x[(t * B + bi) * I + k] * W[j * I + k];
        for (int k = 0; k < H; k++) s += h[bi][k] * U[j * H + k];
        hn[bi][j] = tanh(s);
      }
    for (int bi = 0; bi < B; bi++)
      for (int j = 0; j < H; j++) {
        h[bi][j] = hn[bi][j];
        assert_float_equal(outs[1].data[(t * B + bi) * H + j], hn[bi][j], 1e-5);
      }
  }
  for (int i = 0; i < B * H; i++) assert_float_equal(outs[0].data[i], h[i / H][i % H], 1e-5);
  for (int i = 0; i < 5; i++) ir_tensor_free(&args[i]);
  for (int i = 0; i < 2; i++) ir_tensor_free(&outs[i]);
  ir_graph_free(g);
}

static void test_running_sum_matches_c_loop(void **state) {
  (void)state;
  ir_graph *g = load_model("models/running_sum.yaml");
  enum { T = 6, B = 3, C = 4 };
  ir_tensor x, outs[2];
  tensor_random(&x, IR_F32, 3, (int64_t[]){T, B, C});
  run(g, &x, 1, outs);
  assert_string_equal(g->output_names[0], "total");
  assert_string_equal(g->output_names[1], "partial");
  for (int i = 0; i < B * C; i++) {
    double s = 0;
    for (int t = 0; t < T; t++) {
      s += x.data[t * B * C + i];
      assert_float_equal(outs[1].data[t * B * C + i], s, 1e-5);
    }
    assert_float_equal(outs[0].data[i], s, 1e-5);
  }
  ir_tensor_free(&x);
  ir_tensor_free(&outs[0]);
  ir_tensor_free(&outs[1]);
  ir_graph_free(g);
}

/* The reference: the same projections around the `attention` op. */
static const char reference_attention[] =
    "graph @ref(%x: f32[B, T, 16], param %Wq: f32[16, 16], param %Wk: f32[16, 16],\n"
    "           param %Wv: f32[16, 16], param %Wo: f32[16, 16]) -> (y: f32[B, T, 16]) {\n"
    "  %q: f32[B, T, 16] = matmul %x, %Wq {transpose_b = true}\n"
    "  %k: f32[B, T, 16] = matmul %x, %Wk {transpose_b = true}\n"
    "  %v: f32[B, T, 16] = matmul %x, %Wv {transpose_b = true}\n"
    "  %a: f32[B, T, 16] = attention %q, %k, %v {mask = causal, scale = 0.25}\n"
    "  %y: f32[B, T, 16] = matmul %a, %Wo {transpose_b = true}\n"
    "  yield %y\n"
    "}\n";

static void test_causal_attention_matches_attention_op(void **state) {
  (void)state;
  ir_graph *g = load_model("models/causal_attention.yaml");
  ir_diag d;
  ir_diag_init(&d);
  ir_graph *ref = ir_parse(reference_attention, strlen(reference_attention), "ref.sqir", &d);
  assert_non_null(ref);
  assert_true(ir_verify(ref, &d));
  enum { B = 2, T = 5 };
  ir_tensor args[5], got, want;
  tensor_random(&args[0], IR_F32, 3, (int64_t[]){B, T, 16});
  for (int i = 1; i < 5; i++) tensor_random(&args[i], IR_F32, 2, (int64_t[]){16, 16});
  run(g, args, 5, &got);
  run(ref, args, 5, &want);
  assert_int_equal(got.numel, want.numel);
  for (int64_t i = 0; i < got.numel; i++) assert_float_equal(got.data[i], want.data[i], 1e-5);
  for (int i = 0; i < 5; i++) ir_tensor_free(&args[i]);
  ir_tensor_free(&got);
  ir_tensor_free(&want);
  ir_graph_free(ref);
  ir_graph_free(g);
}

/* The YAML Elman model is the graph of models/elman.sqir. */
static void test_elman_equals_sqir(void **state) {
  (void)state;
  ir_graph *g = load_model("models/elman.yaml");
  size_t len;
  char *text = read_model("models/elman.sqir", &len);
  ir_diag d;
  ir_diag_init(&d);
  ir_graph *ref = ir_parse(text, len, "elman.sqir", &d);
  assert_non_null(ref);
  char *a = print_graph(g, false), *b = print_graph(ref, false);
  /* Body argument names differ (the .sqir renames invariants); compare
   * everything after renaming to the printer's canonical scheme. */
  assert_non_null(strstr(a, "scan %h0, %x, %W, %U, %b {length = T, carries = 1, xs = 1}"));
  assert_non_null(strstr(b, "scan %h0, %x, %W, %U, %b {length = T, carries = 1, xs = 1}"));
  assert_non_null(strstr(a, "-> (h: f32[B, 8], ys: f32[T, B, 8])"));
  assert_non_null(strstr(b, "-> (h: f32[B, 8], ys: f32[T, B, 8])"));
  free(a);
  free(b);
  free(text);
  ir_graph_free(ref);
  ir_graph_free(g);
}

/* ---- schema features ------------------------------------------------------------- */

static void test_names_locations_and_file(void **state) {
  (void)state;
  const char *text = HEAD "graph:\n  - y = tanh(add(x, h0))\noutputs: [y]\n";
  char *errors;
  ir_graph *g = load_n(text, strlen(text), &errors);
  assert_non_null(g);
  free(errors);
  char *ir = print_graph(g, true);
  /* Each op at its name's column; the nested call first, anonymous. */
  assert_non_null(strstr(ir, "%0: f32[4, 2] = add %x, %h0 loc(\"t.yaml\":8:14)"));
  assert_non_null(strstr(ir, "%y: f32[4, 2] = tanh %0 loc(\"t.yaml\":8:9)"));
  assert_non_null(strstr(ir, "param %W: f32[2, 2]"));
  /* Ops keep the file name in the graph's own arena. */
  ir_opid first = ir_b(g, g->body)->first;
  assert_string_equal(ir_o(g, first)->loc.file, "t.yaml");
  free(ir);
  ir_graph_free(g);
}

static void test_outputs_mapping_and_dotted_names(void **state) {
  (void)state;
  ir_graph *g = load_ok("model: m\ninputs:\n  enc.x: f32[3]\ngraph:\n  - enc.h = neg(enc.x)\n"
                        "outputs: {hidden: enc.h, again: enc.h}\n");
  assert_int_equal(g->n_outputs, 2);
  assert_string_equal(g->output_names[0], "hidden");
  assert_string_equal(g->output_names[1], "again");
  char *ir = print_graph(g, false);
  assert_non_null(strstr(ir, "%enc.h: f32[3] = neg %enc.x"));
  free(ir);
  ir_graph_free(g);
}

static void test_key_order_does_not_matter(void **state) {
  (void)state;
  ir_graph *a = load_ok(HEAD "graph:\n  - y = tanh(x)\noutputs: [y]\n");
  ir_graph *b = load_ok("outputs: [y]\ngraph:\n  - y = tanh(x)\nparams:\n  W: f32[2, 2]\n"
                        "inputs:\n  x: f32[4, 2]\n  h0: f32[2]\nmodel: m\n");
  char *ta = print_graph(a, false), *tb = print_graph(b, false);
  assert_string_equal(ta, tb);
  free(ta);
  free(tb);
  ir_graph_free(a);
  ir_graph_free(b);
}

static void test_literal_operands(void **state) {
  (void)state;
  expect_ir(HEAD "graph:\n  - y = mul(x, 0.5)\noutputs: [y]\n",
            "%0: f32[] = constant {value = 0.5}\n  %y: f32[4, 2] = mul %x, %0");
  expect_ir(HEAD "graph:\n  - y = sub(1, x)\noutputs: [y]\n", "%0: f32[] = constant {value = 1.0}");
  expect_ir("model: m\ninputs:\n  i: i64[3]\ngraph:\n  - j = add(i, -2)\noutputs: [j]\n",
            "%0: i64[] = constant {value = -2}");
  /* select takes the literal's dtype from its values, not the condition. */
  expect_ir("model: m\ninputs:\n  c: bool[3]\n  x: f32[3]\ngraph:\n  - y = select(c, -inf, x)\n"
            "outputs: [y]\n", "%0: f32[] = constant {value = -inf}");
  expect_ir(HEAD "graph:\n  - y = max(x, nan)\noutputs: [y]\n", "constant {value = nan}");
}

static void test_declared_ops(void **state) {
  (void)state;
  expect_ir(HEAD "graph:\n  - c = constant(0.5, dtype=f32, shape=[T, 2])\noutputs: [c]\n",
            "%c: f32[T, 2] = constant {value = 0.5}");
  expect_ir(HEAD "graph:\n  - c = constant([1, 2, 3], dtype=i32)\noutputs: [c]\n",
            "%c: i32[3] = constant {value = [1, 2, 3]}");
  expect_ir(HEAD "graph:\n  - c = constant(value=[true, false], dtype=bool)\noutputs: [c]\n",
            "%c: bool[2] = constant {value = [true, false]}");
  expect_ir(HEAD "graph:\n  - c = constant(-2.5, dtype=f64)\noutputs: [c]\n",
            "%c: f64[] = constant {value = -2.5}");
  expect_ir(HEAD "graph:\n  - i = iota(dtype=i64, shape=[T, 3], axis=1)\noutputs: [i]\n",
            "%i: i64[T, 3] = iota {axis = 1}");
  expect_ir(HEAD "graph:\n  - y = cast(x, dtype=i32)\noutputs: [y]\n", "%y: i32[4, 2] = cast %x");
  expect_ir(HEAD "graph:\n  - y = reshape(x, shape=[8])\noutputs: [y]\n",
            "%y: f32[8] = reshape %x");
  expect_ir(HEAD "graph:\n  - y = broadcast(h0, shape=[3, 4, 2])\noutputs: [y]\n",
            "%y: f32[3, 4, 2] = broadcast %h0");
}

static void test_attribute_kinds(void **state) {
  (void)state;
  /* INT with a negative axis counted from the end, and keepdims BOOL. */
  expect_ir(HEAD "graph:\n  - y = softmax(x, axis=-1)\noutputs: [y]\n", "softmax %x {axis = 1}");
  /* INTS, DIM, DIMS, FLOAT, ENUM. */
  expect_ir(HEAD "graph:\n  - y = transpose(x, perm=[1, 0])\noutputs: [y]\n",
            "%y: f32[2, 4] = transpose %x {perm = [1, 0]}");
  expect_ir("model: m\ninputs:\n  x: f32[T, 3]\ngraph:\n  - y = slice(x, axis=0, start=1, end=T-1)\n"
            "outputs: [y]\n", "%y: f32[T-2, 3] = slice %x {axis = 0, start = 1, end = T-1}");
  expect_ir("model: m\ninputs:\n  x: f32[T, 6]\ngraph:\n  - a, b = split(x, axis=1, sizes=[2, 4])\n"
            "outputs: [a, b]\n", "%a, %b: f32[T, 2], f32[T, 4] = split %x {axis = 1, sizes = [2, 4]}");
  expect_ir(HEAD "graph:\n  - y = pad(x, axis=0, low=1, high=0, value=-inf)\noutputs: [y]\n",
            "{axis = 0, low = 1, high = 0, value = -inf}");
  expect_ir(HEAD "graph:\n  - y = reduce_sum(x, axes=[0], keepdims=true)\noutputs: [y]\n",
            "%y: f32[1, 2] = reduce_sum %x {axes = [0], keepdims = true}");
  expect_ir("model: m\ninputs:\n  q: f32[B, T, 4]\ngraph:\n"
            "  - y = attention(q, q, q, mask=causal, scale=0.5)\noutputs: [y]\n",
            "attention %q, %q, %q {mask = causal, scale = 0.5}");
  expect_ir(HEAD "graph:\n  - y = elu(x, alpha=1e-3)\noutputs: [y]\n", "elu %x {alpha = 0.001}");
}

static void test_scan_options(void **state) {
  (void)state;
  /* index, axis, reverse: slices along axis 1, step index visible. */
  expect_ir("model: m\ninputs:\n  x: f32[2, T]\n  c0: i64[]\ngraph:\n  - scan:\n"
            "      out: [c, ys]\n      carry: {c: c0}\n      over: {xt: x}\n      index: t\n"
            "      axis: 1\n      reverse: true\n      body:\n        - cn = add(c, t)\n"
            "      next: {c: cn}\n      emit: [xt]\noutputs: [c, ys]\n",
            "scan %c0, %x {length = T, carries = 1, xs = 1, axis = 1, reverse = true} {\n"
            "  ^(%t: i64[], %c.1: i64[], %xt: f32[2]):\n    %cn: i64[] = add %c.1, %t\n"
            "    yield %cn, %xt\n  }");
  /* A generator: no `over`, explicit length, no carries. */
  expect_ir("model: m\ninputs:\n  v: f32[3]\ngraph:\n  - scan:\n      out: [ys]\n      length: 2*N\n"
            "      with: [v]\n      body: []\n      emit: [v]\noutputs: [ys]\n",
            "%ys: f32[2*N, 3] = scan %v {length = 2*N, carries = 0, xs = 0}");
}

static void test_nested_scan(void **state) {
  (void)state;
  ir_graph *g = load_ok(
      "model: m\ninputs:\n  x: f32[T, S, 3]\n  h0: f32[3]\ngraph:\n  - scan:\n      out: [h]\n"
      "      carry: {hc: h0}\n      over: {xt: x}\n      body:\n        - scan:\n"
      "            out: [hi]\n            carry: {a: hc}\n            over: {xs: xt}\n"
      "            body:\n              - an = add(a, xs)\n            next: {a: an}\n"
      "      next: {hc: hi}\noutputs: [h]\n");
  char *ir = print_graph(g, false);
  assert_non_null(strstr(ir, "%hi: f32[3] = scan %hc, %xt {length = S, carries = 1, xs = 1}"));
  free(ir);
  ir_graph_free(g);
}

static void test_quoted_and_block_op_lines(void **state) {
  (void)state;
  expect_ir(HEAD "graph:\n  - \"y = tanh(x)\"\n  - 'z = neg(y)'\n  - >-\n    w = add(z,\n"
            "    y)\noutputs: [w]\n", "%w: f32[4, 2] = add %z, %y");
}

/* ---- errors: the YAML layer --------------------------------------------------------- */

static void test_empty_and_comment_only(void **state) {
  (void)state;
  expect_error("", "1:1", "empty model file");
  expect_error("# only a comment\n", "1:1", "empty model file");
  expect_error("---\n...\n", "1:1", "empty model file");
}

static void test_bytes_the_reader_rejects(void **state) {
  (void)state;
  static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
  expect_error_n(png, sizeof png - 1, "1:1", "invalid UTF-8");
  expect_error_n("model: a\0b\n", 11, "1:9", "NUL byte");
  expect_error("model: \xc3(\n", "1:9", "invalid UTF-8");
  expect_error("model: a\x01\n", "1:9", "control character 0x01");
  /* Columns count bytes, as the caret does: 'é' is two. */
  expect_error("é: \xff\n", "1:5", "invalid UTF-8");
}

static void test_syntax_errors(void **state) {
  (void)state;
  expect_error("model: m\ninputs:\n\tx: f32[4]\n", "3:1", "tab character");
  expect_error("graph: [a, b\n", "1:8", "did not find expected ',' or ']'");
  expect_error("inputs: {x: 'f32[4]'", "1:9", "did not find expected ',' or '}'");
  expect_error("model: m\ninputs: {x: 'f32[4]'\n", "2:9", "flow mapping that starts here");
  /* In flow style, an unquoted type's '[' opens a sequence. */
  expect_error("model: m\ninputs: {x: f32[4]}\n", "2:16", "did not find expected ',' or '}'");
  expect_error("model: \"abc\n", "1:8", "quoted scalar");
  expect_error("a: b\n---\nc: d\n", "2:1", "one YAML document");
}

static void test_deep_nesting_fails_fast(void **state) {
  (void)state;
  size_t n = 100000;
  char *text = malloc(n + 1);
  memset(text, '[', n);
  text[n] = 0;
  clock_t start = clock();
  expect_error(text, "1:65", "nested deeper than 64 levels");
  for (size_t i = 0; i < n; i += 2) text[i] = '-', text[i + 1] = ' ';
  expect_error(text, "1:129", "nested deeper than 64 levels");
  for (size_t i = 0; i < n; i++) text[i] = "{a: "[i % 4];
  expect_error(text, "1:257", "nested deeper than 64 levels");
  double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
  assert_true(seconds < 1.0);
  /* 64 levels are fine as YAML (then the schema objects). */
  memset(text, '[', 64);
  memset(text + 64, ']', 64);
  text[128] = 0;
  expect_error(text, "1:1", "a model file must be a mapping");
  free(text);
}

static void test_anchors_aliases_tags_merge_keys(void **state) {
  (void)state;
  ir_buf bomb = {0};
  ir_buf_puts(&bomb, "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
  for (char c = 'b'; c <= 'i'; c++)
    ir_buf_printf(&bomb, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c - 1,
                  c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
  expect_error(bomb.s, "1:4", "anchors (&a) are not supported");
  ir_buf_free(&bomb);
  expect_error("model: *m\n", "1:8", "aliases (*m) are not supported");
  expect_error("model: !foo m\n", "1:8", "explicit tags (!foo)");
  expect_error("inputs: !!map {}\n", "1:9", "explicit tags");
  expect_error("params:\n  <<: {W: f32[2]}\n", "2:3", "merge keys (<<) are not supported");
}

static void test_long_scalar_and_node_limits(void **state) {
  (void)state;
  size_t n = 2u << 20;
  char *text = malloc(n + 16);
  memcpy(text, "model: ", 7);
  memset(text + 7, 'a', n);
  strcpy(text + 7 + n, "\n");
  expect_error(text, "1:8", "scalar of 2097152 bytes is longer than the limit");
  free(text);
  /* A file above the size bound is refused before parsing. */
  static char big[1];
  char *errors;
  ir_diag d;
  ir_diag_init(&d);
  ir_buf out = {0};
  d.capture = &out;
  assert_null(fe_load_yaml(big, FE_YAML_MAX_BYTES + 1, "t.yaml", &d));
  assert_non_null(strstr(out.s, "t.yaml: error: file of 16777217 bytes is larger than the limit"));
  ir_buf_free(&out);
  (void)errors;
}

static void test_duplicate_keys(void **state) {
  (void)state;
  expect_error("model: m\nmodel: n\n", "2:1", "duplicate key 'model'; first defined at 1:1");
  expect_error("model: m\ninputs:\n  x: f32[2]\n  y: f32[2]\n  x: f32[3]\n", "5:3",
               "duplicate key 'x'; first defined at 3:3");
  expect_error(HEAD "graph:\n  - scan:\n      out: []\n      body: []\n      out: []\n", "11:7",
               "duplicate key 'out'; first defined at 9:7");
  expect_error(HEAD "graph:\n  - scan: {out: [a], carry: {hc: h0, hc: x}}\n", "8:38",
               "duplicate key 'hc'; first defined at 8:30");
}

/* ---- errors: the schema ------------------------------------------------------------ */

static void test_unknown_keys(void **state) {
  (void)state;
  expect_error("model: m\nmodle: n\n", "2:1",
               "unknown key 'modle' in the model; allowed keys: model, inputs, params, graph, outputs");
  expect_error(HEAD "graph:\n  - scan:\n      out: []\n      carries: {}\n", "10:7",
               "unknown key 'carries' in scan; allowed keys: out, carry, over, with, index, axis, "
               "reverse, length, body, next, emit");
  expect_error(HEAD "graph:\n  - lsmt: {}\n", "8:5", "unknown node kind 'lsmt'; known kinds: scan, rnn, lstm, gru, "
               "linear, embedding, layernorm, rmsnorm, dropout, multihead_attention, transformer_encoder_layer, "
               "transformer_decoder_layer, pool, conv1d");
  expect_error(HEAD "graph:\n  - y = f(x, a: 1)\n", "8:5", "unknown node kind 'y = f(x, a'");
}

static void test_wrong_node_types(void **state) {
  (void)state;
  expect_error("- model\n", "1:1", "a model file must be a mapping");
  expect_error("model: [m]\n", "1:8", "'model' must be the model's name, a C identifier, got a sequence");
  expect_error("model: 1m\n", "1:8", "'model' must be a C identifier");
  expect_error("model: m\ninputs: [x]\n", "2:9", "'inputs' must be a mapping of name: type");
  expect_error("model: m\ninputs:\n", "2:8", "'inputs' must be a mapping of name: type (such as "
               "x: f32[T, B, 4]), got an empty value");
  expect_error("model: m\ninputs: {x: [f32]}\n", "2:13", "'inputs' must be a type such as "
               "f32[T, B, 4], got a sequence");
  expect_error(HEAD "graph: {y: x}\n", "7:8", "'graph' must be a sequence of nodes");
  expect_error(HEAD "graph:\n  - [y]\n", "8:5", "must be an op line such as 'y = tanh(x)' or a "
               "block node such as 'scan:', got a sequence");
  expect_error(HEAD "graph: []\noutputs: x\n", "8:10", "'outputs' must be a sequence of value "
               "names or a mapping");
  expect_error(HEAD "graph:\n  - scan: [a]\n", "8:11", "'scan' must be a mapping of its fields");
  expect_error(HEAD "graph:\n  - scan: {out: [a], carry: [h0], body: []}\n", "8:29",
               "scan field 'carry' must be a mapping of body name: initial value, got a sequence");
  expect_error(HEAD "graph:\n  - scan: {out: [a], with: {W: W}, body: []}\n", "8:28",
               "scan field 'with' must be a sequence of value names, got a mapping");
  expect_error(HEAD "graph:\n  - scan: {a: 1, b: 2}\n  - x: 1\n    y: 2\n", "8:12",
               "unknown key 'a' in scan");
  expect_error(HEAD "graph:\n  - x: 1\n    y: 2\n", "8:5", "a block node is a mapping with one key");
  expect_error(HEAD "graph: []\noutputs: []\n", "8:10", "'outputs' must list at least one value");
  expect_error(HEAD "graph: []\noutputs: [x, x]\n", "8:14", "output 'x' is listed twice; first at 8:11");
  expect_error("model: m\ninputs:\n  a.b: f32[2]\ngraph: []\noutputs: [a.b]\n", "5:11",
               "output name 'a.b' is not a C identifier; use the mapping form");
}

static void test_missing_required_keys(void **state) {
  (void)state;
  expect_error("inputs: {}\n", "1:1", "the model file needs the key 'model'");
  expect_error("model: m\ninputs: {}\noutputs: [x]\n", "1:1", "needs the key 'graph'");
  expect_error("model: m\ninputs: {}\ngraph: []\n", "1:1", "needs the key 'outputs'");
  expect_error(HEAD "graph:\n  - scan: {body: []}\n", "8:11", "scan needs the key 'out'");
  expect_error(HEAD "graph:\n  - scan: {out: []}\n", "8:11", "scan needs the key 'body'");
}

static void test_bad_types_and_dims(void **state) {
  (void)state;
  expect_error("model: m\ninputs:\n  x: f31[4]\n", "3:6", "unknown dtype 'f31[4]'");
  expect_error("model: m\ninputs:\n  x: f32[4}\n", "3:11", "unexpected '}' in a dim expression");
  expect_error("model: m\ninputs:\n  x: f32[-1]\n", "3:10", "dim -1 is negative");
  expect_error("model: m\ninputs:\n  x: f32[T+]\n", "3:12", "bad dim expression");
  expect_error("model: m\ninputs:\n  x: f32\n", "3:9", "expected '[' and the dims after the dtype");
  expect_error("model: m\ninputs:\n  x: f32[4] x\n", "3:13", "unexpected text after the type");
  expect_error("model: m\ninputs:\n  1x: f32[4]\n", "3:3", "'1x' is not a value name");
  expect_error("model: m\ninputs:\n  nan: f32[4]\n", "3:3", "'nan' is not a value name");
}

static void test_undefined_and_redefined_names(void **state) {
  (void)state;
  expect_error(HEAD "graph:\n  - y = tanh(z)\n", "8:14", "use of undefined name 'z'");
  expect_error(HEAD "graph:\n  - x = tanh(h0)\n", "8:5",
               "redefinition of 'x' in the graph; first defined at 3:3");
  expect_error("model: m\ninputs:\n  x: f32[2]\nparams:\n  x: f32[2]\n", "5:3",
               "redefinition of 'x' in the graph; first defined at 3:3");
  expect_error(HEAD "graph:\n  - a, a = split(x, axis=0, sizes=[2, 2])\n", "8:8",
               "redefinition of 'a'");
  expect_error(HEAD "graph: []\noutputs: [y]\n", "8:11", "use of undefined name 'y'");
}

#define SCAN_HEAD HEAD "graph:\n  - scan:\n"

static void test_scan_errors(void **state) {
  (void)state;
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      body: []\n", "8:5", "scan has carries but no 'next'");
  expect_error(SCAN_HEAD "      out: [h, g]\n      carry: {hc: h0, gc: h0}\n      over: {xt: x}\n"
               "      body: []\n      next: {hc: hc}\n", "10:23", "carry 'gc' has no next value");
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      body: []\n      next: {hc: hc, hx: xt}\n", "13:22",
               "'hx' in 'next' is not a carry of this scan; its carries: hc");
  expect_error("model: m\ninputs:\n  x: f32[4, 2]\n  y: f32[5, 2]\ngraph:\n  - scan:\n"
               "      out: [s]\n      over: {a: x, b: y}\n      body: []\n      emit: [a]\n",
               "8:23", "scan over 'y': f32[5, 2] has 5 steps along axis 0, but 'x' has 4");
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      body:\n        - hn = matmul(xt, W)\n      next: {hc: hn}\n", "13:27",
               "'W' is defined outside the scan body, which sees only its carries, 'over' slices, "
               "index and 'with' values; add 'W' to the scan's 'with' list");
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      body:\n        - hn = reduce_sum(xt, axes=[0])\n      next: {hc: hn}\n",
               "14:18", "next value 'hn' of carry 'hc' is f32[], but the carry is f32[2]");
}

static void test_scan_shape_errors(void **state) {
  (void)state;
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      length: 4\n      body: []\n      next: {hc: hc}\n", "12:15",
               "'length' is only allowed when 'over' is empty");
  expect_error(SCAN_HEAD "      out: [h]\n      carry: {hc: h0}\n      body: []\n"
               "      next: {hc: hc}\n", "8:5", "scan without 'over' sequences needs 'length'");
  expect_error(SCAN_HEAD "      out: [h, ys]\n      carry: {hc: h0}\n      over: {xt: x}\n"
               "      body: []\n      next: {hc: hc}\n", "9:12",
               "'out' names 2 results, but the scan has 1 carry and 0 emitted values");
  expect_error(SCAN_HEAD "      out: [h]\n      over: {xt: h0}\n      axis: 1\n      body: []\n"
               "      emit: [xt]\n", "10:18", "scan over 'h0': f32[2] has no axis 1");
  expect_error(SCAN_HEAD "      out: [h]\n      over: {xt: x}\n      axis: -1\n      body: []\n", "11:13",
               "scan field 'axis' must be between 0 and 63");
  expect_error(SCAN_HEAD "      out: [h]\n      over: {xt: x}\n      reverse: yes\n      body: []\n", "11:16",
               "scan field 'reverse' must be true or false, got 'yes'");
  expect_error(SCAN_HEAD "      out: [h]\n      over: {xt: x}\n      index: xt\n      with: [h0]\n"
               "      body: []\n      emit: [xt]\n", "10:14",
               "redefinition of 'xt' in the scan body; first defined at 11:14");
}

/* ---- errors: op lines ------------------------------------------------------------------ */

static void test_opline_syntax_errors(void **state) {
  (void)state;
  expect_error(HEAD "graph:\n  - y = tanh(add(x, x)\n", "8:23",
               "expected ',' or ')' after the argument of tanh, got the end of the line");
  expect_error(HEAD "graph:\n  - y = tanh(x))\n", "8:16", "unexpected ')' after the call");
  expect_error(HEAD "graph:\n  - tanh(x)\n", "8:9", "expected '=' after the result name");
  expect_error(HEAD "graph:\n  - y = (x)\n", "8:9", "expected an op name such as tanh");
  expect_error(HEAD "graph:\n  - y = tanh x\n", "8:14", "expected '(' after 'tanh'");
  expect_error(HEAD "graph:\n  - y = tanhh(x)\n", "8:9", "unknown op 'tanhh'; did you mean 'tanh'?");
  expect_error(HEAD "graph:\n  - y = frobnicate(x)\n", "8:9", "unknown op 'frobnicate' (`seqc help ops`");
  expect_error(HEAD "graph:\n  - y = matmul(x, W, transpose_b=yes)\n", "8:34",
               "'transpose_b' must be true or false, got 'yes'");
  expect_error(HEAD "graph:\n  - y = matmul(x, W, transpose=true)\n", "8:22",
               "matmul has no attribute 'transpose'; its attributes: transpose_a, transpose_b");
  expect_error(HEAD "graph:\n  - y = tanh(x, axis=0)\n", "8:17", "tanh takes no attributes, got 'axis'");
  expect_error(HEAD "graph:\n  - y = add(x)\n", "8:9", "add: expected 2 operands, got 1");
  expect_error(HEAD "graph:\n  - y = compare(x, x, predicate=bigger)\n", "8:33",
               "'predicate' must be one of eq, ne, lt, le, gt, ge, got 'bigger'");
  expect_error(HEAD "graph:\n  - y = softmax(x, axis=1.5)\n", "8:25", "expected an integer, got '1.5'");
  expect_error(HEAD "graph:\n  - y = softmax(x, axis=)\n", "8:25", "expected a value after 'axis='");
  expect_error(HEAD "graph:\n  - y = softmax(axis=1, x)\n", "8:25", "positional argument after keyword");
  expect_error(HEAD "graph:\n  - y = softmax(x, axis=1, axis=0)\n", "8:28", "'axis' is given twice");
  expect_error(HEAD "graph:\n  - y = slice(x, axis=0, start=0, end=T-)\n", "8:41", "bad dim expression");
  expect_error(HEAD "graph:\n  - y = elu(x, alpha=1e999)\n", "8:22", "beyond the double range");
  expect_error(HEAD "graph:\n  - y = tanh(x, ?)\n", "8:17", "expected an argument");
}

static void test_opline_semantic_errors(void **state) {
  (void)state;
  expect_error(HEAD "graph:\n  - y = matmul(h0, h0)\n", "8:9", "matmul: operands must have rank >= 2");
  expect_error(HEAD "graph:\n  - y = add(1, 2)\n", "8:13", "cannot tell the dtype of literal '1'");
  expect_error(HEAD "graph:\n  - a, b = tanh(x)\n", "8:5", "tanh gives 1 result, but 2 names are given");
  expect_error(HEAD "graph:\n  - y = tanh(split(x, axis=0, sizes=[2, 2]))\n", "8:14",
               "split gives 2 results; a nested call must give one");
  expect_error(HEAD "graph:\n  - y = yield(x)\n", "8:9", "yield cannot be called");
  expect_error(HEAD "graph:\n  - y = scan(x)\n", "8:9", "scan has a body and is written as a block node");
  expect_error(HEAD "graph:\n  - y = constant(1.0)\n", "8:9", "constant needs dtype=...");
  expect_error(HEAD "graph:\n  - y = constant(x, dtype=f32)\n", "8:18", "constant takes a number or a list");
  expect_error(HEAD "graph:\n  - y = constant([[1]], dtype=f32)\n", "8:19", "nested lists are not supported");
  expect_error(HEAD "graph:\n  - y = constant([1.5], dtype=i32)\n", "8:19",
               "expected an integer for a i32 value, got '1.5'");
  expect_error(HEAD "graph:\n  - y = constant([1, 2], dtype=f32, shape=[3])\n", "8:9",
               "constant: 2 values for f32[3]");
  expect_error(HEAD "graph:\n  - y = cast(x)\n", "8:9", "cast needs dtype=...");
  expect_error(HEAD "graph:\n  - y = reshape(x, shape=[3])\n", "8:9", "reshape: element counts differ");
  expect_error(HEAD "graph:\n  - y = reshape(x, h0, shape=[8])\n", "8:9", "reshape takes 1 operand, got 2");
  expect_error(HEAD "graph:\n  - y = iota(dtype=i64, shape=[3], axis=0, dtype=i32)\n", "8:44",
               "'dtype' is given twice");
  expect_error(HEAD "graph:\n  - y = add(x, [1, 2])\n", "8:16", "a list is only allowed as a constant's value");
  expect_error("model: m\ninputs:\n  i: i64[2]\ngraph:\n  - y = add(i, 0.5)\noutputs: [y]\n", "5:16",
               "literal '0.5' is not an integer, but the operands are i64");
  expect_error(HEAD "graph:\n  - y = add(x, true)\n", "8:16", "literal operands cannot be bool");
  expect_error(HEAD "graph:\n  - y = add(x, h0)\n  - y = add(x, h0)\n", "9:5",
               "redefinition of 'y' in the graph; first defined at 8:5");
  /* Quoted op lines keep exact columns (one past the quote). */
  expect_error(HEAD "graph:\n  - \"y = tanhh(x)\"\n", "8:10", "unknown op 'tanhh'");
  /* A multi-line scalar reports at its start. */
  expect_error(HEAD "graph:\n  - >-\n    y = tanhh(\n    x)\n", "8:5", "unknown op 'tanhh'");
}

static void test_calls_nested_too_deep(void **state) {
  (void)state;
  ir_buf text = {0};
  ir_buf_puts(&text, HEAD "graph:\n  - y = ");
  for (int i = 0; i < 70; i++) ir_buf_puts(&text, "neg(");
  ir_buf_puts(&text, "x");
  for (int i = 0; i < 70; i++) ir_buf_puts(&text, ")");
  ir_buf_puts(&text, "\noutputs: [y]\n");
  expect_error(text.s, "8:265", "calls nested deeper than 64 levels");
  ir_buf_free(&text);
}

/* ---- hostile inputs ------------------------------------------------------------------- */

/* Every prefix and many byte mutations of a valid model either load or fail
 * with a diagnostic; none crashes, leaks or hangs. */
static void test_truncations_and_mutations(void **state) {
  (void)state;
  size_t len;
  char *text = read_model("models/elman.yaml", &len);
  ir_diag d;
  ir_diag_init(&d);
  ir_buf sink = {0};
  d.capture = &sink;
  for (size_t n = 0; n < len; n++) {
    ir_graph *g = fe_load_yaml(text, n, "t.yaml", &d);
    ir_graph_free(g);
    sink.len = 0;
  }
  static const char bytes[] = "[]{}:,-#&*!|>'\"%@` \t\n\r\0\xff\xc3()=0123456789abxyzTB.";
  uint64_t seed = 7;
  char *copy = malloc(len);
  for (int round = 0; round < 3000; round++) {
    memcpy(copy, text, len);
    for (int k = 0; k < 1 + round % 3; k++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = (size_t)(seed >> 33) % len;
      copy[at] = bytes[(seed >> 13) % (sizeof bytes - 1)];
    }
    ir_graph *g = fe_load_yaml(copy, len, "t.yaml", &d);
    if (g) assert_true(ir_verify(g, &d));
    ir_graph_free(g);
    sink.len = 0;
  }
  free(copy);
  ir_buf_free(&sink);
  free(text);
}

/* A caller that registered the source keeps its registration. */
static void test_caller_registered_source(void **state) {
  (void)state;
  const char *text = HEAD "graph:\n  - y = tanhh(x)\n";
  ir_source src = {"t.yaml", text, strlen(text)};
  ir_diag d;
  ir_diag_init(&d);
  ir_buf out = {0};
  d.capture = &out;
  ir_diag_add_source(&d, &src);
  assert_null(fe_load_yaml(text, strlen(text), "t.yaml", &d));
  assert_int_equal(d.n_sources, 1);
  assert_non_null(strstr(out.s, "  - y = tanhh(x)\n        ^\n"));
  ir_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_elman_matches_c_loop),
      cmocka_unit_test(test_running_sum_matches_c_loop),
      cmocka_unit_test(test_causal_attention_matches_attention_op),
      cmocka_unit_test(test_elman_equals_sqir),
      cmocka_unit_test(test_names_locations_and_file),
      cmocka_unit_test(test_outputs_mapping_and_dotted_names),
      cmocka_unit_test(test_key_order_does_not_matter),
      cmocka_unit_test(test_literal_operands),
      cmocka_unit_test(test_declared_ops),
      cmocka_unit_test(test_attribute_kinds),
      cmocka_unit_test(test_scan_options),
      cmocka_unit_test(test_nested_scan),
      cmocka_unit_test(test_quoted_and_block_op_lines),
      cmocka_unit_test(test_empty_and_comment_only),
      cmocka_unit_test(test_bytes_the_reader_rejects),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_deep_nesting_fails_fast),
      cmocka_unit_test(test_anchors_aliases_tags_merge_keys),
      cmocka_unit_test(test_long_scalar_and_node_limits),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_wrong_node_types),
      cmocka_unit_test(test_missing_required_keys),
      cmocka_unit_test(test_bad_types_and_dims),
      cmocka_unit_test(test_undefined_and_redefined_names),
      cmocka_unit_test(test_scan_errors),
      cmocka_unit_test(test_scan_shape_errors),
      cmocka_unit_test(test_opline_syntax_errors),
      cmocka_unit_test(test_opline_semantic_errors),
      cmocka_unit_test(test_calls_nested_too_deep),
      cmocka_unit_test(test_truncations_and_mutations),
      cmocka_unit_test(test_caller_registered_source),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
