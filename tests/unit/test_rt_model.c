/* Unit tests for the runtime core (runtime/model.h). Models are hand-written
 * descriptors with C run/dims/scratch_bytes functions in the shape seqc
 * generates: "tagger" (y = x * w + b per row, and an embedding gather e =
 * emb[ids] that reports status 2 for an id outside the vocabulary V),
 * "widen" and "strict" (copy their parameters to their outputs, to observe
 * conversions). Weights are safetensors files built by st_writer.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "runtime/exec.h"
#include "runtime/model.h"
#include "tests/unit/st_writer.h"

/* ---- the tagger model ------------------------------------------------------------ */

enum { SB, SD, ST, SV }; /* symbol indices, sorted by name as seqc does */
enum { D = 4, V = 5 };   /* the weights' sizes */

static void tagger_dims(const int64_t *s, int64_t *out) {
  const int64_t dims[] = {s[SB], s[SD], s[SB], s[ST],            /* x, ids */
                          s[SD], s[SD], s[SV], s[SD],            /* w, b, emb */
                          s[SB], s[SD], s[SB], s[ST], s[SD]};    /* y, e */
  memcpy(out, dims, sizeof dims);
}

static int64_t tagger_scratch(const int64_t *s) { return s[SD] * 4; } /* one row */

/* args in signature order: w, x, emb, ids, b. */
static int32_t tagger_run(const int64_t *s, void *const *args, void *const *outs, void *scratch, void *exec) {
  const float *w = args[0], *x = args[1], *emb = args[2], *b = args[4];
  const int32_t *ids = args[3];
  float *y = outs[0], *e = outs[1], *row = scratch;
  /* The runtime passes aligned scratch and parameters, and no NULL even for empty tensors. */
  if ((uintptr_t)scratch % 64 || (uintptr_t)w % 64 || (uintptr_t)emb % 64) return RT_RUN_DIM_MISMATCH;
  if (!x || !ids || !b || !y || !e) return RT_RUN_DIM_MISMATCH;
  for (int64_t r = 0; r < s[SB]; r++) {
    for (int64_t j = 0; j < s[SD]; j++) row[j] = x[r * s[SD] + j] * w[j];
    for (int64_t j = 0; j < s[SD]; j++) y[r * s[SD] + j] = row[j] + b[j];
  }
  for (int64_t k = 0; k < s[SB] * s[ST]; k++) {
    if (ids[k] < 0 || ids[k] >= s[SV]) return RT_RUN_INDEX_RANGE;
    memcpy(e + k * s[SD], emb + ids[k] * s[SD], (size_t)s[SD] * sizeof(float));
  }
  return 0;
}

static const char *const tagger_symbols[] = {"B", "D", "T", "V"};
static const int32_t dims_BD[] = {SB, SD}, dims_BT[] = {SB, ST}, dims_D[] = {SD},
                     dims_VD[] = {SV, SD}, dims_BTD[] = {SB, ST, SD};
static const rt_tensor_desc tagger_inputs[] = {{"x", RT_DT_F32, 2, dims_BD},
                                               {"ids", RT_DT_I32, 2, dims_BT}};
static const rt_tensor_desc tagger_params[] = {
    {"w", RT_DT_F32, 1, dims_D}, {"b", RT_DT_F32, 1, dims_D}, {"emb", RT_DT_F32, 2, dims_VD}};
static const rt_tensor_desc tagger_outputs[] = {{"y", RT_DT_F32, 2, dims_BD},
                                                {"e", RT_DT_F32, 3, dims_BTD}};
static const int32_t tagger_arg_order[] = {2, 0, 4, 1, 3}; /* w, x, emb, ids, b */
static const int32_t tagger_param_syms[] = {SD, SV}, tagger_call_syms[] = {SB, ST};

/* A program without values computed at open. */
static int32_t no_init(const int64_t *s, void *const *args, void *const *hoisted, void *scratch) { return 0; }
static int64_t no_bytes(const int64_t *s) { return 0; }
#define PROGRAM(run, scratch, n_symbols) {run, scratch, no_init, no_bytes, 0, NULL, NULL, n_symbols, NULL, 0, NULL}

static const seqrt_program tagger_program = PROGRAM(tagger_run, tagger_scratch, 4);
static const rt_model_desc tagger = {
    "tagger", 0x1234, 4, tagger_symbols, 2, tagger_inputs, 3, tagger_params, tagger_arg_order,
    2, tagger_outputs, tagger_dims, 2, tagger_param_syms, 2, tagger_call_syms,
    NULL, /* entry points: the runtime does not use them */
    &tagger_program, -1, "no T", NULL, 0, NULL, NULL, NULL};

static const float W[D] = {1, 2, -1, 0.5f}, BIAS[D] = {0.25f, 0, 1, -2};

static float emb_value(int v, int j) { return (float)(v * 10 + j); }

