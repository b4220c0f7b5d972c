/*
 * parse.c - reads the text form (.sqir) back into a graph: the inverse of
 * print.c. The grammar is in docs/ir.md, "Text form".
 *
 * A hand-written lexer feeds a recursive-descent parser with one token of
 * lookahead. The input is untrusted (fuzzers drive ir_parse directly), so:
 *  - every byte is either part of a token, whitespace, a comment, or an
 *    error `name:line:col: error: ...` pointing at it; nothing crashes;
 *  - the only recursion is region nesting, capped at MAX_REGION_DEPTH, and
 *    dim expressions, which ir_dim_parse caps itself;
 *  - lists (operands, results, ints, constant elements) are capped at
 *    MAX_LIST entries, and a constant may not hold more elements than its
 *    static type, so memory stays proportional to the input;
 *  - the first error stops the parse: one precise message beats a cascade.
 *
 * Dims are not tokens: a dim expression (`2*H`, `ceildiv(T, 64)`) is cut
 * out of the raw text up to the `,` `]` or `}` that ends it at parenthesis
 * depth 0 and handed to ir_dim_parse; the lexer then resumes after it.
 *
 * Names are resolved in one pass: a value must be defined (as a graph
 * argument, region argument or op result) before it is used, and each name
 * is defined once in the whole graph, as the printer guarantees. All-digit
 * names are anonymous: they resolve uses but the value gets no name.
 * Regions see the graph's whole symbol table; whether a region reads a value
 * from outside is the verifier's business, as is every other type rule.
 * The parser checks only what it needs to build the graph soundly: op
 * names, operand/result/region counts, attribute names, kinds and
 * presence, constant sizes, and the outputs' declared types against the
 * final yield (the graph has no other place to keep them).
 */
#include "ir.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAX_REGION_DEPTH = 64,
  MAX_LIST = 1 << 24, /* entries in any one list, constant elements included */
};

/* ---- tokens -------------------------------------------------------------- */

typedef enum tok_kind {
  T_EOF, T_ERROR, T_IDENT, T_VALUE, T_NUMBER, T_STRING,
  T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET,
  T_COMMA, T_COLON, T_EQUAL, T_CARET, T_AT, T_ARROW, T_MINUS,
} tok_kind;

typedef struct token {
  tok_kind kind;
  size_t start, len;  /* bytes of the source */
  int32_t line;       /* 1-based */
  size_t line_start;  /* offset of the first byte of the token's line */
} token;

/* ---- a hash table from names (slices of the source) to ids --------------- */

typedef struct sym {
  const char *key; /* NULL: empty slot */
  size_t len;
  int32_t id;
  ir_loc loc; /* where it was defined, for "first defined here" */
} sym;

typedef struct symtab {
  sym *slots;
  size_t cap, n; /* cap: 0 or a power of two, kept at most half full */
} symtab;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static sym *symtab_slot(const symtab *t, const char *key, size_t len) {
  size_t i = (size_t)hash_bytes(key, len) & (t->cap - 1);
  while (t->slots[i].key && (t->slots[i].len != len || memcmp(t->slots[i].key, key, len) != 0))
    i = (i + 1) & (t->cap - 1);
  return &t->slots[i];
}

static const sym *symtab_find(const symtab *t, const char *key, size_t len) {
  if (t->cap == 0) return NULL;
  const sym *s = symtab_slot(t, key, len);
  return s->key ? s : NULL;
}

/* Insert a key known to be absent. */
static void symtab_insert(symtab *t, const char *key, size_t len, int32_t id, ir_loc loc) {
  if (2 * (t->n + 1) > t->cap) {
    symtab bigger = {ir_xcalloc(t->cap ? 2 * t->cap : 64, sizeof(sym)), t->cap ? 2 * t->cap : 64,
                     t->n};
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].key) *symtab_slot(&bigger, t->slots[i].key, t->slots[i].len) = t->slots[i];
    free(t->slots);
    *t = bigger;
  }
  *symtab_slot(t, key, len) = (sym){key, len, id, loc};
  t->n++;
}

/* ---- parser state and errors --------------------------------------------- */

typedef struct parser {
  const char *src;
  size_t len;
  const char *name;     /* the caller's name, for diagnostics */
  ir_diag *diag;
  size_t pos;           /* lexer cursor: just after `tok` */
  int32_t line;         /* line of `pos` */
  size_t line_start;    /* offset where that line starts */
  token tok;            /* lookahead */
  bool failed;          /* an error was reported: unwind */
  ir_graph *g;
  const char *file;     /* `name` interned in the graph: op locations */
  const char *loc_file; /* the last file named by a loc(...), interned */
  symtab values;        /* value name -> ir_val */
  ir_loc yield_loc;     /* the last op of the graph body, for output errors */
} parser;

static int32_t clamp32(size_t v) { return v > INT32_MAX ? INT32_MAX : (int32_t)v; }

static ir_loc loc_of(const parser *p, const token *t) {
  return (ir_loc){p->name, t->line, clamp32(t->start - t->line_start + 1)};
}

static bool fail_at(parser *p, ir_loc loc, const char *fmt, ...) IR_PRINTF(3, 4);
static bool fail_at(parser *p, ir_loc loc, const char *fmt, ...) {
  if (p->failed) return false;
  p->failed = true;
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(p->diag, loc, fmt, ap);
  va_end(ap);
  return false;
}

/* Token text for messages, shortened: "'foo'" or "end of input". */
static const char *describe(const parser *p, const token *t, char *buf, size_t cap) {
  if (t->kind == T_EOF) return "end of input";
  if (t->kind == T_STRING) return "a string";
  int n = t->len > 40 ? 40 : (int)t->len;
  snprintf(buf, cap, "'%.*s%s'", n, p->src + t->start, t->len > 40 ? "..." : "");
  return buf;
}

