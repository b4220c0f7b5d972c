/*
 * cmd_run.c - `seqc run`: evaluate a graph with the reference interpreter.
 *
 * Tensors cross the command line as raw little-endian arrays in the
 * argument's dtype (row-major, no header). Their shapes come from the
 * graph's declared types with symbols bound by --dim; a symbol that is still
 * unbound and appears alone as one dim of an input read from a file is
 * solved from the file's size. Random values come from a fixed-seed
 * generator, so runs are reproducible.
 */
#include "cli.h"
#include "../ir/interp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Raw tensor files are bounded like every other input. */
#define RUN_MAX_TENSOR_BYTES ((size_t)1 << 31)
/* --print shows at most this many elements per output. */
#define RUN_PRINT_LIMIT 4096

void help_run(FILE *f) {
  fputs("usage: seqc run IN.sqir [options]\n"
        "\n"
        "Evaluate IN.sqir with the reference interpreter (double accumulation,\n"
        "results rounded to each value's dtype).\n"
        "\n"
        "options:\n"
        "  --input NAME=FILE        raw little-endian data for input or parameter NAME\n"
        "  --output NAME=FILE       write output NAME as raw little-endian data, atomically\n"
        "  --dim SYM=N              bind the dim symbol SYM (e.g. --dim T=512)\n"
        "  --random-weights SEED    fill parameters not given by --input with values\n"
        "                           uniform in [-1, 1) (integers in {0, 1})\n"
        "  --random-inputs SEED     the same for inputs\n"
        "  --print                  print outputs as text (the default when no --output)\n"
        "  -h, --help               show this help\n"
        "\n"
        "A dim symbol not bound by --dim is solved from the size of an input file\n"
        "in which it is the only unknown dim. Exit status 0 on success, 1 on error.\n",
        f);
}

typedef struct named_path {
  const char *name;
  const char *path;
  bool used;
} named_path;

typedef struct run_args {
  const char *in;
  named_path *inputs, *outputs;
  int n_inputs, n_outputs;
  ir_dim_binding *dims;
  int n_dims;
  bool have_wseed, have_iseed, print;
  uint64_t wseed, iseed;
} run_args;

static bool split_name_value(const char *opt, const char *s, const char **name, const char **value,
                             char **owned) {
  const char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1]) {
    cli_error("%s expects NAME=VALUE, got '%s'", opt, s);
    return false;
  }
  *owned = strndup(s, (size_t)(eq - s));
  *name = *owned;
  *value = eq + 1;
  return true;
}

static bool parse_u64(const char *opt, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') {
    cli_error("%s expects a non-negative integer, got '%s'", opt, s);
    return false;
  }
  *out = v;
  return true;
}

static bool parse_dim_binding(const char *s, ir_dim_binding *b, char **owned) {
  const char *name, *value;
  if (!split_name_value("--dim", s, &name, &value, owned)) return false;
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (errno || *end || v < 0) {
    cli_error("--dim %s: expected a non-negative integer, got '%s'", name, value);
    return false;
  }
  b->name = name;
  b->value = v;
  return true;
}

static void free_run_args(run_args *a, char **owned, int n_owned) {
  for (int i = 0; i < n_owned; i++) free(owned[i]);
  free(a->inputs);
  free(a->outputs);
  free(a->dims);
}

/* Returns 0 to go on, 1 on a usage error, 2 after --help. `owned` collects
 * strings to free (at most argc). */
static int parse_run_args(int argc, char **argv, run_args *a, char **owned, int *n_owned) {
  a->inputs = ir_xcalloc((size_t)argc, sizeof(named_path));
  a->outputs = ir_xcalloc((size_t)argc, sizeof(named_path));
  a->dims = ir_xcalloc((size_t)argc, sizeof(ir_dim_binding));
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_run(stdout);
      return 2;
    } else if ((m = cli_match_value(argc, argv, &i, "--input", &v)) != 0) {
      named_path *p = &a->inputs[a->n_inputs++];
      if (m < 0 || !split_name_value("--input", v, &p->name, &p->path, &owned[(*n_owned)++]))
        return 1;
    } else if ((m = cli_match_value(argc, argv, &i, "--output", &v)) != 0) {
      named_path *p = &a->outputs[a->n_outputs++];
      if (m < 0 || !split_name_value("--output", v, &p->name, &p->path, &owned[(*n_owned)++]))
        return 1;
    } else if ((m = cli_match_value(argc, argv, &i, "--dim", &v)) != 0) {
      if (m < 0 || !parse_dim_binding(v, &a->dims[a->n_dims++], &owned[(*n_owned)++])) return 1;
    } else if ((m = cli_match_value(argc, argv, &i, "--random-weights", &v)) != 0) {
      if (m < 0 || !parse_u64("--random-weights", v, &a->wseed)) return 1;
      a->have_wseed = true;
    } else if ((m = cli_match_value(argc, argv, &i, "--random-inputs", &v)) != 0) {
      if (m < 0 || !parse_u64("--random-inputs", v, &a->iseed)) return 1;
      a->have_iseed = true;
    } else if (!strcmp(arg, "--print")) {
      a->print = true;
    } else if (arg[0] == '-' && arg[1] != 0) {
      cli_error("unknown option '%s' for 'seqc run'; try 'seqc run --help'", arg);
      return 1;
    } else if (a->in) {
      cli_error("'seqc run' takes one input file, got '%s' and '%s'", a->in, arg);
      return 1;
    } else {
      a->in = arg;
    }
  }
  if (!a->in) {
    cli_error("'seqc run' needs an input file; try 'seqc run --help'");
    return 1;
  }
  return 0;
}

