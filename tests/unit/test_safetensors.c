/* Unit tests for runtime/safetensors.c. Files are built in memory by the
 * shared writer st_writer.c (length prefix, header JSON, padding, data), opened from
 * exact-size heap copies so ASan sees any read past the end, and also
 * written to temporary files for rt_st_open. Every validation rule has a
 * case asserting the status and the message naming the file and tensor; a
 * fixed-seed mutation loop checks that no damaged file crashes the reader or
 * yields an inconsistent descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "tests/unit/st_writer.h"

/* A buffer of exactly b.n bytes, for ASan. */
static rt_status open_blob(st_blob b, unsigned char **copy, rt_st_file **f) {
  *copy = malloc(b.n ? b.n : 1);
  assert_non_null(*copy);
  memcpy(*copy, b.p, b.n);
  return rt_st_open_memory(*copy, b.n, f);
}

static void expect_fail_blob(st_blob b, rt_status want, const char *substring) {
  unsigned char *copy;
  rt_st_file *f = (rt_st_file *)1;
  rt_status st = open_blob(b, &copy, &f);
  if (st != want) fail_msg("status %d, want %d (%s)", st, want, rt_last_error());
  assert_null(f);
  if (!strstr(rt_last_error(), substring)) fail_msg("message \"%s\" lacks \"%s\"", rt_last_error(), substring);
  free(copy);
  free(b.p);
}

static void expect_fail(const char *header, size_t data_len, const char *substring) {
  expect_fail_blob(st_blob_make(header, NULL, data_len), RT_EFORMAT, substring);
}

/* ---- reading valid files ---- */

static void test_f32_tensor(void **state) {
  (void)state;
  float w[6] = {0, 1.5f, -2, 3, 4, 5.25f};
  st_blob b = st_blob_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", w, sizeof w);
  unsigned char *copy;
  rt_st_file *f;
  assert_int_equal(open_blob(b, &copy, &f), RT_OK);
  assert_string_equal(rt_st_name(f), "<memory>");
  assert_int_equal(rt_st_count(f), 1);
  const rt_st_tensor *t = rt_st_tensor_at(f, 0);
  assert_ptr_equal(rt_st_find(f, "w"), t);
  assert_null(rt_st_tensor_at(f, 1));
  assert_null(rt_st_find(f, "v"));
  assert_string_equal(t->name, "w");
  assert_int_equal(t->dtype, RT_ST_F32);
  assert_int_equal(t->rank, 2);
  assert_true(t->shape[0] == 2 && t->shape[1] == 3);
  assert_true(t->numel == 6);
  assert_int_equal(t->nbytes, 24);
  assert_int_equal(t->offset, 0);
  assert_ptr_equal(t->data, copy + b.n - 24);
  float got[6];
  memcpy(got, t->data, sizeof got);
  assert_memory_equal(got, w, sizeof w);
  size_t nmeta = 7;
  rt_st_metadata(f, &nmeta);
  assert_int_equal(nmeta, 0);
  rt_st_close(f);
  free(copy);
  free(b.p);
}

/* Several dtypes, a scalar and zero-size tensors; data deliberately at an odd
 * address, read with memcpy as consumers must. Header order is kept. */
