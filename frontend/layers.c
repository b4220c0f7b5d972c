/*
 * layers.c - PyTorch layers as block nodes (docs/layers.md): each expands
 * into primitive ops and `scan`s with exactly PyTorch 1.13's semantics, and
 * declares its parameters itself under PyTorch's names and layouts
 * (weight_ih_l0, bias_hh_l1_reverse, ...), prefixed by `params:` (default:
 * the layer's `name`), so a state_dict saved as safetensors binds as is.
 *
 *   - lstm: {name: enc, input: x, hidden_size: 16, num_layers: 2,
 *            bidirectional: true, batch_first: false, bias: true,
 *            proj_size: 0, h0: h0, c0: c0, params: encoder.rnn, out: [y, hn, cn]}
 *   - gru / rnn (nonlinearity: tanh | relu): the same, out: [y, hn]
 *   - linear, embedding, layernorm, rmsnorm, dropout
 *   - multihead_attention, transformer_encoder_layer, transformer_decoder_layer
 *   - pool (over time), conv1d
 * docs/layers.md gives every field. Sizes are bounded (MAX_* below), so a
 * hostile file cannot make an expansion huge.
 *
 * Values a layer makes are named under its scope (enc.l0.h, enc.y), which
 * is how kernels are named in profiles; only its `out` names enter the
 * model's scope. Layers stand in the graph, not in scan bodies.
 */
#include "fe.h"
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer {
  fe_ctx *c;
  fe_scope *s;
  const fe_ynode *kind, *spec;
  ir_loc loc;
  const char *what;   /* "lstm 'enc'", for messages */
  const char *name;   /* scope of value names ("" for an unnamed dropout) */
  const char *prefix; /* of parameter names ("" for none) */
  ir_val input;
} layer;

/* ---- fields ------------------------------------------------------------------- */

/* A state_dict key prefix: parts separated by '.', each a name or a number
 * (nn.Sequential numbers its children: "0.weight", "encoder.layers.1.bias"). */
static bool is_param_prefix(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    bool number = s[i] >= '0' && s[i] <= '9';
    for (; i < n && s[i] != '.'; i++) {
      char ch = s[i];
      bool digit = ch >= '0' && ch <= '9';
      bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
      if (!digit && (number || !alpha)) return false;
    }
    if (i == start || (i < n && ++i == n)) return false; /* an empty part */
  }
  return n > 0;
}

static bool read_layer(layer *L, fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec,
                       const char *const *keys, bool named) {
  memset(L, 0, sizeof *L);
  L->c = c, L->s = s, L->kind = kind, L->spec = spec, L->loc = fe_loc(c, kind);
  if (s->block != c->g->body)
    return fe_fail(c, L->loc, "layer '%s' stands in a scan body; layers belong to the graph", kind->text);
  if (!fe_expect(c, spec, FE_Y_MAP, kind->text, "a mapping of its fields") || !fe_check_keys(c, spec, kind->text, keys))
    return false;
  const fe_ynode *name = fe_ymap_get(spec, "name"), *params = fe_ymap_get(spec, "params");
  if (named && !name) return fe_fail(c, L->loc, "%s needs a 'name' (its scope and parameter prefix)", kind->text);
  if (name && !fe_expect_name(c, name, "a layer name")) return false;
  /* params: "" binds a bare module's state_dict (keys without a prefix). */
  bool bare = params && params->kind == FE_Y_SCALAR && params->len == 0 && !params->plain;
  if (params && !bare && !(params->kind == FE_Y_SCALAR && is_param_prefix(params->text, params->len)))
    return fe_fail(c, fe_loc(c, params), "'params' is a state_dict key prefix: names and numbers joined by '.' "
                   "(encoder.rnn, 0, layers.1), or \"\" for none");
  L->name = name ? name->text : "";
  L->prefix = params ? params->text : L->name;
  ir_buf *w = fe_msg_buf(c);
  ir_buf_printf(w, name ? "%s '%s'" : "%s", kind->text, L->name);
  L->what = ir_arena_strdup(c->g->arena, w->s);
  const fe_ynode *input = fe_require(c, spec, "input", L->what);
  return input && fe_expect_name(c, input, "the layer's input") &&
         fe_use(c, s, input->text, input->len, fe_loc(c, input), &L->input);
}

static bool read_real(layer *L, const char *key, double dflt, double *out) {
  const fe_ynode *n = fe_ymap_get(L->spec, key);
  *out = dflt;
  if (!n) return true;
  fe_text t = fe_text_of(L->c, n);
  return fe_text_real(&t, t.n, out) &&
         (fe_text_at_end(&t) || fe_text_fail(&t, t.pos, "expected a number for '%s'", key));
}

/* Bounds on layer sizes: far above real models, low enough that an
 * expansion stays small (one scan per layer, one matmul per tap). */
enum {
  MAX_WIDTH = 1 << 24,   /* features, hidden units, channels, vocabulary */
  MAX_LAYERS = 64,       /* num_layers of a recurrent layer */
  MAX_KERNEL = 1024,     /* conv1d taps */
  MAX_HEADS = 4096,
  MAX_STEP = 1 << 20,    /* stride, dilation, groups, window */
};

static bool read_int(layer *L, const char *key, int64_t lo, int64_t hi, int64_t dflt, bool required, int64_t *out) {
  const fe_ynode *n = fe_ymap_get(L->spec, key);
  *out = dflt;
  if (!n) return !required || fe_fail(L->c, L->loc, "%s needs '%s'", L->what, key);
  ir_buf *what = fe_msg_buf(L->c);
  ir_buf_printf(what, "%s field '%s'", L->what, key);
  return fe_read_int(L->c, n, what->s, lo, hi, out);
}

/* An optional field naming one of `names` (NULL-terminated): its index, or
 * dflt when absent. */
static bool read_enum(layer *L, const char *key, const char *const *names, int dflt, int *out) {
  const fe_ynode *n = fe_ymap_get(L->spec, key);
  *out = dflt;
  if (!n) return true;
  ir_buf *what = fe_msg_buf(L->c);
  ir_buf_printf(what, "%s field '%s'", L->what, key);
  if (!fe_expect(L->c, n, FE_Y_SCALAR, what->s, "a word")) return false;
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == n->len && !strcmp(names[i], n->text)) {
      *out = i;
      return true;
    }
  ir_buf *list = fe_msg_buf(L->c);
  for (int i = 0; names[i]; i++) ir_buf_printf(list, "%s%s", i ? ", " : "", names[i]);
  return fe_fail(L->c, fe_loc(L->c, n), "%s: %s is one of %s, got '%s'", L->what, key, list->s,
                 fe_show(L->c, n->text, n->len));
}

/* A positive, finite epsilon or probability in [lo, hi]. */
static bool read_bounded_real(layer *L, const char *key, double lo, double hi, double dflt, double *out) {
  if (!read_real(L, key, dflt, out)) return false;
  if (*out >= lo && *out <= hi) return true;
  return fe_fail(L->c, fe_loc(L->c, fe_ymap_get(L->spec, key)), "%s: %s is %g, expected a number in [%g, %g]",
                 L->what, key, *out, lo, hi);
}

static bool read_bool(layer *L, const char *key, bool dflt, bool *out) {
  const fe_ynode *n = fe_ymap_get(L->spec, key);
  *out = dflt;
  if (!n) return true;
  ir_buf *what = fe_msg_buf(L->c);
  ir_buf_printf(what, "%s field '%s'", L->what, key);
  return fe_read_bool(L->c, n, what->s, out);
}


/* An optional input named by `key` (an initial state), or IR_NONE. */
static bool read_value(layer *L, const char *key, ir_val *out) {
  const fe_ynode *n = fe_ymap_get(L->spec, key);
  *out = IR_NONE;
  return !n || (fe_expect_name(L->c, n, "a value name") && fe_use(L->c, L->s, n->text, n->len, fe_loc(L->c, n), out));
}

/* Binds the `out` names, which must be exactly n. */
static bool define_outputs(layer *L, int32_t n, const ir_val *vals, const char *expected) {
  const fe_ynode *out = fe_require(L->c, L->spec, "out", L->what);
  if (!out || !fe_expect(L->c, out, FE_Y_SEQ, "'out'", "a sequence of result names")) return false;
  if (out->n != n) return fe_fail(L->c, fe_loc(L->c, out), "%s has %d result%s (%s); 'out' names %d",
                                  L->what, n, n == 1 ? "" : "s", expected, out->n);
  for (int32_t i = 0; i < n; i++)
    if (!fe_expect_name(L->c, out->items[i], "a result name") ||
        !fe_define(L->c, L->s, out->items[i]->text, out->items[i]->len, vals[i], fe_loc(L->c, out->items[i])))
      return false;
  return true;
}

/* `field` (an input of lengths per sequence) must be an integer [batch]. */
static bool check_lengths(layer *L, ir_val v, ir_dim batch, const char *field) {
  ir_type t = ir_vtype(L->c->g, v);
  if (t.rank == 1 && ir_dtype_is_int(t.dtype) && t.dims[0] == batch) return true;
  return fe_fail(L->c, L->loc, "%s: '%s' is %s, expected an integer [%s] (the batch)", L->what, field,
                 fe_show_type(L->c, t), fe_show_dim(L->c, batch));
}

/* ---- building ----------------------------------------------------------------- */

