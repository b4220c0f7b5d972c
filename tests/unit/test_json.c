/* Unit tests for runtime/json.c: every acceptance and rejection rule of the
 * strict JSON reader, with the exact message and offset of each error.
 * Inputs are copied into buffers of exactly their length (no terminator), so
 * ASan catches any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/json.h"

/* Parses text[0..len) from an exact-size heap copy. */
static rt_status parse_n(const char *text, size_t len, rt_json_doc **doc) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, text, len);
  rt_status st = rt_json_parse("t.json", copy, len, (size_t)1 << 30, doc);
  free(copy); /* the tree holds copies of its strings */
  return st;
}

static rt_json_doc *parse_ok(const char *text) {
  rt_json_doc *doc = NULL;
  rt_status st = parse_n(text, strlen(text), &doc);
  if (st != RT_OK) fail_msg("unexpected error for <%s>: %s", text, rt_last_error());
  return doc;
}

/* The error message must contain `want`. */
static void expect_error_n(const char *text, size_t len, const char *want) {
  rt_json_doc *doc = (rt_json_doc *)1;
  rt_status st = parse_n(text, len, &doc);
  if (st != RT_EFORMAT) fail_msg("<%s> was accepted (status %d)", text, st);
  assert_null(doc);
  if (!strstr(rt_last_error(), want)) fail_msg("<%s>: message \"%s\" lacks \"%s\"", text, rt_last_error(), want);
}

static void expect_error(const char *text, const char *want) { expect_error_n(text, strlen(text), want); }

static void test_scalars(void **state) {
  (void)state;
  rt_json_doc *d = parse_ok(" true ");
  assert_int_equal(rt_json_root(d)->kind, RT_JSON_BOOL);
  assert_true(rt_json_root(d)->boolean);
  assert_int_equal(rt_json_root(d)->offset, 1);
  rt_json_free(d);
  d = parse_ok("false");
  assert_false(rt_json_root(d)->boolean);
  rt_json_free(d);
  d = parse_ok("\t\r\nnull\n");
  assert_int_equal(rt_json_root(d)->kind, RT_JSON_NULL);
  rt_json_free(d);
  d = parse_ok("\"hi\"");
  assert_int_equal(rt_json_root(d)->kind, RT_JSON_STRING);
  assert_string_equal(rt_json_root(d)->str, "hi");
  assert_int_equal(rt_json_root(d)->len, 2);
  rt_json_free(d);
}

static void check_number(const char *text, bool is_int, int64_t i, double x) {
  rt_json_doc *d = parse_ok(text);
  const rt_json *v = rt_json_root(d);
  assert_int_equal(v->kind, RT_JSON_NUMBER);
  assert_string_equal(v->str, text);
  assert_int_equal(v->is_int, is_int);
  if (is_int) assert_true(v->integer == i);
  assert_true(v->number == x);
  rt_json_free(d);
}

static void test_numbers(void **state) {
  (void)state;
  check_number("0", true, 0, 0.0);
  check_number("-0", true, 0, -0.0);
  check_number("12", true, 12, 12.0);
  check_number("-12", true, -12, -12.0);
  check_number("1.5", false, 0, 1.5);
  check_number("1e3", false, 0, 1000.0);
  check_number("-1.25E-2", false, 0, -0.0125);
  check_number("2e+2", false, 0, 200.0);
  check_number("0.5", false, 0, 0.5);
  check_number("9223372036854775807", true, INT64_MAX, 9223372036854775807.0);
  check_number("-9223372036854775808", true, INT64_MIN, -9223372036854775808.0);
  check_number("9223372036854775808", false, 0, 9223372036854775808.0);
  check_number("-9223372036854775809", false, 0, -9223372036854775809.0);
  check_number("1e-400", false, 0, 0.0); /* underflow rounds to zero */
  expect_error("1e400", "byte 0 (line 1, col 1): number 1e400 is out of the range of a double");
  expect_error("-1e400", "out of the range of a double");
}

