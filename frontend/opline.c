/*
 * opline.c - op lines: one YAML scalar such as
 *
 *     hn = tanh(add(matmul(xt, W, transpose_b=true), 0.5))
 *     a, b = split(x, axis=-1, sizes=[H, H])
 *     m = constant([1, 2, 3], dtype=f32)
 *
 * becomes ops appended to the current block (docs/yaml.md, "Op lines").
 *
 * Grammar, read by recursive descent over the scalar's bytes:
 *   line  := NAME (',' NAME)* '=' call
 *   call  := OPNAME '(' [arg (',' arg)*] ')'
 *   arg   := NAME '=' VALUE          keyword: an attribute, or dtype/shape/value
 *          | call | NAME | NUMBER | '[' ... ']'
 * A keyword's VALUE is the text up to the ',' or ')' that ends it outside
 * brackets, read by the attribute's declared kind in ops.def (so `end=T-1`
 * is a dim and `sizes=[T, 2*H]` a dim list). Nested calls are built as
 * they are read (their ops come first) and must have one result; calls
 * nest at most FE_MAX_CALL_DEPTH deep, so recursion is bounded.
 *
 * Literal operands become rank-0 constants of the dtype of the op's first
 * non-literal operand (select skips its condition), so `mul(x, 0.5)`
 * broadcasts. Ops whose result type is declared (constant, iota, cast,
 * reshape, broadcast) take it from `dtype=` and `shape=`; all others get
 * their result types from shape inference, whose errors point at the op
 * name. Every error points at the exact column when the scalar is plain and
 * on one line.
 */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

typedef enum arg_kind { ARG_VALUE, ARG_LITERAL, ARG_LIST } arg_kind;

typedef struct arg {
  arg_kind kind;
  ir_val v;       /* ARG_VALUE */
  size_t at, end; /* its text */
} arg;

typedef struct kwarg {
  size_t name_at, name_len; /* the keyword */
  size_t at, end;           /* its value's text */
} kwarg;

typedef struct call {
  ir_opkind kind;
  const ir_opinfo *info;
  size_t name_at, name_len;
  arg *args;
  int32_t n_args, cap_args;
  kwarg *kws;
  int32_t n_kws, cap_kws;
} call;

typedef struct opline {
  fe_ctx *c;
  fe_scope *s;
  fe_text t;
} opline;

static ir_loc loc_at(const opline *p, size_t at) { return fe_loc_at(p->c, p->t.node, at); }

static const char *excerpt(opline *p, size_t at, size_t end) {
  return fe_show(p->c, p->t.s + at, end - at);
}

static void call_free(call *cl) {
  free(cl->args);
  free(cl->kws);
}

static bool build_call(opline *p, call *cl, ir_opid *out);
static bool parse_call(opline *p, int depth, call *cl);

/* ---- op names ---------------------------------------------------------------- */

static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb) {
  size_t row[64];
  if (na >= 63 || nb >= 63) return 99;
  for (size_t j = 0; j <= nb; j++) row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[nb];
}

static bool unknown_op(opline *p, size_t at, size_t n) {
  const char *best = NULL;
  size_t best_d = 3; /* suggest only close spellings */
  for (int k = 0; k < IR_OP_COUNT; k++) {
    const char *name = ir_opinfo_of((ir_opkind)k)->name;
    size_t d = edit_distance(p->t.s + at, n, name, strlen(name));
    if (d < best_d) best_d = d, best = name;
  }
  if (best)
    return fe_fail(p->c, loc_at(p, at), "unknown op '%s'; did you mean '%s'?", excerpt(p, at, at + n),
                   best);
  return fe_fail(p->c, loc_at(p, at), "unknown op '%s' (`seqc help ops` lists them)",
                 excerpt(p, at, at + n));
}

static bool resolve_op(opline *p, call *cl) {
  const char *name = p->t.s + cl->name_at;
  if (!ir_opkind_parse(name, cl->name_len, &cl->kind)) return unknown_op(p, cl->name_at, cl->name_len);
  cl->info = ir_opinfo_of(cl->kind);
  if (cl->kind == IR_OP_YIELD)
    return fe_fail(p->c, loc_at(p, cl->name_at),
                   "yield cannot be called in an op line; list the graph's results under "
                   "'outputs' and a scan's under 'next' and 'emit'");
  if (cl->info->n_regions > 0)
    return fe_fail(p->c, loc_at(p, cl->name_at),
                   "%s has a body and is written as a block node ('- %s:' with its fields), "
                   "not in an op line", cl->info->name, cl->info->name);
  return true;
}

