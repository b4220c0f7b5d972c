/*
 * cmd_build.c - `seqc build`: compile a model to native code for a target
 * and write it as LLVM IR, assembly or an object file.
 */
#include "cli.h"
#include "../codegen/cg.h"
#include "../passes/pass.h"
#include "../passes/stream.h"

#include <stdlib.h>
#include <string.h>

void help_build(FILE *f) {
  fputs("usage: seqc build MODEL [options]\n"
        "\n"
        "Compile MODEL (.yaml or .sqir) to native code for a target.\n"
        "\n"
        "options:\n"
        "  --emit=KIND        so (the default: a self-contained shared object NAME.so plus\n"
        "                     its C header NAME.h beside it), header (NAME.h only),\n"
        "                     llvm (LLVM IR text), asm (assembly) or obj (object file)\n"
        "  -o OUT             output file (default: MODEL's name with .so, .h, .ll, .s or .o),\n"
        "                     '-' for stdout (not for so); written atomically\n"
        "  -O0 | -O1 | -O2 | -O3  seqc's pass pipeline and LLVM's optimization level\n"
        "                     (default -O2; fused multiply-adds, docs/numerics.md, only at -O2, -O3)\n"
        "  --passes=A,B,...   run these seqc passes instead of the -O pipeline (lowering\n"
        "                     needs 'decompose' when the model has attention)\n"
        "  --target=TRIPLE    target triple, e.g. x86_64-unknown-linux-gnu or\n"
        "                     aarch64-unknown-linux-gnu (default: the host)\n"
        "  --cpu=NAME         target CPU, e.g. x86-64-v3, znver4, neoverse-v1 (default: the\n"
        "                     host CPU for the host, generic otherwise)\n"
        "  --features=+F,-G   target features, e.g. +avx512f or +avx2,+fma (default: the\n"
        "                     host's for the host without --cpu, none otherwise); the GEMM's\n"
        "                     vector width follows them (docs/codegen.md)\n"
        "  -v                 also print the scratch arena forward (and step) need, in\n"
        "                     bytes, for the dims bound with --dim (for the host only)\n"
        "  --dim SYM=N        bind a dim symbol for -v (e.g. --dim B=1 --dim T=512)\n"
        "  -h, --help         show this help\n",
        f);
}

typedef struct build_args {
  const char *in, *out, *passes, *emit;
  int level;
  cg_options cg;
  bool verbose;
  ir_dim_binding *dims; /* --dim, for -v */
  int n_dims;
  char **owned;
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
    } else if ((m = cli_match_value(argc, argv, &i, "--features", &v)) != 0) {
      if (m < 0) return 1;
      a->cg.features = v;
    } else if (!strcmp(arg, "-v")) {
      a->verbose = true;
    } else if ((m = cli_match_value(argc, argv, &i, "--dim", &v)) != 0) {
      if (m < 0 || !cli_parse_dim(v, &a->dims[a->n_dims], &a->owned[a->n_dims])) return 1;
      a->n_dims++;
    } else if (!cli_common_arg("build", arg, &a->in, &a->level)) {
      return 1;
    }
  }
  if (!cli_require_model("build", a->in)) return 1;
  if (a->n_dims && !a->verbose) {
    cli_error("--dim only sizes the arena -v prints; add -v");
    return 1;
  }
  for (int i = 0; i < a->n_dims; i++)
    for (int k = 0; k < i; k++)
      if (!strcmp(a->dims[i].name, a->dims[k].name)) {
        cli_error("--dim binds '%s' twice", a->dims[i].name);
        return 1;
      }
  return 0;
}

/* What --emit asks for: a code form of cg_emit, or the shared object or
 * header (which cg_emit does not make). */
typedef enum build_kind { BUILD_LLVM, BUILD_ASM, BUILD_OBJ, BUILD_SO, BUILD_HEADER } build_kind;

static bool emit_kind(const char *s, build_kind *k, const char **ext) {
  static const struct {
    const char *name, *ext;
    build_kind kind;
  } kinds[] = {{"so", ".so", BUILD_SO},     {"header", ".h", BUILD_HEADER}, {"llvm", ".ll", BUILD_LLVM},
               {"asm", ".s", BUILD_ASM},   {"obj", ".o", BUILD_OBJ}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp(s, kinds[i].name)) {
      *k = kinds[i].kind;
      *ext = kinds[i].ext;
      return true;
    }
  cli_error("--emit expects so, header, llvm, asm or obj, got '%s'", s);
  return false;
}

