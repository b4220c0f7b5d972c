/*
 * cmd_check.c - `seqc check`: compare compiled code with the reference
 * interpreter on the same inputs.
 *
 * The model is run twice: by the interpreter on the graph as loaded (the
 * oracle), and as native code, after the pass pipeline and codegen (the
 * JIT), on the same arguments (inputs.c: files, --dim, fixed-seed random
 * values). Each output is then held to a tolerance, per element as numpy's
 * isclose does:
 *
 *     |compiled - oracle| <= atol + rtol * |oracle|
 *
 * with NaN only matching NaN and an infinity only the same infinity. The
 * defaults depend on the output's dtype (default_tolerance; docs/cli.md has
 * the table); --atol and --rtol replace them for every output.
 *
 * --bisect also runs the interpreter after each pass of the pipeline, on
 * the graph as transformed so far, and names the first pass after which the
 * results disagree with the oracle beyond the same tolerances, so a wrong
 * result is pinned on a pass or, when every pass agrees, on codegen.
 *
 * The transformed graph is a second parse of the model's text (the text
 * form round-trips exactly), so the oracle's graph is never touched.
 * Printed errors are deterministic for a given machine and build.
 */
#include "cli.h"
#include "../codegen/cg.h"
#include "../ir/interp.h"
#include "../passes/pass.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void help_check(FILE *f) {
  fputs("usage: seqc check MODEL [options]\n"
        "\n"
        "Run MODEL with the reference interpreter and as compiled code on the same\n"
        "inputs, and compare every output within a tolerance.\n"
        "\n"
        "options:\n"
        "  --passes=A,B,...         run these passes before codegen\n"
        "  -O0 | -O1 | -O2 | -O3    the standard pipeline and LLVM level (default -O2)\n"
        "  --input NAME=FILE        raw little-endian data for input or parameter NAME\n"
        "  --dim SYM=N              bind the dim symbol SYM (e.g. --dim T=512)\n"
        "  --weights FILE           every parameter from a safetensors file (names, dtypes\n"
        "                           and shapes checked; F16/BF16 widen to f32)\n"
        "  --random-weights SEED    fill parameters not given by --input with values\n"
        "                           uniform in [-1, 1) (integers in {0, 1})\n"
        "  --random-inputs SEED     the same for inputs\n"
        "  --bisect                 also run the interpreter after each pass and name the\n"
        "                           first pass after which results disagree\n"
        "  --atol X, --rtol Y       tolerance |compiled - oracle| <= X + Y * |oracle| for\n"
        "                           every output (default: by dtype, see below)\n"
        "  -h, --help               show this help\n"
        "\n"
        "default tolerances (atol, rtol): f32 1e-5, 1e-4; f64 1e-12, 1e-10;\n"
        "f16 1e-3, 1e-2; bf16 1e-2, 5e-2; integers and bool exact. NaN must match\n"
        "NaN and inf the same inf. Exit status 0 when every output is within its\n"
        "tolerance (and, with --bisect, every pass agrees), 1 otherwise.\n",
        f);
}

/* ---- options ------------------------------------------------------------------ */

typedef struct tolerance {
  double atol, rtol;
} tolerance;

typedef struct check_args {
  const char *model, *passes;
  int level; /* -1: not given */
  bool bisect, have_atol, have_rtol;
  double atol, rtol;
  int memplan_check; /* cg_memplan_check: --memplan-check, a test mode (docs/cli.md) */
  cli_inputs inputs;
} check_args;

static bool parse_tolerance(const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0) || isinf(v)) {
    cli_error("%s expects a finite non-negative number, got '%s'", opt, s);
    return false;
  }
  *out = v;
  return true;
}

/* Returns 0 to go on, 1 on a usage error, 2 after --help. */
static int parse_check_args(int argc, char **argv, check_args *a) {
  cli_inputs_init(&a->inputs, argc);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_check(stdout);
      return 2;
    } else if ((m = cli_inputs_match(&a->inputs, argc, argv, &i)) != 0) {
      if (m < 0) return 1;
    } else if ((m = cli_match_value(argc, argv, &i, "--passes", &v)) != 0) {
      if (m < 0) return 1;
      a->passes = v;
    } else if ((m = cli_match_value(argc, argv, &i, "--atol", &v)) != 0) {
      if (m < 0 || !parse_tolerance("--atol", v, &a->atol)) return 1;
      a->have_atol = true;
    } else if ((m = cli_match_value(argc, argv, &i, "--rtol", &v)) != 0) {
      if (m < 0 || !parse_tolerance("--rtol", v, &a->rtol)) return 1;
      a->have_rtol = true;
    } else if (!strcmp(arg, "--bisect")) {
      a->bisect = true;
    } else if ((m = cli_match_memplan_check(arg, &a->memplan_check)) != 0) {
      if (m < 0) return 1;
    } else if (!cli_common_arg("check", arg, &a->model, &a->level)) {
      return 1;
    }
  }
  if (!cli_require_model("check", a->model)) return 1;
  if (a->passes && a->level >= 0) {
    cli_error("give either --passes or -O<level>, not both");
    return 1;
  }
  return 0;
}