/* ---- parsing ------------------------------------------------------------------ */

static const char *found(opline *p, size_t at) { return fe_text_found(&p->t, at); }

/* Is the name at t.pos (n bytes) followed by `ch` (after spaces)? */
static bool name_followed_by(const opline *p, size_t n, char ch) {
  size_t i = p->t.pos + n;
  while (i < p->t.n && (p->t.s[i] == ' ' || p->t.s[i] == '\t')) i++;
  return i < p->t.n && p->t.s[i] == ch && !(ch == '=' && i + 1 < p->t.n && p->t.s[i + 1] == '=');
}

static bool push_arg(call *cl, arg a) {
  ir_grow((void **)&cl->args, &cl->cap_args, cl->n_args + 1, sizeof(arg));
  cl->args[cl->n_args++] = a;
  return true;
}

static bool parse_keyword(opline *p, call *cl, size_t n) {
  kwarg kw = {p->t.pos, n, 0, 0};
  for (int32_t i = 0; i < cl->n_kws; i++)
    if (cl->kws[i].name_len == n && memcmp(p->t.s + cl->kws[i].name_at, p->t.s + kw.name_at, n) == 0)
      return fe_fail(p->c, loc_at(p, kw.name_at), "'%s' is given twice",
                     excerpt(p, kw.name_at, kw.name_at + n));
  p->t.pos += n;
  fe_text_accept(&p->t, '=');
  fe_text_skip_space(&p->t);
  kw.at = p->t.pos;
  kw.end = fe_text_extent(&p->t);
  if (kw.end <= kw.at)
    return fe_fail(p->c, loc_at(p, kw.at), "expected a value after '%s=', got %s",
                   excerpt(p, kw.name_at, kw.name_at + n), found(p, kw.at));
  p->t.pos = kw.end;
  ir_grow((void **)&cl->kws, &cl->cap_kws, cl->n_kws + 1, sizeof(kwarg));
  cl->kws[cl->n_kws++] = kw;
  return true;
}

/* A nested call: built at once, its single result is the argument. */
static bool parse_nested(opline *p, call *cl, int depth) {
  size_t at = p->t.pos;
  if (depth >= FE_MAX_CALL_DEPTH)
    return fe_fail(p->c, loc_at(p, at), "calls nested deeper than %d levels", FE_MAX_CALL_DEPTH);
  call inner = {0};
  ir_opid op = IR_NONE;
  bool ok = parse_call(p, depth + 1, &inner) && build_call(p, &inner, &op);
  if (ok && ir_o(p->c->g, op)->n_out != 1)
    ok = fe_fail(p->c, loc_at(p, at), "%s gives %d results; a nested call must give one",
                 inner.info->name, ir_o(p->c->g, op)->n_out);
  if (ok) push_arg(cl, (arg){ARG_VALUE, ir_o(p->c->g, op)->out[0], at, p->t.pos});
  call_free(&inner);
  return ok;
}

static bool parse_positional(opline *p, call *cl, int depth) {
  size_t at = p->t.pos, n = fe_text_name_len(&p->t);
  char ch = at < p->t.n ? p->t.s[at] : 0;
  if (n > 0 && name_followed_by(p, n, '(')) return parse_nested(p, cl, depth);
  if (n > 0 && !fe_is_name(p->t.s + at, n)) { /* nan, inf, true, false */
    p->t.pos = at + n;
    return push_arg(cl, (arg){ARG_LITERAL, IR_NONE, at, at + n});
  }
  if (n > 0) {
    ir_val v;
    if (!fe_use(p->c, p->s, p->t.s + at, n, loc_at(p, at), &v)) return false;
    p->t.pos = at + n;
    return push_arg(cl, (arg){ARG_VALUE, v, at, at + n});
  }
  if (ch == '[' || ch == '-' || ch == '.' || (ch >= '0' && ch <= '9')) {
    size_t end = fe_text_extent(&p->t);
    p->t.pos = end;
    return push_arg(cl, (arg){ch == '[' ? ARG_LIST : ARG_LITERAL, IR_NONE, at, end});
  }
  return fe_fail(p->c, loc_at(p, at),
                 "expected an argument (a name, a call, a number or name=value), got %s",
                 found(p, at));
}