/* "expected X, found Y" at the lookahead token. */
static bool fail_expected(parser *p, const char *what) {
  char buf[64];
  return fail_at(p, loc_of(p, &p->tok), "expected %s, found %s", what,
                 describe(p, &p->tok, buf, sizeof buf));
}

/* ---- lexer --------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident_char(char c) { return is_alpha(c) || is_digit(c) || c == '.'; }
static bool is_value_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '.' || c == '$' || c == '-';
}
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Skip whitespace and // comments starting at `i`, tracking lines. */
static size_t skip_space(parser *p, size_t i) {
  while (i < p->len) {
    char c = p->src[i];
    if (c == '\n') {
      p->line = p->line < INT32_MAX ? p->line + 1 : p->line;
      p->line_start = ++i;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      i++;
    } else if (c == '/' && i + 1 < p->len && p->src[i + 1] == '/') {
      while (i < p->len && p->src[i] != '\n') i++;
    } else {
      break;
    }
  }
  return i;
}


/* End of the string literal opening at `i`, or 0 after reporting an error.
 * Raw control bytes are refused so a file name never hides one. */
static size_t scan_string(parser *p, size_t i) {
  const char *s = p->src;
  token at = p->tok;
  for (i++; i < p->len && s[i] != '"'; i++) {
    unsigned char c = (unsigned char)s[i];
    at.start = i;
    if (c == '\n') break;
    if (c < 0x20 || c == 0x7f)
      return fail_at(p, loc_of(p, &at), "control byte 0x%02X in a string (write \\%02X)", c, c), 0;
    if (c != '\\') continue;
    if (i + 1 < p->len && (s[i + 1] == '"' || s[i + 1] == '\\')) {
      i++;
    } else if (i + 2 < p->len && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      if (s[i + 1] == '0' && s[i + 2] == '0')
        return fail_at(p, loc_of(p, &at), "NUL byte in a string"), 0;
      i += 2;
    } else {
      return fail_at(p, loc_of(p, &at), "invalid escape in a string: use \\\", \\\\ or \\HH"), 0;
    }
  }
  if (i >= p->len || s[i] != '"')
    return fail_at(p, loc_of(p, &p->tok), "unterminated string"), 0;
  return i + 1;
}

static tok_kind punctuation(char c) {
  switch (c) {
  case '(': return T_LPAREN;
  case ')': return T_RPAREN;
  case '{': return T_LBRACE;
  case '}': return T_RBRACE;
  case '[': return T_LBRACKET;
  case ']': return T_RBRACKET;
  case ',': return T_COMMA;
  case ':': return T_COLON;
  case '=': return T_EQUAL;
  case '^': return T_CARET;
  case '@': return T_AT;
  default: return T_ERROR;
  }
}

/* Read the token at p->pos into p->tok. A bad byte becomes T_ERROR with an
 * error reported at it. */
static void next(parser *p) {
  size_t i = skip_space(p, p->pos);
  const char *s = p->src;
  p->tok = (token){T_EOF, i, 0, p->line, p->line_start};
  if (i >= p->len) {
    p->pos = i;
    return;
  }
  char c = s[i];
  size_t end = i + 1;
  tok_kind kind;
  if (is_alpha(c)) {
    while (end < p->len && is_ident_char(s[end])) end++;
    kind = T_IDENT;
  } else if (c == '%') {
    while (end < p->len && is_value_char(s[end])) end++;
    kind = end > i + 1 ? T_VALUE : T_ERROR;
    if (kind == T_ERROR) fail_at(p, loc_of(p, &p->tok), "expected a value name after '%%'");
  } else if (is_digit(c) || (c == '-' && i + 1 < p->len && is_digit(s[i + 1]))) {
    end = i + ir_decimal_length(s + i, p->len - i); /* at least the digit seen */
    kind = T_NUMBER;
  } else if (c == '-') {
    kind = T_MINUS;
    if (i + 1 < p->len && s[i + 1] == '>') {
      end = i + 2;
      kind = T_ARROW;
    }
  } else if (c == '"') {
    end = scan_string(p, i);
    kind = end ? T_STRING : T_ERROR;
    if (!end) end = i + 1;
  } else {
    kind = punctuation(c);
    if (kind == T_ERROR) {
      unsigned char u = (unsigned char)c;
      if (u >= 0x20 && u < 0x7f)
        fail_at(p, loc_of(p, &p->tok), "unexpected character '%c'", c);
      else
        fail_at(p, loc_of(p, &p->tok), "unexpected byte 0x%02X", u);
    }
  }
  p->tok.kind = kind;
  p->tok.len = end - i;
  p->pos = end;
}

/* Move the lexer to offset `to` (at or after the lookahead's start) and read
 * the token there: used after text the lexer did not tokenize (dims). */
static void seek(parser *p, size_t to) {
  p->line = p->tok.line;
  p->line_start = p->tok.line_start;
  for (size_t i = p->tok.start; i < to; i++)
    if (p->src[i] == '\n') {
      p->line = p->line < INT32_MAX ? p->line + 1 : p->line;
      p->line_start = i + 1;
    }
  p->pos = to;
  next(p);
}

/* The location of byte `at`, at or after the lookahead's start. */
static ir_loc loc_at_offset(const parser *p, size_t at) {
  token t = p->tok;
  for (size_t i = p->tok.start; i < at; i++)
    if (p->src[i] == '\n') {
      t.line = t.line < INT32_MAX ? t.line + 1 : t.line;
      t.line_start = i + 1;
    }
  t.start = at;
  return loc_of(p, &t);
}

