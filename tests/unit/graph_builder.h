/*
 * graph_builder.h - small helpers the unit tests share to build IR graphs
 * with the API (types and dims from text, ops with declared result types,
 * attributes from a table, a named yield) or from the text form, and to
 * look at them (printed text, op counts). Every helper fails the calling
 * cmocka test on a malformed argument rather than returning an error: the
 * arguments are written by the test itself.
 */
#ifndef SEQC_TESTS_GRAPH_BUILDER_H
#define SEQC_TESTS_GRAPH_BUILDER_H

#include <stdint.h>

#include "ir/ir.h"

/* The location of every op the helpers build: tests have no source text. */
extern const ir_loc TB_NOLOC;

/* TB_VALS(x, y): an operand array; TB_NVALS(x, y): its length. */
#define TB_VALS(...) ((const ir_val[]){__VA_ARGS__})
#define TB_NVALS(...) ((int32_t)(sizeof(TB_VALS(__VA_ARGS__)) / sizeof(ir_val)))

/* A dim from its text form, e.g. tb_dim(g, "T+1"). */
ir_dim tb_dim(ir_graph *g, const char *text);

/* A type from comma-separated text dims, e.g. tb_type(g, IR_F32, "B, T+1, 8");
 * "" is a scalar. At most 16 dims. */
ir_type tb_type(ir_graph *g, ir_dtype dt, const char *dims);

/* A new graph input named `name`. */
ir_val tb_input(ir_graph *g, const char *name, ir_type t);

/* An op with declared result types appended to block b. */
ir_opid tb_op_in(ir_graph *g, ir_blockid b, ir_opkind k, int32_t n_in, const ir_val *in, int32_t n_out,
                 const ir_type *out);

/* Result i of op. */
ir_val tb_res(ir_graph *g, ir_opid op, int32_t i);

/* Ends the body with a yield of vals[0..n) as outputs named o0, o1, ...
 * There is room for at least four names (unset ones are NULL), so a test
 * may raise n_outputs afterwards to build an invalid graph. */
void tb_finish(ir_graph *g, int32_t n, const ir_val *vals);

/* ---- attributes from a table ------------------------------------------------ */

typedef enum tb_attr_kind { TB_A_INT, TB_A_FLOAT, TB_A_DIM, TB_A_INTS, TB_A_DIMS } tb_attr_kind;

/* One attribute to set; dims are in text form. Tables end with {NULL}. */
typedef struct tb_attr {
  const char *name;
  tb_attr_kind kind;
  int64_t i;
  double f;
  const char *dim;
  int32_t n;
  const int64_t *ints;
  const char *const *dims;
} tb_attr;

#define TB_INT(nm, v) {.name = nm, .kind = TB_A_INT, .i = (v)}
#define TB_FLOAT(nm, v) {.name = nm, .kind = TB_A_FLOAT, .f = (v)}
#define TB_DIM(nm, text) {.name = nm, .kind = TB_A_DIM, .dim = (text)}
#define TB_INTS(nm, cnt, ...) {.name = nm, .kind = TB_A_INTS, .n = (cnt), .ints = (const int64_t[]){__VA_ARGS__}}
#define TB_DIMS(nm, cnt, ...) \
  {.name = nm, .kind = TB_A_DIMS, .n = (cnt), .dims = (const char *const[]){__VA_ARGS__}}
/* TB_ATTRS(TB_INT("axis", 1), ...): a table; TB_NO_ATTRS: an empty one. */
#define TB_ATTRS(...) ((const tb_attr[]){__VA_ARGS__, {.name = NULL}})
#define TB_NO_ATTRS ((const tb_attr[]){{.name = NULL}})

/* An ir_build attribute callback: sets every attribute of the table `ud`
 * (a const tb_attr *) on op. */
void tb_apply_attrs(ir_graph *g, ir_opid op, void *ud);

/* ---- the text form ------------------------------------------------------------ */

/* Parses and verifies `text`; fails the test with the messages and the text
 * if either step fails. */
ir_graph *tb_parse(const char *text);

/* The printed form of g; malloc'd, the caller frees it. */
char *tb_print(const ir_graph *g);

/* How many ops of `kind` there are in block b and the regions of its ops. */
int tb_count_ops_in(ir_graph *g, ir_blockid b, ir_opkind kind);

/* How many ops of `kind` there are anywhere in g, regions included. */
int tb_count_ops(ir_graph *g, ir_opkind kind);

#endif