/* ---- comparing outputs ---------------------------------------------------------- */

/* Documented in docs/cli.md and in help_check: keep the three in step. */
static tolerance default_tolerance(ir_dtype dt) {
  switch (dt) {
  case IR_F32: return (tolerance){1e-5, 1e-4};
  case IR_F64: return (tolerance){1e-12, 1e-10};
  case IR_F16: return (tolerance){1e-3, 1e-2};
  case IR_BF16: return (tolerance){1e-2, 5e-2};
  default: return (tolerance){0, 0}; /* integers and bool: exact */
  }
}

static tolerance tolerance_for(const check_args *a, ir_dtype dt) {
  tolerance t = default_tolerance(dt);
  if (a->have_atol) t.atol = a->atol;
  if (a->have_rtol) t.rtol = a->rtol;
  return t;
}

typedef struct comparison {
  bool same_shape;
  double max_abs, max_rel; /* inf where NaN or inf do not match */
  int64_t n_bad;           /* elements over the tolerance */
  int64_t first_bad;       /* flat index of the first, -1 if none */
} comparison;

/* Absolute and relative error of one element; a NaN or an infinity that
 * the other side does not have is an infinite error. */
static void element_error(double want, double got, double *abs_err, double *rel_err) {
  bool specials = isnan(want) || isnan(got) || isinf(want) || isinf(got);
  if (specials) {
    bool same = (isnan(want) && isnan(got)) || want == got;
    *abs_err = *rel_err = same ? 0 : INFINITY;
    return;
  }
  *abs_err = fabs(got - want);
  *rel_err = want != 0 ? *abs_err / fabs(want) : *abs_err == 0 ? 0 : INFINITY;
}

static comparison compare_tensors(const ir_tensor *want, const ir_tensor *got, tolerance tol) {
  comparison c = {true, 0, 0, 0, -1};
  c.same_shape = want->rank == got->rank && want->numel == got->numel;
  for (int32_t i = 0; c.same_shape && i < want->rank; i++)
    c.same_shape = want->shape[i] == got->shape[i];
  if (!c.same_shape) return c;
  for (int64_t e = 0; e < want->numel; e++) {
    double abs_err, rel_err;
    element_error(want->data[e], got->data[e], &abs_err, &rel_err);
    if (abs_err > c.max_abs) c.max_abs = abs_err;
    if (rel_err > c.max_rel) c.max_rel = rel_err;
    if (abs_err > tol.atol + tol.rtol * fabs(want->data[e])) {
      if (c.n_bad++ == 0) c.first_bad = e;
    }
  }
  return c;
}

static bool comparison_ok(const comparison *c) { return c->same_shape && c->n_bad == 0; }

