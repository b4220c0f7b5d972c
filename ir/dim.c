/*
 * dim.c - interned dim expressions (the contract is in dim.h).
 *
 * Every dim is a node in the table; its id is the node's index. Nodes are
 * hash-consed: a new node is appended only if an open-addressing hash table
 * holds no identical one. Nodes are only ever built from canonical
 * children, so identical structure means identical canonical form, and
 * equal dims get equal ids.
 *
 * Node kinds:
 *   CONST                      an integer
 *   SYM                        a named symbol
 *   FLOORDIV CEILDIV MIN MAX   an atom op(a, b) that did not simplify
 *   MUL                        a monomial of >= 2 atoms, sorted, repeats kept
 *   SUM                        constant + sum of coef*monomial, coef != 0,
 *                              terms sorted, never a lone 1*monomial + 0
 * A monomial is a SYM, an op atom or a MUL. Arithmetic expands its operands
 * into a `poly` (a constant plus (coef, monomial) terms), combines them,
 * normalizes (sort terms, merge like terms, drop zeros) and interns.
 *
 * Op atoms simplify when that holds for every binding: constants fold
 * (floordiv/ceildiv round toward -inf/+inf); floordiv/ceildiv by a constant
 * d that divides every coefficient and the constant divide exactly (so
 * x floordiv 1 = x); min/max of arguments that differ by a constant
 * (equal ones, two constants, T and T+1) pick one; otherwise min/max sort
 * their arguments. A floordiv by a symbolic divisor stays an atom, because
 * the divisor may be zero at run time.
 *
 * Order (ir_dim_compare), purely structural: monomials < sums < constants;
 * monomials by degree, higher first, then atom by atom; atoms: symbols (by
 * name, byte order) before floordiv < ceildiv < min < max, ops by their
 * arguments; sums term by term, then by term count, then constant;
 * constants by value.
 *
 * Print style: the terms in that order, then the constant; a negative
 * first term is written with a leading minus. So "B*T+B", "T-k+1", "-T+4",
 * "2*H", "-2*B*T-3", "min(T, 16)", "ceildiv(T+1, 64)". Sums never appear
 * inside products, so the printer needs no parentheses.
 *
 * Limits, all reported as IR_DIM_INVALID like an overflow:
 *  - coefficients and constants lie in [-INT64_MAX, INT64_MAX]: INT64_MIN
 *    counts as overflow, so every value negates and prints back;
 *  - a sum has at most DIM_MAX_TERMS terms and a monomial at most
 *    DIM_MAX_DEGREE atoms (distribution grows (a+b)*(c+d)*... exponentially);
 *  - op atoms nest at most DIM_MAX_NESTING deep, which bounds the recursion
 *    of compare, print, eval and import.
 * The parser also bounds its input length and its parenthesis/call depth.
 */
#include "dim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
  DIM_MAX_TERMS = 128,
  DIM_MAX_DEGREE = 32,
  DIM_MAX_NESTING = 100,
  DIM_PARSE_MAX_DEPTH = 64,   /* nested parentheses and calls */
  DIM_PARSE_MAX_LEN = 4096,   /* characters of one expression */
};

typedef enum dim_kind {
  DK_CONST, DK_SYM, DK_FLOORDIV, DK_CEILDIV, DK_MIN, DK_MAX, DK_MUL, DK_SUM
} dim_kind;

static const char *const op_names[] = {"floordiv", "ceildiv", "min", "max"};

typedef enum dim_error { DIM_ERR_NONE, DIM_ERR_OVERFLOW, DIM_ERR_DIV_ZERO, DIM_ERR_TOO_BIG } dim_error;

typedef ir_dim_term dim_term;

typedef struct dim_node {
  dim_kind kind;
  uint32_t hash;
  int32_t nesting;  /* op atoms on the longest path down from here */
  int64_t value;    /* CONST: the value; SUM: the constant */
  char *name;       /* SYM: own NUL-terminated copy, stable while the table lives */
  size_t len;       /* SYM: name length */
  ir_dim a, b;      /* op atoms: arguments */
  int32_t first, n; /* MUL: t->atoms[first..+n); SUM: t->terms[first..+n) */
} dim_node;

/* A node's content before it is interned (pointers to caller memory). */
typedef struct dim_key {
  dim_kind kind;
  int64_t value;
  const char *name;
  size_t len;
  ir_dim a, b;
  const ir_dim *atoms;
  const dim_term *terms;
  int32_t n;
} dim_key;

struct ir_dimtab {
  dim_node *nodes;
  int32_t n_nodes, cap_nodes;
  ir_dim *atoms; /* MUL atom lists */
  int32_t n_atoms, cap_atoms;
  dim_term *terms; /* SUM term lists */
  int32_t n_terms, cap_terms;
  ir_dim *slots; /* hash table of node ids, IR_DIM_INVALID = empty */
  uint32_t n_slots;
  dim_error last_error; /* why the last fresh IR_DIM_INVALID was returned */
};

/* ---- checked arithmetic (INT64_MIN is out of range, see top) ------------- */

static bool add_ok(int64_t a, int64_t b, int64_t *r) {
  return !__builtin_add_overflow(a, b, r) && *r != INT64_MIN;
}
static bool mul_ok(int64_t a, int64_t b, int64_t *r) {
  return !__builtin_mul_overflow(a, b, r) && *r != INT64_MIN;
}
/* Callers exclude b == 0 and INT64_MIN / -1. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
static int64_t ceil_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) == (b < 0)) ? q + 1 : q;
}

static ir_dim fail(ir_dimtab *t, dim_error e) {
  t->last_error = e;
  return IR_DIM_INVALID;
}

static bool valid(const ir_dimtab *t, ir_dim d) { return d >= 0 && d < t->n_nodes; }
static bool is_op_atom(dim_kind k) { return k >= DK_FLOORDIV && k <= DK_MAX; }

/* ---- interning ------------------------------------------------------------ */

