/*
 * seqrt.h - the public header of the seqc runtime, the small C library
 * compiled into every generated shared object. It depends on libc and libm
 * only and includes nothing of the compiler.
 *
 * Status codes: every runtime entry point returns one of these; the message
 * for the last failure on the calling thread is in rt_last_error(), so the
 * runtime stays reentrant (no shared mutable state between threads).
 */
#ifndef SEQC_RUNTIME_SEQRT_H
#define SEQC_RUNTIME_SEQRT_H

#include <stddef.h>

typedef enum rt_status {
  RT_OK = 0,
  RT_EINVAL = 1,   /* an argument is invalid (null, out of range, mismatched) */
  RT_ENOMEM = 2,   /* memory could not be allocated */
  RT_EIO = 3,      /* a file could not be read */
  RT_EFORMAT = 4,  /* input data is malformed */
  RT_ESTATE = 5,   /* the object is in the wrong state for the call */
} rt_status;

/* A short name of a status code ("invalid argument", ...). */
const char *rt_status_name(rt_status s);

/* Record a failure for the calling thread and return `s`. */
rt_status rt_fail(rt_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The message of the calling thread's last failure ("" if none). Valid until
 * the thread's next failing call. */
const char *rt_last_error(void);
void rt_clear_error(void);

#endif
