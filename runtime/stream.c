/*
 * stream.c - streaming calls: step_n, reset and the saved state
 * (docs/abi.md, "Streaming").
 *
 * A stream is the ctx's position (steps consumed since reset), the values
 * of its call symbols other than time (B, ...), fixed by reset, and its
 * state tensors. The state lives in two blocks allocated at ctx_new for the
 * maxima: a step reads one and writes the other, and they swap only when
 * the call succeeds, so a failed call leaves the stream as it was.
 *
 * The saved state is a blob in host byte order:
 *   "SEQRTST1"  magic (8 bytes)
 *   u32 version (1), u32 number of call symbols
 *   u64 the model's fingerprint
 *   i64 max T of the ctx that saved it, i64 pos
 *   i64 the stream's call symbol values (the time entry 0)
 *   u64 payload bytes, then the state tensors, dense, in order
 * A blob is loaded only into a ctx of the same model whose stream has the
 * same call symbol values and the same max T.
 */
#include "runtime/model_impl.h"

#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "SEQRTST1"
#define STATE_VERSION 1u

static const char *symbol_name(const rt_model_desc *d, int32_t k) {
  return d->symbols[d->call_symbols[k]];
}

/* The index in call_symbols of the time symbol. */
static int32_t time_slot(const rt_model_desc *d) {
  for (int32_t k = 0; k < d->n_call_symbols; k++)
    if (d->call_symbols[k] == d->time_symbol) return k;
  return -1;
}

static int64_t max_time(const rt_ctx *c) { return c->max[time_slot(c->model->desc)]; }

/* The model's symbol values for n new steps of the stream. */
static void stream_syms(rt_ctx *c, int64_t n) {
  const rt_model_desc *d = c->model->desc;
  for (int32_t k = 0; k < d->n_call_symbols; k++) c->syms[d->call_symbols[k]] = c->stream.values[k];
  c->syms[d->time_symbol] = n;
  rt_program_syms(d->step, c->syms, c->stream.pos, max_time(c), c->stream.step_syms);
}

/* Byte offsets of the state tensors for the stream's values; false when
 * they overflow or exceed the blocks allocated at ctx_new (a state dim
 * need not grow with every symbol: floordiv(64, B) is largest at B = 1). */
static bool layout_state(rt_ctx *c) {
  const rt_model_desc *d = c->model->desc;
  rt_stream *s = &c->stream;
  stream_syms(c, 0);
  if (d->n_state) d->state_dims(s->step_syms, s->state_dims);
  const int64_t *dims = s->state_dims;
  s->offset[0] = 0;
  for (int32_t k = 0; k < d->n_state; dims += d->state[k].rank, k++) {
    int64_t bytes;
    if (!rt_tensor_bytes(dims, d->state[k].rank, rt_dtype_size(d->state[k].dtype), &bytes) ||
        bytes > INT64_MAX / 2 - s->offset[k] - 64)
      return false;
    s->offset[k + 1] = s->offset[k] + (bytes + 63) / 64 * 64;
  }
  return !s->block[0] || s->offset[d->n_state] <= s->capacity;
}

static bool uses_cache(const seqrt_program *p) {
  for (int32_t i = 0; i < p->n_symbols; i++)
    if (p->symbol_map[i] == SEQRT_SYM_CAP) return true;
  return false;
}

rt_status rt_stream_init(rt_ctx *c) {
  const rt_model_desc *d = c->model->desc;
  rt_stream *s = &c->stream;
  if (!d->step) return RT_OK;
  int64_t ranks = 0;
  for (int32_t k = 0; k < d->n_state; k++) ranks += d->state[k].rank;
  s->values = calloc((size_t)d->n_call_symbols + 1, sizeof *s->values);
  s->spare = calloc((size_t)d->n_call_symbols + 1, sizeof *s->spare);
  s->step_syms = calloc((size_t)d->step->n_symbols + 1, sizeof *s->step_syms);
  s->state_dims = calloc((size_t)ranks + 1, sizeof *s->state_dims);
  s->offset = calloc((size_t)d->n_state + 1, sizeof *s->offset);
  if (!s->values || !s->spare || !s->step_syms || !s->state_dims || !s->offset)
    return rt_fail(RT_ENOMEM, "out of memory");
  memcpy(s->values, c->max, (size_t)d->n_call_symbols * sizeof *s->values);
  s->values[time_slot(d)] = 0; /* not part of the stream: each step gives it */
  s->has_cache = uses_cache(d->step);
  if (!layout_state(c) || (uint64_t)s->offset[d->n_state] > SIZE_MAX - 128)
    return rt_model_fail(d, RT_EINVAL, "ctx_new: the stream state overflows at these maxima");
  s->capacity = s->offset[d->n_state];
  for (int i = 0; i < 2; i++) {
    s->block[i] = aligned_alloc(64, (size_t)s->capacity + 64);
    if (!s->block[i])
      return rt_model_fail(d, RT_ENOMEM, "ctx_new: out of memory for %lld bytes of stream state",
                           (long long)s->capacity);
    memset(s->block[i], 0, (size_t)s->capacity + 64);
  }
  return RT_OK;
}

