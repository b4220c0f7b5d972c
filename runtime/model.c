/*
 * model.c - opening a compiled model: validating its descriptor, binding
 * the tensors of a safetensors file to its parameters, and packing them
 * into one owned, 64-byte aligned block (docs/abi.md, "The runtime core").
 *
 * Binding collects every problem before failing, so a user fixing a
 * converted checkpoint sees all missing, extra and mismatched tensors in one
 * message. Parameter symbols (a vocabulary size V) are read from the axes
 * the descriptor marks as exactly that symbol; every parameter dim is then
 * compared with the descriptor's dims function. The dims function is
 * evaluated twice with different values for the symbols that are not known
 * (call symbols, and parameter symbols whose tensor is missing): an axis
 * that changes depends on them, which is a descriptor bug for call symbols
 * and a reason to skip the comparison for unbound ones.
 *
 * Conversions widen exactly with integer bit operations (no FP environment,
 * NaN payloads kept); narrowing would silently lose precision, so it is an
 * error. The file is read with memcpy (safetensors data is unaligned) and
 * closed before returning: the model keeps no reference to it.
 */
#include "runtime/model_impl.h"
#include "runtime/json.h"
#include "runtime/safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime reads little-endian safetensors data as native integers"
#endif

const char *rt_dtype_name(int32_t dt) {
  static const char *const names[] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};
  return dt >= 0 && dt < RT_DT_COUNT ? names[dt] : "?";
}

size_t rt_dtype_size(int32_t dt) {
  static const size_t sizes[] = {4, 8, 2, 2, 4, 8, 1};
  return dt >= 0 && dt < RT_DT_COUNT ? sizes[dt] : 0;
}

rt_status rt_model_fail(const rt_model_desc *d, rt_status s, const char *fmt, ...) {
  char text[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  return rt_fail(s, "%s: %s", d && d->name ? d->name : "model", text);
}

bool rt_tensor_bytes(const int64_t *dims, int32_t rank, size_t elem_size, int64_t *out) {
  int64_t n = (int64_t)elem_size;
  bool empty = false;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0) return false;
    if (dims[i] == 0) empty = true;
    else if (n > INT64_MAX / dims[i]) return false;
    else n *= dims[i];
  }
  *out = empty ? 0 : n;
  return true;
}

/* ---- descriptor --------------------------------------------------------------- */

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tensors whose dim_symbols index a list of n_symbols symbols. */
static rt_status check_tensors_in(const rt_model_desc *d, const char *what, const rt_tensor_desc *t,
                                  int32_t n, int32_t n_symbols) {
  if (n < 0 || n > RT_MAX_TENSORS || (n > 0 && !t))
    return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: bad %s list", what);
  for (int32_t i = 0; i < n; i++) {
    if (!t[i].name || t[i].dtype < 0 || t[i].dtype >= RT_DT_COUNT || t[i].rank < 0 ||
        t[i].rank > RT_MAX_RANK)
      return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: %s %d", what, (int)i);
    for (int32_t a = 0; t[i].dim_symbols && a < t[i].rank; a++)
      if (t[i].dim_symbols[a] < -1 || t[i].dim_symbols[a] >= n_symbols)
        return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: %s '%s' axis %d", what,
                             t[i].name, (int)a);
  }
  return RT_OK;
}

static rt_status check_tensors(const rt_model_desc *d, const char *what, const rt_tensor_desc *t,
                               int32_t n) {
  return check_tensors_in(d, what, t, n, d->n_symbols);
}

/* A program's symbol map and hoisted values; the forward program's map is
 * the identity (NULL or 0..n_symbols-1). */
static rt_status check_program(const rt_model_desc *d, const seqrt_program *p, bool is_step) {
  if (p->n_symbols > RT_MAX_TENSORS || (p->n_symbols > 0 && is_step && !p->symbol_map) ||
      (!is_step && p->n_symbols != d->n_symbols))
    return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: bad program symbols");
  for (int32_t i = 0; p->symbol_map && i < p->n_symbols; i++) {
    int32_t k = p->symbol_map[i];
    if (k < SEQRT_SYM_CAP || k >= d->n_symbols || (!is_step && k != i))
      return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: program symbol %d", (int)i);
  }
  return check_tensors_in(d, "hoisted value", p->hoisted, p->n_hoisted, p->n_symbols);
}

