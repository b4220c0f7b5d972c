/*
 * schema.c - what every part of the model builder needs to read the
 * document tree: locations and messages, value names and their scopes, and
 * checks of a node's shape (kind, keys, scalars of a given type) that name
 * the offending key and what was expected.
 *
 * Scopes are open-addressing hash tables (FNV-1a, power-of-two capacity,
 * at most half full), so a model with many names stays linear.
 */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

/* ---- locations and messages ------------------------------------------------ */

ir_loc fe_loc(const fe_ctx *c, const fe_ynode *n) { return (ir_loc){c->file, n->line, n->col}; }

ir_loc fe_loc_at(const fe_ctx *c, const fe_ynode *scalar, size_t offset) {
  if (scalar->text_col <= 0 || offset > scalar->len) return fe_loc(c, scalar);
  size_t col = (size_t)scalar->text_col + offset;
  return (ir_loc){c->file, scalar->line, col > INT32_MAX ? INT32_MAX : (int32_t)col};
}

bool fe_fail(fe_ctx *c, ir_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_verror_at(c->d, loc, fmt, ap);
  va_end(ap);
  return false;
}

ir_buf *fe_msg_buf(fe_ctx *c) {
  ir_buf *b = &c->text[c->next_text];
  c->next_text = (c->next_text + 1) % 6;
  b->len = 0;
  ir_buf_puts(b, "");
  return b;
}

const char *fe_show(fe_ctx *c, const char *s, size_t n) {
  ir_buf *b = fe_msg_buf(c);
  fe_yexcerpt(b, s, n);
  return b->s;
}

const char *fe_show_type(fe_ctx *c, ir_type t) {
  ir_buf *b = fe_msg_buf(c);
  ir_print_type(c->g, t, b);
  return b->s;
}

const char *fe_show_dim(fe_ctx *c, ir_dim d) {
  ir_buf *b = fe_msg_buf(c);
  ir_dim_print(c->g->dims, d, b);
  return b->s;
}

/* ---- names ------------------------------------------------------------------ */

static bool is_alpha(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static bool is_reserved(const char *s, size_t n) {
  static const char *const words[] = {"nan", "inf", "true", "false"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0) return true;
  return false;
}

bool fe_is_name(const char *s, size_t n) {
  if (n == 0 || !is_alpha(s[0])) return false;
  for (size_t i = 1; i < n; i++)
    if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '.') return false;
  return !is_reserved(s, n);
}

bool fe_is_c_ident(const char *s, size_t n) {
  if (n == 0 || !is_alpha(s[0])) return false;
  for (size_t i = 1; i < n; i++)
    if (!is_alpha(s[i]) && !is_digit(s[i])) return false;
  return true;
}

/* ---- scopes ----------------------------------------------------------------- */

