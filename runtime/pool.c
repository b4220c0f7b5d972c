/*
 * pool.c - the per-context thread pool (pool.h).
 *
 * A job is (fn, closure, n). The caller publishes it by bumping `gen`, then
 * claims tasks like any worker: every thread takes the next index with one
 * fetch_add on `next` until the indices run out, and counts each finished
 * task in `done`. The caller returns once done == n. While workers are
 * awake this path takes no mutex: a call is a handful of atomic operations.
 *
 * Publishing safely. A worker that noticed job k late may still be about to
 * read the job's fields or claim from `next` when the caller wants to reuse
 * them for job k + 1. So `gen` is even while a job is readable and odd while
 * the caller rewrites it, and workers announce themselves in `active` before
 * they read anything. The caller makes `gen` odd, waits until `active` is 0,
 * writes the job and makes `gen` even again; a worker increments `active`
 * and only then re-reads `gen`, backing off if it is odd or already seen.
 * Both sides store, then load the other's variable, all seq_cst, so at least
 * one sees the other (Dekker): either the caller waits for the worker, or
 * the worker sees the odd `gen` and leaves. A late worker that does get in
 * finds the old job finished, fails its one claim and leaves at once.
 *
 * Spin, then sleep. A waiting thread polls for RT_POOL_SPIN rounds with a
 * CPU relax hint, then sleeps on a condition variable. Lost wakeups are
 * ruled out the same way: a worker going to sleep increments `sleepers`
 * and re-checks `gen` under the mutex; the caller stores `gen`, then reads
 * `sleepers` and, if any, takes the mutex to signal. Likewise the caller
 * sets `caller_waits` under the mutex before sleeping and whoever finishes
 * the last task reads it after counting. Wakeups only matter for speed:
 * the caller runs every task nobody else claims, so a job finishes even if
 * no worker ever wakes.
 *
 * Memory ordering. Job fields are written before the even `gen` store
 * (release) and read after a worker's load of it (acquire). Each task's
 * writes precede its fetch_add on `done` (release); the caller's acquire
 * load of done == n synchronizes with all of them (a release sequence), so
 * results are visible when rt_pool_run returns. A worker's reads of a job
 * precede its release decrement of `active`, which the publishing caller
 * acquires before it overwrites the job.
 *
 * Counters are unsigned 64-bit: each thread overshoots `next` by at most one
 * past n, which cannot wrap for any n <= INT64_MAX.
 */
#include "runtime/pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"

/* Polling rounds before a thread sleeps: tens to hundreds of microseconds,
 * enough to catch the next kernel of a forward pass without a wakeup. */
enum { RT_POOL_SPIN = 1 << 14 };

struct rt_pool {
  /* Read by spinning workers: its own cache line, so claiming tasks does
   * not invalidate it. */
  alignas(64) atomic_uint_fast64_t gen; /* even: job readable; odd: being rewritten */
  alignas(64) atomic_uint_fast64_t next; /* the next unclaimed task */
  alignas(64) atomic_uint_fast64_t done; /* tasks finished */
  alignas(64) atomic_int active;         /* workers that may be reading the job */
  atomic_int sleepers;                   /* workers asleep (or about to be) on work_cv */
  atomic_bool caller_waits;              /* the caller sleeps (or is about to) on done_cv */
  atomic_bool running;                   /* a job is in flight: detects reentrant calls */
  atomic_bool stop;                      /* rt_pool_free: workers exit */
  /* The job: written only while gen is odd and active is 0. */
  rt_task_fn fn;
  void *closure;
  uint64_t n;
  int num_threads;
  int n_workers;        /* started, joined by rt_pool_free */
  pthread_t *workers;   /* room for num_threads (never a 0-byte allocation) */
  pthread_mutex_t mu;   /* guards only the sleep/wake transitions */
  pthread_cond_t work_cv;
  pthread_cond_t done_cv;
};

/* A hint that the thread is busy-waiting: lets the sibling hyperthread run
 * and saves power. Nothing on other architectures. */
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void run_inline(rt_task_fn fn, void *closure, int64_t n) {
  for (int64_t i = 0; i < n; i++) fn(closure, i);
}

/* ---- finishing a job ------------------------------------------------------ */

/* Whoever finishes the last task wakes the caller if it went to sleep. */
static void notify_caller(rt_pool *p) {
  if (!atomic_load(&p->caller_waits)) return;
  pthread_mutex_lock(&p->mu);
  pthread_cond_signal(&p->done_cv);
  pthread_mutex_unlock(&p->mu);
}

/* Claims and runs tasks of the current job until none is left. */
static void run_tasks(rt_pool *p, rt_task_fn fn, void *closure, uint64_t n) {
  for (;;) {
    uint64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (t >= n) return;
    fn(closure, (int64_t)t);
    /* seq_cst: pairs with the caller's store of caller_waits. */
    if (atomic_fetch_add(&p->done, 1) + 1 == n) notify_caller(p);
  }
}

