// The floor under issue 11's host-view start-up target (item 13: host-view `sandbox run /bin/true`
// <= 1.5x `unshare -fpmuin /bin/true`): the least a program can do that meets item 3, in C, with
// nothing else. It makes the namespaces `unshare -fpmuin` makes plus a cgroup namespace (item 3's
// cgroupfs shows only the run's own group), forks, and in the child makes the mounts that item 3
// asks of the host view, one syscall each, as `sandbox run` makes them (strace of a host-view run,
// 2026-12-01; 43 calls): a fresh /proc with the masks docker applies, a fresh read-only /sys, the minimal
// /dev (tmpfs, six device binds, its own devpts, /dev/shm), the state root hidden, a read-only
// cgroupfs view per v1 hierarchy. Then it execs ARGV[1..]. What it leaves out that sandbox does:
// the run's cgroup (mkdir, limits, join, rmdir), the report, seccomp, capabilities, the loopback
// interface, the signal and fd hygiene: so a real sandbox can only be slower than this.
// With -c it also does the least of the cgroup work a report needs on a v1/hybrid host: a group
// below our own in each hierarchy sandbox uses (memory, cpu, cpuacct, pids, blkio), joined by the
// child (0 written to each `tasks`, as sandbox's child does), one read of memory.max_usage_in_bytes
// after the child has gone, then rmdir of each.
//
// Safety: every mount happens in the child's new mount namespace, after propagation is made
// private; nothing reaches the host's namespaces. Needs root. bench/hostview-floor.sh times it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
struct mount_attr {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static void die(const char *what, const char *path) {
    fprintf(stderr, "hostview-floor: %s %s: %s\n", what, path ? path : "", strerror(errno));
    _exit(125);
}

static void setattr(const char *path, unsigned flags, unsigned long long set, unsigned long long clr) {
    struct mount_attr a = {.attr_set = set, .attr_clr = clr};
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &a, sizeof a)) die("mount_setattr", path);
}

static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data) {
    if (mount(src, dst, type, fl, data)) die("mount", dst);
}

// A read-only bind of the file behind FD over DST (sandbox binds /dev/null over masked files).
static void bind_fd(int fd, const char *dst, unsigned long long set, unsigned long long clr) {
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    mnt(src, dst, NULL, MS_BIND, NULL);
    setattr(dst, 0, set, clr);
}

static const unsigned long long RO_ALL = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

static const char *CTL[] = {"memory", "cpu", "cpuacct", "pids", "blkio"};
static char groups[5][512];
// The parent's own group dirs and the memory group, opened before the child's mounts: parent and
// child share the new mount namespace, so after the child's cgroup view the paths lead elsewhere.
static int parents[5], memory_group;

// Our own group in hierarchy CTL from /proc/self/cgroup (v1 lines "N:ctl[,ctl]:/path").
static void own_group(const char *ctl, char *out, size_t n) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024];
    if (!f) die("open", "/proc/self/cgroup");
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':'), *p = c ? strchr(c + 1, ':') : NULL;
        if (!p) continue;
        *p = 0;
        p[strcspn(p + 1, "\n") + 1] = 0;
        char *tok, *save, *list = c + 1;
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (!strcmp(tok, ctl)) {
                snprintf(out, n, "%s", p + 1);
                fclose(f);
                return;
            }
    }
    fclose(f);
    errno = ENOENT;
    die("no v1 hierarchy for", ctl);
}

static void join_groups(void) {
    char path[1024];
    for (unsigned i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%.900s/tasks", groups[i]);
        int f = open(path, O_WRONLY | O_CLOEXEC);
        if (f < 0 || write(f, "0", 1) != 1) die("join", path);
        close(f);
    }
}

