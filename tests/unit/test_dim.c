/*
 * test_dim.c - dim expressions: canonical form (equal dims have equal ids
 * whatever the construction order), printing, parse/print round trips,
 * evaluation, overflow and error reporting, import between tables.
 *
 * The randomized test builds expressions with a fixed-seed generator and
 * checks them against a reference evaluation of the same expression tree,
 * so canonicalization is tested for meaning, not only for shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir/dim.h"

/* ---- helpers ---------------------------------------------------------- */

static ir_dim sym(ir_dimtab *t, const char *name) { return ir_dim_sym(t, name, strlen(name)); }
static ir_dim num(ir_dimtab *t, int64_t v) { return ir_dim_const(t, v); }

/* Parses the whole of s, which must be a valid expression. */
static ir_dim parse(ir_dimtab *t, const char *s) {
  ir_buf err = {0};
  size_t consumed = 0, pos = 0;
  ir_dim d = ir_dim_parse(t, s, strlen(s), &consumed, &err, &pos);
  if (d == IR_DIM_INVALID) fail_msg("parse of '%s' failed at %zu: %s", s, pos, err.s ? err.s : "");
  assert_int_equal(consumed, strlen(s));
  ir_buf_free(&err);
  return d;
}

/* Expects the parse of s to fail at offset `pos` with a message containing `msg`. */
static void expect_parse_error(const char *s, size_t pos, const char *msg) {
  ir_dimtab *t = ir_dimtab_new();
  ir_buf err = {0};
  size_t err_pos = 12345;
  ir_dim d = ir_dim_parse(t, s, strlen(s), NULL, &err, &err_pos);
  assert_int_equal(d, IR_DIM_INVALID);
  assert_non_null(err.s);
  if (!strstr(err.s, msg)) fail_msg("'%s': message '%s' lacks '%s'", s, err.s, msg);
  if (err_pos != pos) fail_msg("'%s': error at %zu, expected %zu (%s)", s, err_pos, pos, err.s);
  ir_buf_free(&err);
  ir_dimtab_free(t);
}

static void assert_prints(ir_dimtab *t, ir_dim d, const char *expected) {
  ir_buf b = {0};
  ir_dim_print(t, d, &b);
  assert_string_equal(b.s, expected);
  ir_buf_free(&b);
}

/* print(parse(s)) == canonical and parse(canonical) is the same dim. */
static void assert_canonical(ir_dimtab *t, const char *s, const char *canonical) {
  ir_dim d = parse(t, s);
  assert_prints(t, d, canonical);
  assert_int_equal(parse(t, canonical), d);
}

static int64_t eval_or_fail(ir_dimtab *t, ir_dim d, const ir_dim_binding *b, int32_t n) {
  ir_buf err = {0};
  int64_t v = 0;
  if (!ir_dim_eval(t, d, b, n, &v, &err)) fail_msg("eval failed: %s", err.s);
  ir_buf_free(&err);
  return v;
}

/* ---- canonical form -------------------------------------------------------- */

static void test_commutative_associative(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim B = sym(t, "B"), T = sym(t, "T"), k = sym(t, "k");
  assert_int_equal(ir_dim_mul(t, B, T), ir_dim_mul(t, T, B));
  assert_int_equal(ir_dim_add(t, B, T), ir_dim_add(t, T, B));
  assert_int_equal(ir_dim_add(t, ir_dim_add(t, B, T), k), ir_dim_add(t, B, ir_dim_add(t, T, k)));
  assert_int_equal(ir_dim_mul(t, ir_dim_mul(t, B, T), k), ir_dim_mul(t, B, ir_dim_mul(t, k, T)));
  assert_int_equal(ir_dim_min(t, B, T), ir_dim_min(t, T, B));
  assert_int_equal(ir_dim_max(t, num(t, 16), T), ir_dim_max(t, T, num(t, 16)));
  assert_int_not_equal(ir_dim_min(t, B, T), ir_dim_max(t, B, T));
  /* a symbol and a constant are different dims */
  assert_int_not_equal(sym(t, "B"), num(t, 0));
  assert_int_equal(sym(t, "B"), B);
  ir_dimtab_free(t);
}

