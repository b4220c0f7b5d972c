/*
 * safetensors.c - the safetensors reader (see safetensors.h and
 * docs/weights.md).
 *
 * Opening does all the checking up front, in the order a reader meets the
 * problems: the length prefix, the JSON header (through the strict reader in
 * json.c), each entry on its own (keys, dtype, shape, offsets, size), and
 * finally the layout of all entries together (sorted by offset they must tile
 * the data section with no gap, overlap or trailing byte). After that the
 * descriptors are plain data that consumers can trust without re-checking.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "runtime/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/json.h"

struct rt_st_file {
  char *name; /* for messages */
  const unsigned char *base;
  size_t size;
  bool mapped; /* base is our mmap of size bytes */
  const unsigned char *data;
  size_t data_size;
  rt_json_doc *header;
  size_t count;
  rt_st_tensor *tensors;          /* header order */
  const rt_st_tensor **by_name;   /* sorted by strcmp, for rt_st_find */
  int64_t *dims;                  /* every tensor's shape, back to back */
  size_t meta_count;
  rt_st_meta *meta;
};

static const struct {
  const char *name;
  size_t size;
} dtypes[RT_ST_DTYPE_COUNT] = {
    [RT_ST_BOOL] = {"BOOL", 1}, [RT_ST_U8] = {"U8", 1},   [RT_ST_I8] = {"I8", 1},
    [RT_ST_U16] = {"U16", 2},   [RT_ST_I16] = {"I16", 2}, [RT_ST_F16] = {"F16", 2},
    [RT_ST_BF16] = {"BF16", 2}, [RT_ST_U32] = {"U32", 4}, [RT_ST_I32] = {"I32", 4},
    [RT_ST_F32] = {"F32", 4},   [RT_ST_U64] = {"U64", 8}, [RT_ST_I64] = {"I64", 8},
    [RT_ST_F64] = {"F64", 8},
};