static uint32_t hash_mix(uint64_t h, uint64_t x) {
  h = (h ^ x) * 0x9e3779b97f4a7c15u;
  return (uint32_t)(h ^ (h >> 32));
}

static uint32_t key_hash(const dim_key *k) {
  uint32_t h = hash_mix(0x51ed270b, (uint64_t)k->kind);
  switch (k->kind) {
  case DK_CONST: return hash_mix(h, (uint64_t)k->value);
  case DK_SYM:
    for (size_t i = 0; i < k->len; i++) h = hash_mix(h, (unsigned char)k->name[i]);
    return h;
  case DK_MUL:
    for (int32_t i = 0; i < k->n; i++) h = hash_mix(h, (uint64_t)k->atoms[i]);
    return h;
  case DK_SUM:
    h = hash_mix(h, (uint64_t)k->value);
    for (int32_t i = 0; i < k->n; i++)
      h = hash_mix(hash_mix(h, (uint64_t)k->terms[i].coef), (uint64_t)k->terms[i].mono);
    return h;
  default: return hash_mix(hash_mix(h, (uint64_t)k->a), (uint64_t)k->b);
  }
}

static bool key_matches(const ir_dimtab *t, const dim_key *k, const dim_node *x) {
  if (k->kind != x->kind) return false;
  switch (k->kind) {
  case DK_CONST: return k->value == x->value;
  case DK_SYM: return k->len == x->len && memcmp(k->name, x->name, k->len) == 0;
  case DK_MUL:
    return k->n == x->n && memcmp(k->atoms, t->atoms + x->first, (size_t)k->n * sizeof(ir_dim)) == 0;
  case DK_SUM:
    if (k->value != x->value || k->n != x->n) return false;
    for (int32_t i = 0; i < k->n; i++) {
      const dim_term *y = &t->terms[x->first + i];
      if (k->terms[i].coef != y->coef || k->terms[i].mono != y->mono) return false;
    }
    return true;
  default: return k->a == x->a && k->b == x->b;
  }
}

static int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

static int32_t key_nesting(const ir_dimtab *t, const dim_key *k) {
  int32_t n = 0;
  if (is_op_atom(k->kind)) n = 1 + max_i32(t->nodes[k->a].nesting, t->nodes[k->b].nesting);
  for (int32_t i = 0; k->kind == DK_MUL && i < k->n; i++) n = max_i32(n, t->nodes[k->atoms[i]].nesting);
  for (int32_t i = 0; k->kind == DK_SUM && i < k->n; i++) n = max_i32(n, t->nodes[k->terms[i].mono].nesting);
  return n;
}

static void slot_insert(ir_dimtab *t, ir_dim id) {
  uint32_t mask = t->n_slots - 1, i = t->nodes[id].hash & mask;
  while (t->slots[i] != IR_DIM_INVALID) i = (i + 1) & mask;
  t->slots[i] = id;
}

static void rehash(ir_dimtab *t, uint32_t n_slots) {
  free(t->slots);
  t->slots = ir_xmalloc(n_slots * sizeof *t->slots);
  memset(t->slots, 0xff, n_slots * sizeof *t->slots); /* all IR_DIM_INVALID */
  t->n_slots = n_slots;
  for (ir_dim id = 0; id < t->n_nodes; id++) slot_insert(t, id);
}

static ir_dim append_node(ir_dimtab *t, const dim_key *k, uint32_t hash) {
  ir_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof *t->nodes);
  dim_node x = {.kind = k->kind, .hash = hash, .nesting = key_nesting(t, k), .value = k->value,
                .a = k->a, .b = k->b, .n = k->n};
  if (k->kind == DK_SYM) {
    x.name = ir_xmalloc(k->len + 1);
    memcpy(x.name, k->name, k->len);
    x.name[k->len] = '\0';
    x.len = k->len;
  } else if (k->kind == DK_MUL) {
    ir_grow((void **)&t->atoms, &t->cap_atoms, t->n_atoms + k->n, sizeof *t->atoms);
    memcpy(t->atoms + t->n_atoms, k->atoms, (size_t)k->n * sizeof *k->atoms);
    x.first = t->n_atoms;
    t->n_atoms += k->n;
  } else if (k->kind == DK_SUM) {
    ir_grow((void **)&t->terms, &t->cap_terms, t->n_terms + k->n, sizeof *t->terms);
    memcpy(t->terms + t->n_terms, k->terms, (size_t)k->n * sizeof *k->terms);
    x.first = t->n_terms;
    t->n_terms += k->n;
  }
  t->nodes[t->n_nodes] = x;
  return t->n_nodes++;
}

static ir_dim intern(ir_dimtab *t, const dim_key *k) {
  uint32_t h = key_hash(k), mask = t->n_slots - 1;
  for (uint32_t i = h & mask; t->slots[i] != IR_DIM_INVALID; i = (i + 1) & mask) {
    const dim_node *x = &t->nodes[t->slots[i]];
    if (x->hash == h && key_matches(t, k, x)) return t->slots[i];
  }
  ir_dim id = append_node(t, k, h);
  if ((uint32_t)t->n_nodes * 2 > t->n_slots) rehash(t, t->n_slots * 2); /* load <= 1/2 */
  else slot_insert(t, id);
  return id;
}