static bool accept(parser *p, tok_kind k) {
  if (p->tok.kind != k) return false;
  next(p);
  return true;
}

static bool expect(parser *p, tok_kind k, const char *what) {
  if (p->tok.kind != k) return fail_expected(p, what);
  next(p);
  return true;
}

static bool tok_is(const parser *p, const token *t, const char *word) {
  size_t n = strlen(word);
  return t->kind == T_IDENT && t->len == n && memcmp(p->src + t->start, word, n) == 0;
}

/* Does the lookahead '{' open a region (`{ ^(...)`) rather than attributes? */
static bool brace_opens_region(parser *p) {
  parser probe = *p; /* skip_space tracks lines: look without moving */
  size_t i = skip_space(&probe, p->tok.start + 1);
  return i < p->len && p->src[i] == '^';
}

/* Append to a malloc'ed array, refusing to grow past MAX_LIST entries. */
static bool push(parser *p, void **data, int32_t *n, int32_t *cap, size_t size, const void *item,
                 const char *what) {
  if (*n >= MAX_LIST)
    return fail_at(p, loc_of(p, &p->tok), "more than %d %s", MAX_LIST, what);
  ir_grow(data, cap, *n + 1, size);
  memcpy((char *)*data + (size_t)*n * size, item, size);
  (*n)++;
  return true;
}

/* ---- numbers ------------------------------------------------------------- */

static bool number_is_integer(const parser *p, const token *t) {
  for (size_t i = 0; i < t->len; i++)
    if (!is_digit(p->src[t->start + i]) && p->src[t->start + i] != '-') return false;
  return true;
}

/* An integer literal. `what` names the attribute or constant for errors. */
static bool parse_int(parser *p, int64_t *out, const char *what) {
  if (p->tok.kind != T_NUMBER || !number_is_integer(p, &p->tok)) {
    char buf[96];
    snprintf(buf, sizeof buf, "an integer for %s", what);
    return fail_expected(p, buf);
  }
  ir_buf text = {0};
  ir_buf_putn(&text, p->src + p->tok.start, p->tok.len);
  errno = 0;
  long long v = strtoll(text.s, NULL, 10);
  bool range = errno == ERANGE;
  ir_buf_free(&text);
  if (range) return fail_at(p, loc_of(p, &p->tok), "integer out of range for %s", what);
  *out = v;
  next(p);
  return true;
}

/* A real: a number, nan, inf or -inf. Overflowing literals are refused
 * (the printer spells infinity); gradual underflow is fine. */
static bool parse_real(parser *p, double *out, const char *what) {
  token t = p->tok;
  bool neg = t.kind == T_MINUS;
  if (neg) next(p);
  if (p->tok.kind == T_IDENT && (tok_is(p, &p->tok, "nan") || tok_is(p, &p->tok, "inf"))) {
    double v = tok_is(p, &p->tok, "nan") ? NAN : INFINITY;
    *out = neg ? -v : v;
    next(p);
    return true;
  }
  if (neg || p->tok.kind != T_NUMBER) {
    char buf[96];
    snprintf(buf, sizeof buf, "a real number for %s", what);
    return fail_expected(p, buf);
  }
  ir_buf text = {0};
  ir_buf_putn(&text, p->src + p->tok.start, p->tok.len);
  double v = strtod(text.s, NULL);
  ir_buf_free(&text);
  if (isinf(v))
    return fail_at(p, loc_of(p, &p->tok), "real number out of range for %s (write inf)", what);
  *out = v;
  next(p);
  return true;
}

static bool parse_bool(parser *p, int64_t *out, const char *what) {
  if (!tok_is(p, &p->tok, "true") && !tok_is(p, &p->tok, "false")) {
    char buf[96];
    snprintf(buf, sizeof buf, "true or false for %s", what);
    return fail_expected(p, buf);
  }
  *out = tok_is(p, &p->tok, "true");
  next(p);
  return true;
}

/* The nearest float, as C's conversion rounds, without its undefined
 * behaviour beyond FLT_MAX: halfway past FLT_MAX rounds to infinity. */
static double round_to_float(double x) {
  if (isnan(x) || isinf(x) || fabs(x) <= FLT_MAX) return (double)(float)x;
  return copysign(fabs(x) >= 0x1.ffffffp127 ? INFINITY : FLT_MAX, x);
}

/* ---- dims and types ------------------------------------------------------ */

static bool is_dim_char(char c) {
  return is_alpha(c) || is_digit(c) || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
         c == '+' || c == '-' || c == '*' || c == '(' || c == ')' || c == ',';
}

/* End of the dim expression starting at `i`: the first `,` `)` `]` `}` at
 * depth 0 or any byte a dim cannot hold, trailing whitespace excluded. */
static size_t dim_extent(const parser *p, size_t start) {
  size_t depth = 0, i = start;
  for (; i < p->len && is_dim_char(p->src[i]); i++) {
    char c = p->src[i];
    if (c == '(') depth++;
    if ((c == ')' || c == ',') && depth == 0) break;
    if (c == ')') depth--;
  }
  while (i > start && (p->src[i - 1] == ' ' || p->src[i - 1] == '\t' || p->src[i - 1] == '\r' ||
                   p->src[i - 1] == '\n'))
    i--;
  return i;
}

