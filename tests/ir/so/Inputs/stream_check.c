/*
 * stream_check.c - checks the streaming contract of any seqc shared object
 * through its descriptor: over T steps,
 *   forward(T)  ==  step_n(T1); step_n(T - T1)  ==  T x step_n(1)
 * bitwise, for every output (per-step outputs slice by slice along their T
 * axis, the others after the last call); a state saved after T1 steps and
 * loaded into a fresh ctx, or copied into one, continues identically; and
 * a failed step leaves the stream unchanged.
 *
 *   stream_check MODEL.so WEIGHTS.safetensors T1 SYM=N ... (T=N among them)
 *
 * Inputs are a fixed pseudo-random pattern (integers in [0, 4)). Prints
 * "stream ok" or the first difference, exiting 1.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../tools/so_driver.h"

typedef struct model {
  const seqrt_model_desc *d;
  const seqrt_entry_points *e;
  void *weights;
  int64_t *syms;     /* all symbol values at T */
  int64_t *dims;     /* desc->dims at T */
  int time_axis[64]; /* per input then output: the T axis or -1 */
} model;

static int fail(const model *m, const char *what) {
  printf("stream_check: %s: %s\n", what, m->e ? m->e->last_error() : "");
  exit(1);
}

static const seqrt_model_desc *load(const char *so_path) {
  char err[512];
  const seqrt_model_desc *d = so_load_descriptor(so_path, NULL, err, sizeof err);
  if (!d) {
    printf("stream_check: %s\n", err);
    exit(1);
  }
  return d;
}

static int axis_of(const model *m, const seqrt_tensor_desc *t) {
  for (int a = 0; t->dim_symbols && a < t->rank; a++)
    if (t->dim_symbols[a] == m->d->time_symbol) return a;
  return -1;
}

/* Bytes of tensor k (inputs then outputs in dims order) with T = n. */
static size_t tensor_bytes(const seqrt_tensor_desc *t, const int64_t *dims, int axis, int64_t n) {
  size_t b = so_dtype_size(t->dtype);
  for (int a = 0; a < t->rank; a++) b *= (size_t)(a == axis ? n : dims[a]);
  return b;
}

/* Copies steps [t0, t0+n) along axis between a full tensor and a slice
 * (to_slice: full -> slice, else slice -> full). */
static void move_steps(const seqrt_tensor_desc *t, const int64_t *dims, int axis, int64_t t0, int64_t n,
                       unsigned char *full, unsigned char *slice, int to_slice) {
  size_t outer = 1, inner = so_dtype_size(t->dtype);
  for (int a = 0; a < axis; a++) outer *= (size_t)dims[a];
  for (int a = axis + 1; a < t->rank; a++) inner *= (size_t)dims[a];
  for (size_t o = 0; o < outer; o++) {
    unsigned char *f = full + (o * (size_t)dims[axis] + (size_t)t0) * inner, *s = slice + o * (size_t)n * inner;
    if (to_slice) memcpy(s, f, (size_t)n * inner);
    else memcpy(f, s, (size_t)n * inner);
  }
}

static void fill(const seqrt_tensor_desc *t, void *p, size_t bytes, uint32_t seed) {
  size_t n = bytes / so_dtype_size(t->dtype);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    double v = (double)(seed >> 8) / 16777216.0 * 2.0 - 1.0;
    switch (t->dtype) {
    case SEQRT_F32: ((float *)p)[i] = (float)v; break;
    case SEQRT_F64: ((double *)p)[i] = v; break;
    case SEQRT_I32: ((int32_t *)p)[i] = (int32_t)(seed >> 30); break;
    case SEQRT_I64: ((int64_t *)p)[i] = (int64_t)(seed >> 30); break;
    case SEQRT_BOOL: ((uint8_t *)p)[i] = (uint8_t)(seed >> 31); break;
    default: ((uint16_t *)p)[i] = (uint16_t)(0x3c00 | (seed >> 22)); break; /* f16/bf16 around 1 */
    }
  }
}

typedef struct run {
  void **in, **out;   /* full tensors over T */
  size_t *in_bytes, *out_bytes;
} run;