ir_dimtab *ir_dimtab_new(void) {
  ir_dimtab *t = ir_xcalloc(1, sizeof *t);
  rehash(t, 64);
  return t;
}

void ir_dimtab_free(ir_dimtab *t) {
  if (!t) return;
  for (int32_t i = 0; i < t->n_nodes; i++) free(t->nodes[i].name);
  free(t->nodes);
  free(t->atoms);
  free(t->terms);
  free(t->slots);
  free(t);
}

/* ---- structural order ----------------------------------------------------- */

static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* The atoms of monomial *m: its MUL list, or *m itself. */
static int32_t mono_atoms(const ir_dimtab *t, const ir_dim *m, const ir_dim **atoms) {
  const dim_node *x = &t->nodes[*m];
  if (x->kind == DK_MUL) {
    *atoms = t->atoms + x->first;
    return x->n;
  }
  *atoms = m;
  return 1;
}

static int compare_atoms(const ir_dimtab *t, ir_dim a, ir_dim b) {
  if (a == b) return 0;
  const dim_node *x = &t->nodes[a], *y = &t->nodes[b];
  if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
  if (x->kind == DK_SYM) {
    int r = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return r ? (r < 0 ? -1 : 1) : cmp_i64((int64_t)x->len, (int64_t)y->len);
  }
  int r = ir_dim_compare(t, x->a, y->a);
  return r ? r : ir_dim_compare(t, x->b, y->b);
}

static int compare_monos(const ir_dimtab *t, ir_dim a, ir_dim b) {
  const ir_dim *xa, *ya;
  int32_t nx = mono_atoms(t, &a, &xa), ny = mono_atoms(t, &b, &ya);
  if (nx != ny) return nx > ny ? -1 : 1; /* higher degree first */
  for (int32_t i = 0; i < nx; i++) {
    int r = compare_atoms(t, xa[i], ya[i]);
    if (r) return r;
  }
  return 0;
}

static int compare_sums(const ir_dimtab *t, const dim_node *x, const dim_node *y) {
  for (int32_t i = 0; i < x->n && i < y->n; i++) {
    const dim_term *p = &t->terms[x->first + i], *q = &t->terms[y->first + i];
    int r = compare_monos(t, p->mono, q->mono);
    if (!r) r = cmp_i64(p->coef, q->coef);
    if (r) return r;
  }
  int r = cmp_i64(x->n, y->n);
  return r ? r : cmp_i64(x->value, y->value);
}

static int kind_rank(dim_kind k) { return k == DK_CONST ? 2 : k == DK_SUM ? 1 : 0; }

int ir_dim_compare(const ir_dimtab *t, ir_dim a, ir_dim b) {
  if (a == b) return 0;
  if (!valid(t, a) || !valid(t, b)) return valid(t, a) ? 1 : valid(t, b) ? -1 : cmp_i64(a, b);
  const dim_node *x = &t->nodes[a], *y = &t->nodes[b];
  int r = kind_rank(x->kind) - kind_rank(y->kind);
  if (r) return r < 0 ? -1 : 1;
  if (x->kind == DK_CONST) return cmp_i64(x->value, y->value);
  if (x->kind == DK_SUM) return compare_sums(t, x, y);
  return compare_monos(t, a, b);
}

/* ---- polynomials: the expanded form arithmetic works on ------------------- */

typedef struct poly {
  dim_term *terms;
  int32_t n, cap;
  int64_t constant;
} poly;

static void poly_push(poly *p, int64_t coef, ir_dim mono) {
  if (coef == 0) return;
  ir_grow((void **)&p->terms, &p->cap, p->n + 1, sizeof *p->terms);
  p->terms[p->n++] = (dim_term){coef, mono};
}

/* p += k * d; false on overflow. */
static bool poly_add_scaled(ir_dimtab *t, poly *p, ir_dim d, int64_t k) {
  const dim_node *x = &t->nodes[d];
  int64_t c;
  if (x->kind == DK_CONST) return mul_ok(x->value, k, &c) && add_ok(p->constant, c, &p->constant);
  if (x->kind != DK_SUM) {
    poly_push(p, k, d);
    return true;
  }
  for (int32_t i = 0; i < x->n; i++) {
    dim_term term = t->terms[x->first + i];
    if (!mul_ok(term.coef, k, &c)) return false;
    poly_push(p, c, term.mono);
  }
  return mul_ok(x->value, k, &c) && add_ok(p->constant, c, &p->constant);
}

/* Stable bottom-up merge sort by monomial order (qsort has no context). */
static void sort_terms(const ir_dimtab *t, dim_term *v, int32_t n) {
  if (n < 2) return;
  dim_term *tmp = ir_xmalloc((size_t)n * sizeof *tmp);
  for (int32_t w = 1; w < n; w *= 2) {
    for (int32_t lo = 0; lo < n; lo += 2 * w) {
      int32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      int32_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) tmp[o++] = compare_monos(t, v[j].mono, v[i].mono) < 0 ? v[j++] : v[i++];
      while (i < mid) tmp[o++] = v[i++];
      while (j < hi) tmp[o++] = v[j++];
    }
    memcpy(v, tmp, (size_t)n * sizeof *v);
  }
  free(tmp);
}

