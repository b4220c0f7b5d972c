/* Unit tests for runtime/pool.c: every task runs exactly once for many
 * (threads, n) pairs, 1-thread pools and small jobs stay on the caller,
 * bigger ones really use workers, uneven tasks are claimed dynamically,
 * workers that went to sleep wake up, results are visible and deterministic,
 * nested calls run inline, and bad arguments are refused with a message.
 * Thread counts come from /proc/self/status (Linux). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/model.h"
#include "runtime/pool.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

static rt_pool *new_pool(int threads) {
  rt_pool *p = NULL;
  if (rt_pool_new(threads, &p) != RT_OK) fail_msg("rt_pool_new(%d): %s", threads, rt_last_error());
  assert_non_null(p);
  assert_int_equal(rt_pool_threads(p), threads);
  return p;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The process's threads without pools: 1, or 2 under ThreadSanitizer, whose
 * background thread starts with the first pthread_create (main warms up). */
static long base_threads;

/* The value of "key:" in /proc/self/status (-1 if absent). */
static long proc_status(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  assert_non_null(f);
  char line[256];
  long v = -1;
  size_t k = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, k) && line[k] == ':') v = strtol(line + k + 1, NULL, 10);
  fclose(f);
  return v;
}

/* The process's thread count once it equals `want`, or after 2 s: a joined
 * thread may linger in the count for a moment after pthread_join. */
static long threads_settled(long want) {
  long n = proc_status("Threads");
  for (int i = 0; i < 200 && n != want; i++) {
    sleep_ms(10);
    n = proc_status("Threads");
  }
  return n;
}

/* ---- every task exactly once ---------------------------------------------- */

typedef struct counts {
  int *count;    /* per task: times run (plain ints: a task running twice
                    concurrently is also a data race ThreadSanitizer reports) */
  int64_t n;
  atomic_int bad; /* a task index outside [0, n) */
} counts;

static void count_task(void *closure, int64_t task) {
  counts *c = closure;
  if (task < 0 || task >= c->n) {
    atomic_fetch_add(&c->bad, 1);
    return;
  }
  c->count[task]++;
}

static void run_and_check_counts(rt_pool *p, int64_t n) {
  counts c = {.count = calloc(n > 0 ? (size_t)n : 1, sizeof(int)), .n = n};
  assert_non_null(c.count);
  atomic_init(&c.bad, 0);
  rt_pool_run(p, count_task, &c, n);
  assert_int_equal(atomic_load(&c.bad), 0);
  for (int64_t i = 0; i < n; i++)
    if (c.count[i] != 1)
      fail_msg("%d threads, n = %lld: task %lld ran %d times", rt_pool_threads(p), (long long)n,
               (long long)i, c.count[i]);
  free(c.count);
}

static void test_each_task_once(void **state) {
  (void)state;
  const int threads[] = {1, 2, 3, 8}; /* 8 oversubscribes a 2-core machine */
  const int64_t sizes[] = {0, 1, 2, 3, 7, 1000, 100003};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    rt_pool *p = new_pool(threads[t]);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) run_and_check_counts(p, sizes[s]);
    rt_pool_free(p);
  }
}

static void test_negative_n_and_null_fn(void **state) {
  (void)state;
  rt_pool *p = new_pool(2);
  counts c = {.count = NULL, .n = 0};
  atomic_init(&c.bad, 0);
  rt_pool_run(p, count_task, &c, -5); /* would report a bad index if anything ran */
  rt_pool_run(p, NULL, &c, 10);
  assert_int_equal(atomic_load(&c.bad), 0);
  run_and_check_counts(p, 100); /* still usable */
  rt_pool_free(p);
}

/* ---- which threads run the tasks ------------------------------------------ */

typedef struct ids {
  pthread_t *who; /* per task: the thread that ran it */
  long delay_ms;  /* per task */
} ids;

static void record_thread(void *closure, int64_t task) {
  ids *r = closure;
  r->who[task] = pthread_self();
  if (r->delay_ms) sleep_ms(r->delay_ms);
}

/* Runs n tasks recording their threads; returns how many distinct threads
 * ran them and whether the caller was among them. */
