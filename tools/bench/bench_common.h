/*
 * bench_common.h - the timing loop shared by the C timers of `make bench`
 * (so_timer.c, gemm_openblas.c); tools/bench/torch_worker.py follows the
 * same rules, so every engine is timed alike (docs/performance.md):
 *
 *   warm-up: calls until 2 are done or 1 s has passed (at least 1), so the
 *            first-touch page faults, lazy initialization and thread
 *            start-up are never timed;
 *   timed:   up to `reps` calls, stopping early once the timed calls have
 *            taken `budget` seconds (at least 1 call), so a slow engine
 *            cannot stretch the run.
 *
 * The result is printed as one line of JSON on stdout for bench.py.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

enum { BENCH_MAX_WARMUP = 2 };
#define BENCH_WARMUP_S 1.0

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench_times {
  int n_warm;
  double warm_ms[BENCH_MAX_WARMUP];
  int n;
  double *ms; /* reps entries, allocated by the caller before the loop */
} bench_times;

/* One call of the timed operation: 0 on success. */
typedef int (*bench_fn)(void *arg);

/* Runs the warm-up and the timed calls. Returns 0, or the status of the
 * first failing call. `after_warmup` (may be NULL) runs once between the
 * warm-up and the timed calls (the output dump of --dump). */
static inline int bench_loop(bench_fn fn, void *arg, int reps, double budget_s, bench_times *t,
                      bench_fn after_warmup) {
  double spent = 0;
  t->n_warm = 0;
  t->n = 0;
  while (t->n_warm < BENCH_MAX_WARMUP && (t->n_warm == 0 || spent < BENCH_WARMUP_S)) {
    double t0 = bench_now();
    int rc = fn(arg);
    if (rc) return rc;
    double dt = bench_now() - t0;
    t->warm_ms[t->n_warm++] = 1e3 * dt;
    spent += dt;
  }
  if (after_warmup) {
    int rc = after_warmup(arg);
    if (rc) return rc;
  }
  spent = 0;
  while (t->n < reps && (t->n == 0 || spent < budget_s)) {
    double t0 = bench_now();
    int rc = fn(arg);
    if (rc) return rc;
    double dt = bench_now() - t0;
    t->ms[t->n++] = 1e3 * dt;
    spent += dt;
  }
  return 0;
}

/* Peak resident set of this process in KiB: VmHWM from /proc/self/status,
 * the high-water mark of this program's own address space. Not ru_maxrss:
 * Linux carries that across fork and exec, so a child of the (large)
 * Python orchestrator would report the orchestrator's peak. */
static inline long bench_peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  struct rusage ru;
  if (kb < 0 && !getrusage(RUSAGE_SELF, &ru)) kb = ru.ru_maxrss;
  return kb;
}

/* Prints the fields every timer reports, without the closing brace, so the
 * caller can append its own: {"warmup_ms": [...], "times_ms": [...],
 * "peak_rss_kb": N */
static inline void bench_print_times(const bench_times *t) {
  printf("{\"warmup_ms\": [");
  for (int i = 0; i < t->n_warm; i++) printf("%s%.6f", i ? ", " : "", t->warm_ms[i]);
  printf("], \"times_ms\": [");
  for (int i = 0; i < t->n; i++) printf("%s%.6f", i ? ", " : "", t->ms[i]);
  printf("], \"peak_rss_kb\": %ld", bench_peak_rss_kb());
}

/* A non-negative integer argument, or -1. */
static inline long bench_int_arg(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return (*s && !*end && v >= 0) ? v : -1;
}

#endif