static void test_dtypes_scalars_and_empty(void **state) {
  (void)state;
  unsigned char data[64] = {0};
  size_t n = 0;
  const uint16_t bf16[2] = {0x3f80, 0xc000}; /* 1.0, -2.0 */
  memcpy(data + n, bf16, 4), n += 4;
  const uint16_t f16 = 0x3c00; /* 1.0 */
  memcpy(data + n, &f16, 2), n += 2;
  const int64_t i64[2] = {-5, INT64_MAX};
  memcpy(data + n, i64, 16), n += 16;
  data[n++] = 1, data[n++] = 0, data[n++] = 1; /* BOOL */
  const double scalar = 3.25;
  memcpy(data + n, &scalar, 8), n += 8;
  assert_int_equal(n, 33);
  const char *header = "{\"zb\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                       "\"h\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[4,6]},"
                       "\"empty\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[6,6]},"
                       "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[6,22]},"
                       "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[22,25]},"
                       "\"empty2\":{\"dtype\":\"F32\",\"shape\":[3,0,4],\"data_offsets\":[25,25]},"
                       "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[25,33]},"
                       "\"tail\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[33,33]}}";
  st_blob b = st_blob_padded(header, (strlen(header) + 1) % 2, data, n); /* 8 + header: odd */
  unsigned char *copy;
  rt_st_file *f;
  assert_int_equal(open_blob(b, &copy, &f), RT_OK);
  assert_int_equal(rt_st_count(f), 8);
  const char *order[] = {"zb", "h", "empty", "ids", "mask", "empty2", "s", "tail"};
  for (size_t i = 0; i < 8; i++) {
    assert_string_equal(rt_st_tensor_at(f, i)->name, order[i]);
    assert_ptr_equal(rt_st_find(f, order[i]), rt_st_tensor_at(f, i));
  }
  const rt_st_tensor *t = rt_st_find(f, "zb");
  assert_true((uintptr_t)t->data % 2 == 1); /* unaligned on purpose */
  uint16_t u16[2];
  memcpy(u16, t->data, 4);
  assert_int_equal(u16[0], 0x3f80);
  assert_int_equal(u16[1], 0xc000);
  assert_int_equal(t->dtype, RT_ST_BF16);
  t = rt_st_find(f, "h");
  assert_int_equal(t->dtype, RT_ST_F16);
  assert_int_equal(t->rank, 2);
  memcpy(u16, t->data, 2);
  assert_int_equal(u16[0], 0x3c00);
  t = rt_st_find(f, "empty");
  assert_true(t->numel == 0 && t->nbytes == 0 && t->rank == 1 && t->shape[0] == 0);
  t = rt_st_find(f, "ids");
  int64_t ids[2];
  memcpy(ids, t->data, 16);
  assert_true(ids[0] == -5 && ids[1] == INT64_MAX);
  t = rt_st_find(f, "mask");
  assert_int_equal(t->dtype, RT_ST_BOOL);
  assert_memory_equal(t->data, "\1\0\1", 3);
  t = rt_st_find(f, "empty2");
  assert_true(t->numel == 0 && t->rank == 3 && t->shape[2] == 4);
  t = rt_st_find(f, "s");
  assert_int_equal(t->rank, 0);
  assert_non_null(t->shape);
  assert_true(t->numel == 1 && t->nbytes == 8);
  double x;
  memcpy(&x, t->data, 8);
  assert_true(x == 3.25);
  rt_st_close(f);
  free(copy);
  free(b.p);
}

