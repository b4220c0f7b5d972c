/*
 * main.c - the `seqc` command: dispatches to subcommands and owns the
 * shared option helpers. Exit status: 0 on success, 1 on any user error
 * (with a diagnostic); seqc never dies by a signal on bad input.
 */
#include "cli.h"
#include "../codegen/cg.h"
#include "../frontend/frontend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEQC_VERSION "0.1.0"

static void help_main(FILE *f) {
  fputs("usage: seqc <command> [options]\n"
        "\n"
        "seqc compiles sequence models (.yaml model files or .sqir text IR) and runs\n"
        "them.\n"
        "\n"
        "commands:\n"
        "  opt      parse, verify and optimize a model; print the result as .sqir\n"
        "  run      run a model, compiled for this machine (or --interp)\n"
        "  check    compare compiled code with the interpreter on the same inputs\n"
        "  build    compile a model into a shared object and C header (or LLVM IR,\n"
        "           assembly, an object file)\n"
        "  viz      write a model as Graphviz DOT\n"
        "  weights  list the tensors of a safetensors file\n"
        "  help     show help for a command (seqc help opt), or the op\n"
        "           reference (seqc help ops)\n"
        "\n"
        "options:\n"
        "  -h, --help     show this help\n"
        "  --version      print the version\n"
        "\n"
        "See docs/cli.md for the full reference.\n",
        f);
}

static const char *attr_kind_name(ir_attr_kind k) {
  static const char *const names[] = {"int", "ints", "float", "bool", "dim", "dims", "tensor", "enum"};
  return names[k];
}

/* The op reference, straight from the op table (ops.def). */
static void help_ops(FILE *f) {
  for (int k = 0; k < IR_OP_COUNT; k++) {
    const ir_opinfo *info = ir_opinfo_of((ir_opkind)k);
    fprintf(f, "%s", info->name);
    if (info->max_in < 0)
      fprintf(f, "  operands: %d or more", info->min_in);
    else if (info->min_in == info->max_in)
      fprintf(f, "  operands: %d", info->min_in);
    else
      fprintf(f, "  operands: %d to %d", info->min_in, info->max_in);
    for (int32_t a = 0; a < info->n_attrs; a++) {
      const ir_attr_decl *d = &info->attrs[a];
      fprintf(f, "%s%s: %s", a ? ", " : "  attributes: ", d->name, attr_kind_name(d->kind));
      if (d->kind == IR_ATTR_ENUM) {
        fputs(" (", f);
        for (int e = 0; d->enum_names[e]; e++) fprintf(f, "%s%s", e ? "|" : "", d->enum_names[e]);
        fputc(')', f);
      }
      if (d->required) continue;
      if (d->kind == IR_ATTR_ENUM)
        fprintf(f, " = %s", d->enum_names[(int)d->dflt]);
      else if (d->kind == IR_ATTR_BOOL)
        fprintf(f, " = %s", d->dflt != 0 ? "true" : "false");
      else if (d->kind == IR_ATTR_INT || d->kind == IR_ATTR_FLOAT)
        fprintf(f, " = %g", d->dflt);
      else
        fputs(" optional", f);
    }
    fprintf(f, "\n    %s\n", info->doc);
  }
}

