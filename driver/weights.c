/*
 * weights.c - weights from safetensors files for the command line: `seqc
 * weights FILE` lists a file's tensors, and cli_load_weights binds a file to
 * a graph's parameters for `seqc run --weights` and `seqc check --weights`.
 *
 * Binding is strict and reports every problem at once: a parameter with no
 * tensor, a tensor no parameter takes, a dtype that does not convert, a
 * shape that differs from the declared one (dims whose symbols are not bound
 * yet are taken from the file and checked later, as for any argument).
 * Floating tensors widen (F16/BF16 to f32 or f64, F32 to f64); integer and
 * bool tensors must match exactly. Data is read with memcpy: safetensors
 * offsets need not be aligned.
 */
#include "cli.h"
#include "../ir/interp.h"
#include "../runtime/json.h"
#include "../runtime/safetensors.h"

#include <stdlib.h>
#include <string.h>

void help_weights(FILE *f) {
  fputs("usage: seqc weights FILE.safetensors\n"
        "\n"
        "List the tensors of a safetensors file: name, dtype, shape and bytes, in the\n"
        "file's order, after validating the whole file.\n",
        f);
}

static void put_st_type(ir_buf *b, const rt_st_tensor *t) {
  ir_buf_printf(b, "%s[", rt_st_dtype_name(t->dtype));
  for (size_t i = 0; i < t->rank; i++) ir_buf_printf(b, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  ir_buf_putc(b, ']');
}

int cmd_weights(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    help_weights(stdout);
    return 0;
  }
  if (argc != 2 || (argv[1][0] == '-' && argv[1][1])) {
    cli_error("'seqc weights' takes one safetensors file; try 'seqc weights --help'");
    return 1;
  }
  rt_st_file *f = NULL;
  if (rt_st_open(argv[1], &f) != RT_OK) {
    cli_error("%s", rt_last_error());
    return 1;
  }
  size_t n = rt_st_count(f), width = 4;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(rt_st_tensor_at(f, i)->name);
    if (len > width) width = len;
  }
  ir_buf out = {0};
  for (size_t i = 0; i < n; i++) {
    const rt_st_tensor *t = rt_st_tensor_at(f, i);
    ir_buf type = {0};
    char name[256];
    put_st_type(&type, t);
    /* Names come from the file: control bytes are shown escaped. */
    rt_json_escape(t->name, strlen(t->name), name, sizeof name);
    ir_buf_printf(&out, "%-*s  %-20s  %zu bytes\n", (int)width, name, type.s, t->nbytes);
    ir_buf_free(&type);
  }
  ir_buf_printf(&out, "%zu tensors\n", n);
  fputs(out.s, stdout);
  ir_buf_free(&out);
  rt_st_close(f);
  return 0;
}

/* ---- binding ----------------------------------------------------------------- */

/* The IR dtype with the same storage as a file dtype; false for file
 * dtypes seqc has no counterpart of (U8, I16, ...). */
static bool storage_dtype(rt_st_dtype t, ir_dtype *out) {
  static const struct {
    rt_st_dtype st;
    ir_dtype ir;
  } map[] = {{RT_ST_F32, IR_F32}, {RT_ST_F64, IR_F64}, {RT_ST_F16, IR_F16}, {RT_ST_BF16, IR_BF16},
             {RT_ST_I32, IR_I32}, {RT_ST_I64, IR_I64}, {RT_ST_BOOL, IR_BOOL}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].st == t) {
      *out = map[i].ir;
      return true;
    }
  return false;
}

/* Floating tensors widen; everything else must match exactly. */
static bool converts(rt_st_dtype from, ir_dtype to) {
  ir_dtype st;
  if (!storage_dtype(from, &st)) return false;
  if (st == to) return true;
  if (to == IR_F64) return ir_dtype_is_float(st);
  return to == IR_F32 && (st == IR_F16 || st == IR_BF16);
}