static void alloc_run(const model *m, run *r) {
  const seqrt_model_desc *d = m->d;
  r->in = calloc((size_t)d->n_inputs + 1, sizeof(void *));
  r->out = calloc((size_t)d->n_outputs + 1, sizeof(void *));
  r->in_bytes = calloc((size_t)d->n_inputs + 1, sizeof(size_t));
  r->out_bytes = calloc((size_t)d->n_outputs + 1, sizeof(size_t));
  const int64_t *dims = m->dims;
  for (int i = 0; i < d->n_inputs; dims += d->inputs[i].rank, i++) {
    r->in_bytes[i] = tensor_bytes(&d->inputs[i], dims, -1, 0);
    r->in[i] = calloc(r->in_bytes[i] + 1, 1);
    fill(&d->inputs[i], r->in[i], r->in_bytes[i], 1234u + (uint32_t)i);
  }
  for (int j = 0; j < d->n_params; j++) dims += d->params[j].rank;
  for (int i = 0; i < d->n_outputs; dims += d->outputs[i].rank, i++) {
    r->out_bytes[i] = tensor_bytes(&d->outputs[i], dims, -1, 0);
    r->out[i] = calloc(r->out_bytes[i] + 1, 1);
  }
}

static const int64_t *output_dims(const model *m, int k) {
  const seqrt_model_desc *d = m->d;
  const int64_t *dims = m->dims;
  for (int i = 0; i < d->n_inputs; i++) dims += d->inputs[i].rank;
  for (int j = 0; j < d->n_params; j++) dims += d->params[j].rank;
  for (int i = 0; i < k; i++) dims += d->outputs[i].rank;
  return dims;
}

static const int64_t *input_dims(const model *m, int k) {
  const int64_t *dims = m->dims;
  for (int i = 0; i < k; i++) dims += m->d->inputs[i].rank;
  return dims;
}

/* step_n over steps [t0, t0+n) of `src`'s inputs, writing into `dst`'s outputs. */
static int step_slice(const model *m, void *ctx, const run *src, run *dst, int64_t t0, int64_t n) {
  const seqrt_model_desc *d = m->d;
  const void *ins[64];
  void *outs[64];
  for (int i = 0; i < d->n_inputs; i++) {
    int a = m->time_axis[i];
    if (a < 0) {
      ins[i] = src->in[i];
      continue;
    }
    void *s = malloc(tensor_bytes(&d->inputs[i], input_dims(m, i), a, n) + 1);
    move_steps(&d->inputs[i], input_dims(m, i), a, t0, n, src->in[i], s, 1);
    ins[i] = s;
  }
  for (int i = 0; i < d->n_outputs; i++) {
    int a = m->time_axis[d->n_inputs + i];
    outs[i] = a < 0 ? dst->out[i] : malloc(tensor_bytes(&d->outputs[i], output_dims(m, i), a, n) + 1);
  }
  int rc = m->e->step_n(ctx, n, ins, outs);
  for (int i = 0; i < d->n_outputs; i++) {
    int a = m->time_axis[d->n_inputs + i];
    if (a < 0) continue;
    if (rc == 0) move_steps(&d->outputs[i], output_dims(m, i), a, t0, n, dst->out[i], outs[i], 0);
    free(outs[i]);
  }
  for (int i = 0; i < d->n_inputs; i++)
    if (m->time_axis[i] >= 0) free((void *)ins[i]);
  return rc;
}

static void same(const model *m, const run *a, const run *b, const char *what) {
  for (int i = 0; i < m->d->n_outputs; i++)
    if (memcmp(a->out[i], b->out[i], a->out_bytes[i]) != 0) {
      printf("stream_check: %s: output '%s' differs from forward\n", what, m->d->outputs[i].name);
      exit(1);
    }
}