static bool parse_args(opline *p, call *cl, int depth) {
  if (fe_text_accept(&p->t, ')')) return true;
  do {
    fe_text_skip_space(&p->t);
    size_t n = fe_text_name_len(&p->t);
    bool ok;
    if (n > 0 && name_followed_by(p, n, '=')) {
      ok = parse_keyword(p, cl, n);
    } else if (cl->n_kws > 0) {
      ok = fe_fail(p->c, loc_at(p, p->t.pos),
                   "positional argument after keyword arguments; write operands first");
    } else {
      ok = parse_positional(p, cl, depth);
    }
    if (!ok) return false;
  } while (fe_text_accept(&p->t, ','));
  fe_text_skip_space(&p->t);
  if (fe_text_accept(&p->t, ')')) return true;
  return fe_fail(p->c, loc_at(p, p->t.pos), "expected ',' or ')' after the argument of %s, got %s",
                 cl->info->name, found(p, p->t.pos));
}

static bool parse_call(opline *p, int depth, call *cl) {
  fe_text_skip_space(&p->t);
  cl->name_at = p->t.pos;
  cl->name_len = fe_text_name_len(&p->t);
  if (cl->name_len == 0)
    return fe_fail(p->c, loc_at(p, cl->name_at), "expected an op name such as tanh, got %s",
                   found(p, cl->name_at));
  if (!resolve_op(p, cl)) return false;
  p->t.pos += cl->name_len;
  fe_text_skip_space(&p->t);
  if (!fe_text_accept(&p->t, '('))
    return fe_fail(p->c, loc_at(p, p->t.pos), "expected '(' after '%s', got %s", cl->info->name,
                   found(p, p->t.pos));
  return parse_args(p, cl, depth);
}

/* ---- values of keywords --------------------------------------------------------- */

/* A fe_text over [at, end) of the line, offsets unchanged. */
static fe_text span(const opline *p, size_t at, size_t end) {
  fe_text t = p->t;
  t.pos = at;
  t.n = end;
  return t;
}

static bool span_done(opline *p, fe_text *t, const char *what) {
  if (fe_text_at_end(t)) return true;
  return fe_fail(p->c, loc_at(p, t->pos), "unexpected %s after %s", found(p, t->pos), what);
}

static const char *kw_name(opline *p, const kwarg *kw) {
  return excerpt(p, kw->name_at, kw->name_at + kw->name_len);
}

static bool read_word(opline *p, const kwarg *kw, const char *const *words, int64_t *out,
                      const char *expected) {
  size_t n = kw->end - kw->at;
  for (int64_t i = 0; words[i]; i++)
    if (strlen(words[i]) == n && memcmp(words[i], p->t.s + kw->at, n) == 0) {
      *out = i;
      return true;
    }
  if (kw->name_len == 0) /* a literal, not a keyword argument */
    return fe_fail(p->c, loc_at(p, kw->at), "expected %s, got '%s'", expected, excerpt(p, kw->at, kw->end));
  return fe_fail(p->c, loc_at(p, kw->at), "'%s' must be %s, got '%s'", kw_name(p, kw), expected,
                 excerpt(p, kw->at, kw->end));
}

static bool read_enum(opline *p, const kwarg *kw, const ir_attr_decl *decl, int64_t *out) {
  ir_buf *list = fe_msg_buf(p->c);
  for (int32_t i = 0; decl->enum_names[i]; i++)
    ir_buf_printf(list, "%s%s", i ? ", " : "one of ", decl->enum_names[i]);
  return read_word(p, kw, decl->enum_names, out, list->s);
}

/* Negative axes count from the end, as in PyTorch: axis=-1 is the last. */
static int64_t normalize_axis(const char *name, int64_t v, int32_t rank) {
  bool is_axis = !strcmp(name, "axis") || !strcmp(name, "seq_axis") || !strcmp(name, "batch_axis");
  return is_axis && v < 0 && v >= -(int64_t)rank ? v + rank : v;
}