static bool parse_dim(parser *p, ir_dim *out) {
  if (p->failed) return false;
  size_t start = p->tok.start, end = dim_extent(p, start);
  if (end <= start) return fail_expected(p, "a dim expression");
  ir_buf err = {0};
  size_t consumed = 0, err_pos = 0;
  ir_dim d = ir_dim_parse(p->g->dims, p->src + start, end - start, &consumed, &err, &err_pos);
  if (d == IR_DIM_INVALID) {
    if (err_pos > end - start) err_pos = end - start;
    fail_at(p, loc_at_offset(p, start + err_pos), "%s", err.s ? err.s : "invalid dim expression");
  } else if (consumed != end - start) {
    fail_at(p, loc_at_offset(p, start + consumed), "unexpected text in a dim expression");
  }
  ir_buf_free(&err);
  if (p->failed) return false;
  *out = d;
  seek(p, end);
  return true;
}

static bool parse_type(parser *p, ir_type *out) {
  ir_dtype dt;
  if (p->tok.kind != T_IDENT) return fail_expected(p, "a type such as f32[B, 8]");
  if (!ir_dtype_parse(p->src + p->tok.start, p->tok.len, &dt)) {
    char buf[64];
    return fail_at(p, loc_of(p, &p->tok), "unknown dtype %s (f32, f64, f16, bf16, i32, i64, bool)",
                   describe(p, &p->tok, buf, sizeof buf));
  }
  next(p);
  if (!expect(p, T_LBRACKET, "'[' after the dtype")) return false;
  ir_dim *dims = NULL;
  int32_t n = 0, cap = 0;
  bool ok = true;
  if (!accept(p, T_RBRACKET)) {
    do {
      ir_dim d = IR_DIM_INVALID;
      ok = parse_dim(p, &d) && push(p, (void **)&dims, &n, &cap, sizeof d, &d, "dims");
    } while (ok && accept(p, T_COMMA));
    ok = ok && expect(p, T_RBRACKET, "',' or ']' in the type");
  }
  if (ok) *out = ir_type_make(p->g, dt, n, dims);
  free(dims);
  return ok;
}

/* ---- values -------------------------------------------------------------- */

static int name_width(size_t len) { return len > 100 ? 100 : (int)len; }

static bool is_anonymous(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i])) return false;
  return true;
}

/* Bind the name of VALUE token `t` (without its '%') to v. */
static bool define_value(parser *p, const token *t, ir_val v) {
  const char *key = p->src + t->start + 1;
  size_t len = t->len - 1;
  const sym *prev = symtab_find(&p->values, key, len);
  if (prev) {
    fail_at(p, loc_of(p, t), "value '%%%.*s' is defined twice", name_width(len), key);
    ir_note_at(p->diag, prev->loc, "first defined here");
    return false;
  }
  symtab_insert(&p->values, key, len, v, loc_of(p, t));
  if (!is_anonymous(key, len)) ir_v(p->g, v)->name = ir_arena_strndup(p->g->arena, key, len);
  return true;
}

static bool use_value(parser *p, ir_val *out) {
  if (p->tok.kind != T_VALUE) return fail_expected(p, "a value such as %x");
  const char *key = p->src + p->tok.start + 1;
  size_t len = p->tok.len - 1;
  const sym *s = symtab_find(&p->values, key, len);
  if (!s)
    return fail_at(p, loc_of(p, &p->tok), "use of undefined value '%%%.*s'", name_width(len), key);
  *out = s->id;
  next(p);
  return true;
}

/* `%x: type`: a graph or region argument. */
static bool parse_arg(parser *p, ir_blockid b, bool is_param) {
  token name = p->tok;
  ir_type t = {IR_F32, 0, NULL};
  if (!expect(p, T_VALUE, "an argument such as %x: f32[T]") ||
      !expect(p, T_COLON, "':' and the argument's type") || !parse_type(p, &t))
    return false;
  ir_val v = b == p->g->body ? ir_graph_add_input(p->g, t, NULL, is_param)
                             : ir_block_add_arg(p->g, b, t, NULL);
  return define_value(p, &name, v);
}

/* ---- ops ----------------------------------------------------------------- */

/* What the text says about one op before it is built. */
typedef struct op_text {
  token name;
  ir_opkind kind;
  const ir_opinfo *info;
  token *results; /* VALUE tokens */
  int32_t n_results, cap_results;
  ir_type *types;
  int32_t n_types, cap_types;
  ir_val *in;
  int32_t n_in, cap_in;
  ir_attr *attrs; /* info->n_attrs entries */
  ir_loc loc;
} op_text;

static void op_text_free(op_text *t) {
  free(t->results);
  free(t->types);
  free(t->in);
  free(t->attrs);
}

static bool push_type(parser *p, op_text *t) {
  ir_type ty = {IR_F32, 0, NULL};
  return parse_type(p, &ty) &&
         push(p, (void **)&t->types, &t->n_types, &t->cap_types, sizeof ty, &ty, "results");
}

static bool push_result_name(parser *p, op_text *t) {
  if (p->tok.kind != T_VALUE) return fail_expected(p, "a result name such as %y");
  if (!push(p, (void **)&t->results, &t->n_results, &t->cap_results, sizeof(token), &p->tok,
            "results"))
    return false;
  next(p);
  return true;
}

/* `%a, %b: T1, T2 =` or `%a: T1, %b: T2 =`. */
static bool parse_results(parser *p, op_text *t) {
  token first = p->tok;
  if (!push_result_name(p, t)) return false;
  while (accept(p, T_COMMA))
    if (!push_result_name(p, t)) return false;
  bool one_name = t->n_results == 1;
  if (!expect(p, T_COLON, "':' and the result types") || !push_type(p, t)) return false;
  while (accept(p, T_COMMA)) {
    if (one_name && p->tok.kind == T_VALUE) {
      if (!push_result_name(p, t) || !expect(p, T_COLON, "':' and the result's type")) return false;
    }
    if (!push_type(p, t)) return false;
  }
  if (t->n_types != t->n_results)
    return fail_at(p, loc_of(p, &first), "%" PRId32 " result name%s but %" PRId32
                   " result type%s", t->n_results, t->n_results == 1 ? "" : "s", t->n_types,
                   t->n_types == 1 ? "" : "s");
  return expect(p, T_EQUAL, "'=' after the result types");
}

