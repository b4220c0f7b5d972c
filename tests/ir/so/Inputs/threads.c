/* Thread pools per context: num_threads = 1 starts no thread, n starts
 * n - 1 workers that end with the ctx; SEQRT_NUM_THREADS is the default
 * for num_threads = 0. Prints the thread counts of this process. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "elman.h"

static int threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static int with(elman *m, const char *what) {
  elman_ctx *c = NULL;
  if (elman_ctx_new(m, 2, 8, &c)) {
    printf("%s: %s\n", what, elman_last_error());
    return 1;
  }
  printf("%s: %d threads\n", what, threads());
  elman_ctx_free(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int counts[] = {1, 3};
  for (int i = 0; i < 2; i++) {
    seqrt_options opt = {sizeof opt, counts[i], 0};
    elman *m = NULL;
    if (elman_open(argv[1], &opt, &m)) return printf("open: %s\n", elman_last_error()), 1;
    char what[64];
    snprintf(what, sizeof what, "num_threads %d", counts[i]);
    if (with(m, what)) return 1;
    elman_close(m);
  }
  elman *m = NULL;
  if (elman_open(argv[1], NULL, &m) || with(m, "default")) return 1;
  elman_close(m);
  printf("after: %d threads\n", threads());
  seqrt_options bad = {sizeof bad, 1025, 0};
  if (elman_open(argv[1], &bad, &m) == 0) return 1;
  printf("1025: %s\n", elman_last_error());
  return 0;
}