static int distinct_threads(rt_pool *p, int64_t n, long delay_ms, bool *caller_took_part) {
  ids r = {.who = calloc((size_t)n, sizeof(pthread_t)), .delay_ms = delay_ms};
  assert_non_null(r.who);
  rt_pool_run(p, record_thread, &r, n);
  int distinct = 0;
  *caller_took_part = false;
  for (int64_t i = 0; i < n; i++) {
    bool seen = false;
    for (int64_t j = 0; j < i && !seen; j++) seen = pthread_equal(r.who[i], r.who[j]);
    distinct += !seen;
    if (pthread_equal(r.who[i], pthread_self())) *caller_took_part = true;
  }
  free(r.who);
  return distinct;
}

static void test_one_thread_pool_creates_no_thread(void **state) {
  (void)state;
  assert_int_equal(threads_settled(base_threads), base_threads);
  rt_pool *p = new_pool(1);
  assert_int_equal(proc_status("Threads"), base_threads);
  bool caller;
  assert_int_equal(distinct_threads(p, 1000, 0, &caller), 1);
  assert_true(caller);
  rt_pool_free(p);
  assert_int_equal(proc_status("Threads"), base_threads);
}

static void test_workers_started_and_joined(void **state) {
  (void)state;
  assert_int_equal(threads_settled(base_threads), base_threads);
  rt_pool *p = new_pool(8);
  assert_int_equal(proc_status("Threads"), base_threads + 7);
  run_and_check_counts(p, 1000);
  rt_pool_free(p);
  assert_int_equal(threads_settled(base_threads), base_threads);
  p = new_pool(RT_MAX_THREADS); /* the largest pool, freed at once */
  assert_int_equal(proc_status("Threads"), base_threads + RT_MAX_THREADS - 1);
  rt_pool_free(p);
  assert_int_equal(threads_settled(base_threads), base_threads);
}

static void test_small_jobs_stay_on_caller(void **state) {
  (void)state;
  rt_pool *p = new_pool(4);
  bool caller;
  assert_int_equal(distinct_threads(p, 1, 0, &caller), 1); /* n == 1 runs inline */
  assert_true(caller);
  rt_pool_run(NULL, count_task, &(counts){.n = 0}, 0);
  rt_pool_free(p);
  assert_int_equal(rt_pool_threads(NULL), 1);
}

static void test_null_pool_runs_inline(void **state) {
  (void)state;
  ids r = {.who = calloc(50, sizeof(pthread_t))};
  assert_non_null(r.who);
  rt_pool_run(NULL, record_thread, &r, 50);
  for (int i = 0; i < 50; i++) assert_true(pthread_equal(r.who[i], pthread_self()));
  free(r.who);
}

static void test_workers_take_part(void **state) {
  (void)state;
  rt_pool *p = new_pool(2);
  bool caller;
  double t0 = now_s();
  int distinct = distinct_threads(p, 64, 1, &caller); /* 64 ms of work on one thread */
  double elapsed = now_s() - t0;
  assert_int_equal(distinct, 2);
  assert_true(caller);
  assert_true(elapsed < 1.0);
  rt_pool_free(p);
}

/* ---- dynamic claiming ----------------------------------------------------- */

typedef struct uneven {
  atomic_int others_done; /* tasks 1..n-1 finished */
  int64_t n;
  atomic_bool timed_out;
} uneven;

/* Task 0 returns only once every other task has finished: with a static
 * split its thread would own half the other tasks and wait forever. */
static void uneven_task(void *closure, int64_t task) {
  uneven *u = closure;
  if (task != 0) {
    sleep_ms(1);
    atomic_fetch_add(&u->others_done, 1);
    return;
  }
  double deadline = now_s() + 5.0;
  while (atomic_load(&u->others_done) < u->n - 1)
    if (now_s() > deadline) {
      atomic_store(&u->timed_out, true);
      return;
    }
}

static void test_uneven_tasks_balance(void **state) {
  (void)state;
  rt_pool *p = new_pool(2);
  uneven u = {.n = 40};
  atomic_init(&u.others_done, 0);
  atomic_init(&u.timed_out, false);
  rt_pool_run(p, uneven_task, &u, u.n);
  assert_false(atomic_load(&u.timed_out));
  assert_int_equal(atomic_load(&u.others_done), u.n - 1);
  rt_pool_free(p);
}

/* ---- many runs, sleeping workers ------------------------------------------ */

static void add_task(void *closure, int64_t task) {
  int64_t *slots = closure;
  slots[task] += task + 1;
}