/* A parameter PREFIX.suffix of type t: declared now, or (when the model
 * already has it, e.g. shared by two layers) the same tensor. */
static bool param(layer *L, const char *suffix, ir_type t, ir_val *out) {
  fe_ctx *c = L->c;
  ir_buf *name = fe_msg_buf(c);
  ir_buf_printf(name, "%s%s%s", L->prefix, *L->prefix ? "." : "", suffix);
  const fe_name *prev = fe_scope_find(L->s, name->s, name->len);
  if (prev) {
    *out = prev->v;
    if (ir_v(c->g, prev->v)->is_param && ir_type_equal(ir_vtype(c->g, prev->v), t)) return true;
    return fe_fail(c, L->loc, "%s needs parameter '%s' of type %s, but the model already has a "
                   "value of that name of type %s (%d:%d)", L->what, name->s, fe_show_type(c, t),
                   fe_show_type(c, ir_vtype(c->g, prev->v)), prev->loc.line, prev->loc.col);
  }
  *out = ir_graph_add_input(c->g, t, NULL, true);
  return fe_define(c, L->s, name->s, name->len, *out, L->loc);
}

static ir_type type_of(layer *L, ir_dtype dt, int32_t rank, const ir_dim *dims) {
  return ir_type_make(L->c->g, dt, rank, dims);
}

static ir_dim lit(layer *L, int64_t v) { return ir_dim_const(L->c->g->dims, v); }

/* [T, B, E] <-> [B, T, E] */
static const int64_t swap01[] = {1, 0, 2};

/* Attributes of an op built here: integers by name, plus slice bounds. */
typedef struct attrs {
  const char *name[3];
  int64_t value[3];
  const int64_t *ints; /* "perm" or "axes" */
  int32_t n_ints;
  const char *ints_name;
  const ir_dim *dims; /* split sizes */
  int32_t n_dims;
  ir_dim start, end;  /* slice */
} attrs;

static attrs int_attr(const char *name, int64_t v) {
  return (attrs){.name = {name}, .value = {v}};
}

static void set_attrs(ir_graph *g, ir_opid op, void *ud) {
  const attrs *a = ud;
  for (int i = 0; i < 3 && a->name[i]; i++) ir_set_int(g, op, a->name[i], a->value[i]);
  if (a->ints_name) ir_set_ints(g, op, a->ints_name, a->n_ints, a->ints);
  if (a->n_dims) ir_set_dims(g, op, "sizes", a->n_dims, a->dims);
  if (ir_o(g, op)->kind == IR_OP_SLICE) {
    ir_set_dim(g, op, "start", a->start);
    ir_set_dim(g, op, "end", a->end);
  }
}

/* Names v `SCOPE.suffix` (when the layer has a scope). */
static ir_val named(layer *L, ir_val v, const char *suffix) {
  if (v == IR_NONE || !suffix || !*L->name) return v;
  ir_buf *n = fe_msg_buf(L->c);
  ir_buf_printf(n, "%s.%s", L->name, suffix);
  ir_value_set_name(L->c->g, v, ir_arena_strdup(L->c->g->arena, n->s));
  return v;
}

/* An inferred op appended to block b; its first result (IR_NONE after an error). */
static ir_val op(layer *L, ir_blockid b, ir_opkind k, int32_t n, const ir_val *in, attrs a, const char *suffix) {
  for (int32_t i = 0; i < n; i++)
    if (in[i] == IR_NONE) return IR_NONE;
  ir_opid o = ir_build(L->c->g, b, k, n, in, set_attrs, &a, L->c->d, L->loc);
  return o == IR_NONE ? IR_NONE : named(L, ir_o(L->c->g, o)->out[0], suffix);
}

static ir_val op1(layer *L, ir_blockid b, ir_opkind k, ir_val x, const char *suffix) {
  return op(L, b, k, 1, &x, (attrs){0}, suffix);
}

static ir_val op2(layer *L, ir_blockid b, ir_opkind k, ir_val x, ir_val y, const char *suffix) {
  return op(L, b, k, 2, (ir_val[]){x, y}, (attrs){0}, suffix);
}

/* x W^T (+ bias). */
static ir_val affine(layer *L, ir_blockid b, ir_val x, ir_val w, ir_val bias, const char *suffix) {
  ir_val y = op(L, b, IR_OP_MATMUL, 2, (ir_val[]){x, w}, int_attr("transpose_b", 1), bias == IR_NONE ? suffix : NULL);
  return bias == IR_NONE ? y : op2(L, b, IR_OP_ADD, y, bias, suffix);
}

/* An op whose result type is declared (constant, reshape). */
static ir_val declared(layer *L, ir_blockid b, ir_opkind k, int32_t n, const ir_val *in, ir_type t) {
  if (n && in[0] == IR_NONE) return IR_NONE;
  ir_opid o = ir_op_new(L->c->g, k, n, in, 1, &t, L->loc);
  ir_op_append(L->c->g, b, o);
  return ir_o(L->c->g, o)->out[0];
}

static ir_val fill(layer *L, ir_blockid b, ir_type t, double v, const char *suffix) {
  ir_val y = declared(L, b, IR_OP_CONSTANT, 0, NULL, t);
  double f = v;
  int64_t i = (int64_t)v;
  ir_tensor_data data = {1, ir_dtype_is_float(t.dtype) ? &f : NULL, ir_dtype_is_float(t.dtype) ? NULL : &i};
  ir_set_tensor(L->c->g, ir_v(L->c->g, y)->def, "value", &data);
  return named(L, y, suffix);
}

static ir_val reshape(layer *L, ir_blockid b, ir_val x, ir_type t) {
  return declared(L, b, IR_OP_RESHAPE, 1, &x, t);
}

static ir_val transpose(layer *L, ir_blockid b, ir_val x, const int64_t *perm, int32_t n, const char *suffix) {
  attrs a = {0};
  a.ints_name = "perm", a.ints = perm, a.n_ints = n;
  return op(L, b, IR_OP_TRANSPOSE, 1, &x, a, suffix);
}

/* An op could not be built (its error is reported). */
static bool failed(const layer *L, ir_val v) {
  (void)L; /* kept for a uniform call shape at every build step */
  return v == IR_NONE;
}

/* ---- recurrent layers ------------------------------------------------------------- */

typedef enum cell { CELL_RNN_TANH, CELL_RNN_RELU, CELL_LSTM, CELL_GRU } cell;

typedef struct rnn {
  layer L;
  cell kind;
  int64_t hidden, layers, proj, gates;
  bool bidir, batch_first, bias;
  ir_val h0, c0;
  ir_val lengths; /* [B, 1] i64 valid steps per sequence, or IR_NONE */
  ir_dtype dt;
  ir_dim T, B;
  int64_t h_out; /* proj or hidden */
} rnn;

/* Packed-sequence semantics: at steps t >= lengths[b] the carries keep
 * their values and the output is 0, so the forward direction's final
 * state is the one at lengths[b] and the backward direction starts at
 * x[lengths[b] - 1] from its initial state. next[] holds the new carries
 * and the per-step output; args the body's arguments (lengths last). */
static bool mask_padding(rnn *R, ir_blockid body, const ir_val *args, int32_t n_in, int32_t n_carries, ir_val *next) {
  layer *L = &R->L;
  ir_val valid = op(L, body, IR_OP_COMPARE, 2, (ir_val[]){args[n_in], args[0]}, int_attr("predicate", IR_CMP_GT), NULL);
  for (int32_t i = 0; i < n_carries; i++)
    next[i] = op(L, body, IR_OP_SELECT, 3, (ir_val[]){valid, next[i], args[1 + i]}, (attrs){0}, NULL);
  ir_val zero = fill(L, body, type_of(L, R->dt, 0, NULL), 0.0, NULL);
  next[n_carries] = op(L, body, IR_OP_SELECT, 3, (ir_val[]){valid, next[n_carries], zero}, (attrs){0}, NULL);
  for (int32_t i = 0; i <= n_carries; i++)
    if (failed(L, next[i])) return false;
  return true;
}

/* One direction's parameters: weight_ih, weight_hh, bias_ih, bias_hh, weight_hr. */
typedef struct rnn_params {
  ir_val w[5];
} rnn_params;

static bool rnn_declare(rnn *R, int64_t k, int d, ir_dim in, rnn_params *p) {
  layer *L = &R->L;
  static const char *const names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"};
  ir_dim gh = lit(L, R->gates * R->hidden);
  ir_type types[5] = {type_of(L, R->dt, 2, (ir_dim[]){gh, in}), type_of(L, R->dt, 2, (ir_dim[]){gh, lit(L, R->h_out)}),
                      type_of(L, R->dt, 1, &gh), type_of(L, R->dt, 1, &gh),
                      type_of(L, R->dt, 2, (ir_dim[]){lit(L, R->proj), lit(L, R->hidden)})};
  for (int i = 0; i < 5; i++) {
    p->w[i] = IR_NONE;
    if ((i == 2 || i == 3) && !R->bias) continue;
    if (i == 4 && !R->proj) continue;
    ir_buf *suffix = fe_msg_buf(L->c);
    ir_buf_printf(suffix, "%s_l%lld%s", names[i], (long long)k, d ? "_reverse" : "");
    char *s = strdup(suffix->s);
    bool ok = param(L, s, types[i], &p->w[i]);
    free(s);
    if (!ok) return false;
  }
  return true;
}

/* The initial state of (layer k, direction d): slice idx of h0/c0
 * [D*L, B, width], or zeros. */
