/*
 * support.c - allocation, string buffers, arenas, diagnostics and file I/O
 * shared by every compiler stage. See support.h.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "support.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ir_bug(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "seqc: internal error at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static void out_of_memory(size_t n) {
  fprintf(stderr, "seqc: out of memory allocating %zu bytes\n", n);
  abort();
}

void *ir_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *ir_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) out_of_memory(n * size);
  return p;
}

void *ir_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

void ir_grow(void **p, int32_t *cap, int32_t need, size_t size) {
  if (need <= *cap) return;
  IR_ASSERT(need > 0 && need < INT32_MAX / 2);
  int32_t c = *cap ? *cap : 8;
  while (c < need) c *= 2;
  *p = ir_xrealloc(*p, (size_t)c * size);
  memset((char *)*p + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
  *cap = c;
}

/* ---- buffers ------------------------------------------------------------- */

static void buf_reserve(ir_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t c = b->cap ? b->cap : 64;
  while (c < b->len + extra + 1) c *= 2;
  b->s = ir_xrealloc(b->s, c);
  b->cap = c;
}

void ir_buf_putn(ir_buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

void ir_buf_putc(ir_buf *b, char c) { ir_buf_putn(b, &c, 1); }
void ir_buf_puts(ir_buf *b, const char *s) { ir_buf_putn(b, s, strlen(s)); }

void ir_buf_vprintf(ir_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  IR_ASSERT(n >= 0);
  buf_reserve(b, (size_t)n);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void ir_buf_printf(ir_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

/* The float nearest to x, as a double, without the undefined behaviour of
 * casting an out-of-range double: beyond FLT_MAX plus half an ulp is inf. */
static double double_to_float_value(double x) {
  const double overflow = 0x1.ffffffp127; /* FLT_MAX + half its ulp */
  if (fabs(x) >= overflow) return x < 0 ? -INFINITY : INFINITY;
  if (fabs(x) > FLT_MAX) return x < 0 ? -FLT_MAX : FLT_MAX;
  return (float)x;
}

void ir_buf_put_real(ir_buf *b, double x, bool as_float) {
  if (isnan(x)) {
    ir_buf_puts(b, "nan");
    return;
  }
  if (isinf(x)) {
    ir_buf_puts(b, x < 0 ? "-inf" : "inf");
    return;
  }
  if (as_float) x = double_to_float_value(x);
  if (isinf(x)) {
    ir_buf_puts(b, x < 0 ? "-inf" : "inf");
    return;
  }
  /* Fewest significant digits that read back exactly (at most 9 for float,
   * 17 for double). */
  char tmp[64];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, x);
    double back = strtod(tmp, NULL);
    if (as_float ? double_to_float_value(back) == x : back == x) break;
  }
  /* Keep reals recognizable as reals: 2 prints as 2.0. */
  if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
  ir_buf_puts(b, tmp);
}

void ir_buf_free(ir_buf *b) {
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

/* ---- arena --------------------------------------------------------------- */

typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
} arena_chunk;

struct ir_arena {
  arena_chunk *head;
};

#ifdef SEQC_TEST_BUILD
enum { ARENA_CHUNK = 256 }; /* small chunks exercise the chunk-boundary path */
#else
enum { ARENA_CHUNK = 64 * 1024 };
#endif

ir_arena *ir_arena_new(void) { return ir_xcalloc(1, sizeof(ir_arena)); }

void ir_arena_free(ir_arena *a) {
  if (!a) return;
  for (arena_chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(a);
}

void *ir_arena_alloc(ir_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  arena_chunk *c = a->head;
  if (!c || c->size - c->used < n) {
    size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    c = ir_xmalloc(sizeof(arena_chunk) + size);
    c->used = 0;
    c->size = size;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

char *ir_arena_strndup(ir_arena *a, const char *s, size_t n) {
  char *p = ir_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ir_arena_strdup(ir_arena *a, const char *s) { return ir_arena_strndup(a, s, strlen(s)); }

void *ir_arena_memdup(ir_arena *a, const void *p, size_t n) {
  void *q = ir_arena_alloc(a, n);
  if (n) memcpy(q, p, n);
  return q;
}

/* ---- diagnostics --------------------------------------------------------- */

void ir_diag_init(ir_diag *d) {
  memset(d, 0, sizeof *d);
  d->out = stderr;
}

bool ir_diag_add_source(ir_diag *d, const ir_source *src) {
  for (int i = 0; i < d->n_sources; i++) {
    const ir_source *s = d->sources[i];
    if (s == src || (s->text == src->text && s->name && src->name && !strcmp(s->name, src->name)))
      return false;
  }
  if (d->n_sources == (int)(sizeof d->sources / sizeof d->sources[0])) return false;
  d->sources[d->n_sources++] = src;
  return true;
}

void ir_diag_remove_source(ir_diag *d, const ir_source *src) {
  for (int i = 0; i < d->n_sources; i++)
    if (d->sources[i] == src) {
      memmove(&d->sources[i], &d->sources[i + 1], sizeof(d->sources[0]) * (size_t)(d->n_sources - i - 1));
      d->n_sources--;
      return;
    }
}

static const ir_source *find_source(const ir_diag *d, const char *file) {
  for (int i = d->n_sources - 1; i >= 0; i--)
    if (d->sources[i]->name && strcmp(d->sources[i]->name, file) == 0) return d->sources[i];
  return NULL;
}

/* Length of the valid UTF-8 sequence at p (before end), or 0. */
static int utf8_length(const unsigned char *p, const unsigned char *end) {
  int n = p[0] < 0xC2 ? 0 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : p[0] < 0xF5 ? 4 : 0;
  if (n == 0 || end - p < n) return 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

/* Quote source line `line` with a caret under column `col` (a byte
 * column). Lines end at LF, CR LF or a lone CR. Control bytes and invalid
 * UTF-8 are shown as '?' so terminals stay safe; tabs are kept so the caret
 * lines up under them. */
static void quote_line(ir_buf *b, const ir_source *src, int32_t line, int32_t col) {
  const char *p = src->text, *end = src->text + src->len;
  for (int32_t l = 1; l < line && p < end; p++)
    if (*p == '\n' || (*p == '\r' && (p + 1 == end || p[1] != '\n'))) l++;
  if (p >= end && line > 1) return;
  const char *e = p;
  while (e < end && *e != '\n' && *e != '\r' && e - p < 400) e++;
  for (const char *q = p; q < e;) {
    unsigned char c = (unsigned char)*q;
    int n = c >= 0x80 ? utf8_length((const unsigned char *)q, (const unsigned char *)e) : 1;
    if (c >= 0x80 && n > 0) {
      ir_buf_putn(b, q, (size_t)n);
      q += n;
      continue;
    }
    ir_buf_putc(b, c == '\t' ? '\t' : (c < 32 || c >= 127) ? '?' : (char)c);
    q++;
  }
  ir_buf_putc(b, '\n');
  for (int32_t i = 1; i < col && p + i - 1 < e; i++) {
    unsigned char c = (unsigned char)p[i - 1];
    if ((c & 0xC0) == 0x80) continue; /* a UTF-8 continuation byte takes no column */
    ir_buf_putc(b, c == '\t' ? '\t' : ' ');
  }
  ir_buf_puts(b, "^\n");
}

static void emit(ir_diag *d, ir_loc loc, const char *kind, const char *fmt, va_list ap) {
  ir_buf b = {0};
  if (loc.file && loc.line > 0)
    ir_buf_printf(&b, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
  else if (loc.file)
    ir_buf_printf(&b, "%s: %s: ", loc.file, kind);
  else
    ir_buf_printf(&b, "seqc: %s: ", kind);
  ir_buf_vprintf(&b, fmt, ap);
  ir_buf_putc(&b, '\n');
  const ir_source *src = loc.file && loc.line > 0 ? find_source(d, loc.file) : NULL;
  if (src) quote_line(&b, src, loc.line, loc.col);
  if (d->capture)
    ir_buf_putn(d->capture, b.s, b.len);
  else
    fputs(b.s, d->out ? d->out : stderr);
  ir_buf_free(&b);
}

void ir_verror_at(ir_diag *d, ir_loc loc, const char *fmt, va_list ap) {
  int max = d->max_errors ? d->max_errors : 20;
  d->n_errors++;
  if (d->n_errors <= max) emit(d, loc, "error", fmt, ap);
  if (d->n_errors == max + 1) {
    const char *msg = "seqc: note: too many errors, stopping here\n";
    if (d->capture)
      ir_buf_puts(d->capture, msg);
    else
      fputs(msg, d->out ? d->out : stderr);
  }
}

void ir_error_at(ir_diag *d, ir_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(d, loc, fmt, ap);
  va_end(ap);
}

void ir_note_at(ir_diag *d, ir_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(d, loc, "note", fmt, ap);
  va_end(ap);
}

/* ---- numbers ------------------------------------------------------------- */

static bool is_dec_digit(char c) { return c >= '0' && c <= '9'; }

size_t ir_decimal_length(const char *s, size_t n) {
  size_t i = 0, digits = 0;
  if (i < n && s[i] == '-') i++;
  while (i < n && is_dec_digit(s[i])) i++, digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && is_dec_digit(s[i])) i++, digits++;
  }
  if (digits == 0) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < n && (s[j] == '+' || s[j] == '-')) j++;
    if (j < n && is_dec_digit(s[j])) {
      while (j < n && is_dec_digit(s[j])) j++;
      i = j;
    }
  }
  return i;
}

/* ---- files --------------------------------------------------------------- */

static char *read_stream(FILE *f, const char *path, size_t max_bytes, size_t *len, ir_buf *err) {
  size_t cap = 4096, n = 0;
  char *data = ir_xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap > max_bytes) break;
      cap *= 2;
      data = ir_xrealloc(data, cap + 1);
    }
    size_t got = fread(data + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    ir_buf_printf(err, "%s: read error: %s", path, strerror(errno));
    free(data);
    return NULL;
  }
  if (n > max_bytes) {
    ir_buf_printf(err, "%s: file is larger than the limit of %zu bytes", path, max_bytes);
    free(data);
    return NULL;
  }
  data[n] = 0;
  *len = n;
  return data;
}

char *ir_read_file(const char *path, size_t max_bytes, size_t *len, ir_buf *err) {
  if (strcmp(path, "-") == 0) return read_stream(stdin, "<stdin>", max_bytes, len, err);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    ir_buf_printf(err, "%s: is a directory", path);
    return NULL;
  }
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max_bytes) {
    ir_buf_printf(err, "%s: file is larger than the limit of %zu bytes", path, max_bytes);
    return NULL; /* refused before reading a byte */
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    ir_buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  char *data = read_stream(f, path, max_bytes, len, err);
  fclose(f);
  return data;
}

