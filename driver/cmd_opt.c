/*
 * cmd_opt.c - `seqc opt`: read a graph, verify it, run a pass pipeline and
 * print the result as .sqir. This is the tool IR regression tests drive
 * (`seqc opt in.sqir --passes=cse | FileCheck in.sqir`).
 */
#include "cli.h"
#include "../passes/pass.h"
#include "../passes/stream.h"

#include <string.h>

void help_opt(FILE *f) {
  fputs("usage: seqc opt MODEL [options]\n"
        "\n"
        "Parse and verify MODEL (.yaml or .sqir; '-' reads .sqir from stdin), run\n"
        "passes, print the graph as .sqir.\n"
        "\n"
        "options:\n"
        "  --passes=A,B,...     run these passes in order (see the list below)\n"
        "  -O0 | -O1 | -O2 | -O3  run the standard pipeline of that level\n"
        "                       (default: no passes, only verify and print; -O3 adds\n"
        "                       fold-biases, which regroups float adds: docs/numerics.md)\n"
        "  -o OUT               write the result to OUT (default: stdout), atomically\n"
        "  --print-after-all    print the IR after every pass to stderr\n"
        "  --print-after=A,B    print the IR after the named passes to stderr\n"
        "  --time-passes        report the time of each pass to stderr\n"
        "  --verify-each        verify the graph after every pass (always on in test builds)\n"
        "  --locations          print source locations loc(\"file\":line:col)\n"
        "  --step               print the model's streaming step graph instead (derived\n"
        "                       before the passes run; an error says which op cannot stream)\n"
        "  -h, --help           show this help\n"
        "\n"
        "passes:\n",
        f);
  for (const pass_info *const *p = pass_all(); *p; p++)
    fprintf(f, "  %-14s %s\n", (*p)->name, (*p)->summary);
}

typedef struct opt_args {
  const char *in, *out, *passes;
  int level; /* -1: not given */
  bool locations, step;
  pass_ctx pc;
} opt_args;

/* Returns 0 to go on, 1 on a usage error, 2 after --help. */
static int parse_opt_args(int argc, char **argv, opt_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_opt(stdout);
      return 2;
    } else if ((m = cli_match_value(argc, argv, &i, "--passes", &v)) != 0) {
      if (m < 0) return 1;
      a->passes = v;
    } else if ((m = cli_match_value(argc, argv, &i, "-o", &v)) != 0) {
      if (m < 0) return 1;
      a->out = v;
    } else if ((m = cli_match_value(argc, argv, &i, "--print-after", &v)) != 0) {
      if (m < 0) return 1;
      a->pc.print_after = v;
    } else if (!strcmp(arg, "--print-after-all")) {
      a->pc.print_after_all = true;
    } else if (!strcmp(arg, "--time-passes")) {
      a->pc.time_passes = true;
    } else if (!strcmp(arg, "--verify-each")) {
      a->pc.verify_each = true;
    } else if (!strcmp(arg, "--locations")) {
      a->locations = true;
    } else if (!strcmp(arg, "--step")) {
      a->step = true;
    } else if (!cli_common_arg("opt", arg, &a->in, &a->level)) {
      return 1;
    }
  }
  if (!cli_require_model("opt", a->in)) return 1;
  if (a->passes && a->level >= 0) {
    cli_error("give either --passes or -O<level>, not both");
    return 1;
  }
  return 0;
}

static bool derive_step(const cli_model *m, stream_result *sr, ir_diag *d) {
  if (!stream_derive(m->g, sr, d)) return false;
  if (!sr->step) cli_error("model '%s' has no step: %s", m->g->name, sr->why_not);
  return sr->step != NULL;
}

int cmd_opt(int argc, char **argv) {
  ir_diag d;
  ir_diag_init(&d);
  opt_args a = {0};
  a.level = -1;
  pass_ctx_init(&a.pc, &d);
#ifdef SEQC_TEST_BUILD
  a.pc.verify_each = true;
#endif
  int rc = parse_opt_args(argc, argv, &a);
  if (rc) return rc == 2 ? 0 : 1;

  cli_model m;
  bool ok = cli_load_model(a.in, &d, &m);
  stream_result sr = {0};
  if (ok && a.step) ok = derive_step(&m, &sr, &d);
  ir_graph *g = sr.step ? sr.step : m.g;
  const char *pipeline = a.passes ? a.passes : a.level >= 0 ? pass_pipeline_for_level(a.level) : "";
  ok = ok && pass_run_pipeline(g, pipeline, &a.pc);
  if (ok) {
    ir_buf text = {0}, err = {0};
    ir_print_opts po = {a.locations};
    ir_print_graph(g, &po, &text);
    ok = ir_write_file_atomic(a.out ? a.out : "-", text.s, text.len, &err);
    if (!ok) cli_error("%s", err.s);
    ir_buf_free(&text);
    ir_buf_free(&err);
  }
  stream_result_free(&sr);
  cli_model_free(&m);
  return ok ? 0 : 1;
}
