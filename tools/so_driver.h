/*
 * so_driver.h - what the programs that drive a seqc shared object through
 * its descriptor alone (the checkers in tests/ir/so/Inputs, tests/torch/run_so.c,
 * tools/bench/so_timer.c) share: opening one (dlopen, then NAME_descriptor,
 * NAME being the file's base name up to its first '.'; docs/abi.md), the
 * size of an element of each dtype, and finding where two outputs differ.
 * Header-only: each driver is one C file compiled on its own (link with
 * -ldl). examples/generic_run.c keeps its own copy, to stand alone.
 */
#ifndef SEQC_TOOLS_SO_DRIVER_H
#define SEQC_TOOLS_SO_DRIVER_H

#include <stdint.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/seqrt_types.h"

/* The descriptor of the shared object at so_path, and its handle in
 * *handle unless handle is NULL (the object then stays open for the
 * process); NULL with the reason in err[0..err_len) when it cannot be
 * opened or has no descriptor. */
static inline const seqrt_model_desc *so_load_descriptor(const char *so_path, void **handle, char *err,
                                                         size_t err_len) {
  void *h = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(err, err_len, "%s", dlerror());
    return NULL;
  }
  const char *slash = strrchr(so_path, '/'), *base = slash ? slash + 1 : so_path;
  char symbol[256];
  snprintf(symbol, sizeof symbol, "%.*s_descriptor", (int)strcspn(base, "."), base);
  void *fn = dlsym(h, symbol);
  if (!fn) {
    snprintf(err, err_len, "%s has no %s", so_path, symbol);
    dlclose(h);
    return NULL;
  }
  /* dlsym returns an object pointer; ISO C has no cast to a function pointer. */
  const seqrt_model_desc *(*descriptor)(void);
  memcpy(&descriptor, &fn, sizeof fn);
  if (handle) *handle = h;
  return descriptor();
}

/* Bytes of one element of seqrt dtype dt (seqrt_types.h: f32, f64, f16,
 * bf16, i32, i64, bool). */
static inline size_t so_dtype_size(int32_t dt) {
  static const size_t sizes[] = {4, 8, 2, 2, 4, 8, 1};
  return sizes[dt];
}

/* The first element, of w bytes, in which a and b (bytes long each)
 * differ byte for byte, or -1. */
static inline int64_t so_first_difference(const void *a, const void *b, size_t bytes, size_t w) {
  for (size_t k = 0; k < bytes / w; k++)
    if (memcmp((const char *)a + w * k, (const char *)b + w * k, w) != 0) return (int64_t)k;
  return -1;
}

#endif
