/*
 * gemm_openblas.c - times OpenBLAS's cblas_sgemm, the GEMM baseline of
 * `make bench` (workload G1, tools/bench/bench.py).
 *
 *   gemm_openblas N THREADS REPS BUDGET_S
 *
 * C = A B with A, B, C row-major N x N fp32, allocated and filled once
 * (fixed-seed values in [-1, 1]); OpenBLAS runs on THREADS threads. After
 * the warm-up a few entries of C are checked against a double-precision dot
 * product, so a broken library is never timed. Output: one line of JSON on
 * stdout (bench_common.h, plus "corename" from openblas_get_corename() and
 * "config" from openblas_get_config()); errors on stderr, exit 1.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

typedef struct gemm {
  int n;
  float *a, *b, *c;
} gemm;

static int call(void *arg) {
  gemm *g = arg;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n,
              0.0f, g->c, g->n);
  return 0;
}

/* A few entries of C against a dot product in double, within fp32
 * rounding of the sum of |a| |b| over the reduction. */
static int check(void *arg) {
  gemm *g = arg;
  int n = g->n;
  for (int k = 0; k < 16; k++) {
    int i = (int)((k * 7919L) % n), j = (int)((k * 104729L + 13) % n);
    double ref = 0, mag = 0;
    for (int p = 0; p < n; p++) {
      ref += (double)g->a[(size_t)i * n + p] * g->b[(size_t)p * n + j];
      mag += fabs((double)g->a[(size_t)i * n + p] * g->b[(size_t)p * n + j]);
    }
    double got = g->c[(size_t)i * n + j];
    if (fabs(got - ref) > 1e-5 * mag + 1e-6) {
      fprintf(stderr, "gemm_openblas: C[%d][%d] = %.9g, expected %.9g: cblas_sgemm is wrong\n", i, j, got, ref);
      return 1;
    }
  }
  return 0;
}

/* Fixed-seed values in [-1, 1] (splitmix64). */
static void fill(float *x, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    x[i] = (float)((double)(z >> 40) / (double)(1 << 23) - 1.0);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s N THREADS REPS BUDGET_S\n", argv[0]);
    return 1;
  }
  long n = bench_int_arg(argv[1]), threads = bench_int_arg(argv[2]), reps = bench_int_arg(argv[3]);
  double budget = atof(argv[4]);
  if (n < 1 || n > 32768 || threads < 1 || reps < 0) {
    fprintf(stderr, "gemm_openblas: bad N, THREADS or REPS\n");
    return 1;
  }
  openblas_set_num_threads((int)threads);
  size_t bytes = ((size_t)n * (size_t)n * sizeof(float) + 63) / 64 * 64;
  gemm g = {(int)n, aligned_alloc(64, bytes), aligned_alloc(64, bytes), aligned_alloc(64, bytes)};
  bench_times t = {.ms = malloc(sizeof(double) * (size_t)(reps ? reps : 1))};
  if (!g.a || !g.b || !g.c || !t.ms) {
    fprintf(stderr, "gemm_openblas: out of memory\n");
    return 1;
  }
  fill(g.a, (size_t)n * (size_t)n, 1);
  fill(g.b, (size_t)n * (size_t)n, 2);
  memset(g.c, 0, bytes);
  int rc = bench_loop(call, &g, (int)reps, budget, &t, check);
  if (!rc) {
    bench_print_times(&t);
    printf(", \"corename\": \"%s\", \"config\": \"%s\"}\n", openblas_get_corename(), openblas_get_config());
  }
  free(g.a);
  free(g.b);
  free(g.c);
  free(t.ms);
  return rc;
}