static bool parse_operands(parser *p, op_text *t) {
  do {
    ir_val v = IR_NONE;
    if (!use_value(p, &v) ||
        !push(p, (void **)&t->in, &t->n_in, &t->cap_in, sizeof v, &v, "operands"))
      return false;
  } while (accept(p, T_COMMA));
  return true;
}

static bool check_counts(parser *p, const op_text *t) {
  const ir_opinfo *info = t->info;
  ir_loc at = loc_of(p, &t->name);
  if (info->n_out >= 0 && t->n_results != info->n_out)
    return fail_at(p, at, "op '%s' has %" PRId32 " result%s, not %" PRId32, info->name,
                   info->n_out, info->n_out == 1 ? "" : "s", t->n_results);
  if (t->n_in >= info->min_in && (info->max_in < 0 || t->n_in <= info->max_in)) return true;
  if (info->max_in < 0)
    return fail_at(p, at, "op '%s' takes at least %" PRId32 " operand%s, not %" PRId32,
                   info->name, info->min_in, info->min_in == 1 ? "" : "s", t->n_in);
  if (info->min_in == info->max_in)
    return fail_at(p, at, "op '%s' takes %" PRId32 " operand%s, not %" PRId32, info->name,
                   info->min_in, info->min_in == 1 ? "" : "s", t->n_in);
  return fail_at(p, at, "op '%s' takes %" PRId32 " to %" PRId32 " operands, not %" PRId32,
                 info->name, info->min_in, info->max_in, t->n_in);
}

/* ---- attributes ---------------------------------------------------------- */

static bool parse_enum(parser *p, const ir_attr_decl *decl, int64_t *out) {
  for (int64_t i = 0; p->tok.kind == T_IDENT && decl->enum_names[i]; i++)
    if (tok_is(p, &p->tok, decl->enum_names[i])) {
      *out = i;
      next(p);
      return true;
    }
  ir_buf names = {0};
  for (int i = 0; decl->enum_names[i]; i++)
    ir_buf_printf(&names, "%s%s", i ? ", " : "", decl->enum_names[i]);
  char buf[64];
  fail_at(p, loc_of(p, &p->tok), "attribute '%s' must be one of %s, found %s", decl->name, names.s,
          describe(p, &p->tok, buf, sizeof buf));
  ir_buf_free(&names);
  return false;
}

static bool parse_int_list(parser *p, ir_attr *a, const char *what) {
  if (!expect(p, T_LBRACKET, "'[' to start a list of integers")) return false;
  int64_t *v = NULL;
  int32_t n = 0, cap = 0;
  bool ok = true;
  if (!accept(p, T_RBRACKET)) {
    do {
      int64_t x = 0;
      ok = parse_int(p, &x, what) && push(p, (void **)&v, &n, &cap, sizeof x, &x, "list entries");
    } while (ok && accept(p, T_COMMA));
    ok = ok && expect(p, T_RBRACKET, "',' or ']' in the list");
  }
  if (ok) {
    a->u.ints.n = n;
    a->u.ints.v = ir_arena_memdup(p->g->arena, v, sizeof(int64_t) * (size_t)n);
  }
  free(v);
  return ok;
}

static bool parse_dim_list(parser *p, ir_attr *a) {
  if (!expect(p, T_LBRACKET, "'[' to start a list of dims")) return false;
  ir_dim *v = NULL;
  int32_t n = 0, cap = 0;
  bool ok = true;
  if (!accept(p, T_RBRACKET)) {
    do {
      ir_dim d = IR_DIM_INVALID;
      ok = parse_dim(p, &d) && push(p, (void **)&v, &n, &cap, sizeof d, &d, "list entries");
    } while (ok && accept(p, T_COMMA));
    ok = ok && expect(p, T_RBRACKET, "',' or ']' in the list");
  }
  if (ok) {
    a->u.dims.n = n;
    a->u.dims.v = ir_arena_memdup(p->g->arena, v, sizeof(ir_dim) * (size_t)n);
  }
  free(v);
  return ok;
}

/* Elements of a constant being read, in the dtype's category. */
typedef struct elements {
  double *f;
  int64_t *i;
  int32_t n, cap;
} elements;

static bool parse_element(parser *p, ir_dtype dt, elements *e) {
  if (ir_dtype_is_float(dt)) {
    double x = 0;
    if (!parse_real(p, &x, "a float constant")) return false;
    x = dt == IR_F64 ? x : round_to_float(x);
    return push(p, (void **)&e->f, &e->n, &e->cap, sizeof x, &x, "elements");
  }
  int64_t x = 0;
  token at = p->tok;
  if (dt == IR_BOOL ? !parse_bool(p, &x, "a bool constant") : !parse_int(p, &x, "an int constant"))
    return false;
  if (dt == IR_I32 && (x < INT32_MIN || x > INT32_MAX))
    return fail_at(p, loc_of(p, &at), "%" PRId64 " is out of range for i32", x);
  return push(p, (void **)&e->i, &e->n, &e->cap, sizeof x, &x, "elements");
}

