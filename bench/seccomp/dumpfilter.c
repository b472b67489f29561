/* dumpfilter PID OUT: writes the newest seccomp filter of process PID (struct sock_filter[]) to
 * OUT, through PTRACE_SECCOMP_GET_FILTER (needs CAP_SYS_ADMIN). */
#include <stdio.h>
#include <stdlib.h>
#include <linux/filter.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#define GET_FILTER 0x420c /* PTRACE_SECCOMP_GET_FILTER */

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int pid = atoi(argv[1]);
  if (ptrace(PTRACE_ATTACH, pid, 0, 0)) { perror("ptrace attach"); return 1; }
  waitpid(pid, 0, __WALL);
  long n = ptrace(GET_FILTER, pid, 0, 0);
  struct sock_filter *f = n > 0 ? calloc(n, sizeof *f) : 0;
  if (!f || ptrace(GET_FILTER, pid, 0, f) != n) { perror("PTRACE_SECCOMP_GET_FILTER"); return 1; }
  ptrace(PTRACE_DETACH, pid, 0, 0);
  FILE *o = fopen(argv[2], "wb");
  if (!o || fwrite(f, sizeof *f, n, o) != (size_t)n || fclose(o)) { perror(argv[2]); return 1; }
  return 0;
}