static void test_number_syntax_errors(void **state) {
  (void)state;
  expect_error("01", "byte 0 (line 1, col 1): leading zeros are not allowed in numbers");
  expect_error("-01", "byte 1 (line 1, col 2): leading zeros are not allowed");
  expect_error("[00]", "byte 1 (line 1, col 2): leading zeros");
  expect_error("1.", "byte 2 (line 1, col 3): unexpected end of input, expected a digit after '.'");
  expect_error("1.e5", "byte 2 (line 1, col 3): expected a digit after '.', got 'e'");
  expect_error("1e", "byte 2 (line 1, col 3): unexpected end of input, expected a digit in the exponent");
  expect_error("1e+", "byte 3 (line 1, col 4): unexpected end of input, expected a digit in the exponent");
  expect_error("-", "byte 1 (line 1, col 2): unexpected end of input, expected a digit");
  expect_error("-a", "byte 1 (line 1, col 2): expected a digit, got 'a'");
  expect_error(".5", "byte 0 (line 1, col 1): expected a value, got '.'");
  expect_error("+1", "byte 0 (line 1, col 1): expected a value, got '+'");
  expect_error("0x10", "byte 1 (line 1, col 2): expected the end of the input after the JSON value, got 'x'");
  expect_error("NaN", "expected a value, got 'N'");
  expect_error("Infinity", "expected a value, got 'I'");
  expect_error("-Infinity", "byte 1 (line 1, col 2): expected a digit, got 'I'");
  /* A number of exactly the limit passes, one more character fails. */
  char big[RT_JSON_MAX_NUMBER_LEN + 2];
  memset(big, '1', sizeof big);
  big[1] = '.';
  rt_json_doc *d = NULL;
  assert_int_equal(parse_n(big, RT_JSON_MAX_NUMBER_LEN, &d), RT_OK);
  assert_false(rt_json_root(d)->is_int);
  rt_json_free(d);
  expect_error_n(big, RT_JSON_MAX_NUMBER_LEN + 1, "number longer than 1024 characters");
}

static void test_literal_errors(void **state) {
  (void)state;
  expect_error("nul", "byte 0 (line 1, col 1): invalid literal (expected 'null')");
  expect_error("True", "expected a value, got 'T'");
  expect_error("tru", "invalid literal (expected 'true')");
  expect_error("falsey", "byte 5 (line 1, col 6): expected the end of the input after the JSON value, got 'y'");
  expect_error("", "byte 0 (line 1, col 1): unexpected end of input, expected a value");
  expect_error("   ", "byte 3 (line 1, col 4): unexpected end of input, expected a value");
  expect_error("1 2", "byte 2 (line 1, col 3): expected the end of the input");
  expect_error("{} x", "byte 3 (line 1, col 4): expected the end of the input");
  expect_error("\xef\xbb\xbf{}", "byte 0 (line 1, col 1): expected a value, got byte 0xef"); /* BOM */
  expect_error("\x01", "got byte 0x01");
  expect_error("1\f", "byte 1 (line 1, col 2): expected the end of the input after the JSON value, got byte 0x0c");
}

static void test_arrays_and_objects(void **state) {
  (void)state;
  rt_json_doc *d = parse_ok(" { \"b\" : [1, 2.5, \"x\", [], {}], \"a\": null, \"c\": {\"d\": true} } ");
  const rt_json *root = rt_json_root(d);
  assert_int_equal(root->kind, RT_JSON_OBJECT);
  assert_int_equal(root->count, 3);
  /* Members keep the order of the text. */
  const rt_json *b = root->child, *a = b->next, *c = a->next;
  assert_string_equal(b->key, "b");
  assert_string_equal(a->key, "a");
  assert_string_equal(c->key, "c");
  assert_null(c->next);
  assert_int_equal(b->offset, 3); /* members point at their key */
  assert_ptr_equal(rt_json_get(root, "a"), a);
  assert_null(rt_json_get(root, "z"));
  assert_null(rt_json_get(b, "a")); /* not an object */
  assert_int_equal(b->kind, RT_JSON_ARRAY);
  assert_int_equal(b->count, 5);
  const rt_json *e = b->child;
  assert_true(e->is_int && e->integer == 1);
  assert_null(e->key);
  e = e->next;
  assert_true(e->number == 2.5);
  e = e->next;
  assert_string_equal(e->str, "x");
  e = e->next;
  assert_int_equal(e->kind, RT_JSON_ARRAY);
  assert_int_equal(e->count, 0);
  assert_null(e->child);
  e = e->next;
  assert_int_equal(e->kind, RT_JSON_OBJECT);
  assert_int_equal(e->count, 0);
  assert_null(e->next);
  assert_int_equal(a->kind, RT_JSON_NULL);
  assert_true(rt_json_get(c, "d")->boolean);
  rt_json_free(d);
  rt_json_free(NULL);
}

