/*
 * fold_biases.c - the fold-biases pass (-O3): in every top-level scan, a
 * body sum of adds that mixes per-step terms (x_t W_ih^T + b_ih), captured
 * rows or scalars (b_hh) and carry-dependent terms (h W_hh^T) is regrouped
 * as (per-step + captured) + rest, so that scan-hoist, run next, lifts the
 * first part and each step adds one term less (ALGORITHMS.md section 3,
 * item 1). Only adds are taken apart, so GRU's b_hn inside r * (W_hn h +
 * b_hn) stays; a split of M + b along the last axis becomes splits of M
 * and b added piece by piece first, so GRU's r and z biases fold too.
 *
 * Numerics: this is the one pass that reassociates float adds (f32 and f64
 * only). A result can move by an ulp of the largest partial sum, which
 * under cancellation (x_t W and h U nearly opposite, or a sum that
 * overflows) is all of a small result, so it is not in -O2 and `seqc
 * check` may report differences from the interpreter on such inputs. The
 * step graph gets the same passes, so forward and step still agree bitwise.
 * The machinery lives with scan-hoist's classification of body values
 * (scan_hoist.c, "folding").
 */
#include "pass.h"

bool pass_fold_biases(ir_graph *g, pass_ctx *ctx) { return scan_hoist_fold_biases(g, ctx); }