const char *rt_st_dtype_name(rt_st_dtype t) {
  return (unsigned)t < RT_ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t rt_st_dtype_size(rt_st_dtype t) {
  return (unsigned)t < RT_ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

/* ---- messages ---- */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static rt_status file_fail(const rt_st_file *f, const char *fmt, ...) PRINTF_LIKE(2, 3);
static rt_status file_fail(const rt_st_file *f, const char *fmt, ...) {
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return rt_fail(RT_EFORMAT, "%s: %s", f->name, what);
}

/* Names come from the file: escaped and cut short before they reach a message. */
static const char *quote_name(const rt_json *member, char *buf, size_t cap) {
  return rt_json_escape(member->key, member->key_len, buf, cap);
}

static rt_status tensor_fail(const rt_st_file *f, const rt_json *member, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
static rt_status tensor_fail(const rt_st_file *f, const rt_json *member, const char *fmt, ...) {
  char what[300], name[100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return rt_fail(RT_EFORMAT, "%s: tensor '%s': %s", f->name, quote_name(member, name, sizeof name),
                 what);
}

/* "F32[5, 6]", cut with "..." when long. */
static const char *describe_type(rt_st_dtype dtype, const int64_t *dims, size_t rank, char *buf,
                                 size_t cap) {
  size_t len = (size_t)snprintf(buf, cap, "%s[", rt_st_dtype_name(dtype));
  for (size_t i = 0; i < rank && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (len + 2 > cap) strcpy(buf + cap - 5, "...]");
  else strcpy(buf + len, "]");
  return buf;
}

/* ---- one entry ---- */

static bool lookup_dtype(const rt_json *v, rt_st_dtype *out) {
  for (int t = 0; t < RT_ST_DTYPE_COUNT; t++)
    if (strlen(dtypes[t].name) == v->len && memcmp(dtypes[t].name, v->str, v->len) == 0) {
      *out = (rt_st_dtype)t;
      return true;
    }
  return false;
}

static rt_status read_dtype(const rt_st_file *f, const rt_json *m, const rt_json *v, rt_st_tensor *t) {
  char text[40];
  if (v->kind != RT_JSON_STRING) return tensor_fail(f, m, "\"dtype\" is not a string");
  if (!lookup_dtype(v, &t->dtype))
    return tensor_fail(f, m, "unknown dtype '%s'", rt_json_escape(v->str, v->len, text, sizeof text));
  return RT_OK;
}

/* Fills dims[0..rank) and t->numel. A zero dim makes the count 0 even when
 * the other dims alone would overflow. */
static rt_status read_shape(const rt_st_file *f, const rt_json *m, const rt_json *v, rt_st_tensor *t,
                            int64_t *dims) {
  if (v->kind != RT_JSON_ARRAY) return tensor_fail(f, m, "\"shape\" is not an array");
  bool has_zero = false;
  size_t i = 0;
  for (const rt_json *d = v->child; d; d = d->next, i++) {
    if (d->kind != RT_JSON_NUMBER || !d->is_int)
      return tensor_fail(f, m, "shape[%zu] is not an integer", i);
    if (d->integer < 0)
      return tensor_fail(f, m, "shape[%zu] is negative (%lld)", i, (long long)d->integer);
    dims[i] = d->integer;
    has_zero |= d->integer == 0;
  }
  t->rank = v->count;
  t->shape = dims;
  t->numel = 1;
  for (i = 0; i < t->rank && !has_zero; i++)
    if (__builtin_mul_overflow(t->numel, dims[i], &t->numel)) {
      char type[80];
      return tensor_fail(f, m, "the element count of %s overflows",
                         describe_type(t->dtype, dims, t->rank, type, sizeof type));
    }
  if (has_zero) t->numel = 0;
  int64_t bytes;
  if (__builtin_mul_overflow(t->numel, (int64_t)rt_st_dtype_size(t->dtype), &bytes) ||
      (uint64_t)bytes > SIZE_MAX) {
    char type[80];
    return tensor_fail(f, m, "the byte size of %s overflows",
                       describe_type(t->dtype, dims, t->rank, type, sizeof type));
  }
  t->nbytes = (size_t)bytes;
  return RT_OK;
}

/* [begin, end]: within the data section and exactly the size of the type. */
static rt_status read_offsets(const rt_st_file *f, const rt_json *m, const rt_json *v, rt_st_tensor *t) {
  const rt_json *b = v->kind == RT_JSON_ARRAY && v->count == 2 ? v->child : NULL;
  const rt_json *e = b ? b->next : NULL;
  if (!b || b->kind != RT_JSON_NUMBER || e->kind != RT_JSON_NUMBER || !b->is_int || !e->is_int ||
      b->integer < 0 || e->integer < 0)
    return tensor_fail(f, m, "\"data_offsets\" must be [begin, end], two non-negative integers");
  long long begin = b->integer, end = e->integer;
  if (begin > end) return tensor_fail(f, m, "data_offsets [%lld, %lld] end before they begin", begin, end);
  if ((uint64_t)(end - begin) != t->nbytes) {
    char type[80];
    return tensor_fail(f, m, "data_offsets [%lld, %lld] span %lld bytes, but %s needs %zu", begin, end,
                       end - begin, describe_type(t->dtype, t->shape, t->rank, type, sizeof type),
                       t->nbytes);
  }
  if ((uint64_t)end > f->data_size)
    return tensor_fail(f, m, "data_offsets [%lld, %lld] end beyond the data section (%zu bytes)", begin,
                       end, f->data_size);
  t->offset = (size_t)begin;
  t->data = f->data + t->offset;
  return RT_OK;
}

/* Compares the whole key: a key "dtype\u0000x" must not pass for "dtype". */
static bool key_is(const rt_json *m, const char *key) {
  return m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0;
}

static rt_status read_entry(const rt_st_file *f, const rt_json *m, rt_st_tensor *t, int64_t *dims) {
  t->name = m->key;
  if (memchr(m->key, 0, m->key_len)) return tensor_fail(f, m, "the name contains a NUL character");
  if (m->kind != RT_JSON_OBJECT) return tensor_fail(f, m, "the entry is not an object");
  const rt_json *dtype = NULL, *shape = NULL, *offsets = NULL;
  for (const rt_json *k = m->child; k; k = k->next) {
    char key[60];
    if (key_is(k, "dtype")) dtype = k;
    else if (key_is(k, "shape")) shape = k;
    else if (key_is(k, "data_offsets")) offsets = k;
    else return tensor_fail(f, m, "unknown key '%s'", rt_json_escape(k->key, k->key_len, key, sizeof key));
  }
  const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
  if (missing) return tensor_fail(f, m, "missing \"%s\"", missing);
  rt_status st = read_dtype(f, m, dtype, t);
  if (!st) st = read_shape(f, m, shape, t, dims);
  if (!st) st = read_offsets(f, m, offsets, t);
  return st;
}

/* ---- the whole header ---- */

static bool is_metadata(const rt_json *m) { return key_is(m, "__metadata__"); }

static rt_status read_metadata(rt_st_file *f, const rt_json *v) {
  if (v->kind != RT_JSON_OBJECT) return file_fail(f, "__metadata__ is not an object");
  f->meta = calloc(v->count ? v->count : 1, sizeof *f->meta);
  if (!f->meta) return rt_fail(RT_ENOMEM, "%s: out of memory", f->name);
  for (const rt_json *e = v->child; e; e = e->next) {
    char key[60];
    if (e->kind != RT_JSON_STRING)
      return file_fail(f, "__metadata__ entry '%s' is not a string",
                       rt_json_escape(e->key, e->key_len, key, sizeof key));
    f->meta[f->meta_count++] = (rt_st_meta){e->key, e->str};
  }
  return RT_OK;
}

static int by_offset(const void *a, const void *b) {
  const rt_st_tensor *x = *(const rt_st_tensor *const *)a, *y = *(const rt_st_tensor *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
  return x < y ? -1 : x > y; /* header order: deterministic */
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const rt_st_tensor *const *)a)->name, (*(const rt_st_tensor *const *)b)->name);
}

/* The member of the header for tensor t, to name it in messages. */
static const rt_json *member_of(const rt_st_file *f, const rt_st_tensor *t) {
  for (const rt_json *m = rt_json_root(f->header)->child; m; m = m->next)
    if (m->key == t->name) return m;
  return NULL; /* unreachable: every tensor came from a member */
}

/* Sorted by offset, the tensors must tile [0, data_size) exactly. Uses
 * by_name as scratch space before it is sorted by name. */
static rt_status check_layout(rt_st_file *f) {
  const rt_st_tensor **order = f->by_name;
  for (size_t i = 0; i < f->count; i++) order[i] = &f->tensors[i];
  qsort(order, f->count, sizeof *order, by_offset);
  size_t covered = 0;
  for (size_t i = 0; i < f->count; i++) {
    const rt_st_tensor *t = order[i];
    size_t end = t->offset + t->nbytes;
    if (t->offset > covered)
      return tensor_fail(f, member_of(f, t),
                         "data_offsets [%zu, %zu] leave a gap: bytes [%zu, %zu) of the data section "
                         "belong to no tensor",
                         t->offset, end, covered, t->offset);
    if (t->offset < covered) {
      char prev[100];
      const rt_st_tensor *p = order[i - 1];
      return tensor_fail(f, member_of(f, t), "data_offsets [%zu, %zu] overlap tensor '%s' [%zu, %zu]",
                         t->offset, end, quote_name(member_of(f, p), prev, sizeof prev), p->offset,
                         p->offset + p->nbytes);
    }
    covered = end;
  }
  if (covered == f->data_size) return RT_OK;
  if (f->count == 0)
    return file_fail(f, "the header lists no tensors but the data section holds %zu bytes", f->data_size);
  return tensor_fail(f, member_of(f, order[f->count - 1]),
                     "the last tensor ends at %zu, leaving %zu trailing bytes in the data section "
                     "(%zu bytes)",
                     covered, f->data_size - covered, f->data_size);
}

static rt_status allocate_tensors(rt_st_file *f, const rt_json *root) {
  size_t ndims = 0;
  for (const rt_json *m = root->child; m; m = m->next) {
    const rt_json *shape = rt_json_get(m, "shape");
    if (!is_metadata(m) && shape && shape->kind == RT_JSON_ARRAY) ndims += shape->count;
    if (!is_metadata(m)) f->count++;
  }
  /* Counts are bounded by the header size, so these products cannot overflow. */
  f->tensors = calloc(f->count ? f->count : 1, sizeof *f->tensors);
  f->by_name = calloc(f->count ? f->count : 1, sizeof *f->by_name);
  f->dims = calloc(ndims ? ndims : 1, sizeof *f->dims);
  if (!f->tensors || !f->by_name || !f->dims) return rt_fail(RT_ENOMEM, "%s: out of memory", f->name);
  return RT_OK;
}

static rt_status read_header(rt_st_file *f, const char *text, size_t len) {
  char json_name[300];
  snprintf(json_name, sizeof json_name, "%s: header", f->name);
  rt_status st = rt_json_parse(json_name, text, len, RT_ST_MAX_HEADER, &f->header);
  if (st) return st;
  const rt_json *root = rt_json_root(f->header);
  if (root->kind != RT_JSON_OBJECT) return file_fail(f, "the header is not a JSON object");
  if ((st = allocate_tensors(f, root))) return st;
  size_t i = 0, ndims = 0;
  for (const rt_json *m = root->child; m && !st; m = m->next) {
    if (is_metadata(m)) {
      st = read_metadata(f, m);
      continue;
    }
    st = read_entry(f, m, &f->tensors[i], f->dims + ndims);
    ndims += f->tensors[i++].rank;
  }
  if (!st) st = check_layout(f);
  if (st) return st;
  for (i = 0; i < f->count; i++) f->by_name[i] = &f->tensors[i];
  qsort(f->by_name, f->count, sizeof *f->by_name, by_name);
  return RT_OK;
}

static rt_status too_short(const char *name, size_t size) {
  return rt_fail(RT_EFORMAT, "%s: the file is %zu bytes, too short for the 8-byte header length", name,
                 size);
}

static uint64_t read_u64_le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Validates base[0..size) and builds the file object, which takes over the
 * mapping when `mapped` (also on failure: it is unmapped then). */
static rt_status open_bytes(const char *name, const void *base, size_t size, bool mapped,
                            rt_st_file **out) {
  rt_st_file *f = calloc(1, sizeof *f);
  char *copy = strdup(name);
  if (!f || !copy) {
    free(f), free(copy);
    if (mapped) munmap((void *)base, size);
    return rt_fail(RT_ENOMEM, "%s: out of memory", name);
  }
  *f = (rt_st_file){.name = copy, .base = base, .size = size, .mapped = mapped};
  rt_status st = RT_OK;
  if (size < 8) {
    st = too_short(name, size);
  } else {
    uint64_t n = read_u64_le(f->base);
    if (n > RT_ST_MAX_HEADER)
      st = file_fail(f, "header length %llu exceeds the limit of %llu bytes", (unsigned long long)n,
                     (unsigned long long)RT_ST_MAX_HEADER);
    else if (n > size - 8)
      st = file_fail(f, "header length %llu exceeds the %zu bytes after the length", (unsigned long long)n,
                     size - 8);
    else {
      f->data = f->base + 8 + n;
      f->data_size = size - 8 - (size_t)n;
      st = read_header(f, (const char *)f->base + 8, (size_t)n);
    }
  }
  if (st) {
    rt_st_close(f);
    return st;
  }
  *out = f;
  return RT_OK;
}

rt_status rt_st_open_memory(const void *buf, size_t n, rt_st_file **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_st_open_memory: out is NULL");
  *out = NULL;
  if (!buf && n) return rt_fail(RT_EINVAL, "rt_st_open_memory: buf is NULL");
  return open_bytes("<memory>", buf, n, false, out);
}

static rt_status io_fail(const char *path, const char *what, int err) {
  char msg[128];
  if (strerror_r(err, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", err);
  return rt_fail(RT_EIO, "%s: %s: %s", path, what, msg);
}

rt_status rt_st_open(const char *path, rt_st_file **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_st_open: out is NULL");
  *out = NULL;
  if (!path) return rt_fail(RT_EINVAL, "rt_st_open: path is NULL");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_fail(path, "cannot open", errno);
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int err = errno;
    close(fd);
    return io_fail(path, "cannot stat", err);
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return rt_fail(RT_EIO, "%s: not a regular file%s", path, S_ISDIR(sb.st_mode) ? " (a directory)" : "");
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return rt_fail(RT_EIO, "%s: too large to map", path);
  }
  size_t size = (size_t)sb.st_size;
  if (size < 8) { /* also avoids mmap of length 0, which fails */
    close(fd);
    return too_short(path, size);
  }
  void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd); /* the mapping keeps the file */
  if (base == MAP_FAILED) return io_fail(path, "cannot map", err);
  return open_bytes(path, base, size, true, out);
}

void rt_st_close(rt_st_file *f) {
  if (!f) return;
  if (f->mapped) munmap((void *)f->base, f->size);
  rt_json_free(f->header);
  free(f->tensors);
  free(f->by_name);
  free(f->dims);
  free(f->meta);
  free(f->name);
  free(f);
}

size_t rt_st_count(const rt_st_file *f) { return f ? f->count : 0; }

const rt_st_tensor *rt_st_tensor_at(const rt_st_file *f, size_t i) {
  return f && i < f->count ? &f->tensors[i] : NULL;
}

const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name) {
  if (!f || !name) return NULL;
  size_t lo = 0, hi = f->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, f->by_name[mid]->name);
    if (c == 0) return f->by_name[mid];
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

const rt_st_meta *rt_st_metadata(const rt_st_file *f, size_t *count) {
  if (count) *count = f ? f->meta_count : 0;
  return f ? f->meta : NULL;
}

const char *rt_st_metadata_get(const rt_st_file *f, const char *key) {
  for (size_t i = 0; f && key && i < f->meta_count; i++)
    if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
  return NULL;
}

const char *rt_st_name(const rt_st_file *f) { return f ? f->name : ""; }
