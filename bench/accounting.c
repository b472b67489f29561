/* Workloads with a known truth for bench/accounting.sh. Each prints its own truth on stdout as
 * key=value lines (CPU from its own getrusage, the one figure every tool is compared with).
 *
 *   burn THREADS SECS      each thread spins until its own CPU clock reaches SECS
 *   spin THREADS SECS      each thread spins for SECS of wall time (for --cpus and --cpu-time)
 *   alloc MIB              malloc MIB MiB and write to every page, then exit
 *   write MIB PATH         write MIB MiB to PATH in 1 MiB chunks, fsync, unlink
 *   tree N SECS            a tree of N processes (each forks up to 3), all alive together, each
 *                          burning SECS of CPU; the root reports the CPU of all of them
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double secs;

static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double rusage_s(int who) {
    struct rusage r;
    getrusage(who, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void *burn(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (clock_s(CLOCK_THREAD_CPUTIME_ID) < secs)
        for (int i = 0; i < 10000; i++) x++;
    return NULL;
}

static void *spin(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    double end = clock_s(CLOCK_MONOTONIC) + secs;
    while (clock_s(CLOCK_MONOTONIC) < end)
        for (int i = 0; i < 10000; i++) x++;
    return NULL;
}

static void threads(int n, void *(*f)(void *)) {
    pthread_t t[64];
    if (n > 64) n = 64;
    for (int i = 1; i < n; i++) pthread_create(&t[i], NULL, f, NULL);
    f(NULL);
    for (int i = 1; i < n; i++) pthread_join(t[i], NULL);
}

/* This process counts as one of n; the other n-1 go to up to 3 children, as evenly as possible. */
static void tree(int n, int sync_fd) {
    int rest = n - 1, kids = rest < 3 ? rest : 3;
    for (int k = 0; k < kids; k++) {
        int share = rest / (kids - k);
        rest -= share;
        if (fork() == 0) {
            tree(share, sync_fd);
            _exit(0);
        }
    }
    /* Everyone is alive before anyone burns: the peak is the whole tree. */
    if (write(sync_fd, "x", 1) != 1) _exit(1);
    usleep(200000);
    burn(NULL);
    while (wait(NULL) > 0) {}
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s burn|spin|alloc|write|tree ...\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "burn") || !strcmp(mode, "spin")) {
        secs = atof(argv[3]);
        threads(atoi(argv[2]), mode[0] == 'b' ? burn : spin);
        printf("cpu_s=%.6f\n", rusage_s(RUSAGE_SELF));
    } else if (!strcmp(mode, "alloc")) {
        size_t n = (size_t)atol(argv[2]) << 20;
        char *p = n ? malloc(n) : NULL;
        for (size_t i = 0; i < n; i += 4096) p[i] = 1;
        printf("alloc_bytes=%zu\n", n);
    } else if (!strcmp(mode, "write")) {
        size_t mib = (size_t)atol(argv[2]);
        static char buf[1 << 20];
        memset(buf, 'x', sizeof buf);
        int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) { perror(argv[3]); return 1; }
        for (size_t i = 0; i < mib; i++)
            if (write(fd, buf, sizeof buf) != sizeof buf) { perror("write"); return 1; }
        if (fsync(fd) != 0) { perror("fsync"); return 1; }
        close(fd);
        unlink(argv[3]);
        printf("write_bytes=%zu\n", mib << 20);
    } else if (!strcmp(mode, "tree")) {
        int n = atoi(argv[2]);
        secs = atof(argv[3]);
        int p[2];
        if (pipe(p)) return 1;
        tree(n, p[1]);
        close(p[1]);
        char buf[64];
        int seen = 0;
        ssize_t r;
        while ((r = read(p[0], buf, sizeof buf)) > 0) seen += r;
        printf("procs=%d\ncpu_s=%.6f\n", seen, rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN));
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