/* Sort, merge like terms, drop zero terms; false on overflow. */
static bool poly_normalize(const ir_dimtab *t, poly *p) {
  sort_terms(t, p->terms, p->n);
  int32_t w = 0;
  for (int32_t r = 0; r < p->n; r++) {
    if (w > 0 && p->terms[w - 1].mono == p->terms[r].mono) {
      if (!add_ok(p->terms[w - 1].coef, p->terms[r].coef, &p->terms[w - 1].coef)) return false;
    } else {
      if (w > 0 && p->terms[w - 1].coef == 0) w--; /* a finished run that cancelled */
      p->terms[w++] = p->terms[r];
    }
  }
  if (w > 0 && p->terms[w - 1].coef == 0) w--;
  p->n = w;
  return true;
}

/* Free p and intern its canonical dim, or fail with `e` if set. */
static ir_dim poly_finish(ir_dimtab *t, poly *p, dim_error e) {
  ir_dim d;
  if (e) d = fail(t, e);
  else if (!poly_normalize(t, p)) d = fail(t, DIM_ERR_OVERFLOW);
  else if (p->n > DIM_MAX_TERMS) d = fail(t, DIM_ERR_TOO_BIG);
  else if (p->n == 0) d = ir_dim_const(t, p->constant);
  else if (p->n == 1 && p->terms[0].coef == 1 && p->constant == 0) d = p->terms[0].mono;
  else d = intern(t, &(dim_key){.kind = DK_SUM, .value = p->constant, .terms = p->terms, .n = p->n});
  free(p->terms);
  return d;
}

/* The monomial m1*m2: the merged sorted atom lists. */
static ir_dim mono_mul(ir_dimtab *t, ir_dim m1, ir_dim m2) {
  const ir_dim *xa, *ya;
  int32_t nx = mono_atoms(t, &m1, &xa), ny = mono_atoms(t, &m2, &ya);
  if (nx + ny > DIM_MAX_DEGREE) return fail(t, DIM_ERR_TOO_BIG);
  ir_dim merged[DIM_MAX_DEGREE];
  int32_t i = 0, j = 0, o = 0;
  while (i < nx && j < ny) merged[o++] = compare_atoms(t, ya[j], xa[i]) < 0 ? ya[j++] : xa[i++];
  while (i < nx) merged[o++] = xa[i++];
  while (j < ny) merged[o++] = ya[j++];
  return intern(t, &(dim_key){.kind = DK_MUL, .atoms = merged, .n = o});
}

/* a * b, distributed term by term. */
static ir_dim poly_mul(ir_dimtab *t, ir_dim a, ir_dim b) {
  poly pa = {0}, pb = {0}, out = {0};
  dim_error e = DIM_ERR_NONE;
  int64_t c;
  if (!poly_add_scaled(t, &pa, a, 1) || !poly_add_scaled(t, &pb, b, 1) ||
      !mul_ok(pa.constant, pb.constant, &out.constant))
    e = DIM_ERR_OVERFLOW;
  for (int32_t i = 0; !e && i < pa.n; i++) {
    if (mul_ok(pa.terms[i].coef, pb.constant, &c)) poly_push(&out, c, pa.terms[i].mono);
    else e = DIM_ERR_OVERFLOW;
  }
  for (int32_t j = 0; !e && j < pb.n; j++) {
    if (mul_ok(pa.constant, pb.terms[j].coef, &c)) poly_push(&out, c, pb.terms[j].mono);
    else e = DIM_ERR_OVERFLOW;
  }
  for (int32_t i = 0; !e && i < pa.n; i++) {
    for (int32_t j = 0; !e && j < pb.n; j++) {
      ir_dim m = mono_mul(t, pa.terms[i].mono, pb.terms[j].mono);
      if (m == IR_DIM_INVALID) e = DIM_ERR_TOO_BIG;
      else if (!mul_ok(pa.terms[i].coef, pb.terms[j].coef, &c)) e = DIM_ERR_OVERFLOW;
      else poly_push(&out, c, m);
    }
  }
  free(pa.terms);
  free(pb.terms);
  return poly_finish(t, &out, e);
}

/* ---- constructors --------------------------------------------------------- */

ir_dim ir_dim_const(ir_dimtab *t, int64_t v) {
  if (v == INT64_MIN) return fail(t, DIM_ERR_OVERFLOW);
  return intern(t, &(dim_key){.kind = DK_CONST, .value = v});
}

static bool is_ident_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

ir_dim ir_dim_sym(ir_dimtab *t, const char *name, size_t len) {
  if (len == 0 || !is_ident_start(name[0])) return IR_DIM_INVALID;
  for (size_t i = 1; i < len; i++)
    if (!is_ident_char(name[i])) return IR_DIM_INVALID;
  return intern(t, &(dim_key){.kind = DK_SYM, .name = name, .len = len});
}

static ir_dim add_scaled(ir_dimtab *t, ir_dim a, ir_dim b, int64_t k) {
  if (!valid(t, a) || !valid(t, b)) return IR_DIM_INVALID;
  poly p = {0};
  bool ok = poly_add_scaled(t, &p, a, 1) && poly_add_scaled(t, &p, b, k);
  return poly_finish(t, &p, ok ? DIM_ERR_NONE : DIM_ERR_OVERFLOW);
}

ir_dim ir_dim_add(ir_dimtab *t, ir_dim a, ir_dim b) { return add_scaled(t, a, b, 1); }
ir_dim ir_dim_sub(ir_dimtab *t, ir_dim a, ir_dim b) { return add_scaled(t, a, b, -1); }

