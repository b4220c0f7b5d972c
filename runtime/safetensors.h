/*
 * safetensors.h - reads .safetensors weight files (see docs/weights.md).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of a JSON object
 * (possibly padded with trailing whitespace), then the data section. Each
 * header member maps a tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} with offsets relative to the data section; an optional
 * "__metadata__" member maps strings to strings.
 *
 * Everything is validated when the file is opened (see docs/weights.md for
 * the rules); afterwards every descriptor is consistent: data + nbytes lies in
 * the data section, nbytes = numel * rt_st_dtype_size(dtype), and the tensors
 * tile the data section exactly. Errors name the file and the tensor:
 *   "model.safetensors: tensor 'enc.weight': data_offsets [0, 100] span 100
 *    bytes, but F32[5, 6] needs 120"
 *
 * Tensor data is NOT aligned in general (the header length is arbitrary):
 * read elements with memcpy or unaligned loads, never through a cast pointer.
 *
 * An open file is immutable; it may be read from several threads at once.
 */
#ifndef SEQC_RUNTIME_SAFETENSORS_H
#define SEQC_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/seqrt.h"

/* Largest accepted header (as the reference implementation). */
#define RT_ST_MAX_HEADER ((uint64_t)100000000)

typedef enum rt_st_dtype {
  RT_ST_BOOL, /* one byte, 0 or 1 (the byte values are not checked) */
  RT_ST_U8,
  RT_ST_I8,
  RT_ST_U16,
  RT_ST_I16,
  RT_ST_F16,  /* IEEE half */
  RT_ST_BF16, /* bfloat16: the high half of an F32 */
  RT_ST_U32,
  RT_ST_I32,
  RT_ST_F32,
  RT_ST_U64,
  RT_ST_I64,
  RT_ST_F64,
  RT_ST_DTYPE_COUNT
} rt_st_dtype;

/* Its name in headers ("F32", ...); "?" when out of range. */
const char *rt_st_dtype_name(rt_st_dtype t);
/* Bytes per element; 0 when out of range. */
size_t rt_st_dtype_size(rt_st_dtype t);

/* One tensor. All pointers are owned by the file and live until rt_st_close. */
typedef struct rt_st_tensor {
  const char *name;     /* NUL-terminated UTF-8 (names with a NUL byte are rejected) */
  rt_st_dtype dtype;
  size_t rank;          /* 0 for a scalar */
  const int64_t *shape; /* rank entries, each >= 0; never NULL */
  int64_t numel;        /* product of shape (1 for rank 0, 0 if any dim is 0) */
  size_t nbytes;        /* numel * rt_st_dtype_size(dtype) */
  size_t offset;        /* begin of data_offsets: position in the data section */
  const void *data;     /* nbytes bytes, UNALIGNED: read with memcpy */
} rt_st_tensor;

/* One "__metadata__" entry. */
typedef struct rt_st_meta {
  const char *key, *value; /* NUL-terminated UTF-8 */
} rt_st_meta;

typedef struct rt_st_file rt_st_file;

/* Opens and validates `path`, mapping it read-only (MAP_PRIVATE). The
 * mapping lives until rt_st_close; truncating the file meanwhile is the
 * caller's problem (SIGBUS, as with any mapping). On failure *out is NULL:
 * RT_EIO (cannot open, not a regular file), RT_EFORMAT (invalid content),
 * RT_ENOMEM, RT_EINVAL (null arguments). */
rt_status rt_st_open(const char *path, rt_st_file **out);

/* The same over buf[0..n), which is not copied: it must outlive the file.
 * Messages name the file "<memory>". */
rt_status rt_st_open_memory(const void *buf, size_t n, rt_st_file **out);

/* Unmaps and frees; NULL is allowed. Descriptors die with the file. */
void rt_st_close(rt_st_file *f);

/* Number of tensors (the metadata entry is not one). */
size_t rt_st_count(const rt_st_file *f);

/* Tensor i in header order (the order of the JSON text), NULL if i is out of
 * range. */
const rt_st_tensor *rt_st_tensor_at(const rt_st_file *f, size_t i);

/* The tensor called `name`, or NULL (no error is recorded). O(log count). */
const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name);

/* The "__metadata__" entries in header order; *count gets their number. */
const rt_st_meta *rt_st_metadata(const rt_st_file *f, size_t *count);

/* The metadata value for `key`, or NULL. */
const char *rt_st_metadata_get(const rt_st_file *f, const char *key);

/* The name used in messages: the path, or "<memory>". */
const char *rt_st_name(const rt_st_file *f);

#endif
