/*
 * st_writer.h - builds safetensors files in memory for the unit tests: from
 * a header text and data bytes (to test the reader on any damage), or from a
 * list of tensors (to feed models weights), and writes them to temporary
 * files. Failures are cmocka assertion failures.
 */
#ifndef SEQC_TESTS_ST_WRITER_H
#define SEQC_TESTS_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_blob {
  unsigned char *p; /* malloc'd; free(p) */
  size_t n;
} st_blob;

/* length prefix + header + `pad` spaces + data (bytes i*7+1 when data is NULL). */
st_blob st_blob_padded(const char *header, size_t pad, const void *data, size_t data_len);

/* As the reference writer does: the header padded to a multiple of 8. */
st_blob st_blob_make(const char *header, const void *data, size_t data_len);

/* One tensor for st_build: dtype is a safetensors name ("F32", "BF16", ...),
 * data holds numel elements (little-endian, as in memory here). */
typedef struct st_tensor {
  const char *name;
  const char *dtype;
  int rank;
  int64_t shape[4];
  const void *data;
} st_tensor;

/* A file holding the tensors back to back in the given order. */
st_blob st_build(const st_tensor *t, size_t n);

/* Writes p[0..n) to a new file in /tmp; returns its malloc'd path. */
char *st_write_temp(const void *p, size_t n);

#endif