/* The tagger's weights, optionally replaced or extended. */
static st_blob tagger_weights(void) {
  float emb[V * D];
  for (int k = 0; k < V * D; k++) emb[k] = emb_value(k / D, k % D);
  st_tensor t[] = {{"emb", "F32", 2, {V, D}, emb}, {"w", "F32", 1, {D}, W}, {"b", "F32", 1, {D}, BIAS}};
  return st_build(t, 3);
}

static rt_model *open_tagger(void) {
  st_blob b = tagger_weights();
  rt_model *m = NULL;
  rt_status st = rt_model_open_memory(&tagger, b.p, b.n, NULL, &m);
  if (st != RT_OK) fail_msg("%s", rt_last_error());
  free(b.p); /* the model keeps no reference to the buffer */
  return m;
}

/* Inputs for B rows of T tokens and checks of the outputs. */
typedef struct tagger_io {
  float x[8 * D], y[8 * D], e[8 * 8 * D];
  int32_t ids[8 * 8];
} tagger_io;

static void fill_inputs(tagger_io *io, int64_t B, int64_t T) {
  for (int64_t k = 0; k < B * D; k++) io->x[k] = (float)k * 0.5f - 3;
  for (int64_t k = 0; k < B * T; k++) io->ids[k] = (int32_t)((k * 3) % V);
}

static rt_status forward_io(rt_ctx *c, tagger_io *io, int64_t B, int64_t T) {
  const int64_t syms[] = {B, T};
  const void *in[] = {io->x, io->ids};
  void *out[] = {io->y, io->e};
  return rt_forward(c, syms, in, out);
}

static void check_outputs(const tagger_io *io, int64_t B, int64_t T) {
  for (int64_t k = 0; k < B * D; k++) assert_true(io->y[k] == io->x[k] * W[k % D] + BIAS[k % D]);
  for (int64_t k = 0; k < B * T * D; k++) assert_true(io->e[k] == emb_value(io->ids[k / D], (int)(k % D)));
}

static void expect_error(rt_status got, rt_status want, const char *substring) {
  if (got != want) fail_msg("status %d, want %d (%s)", got, want, rt_last_error());
  if (!strstr(rt_last_error(), substring))
    fail_msg("message \"%s\" lacks \"%s\"", rt_last_error(), substring);
}

/* ---- open, forward --------------------------------------------------------------- */

static void test_open_memory_and_forward(void **state) {
  (void)state;
  rt_model *m = open_tagger();
  assert_ptr_equal(rt_model_descriptor(m), &tagger);
  int64_t v = 0;
  assert_int_equal(rt_model_symbol(m, SV, &v), RT_OK);
  assert_int_equal(v, V);
  assert_int_equal(rt_model_symbol(m, SD, &v), RT_OK);
  assert_int_equal(v, D);
  expect_error(rt_model_symbol(m, SB, &v), RT_EINVAL, "tagger: symbol index 0 is not a parameter symbol");
  expect_error(rt_model_symbol(m, 99, &v), RT_EINVAL, "not a parameter symbol");

  rt_ctx *c;
  const int64_t max[] = {4, 3};
  assert_int_equal(rt_ctx_new(m, max, &c), RT_OK);
  tagger_io io;
  memset(&io, 0, sizeof io);
  for (int64_t B = 0; B <= 4; B++)
    for (int64_t T = 0; T <= 3; T++) {
      fill_inputs(&io, B, T);
      assert_int_equal(forward_io(c, &io, B, T), RT_OK);
      check_outputs(&io, B, T);
    }
  /* Empty tensors may be NULL. */
  const int64_t zero[] = {0, 0};
  const void *in[] = {NULL, NULL};
  void *out[] = {NULL, NULL};
  assert_int_equal(rt_forward(c, zero, in, out), RT_OK);
  const int64_t b2t0[] = {2, 0};
  in[0] = io.x, out[0] = io.y;
  assert_int_equal(rt_forward(c, b2t0, in, out), RT_OK);
  rt_ctx_free(c);
  rt_model_close(m);
  rt_ctx_free(NULL);
  rt_model_close(NULL);
}

static bool mapped(const char *path) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[4096];
  bool found = false;
  while (fgets(line, sizeof line, f)) found = found || strstr(line, path);
  fclose(f);
  return found;
}

/* The file is closed and unmapped by open: unlinking it changes nothing. */
static void test_open_file_then_unlink(void **state) {
  (void)state;
  st_blob b = tagger_weights();
  char *path = st_write_temp(b.p, b.n);
  rt_model *m;
  assert_int_equal(rt_model_open(&tagger, path, NULL, &m), RT_OK);
  assert_false(mapped(path));
  unlink(path);
  rt_ctx *c;
  const int64_t max[] = {2, 2};
  assert_int_equal(rt_ctx_new(m, max, &c), RT_OK);
  tagger_io io;
  fill_inputs(&io, 2, 2);
  assert_int_equal(forward_io(c, &io, 2, 2), RT_OK);
  check_outputs(&io, 2, 2);
  rt_ctx_free(c);
  rt_model_close(m);

  m = (rt_model *)1;
  expect_error(rt_model_open(&tagger, path, NULL, &m), RT_EIO, "cannot open");
  assert_null(m);
  expect_error(rt_model_open(&tagger, NULL, NULL, &m), RT_EINVAL, "");
  expect_error(rt_model_open(&tagger, "x", NULL, NULL), RT_EINVAL, "out is NULL");
  expect_error(rt_model_open_memory(&tagger, NULL, 8, NULL, &m), RT_EINVAL, "");
  expect_error(rt_model_open_memory(&tagger, b.p, b.n, NULL, NULL), RT_EINVAL, "out is NULL");
  expect_error(rt_model_open_memory(&tagger, b.p, 5, NULL, &m), RT_EFORMAT,
               "<memory>: the file is 5 bytes");
  free(path);
  free(b.p);
}

