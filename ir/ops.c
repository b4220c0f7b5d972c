/*
 * ops.c - the op table and dtype facts, derived from ops.def.
 *
 * ops.def is expanded three times here: once for enumerated attribute value
 * names, once for the attribute schemas, once for the per-op facts. Nothing
 * about an op is written down twice.
 */
#include "ir.h"

#include <string.h>

/* Enumerated attribute values: enum_<name>[] = {"eq", ..., NULL}. */
#define ENUM(name, ...) static const char *const enum_##name[] = {__VA_ARGS__, NULL};
#include "ops.def"

/* An attribute's kind, and the value names of an ENUM_<name> kind. */
#define KIND_INT IR_ATTR_INT
#define KIND_INTS IR_ATTR_INTS
#define KIND_FLOAT IR_ATTR_FLOAT
#define KIND_BOOL IR_ATTR_BOOL
#define KIND_DIM IR_ATTR_DIM
#define KIND_DIMS IR_ATTR_DIMS
#define KIND_TENSOR IR_ATTR_TENSOR
#define KIND_ENUM_cmp IR_ATTR_ENUM
#define KIND_ENUM_mask IR_ATTR_ENUM
#define KIND_ENUM_gelu IR_ATTR_ENUM
#define ENUMS_INT NULL
#define ENUMS_INTS NULL
#define ENUMS_FLOAT NULL
#define ENUMS_BOOL NULL
#define ENUMS_DIM NULL
#define ENUMS_DIMS NULL
#define ENUMS_TENSOR NULL
#define ENUMS_ENUM_cmp enum_cmp
#define ENUMS_ENUM_mask enum_mask
#define ENUMS_ENUM_gelu enum_gelu
#define REQ true
#define OPT false

/* Attribute schemas: set_<name>[], terminated by a NULL name. */
#define ATTR(name, kind, req, dflt) {#name, KIND_##kind, req, dflt, ENUMS_##kind},
#define ATTRSET(set, ...) static const ir_attr_decl set_##set[] = {__VA_ARGS__{NULL, 0, 0, 0, NULL}};
#include "ops.def"
#undef ATTR

#define N_ATTRS(set) ((int32_t)(sizeof set_##set / sizeof set_##set[0]) - 1)

static const ir_opinfo infos[IR_OP_COUNT] = {
#define OP(id, name, attrset, min_in, max_in, n_out, n_regions, shape, eval, stream, flags, doc) \
  [IR_OP_##id] = {name, doc, set_##attrset, N_ATTRS(attrset), min_in, max_in, n_out, n_regions, flags},
#include "ops.def"
};

const ir_opinfo *ir_opinfo_of(ir_opkind k) {
  IR_ASSERT((unsigned)k < IR_OP_COUNT);
  return &infos[k];
}

bool ir_opkind_parse(const char *s, size_t n, ir_opkind *out) {
  for (int k = 0; k < IR_OP_COUNT; k++) {
    const char *name = infos[k].name;
    if (strlen(name) == n && memcmp(name, s, n) == 0) {
      *out = (ir_opkind)k;
      return true;
    }
  }
  return false;
}

int32_t ir_attr_index(ir_opkind k, const char *name) {
  const ir_opinfo *info = ir_opinfo_of(k);
  for (int32_t i = 0; i < info->n_attrs; i++)
    if (strcmp(info->attrs[i].name, name) == 0) return i;
  return -1;
}

/* ---- dtypes ------------------------------------------------------------ */

static const struct {
  const char *name;
  size_t size;
} dtypes[IR_DTYPE_COUNT] = {
    [IR_F32] = {"f32", 4}, [IR_F64] = {"f64", 8}, [IR_F16] = {"f16", 2}, [IR_BF16] = {"bf16", 2},
    [IR_I32] = {"i32", 4}, [IR_I64] = {"i64", 8}, [IR_BOOL] = {"bool", 1},
};

const char *ir_dtype_name(ir_dtype dt) {
  IR_ASSERT((unsigned)dt < IR_DTYPE_COUNT);
  return dtypes[dt].name;
}

bool ir_dtype_parse(const char *s, size_t n, ir_dtype *out) {
  for (int i = 0; i < IR_DTYPE_COUNT; i++)
    if (strlen(dtypes[i].name) == n && memcmp(dtypes[i].name, s, n) == 0) {
      *out = (ir_dtype)i;
      return true;
    }
  return false;
}

size_t ir_dtype_size(ir_dtype dt) {
  IR_ASSERT((unsigned)dt < IR_DTYPE_COUNT);
  return dtypes[dt].size;
}

bool ir_dtype_is_float(ir_dtype dt) {
  return dt == IR_F32 || dt == IR_F64 || dt == IR_F16 || dt == IR_BF16;
}

bool ir_dtype_is_int(ir_dtype dt) { return dt == IR_I32 || dt == IR_I64; }
