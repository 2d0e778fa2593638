/* Driver for the benchmark kernels of ../shared/bench/kernels as WASI programs:
 * ./kernel N -> prints run(N)'s checksum. */
#include <stdio.h>
#include <stdlib.h>

int run(int n);

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: kernel N\n"); return 2; }
  printf("result %d\n", run(atoi(argv[1])));
  return 0;
}