/* Streaming: the time symbol is a call symbol, and the step's state fits. */
static rt_status check_stream(const rt_model_desc *d) {
  if (!d->step) return RT_OK;
  bool is_call = false;
  for (int32_t k = 0; k < d->n_call_symbols; k++) is_call = is_call || d->call_symbols[k] == d->time_symbol;
  if (!is_call) return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: the time symbol is no call symbol");
  rt_status st = check_program(d, d->step, true);
  if (st == RT_OK) st = check_tensors_in(d, "state tensor", d->state, d->n_state, d->step->n_symbols);
  return st;
}

/* Marks list[0..n) in `role` (1 param, 2 call); each symbol gets one role. */
static rt_status assign_roles(const rt_model_desc *d, const int32_t *list, int32_t n, char role,
                              char *roles) {
  if (n < 0 || n > d->n_symbols || (n > 0 && !list))
    return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: bad symbol lists");
  for (int32_t i = 0; i < n; i++) {
    if (list[i] < 0 || list[i] >= d->n_symbols || roles[list[i]])
      return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: symbol index %d listed twice "
                           "or out of range", (int)list[i]);
    roles[list[i]] = role;
  }
  return RT_OK;
}

/* No parameter axis is a call symbol, and each parameter symbol is some
 * parameter's axis (roles: 1 param, 2 call, 3 param seen on an axis). */
static rt_status check_param_axes(const rt_model_desc *d, char *roles) {
  for (int32_t i = 0; i < d->n_params; i++)
    for (int32_t a = 0; d->params[i].dim_symbols && a < d->params[i].rank; a++) {
      int32_t s = d->params[i].dim_symbols[a];
      if (s >= 0 && roles[s] == 2)
        return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: the shape of parameter "
                             "'%s' uses call symbol %s", d->params[i].name, d->symbols[s]);
      if (s >= 0) roles[s] = 3;
    }
  for (int32_t s = 0; s < d->n_symbols; s++)
    if (roles[s] == 1)
      return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: parameter symbol %s is no "
                           "parameter's axis", d->symbols[s]);
  return RT_OK;
}

static rt_status check_symbols(const rt_model_desc *d) {
  if (d->n_symbols < 0 || d->n_symbols > RT_MAX_TENSORS || (d->n_symbols > 0 && !d->symbols))
    return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: bad symbol list");
  for (int32_t s = 0; s < d->n_symbols; s++)
    if (!d->symbols[s]) return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: symbol %d", (int)s);
  char *roles = calloc((size_t)d->n_symbols + 1, 1);
  if (!roles) return rt_fail(RT_ENOMEM, "out of memory");
  rt_status st = assign_roles(d, d->param_symbols, d->n_param_symbols, 1, roles);
  if (st == RT_OK) st = assign_roles(d, d->call_symbols, d->n_call_symbols, 2, roles);
  for (int32_t s = 0; st == RT_OK && s < d->n_symbols; s++)
    if (!roles[s])
      st = rt_model_fail(d, RT_EINVAL, "invalid model descriptor: symbol %s is neither a "
                         "parameter nor a call symbol", d->symbols[s]);
  if (st == RT_OK) st = check_param_axes(d, roles);
  free(roles);
  return st;
}

