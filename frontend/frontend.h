/*
 * frontend.h - the YAML model frontend: a hand-written model description
 * (docs/yaml.md) becomes a verified IR graph.
 *
 * The input is untrusted. Every problem is reported through the diag as
 * `file:line:col: error: message` with the quoted source line and a caret
 * (1-based lines, byte columns), and the loader returns NULL; it never
 * aborts, and time and memory stay proportional to the input, which is
 * bounded (FE_YAML_MAX_BYTES).
 */
#ifndef SEQC_FRONTEND_H
#define SEQC_FRONTEND_H

#include "../ir/ir.h"

/* Bounds on untrusted YAML (docs/yaml.md, "Limits"). */
#define FE_YAML_MAX_BYTES ((size_t)16 << 20) /* whole file */
#define FE_YAML_MAX_SCALAR ((size_t)1 << 20) /* one scalar */
#define FE_YAML_MAX_DEPTH 64                 /* nested collections */
#define FE_YAML_MAX_NODES ((int32_t)1 << 20) /* scalars and collections */

/* Parse the model in buf[0..len) (not NUL-terminated) named `name` (for
 * diagnostics and op locations; "<input>" if NULL) into a graph that passes
 * ir_verify. Returns NULL after reporting errors through d (stderr if d is
 * NULL). The source is registered with d for the duration of the call if
 * the caller has not registered it; ops keep locations into it. */
ir_graph *fe_load_yaml(const char *buf, size_t len, const char *name, ir_diag *d);

#endif