ir_dim ir_dim_mul(ir_dimtab *t, ir_dim a, ir_dim b) {
  if (!valid(t, a) || !valid(t, b)) return IR_DIM_INVALID;
  return poly_mul(t, a, b);
}

static ir_dim op_atom(ir_dimtab *t, dim_kind kind, ir_dim a, ir_dim b) {
  dim_key k = {.kind = kind, .a = a, .b = b};
  if (key_nesting(t, &k) > DIM_MAX_NESTING) return fail(t, DIM_ERR_TOO_BIG);
  return intern(t, &k);
}

/* a / d when d divides every coefficient and the constant of a, else INVALID. */
static ir_dim divide_exactly(ir_dimtab *t, ir_dim a, int64_t d) {
  poly p = {0};
  poly_add_scaled(t, &p, a, 1); /* scaling by 1 cannot overflow */
  bool exact = p.constant % d == 0;
  for (int32_t i = 0; i < p.n; i++) exact = exact && p.terms[i].coef % d == 0;
  if (!exact) {
    free(p.terms);
    return IR_DIM_INVALID;
  }
  for (int32_t i = 0; i < p.n; i++) p.terms[i].coef /= d;
  p.constant /= d;
  return poly_finish(t, &p, DIM_ERR_NONE);
}

static ir_dim make_div(ir_dimtab *t, dim_kind kind, ir_dim a, ir_dim b) {
  if (!valid(t, a) || !valid(t, b)) return IR_DIM_INVALID;
  int64_t d, v;
  if (ir_dim_is_const(t, b, &d)) {
    if (d == 0) return fail(t, DIM_ERR_DIV_ZERO);
    if (ir_dim_is_const(t, a, &v)) return ir_dim_const(t, kind == DK_FLOORDIV ? floor_div(v, d) : ceil_div(v, d));
    ir_dim q = divide_exactly(t, a, d);
    if (q != IR_DIM_INVALID) return q;
  }
  return op_atom(t, kind, a, b);
}

ir_dim ir_dim_floordiv(ir_dimtab *t, ir_dim a, ir_dim b) { return make_div(t, DK_FLOORDIV, a, b); }
ir_dim ir_dim_ceildiv(ir_dimtab *t, ir_dim a, ir_dim b) { return make_div(t, DK_CEILDIV, a, b); }

/* True with *c = a - b when a and b have the same terms. */
static bool differ_by_constant(ir_dimtab *t, ir_dim a, ir_dim b, int64_t *c) {
  poly pa = {0}, pb = {0};
  poly_add_scaled(t, &pa, a, 1);
  poly_add_scaled(t, &pb, b, 1);
  bool same = pa.n == pb.n;
  for (int32_t i = 0; same && i < pa.n; i++)
    same = pa.terms[i].coef == pb.terms[i].coef && pa.terms[i].mono == pb.terms[i].mono;
  same = same && !__builtin_sub_overflow(pa.constant, pb.constant, c);
  free(pa.terms);
  free(pb.terms);
  return same;
}

static ir_dim make_minmax(ir_dimtab *t, dim_kind kind, ir_dim a, ir_dim b) {
  if (!valid(t, a) || !valid(t, b)) return IR_DIM_INVALID;
  int64_t diff;
  if (a == b) return a;
  if (differ_by_constant(t, a, b, &diff)) /* covers two constants: min(T+1, T) = T */
    return (kind == DK_MIN) == (diff < 0) ? a : b;
  if (ir_dim_compare(t, a, b) > 0) return op_atom(t, kind, b, a);
  return op_atom(t, kind, a, b);
}

ir_dim ir_dim_min(ir_dimtab *t, ir_dim a, ir_dim b) { return make_minmax(t, DK_MIN, a, b); }
ir_dim ir_dim_max(ir_dimtab *t, ir_dim a, ir_dim b) { return make_minmax(t, DK_MAX, a, b); }

bool ir_dim_is_const(const ir_dimtab *t, ir_dim d, int64_t *v) {
  if (!valid(t, d) || t->nodes[d].kind != DK_CONST) return false;
  if (v) *v = t->nodes[d].value;
  return true;
}

bool ir_dim_is_one(const ir_dimtab *t, ir_dim d) {
  int64_t v;
  return ir_dim_is_const(t, d, &v) && v == 1;
}

bool ir_dim_is_sym(const ir_dimtab *t, ir_dim d, const char **name) {
  if (!valid(t, d) || t->nodes[d].kind != DK_SYM) return false;
  if (name) *name = t->nodes[d].name;
  return true;
}

/* ---- printing -------------------------------------------------------------- */

static void print_mono(const ir_dimtab *t, ir_dim m, ir_buf *out) {
  const ir_dim *atoms;
  int32_t n = mono_atoms(t, &m, &atoms);
  for (int32_t i = 0; i < n; i++) {
    const dim_node *x = &t->nodes[atoms[i]];
    if (i > 0) ir_buf_putc(out, '*');
    if (x->kind == DK_SYM) {
      ir_buf_putn(out, x->name, x->len);
      continue;
    }
    ir_buf_printf(out, "%s(", op_names[x->kind - DK_FLOORDIV]);
    ir_dim_print(t, x->a, out);
    ir_buf_puts(out, ", ");
    ir_dim_print(t, x->b, out);
    ir_buf_putc(out, ')');
  }
}