/* arg_order is a permutation, and parameter names are unique (they are looked up by name). */
static rt_status check_args(const rt_model_desc *d) {
  int32_t n = d->n_inputs + d->n_params;
  char *seen = calloc((size_t)n + 1, 1);
  const char **names = calloc((size_t)d->n_params + 1, sizeof *names);
  rt_status st = seen && names ? RT_OK : rt_fail(RT_ENOMEM, "out of memory");
  if (st == RT_OK && n > 0 && !d->arg_order)
    st = rt_model_fail(d, RT_EINVAL, "invalid model descriptor: no arg_order");
  for (int32_t i = 0; st == RT_OK && i < n; i++) {
    int32_t k = d->arg_order[i];
    if (k < 0 || k >= n || seen[k])
      st = rt_model_fail(d, RT_EINVAL, "invalid model descriptor: arg_order is not a permutation");
    else
      seen[k] = 1;
  }
  for (int32_t i = 0; st == RT_OK && i < d->n_params; i++) names[i] = d->params[i].name;
  if (st == RT_OK && d->n_params > 1) qsort(names, (size_t)d->n_params, sizeof *names, compare_names);
  for (int32_t i = 1; st == RT_OK && i < d->n_params; i++)
    if (!strcmp(names[i - 1], names[i]))
      st = rt_model_fail(d, RT_EINVAL, "invalid model descriptor: two parameters named '%s'", names[i]);
  free(seen);
  free(names);
  return st;
}

static bool program_complete(const seqrt_program *p) {
  return p && p->run && p->scratch_bytes && p->init && p->init_scratch_bytes &&
         (p->n_hoisted == 0 || (p->hoisted && p->hoisted_dims)) && p->n_symbols >= 0 &&
         p->n_hoisted >= 0 && p->n_ops >= 0 && (p->n_ops == 0 || p->op_names);
}

static rt_status check_descriptor(const rt_model_desc *d) {
  if (!d) return rt_fail(RT_EINVAL, "model descriptor is NULL");
  if (!d->name || !d->dims || !program_complete(d->forward) || (d->step && !program_complete(d->step)) ||
      (d->step && d->n_state > 0 && (!d->state || !d->state_dims)))
    return rt_model_fail(d, RT_EINVAL, "invalid model descriptor: a name or function is NULL");
  rt_status st = check_tensors(d, "input", d->inputs, d->n_inputs);
  if (st == RT_OK) st = check_tensors(d, "parameter", d->params, d->n_params);
  if (st == RT_OK) st = check_tensors(d, "output", d->outputs, d->n_outputs);
  if (st == RT_OK) st = check_symbols(d);
  if (st == RT_OK) st = check_args(d);
  if (st == RT_OK) st = check_program(d, d->forward, false);
  if (st == RT_OK) st = check_stream(d);
  return st;
}

static rt_status read_options(const rt_model_desc *d, const rt_options *opt, int *num_threads) {
  static const size_t known_sizes[] = {RT_OPTIONS_SIZE_V1};
  _Static_assert(sizeof(rt_options) == RT_OPTIONS_SIZE_V1, "rt_options grew: add its size");
  *num_threads = rt_default_threads();
  if (!opt) return RT_OK;
  bool known = false;
  for (size_t i = 0; i < sizeof known_sizes / sizeof known_sizes[0]; i++)
    known = known || opt->struct_size == known_sizes[i];
  if (!known)
    return rt_model_fail(d, RT_EINVAL, "options: struct_size %zu is not the size of any version "
                         "of the options (%d); set it to sizeof(the options struct)",
                         opt->struct_size, RT_OPTIONS_SIZE_V1);
  if (opt->num_threads < 0 || opt->num_threads > RT_MAX_THREADS)
    return rt_model_fail(d, RT_EINVAL, "options: num_threads %d is outside [0, %d]",
                         opt->num_threads, RT_MAX_THREADS);
  if (opt->reserved != 0) return rt_model_fail(d, RT_EINVAL, "options: reserved must be 0");
  if (opt->num_threads > 0) *num_threads = opt->num_threads;
  return RT_OK;
}

/* ---- problems: every binding error, joined into one bounded message ----------- */

typedef struct problems {
  char text[400];
  size_t len;
  int count, dropped;
} problems;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void problem(problems *p, const char *fmt, ...) {
  char one[200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(one, sizeof one, fmt, ap);
  va_end(ap);
  p->count++;
  if (p->dropped || n < 0 || p->len + (size_t)n + 2 >= sizeof p->text) { /* keep a prefix */
    p->dropped++;
    return;
  }
  p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, "%s%s",
                             p->len ? "; " : "", one);
}

/* A tensor name from the file, printable and short. */
static const char *esc(const char *name, char *buf, size_t cap) {
  return rt_json_escape(name, strlen(name), buf, cap);
}