static void test_dtype_names_and_sizes(void **state) {
  (void)state;
  const char *names[RT_ST_DTYPE_COUNT] = {"BOOL", "U8",  "I8",  "U16", "I16", "F16", "BF16",
                                          "U32",  "I32", "F32", "U64", "I64", "F64"};
  const size_t sizes[RT_ST_DTYPE_COUNT] = {1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
  for (int t = 0; t < RT_ST_DTYPE_COUNT; t++) {
    assert_string_equal(rt_st_dtype_name((rt_st_dtype)t), names[t]);
    assert_int_equal(rt_st_dtype_size((rt_st_dtype)t), sizes[t]);
    /* Each name is accepted in a header and maps back to its enum. */
    char header[200];
    snprintf(header, sizeof header, "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}", names[t],
             3 * sizes[t]);
    st_blob b = st_blob_make(header, NULL, 3 * sizes[t]);
    unsigned char *copy;
    rt_st_file *f;
    assert_int_equal(open_blob(b, &copy, &f), RT_OK);
    assert_int_equal(rt_st_tensor_at(f, 0)->dtype, t);
    rt_st_close(f);
    free(copy);
    free(b.p);
  }
  assert_string_equal(rt_st_dtype_name(RT_ST_DTYPE_COUNT), "?");
  assert_int_equal(rt_st_dtype_size((rt_st_dtype)-1), 0);
}

static void test_metadata_and_padding(void **state) {
  (void)state;
  const char *header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\"},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
  /* Lots of padding, plus a tab and newline which JSON also allows. */
  st_blob b = st_blob_padded(header, 37, "\x05\x06", 2);
  b.p[8 + strlen(header) + 3] = '\n';
  b.p[8 + strlen(header) + 5] = '\t';
  unsigned char *copy;
  rt_st_file *f;
  assert_int_equal(open_blob(b, &copy, &f), RT_OK);
  assert_int_equal(rt_st_count(f), 1);
  size_t n;
  const rt_st_meta *m = rt_st_metadata(f, &n);
  assert_int_equal(n, 2);
  assert_string_equal(m[0].key, "format");
  assert_string_equal(m[0].value, "pt");
  assert_string_equal(m[1].key, "note");
  assert_string_equal(m[1].value, "caf\xc3\xa9");
  assert_string_equal(rt_st_metadata_get(f, "format"), "pt");
  assert_null(rt_st_metadata_get(f, "absent"));
  assert_memory_equal(rt_st_find(f, "b")->data, "\x05\x06", 2);
  rt_st_close(f);
  free(copy);
  free(b.p);

  /* No tensors at all is a valid (empty) file, and so is an empty metadata. */
  b = st_blob_make("{\"__metadata__\":{}}", NULL, 0);
  assert_int_equal(open_blob(b, &copy, &f), RT_OK);
  assert_int_equal(rt_st_count(f), 0);
  rt_st_metadata(f, &n);
  assert_int_equal(n, 0);
  rt_st_close(f);
  free(copy);
  free(b.p);
  rt_st_close(NULL);
}

/* A zero dim makes the element count 0 even if the other dims overflow. */
static void test_zero_dim_beats_overflow(void **state) {
  (void)state;
  st_blob b = st_blob_make("{\"z\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4,0],\"data_offsets\":[0,0]}}", NULL, 0);
  unsigned char *copy;
  rt_st_file *f;
  assert_int_equal(open_blob(b, &copy, &f), RT_OK);
  assert_true(rt_st_tensor_at(f, 0)->numel == 0);
  rt_st_close(f);
  free(copy);
  free(b.p);
}

/* ---- every fault ---- */

#define ENTRY(dtype, shape, offsets) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static void test_length_prefix_faults(void **state) {
  (void)state;
  expect_fail_blob((st_blob){malloc(1), 0}, RT_EFORMAT, "<memory>: the file is 0 bytes, too short for the 8-byte header length");
  st_blob b = {malloc(7), 7};
  memset(b.p, 0, 7);
  expect_fail_blob(b, RT_EFORMAT, "<memory>: the file is 7 bytes, too short");
  b = st_blob_make("{}", NULL, 4); /* claim more header than the file has */
  b.p[0] = 100;
  expect_fail_blob(b, RT_EFORMAT, "<memory>: header length 100 exceeds the 12 bytes after the length");
  b = st_blob_make("{}", NULL, 0);
  uint64_t big = RT_ST_MAX_HEADER + 1;
  for (int i = 0; i < 8; i++) b.p[i] = (unsigned char)(big >> (8 * i));
  expect_fail_blob(b, RT_EFORMAT, "<memory>: header length 100000001 exceeds the limit of 100000000 bytes");
  b = st_blob_make("{}", NULL, 0);
  memset(b.p, 0xff, 8);
  expect_fail_blob(b, RT_EFORMAT, "header length 18446744073709551615 exceeds the limit");
  /* A zero-length header is not JSON. */
  b = st_blob_padded("", 0, NULL, 0);
  expect_fail_blob(b, RT_EFORMAT, "<memory>: header: byte 0 (line 1, col 1): unexpected end of input, expected a value");
  rt_st_file *f;
  assert_int_equal(rt_st_open_memory(NULL, 0, &f), RT_EFORMAT);
  assert_null(f);
}

