/* Unit tests for ir/support.c: buffers, real printing, arenas, diagnostics,
 * atomic file writes; and the runtime's per-thread error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/support.h"
#include "runtime/seqrt.h"

static void test_buf_printf_grows(void **state) {
  (void)state;
  ir_buf b = {0};
  for (int i = 0; i < 1000; i++) ir_buf_printf(&b, "%d,", i);
  assert_int_equal(b.len, strlen(b.s));
  assert_memory_equal(b.s, "0,1,2,", 6);
  assert_string_equal(b.s + b.len - 4, "999,");
  ir_buf_free(&b);
  assert_null(b.s);
}

static void check_real(double x, bool as_float, const char *want) {
  ir_buf b = {0};
  ir_buf_put_real(&b, x, as_float);
  assert_string_equal(b.s, want);
  ir_buf_free(&b);
}

static void test_put_real_shortest_and_exact(void **state) {
  (void)state;
  check_real(0.1, false, "0.1");
  check_real(2.0, false, "2.0");
  check_real(-0.0, false, "-0.0");
  check_real(NAN, false, "nan");
  check_real(INFINITY, false, "inf");
  check_real(-INFINITY, true, "-inf");
  check_real(1e300, false, "1e+300");
  check_real((double)0.1f, true, "0.1");
  check_real(1e300, true, "inf"); /* beyond float range: the nearest float is inf */
  check_real(-3.4028235e38, true, "-3.4028235e+38");
  check_real((double)0.1f, false, "0.10000000149011612");
  /* Every printed value reads back bit-exactly. */
  const double xs[] = {3.141592653589793, 1.0 / 3.0, 5e-324, 2.2250738585072014e-308, 123456789.125, -7e22};
  for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
    ir_buf b = {0};
    ir_buf_put_real(&b, xs[i], false);
    assert_true(strtod(b.s, NULL) == xs[i]);
    ir_buf_free(&b);
    float f = (float)xs[i];
    ir_buf_put_real(&b, f, true);
    assert_true((float)strtod(b.s, NULL) == f);
    ir_buf_free(&b);
  }
}

static void test_arena_alignment_and_zeroing(void **state) {
  (void)state;
  ir_arena *a = ir_arena_new();
  for (int i = 1; i < 2000; i += 37) {
    unsigned char *p = ir_arena_alloc(a, (size_t)i);
    assert_int_equal((uintptr_t)p % 16, 0);
    for (int j = 0; j < i; j++) assert_int_equal(p[j], 0);
    memset(p, 0xab, (size_t)i);
  }
  char *big = ir_arena_alloc(a, 1 << 20); /* larger than a chunk */
  big[(1 << 20) - 1] = 1;
  assert_string_equal(ir_arena_strndup(a, "hello world", 5), "hello");
  ir_arena_free(a);
}

static void test_diag_quotes_line_with_caret(void **state) {
  (void)state;
  ir_buf cap = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &cap;
  ir_source src = {"m.sqir", "first line\n  second\tline\nthird", 31};
  ir_diag_add_source(&d, &src);
  ir_error_at(&d, (ir_loc){"m.sqir", 2, 3}, "bad %s", "thing");
  assert_string_equal(cap.s, "m.sqir:2:3: error: bad thing\n  second\tline\n  ^\n");
  assert_int_equal(d.n_errors, 1);
  ir_buf_free(&cap);
}

static void test_diag_without_source_and_limit(void **state) {
  (void)state;
  ir_buf cap = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &cap;
  d.max_errors = 2;
  ir_error_at(&d, (ir_loc){NULL, 0, 0}, "one");
  ir_error_at(&d, (ir_loc){"x.sqir", 0, 0}, "two");
  ir_error_at(&d, (ir_loc){"x.sqir", 9, 1}, "three");
  assert_string_equal(cap.s, "seqc: error: one\nx.sqir: error: two\n"
                             "seqc: note: too many errors, stopping here\n");
  assert_int_equal(d.n_errors, 3);
  ir_buf_free(&cap);
}

static void test_diag_hides_control_bytes(void **state) {
  (void)state;
  ir_buf cap = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &cap;
  static const char text[] = {'a', 0, 27, 'b', '\n'};
  ir_source src = {"bin", text, sizeof text};
  ir_diag_add_source(&d, &src);
  ir_error_at(&d, (ir_loc){"bin", 1, 4}, "x");
  assert_string_equal(cap.s, "bin:1:4: error: x\na??b\n   ^\n");
  ir_buf_free(&cap);
}

static void test_diag_quotes_utf8_safely(void **state) {
  (void)state;
  ir_buf cap = {0};
  ir_diag d;
  ir_diag_init(&d);
  d.capture = &cap;
  static const char text[] = "a\xff\xe2\x82\xac" "b x";
  ir_source src = {"u", text, sizeof text - 1};
  ir_diag_add_source(&d, &src);
  ir_error_at(&d, (ir_loc){"u", 1, 6}, "x"); /* byte column of 'b' */
  assert_string_equal(cap.s, "u:1:6: error: x\na?\xe2\x82\xac" "b x\n   ^\n");
  ir_buf_free(&cap);
}

static void test_atomic_write_and_read_back(void **state) {
  (void)state;
  char dir[] = "/tmp/seqc-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/out.bin", dir);
  ir_buf err = {0};
  assert_true(ir_write_file_atomic(path, "abc", 3, &err));
  size_t len = 0;
  char *data = ir_read_file(path, 100, &len, &err);
  assert_non_null(data);
  assert_int_equal(len, 3);
  assert_memory_equal(data, "abc", 3);
  free(data);
  /* Over the size bound: refused with a message. */
  assert_null(ir_read_file(path, 2, &len, &err));
  assert_non_null(strstr(err.s, "larger than the limit"));
  ir_buf_free(&err);
  /* Into a missing directory: fails, leaves nothing. */
  char bad[300];
  snprintf(bad, sizeof bad, "%s/missing/out.bin", dir);
  assert_false(ir_write_file_atomic(bad, "x", 1, &err));
  assert_non_null(strstr(err.s, "missing/out.bin"));
  ir_buf_free(&err);
  unlink(path);
  rmdir(dir);
}

static void *fail_in_thread(void *arg) {
  rt_fail(RT_EINVAL, "thread %d", *(int *)arg);
  return strcmp(rt_last_error(), "thread 2") == 0 ? arg : NULL;
}

static void test_runtime_errors_are_per_thread(void **state) {
  (void)state;
  rt_clear_error();
  assert_int_equal(rt_fail(RT_EFORMAT, "main %s", "failure"), RT_EFORMAT);
  int two = 2;
  pthread_t t;
  void *res = NULL;
  assert_int_equal(pthread_create(&t, NULL, fail_in_thread, &two), 0);
  assert_int_equal(pthread_join(t, &res), 0);
  assert_ptr_equal(res, &two);
  assert_string_equal(rt_last_error(), "main failure");
  assert_string_equal(rt_status_name(RT_ENOMEM), "out of memory");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_printf_grows),
      cmocka_unit_test(test_put_real_shortest_and_exact),
      cmocka_unit_test(test_arena_alignment_and_zeroing),
      cmocka_unit_test(test_diag_quotes_line_with_caret),
      cmocka_unit_test(test_diag_without_source_and_limit),
      cmocka_unit_test(test_diag_hides_control_bytes),
      cmocka_unit_test(test_diag_quotes_utf8_safely),
      cmocka_unit_test(test_atomic_write_and_read_back),
      cmocka_unit_test(test_runtime_errors_are_per_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
