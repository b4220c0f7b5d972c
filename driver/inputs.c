/*
 * inputs.c - a graph's arguments from the command line, shared by `seqc
 * run` and `seqc check` so both accept the same options and read them the
 * same way: --input NAME=FILE, --dim SYM=N, --weights FILE.safetensors,
 * --random-weights SEED and --random-inputs SEED.
 *
 * Tensors cross the command line as raw little-endian arrays in the
 * argument's dtype (row-major, no header). Their shapes come from the
 * graph's declared types with symbols bound by --dim; a symbol that is still
 * unbound and appears alone as one dim of an input read from a file is
 * solved from the file's size. Arguments are read in signature order, so a
 * symbol solved from one file sizes the arguments after it. Random values
 * come from a fixed-seed generator (splitmix64), so runs are reproducible on
 * every machine. Parameters from --weights are bound first (weights.c checks
 * every name, dtype and shape), so symbols their shapes fix size the inputs.
 */
#include "cli.h"
#include "../ir/interp.h"
#include "../runtime/safetensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Raw tensor files are bounded like every other input. */
#define INPUT_MAX_TENSOR_BYTES ((size_t)1 << 31)

/* ---- options ------------------------------------------------------------------ */

bool cli_split_name_value(const char *opt, const char *s, const char **name, const char **value,
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

bool cli_parse_dim(const char *s, ir_dim_binding *b, char **owned) {
  const char *name, *value;
  if (!cli_split_name_value("--dim", s, &name, &value, owned)) return false;
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

void cli_inputs_init(cli_inputs *in, int argc) {
  memset(in, 0, sizeof *in);
  in->files = ir_xcalloc((size_t)argc + 1, sizeof(cli_named_path));
  in->dims = ir_xcalloc((size_t)argc + 1, sizeof(ir_dim_binding));
  in->owned = ir_xcalloc((size_t)argc + 1, sizeof(char *));
}

void cli_inputs_free(cli_inputs *in) {
  for (int i = 0; i < in->n_owned; i++) free(in->owned[i]);
  free(in->owned);
  free(in->files);
  free(in->dims);
  memset(in, 0, sizeof *in);
}

int cli_inputs_match(cli_inputs *in, int argc, char **argv, int *i) {
  const char *v = NULL;
  int m;
  if ((m = cli_match_value(argc, argv, i, "--input", &v)) != 0) {
    cli_named_path *p = &in->files[in->n_files++];
    return m < 0 || !cli_split_name_value("--input", v, &p->name, &p->path,
                                          &in->owned[in->n_owned++])
               ? -1
               : 1;
  }
  if ((m = cli_match_value(argc, argv, i, "--dim", &v)) != 0)
    return m < 0 || !cli_parse_dim(v, &in->dims[in->n_dims++], &in->owned[in->n_owned++]) ? -1
                                                                                               : 1;
  if ((m = cli_match_value(argc, argv, i, "--weights", &v)) != 0) {
    if (m < 0) return -1;
    in->weights = v;
    return 1;
  }
  if ((m = cli_match_value(argc, argv, i, "--random-weights", &v)) != 0) {
    if (m < 0 || !parse_u64("--random-weights", v, &in->wseed)) return -1;
    in->have_wseed = true;
    return 1;
  }
  if ((m = cli_match_value(argc, argv, i, "--random-inputs", &v)) != 0) {
    if (m < 0 || !parse_u64("--random-inputs", v, &in->iseed)) return -1;
    in->have_iseed = true;
    return 1;
  }
  return 0;
}

bool cli_check_unique(const cli_named_path *list, int n, const char *option) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(list[i].name, list[j].name)) {
        cli_error("'%s' is given twice with %s", list[i].name, option);
        return false;
      }
  return true;
}

bool cli_check_all_used(const cli_named_path *list, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (!list[i].used) {
      cli_error("the graph has no %s named '%s'", what, list[i].name);
      return false;
    }
  return true;
}

/* ---- binding shapes --------------------------------------------------------------- */

static bool bind(cli_args *a, const char *name, int64_t value) {
  for (int32_t i = 0; i < a->n_bindings; i++)
    if (!strcmp(a->bindings[i].name, name)) return a->bindings[i].value == value;
  ir_grow((void **)&a->bindings, &a->cap_bindings, a->n_bindings + 1, sizeof(ir_dim_binding));
  a->bindings[a->n_bindings++] = (ir_dim_binding){name, value};
  return true;
}

/* Shape of graph argument `v`; when `file_bytes` >= 0, one unbound bare
 * symbol may be solved from the data size. */