static void test_distribution_and_cancellation(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim B = sym(t, "B"), T = sym(t, "T"), one = num(t, 1);
  ir_dim lhs = ir_dim_mul(t, ir_dim_add(t, T, one), B);
  assert_int_equal(lhs, ir_dim_add(t, ir_dim_mul(t, B, T), B));
  assert_prints(t, lhs, "B*T+B");
  assert_int_equal(ir_dim_sub(t, T, T), num(t, 0));
  assert_int_equal(ir_dim_sub(t, lhs, ir_dim_mul(t, B, T)), B);
  assert_int_equal(ir_dim_add(t, T, T), ir_dim_mul(t, num(t, 2), T));
  assert_int_equal(ir_dim_mul(t, T, num(t, 0)), num(t, 0));
  assert_int_equal(ir_dim_mul(t, T, one), T);
  assert_int_equal(ir_dim_add(t, T, num(t, 0)), T);
  /* (a+b)*(a-b) == a*a - b*b */
  ir_dim a = sym(t, "a"), b = sym(t, "b");
  ir_dim prod = ir_dim_mul(t, ir_dim_add(t, a, b), ir_dim_sub(t, a, b));
  assert_int_equal(prod, ir_dim_sub(t, ir_dim_mul(t, a, a), ir_dim_mul(t, b, b)));
  assert_prints(t, prod, "a*a-b*b");
  /* constants fold */
  assert_int_equal(ir_dim_mul(t, ir_dim_add(t, num(t, 3), num(t, 4)), num(t, -2)), num(t, -14));
  /* atoms with equal arguments are the same atom, and cancel */
  ir_dim c1 = ir_dim_ceildiv(t, ir_dim_add(t, T, one), num(t, 64));
  ir_dim c2 = ir_dim_ceildiv(t, ir_dim_add(t, one, T), num(t, 64));
  assert_int_equal(c1, c2);
  assert_int_equal(ir_dim_sub(t, ir_dim_mul(t, B, c1), ir_dim_mul(t, c2, B)), num(t, 0));
  ir_dimtab_free(t);
}

static void test_simplifications(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim T = sym(t, "T"), k = sym(t, "k");
  ir_dim one = num(t, 1);
  assert_int_equal(ir_dim_floordiv(t, T, one), T);
  assert_int_equal(ir_dim_ceildiv(t, T, one), T);
  assert_int_equal(ir_dim_floordiv(t, T, num(t, -1)), ir_dim_sub(t, num(t, 0), T));
  /* division by a constant that divides every coefficient and the constant */
  ir_dim e = parse(t, "4*T+8*k-12");
  assert_prints(t, ir_dim_floordiv(t, e, num(t, 4)), "T+2*k-3");
  assert_prints(t, ir_dim_ceildiv(t, e, num(t, -4)), "-T-2*k+3");
  assert_prints(t, ir_dim_floordiv(t, parse(t, "4*T+6"), num(t, 4)), "floordiv(4*T+6, 4)");
  assert_prints(t, ir_dim_floordiv(t, T, k), "floordiv(T, k)");
  /* constant division rounds toward -inf / +inf */
  assert_int_equal(ir_dim_floordiv(t, num(t, 7), num(t, 2)), num(t, 3));
  assert_int_equal(ir_dim_ceildiv(t, num(t, 7), num(t, 2)), num(t, 4));
  assert_int_equal(ir_dim_floordiv(t, num(t, -7), num(t, 2)), num(t, -4));
  assert_int_equal(ir_dim_ceildiv(t, num(t, -7), num(t, 2)), num(t, -3));
  assert_int_equal(ir_dim_floordiv(t, num(t, 7), num(t, -2)), num(t, -4));
  assert_int_equal(ir_dim_ceildiv(t, num(t, 7), num(t, -2)), num(t, -3));
  assert_int_equal(ir_dim_floordiv(t, num(t, -8), num(t, -2)), num(t, 4));
  assert_int_equal(ir_dim_ceildiv(t, num(t, -6), num(t, 4)), num(t, -1));
  /* min/max */
  assert_int_equal(ir_dim_min(t, T, T), T);
  assert_int_equal(ir_dim_max(t, T, T), T);
  assert_int_equal(ir_dim_min(t, num(t, 3), num(t, 5)), num(t, 3));
  assert_int_equal(ir_dim_max(t, num(t, 3), num(t, -5)), num(t, 3));
  assert_int_equal(ir_dim_min(t, ir_dim_add(t, T, one), T), T);
  assert_int_equal(ir_dim_max(t, ir_dim_add(t, T, one), T), ir_dim_add(t, T, one));
  assert_prints(t, ir_dim_min(t, num(t, 16), T), "min(T, 16)");
  ir_dimtab_free(t);
}

