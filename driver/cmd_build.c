/*
 * cmd_build.c - `seqc build`: compile a model to native code for a target
 * and write it as LLVM IR, assembly or an object file.
 */
#include "cli.h"
#include "../codegen/cg.h"
#include "../passes/pass.h"

#include <stdlib.h>
#include <string.h>

void help_build(FILE *f) {
  fputs("usage: seqc build MODEL [options]\n"
        "\n"
        "Compile MODEL (.yaml or .sqir) to native code for a target.\n"
        "\n"
        "options:\n"
        "  --emit=KIND        llvm (LLVM IR text), asm (assembly) or obj (object file,\n"
        "                     the default)\n"
        "  -o OUT             output file (default: MODEL's name with .ll, .s or .o), '-' for\n"
        "                     stdout; written atomically\n"
        "  -O0 | -O1 | -O2 | -O3  seqc's pass pipeline and LLVM's optimization level\n"
        "                     (default -O2; floating-point contraction only at -O2 and -O3)\n"
        "  --passes=A,B,...   run these seqc passes instead of the -O pipeline (lowering\n"
        "                     needs 'decompose' when the model has attention)\n"
        "  --target=TRIPLE    target triple, e.g. x86_64-unknown-linux-gnu or\n"
        "                     aarch64-unknown-linux-gnu (default: the host)\n"
        "  --cpu=NAME         target CPU, e.g. x86-64-v3, znver4, neoverse-v1 (default: the\n"
        "                     host CPU for the host, generic otherwise)\n"
        "  -h, --help         show this help\n",
        f);
}

typedef struct build_args {
  const char *in, *out, *passes, *emit;
  int level;
  cg_options cg;
} build_args;

static int parse_build_args(int argc, char **argv, build_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_build(stdout);
      return 2;
    } else if ((m = cli_match_value(argc, argv, &i, "--emit", &v)) != 0) {
      if (m < 0) return 1;
      a->emit = v;
    } else if ((m = cli_match_value(argc, argv, &i, "-o", &v)) != 0) {
      if (m < 0) return 1;
      a->out = v;
    } else if ((m = cli_match_value(argc, argv, &i, "--passes", &v)) != 0) {
      if (m < 0) return 1;
      a->passes = v;
    } else if ((m = cli_match_value(argc, argv, &i, "--target", &v)) != 0) {
      if (m < 0) return 1;
      a->cg.triple = v;
    } else if ((m = cli_match_value(argc, argv, &i, "--cpu", &v)) != 0) {
      if (m < 0) return 1;
      a->cg.cpu = v;
    } else if (arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
      a->level = arg[2] - '0';
    } else if (arg[0] == '-' && arg[1] != 0) {
      cli_error("unknown option '%s' for 'seqc build'; try 'seqc build --help'", arg);
      return 1;
    } else if (a->in) {
      cli_error("'seqc build' takes one model file, got '%s' and '%s'", a->in, arg);
      return 1;
    } else {
      a->in = arg;
    }
  }
  if (!a->in) {
    cli_error("'seqc build' needs a model file; try 'seqc build --help'");
    return 1;
  }
  return 0;
}

static bool emit_kind(const char *s, cg_emit_kind *k, const char **ext) {
  static const struct {
    const char *name, *ext;
    cg_emit_kind kind;
  } kinds[] = {{"llvm", ".ll", CG_EMIT_LLVM}, {"asm", ".s", CG_EMIT_ASM}, {"obj", ".o", CG_EMIT_OBJ}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp(s, kinds[i].name)) {
      *k = kinds[i].kind;
      *ext = kinds[i].ext;
      return true;
    }
  cli_error("--emit expects llvm, asm or obj, got '%s'", s);
  return false;
}

/* MODEL's path with its extension replaced by `ext`. */
static char *default_output(const char *in, const char *ext) {
  if (!strcmp(in, "-")) return strdup(ext[1] == 'o' ? "out.o" : ext[1] == 's' ? "out.s" : "out.ll");
  const char *slash = strrchr(in, '/'), *dot = strrchr(in, '.');
  size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - in) : strlen(in);
  ir_buf b = {0};
  ir_buf_putn(&b, in, stem);
  ir_buf_puts(&b, ext);
  return b.s;
}

int cmd_build(int argc, char **argv) {
  build_args a = {0};
  a.level = 2;
  a.emit = "obj";
  int rc = parse_build_args(argc, argv, &a);
  if (rc) return rc == 2 ? 0 : 1;
  cg_emit_kind kind;
  const char *ext;
  if (!emit_kind(a.emit, &kind, &ext)) return 1;
  a.cg.opt_level = a.level;

  ir_diag d;
  ir_diag_init(&d);
  pass_ctx pc;
  pass_ctx_init(&pc, &d);
#ifdef SEQC_TEST_BUILD
  pc.verify_each = true;
#endif
  cli_model m;
  bool ok = cli_load_model(a.in, &d, &m) &&
            pass_run_pipeline(m.g, a.passes ? a.passes : pass_pipeline_for_level(a.level), &pc);
  cg_program *p = ok ? cg_compile(m.g, &a.cg, &d) : NULL;
  ok = p != NULL;
  if (ok) {
    ir_buf out = {0}, err = {0};
    char *path = a.out ? strdup(a.out) : default_output(a.in, ext);
    ok = cg_emit(p, kind, &out, &d) && ir_write_file_atomic(path, out.s ? out.s : "", out.len, &err);
    if (err.len) cli_error("%s", err.s);
    free(path);
    ir_buf_free(&out);
    ir_buf_free(&err);
  }
  cg_program_free(p);
  cli_model_free(&m);
  return ok ? 0 : 1;
}