static ir_val initial_state(rnn *R, ir_val all, int64_t idx, int64_t width, const char *suffix) {
  layer *L = &R->L;
  ir_blockid b = L->s->block;
  ir_type t = type_of(L, R->dt, 2, (ir_dim[]){R->B, lit(L, width)});
  if (all == IR_NONE) return fill(L, b, t, 0.0, suffix);
  attrs a = int_attr("axis", 0);
  a.start = lit(L, idx), a.end = lit(L, idx + 1);
  return named(L, reshape(L, b, op(L, b, IR_OP_SLICE, 1, &all, a, NULL), t), suffix);
}

/* The cell's body: next carries and the per-step output, from the
 * region's arguments (t, h, [c], x_t, W_ih, W_hh, [b_ih, b_hh], [W_hr]). */
static bool build_cell(rnn *R, ir_blockid body, const ir_val *args, int32_t n_carries, ir_val *next) {
  layer *L = &R->L;
  const ir_val *inv = args + 2 + n_carries;
  ir_val h = args[1], c = n_carries > 1 ? args[2] : IR_NONE, xt = args[1 + n_carries];
  int32_t k = 0;
  ir_val w_ih = inv[k++], w_hh = inv[k++], b_ih = R->bias ? inv[k++] : IR_NONE, b_hh = R->bias ? inv[k++] : IR_NONE;
  ir_val w_hr = R->proj ? inv[k++] : IR_NONE;
  ir_val gi = affine(L, body, xt, w_ih, b_ih, NULL), gh = affine(L, body, h, w_hh, b_hh, NULL);
  ir_dim hd = lit(L, R->hidden);
  attrs split = int_attr("axis", 1);
  split.dims = (ir_dim[]){hd, hd, hd, hd};
  split.n_dims = (int32_t)R->gates;
  if (R->kind == CELL_RNN_TANH || R->kind == CELL_RNN_RELU) {
    next[0] = op1(L, body, R->kind == CELL_RNN_TANH ? IR_OP_TANH : IR_OP_RELU, op2(L, body, IR_OP_ADD, gi, gh, NULL), NULL);
    return !failed(L, next[0]);
  }
  if (R->kind == CELL_LSTM) { /* gate order i, f, g, o */
    ir_val g = op2(L, body, IR_OP_ADD, gi, gh, NULL);
    ir_val first = op(L, body, IR_OP_SPLIT, 1, &g, split, NULL);
    if (failed(L, first)) return false;
    const ir_val *q = ir_o(L->c->g, ir_v(L->c->g, first)->def)->out;
    ir_val i = op1(L, body, IR_OP_SIGMOID, q[0], NULL), f = op1(L, body, IR_OP_SIGMOID, q[1], NULL);
    ir_val gg = op1(L, body, IR_OP_TANH, q[2], NULL), o = op1(L, body, IR_OP_SIGMOID, q[3], NULL);
    next[1] = op2(L, body, IR_OP_ADD, op2(L, body, IR_OP_MUL, f, c, NULL), op2(L, body, IR_OP_MUL, i, gg, NULL), NULL);
    next[0] = op2(L, body, IR_OP_MUL, o, op1(L, body, IR_OP_TANH, next[1], NULL), NULL);
    if (R->proj) next[0] = affine(L, body, next[0], w_hr, IR_NONE, NULL);
    return !failed(L, next[0]);
  }
  /* GRU, gate order r, z, n; the reset gate scales (W_hn h + b_hn). */
  ir_val xs = op(L, body, IR_OP_SPLIT, 1, &gi, split, NULL), hs = op(L, body, IR_OP_SPLIT, 1, &gh, split, NULL);
  if (failed(L, xs) || failed(L, hs)) return false;
  const ir_val *xg = ir_o(L->c->g, ir_v(L->c->g, xs)->def)->out, *hg = ir_o(L->c->g, ir_v(L->c->g, hs)->def)->out;
  ir_val r = op1(L, body, IR_OP_SIGMOID, op2(L, body, IR_OP_ADD, xg[0], hg[0], NULL), NULL);
  ir_val z = op1(L, body, IR_OP_SIGMOID, op2(L, body, IR_OP_ADD, xg[1], hg[1], NULL), NULL);
  ir_val n = op1(L, body, IR_OP_TANH, op2(L, body, IR_OP_ADD, xg[2], op2(L, body, IR_OP_MUL, r, hg[2], NULL), NULL), NULL);
  ir_val one = fill(L, body, type_of(L, R->dt, 0, NULL), 1.0, NULL);
  ir_val keep = op2(L, body, IR_OP_MUL, z, h, NULL);
  next[0] = op2(L, body, IR_OP_ADD, op2(L, body, IR_OP_MUL, op2(L, body, IR_OP_SUB, one, z, NULL), n, NULL), keep, NULL);
  return !failed(L, next[0]);
}

/* One direction of one layer: a scan over T; final h (and c) and the
 * stacked outputs [T, B, h_out]. */
static bool rnn_direction(rnn *R, int64_t k, int d, ir_val x, ir_val *final, ir_val *ys) {
  layer *L = &R->L;
  ir_graph *g = L->c->g;
  ir_type xt = ir_vtype(g, x);
  rnn_params p;
  if (!rnn_declare(R, k, d, xt.dims[2], &p)) return false;
  char scope[64];
  snprintf(scope, sizeof scope, "l%lld%s", (long long)k, d ? "_reverse" : "");
  int64_t idx = k * (R->bidir ? 2 : 1) + d;
  int32_t n_carries = R->kind == CELL_LSTM ? 2 : 1;
  ir_val in[10];
  int32_t n_in = 0;
  in[n_in++] = initial_state(R, R->h0, idx, R->h_out, NULL);
  if (n_carries > 1) in[n_in++] = initial_state(R, R->c0, idx, R->hidden, NULL);
  in[n_in++] = x;
  for (int i = 0; i < 5; i++)
    if (p.w[i] != IR_NONE) in[n_in++] = p.w[i];
  if (R->lengths != IR_NONE) in[n_in++] = R->lengths;
  for (int32_t i = 0; i < n_in; i++)
    if (failed(L, in[i])) return false;
  ir_type placeholder[3] = {{0}};
  ir_opid scan = ir_op_new(g, IR_OP_SCAN, n_in, in, n_carries + 1, placeholder, L->loc);
  ir_set_dim(g, scan, "length", xt.dims[0]);
  ir_set_int(g, scan, "carries", n_carries);
  ir_set_int(g, scan, "xs", 1);
  if (d) ir_set_int(g, scan, "reverse", 1);
  ir_blockid body = ir_o(g, scan)->regions[0];
  ir_val args[11];
  args[0] = ir_block_add_arg(g, body, type_of(L, IR_I64, 0, NULL), NULL);
  for (int32_t i = 0; i < n_in; i++) {
    ir_type t = ir_vtype(g, in[i]);
    if (i == n_carries) t = type_of(L, t.dtype, 2, t.dims + 1); /* the step's slice of x */
    args[i + 1] = ir_block_add_arg(g, body, t, NULL);
  }
  ir_val next[3];
  bool ok = build_cell(R, body, args, n_carries, next);
  next[n_carries] = next[0];
  if (ok && R->lengths != IR_NONE) ok = mask_padding(R, body, args, n_in, n_carries, next);
  if (ok) {
    ir_op_append(g, body, ir_op_new(g, IR_OP_YIELD, n_carries + 1, next, 0, NULL, L->loc));
    ir_type types[3];
    int32_t n_out = 0;
    ok = ir_infer_types(g, scan, types, 3, &n_out, L->c->d);
    for (int32_t i = 0; ok && i < n_out; i++) g->vals[ir_o(g, scan)->out[i]].type = types[i];
  }
  if (!ok) {
    ir_o(g, scan)->erased = true;
    return false;
  }
  ir_op_append(g, L->s->block, scan);
  char nm[96];
  for (int32_t i = 0; i < n_carries; i++) {
    snprintf(nm, sizeof nm, "%s.%s", scope, i ? "c" : "h");
    final[i] = named(L, ir_o(g, scan)->out[i], nm);
  }
  snprintf(nm, sizeof nm, "%s.y", scope);
  *ys = named(L, ir_o(g, scan)->out[n_carries], nm);
  return true;
}

/* Stacks per-(layer, direction) [B, W] states into [D*L, B, W]. */
static ir_val stack_states(rnn *R, ir_val *states, int32_t n, int64_t width, const char *suffix) {
  layer *L = &R->L;
  ir_blockid b = L->s->block;
  ir_val *rows = ir_xcalloc((size_t)n + 1, sizeof(ir_val));
  ir_type one = type_of(L, R->dt, 3, (ir_dim[]){lit(L, 1), R->B, lit(L, width)});
  for (int32_t i = 0; i < n; i++) rows[i] = reshape(L, b, states[i], one);
  ir_val y = op(L, b, IR_OP_CONCAT, n, rows, int_attr("axis", 0), suffix);
  free(rows);
  return y;
}

