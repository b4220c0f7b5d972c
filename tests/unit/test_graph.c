/* Unit tests for ir/graph.c and ir/ops.c: the op table, graph construction,
 * attributes, walking, uses, cloning and the worklist rewriter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static const ir_loc NOLOC = {NULL, 0, 0};

static ir_type f32v(ir_graph *g, int64_t n) { return ir_type_static(g, IR_F32, 1, &n); }

static ir_opid append(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in,
                      ir_type t) {
  ir_opid op = ir_op_new(g, k, n_in, in, ir_opinfo_of(k)->n_out == 0 ? 0 : 1, &t, NOLOC);
  ir_op_append(g, b, op);
  return op;
}

static ir_val out0(ir_graph *g, ir_opid op) { return ir_o(g, op)->out[0]; }

static void test_op_table_is_consistent(void **state) {
  (void)state;
  for (int k = 0; k < IR_OP_COUNT; k++) {
    const ir_opinfo *info = ir_opinfo_of((ir_opkind)k);
    assert_non_null(info->name);
    assert_non_null(info->doc);
    ir_opkind back;
    assert_true(ir_opkind_parse(info->name, strlen(info->name), &back));
    assert_int_equal(back, k);
    assert_true(info->max_in < 0 || info->max_in >= info->min_in);
    for (int32_t a = 0; a < info->n_attrs; a++) {
      assert_int_equal(ir_attr_index((ir_opkind)k, info->attrs[a].name), a);
      if (info->attrs[a].kind == IR_ATTR_ENUM) assert_non_null(info->attrs[a].enum_names);
    }
  }
  ir_opkind k;
  assert_false(ir_opkind_parse("matmu", 5, &k));
  assert_int_equal(ir_attr_index(IR_OP_SCAN, "length"), 0);
  assert_int_equal(ir_attr_index(IR_OP_SCAN, "nope"), -1);
  assert_string_equal(ir_opinfo_of(IR_OP_ATTENTION)->attrs[0].enum_names[IR_MASK_WINDOW], "window");
}

static void test_dtypes(void **state) {
  (void)state;
  for (int i = 0; i < IR_DTYPE_COUNT; i++) {
    ir_dtype back;
    const char *n = ir_dtype_name((ir_dtype)i);
    assert_true(ir_dtype_parse(n, strlen(n), &back));
    assert_int_equal(back, i);
  }
  assert_int_equal(ir_dtype_size(IR_BF16), 2);
  assert_int_equal(ir_dtype_size(IR_BOOL), 1);
  assert_true(ir_dtype_is_float(IR_F16));
  assert_false(ir_dtype_is_float(IR_I64));
  assert_true(ir_dtype_is_int(IR_I32));
  ir_dtype dt;
  assert_false(ir_dtype_parse("f3", 2, &dt));
}

static void test_types_and_numel(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  int64_t s[] = {2, 3, 4};
  ir_type a = ir_type_static(g, IR_F32, 3, s), b = ir_type_static(g, IR_F32, 3, s);
  assert_true(ir_type_equal(a, b));
  assert_int_equal(ir_type_static_numel(g, a), 24);
  ir_dim dims[2] = {ir_dim_sym(g->dims, "T", 1), ir_dim_const(g->dims, 4)};
  ir_type sym = ir_type_make(g, IR_F32, 2, dims);
  assert_int_equal(ir_type_static_numel(g, sym), -1);
  int64_t huge[] = {INT64_MAX / 2, 3};
  assert_int_equal(ir_type_static_numel(g, ir_type_static(g, IR_F32, 2, huge)), -1);
  ir_type scalar = ir_type_static(g, IR_I64, 0, NULL);
  assert_int_equal(ir_type_static_numel(g, scalar), 1);
  assert_false(ir_type_equal(a, scalar));
  ir_graph_free(g);
}

static void test_insert_erase_and_order(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val x = ir_graph_add_input(g, f32v(g, 4), "x", false);
  ir_opid a = append(g, g->body, IR_OP_EXP, 1, &x, f32v(g, 4));
  ir_opid c = append(g, g->body, IR_OP_TANH, 1, &x, f32v(g, 4));
  ir_opid b = ir_op_new(g, IR_OP_NEG, 1, &x, 1, (ir_type[]){f32v(g, 4)}, NOLOC);
  ir_op_insert_before(g, c, b);
  ir_opid d = ir_op_new(g, IR_OP_ABS, 1, &x, 1, (ir_type[]){f32v(g, 4)}, NOLOC);
  ir_op_insert_after(g, c, d);
  ir_opid order[] = {a, b, c, d};
  int i = 0;
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    assert_int_equal(op, order[i++]);
  assert_int_equal(i, 4);
  ir_op_erase(g, b);
  assert_true(ir_o(g, b)->erased);
  assert_int_equal(ir_o(g, a)->next, c);
  assert_int_equal(ir_o(g, c)->prev, a);
  ir_op_erase(g, d);
  assert_int_equal(ir_b(g, g->body)->last, c);
  assert_int_equal(ir_block_terminator(g, g->body), IR_NONE);
  ir_val y = out0(g, c);
  append(g, g->body, IR_OP_YIELD, 1, &y, f32v(g, 4));
  assert_int_not_equal(ir_block_terminator(g, g->body), IR_NONE);
  assert_true(ir_v(g, x)->block == g->body && ir_v(g, x)->def == IR_NONE);
  assert_int_equal(ir_v(g, y)->def, c);
  ir_graph_free(g);
}

static void test_attributes_and_defaults(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val x = ir_graph_add_input(g, f32v(g, 4), "x", false);
  ir_opid op = append(g, g->body, IR_OP_CUMSUM, 1, &x, f32v(g, 4));
  assert_false(ir_has_attr(g, op, "axis"));
  assert_int_equal(ir_get_int(g, op, "reverse"), 0);
  ir_set_int(g, op, "axis", 0);
  ir_set_int(g, op, "reverse", 1);
  assert_true(ir_has_attr(g, op, "axis"));
  assert_int_equal(ir_get_int(g, op, "reverse"), 1);
  ir_opid ln = append(g, g->body, IR_OP_LAYERNORM, 1, &x, f32v(g, 4));
  assert_true(ir_get_float(g, ln, "eps") == 1e-5);
  ir_opid elu = append(g, g->body, IR_OP_ELU, 1, &x, f32v(g, 4));
  assert_true(ir_get_float(g, elu, "alpha") == 1.0);
  ir_opid tr = append(g, g->body, IR_OP_TRANSPOSE, 1, &x, f32v(g, 4));
  int64_t perm[] = {0};
  ir_set_ints(g, tr, "perm", 1, perm);
  perm[0] = 7; /* the op keeps its own copy */
  assert_int_equal(ir_get_attr(g, tr, "perm")->u.ints.v[0], 0);
  ir_opid k = append(g, g->body, IR_OP_CONSTANT, 0, NULL, f32v(g, 4));
  double v[] = {1.5};
  ir_set_tensor(g, k, "value", &(ir_tensor_data){1, v, NULL});
  v[0] = 0;
  assert_true(ir_get_attr(g, k, "value")->u.t->f[0] == 1.5);
  ir_graph_free(g);
}