/* ---- binding errors -------------------------------------------------------------- */

static void expect_bind_error(const rt_model_desc *d, const st_tensor *t, size_t n,
                              const char *const *parts) {
  st_blob b = st_build(t, n);
  rt_model *m = (rt_model *)1;
  rt_status st = rt_model_open_memory(d, b.p, b.n, NULL, &m);
  free(b.p);
  assert_null(m);
  for (; *parts; parts++) expect_error(st, RT_EFORMAT, *parts);
}

static void test_binding_errors_listed_together(void **state) {
  (void)state;
  float f[64] = {0};
  int32_t i[4] = {0};
  /* b missing, D disagreeing between w and emb, an extra tensor. */
  const st_tensor t1[] = {{"w", "F32", 1, {D}, f}, {"emb", "F32", 2, {V, 3}, f}, {"zz", "F32", 1, {1}, f}};
  const char *const want1[] = {"<memory>: the weights do not fit model 'tagger' (3 problems): "
                               "missing tensor 'b' (f32, rank 1); 'emb' gives D = 3, but 'w' gives 4; "
                               "unexpected tensor 'zz'", NULL};
  expect_bind_error(&tagger, t1, 3, want1);
  /* A dtype that does not convert, a wrong rank, a name needing escapes. */
  const st_tensor t2[] = {{"w", "I32", 1, {D}, i}, {"b", "F32", 2, {D, 1}, f},
                          {"emb", "F32", 2, {V, D}, f}, {"b\\n\\u0001", "F32", 0, {0}, f}};
  const char *const want2[] = {"(3 problems): 'w' is I32, which does not convert to f32; 'b' has rank 2, "
                               "expected 1; unexpected tensor 'b\\x0a\\x01'", NULL};
  expect_bind_error(&tagger, t2, 4, want2);
  /* Many problems: the message stays bounded and says so. */
  st_tensor many[40];
  char names[40][40];
  for (int k = 0; k < 40; k++) {
    snprintf(names[k], sizeof names[k], "an_unexpected_tensor_number_%02d", k);
    many[k] = (st_tensor){names[k], "F32", 1, {1}, f};
  }
  const char *const want3[] = {"(43 problems): missing tensor 'w' (f32, rank 1); missing tensor 'b'",
                               "unexpected tensor 'an_unexpected_tensor_number_00'", "; ...", NULL};
  expect_bind_error(&tagger, many, 40, want3);
  assert_true(strlen(rt_last_error()) < 500);
}

/* ---- the copy models: conversions ------------------------------------------------ */

enum { N = 65536 };

/* Copies params to the outputs (the same number, N elements each except a static [3]). */
static int32_t copy_params(const rt_model_desc *d, const int64_t *s, void *const *args, void *const *outs) {
  for (int32_t i = 0; i < d->n_params; i++) {
    int64_t n = strcmp(d->params[i].name, "k") ? s[0] : 3;
    memcpy(outs[i], args[i], (size_t)n * rt_dtype_size(d->params[i].dtype));
  }
  return 0;
}

static void widen_dims(const int64_t *s, int64_t *out) { /* a, c, and their copies: [N] */
  for (int i = 0; i < 4; i++) out[i] = s[0];
}
static void strict_dims(const int64_t *s, int64_t *out) { /* [N] except k: [3] */
  for (int i = 0; i < 12; i++) out[i] = i % 6 == 5 ? 3 : s[0];
}
static int64_t no_scratch(const int64_t *s) { return 0; }

static const char *const n_symbol[] = {"N"};
static const int32_t dims_N[] = {0}, sym_N[] = {0};
static const rt_tensor_desc widen_params[] = {{"a", RT_DT_F32, 1, dims_N}, {"c", RT_DT_F64, 1, dims_N}};
static const int32_t widen_order[] = {0, 1}, strict_order[] = {0, 1, 2, 3, 4, 5};
extern const rt_model_desc widen, strict;
static int32_t widen_run(const int64_t *s, void *const *a, void *const *o, void *scratch, void *exec) {
  return copy_params(&widen, s, a, o);
}
static const seqrt_program widen_program = PROGRAM(widen_run, no_scratch, 1);
const rt_model_desc widen = {"widen", 1, 1, n_symbol, 0, NULL, 2, widen_params, widen_order, 2,
                             widen_params, widen_dims, 1, sym_N, 0, NULL, NULL, &widen_program,
                             -1, "no T", NULL, 0, NULL, NULL, NULL};