/* ---- printing ------------------------------------------------------------------ */

static void test_print_forms(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim B = sym(t, "B"), T = sym(t, "T"), k = sym(t, "k"), H = sym(t, "H");
  assert_prints(t, ir_dim_mul(t, T, B), "B*T");
  /* T-k+1 built from the other end */
  assert_prints(t, ir_dim_add(t, ir_dim_sub(t, num(t, 1), k), T), "T-k+1");
  assert_prints(t, ir_dim_mul(t, num(t, 2), H), "2*H");
  assert_prints(t, ir_dim_sub(t, num(t, 4), T), "-T+4");
  assert_prints(t, ir_dim_sub(t, T, num(t, 1)), "T-1");
  assert_prints(t, ir_dim_sub(t, num(t, 0), T), "-T");
  assert_prints(t, ir_dim_ceildiv(t, T, num(t, 64)), "ceildiv(T, 64)");
  assert_prints(t, ir_dim_min(t, T, num(t, 16)), "min(T, 16)");
  assert_prints(t, ir_dim_max(t, num(t, 16), T), "max(T, 16)");
  assert_prints(t, num(t, 0), "0");
  assert_prints(t, num(t, -5), "-5");
  assert_prints(t, num(t, INT64_MAX), "9223372036854775807");
  assert_prints(t, num(t, -INT64_MAX), "-9223372036854775807");
  assert_prints(t, parse(t, "-3 - 2*T*B"), "-2*B*T-3");
  assert_prints(t, parse(t, "min(max(b, a), c)"), "min(c, max(a, b))");
  assert_prints(t, parse(t, "T*T*B + T + B*T"), "B*T*T+B*T+T");
  assert_prints(t, IR_DIM_INVALID, "<invalid>");
  ir_dimtab_free(t);
}

static void test_round_trips(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"B*T", "B*T"},
      {"T*B", "B*T"},
      {"(T+1)*B", "B*T+B"},
      {"1-k+T", "T-k+1"},
      {"T - k + 1", "T-k+1"},
      {"4-T", "-T+4"},
      {"2*H", "2*H"},
      {"H*2", "2*H"},
      {"-(-T)", "T"},
      {"- - -T", "-T"},
      {"-2*-3", "6"},
      {"-(T-4)*2", "-2*T+8"},
      {"min(16, T)", "min(T, 16)"},
      {"max(T+1, T)", "T+1"},
      {"ceildiv(T, 64)", "ceildiv(T, 64)"},
      {"floordiv(T + 63, 64) * 64", "64*floordiv(T+63, 64)"},
      {"ceildiv(-T, -64)", "ceildiv(-T, -64)"},
      {"min(T, -3)", "min(T, -3)"},
      {"floordiv(min(T, k), max(B, -2)) - 1", "floordiv(min(T, k), max(B, -2))-1"},
      {"min(max(a, b), max(b, a))", "max(a, b)"},
      {"x_1*_y + 0", "_y*x_1"},
      {"min*max + min", "max*min+min"},
      {"floordiv(ceildiv(min(T, 8)*B, 2), 3)*(B-1)", "B*floordiv(ceildiv(B*min(T, 8), 2), 3)-floordiv(ceildiv(B*min(T, 8), 2), 3)"},
      {"(((((T)))))", "T"},
      {"0*T", "0"},
      {"T-T+B-B", "0"},
      {"9223372036854775807", "9223372036854775807"},
      {"-9223372036854775807", "-9223372036854775807"},
      {"3*T*ceildiv(T,2) - T*ceildiv(T,2)*3 + 7", "7"},
  };
  ir_dimtab *t = ir_dimtab_new();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) assert_canonical(t, cases[i][0], cases[i][1]);
  /* the same expressions in a fresh table, parsed in reverse order, print the same */
  ir_dimtab *u = ir_dimtab_new();
  for (size_t i = sizeof cases / sizeof cases[0]; i-- > 0;) assert_canonical(u, cases[i][0], cases[i][1]);
  ir_dimtab_free(u);
  ir_dimtab_free(t);
}

