/*
 * exec.h - what generated code calls back into: the services of the context
 * that runs it. NAME_run takes a pointer to this as its last argument (NULL
 * when there is none: tasks then run inline and nothing is profiled).
 *
 * This is a contract between codegen/ (which emits loads of these fields by
 * index, codegen/lower_parallel.c) and runtime/: fields never move, and a
 * unit test pins their offsets.
 */
#ifndef SEQC_RUNTIME_EXEC_H
#define SEQC_RUNTIME_EXEC_H

#include <stdint.h>

typedef struct seqrt_exec seqrt_exec;
struct seqrt_exec {
  /* Runs task(closure, i) for every i in [0, n) over the context's threads
   * and returns when all have finished. NULL: the code loops itself. */
  void (*parallel_for)(seqrt_exec *e, void (*task)(void *closure, int64_t i), void *closure,
                       int64_t n);
  /* Called around every top-level op of NAME_run with the op's index (the
   * index in the program's op_names) when profiling; NULL otherwise. */
  void (*kernel_begin)(seqrt_exec *e, int32_t op);
  void (*kernel_end)(seqrt_exec *e, int32_t op);
  /* Runs member(closure, i, n) for every i in [0, n), 1 <= n <= max (the
   * runtime picks n: the pool's threads, or 1 when the pool is busy), on
   * up to n threads at once, and returns when all have finished. Members
   * may wait for each other's progress with team_wait, but only for work
   * that any member could have done (a member may start after the others
   * have finished). NULL: the code calls member(closure, 0, 1) itself. */
  void (*team_run)(seqrt_exec *e, void (*member)(void *closure, int64_t i, int64_t n), void *closure,
                   int64_t max);
  /* Returns once *count, which members increase with atomic adds
   * (release), is at least target; what they wrote before is then visible.
   * Set whenever team_run is: members of a team of n > 1 call it without
   * a check. */
  void (*team_wait)(seqrt_exec *e, const int64_t *count, int64_t target);
};

#endif