static const rt_tensor_desc strict_params[] = {
    {"h", RT_DT_F16, 1, dims_N}, {"g", RT_DT_BF16, 1, dims_N}, {"i", RT_DT_I32, 1, dims_N},
    {"l", RT_DT_I64, 1, dims_N}, {"m", RT_DT_BOOL, 1, dims_N}, {"k", RT_DT_I32, 1, NULL}};
static int32_t strict_run(const int64_t *s, void *const *a, void *const *o, void *scratch, void *exec) {
  return copy_params(&strict, s, a, o);
}
static const seqrt_program strict_program = PROGRAM(strict_run, no_scratch, 1);
const rt_model_desc strict = {"strict", 2, 1, n_symbol, 0, NULL, 6, strict_params, strict_order, 6,
                              strict_params, strict_dims, 1, sym_N, 0, NULL, NULL, &strict_program,
                              -1, "no T", NULL, 0, NULL, NULL, NULL};

/* Opens `d` on the tensors and copies its parameters into outs. */
static void run_copy(const rt_model_desc *d, const st_tensor *t, size_t n, void *const *outs) {
  st_blob b = st_build(t, n);
  rt_model *m;
  rt_ctx *c;
  if (rt_model_open_memory(d, b.p, b.n, NULL, &m) != RT_OK) fail_msg("%s", rt_last_error());
  free(b.p);
  assert_int_equal(rt_ctx_new(m, NULL, &c), RT_OK);
  assert_int_equal(rt_forward(c, NULL, NULL, outs), RT_OK);
  rt_ctx_free(c);
  rt_model_close(m);
}

/* The value of an f16 pattern by arithmetic (not bit shuffling). */
static double f16_value(uint16_t h) {
  int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  double v = exp == 31 ? INFINITY : exp ? ldexp(1024 + man, exp - 25) : ldexp(man, -24);
  return h & 0x8000 ? -v : v;
}

/* signbit's nonzero value differs between float and double. */
static bool same_sign(double a, double b) { return !signbit(a) == !signbit(b); }

static void check_f32(float got, uint32_t src_bits, double want, bool nan) {
  uint32_t bits;
  memcpy(&bits, &got, 4);
  if (nan) assert_true(isnan(got) && bits == src_bits);
  else assert_true(got == (float)want && same_sign(got, want));
}

static void test_widening_is_exact(void **state) {
  (void)state;
  uint16_t *half = malloc(N * 2);
  uint32_t *f32 = malloc(N * 4);
  float *a = malloc(N * 4);
  double *c = malloc(N * 8);
  assert_true(half && f32 && a && c);
  for (uint32_t k = 0; k < N; k++) half[k] = (uint16_t)k, f32[k] = k * 65537u;
  void *outs[] = {a, c};

  /* F16: every pattern, to f32 and f64; NaN payloads move to the top bits. */
  const st_tensor from_f16[] = {{"a", "F16", 1, {N}, half}, {"c", "F16", 1, {N}, half}};
  run_copy(&widen, from_f16, 2, outs);
  for (uint32_t k = 0; k < N; k++) {
    bool nan = (k & 0x7c00) == 0x7c00 && (k & 0x3ff);
    uint32_t nan_bits = (k & 0x8000) << 16 | 0x7f800000u | (k & 0x3ff) << 13;
    check_f32(a[k], nan_bits, f16_value((uint16_t)k), nan);
    if (nan) assert_true(isnan(c[k]));
    else assert_true(c[k] == f16_value((uint16_t)k) && same_sign(c[k], f16_value((uint16_t)k)));
  }
  /* BF16: every pattern; it is the top half of an f32. */
  const st_tensor from_bf16[] = {{"a", "BF16", 1, {N}, half}, {"c", "BF16", 1, {N}, half}};
  run_copy(&widen, from_bf16, 2, outs);
  for (uint32_t k = 0; k < N; k++) {
    uint32_t bits = k << 16, got;
    float want;
    memcpy(&want, &bits, 4);
    memcpy(&got, &a[k], 4);
    assert_int_equal(got, bits);
    assert_true(isnan(want) ? isnan(c[k]) : c[k] == (double)want);
  }
  /* F32 to f64 (F32 to f32 is a copy): patterns spread over every exponent. */
  const st_tensor from_f32[] = {{"a", "F32", 1, {N}, f32}, {"c", "F32", 1, {N}, f32}};
  run_copy(&widen, from_f32, 2, outs);
  for (uint32_t k = 0; k < N; k++) {
    float want;
    memcpy(&want, &f32[k], 4);
    assert_memory_equal(&a[k], &f32[k], 4);
    if (isnan(want)) {
      uint64_t bits;
      memcpy(&bits, &c[k], 8);
      assert_true(bits >> 63 == f32[k] >> 31);
      assert_true((bits & 0xfffffffffffffull) == (uint64_t)(f32[k] & 0x7fffff) << 29);
    } else {
      assert_true(c[k] == (double)want && same_sign(c[k], want));
    }
  }
  free(half), free(f32), free(a), free(c);
}