static bool check_state_input(rnn *R, ir_val v, const char *key, int64_t width) {
  if (v == IR_NONE) return true;
  layer *L = &R->L;
  ir_type t = ir_vtype(L->c->g, v);
  int64_t n = R->layers * (R->bidir ? 2 : 1);
  ir_type want = type_of(L, R->dt, 3, (ir_dim[]){lit(L, n), R->B, lit(L, width)});
  if (ir_type_equal(t, want)) return true;
  return fe_fail(L->c, L->loc, "%s: '%s' is %s, expected %s (num_layers * directions, batch, %s)", L->what,
                 key, fe_show_type(L->c, t), fe_show_type(L->c, want), key[0] == 'c' ? "hidden_size" : "hidden size");
}

/* `lengths: lens`, an integer [B] input: as [B, 1] i64, the form the
 * scan bodies compare with the step index. */
static bool read_lengths(rnn *R) {
  layer *L = &R->L;
  ir_val v;
  if (!read_value(L, "lengths", &v)) return false;
  R->lengths = IR_NONE;
  if (v == IR_NONE) return true;
  if (!check_lengths(L, v, R->B, "lengths")) return false;
  ir_type t = ir_vtype(L->c->g, v);
  ir_blockid b = L->s->block;
  ir_type i64 = type_of(L, IR_I64, 1, &R->B);
  ir_val wide = t.dtype == IR_I64 ? v : declared(L, b, IR_OP_CAST, 1, &v, i64);
  R->lengths = named(L, reshape(L, b, wide, type_of(L, IR_I64, 2, (ir_dim[]){R->B, lit(L, 1)})), "lengths");
  return true;
}

static bool read_rnn(rnn *R, fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec, cell k) {
  static const char *const keys[] = {"name", "params", "input", "hidden_size", "num_layers", "bidirectional",
                                     "batch_first", "bias", "proj_size", "nonlinearity", "h0", "c0", "lengths",
                                     "out", NULL};
  memset(R, 0, sizeof *R);
  R->kind = k;
  layer *L = &R->L;
  if (!read_layer(L, c, s, kind, spec, keys, true)) return false;
  static const char *const acts[] = {"tanh", "relu", NULL};
  int act = 0;
  if (fe_ymap_get(spec, "nonlinearity") && k != CELL_RNN_TANH)
    return fe_fail(c, fe_loc(c, fe_ymap_get(spec, "nonlinearity")), "%s has no 'nonlinearity' (only rnn has)", L->what);
  if (!read_enum(L, "nonlinearity", acts, 0, &act)) return false;
  if (act == 1) R->kind = CELL_RNN_RELU;
  if (fe_ymap_get(spec, "proj_size") && k != CELL_LSTM)
    return fe_fail(c, fe_loc(c, fe_ymap_get(spec, "proj_size")), "%s has no 'proj_size' (only lstm has)", L->what);
  if (fe_ymap_get(spec, "c0") && k != CELL_LSTM)
    return fe_fail(c, fe_loc(c, fe_ymap_get(spec, "c0")), "%s has no 'c0' (only lstm has)", L->what);
  R->gates = k == CELL_LSTM ? 4 : k == CELL_GRU ? 3 : 1;
  if (!read_int(L, "hidden_size", 1, MAX_WIDTH, 0, true, &R->hidden) || !read_int(L, "num_layers", 1, MAX_LAYERS, 1, false, &R->layers) ||
      !read_int(L, "proj_size", 0, MAX_WIDTH, 0, false, &R->proj) || !read_bool(L, "bidirectional", false, &R->bidir) ||
      !read_bool(L, "batch_first", false, &R->batch_first) || !read_bool(L, "bias", true, &R->bias) ||
      !read_value(L, "h0", &R->h0) || !read_value(L, "c0", &R->c0))
    return false;
  if (R->proj >= R->hidden)
    return fe_fail(c, L->loc, "%s: proj_size %lld must be smaller than hidden_size %lld", L->what,
                   (long long)R->proj, (long long)R->hidden);
  R->h_out = R->proj ? R->proj : R->hidden;
  ir_type x = ir_vtype(c->g, L->input);
  if (x.rank != 3 || !ir_dtype_is_float(x.dtype))
    return fe_fail(c, L->loc, "%s: input is %s, expected a float tensor [%s]", L->what, fe_show_type(c, x),
                   R->batch_first ? "B, T, input_size" : "T, B, input_size");
  R->dt = x.dtype;
  R->T = x.dims[R->batch_first ? 1 : 0];
  R->B = x.dims[R->batch_first ? 0 : 1];
  return check_state_input(R, R->h0, "h0", R->h_out) && check_state_input(R, R->c0, "c0", R->hidden) &&
         read_lengths(R);
}

static bool build_recurrent(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec, cell k) {
  rnn R;
  if (!read_rnn(&R, c, s, kind, spec, k)) return false;
  layer *L = &R.L;
  ir_blockid b = s->block;
  ir_val x = R.batch_first ? transpose(L, b, L->input, swap01, 3, "x_tb") : L->input;
  int32_t dirs = R.bidir ? 2 : 1, n = (int32_t)(R.layers * dirs);
  ir_val *hs = ir_xcalloc((size_t)n + 1, sizeof(ir_val)), *cs = ir_xcalloc((size_t)n + 1, sizeof(ir_val));
  bool ok = !failed(L, x);
  for (int64_t layer_k = 0; ok && layer_k < R.layers; layer_k++) {
    ir_val ys[2], final[2];
    for (int d = 0; ok && d < dirs; d++) {
      ok = rnn_direction(&R, layer_k, d, x, final, &ys[d]);
      if (ok) hs[layer_k * dirs + d] = final[0];
      if (ok && k == CELL_LSTM) cs[layer_k * dirs + d] = final[1];
    }
    if (ok) x = dirs == 1 ? ys[0] : op(L, b, IR_OP_CONCAT, 2, ys, int_attr("axis", 2), NULL);
    ok = ok && !failed(L, x);
  }
  ir_val outs[3] = {IR_NONE, IR_NONE, IR_NONE};
  if (ok) {
    outs[0] = R.batch_first ? transpose(L, b, x, swap01, 3, "y") : named(L, x, "y");
    outs[1] = stack_states(&R, hs, n, R.h_out, "hn");
    if (k == CELL_LSTM) outs[2] = stack_states(&R, cs, n, R.hidden, "cn");
    ok = !failed(L, outs[0]) && !failed(L, outs[1]) && (k != CELL_LSTM || !failed(L, outs[2]));
  }
  free(hs);
  free(cs);
  return ok && define_outputs(L, k == CELL_LSTM ? 3 : 2, outs, k == CELL_LSTM ? "output, h_n, c_n" : "output, h_n");
}

static bool build_rnn(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  return build_recurrent(c, s, kind, spec, CELL_RNN_TANH);
}
static bool build_lstm(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  return build_recurrent(c, s, kind, spec, CELL_LSTM);
}
static bool build_gru(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  return build_recurrent(c, s, kind, spec, CELL_GRU);
}

/* ---- feed-forward layers ------------------------------------------------------------ */

/* The input's last dim (the features a layer reads). */
static bool features(layer *L, int32_t min_rank, ir_dim *out) {
  ir_type t = ir_vtype(L->c->g, L->input);
  if (t.rank < min_rank || !ir_dtype_is_float(t.dtype))
    return fe_fail(L->c, L->loc, "%s: input is %s, expected a float tensor of rank at least %d", L->what,
                   fe_show_type(L->c, t), min_rank);
  *out = t.dims[t.rank - 1];
  return true;
}

/* A parameter SUB.name (name alone when sub is empty). */
static bool sub_param(layer *L, const char *sub, const char *name, ir_type t, ir_val *out) {
  ir_buf *full = fe_msg_buf(L->c);
  ir_buf_printf(full, "%s%s%s", sub, *sub ? "." : "", name);
  char *suffix = strdup(full->s);
  bool ok = param(L, suffix, t, out);
  free(suffix);
  return ok;
}

/* nn.Linear `sub`: x W^T + b over x's last dim. */
static ir_val linear_of(layer *L, const char *sub, ir_val x, int64_t n_out, bool bias, const char *suffix) {
  if (x == IR_NONE) return IR_NONE;
  ir_type t = ir_vtype(L->c->g, x);
  ir_val w, b = IR_NONE;
  if (!sub_param(L, sub, "weight", type_of(L, t.dtype, 2, (ir_dim[]){lit(L, n_out), t.dims[t.rank - 1]}), &w) ||
      (bias && !sub_param(L, sub, "bias", type_of(L, t.dtype, 1, (ir_dim[]){lit(L, n_out)}), &b)))
    return IR_NONE;
  return affine(L, L->s->block, x, w, b, suffix);
}

/* nn.LayerNorm `sub` over x's last dim. */
static ir_val layernorm_of(layer *L, const char *sub, ir_val x, double eps, bool affine_on, const char *suffix) {
  if (x == IR_NONE) return IR_NONE;
  ir_type t = ir_vtype(L->c->g, x);
  ir_dim d = t.dims[t.rank - 1];
  ir_val in[3] = {x, IR_NONE, IR_NONE};
  if (affine_on && (!sub_param(L, sub, "weight", type_of(L, t.dtype, 1, &d), &in[1]) ||
                    !sub_param(L, sub, "bias", type_of(L, t.dtype, 1, &d), &in[2])))
    return IR_NONE;
  ir_opid o = ir_op_new(L->c->g, IR_OP_LAYERNORM, affine_on ? 3 : 1, in, 1, &t, L->loc);
  ir_set_float(L->c->g, o, "eps", eps);
  ir_op_append(L->c->g, L->s->block, o);
  return named(L, ir_o(L->c->g, o)->out[0], suffix);
}