static void test_many_tiny_runs(void **state) {
  (void)state;
  const int threads[] = {2, 8};
  for (size_t t = 0; t < 2; t++) {
    rt_pool *p = new_pool(threads[t]);
    int64_t slots[8] = {0};
    const int runs = 10000;
    for (int r = 0; r < runs; r++) rt_pool_run(p, add_task, slots, 2 + r % 7);
    /* Task i runs in every run with n > i: n cycles through 2..8. */
    for (int64_t i = 0; i < 8; i++) {
      int64_t times = 0;
      for (int r = 0; r < runs; r++) times += i < 2 + r % 7;
      assert_int_equal(slots[i], times * (i + 1));
    }
    rt_pool_free(p);
  }
}

static void test_runs_after_workers_sleep(void **state) {
  (void)state;
  rt_pool *p = new_pool(3);
  for (int r = 0; r < 3; r++) {
    sleep_ms(50); /* far longer than the spin phase: the workers are asleep */
    run_and_check_counts(p, 1000);
    bool caller;
    assert_true(distinct_threads(p, 32, 1, &caller) > 1); /* and they wake up */
  }
  rt_pool_free(p);
}

static void test_free_right_after_new(void **state) {
  (void)state;
  for (int i = 0; i < 50; i++) rt_pool_free(new_pool(1 + i % 8));
  rt_pool_free(NULL);
  assert_int_equal(threads_settled(base_threads), base_threads);
}

/* ---- results -------------------------------------------------------------- */

enum { RED_TASKS = 257, RED_CHUNK = 1000 };

typedef struct reduction {
  const double *x;
  double partial[RED_TASKS];
} reduction;

/* Sums one chunk; task sizes differ, so the claiming order varies. */
static void partial_sum(void *closure, int64_t task) {
  reduction *r = closure;
  int64_t len = RED_CHUNK - (task * 37) % 500;
  double s = 0;
  for (int64_t i = 0; i < len; i++) s += r->x[task * RED_CHUNK + i] * (1.0 + 1e-3 * (double)i);
  r->partial[task] = s;
}

static double reduce(rt_pool *p, const double *x) {
  reduction *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->x = x;
  rt_pool_run(p, partial_sum, r, RED_TASKS);
  double total = 0;
  for (int i = 0; i < RED_TASKS; i++) total += r->partial[i];
  free(r);
  return total;
}

static void test_deterministic_reduction(void **state) {
  (void)state;
  double *x = malloc(sizeof(double) * RED_TASKS * RED_CHUNK);
  assert_non_null(x);
  uint64_t seed = 12345;
  for (int i = 0; i < RED_TASKS * RED_CHUNK; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    x[i] = (double)(int64_t)(seed >> 11) / (double)(1LL << 52) - 0.5;
  }
  rt_pool *one = new_pool(1);
  double want = reduce(one, x);
  rt_pool_free(one);
  const int threads[] = {2, 3, 8};
  for (size_t t = 0; t < 3; t++) {
    rt_pool *p = new_pool(threads[t]);
    for (int rep = 0; rep < 5; rep++) {
      double got = reduce(p, x);
      assert_memory_equal(&got, &want, sizeof got);
    }
    rt_pool_free(p);
  }
  free(x);
}

/* ---- reentrancy ----------------------------------------------------------- */

typedef struct nested {
  rt_pool *pool;
  int inner[16][16];           /* per outer task: counts of its inner tasks */
  pthread_t outer_who[16];
  pthread_t inner_who[16][16];
} nested;

typedef struct inner_arg {
  nested *s;
  int64_t outer;
} inner_arg;

static void inner_task(void *closure, int64_t task) {
  inner_arg *a = closure;
  a->s->inner[a->outer][task]++;
  a->s->inner_who[a->outer][task] = pthread_self();
}

static void outer_task(void *closure, int64_t task) {
  nested *s = closure;
  s->outer_who[task] = pthread_self();
  inner_arg a = {s, task};
  rt_pool_run(s->pool, inner_task, &a, 16);
}

static void test_nested_run_is_inline(void **state) {
  (void)state;
  nested *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->pool = new_pool(3);
  rt_pool_run(s->pool, outer_task, s, 16);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      assert_int_equal(s->inner[i][j], 1);
      assert_true(pthread_equal(s->inner_who[i][j], s->outer_who[i]));
    }
  run_and_check_counts(s->pool, 1000); /* the pool is not left busy */
  rt_pool_free(s->pool);
  free(s);
}

