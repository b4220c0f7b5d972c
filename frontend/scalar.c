/*
 * scalar.c - small parsers for text inside one YAML scalar: types
 * (`f32[T, B, 4]`), dim expressions, integers, reals and bracketed lists.
 * Op lines (opline.c) and the schema helpers (schema.c) share them.
 *
 * A fe_text is a read position in a scalar's value; every error names the
 * byte offset where the problem is, and fe_loc_at turns it into an exact
 * column when the scalar stands verbatim on one line. Dim expressions are
 * cut out up to the ',' ')' or ']' that ends them outside brackets and
 * handed to ir_dim_parse, which bounds its own work.
 */
#include "fe.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

fe_text fe_text_of(fe_ctx *c, const fe_ynode *scalar) {
  return (fe_text){c, scalar, scalar->text, scalar->len, 0};
}

bool fe_text_fail(fe_text *t, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(t->c->d, fe_loc_at(t->c, t->node, at), fmt, ap);
  va_end(ap);
  return false;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_word(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || is_digit(ch);
}

void fe_text_skip_space(fe_text *t) {
  while (t->pos < t->n && is_space(t->s[t->pos])) t->pos++;
}

bool fe_text_at_end(fe_text *t) {
  fe_text_skip_space(t);
  return t->pos >= t->n;
}

bool fe_text_accept(fe_text *t, char ch) {
  fe_text_skip_space(t);
  if (t->pos < t->n && t->s[t->pos] == ch) {
    t->pos++;
    return true;
  }
  return false;
}

size_t fe_text_name_len(const fe_text *t) {
  size_t i = t->pos;
  if (i >= t->n || !is_word(t->s[i]) || is_digit(t->s[i])) return 0;
  while (i < t->n && (is_word(t->s[i]) || t->s[i] == '.')) i++;
  return i - t->pos;
}

size_t fe_text_extent(const fe_text *t) {
  size_t depth = 0, i = t->pos;
  for (; i < t->n; i++) {
    char ch = t->s[i];
    if (ch == '(' || ch == '[') {
      depth++;
    } else if (ch == ')' || ch == ']' || ch == ',') {
      if (depth == 0) break;
      if (ch != ',') depth--;
    }
  }
  while (i > t->pos && is_space(t->s[i - 1])) i--;
  return i;
}

const char *fe_text_found(fe_text *t, size_t at) {
  if (at >= t->n) return "the end of the line";
  size_t e = at + 1;
  while (e < t->n && e - at < 16 && !is_space(t->s[e])) e++;
  ir_buf *b = fe_msg_buf(t->c);
  ir_buf_puts(b, "'");
  fe_yexcerpt(b, t->s + at, e - at);
  ir_buf_puts(b, "'");
  return b->s;
}

bool fe_text_dim(fe_text *t, size_t end, ir_dim *out) {
  fe_text_skip_space(t);
  size_t start = t->pos, stop = fe_text_extent(t);
  if (stop > end) stop = end;
  if (stop <= start)
    return fe_text_fail(t, start, "expected a dim expression such as T or 2*H, got %s",
                        fe_text_found(t, start));
  ir_buf err = {0};
  size_t consumed = 0, err_pos = 0;
  ir_dim d = ir_dim_parse(t->c->g->dims, t->s + start, stop - start, &consumed, &err, &err_pos);
  bool ok = true;
  if (d == IR_DIM_INVALID) {
    if (err_pos > stop - start) err_pos = stop - start;
    ok = fe_text_fail(t, start + err_pos, "bad dim expression: %s",
                      err.s ? err.s : "invalid dim expression");
  } else if (consumed != stop - start) {
    ok = fe_text_fail(t, start + consumed, "unexpected %s in a dim expression",
                      fe_text_found(t, start + consumed));
  }
  ir_buf_free(&err);
  if (!ok) return false;
  *out = d;
  t->pos = stop;
  return true;
}

bool fe_text_int(fe_text *t, size_t end, int64_t *out) {
  fe_text_skip_space(t);
  size_t start = t->pos, i = start;
  bool neg = i < end && t->s[i] == '-';
  if (neg) i++;
  if (i >= end || !is_digit(t->s[i]))
    return fe_text_fail(t, start, "expected an integer, got %s", fe_text_found(t, start));
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < end && is_digit(t->s[i]); i++) {
    unsigned digit = (unsigned)(t->s[i] - '0');
    if (v > (limit - digit) / 10)
      return fe_text_fail(t, start, "integer %s does not fit in 64 bits", fe_text_found(t, start));
    v = v * 10 + digit;
  }
  if (i < end && (is_word(t->s[i]) || t->s[i] == '.'))
    return fe_text_fail(t, start, "expected an integer, got %s", fe_text_found(t, start));
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  t->pos = i;
  return true;
}

/* Length of a real literal at s[0..n): -?(nan|inf|digits[.digits][e[+-]digits]
 * |.digits...), or 0. strtod alone would also take hex and "infinity". */