static void format_shape(const int64_t *dims, size_t rank, char *buf, size_t cap) {
  size_t len = (size_t)snprintf(buf, cap, "[");
  for (size_t i = 0; i < rank && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* ---- binding ------------------------------------------------------------------ */

static rt_st_dtype file_dtype(int32_t dt) {
  static const rt_st_dtype map[] = {RT_ST_F32, RT_ST_F64, RT_ST_F16, RT_ST_BF16,
                                    RT_ST_I32, RT_ST_I64, RT_ST_BOOL};
  return map[dt];
}

/* Floating tensors widen exactly; everything else must match. */
static bool converts(rt_st_dtype from, int32_t to) {
  bool half = from == RT_ST_F16 || from == RT_ST_BF16;
  if (to == RT_DT_F32) return from == RT_ST_F32 || half;
  if (to == RT_DT_F64) return from == RT_ST_F64 || from == RT_ST_F32 || half;
  return from == file_dtype(to);
}

typedef struct binding {
  const rt_model_desc *d;
  rt_st_file *f;
  const rt_st_tensor **tensors; /* per param: its usable tensor (present, dtype and rank fit), or NULL */
  int32_t *binder;              /* per symbol: the param that bound it, or -1 */
  bool *conflict;               /* per param: one of its axes disagrees with a bound symbol */
  int64_t *syms;                /* symbol values (the model's) */
} binding;

static void bind_param_symbols(binding *b, int32_t i, problems *p) {
  const rt_tensor_desc *pd = &b->d->params[i];
  const rt_st_tensor *t = b->tensors[i];
  char n1[80], n2[80];
  for (int32_t a = 0; pd->dim_symbols && a < pd->rank; a++) {
    int32_t s = pd->dim_symbols[a];
    if (s < 0) continue;
    if (t->shape[a] > RT_MAX_SYMBOL_VALUE) {
      /* A zero-size tensor can claim any extent; dims this large would
       * overflow the sizes the generated code computes. */
      problem(p, "'%s' gives %s = %lld, above the limit %lld", esc(pd->name, n1, sizeof n1),
              b->d->symbols[s], (long long)t->shape[a], (long long)RT_MAX_SYMBOL_VALUE);
      b->conflict[i] = true;
    } else if (b->binder[s] < 0) {
      b->binder[s] = i;
      b->syms[s] = t->shape[a];
    } else if (b->syms[s] != t->shape[a]) {
      problem(p, "'%s' gives %s = %lld, but '%s' gives %lld", esc(pd->name, n1, sizeof n1),
              b->d->symbols[s], (long long)t->shape[a],
              esc(b->d->params[b->binder[s]].name, n2, sizeof n2), (long long)b->syms[s]);
      b->conflict[i] = true;
    }
  }
}

/* Missing tensors, dtypes and ranks; binds parameter symbols from usable tensors. */
static void match_params(binding *b, problems *p) {
  char n[80];
  for (int32_t i = 0; i < b->d->n_params; i++) {
    const rt_tensor_desc *pd = &b->d->params[i];
    const rt_st_tensor *t = rt_st_find(b->f, pd->name);
    if (!t)
      problem(p, "missing tensor '%s' (%s, rank %d)", esc(pd->name, n, sizeof n),
              rt_dtype_name(pd->dtype), (int)pd->rank);
    else if (!converts(t->dtype, pd->dtype))
      problem(p, "'%s' is %s, which does not convert to %s", esc(pd->name, n, sizeof n),
              rt_st_dtype_name(t->dtype), rt_dtype_name(pd->dtype));
    else if (t->rank != (size_t)pd->rank)
      problem(p, "'%s' has rank %zu, expected %d", esc(pd->name, n, sizeof n), t->rank, (int)pd->rank);
    else {
      b->tensors[i] = t;
      bind_param_symbols(b, i, p);
    }
  }
}

/* Tensors no parameter takes, in file order. */
static rt_status find_extras(binding *b, problems *p) {
  const rt_model_desc *d = b->d;
  const char **names = calloc((size_t)d->n_params + 1, sizeof *names);
  if (!names) return rt_fail(RT_ENOMEM, "out of memory");
  for (int32_t i = 0; i < d->n_params; i++) names[i] = d->params[i].name;
  qsort(names, (size_t)d->n_params, sizeof *names, compare_names);
  char n[80];
  for (size_t k = 0; k < rt_st_count(b->f); k++) {
    const char *name = rt_st_tensor_at(b->f, k)->name;
    if (!bsearch(&name, names, (size_t)d->n_params, sizeof *names, compare_names))
      problem(p, "unexpected tensor '%s'", esc(name, n, sizeof n));
  }
  free(names);
  return RT_OK;
}

/* Compares parameter shapes with the descriptor's dims. Axes that change
 * with the unknown symbols are skipped (unbound parameter symbols) or a
 * descriptor error (call symbols only). */
static rt_status check_shapes(binding *b, int64_t n_dims, problems *p) {
  const rt_model_desc *d = b->d;
  int64_t *lo = calloc((size_t)n_dims + 1, sizeof *lo), *hi = calloc((size_t)n_dims + 1, sizeof *hi);
  int64_t *probe = calloc((size_t)d->n_symbols + 1, sizeof *probe);
  if (!lo || !hi || !probe) {
    free(lo), free(hi), free(probe);
    return rt_fail(RT_ENOMEM, "out of memory");
  }
  bool all_bound = true;
  for (int32_t k = 0; k < d->n_param_symbols; k++)
    all_bound = all_bound && b->binder[d->param_symbols[k]] >= 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int32_t s = 0; s < d->n_symbols; s++) probe[s] = b->binder[s] >= 0 ? b->syms[s] : 1 + pass;
    d->dims(probe, pass ? hi : lo);
  }
  int64_t off = 0;
  for (int32_t i = 0; i < d->n_inputs; i++) off += d->inputs[i].rank;
  rt_status st = RT_OK;
  char n[80], got[160], want[160];
  for (int32_t i = 0; i < d->n_params && st == RT_OK; off += d->params[i].rank, i++) {
    const rt_tensor_desc *pd = &d->params[i];
    bool fits = true, depends = false;
    for (int32_t a = 0; a < pd->rank; a++) {
      bool fixed = lo[off + a] == hi[off + a];
      depends = depends || !fixed;
      fits = fits && (!fixed || !b->tensors[i] || b->tensors[i]->shape[a] == lo[off + a]);
    }
    if (depends && all_bound)
      st = rt_model_fail(d, RT_EINVAL, "invalid model descriptor: the shape of parameter '%s' "
                         "depends on a call symbol", pd->name);
    else if (!fits && !b->conflict[i]) {
      format_shape(b->tensors[i]->shape, b->tensors[i]->rank, got, sizeof got);
      format_shape(lo + off, (size_t)pd->rank, want, sizeof want);
      problem(p, "'%s' has shape %s, expected %s", esc(pd->name, n, sizeof n), got, want);
    }
  }
  free(lo), free(hi), free(probe);
  return st;
}