static void test_header_json_faults(void **state) {
  (void)state;
  expect_fail("{", 0, "<memory>: header: byte 8 (line 1, col 9): unexpected end of input, expected a string key");
  expect_fail("{\"w\":" ENTRY("F32", "[1]", "[0,4]") ",}", 4, "<memory>: header: byte 53 (line 1, col 54): trailing comma");
  expect_fail("[]", 0, "<memory>: the header is not a JSON object");
  expect_fail("\"w\"", 0, "<memory>: the header is not a JSON object");
  expect_fail("{\"w\xff\":1}", 0, "<memory>: header: byte 3 (line 1, col 4): invalid UTF-8 byte 0xff in a string");
  /* Padding must be whitespace: a NUL is trailing garbage. */
  st_blob b = st_blob_padded("{}", 6, NULL, 0);
  b.p[8 + 2] = 0;
  expect_fail_blob(b, RT_EFORMAT, "<memory>: header: byte 2 (line 1, col 3): expected the end of the input after the JSON value, got byte 0x00");
  expect_fail("{\"w\":" ENTRY("F32", "[1]", "[0,4]") ",\"w\":" ENTRY("F32", "[1]", "[4,8]") "}", 8,
              "<memory>: header: byte 54 (line 1, col 55): duplicate key \"w\" (previous at byte 1)");
}

static void test_entry_faults(void **state) {
  (void)state;
  expect_fail("{\"w\":1}", 0, "<memory>: tensor 'w': the entry is not an object");
  expect_fail("{\"w\":[]}", 0, "<memory>: tensor 'w': the entry is not an object");
  expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
              "<memory>: tensor 'w': unknown key 'extra'");
  expect_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "<memory>: tensor 'w': missing \"dtype\"");
  expect_fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "<memory>: tensor 'w': missing \"shape\"");
  expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "<memory>: tensor 'w': missing \"data_offsets\"");
  expect_fail("{\"w\":{}}", 0, "<memory>: tensor 'w': missing \"dtype\"");
  expect_fail("{\"w\":" ENTRY("F8_E4M3", "[1]", "[0,1]") "}", 1, "<memory>: tensor 'w': unknown dtype 'F8_E4M3'");
  expect_fail("{\"w\":" ENTRY("f32", "[1]", "[0,4]") "}", 4, "<memory>: tensor 'w': unknown dtype 'f32'");
  expect_fail("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "<memory>: tensor 'w': \"dtype\" is not a string");
  expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, "<memory>: tensor 'w': \"shape\" is not an array");
  expect_fail("{\"w\":" ENTRY("F32", "[\"1\"]", "[0,4]") "}", 4, "<memory>: tensor 'w': shape[0] is not an integer");
  expect_fail("{\"w\":" ENTRY("F32", "[1, 1.5]", "[0,4]") "}", 4, "<memory>: tensor 'w': shape[1] is not an integer");
  expect_fail("{\"w\":" ENTRY("F32", "[1e2]", "[0,400]") "}", 400, "<memory>: tensor 'w': shape[0] is not an integer");
  expect_fail("{\"w\":" ENTRY("F32", "[2,-3]", "[0,4]") "}", 4, "<memory>: tensor 'w': shape[1] is negative (-3)");
  expect_fail("{\"w\":" ENTRY("F32", "[18446744073709551616]", "[0,4]") "}", 4, "<memory>: tensor 'w': shape[0] is not an integer");
  expect_fail("{\"w\":" ENTRY("F32", "[4294967296,4294967296,4]", "[0,4]") "}", 4,
              "<memory>: tensor 'w': the element count of F32[4294967296, 4294967296, 4] overflows");
  expect_fail("{\"w\":" ENTRY("F64", "[4611686018427387904]", "[0,4]") "}", 4,
              "<memory>: tensor 'w': the byte size of F64[4611686018427387904] overflows");
  /* A very long shape is cut in the message. */
  char header[4000];
  int n = snprintf(header, sizeof header, "{\"w\":{\"dtype\":\"F32\",\"shape\":[");
  for (int i = 0; i < 300; i++) n += snprintf(header + n, sizeof header - (size_t)n, "%s65536", i ? "," : "");
  snprintf(header + n, sizeof header - (size_t)n, "],\"data_offsets\":[0,4]}}");
  expect_fail(header, 4, "<memory>: tensor 'w': the element count of F32[65536, 65536, 65536, 65536");
  expect_fail(header, 4, "...] overflows");
}