static void test_exact_dtypes_and_narrowing(void **state) {
  (void)state;
  enum { NS = 256 }; /* every byte value for bool */
  uint16_t h[NS];
  int32_t i[NS];
  int64_t l[NS];
  unsigned char m[NS];
  int32_t k[3] = {7, 8, 9};
  for (int j = 0; j < NS; j++)
    h[j] = (uint16_t)(j * 7), i[j] = j - 3, l[j] = (int64_t)j << 40, m[j] = (unsigned char)j;
  uint16_t oh[NS], og[NS];
  int32_t oi[NS], ok[3];
  int64_t ol[NS];
  unsigned char om[NS];
  void *outs[] = {oh, og, oi, ol, om, ok};
  const st_tensor good[] = {{"h", "F16", 1, {NS}, h}, {"g", "BF16", 1, {NS}, h}, {"i", "I32", 1, {NS}, i},
                            {"l", "I64", 1, {NS}, l}, {"m", "BOOL", 1, {NS}, m}, {"k", "I32", 1, {3}, k}};
  run_copy(&strict, good, 6, outs);
  assert_memory_equal(oh, h, sizeof h);
  assert_memory_equal(og, h, sizeof h);
  assert_memory_equal(oi, i, sizeof i);
  assert_memory_equal(ol, l, sizeof l);
  assert_memory_equal(ok, k, sizeof k);
  for (int j = 0; j < NS; j++) assert_int_equal(om[j], m[j] != 0); /* bool bytes normalized */

  /* Narrowing or changing kind is refused, all reported at once; k's static shape too. */
  const st_tensor bad[] = {{"h", "F32", 1, {NS}, i}, {"g", "F16", 1, {NS}, h}, {"i", "I64", 1, {NS}, l},
                           {"l", "I32", 1, {NS}, i}, {"m", "U8", 1, {NS}, m}, {"k", "I32", 1, {2}, k}};
  const char *const want[] = {"(6 problems): 'h' is F32, which does not convert to f16; 'g' is F16, which "
                              "does not convert to bf16; 'i' is I64, which does not convert to i32; 'l' is "
                              "I32, which does not convert to i64; 'm' is U8, which does not convert to bool; "
                              "'k' has shape [2], expected [3]", NULL};
  expect_bind_error(&strict, bad, 6, want);
  const st_tensor f64[] = {{"a", "F64", 1, {1}, l}, {"c", "F64", 1, {1}, l}};
  const char *const want64[] = {"(1 problem): 'a' is F64, which does not convert to f32", NULL};
  expect_bind_error(&widen, f64, 2, want64);
  /* With N unbound (its tensors missing), k's static shape is still checked. */
  const st_tensor only_k[] = {{"k", "I32", 1, {2}, k}};
  const char *const want_k[] = {"(6 problems): missing tensor 'h' (f16, rank 1)",
                                "'k' has shape [2], expected [3]", NULL};
  expect_bind_error(&strict, only_k, 1, want_k);
}

/* ---- descriptor and options -------------------------------------------------------- */

static void expect_bad_descriptor(const rt_model_desc *d, const char *substring) {
  st_blob b = tagger_weights();
  rt_model *m = (rt_model *)1;
  expect_error(rt_model_open_memory(d, b.p, b.n, NULL, &m), RT_EINVAL, substring);
  assert_null(m);
  free(b.p);
}

static void dims_w_uses_T(const int64_t *s, int64_t *out) {
  tagger_dims(s, out);
  out[4] = s[SD] + s[ST] - 1;
}

