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
};

#endif