void cli_error(const char *fmt, ...) {
  va_list ap;
  fputs("seqc: error: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

bool cli_common_arg(const char *cmd, const char *arg, const char **model, int *level) {
  if (level && arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
    *level = arg[2] - '0';
    return true;
  }
  if (arg[0] == '-' && arg[1] != 0) {
    cli_error("unknown option '%s' for 'seqc %s'; try 'seqc %s --help'", arg, cmd, cmd);
    return false;
  }
  if (*model) {
    cli_error("'seqc %s' takes one model file, got '%s' and '%s'", cmd, *model, arg);
    return false;
  }
  *model = arg;
  return true;
}

bool cli_require_model(const char *cmd, const char *model) {
  if (!model) cli_error("'seqc %s' needs a model file; try 'seqc %s --help'", cmd, cmd);
  return model != NULL;
}

int cli_match_value(int argc, char **argv, int *i, const char *name, const char **value) {
  const char *arg = argv[*i];
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != 0) return 0;
  if (*i + 1 >= argc) {
    cli_error("option '%s' needs a value", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

/* Whether this seqc runs with the AddressSanitizer runtime (gcc and clang
 * say so differently). */
#if defined(__SANITIZE_ADDRESS__)
#define CLI_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLI_HAVE_ASAN 1
#endif
#endif

int cli_match_memplan_check(const char *arg, int *mode) {
  const char *name = "--memplan-check";
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || (arg[n] && arg[n] != '=')) return 0;
  *mode = !arg[n]                          ? CG_MEMPLAN_CHECK_ON
          : !strcmp(arg + n, "=share-live") ? CG_MEMPLAN_CHECK_SHARE_LIVE
          : !strcmp(arg + n, "=undersize")  ? CG_MEMPLAN_CHECK_UNDERSIZE
                                            : CG_MEMPLAN_CHECK_OFF;
  if (*mode == CG_MEMPLAN_CHECK_OFF) {
    cli_error("'%s': --memplan-check takes no value but share-live or undersize (planted bugs)", arg);
    return -1;
  }
#ifndef CLI_HAVE_ASAN
  cli_error("--memplan-check needs seqc built with AddressSanitizer (make SANITIZE=1: build/asan/seqc)");
  return -1;
#else
  return 1;
#endif
}

bool cli_memplan_check_applies(const ir_graph *g, int mode) {
  if (mode && !g->plan_memory)
    cli_error("--memplan-check checks the memory plan, and the pipeline has no 'memplan' pass "
              "(use -O2, -O3 or --passes=...,memplan)");
  return !mode || g->plan_memory;
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

ir_graph *cli_parse_model(const cli_model *m, ir_diag *d) {
  if (has_suffix(m->src.name, ".yaml") || has_suffix(m->src.name, ".yml")) {
    ir_graph *g = fe_load_yaml(m->text, m->src.len, m->src.name, d);
    return g; /* the frontend verifies what it builds */
  }
  ir_graph *g = ir_parse(m->text, m->src.len, m->src.name, d);
  if (g && !ir_verify(g, d)) {
    ir_graph_free(g);
    g = NULL;
  }
  return g;
}

bool cli_load_model(const char *path, ir_diag *d, cli_model *m) {
  memset(m, 0, sizeof *m);
  ir_buf err = {0};
  size_t len = 0;
  m->text = ir_read_file(path, CLI_MAX_MODEL_BYTES, &len, &err);
  if (!m->text) {
    cli_error("%s", err.s);
    ir_buf_free(&err);
    return false;
  }
  m->src = (ir_source){strcmp(path, "-") == 0 ? "<stdin>" : path, m->text, len};
  ir_diag_add_source(d, &m->src);
  m->g = cli_parse_model(m, d);
  return m->g != NULL;
}

void cli_model_free(cli_model *m) {
  ir_graph_free(m->g);
  free(m->text);
  memset(m, 0, sizeof *m);
}

/* Every command: its entry and its help. */
static const struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  void (*help)(FILE *f);
} commands[] = {
    {"opt", cmd_opt, help_opt},         {"run", cmd_run, help_run},
    {"check", cmd_check, help_check},   {"build", cmd_build, help_build},
    {"viz", cmd_viz, help_viz},         {"weights", cmd_weights, help_weights},
};

static const struct command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

static int help(const char *what) {
  const struct command *c = find_command(what);
  if (c)
    c->help(stdout);
  else if (!strcmp(what, "ops"))
    help_ops(stdout);
  else if (!*what)
    help_main(stdout);
  else {
    cli_error("no help on '%s'; try opt, run, check, build, viz, weights or ops", what);
    return 1;
  }
  return 0;
}

static int dispatch(int argc, char **argv) {
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) return help("");
  if (!strcmp(cmd, "--version")) {
    printf("seqc %s\n", SEQC_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help")) return help(argc > 2 ? argv[2] : "");
  const struct command *c = find_command(cmd);
  if (c) return c->run(argc - 1, argv + 1);
  cli_error("unknown command '%s'; try 'seqc --help'", cmd);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    help_main(stderr);
    return 1;
  }
  int rc = dispatch(argc, argv);
  /* Output lost to a full disk or a closed pipe is an error, not success. */
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error("<stdout>: write error: %s", strerror(errno));
    rc = 1;
  }
  return rc;
}
