/*
 * probes.c - this machine's limits, measured by `make bench` itself
 * (tools/bench/bench.py) for its "% of FMA peak" and roofline lines.
 *
 *   probes fma THREADS...           fp32 FMA peak at each thread count
 *   probes bw BYTES THREADS...      read bandwidth, BYTES per thread
 *
 * Compiled for the host (-march=native) with the widest vectors it has
 * (AVX-512, else AVX2+FMA, or NEON). `fma` runs, on every thread, a loop of
 * 16 independent vector FMA chains: more than latency x FMA ports on any
 * current core (4 x 2 = 8), so the loop is bound by FMA throughput alone.
 * `bw` gives each thread its own block of BYTES (first touched by that
 * thread) and sums it with vector loads into 8 accumulators, pass after
 * pass: the block's size decides which level of the memory hierarchy
 * serves it (half the L2 measures L2; many times the last-level cache
 * measures memory). The threads start together at a barrier; each one's
 * rate is its work over its own CPU time (CLOCK_THREAD_CPUTIME_ID), so
 * other processes taking turns on the cores do not lower the figure, while
 * what the threads share (FMA units of sibling hyperthreads, memory
 * bandwidth) does. The rate at N threads is the sum of the N threads'
 * rates; each figure is the best of 5 measurements of about 0.1 s of CPU
 * time per thread. Output: one line of
 * JSON, {"isa": "avx512", "lanes": 16, "gflops": {"1": ..., "2": ...}} or
 * {"bytes": N, "gbps": {"1": ..., "2": ...}}.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define ISA "avx512"
#define LANES 16
typedef __m512 vec;
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(acc, a, b) _mm512_fmadd_ps(a, b, acc)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VLOAD(p) _mm512_load_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ISA "avx2"
#define LANES 8
typedef __m256 vec;
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(acc, a, b) _mm256_fmadd_ps(a, b, acc)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VLOAD(p) _mm256_load_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#elif defined(__aarch64__)
#include <arm_neon.h>
#define ISA "neon"
#define LANES 4
typedef float32x4_t vec;
#define VSET(x) vdupq_n_f32(x)
#define VFMA(acc, a, b) vfmaq_f32(acc, a, b)
#define VADD(a, b) vaddq_f32(a, b)
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32(p, v)
#else
#error "probes.c: no FMA vector ISA (AVX-512, AVX2+FMA or NEON) for this target"
#endif

enum { MAX_THREADS = 64, MEASUREMENTS = 5 };
#define TARGET_S 0.1

static float hsum(vec v) {
  float f[LANES];
  VSTORE(f, v);
  float s = 0;
  for (int i = 0; i < LANES; i++) s += f[i];
  return s;
}

/* `iters` iterations of 16 independent FMA chains; each converges to 1, so
 * values stay normal. Returns their sum so the work is not dead. */
static float fma_loop(long iters) {
  vec m = VSET(0.999999f), c = VSET(1e-6f);
  vec a0 = VSET(0.0f), a1 = VSET(0.1f), a2 = VSET(0.2f), a3 = VSET(0.3f), a4 = VSET(0.4f), a5 = VSET(0.5f),
      a6 = VSET(0.6f), a7 = VSET(0.7f), a8 = VSET(0.8f), a9 = VSET(0.9f), a10 = VSET(1.0f), a11 = VSET(1.1f),
      a12 = VSET(1.2f), a13 = VSET(1.3f), a14 = VSET(1.4f), a15 = VSET(1.5f);
  for (long i = 0; i < iters; i++) {
    a0 = VFMA(c, a0, m), a1 = VFMA(c, a1, m), a2 = VFMA(c, a2, m), a3 = VFMA(c, a3, m);
    a4 = VFMA(c, a4, m), a5 = VFMA(c, a5, m), a6 = VFMA(c, a6, m), a7 = VFMA(c, a7, m);
    a8 = VFMA(c, a8, m), a9 = VFMA(c, a9, m), a10 = VFMA(c, a10, m), a11 = VFMA(c, a11, m);
    a12 = VFMA(c, a12, m), a13 = VFMA(c, a13, m), a14 = VFMA(c, a14, m), a15 = VFMA(c, a15, m);
  }
  vec s = VADD(VADD(VADD(VADD(a0, a1), VADD(a2, a3)), VADD(VADD(a4, a5), VADD(a6, a7))),
               VADD(VADD(VADD(a8, a9), VADD(a10, a11)), VADD(VADD(a12, a13), VADD(a14, a15))));
  return hsum(s);
}