static void test_offset_faults(void **state) {
  (void)state;
  const char *bad_shape = "\"data_offsets\" must be [begin, end], two non-negative integers";
  const char *offsets[] = {"[0]", "[0,4,8]", "\"0,4\"", "[0,\"4\"]", "[-1,3]", "[0,4.0]", "[0,null]", "{}"};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    char header[200], want[200];
    snprintf(header, sizeof header, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":%s}}", offsets[i]);
    snprintf(want, sizeof want, "<memory>: tensor 'w': %s", bad_shape);
    expect_fail(header, 4, want);
  }
  expect_fail("{\"w\":" ENTRY("F32", "[1]", "[8,4]") "}", 8, "<memory>: tensor 'w': data_offsets [8, 4] end before they begin");
  expect_fail("{\"enc.weight\":" ENTRY("F32", "[5,6]", "[0,100]") "}", 100,
              "<memory>: tensor 'enc.weight': data_offsets [0, 100] span 100 bytes, but F32[5, 6] needs 120");
  expect_fail("{\"s\":" ENTRY("F64", "[]", "[0,4]") "}", 4, "<memory>: tensor 's': data_offsets [0, 4] span 4 bytes, but F64[] needs 8");
  expect_fail("{\"w\":" ENTRY("F32", "[2]", "[0,8]") "}", 4, "<memory>: tensor 'w': data_offsets [0, 8] end beyond the data section (4 bytes)");
  expect_fail("{\"w\":" ENTRY("U8", "[1]", "[9223372036854775806,9223372036854775807]") "}", 4,
              "<memory>: tensor 'w': data_offsets [9223372036854775806, 9223372036854775807] end beyond the data section (4 bytes)");
}

static void test_layout_faults(void **state) {
  (void)state;
  expect_fail("{\"w\":" ENTRY("F32", "[1]", "[4,8]") "}", 8,
              "<memory>: tensor 'w': data_offsets [4, 8] leave a gap: bytes [0, 4) of the data section belong to no tensor");
  expect_fail("{\"a\":" ENTRY("F32", "[1]", "[0,4]") ",\"b\":" ENTRY("F32", "[1]", "[8,12]") "}", 12,
              "<memory>: tensor 'b': data_offsets [8, 12] leave a gap: bytes [4, 8)");
  /* Listed out of order: the layout is checked sorted by offset. */
  expect_fail("{\"b\":" ENTRY("F32", "[1]", "[8,12]") ",\"a\":" ENTRY("F32", "[1]", "[0,4]") "}", 12,
              "<memory>: tensor 'b': data_offsets [8, 12] leave a gap: bytes [4, 8)");
  expect_fail("{\"a\":" ENTRY("F32", "[2]", "[0,8]") ",\"b\":" ENTRY("F32", "[1]", "[4,8]") "}", 8,
              "<memory>: tensor 'b': data_offsets [4, 8] overlap tensor 'a' [0, 8]");
  expect_fail("{\"a\":" ENTRY("F32", "[1]", "[0,4]") ",\"b\":" ENTRY("F32", "[1]", "[0,4]") "}", 4,
              "<memory>: tensor 'b': data_offsets [0, 4] overlap tensor 'a' [0, 4]");
  /* A zero-size tensor inside another one overlaps it too. */
  expect_fail("{\"a\":" ENTRY("F32", "[2]", "[0,8]") ",\"e\":" ENTRY("F32", "[0]", "[4,4]") "}", 8,
              "<memory>: tensor 'e': data_offsets [4, 4] overlap tensor 'a' [0, 8]");
  expect_fail("{\"a\":" ENTRY("F32", "[1]", "[0,4]") "}", 6,
              "<memory>: tensor 'a': the last tensor ends at 4, leaving 2 trailing bytes in the data section (6 bytes)");
  expect_fail("{}", 3, "<memory>: the header lists no tensors but the data section holds 3 bytes");
  expect_fail("{\"__metadata__\":{}}", 1, "<memory>: the header lists no tensors but the data section holds 1 bytes");
}

