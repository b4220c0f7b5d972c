/* Drives elman.so through its generated header: opens the weights given on
 * the command line, runs forward on deterministic inputs (also written to
 * x.bin and h0.bin for `seqc run`), writes ys.bin, and exercises argument
 * validation. usage: drive_elman WEIGHTS OUTDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elman.h"

enum { B = 2, T = 5 };

static void write_raw(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) exit(2);
  fclose(f);
}

static int fail(const char *what) {
  fprintf(stderr, "%s: %s\n", what, elman_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  float x[T * B * 4], h0[B * 8], h[B * 8], ys[T * B * 8];
  for (int i = 0; i < T * B * 4; i++) x[i] = (float)((i * 37 % 19) - 9) / 8.0f;
  for (int i = 0; i < B * 8; i++) h0[i] = (float)((i * 11 % 7) - 3) / 4.0f;
  write_raw(argv[2], "x.bin", x, sizeof x);
  write_raw(argv[2], "h0.bin", h0, sizeof h0);

  seqrt_options opt = {sizeof opt, 1, 0};
  elman *m = NULL;
  elman_ctx *c = NULL;
  if (elman_open(argv[1], &opt, &m)) return fail("open");
  if (elman_ctx_new(m, 4, 16, &c)) return fail("ctx_new");
  if (elman_forward(c, B, T, x, h0, h, ys)) return fail("forward");
  write_raw(argv[2], "ys.bin", ys, sizeof ys);
  write_raw(argv[2], "h.bin", h, sizeof h);

  /* Bad arguments are errors with messages, never crashes. */
  if (elman_forward(c, B, 17, x, h0, h, ys) == 0) return fail("T above the ctx maximum accepted");
  printf("above max: %s\n", elman_last_error());
  if (elman_forward(c, B, T, NULL, h0, h, ys) == 0) return fail("NULL input accepted");
  printf("null input: %s\n", elman_last_error());
  if (elman_forward(NULL, B, T, x, h0, h, ys) == 0) return fail("NULL ctx accepted");
  printf("null ctx: %s\n", elman_last_error());
  /* Streaming calls check their arguments too. */
  if (elman_reset(c, 5) == 0) return fail("reset above the ctx maximum accepted");
  printf("reset above max: %s\n", elman_last_error());
  if (elman_reset(c, B) || elman_step_n(c, 2, x, h0, h, ys)) return fail("step_n");
  if (elman_step_n(c, 17, x, h0, h, ys) == 0) return fail("n above the ctx maximum accepted");
  printf("step above max: %s\n", elman_last_error());
  if (elman_step(c, NULL, h0, h, ys) == 0) return fail("NULL step input accepted");
  printf("null step input: %s\n", elman_last_error());
  size_t size = elman_state_size(c);
  unsigned char blob[4096];
  if (size > sizeof blob || elman_state_save(c, blob, size)) return fail("state_save");
  if (elman_state_save(c, blob, size - 1) == 0) return fail("short state buffer accepted");
  printf("short buffer: %s\n", elman_last_error());
  if (elman_state_load(c, blob, size - 1) == 0) return fail("truncated state accepted");
  printf("truncated: %s\n", elman_last_error());
  if (elman_reset(c, B - 1) || elman_state_load(c, blob, size) == 0) return fail("state for another B accepted");
  printf("other B: %s\n", elman_last_error());
  if (elman_state_load(NULL, blob, size) == 0 || elman_state_size(NULL) != 0) return fail("NULL ctx state");
  elman *bad = NULL;
  if (elman_open("/nonexistent/w.safetensors", NULL, &bad) == 0 || bad) return fail("missing file opened");
  printf("missing file: %s\n", elman_last_error());
  const seqrt_model_desc *d = elman_descriptor();
  printf("descriptor: %s, %d inputs, %d params, %d outputs, symbols %s %s\n", d->name, d->n_inputs,
         d->n_params, d->n_outputs, d->symbols[0], d->symbols[1]);
  elman_ctx_free(c);
  elman_close(m);
  printf("ok\n");
  return 0;
}