/* `passes` sums of the n floats at p (n a multiple of 8 * LANES). */
static float read_loop(const float *p, size_t n, long passes) {
  vec s0 = VSET(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (long k = 0; k < passes; k++)
    for (size_t i = 0; i < n; i += 8 * LANES) {
      s0 = VADD(s0, VLOAD(p + i)), s1 = VADD(s1, VLOAD(p + i + LANES));
      s2 = VADD(s2, VLOAD(p + i + 2 * LANES)), s3 = VADD(s3, VLOAD(p + i + 3 * LANES));
      s4 = VADD(s4, VLOAD(p + i + 4 * LANES)), s5 = VADD(s5, VLOAD(p + i + 5 * LANES));
      s6 = VADD(s6, VLOAD(p + i + 6 * LANES)), s7 = VADD(s7, VLOAD(p + i + 7 * LANES));
    }
  return hsum(VADD(VADD(VADD(s0, s1), VADD(s2, s3)), VADD(VADD(s4, s5), VADD(s6, s7))));
}

typedef struct job {
  int fma;            /* 1: fma_loop, 0: read_loop */
  long count;         /* iterations or passes */
  size_t n;           /* floats per thread's block */
  float *blocks[MAX_THREADS];
  pthread_barrier_t start;
  volatile float sink[MAX_THREADS];
  double cpu_s[MAX_THREADS]; /* each thread's CPU time for its share */
} job;

typedef struct worker {
  job *j;
  int id;
} worker;

static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *work(void *arg) {
  worker *w = arg;
  job *j = w->j;
  pthread_barrier_wait(&j->start);
  double t0 = thread_cpu_s();
  j->sink[w->id] = j->fma ? fma_loop(j->count) : read_loop(j->blocks[w->id], j->n, j->count);
  j->cpu_s[w->id] = thread_cpu_s() - t0;
  return NULL;
}

/* Runs every thread's share; returns the sum over threads of 1 / its CPU
 * seconds (the rate in shares per second). */
static double run(job *j, int threads) {
  pthread_t tid[MAX_THREADS];
  worker w[MAX_THREADS];
  pthread_barrier_init(&j->start, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    w[i] = (worker){j, i};
    if (pthread_create(&tid[i], NULL, work, &w[i])) {
      fprintf(stderr, "probes: cannot start a thread\n");
      exit(1);
    }
  }
  pthread_barrier_wait(&j->start);
  double rate = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    rate += 1.0 / (j->cpu_s[i] > 1e-9 ? j->cpu_s[i] : 1e-9);
  }
  pthread_barrier_destroy(&j->start);
  return rate;
}

/* The best rate (work units per second) of MEASUREMENTS runs of about
 * TARGET_S each, after sizing `count` on one thread. */
static double best_rate(job *j, int threads, double units_per_count) {
  j->count = 1;
  for (double r = run(j, 1); 1.0 / r < TARGET_S / 4; r = run(j, 1)) j->count *= 2;
  j->count = (long)((double)j->count * TARGET_S * run(j, 1)) + 1;
  double best = 0;
  for (int m = 0; m < MEASUREMENTS; m++) {
    double rate = units_per_count * (double)j->count * run(j, threads);
    if (rate > best) best = rate;
  }
  return best;
}

static void *first_touch(void *arg) {
  worker *w = arg;
  memset(w->j->blocks[w->id], 0, w->j->n * sizeof(float));
  return NULL;
}

int main(int argc, char **argv) {
  int fma = argc >= 3 && !strcmp(argv[1], "fma"), bw = argc >= 4 && !strcmp(argv[1], "bw");
  int first = fma ? 2 : 3;
  if (!fma && !bw) {
    fprintf(stderr, "usage: %s fma THREADS... | %s bw BYTES THREADS...\n", argv[0], argv[0]);
    return 1;
  }
  int max_threads = 0;
  for (int i = first; i < argc; i++) {
    long t = bench_int_arg(argv[i]);
    if (t < 1 || t > MAX_THREADS) {
      fprintf(stderr, "probes: bad thread count '%s' (1..%d)\n", argv[i], MAX_THREADS);
      return 1;
    }
    if (t > max_threads) max_threads = (int)t;
  }
  static job j;
  j.fma = fma;
  if (bw) {
    long bytes = bench_int_arg(argv[2]);
    size_t chunk = 8 * LANES * sizeof(float);
    if (bytes < (long)chunk) {
      fprintf(stderr, "probes: bad BYTES '%s'\n", argv[2]);
      return 1;
    }
    j.n = (size_t)bytes / chunk * chunk / sizeof(float);
    /* Each block is first touched by the thread that reads it. */
    pthread_t tid[MAX_THREADS];
    worker w[MAX_THREADS];
    for (int i = 0; i < max_threads; i++) {
      j.blocks[i] = aligned_alloc(64, j.n * sizeof(float));
      w[i] = (worker){&j, i};
      if (!j.blocks[i] || pthread_create(&tid[i], NULL, first_touch, &w[i])) {
        fprintf(stderr, "probes: out of memory or threads\n");
        return 1;
      }
    }
    for (int i = 0; i < max_threads; i++) pthread_join(tid[i], NULL);
    printf("{\"bytes\": %zu, \"gbps\": {", j.n * sizeof(float));
  } else {
    printf("{\"isa\": \"%s\", \"lanes\": %d, \"gflops\": {", ISA, LANES);
  }
  for (int i = first; i < argc; i++) {
    int t = (int)bench_int_arg(argv[i]);
    /* Units: GFLOP (16 chains x LANES x 2 per iteration) or GB per pass. */
    double units = fma ? 1e-9 * 16 * LANES * 2 : 1e-9 * (double)(j.n * sizeof(float));
    printf("%s\"%d\": %.3f", i > first ? ", " : "", t, best_rate(&j, t, units));
    fflush(stdout);
  }
  printf("}}\n");
  for (int i = 0; i < max_threads; i++) free(j.blocks[i]);
  return 0;
}