static void test_name_and_metadata_faults(void **state) {
  (void)state;
  expect_fail("{\"__metadata__\":[]," "\"w\":" ENTRY("F32", "[1]", "[0,4]") "}", 4, "<memory>: __metadata__ is not an object");
  expect_fail("{\"__metadata__\":{\"a\":\"x\",\"k\":1}}", 0, "<memory>: __metadata__ entry 'k' is not a string");
  expect_fail("{\"__metadata__\":{\"k\":null}}", 0, "<memory>: __metadata__ entry 'k' is not a string");
  expect_fail("{\"a\\u0000b\":" ENTRY("F32", "[1]", "[0,4]") "}", 4, "<memory>: tensor 'a\\x00b': the name contains a NUL character");
  /* Keys are compared whole, NULs included. */
  expect_fail("{\"w\":{\"dtype\":\"F32\",\"dtype\\u0000\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
              "<memory>: tensor 'w': unknown key 'dtype\\x00'");
  expect_fail("{\"__metadata__\\u0000\":{}}", 0, "<memory>: tensor '__metadata__\\x00': the name contains a NUL character");
  /* Names reach messages escaped. */
  expect_fail("{\"a\\nb\":" ENTRY("F32", "[1]", "[0,8]") "}", 8, "<memory>: tensor 'a\\x0ab': data_offsets [0, 8] span 8 bytes");
  assert_int_equal(rt_st_open_memory("x", 1, NULL), RT_EINVAL);
  rt_st_file *f;
  assert_int_equal(rt_st_open_memory(NULL, 8, &f), RT_EINVAL);
  assert_null(f);
}

/* ---- files ---- */

static void test_open_files(void **state) {
  (void)state;
  int32_t v[3] = {7, -8, 9};
  st_blob b = st_blob_make("{\"__metadata__\":{\"k\":\"v\"},\"v\":" ENTRY("I32", "[3]", "[0,12]") "}", v, sizeof v);
  char *path = st_write_temp(b.p, b.n);
  rt_st_file *f;
  assert_int_equal(rt_st_open(path, &f), RT_OK);
  assert_string_equal(rt_st_name(f), path);
  const rt_st_tensor *t = rt_st_find(f, "v");
  assert_non_null(t);
  int32_t got[3];
  memcpy(got, t->data, sizeof got);
  assert_memory_equal(got, v, sizeof v);
  assert_string_equal(rt_st_metadata_get(f, "k"), "v");
  rt_st_close(f);
  unlink(path);
  free(path);

  /* Truncated in the data section: the last tensor runs past the end. */
  path = st_write_temp(b.p, b.n - 3);
  assert_int_equal(rt_st_open(path, &f), RT_EFORMAT);
  assert_null(f);
  assert_non_null(strstr(rt_last_error(), path));
  assert_non_null(strstr(rt_last_error(), "tensor 'v': data_offsets [0, 12] end beyond the data section (9 bytes)"));
  unlink(path);
  free(path);

  /* Truncated in the header. */
  path = st_write_temp(b.p, 20);
  assert_int_equal(rt_st_open(path, &f), RT_EFORMAT);
  assert_non_null(strstr(rt_last_error(), "exceeds the 12 bytes after the length"));
  unlink(path);
  free(path);

  path = st_write_temp("", 0);
  assert_int_equal(rt_st_open(path, &f), RT_EFORMAT);
  char want[300];
  snprintf(want, sizeof want, "%s: the file is 0 bytes, too short for the 8-byte header length", path);
  assert_string_equal(rt_last_error(), want);
  unlink(path);
  free(path);
  free(b.p);

  char dir[] = "/tmp/seqc_st_dir_XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(rt_st_open(dir, &f), RT_EIO);
  assert_null(f);
  snprintf(want, sizeof want, "%s: not a regular file (a directory)", dir);
  assert_string_equal(rt_last_error(), want);
  rmdir(dir);

  assert_int_equal(rt_st_open("/nonexistent/seqc/model.safetensors", &f), RT_EIO);
  assert_string_equal(rt_last_error(), "/nonexistent/seqc/model.safetensors: cannot open: No such file or directory");
  assert_int_equal(rt_st_open(NULL, &f), RT_EINVAL);
  assert_int_equal(rt_st_open("x", NULL), RT_EINVAL);
}