void rt_stream_free(rt_ctx *c) {
  rt_stream *s = &c->stream;
  free(s->block[0]);
  free(s->block[1]);
  free(s->offset);
  free(s->state_dims);
  free(s->step_syms);
  free(s->values);
  free(s->spare);
  memset(s, 0, sizeof *s);
}

/* Steps at the maxima: n = max T, pos = max T (KV caches hold both). */
int64_t rt_stream_scratch_need(rt_ctx *c) {
  const rt_model_desc *d = c->model->desc;
  if (!d->step) return 0;
  for (int32_t k = 0; k < d->n_call_symbols; k++) c->syms[d->call_symbols[k]] = c->max[k];
  rt_program_syms(d->step, c->syms, max_time(c), max_time(c), c->stream.step_syms);
  return d->step->scratch_bytes(c->stream.step_syms);
}

static rt_status require_step(const rt_ctx *c, const char *call) {
  if (!c) return rt_fail(RT_EINVAL, "%s: the ctx is NULL", call);
  const rt_model_desc *d = c->model->desc;
  if (!d->step)
    return rt_model_fail(d, RT_ESTATE, "%s: the model has no step: %s", call,
                         d->no_step ? d->no_step : "it cannot stream");
  return RT_OK;
}

static void *state_at(const rt_ctx *c, int which, int32_t k) {
  return (unsigned char *)c->stream.block[which] + c->stream.offset[k];
}

rt_status rt_reset(rt_ctx *c, const int64_t *values) {
  rt_status st = require_step(c, "reset");
  if (st != RT_OK) return st;
  const rt_model_desc *d = c->model->desc;
  int32_t t = time_slot(d);
  if (d->n_call_symbols > 1 && !values) return rt_model_fail(d, RT_EINVAL, "reset: the symbol array is NULL");
  for (int32_t k = 0, i = 0; k < d->n_call_symbols; k++) {
    if (k == t) continue;
    int64_t v = values[i++];
    if (v < 0 || v > c->max[k])
      return rt_model_fail(d, RT_EINVAL, "reset: %s = %lld is outside [0, %lld] (the ctx's maximum)",
                           symbol_name(d, k), (long long)v, (long long)c->max[k]);
  }
  /* The new values go in the spare array; the old ones stay until they fit. */
  int64_t *old = c->stream.values;
  for (int32_t k = 0, i = 0; k < d->n_call_symbols; k++) c->stream.spare[k] = k == t ? 0 : values[i++];
  c->stream.values = c->stream.spare;
  c->stream.spare = old;
  if (!layout_state(c)) {
    c->stream.spare = c->stream.values;
    c->stream.values = old;
    layout_state(c);
    return rt_model_fail(d, RT_EINVAL, "reset: the stream state for these dims does not fit the blocks "
                         "allocated at ctx_new (it is larger than at the maxima)");
  }
  c->stream.pos = 0;
  memset(c->stream.block[c->stream.cur], 0, (size_t)c->stream.capacity);
  return RT_OK;
}