/* ---- teams ------------------------------------------------------------------ */

/* Rounds of a lock-step computation: in round r every member writes its
 * slot of row r from the whole of row r - 1, which only waiting for every
 * member's count of round r - 1 makes complete and visible. */
enum { TEAM_ROUNDS = 2000, TEAM_MAX = 4 };

typedef struct team_state {
  rt_pool *pool;
  int64_t size;                        /* n as the members saw it */
  atomic_int members;                  /* members that ran */
  int64_t done;                        /* slots written, over all rounds */
  int64_t rows[TEAM_ROUNDS][TEAM_MAX];
  pthread_t who[TEAM_MAX];
} team_state;

static void team_member(void *closure, int64_t i, int64_t n) {
  team_state *s = closure;
  s->size = n;
  s->who[i] = pthread_self();
  atomic_fetch_add(&s->members, 1);
  s->rows[0][i] = i + 1;
  __atomic_fetch_add(&s->done, 1, __ATOMIC_RELEASE);
  for (int r = 1; r < TEAM_ROUNDS; r++) {
    rt_pool_wait(&s->done, (int64_t)r * n);
    int64_t sum = 0;
    for (int64_t k = 0; k < n; k++) sum += s->rows[r - 1][k];
    s->rows[r][i] = sum % 1000003 + i;
    __atomic_fetch_add(&s->done, 1, __ATOMIC_RELEASE);
  }
}

/* What team_member computes with n members. */
static int64_t team_expected(int64_t n, int r, int64_t i) {
  int64_t row[TEAM_MAX], next[TEAM_MAX];
  for (int64_t k = 0; k < n; k++) row[k] = k + 1;
  for (int q = 1; q <= r; q++) {
    int64_t sum = 0;
    for (int64_t k = 0; k < n; k++) sum += row[k];
    for (int64_t k = 0; k < n; k++) next[k] = sum % 1000003 + k;
    memcpy(row, next, sizeof row);
  }
  return row[i];
}

static void check_team(int threads, int64_t max, int64_t want) {
  team_state *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->pool = threads ? new_pool(threads) : NULL;
  rt_pool_team(s->pool, team_member, s, max);
  assert_int_equal(s->size, want);
  assert_int_equal(atomic_load(&s->members), want);
  for (int64_t i = 0; i < want; i++) {
    assert_int_equal(s->rows[TEAM_ROUNDS - 1][i], team_expected(want, TEAM_ROUNDS - 1, i));
    for (int64_t k = 0; k < i; k++) assert_false(pthread_equal(s->who[i], s->who[k]));
  }
  if (s->pool) run_and_check_counts(s->pool, 100); /* the pool is not left busy */
  rt_pool_free(s->pool);
  free(s);
}

static void test_team_members_run_at_once(void **state) {
  (void)state;
  check_team(2, 2, 2);
  check_team(3, 8, 3); /* capped by the pool */
  check_team(4, 3, 3); /* capped by max */
  check_team(4, 4, 4);
}

static void test_team_of_one(void **state) {
  (void)state;
  check_team(0, 4, 1); /* no pool */
  check_team(1, 4, 1);
  check_team(3, 1, 1);
  check_team(3, 0, 1);
}

static void team_in_task(void *closure, int64_t task) {
  team_state *s = closure;
  if (task == 0) rt_pool_team(s->pool, team_member, s, 4);
}

static void test_team_inside_a_task_is_inline(void **state) {
  (void)state;
  team_state *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->pool = new_pool(3);
  rt_pool_run(s->pool, team_in_task, s, 2);
  assert_int_equal(s->size, 1);
  assert_int_equal(s->rows[TEAM_ROUNDS - 1][0], team_expected(1, TEAM_ROUNDS - 1, 0));
  run_and_check_counts(s->pool, 100);
  rt_pool_free(s->pool);
  free(s);
}

/* A team after the workers went to sleep: they wake up and join it. */
static void test_team_after_workers_sleep(void **state) {
  (void)state;
  team_state *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->pool = new_pool(2);
  sleep_ms(50);
  rt_pool_team(s->pool, team_member, s, 2);
  assert_int_equal(s->size, 2);
  assert_int_equal(s->rows[TEAM_ROUNDS - 1][1], team_expected(2, TEAM_ROUNDS - 1, 1));
  rt_pool_free(s->pool);
  free(s);
}