static void test_parse_stops_and_consumed(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t consumed;
  } cases[] = {
      {"T, 2*H]", 1},   {"2*H]", 3},         {"B*T }", 3},     {"min(a, b)x", 9},
      {"foo(T)", 3},    {"2T", 1},           {"T; x", 1},      {"ceildiv(T, 64) ,", 14},
      {"T/2", 1},       {"min", 3},          {"T // note", 1}, {"k+1\n]", 3},
  };
  ir_dimtab *t = ir_dimtab_new();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t consumed = 0;
    ir_buf err = {0};
    ir_dim d = ir_dim_parse(t, cases[i].s, strlen(cases[i].s), &consumed, &err, NULL);
    if (d == IR_DIM_INVALID) fail_msg("'%s': %s", cases[i].s, err.s);
    if (consumed != cases[i].consumed) fail_msg("'%s': consumed %zu", cases[i].s, consumed);
    ir_buf_free(&err);
  }
  /* only n bytes are read, even without a terminator */
  char unterminated[3] = {'T', '+', '1'};
  size_t consumed = 0;
  assert_int_equal(ir_dim_parse(t, unterminated, 1, &consumed, NULL, NULL), sym(t, "T"));
  assert_int_equal(consumed, 1);
  ir_dimtab_free(t);
}

static void test_parse_errors(void **state) {
  (void)state;
  expect_parse_error("", 0, "expected a dim expression");
  expect_parse_error("   ", 3, "found the end");
  expect_parse_error("T+", 2, "expected a dim expression");
  expect_parse_error("T+*2", 2, "found '*'");
  expect_parse_error("T -> x", 3, "found '>'"); /* '-' continues the expression */
  expect_parse_error("@", 0, "found '@'");
  expect_parse_error("T*\x01", 2, "byte 0x01");
  expect_parse_error("(T", 2, "expected ')'");
  expect_parse_error("min(T)", 5, "expected ','");
  expect_parse_error("max(T, 3", 8, "expected ')'");
  expect_parse_error("ceildiv(T 64)", 10, "expected ','");
  expect_parse_error("min(T, )", 7, "expected a dim expression");
  expect_parse_error("99999999999999999999", 0, "integer too large");
  expect_parse_error("9223372036854775807+1", 19, "overflow");
  expect_parse_error("T*9223372036854775807 + T", 22, "overflow");
  expect_parse_error("floordiv(T, 0)", 0, "division by zero");
  expect_parse_error("2 + ceildiv(T, k-k)", 4, "division by zero");
  expect_parse_error("floordiv(7, 2-2)", 0, "division by zero");
}

static char *repeat(const char *prefix, size_t n, const char *middle, const char *suffix) {
  size_t lp = strlen(prefix), lm = strlen(middle), ls = strlen(suffix);
  char *s = malloc(n * (lp + ls) + lm + 1);
  char *o = s;
  for (size_t i = 0; i < n; i++, o += lp) memcpy(o, prefix, lp);
  memcpy(o, middle, lm);
  o += lm;
  for (size_t i = 0; i < n; i++, o += ls) memcpy(o, suffix, ls);
  *o = '\0';
  return s;
}

static void test_nesting_and_length_limits(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  char *ok = repeat("(", 64, "T", ")");
  assert_int_equal(parse(t, ok), sym(t, "T"));
  free(ok);
  char *deep = repeat("(", 65, "T", ")");
  expect_parse_error(deep, 64, "nested deeper than 64");
  free(deep);
  char *calls = repeat("min(1+", 1000, "T", ", T)");
  expect_parse_error(calls, 64 * 6, "nested deeper");
  free(calls);
  char *hostile = repeat("(", 1000000, "", "");
  expect_parse_error(hostile, 64, "nested deeper");
  free(hostile);
  /* minus signs are counted in a loop, not recursively */
  char *minuses = repeat("-", 4001, "T", "");
  assert_int_equal(parse(t, minuses), ir_dim_sub(t, num(t, 0), sym(t, "T")));
  free(minuses);
  char *longsum = repeat("1+", 3000, "1", "");
  expect_parse_error(longsum, 4097, "longer than 4096");
  free(longsum);
  char *longname = repeat("a", 100000, "", "");
  expect_parse_error(longname, 4097, "longer than 4096");
  free(longname);
  /* distribution blow-up is refused, not computed */
  expect_parse_error("(a+b)*(c+d)*(e+f)*(g+h)*(i+j)*(k+l)*(m+n)*(o+p)", 41, "too large");
  char *degree = repeat("T*", 40, "T", "");
  expect_parse_error(degree, 63, "too large"); /* the '*' making degree 33 */
  free(degree);
  ir_dimtab_free(t);
}

/* ---- evaluation --------------------------------------------------------------- */