rt_status rt_step_n(rt_ctx *c, int64_t n, const void *const *inputs, void *const *outputs) {
  rt_status st = require_step(c, "step");
  if (st != RT_OK) return st;
  const rt_model_desc *d = c->model->desc;
  rt_stream *s = &c->stream;
  if ((d->n_inputs > 0 && !inputs) || (d->n_outputs > 0 && !outputs))
    return rt_model_fail(d, RT_EINVAL, "step: the %s array is NULL", !outputs ? "output" : "input");
  int64_t tmax = max_time(c);
  if (n < 0 || n > tmax)
    return rt_model_fail(d, RT_EINVAL, "step: n = %lld is outside [0, %lld] (the ctx's maximum %s)",
                         (long long)n, (long long)tmax, d->symbols[d->time_symbol]);
  if (s->has_cache && n > tmax - s->pos)
    return rt_model_fail(d, RT_ESTATE, "step: the stream is full: %lld steps taken, %lld more exceed "
                         "the ctx's maximum %s = %lld (its KV cache); reset it or use a larger maximum",
                         (long long)s->pos, (long long)n, d->symbols[d->time_symbol], (long long)tmax);
  if (s->pos > INT64_MAX - n) return rt_model_fail(d, RT_ESTATE, "step: the stream position overflows");
  stream_syms(c, n);
  d->dims(c->syms, c->dims);
  st = rt_check_tensors(c, "step", inputs, outputs);
  if (st != RT_OK) return st;
  int32_t n_args = d->n_inputs + d->n_params;
  c->args[n_args] = &s->pos;
  for (int32_t k = 0; k < d->n_state; k++) {
    c->args[n_args + 1 + k] = state_at(c, s->cur, k);
    c->outs[d->n_outputs + k] = state_at(c, !s->cur, k);
  }
  st = rt_run_program(c, &c->model->step, s->step_syms, "step");
  if (st != RT_OK) return st;
  s->cur = !s->cur;
  s->pos += n;
  return RT_OK;
}

/* ---- the saved state ---------------------------------------------------------------- */

static size_t header_size(const rt_model_desc *d) {
  return 8 + 4 + 4 + 8 + 8 + 8 + 8 * (size_t)d->n_call_symbols + 8;
}

static size_t payload_size(const rt_ctx *c) {
  size_t n = 0;
  const rt_model_desc *d = c->model->desc;
  const int64_t *dims = c->stream.state_dims;
  for (int32_t k = 0; k < d->n_state; dims += d->state[k].rank, k++) {
    int64_t bytes = 0;
    rt_tensor_bytes(dims, d->state[k].rank, rt_dtype_size(d->state[k].dtype), &bytes);
    n += (size_t)bytes;
  }
  return n;
}

size_t rt_state_size(const rt_ctx *c) {
  if (require_step(c, "state_size") != RT_OK) return 0;
  return header_size(c->model->desc) + payload_size(c);
}

static unsigned char *put(unsigned char *p, const void *v, size_t n) {
  memcpy(p, v, n);
  return p + n;
}

rt_status rt_state_save(const rt_ctx *c, void *buf, size_t n) {
  rt_status st = require_step(c, "state_save");
  if (st != RT_OK) return st;
  const rt_model_desc *d = c->model->desc;
  size_t need = rt_state_size(c);
  if (!buf) return rt_model_fail(d, RT_EINVAL, "state_save: the buffer is NULL");
  if (n < need)
    return rt_model_fail(d, RT_EINVAL, "state_save: the buffer holds %zu bytes, the state needs %zu "
                         "(state_size)", n, need);
  uint32_t version = STATE_VERSION, n_syms = (uint32_t)d->n_call_symbols;
  int64_t tmax = max_time(c);
  uint64_t payload = payload_size(c);
  unsigned char *p = put(buf, STATE_MAGIC, 8);
  p = put(p, &version, 4);
  p = put(p, &n_syms, 4);
  p = put(p, &d->fingerprint, 8);
  p = put(p, &tmax, 8);
  p = put(p, &c->stream.pos, 8);
  p = put(p, c->stream.values, 8 * (size_t)d->n_call_symbols);
  p = put(p, &payload, 8);
  const int64_t *dims = c->stream.state_dims;
  for (int32_t k = 0; k < d->n_state; dims += d->state[k].rank, k++) {
    int64_t bytes = 0;
    rt_tensor_bytes(dims, d->state[k].rank, rt_dtype_size(d->state[k].dtype), &bytes);
    p = put(p, state_at(c, c->stream.cur, k), (size_t)bytes);
  }
  return RT_OK;
}