static bool set_attr(opline *p, ir_opid op, const ir_attr_decl *decl, const kwarg *kw,
                     int32_t rank) {
  static const char *const bools[] = {"false", "true", NULL};
  ir_graph *g = p->c->g;
  fe_text t = span(p, kw->at, kw->end);
  ir_buf *what = fe_msg_buf(p->c);
  ir_buf_printf(what, "the value of '%s'", decl->name);
  int64_t i;
  double f;
  ir_dim d;
  bool ok = true;
  switch (decl->kind) {
  case IR_ATTR_INT:
    ok = fe_text_int(&t, t.n, &i) && span_done(p, &t, what->s);
    if (ok) ir_set_int(g, op, decl->name, normalize_axis(decl->name, i, rank));
    return ok;
  case IR_ATTR_FLOAT:
    ok = fe_text_real(&t, t.n, &f) && span_done(p, &t, what->s);
    if (ok) ir_set_float(g, op, decl->name, f);
    return ok;
  case IR_ATTR_BOOL:
    ok = read_word(p, kw, bools, &i, "true or false");
    if (ok) ir_set_int(g, op, decl->name, i);
    return ok;
  case IR_ATTR_ENUM:
    ok = read_enum(p, kw, decl, &i);
    if (ok) ir_set_int(g, op, decl->name, i);
    return ok;
  case IR_ATTR_DIM:
    ok = fe_text_dim(&t, t.n, &d) && span_done(p, &t, what->s);
    if (ok) ir_set_dim(g, op, decl->name, d);
    return ok;
  case IR_ATTR_INTS: {
    int64_t *v = NULL;
    int32_t n = 0;
    ok = fe_text_ints(&t, &v, &n) && span_done(p, &t, what->s);
    if (ok) ir_set_ints(g, op, decl->name, n, v);
    free(v);
    return ok;
  }
  case IR_ATTR_DIMS: {
    ir_dim *v = NULL;
    int32_t n = 0;
    ok = fe_text_dims(&t, &v, &n) && span_done(p, &t, what->s);
    if (ok) ir_set_dims(g, op, decl->name, n, v);
    free(v);
    return ok;
  }
  case IR_ATTR_TENSOR: break; /* constant's value: read_constant_value */
  }
  return true;
}

/* ---- declared result types: dtype=, shape=, value= ------------------------------ */

typedef struct declared {
  const kwarg *dtype, *shape, *value;
} declared;

static bool declared_keyword_allowed(ir_opkind k, const char *name) {
  bool dtype = k == IR_OP_CONSTANT || k == IR_OP_IOTA || k == IR_OP_CAST;
  bool shape = k == IR_OP_CONSTANT || k == IR_OP_IOTA || k == IR_OP_RESHAPE || k == IR_OP_BROADCAST;
  if (!strcmp(name, "dtype")) return dtype;
  if (!strcmp(name, "shape")) return shape;
  return !strcmp(name, "value") && k == IR_OP_CONSTANT;
}

static bool unknown_keyword(opline *p, const call *cl, const kwarg *kw) {
  ir_buf *list = fe_msg_buf(p->c);
  for (int32_t i = 0; i < cl->info->n_attrs; i++)
    ir_buf_printf(list, "%s%s", list->len ? ", " : "", cl->info->attrs[i].name);
  static const char *const extra[] = {"dtype", "shape"};
  for (int i = 0; i < 2; i++)
    if (declared_keyword_allowed(cl->kind, extra[i]))
      ir_buf_printf(list, "%s%s", list->len ? ", " : "", extra[i]);
  if (list->len == 0)
    return fe_fail(p->c, loc_at(p, kw->name_at), "%s takes no attributes, got '%s'",
                   cl->info->name, kw_name(p, kw));
  return fe_fail(p->c, loc_at(p, kw->name_at), "%s has no attribute '%s'; its attributes: %s",
                 cl->info->name, kw_name(p, kw), list->s);
}

/* Sort keywords into declared-type ones and attributes (checked to exist). */
static bool classify_keywords(opline *p, const call *cl, declared *dc) {
  memset(dc, 0, sizeof *dc);
  for (int32_t i = 0; i < cl->n_kws; i++) {
    const kwarg *kw = &cl->kws[i];
    char name[32];
    if (kw->name_len >= sizeof name) return unknown_keyword(p, cl, kw);
    memcpy(name, p->t.s + kw->name_at, kw->name_len);
    name[kw->name_len] = 0;
    if (cl->kind != IR_OP_CONSTANT && ir_attr_index(cl->kind, name) >= 0) continue;
    if (!declared_keyword_allowed(cl->kind, name)) return unknown_keyword(p, cl, kw);
    if (!strcmp(name, "dtype")) dc->dtype = kw;
    if (!strcmp(name, "shape")) dc->shape = kw;
    if (!strcmp(name, "value")) dc->value = kw;
  }
  return true;
}