static void test_eval(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim_binding b[] = {{"B", 3}, {"T", -7}, {"k", 2}, {"z", 0}};
  assert_int_equal(eval_or_fail(t, parse(t, "B*T+B"), b, 4), -18);
  assert_int_equal(eval_or_fail(t, parse(t, "T-k+1"), b, 4), -8);
  assert_int_equal(eval_or_fail(t, parse(t, "floordiv(T, k)"), b, 4), -4);
  assert_int_equal(eval_or_fail(t, parse(t, "ceildiv(T, k)"), b, 4), -3);
  assert_int_equal(eval_or_fail(t, parse(t, "floordiv(-T, -k)"), b, 4), -4);
  assert_int_equal(eval_or_fail(t, parse(t, "ceildiv(-T, -k)"), b, 4), -3);
  assert_int_equal(eval_or_fail(t, parse(t, "floordiv(B, -k)"), b, 4), -2);
  assert_int_equal(eval_or_fail(t, parse(t, "min(T, B) * max(T, B)"), b, 4), -21);
  assert_int_equal(eval_or_fail(t, parse(t, "42"), NULL, 0), 42);

  ir_buf err = {0};
  int64_t v;
  assert_false(ir_dim_eval(t, parse(t, "B*H"), b, 4, &v, &err));
  assert_non_null(strstr(err.s, "'H'"));
  ir_buf_free(&err);
  assert_false(ir_dim_eval(t, parse(t, "floordiv(B, z)"), b, 4, &v, &err));
  assert_non_null(strstr(err.s, "division by zero"));
  assert_non_null(strstr(err.s, "floordiv(B, z)"));
  ir_buf_free(&err);
  ir_dim_binding big[] = {{"B", INT64_MAX / 2}, {"T", 3}};
  assert_false(ir_dim_eval(t, parse(t, "B*T"), big, 2, &v, &err));
  assert_non_null(strstr(err.s, "overflow"));
  ir_buf_free(&err);
  assert_false(ir_dim_eval(t, parse(t, "2*B+B"), big, 2, &v, &err));
  ir_buf_free(&err);
  ir_dim_binding extreme[] = {{"B", INT64_MIN}, {"T", -1}};
  assert_false(ir_dim_eval(t, parse(t, "floordiv(B, T)"), extreme, 2, &v, &err));
  assert_non_null(strstr(err.s, "overflow"));
  ir_buf_free(&err);
  assert_false(ir_dim_eval(t, IR_DIM_INVALID, b, 4, &v, NULL));
  ir_dimtab_free(t);
}

/* ---- overflow and invalid propagation ------------------------------------------ */

static void test_overflow_and_invalid(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim T = sym(t, "T"), max = num(t, INT64_MAX);
  assert_int_equal(num(t, INT64_MIN), IR_DIM_INVALID);
  assert_int_equal(ir_dim_add(t, max, num(t, 1)), IR_DIM_INVALID);
  assert_int_equal(ir_dim_sub(t, num(t, -INT64_MAX), num(t, 1)), IR_DIM_INVALID);
  assert_int_equal(ir_dim_mul(t, max, num(t, 2)), IR_DIM_INVALID);
  assert_int_equal(ir_dim_mul(t, num(t, INT64_MAX / 2 + 1), num(t, -2)), IR_DIM_INVALID);
  ir_dim bigT = ir_dim_mul(t, max, T);
  assert_prints(t, bigT, "9223372036854775807*T");
  assert_int_equal(ir_dim_add(t, bigT, T), IR_DIM_INVALID);                 /* coefficient */
  assert_int_equal(ir_dim_mul(t, bigT, ir_dim_add(t, T, num(t, 2))), IR_DIM_INVALID); /* product */
  assert_int_equal(ir_dim_add(t, ir_dim_add(t, T, max), num(t, 1)), IR_DIM_INVALID);  /* constant */
  assert_int_equal(ir_dim_sub(t, bigT, ir_dim_sub(t, bigT, T)), T);          /* no false alarm */
  assert_int_equal(ir_dim_floordiv(t, T, num(t, 0)), IR_DIM_INVALID);
  assert_int_equal(ir_dim_ceildiv(t, num(t, 5), ir_dim_sub(t, T, T)), IR_DIM_INVALID);
  /* IR_DIM_INVALID propagates through every operation */
  ir_dim bad = IR_DIM_INVALID;
  assert_int_equal(ir_dim_add(t, bad, T), IR_DIM_INVALID);
  assert_int_equal(ir_dim_sub(t, T, bad), IR_DIM_INVALID);
  assert_int_equal(ir_dim_mul(t, bad, bad), IR_DIM_INVALID);
  assert_int_equal(ir_dim_floordiv(t, bad, T), IR_DIM_INVALID);
  assert_int_equal(ir_dim_ceildiv(t, T, bad), IR_DIM_INVALID);
  assert_int_equal(ir_dim_min(t, bad, bad), IR_DIM_INVALID);
  assert_int_equal(ir_dim_max(t, T, bad), IR_DIM_INVALID);
  assert_int_equal(ir_dim_max(t, T, 1000000), IR_DIM_INVALID); /* unknown id */
  assert_int_equal(ir_dim_import(t, t, bad), IR_DIM_INVALID);
  assert_false(ir_dim_is_const(t, bad, NULL));
  assert_false(ir_dim_is_sym(t, bad, NULL));
  assert_int_equal(ir_dim_symbols(t, bad, NULL, 0), 0);
  /* op atoms nest at most 100 deep, however they are built */
  ir_dim nested = T;
  for (int i = 0; i < 50; i++) nested = ir_dim_min(t, ir_dim_floordiv(t, nested, sym(t, "k")), T);
  assert_int_not_equal(nested, IR_DIM_INVALID);
  assert_int_equal(ir_dim_floordiv(t, nested, T), IR_DIM_INVALID);
  assert_int_not_equal(ir_dim_add(t, nested, T), IR_DIM_INVALID); /* sums add no nesting */
  /* bad symbol names */
  assert_int_equal(ir_dim_sym(t, "", 0), IR_DIM_INVALID);
  assert_int_equal(sym(t, "2x"), IR_DIM_INVALID);
  assert_int_equal(sym(t, "a-b"), IR_DIM_INVALID);
  assert_int_equal(sym(t, "a.b"), IR_DIM_INVALID);
  ir_dimtab_free(t);
}

