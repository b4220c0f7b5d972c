/*
 * abi.c - what a model's shared object exports, written out as C: the
 * public header NAME.h (the documentation users read) and the glue NAME.c
 * that implements it with the generic runtime (runtime/model.h).
 *
 * Both come from one description of the model's interface (abi_plan): its
 * dim symbols, split into those the parameters' shapes fix at open (a
 * vocabulary size V) and those each call gives (B, T); its inputs,
 * parameters and outputs with their dtypes and dims as C expressions over
 * the symbol values. The glue includes the header, so the compiler checks
 * that the two agree.
 */
#include "abi.h"

#include <stdlib.h>
#include <string.h>

/* ---- the plan ------------------------------------------------------------------ */

/* Names a C parameter may not take: C keywords, the standard names the
 * header and glue use, and the glue's own locals and helpers. */
static const char *const reserved_names[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", "_Bool",
    "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t",
    "size_t", "NULL", "INT64_C", "UINT64_C", "INT64_MIN", "EXPORT",
    "c", "m", "n", "s", "d", "out", "max", "call", "ins", "outs", "buf", "path", "opt", "desc",
    "entry", "symbols", "inputs", "params", "outputs", "arg_order", "param_symbols",
    "call_symbols", "model_dims", NULL};

/* Prefixes of the runtime's and the glue's own names. */
static const char *const reserved_prefixes[] = {"rt_", "RT_", "seqrt_", "SEQRT_", "ep_", "d_", NULL};

static bool has_reserved_prefix(const char *s) {
  for (int i = 0; reserved_prefixes[i]; i++)
    if (!strncmp(reserved_prefixes[i], s, strlen(reserved_prefixes[i]))) return true;
  return false;
}

static bool is_reserved(const char *s) {
  for (int i = 0; reserved_names[i]; i++)
    if (!strcmp(reserved_names[i], s)) return true;
  return has_reserved_prefix(s);
}

/* Whether s is reserved or already the C name of a symbol or of one of the
 * first `upto` arguments. */
static bool name_taken(const abi_plan *p, const char *s, int32_t upto) {
  if (is_reserved(s)) return true;
  for (int32_t i = 0; i < p->n_symbols && p->symbol_cnames; i++)
    if (p->symbol_cnames[i] && !strcmp(p->symbol_cnames[i], s)) return true;
  for (int32_t i = 0; i < upto; i++)
    if (!strcmp(p->args[i].cname, s)) return true;
  return false;
}

/* A C parameter name: `name` made an identifier, with '_' prepended while
 * it has a reserved prefix and appended while it is otherwise reserved or
 * taken by a symbol or one of the first `upto` arguments. */