void ir_dim_print(const ir_dimtab *t, ir_dim d, ir_buf *out) {
  if (!valid(t, d)) {
    ir_buf_puts(out, "<invalid>");
    return;
  }
  const dim_node *x = &t->nodes[d];
  if (x->kind == DK_CONST) {
    ir_buf_printf(out, "%" PRId64, x->value);
    return;
  }
  if (x->kind != DK_SUM) {
    print_mono(t, d, out);
    return;
  }
  for (int32_t i = 0; i < x->n; i++) {
    dim_term term = t->terms[x->first + i];
    if (term.coef < 0) ir_buf_putc(out, '-');
    else if (i > 0) ir_buf_putc(out, '+');
    int64_t mag = term.coef < 0 ? -term.coef : term.coef; /* never INT64_MIN */
    if (mag != 1) ir_buf_printf(out, "%" PRId64 "*", mag);
    print_mono(t, term.mono, out);
  }
  if (x->value != 0) ir_buf_printf(out, "%+" PRId64, x->value);
}

/* ---- parsing ----------------------------------------------------------------
 * sum     := product (('+' | '-') product)*
 * product := unary ('*' unary)*
 * unary   := '-'* primary
 * primary := INT | IDENT | FUNC '(' sum ',' sum ')' | '(' sum ')'
 * Recursion happens only through '(' and calls, which count toward the
 * depth limit; minus signs are counted in a loop. */

typedef struct dim_parser {
  ir_dimtab *t;
  const char *s;
  size_t n, pos; /* pos: next character to look at */
  size_t limit;  /* min(n, DIM_PARSE_MAX_LEN + 1): no loop reads past it */
  size_t end;    /* just after the last token consumed */
  int depth;
  bool failed;
  ir_buf *err;
  size_t err_pos;
} dim_parser;

IR_PRINTF(3, 4) static ir_dim parse_error(dim_parser *p, size_t at, const char *fmt, ...) {
  if (p->failed) return IR_DIM_INVALID;
  p->failed = true;
  p->err_pos = at;
  if (p->err) {
    va_list ap;
    va_start(ap, fmt);
    ir_buf_vprintf(p->err, fmt, ap);
    va_end(ap);
  }
  return IR_DIM_INVALID;
}

