/*
 * pass.h - the pass manager: named passes, pipelines given as text
 * ("canonicalize,cse,dce"), IR dumps after passes, timing, and the verifier
 * between passes. Each pass lives in its own file and is listed once in
 * passes.def.
 */
#ifndef SEQC_PASSES_PASS_H
#define SEQC_PASSES_PASS_H

#include "../ir/ir.h"

typedef struct pass_ctx {
  ir_diag *diag;
  bool verify_each;        /* run ir_verify after every pass */
  bool print_after_all;    /* dump the IR after every pass to `dump` */
  const char *print_after; /* comma-separated pass names to dump after */
  bool time_passes;        /* report wall time per pass to `dump` at the end */
  FILE *dump;              /* stderr by default */
} pass_ctx;

/* A pass returns true on success; false after reporting an error. */
typedef bool (*pass_fn)(ir_graph *g, pass_ctx *ctx);

typedef struct pass_info {
  const char *name;
  const char *summary;
  pass_fn run;
} pass_info;

void pass_ctx_init(pass_ctx *c, ir_diag *d);
const pass_info *pass_lookup(const char *name, size_t len);
/* All passes, NULL-terminated, for --help. */
const pass_info *const *pass_all(void);
/* Names for -O0 / -O1 / -O2 ... */
const char *pass_pipeline_for_level(int level);
/* Whether every name of the pipeline is a pass (reported otherwise, as
 * pass_run_pipeline would), without running anything. */
bool pass_pipeline_valid(const char *pipeline, pass_ctx *ctx);
/* Run a comma-separated pipeline; an unknown name is an error listing the
 * known ones. An empty pipeline does nothing. */
bool pass_run_pipeline(ir_graph *g, const char *pipeline, pass_ctx *ctx);

#define PASS(id, name, summary) bool pass_##id(ir_graph *g, pass_ctx *ctx);
#include "passes.def"

/* fold-biases' rewrite, which shares scan-hoist's classification of body
 * values (scan_hoist.c). */
bool scan_hoist_fold_biases(ir_graph *g, pass_ctx *ctx);

/* The one op of v's block after def that reads v (maybe as several of its
 * operands), when no other op does and it is not the block's terminator;
 * else IR_NONE. uses[v]: v's operand count (ir_use_counts) as of when the
 * caller counted (fuse.c). */
ir_opid fuse_only_reader(const ir_graph *g, const int32_t *uses, ir_opid def, ir_val v);

/* fuse's first step (scan_fuse.c): moves the pointwise producers of scan's
 * per-step inputs and consumers of its per-step outputs into its body, but
 * no op with keep[op] (op < n_keep); returns the scan as rebuilt. */
ir_opid scan_fuse_pointwise(ir_graph *g, ir_opid scan, const bool *keep, int32_t n_keep);

#endif
