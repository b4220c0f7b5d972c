/*
 * pool.h - the thread pool of one execution context (rt_ctx). Generated code
 * splits a kernel's non-reduction axis into tasks and calls rt_pool_run
 * (through a function pointer); the calling thread takes part, so a pool of
 * num_threads threads starts num_threads - 1 workers, and a 1-thread pool
 * starts none.
 *
 * A pool is owned by one context and used by one thread at a time; it holds
 * no global state, so any number of pools may live in one process. Workers
 * spin briefly for the next job, then sleep on a condition variable; they
 * block every signal, so the embedding program's handlers never run on them.
 *
 * Errors: rt_pool_new returns an rt_status with a message (rt_last_error);
 * the other functions cannot fail.
 */
#ifndef SEQC_RUNTIME_POOL_H
#define SEQC_RUNTIME_POOL_H

#include <stdint.h>

#include "runtime/seqrt.h"

/* One task of a job: `task` is in [0, n). */
typedef void (*rt_task_fn)(void *closure, int64_t task);

typedef struct rt_pool rt_pool;

/* A pool running tasks on num_threads threads: the caller's and
 * num_threads - 1 workers. num_threads = 1 creates no threads at all.
 * num_threads must be in [1, RT_MAX_THREADS (1024, runtime/model.h)]: other
 * values are RT_EINVAL; a worker that cannot be started is RT_ENOMEM (the
 * ones already started are joined). On failure *out is NULL. */
rt_status rt_pool_new(int num_threads, rt_pool **out);

/* Wakes and joins every worker, then frees the pool. NULL allowed. Must not
 * be called while rt_pool_run is running on the pool. */
void rt_pool_free(rt_pool *p);

/* The pool's thread count (the caller's included); 1 for NULL, which
 * rt_pool_run treats as a 1-thread pool. */
int rt_pool_threads(const rt_pool *p);

/* Runs fn(closure, i) for every i in [0, n) exactly once, spread over the
 * pool's threads (the caller takes part), and returns when all have
 * finished; everything the tasks wrote is then visible to the caller. Tasks
 * are claimed one at a time, so uneven tasks balance. Which thread runs
 * which task is unspecified: tasks must write disjoint memory, and results
 * are deterministic when each task's result depends only on its index.
 *
 * n <= 0 (or a NULL fn) does nothing. n == 1, a 1-thread pool and a NULL
 * pool run the tasks inline on the caller, in index order, without touching
 * any worker. Not reentrant: a task that calls rt_pool_run on the same pool
 * (or a second thread calling it while a job runs) gets its tasks run inline,
 * in index order, on its own thread; nothing deadlocks. */
void rt_pool_run(rt_pool *p, rt_task_fn fn, void *closure, int64_t n);

/* One member of a team: i in [0, n). */
typedef void (*rt_team_fn)(void *closure, int64_t i, int64_t n);

/* Runs fn(closure, i, n) for every i in [0, n) and returns when all have
 * finished, n being the pool's thread count capped at max (at least 1),
 * as a job of n tasks (the caller takes one): members usually run at once
 * and may wait for each other's progress (rt_pool_wait), but must never
 * depend on that: a member can start late, after the others are done, or
 * run on the caller after another member has finished. A NULL or
 * 1-thread pool, max <= 1, and a call from a task of this pool (or a
 * second thread while a job runs) run fn(closure, 0, 1) on the caller. */
void rt_pool_team(rt_pool *p, rt_team_fn fn, void *closure, int64_t max);

/* Returns once *count, which other threads increase with atomic
 * read-modify-writes (release), is at least target; their writes before
 * those increments are then visible. Spins, then yields the CPU. */
void rt_pool_wait(const int64_t *count, int64_t target);

/* The thread count the environment variable SEQRT_NUM_THREADS asks for: a
 * decimal integer (optional sign), clamped to [1, RT_MAX_THREADS]; 1 when it
 * is unset, empty or not a number. The runtime's default for
 * seqrt_options.num_threads = 0. Reads the environment on every call. */
int rt_default_threads(void);

#endif