/* Problems are lines in `err`; returns whether the declared shape matches. */
static bool shape_matches(const ir_graph *g, ir_type ty, const rt_st_tensor *t,
                          const ir_dim_binding *b, int32_t nb) {
  if ((size_t)ty.rank != t->rank) return false;
  for (int32_t i = 0; i < ty.rank; i++) {
    int64_t v;
    if (ir_dim_eval(g->dims, ty.dims[i], b, nb, &v, NULL) && v != t->shape[i]) return false;
  }
  return true;
}

static void report_mismatch(ir_buf *err, const ir_graph *g, const char *name, ir_type ty,
                            const rt_st_tensor *t, const char *what) {
  ir_buf expected = {0}, actual = {0};
  ir_print_type(g, ty, &expected);
  put_st_type(&actual, t);
  ir_buf_printf(err, "\n  parameter '%s': %s: expected %s, the file has %s", name, what, expected.s,
                actual.s);
  ir_buf_free(&expected);
  ir_buf_free(&actual);
}

/* Decode through the interpreter's storage reader (exact for every dtype,
 * unaligned data included), then widen to the parameter's dtype. */
static bool convert_tensor(const rt_st_tensor *t, ir_dtype dt, ir_tensor *out, ir_buf *err) {
  ir_dtype st = dt;
  storage_dtype(t->dtype, &st);
  int64_t *shape = ir_xcalloc(t->rank + 1, sizeof(int64_t));
  memcpy(shape, t->shape, t->rank * sizeof(int64_t));
  bool ok = ir_tensor_alloc(out, st, (int32_t)t->rank, shape, 0, err) &&
            ir_tensor_from_bytes(out, t->data, t->nbytes, err);
  free(shape);
  out->dtype = dt; /* widening is exact: the values stay as they are */
  return ok;
}

bool cli_load_weights(ir_graph *g, const rt_st_file *f, const ir_dim_binding *b, int32_t nb,
                      ir_tensor *args, bool *have, ir_buf *err) {
  const ir_block *body = ir_b(g, g->body);
  ir_buf problems = {0};
  size_t n_tensors = rt_st_count(f);
  bool *used = ir_xcalloc(n_tensors + 1, sizeof(bool));
  for (int32_t i = 0; i < body->n_args; i++) {
    const ir_value *v = ir_v(g, body->args[i]);
    if (!v->is_param) continue;
    const char *name = v->name ? v->name : "?";
    const rt_st_tensor *t = rt_st_find(f, name);
    ir_buf why = {0};
    if (!t) {
      ir_buf expected = {0};
      ir_print_type(g, v->type, &expected);
      ir_buf_printf(&problems, "\n  parameter '%s' (%s): no tensor of that name", name, expected.s);
      ir_buf_free(&expected);
      continue;
    }
    for (size_t k = 0; k < n_tensors; k++) used[k] |= rt_st_tensor_at(f, k) == t;
    if (!converts(t->dtype, v->type.dtype))
      report_mismatch(&problems, g, name, v->type, t, "dtype does not convert");
    else if (!shape_matches(g, v->type, t, b, nb))
      report_mismatch(&problems, g, name, v->type, t, "shape differs");
    else if (convert_tensor(t, v->type.dtype, &args[i], &why))
      have[i] = true;
    else
      ir_buf_printf(&problems, "\n  parameter '%s': %s", name, why.s);
    ir_buf_free(&why);
  }
  for (size_t k = 0; k < n_tensors; k++)
    if (!used[k]) {
      char name[256];
      const char *raw = rt_st_tensor_at(f, k)->name;
      rt_json_escape(raw, strlen(raw), name, sizeof name);
      ir_buf_printf(&problems, "\n  tensor '%s': no parameter of that name", name);
    }
  free(used);
  bool ok = problems.len == 0;
  if (!ok) {
    ir_buf_printf(err, "%s does not match the parameters of '%s':%s", rt_st_name(f), g->name, problems.s);
    for (int32_t i = 0; i < body->n_args; i++)
      if (have[i]) {
        ir_tensor_free(&args[i]);
        have[i] = false;
      }
  }
  ir_buf_free(&problems);
  return ok;
}