static void test_queries_and_symbols(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  int64_t v = 0;
  const char *name = NULL;
  assert_true(ir_dim_is_const(t, parse(t, "2*3-1"), &v));
  assert_int_equal(v, 5);
  assert_false(ir_dim_is_const(t, parse(t, "T"), &v));
  assert_true(ir_dim_is_sym(t, parse(t, "seq_len"), &name));
  assert_string_equal(name, "seq_len");
  assert_false(ir_dim_is_sym(t, parse(t, "2*T"), &name));
  assert_false(ir_dim_is_sym(t, parse(t, "min(T, 2)"), &name));

  const char *names[8];
  ir_dim d = parse(t, "min(T, B*k) + T*floordiv(k, H) + a");
  assert_int_equal(ir_dim_symbols(t, d, names, 8), 5);
  const char *sorted[] = {"B", "H", "T", "a", "k"};
  for (int i = 0; i < 5; i++) assert_string_equal(names[i], sorted[i]);
  const char *few[2] = {NULL, NULL};
  assert_int_equal(ir_dim_symbols(t, d, few, 2), 5);
  assert_string_equal(few[0], "B");
  assert_string_equal(few[1], "H");
  assert_int_equal(ir_dim_symbols(t, parse(t, "7"), names, 8), 0);
  assert_int_equal(ir_dim_symbols(t, parse(t, "T-T"), names, 8), 0);
  ir_dimtab_free(t);
}

static void test_compare(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  /* created in reverse order of the structural order */
  ir_dim c = parse(t, "5"), s = parse(t, "T+1"), m = parse(t, "B*T"), a = parse(t, "B");
  assert_int_equal(ir_dim_compare(t, a, a), 0);
  assert_int_equal(ir_dim_compare(t, m, a), -1); /* higher degree first */
  assert_int_equal(ir_dim_compare(t, a, s), -1); /* monomials before sums */
  assert_int_equal(ir_dim_compare(t, s, c), -1); /* sums before constants */
  assert_int_equal(ir_dim_compare(t, c, m), 1);
  assert_int_equal(ir_dim_compare(t, parse(t, "3"), c), -1);
  assert_int_equal(ir_dim_compare(t, parse(t, "T"), parse(t, "k")), -1);
  assert_int_equal(ir_dim_compare(t, parse(t, "T"), parse(t, "TT")), -1);
  assert_int_equal(ir_dim_compare(t, parse(t, "z"), parse(t, "min(a, b)")), -1);
  assert_int_equal(ir_dim_compare(t, parse(t, "min(a, b)"), parse(t, "min(a, c)")), -1);
  assert_int_equal(ir_dim_compare(t, parse(t, "floordiv(a, 2)"), parse(t, "ceildiv(a, 2)")), -1);
  ir_dimtab_free(t);
}