static bool write_stream(FILE *f, const char *name, const void *data, size_t len, ir_buf *err) {
  if (fwrite(data, 1, len, f) != len || fflush(f) != 0) {
    ir_buf_printf(err, "%s: write error: %s", name, strerror(errno));
    return false;
  }
  return true;
}

/* Devices, pipes and the like are written in place: renaming a file over
 * them would replace /dev/null with a regular file. */
static bool write_in_place(const char *path, const void *data, size_t len, ir_buf *err) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    ir_buf_printf(err, "%s: cannot open for writing: %s", path, strerror(errno));
    return false;
  }
  bool ok = write_stream(f, path, data, len, err);
  if (fclose(f) != 0 && ok) {
    ir_buf_printf(err, "%s: write error: %s", path, strerror(errno));
    ok = false;
  }
  return ok;
}

bool ir_write_file_atomic(const char *path, const void *data, size_t len, ir_buf *err) {
  if (strcmp(path, "-") == 0) return write_stream(stdout, "<stdout>", data, len, err);
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return write_in_place(path, data, len, err);
  /* Through a symlink, the file it names is replaced, not the link. */
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    char *real = realpath(path, NULL);
    if (!real) return write_in_place(path, data, len, err); /* a link to nothing yet */
    bool ok = ir_write_file_atomic(real, data, len, err);
    free(real);
    return ok;
  }
  ir_buf tmp = {0};
  ir_buf_printf(&tmp, "%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp.s);
  if (fd < 0) {
    ir_buf_printf(err, "%s: cannot create a temporary file: %s", path, strerror(errno));
    ir_buf_free(&tmp);
    return false;
  }
  const char *p = data;
  size_t left = len;
  bool ok = true;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      ok = false;
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  if (ok && fsync(fd) != 0 && errno != EINVAL) ok = false;
  int saved = errno;
  if (close(fd) != 0) ok = false;
  if (ok) chmod(tmp.s, 0644);
  if (ok && rename(tmp.s, path) != 0) {
    saved = errno;
    ok = false;
  }
  if (!ok) {
    ir_buf_printf(err, "%s: write failed: %s", path, strerror(saved));
    unlink(tmp.s);
  }
  ir_buf_free(&tmp);
  return ok;
}