static void test_structure_errors(void **state) {
  (void)state;
  expect_error("[1,]", "byte 2 (line 1, col 3): trailing comma before ']'");
  expect_error("[1, ]", "byte 2 (line 1, col 3): trailing comma before ']'");
  expect_error("{\"a\":1,}", "byte 6 (line 1, col 7): trailing comma before '}'");
  expect_error("[,1]", "byte 1 (line 1, col 2): expected a value, got ','");
  expect_error("[1 2]", "byte 3 (line 1, col 4): expected ',' or ']' after an array element, got '2'");
  expect_error("[1", "byte 2 (line 1, col 3): unexpected end of input, expected ',' or ']' after an array element");
  expect_error("[", "byte 1 (line 1, col 2): unexpected end of input, expected a value");
  expect_error("]", "byte 0 (line 1, col 1): expected a value, got ']'");
  expect_error("[}", "expected a value, got '}'");
  expect_error("{\"a\" 1}", "byte 5 (line 1, col 6): expected ':' after an object key, got '1'");
  expect_error("{\"a\":}", "byte 5 (line 1, col 6): expected a value, got '}'");
  expect_error("{1:2}", "byte 1 (line 1, col 2): expected a string key, got '1'");
  expect_error("{'a':2}", "expected a string key, got '''");
  expect_error("{\"a\":1 \"b\":2}", "byte 7 (line 1, col 8): expected ',' or '}' after an object member, got '\"'");
  expect_error("{\"a\":1", "unexpected end of input, expected ',' or '}' after an object member");
  expect_error("{", "byte 1 (line 1, col 2): unexpected end of input, expected a string key");
  expect_error("[1 /* c */]", "byte 3 (line 1, col 4): comments are not allowed (expected ',' or ']' after an array element)");
  expect_error("// c\n1", "byte 0 (line 1, col 1): comments are not allowed (expected a value)");
  expect_error("[\n  1,\n  x]", "byte 9 (line 3, col 3): expected a value, got 'x'");
}

static void check_string(const char *json, const char *want, size_t want_len) {
  rt_json_doc *d = parse_ok(json);
  const rt_json *v = rt_json_root(d);
  assert_int_equal(v->kind, RT_JSON_STRING);
  assert_int_equal(v->len, want_len);
  assert_memory_equal(v->str, want, want_len + 1); /* terminator included */
  rt_json_free(d);
}

static void test_string_escapes(void **state) {
  (void)state;
  check_string("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t", 15);
  check_string("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6);
  check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4); /* U+1F600 from a pair */
  check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);  /* U+10FFFF */
  check_string("\"a\\u0000b\"", "a\0b", 3);
  check_string("\"\"", "", 0);
  check_string("\"\x7f\"", "\x7f", 1); /* DEL needs no escape */
  /* Raw UTF-8 of every length passes through unchanged. */
  check_string("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf", 12);
  /* Keys are decoded the same way. */
  rt_json_doc *d = parse_ok("{\"k\\u00e9\\n\": 1}");
  assert_string_equal(rt_json_root(d)->child->key, "k\xc3\xa9\n");
  assert_int_equal(rt_json_root(d)->child->key_len, 4);
  assert_non_null(rt_json_get(rt_json_root(d), "k\xc3\xa9\n"));
  rt_json_free(d);
}

