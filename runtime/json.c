/*
 * json.c - the strict JSON reader (see json.h).
 *
 * The parser runs twice over the input with the same code. The first pass
 * builds nothing: it validates the syntax and counts the nodes and the bytes
 * of decoded strings. One block of exactly that size is then allocated and
 * the second pass fills it. So memory is proportional to the input, there is
 * one malloc per document, and the rules live in one place.
 *
 * The parser is iterative with an explicit stack of RT_JSON_MAX_DEPTH frames,
 * so no input can exhaust the C stack; a deep input fails at the first
 * bracket beyond the limit. Duplicate keys are found after the tree is built
 * by sorting each object's members, which keeps huge objects O(n log n).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "runtime/json.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_json_doc {
  rt_json *root;
};

typedef struct frame {
  rt_json *node;  /* the open array or object */
  rt_json *last;  /* its last child so far */
  size_t count;
  bool is_object;
} frame;

typedef struct parser {
  const char *name;
  const unsigned char *s;
  size_t n, pos;
  /* Storage; NULL in the counting pass, where nodes are written to scratch. */
  rt_json *nodes;
  char *chars;
  rt_json scratch;
  size_t nnodes, nchars; /* used so far (in both passes) */
  size_t max_members;    /* largest object, sizes the duplicate-key check */
  rt_json *root;
  frame stack[RT_JSON_MAX_DEPTH];
  int depth;
  const char *key; /* the key of the member being parsed */
  size_t key_len, key_offset;
} parser;

/* ---- errors ---- */

static rt_status fail_at(const parser *p, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static rt_status fail_at(const parser *p, size_t at, const char *fmt, ...) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at && i < p->n; i++) {
    if (p->s[i] == '\n') line++, col = 1;
    else col++;
  }
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return rt_fail(RT_EFORMAT, "%s: byte %zu (line %zu, col %zu): %s", p->name, at, line, col, what);
}

/* The current byte is not what the grammar allows here: say what it is. */
static rt_status fail_expected(const parser *p, const char *what) {
  if (p->pos >= p->n) return fail_at(p, p->pos, "unexpected end of input, expected %s", what);
  unsigned c = p->s[p->pos];
  if (c == '/') return fail_at(p, p->pos, "comments are not allowed (expected %s)", what);
  if (c > ' ' && c < 0x7f) return fail_at(p, p->pos, "expected %s, got '%c'", what, (int)c);
  return fail_at(p, p->pos, "expected %s, got byte 0x%02x", what, c);
}

/* One byte as printed by rt_json_escape; returns its length. */
static size_t escape_byte(unsigned char c, char piece[5]) {
  if (c >= ' ' && c < 0x7f && c != '\\') {
    piece[0] = (char)c, piece[1] = 0;
    return 1;
  }
  snprintf(piece, 5, "\\x%02x", c);
  return 4;
}

char *rt_json_escape(const char *s, size_t len, char *out, size_t cap) {
  if (cap == 0) return out;
  char piece[5];
  size_t full = 0;
  for (size_t i = 0; i < len; i++) full += escape_byte((unsigned char)s[i], piece);
  size_t room = full < cap ? cap - 1 : (cap > 4 ? cap - 4 : 0); /* keep room for "..." when cut */
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    size_t k = escape_byte((unsigned char)s[i], piece);
    if (o + k > room) break;
    memcpy(out + o, piece, k);
    o += k;
  }
  if (full >= cap && cap > 4) memcpy(out + o, "...", 3), o += 3;
  out[o] = 0;
  return out;
}

/* ---- building ---- */

static void put_char(parser *p, unsigned char c) {
  if (p->chars) p->chars[p->nchars] = (char)c;
  p->nchars++;
}