/* MODEL's path with its extension replaced by `ext`. */
static char *default_output(const char *in, const char *ext) {
  if (!strcmp(in, "-")) {
    ir_buf b = {0};
    ir_buf_printf(&b, "out%s", ext);
    return b.s;
  }
  const char *slash = strrchr(in, '/'), *dot = strrchr(in, '.');
  size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - in) : strlen(in);
  ir_buf b = {0};
  ir_buf_putn(&b, in, stem);
  ir_buf_puts(&b, ext);
  return b.s;
}

/* NAME.h beside NAME.so: the .so path with its extension replaced. */
static char *header_beside(const char *so_path) {
  return default_output(so_path, ".h");
}

static bool write_text(const char *path, const ir_buf *text) {
  ir_buf err = {0};
  bool ok = ir_write_file_atomic(path, text->s ? text->s : "", text->len, &err);
  if (!ok) cli_error("%s", err.s);
  ir_buf_free(&err);
  return ok;
}

static bool write_build(const cg_model *m, build_kind kind, const char *path, ir_diag *d) {
  static const cg_emit_kind code_kinds[] = {[BUILD_LLVM] = CG_EMIT_LLVM, [BUILD_ASM] = CG_EMIT_ASM,
                                            [BUILD_OBJ] = CG_EMIT_OBJ};
  ir_buf out = {0};
  bool ok;
  if (kind == BUILD_SO && !strcmp(path, "-")) {
    cli_error("a shared object cannot be written to stdout; give -o NAME.so");
    ok = false;
  } else if (kind == BUILD_SO) {
    char *hpath = header_beside(path);
    if (!strcmp(hpath, path)) {
      cli_error("'%s' would be both the shared object and its header; name the output NAME.so", path);
      ok = false;
    } else {
      ok = cg_emit_shared(m, path, &out, d) && write_text(hpath, &out);
    }
    free(hpath);
  } else if (kind == BUILD_HEADER) {
    ok = cg_emit_header(m, &out, d) && write_text(path, &out);
  } else {
    ok = cg_emit(m->forward, code_kinds[kind], &out, d) && write_text(path, &out);
  }
  ir_buf_free(&out);
  return ok;
}

/* The value of each of p's symbols from the --dim bindings; false (with
 * the unbound names in *missing) when some symbol has none. */
static bool bind_symbols(const build_args *a, const cg_program *p, int64_t *syms, ir_buf *missing) {
  const char *const *names;
  int32_t n = cg_program_symbols(p, &names);
  for (int32_t i = 0; i < n; i++) {
    int k = 0;
    while (k < a->n_dims && strcmp(a->dims[k].name, names[i])) k++;
    if (k < a->n_dims)
      syms[i] = a->dims[k].value;
    else
      ir_buf_printf(missing, "%s%s", missing->len ? ", " : "", names[i]);
  }
  return missing->len == 0;
}

/* Whether every --dim names a symbol of forward or step. */
static bool dims_known(const build_args *a, const cg_model *m) {
  for (int i = 0; i < a->n_dims; i++) {
    bool found = false;
    for (int k = 0; k < 2 && !found; k++) {
      const cg_program *p = k ? m->step : m->forward;
      const char *const *names;
      int32_t n = p ? cg_program_symbols(p, &names) : 0;
      for (int32_t j = 0; j < n && !found; j++) found = !strcmp(names[j], a->dims[i].name);
    }
    if (!found) {
      cli_error("--dim %s: the model has no dim symbol '%s'", a->dims[i].name, a->dims[i].name);
      return false;
    }
  }
  return true;
}

/* -v: the scratch arena program p (forward or step) needs for the --dim
 * bindings, from its own NAME_scratch_bytes run in the JIT. */
