/*
 * cli.h - pieces the seqc subcommands share: reading a model file into a
 * verified graph, option matching, and the subcommand entry points.
 * docs/cli.md is the user-facing description; keep the two in step.
 */
#ifndef SEQC_DRIVER_CLI_H
#define SEQC_DRIVER_CLI_H

#include "../ir/ir.h"

/* Bound on model files (text IR); larger inputs are refused, not parsed. */
#define CLI_MAX_MODEL_BYTES ((size_t)64 << 20)

/* A model read from disk: the graph and the source it was parsed from (kept
 * so diagnostics can quote it). */
typedef struct cli_model {
  ir_graph *g;
  ir_source src;
  char *text;
} cli_model;

/* Read, parse and verify `path` ("-" = stdin). False after printing
 * diagnostics to stderr. */
bool cli_load_model(const char *path, ir_diag *d, cli_model *m);
void cli_model_free(cli_model *m);

/* If arg is "--name=VALUE" or "--name" followed by a value in argv, set
 * *value and advance *i; a missing value is reported. Returns 1 on a match,
 * 0 if arg is another option, -1 on a missing value. */
int cli_match_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Print "seqc: error: ..." to stderr. */
void cli_error(const char *fmt, ...) IR_PRINTF(1, 2);

int cmd_opt(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_viz(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_weights(int argc, char **argv);
void help_weights(FILE *f);

/* Fill args[i] (have[i] = true) for every parameter of g from safetensors
 * file f, checking names, dtypes and shapes under bindings b; on any problem
 * return false with every missing, extra or mismatched tensor listed in
 * err (and nothing left allocated). */
struct rt_st_file;
struct ir_tensor;
bool cli_load_weights(ir_graph *g, const struct rt_st_file *f, const ir_dim_binding *b, int32_t nb,
                      struct ir_tensor *args, bool *have, ir_buf *err);
void help_build(FILE *f);
void viz_graph(const ir_graph *g, ir_buf *out);
void help_viz(FILE *f);
void help_opt(FILE *f);
void help_run(FILE *f);

#endif