static void test_descriptor_validation(void **state) {
  (void)state;
  expect_bad_descriptor(NULL, "model descriptor is NULL");
  rt_model_desc d = tagger;
  seqrt_program p = tagger_program;
  p.run = NULL, d.forward = &p;
  expect_bad_descriptor(&d, "tagger: invalid model descriptor: a name or function is NULL");
  d = tagger, d.forward = NULL;
  expect_bad_descriptor(&d, "tagger: invalid model descriptor: a name or function is NULL");
  p = tagger_program, p.n_symbols = 3, d.forward = &p;
  expect_bad_descriptor(&d, "tagger: invalid model descriptor: bad program symbols");
  p = tagger_program, p.n_ops = 2, d.forward = &p;
  expect_bad_descriptor(&d, "tagger: invalid model descriptor: a name or function is NULL");
  d = tagger, d.arg_order = (const int32_t[]){2, 0, 4, 1, 2};
  expect_bad_descriptor(&d, "arg_order is not a permutation");
  d = tagger, d.call_symbols = (const int32_t[]){SB, SD};
  expect_bad_descriptor(&d, "symbol index 1 listed twice");
  d = tagger, d.n_call_symbols = 1;
  expect_bad_descriptor(&d, "symbol T is neither a parameter nor a call symbol");
  const rt_tensor_desc no_v[] = {{"w", RT_DT_F32, 1, dims_D}, {"b", RT_DT_F32, 1, dims_D},
                                 {"emb", RT_DT_F32, 2, NULL}};
  d = tagger, d.params = no_v;
  expect_bad_descriptor(&d, "parameter symbol V is no parameter's axis");
  const rt_tensor_desc w_t[] = {{"w", RT_DT_F32, 1, (const int32_t[]){ST}}, {"b", RT_DT_F32, 1, dims_D},
                                {"emb", RT_DT_F32, 2, dims_VD}};
  d = tagger, d.params = w_t;
  expect_bad_descriptor(&d, "the shape of parameter 'w' uses call symbol T");
  d = tagger, d.dims = dims_w_uses_T;
  expect_bad_descriptor(&d, "the shape of parameter 'w' depends on a call symbol");
  const rt_tensor_desc twice[] = {{"w", RT_DT_F32, 1, dims_D}, {"w", RT_DT_F32, 1, dims_D},
                                  {"emb", RT_DT_F32, 2, dims_VD}};
  d = tagger, d.params = twice;
  expect_bad_descriptor(&d, "two parameters named 'w'");
  const rt_tensor_desc bad_out[][2] = {{{"y", 7, 2, dims_BD}, {"e", RT_DT_F32, 3, dims_BTD}},
                                       {{"y", RT_DT_F32, -1, NULL}, {"e", RT_DT_F32, 3, dims_BTD}},
                                       {{"y", RT_DT_F32, RT_MAX_RANK + 1, NULL}, {"e", RT_DT_F32, 3, dims_BTD}},
                                       {{NULL, RT_DT_F32, 2, dims_BD}, {"e", RT_DT_F32, 3, dims_BTD}}};
  for (int k = 0; k < 4; k++) {
    d = tagger, d.outputs = bad_out[k];
    expect_bad_descriptor(&d, "invalid model descriptor: output 0");
  }
  const rt_tensor_desc bad_axis[] = {{"y", RT_DT_F32, 2, dims_BD},
                                     {"e", RT_DT_F32, 3, (const int32_t[]){0, 4, 1}}};
  d = tagger, d.outputs = bad_axis;
  expect_bad_descriptor(&d, "invalid model descriptor: output 'e' axis 1");
  d = tagger, d.n_inputs = -1;
  expect_bad_descriptor(&d, "bad input list");
}

static void test_options_struct_size(void **state) {
  (void)state;
  st_blob b = tagger_weights();
  rt_model *m;
  rt_options o = {sizeof o, 4, 0};
  assert_int_equal(rt_model_open_memory(&tagger, b.p, b.n, &o, &m), RT_OK);
  rt_model_close(m);
  o = (rt_options){RT_OPTIONS_SIZE_V1, 0, 0};
  assert_int_equal(rt_model_open_memory(&tagger, b.p, b.n, &o, &m), RT_OK);
  rt_model_close(m);
  const size_t bad_sizes[] = {0, 8, sizeof o - 1, sizeof o + 8, 4096};
  for (size_t k = 0; k < 5; k++) {
    o = (rt_options){bad_sizes[k], 1, 0};
    expect_error(rt_model_open_memory(&tagger, b.p, b.n, &o, &m), RT_EINVAL,
                 "is not the size of any version");
    assert_null(m);
  }
  const rt_options bad[] = {{sizeof o, -1, 0}, {sizeof o, RT_MAX_THREADS + 1, 0}};
  for (size_t k = 0; k < 2; k++)
    expect_error(rt_model_open_memory(&tagger, b.p, b.n, &bad[k], &m), RT_EINVAL,
                 "tagger: options: num_threads");
  o = (rt_options){sizeof o, 1, 1};
  expect_error(rt_model_open_memory(&tagger, b.p, b.n, &o, &m), RT_EINVAL, "reserved must be 0");
  free(b.p);
}

/* ---- contexts and forward validation ----------------------------------------------- */

static int64_t negative_scratch(const int64_t *s) { return -1; }
static int64_t scratch_peaks_at_B1(const int64_t *s) { return s[SB] == 1 ? 1 << 20 : 64; }
static void dims_e_T_minus_1(const int64_t *s, int64_t *out) {
  tagger_dims(s, out);
  out[11] = s[ST] - 1;
}

/* The tagger model with other dims or scratch functions, on the usual weights. */
static rt_model *open_variant(rt_model_desc *d) {
  st_blob b = tagger_weights();
  rt_model *m;
  if (rt_model_open_memory(d, b.p, b.n, NULL, &m) != RT_OK) fail_msg("%s", rt_last_error());
  free(b.p);
  return m;
}

