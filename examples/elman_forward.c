/*
 * elman_forward.c - embedding a model compiled by seqc in a C program.
 *
 *   seqc build models/elman.yaml -o build/demo/elman.so   # writes elman.so and elman.h
 *   cc -Ibuild/demo examples/elman_forward.c build/demo/elman.so -o elman_forward
 *   ./elman_forward models/elman.safetensors
 *
 * It opens the weights, makes a context for sequences up to 64 steps, runs
 * a 6-step sequence for a batch of 2 with forward, then the same sequence
 * one step at a time through step (the streaming API a real-time caller
 * uses), and prints the final state both ways: they are equal.
 */
#include <stdio.h>

#include "elman.h"

enum { B = 2, T = 6, IN = 4, HIDDEN = 8 };

static void print_state(const char *how, float h[B][HIDDEN]) {
  for (int b = 0; b < B; b++) {
    printf("%-7s h[%d] =", how, b);
    for (int k = 0; k < HIDDEN; k++) printf(" %+.6f", h[b][k]);
    printf("\n");
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WEIGHTS.safetensors\n", argv[0]);
    return 2;
  }
  elman *model = NULL;
  elman_ctx *ctx = NULL;
  seqrt_options opt = {sizeof opt, 1, 0};
  if (elman_open(argv[1], &opt, &model) != 0 || elman_ctx_new(model, B, 64, &ctx) != 0) {
    fprintf(stderr, "elman: %s\n", elman_last_error());
    elman_close(model);
    return 1;
  }
  /* x[t][b][i]: a ramp per batch element; h0 = 0. */
  float x[T][B][IN], h0[B][HIDDEN] = {{0}}, h[B][HIDDEN], ys[T][B][HIDDEN];
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++)
      for (int i = 0; i < IN; i++) x[t][b][i] = 0.1f * (float)(t - i) * (b ? -1.0f : 1.0f);
  int rc = elman_forward(ctx, B, T, &x[0][0][0], &h0[0][0], &h[0][0], &ys[0][0][0]);
  if (rc == 0) print_state("forward", h);
  /* The same sequence as a stream: one step at a time, each taking x[t]
   * and giving that step's state (h0 is read before the first step only). */
  float h_step[B][HIDDEN], y_t[1][B][HIDDEN];
  if (rc == 0) rc = elman_reset(ctx, B);
  for (int t = 0; t < T && rc == 0; t++) rc = elman_step(ctx, &x[t][0][0], &h0[0][0], &h_step[0][0], &y_t[0][0][0]);
  if (rc == 0) print_state("step", h_step);
  if (rc != 0) fprintf(stderr, "elman: %s\n", elman_last_error());
  elman_ctx_free(ctx);
  elman_close(model);
  return rc != 0;
}