/* ---- errors --------------------------------------------------------------- */

static void test_invalid_counts(void **state) {
  (void)state;
  const int bad[] = {0, -1, RT_MAX_THREADS + 1, -2147483647 - 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rt_pool *p = (rt_pool *)&p;
    rt_clear_error();
    assert_int_equal(rt_pool_new(bad[i], &p), RT_EINVAL);
    assert_null(p);
    char want[64];
    snprintf(want, sizeof want, "num_threads %d is outside [1, 1024]", bad[i]);
    if (!strstr(rt_last_error(), want)) fail_msg("message \"%s\" lacks \"%s\"", rt_last_error(), want);
  }
  assert_int_equal(rt_pool_new(2, NULL), RT_EINVAL);
  assert_non_null(strstr(rt_last_error(), "NULL"));
}

/* Lowers the address-space limit so that only a few 8 MiB worker stacks
 * fit: rt_pool_new must fail with a message and join the workers it did
 * start. Sanitizers reserve huge shadow mappings, so this runs without. */
static void test_thread_start_failure(void **state) {
  (void)state;
  if (UNDER_SANITIZER) skip();
  assert_int_equal(threads_settled(base_threads), base_threads);
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
  long vm_kib = proc_status("VmSize");
  assert_true(vm_kib > 0);
  struct rlimit low = {.rlim_cur = ((rlim_t)vm_kib + 20 * 1024) * 1024, .rlim_max = old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_AS, &low), 0);
  rt_pool *p = (rt_pool *)&p;
  rt_status st = rt_pool_new(16, &p);
  assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
  assert_int_equal(st, RT_ENOMEM);
  assert_null(p);
  assert_non_null(strstr(rt_last_error(), "thread pool: cannot start worker"));
  assert_int_equal(threads_settled(base_threads), base_threads);
}

/* ---- the default thread count --------------------------------------------- */

static int default_with(const char *value) {
  if (value) assert_int_equal(setenv("SEQRT_NUM_THREADS", value, 1), 0);
  else assert_int_equal(unsetenv("SEQRT_NUM_THREADS"), 0);
  return rt_default_threads();
}

static void test_default_threads(void **state) {
  (void)state;
  assert_int_equal(default_with(NULL), 1);
  assert_int_equal(default_with("3"), 3);
  assert_int_equal(default_with("+8"), 8);
  assert_int_equal(default_with("1024"), 1024);
  assert_int_equal(default_with("1025"), 1024);
  assert_int_equal(default_with("99999"), 1024);
  assert_int_equal(default_with("99999999999999999999999"), 1024);
  assert_int_equal(default_with("0"), 1);
  assert_int_equal(default_with("-4"), 1);
  assert_int_equal(default_with("abc"), 1);
  assert_int_equal(default_with(""), 1);
  assert_int_equal(default_with("4x"), 1);
  assert_int_equal(default_with(" 4"), 1);
  assert_int_equal(default_with("-"), 1);
  assert_int_equal(default_with(NULL), 1);
}

int main(void) {
  rt_pool *warm = NULL;
  if (rt_pool_new(2, &warm) != RT_OK) return 1;
  rt_pool_free(warm);
  sleep_ms(100);
  base_threads = proc_status("Threads");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_task_once),
      cmocka_unit_test(test_negative_n_and_null_fn),
      cmocka_unit_test(test_one_thread_pool_creates_no_thread),
      cmocka_unit_test(test_workers_started_and_joined),
      cmocka_unit_test(test_small_jobs_stay_on_caller),
      cmocka_unit_test(test_null_pool_runs_inline),
      cmocka_unit_test(test_workers_take_part),
      cmocka_unit_test(test_uneven_tasks_balance),
      cmocka_unit_test(test_many_tiny_runs),
      cmocka_unit_test(test_runs_after_workers_sleep),
      cmocka_unit_test(test_free_right_after_new),
      cmocka_unit_test(test_deterministic_reduction),
      cmocka_unit_test(test_nested_run_is_inline),
      cmocka_unit_test(test_team_members_run_at_once),
      cmocka_unit_test(test_team_of_one),
      cmocka_unit_test(test_team_inside_a_task_is_inline),
      cmocka_unit_test(test_team_after_workers_sleep),
      cmocka_unit_test(test_invalid_counts),
      cmocka_unit_test(test_thread_start_failure),
      cmocka_unit_test(test_default_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