/* Reported at the first element too many, before it is stored. */
static bool fail_too_many_elements(parser *p, ir_type type, int64_t numel) {
  ir_buf ty = {0};
  ir_print_type(p->g, type, &ty);
  if (numel < 0)
    fail_at(p, loc_of(p, &p->tok), "a constant of type %s holds one value (a splat): its shape "
            "is not static", ty.s);
  else if (numel > MAX_LIST)
    fail_at(p, loc_of(p, &p->tok), "a constant of type %s can only be a splat: literals hold at "
            "most %d elements", ty.s, MAX_LIST);
  else
    fail_at(p, loc_of(p, &p->tok), "too many elements for a constant of type %s (%" PRId64 ")",
            ty.s, numel);
  ir_buf_free(&ty);
  return false;
}

/* A constant's value: one element (splat) or all of them, row-major,
 * spelled in the dtype of the op's first result. */
static bool parse_tensor(parser *p, const op_text *t, ir_attr *a) {
  if (t->n_types < 1)
    return fail_at(p, loc_of(p, &p->tok), "a constant value needs the op's result type");
  ir_type type = t->types[0];
  int64_t numel = ir_type_static_numel(p->g, type);
  int64_t limit = numel > 1 && numel <= MAX_LIST ? numel : 1;
  token start = p->tok;
  elements e = {NULL, NULL, 0, 0};
  bool ok = true;
  if (accept(p, T_LBRACKET)) {
    if (!accept(p, T_RBRACKET)) {
      do
        ok = e.n < limit ? parse_element(p, type.dtype, &e)
                         : fail_too_many_elements(p, type, numel);
      while (ok && accept(p, T_COMMA));
      ok = ok && expect(p, T_RBRACKET, "',' or ']' in the constant");
    }
  } else {
    ok = parse_element(p, type.dtype, &e);
  }
  if (ok && e.n != 1 && e.n != numel) {
    ir_buf ty = {0};
    ir_print_type(p->g, type, &ty);
    if (numel < 0)
      fail_at(p, loc_of(p, &start), "a constant of type %s holds one value (a splat), found %"
              PRId32, ty.s, e.n);
    else
      fail_at(p, loc_of(p, &start), "a constant of type %s needs 1 or %" PRId64
              " elements, found %" PRId32, ty.s, numel, e.n);
    ir_buf_free(&ty);
    ok = false;
  }
  if (ok) {
    ir_tensor_data *d = ir_arena_alloc(p->g->arena, sizeof *d);
    d->n = e.n;
    if (ir_dtype_is_float(type.dtype))
      d->f = ir_arena_memdup(p->g->arena, e.f, sizeof(double) * (size_t)e.n);
    else
      d->i = ir_arena_memdup(p->g->arena, e.i, sizeof(int64_t) * (size_t)e.n);
    a->u.t = d;
  }
  free(e.f);
  free(e.i);
  return ok;
}

static bool parse_attr_value(parser *p, const op_text *t, const ir_attr_decl *decl, ir_attr *a) {
  char what[64];
  snprintf(what, sizeof what, "attribute '%s'", decl->name);
  switch (decl->kind) {
  case IR_ATTR_INT: return parse_int(p, &a->u.i, what);
  case IR_ATTR_FLOAT: return parse_real(p, &a->u.f, what);
  case IR_ATTR_BOOL: return parse_bool(p, &a->u.i, what);
  case IR_ATTR_ENUM: return parse_enum(p, decl, &a->u.i);
  case IR_ATTR_DIM: return parse_dim(p, &a->u.d);
  case IR_ATTR_INTS: return parse_int_list(p, a, what);
  case IR_ATTR_DIMS: return parse_dim_list(p, a);
  case IR_ATTR_TENSOR: return parse_tensor(p, t, a);
  }
  return false;
}

/* `{name = value, ...}` into t->attrs. */
static bool parse_attrs(parser *p, op_text *t) {
  next(p); /* '{' */
  if (accept(p, T_RBRACE)) return true;
  do {
    token name = p->tok;
    if (name.kind != T_IDENT) return fail_expected(p, "an attribute name");
    char key[64] = "";
    if (name.len < sizeof key) memcpy(key, p->src + name.start, name.len);
    int32_t idx = name.len < sizeof key ? ir_attr_index(t->kind, key) : -1;
    if (idx < 0)
      return fail_at(p, loc_of(p, &name), "op '%s' has no attribute '%.*s'", t->info->name,
                     name_width(name.len), p->src + name.start);
    ir_attr *a = &t->attrs[idx];
    if (a->present) return fail_at(p, loc_of(p, &name), "attribute '%s' given twice", key);
    next(p);
    if (!expect(p, T_EQUAL, "'=' after the attribute name") ||
        !parse_attr_value(p, t, &t->info->attrs[idx], a))
      return false;
    a->present = true;
  } while (accept(p, T_COMMA));
  return expect(p, T_RBRACE, "',' or '}' after the attribute");
}

static bool check_required_attrs(parser *p, const op_text *t) {
  for (int32_t i = 0; i < t->info->n_attrs; i++)
    if (t->info->attrs[i].required && !t->attrs[i].present)
      return fail_at(p, loc_of(p, &t->name), "op '%s' needs attribute '%s'", t->info->name,
                     t->info->attrs[i].name);
  return true;
}

/* ---- locations ----------------------------------------------------------- */

/* The file name a STRING token spells, interned in the graph: the parse's
 * own name and the last loc file are reused, so a file printed with
 * locations costs one copy per file switch, not one per op. */
