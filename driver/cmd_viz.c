/*
 * cmd_viz.c - `seqc viz`: write a graph as Graphviz DOT so a person can look
 * at a model instead of reading it (`dot -Tsvg graph.dot > graph.svg`).
 *
 * Graph arguments are ellipses (parameters shaded), ops are boxes labelled
 * with the op, its result names and their types. An op with regions (scan)
 * becomes a cluster holding its body; dashed edges carry the scan's operands
 * into the body's arguments and the body's yield back to the scan's results.
 * Node ids are v<value> for block arguments and o<op> for ops, so the output
 * is deterministic.
 */
#include "cli.h"

#include <string.h>

void help_viz(FILE *f) {
  fputs("usage: seqc viz MODEL [-o OUT.dot]\n"
        "\n"
        "Write MODEL (.sqir or .yaml) as a Graphviz DOT graph to OUT.dot (default:\n"
        "stdout). Scan bodies are nested clusters; nodes show op, name and shape.\n"
        "Render it with: dot -Tsvg OUT.dot > graph.svg\n"
        "\n"
        "options:\n"
        "  -o OUT      write to OUT, atomically\n"
        "  -h, --help  show this help\n",
        f);
}

/* DOT string contents: quotes and backslashes escaped. */
static void put_escaped(ir_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') ir_buf_putc(b, '\\');
    ir_buf_putc(b, *s);
  }
}

static void put_value_label(ir_buf *b, const ir_graph *g, ir_val v) {
  ir_buf t = {0};
  const char *name = ir_v(g, v)->name;
  if (name)
    ir_buf_printf(&t, "%%%s: ", name);
  else
    ir_buf_printf(&t, "%%%d: ", v);
  ir_print_type(g, ir_vtype(g, v), &t);
  put_escaped(b, t.s);
  ir_buf_free(&t);
}

/* The DOT node standing for value v: its block argument or defining op. */
static void put_source(ir_buf *b, const ir_graph *g, ir_val v) {
  if (ir_v(g, v)->def == IR_NONE)
    ir_buf_printf(b, "v%d", v);
  else
    ir_buf_printf(b, "o%d", ir_v(g, v)->def);
}

static void put_indent(ir_buf *b, int depth) {
  for (int i = 0; i < depth; i++) ir_buf_puts(b, "  ");
}

static void emit_block(ir_buf *b, const ir_graph *g, ir_blockid blk, int depth);

static void emit_args(ir_buf *b, const ir_graph *g, ir_blockid blk, int depth) {
  const ir_block *block = ir_b(g, blk);
  for (int32_t i = 0; i < block->n_args; i++) {
    ir_val v = block->args[i];
    put_indent(b, depth);
    ir_buf_printf(b, "v%d [shape=ellipse%s, label=\"", v,
                  ir_v(g, v)->is_param ? ", style=filled, fillcolor=\"#e8e8e8\"" : "");
    if (ir_v(g, v)->is_param) ir_buf_puts(b, "param ");
    put_value_label(b, g, v);
    ir_buf_puts(b, "\"];\n");
  }
}

static void emit_op_node(ir_buf *b, const ir_graph *g, ir_opid op, int depth) {
  const ir_op *o = ir_o(g, op);
  put_indent(b, depth);
  ir_buf_printf(b, "o%d [shape=box, label=\"%s", op, ir_opinfo_of(o->kind)->name);
  for (int32_t i = 0; i < o->n_out; i++) {
    ir_buf_puts(b, "\\n");
    put_value_label(b, g, o->out[i]);
  }
  ir_buf_puts(b, "\"];\n");
  for (int32_t i = 0; i < o->n_in; i++) {
    put_indent(b, depth);
    put_source(b, g, o->in[i]);
    ir_buf_printf(b, " -> o%d;\n", op);
  }
}

/* A region op: its node, then a cluster with the body; dashed edges link
 * operands to body arguments in order (scan: carries, slices, invariants
 * follow the step index) and the body's yield to the op. */