static void test_string_errors(void **state) {
  (void)state;
  expect_error("\"abc", "byte 0 (line 1, col 1): unterminated string");
  expect_error("\"abc\\", "byte 4 (line 1, col 5): unterminated string");
  expect_error("\"a\nb\"", "byte 2 (line 1, col 3): control character 0x0a in a string (it must be escaped)");
  expect_error("\"a\tb\"", "control character 0x09 in a string");
  expect_error_n("\"a\0b\"", 5, "byte 2 (line 1, col 3): control character 0x00 in a string");
  expect_error("\"\\x\"", "byte 1 (line 1, col 2): invalid escape '\\x'");
  expect_error("\"\\'\"", "invalid escape '\\''");
  expect_error("\"\\\x01\"", "invalid escape: '\\' followed by byte 0x01");
  expect_error("\"\\u12\"", "byte 1 (line 1, col 2): invalid \\u escape: expected 4 hex digits");
  expect_error("\"\\u12", "invalid \\u escape: expected 4 hex digits");
  expect_error("\"\\uZZZZ\"", "invalid \\u escape");
  expect_error("\"\\ud800\"", "byte 1 (line 1, col 2): lone high surrogate \\uD800");
  expect_error("\"\\ud800x\"", "lone high surrogate \\uD800");
  expect_error("\"\\ud800\\u0041\"", "lone high surrogate \\uD800");
  expect_error("\"\\ud800\\ud800\"", "lone high surrogate \\uD800");
  expect_error("\"\\ud800\\", "lone high surrogate");
  expect_error("\"ab\\udc00\"", "byte 3 (line 1, col 4): lone low surrogate \\uDC00");
  expect_error("\"\\uDFFF\"", "lone low surrogate \\uDFFF");
}

static void test_invalid_utf8(void **state) {
  (void)state;
  expect_error("\"\x80\"", "byte 1 (line 1, col 2): invalid UTF-8 byte 0x80 in a string");   /* lone continuation */
  expect_error("\"\xc0\x80\"", "invalid UTF-8 byte 0xc0");                                     /* overlong NUL */
  expect_error("\"\xc1\xbf\"", "invalid UTF-8 byte 0xc1");                                     /* overlong */
  expect_error("\"\xe0\x80\x80\"", "invalid UTF-8 byte 0xe0");                                 /* overlong 3-byte */
  expect_error("\"\xed\xa0\x80\"", "invalid UTF-8 byte 0xed");                                 /* surrogate */
  expect_error("\"\xf0\x80\x80\x80\"", "invalid UTF-8 byte 0xf0");                             /* overlong 4-byte */
  expect_error("\"\xf4\x90\x80\x80\"", "invalid UTF-8 byte 0xf4");                             /* above U+10FFFF */
  expect_error("\"\xf5\x80\x80\x80\"", "invalid UTF-8 byte 0xf5");
  expect_error("\"\xff\"", "invalid UTF-8 byte 0xff");
  expect_error("\"a\xe2\x82\"", "byte 2 (line 1, col 3): invalid UTF-8 byte 0xe2");            /* cut by the quote */
  expect_error_n("\"\xe2\x82", 3, "byte 1 (line 1, col 2): invalid UTF-8 byte 0xe2");          /* cut by the end */
  expect_error("\"\xc3\x28\"", "invalid UTF-8 byte 0xc3");                                     /* bad continuation */
  expect_error("[\xc3\xa9]", "byte 1 (line 1, col 2): expected a value, got byte 0xc3");       /* outside strings */
}

static void test_duplicate_keys(void **state) {
  (void)state;
  expect_error("{\"a\":1,\"b\":2,\"a\":3}", "byte 13 (line 1, col 14): duplicate key \"a\" (previous at byte 1)");
  expect_error("{\"a\":1,\"\\u0061\":2}", "byte 7 (line 1, col 8): duplicate key \"a\" (previous at byte 1)");
  expect_error("[{\"x\":{\"q\":1,\"q\":2}}]", "duplicate key \"q\" (previous at byte 7)");
  /* The earliest repetition is reported, whatever the sort order. */
  expect_error("{\"z\":1,\"a\":1,\"z\":2,\"a\":2}", "byte 13 (line 1, col 14): duplicate key \"z\" (previous at byte 1)");
  expect_error("{\"k\":1,\"k\":2,\"k\":3}", "byte 7 (line 1, col 8): duplicate key \"k\" (previous at byte 1)");
  /* Keys are compared by their bytes, NULs included. */
  expect_error("{\"a\\u0000\":1,\"a\\u0000\":2}", "duplicate key \"a\\x00\"");
  /* Similar keys, and the same key in different objects, are no duplicates. */
  rt_json_doc *d = parse_ok("{\"a\":1,\"ab\":2,\"a\\u0000\":3,\"A\":4,\"b\":{\"a\":5}}");
  assert_int_equal(rt_json_root(d)->count, 5);
  rt_json_free(d);
}

