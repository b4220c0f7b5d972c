/* graph_builder.c - see graph_builder.h. */
#include "graph_builder.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ir_loc TB_NOLOC = {NULL, 0, 0};

/* The dim spelled by text[0..len). */
static ir_dim parse_dim(ir_graph *g, const char *text, size_t len) {
  size_t used = 0, pos = 0;
  ir_buf err = {0};
  ir_dim d = ir_dim_parse(g->dims, text, len, &used, &err, &pos);
  ir_buf_free(&err);
  assert_int_not_equal(d, IR_DIM_INVALID);
  return d;
}

ir_dim tb_dim(ir_graph *g, const char *text) { return parse_dim(g, text, strlen(text)); }

ir_type tb_type(ir_graph *g, ir_dtype dt, const char *dims) {
  ir_dim d[16];
  int32_t rank = 0;
  for (const char *p = dims; *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    assert_true(rank < 16);
    d[rank++] = parse_dim(g, p, n);
    p += n;
    if (*p == ',') p++;
  }
  return ir_type_make(g, dt, rank, d);
}

ir_val tb_input(ir_graph *g, const char *name, ir_type t) { return ir_graph_add_input(g, t, name, false); }

ir_opid tb_op_in(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in, int32_t n_out,
                 const ir_type *out) {
  ir_opid op = ir_op_new(g, k, n_in, in, n_out, out, TB_NOLOC);
  ir_op_append(g, b, op);
  return op;
}

ir_val tb_res(ir_graph *g, ir_opid op, int32_t i) { return ir_o(g, op)->out[i]; }

void tb_finish(ir_graph *g, int32_t n, const ir_val *vals) {
  tb_op_in(g, g->body, IR_OP_YIELD, n, vals, 0, NULL);
  int32_t slots = n < 4 ? 4 : n;
  g->output_names = ir_arena_alloc(g->arena, sizeof(char *) * (size_t)slots); /* zeroed */
  for (int32_t i = 0; i < n; i++) {
    char name[16];
    snprintf(name, sizeof name, "o%d", (int)i);
    g->output_names[i] = ir_arena_strdup(g->arena, name);
  }
  g->n_outputs = n;
}

void tb_apply_attrs(ir_graph *g, ir_opid op, void *ud) {
  for (const tb_attr *a = ud; a->name; a++) {
    switch (a->kind) {
    case TB_A_INT: ir_set_int(g, op, a->name, a->i); break;
    case TB_A_FLOAT: ir_set_float(g, op, a->name, a->f); break;
    case TB_A_DIM: ir_set_dim(g, op, a->name, tb_dim(g, a->dim)); break;
    case TB_A_INTS: ir_set_ints(g, op, a->name, a->n, a->ints); break;
    case TB_A_DIMS: {
      ir_dim d[16];
      assert_true(a->n <= 16);
      for (int32_t i = 0; i < a->n; i++) d[i] = tb_dim(g, a->dims[i]);
      ir_set_dims(g, op, a->name, a->n, d);
      break;
    }
    }
  }
}

ir_graph *tb_parse(const char *text) {
  ir_diag d;
  ir_buf msgs = {0};
  ir_diag_init(&d);
  d.capture = &msgs;
  ir_graph *g = ir_parse(text, strlen(text), "test.sqir", &d);
  if (!g || !ir_verify(g, &d)) fail_msg("test graph does not parse or verify:\n%s\n%s", msgs.s, text);
  ir_buf_free(&msgs);
  return g;
}

char *tb_print(const ir_graph *g) {
  ir_buf b = {0};
  ir_print_graph(g, NULL, &b);
  return b.s;
}

typedef struct kind_count {
  ir_opkind kind;
  int n;
} kind_count;

static bool count_kind(ir_graph *g, ir_opid op, void *ud) {
  kind_count *c = ud;
  c->n += ir_o(g, op)->kind == c->kind;
  return true;
}

int tb_count_ops_in(ir_graph *g, ir_blockid b, ir_opkind kind) {
  kind_count c = {kind, 0};
  ir_walk(g, b, count_kind, &c);
  return c.n;
}

int tb_count_ops(ir_graph *g, ir_opkind kind) { return tb_count_ops_in(g, g->body, kind); }
