/* Prints its arguments and the environment variables it is asked about, then exits with
 * the code given as its first argument. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  printf("argc %d\n", argc);
  for (int i = 1; i < argc; i++) printf("argv[%d] %s\n", i, argv[i]);
  const char *names[] = {"GREETING", "EMPTY", "MISSING"};
  for (int i = 0; i < 3; i++) {
    const char *v = getenv(names[i]);
    printf("%s %s\n", names[i], v ? v : "(unset)");
  }
  fflush(stdout);
  fprintf(stderr, "exiting with %s\n", argc > 1 ? argv[1] : "0");
  return argc > 1 ? atoi(argv[1]) : 0;
}