static const char *intern_file(parser *p, const token *t) {
  const char *s = p->src + t->start + 1, *end = p->src + t->start + t->len - 1;
  char *text = ir_xmalloc(t->len);
  size_t n = 0;
  for (; s < end; s++) {
    if (*s != '\\') {
      text[n++] = *s;
    } else if (s[1] == '"' || s[1] == '\\') {
      text[n++] = *++s;
    } else { /* \HH, checked by the lexer */
      char hex[3] = {s[1], s[2], 0};
      text[n++] = (char)strtol(hex, NULL, 16);
      s += 2;
    }
  }
  text[n] = 0;
  const char *interned;
  if (strcmp(text, p->file) == 0)
    interned = p->file;
  else if (p->loc_file && strcmp(text, p->loc_file) == 0)
    interned = p->loc_file;
  else
    interned = p->loc_file = ir_arena_strdup(p->g->arena, text);
  free(text);
  return interned;
}

static bool parse_loc_int(parser *p, int32_t *out) {
  int64_t v = 0;
  token at = p->tok;
  if (!parse_int(p, &v, "a location")) return false;
  if (v < 0 || v > INT32_MAX) return fail_at(p, loc_of(p, &at), "location out of range");
  *out = (int32_t)v;
  return true;
}

/* `loc("file":line:col)`: where the op came from (a model file, say). */
static bool parse_loc(parser *p, ir_loc *out) {
  next(p); /* loc */
  if (!expect(p, T_LPAREN, "'(' after loc")) return false;
  if (p->tok.kind != T_STRING) return fail_expected(p, "a quoted file name");
  out->file = intern_file(p, &p->tok);
  next(p);
  return expect(p, T_COLON, "':' and a line") && parse_loc_int(p, &out->line) &&
         expect(p, T_COLON, "':' and a column") && parse_loc_int(p, &out->col) &&
         expect(p, T_RPAREN, "')' to close loc");
}

/* ---- ops, regions, blocks ------------------------------------------------ */

static bool parse_op(parser *p, ir_blockid b, int depth);

/* Ops up to the '}' that closes the block (not consumed). */
static bool parse_block_ops(parser *p, ir_blockid b, int depth) {
  while (p->tok.kind != T_RBRACE) {
    if (p->tok.kind == T_EOF) return fail_expected(p, "'}' to close the block");
    if (!parse_op(p, b, depth)) return false;
  }
  return true;
}

/* `{ ^(%a: T, ...): ops }` into the region block b. */
static bool parse_region(parser *p, ir_blockid b, int depth) {
  if (depth > MAX_REGION_DEPTH)
    return fail_at(p, loc_of(p, &p->tok), "regions nested deeper than %d", MAX_REGION_DEPTH);
  if (!expect(p, T_LBRACE, "'{' to open the op's region") ||
      !expect(p, T_CARET, "'^(' to list the region's arguments") ||
      !expect(p, T_LPAREN, "'(' after '^'"))
    return false;
  if (!accept(p, T_RPAREN)) {
    do
      if (!parse_arg(p, b, false)) return false;
    while (accept(p, T_COMMA));
    if (!expect(p, T_RPAREN, "',' or ')' after the region argument")) return false;
  }
  return expect(p, T_COLON, "':' after the region arguments") && parse_block_ops(p, b, depth) &&
         expect(p, T_RBRACE, "'}'");
}

/* Everything up to the regions: results, name, operands, attrs, loc. */
static bool parse_op_head(parser *p, op_text *t) {
  if (p->tok.kind == T_VALUE && !parse_results(p, t)) return false;
  t->name = p->tok;
  if (t->name.kind != T_IDENT) return fail_expected(p, "an op name");
  if (!ir_opkind_parse(p->src + t->name.start, t->name.len, &t->kind))
    return fail_at(p, loc_of(p, &t->name), "unknown op '%.*s'", name_width(t->name.len),
                   p->src + t->name.start);
  t->info = ir_opinfo_of(t->kind);
  next(p);
  /* Ops that take no operands never read the next line's results. */
  if (t->info->max_in != 0 && p->tok.kind == T_VALUE && !parse_operands(p, t)) return false;
  if (!check_counts(p, t)) return false;
  t->attrs = ir_xcalloc((size_t)t->info->n_attrs + 1, sizeof(ir_attr));
  if (p->tok.kind == T_LBRACE && !brace_opens_region(p) && !parse_attrs(p, t)) return false;
  if (!check_required_attrs(p, t)) return false;
  t->loc = loc_of(p, &t->name);
  t->loc.file = p->file;
  return !tok_is(p, &p->tok, "loc") || parse_loc(p, &t->loc);
}

static bool parse_op_text(parser *p, ir_blockid b, int depth, op_text *t) {
  if (!parse_op_head(p, t)) return false;
  ir_graph *g = p->g;
  ir_opid op = ir_op_new(g, t->kind, t->n_in, t->in, t->n_results, t->types, t->loc);
  memcpy(ir_o(g, op)->attrs, t->attrs, sizeof(ir_attr) * (size_t)t->info->n_attrs);
  ir_op_append(g, b, op);
  for (int32_t i = 0; i < t->n_results; i++)
    if (!define_value(p, &t->results[i], ir_o(g, op)->out[i])) return false;
  if (depth == 0) p->yield_loc = loc_of(p, &t->name);
  for (int32_t r = 0; r < t->info->n_regions; r++)
    if (!parse_region(p, ir_o(g, op)->regions[r], depth + 1)) return false;
  if (t->info->n_regions == 0 && p->tok.kind == T_LBRACE)
    return fail_at(p, loc_of(p, &p->tok), "op '%s' has no region", t->info->name);
  return true;
}

static bool parse_op(parser *p, ir_blockid b, int depth) {
  op_text t = {0};
  bool ok = parse_op_text(p, b, depth, &t);
  op_text_free(&t);
  return ok;
}

/* ---- the graph ----------------------------------------------------------- */

/* The body's yield must give the declared outputs: the graph keeps output
 * types nowhere else, so this is where the text's promise is checked. */