static bool build_linear(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "out_features", "bias", "out", NULL};
  layer L;
  int64_t n_out;
  bool bias;
  ir_dim in;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_int(&L, "out_features", 1, MAX_WIDTH, 0, true, &n_out) ||
      !read_bool(&L, "bias", true, &bias) || !features(&L, 2, &in))
    return false;
  ir_val y = linear_of(&L, "", L.input, n_out, bias, "y");
  return !failed(&L, y) && define_outputs(&L, 1, &y, "output");
}

static bool build_embedding(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "num_embeddings", "embedding_dim", "padding_idx", "out", NULL};
  layer L;
  int64_t n, dim, pad;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_int(&L, "num_embeddings", 1, MAX_WIDTH, 0, true, &n) ||
      !read_int(&L, "embedding_dim", 1, MAX_WIDTH, 0, true, &dim))
    return false;
  const fe_ynode *p = fe_ymap_get(spec, "padding_idx");
  if (p && !fe_read_int(c, p, "embedding field 'padding_idx'", -n, n - 1, &pad)) return false;
  ir_type ids = ir_vtype(c->g, L.input);
  if (!ir_dtype_is_int(ids.dtype))
    return fe_fail(c, L.loc, "%s: input is %s, expected token ids (i32 or i64)", L.what, fe_show_type(c, ids));
  ir_val w;
  if (!param(&L, "weight", type_of(&L, IR_F32, 2, (ir_dim[]){lit(&L, n), lit(&L, dim)}), &w)) return false;
  ir_val y = op(&L, s->block, IR_OP_GATHER, 2, (ir_val[]){w, L.input}, int_attr("axis", 0), "y");
  return !failed(&L, y) && define_outputs(&L, 1, &y, "output");
}

static bool build_layernorm(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "eps", "elementwise_affine", "out", NULL};
  layer L;
  double eps;
  bool affine_on;
  ir_dim d;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_bounded_real(&L, "eps", 1e-30, 1.0, 1e-5, &eps) ||
      !read_bool(&L, "elementwise_affine", true, &affine_on) || !features(&L, 1, &d))
    return false;
  ir_val y = layernorm_of(&L, "", L.input, eps, affine_on, "y");
  return !failed(&L, y) && define_outputs(&L, 1, &y, "output");
}

/* y = x / sqrt(mean(x^2) + eps) * weight over the last dim (the RMSNorm of
 * T5 and LLaMA; PyTorch 1.13 has none). */
static bool build_rmsnorm(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "eps", "out", NULL};
  layer L;
  double eps;
  ir_dim d;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_bounded_real(&L, "eps", 1e-30, 1.0, 1e-6, &eps) || !features(&L, 1, &d))
    return false;
  ir_type t = ir_vtype(c->g, L.input);
  ir_val w;
  if (!param(&L, "weight", type_of(&L, t.dtype, 1, &d), &w)) return false;
  ir_blockid b = s->block;
  attrs mean = int_attr("keepdims", 1);
  int64_t last = t.rank - 1;
  mean.ints_name = "axes", mean.ints = &last, mean.n_ints = 1;
  ir_val ms = op(&L, b, IR_OP_REDUCE_MEAN, 1, (ir_val[]){op2(&L, b, IR_OP_MUL, L.input, L.input, NULL)}, mean, "ms");
  ir_val inv = op1(&L, b, IR_OP_RSQRT, op2(&L, b, IR_OP_ADD, ms, fill(&L, b, type_of(&L, t.dtype, 0, NULL), eps, NULL), NULL), NULL);
  ir_val y = op2(&L, b, IR_OP_MUL, op2(&L, b, IR_OP_MUL, L.input, inv, NULL), w, "y");
  return !failed(&L, y) && define_outputs(&L, 1, &y, "output");
}

/* Identity at inference; a copy, so the output is a value of its own. */
static bool build_dropout(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "input", "p", "out", NULL};
  layer L;
  double p;
  if (!read_layer(&L, c, s, kind, spec, keys, false) || !read_bounded_real(&L, "p", 0.0, 1.0, 0.5, &p)) return false;
  ir_val y = reshape(&L, s->block, L.input, ir_vtype(c->g, L.input));
  return define_outputs(&L, 1, &y, "output");
}

/* ---- convolution ------------------------------------------------------------------------ */

typedef struct conv {
  layer L;
  int64_t out, k, stride, dilation, groups, pad_lo, pad_hi;
  bool bias, channels_last, same;
  int32_t len_axis; /* the convolved axis once channels are last: rank - 2 */
} conv;

/* padding: N (both sides), same (stride 1; PyTorch puts the odd one on the
 * right), causal (all on the left: y[t] sees x up to t). */
static bool read_padding(conv *C) {
  layer *L = &C->L;
  const fe_ynode *p = fe_ymap_get(L->spec, "padding");
  int64_t span = C->dilation * (C->k - 1);
  C->pad_lo = C->pad_hi = 0;
  if (!p) return true;
  if (!fe_expect(L->c, p, FE_Y_SCALAR, "conv1d field 'padding'", "a number, same or causal")) return false;
  if (!strcmp(p->text, "same")) {
    if (C->stride != 1) return fe_fail(L->c, fe_loc(L->c, p), "%s: padding 'same' needs stride 1", L->what);
    C->pad_lo = span / 2, C->pad_hi = span - span / 2;
  } else if (!strcmp(p->text, "causal")) {
    C->pad_lo = span;
  } else {
    ir_buf *what = fe_msg_buf(L->c);
    ir_buf_printf(what, "%s field 'padding' (a number, same or causal)", L->what);
    if (!fe_read_int(L->c, p, what->s, 0, INT32_MAX, &C->pad_lo)) return false;
    C->pad_hi = C->pad_lo;
  }
  return true;
}

static bool read_conv(conv *C, fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "out_channels", "kernel_size", "stride", "padding",
                                     "dilation", "groups", "bias", "channels_last", "out", NULL};
  memset(C, 0, sizeof *C);
  layer *L = &C->L;
  return read_layer(L, c, s, kind, spec, keys, true) && read_int(L, "out_channels", 1, MAX_WIDTH, 0, true, &C->out) &&
         read_int(L, "kernel_size", 1, MAX_KERNEL, 0, true, &C->k) && read_int(L, "stride", 1, MAX_STEP, 1, false, &C->stride) &&
         read_int(L, "dilation", 1, MAX_STEP, 1, false, &C->dilation) && read_int(L, "groups", 1, MAX_STEP, 1, false, &C->groups) &&
         read_bool(L, "bias", true, &C->bias) && read_bool(L, "channels_last", false, &C->channels_last) &&
         read_padding(C);
}

static void set_pad(ir_graph *g, ir_opid op, void *ud) {
  const conv *C = ud;
  ir_set_int(g, op, "axis", C->len_axis);
  ir_set_dim(g, op, "low", ir_dim_const(g->dims, C->pad_lo));
  ir_set_dim(g, op, "high", ir_dim_const(g->dims, C->pad_hi));
}

/* x [..., L, C] with zeros before and after L. */
static ir_val pad_time(conv *C, ir_val x) {
  layer *L = &C->L;
  ir_opid o = ir_build(L->c->g, L->s->block, IR_OP_PAD, 1, &x, set_pad, C, L->c->d, L->loc);
  return o == IR_NONE ? IR_NONE : ir_o(L->c->g, o)->out[0];
}

/* v cut into `groups` equal pieces along axis; the first piece (the split
 * op holds them all). */
static ir_val split_even(conv *C, ir_val v, int32_t axis) {
  layer *L = &C->L;
  ir_type t = ir_vtype(L->c->g, v);
  int64_t n;
  IR_ASSERT(ir_dim_is_const(L->c->g->dims, t.dims[axis], &n));
  ir_dim *sizes = ir_xcalloc((size_t)C->groups, sizeof(ir_dim));
  for (int64_t i = 0; i < C->groups; i++) sizes[i] = lit(L, n / C->groups);
  attrs a = int_attr("axis", axis);
  a.dims = sizes, a.n_dims = (int32_t)C->groups;
  ir_val first = op(L, L->s->block, IR_OP_SPLIT, 1, &v, a, NULL);
  free(sizes);
  return first;
}

/* One group: x [..., L', C_in/g] (padded), w [C_out/g, C_in/g, k] -> the sum
 * over taps j of x[..., j*d :: stride, :][:L_out] w[:, :, j]^T, [..., L_out, C_out/g]. */
static ir_val conv_group(conv *C, ir_val x, ir_val w, ir_dim l_out) {
  layer *L = &C->L;
  ir_blockid b = L->s->block;
  ir_graph *g = L->c->g;
  ir_type wt = ir_vtype(g, w);
  ir_val y = IR_NONE;
  for (int64_t j = 0; j < C->k; j++) {
    attrs tap = int_attr("axis", 2);
    tap.start = lit(L, j), tap.end = lit(L, j + 1);
    ir_val wj = reshape(L, b, op(L, b, IR_OP_SLICE, 1, &w, tap, NULL), type_of(L, wt.dtype, 2, wt.dims));
    attrs steps = C->stride == 1 ? int_attr("axis", C->len_axis)
                                 : (attrs){.name = {"axis", "step"}, .value = {C->len_axis, C->stride}};
    steps.start = lit(L, j * C->dilation);
    /* the last step read is start + (L_out - 1) * stride */
    steps.end = ir_dim_add(g->dims, ir_dim_add(g->dims, steps.start, ir_dim_mul(g->dims, ir_dim_sub(g->dims, l_out, lit(L, 1)), lit(L, C->stride))), lit(L, 1));
    ir_val xj = op(L, b, IR_OP_SLICE, 1, &x, steps, NULL);
    ir_val term = op(L, b, IR_OP_MATMUL, 2, (ir_val[]){xj, wj}, int_attr("transpose_b", 1), NULL);
    y = y == IR_NONE ? term : op2(L, b, IR_OP_ADD, y, term, NULL);
    if (failed(L, y)) return IR_NONE;
  }
  return y;
}