/* ---- binding shapes ------------------------------------------------------- */

typedef struct bindings {
  ir_dim_binding *b;
  int32_t n, cap;
} bindings;

static bool bind(bindings *bs, const char *name, int64_t value) {
  for (int32_t i = 0; i < bs->n; i++)
    if (!strcmp(bs->b[i].name, name)) return bs->b[i].value == value;
  ir_grow((void **)&bs->b, &bs->cap, bs->n + 1, sizeof(ir_dim_binding));
  bs->b[bs->n++] = (ir_dim_binding){name, value};
  return true;
}

/* Shape of graph argument `v`; when `file_bytes` >= 0, one unbound bare
 * symbol may be solved from the data size. */
static bool arg_shape(ir_graph *g, ir_val v, bindings *bs, int64_t file_bytes, int64_t *shape) {
  ir_type t = ir_vtype(g, v);
  const char *name = ir_v(g, v)->name ? ir_v(g, v)->name : "?";
  int32_t unknown = -1;
  int64_t known = (int64_t)ir_dtype_size(t.dtype);
  for (int32_t i = 0; i < t.rank; i++) {
    ir_buf err = {0};
    const char *sym;
    if (ir_dim_eval(g->dims, t.dims[i], bs->b, bs->n, &shape[i], &err)) {
      ir_buf_free(&err);
      if (__builtin_mul_overflow(known, shape[i], &known)) known = INT64_MAX;
      continue;
    }
    if (file_bytes >= 0 && unknown < 0 && ir_dim_is_sym(g->dims, t.dims[i], &sym)) {
      ir_buf_free(&err);
      unknown = i;
      continue;
    }
    cli_error("cannot size '%s': %s; bind it with --dim", name, err.s);
    ir_buf_free(&err);
    return false;
  }
  if (unknown < 0) return true;
  const char *sym;
  ir_dim_is_sym(g->dims, t.dims[unknown], &sym);
  if (known == 0 || file_bytes % known != 0) {
    cli_error("cannot solve dim '%s' of '%s' from its file size %lld", sym, name,
              (long long)file_bytes);
    return false;
  }
  shape[unknown] = file_bytes / known;
  bind(bs, sym, shape[unknown]);
  return true;
}

/* splitmix64: tiny, fixed-seed, identical on every platform. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void fill_random(ir_tensor *t, uint64_t seed, int32_t arg_index) {
  uint64_t state = seed * 0x100000001B3ull + (uint64_t)arg_index;
  for (int64_t i = 0; i < t->numel; i++) {
    uint64_t r = next_random(&state);
    double x = ir_dtype_is_float(t->dtype) ? (double)(r >> 11) / 4503599627370496.0 - 1.0
                                           : (double)(r >> 63);
    t->data[i] = ir_round_to_dtype(t->dtype, x);
  }
}

static named_path *find_named(named_path *list, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(list[i].name, name)) return &list[i];
  return NULL;
}

static bool load_arg(ir_graph *g, ir_val v, int32_t index, run_args *a, bindings *bs,
                     ir_tensor *t) {
  const ir_value *val = ir_v(g, v);
  const char *name = val->name ? val->name : "?";
  named_path *src = find_named(a->inputs, a->n_inputs, name);
  int64_t *shape = ir_xcalloc((size_t)val->type.rank + 1, sizeof(int64_t));
  ir_buf err = {0};
  bool ok = false;
  if (src) {
    src->used = true;
    size_t len = 0;
    char *data = ir_read_file(src->path, RUN_MAX_TENSOR_BYTES, &len, &err);
    ok = data && arg_shape(g, v, bs, (int64_t)len, shape) &&
         ir_tensor_alloc(t, val->type.dtype, val->type.rank, shape, 0, &err) &&
         ir_tensor_from_bytes(t, data, len, &err);
    free(data);
  } else if (val->is_param ? a->have_wseed : a->have_iseed) {
    ok = arg_shape(g, v, bs, -1, shape) &&
         ir_tensor_alloc(t, val->type.dtype, val->type.rank, shape, 0, &err);
    if (ok) fill_random(t, val->is_param ? a->wseed : a->iseed, index);
  } else {
    cli_error("%s '%s' has no value: pass --input %s=FILE or %s SEED",
              val->is_param ? "parameter" : "input", name, name,
              val->is_param ? "--random-weights" : "--random-inputs");
  }
  if (!ok && err.len) cli_error("'%s': %s", name, err.s);
  ir_buf_free(&err);
  free(shape);
  return ok;
}

/* ---- results --------------------------------------------------------------- */

