/* nm.sqir's state is floordiv(64, B) floats: larger at B = 1 than at the
 * ctx's maximum B = 64, so reset(1) must be refused, not overflow. */
#include <stdio.h>

#include "nm.h"

int main(void) {
  nm *m = NULL;
  nm_ctx *c = NULL;
  const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  if (nm_open_memory(empty, sizeof empty, NULL, &m) || nm_ctx_new(m, 64, 4, &c)) {
    printf("setup: %s\n", nm_last_error());
    return 1;
  }
  if (nm_reset(c, 1) == 0) return 1;
  printf("reset(1): %s\n", nm_last_error());
  static float x[4 * 64], h0[64], h[64], ys[4 * 64];
  printf("step_n: %d\n", nm_step_n(c, 2, x, h0, h, ys));
  nm_ctx_free(c);
  nm_close(m);
  return 0;
}
