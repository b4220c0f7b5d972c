/*
 * yaml_doc.c - libyaml events -> a bounded document tree (yaml_doc.h).
 *
 * libyaml 0.2.5 parses any YAML but enforces none of the limits an
 * untrusted model file needs, so every event is checked as it arrives and
 * the first violation stops the parse:
 *  - nesting: a collection start event that would open the 65th level is
 *    rejected before libyaml reads further (its scanner is quadratic in the
 *    nesting depth, so '[[[[...' must stop early);
 *  - anchors, aliases, explicit tags and merge keys (`<<`) are rejected:
 *    the tree is plain data, and an alias bomb never expands;
 *  - scalars above FE_YAML_MAX_SCALAR bytes, more than FE_YAML_MAX_NODES
 *    nodes and a second document are rejected; mapping keys must be
 *    scalars and unique (libyaml checks neither).
 * libyaml's own errors (tabs, unclosed brackets, invalid UTF-8, NUL and
 * control bytes) become `file:line:col: error:` messages.
 *
 * Positions. libyaml counts marks in characters; diagnostics quote lines
 * split at '\n' and put the caret by bytes. A forward-moving cursor turns
 * character indices into byte offsets, lines and byte columns, so the
 * positions agree with the quoted line for any UTF-8 text. Marks of
 * consecutive events only move forward, so the walk is linear overall.
 *
 * Children are attached to their parent when their start event arrives
 * (so a non-scalar mapping key is caught at once) and filled in when the
 * end event arrives. Nodes and strings live in the document's arena.
 */
#include "yaml_doc.h"
#include "frontend.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Position bookkeeping: `chars` characters of the source are `bytes` bytes. */
typedef struct cursor {
  size_t chars, bytes;
  int32_t line;       /* 1-based line of `bytes` */
  size_t line_start;  /* byte offset where that line starts */
} cursor;

typedef struct frame {
  fe_ynode *node;
  fe_ynode **kids; /* sequence items, or mapping keys and values alternating */
  int32_t n, cap;
} frame;

typedef struct builder {
  const char *src;
  size_t len;
  const char *name;
  ir_diag *d;
  fe_ydoc *doc;
  frame stack[FE_YAML_MAX_DEPTH];
  int32_t depth;
  int32_t n_nodes;
  int32_t n_docs;
  cursor cur;
} builder;

/* ---- positions ------------------------------------------------------------ */

/* Bytes in the UTF-8 sequence led by c (1 for anything malformed: libyaml
 * stops at malformed text before any event refers past it). */
static size_t utf8_width(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF7) return 4;
  if (c >= 0xE0) return c <= 0xEF ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

/* YAML breaks lines at LF, CR LF and a lone CR (old Mac files). */
static bool ends_line(const builder *b, size_t i) {
  return b->src[i] == '\n' || (b->src[i] == '\r' && (i + 1 >= b->len || b->src[i + 1] != '\n'));
}

static void cursor_step(const builder *b, cursor *c) {
  size_t w = utf8_width((unsigned char)b->src[c->bytes]);
  if (w > b->len - c->bytes) w = b->len - c->bytes;
  if (ends_line(b, c->bytes)) {
    c->line++;
    c->line_start = c->bytes + 1;
  }
  c->bytes += w;
  c->chars++;
}

/* Move the cursor to character index `chars` (clamped to the end). */
static void cursor_seek(const builder *b, cursor *c, size_t chars) {
  if (chars < c->chars) *c = (cursor){0, 0, 1, 0};
  while (c->chars < chars && c->bytes < b->len) cursor_step(b, c);
}

static int32_t clamp_i32(size_t v) { return v > INT32_MAX ? INT32_MAX : (int32_t)v; }

static ir_loc cursor_loc(const builder *b, const cursor *c) {
  return (ir_loc){b->name, c->line, clamp_i32(c->bytes - c->line_start + 1)};
}

static ir_loc mark_loc(builder *b, yaml_mark_t m) {
  cursor_seek(b, &b->cur, m.index);
  return cursor_loc(b, &b->cur);
}

/* Location of a byte offset (reader errors count bytes, not characters). */
static ir_loc byte_loc(const builder *b, size_t off) {
  int32_t line = 1;
  size_t line_start = 0;
  if (off > b->len) off = b->len;
  for (size_t i = 0; i < off; i++)
    if (ends_line(b, i)) line++, line_start = i + 1;
  return (ir_loc){b->name, line, clamp_i32(off - line_start + 1)};
}

static size_t mark_byte(const builder *b, yaml_mark_t m) {
  cursor c = {0, 0, 1, 0};
  cursor_seek(b, &c, m.index);
  return c.bytes;
}