static size_t real_syntax(const char *s, size_t n) {
  size_t i = 0;
  if (i < n && s[i] == '-') i++;
  if (n - i >= 3 && (memcmp(s + i, "inf", 3) == 0 || (i == 0 && memcmp(s, "nan", 3) == 0)))
    return i + 3;
  return ir_decimal_length(s, n);
}

bool fe_text_real(fe_text *t, size_t end, double *out) {
  fe_text_skip_space(t);
  size_t start = t->pos, len = real_syntax(t->s + start, end - start);
  if (len == 0 || (start + len < end && (is_word(t->s[start + len]) || t->s[start + len] == '.')))
    return fe_text_fail(t, start, "expected a number (such as 0.5, -2e-05, nan, inf or -inf), got %s",
                        fe_text_found(t, start));
  char buf[64];
  if (len >= sizeof buf)
    return fe_text_fail(t, start, "number %s is too long", fe_text_found(t, start));
  memcpy(buf, t->s + start, len);
  buf[len] = 0;
  errno = 0;
  double v = strtod(buf, NULL);
  if (isinf(v) && !strstr(buf, "inf"))
    return fe_text_fail(t, start, "number %s is beyond the double range; write inf or -inf", buf);
  *out = v;
  t->pos = start + len;
  return true;
}

/* `[e, e, ...]`, calling read_one for each element at the current position. */
typedef bool (*elem_fn)(fe_text *t, void *out);

static bool read_list(fe_text *t, const char *what, elem_fn read_one, size_t elem_size, void **v,
                      int32_t *n) {
  *v = NULL;
  *n = 0;
  fe_text_skip_space(t);
  size_t open = t->pos;
  if (!fe_text_accept(t, '['))
    return fe_text_fail(t, open, "expected '[' to start a list of %s, got %s", what,
                        fe_text_found(t, open));
  if (fe_text_accept(t, ']')) return true;
  int32_t cap = 0;
  do {
    fe_text_skip_space(t);
    if (*n >= FE_MAX_RANK) {
      free(*v);
      *v = NULL;
      return fe_text_fail(t, t->pos, "a list of %s holds at most %d entries", what, FE_MAX_RANK);
    }
    ir_grow(v, &cap, *n + 1, elem_size);
    if (!read_one(t, (char *)*v + elem_size * (size_t)*n)) {
      free(*v);
      *v = NULL;
      return false;
    }
    (*n)++;
  } while (fe_text_accept(t, ','));
  fe_text_skip_space(t);
  if (fe_text_accept(t, ']')) return true;
  free(*v);
  *v = NULL;
  return fe_text_fail(t, t->pos, "expected ',' or ']' in the list of %s, got %s", what,
                      fe_text_found(t, t->pos));
}

static bool read_dim_elem(fe_text *t, void *out) {
  size_t at = t->pos;
  ir_dim d;
  if (!fe_text_dim(t, t->n, &d)) return false;
  int64_t v;
  if (ir_dim_is_const(t->c->g->dims, d, &v) && v < 0)
    return fe_text_fail(t, at, "dim %lld is negative", (long long)v);
  *(ir_dim *)out = d;
  return true;
}

static bool read_int_elem(fe_text *t, void *out) { return fe_text_int(t, t->n, (int64_t *)out); }

bool fe_text_dims(fe_text *t, ir_dim **v, int32_t *n) {
  return read_list(t, "dims", read_dim_elem, sizeof(ir_dim), (void **)v, n);
}

bool fe_text_ints(fe_text *t, int64_t **v, int32_t *n) {
  return read_list(t, "integers", read_int_elem, sizeof(int64_t), (void **)v, n);
}

bool fe_text_dtype(fe_text *t, ir_dtype *out) {
  fe_text_skip_space(t);
  size_t start = t->pos, i = start;
  while (i < t->n && is_word(t->s[i])) i++;
  if (i > start && ir_dtype_parse(t->s + start, i - start, out)) {
    t->pos = i;
    return true;
  }
  return fe_text_fail(t, start, "unknown dtype %s; expected f32, f64, f16, bf16, i32, i64 or bool",
                      fe_text_found(t, start));
}

bool fe_text_type(fe_text *t, ir_type *out) {
  ir_dtype dt;
  if (!fe_text_dtype(t, &dt)) return false;
  fe_text_skip_space(t);
  if (t->pos >= t->n || t->s[t->pos] != '[')
    return fe_text_fail(t, t->pos, "expected '[' and the dims after the dtype, as in %s[T, 4] "
                        "(%s[] for a scalar)", ir_dtype_name(dt), ir_dtype_name(dt));
  ir_dim *dims;
  int32_t rank;
  if (!fe_text_dims(t, &dims, &rank)) return false;
  *out = ir_type_make(t->c->g, dt, rank, dims);
  free(dims);
  return true;
}
