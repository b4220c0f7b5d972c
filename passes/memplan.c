/*
 * memplan.c - the memplan pass: asks codegen to reuse the scratch buffers
 * of dead values (ir_graph.plan_memory).
 *
 * The plan itself is made where buffers are made, by the lowering of the
 * graph body (codegen/lower_memplan.c): values live from their op to their
 * last reader, and a buffer whose value died serves a later value of the
 * same symbolic byte size. The pass only records the request, so that it
 * is part of the pipeline (and of the text form: `memplan` after the
 * graph's results) like every other decision about a graph.
 */
#include "pass.h"

bool pass_memplan(ir_graph *g, pass_ctx *ctx) {
  (void)ctx;
  g->plan_memory = true;
  return true;
}