static void print_tensor(const char *name, const ir_tensor *t) {
  ir_buf b = {0};
  ir_buf_printf(&b, "%s: %s[", name, ir_dtype_name(t->dtype));
  for (int32_t i = 0; i < t->rank; i++)
    ir_buf_printf(&b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  ir_buf_puts(&b, "] =");
  int64_t n = t->numel < RUN_PRINT_LIMIT ? t->numel : RUN_PRINT_LIMIT;
  for (int64_t i = 0; i < n; i++) {
    ir_buf_puts(&b, i % 8 ? " " : "\n  ");
    if (ir_dtype_is_float(t->dtype))
      ir_buf_put_real(&b, t->data[i], t->dtype != IR_F64);
    else
      ir_buf_printf(&b, "%lld", (long long)t->data[i]);
  }
  if (n < t->numel) ir_buf_printf(&b, "\n  ... (%lld more; use --output)", (long long)(t->numel - n));
  ir_buf_putc(&b, '\n');
  fputs(b.s, stdout);
  ir_buf_free(&b);
}

static bool write_outputs(ir_graph *g, ir_tensor *outs, run_args *a) {
  bool ok = true;
  for (int32_t i = 0; i < g->n_outputs; i++) {
    named_path *dst = find_named(a->outputs, a->n_outputs, g->output_names[i]);
    if (a->print || a->n_outputs == 0) print_tensor(g->output_names[i], &outs[i]);
    if (!dst) continue;
    ir_buf bytes = {0}, err = {0};
    ir_tensor_to_bytes(&outs[i], &bytes);
    if (!ir_write_file_atomic(dst->path, bytes.s ? bytes.s : "", bytes.len, &err)) {
      cli_error("%s", err.s);
      ok = false;
    }
    ir_buf_free(&bytes);
    ir_buf_free(&err);
  }
  return ok;
}

static bool check_all_used(named_path *list, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (!list[i].used) {
      cli_error("the graph has no %s named '%s'", what, list[i].name);
      return false;
    }
  return true;
}

static bool check_output_names(const ir_graph *g, run_args *a) {
  for (int i = 0; i < a->n_outputs; i++)
    for (int32_t o = 0; o < g->n_outputs; o++)
      if (!strcmp(a->outputs[i].name, g->output_names[o])) a->outputs[i].used = true;
  return check_all_used(a->outputs, a->n_outputs, "output");
}

static bool run_graph(ir_graph *g, run_args *a) {
  ir_block *body = ir_b(g, g->body);
  int32_t n_args = body->n_args;
  ir_tensor *args = ir_xcalloc((size_t)n_args + 1, sizeof(ir_tensor));
  ir_tensor *outs = ir_xcalloc((size_t)g->n_outputs + 1, sizeof(ir_tensor));
  bindings bs = {0};
  bool ok = true;
  for (int i = 0; i < a->n_dims && ok; i++) ok = bind(&bs, a->dims[i].name, a->dims[i].value);
  if (!ok) cli_error("--dim binds a symbol twice with different values");
  for (int32_t i = 0; i < n_args && ok; i++)
    ok = load_arg(g, ir_b(g, g->body)->args[i], i, a, &bs, &args[i]);
  ok = ok && check_all_used(a->inputs, a->n_inputs, "input or parameter") &&
       check_output_names(g, a);
  if (ok) {
    ir_buf err = {0};
    ir_interp_opts opts = {bs.b, bs.n, 0};
    ok = ir_interp_run(g, args, n_args, outs, &opts, &err);
    if (!ok) cli_error("run-time error: %s", err.s);
    ir_buf_free(&err);
    ok = ok && write_outputs(g, outs, a);
  }
  for (int32_t i = 0; i < g->n_outputs; i++) ir_tensor_free(&outs[i]);
  for (int32_t i = 0; i < n_args; i++) ir_tensor_free(&args[i]);
  free(args);
  free(outs);
  free(bs.b);
  return ok;
}

int cmd_run(int argc, char **argv) {
  run_args a = {0};
  char **owned = ir_xcalloc((size_t)argc + 1, sizeof(char *));
  int n_owned = 0;
  int rc = parse_run_args(argc, argv, &a, owned, &n_owned);
  if (rc == 0) {
    ir_diag d;
    ir_diag_init(&d);
    cli_model m;
    bool ok = cli_load_model(a.in, &d, &m) && run_graph(m.g, &a);
    cli_model_free(&m);
    rc = ok ? 0 : 1;
  } else if (rc == 2) {
    rc = 0;
  }
  free_run_args(&a, owned, n_owned);
  free(owned);
  return rc;
}