/* ---- conversion ------------------------------------------------------------------- */

static uint32_t f16_to_f32_bits(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f) return sign | 0x7f800000u | man << 13; /* inf; NaN keeps its payload */
  if (exp) return sign | (exp + 127 - 15) << 23 | man << 13;
  if (!man) return sign;
  uint32_t e = 127 - 14; /* subnormal man * 2^-24: normalize so that bit 10 is the implicit 1 */
  while (!(man & 0x400)) man <<= 1, e--;
  return sign | e << 23 | (man & 0x3ff) << 13;
}

static uint64_t f32_to_f64_bits(uint32_t f) {
  uint64_t sign = (uint64_t)(f >> 31) << 63, exp = (f >> 23) & 0xff, man = f & 0x7fffff;
  if (exp == 0xff) return sign | 0x7ff0000000000000u | man << 29;
  if (exp) return sign | (exp + 1023 - 127) << 52 | man << 29;
  if (!man) return sign;
  uint64_t e = 1023 - 126; /* subnormal man * 2^-149 */
  while (!(man & 0x800000)) man <<= 1, e--;
  return sign | e << 52 | (man & 0x7fffff) << 29;
}

/* The f32 bit pattern of element k of a F32, F16 or BF16 tensor. */
static uint32_t load_f32_bits(const rt_st_tensor *t, int64_t k) {
  const unsigned char *src = t->data;
  if (t->dtype == RT_ST_F32) {
    uint32_t v;
    memcpy(&v, src + 4 * k, 4);
    return v;
  }
  uint16_t h;
  memcpy(&h, src + 2 * k, 2);
  return t->dtype == RT_ST_BF16 ? (uint32_t)h << 16 : f16_to_f32_bits(h);
}

