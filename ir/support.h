/*
 * support.h - small utilities every compiler stage shares: checked
 * allocation, a growable string buffer, arenas, and diagnostics.
 *
 * Two error channels (docs/ir.md): user errors go through ir_diag as
 * `file:line:col: error: message` with the source line and a caret; internal
 * bugs use IR_ASSERT, which prints __FILE__:__LINE__ and aborts whatever
 * NDEBUG says.
 */
#ifndef SEQC_IR_SUPPORT_H
#define SEQC_IR_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define IR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define IR_NORETURN __attribute__((noreturn))
#else
#define IR_PRINTF(f, a)
#define IR_NORETURN
#endif

/* Internal invariant; never compiled out. */
#define IR_ASSERT(c) ((c) ? (void)0 : ir_bug(__FILE__, __LINE__, "assertion failed: %s", #c))
IR_NORETURN void ir_bug(const char *file, int line, const char *fmt, ...) IR_PRINTF(3, 4);

/* malloc/realloc that abort with a message when memory is exhausted. Inputs
 * are size-bounded before they reach allocation, so exhaustion is a host
 * failure, not a user error. */
void *ir_xmalloc(size_t n);
void *ir_xcalloc(size_t n, size_t size);
void *ir_xrealloc(void *p, size_t n);
/* Grow *p (holding *cap elements of `size` bytes) so that `need` fit. */
void ir_grow(void **p, int32_t *cap, int32_t need, size_t size);

/* Growable NUL-terminated string. */
typedef struct ir_buf {
  char *s;
  size_t len, cap;
} ir_buf;
void ir_buf_putc(ir_buf *b, char c);
void ir_buf_puts(ir_buf *b, const char *s);
void ir_buf_putn(ir_buf *b, const char *s, size_t n);
void ir_buf_printf(ir_buf *b, const char *fmt, ...) IR_PRINTF(2, 3);
void ir_buf_vprintf(ir_buf *b, const char *fmt, va_list ap);
/* Shortest decimal that reads back to exactly `x` (as a double, or as a
 * float when `as_float`); spells nan, inf and -inf. */
void ir_buf_put_real(ir_buf *b, double x, bool as_float);
void ir_buf_free(ir_buf *b);

/* Bump allocator: everything a graph owns is freed at once. */
typedef struct ir_arena ir_arena;
ir_arena *ir_arena_new(void);
void ir_arena_free(ir_arena *a);
void *ir_arena_alloc(ir_arena *a, size_t n); /* zeroed, 16-byte aligned */
char *ir_arena_strndup(ir_arena *a, const char *s, size_t n);
char *ir_arena_strdup(ir_arena *a, const char *s);
void *ir_arena_memdup(ir_arena *a, const void *p, size_t n);

/* A source location, 1-based; file == NULL means unknown. */
typedef struct ir_loc {
  const char *file;
  int32_t line, col;
} ir_loc;

/* A source text a diagnostic can quote. */
typedef struct ir_source {
  const char *name;
  const char *text;
  size_t len;
} ir_source;

/* Diagnostic sink. Messages go to `out` (stderr by default) or, when
 * `capture` is set, are appended there (tests). Source lines are quoted from
 * the registered sources whose name matches the location's file. */
typedef struct ir_diag {
  FILE *out;
  ir_buf *capture;
  int n_errors;
  int max_errors; /* stop reporting after this many (0 = 20) */
  const ir_source *sources[8];
  int n_sources;
} ir_diag;
void ir_diag_init(ir_diag *d);
/* Register src for quoting; false (nothing done) if it, or a source with
 * the same name and text, is registered already, or the table is full. A
 * parser registering a source that lives on its stack removes it again
 * before returning (ir_diag_remove_source) when this returned true. */
bool ir_diag_add_source(ir_diag *d, const ir_source *src);
void ir_diag_remove_source(ir_diag *d, const ir_source *src);
void ir_error_at(ir_diag *d, ir_loc loc, const char *fmt, ...) IR_PRINTF(3, 4);
void ir_verror_at(ir_diag *d, ir_loc loc, const char *fmt, va_list ap);
void ir_note_at(ir_diag *d, ir_loc loc, const char *fmt, ...) IR_PRINTF(3, 4);

/* Length of the decimal number at s[0..n): -?digits[.digits][e[+-]digits]
 * with at least one digit before the exponent (".5" and "5." count), or 0.
 * Shared by the text-form lexer and the YAML frontend. */
size_t ir_decimal_length(const char *s, size_t n);

/* Whole-file input, bounded; NULL + message in `err` on failure. "-" is stdin. */
char *ir_read_file(const char *path, size_t max_bytes, size_t *len, ir_buf *err);
/* Write `len` bytes to `path` through a temporary file in the same directory
 * and rename, so a failure never leaves a half-written file. "-" is stdout. */
bool ir_write_file_atomic(const char *path, const void *data, size_t len, ir_buf *err);

#endif