static void test_uses_and_replace(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val x = ir_graph_add_input(g, f32v(g, 4), "x", false);
  ir_val y = ir_graph_add_input(g, f32v(g, 4), "y", false);
  ir_opid add = append(g, g->body, IR_OP_ADD, 2, (ir_val[]){x, x}, f32v(g, 4));
  ir_val s = out0(g, add);
  append(g, g->body, IR_OP_YIELD, 1, &s, f32v(g, 4));
  assert_int_equal(ir_value_use_count(g, x), 2);
  assert_int_equal(ir_value_use_count(g, y), 0);
  ir_replace_all_uses(g, x, y);
  assert_int_equal(ir_value_use_count(g, x), 0);
  assert_int_equal(ir_value_use_count(g, y), 2);
  int32_t *counts = ir_use_counts(g);
  assert_int_equal(counts[s], 1);
  free(counts);
  ir_graph_free(g);
}

/* A scan whose body computes c + x_t: used by the clone and walk tests. */
static ir_opid build_running_sum(ir_graph *g, ir_val c0, ir_val xs, int64_t n) {
  ir_type scalar = ir_type_static(g, IR_F32, 0, NULL);
  ir_type types[2] = {scalar, f32v(g, n)};
  ir_opid scan = ir_op_new(g, IR_OP_SCAN, 2, (ir_val[]){c0, xs}, 2, types, NOLOC);
  ir_set_dim(g, scan, "length", ir_dim_const(g->dims, n));
  ir_set_int(g, scan, "carries", 1);
  ir_set_int(g, scan, "xs", 1);
  ir_op_append(g, g->body, scan);
  ir_blockid body = ir_o(g, scan)->regions[0];
  ir_block_add_arg(g, body, ir_type_static(g, IR_I64, 0, NULL), "t");
  ir_val c = ir_block_add_arg(g, body, scalar, "c");
  ir_val x = ir_block_add_arg(g, body, scalar, "xt");
  ir_opid add = append(g, body, IR_OP_ADD, 2, (ir_val[]){c, x}, scalar);
  ir_val s = out0(g, add);
  append(g, body, IR_OP_YIELD, 2, (ir_val[]){s, s}, scalar);
  return scan;
}