/* Nesting: 64 levels pass, 65 fail at the 65th bracket; a huge depth fails
 * just as fast (the parser never recurses). */
static void test_depth_limit(void **state) {
  (void)state;
  enum { HUGE = 100000 };
  char *s = malloc(2 * HUGE);
  assert_non_null(s);
  for (int i = 0; i < 64; i++) s[i] = '[', s[64 + i] = ']';
  rt_json_doc *d = NULL;
  assert_int_equal(parse_n(s, 128, &d), RT_OK);
  rt_json_free(d);
  for (int i = 0; i < 65; i++) s[i] = '[', s[65 + i] = ']';
  expect_error_n(s, 130, "byte 64 (line 1, col 65): nesting deeper than 64 levels");
  memset(s, '[', HUGE);
  clock_t t0 = clock();
  expect_error_n(s, HUGE, "byte 64 (line 1, col 65): nesting deeper than 64 levels");
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
  /* Objects count too. */
  size_t n = 0;
  for (int i = 0; i < 65; i++) n += (size_t)sprintf(s + n, "{\"k\":");
  expect_error_n(s, n, "byte 320 (line 1, col 321): nesting deeper than 64 levels");
  free(s);
}

static void test_size_limit_and_length(void **state) {
  (void)state;
  rt_json_doc *d = NULL;
  assert_int_equal(rt_json_parse("t", "[1, 2]", 6, 5, &d), RT_EFORMAT);
  assert_string_equal(rt_last_error(), "t: input of 6 bytes exceeds the limit of 5 bytes");
  assert_null(d);
  /* Only len bytes are read: what follows in memory does not matter. */
  assert_int_equal(rt_json_parse("t", "12345", 2, 2, &d), RT_OK);
  assert_true(rt_json_root(d)->integer == 12);
  rt_json_free(d);
  assert_int_equal(rt_json_parse("t", "truex", 4, 100, &d), RT_OK);
  rt_json_free(d);
  assert_int_equal(rt_json_parse("t", NULL, 0, 10, &d), RT_EFORMAT);
  assert_int_equal(rt_json_parse("t", NULL, 3, 10, &d), RT_EINVAL);
  assert_int_equal(rt_json_parse("t", "1", 1, 10, NULL), RT_EINVAL);
}

/* Big inputs: a long array, a long string, a wide object (whose duplicate
 * check must stay fast). */
static void test_big_inputs(void **state) {
  (void)state;
  enum { N = 200000 };
  char *s = malloc((size_t)N * 24 + 16);
  assert_non_null(s);
  size_t n = 0;
  s[n++] = '[';
  for (int i = 0; i < N; i++) n += (size_t)sprintf(s + n, "%s%d.5", i ? "," : "", i);
  s[n++] = ']';
  rt_json_doc *d = NULL;
  assert_int_equal(parse_n(s, n, &d), RT_OK);
  const rt_json *v = rt_json_root(d);
  assert_int_equal(v->count, N);
  double sum = 0;
  for (const rt_json *e = v->child; e; e = e->next) sum += e->number;
  assert_true(sum == (double)N * (N - 1) / 2 + 0.5 * N);
  rt_json_free(d);

  n = 0;
  s[n++] = '"';
  for (int i = 0; i < N; i++) s[n++] = (char)('a' + i % 26);
  s[n++] = '"';
  assert_int_equal(parse_n(s, n, &d), RT_OK);
  assert_int_equal(rt_json_root(d)->len, N);
  assert_int_equal(strlen(rt_json_root(d)->str), N);
  rt_json_free(d);

  clock_t t0 = clock();
  n = 0;
  s[n++] = '{';
  for (int i = 0; i < N; i++) n += (size_t)sprintf(s + n, "%s\"key%d\":%d", i ? "," : "", (i * 7919) % N, i);
  s[n++] = '}';
  assert_int_equal(parse_n(s, n, &d), RT_OK); /* 7919 is prime to N: all keys distinct */
  assert_int_equal(rt_json_root(d)->count, N);
  assert_true(rt_json_get(rt_json_root(d), "key7919")->integer == 1);
  rt_json_free(d);
  memcpy(s + n - 1, ",\"key0\":1}", 10);
  expect_error_n(s, n + 9, "duplicate key \"key0\" (previous at byte 1)");
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
  free(s);
}