/* Report why the table refused the operation starting at `at`. */
static ir_dim operation_error(dim_parser *p, size_t at) {
  switch (p->t->last_error) {
  case DIM_ERR_DIV_ZERO: return parse_error(p, at, "division by zero in dim expression");
  case DIM_ERR_TOO_BIG:
    return parse_error(p, at, "dim expression too large (over %d terms, degree %d or nesting %d)",
                       DIM_MAX_TERMS, DIM_MAX_DEGREE, DIM_MAX_NESTING);
  default: return parse_error(p, at, "integer overflow in dim expression");
  }
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The next non-blank character, or '\0' at the end; enforces the length limit. */
static char peek(dim_parser *p) {
  while (p->pos < p->limit && is_blank(p->s[p->pos])) p->pos++;
  if (p->failed || p->pos >= p->n) return '\0';
  if (p->pos >= p->limit) {
    parse_error(p, p->pos, "dim expression longer than %d characters", DIM_PARSE_MAX_LEN);
    return '\0';
  }
  return p->s[p->pos];
}

static void advance(dim_parser *p) { p->end = ++p->pos; }

static bool expect(dim_parser *p, char c, const char *after) {
  if (peek(p) == c) {
    advance(p);
    return true;
  }
  parse_error(p, p->pos, "expected '%c' %s", c, after);
  return false;
}

static ir_dim parse_sum(dim_parser *p);

static ir_dim parse_int(dim_parser *p) {
  size_t at = p->pos;
  int64_t v = 0;
  while (p->pos < p->limit && is_digit(p->s[p->pos])) {
    if (!mul_ok(v, 10, &v) || !add_ok(v, p->s[p->pos] - '0', &v))
      return parse_error(p, at, "integer too large in dim expression");
    advance(p);
  }
  return ir_dim_const(p->t, v);
}

/* Parentheses and calls are the only recursion: count them. */
static bool enter(dim_parser *p, size_t at) {
  if (++p->depth <= DIM_PARSE_MAX_DEPTH) return true;
  parse_error(p, at, "dim expression nested deeper than %d levels", DIM_PARSE_MAX_DEPTH);
  return false;
}

static ir_dim parse_call(dim_parser *p, dim_kind kind, size_t at) {
  if (!enter(p, at)) return IR_DIM_INVALID;
  advance(p); /* '(' */
  ir_dim a = parse_sum(p);
  if (!expect(p, ',', "between the arguments")) return IR_DIM_INVALID;
  ir_dim b = parse_sum(p);
  if (!expect(p, ')', "after the arguments")) return IR_DIM_INVALID;
  p->depth--;
  ir_dim d = kind == DK_FLOORDIV  ? ir_dim_floordiv(p->t, a, b)
             : kind == DK_CEILDIV ? ir_dim_ceildiv(p->t, a, b)
             : kind == DK_MIN     ? ir_dim_min(p->t, a, b)
                                  : ir_dim_max(p->t, a, b);
  return d == IR_DIM_INVALID ? operation_error(p, at) : d;
}

static ir_dim parse_word(dim_parser *p) {
  size_t at = p->pos;
  while (p->pos < p->limit && is_ident_char(p->s[p->pos])) advance(p);
  size_t len = p->pos - at;
  for (int k = 0; k < 4; k++) {
    if (strlen(op_names[k]) == len && memcmp(op_names[k], p->s + at, len) == 0 && peek(p) == '(')
      return parse_call(p, (dim_kind)(DK_FLOORDIV + k), at);
  }
  return ir_dim_sym(p->t, p->s + at, len);
}

static ir_dim parse_primary(dim_parser *p) {
  char c = peek(p);
  size_t at = p->pos;
  if (p->failed) return IR_DIM_INVALID;
  if (is_digit(c)) return parse_int(p);
  if (is_ident_start(c)) return parse_word(p);
  if (c == '(') {
    if (!enter(p, at)) return IR_DIM_INVALID;
    advance(p);
    ir_dim d = parse_sum(p);
    if (!expect(p, ')', "to close '('")) return IR_DIM_INVALID;
    p->depth--;
    return d;
  }
  if (at >= p->n) return parse_error(p, at, "expected a dim expression, found the end");
  if (c > ' ' && c <= '~') return parse_error(p, at, "expected a dim expression, found '%c'", c);
  return parse_error(p, at, "expected a dim expression, found byte 0x%02x", (unsigned char)c);
}

static ir_dim parse_unary(dim_parser *p) {
  size_t at = p->pos;
  bool negate = false;
  while (peek(p) == '-') {
    at = p->pos;
    negate = !negate;
    advance(p);
  }
  ir_dim d = parse_primary(p);
  if (!negate || p->failed) return d;
  d = ir_dim_sub(p->t, ir_dim_const(p->t, 0), d);
  return d == IR_DIM_INVALID ? operation_error(p, at) : d;
}

static ir_dim parse_product(dim_parser *p) {
  ir_dim acc = parse_unary(p);
  while (!p->failed && peek(p) == '*') {
    size_t at = p->pos;
    advance(p);
    ir_dim rhs = parse_unary(p);
    if (p->failed) break;
    acc = ir_dim_mul(p->t, acc, rhs);
    if (acc == IR_DIM_INVALID) operation_error(p, at);
  }
  return p->failed ? IR_DIM_INVALID : acc;
}

static ir_dim parse_sum(dim_parser *p) {
  ir_dim acc = parse_product(p);
  char c;
  while (!p->failed && ((c = peek(p)) == '+' || c == '-')) {
    size_t at = p->pos;
    advance(p);
    ir_dim rhs = parse_product(p);
    if (p->failed) break;
    acc = c == '+' ? ir_dim_add(p->t, acc, rhs) : ir_dim_sub(p->t, acc, rhs);
    if (acc == IR_DIM_INVALID) operation_error(p, at);
  }
  return p->failed ? IR_DIM_INVALID : acc;
}

/* On success *consumed is the end of the last token (trailing blanks are
 * left to the caller); on failure it is the error offset. */
ir_dim ir_dim_parse(ir_dimtab *t, const char *s, size_t n, size_t *consumed, ir_buf *err,
                    size_t *err_pos) {
  dim_parser p = {.t = t, .s = s, .n = s ? n : 0, .err = err};
  p.limit = p.n < DIM_PARSE_MAX_LEN + 1 ? p.n : DIM_PARSE_MAX_LEN + 1;
  ir_dim d = parse_sum(&p);
  if (consumed) *consumed = p.failed ? p.err_pos : p.end;
  if (err_pos) *err_pos = p.err_pos;
  return p.failed ? IR_DIM_INVALID : d;
}

/* ---- import ------------------------------------------------------------------ */

ir_dim ir_dim_import(ir_dimtab *dst, const ir_dimtab *src, ir_dim d) {
  if (!valid(src, d)) return IR_DIM_INVALID;
  if (dst == src) return d;
  const dim_node *x = &src->nodes[d]; /* src is not modified: x stays valid */
  switch (x->kind) {
  case DK_CONST: return ir_dim_const(dst, x->value);
  case DK_SYM: return ir_dim_sym(dst, x->name, x->len);
  case DK_FLOORDIV:
  case DK_CEILDIV: return make_div(dst, x->kind, ir_dim_import(dst, src, x->a), ir_dim_import(dst, src, x->b));
  case DK_MIN:
  case DK_MAX: return make_minmax(dst, x->kind, ir_dim_import(dst, src, x->a), ir_dim_import(dst, src, x->b));
  case DK_MUL: {
    ir_dim m = ir_dim_import(dst, src, src->atoms[x->first]);
    for (int32_t i = 1; i < x->n; i++) m = ir_dim_mul(dst, m, ir_dim_import(dst, src, src->atoms[x->first + i]));
    return m;
  }
  case DK_SUM: {
    /* Monomials import to monomials, so the terms only need re-sorting. */
    poly p = {.constant = x->value};
    for (int32_t i = 0; i < x->n; i++) {
      dim_term term = src->terms[x->first + i];
      ir_dim m = ir_dim_import(dst, src, term.mono);
      if (m == IR_DIM_INVALID) {
        free(p.terms);
        return IR_DIM_INVALID;
      }
      poly_push(&p, term.coef, m);
    }
    return poly_finish(dst, &p, DIM_ERR_NONE);
  }
  }
  return IR_DIM_INVALID;
}

/* ---- evaluation --------------------------------------------------------------- */

typedef struct dim_eval {
  const ir_dimtab *t;
  const ir_dim_binding *b;
  int32_t n_b;
  ir_buf *err;
} dim_eval;

static bool eval_error(const dim_eval *e, ir_dim d, const char *what) {
  if (e->err) {
    ir_buf_printf(e->err, "%s in dim '", what);
    ir_dim_print(e->t, d, e->err);
    ir_buf_putc(e->err, '\'');
  }
  return false;
}

static bool eval_node(const dim_eval *e, ir_dim d, int64_t *out);

static bool eval_sym(const dim_eval *e, const dim_node *x, int64_t *out) {
  for (int32_t i = 0; i < e->n_b; i++) {
    if (e->b[i].name && strcmp(e->b[i].name, x->name) == 0) {
      *out = e->b[i].value;
      return true;
    }
  }
  if (e->err) ir_buf_printf(e->err, "dim symbol '%s' is not bound", x->name);
  return false;
}

static bool eval_op(const dim_eval *e, ir_dim d, const dim_node *x, int64_t *out) {
  int64_t a, b;
  if (!eval_node(e, x->a, &a) || !eval_node(e, x->b, &b)) return false;
  switch (x->kind) {
  case DK_MIN: *out = a < b ? a : b; return true;
  case DK_MAX: *out = a > b ? a : b; return true;
  default:
    if (b == 0) return eval_error(e, d, "division by zero");
    if (a == INT64_MIN && b == -1) return eval_error(e, d, "integer overflow");
    *out = x->kind == DK_FLOORDIV ? floor_div(a, b) : ceil_div(a, b);
    return true;
  }
}

static bool eval_node(const dim_eval *e, ir_dim d, int64_t *out) {
  const dim_node *x = &e->t->nodes[d];
  int64_t v, acc;
  switch (x->kind) {
  case DK_CONST: *out = x->value; return true;
  case DK_SYM: return eval_sym(e, x, out);
  case DK_MUL:
    acc = 1;
    for (int32_t i = 0; i < x->n; i++) {
      if (!eval_node(e, e->t->atoms[x->first + i], &v)) return false;
      if (__builtin_mul_overflow(acc, v, &acc)) return eval_error(e, d, "integer overflow");
    }
    *out = acc;
    return true;
  case DK_SUM:
    acc = x->value;
    for (int32_t i = 0; i < x->n; i++) {
      dim_term term = e->t->terms[x->first + i];
      if (!eval_node(e, term.mono, &v)) return false;
      if (__builtin_mul_overflow(term.coef, v, &v) || __builtin_add_overflow(acc, v, &acc))
        return eval_error(e, d, "integer overflow");
    }
    *out = acc;
    return true;
  default: return eval_op(e, d, x, out);
  }
}

bool ir_dim_eval(const ir_dimtab *t, ir_dim d, const ir_dim_binding *b, int32_t n_b, int64_t *out,
                 ir_buf *err) {
  if (!valid(t, d)) {
    if (err) ir_buf_puts(err, "invalid dim");
    return false;
  }
  dim_eval e = {t, b, n_b, err};
  return eval_node(&e, d, out);
}

/* ---- symbols ------------------------------------------------------------------- */

typedef struct sym_set {
  ir_dim *ids;
  int32_t n, cap;
} sym_set;

static void collect_symbols(const ir_dimtab *t, ir_dim d, sym_set *s) {
  const dim_node *x = &t->nodes[d];
  switch (x->kind) {
  case DK_CONST: return;
  case DK_SYM:
    for (int32_t i = 0; i < s->n; i++)
      if (s->ids[i] == d) return;
    ir_grow((void **)&s->ids, &s->cap, s->n + 1, sizeof *s->ids);
    s->ids[s->n++] = d;
    return;
  case DK_MUL:
    for (int32_t i = 0; i < x->n; i++) collect_symbols(t, t->atoms[x->first + i], s);
    return;
  case DK_SUM:
    for (int32_t i = 0; i < x->n; i++) collect_symbols(t, t->terms[x->first + i].mono, s);
    return;
  default:
    collect_symbols(t, x->a, s);
    collect_symbols(t, x->b, s);
  }
}

int32_t ir_dim_symbols(const ir_dimtab *t, ir_dim d, const char **names, int32_t cap) {
  if (!valid(t, d)) return 0;
  sym_set s = {0};
  collect_symbols(t, d, &s);
  for (int32_t i = 1; i < s.n; i++) { /* insertion sort by name: few symbols */
    ir_dim v = s.ids[i];
    int32_t j = i;
    for (; j > 0 && strcmp(t->nodes[s.ids[j - 1]].name, t->nodes[v].name) > 0; j--) s.ids[j] = s.ids[j - 1];
    s.ids[j] = v;
  }
  for (int32_t i = 0; i < s.n && i < cap; i++) names[i] = t->nodes[s.ids[i]].name;
  int32_t n = s.n;
  free(s.ids);
  return n;
}

/* ---- structure for lowering ------------------------------------------------ */

bool ir_dim_view_of(const ir_dimtab *t, ir_dim d, ir_dim_view *v) {
  if (!valid(t, d)) return false;
  const dim_node *n = &t->nodes[d];
  static const ir_dim_kind kinds[] = {
      [DK_CONST] = IR_DIM_CONST, [DK_SYM] = IR_DIM_SYM, [DK_FLOORDIV] = IR_DIM_FLOORDIV,
      [DK_CEILDIV] = IR_DIM_CEILDIV, [DK_MIN] = IR_DIM_MIN, [DK_MAX] = IR_DIM_MAX,
      [DK_MUL] = IR_DIM_MUL, [DK_SUM] = IR_DIM_SUM};
  *v = (ir_dim_view){kinds[n->kind], n->value, NULL, n->a, n->b, 0, NULL, NULL};
  if (n->kind == DK_SYM) v->name = n->name;
  if (n->kind == DK_MUL) {
    v->n = n->n;
    v->factors = &t->atoms[n->first];
  }
  if (n->kind == DK_SUM) {
    v->n = n->n;
    v->terms = &t->terms[n->first];
  }
  return true;
}