/* nn.Conv1d over [..., C_in, L] ([..., L, C_in] with channels_last), zero
 * padding; the leading dims (one or more) are batch dims, as nn.Conv1d on
 * x.reshape(-1, C_in, L): [B, T, C_in, L] convolves each frame of a sequence
 * on its own, and T stays an axis of its own (it streams). */
static bool build_conv1d(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  conv C;
  layer *L = &C.L;
  if (!read_conv(&C, c, s, kind, spec)) return false;
  ir_type t = ir_vtype(c->g, L->input);
  int64_t cin;
  int32_t r = t.rank;
  C.len_axis = r - 2;
  if (r < 3 || r > FE_MAX_RANK || !ir_dtype_is_float(t.dtype) ||
      !ir_dim_is_const(c->g->dims, t.dims[C.channels_last ? r - 1 : r - 2], &cin))
    return fe_fail(c, L->loc, "%s: input is %s, expected a float [B, C_in, T] (or [B, T, C_in] with channels_last; "
                   "more leading batch dims allowed) with a numeric C_in", L->what, fe_show_type(c, t));
  if (cin % C.groups || C.out % C.groups)
    return fe_fail(c, L->loc, "%s: groups %lld must divide in_channels %lld and out_channels %lld", L->what,
                   (long long)C.groups, (long long)cin, (long long)C.out);
  ir_blockid b = s->block;
  ir_graph *g = c->g;
  ir_val w, bias = IR_NONE;
  if (!param(L, "weight", type_of(L, t.dtype, 3, (ir_dim[]){lit(L, C.out), lit(L, cin / C.groups), lit(L, C.k)}), &w) ||
      (C.bias && !param(L, "bias", type_of(L, t.dtype, 1, (ir_dim[]){lit(L, C.out)}), &bias)))
    return false;
  int64_t swap_last[FE_MAX_RANK]; /* the last two axes exchanged */
  for (int32_t a = 0; a < r; a++) swap_last[a] = a;
  swap_last[r - 2] = r - 1, swap_last[r - 1] = r - 2;
  ir_val x = C.channels_last ? L->input : transpose(L, b, L->input, swap_last, r, NULL);
  if (C.pad_lo || C.pad_hi) x = pad_time(&C, x);
  if (failed(L, x)) return false;
  ir_dim span = lit(L, C.dilation * (C.k - 1)), one = lit(L, 1);
  ir_dim reach = ir_dim_sub(g->dims, ir_dim_sub(g->dims, ir_vtype(g, x).dims[r - 2], span), one);
  ir_dim l_out = ir_dim_add(g->dims, ir_dim_floordiv(g->dims, reach, lit(L, C.stride)), one);
  ir_val y;
  if (C.groups == 1) {
    y = conv_group(&C, x, w, l_out);
  } else { /* each group of channels on its own, joined along the channels */
    ir_val *ys = ir_xcalloc((size_t)C.groups + 1, sizeof(ir_val));
    ir_val xs = split_even(&C, x, r - 1), wsplit = split_even(&C, w, 0);
    bool ok = !failed(L, xs) && !failed(L, wsplit);
    for (int64_t i = 0; ok && i < C.groups; i++) {
      ys[i] = conv_group(&C, ir_o(g, ir_v(g, xs)->def)->out[i], ir_o(g, ir_v(g, wsplit)->def)->out[i], l_out);
      ok = !failed(L, ys[i]);
    }
    y = ok ? op(L, b, IR_OP_CONCAT, (int32_t)C.groups, ys, int_attr("axis", r - 1), NULL) : IR_NONE;
    free(ys);
  }
  if (!failed(L, y) && bias != IR_NONE) y = op2(L, b, IR_OP_ADD, y, bias, NULL);
  if (!failed(L, y) && !C.channels_last) y = transpose(L, b, y, swap_last, r, NULL);
  return !failed(L, named(L, y, "y")) && define_outputs(L, 1, &y, "output");
}

/* ---- pooling over time ------------------------------------------------------------------ */

typedef enum pool_mode { POOL_MEAN, POOL_MAX, POOL_FIRST, POOL_LAST } pool_mode;

typedef struct pool {
  layer L;
  ir_val x;                 /* time-major [T, B, E] */
  ir_type t;
  ir_val len_t;             /* lengths as i64 [1, B, 1] (IR_NONE without lengths) */
  ir_val len_b;             /* lengths as i64 [B, 1] */
} pool;

static ir_val pool_fill(pool *P, double v) { return fill(&P->L, P->L.s->block, type_of(&P->L, P->t.dtype, 0, NULL), v, NULL); }
static ir_val i64_scalar(pool *P, int64_t v) { return fill(&P->L, P->L.s->block, type_of(&P->L, IR_I64, 0, NULL), (double)v, NULL); }

static ir_val select3(layer *L, ir_val cond, ir_val a, ir_val b) {
  return op(L, L->s->block, IR_OP_SELECT, 3, (ir_val[]){cond, a, b}, (attrs){0}, NULL);
}

static ir_val reduce_time(layer *L, ir_opkind k, ir_val x) {
  static const int64_t axis0 = 0;
  attrs a = {0};
  a.ints_name = "axes", a.ints = &axis0, a.n_ints = 1;
  return op(L, L->s->block, k, 1, &x, a, NULL);
}

/* The step index t as i64 [T, 1, 1]. */
static ir_val time_iota(pool *P) {
  layer *L = &P->L;
  ir_type idx = type_of(L, IR_I64, 3, (ir_dim[]){P->t.dims[0], lit(L, 1), lit(L, 1)});
  ir_val t = declared(L, L->s->block, IR_OP_IOTA, 0, NULL, idx);
  ir_set_int(L->c->g, ir_v(L->c->g, t)->def, "axis", 0);
  return t;
}

static ir_val compare_to(layer *L, ir_val a, ir_val b, int64_t pred) {
  return op(L, L->s->block, IR_OP_COMPARE, 2, (ir_val[]){a, b}, int_attr("predicate", pred), NULL);
}

/* x at one fixed step: [B, E]. */
static ir_val step_at(pool *P, ir_dim start) {
  layer *L = &P->L;
  attrs a = int_attr("axis", 0);
  a.start = start, a.end = ir_dim_add(L->c->g->dims, start, lit(L, 1));
  return reshape(L, L->s->block, op(L, L->s->block, IR_OP_SLICE, 1, &P->x, a, NULL),
                 type_of(L, P->t.dtype, 2, P->t.dims + 1));
}

/* With lengths, every mode is a masked reduction over T, so it is defined
 * for any T (0 too) and any length (above T counts as T, 0 gives 0). */
static ir_val pool_with_lengths(pool *P, pool_mode mode) {
  layer *L = &P->L;
  ir_blockid b = L->s->block;
  ir_val zero = pool_fill(P, 0.0), t = time_iota(P);
  ir_val valid = compare_to(L, t, P->len_t, IR_CMP_LT);
  ir_val any = compare_to(L, P->len_b, i64_scalar(P, 0), IR_CMP_GT);
  switch (mode) {
  case POOL_FIRST: /* the step at 0, if valid; a sum of it and zeros */
  case POOL_LAST: { /* the step at length - 1 (the last valid one) */
    ir_val at = mode == POOL_FIRST ? i64_scalar(P, 0) : op2(L, b, IR_OP_SUB, P->len_t, i64_scalar(P, 1), NULL);
    ir_val pick = op2(L, b, IR_OP_AND, compare_to(L, t, at, IR_CMP_EQ), valid, NULL);
    return reduce_time(L, IR_OP_REDUCE_SUM, select3(L, pick, P->x, zero));
  }
  case POOL_MAX:
    return select3(L, any, reduce_time(L, IR_OP_REDUCE_MAX, select3(L, valid, P->x, pool_fill(P, -INFINITY))), zero);
  default: { /* masked sum / max(valid steps, 1) */
    ir_val sum = reduce_time(L, IR_OP_REDUCE_SUM, select3(L, valid, P->x, zero));
    ir_type vt = ir_vtype(L->c->g, valid);
    ir_val count = reduce_time(L, IR_OP_REDUCE_SUM, declared(L, b, IR_OP_CAST, 1, &valid, type_of(L, P->t.dtype, vt.rank, vt.dims)));
    return op2(L, b, IR_OP_DIV, sum, op2(L, b, IR_OP_MAX, count, pool_fill(P, 1.0), NULL), NULL);
  }
  }
}

static ir_val pool_whole(pool *P, pool_mode mode) {
  layer *L = &P->L;
  switch (mode) {
  case POOL_FIRST: return step_at(P, lit(L, 0));
  case POOL_LAST: return step_at(P, ir_dim_sub(L->c->g->dims, P->t.dims[0], lit(L, 1)));
  case POOL_MAX: return reduce_time(L, IR_OP_REDUCE_MAX, P->x);
  default: return reduce_time(L, IR_OP_REDUCE_MEAN, P->x);
  }
}