static bool report_arena(const build_args *a, const char *what, cg_program *p, ir_diag *d) {
  if (!p) return true;
  if (a->cg.triple || a->cg.cpu || a->cg.features) {
    /* the JIT would run code built for another CPU */
    printf("%s: the scratch arena is sized for the host only (drop --target, --cpu, --features)\n", what);
    return true;
  }
  const char *const *names;
  int64_t *syms = ir_xcalloc((size_t)cg_program_symbols(p, &names) + 1, sizeof(int64_t));
  ir_buf missing = {0};
  bool ok = true;
  if (!bind_symbols(a, p, syms, &missing)) {
    printf("%s: bind %s with --dim to size the scratch arena\n", what, missing.s);
  } else {
    cg_jit *j = cg_jit_new(p, d);
    ok = j != NULL;
    if (ok) {
      int64_t bytes = cg_jit_scratch_fn(j)(syms);
      if (bytes < 0)
        printf("%s: the scratch arena overflows for these dims\n", what);
      else
        printf("%s: scratch arena %lld bytes\n", what, (long long)bytes);
    }
    cg_jit_free(j);
  }
  ir_buf_free(&missing);
  free(syms);
  return ok;
}

static int build(build_args *a_in);

int cmd_build(int argc, char **argv) {
  build_args a = {0};
  a.level = 2;
  a.emit = "so";
  a.dims = ir_xcalloc((size_t)argc + 1, sizeof(ir_dim_binding));
  a.owned = ir_xcalloc((size_t)argc + 1, sizeof(char *));
  int rc = parse_build_args(argc, argv, &a);
  rc = rc == 2 ? 0 : rc ? 1 : build(&a);
  for (int i = 0; i < argc; i++) free(a.owned[i]);
  free(a.owned);
  free(a.dims);
  return rc;
}

static int build(build_args *a_in) {
  build_args a = *a_in;
  build_kind kind;
  const char *ext;
  if (!emit_kind(a.emit, &kind, &ext)) return 1;
  /* The link uses this machine's C compiler and runtime library, so a
   * shared object is for this architecture (any CPU of it, with --cpu). */
  if (kind == BUILD_SO && a.cg.triple) {
    cli_error("a shared object is built for this machine's architecture; use --emit=obj for --target");
    return 1;
  }
  if (kind == BUILD_HEADER && (a.cg.triple || a.cg.cpu)) {
    cli_error("a header does not depend on the target; drop --target and --cpu with --emit=header");
    return 1;
  }
  a.cg.opt_level = a.level;

  ir_diag d;
  ir_diag_init(&d);
  pass_ctx pc;
  pass_ctx_init(&pc, &d);
#ifdef SEQC_TEST_BUILD
  pc.verify_each = true;
#endif
  const char *pipeline = a.passes ? a.passes : pass_pipeline_for_level(a.level);
  cli_model src;
  stream_result sr = {0};
  cg_model m = {0};
  bool ok = cli_load_model(a.in, &d, &src);
  /* The shared object streams when the model can: its step graph is
   * derived from the model as written, then optimized like forward. */
  bool wants_step = kind == BUILD_SO || kind == BUILD_HEADER;
  if (ok && wants_step) ok = stream_derive(src.g, &sr, &d);
  ok = ok && pass_run_pipeline(src.g, pipeline, &pc) && (!sr.step || pass_run_pipeline(sr.step, pipeline, &pc));
  if (ok) {
    m = (cg_model){cg_compile(src.g, &a.cg, &d), src.g, STREAM_TIME_SYMBOL, NULL, sr.step, sr.why_not,
                   sr.n_state, sr.past_sym, sr.cap_sym};
    if (sr.step) m.step = cg_compile(sr.step, &a.cg, &d);
    ok = m.forward && (!sr.step || m.step);
  }
  ok = ok && (!a.verbose || dims_known(&a, &m));
  if (ok) {
    char *path = a.out ? strdup(a.out) : default_output(a.in, ext);
    ok = write_build(&m, kind, path, &d);
    free(path);
  }
  if (ok && a.verbose) ok = report_arena(&a, "forward", m.forward, &d) && report_arena(&a, "step", m.step, &d);
  cg_program_free(m.forward);
  cg_program_free(m.step);
  stream_result_free(&sr);
  cli_model_free(&src);
  return ok ? 0 : 1;
}
