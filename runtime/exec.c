/*
 * exec.c - a context's services for generated code (runtime/exec.h): its
 * thread pool, and with SEQRT_PROFILE=1 a per-kernel profile printed when
 * the context is freed.
 *
 * The profile times every top-level op of each program (the generated
 * code calls kernel_begin/kernel_end around it) with CLOCK_MONOTONIC and
 * prints, per program, one line per op that ran: total milliseconds, share
 * of the program's time, calls, and the op's description (its kind, value
 * name and source location, from the program's op_names).
 */
#include "runtime/model_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rt_profile {
  const seqrt_program *code[2]; /* forward, step */
  uint64_t *ns[2], *calls[2];   /* by op index */
  uint64_t started;             /* when the current kernel began */
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static rt_exec *exec_of(seqrt_exec *e) { return (rt_exec *)e; }

static void parallel_for(seqrt_exec *e, void (*task)(void *, int64_t), void *closure, int64_t n) {
  rt_pool_run(exec_of(e)->pool, task, closure, n);
}

static void team_run(seqrt_exec *e, void (*member)(void *, int64_t, int64_t), void *closure, int64_t max) {
  rt_pool_team(exec_of(e)->pool, member, closure, max);
}

static void team_wait(seqrt_exec *e, const int64_t *count, int64_t target) {
  (void)e;
  rt_pool_wait(count, target);
}

static void kernel_begin(seqrt_exec *e, int32_t op) {
  (void)op;
  exec_of(e)->profile->started = now_ns();
}

static void kernel_end(seqrt_exec *e, int32_t op) {
  rt_exec *x = exec_of(e);
  rt_profile *p = x->profile;
  int w = x->running;
  if (op < 0 || !p->code[w] || op >= p->code[w]->n_ops) return;
  p->ns[w][op] += now_ns() - p->started;
  p->calls[w][op]++;
}

static bool profiling_asked(void) {
  const char *v = getenv("SEQRT_PROFILE");
  return v && !strcmp(v, "1");
}

static rt_status new_profile(const rt_model_desc *d, rt_profile **out) {
  rt_profile *p = calloc(1, sizeof *p);
  if (!p) return rt_fail(RT_ENOMEM, "out of memory");
  p->code[0] = d->forward;
  p->code[1] = d->step;
  for (int w = 0; w < 2; w++) {
    size_t n = p->code[w] ? (size_t)p->code[w]->n_ops + 1 : 1;
    p->ns[w] = calloc(n, sizeof(uint64_t));
    p->calls[w] = calloc(n, sizeof(uint64_t));
    if (!p->ns[w] || !p->calls[w]) {
      *out = p;
      return rt_fail(RT_ENOMEM, "out of memory");
    }
  }
  *out = p;
  return RT_OK;
}

rt_status rt_exec_init(rt_exec *x, const rt_model *m) {
  memset(x, 0, sizeof *x);
  rt_status st = rt_pool_new(m->num_threads, &x->pool);
  if (st != RT_OK) return st;
  if (rt_pool_threads(x->pool) > 1) {
    x->pub.parallel_for = parallel_for;
    x->pub.team_run = team_run;
    x->pub.team_wait = team_wait;
  }
  if (!profiling_asked()) return RT_OK;
  st = new_profile(m->desc, &x->profile);
  if (st != RT_OK) return st;
  x->pub.kernel_begin = kernel_begin;
  x->pub.kernel_end = kernel_end;
  return RT_OK;
}

/* Ops sorted by time, slowest first, ties by index (insertion sort: the
 * tables are small and this runs once). */
static void sort_by_time(int32_t *idx, int32_t n, const uint64_t *ns) {
  for (int32_t i = 1; i < n; i++)
    for (int32_t j = i; j > 0 && ns[idx[j]] > ns[idx[j - 1]]; j--) {
      int32_t t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
}

static void print_program(const rt_model *m, const rt_profile *p, int w, FILE *f) {
  const seqrt_program *code = p->code[w];
  int32_t *idx = malloc(sizeof(int32_t) * ((size_t)code->n_ops + 1));
  if (!idx) return;
  int32_t n = 0;
  uint64_t total = 0;
  for (int32_t op = 0; op < code->n_ops; op++)
    if (p->calls[w][op]) {
      idx[n++] = op;
      total += p->ns[w][op];
    }
  sort_by_time(idx, n, p->ns[w]);
  fprintf(f, "seqrt profile: %s %s, %d thread%s: %.3f ms in kernels\n", m->desc->name,
          w ? "step" : "forward", m->num_threads, m->num_threads > 1 ? "s" : "", (double)total / 1e6);
  fprintf(f, "%12s %7s %9s  kernel\n", "ms", "%", "calls");
  for (int32_t i = 0; i < n; i++) {
    int32_t op = idx[i];
    const char *name = code->op_names && code->op_names[op] ? code->op_names[op] : "?";
    fprintf(f, "%12.3f %7.1f %9llu  %s\n", (double)p->ns[w][op] / 1e6,
            total ? 100.0 * (double)p->ns[w][op] / (double)total : 0.0,
            (unsigned long long)p->calls[w][op], name);
  }
  free(idx);
}

void rt_exec_free(rt_exec *x, const rt_model *m) {
  rt_profile *p = x->profile;
  for (int w = 0; p && w < 2; w++) {
    bool ran = false;
    for (int32_t op = 0; p->code[w] && op < p->code[w]->n_ops && !ran; op++) ran = p->calls[w][op] > 0;
    if (ran) print_program(m, p, w, stderr);
  }
  for (int w = 0; p && w < 2; w++) {
    free(p->ns[w]);
    free(p->calls[w]);
  }
  free(p);
  rt_pool_free(x->pool);
  memset(x, 0, sizeof *x);
}
