/*
 * error.c - status codes and the per-thread last-error message. A
 * thread-local buffer keeps the runtime reentrant: two threads failing at
 * once each see their own message.
 */
#include "seqrt.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *rt_status_name(rt_status s) {
  switch (s) {
  case RT_OK: return "ok";
  case RT_EINVAL: return "invalid argument";
  case RT_ENOMEM: return "out of memory";
  case RT_EIO: return "I/O error";
  case RT_EFORMAT: return "malformed input";
  case RT_ESTATE: return "wrong state";
  }
  return "unknown status";
}

rt_status rt_fail(rt_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return s;
}

const char *rt_last_error(void) { return last_error; }

void rt_clear_error(void) { last_error[0] = 0; }
