/*
 * stream.h - the causality analysis that derives a model's streaming `step`
 * program from its `forward` graph (docs/streaming.md).
 *
 * The time dim is one symbol (T). Every top-level value is classified as
 *   invariant  no T axis, independent of the sequence (weights, h0, ...);
 *   per-step   exactly one axis is T and element t depends only on inputs
 *              at times <= t;
 *   final      no T axis, but it depends on the whole sequence so far (a
 *              scan's final carry): valid after every call, never inside one.
 * Each op kind has one streaming rule (the `stream` column of ir/ops.def,
 * stream_<rule> in stream.c) deciding its results' classes from its
 * operands', or saying why it cannot stream (it reduces over time, reverses
 * time, mixes a final value into every step, ...).
 *
 * When every op has a rule, the step graph is the forward graph with state:
 * the same arguments, then `pos` (i64[], the number of steps consumed
 * before this call), then one argument per state tensor; the same outputs,
 * then the new value of every state tensor. T in the step graph is the
 * number of new steps n. Rules that carry state:
 *   scan over T       each carry starts from its state once pos > 0;
 *   cumsum/cumprod/logcumsumexp over T   the running value is the state;
 *   causal attention  keys and values are appended to a KV cache of
 *                     capacity `cap` at pos, and queries attend to the
 *                     cache's first pos + n entries;
 *   iota along T      counts from pos.
 * step_n(n1) then step_n(n2) then equals forward(n1 + n2).
 */
#ifndef SEQC_PASSES_STREAM_H
#define SEQC_PASSES_STREAM_H

#include "../ir/ir.h"

typedef struct stream_result {
  ir_graph *step;         /* NULL when the model cannot stream */
  char *why_not;          /* when step is NULL: which op, where, and why */
  int32_t n_state;        /* state tensors: arguments and outputs of step */
  const char *past_sym;   /* symbol of step: pos as a dim (NULL when unused) */
  const char *cap_sym;    /* symbol of step: the KV-cache capacity (NULL when unused) */
} stream_result;

/* The symbol stream_derive treats as time. */
#define STREAM_TIME_SYMBOL "T"

/* Derives the step graph of g (verified, before `decompose`; g is not
 * changed). False only for an internal failure (reported in d); a model
 * that cannot stream returns true with out->step NULL and out->why_not set.
 * The step graph is named g's name + "_step". */
bool stream_derive(const ir_graph *g, stream_result *out, ir_diag *d);
void stream_result_free(stream_result *r);

#endif