static void *new_ctx(const model *m) {
  const seqrt_model_desc *d = m->d;
  int64_t max[64];
  for (int k = 0; k < d->n_call_symbols; k++) max[k] = m->syms[d->call_symbols[k]];
  void *c = NULL;
  if (m->e->ctx_new(m->weights, max, &c) != 0) fail(m, "ctx_new");
  return c;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  model m = {0};
  m.d = load(argv[1]);
  m.e = m.d->entry;
  if (!m.d->step) {
    printf("stream_check: %s has no step: %s\n", m.d->name, m.d->no_step);
    return 1;
  }
  if (m.e->open(argv[2], NULL, &m.weights) != 0) fail(&m, "open");
  int64_t t1 = atoll(argv[3]);
  m.syms = calloc((size_t)m.d->n_symbols + 1, sizeof(int64_t));
  for (int i = 4; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    for (int s = 0; eq && s < m.d->n_symbols; s++)
      if ((size_t)(eq - argv[i]) == strlen(m.d->symbols[s]) && !strncmp(argv[i], m.d->symbols[s], (size_t)(eq - argv[i])))
        m.syms[s] = atoll(eq + 1);
  }
  int64_t T = m.syms[m.d->time_symbol];
  int64_t total = 0;
  for (int i = 0; i < m.d->n_inputs; i++) total += m.d->inputs[i].rank;
  for (int i = 0; i < m.d->n_params; i++) total += m.d->params[i].rank;
  for (int i = 0; i < m.d->n_outputs; i++) total += m.d->outputs[i].rank;
  m.dims = calloc((size_t)total + 1, sizeof(int64_t));
  m.d->dims(m.syms, m.dims);
  for (int i = 0; i < m.d->n_inputs; i++) m.time_axis[i] = axis_of(&m, &m.d->inputs[i]);
  for (int i = 0; i < m.d->n_outputs; i++) m.time_axis[m.d->n_inputs + i] = axis_of(&m, &m.d->outputs[i]);

  run fwd, two, one, loaded, copied;
  alloc_run(&m, &fwd);
  alloc_run(&m, &two);
  alloc_run(&m, &one);
  alloc_run(&m, &loaded);
  alloc_run(&m, &copied);
  void *c = new_ctx(&m);
  int64_t call[64];
  for (int k = 0; k < m.d->n_call_symbols; k++) call[k] = m.syms[m.d->call_symbols[k]];
  if (m.e->forward(c, call, (const void *const *)fwd.in, fwd.out) != 0) fail(&m, "forward");

  /* step_n(T1), save, step_n(T - T1) */
  if (step_slice(&m, c, &fwd, &two, 0, t1) != 0) fail(&m, "step_n(T1)");
  size_t size = m.e->state_size(c);
  void *blob = malloc(size);
  if (m.e->state_save(c, blob, size) != 0) fail(&m, "state_save");
  void *fork = new_ctx(&m);
  if (m.e->state_copy(c, fork) != 0) fail(&m, "state_copy");
  for (int i = 0; i < m.d->n_outputs; i++) {
    memcpy(loaded.out[i], two.out[i], two.out_bytes[i]);
    memcpy(copied.out[i], two.out[i], two.out_bytes[i]);
  }
  /* A failing call (n above the maximum) leaves the stream as it was. */
  const void *no_ins[64] = {0};
  void *no_outs[64] = {0};
  if (m.e->step_n(c, T + 1, no_ins, no_outs) == 0) fail(&m, "step_n(T + 1) did not fail");
  if (step_slice(&m, c, &fwd, &two, t1, T - t1) != 0) fail(&m, "step_n(T - T1)");
  same(&m, &fwd, &two, "step_n(T1) + step_n(T - T1)");

  /* The saved state, loaded into a fresh ctx, continues the same way. */
  void *c2 = new_ctx(&m);
  if (m.e->state_load(c2, blob, size) != 0) fail(&m, "state_load");
  if (step_slice(&m, c2, &fwd, &loaded, t1, T - t1) != 0) fail(&m, "step after load");
  same(&m, &fwd, &loaded, "saved state, loaded");
  if (step_slice(&m, fork, &fwd, &copied, t1, T - t1) != 0) fail(&m, "step after copy");
  same(&m, &fwd, &copied, "copied state");

  /* T single steps after a reset. */
  int64_t values[64];
  int nv = 0;
  for (int k = 0; k < m.d->n_call_symbols; k++)
    if (m.d->call_symbols[k] != m.d->time_symbol) values[nv++] = call[k];
  if (m.e->reset(c, values) != 0) fail(&m, "reset");
  for (int64_t t = 0; t < T; t++)
    if (step_slice(&m, c, &fwd, &one, t, 1) != 0) fail(&m, "step");
  if (T > 0) same(&m, &fwd, &one, "T single steps");

  /* A corrupted blob is refused. */
  ((unsigned char *)blob)[0] ^= 1;
  if (m.e->state_load(c2, blob, size) == 0) fail(&m, "a corrupt state was accepted");
  m.e->ctx_free(c);
  m.e->ctx_free(c2);
  m.e->ctx_free(fork);
  m.e->close(m.weights);
  printf("stream ok: %s T=%lld T1=%lld, state %zu bytes\n", m.d->name, (long long)T, (long long)t1, size);
  return 0;
}
