/* Two models linked into one program: their symbols do not collide and each
 * computes its own result. usage: two_models ELMAN_WEIGHTS SUM_WEIGHTS */
#include <stdio.h>

#include "elman.h"
#include "running_sum.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  elman *e = NULL;
  running_sum *r = NULL;
  elman_ctx *ec = NULL;
  running_sum_ctx *rc = NULL;
  if (elman_open(argv[1], NULL, &e) || elman_ctx_new(e, 1, 3, &ec)) return 1;
  if (running_sum_open(argv[2], NULL, &r) || running_sum_ctx_new(r, 1, 3, &rc)) return 1;
  float x[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, h0[8] = {0}, h[8], ys[3 * 8];
  float total[4], partial[3 * 4];
  if (elman_forward(ec, 1, 3, x, h0, h, ys)) return 1;
  if (running_sum_forward(rc, 1, 3, x, total, partial)) return 1;
  printf("sum: %g %g %g %g\n", total[0], total[1], total[2], total[3]);
  printf("elman: %s %s\n", elman_descriptor()->name, running_sum_descriptor()->name);
  elman_ctx_free(ec);
  running_sum_ctx_free(rc);
  elman_close(e);
  running_sum_close(r);
  return 0;
}