static void child(char **argv, int cgroups) {
    if (cgroups) join_groups();
    mnt(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    setattr("/", AT_RECURSIVE, MOUNT_ATTR_NODEV, 0);
    // /proc and /sys of the new pid and network namespaces.
    mnt("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (umount2("/sys", MNT_DETACH)) die("umount", "/sys");
    mnt("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    // Masks: files under /dev/null, directories under an empty tmpfs, the rest read-only.
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC | O_PATH);
    if (null < 0) die("open", "/dev/null");
    bind_fd(null, "/proc/keys", RO_ALL, 0);
    bind_fd(null, "/proc/timer_list", RO_ALL, 0);
    mnt("tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=555");
    mnt("tmpfs", "/sys/firmware", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=555");
    const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"};
    for (unsigned i = 0; i < sizeof ro / sizeof *ro; i++) {
        mnt(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL);
        setattr(ro[i], AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0);
    }
    mnt("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    // The minimal /dev: the six devices bound from the host's nodes (opened before the tmpfs hides
    // them), its own devpts instance, /dev/shm.
    const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
    int fds[6];
    char path[64];
    for (unsigned i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/dev/%s", devs[i]);
        if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC | O_PATH)) < 0) die("open", path);
    }
    mnt("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536");
    for (unsigned i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/dev/%s", devs[i]);
        int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f < 0) die("create", path);
        close(f);
        bind_fd(fds[i], path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NODEV);
    }
    if (mkdir("/dev/pts", 0755) || mkdir("/dev/shm", 01777)) die("mkdir", "/dev/pts, /dev/shm");
    mnt("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    if (symlink("pts/ptmx", "/dev/ptmx")) die("symlink", "/dev/ptmx");
    mnt("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=67108864");
    // The state root hidden (sandbox masks its own: SANDBOX_STATE_DIR, else /run/sandbox), when
    // there is one.
    struct stat st;
    const char *state = getenv("SANDBOX_STATE_DIR");
    if (!state || !*state) state = "/run/sandbox";
    if (stat(state, &st) == 0)
        mnt("tmpfs", state, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=555");
    // The cgroup view: a tmpfs and, in the new cgroup namespace, each v1 hierarchy sandbox shows
    // (the ones that carry limits or accounting), then all of it read-only.
    mnt("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536");
    for (unsigned i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s", CTL[i]);
        if (mkdir(path, 0755)) die("mkdir", path);
        mnt("cgroup", path, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, CTL[i]);
    }
    setattr("/sys/fs/cgroup", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0);
    execvp(argv[0], argv);
    die("exec", argv[0]);
}

int main(int argc, char **argv) {
    int cgroups = argc > 1 && !strcmp(argv[1], "-c");
    if (cgroups) argv++, argc--;
    if (argc < 2) {
        fprintf(stderr, "usage: hostview-floor [-c] CMD [ARG...]\n");
        return 125;
    }
    for (unsigned i = 0; cgroups && i < 5; i++) {
        char own[400];
        own_group(CTL[i], own, sizeof own);
        snprintf(groups[i], sizeof groups[i], "/sys/fs/cgroup/%s%s/floor-%d", CTL[i], own, getpid());
        if (mkdir(groups[i], 0755)) die("mkdir", groups[i]);
        char parent[1024];
        snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s%s", CTL[i], own);
        if ((parents[i] = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("open", parent);
    }
    if (cgroups && (memory_group = open(groups[0], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("open", groups[0]);
    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP))
        die("unshare", NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork", NULL);
    if (pid == 0) child(argv + 1, cgroups);
    int status;
    if (waitpid(pid, &status, 0) < 0) die("waitpid", NULL);
    if (cgroups) {
        char buf[64];
        int f = openat(memory_group, "memory.max_usage_in_bytes", O_RDONLY | O_CLOEXEC);
        if (f < 0 || read(f, buf, sizeof buf) < 0) die("read memory.max_usage_in_bytes of", groups[0]);
        close(f);
        for (unsigned i = 0; i < 5; i++)
            if (unlinkat(parents[i], strrchr(groups[i], '/') + 1, AT_REMOVEDIR)) die("rmdir", groups[i]);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
