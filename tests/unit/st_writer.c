/* st_writer.c - see st_writer.h. */
#include "st_writer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

st_blob st_blob_padded(const char *header, size_t pad, const void *data, size_t data_len) {
  size_t hlen = strlen(header) + pad;
  st_blob b = {malloc(8 + hlen + data_len + 1), 8 + hlen + data_len};
  assert_non_null(b.p);
  for (int i = 0; i < 8; i++) b.p[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(b.p + 8, header, strlen(header));
  memset(b.p + 8 + strlen(header), ' ', pad);
  for (size_t i = 0; i < data_len; i++)
    b.p[8 + hlen + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)(i * 7 + 1);
  return b;
}

st_blob st_blob_make(const char *header, const void *data, size_t data_len) {
  return st_blob_padded(header, (8 - strlen(header) % 8) % 8, data, data_len);
}

static size_t dtype_size(const char *dtype) {
  static const struct {
    const char *name;
    size_t size;
  } sizes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
               {"U32", 4},  {"I32", 4}, {"F32", 4}, {"U64", 8}, {"I64", 8}, {"F64", 8}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (!strcmp(sizes[i].name, dtype)) return sizes[i].size;
  fail_msg("st_build: unknown dtype %s", dtype);
  return 0;
}

st_blob st_build(const st_tensor *t, size_t n) {
  char *header = NULL, *data = NULL;
  size_t header_len = 0, data_len = 0;
  FILE *h = open_memstream(&header, &header_len), *d = open_memstream(&data, &data_len);
  assert_true(h && d);
  fputc('{', h);
  for (size_t i = 0; i < n; i++) {
    size_t bytes = dtype_size(t[i].dtype);
    fprintf(h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name, t[i].dtype);
    for (int a = 0; a < t[i].rank; a++) {
      fprintf(h, "%s%lld", a ? "," : "", (long long)t[i].shape[a]);
      bytes *= (size_t)t[i].shape[a];
    }
    long begin = ftell(d);
    if (bytes) fwrite(t[i].data, 1, bytes, d);
    fprintf(h, "],\"data_offsets\":[%ld,%ld]}", begin, ftell(d));
  }
  fputc('}', h);
  fclose(h);
  fclose(d);
  st_blob b = st_blob_make(header, data, data_len);
  free(header);
  free(data);
  return b;
}

char *st_write_temp(const void *p, size_t n) {
  char *path = strdup("/tmp/seqc_st_XXXXXX");
  assert_non_null(path);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
  return path;
}