static bool read_dtype_kw(opline *p, const kwarg *kw, ir_dtype *out) {
  fe_text t = span(p, kw->at, kw->end);
  return fe_text_dtype(&t, out) && span_done(p, &t, "the dtype");
}

static bool read_shape_kw(opline *p, const kwarg *kw, ir_dim **dims, int32_t *rank) {
  fe_text t = span(p, kw->at, kw->end);
  return fe_text_dims(&t, dims, rank) && span_done(p, &t, "the shape");
}

static bool need_keyword(opline *p, const call *cl, const kwarg *kw, const char *name,
                         const char *example) {
  if (kw) return true;
  return fe_fail(p->c, loc_at(p, cl->name_at), "%s needs %s=..., as in %s", cl->info->name, name,
                 example);
}

/* Operand type i, or an error if the op lacks that operand. */
static bool operand_type(opline *p, const call *cl, const ir_val *in, int32_t n_in, ir_type *out) {
  if (n_in == cl->info->min_in && n_in >= 1) {
    *out = ir_vtype(p->c->g, in[0]);
    return true;
  }
  return fe_fail(p->c, loc_at(p, cl->name_at), "%s takes %d operand%s, got %d", cl->info->name,
                 cl->info->min_in, cl->info->min_in == 1 ? "" : "s", n_in);
}

/* The result type of a declared op from its keywords (and operand). */
static bool declared_type(opline *p, const call *cl, const declared *dc, const ir_val *in,
                          int32_t n_in, int64_t n_values, ir_type *out) {
  ir_dtype dt = IR_F32;
  ir_dim *dims = NULL;
  int32_t rank = 0;
  ir_type x = {IR_F32, 0, NULL};
  bool ok = true;
  switch (cl->kind) {
  case IR_OP_CONSTANT:
  case IR_OP_IOTA: {
    const char *ex = cl->kind == IR_OP_IOTA ? "iota(dtype=i64, shape=[T], axis=0)"
                                            : "constant(0.5, dtype=f32, shape=[8])";
    ok = need_keyword(p, cl, dc->dtype, "dtype", ex) && read_dtype_kw(p, dc->dtype, &dt);
    if (ok && cl->kind == IR_OP_IOTA) ok = need_keyword(p, cl, dc->shape, "shape", ex);
    if (ok && dc->shape) ok = read_shape_kw(p, dc->shape, &dims, &rank);
    if (ok && !dc->shape && n_values >= 0) {
      ir_dim n = ir_dim_const(p->c->g->dims, n_values);
      *out = ir_type_make(p->c->g, dt, 1, &n);
      return true;
    }
    break;
  }
  case IR_OP_CAST:
    ok = need_keyword(p, cl, dc->dtype, "dtype", "cast(x, dtype=i32)") &&
         operand_type(p, cl, in, n_in, &x) && read_dtype_kw(p, dc->dtype, &dt);
    if (ok) *out = ir_type_make(p->c->g, dt, x.rank, x.dims);
    return ok;
  default: /* reshape, broadcast */
    ok = need_keyword(p, cl, dc->shape, "shape", "reshape(x, shape=[B*T, 64])") &&
         operand_type(p, cl, in, n_in, &x) && read_shape_kw(p, dc->shape, &dims, &rank);
    dt = x.dtype;
    break;
  }
  if (ok) *out = ir_type_make(p->c->g, dt, rank, dims);
  free(dims);
  return ok;
}

/* ---- constants and literals --------------------------------------------------- */

