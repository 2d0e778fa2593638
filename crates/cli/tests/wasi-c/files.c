/* Reads a file, writes and appends to a new one, walks a directory tree (sorted) and removes
 * what it made: the WASI file system calls C programs use most. ./files ROOT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(const char *path, int depth) {
  DIR *d = opendir(path);
  if (!d) { printf("opendir %s: %s\n", path, strerror(errno)); exit(3); }
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  for (int i = 0; i < n; i++) {
    char full[512];
    snprintf(full, sizeof full, "%s/%s", path, names[i]);
    struct stat st;
    if (stat(full, &st)) { printf("stat %s: %s\n", full, strerror(errno)); exit(4); }
    if (S_ISDIR(st.st_mode)) {
      printf("%*s%s/\n", depth * 2, "", names[i]);
      walk(full, depth + 1);
    } else {
      printf("%*s%s %lld\n", depth * 2, "", names[i], (long long)st.st_size);
    }
    free(names[i]);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: files ROOT\n"); return 2; }
  const char *root = argv[1];
  char path[512];

  snprintf(path, sizeof path, "%s/input.txt", root);
  FILE *f = fopen(path, "r");
  if (!f) { printf("fopen %s: %s\n", path, strerror(errno)); return 1; }
  char line[256];
  int lines = 0;
  long sum = 0;
  while (fgets(line, sizeof line, f)) { lines++; sum += strlen(line); }
  fclose(f);
  printf("input.txt: %d lines, %ld bytes\n", lines, sum);

  snprintf(path, sizeof path, "%s/out/new.txt", root);
  mkdir(path, 0755) ; /* fails: parent missing */
  snprintf(path, sizeof path, "%s/out", root);
  if (mkdir(path, 0755)) { printf("mkdir: %s\n", strerror(errno)); return 1; }
  snprintf(path, sizeof path, "%s/out/new.txt", root);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) { printf("open: %s\n", strerror(errno)); return 1; }
  write(fd, "hello ", 6);
  close(fd);
  f = fopen(path, "a");
  fputs("world\n", f);
  fclose(f);
  f = fopen(path, "r");
  fgets(line, sizeof line, f);
  fclose(f);
  printf("new.txt: %s", line);

  printf("tree:\n");
  walk(root, 1);

  unlink(path);
  snprintf(path, sizeof path, "%s/out", root);
  if (rmdir(path)) { printf("rmdir: %s\n", strerror(errno)); return 1; }
  snprintf(path, sizeof path, "%s/missing.txt", root);
  printf("missing.txt: %s\n", fopen(path, "r") ? "found" : strerror(errno));
  return 0;
}