/* A new value at `offset`, linked into the open container (or the root). */
static rt_json *new_value(parser *p, rt_json_kind kind, size_t offset) {
  rt_json *v = p->nodes ? &p->nodes[p->nnodes] : &p->scratch;
  p->nnodes++;
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->offset = offset;
  if (p->depth == 0) {
    p->root = v;
    return v;
  }
  frame *f = &p->stack[p->depth - 1];
  if (f->is_object) {
    v->key = p->key;
    v->key_len = p->key_len;
    v->offset = p->key_offset;
  }
  if (f->last) f->last->next = v;
  else f->node->child = v;
  f->last = v;
  f->count++;
  return v;
}

/* ---- lexing ---- */

static void skip_ws(parser *p) {
  while (p->pos < p->n) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int peek(const parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* Length of the valid UTF-8 sequence at s[0..avail) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if it is invalid. */
static size_t utf8_length(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c >= 0xe0 && c <= 0xef) len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
  else return 0;
  if (avail < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return len;
}

static void put_utf8(parser *p, unsigned cp) {
  if (cp < 0x80) {
    put_char(p, (unsigned char)cp);
  } else if (cp < 0x800) {
    put_char(p, (unsigned char)(0xc0 | cp >> 6));
    put_char(p, (unsigned char)(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    put_char(p, (unsigned char)(0xe0 | cp >> 12));
    put_char(p, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
    put_char(p, (unsigned char)(0x80 | (cp & 0x3f)));
  } else {
    put_char(p, (unsigned char)(0xf0 | cp >> 18));
    put_char(p, (unsigned char)(0x80 | (cp >> 12 & 0x3f)));
    put_char(p, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
    put_char(p, (unsigned char)(0x80 | (cp & 0x3f)));
  }
}

/* Reads the 4 hex digits of a \u escape starting at `at`; -1 if malformed. */
static long read_hex4(const parser *p, size_t at) {
  if (at > p->n || p->n - at < 4) return -1;
  long v = 0;
  for (size_t i = at; i < at + 4; i++) {
    int c = p->s[i], d;
    if (is_digit(c)) d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/* \uXXXX at p->pos (the backslash), with a following low surrogate when
 * XXXX is a high one. */
static rt_status parse_unicode_escape(parser *p) {
  size_t at = p->pos;
  long cp = read_hex4(p, at + 2);
  if (cp < 0) return fail_at(p, at, "invalid \\u escape: expected 4 hex digits");
  p->pos += 6;
  if (cp >= 0xdc00 && cp <= 0xdfff)
    return fail_at(p, at, "lone low surrogate \\u%04lX", (unsigned long)cp);
  if (cp >= 0xd800 && cp <= 0xdbff) {
    long lo = p->n - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u'
                  ? read_hex4(p, p->pos + 2)
                  : -1;
    if (lo < 0xdc00 || lo > 0xdfff)
      return fail_at(p, at, "lone high surrogate \\u%04lX (a \\uDC00-\\uDFFF escape must follow)",
                     (unsigned long)cp);
    p->pos += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  put_utf8(p, (unsigned)cp);
  return RT_OK;
}

static rt_status parse_escape(parser *p) {
  if (p->pos + 1 >= p->n) return fail_at(p, p->pos, "unterminated string");
  unsigned char c = p->s[p->pos + 1], out;
  switch (c) {
  case '"': out = '"'; break;
  case '\\': out = '\\'; break;
  case '/': out = '/'; break;
  case 'b': out = '\b'; break;
  case 'f': out = '\f'; break;
  case 'n': out = '\n'; break;
  case 'r': out = '\r'; break;
  case 't': out = '\t'; break;
  case 'u': return parse_unicode_escape(p);
  default:
    if (c > ' ' && c < 0x7f) return fail_at(p, p->pos, "invalid escape '\\%c'", c);
    return fail_at(p, p->pos, "invalid escape: '\\' followed by byte 0x%02x", c);
  }
  put_char(p, out);
  p->pos += 2;
  return RT_OK;
}

/* The string at p->pos (its opening quote): decoded into p->chars. */
static rt_status parse_string(parser *p, const char **str, size_t *len) {
  size_t start = p->nchars, open = p->pos;
  p->pos++;
  for (;;) {
    if (p->pos >= p->n) return fail_at(p, open, "unterminated string");
    unsigned char c = p->s[p->pos];
    if (c == '"') break;
    if (c == '\\') {
      rt_status st = parse_escape(p);
      if (st) return st;
    } else if (c < 0x20) {
      return fail_at(p, p->pos, "control character 0x%02x in a string (it must be escaped)", c);
    } else if (c < 0x80) {
      put_char(p, c);
      p->pos++;
    } else {
      size_t k = utf8_length(p->s + p->pos, p->n - p->pos);
      if (k == 0) return fail_at(p, p->pos, "invalid UTF-8 byte 0x%02x in a string", c);
      for (size_t i = 0; i < k; i++) put_char(p, p->s[p->pos + i]);
      p->pos += k;
    }
  }
  p->pos++;
  put_char(p, 0);
  *str = p->chars ? p->chars + start : NULL;
  *len = p->nchars - start - 1;
  return RT_OK;
}

/* Exact int64 value of an integer literal, false if it does not fit. */
static bool integer_value(const char *text, size_t len, int64_t *out) {
  bool neg = text[0] == '-';
  int64_t v = 0; /* accumulated negatively: INT64_MIN has no positive twin */
  for (size_t i = neg; i < len; i++)
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, text[i] - '0', &v))
      return false;
  if (!neg && v == INT64_MIN) return false;
  *out = neg ? v : -v;
  return true;
}

/* Sets the double (and the exact integer) of a number whose text was copied.
 * The build pass runs in the "C" locale (see rt_json_parse), so strtod reads
 * '.' whatever locale the host application chose. */
static rt_status convert_number(parser *p, rt_json *v, bool integral, size_t at) {
  errno = 0;
  v->number = strtod(v->str, NULL);
  if (errno == ERANGE && (v->number > 1 || v->number < -1))
    return fail_at(p, at, "number %s is out of the range of a double", v->str);
  v->is_int = integral && integer_value(v->str, v->len, &v->integer);
  return RT_OK;
}

static size_t skip_digits(parser *p) {
  size_t start = p->pos;
  while (is_digit(peek(p))) p->pos++;
  return p->pos - start;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static rt_status parse_number(parser *p) {
  size_t start = p->pos;
  if (peek(p) == '-') p->pos++;
  if (!is_digit(peek(p))) return fail_expected(p, "a digit");
  if (peek(p) == '0' && p->pos + 1 < p->n && is_digit(p->s[p->pos + 1]))
    return fail_at(p, p->pos, "leading zeros are not allowed in numbers");
  skip_digits(p);
  bool integral = true;
  if (peek(p) == '.') {
    p->pos++, integral = false;
    if (!skip_digits(p)) return fail_expected(p, "a digit after '.'");
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->pos++, integral = false;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!skip_digits(p)) return fail_expected(p, "a digit in the exponent");
  }
  size_t len = p->pos - start;
  if (len > RT_JSON_MAX_NUMBER_LEN)
    return fail_at(p, start, "number longer than %d characters", RT_JSON_MAX_NUMBER_LEN);
  rt_json *v = new_value(p, RT_JSON_NUMBER, start);
  size_t first = p->nchars;
  for (size_t i = start; i < p->pos; i++) put_char(p, p->s[i]);
  put_char(p, 0);
  if (!p->chars) return RT_OK;
  v->str = p->chars + first;
  v->len = len;
  return convert_number(p, v, integral, start);
}

static rt_status parse_literal(parser *p) {
  static const struct { const char *word; rt_json_kind kind; bool value; } words[] = {
      {"true", RT_JSON_BOOL, true}, {"false", RT_JSON_BOOL, false}, {"null", RT_JSON_NULL, false}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t k = strlen(words[i].word);
    if (p->s[p->pos] != words[i].word[0]) continue;
    if (p->n - p->pos < k || memcmp(p->s + p->pos, words[i].word, k) != 0)
      return fail_at(p, p->pos, "invalid literal (expected '%s')", words[i].word);
    new_value(p, words[i].kind, p->pos)->boolean = words[i].value;
    p->pos += k;
    return RT_OK;
  }
  return fail_expected(p, "a value");
}

static rt_status parse_scalar(parser *p) {
  int c = peek(p);
  if (c == '"') {
    size_t at = p->pos;
    const char *s;
    size_t len;
    rt_status st = parse_string(p, &s, &len);
    if (st) return st;
    rt_json *v = new_value(p, RT_JSON_STRING, at);
    v->str = s, v->len = len;
    return RT_OK;
  }
  if (c == '-' || is_digit(c)) return parse_number(p);
  if (c < 0) return fail_expected(p, "a value");
  return parse_literal(p);
}

/* ---- structure ---- */

/* "key" : at p->pos, remembered for the member value that follows. */
static rt_status parse_key(parser *p) {
  skip_ws(p);
  if (peek(p) != '"') return fail_expected(p, "a string key");
  p->key_offset = p->pos;
  rt_status st = parse_string(p, &p->key, &p->key_len);
  if (st) return st;
  skip_ws(p);
  if (peek(p) != ':') return fail_expected(p, "':' after an object key");
  p->pos++;
  return RT_OK;
}

static rt_status open_container(parser *p, bool is_object) {
  if (p->depth == RT_JSON_MAX_DEPTH)
    return fail_at(p, p->pos, "nesting deeper than %d levels", RT_JSON_MAX_DEPTH);
  rt_json *v = new_value(p, is_object ? RT_JSON_OBJECT : RT_JSON_ARRAY, p->pos);
  p->stack[p->depth++] = (frame){.node = v, .is_object = is_object};
  p->pos++;
  return RT_OK;
}

static void close_container(parser *p) {
  frame *f = &p->stack[--p->depth];
  f->node->count = f->count;
  if (f->is_object && f->count > p->max_members) p->max_members = f->count;
  p->pos++;
}

/* After a value inside a container: a ',' (then the next element or member)
 * or the closing bracket, repeatedly while containers close. Sets *done when
 * the outermost value is complete. */
static rt_status after_value(parser *p, bool *done) {
  while (p->depth > 0) {
    frame *f = &p->stack[p->depth - 1];
    char close = f->is_object ? '}' : ']';
    skip_ws(p);
    int c = peek(p);
    if (c == close) {
      close_container(p);
      continue;
    }
    if (c != ',')
      return fail_expected(p, f->is_object ? "',' or '}' after an object member"
                                           : "',' or ']' after an array element");
    size_t comma = p->pos++;
    skip_ws(p);
    if (peek(p) == ']' || peek(p) == '}')
      return fail_at(p, comma, "trailing comma before '%c'", (char)peek(p));
    return f->is_object ? parse_key(p) : RT_OK;
  }
  *done = true;
  return RT_OK;
}

static rt_status parse_text(parser *p) {
  rt_status st;
  for (bool done = false; !done;) {
    skip_ws(p);
    int c = peek(p);
    if (c == '[' || c == '{') {
      if ((st = open_container(p, c == '{'))) return st;
      skip_ws(p);
      if (peek(p) != (c == '{' ? '}' : ']')) {
        if (c == '{' && (st = parse_key(p))) return st;
        continue; /* to the first element */
      }
      close_container(p);
    } else if ((st = parse_scalar(p))) {
      return st;
    }
    if ((st = after_value(p, &done))) return st;
  }
  skip_ws(p);
  if (p->pos < p->n) return fail_expected(p, "the end of the input after the JSON value");
  return RT_OK;
}

/* ---- duplicate keys ---- */

static int compare_members(const void *a, const void *b) {
  const rt_json *x = *(const rt_json *const *)a, *y = *(const rt_json *const *)b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static bool same_key(const rt_json *a, const rt_json *b) {
  return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* Reports, in the first object (in document order) that has one, the repeated
 * key whose second occurrence comes first. */
static rt_status check_duplicate_keys(parser *p) {
  if (p->max_members < 2) return RT_OK;
  const rt_json **sorted = malloc(p->max_members * sizeof *sorted);
  if (!sorted) return rt_fail(RT_ENOMEM, "%s: out of memory checking duplicate keys", p->name);
  rt_status st = RT_OK;
  for (size_t i = 0; i < p->nnodes && !st; i++) {
    const rt_json *obj = &p->nodes[i];
    if (obj->kind != RT_JSON_OBJECT || obj->count < 2) continue;
    size_t k = 0;
    for (const rt_json *m = obj->child; m; m = m->next) sorted[k++] = m;
    qsort(sorted, k, sizeof *sorted, compare_members); /* equal keys end up adjacent, by offset */
    size_t dup = 0;
    for (size_t j = 1; j < k; j++)
      if (same_key(sorted[j - 1], sorted[j]) && (!dup || sorted[j]->offset < sorted[dup]->offset))
        dup = j;
    if (dup) {
      char key[80];
      st = fail_at(p, sorted[dup]->offset, "duplicate key \"%s\" (previous at byte %zu)",
                   rt_json_escape(sorted[dup]->key, sorted[dup]->key_len, key, sizeof key),
                   sorted[dup - 1]->offset);
    }
  }
  free(sorted);
  return st;
}

/* ---- entry points ---- */

/* The second pass, in the "C" numeric locale of this thread only: a host
 * application with a German locale would otherwise make strtod stop at '.'. */
static rt_status build_pass(parser *p) {
  locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!c_locale) return rt_fail(RT_ENOMEM, "%s: cannot create the C locale", p->name);
  locale_t old = uselocale(c_locale);
  rt_status st = parse_text(p);
  uselocale(old);
  freelocale(c_locale);
  return st ? st : check_duplicate_keys(p);
}

static void init_parser(parser *p, const char *name, const char *text, size_t len) {
  memset(p, 0, sizeof *p);
  p->name = name;
  p->s = (const unsigned char *)text;
  p->n = len;
}

rt_status rt_json_parse(const char *name, const char *text, size_t len, size_t max_len,
                        rt_json_doc **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_json_parse: out is NULL");
  *out = NULL;
  if (!name) name = "json";
  if (!text && len) return rt_fail(RT_EINVAL, "%s: text is NULL", name);
  if (len > max_len)
    return rt_fail(RT_EFORMAT, "%s: input of %zu bytes exceeds the limit of %zu bytes", name, len,
                   max_len);
  parser *p = malloc(sizeof *p);
  if (!p) return rt_fail(RT_ENOMEM, "%s: out of memory", name);
  init_parser(p, name, text, len);
  rt_status st = parse_text(p);
  size_t nodes = p->nnodes, chars = p->nchars;
  rt_json_doc *doc = NULL;
  if (!st) {
    /* Counts are bounded by len, so the sum cannot overflow. */
    size_t node_bytes = sizeof(rt_json) * nodes;
    size_t head = (sizeof(rt_json_doc) + _Alignof(rt_json) - 1) / _Alignof(rt_json) * _Alignof(rt_json);
    doc = malloc(head + node_bytes + chars);
    if (!doc) st = rt_fail(RT_ENOMEM, "%s: out of memory for %zu JSON values", name, nodes);
    else {
      init_parser(p, name, text, len);
      p->nodes = (rt_json *)((char *)doc + head);
      p->chars = (char *)doc + head + node_bytes;
      st = build_pass(p);
      doc->root = p->root;
    }
  }
  free(p);
  if (st) {
    free(doc);
    return st;
  }
  *out = doc;
  return RT_OK;
}

const rt_json *rt_json_root(const rt_json_doc *doc) { return doc ? doc->root : NULL; }

void rt_json_free(rt_json_doc *doc) { free(doc); }

const rt_json *rt_json_get(const rt_json *obj, const char *key) {
  if (!obj || obj->kind != RT_JSON_OBJECT || !key) return NULL;
  size_t len = strlen(key);
  for (const rt_json *m = obj->child; m; m = m->next)
    if (m->key_len == len && memcmp(m->key, key, len) == 0) return m;
  return NULL;
}