static void test_ctx_limits(void **state) {
  (void)state;
  rt_model *m = open_tagger();
  rt_ctx *c = (rt_ctx *)1;
  const int64_t ok[] = {2, 2};
  expect_error(rt_ctx_new(NULL, ok, &c), RT_EINVAL, "the model is NULL");
  assert_null(c);
  expect_error(rt_ctx_new(m, ok, NULL), RT_EINVAL, "out is NULL");
  expect_error(rt_ctx_new(m, NULL, &c), RT_EINVAL, "tagger: ctx_new: the maxima are NULL");
  expect_error(rt_ctx_new(m, (const int64_t[]){-1, 2}, &c), RT_EINVAL,
               "max B = -1 is outside [0, 2147483648]");
  expect_error(rt_ctx_new(m, (const int64_t[]){2, RT_MAX_SYMBOL_VALUE + 1}, &c), RT_EINVAL,
               "max T = 2147483649");
  assert_null(c);
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){0, 0}, &c), RT_OK);
  rt_ctx_free(c);
  /* The largest maxima are fine; sizes that overflow are caught per call. */
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){RT_MAX_SYMBOL_VALUE, RT_MAX_SYMBOL_VALUE}, &c), RT_OK);
  char dummy[64];
  const void *in[] = {dummy, dummy};
  void *out[] = {dummy, dummy};
  const int64_t huge[] = {RT_MAX_SYMBOL_VALUE, RT_MAX_SYMBOL_VALUE};
  expect_error(rt_forward(c, huge, in, out), RT_EINVAL,
               "input 'ids' would have shape [2147483648, 2147483648]: a negative dim, or more bytes");
  rt_ctx_free(c);
  rt_model_close(m);

  rt_model_desc d = tagger;
  seqrt_program p = tagger_program;
  p.scratch_bytes = negative_scratch, d.forward = &p;
  m = open_variant(&d);
  expect_error(rt_ctx_new(m, ok, &c), RT_EINVAL, "the scratch size overflows at these maxima");
  rt_model_close(m);
}

/* tagger_run, with its index error attributed to op 1. */
static int32_t tagger_run_op1(const int64_t *s, void *const *args, void *const *outs, void *scratch,
                              void *exec) {
  int32_t st = tagger_run(s, args, outs, scratch, exec);
  return st ? st + RT_RUN_OP_SCALE * 2 : 0;
}

/* codegen/lower_parallel.c loads these fields by index. */
static void test_exec_layout(void **state) {
  (void)state;
  assert_int_equal(offsetof(seqrt_exec, parallel_for), 0 * sizeof(void *));
  assert_int_equal(offsetof(seqrt_exec, kernel_begin), 1 * sizeof(void *));
  assert_int_equal(offsetof(seqrt_exec, kernel_end), 2 * sizeof(void *));
  assert_int_equal(offsetof(seqrt_exec, team_run), 3 * sizeof(void *));
  assert_int_equal(offsetof(seqrt_exec, team_wait), 4 * sizeof(void *));
}

static void test_failing_op_named(void **state) {
  (void)state;
  static const char *const names[] = {NULL, "gather 'e' at tagger.yaml:7:5"};
  seqrt_program p = tagger_program;
  p.run = tagger_run_op1, p.n_ops = 2, p.op_names = names;
  rt_model_desc d = tagger;
  d.forward = &p;
  rt_model *m = open_variant(&d);
  rt_ctx *c;
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){4, 3}, &c), RT_OK);
  tagger_io io;
  fill_inputs(&io, 4, 3);
  io.ids[2] = V;
  expect_error(forward_io(c, &io, 4, 3), RT_EINVAL,
               "tagger: forward: gather 'e' at tagger.yaml:7:5: run-time check failed: an index");
  rt_ctx_free(c);
  rt_model_close(m);
}

static void test_forward_validation(void **state) {
  (void)state;
  rt_model *m = open_tagger();
  rt_ctx *c;
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){4, 3}, &c), RT_OK);
  tagger_io io;
  fill_inputs(&io, 4, 3);
  const int64_t syms[] = {4, 3};
  const void *in[] = {io.x, io.ids};
  void *out[] = {io.y, io.e};
  expect_error(rt_forward(NULL, syms, in, out), RT_EINVAL, "rt_forward: the ctx is NULL");
  expect_error(rt_forward(c, NULL, in, out), RT_EINVAL, "tagger: forward: the call symbol array is NULL");
  expect_error(rt_forward(c, syms, NULL, out), RT_EINVAL, "the input array is NULL");
  expect_error(rt_forward(c, syms, in, NULL), RT_EINVAL, "the output array is NULL");
  expect_error(forward_io(c, &io, 5, 3), RT_EINVAL, "forward: B = 5 is outside [0, 4] (the ctx's maximum)");
  expect_error(forward_io(c, &io, 4, -1), RT_EINVAL, "T = -1 is outside [0, 3]");
  in[1] = NULL;
  expect_error(rt_forward(c, syms, in, out), RT_EINVAL, "forward: input 'ids' is NULL");
  in[1] = io.ids, out[1] = NULL;
  expect_error(rt_forward(c, syms, in, out), RT_EINVAL, "forward: output 'e' is NULL");
  out[1] = io.e;
  /* Token ids outside [0, V) are caught by the run function. */
  io.ids[5] = V;
  expect_error(forward_io(c, &io, 4, 3), RT_EINVAL,
               "tagger: forward: run-time check failed: an index or sequence length is out of range");
  io.ids[5] = -1;
  expect_error(forward_io(c, &io, 4, 3), RT_EINVAL, rt_run_status_message(RT_RUN_INDEX_RANGE));
  io.ids[5] = 0;
  assert_int_equal(forward_io(c, &io, 4, 3), RT_OK);
  check_outputs(&io, 4, 3);
  rt_ctx_free(c);
  rt_model_close(m);

  rt_model_desc d = tagger;
  seqrt_program p = tagger_program;
  p.scratch_bytes = scratch_peaks_at_B1, d.forward = &p;
  m = open_variant(&d);
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){4, 3}, &c), RT_OK);
  assert_int_equal(forward_io(c, &io, 2, 3), RT_OK);
  expect_error(forward_io(c, &io, 1, 3), RT_EINVAL,
               "these sizes need 1048576 bytes of scratch, but the ctx has 64");
  rt_ctx_free(c);
  rt_model_close(m);

  d = tagger, d.dims = dims_e_T_minus_1;
  m = open_variant(&d);
  assert_int_equal(rt_ctx_new(m, (const int64_t[]){4, 3}, &c), RT_OK);
  expect_error(forward_io(c, &io, 2, 0), RT_EINVAL,
               "output 'e' would have shape [2, -1, 4]: a negative dim");
  rt_ctx_free(c);
  rt_model_close(m);
}

