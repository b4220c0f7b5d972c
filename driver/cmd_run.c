/*
 * cmd_run.c - `seqc run`: run a graph, compiled in process (ORC JIT) after
 * the -O pipeline by default, or with the reference interpreter (--interp).
 *
 * Arguments come from the options shared with `seqc check` (inputs.c: raw
 * little-endian files, --dim bindings, fixed-seed random values); outputs
 * are printed as text or written as raw little-endian files.
 */
#include "cli.h"
#include "../codegen/cg.h"
#include "../ir/interp.h"
#include "../passes/pass.h"

#include <stdlib.h>
#include <string.h>

/* --print shows at most this many elements per output. */
#define RUN_PRINT_LIMIT 4096

void help_run(FILE *f) {
  fputs("usage: seqc run MODEL [options]\n"
        "\n"
        "Run MODEL (.yaml or .sqir): compiled to native code for this machine (the default), or\n"
        "evaluated by the reference interpreter (--interp: double accumulation,\n"
        "results rounded to each value's dtype).\n"
        "\n"
        "options:\n"
        "  --interp                 use the reference interpreter instead of compiling\n"
        "  -O0 | -O1 | -O2 | -O3    pipeline and LLVM level for compiling (default -O2)\n"
        "  --input NAME=FILE        raw little-endian data for input or parameter NAME\n"
        "  --output NAME=FILE       write output NAME as raw little-endian data, atomically\n"
        "  --dim SYM=N              bind the dim symbol SYM (e.g. --dim T=512)\n"
        "  --weights FILE           every parameter from a safetensors file (names, dtypes\n"
        "                           and shapes checked; F16/BF16 widen to f32)\n"
        "  --random-weights SEED    fill parameters not given by --input with values\n"
        "                           uniform in [-1, 1) (integers in {0, 1})\n"
        "  --random-inputs SEED     the same for inputs\n"
        "  --print                  print outputs as text (the default when no --output)\n"
        "  -h, --help               show this help\n"
        "\n"
        "A dim symbol not bound by --dim is solved from the size of an input file\n"
        "in which it is the only unknown dim. Exit status 0 on success, 1 on error.\n",
        f);
}

typedef struct run_args {
  const char *in;
  cli_inputs inputs;
  cli_named_path *outputs;
  int n_outputs;
  char **owned; /* output names split off --output values */
  int n_owned;
  bool print, interp;
  int level;
  int memplan_check; /* cg_memplan_check: --memplan-check, a test mode (docs/cli.md) */
} run_args;

static void free_run_args(run_args *a) {
  cli_inputs_free(&a->inputs);
  for (int i = 0; i < a->n_owned; i++) free(a->owned[i]);
  free(a->owned);
  free(a->outputs);
}

/* Returns 0 to go on, 1 on a usage error, 2 after --help. */
static int parse_run_args(int argc, char **argv, run_args *a) {
  cli_inputs_init(&a->inputs, argc);
  a->outputs = ir_xcalloc((size_t)argc, sizeof(cli_named_path));
  a->owned = ir_xcalloc((size_t)argc, sizeof(char *));
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_run(stdout);
      return 2;
    } else if ((m = cli_inputs_match(&a->inputs, argc, argv, &i)) != 0) {
      if (m < 0) return 1;
    } else if ((m = cli_match_value(argc, argv, &i, "--output", &v)) != 0) {
      cli_named_path *p = &a->outputs[a->n_outputs++];
      if (m < 0 || !cli_split_name_value("--output", v, &p->name, &p->path, &a->owned[a->n_owned++]))
        return 1;
    } else if (!strcmp(arg, "--print")) {
      a->print = true;
    } else if (!strcmp(arg, "--interp")) {
      a->interp = true;
    } else if ((m = cli_match_memplan_check(arg, &a->memplan_check)) != 0) {
      if (m < 0) return 1;
    } else if (!cli_common_arg("run", arg, &a->in, &a->level)) {
      return 1;
    }
  }
  if (!cli_require_model("run", a->in)) return 1;
  if (a->interp && a->memplan_check) {
    cli_error("--memplan-check checks compiled code; it has no effect with --interp");
    return 1;
  }
  if (a->interp && a->level >= 0) {
    cli_error("-O%d has no effect with --interp (the interpreter runs the graph as written)", a->level);
    return 1;
  }
  return 0;
}

/* ---- results --------------------------------------------------------------- */