/* ---- import and growth --------------------------------------------------------- */

static void test_import(void **state) {
  (void)state;
  static const char *const exprs[] = {
      "B*T+B", "T-k+1", "ceildiv(T, 64)*B - min(T, 16)", "max(floordiv(B*T, 3), k-2)", "-7", "x",
  };
  ir_dimtab *src = ir_dimtab_new(), *dst = ir_dimtab_new();
  /* dst already holds unrelated dims, created in a different order */
  parse(dst, "k*k*z + 17");
  parse(dst, "min(T, 16)");
  for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
    ir_dim d = parse(src, exprs[i]);
    ir_dim moved = ir_dim_import(dst, src, d);
    assert_int_not_equal(moved, IR_DIM_INVALID);
    assert_int_equal(moved, parse(dst, exprs[i]));
    assert_int_equal(ir_dim_import(src, dst, moved), d);
    ir_buf a = {0}, b = {0};
    ir_dim_print(src, d, &a);
    ir_dim_print(dst, moved, &b);
    assert_string_equal(a.s, b.s);
    ir_buf_free(&a);
    ir_buf_free(&b);
  }
  ir_dim d = parse(src, "T");
  assert_int_equal(ir_dim_import(src, src, d), d);
  ir_dimtab_free(src);
  ir_dimtab_free(dst);
}

static void test_table_growth(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  enum { N = 20000 };
  ir_dim *ids = malloc(N * sizeof *ids);
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "s%d", i);
    ids[i] = ir_dim_add(t, sym(t, name), num(t, i));
    assert_int_not_equal(ids[i], IR_DIM_INVALID);
  }
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "s%d", i);
    assert_int_equal(ir_dim_add(t, num(t, i), sym(t, name)), ids[i]);
  }
  /* names handed out stay valid while the table grows */
  const char *first = NULL;
  assert_true(ir_dim_is_sym(t, sym(t, "s0"), &first));
  for (int i = 0; i < N; i++) num(t, 1000000 + i);
  assert_string_equal(first, "s0");
  free(ids);
  ir_dimtab_free(t);
}

/* ---- randomized: canonical form preserves meaning ------------------------------ */

enum { N_BIND = 3 };
static const char *const rnd_names[] = {"B", "T", "k", "H", "x_1"};
static const ir_dim_binding rnd_bind[N_BIND][5] = {
    {{"B", 3}, {"T", 5}, {"k", 2}, {"H", 7}, {"x_1", 1}},
    {{"B", 1}, {"T", 4}, {"k", 6}, {"H", 2}, {"x_1", 3}},
    {{"B", 2}, {"T", 7}, {"k", 1}, {"H", 5}, {"x_1", 4}},
};

typedef struct rnd_expr {
  ir_dim d;
  int64_t v[N_BIND]; /* reference value under each binding */
} rnd_expr;

static uint64_t rnd_next(uint64_t *s) {
  *s = *s * 6364136223846793005u + 1442695040888963407u;
  return *s >> 33;
}

static int64_t ref_floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }
static int64_t ref_ceildiv(int64_t a, int64_t b) { return a / b + (a % b != 0 && (a < 0) == (b < 0)); }

/* A random expression of depth <= depth, built through the API, with its
 * value computed independently. Values stay small enough not to overflow. */