/* Checks a blob's header against the ctx's stream; *pos gets its position. */
static rt_status check_header(const rt_ctx *c, const unsigned char *p, size_t n, int64_t *pos) {
  const rt_model_desc *d = c->model->desc;
  if (n < header_size(d) || memcmp(p, STATE_MAGIC, 8) != 0)
    return rt_model_fail(d, RT_EFORMAT, "state_load: this is not a saved seqc stream state");
  uint32_t version, n_syms;
  uint64_t fingerprint, payload;
  int64_t tmax, v;
  memcpy(&version, p + 8, 4);
  memcpy(&n_syms, p + 12, 4);
  memcpy(&fingerprint, p + 16, 8);
  memcpy(&tmax, p + 24, 8);
  memcpy(pos, p + 32, 8);
  if (version != STATE_VERSION)
    return rt_model_fail(d, RT_EFORMAT, "state_load: state version %u, this runtime reads %u", version, STATE_VERSION);
  if (fingerprint != d->fingerprint || n_syms != (uint32_t)d->n_call_symbols)
    return rt_model_fail(d, RT_EINVAL, "state_load: the state was saved by a different model (fingerprint "
                         "%016llx, this model %016llx)", (unsigned long long)fingerprint,
                         (unsigned long long)d->fingerprint);
  if (tmax != max_time(c))
    return rt_model_fail(d, RT_EINVAL, "state_load: the state was saved with max %s = %lld, this ctx has %lld",
                         d->symbols[d->time_symbol], (long long)tmax, (long long)max_time(c));
  for (int32_t k = 0; k < d->n_call_symbols; k++) {
    memcpy(&v, p + 40 + 8 * (size_t)k, 8);
    if (k == time_slot(d) && v != 0)
      return rt_model_fail(d, RT_EFORMAT, "state_load: the state is truncated or corrupt (time entry %lld)",
                           (long long)v);
    if (k != time_slot(d) && v != c->stream.values[k])
      return rt_model_fail(d, RT_EINVAL, "state_load: the state is for %s = %lld, the stream has %lld "
                           "(reset the ctx to %lld first)", symbol_name(d, k), (long long)v,
                           (long long)c->stream.values[k], (long long)v);
  }
  memcpy(&payload, p + header_size(d) - 8, 8);
  if (*pos < 0 || (c->stream.has_cache && *pos > tmax) || payload != payload_size(c) ||
      n != header_size(d) + payload)
    return rt_model_fail(d, RT_EFORMAT, "state_load: the state is truncated or corrupt (%zu bytes, "
                         "expected %zu)", n, header_size(d) + payload_size(c));
  return RT_OK;
}

rt_status rt_state_load(rt_ctx *c, const void *buf, size_t n) {
  rt_status st = require_step(c, "state_load");
  if (st != RT_OK) return st;
  const rt_model_desc *d = c->model->desc;
  if (!buf) return rt_model_fail(d, RT_EINVAL, "state_load: the buffer is NULL");
  int64_t pos = 0;
  st = check_header(c, buf, n, &pos);
  if (st != RT_OK) return st;
  const unsigned char *p = (const unsigned char *)buf + header_size(d);
  const int64_t *dims = c->stream.state_dims;
  for (int32_t k = 0; k < d->n_state; dims += d->state[k].rank, k++) {
    int64_t bytes = 0;
    rt_tensor_bytes(dims, d->state[k].rank, rt_dtype_size(d->state[k].dtype), &bytes);
    memcpy(state_at(c, c->stream.cur, k), p, (size_t)bytes);
    p += bytes;
  }
  c->stream.pos = pos;
  return RT_OK;
}

rt_status rt_state_copy(const rt_ctx *from, rt_ctx *to) {
  rt_status st = require_step(from, "state_copy");
  if (st == RT_OK) st = require_step(to, "state_copy");
  if (st != RT_OK) return st;
  const rt_model_desc *d = to->model->desc;
  if (from->model->desc != d)
    return rt_model_fail(d, RT_EINVAL, "state_copy: the contexts belong to different models");
  if (from == to) return RT_OK;
  if (max_time(from) != max_time(to))
    return rt_model_fail(d, RT_EINVAL, "state_copy: the contexts have different max %s (%lld and %lld)",
                         d->symbols[d->time_symbol], (long long)max_time(from), (long long)max_time(to));
  for (int32_t k = 0; k < d->n_call_symbols; k++)
    if (k != time_slot(d) && from->stream.values[k] != to->stream.values[k])
      return rt_model_fail(d, RT_EINVAL, "state_copy: the source stream has %s = %lld, the target %lld "
                           "(reset the target to %lld first)", symbol_name(d, k),
                           (long long)from->stream.values[k], (long long)to->stream.values[k],
                           (long long)from->stream.values[k]);
  memcpy(to->stream.block[to->stream.cur], from->stream.block[from->stream.cur],
         (size_t)from->stream.offset[d->n_state]);
  to->stream.pos = from->stream.pos;
  return RT_OK;
}
