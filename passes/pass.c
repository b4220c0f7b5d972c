/*
 * pass.c - the pass manager.
 *
 * The pass table is passes.def expanded once, so a pass exists exactly when
 * it has a line there and a function pass_<id> in passes/<id>.c.
 *
 * A pipeline is text, "canonicalize, cse,dce": names separated by commas,
 * blanks around a name ignored. The whole list (and the print-after list) is
 * resolved before anything runs, so a typo never leaves a graph half
 * transformed: an empty name between commas or an unknown name is an error
 * (at an unknown location: pipelines come from the command line) that lists
 * the known passes. Then each pass runs in order; after each one, on request:
 *
 *   - the verifier (verify_each); a failure is reported as
 *     "after pass 'X': <the verifier's message>" and stops the pipeline;
 *   - an IR dump, `// -----// IR after NAME //----- //` and the printed
 *     graph, to ctx->dump (print_after_all, or the names in print_after);
 *   - wall time from CLOCK_MONOTONIC (time_passes), reported as one table
 *     with a total when the pipeline ends, whether it succeeded or not.
 *
 * Optimization levels (pass_pipeline_for_level). Every level starts with
 * what lowering needs (decompose: codegen lowers primitive ops only):
 *   -O0  "decompose"                                      only what lowering needs
 *   -O1  "decompose,canonicalize,dce,const-hoist"         plus cheap clean-up
 *   -O2  "decompose,canonicalize,cse,scan-hoist,pack-weights,cse,dce,const-hoist,bidir,fuse,memplan"
 *        the default. scan-hoist lifts input
 *        projections out of scans before pack-weights packs their weights;
 *        cse merges packs of one weight and dce drops what they replaced.
 *   -O3  -O2 with fold-biases before scan-hoist: the recurrent biases join
 *        the lifted input projections. The only pass that reassociates
 *        float adds, so the only level whose results may differ from the
 *        interpreter beyond rounding (under cancellation; docs/numerics.md).
 * const-hoist moves what the others left of the work on parameters into
 * the init op; bidir then only reorders top-level ops and groups
 * independent scans; fuse groups what is left to run per call (its groups
 * are opaque to the passes before it), and memplan asks codegen to reuse
 * dead buffers.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PASS(id, name, summary) static const pass_info info_##id = {name, summary, pass_##id};
#include "passes.def"

static const pass_info *const all_passes[] = {
#define PASS(id, name, summary) &info_##id,
#include "passes.def"
    NULL};

static const ir_loc no_loc = {NULL, 0, 0};

void pass_ctx_init(pass_ctx *c, ir_diag *d) {
  memset(c, 0, sizeof *c);
  c->diag = d;
  c->dump = stderr;
}

const pass_info *pass_lookup(const char *name, size_t len) {
  for (const pass_info *const *p = all_passes; *p; p++)
    if (strlen((*p)->name) == len && memcmp((*p)->name, name, len) == 0) return *p;
  return NULL;
}

const pass_info *const *pass_all(void) { return all_passes; }

const char *pass_pipeline_for_level(int level) {
  if (level <= 0) return "decompose";
  if (level == 1) return "decompose,canonicalize,dce,const-hoist";
  if (level == 2) return "decompose,canonicalize,cse,scan-hoist,pack-weights,cse,dce,const-hoist,bidir,fuse,memplan";
  return "decompose,canonicalize,cse,fold-biases,scan-hoist,pack-weights,cse,dce,const-hoist,bidir,fuse,memplan";
}

/* ---- parsing pass lists --------------------------------------------------- */

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool all_blank(const char *s) {
  while (*s && is_blank(*s)) s++;
  return *s == '\0';
}

static void known_pass_names(ir_buf *out) {
  for (const pass_info *const *p = all_passes; *p; p++)
    ir_buf_printf(out, "%s%s", p == all_passes ? "" : ", ", (*p)->name);
}

/* Resolves the comma-separated `list` into passes (*out, *n_out, caller
 * frees). `what` names the list in diagnostics. An all-blank list is empty. */
static bool parse_pass_list(const char *list, const char *what, pass_ctx *ctx,
                            const pass_info ***out, int32_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (all_blank(list)) return true;
  size_t n_names = 1;
  for (const char *p = list; *p; p++) n_names += *p == ',';
  const pass_info **passes = ir_xmalloc(sizeof *passes * n_names);
  int32_t n = 0;
  for (const char *p = list;; p++) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *b = p, *e = end;
    while (b < e && is_blank(*b)) b++;
    while (e > b && is_blank(e[-1])) e--;
    const pass_info *info = b < e ? pass_lookup(b, (size_t)(e - b)) : NULL;
    if (!info) {
      ir_buf known = {0};
      known_pass_names(&known);
      if (b == e)
        ir_error_at(ctx->diag, no_loc, "empty pass name in %s '%s'; known passes: %s", what, list,
                    known.s);
      else
        ir_error_at(ctx->diag, no_loc, "unknown pass '%.*s' in %s; known passes: %s",
                    (int)(e - b), b, what, known.s);
      ir_buf_free(&known);
      free(passes);
      return false;
    }
    passes[n++] = info;
    if (*end == '\0') break;
    p = end;
  }
  *out = passes;
  *n_out = n;
  return true;
}