/* Lengths as i64 [1, B, 1] and [B, 1]. */
static bool pool_lengths(pool *P, ir_val lengths) {
  layer *L = &P->L;
  P->len_t = P->len_b = IR_NONE;
  if (lengths == IR_NONE) return true;
  if (!check_lengths(L, lengths, P->t.dims[1], "lengths")) return false;
  ir_type lt = ir_vtype(L->c->g, lengths);
  ir_blockid b = L->s->block;
  ir_val wide = lt.dtype == IR_I64 ? lengths : declared(L, b, IR_OP_CAST, 1, &lengths, type_of(L, IR_I64, 1, lt.dims));
  P->len_t = reshape(L, b, wide, type_of(L, IR_I64, 3, (ir_dim[]){lit(L, 1), P->t.dims[1], lit(L, 1)}));
  P->len_b = reshape(L, b, wide, type_of(L, IR_I64, 2, (ir_dim[]){P->t.dims[1], lit(L, 1)}));
  return true;
}

/* `pool: {input, mode: mean | max | first | last, lengths, batch_first}`:
 * [T, B, E] (or [B, T, E]) to [B, E] over each sequence's valid steps; a
 * sequence of length 0 pools to 0. */
static bool build_pool(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "input", "mode", "lengths", "batch_first", "out", NULL};
  static const char *const modes[] = {"mean", "max", "first", "last", NULL};
  pool P;
  layer *L = &P.L;
  bool bf;
  ir_val lengths;
  if (!read_layer(L, c, s, kind, spec, keys, false) || !read_bool(L, "batch_first", false, &bf) ||
      !read_value(L, "lengths", &lengths))
    return false;
  int mode = -1;
  if (!read_enum(L, "mode", modes, -1, &mode)) return false;
  if (mode < 0) return fe_fail(c, L->loc, "%s needs 'mode' (mean, max, first or last)", L->what);
  ir_type t0 = ir_vtype(c->g, L->input);
  if (t0.rank != 3 || !ir_dtype_is_float(t0.dtype))
    return fe_fail(c, L->loc, "%s: input is %s, expected a float [T, B, E] (or [B, T, E] with batch_first)", L->what,
                   fe_show_type(c, t0));
  P.x = bf ? transpose(L, s->block, L->input, swap01, 3, NULL) : L->input;
  P.t = ir_vtype(c->g, P.x);
  if (!pool_lengths(&P, lengths)) return false;
  ir_val y = lengths == IR_NONE ? pool_whole(&P, (pool_mode)mode) : pool_with_lengths(&P, (pool_mode)mode);
  return !failed(L, y) && define_outputs(L, 1, &y, "output");
}

/* ---- attention layers ----------------------------------------------------------------- */

typedef struct mha {
  int64_t heads;
  bool bias, batch_first;
  int64_t mask, window; /* IR_MASK_NONE, CAUSAL or WINDOW */
  ir_val lengths;       /* [B] key lengths, or IR_NONE */
  const char *lengths_field; /* its field, for messages */
} mha;

/* x [B, L, E] -> [B, heads, L, E/heads]. */
static ir_val split_heads(layer *L, ir_val x, int64_t heads, const char *suffix) {
  if (x == IR_NONE) return IR_NONE;
  ir_type t = ir_vtype(L->c->g, x);
  int64_t e;
  IR_ASSERT(ir_dim_is_const(L->c->g->dims, t.dims[2], &e));
  ir_val r = reshape(L, L->s->block, x, type_of(L, t.dtype, 4, (ir_dim[]){t.dims[0], t.dims[1], lit(L, heads), lit(L, e / heads)}));
  static const int64_t perm[] = {0, 2, 1, 3};
  return transpose(L, L->s->block, r, perm, 4, suffix);
}

/* A projection of x with rows [first, first + n) of the packed bias
 * (in_proj_bias) and of the packed weight (in_proj_weight) or a weight of
 * its own (q/k/v_proj_weight). */
static ir_val project(layer *L, ir_val x, ir_val w, bool packed, ir_val b, int64_t first, int64_t n, const char *suffix) {
  ir_blockid blk = L->s->block;
  attrs rows = int_attr("axis", 0);
  rows.start = lit(L, first), rows.end = lit(L, first + n);
  if (packed) w = op(L, blk, IR_OP_SLICE, 1, &w, rows, NULL);
  if (b != IR_NONE) b = op(L, blk, IR_OP_SLICE, 1, &b, rows, NULL);
  return affine(L, blk, x, w, b, suffix);
}

/* nn.MultiheadAttention `sub` on batch-major q [B, T, E], k [B, S, kdim],
 * v [B, S, vdim]: the result [B, T, E]. */
static ir_val mha_of(layer *L, const char *sub, ir_val q, ir_val k, ir_val v, const mha *o) {
  ir_graph *g = L->c->g;
  ir_blockid blk = L->s->block;
  ir_type qt = ir_vtype(g, q), kt = ir_vtype(g, k), vt = ir_vtype(g, v);
  int64_t e;
  if (!ir_dim_is_const(g->dims, qt.dims[2], &e) || e % o->heads)
    return fe_fail(L->c, L->loc, "%s: embed_dim %s is not a multiple of num_heads %lld", L->what,
                   fe_show_dim(L->c, qt.dims[2]), (long long)o->heads), IR_NONE;
  if (kt.dims[0] != qt.dims[0] || vt.dims[0] != qt.dims[0] || kt.dims[1] != vt.dims[1])
    return fe_fail(L->c, L->loc, "%s: query %s, key %s and value %s need one batch, and the key and value one "
                   "length", L->what, fe_show_type(L->c, qt), fe_show_type(L->c, kt), fe_show_type(L->c, vt)), IR_NONE;
  if (o->lengths != IR_NONE && !check_lengths(L, o->lengths, qt.dims[0], o->lengths_field)) return IR_NONE;
  ir_dim ed = lit(L, e), e3 = lit(L, 3 * e);
  bool packed = kt.dims[2] == ed && vt.dims[2] == ed; /* PyTorch's _qkv_same_embed_dim */
  ir_val wq, wk, wv, bias = IR_NONE;
  if (packed) {
    if (!sub_param(L, sub, "in_proj_weight", type_of(L, qt.dtype, 2, (ir_dim[]){e3, ed}), &wq)) return IR_NONE;
    wk = wv = wq;
  } else if (!sub_param(L, sub, "q_proj_weight", type_of(L, qt.dtype, 2, (ir_dim[]){ed, ed}), &wq) ||
             !sub_param(L, sub, "k_proj_weight", type_of(L, qt.dtype, 2, (ir_dim[]){ed, kt.dims[2]}), &wk) ||
             !sub_param(L, sub, "v_proj_weight", type_of(L, qt.dtype, 2, (ir_dim[]){ed, vt.dims[2]}), &wv)) {
    return IR_NONE;
  }
  if (o->bias && !sub_param(L, sub, "in_proj_bias", type_of(L, qt.dtype, 1, &e3), &bias)) return IR_NONE;
  ir_val qh = split_heads(L, project(L, q, wq, packed, bias, 0, e, NULL), o->heads, "q");
  ir_val kh = split_heads(L, project(L, k, wk, packed, bias, e, e, NULL), o->heads, "k");
  ir_val vh = split_heads(L, project(L, v, wv, packed, bias, 2 * e, e, NULL), o->heads, "v");
  int64_t mask = o->mask;
  if (o->lengths != IR_NONE) mask = mask == IR_MASK_CAUSAL ? IR_MASK_CAUSAL_PADDING : IR_MASK_PADDING;
  ir_val in[4] = {qh, kh, vh, o->lengths};
  for (int i = 0; i < 3; i++)
    if (in[i] == IR_NONE) return IR_NONE;
  ir_type at = type_of(L, qt.dtype, 4, ir_vtype(g, qh).dims);
  ir_opid a = ir_op_new(g, IR_OP_ATTENTION, o->lengths != IR_NONE ? 4 : 3, in, 1, &at, L->loc);
  ir_set_int(g, a, "mask", mask);
  ir_set_float(g, a, "scale", 1.0 / sqrt((double)(e / o->heads)));
  if (o->mask == IR_MASK_WINDOW) ir_set_int(g, a, "window", o->window);
  ir_op_append(g, blk, a);
  static const int64_t perm[] = {0, 2, 1, 3};
  ir_val merged = transpose(L, blk, named(L, ir_o(g, a)->out[0], "heads"), perm, 4, NULL);
  merged = reshape(L, blk, merged, type_of(L, qt.dtype, 3, qt.dims));
  ir_buf *out_sub = fe_msg_buf(L->c);
  ir_buf_printf(out_sub, "%s%sout_proj", sub, *sub ? "." : "");
  char *os = strdup(out_sub->s);
  ir_val y = linear_of(L, os, merged, e, o->bias, NULL);
  free(os);
  return y;
}