/* ---- mutation fuzzing ---- */

static uint64_t next_random(uint64_t *s) { /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Whatever the damage, the reader fails cleanly or returns descriptors that
 * are consistent and stay inside the buffer. */
static void check_consistent(const unsigned char *buf, size_t n, const rt_st_file *f) {
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
  size_t covered = 0;
  for (size_t i = 0; i < rt_st_count(f); i++) {
    const rt_st_tensor *t = rt_st_tensor_at(f, i);
    assert_ptr_equal(rt_st_find(f, t->name), t);
    assert_true(t->nbytes == (size_t)t->numel * rt_st_dtype_size(t->dtype));
    assert_true((const unsigned char *)t->data == buf + 8 + hlen + t->offset);
    assert_true(t->offset + t->nbytes <= n - 8 - hlen);
    for (size_t d = 0; d < t->rank; d++) assert_true(t->shape[d] >= 0);
    covered += t->nbytes;
  }
  assert_int_equal(covered, n - 8 - hlen);
}

static void test_mutation_fuzz(void **state) {
  (void)state;
  const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":" ENTRY("F32", "[2,2]", "[0,16]") ","
                       "\"b\":" ENTRY("BF16", "[3]", "[16,22]") ","
                       "\"c\":" ENTRY("I64", "[]", "[22,30]") ","
                       "\"d\":" ENTRY("BOOL", "[0]", "[30,30]") ","
                       "\"e\":" ENTRY("U8", "[2]", "[30,32]") "}";
  st_blob base = st_blob_make(header, NULL, 32);
  const char alphabet[] = "{}[],:\"0123456789-.eE \\u";
  uint64_t seed = 0x5eed5eed12345ULL;
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; iter++) {
    unsigned char *buf = malloc(base.n);
    assert_non_null(buf);
    memcpy(buf, base.p, base.n);
    size_t n = base.n;
    int edits = 1 + (int)(next_random(&seed) % 3);
    for (int e = 0; e < edits; e++) {
      size_t at = next_random(&seed) % n;
      switch (next_random(&seed) % 4) {
      case 0: buf[at] ^= (unsigned char)(1u << next_random(&seed) % 8); break;
      case 1: buf[at] = (unsigned char)alphabet[next_random(&seed) % (sizeof alphabet - 1)]; break;
      case 2: buf[at] = (unsigned char)next_random(&seed); break;
      default: n = at; break; /* truncate */
      }
      if (n == 0) break;
    }
    unsigned char *exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, buf, n);
    rt_st_file *f = NULL;
    rt_status st = rt_st_open_memory(exact, n, &f);
    if (st == RT_OK) {
      check_consistent(exact, n, f);
      rt_st_close(f);
      accepted++;
    } else {
      assert_int_equal(st, RT_EFORMAT);
      assert_null(f);
      assert_true(strncmp(rt_last_error(), "<memory>: ", 10) == 0);
      rejected++;
    }
    free(exact);
    free(buf);
  }
  free(base.p);
  /* Some mutations are harmless (a digit of the data, padding): both outcomes occur. */
  assert_true(accepted > 100);
  assert_true(rejected > 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f32_tensor),
      cmocka_unit_test(test_dtypes_scalars_and_empty),
      cmocka_unit_test(test_dtype_names_and_sizes),
      cmocka_unit_test(test_metadata_and_padding),
      cmocka_unit_test(test_zero_dim_beats_overflow),
      cmocka_unit_test(test_length_prefix_faults),
      cmocka_unit_test(test_header_json_faults),
      cmocka_unit_test(test_entry_faults),
      cmocka_unit_test(test_offset_faults),
      cmocka_unit_test(test_layout_faults),
      cmocka_unit_test(test_name_and_metadata_faults),
      cmocka_unit_test(test_open_files),
      cmocka_unit_test(test_mutation_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
