/*
 * dim.h - dimension expressions: integer expressions over named symbols
 * (B, T, ...) with + - * floordiv ceildiv min max, kept in a canonical form
 * and interned, so two dims are equal exactly when their ids are equal.
 *
 * Canonical form (docs/ir.md, "Dims"): a dim is a sum of terms c*m plus a
 * constant, where c is a nonzero integer and m a monomial: a product of
 * atoms sorted by a structural order. An atom is a symbol or one of
 * floordiv(a, b), ceildiv(a, b), min(a, b), max(a, b) of canonical
 * expressions that could not be simplified (min/max arguments sorted).
 * Products distribute over sums, so (T+1)*B and B*T+B are the same dim.
 * Terms are ordered by the structural order of their monomials, never by
 * creation order, so printing is stable across parse/print round trips.
 *
 * Every operation returns IR_DIM_INVALID on int64 overflow or a division by
 * a constant zero, and propagates it; callers report an error.
 */
#ifndef SEQC_IR_DIM_H
#define SEQC_IR_DIM_H

#include "support.h"

typedef int32_t ir_dim;
#define IR_DIM_INVALID (-1)

typedef struct ir_dimtab ir_dimtab;

ir_dimtab *ir_dimtab_new(void);
void ir_dimtab_free(ir_dimtab *t);

ir_dim ir_dim_const(ir_dimtab *t, int64_t v);
/* Symbol names are identifiers: [A-Za-z_][A-Za-z0-9_]*. */
ir_dim ir_dim_sym(ir_dimtab *t, const char *name, size_t len);
ir_dim ir_dim_add(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_sub(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_mul(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_floordiv(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_ceildiv(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_min(ir_dimtab *t, ir_dim a, ir_dim b);
ir_dim ir_dim_max(ir_dimtab *t, ir_dim a, ir_dim b);

/* True and *v set if d is a constant. */
bool ir_dim_is_const(const ir_dimtab *t, ir_dim d, int64_t *v);
/* Whether d is the constant 1 (a dim that broadcasts). */
bool ir_dim_is_one(const ir_dimtab *t, ir_dim d);
/* True and *name set if d is a bare symbol; the name is NUL-terminated and
 * owned by the table (valid as long as the table). */
bool ir_dim_is_sym(const ir_dimtab *t, ir_dim d, const char **name);

/* The structure of a canonical dim, for code that lowers dims (codegen).
 * Pointers in a view point into the table and are valid until the next dim
 * is created in it. */
typedef enum ir_dim_kind {
  IR_DIM_CONST, IR_DIM_SYM, IR_DIM_FLOORDIV, IR_DIM_CEILDIV, IR_DIM_MIN, IR_DIM_MAX,
  IR_DIM_MUL, IR_DIM_SUM
} ir_dim_kind;
typedef struct ir_dim_term {
  int64_t coef;
  ir_dim mono;
} ir_dim_term;
typedef struct ir_dim_view {
  ir_dim_kind kind;
  int64_t value;             /* CONST: the value; SUM: the constant term */
  const char *name;          /* SYM */
  ir_dim a, b;               /* FLOORDIV CEILDIV MIN MAX: the arguments */
  int32_t n;                 /* MUL: number of factors; SUM: number of terms */
  const ir_dim *factors;     /* MUL: atoms, multiplied */
  const ir_dim_term *terms;  /* SUM: value + sum of coef * mono */
} ir_dim_view;
/* False for IR_DIM_INVALID or an id not in the table. */
bool ir_dim_view_of(const ir_dimtab *t, ir_dim d, ir_dim_view *v);

/* Structural total order (-1, 0, 1), independent of creation order. */
int ir_dim_compare(const ir_dimtab *t, ir_dim a, ir_dim b);

/* Canonical text, e.g. "B*T", "T-k+1", "ceildiv(T, 64)", "2*H". Round-trips
 * through ir_dim_parse. */
void ir_dim_print(const ir_dimtab *t, ir_dim d, ir_buf *out);

/* Parse an expression from s[0..n): integers, symbols, + - *, parentheses,
 * unary minus, and floordiv/ceildiv/min/max(a, b) calls. Returns
 * IR_DIM_INVALID with a message (and the 0-based offset of the problem in
 * *err_pos) on error. */
ir_dim ir_dim_parse(ir_dimtab *t, const char *s, size_t n, size_t *consumed, ir_buf *err,
                    size_t *err_pos);

/* Copy d from table `src` into table `dst`. */
ir_dim ir_dim_import(ir_dimtab *dst, const ir_dimtab *src, ir_dim d);

/* Symbol bindings for evaluation. */
typedef struct ir_dim_binding {
  const char *name;
  int64_t value;
} ir_dim_binding;

/* Evaluate d with symbols bound; false with a message naming the unbound
 * symbol, the overflow or the division by zero otherwise. floordiv and
 * ceildiv round toward -inf and +inf. */
bool ir_dim_eval(const ir_dimtab *t, ir_dim d, const ir_dim_binding *b, int32_t n_b,
                 int64_t *out, ir_buf *err);

/* Distinct symbol names occurring in d, appended to names (up to cap);
 * returns how many there are. */
int32_t ir_dim_symbols(const ir_dimtab *t, ir_dim d, const char **names, int32_t cap);

#endif
