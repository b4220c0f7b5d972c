/*
 * model.c - the top of the YAML frontend: fe_load_yaml reads the document
 * (yaml_doc.c) and turns the model schema into a graph (docs/yaml.md):
 *
 *   model: NAME          the graph's name, a C identifier
 *   inputs: {x: f32[T, B, 4], ...}    graph arguments, in order
 *   params: {W: f32[8, 4], ...}       weights (param arguments), after inputs
 *   graph: [nodes]                    op lines and block nodes, in order
 *   outputs: [h, ys] | {name: value}  the graph's results
 *
 * Keys are read in that order whatever order the file uses, so the graph
 * is the same for any key order. The graph body is one scope: every input,
 * parameter and result name is defined once. Each value keeps its YAML
 * name and each op the YAML position it came from, so printed IR and
 * verifier errors point back into the file. The finished graph must pass
 * ir_verify.
 */
#include "fe.h"
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_GRAPH_ARGS = 4096 }; /* inputs + params */

static const char *const model_keys[] = {"model", "inputs", "params", "graph", "outputs", NULL};

/* ---- nodes ---------------------------------------------------------------------- */

static bool build_block_node(fe_ctx *c, fe_scope *s, const fe_ynode *node) {
  if (node->n != 1)
    return fe_fail(c, fe_loc(c, node), "a block node is a mapping with one key, its kind (such "
                   "as scan:), got %d keys", node->n);
  const fe_ynode *key = node->items[0];
  const fe_block_kind *kind = fe_block_kind_find(key->text, key->len);
  if (kind) return kind->build(c, s, key, node->values[0]);
  ir_buf known = {0};
  fe_block_kind_list(&known);
  fe_fail(c, fe_loc(c, key), "unknown node kind '%s'; known kinds: %s (op lines are plain "
          "strings such as 'y = tanh(x)'; quote one that contains ': ')",
          fe_show(c, key->text, key->len), known.s);
  ir_buf_free(&known);
  return false;
}

bool fe_build_nodes(fe_ctx *c, fe_scope *s, const fe_ynode *seq, const char *what) {
  if (!fe_expect(c, seq, FE_Y_SEQ, what, "a sequence of nodes (op lines such as '- y = tanh(x)' "
                 "and block nodes such as '- scan:')"))
    return false;
  for (int32_t i = 0; i < seq->n; i++) {
    const fe_ynode *node = seq->items[i];
    bool ok;
    if (node->kind == FE_Y_MAP)
      ok = build_block_node(c, s, node);
    else if (node->kind == FE_Y_SCALAR && !fe_yempty(node))
      ok = fe_build_opline(c, s, node);
    else
      ok = fe_fail(c, fe_loc(c, node), "a node of %s must be an op line such as 'y = tanh(x)' "
                   "or a block node such as 'scan:', got %s", what, fe_ykind_desc(node));
    if (!ok) return false;
  }
  return true;
}

/* ---- inputs, params, outputs ----------------------------------------------------- */

static bool build_args(fe_ctx *c, fe_scope *s, const fe_ynode *map, const char *what, bool is_param) {
  if (!fe_expect(c, map, FE_Y_MAP, what, "a mapping of name: type (such as x: f32[T, B, 4])"))
    return false;
  for (int32_t i = 0; i < map->n; i++) {
    const fe_ynode *name = map->items[i];
    ir_type t;
    if (!fe_expect_name(c, name, what) || !fe_read_type(c, map->values[i], what, &t)) return false;
    if (ir_b(c->g, c->g->body)->n_args >= MAX_GRAPH_ARGS)
      return fe_fail(c, fe_loc(c, name), "a model has at most %d inputs and params", MAX_GRAPH_ARGS);
    ir_val v = ir_graph_add_input(c->g, t, NULL, is_param);
    if (!fe_define(c, s, name->text, name->len, v, fe_loc(c, name))) return false;
  }
  return true;
}

/* One output: its C name (the node `name`) and the value `value` names. */
static bool add_output(fe_ctx *c, const fe_scope *s, fe_scope *seen, const fe_ynode *name,
                       const fe_ynode *value, ir_val *vals, const char **names, int32_t i) {
  if (!fe_expect_name(c, value, "'outputs'")) return false;
  if (!fe_is_c_ident(name->text, name->len))
    return fe_fail(c, fe_loc(c, name), "output name '%s' is not a C identifier; use the mapping "
                   "form, as in outputs: {h: %s}", fe_show(c, name->text, name->len),
                   fe_show(c, name->text, name->len));
  const fe_name *prev = fe_scope_find(seen, name->text, name->len);
  if (prev)
    return fe_fail(c, fe_loc(c, name), "output '%s' is listed twice; first at %d:%d", name->text,
                   prev->loc.line, prev->loc.col);
  if (!fe_use(c, s, value->text, value->len, fe_loc(c, value), &vals[i])) return false;
  names[i] = ir_arena_strndup(c->g->arena, name->text, name->len);
  fe_scope_add(c, seen, name->text, name->len, vals[i], fe_loc(c, name));
  return true;
}

