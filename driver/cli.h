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

/* Read, parse and verify `path` ("-" = stdin): a YAML model when the name
 * ends in .yaml or .yml, text IR otherwise. False after printing
 * diagnostics to stderr. */
bool cli_load_model(const char *path, ir_diag *d, cli_model *m);
void cli_model_free(cli_model *m);
/* A fresh graph from m's text (parsed and verified again), or NULL after
 * reporting; used where one model must be transformed twice. */
ir_graph *cli_parse_model(const cli_model *m, ir_diag *d);

/* If arg is "--name=VALUE" or "--name" followed by a value in argv, set
 * *value and advance *i; a missing value is reported. Returns 1 on a match,
 * 0 if arg is another option, -1 on a missing value. */
int cli_match_value(int argc, char **argv, int *i, const char *name, const char **value);
/* The tail every command's option loop shares: -O0..-O3 (when level is
 * not NULL), the one positional model file, and unknown options. False
 * after reporting a usage error. */
bool cli_common_arg(const char *cmd, const char *arg, const char **model, int *level);
/* After the loop: a model file was given, or report it. */
bool cli_require_model(const char *cmd, const char *model);
/* --memplan-check[=share-live|undersize] (run, check; docs/cli.md): if arg
 * is that option, set *mode (a cg_memplan_check, not OFF) and return 1, or
 * report and return -1 when it is malformed or this seqc lacks the ASan
 * runtime the checked code calls; 0 for another argument. */
int cli_match_memplan_check(const char *arg, int *mode);
/* After the passes: the test mode needs a memory plan to check (g has one,
 * or mode is OFF); false after reporting. */
bool cli_memplan_check_applies(const ir_graph *g, int mode);
/* Print "seqc: error: ..." to stderr. */
void cli_error(const char *fmt, ...) IR_PRINTF(1, 2);

/* ---- a graph's arguments from the command line (inputs.c; run, check) ---- */

typedef struct cli_named_path {
  const char *name;
  const char *path;
  bool used;
} cli_named_path;

/* Where arguments come from: --input NAME=FILE, --dim SYM=N,
 * --weights FILE, --random-weights SEED, --random-inputs SEED. */
typedef struct cli_inputs {
  cli_named_path *files;
  int n_files;
  ir_dim_binding *dims;
  int n_dims;
  bool have_wseed, have_iseed;
  uint64_t wseed, iseed;
  const char *weights; /* --weights FILE.safetensors: every parameter */
  char **owned; /* names split off option values */
  int n_owned;
} cli_inputs;

/* Room for the options of an argc-long command line. */
void cli_inputs_init(cli_inputs *in, int argc);
void cli_inputs_free(cli_inputs *in);
/* Consume argv[*i] (and its value) if it is one of the options above:
 * 1 matched, 0 another option, -1 a usage error (reported). */
int cli_inputs_match(cli_inputs *in, int argc, char **argv, int *i);
/* Split "NAME=VALUE" given to option `opt`; *owned (caller frees) holds
 * the name. False after reporting a malformed pair. */
bool cli_split_name_value(const char *opt, const char *s, const char **name, const char **value,
                          char **owned);
/* Parse the value of --dim, "SYM=N" (N >= 0); *owned (caller frees)
 * holds the name. False after reporting. */
bool cli_parse_dim(const char *s, ir_dim_binding *b, char **owned);
/* Report a name given twice to `option`. */
bool cli_check_unique(const cli_named_path *list, int n, const char *option);
/* Report the first entry not marked used: "the graph has no WHAT named X". */
bool cli_check_all_used(const cli_named_path *list, int n, const char *what);

/* A graph's arguments (one tensor per body argument, in order) and every
 * dim symbol bound while sizing them, for ir_interp_run/cg_jit_run_tensors. */
struct ir_tensor;
typedef struct cli_args {
  struct ir_tensor *t;
  int32_t n;
  ir_dim_binding *bindings;
  int32_t n_bindings, cap_bindings;
} cli_args;
/* Fill every argument of g from files, or random values, as `in` says;
 * marks the files used and rejects names the graph does not have. False
 * after reporting; *a must be freed either way. */
bool cli_args_load(ir_graph *g, cli_inputs *in, cli_args *a);
void cli_args_free(cli_args *a);

int cmd_opt(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_viz(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_weights(int argc, char **argv);
int cmd_check(int argc, char **argv);
void help_check(FILE *f);
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