static uint64_t hash_name(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

void fe_scope_init(fe_scope *s, ir_blockid block, const fe_scope *outer, const char *what) {
  memset(s, 0, sizeof *s);
  s->block = block;
  s->outer = outer;
  s->what = what;
}

void fe_scope_free(fe_scope *s) {
  free(s->slots);
  s->slots = NULL;
  s->cap = s->n = 0;
}

static fe_name *slot_for(const fe_scope *s, const char *name, size_t n) {
  uint32_t mask = (uint32_t)s->cap - 1;
  for (uint32_t i = (uint32_t)hash_name(name, n) & mask;; i = (i + 1) & mask) {
    fe_name *e = &s->slots[i];
    if (!e->name || (strlen(e->name) == n && memcmp(e->name, name, n) == 0)) return e;
  }
}

const fe_name *fe_scope_find(const fe_scope *s, const char *name, size_t n) {
  if (s->cap == 0) return NULL;
  const fe_name *e = slot_for(s, name, n);
  return e->name ? e : NULL;
}

static void scope_grow(fe_scope *s) {
  fe_scope bigger = *s;
  bigger.cap = s->cap ? s->cap * 2 : 16;
  bigger.slots = ir_xcalloc((size_t)bigger.cap, sizeof(fe_name));
  for (int32_t i = 0; i < s->cap; i++)
    if (s->slots[i].name) *slot_for(&bigger, s->slots[i].name, strlen(s->slots[i].name)) = s->slots[i];
  free(s->slots);
  s->slots = bigger.slots;
  s->cap = bigger.cap;
}

const fe_name *fe_scope_add(fe_ctx *c, fe_scope *s, const char *name, size_t n, ir_val v,
                            ir_loc loc) {
  IR_ASSERT(!fe_scope_find(s, name, n));
  if (2 * (s->n + 1) > s->cap) scope_grow(s);
  fe_name *e = slot_for(s, name, n);
  e->name = ir_arena_strndup(c->g->arena, name, n);
  e->v = v;
  e->loc = loc;
  s->n++;
  return e;
}

bool fe_define(fe_ctx *c, fe_scope *s, const char *name, size_t n, ir_val v, ir_loc loc) {
  const fe_name *prev = fe_scope_find(s, name, n);
  if (prev)
    return fe_fail(c, loc, "redefinition of '%s' in %s; first defined at %d:%d",
                   fe_show(c, name, n), s->what, prev->loc.line, prev->loc.col);
  ir_value_set_name(c->g, v, fe_scope_add(c, s, name, n, v, loc)->name);
  return true;
}

bool fe_use(fe_ctx *c, const fe_scope *s, const char *name, size_t n, ir_loc loc, ir_val *out) {
  const fe_name *e = fe_scope_find(s, name, n);
  if (e) {
    *out = e->v;
    return true;
  }
  for (const fe_scope *o = s->outer; o; o = o->outer)
    if (fe_scope_find(o, name, n))
      return fe_fail(c, loc,
                     "'%s' is defined outside %s, which sees only its carries, 'over' slices, "
                     "index and 'with' values; add '%s' to the scan's 'with' list",
                     fe_show(c, name, n), s->what, fe_show(c, name, n));
  return fe_fail(c, loc, "use of undefined name '%s'", fe_show(c, name, n));
}

/* ---- schema checks ---------------------------------------------------------- */

bool fe_expect(fe_ctx *c, const fe_ynode *n, fe_ykind kind, const char *what, const char *shape) {
  if (n->kind == kind) return true;
  return fe_fail(c, fe_loc(c, n), "%s must be %s, got %s", what, shape, fe_ykind_desc(n));
}

bool fe_check_keys(fe_ctx *c, const fe_ynode *map, const char *what, const char *const *allowed) {
  for (int32_t i = 0; i < map->n; i++) {
    const fe_ynode *k = map->items[i];
    bool known = false;
    for (const char *const *a = allowed; *a && !known; a++)
      known = strlen(*a) == k->len && memcmp(*a, k->text, k->len) == 0;
    if (known) continue;
    ir_buf list = {0};
    for (const char *const *a = allowed; *a; a++) ir_buf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
    fe_fail(c, fe_loc(c, k), "unknown key '%s' in %s; allowed keys: %s", fe_show(c, k->text, k->len),
            what, list.s);
    ir_buf_free(&list);
    return false;
  }
  return true;
}

const fe_ynode *fe_require(fe_ctx *c, const fe_ynode *map, const char *key, const char *what) {
  const fe_ynode *v = fe_ymap_get(map, key);
  if (!v) fe_fail(c, fe_loc(c, map), "%s needs the key '%s'", what, key);
  return v;
}

bool fe_expect_name(fe_ctx *c, const fe_ynode *n, const char *what) {
  if (!fe_expect(c, n, FE_Y_SCALAR, what, "a value name")) return false;
  if (fe_is_name(n->text, n->len)) return true;
  if (fe_yempty(n)) return fe_fail(c, fe_loc(c, n), "%s must be a value name, got nothing", what);
  return fe_fail(c, fe_loc(c, n),
                 "%s: '%s' is not a value name (letters, digits, '_' and '.', starting with a "
                 "letter or '_'; not nan, inf, true or false)",
                 what, fe_show(c, n->text, n->len));
}

/* A whole scalar read by one of the fe_text parsers. */
static bool scalar_text(fe_ctx *c, const fe_ynode *n, const char *what, const char *expected,
                        fe_text *t) {
  if (!fe_expect(c, n, FE_Y_SCALAR, what, expected)) return false;
  if (fe_yempty(n)) return fe_fail(c, fe_loc(c, n), "%s must be %s, got nothing", what, expected);
  *t = fe_text_of(c, n);
  return true;
}

static bool expect_end(fe_text *t, const char *what) {
  if (fe_text_at_end(t)) return true;
  return fe_text_fail(t, t->pos, "unexpected text after %s", what);
}

bool fe_read_int(fe_ctx *c, const fe_ynode *n, const char *what, int64_t lo, int64_t hi,
                 int64_t *out) {
  fe_text t;
  if (!scalar_text(c, n, what, "an integer", &t)) return false;
  int64_t v;
  if (!fe_text_int(&t, t.n, &v) || !expect_end(&t, "the integer")) return false;
  if (v < lo || v > hi)
    return fe_fail(c, fe_loc(c, n), "%s must be between %lld and %lld, got %lld", what,
                   (long long)lo, (long long)hi, (long long)v);
  *out = v;
  return true;
}

bool fe_read_bool(fe_ctx *c, const fe_ynode *n, const char *what, bool *out) {
  if (!fe_expect(c, n, FE_Y_SCALAR, what, "true or false")) return false;
  if (n->len == 4 && memcmp(n->text, "true", 4) == 0) {
    *out = true;
    return true;
  }
  if (n->len == 5 && memcmp(n->text, "false", 5) == 0) {
    *out = false;
    return true;
  }
  return fe_fail(c, fe_loc(c, n), "%s must be true or false, got '%s'", what,
                 fe_show(c, n->text, n->len));
}

bool fe_read_dim(fe_ctx *c, const fe_ynode *n, const char *what, ir_dim *out) {
  fe_text t;
  if (!scalar_text(c, n, what, "a dim expression such as T or 2*H", &t)) return false;
  return fe_text_dim(&t, t.n, out) && expect_end(&t, "the dim expression");
}

bool fe_read_type(fe_ctx *c, const fe_ynode *n, const char *what, ir_type *out) {
  fe_text t;
  if (!scalar_text(c, n, what, "a type such as f32[T, B, 4]", &t)) return false;
  return fe_text_type(&t, out) && expect_end(&t, "the type");
}
