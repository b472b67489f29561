/* stacked PROG K N: installs the classic-BPF program in file PROG K times on itself (K=0: none),
 * then prints the median over 7 rounds of N calls, in ns per call, of calls the kernel's seccomp
 * action cache cannot skip (their verdict depends on arguments, or is not "allow") and of
 * getppid (which it can). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double bench(long n, long nr, unsigned long a0) {
  double r[7];
  for (int k = 0; k < 7; k++) {
    double t0 = now();
    for (long i = 0; i < n; i++) syscall(nr, a0, 0, 0, 0);
    r[k] = (now() - t0) / n;
  }
  qsort(r, 7, sizeof r[0], cmp);
  return r[3];
}
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int k = atoi(argv[2]);
  long n = atol(argv[3]);
  static struct sock_filter f[4096];
  FILE *in = fopen(argv[1], "rb");
  if (!in) { perror(argv[1]); return 1; }
  struct sock_fprog p = { .len = fread(f, sizeof f[0], 4096, in), .filter = f };
  fclose(in);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  for (int i = 0; i < k; i++)
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p)) { perror("seccomp"); return 1; }
  printf("getppid %.1f personality(query) %.1f quotactl_fd(-1) %.1f nr1000 %.1f socket(-1) %.1f\n",
         bench(n, SYS_getppid, 0), bench(n, SYS_personality, 0xffffffffUL), bench(n, 443, -1UL),
         bench(n, 1000, 0), bench(n, SYS_socket, -1UL));
  return 0;
}