static bool is_integer_text(const char *s, size_t n) {
  size_t i = n > 0 && s[0] == '-' ? 1 : 0;
  if (i >= n) return false;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/* One element of dtype dt at t's position into data[i]. */
static bool read_element(opline *p, fe_text *t, ir_dtype dt, ir_tensor_data *data, int64_t i) {
  static const char *const bools[] = {"false", "true", NULL};
  fe_text_skip_space(t);
  size_t at = t->pos, end = fe_text_extent(t);
  if (ir_dtype_is_float(dt)) return fe_text_real(t, end, &data->f[i]);
  if (dt == IR_BOOL) {
    kwarg w = {at, 0, at, end};
    t->pos = end;
    return read_word(p, &w, bools, &data->i[i], "true or false (a bool constant)");
  }
  if (!is_integer_text(t->s + at, end - at))
    return fe_fail(p->c, loc_at(p, at), "expected an integer for a %s value, got '%s'",
                   ir_dtype_name(dt), excerpt(p, at, end));
  return fe_text_int(t, end, &data->i[i]);
}

/* A number or a flat list `[a, b, ...]` spelled in dtype dt. */
static bool read_tensor(opline *p, size_t at, size_t end, ir_dtype dt, ir_tensor_data *out) {
  fe_text t = span(p, at, end);
  bool list = fe_text_accept(&t, '[');
  int64_t n = 1;
  if (list) {
    n = 0;
    for (size_t i = t.pos; i < end; i++) {
      if (t.s[i] == '[')
        return fe_fail(p->c, loc_at(p, i), "nested lists are not supported; give a flat list "
                       "and the shape, as in constant([1, 2, 3, 4], dtype=f32, shape=[2, 2])");
      n += t.s[i] == ',';
    }
    n++;
  }
  bool is_float = ir_dtype_is_float(dt);
  out->n = n;
  out->f = is_float ? ir_arena_alloc(p->c->g->arena, sizeof(double) * (size_t)n) : NULL;
  out->i = is_float ? NULL : ir_arena_alloc(p->c->g->arena, sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    if (i > 0 && !fe_text_accept(&t, ','))
      return fe_fail(p->c, loc_at(p, t.pos), "expected ',' in the list, got %s", found(p, t.pos));
    if (!read_element(p, &t, dt, out, i)) return false;
  }
  if (list && !fe_text_accept(&t, ']'))
    return fe_fail(p->c, loc_at(p, t.pos), "expected ']' to end the list, got %s", found(p, t.pos));
  return span_done(p, &t, "the value");
}

/* Append a finished detached op to the block, or drop it if inference
 * fails. For ops with inferred results, sets their types. */
static bool finish_op(opline *p, ir_opid op) {
  ir_graph *g = p->c->g;
  ir_type types[FE_MAX_RANK + 1];
  int32_t n = 0;
  if (!ir_infer_types(g, op, types, FE_MAX_RANK + 1, &n, p->c->d)) {
    ir_o(g, op)->erased = true;
    return false;
  }
  IR_ASSERT(n == ir_o(g, op)->n_out);
  if (!(ir_opinfo_of(ir_o(g, op)->kind)->flags & IR_DECLARED))
    for (int32_t i = 0; i < n; i++) g->vals[ir_o(g, op)->out[i]].type = types[i];
  ir_op_append(g, p->s->block, op);
  return true;
}

/* The rank-0 constant a literal operand stands for. */
static bool build_literal(opline *p, const arg *a, ir_dtype dt, ir_val *out) {
  char ch = p->t.s[a->at];
  if (dt == IR_BOOL || ch == 't' || ch == 'f')
    return fe_fail(p->c, loc_at(p, a->at), "literal operands cannot be bool; use "
                   "constant(true, dtype=bool)");
  if (!ir_dtype_is_float(dt) && !is_integer_text(p->t.s + a->at, a->end - a->at))
    return fe_fail(p->c, loc_at(p, a->at), "literal '%s' is not an integer, but the operands "
                   "are %s", excerpt(p, a->at, a->end), ir_dtype_name(dt));
  ir_tensor_data data = {0};
  if (!read_tensor(p, a->at, a->end, dt, &data)) return false;
  ir_type t = {dt, 0, NULL};
  ir_opid op = ir_op_new(p->c->g, IR_OP_CONSTANT, 0, NULL, 1, &t, loc_at(p, a->at));
  ir_set_tensor(p->c->g, op, "value", ir_arena_memdup(p->c->g->arena, &data, sizeof data));
  if (!finish_op(p, op)) return false;
  *out = ir_o(p->c->g, op)->out[0];
  return true;
}

/* Operand values of a non-constant call, literals materialized. */
static bool build_operands(opline *p, const call *cl, ir_val *in) {
  int32_t first = cl->kind == IR_OP_SELECT ? 1 : 0;
  const arg *typed = NULL;
  for (int32_t i = first; i < cl->n_args && !typed; i++)
    if (cl->args[i].kind == ARG_VALUE) typed = &cl->args[i];
  for (int32_t i = 0; i < cl->n_args; i++) {
    const arg *a = &cl->args[i];
    if (a->kind == ARG_LIST)
      return fe_fail(p->c, loc_at(p, a->at), "a list is only allowed as a constant's value");
    if (a->kind == ARG_VALUE) {
      in[i] = a->v;
      continue;
    }
    if (!typed)
      return fe_fail(p->c, loc_at(p, a->at), "cannot tell the dtype of literal '%s': no operand "
                     "of %s is a value; use constant(%s, dtype=f32)", excerpt(p, a->at, a->end),
                     cl->info->name, excerpt(p, a->at, a->end));
    if (!build_literal(p, a, ir_vtype(p->c->g, typed->v).dtype, &in[i])) return false;
  }
  return true;
}

/* constant(VALUE, dtype=, shape=) or constant(value=VALUE, ...). */
static bool constant_value(opline *p, const call *cl, const declared *dc, size_t *at, size_t *end) {
  if (cl->n_args > 1 || (cl->n_args == 1 && dc->value))
    return fe_fail(p->c, loc_at(p, cl->name_at), "constant takes one value (a number or a list)");
  if (cl->n_args == 1 && cl->args[0].kind == ARG_VALUE)
    return fe_fail(p->c, loc_at(p, cl->args[0].at), "constant takes a number or a list, not a "
                   "value or a call");
  if (cl->n_args == 0 && !dc->value)
    return fe_fail(p->c, loc_at(p, cl->name_at), "constant needs a value, as in "
                   "constant(0.5, dtype=f32, shape=[8])");
  *at = dc->value ? dc->value->at : cl->args[0].at;
  *end = dc->value ? dc->value->end : cl->args[0].end;
  return true;
}

/* ---- building a call ------------------------------------------------------------ */

/* Results of split are as many as its sizes (read by the same parser as
 * the attribute, so the counts agree); every other callable op has a fixed
 * count. */
static bool result_count(opline *p, const call *cl, int32_t *n_out) {
  *n_out = cl->info->n_out >= 0 ? cl->info->n_out : 0;
  for (int32_t i = 0; cl->info->n_out < 0 && i < cl->n_kws; i++)
    if (cl->kws[i].name_len == 5 && !memcmp(p->t.s + cl->kws[i].name_at, "sizes", 5)) {
      fe_text t = span(p, cl->kws[i].at, cl->kws[i].end);
      ir_dim *dims = NULL;
      bool ok = fe_text_dims(&t, &dims, n_out);
      free(dims);
      return ok;
    }
  return true;
}

static bool set_attrs(opline *p, const call *cl, ir_opid op, int32_t rank) {
  for (int32_t i = 0; i < cl->n_kws; i++) {
    const kwarg *kw = &cl->kws[i];
    for (int32_t a = 0; a < cl->info->n_attrs; a++) {
      const ir_attr_decl *decl = &cl->info->attrs[a];
      if (strlen(decl->name) != kw->name_len || memcmp(decl->name, p->t.s + kw->name_at, kw->name_len))
        continue;
      if (!set_attr(p, op, decl, kw, rank)) return false;
    }
  }
  return true;
}

/* Operands of a call, or a constant's data (its dtype is needed first). */
static bool read_inputs(opline *p, const call *cl, const declared *dc, ir_val *in,
                        ir_tensor_data *data, int64_t *n_values) {
  if (cl->kind != IR_OP_CONSTANT) return build_operands(p, cl, in);
  size_t at = 0, end = 0;
  ir_dtype dt;
  if (!constant_value(p, cl, dc, &at, &end)) return false;
  if (!dc->dtype) return true; /* declared_type reports it */
  if (!read_dtype_kw(p, dc->dtype, &dt) || !read_tensor(p, at, end, dt, data)) return false;
  *n_values = p->t.s[at] == '[' ? data->n : -1;
  return true;
}

/* The op itself: results typed `result_type` (or placeholders until inference
 * in finish_op), attributes from the keywords. */
static bool create_op(opline *p, const call *cl, const ir_val *in, int32_t n_in, int32_t n_out,
                      const ir_type *result_type, const ir_tensor_data *data, ir_opid *out) {
  ir_graph *g = p->c->g;
  ir_type *types = ir_xcalloc((size_t)n_out + 1, sizeof(ir_type));
  for (int32_t i = 0; i < n_out; i++) types[i] = result_type ? *result_type : (ir_type){IR_F32, 0, NULL};
  ir_opid op = ir_op_new(g, cl->kind, n_in, in, n_out, types, loc_at(p, cl->name_at));
  free(types);
  if (data) ir_set_tensor(g, op, "value", ir_arena_memdup(g->arena, data, sizeof *data));
  int32_t rank = n_in > 0 ? ir_vtype(g, in[0]).rank : result_type ? result_type->rank : 0;
  *out = op;
  if (set_attrs(p, cl, op, rank)) return finish_op(p, op);
  ir_o(g, op)->erased = true;
  return false;
}

static bool build_call(opline *p, call *cl, ir_opid *out) {
  declared dc;
  if (!classify_keywords(p, cl, &dc)) return false;
  bool is_declared = (cl->info->flags & IR_DECLARED) != 0;
  bool is_const = cl->kind == IR_OP_CONSTANT;
  int32_t n_in = is_const ? 0 : cl->n_args, n_out = 0;
  ir_val *in = ir_xcalloc((size_t)n_in + 1, sizeof(ir_val));
  ir_tensor_data data = {0};
  int64_t n_values = -1;
  ir_type result = {IR_F32, 0, NULL};
  bool ok = read_inputs(p, cl, &dc, in, &data, &n_values) &&
            (!is_declared || declared_type(p, cl, &dc, in, n_in, n_values, &result)) &&
            result_count(p, cl, &n_out) &&
            create_op(p, cl, in, n_in, n_out, is_declared ? &result : NULL,
                      is_const ? &data : NULL, out);
  free(in);
  return ok;
}

/* ---- the line ------------------------------------------------------------------ */

typedef struct result_name {
  size_t at, n;
} result_name;

static bool parse_result_names(opline *p, result_name *names, int32_t cap, int32_t *n) {
  *n = 0;
  do {
    fe_text_skip_space(&p->t);
    size_t at = p->t.pos, len = fe_text_name_len(&p->t);
    if (len == 0)
      return fe_fail(p->c, loc_at(p, at), "expected a result name; an op line reads "
                     "'y = op(x, ...)', got %s", found(p, at));
    if (!fe_is_name(p->t.s + at, len))
      return fe_fail(p->c, loc_at(p, at), "'%s' is reserved and cannot name a value",
                     excerpt(p, at, at + len));
    if (*n >= cap)
      return fe_fail(p->c, loc_at(p, at), "an op line names at most %d results", cap);
    names[(*n)++] = (result_name){at, len};
    p->t.pos = at + len;
  } while (fe_text_accept(&p->t, ','));
  fe_text_skip_space(&p->t);
  if (fe_text_accept(&p->t, '=')) return true;
  return fe_fail(p->c, loc_at(p, p->t.pos), "expected '=' after the result name%s; an op line "
                 "reads 'y = op(x, ...)', got %s", *n > 1 ? "s" : "", found(p, p->t.pos));
}

bool fe_build_opline(fe_ctx *c, fe_scope *s, const fe_ynode *line) {
  opline p = {c, s, fe_text_of(c, line)};
  result_name names[FE_MAX_RANK + 1];
  int32_t n_names = 0;
  if (!parse_result_names(&p, names, FE_MAX_RANK + 1, &n_names)) return false;
  call cl = {0};
  ir_opid op = IR_NONE;
  bool ok = parse_call(&p, 1, &cl);
  if (ok && !fe_text_at_end(&p.t))
    ok = fe_fail(c, loc_at(&p, p.t.pos), "unexpected %s after the call", found(&p, p.t.pos));
  ok = ok && build_call(&p, &cl, &op);
  if (ok && ir_o(c->g, op)->n_out != n_names)
    ok = fe_fail(c, loc_at(&p, names[0].at), "%s gives %d result%s, but %d name%s given",
                 cl.info->name, ir_o(c->g, op)->n_out, ir_o(c->g, op)->n_out == 1 ? "" : "s",
                 n_names, n_names == 1 ? " is" : "s are");
  for (int32_t i = 0; ok && i < n_names; i++)
    ok = fe_define(c, s, p.t.s + names[i].at, names[i].n, ir_o(c->g, op)->out[i],
                   loc_at(&p, names[i].at));
  call_free(&cl);
  return ok;
}