static rnd_expr rnd_build(ir_dimtab *t, uint64_t *s, int depth) {
  rnd_expr r;
  uint64_t pick = depth == 0 ? rnd_next(s) % 2 : rnd_next(s) % 9;
  if (pick == 0) {
    int64_t c = (int64_t)(rnd_next(s) % 11) - 5;
    r.d = num(t, c);
    for (int i = 0; i < N_BIND; i++) r.v[i] = c;
    return r;
  }
  if (pick == 1) {
    int j = (int)(rnd_next(s) % 5);
    r.d = sym(t, rnd_names[j]);
    for (int i = 0; i < N_BIND; i++) r.v[i] = rnd_bind[i][j].value;
    return r;
  }
  rnd_expr a = rnd_build(t, s, depth - 1), b = rnd_build(t, s, depth - 1);
  assert_int_not_equal(a.d, IR_DIM_INVALID);
  assert_int_not_equal(b.d, IR_DIM_INVALID);
  bool divisor_zero = false;
  for (int i = 0; i < N_BIND; i++) divisor_zero = divisor_zero || b.v[i] == 0;
  if ((pick == 6 || pick == 7) && divisor_zero) pick = 8;
  for (int i = 0; i < N_BIND; i++) {
    int64_t x = a.v[i], y = b.v[i];
    switch (pick) {
    case 2: r.v[i] = x + y; break;
    case 3: r.v[i] = x - y; break;
    case 4: r.v[i] = x * y; break;
    case 5: r.v[i] = x < y ? x : y; break;
    case 6: r.v[i] = ref_floordiv(x, y); break;
    case 7: r.v[i] = ref_ceildiv(x, y); break;
    default: r.v[i] = x > y ? x : y; break;
    }
  }
  switch (pick) {
  case 2: r.d = ir_dim_add(t, a.d, b.d); break;
  case 3: r.d = ir_dim_sub(t, a.d, b.d); break;
  case 4: r.d = ir_dim_mul(t, a.d, b.d); break;
  case 5: r.d = ir_dim_min(t, a.d, b.d); break;
  case 6: r.d = ir_dim_floordiv(t, a.d, b.d); break;
  case 7: r.d = ir_dim_ceildiv(t, a.d, b.d); break;
  default: r.d = ir_dim_max(t, a.d, b.d); break;
  }
  return r;
}

static void test_random_expressions(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new(), *other = ir_dimtab_new();
  uint64_t seed = 12345;
  for (int iter = 0; iter < 3000; iter++) {
    rnd_expr e = rnd_build(t, &seed, 1 + iter % 4);
    assert_int_not_equal(e.d, IR_DIM_INVALID);
    for (int i = 0; i < N_BIND; i++) assert_int_equal(eval_or_fail(t, e.d, rnd_bind[i], 5), e.v[i]);
    ir_buf text = {0};
    ir_dim_print(t, e.d, &text);
    assert_int_equal(parse(t, text.s), e.d);
    /* a table that saw other expressions first prints the same text */
    ir_dim there = parse(other, text.s);
    assert_prints(other, there, text.s);
    assert_int_equal(ir_dim_import(other, t, e.d), there);
    ir_buf_free(&text);
  }
  ir_dimtab_free(t);
  ir_dimtab_free(other);
}

static void test_view_exposes_structure(void **state) {
  (void)state;
  ir_dimtab *t = ir_dimtab_new();
  ir_dim_view v;
  assert_false(ir_dim_view_of(t, IR_DIM_INVALID, &v));
  ir_dim d = parse(t, "B*T+2*T-3");
  assert_true(ir_dim_view_of(t, d, &v));
  assert_int_equal(v.kind, IR_DIM_SUM);
  assert_int_equal(v.value, -3);
  assert_int_equal(v.n, 2);
  ir_dim_term bt = v.terms[0], tt = v.terms[1];
  assert_int_equal(bt.coef, 1);
  assert_int_equal(tt.coef, 2);
  assert_int_equal(tt.mono, parse(t, "T"));
  assert_true(ir_dim_view_of(t, bt.mono, &v));
  assert_int_equal(v.kind, IR_DIM_MUL);
  assert_int_equal(v.n, 2);
  assert_true(ir_dim_view_of(t, v.factors[0], &v));
  assert_int_equal(v.kind, IR_DIM_SYM);
  assert_string_equal(v.name, "B");
  assert_true(ir_dim_view_of(t, parse(t, "ceildiv(T, 64)"), &v));
  assert_int_equal(v.kind, IR_DIM_CEILDIV);
  assert_int_equal(v.b, ir_dim_const(t, 64));
  assert_true(ir_dim_view_of(t, parse(t, "7"), &v));
  assert_int_equal(v.kind, IR_DIM_CONST);
  assert_int_equal(v.value, 7);
  ir_dimtab_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commutative_associative),
      cmocka_unit_test(test_distribution_and_cancellation),
      cmocka_unit_test(test_simplifications),
      cmocka_unit_test(test_print_forms),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_parse_stops_and_consumed),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_nesting_and_length_limits),
      cmocka_unit_test(test_eval),
      cmocka_unit_test(test_overflow_and_invalid),
      cmocka_unit_test(test_queries_and_symbols),
      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_import),
      cmocka_unit_test(test_table_growth),
      cmocka_unit_test(test_random_expressions),
      cmocka_unit_test(test_view_exposes_structure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