/* ---- per-pass instrumentation ------------------------------------------- */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool in_list(const pass_info *p, const pass_info *const *list, int32_t n) {
  for (int32_t i = 0; i < n; i++)
    if (list[i] == p) return true;
  return false;
}

static void dump_ir(const ir_graph *g, const pass_info *p, pass_ctx *ctx) {
  FILE *f = ctx->dump ? ctx->dump : stderr;
  ir_buf b = {0};
  ir_buf_printf(&b, "// -----// IR after %s //----- //\n", p->name);
  ir_print_graph(g, NULL, &b);
  fwrite(b.s, 1, b.len, f);
  fflush(f);
  ir_buf_free(&b);
}

/* Runs the verifier with its messages captured, so that they can be
 * reported as one error naming the pass that broke the IR. */
static bool verify_after(ir_graph *g, const pass_info *p, pass_ctx *ctx) {
  ir_diag inner;
  ir_buf text = {0};
  ir_diag_init(&inner);
  inner.capture = &text;
  inner.max_errors = ctx->diag->max_errors;
  for (int i = 0; i < ctx->diag->n_sources; i++) ir_diag_add_source(&inner, ctx->diag->sources[i]);
  bool ok = ir_verify(g, &inner);
  if (!ok) {
    const char *msg = text.s ? text.s : "the IR does not verify";
    const char *prefix = "seqc: error: ";
    if (strncmp(msg, prefix, strlen(prefix)) == 0) msg += strlen(prefix);
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n') len--;
    ir_error_at(ctx->diag, no_loc, "after pass '%s': %.*s", p->name, (int)len, msg);
  }
  ir_buf_free(&text);
  return ok;
}

typedef struct pass_timing {
  const pass_info *pass;
  double seconds;
} pass_timing;

static void report_times(const pass_timing *t, int32_t n, double verify_seconds, double total,
                         pass_ctx *ctx) {
  FILE *f = ctx->dump ? ctx->dump : stderr;
  fprintf(f, "===-- pass execution times (wall clock) --===\n");
  fprintf(f, "  %12s  %s\n", "time (ms)", "pass");
  for (int32_t i = 0; i < n; i++) fprintf(f, "  %12.3f  %s\n", t[i].seconds * 1e3, t[i].pass->name);
  if (ctx->verify_each) fprintf(f, "  %12.3f  %s\n", verify_seconds * 1e3, "(verifier)");
  fprintf(f, "  %12.3f  %s\n", total * 1e3, "total");
  fflush(f);
}

/* ---- running ------------------------------------------------------------- */

bool pass_pipeline_valid(const char *pipeline, pass_ctx *ctx) {
  const pass_info **passes = NULL;
  int32_t n = 0;
  bool ok = parse_pass_list(pipeline ? pipeline : "", "pipeline", ctx, &passes, &n);
  free(passes);
  return ok;
}

bool pass_run_pipeline(ir_graph *g, const char *pipeline, pass_ctx *ctx) {
  const pass_info **passes = NULL, **dump_after = NULL;
  int32_t n_passes = 0, n_dump_after = 0;
  if (!parse_pass_list(pipeline ? pipeline : "", "pipeline", ctx, &passes, &n_passes)) return false;
  if (ctx->print_after &&
      !parse_pass_list(ctx->print_after, "print-after list", ctx, &dump_after, &n_dump_after)) {
    free(passes);
    return false;
  }
  pass_timing *times = ir_xcalloc((size_t)n_passes + 1, sizeof *times);
  double start = now_seconds(), verify_seconds = 0;
  bool ok = true;
  int32_t ran = 0;
  for (int32_t i = 0; i < n_passes && ok; i++) {
    const pass_info *p = passes[i];
    double t0 = now_seconds();
    ok = p->run(g, ctx);
    times[ran++] = (pass_timing){p, now_seconds() - t0};
    if (ok && ctx->verify_each) {
      double v0 = now_seconds();
      ok = verify_after(g, p, ctx);
      verify_seconds += now_seconds() - v0;
    }
    if (ok && (ctx->print_after_all || in_list(p, dump_after, n_dump_after))) dump_ir(g, p, ctx);
  }
  if (ctx->time_passes) report_times(times, ran, verify_seconds, now_seconds() - start, ctx);
  free(times);
  free(passes);
  free(dump_after);
  return ok;
}