static bool check_outputs(parser *p, const ir_type *types, const token *close) {
  ir_graph *g = p->g;
  ir_opid y = ir_block_terminator(g, g->body);
  if (y == IR_NONE || ir_o(g, y)->kind != IR_OP_YIELD)
    return fail_at(p, loc_of(p, close), "the graph body must end with yield");
  const ir_op *op = ir_o(g, y);
  if (op->n_in != g->n_outputs)
    return fail_at(p, p->yield_loc,
                   "yield gives %" PRId32 " value%s but the graph declares %" PRId32 " output%s",
                   op->n_in, op->n_in == 1 ? "" : "s", g->n_outputs, g->n_outputs == 1 ? "" : "s");
  for (int32_t i = 0; i < op->n_in; i++) {
    ir_type got = ir_vtype(g, op->in[i]);
    if (ir_type_equal(got, types[i])) continue;
    ir_buf a = {0}, b = {0};
    ir_print_type(g, types[i], &a);
    ir_print_type(g, got, &b);
    fail_at(p, p->yield_loc, "output '%s' is declared %s but yield gives %s", g->output_names[i],
            a.s, b.s);
    ir_buf_free(&a);
    ir_buf_free(&b);
    return false;
  }
  return true;
}

/* `-> (name: type, ...)` into g->output_names; the types into *types. */
static bool parse_outputs(parser *p, ir_type **types) {
  ir_graph *g = p->g;
  const char **names = NULL;
  int32_t n = 0, cap = 0, n_types = 0, cap_types = 0;
  symtab seen = {NULL, 0, 0};
  bool ok = expect(p, T_ARROW, "'->' and the outputs") && expect(p, T_LPAREN, "'(' after '->'");
  if (ok && !accept(p, T_RPAREN)) {
    do {
      token name = p->tok;
      ir_type t = {IR_F32, 0, NULL};
      ok = expect(p, T_IDENT, "an output such as y: f32[T]");
      if (ok && symtab_find(&seen, p->src + name.start, name.len))
        ok = fail_at(p, loc_of(p, &name), "output '%.*s' declared twice", name_width(name.len),
                     p->src + name.start);
      if (ok) symtab_insert(&seen, p->src + name.start, name.len, n, loc_of(p, &name));
      const char *copy = ok ? ir_arena_strndup(g->arena, p->src + name.start, name.len) : NULL;
      ok = ok && expect(p, T_COLON, "':' and the output's type") && parse_type(p, &t) &&
           push(p, (void **)&names, &n, &cap, sizeof copy, &copy, "outputs") &&
           push(p, (void **)types, &n_types, &cap_types, sizeof t, &t, "outputs");
    } while (ok && accept(p, T_COMMA));
    ok = ok && expect(p, T_RPAREN, "',' or ')' after the output");
  }
  if (ok) {
    g->output_names = ir_arena_memdup(g->arena, names, sizeof(const char *) * (size_t)n);
    g->n_outputs = n;
  }
  free(names);
  free(seen.slots);
  return ok;
}

/* `graph @name(` : creates the graph. */
static bool parse_graph_name(parser *p) {
  if (!tok_is(p, &p->tok, "graph")) return fail_expected(p, "'graph'");
  next(p);
  if (!expect(p, T_AT, "'@' and the graph's name")) return false;
  if (p->tok.kind != T_IDENT) return fail_expected(p, "the graph's name");
  p->g = ir_graph_new(NULL);
  p->g->name = ir_arena_strndup(p->g->arena, p->src + p->tok.start, p->tok.len);
  p->file = ir_arena_strdup(p->g->arena, p->name);
  next(p);
  return true;
}

static bool parse_graph_args(parser *p) {
  if (!expect(p, T_LPAREN, "'(' and the graph's arguments")) return false;
  if (accept(p, T_RPAREN)) return true;
  do {
    bool is_param = tok_is(p, &p->tok, "param");
    if (is_param) next(p);
    if (!parse_arg(p, p->g->body, is_param)) return false;
  } while (accept(p, T_COMMA));
  return expect(p, T_RPAREN, "',' or ')' after the argument");
}

/* The optional `memplan` after the results (ir_graph.plan_memory). */
static void parse_graph_flags(parser *p) {
  if (!tok_is(p, &p->tok, "memplan")) return;
  p->g->plan_memory = true;
  next(p);
}

static bool parse_graph(parser *p) {
  ir_type *types = NULL;
  bool ok = parse_graph_name(p) && parse_graph_args(p) && parse_outputs(p, &types);
  if (ok) parse_graph_flags(p);
  ok = ok && expect(p, T_LBRACE, "'{' to open the graph body") &&
            parse_block_ops(p, p->g->body, 0);
  token close = p->tok;
  ok = ok && expect(p, T_RBRACE, "'}'") && check_outputs(p, types, &close);
  if (ok && p->tok.kind != T_EOF) ok = fail_expected(p, "end of input after the graph");
  free(types);
  return ok;
}

ir_graph *ir_parse(const char *buf, size_t len, const char *name, ir_diag *d) {
  ir_diag fallback;
  if (!d) {
    ir_diag_init(&fallback);
    d = &fallback;
  }
  parser p;
  memset(&p, 0, sizeof p);
  p.src = buf ? buf : "";
  p.len = buf ? len : 0;
  p.name = name ? name : "<input>";
  p.diag = d;
  p.line = 1;
  ir_source src = {p.name, p.src, p.len};
  bool registered = ir_diag_add_source(d, &src);
  next(&p);
  bool ok = parse_graph(&p);
  if (registered) ir_diag_remove_source(d, &src);
  free(p.values.slots);
  if (!ok) {
    ir_graph_free(p.g);
    return NULL;
  }
  return p.g;
}