static bool build_outputs(fe_ctx *c, const fe_scope *s, const fe_ynode *key, const fe_ynode *node) {
  if (node->kind != FE_Y_SEQ && node->kind != FE_Y_MAP)
    return fe_fail(c, fe_loc(c, node), "'outputs' must be a sequence of value names or a mapping "
                   "of output name: value name, got %s", fe_ykind_desc(node));
  if (node->n == 0) return fe_fail(c, fe_loc(c, node), "'outputs' must list at least one value");
  ir_val *vals = ir_xcalloc((size_t)node->n, sizeof(ir_val));
  const char **names = ir_arena_alloc(c->g->arena, sizeof(const char *) * (size_t)node->n);
  fe_scope seen;
  fe_scope_init(&seen, IR_NONE, NULL, "the outputs");
  bool ok = true;
  for (int32_t i = 0; ok && i < node->n; i++) {
    const fe_ynode *name = node->items[i];
    const fe_ynode *value = node->kind == FE_Y_MAP ? node->values[i] : name;
    ok = fe_expect_name(c, name, "'outputs'") &&
         add_output(c, s, &seen, name, value, vals, names, i);
  }
  if (ok) {
    ir_opid y = ir_op_new(c->g, IR_OP_YIELD, node->n, vals, 0, NULL, fe_loc(c, key));
    ir_op_append(c->g, c->g->body, y);
    c->g->output_names = names;
    c->g->n_outputs = node->n;
  }
  fe_scope_free(&seen);
  free(vals);
  return ok;
}

/* ---- the model ------------------------------------------------------------------- */

/* `model: NAME`, checked before the graph exists. */
static bool read_model_name(fe_ctx *c, const fe_ynode *root, const fe_ynode **out) {
  const fe_ynode *n = fe_require(c, root, "model", "the model file");
  if (!n || !fe_expect(c, n, FE_Y_SCALAR, "'model'", "the model's name, a C identifier"))
    return false;
  if (!fe_is_c_ident(n->text, n->len))
    return fe_fail(c, fe_loc(c, n), "'model' must be a C identifier (letters, digits and '_', "
                   "not starting with a digit), got '%s'", fe_show(c, n->text, n->len));
  *out = n;
  return true;
}

static bool check_root(fe_ctx *c, const fe_ynode *root) {
  if (!root || fe_yempty(root))
    return fe_fail(c, (ir_loc){c->file, 1, 1}, "empty model file; expected a mapping with the "
                   "keys model, inputs, params, graph and outputs");
  if (!fe_expect(c, root, FE_Y_MAP, "a model file", "a mapping with the keys model, inputs, "
                 "params, graph and outputs") ||
      !fe_check_keys(c, root, "the model", model_keys))
    return false;
  return true;
}

static bool build_graph(fe_ctx *c, const fe_ynode *root) {
  fe_scope s;
  fe_scope_init(&s, c->g->body, NULL, "the graph");
  const fe_ynode *params = fe_ymap_get(root, "params"), *inputs, *graph, *outputs;
  const fe_ynode *outputs_key = NULL;
  for (int32_t i = 0; i < root->n; i++)
    if (root->items[i]->len == 7 && !memcmp(root->items[i]->text, "outputs", 7))
      outputs_key = root->items[i];
  /* Required keys are looked up when needed, so errors come in build order. */
  bool ok = (inputs = fe_require(c, root, "inputs", "the model file")) &&
            build_args(c, &s, inputs, "'inputs'", false) &&
            (!params || build_args(c, &s, params, "'params'", true)) &&
            (graph = fe_require(c, root, "graph", "the model file")) &&
            fe_build_nodes(c, &s, graph, "'graph'") &&
            (outputs = fe_require(c, root, "outputs", "the model file")) &&
            build_outputs(c, &s, outputs_key, outputs);
  fe_scope_free(&s);
  return ok;
}

static ir_graph *build_model(const fe_ydoc *doc, const char *name, ir_diag *d) {
  fe_ctx c;
  memset(&c, 0, sizeof c);
  c.d = d;
  c.file = name;
  const fe_ynode *model = NULL;
  bool ok = check_root(&c, doc->root) && read_model_name(&c, doc->root, &model);
  if (ok) {
    c.g = ir_graph_new(model->text);
    c.file = ir_arena_strdup(c.g->arena, name);
    ok = build_graph(&c, doc->root);
  }
  for (int i = 0; i < 6; i++) ir_buf_free(&c.text[i]);
  if (!ok) {
    ir_graph_free(c.g);
    return NULL;
  }
  return c.g;
}

ir_graph *fe_load_yaml(const char *buf, size_t len, const char *name, ir_diag *d) {
  ir_diag fallback;
  if (!d) {
    ir_diag_init(&fallback);
    d = &fallback;
  }
  if (!buf) len = 0;
  name = name ? name : "<input>";
  /* A UTF-8 byte order mark (as Windows editors write) is not part of the
   * model; lines and columns count from after it, as editors show them. */
  if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
    buf += 3;
    len -= 3;
  }
  ir_source src = {name, buf ? buf : "", len};
  bool registered = ir_diag_add_source(d, &src);
  fe_ydoc *doc = fe_ydoc_parse(src.text, len, name, d);
  ir_graph *g = doc ? build_model(doc, name, d) : NULL;
  if (g && !ir_verify(g, d)) {
    ir_graph_free(g);
    g = NULL;
  }
  fe_ydoc_free(doc);
  if (registered) ir_diag_remove_source(d, &src);
  return g;
}