static bool count_op(ir_graph *g, ir_opid op, void *ud) {
  (void)g;
  (void)op;
  ++*(int *)ud;
  return true;
}

static void test_walk_and_clone_regions(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val c0 = ir_graph_add_input(g, ir_type_static(g, IR_F32, 0, NULL), "c0", false);
  ir_val xs = ir_graph_add_input(g, f32v(g, 5), "xs", false);
  ir_opid scan = build_running_sum(g, c0, xs, 5);
  int n = 0;
  ir_walk(g, g->body, count_op, &n);
  assert_int_equal(n, 3); /* scan, add, yield */

  ir_valmap m;
  ir_valmap_init(&m);
  ir_opid copy = ir_op_clone(g, scan, g->body, &m);
  assert_int_equal(ir_valmap_get(&m, ir_o(g, scan)->out[1]), ir_o(g, copy)->out[1]);
  assert_int_equal(ir_valmap_get(&m, c0), c0); /* unmapped values map to themselves */
  ir_blockid cb = ir_o(g, copy)->regions[0];
  assert_int_not_equal(cb, ir_o(g, scan)->regions[0]);
  assert_int_equal(ir_b(g, cb)->parent, copy);
  assert_int_equal(ir_b(g, cb)->n_args, 3);
  assert_string_equal(ir_v(g, ir_b(g, cb)->args[1])->name, "c");
  ir_opid cadd = ir_b(g, cb)->first;
  assert_int_equal(ir_o(g, cadd)->kind, IR_OP_ADD);
  assert_int_equal(ir_o(g, cadd)->in[0], ir_b(g, cb)->args[1]); /* remapped into the copy */
  assert_int_equal(ir_get_int(g, copy, "carries"), 1);
  ir_valmap_free(&m);
  n = 0;
  ir_walk(g, g->body, count_op, &n);
  assert_int_equal(n, 6);
  ir_op_erase(g, copy); /* erases its region's ops too */
  assert_true(ir_o(g, cadd)->erased);
  n = 0;
  ir_walk(g, g->body, count_op, &n);
  assert_int_equal(n, 3);
  ir_graph_free(g);
}

/* Rewrite neg(neg(x)) to x, to exercise the rewriter's requeueing. */
static bool fold_double_neg(ir_rewriter *rw, ir_graph *g, ir_opid op, void *ud) {
  (void)ud;
  if (ir_o(g, op)->kind != IR_OP_NEG) return false;
  ir_opid inner = ir_v(g, ir_o(g, op)->in[0])->def;
  if (inner == IR_NONE || ir_o(g, inner)->kind != IR_OP_NEG) return false;
  ir_val x = ir_o(g, inner)->in[0];
  ir_rewrite_replace(rw, g, op, &x);
  return true;
}

static void test_rewriter_reaches_fixpoint(void **state) {
  (void)state;
  ir_graph *g = ir_graph_new("t");
  ir_val x = ir_graph_add_input(g, f32v(g, 4), "x", false);
  ir_val v = x;
  for (int i = 0; i < 6; i++) v = out0(g, append(g, g->body, IR_OP_NEG, 1, &v, f32v(g, 4)));
  ir_opid y = append(g, g->body, IR_OP_YIELD, 1, &v, f32v(g, 4));
  int64_t applied = ir_rewrite_greedy(g, fold_double_neg, NULL, 1000);
  assert_true(applied >= 3);
  assert_int_equal(ir_o(g, y)->in[0], x);
  /* The bound stops a rewrite that never settles. */
  assert_int_equal(ir_rewrite_greedy(g, fold_double_neg, NULL, 0), 0);
  ir_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_op_table_is_consistent),
      cmocka_unit_test(test_dtypes),
      cmocka_unit_test(test_types_and_numel),
      cmocka_unit_test(test_insert_erase_and_order),
      cmocka_unit_test(test_attributes_and_defaults),
      cmocka_unit_test(test_uses_and_replace),
      cmocka_unit_test(test_walk_and_clone_regions),
      cmocka_unit_test(test_rewriter_reaches_fixpoint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