static bool arg_shape(ir_graph *g, ir_val v, cli_args *a, int64_t file_bytes, int64_t *shape) {
  ir_type t = ir_vtype(g, v);
  const char *name = ir_v(g, v)->name ? ir_v(g, v)->name : "?";
  int32_t unknown = -1;
  int64_t known = (int64_t)ir_dtype_size(t.dtype);
  for (int32_t i = 0; i < t.rank; i++) {
    ir_buf err = {0};
    const char *sym;
    if (ir_dim_eval(g->dims, t.dims[i], a->bindings, a->n_bindings, &shape[i], &err)) {
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
  bind(a, sym, shape[unknown]);
  return true;
}

/* ---- values ------------------------------------------------------------------------- */

/* splitmix64: tiny, fixed-seed, identical on every platform. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Floats uniform in [-1, 1), integers and bools 0 or 1. */
static void fill_random(ir_tensor *t, uint64_t seed, int32_t arg_index) {
  uint64_t state = seed * 0x100000001B3ull + (uint64_t)arg_index;
  for (int64_t i = 0; i < t->numel; i++) {
    uint64_t r = next_random(&state);
    double x = ir_dtype_is_float(t->dtype) ? (double)(r >> 11) / 4503599627370496.0 - 1.0
                                           : (double)(r >> 63);
    t->data[i] = ir_round_to_dtype(t->dtype, x);
  }
}

static cli_named_path *find_named(cli_named_path *list, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(list[i].name, name)) return &list[i];
  return NULL;
}

static bool load_arg(ir_graph *g, ir_val v, int32_t index, cli_inputs *in, cli_args *a,
                     ir_tensor *t) {
  const ir_value *val = ir_v(g, v);
  const char *name = val->name ? val->name : "?";
  cli_named_path *src = find_named(in->files, in->n_files, name);
  int64_t *shape = ir_xcalloc((size_t)val->type.rank + 1, sizeof(int64_t));
  ir_buf err = {0};
  bool ok = false;
  if (src) {
    src->used = true;
    size_t len = 0;
    char *data = ir_read_file(src->path, INPUT_MAX_TENSOR_BYTES, &len, &err);
    ok = data && arg_shape(g, v, a, (int64_t)len, shape) &&
         ir_tensor_alloc(t, val->type.dtype, val->type.rank, shape, 0, &err) &&
         ir_tensor_from_bytes(t, data, len, &err);
    free(data);
  } else if (val->is_param ? in->have_wseed : in->have_iseed) {
    ok = arg_shape(g, v, a, -1, shape) &&
         ir_tensor_alloc(t, val->type.dtype, val->type.rank, shape, 0, &err);
    if (ok) fill_random(t, val->is_param ? in->wseed : in->iseed, index);
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

/* Every parameter from the safetensors file; bare-symbol dims of their
 * declared types are bound from the tensors' shapes. */
static bool load_weights(ir_graph *g, const char *path, cli_args *a, bool *have) {
  rt_st_file *f = NULL;
  if (rt_st_open(path, &f) != RT_OK) {
    cli_error("%s", rt_last_error());
    return false;
  }
  ir_buf err = {0};
  bool ok = cli_load_weights(g, f, a->bindings, a->n_bindings, a->t, have, &err);
  if (!ok) cli_error("%s", err.s);
  ir_buf_free(&err);
  rt_st_close(f);
  const ir_block *body = ir_b(g, g->body);
  for (int32_t i = 0; ok && i < body->n_args; i++) {
    ir_type t = ir_vtype(g, body->args[i]);
    for (int32_t d = 0; have[i] && d < t.rank; d++) {
      const char *sym;
      if (ir_dim_is_sym(g->dims, t.dims[d], &sym) && !bind(a, sym, a->t[i].shape[d])) {
        cli_error("parameter '%s' gives %s = %lld, but it is bound to another value",
                  ir_v(g, body->args[i])->name, sym, (long long)a->t[i].shape[d]);
        ok = false;
      }
    }
  }
  return ok;
}

static bool graph_has_symbol(const ir_graph *g, const char *name) {
  for (ir_val v = 0; v < g->n_vals; v++) {
    ir_type t = g->vals[v].type;
    for (int32_t i = 0; i < t.rank; i++) {
      int32_t n = ir_dim_symbols(g->dims, t.dims[i], NULL, 0);
      const char **names = ir_xcalloc((size_t)n + 1, sizeof(char *));
      ir_dim_symbols(g->dims, t.dims[i], names, n);
      bool found = false;
      for (int32_t k = 0; k < n && !found; k++) found = !strcmp(names[k], name);
      free(names);
      if (found) return true;
    }
  }
  return false;
}

/* A parameter the weights file gave may not come from --input too. */
static bool check_not_given_twice(ir_graph *g, const cli_inputs *in, const bool *have) {
  const ir_block *body = ir_b(g, g->body);
  for (int32_t i = 0; i < body->n_args; i++) {
    const char *name = ir_v(g, body->args[i])->name;
    for (int k = 0; have[i] && name && k < in->n_files; k++)
      if (!strcmp(in->files[k].name, name)) {
        cli_error("parameter '%s' is given by both --weights and --input", name);
        return false;
      }
  }
  return true;
}

bool cli_args_load(ir_graph *g, cli_inputs *in, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->n = ir_b(g, g->body)->n_args;
  a->t = ir_xcalloc((size_t)a->n + 1, sizeof(ir_tensor));
  bool *have = ir_xcalloc((size_t)a->n + 1, sizeof(bool));
  bool ok = cli_check_unique(in->files, in->n_files, "--input");
  for (int i = 0; i < in->n_dims && ok; i++) {
    ok = graph_has_symbol(g, in->dims[i].name);
    if (!ok) cli_error("--dim %s: the graph has no dim symbol '%s'", in->dims[i].name, in->dims[i].name);
    if (ok && !bind(a, in->dims[i].name, in->dims[i].value)) {
      cli_error("--dim binds '%s' twice with different values", in->dims[i].name);
      ok = false;
    }
  }
  if (ok && in->weights) ok = load_weights(g, in->weights, a, have) && check_not_given_twice(g, in, have);
  for (int32_t i = 0; i < a->n && ok; i++)
    if (!have[i]) ok = load_arg(g, ir_b(g, g->body)->args[i], i, in, a, &a->t[i]);
  free(have);
  return ok && cli_check_all_used(in->files, in->n_files, "input or parameter");
}

void cli_args_free(cli_args *a) {
  for (int32_t i = 0; i < a->n; i++) ir_tensor_free(&a->t[i]);
  free(a->t);
  free(a->bindings);
  memset(a, 0, sizeof *a);
}