static void put_shape(ir_buf *b, const ir_tensor *t) {
  ir_buf_putc(b, '[');
  for (int32_t i = 0; i < t->rank; i++) ir_buf_printf(b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  ir_buf_putc(b, ']');
}

static void put_element(ir_buf *b, const ir_tensor *t, int64_t e) {
  if (ir_dtype_is_float(t->dtype))
    ir_buf_put_real(b, t->data[e], t->dtype != IR_F64);
  else
    ir_buf_printf(b, "%lld", (long long)t->data[e]);
}

/* The multi-index of flat index e, "[i, j, k]". */
static void put_index(ir_buf *b, const ir_tensor *t, int64_t e) {
  int64_t idx[64];
  int32_t rank = t->rank < 64 ? t->rank : 64;
  for (int32_t i = rank - 1; i >= 0; i--) {
    idx[i] = t->shape[i] ? e % t->shape[i] : 0;
    e = t->shape[i] ? e / t->shape[i] : 0;
  }
  ir_buf_putc(b, '[');
  for (int32_t i = 0; i < rank; i++) ir_buf_printf(b, "%s%lld", i ? ", " : "", (long long)idx[i]);
  ir_buf_putc(b, ']');
}

/* "NAME: f32[2, 8]  max abs err 1.2e-07  max rel err 3e-06  (atol 1e-05, rtol 0.0001)  ok",
 * and for a failure how many elements are over and the first of them. */
static void report_output(ir_buf *b, const char *name, const ir_tensor *want,
                          const ir_tensor *got, tolerance tol, const comparison *c,
                          const char *what) {
  ir_buf_printf(b, "  %s: %s", name, ir_dtype_name(want->dtype));
  put_shape(b, want);
  if (!c->same_shape) {
    ir_buf_printf(b, "  FAIL (the %s result has shape ", what);
    put_shape(b, got);
    ir_buf_puts(b, ")\n");
    return;
  }
  ir_buf_printf(b, "  max abs err %.3g  max rel err %.3g  (atol %g, rtol %g)  ", c->max_abs,
                c->max_rel, tol.atol, tol.rtol);
  if (comparison_ok(c)) {
    ir_buf_puts(b, "ok\n");
    return;
  }
  ir_buf_printf(b, "FAIL\n    %lld of %lld elements over; first at ", (long long)c->n_bad,
                (long long)want->numel);
  put_index(b, want, c->first_bad);
  ir_buf_puts(b, ": interpreter ");
  put_element(b, want, c->first_bad);
  ir_buf_printf(b, ", %s ", what);
  put_element(b, got, c->first_bad);
  ir_buf_putc(b, '\n');
}

/* Compares every output and appends the report to `b`; true if all agree. */
static bool compare_outputs(const ir_graph *g, const check_args *a, const ir_tensor *want,
                            const ir_tensor *got, const char *what, ir_buf *b) {
  bool all_ok = true;
  for (int32_t i = 0; i < g->n_outputs; i++) {
    tolerance tol = tolerance_for(a, want[i].dtype);
    comparison c = compare_tensors(&want[i], &got[i], tol);
    report_output(b, g->output_names[i], &want[i], &got[i], tol, &c, what);
    all_ok = all_ok && comparison_ok(&c);
  }
  return all_ok;
}

/* ---- running both ways -------------------------------------------------------- */

typedef struct check_run {
  check_args *a;
  cli_args args;
  ir_interp_opts opts;
  ir_tensor *oracle; /* the interpreter's outputs on the loaded graph */
  pass_ctx pc;
  ir_diag *diag;
} check_run;

static void free_outputs(ir_tensor *t, int32_t n) {
  for (int32_t i = 0; t && i < n; i++) ir_tensor_free(&t[i]);
  free(t);
}

/* The interpreter's outputs for g on the run's arguments, or NULL after
 * putting the error in err. */
static ir_tensor *interpret(check_run *r, ir_graph *g, ir_buf *err) {
  ir_tensor *outs = ir_xcalloc((size_t)g->n_outputs + 1, sizeof(ir_tensor));
  if (ir_interp_run(g, r->args.t, r->args.n, outs, &r->opts, err)) return outs;
  free_outputs(outs, g->n_outputs);
  return NULL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The pipeline's pass names (blanks around each dropped), or false after
 * reporting a bad list; the pass manager reports it, as it would for the
 * whole pipeline, and rejects the list before running anything. */
static bool split_pipeline(check_run *r, ir_graph *g, const char *pipeline, char ***names,
                           int32_t *n) {
  *names = NULL;
  *n = 0;
  const char *p = pipeline;
  while (is_blank(*p)) p++;
  if (!*p) return true;
  size_t cap = 1;
  for (p = pipeline; *p; p++) cap += *p == ',';
  *names = ir_xcalloc(cap, sizeof(char *));
  bool ok = true;
  for (const char *start = pipeline;; start++) {
    const char *end = strchr(start, ',');
    if (!end) end = start + strlen(start);
    const char *b = start, *e = end;
    while (b < e && is_blank(*b)) b++;
    while (e > b && is_blank(e[-1])) e--;
    ok = ok && b < e && pass_lookup(b, (size_t)(e - b)) != NULL;
    (*names)[(*n)++] = strndup(b, (size_t)(e - b));
    if (!*end) break;
    start = end;
  }
  if (!ok) pass_run_pipeline(g, pipeline, &r->pc);
  return ok;
}

static void free_names(char **names, int32_t n) {
  for (int32_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* Runs the pipeline on g one pass at a time, interpreting after each; the
 * first pass whose results disagree with the oracle is reported. Sets
 * *agree; false only when a pass fails. */
static bool bisect_pipeline(check_run *r, ir_graph *g, const char *pipeline, bool *agree) {
  char **names;
  int32_t n;
  *agree = true;
  if (!split_pipeline(r, g, pipeline, &names, &n)) {
    free_names(names, n);
    return false;
  }
  bool ok = true;
  for (int32_t i = 0; i < n && ok; i++) {
    ok = pass_run_pipeline(g, names[i], &r->pc);
    if (!ok || !*agree) continue; /* after a disagreement, only finish the pipeline */
    ir_buf err = {0}, report = {0}, label = {0};
    ir_buf_printf(&label, "after '%s'", names[i]);
    ir_tensor *outs = interpret(r, g, &err);
    if (!outs) {
      printf("bisect: first disagreement after pass '%s': the interpreter fails: %s\n", names[i],
             err.s);
      *agree = false;
    } else if (!compare_outputs(g, r->a, r->oracle, outs, label.s, &report)) {
      printf("bisect: first disagreement after pass '%s':\n%s", names[i], report.s);
      *agree = false;
    }
    free_outputs(outs, g->n_outputs);
    ir_buf_free(&err);
    ir_buf_free(&report);
    ir_buf_free(&label);
  }
  if (ok && *agree)
    printf("bisect: all %d passes agree with the interpreter on the original graph\n", (int)n);
  free_names(names, n);
  return ok;
}

/* Compiles g (already transformed) and runs it; NULL after reporting. */
static ir_tensor *run_compiled(check_run *r, ir_graph *g, int level) {
  cg_options o = {NULL, NULL, NULL, level, r->a->memplan_check};
  if (!cli_memplan_check_applies(g, o.memplan_check)) return NULL;
  cg_program *p = cg_compile(g, &o, r->diag);
  cg_jit *j = p ? cg_jit_new(p, r->diag) : NULL;
  ir_tensor *outs = NULL;
  if (j) {
    outs = ir_xcalloc((size_t)g->n_outputs + 1, sizeof(ir_tensor));
    ir_buf err = {0};
    if (!cg_jit_run_tensors(j, g, r->args.t, r->args.n, outs, &r->opts, &err)) {
      cli_error("compiled code: %s", err.s);
      free_outputs(outs, g->n_outputs);
      outs = NULL;
    }
    ir_buf_free(&err);
  }
  cg_jit_free(j);
  cg_program_free(p);
  return outs;
}

static bool check_model(check_run *r, const cli_model *m, bool *agree) {
  check_args *a = r->a;
  int level = a->level >= 0 ? a->level : 2;
  const char *pipeline = a->passes ? a->passes : pass_pipeline_for_level(level);
  if (!pass_pipeline_valid(pipeline, &r->pc)) return false; /* before the oracle's run */
  ir_buf err = {0};
  r->oracle = interpret(r, m->g, &err);
  if (!r->oracle) {
    cli_error("run-time error in the interpreter: %s", err.s);
    ir_buf_free(&err);
    return false;
  }
  ir_buf_free(&err);
  printf("check %s: interpreter vs compiled (-O%d, passes '%s')\n", m->src.name, level, pipeline);
  fflush(stdout);
  ir_graph *g = cli_parse_model(m, r->diag);
  bool passes_agree = true;
  bool ok = g && (a->bisect ? bisect_pipeline(r, g, pipeline, &passes_agree)
                            : pass_run_pipeline(g, pipeline, &r->pc));
  ir_tensor *compiled = ok ? run_compiled(r, g, level) : NULL;
  if (compiled) {
    ir_buf report = {0};
    bool outputs_agree = compare_outputs(g, a, r->oracle, compiled, "compiled", &report);
    if (report.s) fputs(report.s, stdout);
    if (a->bisect && passes_agree && !outputs_agree)
      printf("every pass agrees with the interpreter: the difference comes from codegen\n");
    printf("%s\n", outputs_agree && passes_agree ? "ok" : "FAIL");
    *agree = outputs_agree && passes_agree;
    ir_buf_free(&report);
    free_outputs(compiled, g->n_outputs);
  }
  ir_graph_free(g);
  return compiled != NULL;
}

int cmd_check(int argc, char **argv) {
  check_args a = {0};
  a.level = -1;
  int rc = parse_check_args(argc, argv, &a);
  if (rc) {
    cli_inputs_free(&a.inputs);
    return rc == 2 ? 0 : 1;
  }
  ir_diag d;
  ir_diag_init(&d);
  check_run r = {&a, {0}, {0}, NULL, {0}, &d};
  pass_ctx_init(&r.pc, &d);
#ifdef SEQC_TEST_BUILD
  r.pc.verify_each = true;
#endif
  cli_model m;
  bool agree = false;
  bool ok = cli_load_model(a.model, &d, &m) && cli_args_load(m.g, &a.inputs, &r.args);
  if (ok) {
    r.opts = (ir_interp_opts){r.args.bindings, r.args.n_bindings, 0};
    ok = check_model(&r, &m, &agree);
  }
  free_outputs(r.oracle, m.g ? m.g->n_outputs : 0);
  cli_args_free(&r.args);
  cli_model_free(&m);
  cli_inputs_free(&a.inputs);
  return ok && agree ? 0 : 1;
}