static void test_escape_helper(void **state) {
  (void)state;
  char out[16];
  assert_string_equal(rt_json_escape("abc", 3, out, sizeof out), "abc");
  assert_string_equal(rt_json_escape("a\nb\\", 4, out, sizeof out), "a\\x0ab\\x5c");
  assert_string_equal(rt_json_escape("0123456789abcdefghij", 20, out, sizeof out), "0123456789ab...");
  assert_string_equal(rt_json_escape("0123456789abcde", 15, out, sizeof out), "0123456789abcde");
  assert_string_equal(rt_json_escape("\xff\xff\xff\xff", 4, out, 12), "\\xff\\xff...");
  assert_string_equal(rt_json_escape("", 0, out, sizeof out), "");
}

static uint64_t next_random(uint64_t *s) { /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Counts the values of a tree, checking each container's count against its
 * list. */
static size_t walk(const rt_json *v) {
  size_t n = 1, k = 0;
  for (const rt_json *c = v->child; c; c = c->next, k++) {
    assert_true((v->kind == RT_JSON_OBJECT) == (c->key != NULL));
    n += walk(c);
  }
  assert_int_equal(k, v->count);
  return n;
}

/* Fixed-seed mutations of a document using every feature: the reader must
 * reject cleanly or return a well-formed tree, never crash or read outside
 * the input (the suite runs under ASan and UBSan too). */
static void test_mutation_fuzz(void **state) {
  (void)state;
  const char *base = "{\"a\": [1, -2.5e3, 0, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"],"
                     " \"\xc3\xa9\": {\"k\": [[], {}], \"n\": -0.125E+2}, \"s\": \"\\\" \\/\"}";
  size_t base_len = strlen(base);
  rt_json_doc *d = parse_ok(base);
  assert_int_equal(walk(rt_json_root(d)), 15);
  rt_json_free(d);
  const char alphabet[] = "{}[],:\"0123456789-+.eE \\u/tfn\x80\xc3";
  uint64_t seed = 0x1234abcdULL;
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 5000; iter++) {
    char buf[256];
    memcpy(buf, base, base_len);
    size_t n = base_len;
    for (int e = 1 + (int)(next_random(&seed) % 3); e > 0 && n > 0; e--) {
      size_t at = next_random(&seed) % n;
      switch (next_random(&seed) % 4) {
      case 0: buf[at] = (char)next_random(&seed); break;
      case 1: buf[at] = alphabet[next_random(&seed) % (sizeof alphabet - 1)]; break;
      case 2: memmove(buf + at, buf + at + 1, n - at - 1), n--; break; /* delete */
      default: n = at; break;                                           /* truncate */
      }
    }
    rt_status st = parse_n(buf, n, &d);
    if (st == RT_OK) {
      walk(rt_json_root(d));
      rt_json_free(d);
      accepted++;
    } else {
      assert_int_equal(st, RT_EFORMAT);
      assert_true(strncmp(rt_last_error(), "t.json: byte ", 13) == 0);
      rejected++;
    }
  }
  assert_true(accepted > 50);
  assert_true(rejected > 2000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_number_syntax_errors),
      cmocka_unit_test(test_literal_errors),
      cmocka_unit_test(test_arrays_and_objects),
      cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_string_escapes),
      cmocka_unit_test(test_string_errors),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_size_limit_and_length),
      cmocka_unit_test(test_big_inputs),
      cmocka_unit_test(test_escape_helper),
      cmocka_unit_test(test_mutation_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