static char *unique_cname(const abi_plan *p, const char *name, int32_t upto) {
  ir_buf b = {0};
  for (const char *s = name; *s; s++) {
    bool ok = *s == '_' || (*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z');
    ir_buf_putc(&b, ok ? *s : '_');
  }
  if (!b.len || (b.s[0] >= '0' && b.s[0] <= '9')) {
    ir_buf t = {0};
    ir_buf_printf(&t, "_%s", b.s ? b.s : "");
    ir_buf_free(&b);
    b = t;
  }
  while (has_reserved_prefix(b.s)) {
    ir_buf t = {0};
    ir_buf_printf(&t, "_%s", b.s);
    ir_buf_free(&b);
    b = t;
  }
  while (name_taken(p, b.s, upto)) {
    ir_buf_putc(&b, '_');
    if (!has_reserved_prefix(b.s)) continue;
    /* "d" + "_" is the reserved "d_": prefix '_' instead, after which no
     * appended '_' can make a reserved prefix again. */
    ir_buf t = {0};
    ir_buf_printf(&t, "_%s", b.s);
    ir_buf_free(&b);
    b = t;
  }
  return b.s;
}

static int32_t find_symbol(const char *const *symbols, int32_t n, const char *name) {
  for (int32_t i = 0; i < n; i++)
    if (!strcmp(symbols[i], name)) return i;
  return -1;
}

static int32_t symbol_index(const abi_plan *p, const char *name) {
  return find_symbol(p->symbols, p->n_symbols, name);
}

static void add_arg(abi_plan *p, const ir_graph *g, ir_val v, abi_role role, const char *name) {
  ir_grow((void **)&p->args, &p->cap_args, p->n_args + 1, sizeof(abi_arg));
  abi_arg *a = &p->args[p->n_args];
  a->name = name;
  a->type = ir_vtype(g, v);
  a->role = role;
  a->cname = unique_cname(p, name, p->n_args);
  p->n_args++;
}

/* Parameter symbols are those that are a whole dim of some parameter; a
 * parameter dim must be a constant or such a symbol alone, so the runtime
 * can bind it from the tensor. */
static bool classify_symbols(abi_plan *p, const ir_graph *g, ir_diag *d) {
  p->is_param_symbol = ir_xcalloc((size_t)p->n_symbols + 1, sizeof(bool));
  for (int32_t i = 0; i < p->n_args; i++) {
    if (p->args[i].role != ABI_PARAM) continue;
    ir_type t = p->args[i].type;
    for (int32_t k = 0; k < t.rank; k++) {
      const char *sym;
      int64_t v;
      if (ir_dim_is_sym(g->dims, t.dims[k], &sym)) {
        p->is_param_symbol[symbol_index(p, sym)] = true;
      } else if (!ir_dim_is_const(g->dims, t.dims[k], &v)) {
        ir_buf dim = {0};
        ir_dim_print(g->dims, t.dims[k], &dim);
        ir_error_at(d, (ir_loc){0}, "parameter '%s': dim %d is '%s'; a parameter dim must be a "
                    "number or a single symbol, so it can be read from the weights", p->args[i].name, k, dim.s);
        ir_buf_free(&dim);
        return false;
      }
    }
  }
  return true;
}

/* A program's symbols and the results of its init op. */
static void plan_program(abi_prog *pr, const char *fn, cg_program *code, const ir_graph *g) {
  pr->fn = fn;
  pr->g = g;
  pr->n_symbols = cg_program_symbols(code, &pr->symbols);
  ir_opid init;
  pr->n_hoisted = cg_graph_hoisted(g, &init);
  pr->hoisted = ir_xcalloc((size_t)pr->n_hoisted + 1, sizeof(abi_tensor));
  for (int32_t k = 0; k < pr->n_hoisted; k++) {
    ir_val v = ir_o(g, init)->out[k];
    pr->hoisted[k] = (abi_tensor){ir_v(g, v)->name ? ir_v(g, v)->name : "hoisted", ir_vtype(g, v)};
  }
}

/* The step program: its state arguments follow the forward arguments and
 * pos; every other symbol it uses must be one of forward's. */
static bool plan_step(abi_plan *p, const cg_model *m, ir_diag *d) {
  plan_program(&p->step, cg_program_name(m->step), m->step, m->step_graph);
  const ir_block *body = ir_b(m->step_graph, m->step_graph->body);
  int32_t first = ir_b(m->forward_graph, m->forward_graph->body)->n_args + 1;
  IR_ASSERT(body->n_args == first + m->n_state);
  p->n_state = m->n_state;
  p->state = ir_xcalloc((size_t)m->n_state + 1, sizeof(abi_tensor));
  for (int32_t k = 0; k < m->n_state; k++)
    p->state[k] = (abi_tensor){ir_v(m->step_graph, body->args[first + k])->name, ir_vtype(m->step_graph, body->args[first + k])};
  p->past_sym = m->past_sym;
  p->cap_sym = m->cap_sym;
  for (int32_t i = 0; i < p->step.n_symbols; i++) {
    const char *s = p->step.symbols[i];
    bool special = (m->past_sym && !strcmp(s, m->past_sym)) || (m->cap_sym && !strcmp(s, m->cap_sym));
    if (!special && symbol_index(p, s) < 0) {
      ir_error_at(d, (ir_loc){0}, "internal error: the step program of '%s' uses symbol '%s', which "
                  "forward does not", p->name, s);
      return false;
    }
  }
  return true;
}

bool abi_plan_make(abi_plan *p, const cg_model *m, ir_diag *d) {
  memset(p, 0, sizeof *p);
  const ir_graph *g = m->forward_graph;
  p->name = cg_program_name(m->forward);
  p->n_symbols = cg_program_symbols(m->forward, &p->symbols);
  if (is_reserved(p->name)) {
    ir_error_at(d, (ir_loc){0}, "model name '%s' cannot prefix a C API: it is a C keyword or "
                "reserved by the seqc runtime; rename the model", p->name);
    return false;
  }
  p->symbol_cnames = ir_xcalloc((size_t)p->n_symbols + 1, sizeof(char *));
  for (int32_t i = 0; i < p->n_symbols; i++) p->symbol_cnames[i] = unique_cname(p, p->symbols[i], 0);
  const ir_block *body = ir_b(g, g->body);
  for (int32_t i = 0; i < body->n_args; i++) {
    const ir_value *v = ir_v(g, body->args[i]);
    add_arg(p, g, body->args[i], v->is_param ? ABI_PARAM : ABI_INPUT, v->name ? v->name : "arg");
  }
  const ir_op *y = ir_o(g, ir_block_terminator(g, g->body));
  for (int32_t i = 0; i < y->n_in; i++) add_arg(p, g, y->in[i], ABI_OUTPUT, g->output_names[i]);
  plan_program(&p->forward, p->name, m->forward, g);
  p->time_symbol = m->time_sym ? symbol_index(p, m->time_sym) : -1;
  p->no_step = m->no_step;
  if (!classify_symbols(p, g, d)) return false;
  if (m->step && p->time_symbol >= 0 && p->is_param_symbol[p->time_symbol]) {
    p->no_step = "its time dim T is fixed by a parameter's shape";
    return true;
  }
  return !m->step || plan_step(p, m, d);
}

void abi_plan_free(abi_plan *p) {
  free(p->forward.hoisted);
  free(p->step.hoisted);
  free(p->state);
  for (int32_t i = 0; i < p->n_args; i++) free(p->args[i].cname);
  for (int32_t i = 0; p->symbol_cnames && i < p->n_symbols; i++) free(p->symbol_cnames[i]);
  free(p->symbol_cnames);
  free(p->args);
  free(p->is_param_symbol);
  memset(p, 0, sizeof *p);
}

/* ---- C text -------------------------------------------------------------------- */

static const char *c_type(ir_dtype dt) {
  switch (dt) {
  case IR_F32: return "float";
  case IR_F64: return "double";
  case IR_F16:
  case IR_BF16: return "uint16_t";
  case IR_I32: return "int32_t";
  case IR_I64: return "int64_t";
  case IR_BOOL: return "uint8_t";
  default: return "void";
  }
}

static const char *rt_dtype_constant(ir_dtype dt) {
  switch (dt) {
  case IR_F32: return "RT_DT_F32";
  case IR_F64: return "RT_DT_F64";
  case IR_F16: return "RT_DT_F16";
  case IR_BF16: return "RT_DT_BF16";
  case IR_I32: return "RT_DT_I32";
  case IR_I64: return "RT_DT_I64";
  case IR_BOOL: return "RT_DT_BOOL";
  default: return "-1";
  }
}

/* Dim d as a C expression over s[] (values of `symbols`) with the glue's
 * saturating helpers. */
static void put_dim_c(const abi_prog *p, const ir_graph *g, ir_dim d, ir_buf *b) {
  ir_dim_view v;
  IR_ASSERT(ir_dim_view_of(g->dims, d, &v));
  switch (v.kind) {
  case IR_DIM_CONST: ir_buf_printf(b, "INT64_C(%lld)", (long long)v.value); return;
  case IR_DIM_SYM: ir_buf_printf(b, "s[%d]", find_symbol(p->symbols, p->n_symbols, v.name)); return;
  case IR_DIM_FLOORDIV:
  case IR_DIM_CEILDIV:
  case IR_DIM_MIN:
  case IR_DIM_MAX: {
    static const char *const fn[] = {"d_floordiv", "d_ceildiv", "d_min", "d_max"};
    ir_buf_printf(b, "%s(", fn[v.kind - IR_DIM_FLOORDIV]);
    put_dim_c(p, g, v.a, b);
    ir_buf_puts(b, ", ");
    put_dim_c(p, g, v.b, b);
    ir_buf_putc(b, ')');
    return;
  }
  case IR_DIM_MUL:
    for (int32_t i = 0; i + 1 < v.n; i++) ir_buf_puts(b, "d_mul(");
    put_dim_c(p, g, v.factors[0], b);
    for (int32_t i = 1; i < v.n; i++) {
      ir_buf_puts(b, ", ");
      put_dim_c(p, g, v.factors[i], b);
      ir_buf_putc(b, ')');
    }
    return;
  case IR_DIM_SUM:
    for (int32_t i = 0; i < v.n; i++) ir_buf_puts(b, "d_add(");
    ir_buf_printf(b, "INT64_C(%lld)", (long long)v.value);
    for (int32_t i = 0; i < v.n; i++) {
      ir_buf_printf(b, ", d_mul(INT64_C(%lld), ", (long long)v.terms[i].coef);
      put_dim_c(p, g, v.terms[i].mono, b);
      ir_buf_puts(b, "))");
    }
    return;
  }
}

static void put_type_comment(const ir_graph *g, ir_type t, ir_buf *b) {
  ir_buf text = {0};
  ir_print_type(g, t, &text);
  ir_buf_puts(b, text.s);
  ir_buf_free(&text);
}

/* "int64_t B, int64_t T" (call symbols), prefixed by `lead` when any. */
static void put_call_symbols(const abi_plan *p, const char *prefix, const char *lead, ir_buf *b) {
  for (int32_t i = 0; i < p->n_symbols; i++)
    if (!p->is_param_symbol[i]) ir_buf_printf(b, "%sint64_t %s%s", lead, prefix, p->symbol_cnames[i]);
}

/* The inputs then the outputs as C parameters, each prefixed by ", ". */
static void put_tensor_params(const abi_plan *p, ir_buf *b) {
  for (int32_t i = 0; i < p->n_args; i++) {
    const abi_arg *a = &p->args[i];
    if (a->role == ABI_INPUT) ir_buf_printf(b, ", const %s *%s", c_type(a->type.dtype), a->cname);
  }
  for (int32_t i = 0; i < p->n_args; i++) {
    const abi_arg *a = &p->args[i];
    if (a->role == ABI_OUTPUT) ir_buf_printf(b, ", %s *%s", c_type(a->type.dtype), a->cname);
  }
}

static void put_forward_params(const abi_plan *p, ir_buf *b) {
  put_call_symbols(p, "", ", ", b);
  put_tensor_params(p, b);
}

/* The call symbols but time, as parameters of reset. */
static void put_stream_symbols(const abi_plan *p, ir_buf *b) {
  for (int32_t i = 0; i < p->n_symbols; i++)
    if (!p->is_param_symbol[i] && i != p->time_symbol) ir_buf_printf(b, ", int64_t %s", p->symbol_cnames[i]);
}

static void put_arg_docs(const abi_plan *p, const ir_graph *g, abi_role role, const char *what, ir_buf *b) {
  for (int32_t i = 0; i < p->n_args; i++) {
    const abi_arg *a = &p->args[i];
    if (a->role != role) continue;
    ir_buf_printf(b, " *   %-12s %s ", a->cname, what);
    put_type_comment(g, a->type, b);
    if (strcmp(a->cname, a->name)) ir_buf_printf(b, " ('%s')", a->name);
    ir_buf_puts(b, ", dense row-major\n");
  }
}

/* Text inside a C comment: never closes it. */
static void put_comment_text(const char *s, ir_buf *b) {
  for (; *s; s++) {
    ir_buf_putc(b, *s);
    if (s[0] == '*' && s[1] == '/') ir_buf_putc(b, ' ');
  }
}

static void put_header_intro(const abi_plan *p, ir_buf *b) {
  const char *n = p->name;
  ir_buf_printf(b, "/*\n * %s.h - the C interface of %s.so, generated by seqc. Do not edit.\n", n, n);
  ir_buf_printf(b, " *\n * %s.so needs nothing at run time but libc and libm. It exports only the\n"
                   " * %s_* functions below. docs/abi.md in seqc describes the ABI in full.\n"
                   " *\n * Threads: the weights (%s) are immutable once open and may be shared by\n"
                   " * any number of threads; a context (%s_ctx: scratch memory and one stream's\n"
                   " * state) is used by one thread at a time. Errors: every function returning\n"
                   " * int returns 0 on success or a nonzero code (1 invalid argument, 2 out of\n"
                   " * memory, 3 I/O error, 4 malformed input, 5 wrong state) and sets a message\n"
                   " * for the calling thread, read with %s_last_error(). No function crashes on\n"
                   " * a bad argument.\n */\n",
                 n, n, n, n, n);
  ir_buf_printf(b, "#ifndef %s_SEQC_H\n#define %s_SEQC_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
                   "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", n, n);
  ir_buf_printf(b, "typedef struct %s %s;         /* loaded weights: immutable, shared by threads */\n", n, n);
  ir_buf_printf(b, "typedef struct %s_ctx %s_ctx; /* one per thread: scratch memory, stream state */\n\n", n, n);
  ir_buf_puts(b, abi_public_types);
}

static void put_open_docs(const abi_plan *p, const ir_graph *g, ir_buf *b) {
  const char *n = p->name;
  ir_buf_puts(b, "\n/* Opens the weights in a safetensors file, which holds exactly these\n"
                 " * tensors (by name; F16/BF16 widen to f32; every missing, extra or\n"
                 " * mismatched tensor is reported at once):\n");
  put_arg_docs(p, g, ABI_PARAM, "parameter", b);
  ir_buf_printf(b, " * The file is read and closed before this returns; values computed from the\n"
                   " * weights alone (transposes, folded biases) are computed here, once. opt may\n"
                   " * be NULL for defaults (set opt->struct_size = sizeof(seqrt_options)); *out\n"
                   " * is NULL on failure. */\n"
                   "int %s_open(const char *safetensors_path, const seqrt_options *opt, %s **out);\n\n", n, n);
  ir_buf_printf(b, "/* The same from a safetensors image in memory (copied; buf may be freed\n"
                   " * after the call). */\n"
                   "int %s_open_memory(const void *buf, size_t n, const seqrt_options *opt, %s **out);\n\n", n, n);
  ir_buf_printf(b, "/* A context able to run calls with dims up to the given maxima. All memory a\n"
                   " * call needs (scratch, stream state) is allocated here, once. */\nint %s_ctx_new(const %s *m", n, n);
  put_call_symbols(p, "max_", ", ", b);
  ir_buf_printf(b, ", %s_ctx **out);\n\n", n);
}

static void put_step_docs(const abi_plan *p, ir_buf *b) {
  const char *n = p->name, *t = p->symbol_cnames[p->time_symbol];
  ir_buf_printf(b, "/* Streaming. A ctx holds one stream: the steps it has consumed since its\n"
                   " * last reset and the state they left (recurrent carries, running sums%s).\n"
                   " * step_n(n1) then step_n(n2) gives what forward gives over the n1 + n2\n"
                   " * steps: per-step outputs are the matching slices, other outputs their value\n"
                   " * after the last step. Inputs without a %s axis are read on every call\n"
                   " * (initial states only before the first step). */\n\n",
                p->cap_sym ? ", a KV cache of capacity max_" : "", t);
  if (p->cap_sym) ir_buf_printf(b, "/* (The KV cache holds max_%s steps: a stream takes at most that many.) */\n\n", t);
  ir_buf_printf(b, "/* Starts a new stream (ctx_new starts one with every dim at its maximum):\n"
                   " * the dims it runs with, each at most the ctx's maximum. */\n"
                   "int %s_reset(%s_ctx *c", n, n);
  put_stream_symbols(p, b);
  ir_buf_puts(b, ");\n\n");
  ir_buf_printf(b, "/* Runs n more steps of the stream: arguments as for %s_forward with\n"
                   " * %s = n (0 <= n <= max_%s). On failure the stream is unchanged. */\n"
                   "int %s_step_n(%s_ctx *c, int64_t n", n, t, t, n, n);
  put_tensor_params(p, b);
  ir_buf_printf(b, ");\n\n/* One step: %s_step_n with n = 1. */\nint %s_step(%s_ctx *c", n, n, n);
  put_tensor_params(p, b);
  ir_buf_puts(b, ");\n\n");
  ir_buf_printf(b, "/* The stream's state as bytes (magic, version, model fingerprint, dims,\n"
                   " * max_%s, position, tensors): its size, a copy into buf (n >= the size), a\n"
                   " * load (the ctx's stream must have the same dims and max_%s: reset it first),\n"
                   " * and a copy from one ctx's stream to another's (same rules). Loading or\n"
                   " * copying continues the stream exactly where it was saved. state_size is 0\n"
                   " * for a NULL ctx. */\n"
                   "size_t %s_state_size(const %s_ctx *c);\n"
                   "int %s_state_save(const %s_ctx *c, void *buf, size_t n);\n"
                   "int %s_state_load(%s_ctx *c, const void *buf, size_t n);\n"
                   "int %s_state_copy(const %s_ctx *from, %s_ctx *to);\n\n",
                t, t, n, n, n, n, n, n, n, n, n);
}

void abi_write_header(const abi_plan *p, ir_buf *b) {
  const char *n = p->name;
  const ir_graph *g = p->forward.g;
  put_header_intro(p, b);
  put_open_docs(p, g, b);
  ir_buf_printf(b, "/* Runs the model over whole sequences.\n *\n");
  put_arg_docs(p, g, ABI_INPUT, "input", b);
  put_arg_docs(p, g, ABI_OUTPUT, "output", b);
  ir_buf_printf(b, " * Dims are the symbol values of this call (each at most the ctx's maximum).\n"
                   " * Inputs are read, outputs written; all are owned by the caller. */\n"
                   "int %s_forward(%s_ctx *c", n, n);
  put_forward_params(p, b);
  ir_buf_puts(b, ");\n\n");
  if (p->step.g) {
    put_step_docs(p, b);
  } else {
    ir_buf_printf(b, "/* %s has no streaming step: ", n);
    put_comment_text(p->no_step ? p->no_step : "unknown reason", b);
    ir_buf_puts(b, ". */\n\n");
  }
  ir_buf_printf(b, "/* Frees a context or the weights; NULL is allowed. Free every context of a\n"
                   " * model before closing it. */\n"
                   "void %s_ctx_free(%s_ctx *c);\nvoid %s_close(%s *m);\n\n", n, n, n, n);
  ir_buf_printf(b, "/* The message of the calling thread's last failure. */\n"
                   "const char *%s_last_error(void);\n\n", n);
  ir_buf_printf(b, "/* Inputs, parameters, outputs, dims and dtypes, for generic tools. */\n"
                   "const seqrt_model_desc *%s_descriptor(void);\n\n", n);
  ir_buf_printf(b, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* ---- the glue -------------------------------------------------------------------- */

static const char glue_helpers[] =
    "/* Dim arithmetic that never traps: an overflow or a zero divisor gives\n"
    " * INT64_MIN, which stays negative through every helper and is refused. */\n"
    "static int64_t d_add(int64_t a, int64_t b) {\n"
    "  int64_t r;\n"
    "  return a == INT64_MIN || b == INT64_MIN || __builtin_add_overflow(a, b, &r) ? INT64_MIN : r;\n"
    "}\n"
    "static int64_t d_mul(int64_t a, int64_t b) {\n"
    "  int64_t r;\n"
    "  return a == INT64_MIN || b == INT64_MIN || __builtin_mul_overflow(a, b, &r) ? INT64_MIN : r;\n"
    "}\n"
    "static int64_t d_floordiv(int64_t a, int64_t b) {\n"
    "  if (a == INT64_MIN || b == INT64_MIN || b == 0 || (a == INT64_MIN + 1 && b == -1)) return INT64_MIN;\n"
    "  int64_t q = a / b;\n"
    "  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;\n"
    "}\n"
    "static int64_t d_ceildiv(int64_t a, int64_t b) {\n"
    "  if (a == INT64_MIN || b == INT64_MIN || b == 0 || (a == INT64_MIN + 1 && b == -1)) return INT64_MIN;\n"
    "  int64_t q = a / b;\n"
    "  return (a % b != 0 && (a < 0) == (b < 0)) ? q + 1 : q;\n"
    "}\n"
    "static int64_t d_min(int64_t a, int64_t b) { return a == INT64_MIN || b == INT64_MIN ? INT64_MIN : a < b ? a : b; }\n"
    "static int64_t d_max(int64_t a, int64_t b) { return a == INT64_MIN || b == INT64_MIN ? INT64_MIN : a > b ? a : b; }\n";

/* The array-form entry points every descriptor carries: the runtime's
 * functions behind void pointers. */
static const char entry_points[] =
    "\nstatic const rt_model_desc desc;\n"
    "static int ep_open(const char *path, const seqrt_options *opt, void **m) {\n"
    "  return rt_model_open(&desc, path, opt, (rt_model **)m);\n}\n"
    "static int ep_open_memory(const void *buf, size_t n, const seqrt_options *opt, void **m) {\n"
    "  return rt_model_open_memory(&desc, buf, n, opt, (rt_model **)m);\n}\n"
    "static int ep_ctx_new(const void *m, const int64_t *max, void **c) {\n"
    "  return rt_ctx_new((const rt_model *)m, max, (rt_ctx **)c);\n}\n"
    "static int ep_forward(void *c, const int64_t *call, const void *const *ins, void *const *outs) {\n"
    "  return rt_forward((rt_ctx *)c, call, ins, outs);\n}\n"
    "static void ep_ctx_free(void *c) { rt_ctx_free((rt_ctx *)c); }\n"
    "static void ep_close(void *m) { rt_model_close((rt_model *)m); }\n";

static const char stream_entry_points[] =
    "static int ep_step_n(void *c, int64_t n, const void *const *ins, void *const *outs) {\n"
    "  return rt_step_n((rt_ctx *)c, n, ins, outs);\n}\n"
    "static int ep_reset(void *c, const int64_t *call) { return rt_reset((rt_ctx *)c, call); }\n"
    "static size_t ep_state_size(const void *c) { return rt_state_size((const rt_ctx *)c); }\n"
    "static int ep_state_save(const void *c, void *buf, size_t n) {\n"
    "  return rt_state_save((const rt_ctx *)c, buf, n);\n}\n"
    "static int ep_state_load(void *c, const void *buf, size_t n) {\n"
    "  return rt_state_load((rt_ctx *)c, buf, n);\n}\n"
    "static int ep_state_copy(const void *from, void *to) {\n"
    "  return rt_state_copy((const rt_ctx *)from, (rt_ctx *)to);\n}\n";

static void put_entry_points(const abi_plan *p, ir_buf *b) {
  ir_buf_puts(b, entry_points);
  if (p->step.g) ir_buf_puts(b, stream_entry_points);
  ir_buf_printf(b, "static const seqrt_entry_points entry = {ep_open, ep_open_memory, ep_ctx_new, ep_forward,\n"
                   "    ep_ctx_free, ep_close, rt_last_error, %s};\n",
                p->step.g ? "ep_step_n, ep_reset, ep_state_size, ep_state_save, ep_state_load, ep_state_copy"
                          : "NULL, NULL, NULL, NULL, NULL, NULL");
}

/* A C string literal of s (escaped). */
static void put_c_string(const char *s, ir_buf *b) {
  ir_buf_putc(b, '"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') ir_buf_printf(b, "\\%c", ch);
    else if (ch < 32 || ch >= 127) ir_buf_printf(b, "\\%03o", ch);
    else ir_buf_putc(b, (char)ch);
  }
  ir_buf_putc(b, '"');
}

/* `static const rt_tensor_desc table[]` for tensors whose dims index the
 * symbols of program pr. */
static void put_tensor_list(const abi_prog *pr, const abi_tensor *t, int32_t n, const char *table,
                            ir_buf *b) {
  for (int32_t i = 0; i < n; i++) {
    ir_buf_printf(b, "static const int32_t %s_%d_syms[] = {", table, i);
    for (int32_t k = 0; k < t[i].type.rank; k++) {
      const char *sym;
      int32_t s = ir_dim_is_sym(pr->g->dims, t[i].type.dims[k], &sym) ? find_symbol(pr->symbols, pr->n_symbols, sym) : -1;
      ir_buf_printf(b, "%s%d", k ? ", " : "", s);
    }
    ir_buf_printf(b, "%s};\n", t[i].type.rank ? "" : "-1");
  }
  ir_buf_printf(b, "static const rt_tensor_desc %s[] = {\n", table);
  for (int32_t i = 0; i < n; i++) {
    ir_buf_puts(b, "    {");
    put_c_string(t[i].name, b);
    ir_buf_printf(b, ", %s, %d, %s_%d_syms},\n", rt_dtype_constant(t[i].type.dtype), t[i].type.rank, table, i);
  }
  if (n == 0) ir_buf_puts(b, "    {0}\n");
  ir_buf_puts(b, "};\n");
}

/* `static void fn(s, d)` writing the dims of the tensors, ranks concatenated. */
static void put_dims_list(const abi_prog *pr, const abi_tensor *t, int32_t n, const char *fn, ir_buf *b) {
  ir_buf_printf(b, "static void %s(const int64_t *s, int64_t *d) {\n  (void)s;\n", fn);
  int32_t k = 0;
  for (int32_t i = 0; i < n; i++)
    for (int32_t j = 0; j < t[i].type.rank; j++) {
      ir_buf_printf(b, "  d[%d] = ", k++);
      put_dim_c(pr, pr->g, t[i].type.dims[j], b);
      ir_buf_puts(b, ";\n");
    }
  if (k == 0) ir_buf_puts(b, "  (void)d;\n");
  ir_buf_puts(b, "}\n");
}

/* The forward arguments of one role as tensors. */
static int32_t role_tensors(const abi_plan *p, abi_role role, abi_tensor *out) {
  int32_t n = 0;
  for (int32_t i = 0; i < p->n_args; i++)
    if (p->args[i].role == role) out[n++] = (abi_tensor){p->args[i].name, p->args[i].type};
  return n;
}

static void put_tensor_table(const abi_plan *p, abi_role role, const char *table, ir_buf *b) {
  abi_tensor *t = ir_xcalloc((size_t)p->n_args + 1, sizeof(abi_tensor));
  put_tensor_list(&p->forward, t, role_tensors(p, role, t), table, b);
  free(t);
}

static int32_t count_role(const abi_plan *p, abi_role role) {
  int32_t n = 0;
  for (int32_t i = 0; i < p->n_args; i++) n += p->args[i].role == role;
  return n;
}

static void put_dims_function(const abi_plan *p, ir_buf *b) {
  abi_tensor *t = ir_xcalloc((size_t)p->n_args + 1, sizeof(abi_tensor));
  int32_t n = 0;
  static const abi_role order[] = {ABI_INPUT, ABI_PARAM, ABI_OUTPUT};
  for (int r = 0; r < 3; r++) n += role_tensors(p, order[r], t + n);
  put_dims_list(&p->forward, t, n, "model_dims", b);
  free(t);
}

/* `static const char *const var[]`: what each op of the program is, for
 * the runtime's messages about failed checks (NULL for erased ops). */
static void put_op_names(const abi_prog *pr, const char *var, ir_buf *b) {
  ir_buf_printf(b, "static const char *const %s[] = {\n", var);
  ir_buf text = {0};
  for (ir_opid op = 0; op < pr->g->n_ops; op++) {
    const ir_op *o = ir_o(pr->g, op);
    if (o->erased) {
      ir_buf_puts(b, "    NULL,\n");
      continue;
    }
    text.len = 0;
    ir_op_describe(pr->g, op, &text);
    if (o->loc.file) ir_buf_printf(&text, " at %s:%d:%d", o->loc.file, o->loc.line, o->loc.col);
    ir_buf_puts(b, "    ");
    put_c_string(text.s, b);
    ir_buf_puts(b, ",\n");
  }
  ir_buf_free(&text);
  ir_buf_printf(b, "%s};\n", pr->g->n_ops ? "" : "    NULL\n");
}

/* A program's hoisted values, op names, symbol map and seqrt_program. */
static void put_program(const abi_prog *pr, const char *var, const char *map, ir_buf *b) {
  ir_buf table = {0}, dims = {0}, ops = {0};
  ir_buf_printf(&table, "%s_hoisted", var);
  ir_buf_printf(&dims, "%s_hoisted_dims", var);
  ir_buf_printf(&ops, "%s_ops", var);
  put_tensor_list(pr, pr->hoisted, pr->n_hoisted, table.s, b);
  put_dims_list(pr, pr->hoisted, pr->n_hoisted, dims.s, b);
  put_op_names(pr, ops.s, b);
  ir_buf_printf(b, "static const seqrt_program %s = {%s_run, %s_scratch_bytes, %s_init, %s_init_scratch_bytes,\n"
                   "    %d, %s, %s, %d, %s, %d, %s};\n",
                var, pr->fn, pr->fn, pr->fn, pr->fn, pr->n_hoisted, table.s, dims.s, pr->n_symbols, map,
                pr->g->n_ops, ops.s);
  ir_buf_free(&table);
  ir_buf_free(&dims);
  ir_buf_free(&ops);
}

static void put_step_program(const abi_plan *p, ir_buf *b) {
  ir_buf_puts(b, "static const int32_t step_symbol_map[] = {");
  for (int32_t i = 0; i < p->step.n_symbols; i++) {
    const char *s = p->step.symbols[i];
    int32_t k = p->past_sym && !strcmp(s, p->past_sym)  ? -1
                : p->cap_sym && !strcmp(s, p->cap_sym) ? -2
                                                       : symbol_index(p, s);
    ir_buf_printf(b, "%s%s", i ? ", " : "", k == -1 ? "SEQRT_SYM_PAST" : k == -2 ? "SEQRT_SYM_CAP" : "");
    if (k >= 0) ir_buf_printf(b, "%d", k);
  }
  ir_buf_printf(b, "%s};\n", p->step.n_symbols ? "" : "0");
  put_program(&p->step, "step_program", "step_symbol_map", b);
  put_tensor_list(&p->step, p->state, p->n_state, "state", b);
  put_dims_list(&p->step, p->state, p->n_state, "state_dims", b);
}

static void put_code_declarations(const abi_prog *pr, ir_buf *b) {
  ir_buf_printf(b, "int32_t %s_run(const int64_t *, void *const *, void *const *, void *, void *);\n"
                   "int64_t %s_scratch_bytes(const int64_t *);\n"
                   "int32_t %s_init(const int64_t *, void *const *, void *const *, void *);\n"
                   "int64_t %s_init_scratch_bytes(const int64_t *);\n",
                pr->fn, pr->fn, pr->fn, pr->fn);
}

static void put_symbol_tables(const abi_plan *p, ir_buf *b) {
  ir_buf_puts(b, "static const char *const symbols[] = {");
  for (int32_t i = 0; i < p->n_symbols; i++) ir_buf_printf(b, "%s\"%s\"", i ? ", " : "", p->symbols[i]);
  ir_buf_printf(b, "%s};\n", p->n_symbols ? "" : "NULL");
  for (int kind = 0; kind < 2; kind++) {
    ir_buf_printf(b, "static const int32_t %s_symbols[] = {", kind ? "call" : "param");
    int32_t n = 0;
    for (int32_t i = 0; i < p->n_symbols; i++)
      if (p->is_param_symbol[i] == !kind) ir_buf_printf(b, "%s%d", n++ ? ", " : "", i);
    ir_buf_printf(b, "%s};\n", n ? "" : "-1");
  }
}

static void put_arg_order(const abi_plan *p, ir_buf *b) {
  int32_t n_inputs = count_role(p, ABI_INPUT), in = 0, par = 0;
  ir_buf_puts(b, "static const int32_t arg_order[] = {");
  int32_t n = 0;
  for (int32_t i = 0; i < p->n_args; i++) {
    if (p->args[i].role == ABI_OUTPUT) continue;
    int32_t v = p->args[i].role == ABI_INPUT ? in++ : n_inputs + par++;
    ir_buf_printf(b, "%s%d", n++ ? ", " : "", v);
  }
  ir_buf_printf(b, "%s};\n", n ? "" : "-1");
}

/* Whether some op of g's body other than its init reads graph argument i
 * (regions are isolated from above: a nested read is an operand of a
 * top-level op). */
static bool run_reads_arg(const ir_graph *g, int32_t i) {
  ir_val v = ir_b(g, g->body)->args[i];
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    for (int32_t k = 0; o->kind != IR_OP_INIT && k < o->n_in; k++)
      if (o->in[k] == v) return true;
  }
  return false;
}

/* `param_init_only`: the parameters neither program's run reads
 * (seqrt_model_desc); the name NULL when there are none. */
static const char *put_param_init_only(const abi_plan *p, ir_buf *b) {
  ir_buf flags = {0};
  int32_t n = 0;
  for (int32_t i = 0; i < p->n_args; i++) {
    if (p->args[i].role != ABI_PARAM) continue;
    bool only = !run_reads_arg(p->forward.g, i) && !(p->step.g && run_reads_arg(p->step.g, i));
    ir_buf_printf(&flags, "%s%d", flags.len ? ", " : "", only);
    n += only;
  }
  if (n) ir_buf_printf(b, "static const uint8_t param_init_only[] = {%s};\n", flags.s);
  ir_buf_free(&flags);
  return n ? "param_init_only" : "NULL";
}

static int32_t count_call_symbols(const abi_plan *p) {
  int32_t n = 0;
  for (int32_t i = 0; i < p->n_symbols; i++) n += !p->is_param_symbol[i];
  return n;
}

/* An array literal of the call symbols (or of their maxima with prefix). */
static void put_call_array(const abi_plan *p, const char *name, const char *prefix, ir_buf *b) {
  int32_t n = count_call_symbols(p);
  ir_buf_printf(b, "  const int64_t %s[] = {", name);
  int32_t k = 0;
  for (int32_t i = 0; i < p->n_symbols; i++)
    if (!p->is_param_symbol[i]) ir_buf_printf(b, "%s%s%s", k++ ? ", " : "", prefix, p->symbol_cnames[i]);
  ir_buf_printf(b, "%s};\n", n ? "" : "0");
}

/* `ins` and `outs`: the C parameters as pointer arrays. */
static void put_tensor_arrays(const abi_plan *p, ir_buf *b) {
  static const abi_role roles[] = {ABI_INPUT, ABI_OUTPUT};
  for (int r = 0; r < 2; r++) {
    ir_buf_printf(b, "  %s *%s[] = {", r ? "void" : "const void", r ? "outs" : "ins");
    int32_t k = 0;
    for (int32_t i = 0; i < p->n_args; i++)
      if (p->args[i].role == roles[r]) ir_buf_printf(b, "%s%s", k++ ? ", " : "", p->args[i].cname);
    ir_buf_printf(b, "%s};\n", k ? "" : "NULL");
  }
}

static void put_step_wrappers(const abi_plan *p, ir_buf *b) {
  const char *n = p->name;
  ir_buf_printf(b, "EXPORT int %s_reset(%s_ctx *c", n, n);
  put_stream_symbols(p, b);
  ir_buf_puts(b, ") {\n  const int64_t call[] = {");
  int32_t k = 0;
  for (int32_t i = 0; i < p->n_symbols; i++)
    if (!p->is_param_symbol[i] && i != p->time_symbol) ir_buf_printf(b, "%s%s", k++ ? ", " : "", p->symbol_cnames[i]);
  ir_buf_printf(b, "%s};\n  return rt_reset((rt_ctx *)c, call);\n}\n\n", k ? "" : "0");
  ir_buf_printf(b, "EXPORT int %s_step_n(%s_ctx *c, int64_t n", n, n);
  put_tensor_params(p, b);
  ir_buf_puts(b, ") {\n");
  put_tensor_arrays(p, b);
  ir_buf_puts(b, "  return rt_step_n((rt_ctx *)c, n, ins, outs);\n}\n\n");
  /* Not through NAME_step_n: a parameter may carry that name. */
  ir_buf_printf(b, "EXPORT int %s_step(%s_ctx *c", n, n);
  put_tensor_params(p, b);
  ir_buf_puts(b, ") {\n");
  put_tensor_arrays(p, b);
  ir_buf_puts(b, "  return rt_step_n((rt_ctx *)c, 1, ins, outs);\n}\n\n");
  ir_buf_printf(b, "EXPORT size_t %s_state_size(const %s_ctx *c) { return rt_state_size((const rt_ctx *)c); }\n"
                   "EXPORT int %s_state_save(const %s_ctx *c, void *buf, size_t n) {\n"
                   "  return rt_state_save((const rt_ctx *)c, buf, n);\n}\n"
                   "EXPORT int %s_state_load(%s_ctx *c, const void *buf, size_t n) {\n"
                   "  return rt_state_load((rt_ctx *)c, buf, n);\n}\n"
                   "EXPORT int %s_state_copy(const %s_ctx *from, %s_ctx *to) {\n"
                   "  return rt_state_copy((const rt_ctx *)from, (rt_ctx *)to);\n}\n\n",
                n, n, n, n, n, n, n, n, n);
}

static void put_wrappers(const abi_plan *p, ir_buf *b) {
  const char *n = p->name;
  ir_buf_printf(b, "EXPORT int %s_open(const char *path, const seqrt_options *opt, %s **out) {\n"
                   "  return rt_model_open(&desc, path, opt, (rt_model **)out);\n}\n\n", n, n);
  ir_buf_printf(b, "EXPORT int %s_open_memory(const void *buf, size_t n, const seqrt_options *opt, %s **out) {\n"
                   "  return rt_model_open_memory(&desc, buf, n, opt, (rt_model **)out);\n}\n\n", n, n);
  ir_buf_printf(b, "EXPORT int %s_ctx_new(const %s *m", n, n);
  put_call_symbols(p, "max_", ", ", b);
  ir_buf_printf(b, ", %s_ctx **out) {\n", n);
  put_call_array(p, "max", "max_", b);
  ir_buf_printf(b, "  return rt_ctx_new((const rt_model *)m, max, (rt_ctx **)out);\n}\n\n");
  ir_buf_printf(b, "EXPORT int %s_forward(%s_ctx *c", n, n);
  put_forward_params(p, b);
  ir_buf_puts(b, ") {\n");
  put_call_array(p, "call", "", b);
  put_tensor_arrays(p, b);
  ir_buf_puts(b, "  return rt_forward((rt_ctx *)c, call, ins, outs);\n}\n\n");
  if (p->step.g) put_step_wrappers(p, b);
  ir_buf_printf(b, "EXPORT void %s_ctx_free(%s_ctx *c) { rt_ctx_free((rt_ctx *)c); }\n", n, n);
  ir_buf_printf(b, "EXPORT void %s_close(%s *m) { rt_model_close((rt_model *)m); }\n", n, n);
  ir_buf_printf(b, "EXPORT const char *%s_last_error(void) { return rt_last_error(); }\n", n);
  ir_buf_printf(b, "EXPORT const seqrt_model_desc *%s_descriptor(void) { return &desc; }\n", n);
}

void abi_write_glue(const abi_plan *p, uint64_t fingerprint, ir_buf *b) {
  const char *n = p->name;
  ir_buf_printf(b, "/* %s.c - the glue of %s.so, generated by seqc: its exported API on top of\n"
                   " * the generic runtime (runtime/model.h). Do not edit. */\n"
                   "#include \"%s.h\"\n#include \"runtime/model.h\"\n\n"
                   "#define EXPORT __attribute__((visibility(\"default\")))\n\n", n, n, n);
  put_code_declarations(&p->forward, b);
  if (p->step.g) put_code_declarations(&p->step, b);
  ir_buf_putc(b, '\n');
  ir_buf_puts(b, glue_helpers);
  ir_buf_putc(b, '\n');
  put_symbol_tables(p, b);
  put_arg_order(p, b);
  put_tensor_table(p, ABI_INPUT, "inputs", b);
  put_tensor_table(p, ABI_PARAM, "params", b);
  put_tensor_table(p, ABI_OUTPUT, "outputs", b);
  put_dims_function(p, b);
  put_program(&p->forward, "forward_program", "NULL", b);
  if (p->step.g) put_step_program(p, b);
  int32_t n_param_syms = p->n_symbols - count_call_symbols(p);
  const char *init_only = put_param_init_only(p, b);
  put_entry_points(p, b);
  ir_buf_printf(b, "\nstatic const rt_model_desc desc = {\n"
                   "    \"%s\", UINT64_C(0x%016llx), %d, symbols,\n"
                   "    %d, inputs, %d, params, arg_order, %d, outputs,\n"
                   "    model_dims, %d, param_symbols, %d, call_symbols, &entry, &forward_program,\n"
                   "    %d, ",
                n, (unsigned long long)fingerprint, p->n_symbols, count_role(p, ABI_INPUT),
                count_role(p, ABI_PARAM), count_role(p, ABI_OUTPUT), n_param_syms,
                count_call_symbols(p), p->time_symbol);
  if (p->step.g) {
    ir_buf_printf(b, "NULL, &step_program, %d, state, state_dims, %s};\n\n", p->n_state, init_only);
  } else {
    put_c_string(p->no_step ? p->no_step : "it cannot stream", b);
    ir_buf_printf(b, ", NULL, 0, NULL, NULL, %s};\n\n", init_only);
  }
  put_wrappers(p, b);
}