/* ---- errors ----------------------------------------------------------------- */

static IR_PRINTF(3, 4) bool fail(builder *b, ir_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(b->d, loc, fmt, ap);
  va_end(ap);
  return false;
}

/* Printable excerpt of untrusted text for messages. */
void fe_yexcerpt(ir_buf *out, const char *s, size_t n) {
  size_t shown = n > 64 ? 64 : n;
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\')
      ir_buf_putc(out, (char)c);
    else
      ir_buf_printf(out, "\\x%02X", c);
  }
  if (shown < n) ir_buf_puts(out, "...");
}

static bool report_reader_error(builder *b, const yaml_parser_t *p) {
  ir_loc loc = byte_loc(b, p->problem_offset);
  const char *problem = p->problem ? p->problem : "unreadable text";
  int v = p->problem_value;
  if (strstr(problem, "control characters")) {
    if (v == 0) return fail(b, loc, "NUL byte in the file; YAML text cannot contain NUL bytes");
    return fail(b, loc, "control character 0x%02X is not allowed in YAML text", (unsigned)v);
  }
  if (strstr(problem, "UTF-8") || strstr(problem, "Unicode"))
    return fail(b, loc, "invalid UTF-8 (%s 0x%02X); model files must be UTF-8 text", problem,
                (unsigned)v);
  return fail(b, loc, "%s", problem);
}

static bool report_syntax_error(builder *b, const yaml_parser_t *p) {
  const char *problem = p->problem ? p->problem : "invalid YAML";
  size_t at = mark_byte(b, p->problem_mark);
  ir_loc loc = byte_loc(b, at);
  if (at < b->len && b->src[at] == '\t' && strstr(problem, "cannot start any token"))
    return fail(b, loc, "tab character where YAML expects a token; indent with spaces, not tabs");
  if (!p->context) return fail(b, loc, "%s", problem);
  ir_loc ctx = byte_loc(b, mark_byte(b, p->context_mark));
  if (at >= b->len)
    return fail(b, ctx, "%s before the end of the file, %s that starts here", problem, p->context);
  if (ctx.line == loc.line && ctx.col == loc.col) return fail(b, loc, "%s %s", problem, p->context);
  return fail(b, loc, "%s %s started at %d:%d", problem, p->context, ctx.line, ctx.col);
}

static bool report_libyaml_error(builder *b, const yaml_parser_t *p) {
  switch (p->error) {
  case YAML_READER_ERROR: return report_reader_error(b, p);
  case YAML_SCANNER_ERROR:
  case YAML_PARSER_ERROR: return report_syntax_error(b, p);
  case YAML_MEMORY_ERROR: return fail(b, (ir_loc){b->name, 0, 0}, "out of memory reading YAML");
  default: return fail(b, (ir_loc){b->name, 0, 0}, "%s", p->problem ? p->problem : "invalid YAML");
  }
}

/* ---- nodes ------------------------------------------------------------------ */

static bool check_plain_features(builder *b, ir_loc loc, const yaml_char_t *anchor,
                                 const yaml_char_t *tag) {
  if (anchor)
    return fail(b, loc, "anchors (&%s) are not supported in model files; write the value out",
                (const char *)anchor);
  if (tag)
    return fail(b, loc, "explicit tags (%s) are not supported in model files", (const char *)tag);
  return true;
}

static fe_ynode *new_node(builder *b, fe_ykind kind, ir_loc loc) {
  if (b->n_nodes >= FE_YAML_MAX_NODES) {
    fail(b, loc, "more than %d YAML nodes; model files are limited to that many", FE_YAML_MAX_NODES);
    return NULL;
  }
  b->n_nodes++;
  fe_ynode *n = ir_arena_alloc(b->doc->arena, sizeof *n);
  n->kind = kind;
  n->line = loc.line;
  n->col = loc.col;
  return n;
}

/* Attach a new node to the open collection (or make it the root). */
static bool attach(builder *b, fe_ynode *node) {
  if (b->depth == 0) {
    b->doc->root = node;
    return true;
  }
  frame *f = &b->stack[b->depth - 1];
  ir_loc loc = {b->name, node->line, node->col};
  if (f->node->kind == FE_Y_MAP && f->n % 2 == 0) {
    if (node->kind != FE_Y_SCALAR)
      return fail(b, loc, "mapping keys must be plain names, not %s", fe_ykind_desc(node));
    if (node->plain && node->len == 2 && memcmp(node->text, "<<", 2) == 0)
      return fail(b, loc, "merge keys (<<) are not supported in model files; write the keys out");
  }
  ir_grow((void **)&f->kids, &f->cap, f->n + 1, sizeof(fe_ynode *));
  f->kids[f->n++] = node;
  return true;
}