static void emit_region_op(ir_buf *b, const ir_graph *g, ir_opid op, int depth) {
  const ir_op *o = ir_o(g, op);
  for (int32_t r = 0; r < o->n_regions; r++) {
    ir_blockid body = o->regions[r];
    put_indent(b, depth);
    ir_buf_printf(b, "subgraph cluster_o%d_%d {\n", op, r);
    put_indent(b, depth + 1);
    ir_buf_printf(b, "label=\"%s body\"; style=rounded;\n", ir_opinfo_of(o->kind)->name);
    emit_block(b, g, body, depth + 1);
    put_indent(b, depth);
    ir_buf_puts(b, "}\n");
    const ir_block *blk = ir_b(g, body);
    int32_t skip = blk->n_args - o->n_in; /* leading args with no operand (scan's t) */
    for (int32_t i = 0; i < o->n_in && skip >= 0; i++) {
      put_indent(b, depth);
      put_source(b, g, o->in[i]);
      ir_buf_printf(b, " -> v%d [style=dashed];\n", blk->args[skip + i]);
    }
    ir_opid term = ir_block_terminator(g, body);
    if (term != IR_NONE) {
      put_indent(b, depth);
      ir_buf_printf(b, "o%d -> o%d [style=dashed];\n", term, op);
    }
  }
  put_indent(b, depth);
  ir_buf_printf(b, "o%d [shape=box, style=bold, label=\"%s", op, ir_opinfo_of(o->kind)->name);
  for (int32_t i = 0; i < o->n_out; i++) {
    ir_buf_puts(b, "\\n");
    put_value_label(b, g, o->out[i]);
  }
  ir_buf_puts(b, "\"];\n");
}

static void emit_block(ir_buf *b, const ir_graph *g, ir_blockid blk, int depth) {
  emit_args(b, g, blk, depth);
  for (ir_opid op = ir_b(g, blk)->first; op != IR_NONE; op = ir_o(g, op)->next) {
    if (blk == g->body && op == ir_block_terminator(g, blk)) continue; /* drawn as outputs */
    if (ir_o(g, op)->n_regions > 0)
      emit_region_op(b, g, op, depth);
    else
      emit_op_node(b, g, op, depth);
  }
}

static void emit_outputs(ir_buf *b, const ir_graph *g) {
  ir_opid term = ir_block_terminator(g, g->body);
  if (term == IR_NONE) return;
  const ir_op *y = ir_o(g, term);
  for (int32_t i = 0; i < y->n_in && i < g->n_outputs; i++) {
    ir_buf_printf(b, "  out%d [shape=ellipse, style=bold, label=\"output ", i);
    put_escaped(b, g->output_names[i]);
    ir_buf_puts(b, "\"];\n  ");
    put_source(b, g, y->in[i]);
    ir_buf_printf(b, " -> out%d;\n", i);
  }
}

void viz_graph(const ir_graph *g, ir_buf *b) {
  ir_buf_puts(b, "digraph \"");
  put_escaped(b, g->name);
  ir_buf_puts(b, "\" {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n");
  emit_block(b, g, g->body, 1);
  emit_outputs(b, g);
  ir_buf_puts(b, "}\n");
}

int cmd_viz(int argc, char **argv) {
  const char *in = NULL, *out = "-";
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v;
    int m;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      help_viz(stdout);
      return 0;
    } else if ((m = cli_match_value(argc, argv, &i, "-o", &v)) != 0) {
      if (m < 0) return 1;
      out = v;
    } else if (!cli_common_arg("viz", arg, &in, NULL)) {
      return 1;
    }
  }
  if (!cli_require_model("viz", in)) return 1;
  ir_diag d;
  ir_diag_init(&d);
  cli_model m;
  bool ok = cli_load_model(in, &d, &m);
  if (ok) {
    ir_buf dot = {0}, err = {0};
    viz_graph(m.g, &dot);
    ok = ir_write_file_atomic(out, dot.s, dot.len, &err);
    if (!ok) cli_error("%s", err.s);
    ir_buf_free(&dot);
    ir_buf_free(&err);
  }
  cli_model_free(&m);
  return ok ? 0 : 1;
}