static void convert(const rt_st_tensor *t, int32_t to, void *dst) {
  if (t->dtype == file_dtype(to)) {
    memcpy(dst, t->data, t->nbytes);
    if (to == RT_DT_BOOL) /* the reader does not check bool bytes: nonzero is true */
      for (size_t k = 0; k < t->nbytes; k++) ((unsigned char *)dst)[k] = ((unsigned char *)dst)[k] != 0;
  } else if (to == RT_DT_F32) {
    for (int64_t k = 0; k < t->numel; k++) ((uint32_t *)dst)[k] = load_f32_bits(t, k);
  } else { /* f64 from F32, F16 or BF16 */
    for (int64_t k = 0; k < t->numel; k++) ((uint64_t *)dst)[k] = f32_to_f64_bits(load_f32_bits(t, k));
  }
}

static bool init_only(const rt_model_desc *d, int32_t i) {
  return d->param_init_only && d->param_init_only[i];
}

/* Copies every (bound) parameter into two 64-byte aligned blocks: m->data
 * for those run reads, m->init_data for those only the inits read. */
static rt_status pack_params(rt_model *m, const rt_st_tensor **tensors) {
  const rt_model_desc *d = m->desc;
  uint64_t total[2] = {0, 0};
  for (int32_t i = 0; i < d->n_params; i++) {
    uint64_t bytes = (uint64_t)tensors[i]->numel * rt_dtype_size(d->params[i].dtype), *t = &total[init_only(d, i)];
    if (bytes / rt_dtype_size(d->params[i].dtype) != (uint64_t)tensors[i]->numel ||
        *t + bytes + 63 < *t || *t + bytes + 63 > SIZE_MAX - 64)
      return rt_model_fail(d, RT_ENOMEM, "the parameters are too large");
    *t = (*t + bytes + 63) / 64 * 64;
  }
  m->data = aligned_alloc(64, (size_t)total[0] + 64);
  m->init_data = total[1] ? aligned_alloc(64, (size_t)total[1]) : NULL;
  if (!m->data || (total[1] && !m->init_data))
    return rt_model_fail(d, RT_ENOMEM, "out of memory for %llu bytes of parameters",
                         (unsigned long long)(total[0] + total[1]));
  size_t off[2] = {0, 0};
  for (int32_t i = 0; i < d->n_params; i++) {
    int k = init_only(d, i);
    m->params[i] = (unsigned char *)(k ? m->init_data : m->data) + off[k];
    convert(tensors[i], d->params[i].dtype, m->params[i]);
    off[k] += ((size_t)tensors[i]->numel * rt_dtype_size(d->params[i].dtype) + 63) / 64 * 64;
  }
  return RT_OK;
}

/* After the inits: nothing reads the init-only parameters any more. */
static void free_init_params(rt_model *m) {
  for (int32_t i = 0; i < m->desc->n_params; i++)
    if (init_only(m->desc, i)) m->params[i] = NULL;
  free(m->init_data);
  m->init_data = NULL;
}

static rt_status bind(rt_model *m, rt_st_file *f) {
  const rt_model_desc *d = m->desc;
  binding b = {d, f, calloc((size_t)d->n_params + 1, sizeof *b.tensors),
               calloc((size_t)d->n_symbols + 1, sizeof *b.binder),
               calloc((size_t)d->n_params + 1, sizeof *b.conflict), m->syms};
  rt_status st = b.tensors && b.binder && b.conflict ? RT_OK : rt_fail(RT_ENOMEM, "out of memory");
  problems p = {.len = 0};
  if (st == RT_OK) {
    for (int32_t s = 0; s < d->n_symbols; s++) b.binder[s] = -1;
    match_params(&b, &p);
    st = find_extras(&b, &p);
    if (st == RT_OK) st = check_shapes(&b, m->n_dims, &p);
  }
  if (st == RT_OK && p.count)
    st = rt_fail(RT_EFORMAT, "%s: the weights do not fit model '%s' (%d problem%s): %s%s",
                 rt_st_name(f), d->name, p.count, p.count > 1 ? "s" : "", p.text,
                 p.dropped ? "; ..." : "");
  if (st == RT_OK) st = pack_params(m, b.tensors);
  free(b.tensors), free(b.binder), free(b.conflict);
  return st;
}