/* The status table agrees with the codegen's, which the runtime cannot include. */
static void test_run_status_table(void **state) {
  (void)state;
  assert_int_equal(RT_RUN_DIM_MISMATCH, CG_DIM_MISMATCH);
  assert_int_equal(RT_RUN_INDEX_RANGE, CG_INDEX_RANGE);
  assert_int_equal(RT_RUN_INT_DIV_ZERO, CG_INT_DIV_ZERO);
  assert_int_equal(RT_RUN_CAST_RANGE, CG_CAST_RANGE);
  assert_int_equal(RT_RUN_INT_OVERFLOW, CG_INT_OVERFLOW);
  assert_int_equal(CG_STATUS_COUNT, 6);
  for (int32_t k = 1; k < CG_STATUS_COUNT; k++) {
    assert_string_not_equal(rt_run_status_message(k), "unknown status");
    for (int32_t j = 1; j < k; j++)
      assert_string_not_equal(rt_run_status_message(k), rt_run_status_message(j));
  }
  assert_string_equal(rt_run_status_message(0), "unknown status");
  assert_string_equal(rt_run_status_message(CG_STATUS_COUNT), "unknown status");
  assert_string_equal(rt_dtype_name(RT_DT_BF16), "bf16");
  assert_string_equal(rt_dtype_name(RT_DT_COUNT), "?");
  assert_int_equal(rt_dtype_size(RT_DT_I64), 8);
  assert_int_equal(rt_dtype_size(-1), 0);
  assert_null(rt_model_descriptor(NULL));
  assert_non_null(strstr(rt_last_error(), "the model is NULL"));
}

/* ---- threads --------------------------------------------------------------------- */

typedef struct worker {
  rt_ctx *ctx;
  tagger_io io;
  int failures;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  for (int rep = 0; rep < 300; rep++) {
    int64_t B = 1 + rep % 4, T = 1 + rep % 3;
    fill_inputs(&w->io, B, T);
    if (forward_io(w->ctx, &w->io, B, T) != RT_OK) w->failures++;
  }
  return NULL;
}

/* One model, two ctxs used at once; each ends on the same call, with the
 * same result as a single-threaded run. */
static void test_two_threads_share_a_model(void **state) {
  (void)state;
  rt_model *m = open_tagger();
  worker *w = calloc(2, sizeof *w);
  assert_non_null(w);
  const int64_t max[] = {4, 3};
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    assert_int_equal(rt_ctx_new(m, max, &w[k].ctx), RT_OK);
    assert_int_equal(pthread_create(&th[k], NULL, work, &w[k]), 0);
  }
  for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
  worker ref = {.ctx = w[0].ctx};
  work(&ref);
  for (int k = 0; k < 2; k++) {
    assert_int_equal(w[k].failures, 0);
    assert_memory_equal(&w[k].io, &ref.io, sizeof ref.io);
    rt_ctx_free(w[k].ctx);
  }
  check_outputs(&ref.io, 4, 3); /* the last call: rep 299 has B = 4, T = 3 */
  free(w);
  rt_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_memory_and_forward),
      cmocka_unit_test(test_open_file_then_unlink),
      cmocka_unit_test(test_binding_errors_listed_together),
      cmocka_unit_test(test_widening_is_exact),
      cmocka_unit_test(test_exact_dtypes_and_narrowing),
      cmocka_unit_test(test_descriptor_validation),
      cmocka_unit_test(test_options_struct_size),
      cmocka_unit_test(test_ctx_limits),
      cmocka_unit_test(test_forward_validation),
      cmocka_unit_test(test_failing_op_named),
      cmocka_unit_test(test_exec_layout),
      cmocka_unit_test(test_run_status_table),
      cmocka_unit_test(test_two_threads_share_a_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
