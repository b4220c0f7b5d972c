/*
 * yaml_doc.h - a YAML document as a small tree of scalars, sequences and
 * mappings, each node with its position in the source. Built from libyaml's
 * event API with the limits libyaml lacks (frontend.h, docs/yaml.md):
 * nesting depth, scalar and node counts, duplicate keys, and no anchors,
 * aliases, tags or merge keys, so the tree is plain data the model builder
 * can walk without further checks.
 */
#ifndef SEQC_FRONTEND_YAML_DOC_H
#define SEQC_FRONTEND_YAML_DOC_H

#include "../ir/support.h"

typedef enum fe_ykind { FE_Y_SCALAR, FE_Y_SEQ, FE_Y_MAP } fe_ykind;

typedef struct fe_ynode fe_ynode;
struct fe_ynode {
  fe_ykind kind;
  int32_t line, col; /* 1-based; col counts bytes, as the caret does */
  /* Scalars: the value, NUL-terminated (it may also contain NULs from
   * escapes: len is authoritative). */
  const char *text;
  size_t len;
  bool plain;        /* written without quotes or a block indicator */
  int32_t text_col;  /* > 0: the value's bytes stand verbatim on `line` from
                        this column, so offsets into it are exact columns */
  /* Sequences: n items. Mappings: n keys (all scalars) and n values. */
  int32_t n;
  fe_ynode **items;
  fe_ynode **values;
};

typedef struct fe_ydoc {
  ir_arena *arena;
  fe_ynode *root; /* NULL for a stream without a document (empty file) */
} fe_ydoc;

/* Parse buf[0..len). On error, reports `name:line:col: error: ...` through
 * d and returns NULL. */
fe_ydoc *fe_ydoc_parse(const char *buf, size_t len, const char *name, ir_diag *d);
void fe_ydoc_free(fe_ydoc *doc);

/* The value under `key` in a mapping, or NULL. */
const fe_ynode *fe_ymap_get(const fe_ynode *map, const char *key);
/* "a mapping", "a sequence", "a scalar" or "an empty value", for messages. */
const char *fe_ykind_desc(const fe_ynode *n);
/* Append a printable excerpt of untrusted text (at most 64 bytes; other
 * bytes, quotes and backslashes as \xNN) for messages. */
void fe_yexcerpt(ir_buf *out, const char *s, size_t n);
/* True for a plain empty scalar (`key:` with nothing after it). */
bool fe_yempty(const fe_ynode *n);

#endif