static void print_tensor(const char *name, const ir_tensor *t) {
  ir_buf b = {0};
  ir_buf_printf(&b, "%s: %s[", name, ir_dtype_name(t->dtype));
  for (int32_t i = 0; i < t->rank; i++)
    ir_buf_printf(&b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  ir_buf_puts(&b, "] =");
  int64_t n = t->numel < RUN_PRINT_LIMIT ? t->numel : RUN_PRINT_LIMIT;
  for (int64_t i = 0; i < n; i++) {
    ir_buf_puts(&b, i % 8 ? " " : "\n  ");
    if (ir_dtype_is_float(t->dtype))
      ir_buf_put_real(&b, t->data[i], t->dtype != IR_F64);
    else
      ir_buf_printf(&b, "%lld", (long long)t->data[i]);
  }
  if (n < t->numel) ir_buf_printf(&b, "\n  ... (%lld more; use --output)", (long long)(t->numel - n));
  ir_buf_putc(&b, '\n');
  fputs(b.s, stdout);
  ir_buf_free(&b);
}

static cli_named_path *find_output(run_args *a, const char *name) {
  for (int i = 0; i < a->n_outputs; i++)
    if (!strcmp(a->outputs[i].name, name)) return &a->outputs[i];
  return NULL;
}

static bool write_outputs(ir_graph *g, ir_tensor *outs, run_args *a) {
  bool ok = true;
  for (int32_t i = 0; i < g->n_outputs; i++) {
    cli_named_path *dst = find_output(a, g->output_names[i]);
    if (a->print || a->n_outputs == 0) print_tensor(g->output_names[i], &outs[i]);
    if (!dst) continue;
    ir_buf bytes = {0}, err = {0};
    ir_tensor_to_bytes(&outs[i], &bytes);
    if (!ir_write_file_atomic(dst->path, bytes.s ? bytes.s : "", bytes.len, &err)) {
      cli_error("%s", err.s);
      ok = false;
    }
    ir_buf_free(&bytes);
    ir_buf_free(&err);
  }
  return ok;
}

static bool check_output_names(const ir_graph *g, run_args *a) {
  if (!cli_check_unique(a->outputs, a->n_outputs, "--output")) return false;
  for (int i = 0; i < a->n_outputs; i++)
    for (int32_t o = 0; o < g->n_outputs; o++)
      if (!strcmp(a->outputs[i].name, g->output_names[o])) a->outputs[i].used = true;
  return cli_check_all_used(a->outputs, a->n_outputs, "output");
}

/* The -O pipeline, codegen for the host and the JIT; then one run. */
static bool run_compiled(ir_graph *g, const run_args *a, const cli_args *args, ir_tensor *outs,
                         ir_diag *d) {
  pass_ctx pc;
  pass_ctx_init(&pc, d);
#ifdef SEQC_TEST_BUILD
  pc.verify_each = true;
#endif
  int level = a->level >= 0 ? a->level : 2;
  if (!pass_run_pipeline(g, pass_pipeline_for_level(level), &pc)) return false;
  cg_options o = {NULL, NULL, NULL, level, a->memplan_check};
  if (!cli_memplan_check_applies(g, o.memplan_check)) return false;
  cg_program *p = cg_compile(g, &o, d);
  cg_jit *j = p ? cg_jit_new(p, d) : NULL;
  bool ok = j != NULL;
  if (ok) {
    ir_buf err = {0};
    ir_interp_opts opts = {args->bindings, args->n_bindings, 0};
    ok = cg_jit_run_tensors(j, g, args->t, args->n, outs, &opts, &err);
    if (!ok) cli_error("run-time error: %s", err.s);
    ir_buf_free(&err);
  }
  cg_jit_free(j);
  cg_program_free(p);
  return ok;
}

static bool run_graph(ir_graph *g, run_args *a, ir_diag *d) {
  ir_tensor *outs = ir_xcalloc((size_t)g->n_outputs + 1, sizeof(ir_tensor));
  cli_args args;
  bool ok = cli_args_load(g, &a->inputs, &args) && check_output_names(g, a);
  if (ok && a->interp) {
    ir_buf err = {0};
    ir_interp_opts opts = {args.bindings, args.n_bindings, 0};
    ok = ir_interp_run(g, args.t, args.n, outs, &opts, &err);
    if (!ok) cli_error("run-time error: %s", err.s);
    ir_buf_free(&err);
  } else if (ok) {
    ok = run_compiled(g, a, &args, outs, d);
  }
  ok = ok && write_outputs(g, outs, a);
  for (int32_t i = 0; i < g->n_outputs; i++) ir_tensor_free(&outs[i]);
  free(outs);
  cli_args_free(&args);
  return ok;
}

int cmd_run(int argc, char **argv) {
  run_args a = {0};
  a.level = -1; /* -O2 unless given */
  int rc = parse_run_args(argc, argv, &a);
  if (rc == 0) {
    ir_diag d;
    ir_diag_init(&d);
    cli_model m;
    bool ok = cli_load_model(a.in, &d, &m) && run_graph(m.g, &a, &d);
    cli_model_free(&m);
    rc = ok ? 0 : 1;
  } else if (rc == 2) {
    rc = 0;
  }
  free_run_args(&a);
  return rc;
}