/* ---- open / close ------------------------------------------------------------------- */

/* Everything but the weights: options, descriptor, small arrays. */
static rt_status model_new(const rt_model_desc *d, const rt_options *opt, rt_model **out) {
  int num_threads;
  rt_status st = check_descriptor(d);
  if (st == RT_OK) st = read_options(d, opt, &num_threads);
  if (st != RT_OK) return st;
  rt_model *m = calloc(1, sizeof *m);
  if (!m) return rt_fail(RT_ENOMEM, "out of memory");
  m->desc = d;
  m->num_threads = num_threads;
  const rt_tensor_desc *lists[] = {d->inputs, d->params, d->outputs};
  int32_t counts[] = {d->n_inputs, d->n_params, d->n_outputs};
  for (int l = 0; l < 3; l++)
    for (int32_t i = 0; i < counts[l]; i++) m->n_dims += lists[l][i].rank;
  m->syms = calloc((size_t)d->n_symbols + 1, sizeof *m->syms);
  m->params = calloc((size_t)d->n_params + 1, sizeof *m->params);
  if (!m->syms || !m->params) {
    rt_model_close(m);
    return rt_fail(RT_ENOMEM, "out of memory");
  }
  *out = m;
  return RT_OK;
}

static rt_status open_with(const rt_model_desc *d, rt_st_file *f, const rt_options *opt, rt_model **out) {
  rt_model *m = NULL;
  rt_status st = model_new(d, opt, &m);
  if (st == RT_OK) st = bind(m, f);
  rt_st_close(f);
  if (st == RT_OK) st = rt_model_init_programs(m);
  if (st == RT_OK) free_init_params(m);
  if (st != RT_OK) {
    rt_model_close(m);
    return st;
  }
  *out = m;
  return RT_OK;
}

rt_status rt_model_open(const rt_model_desc *d, const char *path, const rt_options *opt,
                        rt_model **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_model_open: out is NULL");
  *out = NULL;
  rt_st_file *f;
  rt_status st = rt_st_open(path, &f);
  return st == RT_OK ? open_with(d, f, opt, out) : st;
}

rt_status rt_model_open_memory(const rt_model_desc *d, const void *buf, size_t n,
                               const rt_options *opt, rt_model **out) {
  if (!out) return rt_fail(RT_EINVAL, "rt_model_open_memory: out is NULL");
  *out = NULL;
  rt_st_file *f;
  rt_status st = rt_st_open_memory(buf, n, &f);
  return st == RT_OK ? open_with(d, f, opt, out) : st;
}

void rt_model_close(rt_model *m) {
  if (!m) return;
  rt_model_free_programs(m);
  free(m->data);
  free(m->init_data);
  free(m->params);
  free(m->syms);
  free(m);
}

const rt_model_desc *rt_model_descriptor(const rt_model *m) {
  if (!m) rt_fail(RT_EINVAL, "rt_model_descriptor: the model is NULL");
  return m ? m->desc : NULL;
}

rt_status rt_model_symbol(const rt_model *m, int32_t sym, int64_t *value) {
  if (!m || !value) return rt_fail(RT_EINVAL, "rt_model_symbol: NULL argument");
  const rt_model_desc *d = m->desc;
  for (int32_t k = 0; k < d->n_param_symbols; k++)
    if (d->param_symbols[k] == sym) {
      *value = m->syms[sym];
      return RT_OK;
    }
  return rt_model_fail(d, RT_EINVAL, "symbol index %d is not a parameter symbol", (int)sym);
}