/* Where a scalar's bytes stand verbatim in the source: plain scalars on one
 * line exactly, quoted ones without escapes one byte after the quote. */
static int32_t verbatim_col(const builder *b, const fe_ynode *n, size_t start, size_t end) {
  if (memchr(n->text, '\n', n->len)) return 0;
  for (size_t skip = 0; skip < 2; skip++) {
    if (end - start != n->len + 2 * skip) continue;
    if (memchr(b->src + start, '\n', end - start)) return 0;
    if (memcmp(b->src + start + skip, n->text, n->len) == 0) return n->col + (int32_t)skip;
  }
  return 0;
}

static bool on_scalar(builder *b, const yaml_event_t *e) {
  ir_loc loc = mark_loc(b, e->start_mark);
  size_t start = b->cur.bytes;
  if (!check_plain_features(b, loc, e->data.scalar.anchor, e->data.scalar.tag)) return false;
  size_t len = e->data.scalar.length;
  if (len > FE_YAML_MAX_SCALAR)
    return fail(b, loc, "scalar of %zu bytes is longer than the limit of %zu bytes", len,
                FE_YAML_MAX_SCALAR);
  fe_ynode *n = new_node(b, FE_Y_SCALAR, loc);
  if (!n) return false;
  n->text = ir_arena_strndup(b->doc->arena, (const char *)e->data.scalar.value, len);
  n->len = len;
  n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  cursor_seek(b, &b->cur, e->end_mark.index);
  if (b->cur.bytes >= start) n->text_col = verbatim_col(b, n, start, b->cur.bytes);
  return attach(b, n);
}

static bool on_collection_start(builder *b, const yaml_event_t *e, fe_ykind kind) {
  ir_loc loc = mark_loc(b, e->start_mark);
  const yaml_char_t *anchor = kind == FE_Y_MAP ? e->data.mapping_start.anchor
                                               : e->data.sequence_start.anchor;
  const yaml_char_t *tag = kind == FE_Y_MAP ? e->data.mapping_start.tag
                                            : e->data.sequence_start.tag;
  if (!check_plain_features(b, loc, anchor, tag)) return false;
  if (b->depth >= FE_YAML_MAX_DEPTH)
    return fail(b, loc, "YAML nested deeper than %d levels", FE_YAML_MAX_DEPTH);
  fe_ynode *n = new_node(b, kind, loc);
  if (!n || !attach(b, n)) return false;
  b->stack[b->depth++] = (frame){n, NULL, 0, 0};
  return true;
}

typedef struct key_ref {
  const fe_ynode *key;
  int32_t index;
} key_ref;

static int compare_keys(const void *pa, const void *pb) {
  const key_ref *a = pa, *b = pb;
  if (a->key->len != b->key->len) return a->key->len < b->key->len ? -1 : 1;
  int c = memcmp(a->key->text, b->key->text, a->key->len);
  if (c) return c;
  return (a->index > b->index) - (a->index < b->index);
}

/* Sorting brings equal keys together (in document order within a group);
 * the reported duplicate is the earliest second occurrence in the file. */
static bool check_duplicate_keys(builder *b, const fe_ynode *map) {
  if (map->n < 2) return true;
  key_ref *refs = ir_xmalloc(sizeof(key_ref) * (size_t)map->n);
  for (int32_t i = 0; i < map->n; i++) refs[i] = (key_ref){map->items[i], i};
  qsort(refs, (size_t)map->n, sizeof *refs, compare_keys);
  int32_t dup = -1, first = -1, group = 0;
  for (int32_t i = 1; i < map->n; i++) {
    const fe_ynode *x = refs[i].key, *y = refs[group].key;
    if (x->len != y->len || memcmp(x->text, y->text, x->len) != 0) {
      group = i;
    } else if (dup < 0 || refs[i].index < dup) {
      dup = refs[i].index;
      first = refs[group].index;
    }
  }
  free(refs);
  if (dup < 0) return true;
  const fe_ynode *k = map->items[dup], *f = map->items[first];
  ir_buf name = {0};
  fe_yexcerpt(&name, k->text, k->len);
  fail(b, (ir_loc){b->name, k->line, k->col}, "duplicate key '%s'; first defined at %d:%d", name.s,
       f->line, f->col);
  ir_buf_free(&name);
  return false;
}