/* mask: none | causal | window (with window: N), and lengths. */
static bool read_mha_options(layer *L, mha *o) {
  static const char *const masks[] = {"none", "causal", "window", NULL};
  static const int64_t kinds[] = {IR_MASK_NONE, IR_MASK_CAUSAL, IR_MASK_WINDOW};
  int mask;
  if (!read_enum(L, "mask", masks, 0, &mask)) return false;
  o->mask = kinds[mask];
  o->lengths_field = "lengths";
  if (!read_int(L, "window", 1, MAX_STEP, 0, o->mask == IR_MASK_WINDOW, &o->window) || !read_value(L, "lengths", &o->lengths))
    return false;
  if (o->window && o->mask != IR_MASK_WINDOW)
    return fe_fail(L->c, L->loc, "%s: 'window' goes with mask: window", L->what);
  if (o->lengths != IR_NONE && o->mask == IR_MASK_WINDOW)
    return fe_fail(L->c, L->loc, "%s: a window mask with lengths is not supported", L->what);
  return true;
}

/* x as [B, L, E] (transposed unless batch_first). */
static ir_val batch_major(layer *L, ir_val x, bool batch_first) {
  return batch_first || x == IR_NONE ? x : transpose(L, L->s->block, x, swap01, 3, NULL);
}

static bool attention_input(layer *L, ir_val x, const char *what) {
  ir_type t = ir_vtype(L->c->g, x);
  int64_t e;
  if (t.rank == 3 && ir_dtype_is_float(t.dtype) && ir_dim_is_const(L->c->g->dims, t.dims[2], &e)) return true;
  return fe_fail(L->c, L->loc, "%s: %s is %s, expected a float [T, B, E] (or [B, T, E] with batch_first) "
                 "with a numeric E", L->what, what, fe_show_type(L->c, t));
}

static bool build_multihead_attention(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "key", "value", "num_heads", "bias", "batch_first",
                                     "mask", "window", "lengths", "out", NULL};
  layer L;
  mha o = {0};
  ir_val k, v;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_int(&L, "num_heads", 1, MAX_HEADS, 0, true, &o.heads) ||
      !read_bool(&L, "bias", true, &o.bias) || !read_bool(&L, "batch_first", false, &o.batch_first) ||
      !read_mha_options(&L, &o) || !read_value(&L, "key", &k) || !read_value(&L, "value", &v))
    return false;
  /* PyTorch's causal attn_mask aligns query i with key i; the attention
   * op aligns the last query with the last key. They agree when the keys
   * are the queries. */
  if (k != IR_NONE && o.mask != IR_MASK_NONE)
    return fe_fail(c, L.loc, "%s: mask %s needs self-attention (no 'key'): with other keys its alignment "
                   "would differ from PyTorch's", L.what, o.mask == IR_MASK_CAUSAL ? "causal" : "window");
  if (k == IR_NONE) k = L.input;
  if (v == IR_NONE) v = k;
  if (!attention_input(&L, L.input, "the query") || !attention_input(&L, k, "the key") || !attention_input(&L, v, "the value"))
    return false;
  ir_val y = mha_of(&L, "", batch_major(&L, L.input, o.batch_first), batch_major(&L, k, o.batch_first),
                    batch_major(&L, v, o.batch_first), &o);
  y = o.batch_first || y == IR_NONE ? y : transpose(&L, s->block, y, swap01, 3, NULL);
  return !failed(&L, named(&L, y, "y")) && define_outputs(&L, 1, &y, "output");
}

/* The fields the transformer layers share. */
typedef struct block_opts {
  mha self;          /* self-attention: heads, bias, batch_first, mask, lengths */
  int64_t ff, d;     /* dim_feedforward, d_model */
  double eps;
  bool norm_first, gelu;
} block_opts;

static bool read_block(layer *L, block_opts *o) {
  if (!read_int(L, "nhead", 1, MAX_HEADS, 0, true, &o->self.heads) || !read_int(L, "dim_feedforward", 1, MAX_WIDTH, 2048, false, &o->ff) ||
      !read_bounded_real(L, "layer_norm_eps", 1e-30, 1.0, 1e-5, &o->eps) || !read_bool(L, "batch_first", false, &o->self.batch_first) ||
      !read_bool(L, "norm_first", false, &o->norm_first) || !read_bool(L, "bias", true, &o->self.bias) ||
      !read_mha_options(L, &o->self) || !attention_input(L, L->input, "the input"))
    return false;
  static const char *const acts[] = {"relu", "gelu", NULL};
  int act;
  if (!read_enum(L, "activation", acts, 0, &act)) return false;
  o->gelu = act == 1;
  ir_dim_is_const(L->c->g->dims, ir_vtype(L->c->g, L->input).dims[2], &o->d);
  return true;
}

/* A sublayer's input: norm(x) with norm_first, else x. */
static ir_val sublayer_in(layer *L, const block_opts *o, ir_val x, const char *norm) {
  return o->norm_first ? layernorm_of(L, norm, x, o->eps, true, norm) : x;
}

/* x + y, normalized after unless norm_first. */
static ir_val sublayer_out(layer *L, const block_opts *o, ir_val x, ir_val y, const char *norm, const char *suffix) {
  ir_val sum = op2(L, L->s->block, IR_OP_ADD, x, y, suffix);
  return o->norm_first ? sum : layernorm_of(L, norm, sum, o->eps, true, norm);
}

/* linear2(act(linear1(x))). */
static ir_val feed_forward(layer *L, const block_opts *o, ir_val x) {
  ir_val h = linear_of(L, "linear1", x, o->ff, o->self.bias, "ff1");
  h = h == IR_NONE ? h : o->gelu ? op(L, L->s->block, IR_OP_GELU, 1, &h, (attrs){0}, "act")
                                 : op1(L, L->s->block, IR_OP_RELU, h, "act");
  return linear_of(L, "linear2", h, o->d, o->self.bias, "ff2");
}

static bool block_output(layer *L, const block_opts *o, ir_val x) {
  ir_val y = o->self.batch_first || x == IR_NONE ? x : transpose(L, L->s->block, x, swap01, 3, NULL);
  return !failed(L, y) && define_outputs(L, 1, &y, "output");
}

/* nn.TransformerEncoderLayer: self-attention and a feed-forward block, each
 * with a residual, normalized after (default) or before (norm_first). */
static bool build_encoder_layer(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "nhead", "dim_feedforward", "activation",
                                     "layer_norm_eps", "batch_first", "norm_first", "bias", "mask", "window",
                                     "lengths", "out", NULL};
  layer L;
  block_opts o = {0};
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_block(&L, &o)) return false;
  ir_val x = batch_major(&L, L.input, o.self.batch_first);
  ir_val a = sublayer_in(&L, &o, x, "norm1");
  x = sublayer_out(&L, &o, x, mha_of(&L, "self_attn", a, a, a, &o.self), "norm1", "attn_res");
  x = sublayer_out(&L, &o, x, feed_forward(&L, &o, sublayer_in(&L, &o, x, "norm2")), "norm2", "ff_res");
  return block_output(&L, &o, x);
}

/* nn.TransformerDecoderLayer: self-attention, attention over `memory`
 * (cross-attention), a feed-forward block; residuals and norms as in the
 * encoder layer, with norm1..norm3. */
static bool build_decoder_layer(fe_ctx *c, fe_scope *s, const fe_ynode *kind, const fe_ynode *spec) {
  static const char *const keys[] = {"name", "params", "input", "memory", "nhead", "dim_feedforward", "activation",
                                     "layer_norm_eps", "batch_first", "norm_first", "bias", "mask", "window",
                                     "lengths", "memory_lengths", "out", NULL};
  layer L;
  block_opts o = {0};
  ir_val memory;
  if (!read_layer(&L, c, s, kind, spec, keys, true) || !read_block(&L, &o) || !read_value(&L, "memory", &memory))
    return false;
  if (memory == IR_NONE) return fe_fail(c, L.loc, "%s needs 'memory' (the encoder's output)", L.what);
  mha cross = o.self;
  cross.mask = IR_MASK_NONE;
  cross.window = 0;
  cross.lengths_field = "memory_lengths";
  if (!attention_input(&L, memory, "the memory") || !read_value(&L, "memory_lengths", &cross.lengths)) return false;
  ir_val x = batch_major(&L, L.input, o.self.batch_first), mem = batch_major(&L, memory, o.self.batch_first);
  ir_val a = sublayer_in(&L, &o, x, "norm1");
  x = sublayer_out(&L, &o, x, mha_of(&L, "self_attn", a, a, a, &o.self), "norm1", "self_res");
  ir_val q = sublayer_in(&L, &o, x, "norm2");
  x = sublayer_out(&L, &o, x, mha_of(&L, "multihead_attn", q, mem, mem, &cross), "norm2", "cross_res");
  x = sublayer_out(&L, &o, x, feed_forward(&L, &o, sublayer_in(&L, &o, x, "norm3")), "norm3", "ff_res");
  return block_output(&L, &o, x);
}

const fe_block_kind fe_layer_kinds[] = {
    {"rnn", build_rnn},         {"lstm", build_lstm},           {"gru", build_gru},
    {"linear", build_linear},   {"embedding", build_embedding}, {"layernorm", build_layernorm},
    {"rmsnorm", build_rmsnorm}, {"dropout", build_dropout},
    {"multihead_attention", build_multihead_attention},
    {"transformer_encoder_layer", build_encoder_layer},
    {"transformer_decoder_layer", build_decoder_layer},
    {"pool", build_pool},
    {"conv1d", build_conv1d},
};
const int32_t fe_n_layer_kinds = (int32_t)(sizeof fe_layer_kinds / sizeof fe_layer_kinds[0]);