/* The caller, out of tasks to claim, waits for the stragglers. */
static void wait_done(rt_pool *p, uint64_t n) {
  for (int i = 0; i < RT_POOL_SPIN; i++) {
    if (atomic_load_explicit(&p->done, memory_order_acquire) == n) return;
    cpu_relax();
  }
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->caller_waits, true);
  while (atomic_load(&p->done) != n) pthread_cond_wait(&p->done_cv, &p->mu);
  atomic_store(&p->caller_waits, false);
  pthread_mutex_unlock(&p->mu);
}

/* ---- workers -------------------------------------------------------------- */

static bool is_new_job(uint64_t g, uint64_t seen) { return g % 2 == 0 && g != seen; }

/* Waits until a job other than `seen` is published (true) or the pool
 * stops (false): spins, then sleeps. */
static bool wait_for_job(rt_pool *p, uint64_t seen) {
  for (int i = 0; i < RT_POOL_SPIN; i++) {
    if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return false;
    if (is_new_job(atomic_load_explicit(&p->gen, memory_order_relaxed), seen)) return true;
    cpu_relax();
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->sleepers, 1); /* seq_cst: pairs with the caller's gen store */
  while (!atomic_load(&p->stop) && !is_new_job(atomic_load(&p->gen), seen))
    pthread_cond_wait(&p->work_cv, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  bool stop = atomic_load(&p->stop);
  pthread_mutex_unlock(&p->mu);
  return !stop;
}

static void *worker_main(void *arg) {
  rt_pool *p = arg;
  uint64_t seen = 0; /* the last job this worker entered; 0 is never a job */
  while (wait_for_job(p, seen)) {
    atomic_fetch_add(&p->active, 1);
    uint64_t g = atomic_load(&p->gen); /* seq_cst, after the increment: see the top */
    if (is_new_job(g, seen)) {
      seen = g;
      run_tasks(p, p->fn, p->closure, p->n);
    }
    atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
  }
  return NULL;
}

/* ---- publishing a job ----------------------------------------------------- */

/* Wakes up to `want` sleeping workers: no more than the job can use. */
static void wake_workers(rt_pool *p, uint64_t want) {
  int sleepers = atomic_load(&p->sleepers); /* seq_cst: after the gen store */
  if (sleepers == 0 || want == 0) return;
  pthread_mutex_lock(&p->mu);
  if (want >= (uint64_t)sleepers) {
    pthread_cond_broadcast(&p->work_cv);
  } else {
    for (uint64_t i = 0; i < want; i++) pthread_cond_signal(&p->work_cv);
  }
  pthread_mutex_unlock(&p->mu);
}

static void publish(rt_pool *p, rt_task_fn fn, void *closure, uint64_t n) {
  uint64_t g = atomic_load_explicit(&p->gen, memory_order_relaxed);
  atomic_store(&p->gen, g + 1); /* odd: no worker enters from now on */
  /* Late workers of the previous job leave after one failed claim; yield
   * rather than spin in case one was preempted on an oversubscribed CPU. */
  for (int i = 0; atomic_load(&p->active) != 0; i++) {
    if (i < RT_POOL_SPIN) cpu_relax();
    else sched_yield();
  }
  p->fn = fn;
  p->closure = closure;
  p->n = n;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store(&p->gen, g + 2); /* seq_cst (a release): the job is readable */
  /* The caller takes one task; each woken worker at most one more. */
  uint64_t want = n - 1 < (uint64_t)p->n_workers ? n - 1 : (uint64_t)p->n_workers;
  wake_workers(p, want);
}

/* Publishes the job, takes part in it and waits for the stragglers; the
 * caller holds `running`, which this releases. */
static void run_job(rt_pool *p, rt_task_fn fn, void *closure, uint64_t n) {
  publish(p, fn, closure, n);
  run_tasks(p, fn, closure, n);
  wait_done(p, n);
  atomic_store_explicit(&p->running, false, memory_order_release);
}

void rt_pool_run(rt_pool *p, rt_task_fn fn, void *closure, int64_t n) {
  if (n <= 0 || !fn) return;
  if (!p || p->num_threads == 1 || n == 1) {
    run_inline(fn, closure, n);
    return;
  }
  if (atomic_exchange(&p->running, true)) {
    /* Called from a task of this pool (or by a second thread): the pool is
     * busy, and the caller's thread is the one that is free. */
    run_inline(fn, closure, n);
    return;
  }
  run_job(p, fn, closure, (uint64_t)n);
}

/* ---- teams ------------------------------------------------------------------ */

typedef struct team_job {
  rt_team_fn fn;
  void *closure;
  int64_t n;
} team_job;

static void team_task(void *closure, int64_t i) {
  const team_job *t = closure;
  t->fn(t->closure, i, t->n);
}

/* A team is a job of n tasks on a pool of at least n threads, so that
 * the caller plus n - 1 woken workers can run them all at once. */
void rt_pool_team(rt_pool *p, rt_team_fn fn, void *closure, int64_t max) {
  if (!fn) return;
  int64_t n = p ? p->n_workers + 1 : 1;
  if (max < n) n = max;
  if (n <= 1 || atomic_exchange(&p->running, true)) {
    fn(closure, 0, 1); /* busy (a task of this pool) or nothing to share */
    return;
  }
  team_job t = {fn, closure, n};
  run_job(p, team_task, &t, (uint64_t)n);
}

/* Spins, then yields: a member holding the work waited for may have been
 * preempted on an oversubscribed CPU. */
void rt_pool_wait(const int64_t *count, int64_t target) {
  for (int i = 0; __atomic_load_n(count, __ATOMIC_ACQUIRE) < target; i++) {
    if (i < RT_POOL_SPIN) cpu_relax();
    else sched_yield();
  }
}

/* ---- creation and teardown ------------------------------------------------ */

/* Stops and joins the started workers, then frees everything. */
static void destroy(rt_pool *p) {
  atomic_store(&p->stop, true);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
  pthread_cond_destroy(&p->done_cv);
  pthread_cond_destroy(&p->work_cv);
  pthread_mutex_destroy(&p->mu);
  free(p->workers);
  free(p);
}

/* Starts the workers with asynchronous signals blocked (threads inherit the
 * mask), so the program's handlers for them run only on its own threads.
 * Faults a task causes stay deliverable: blocking them would kill the
 * process without running a crash handler. */
static rt_status start_workers(rt_pool *p) {
  sigset_t mask, old;
  sigfillset(&mask);
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&mask, faults[i]);
  pthread_sigmask(SIG_SETMASK, &mask, &old);
  int err = 0;
  while (p->n_workers < p->num_threads - 1 && err == 0) {
    err = pthread_create(&p->workers[p->n_workers], NULL, worker_main, p);
    if (err == 0) p->n_workers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err == 0) return RT_OK;
  char msg[128];
  if (strerror_r(err, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", err);
  return rt_fail(RT_ENOMEM, "thread pool: cannot start worker %d of %d: %s", p->n_workers + 1,
                 p->num_threads - 1, msg);
}

rt_status rt_pool_new(int num_threads, rt_pool **out) {
  if (!out) return rt_fail(RT_EINVAL, "thread pool: the output pointer is NULL");
  *out = NULL;
  if (num_threads < 1 || num_threads > RT_MAX_THREADS)
    return rt_fail(RT_EINVAL, "thread pool: num_threads %d is outside [1, %d]", num_threads,
                   RT_MAX_THREADS);
  rt_pool *p = aligned_alloc(alignof(rt_pool), sizeof *p);
  if (!p) return rt_fail(RT_ENOMEM, "thread pool: out of memory");
  memset(p, 0, sizeof *p);
  atomic_init(&p->gen, 0);
  atomic_init(&p->next, 0);
  atomic_init(&p->done, 0);
  atomic_init(&p->active, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->caller_waits, false);
  atomic_init(&p->running, false);
  atomic_init(&p->stop, false);
  p->num_threads = num_threads;
  /* A 1-thread pool has no workers and never touches the mutex, but keeps
   * it initialized so destroy has one path. */
  p->workers = malloc(sizeof *p->workers * (size_t)num_threads);
  if (!p->workers) {
    free(p);
    return rt_fail(RT_ENOMEM, "thread pool: out of memory");
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  rt_status st = start_workers(p);
  if (st != RT_OK) {
    destroy(p);
    return st;
  }
  *out = p;
  return RT_OK;
}

void rt_pool_free(rt_pool *p) {
  if (p) destroy(p);
}

int rt_pool_threads(const rt_pool *p) { return p ? p->num_threads : 1; }

/* ---- the default thread count --------------------------------------------- */

/* Parses an optionally signed decimal integer saturated to [-limit, limit];
 * false unless the whole string is one. Hand-written: strtol would add a
 * locale-dependent libc import for one environment variable. */
static bool parse_count(const char *s, long limit, long *value) {
  bool negative = *s == '-';
  if (*s == '-' || *s == '+') s++;
  if (*s < '0' || *s > '9') return false;
  long v = 0;
  for (; *s >= '0' && *s <= '9'; s++)
    if (v <= limit) v = v * 10 + (*s - '0'); /* stops growing past limit: no overflow */
  if (*s) return false;
  if (v > limit) v = limit;
  *value = negative ? -v : v;
  return true;
}

int rt_default_threads(void) {
  const char *s = getenv("SEQRT_NUM_THREADS");
  long v;
  if (!s || !parse_count(s, RT_MAX_THREADS, &v) || v < 1) return 1;
  return (int)v;
}