static bool on_collection_end(builder *b) {
  IR_ASSERT(b->depth > 0);
  frame *f = &b->stack[--b->depth];
  fe_ynode *n = f->node;
  ir_arena *a = b->doc->arena;
  if (n->kind == FE_Y_SEQ) {
    n->n = f->n;
    n->items = ir_arena_memdup(a, f->kids, sizeof(fe_ynode *) * (size_t)f->n);
  } else {
    n->n = f->n / 2;
    n->items = ir_arena_alloc(a, sizeof(fe_ynode *) * (size_t)n->n);
    n->values = ir_arena_alloc(a, sizeof(fe_ynode *) * (size_t)n->n);
    for (int32_t i = 0; i < n->n; i++) {
      n->items[i] = f->kids[2 * i];
      n->values[i] = f->kids[2 * i + 1];
    }
  }
  free(f->kids);
  f->kids = NULL;
  return n->kind == FE_Y_SEQ || check_duplicate_keys(b, n);
}

/* ---- events ----------------------------------------------------------------- */

/* Handle one event; *done at the end of the stream. */
static bool on_event(builder *b, const yaml_event_t *e, bool *done) {
  switch (e->type) {
  case YAML_STREAM_END_EVENT: *done = true; return true;
  case YAML_DOCUMENT_START_EVENT:
    if (++b->n_docs > 1)
      return fail(b, mark_loc(b, e->start_mark),
                  "a model file holds one YAML document; found a second one here");
    return true;
  case YAML_ALIAS_EVENT:
    return fail(b, mark_loc(b, e->start_mark),
                "aliases (*%s) are not supported in model files; write the value out",
                (const char *)e->data.alias.anchor);
  case YAML_SCALAR_EVENT: return on_scalar(b, e);
  case YAML_SEQUENCE_START_EVENT: return on_collection_start(b, e, FE_Y_SEQ);
  case YAML_MAPPING_START_EVENT: return on_collection_start(b, e, FE_Y_MAP);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT: return on_collection_end(b);
  default: return true; /* stream start, document end, no event */
  }
}

static bool run_parser(builder *b) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    return fail(b, (ir_loc){b->name, 0, 0}, "out of memory starting the YAML parser");
  /* Forced UTF-8: other encodings are errors, and character marks then
   * map onto the bytes of `src`. */
  yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
  yaml_parser_set_input_string(&p, (const unsigned char *)b->src, b->len);
  bool ok = true, done = false;
  while (ok && !done) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      ok = report_libyaml_error(b, &p);
      break;
    }
    ok = on_event(b, &e, &done);
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&p);
  return ok;
}

fe_ydoc *fe_ydoc_parse(const char *buf, size_t len, const char *name, ir_diag *d) {
  builder b;
  memset(&b, 0, sizeof b);
  b.src = buf ? buf : "";
  b.len = buf ? len : 0;
  b.name = name;
  b.d = d;
  b.cur = (cursor){0, 0, 1, 0};
  b.doc = ir_xcalloc(1, sizeof(fe_ydoc));
  b.doc->arena = ir_arena_new();
  bool ok = true;
  if (b.len > FE_YAML_MAX_BYTES)
    ok = fail(&b, (ir_loc){name, 0, 0}, "file of %zu bytes is larger than the limit of %zu bytes",
              b.len, FE_YAML_MAX_BYTES);
  if (ok) ok = run_parser(&b);
  for (int32_t i = 0; i < b.depth; i++) free(b.stack[i].kids);
  if (!ok) {
    fe_ydoc_free(b.doc);
    return NULL;
  }
  return b.doc;
}

void fe_ydoc_free(fe_ydoc *doc) {
  if (!doc) return;
  ir_arena_free(doc->arena);
  free(doc);
}

/* ---- queries ---------------------------------------------------------------- */

const fe_ynode *fe_ymap_get(const fe_ynode *map, const char *key) {
  if (!map || map->kind != FE_Y_MAP) return NULL;
  size_t n = strlen(key);
  for (int32_t i = 0; i < map->n; i++)
    if (map->items[i]->len == n && memcmp(map->items[i]->text, key, n) == 0) return map->values[i];
  return NULL;
}

bool fe_yempty(const fe_ynode *n) { return n->kind == FE_Y_SCALAR && n->plain && n->len == 0; }

const char *fe_ykind_desc(const fe_ynode *n) {
  switch (n->kind) {
  case FE_Y_MAP: return "a mapping";
  case FE_Y_SEQ: return "a sequence";
  case FE_Y_SCALAR: return fe_yempty(n) ? "an empty value" : "a scalar";
  }
  return "?";
}
