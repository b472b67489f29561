#!/usr/bin/env bash
# Start-up profile (issue 11, item 13): where the wall time of one run goes, phase by phase,
# for sandbox (rootfs + limits, and host view) beside bwrap and unshare.
#
#   0. the cost of one cgroup v1 migration write, cgroup.procs against a task moving itself
#      through `tasks` (the RCU grace period; see below).
#   1. perf stat: CPU time (task-clock), page faults, context switches per run.
#   2. perf trace record (syscall tracepoints into a file, decoded afterwards: far less overhead
#      than live `perf trace`): RUNS runs of each, in two cadences, then bench/profile.py's
#      phase table (median and p90, µs):
#        gap   GAP seconds between runs (default 0.05): a run as a user starts one, alone;
#        b2b   back to back, as hyperfine runs them. The first cgroup migration of a run waits
#              for an RCU grace period (cgroup_threadgroup_rwsem's rcu_sync) unless another
#              migration passed one moments ago, so the two cadences differ by about one
#              grace period.
#   3. perf record -g (cycles, user and kernel) over RUNS back-to-back sandbox runs: top symbols.
# Needs root and linux-perf. Env: RUNS (default 50), GAP, SANDBOX_BIN. Output: target/bench/profile/.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
bench_setup bubblewrap linux-perf util-linux
out=$(realpath -m target/bench/profile)
mkdir -p "$out"
root=$(realpath -m target/bench/rootfs)
bench_rootfs "$root"
runs=${RUNS:-50}
gap=${GAP:-0.05}

declare -A cmd=(
  [sandbox]="$bin --report none --mem 64M --cpus 0.5 --pids 20 run --rootfs $root /bin/true"
  [bwrap]="bwrap --unshare-all --die-with-parent --bind $root / --proc /proc --dev /dev /bin/true"
  [host-view]="$bin --report none run /bin/true"
  [unshare]="unshare -fpmuin /bin/true"
)
kind() { case $1 in sandbox|host-view) echo sandbox ;; *) echo generic ;; esac; }

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; a busy machine stretches every wait)"
echo "== cgroup v1 migration, isolated (0.1 s apart): what one write costs ($runs each)"
# cgroup.procs takes cgroup_threadgroup_rwsem for writing: rcu_sync_enter() -> synchronize_rcu()
# unless a writer passed moments ago. A single-threaded task writing "0" (itself) to `tasks` takes
# no such lock (cgroup_procs_write_start: pid == 0 && !threadgroup).
python3 - "$runs" <<'PY'
import os, statistics, sys, time
n = int(sys.argv[1])
cg = [l.split(":")[2].strip() for l in open("/proc/self/cgroup") if l.split(":")[1] == "pids"]
if not cg or not os.path.isdir("/sys/fs/cgroup/pids"):
    sys.exit(print("  (no cgroup v1 pids hierarchy here)"))
d = ("/sys/fs/cgroup/pids" + cg[0]).rstrip("/")
for f in ("cgroup.procs", "tasks"):
    t = []
    for _ in range(n):
        time.sleep(0.1)
        t0 = time.perf_counter_ns()
        with open(f"{d}/{f}", "w") as fh:
            fh.write("0")
        t.append((time.perf_counter_ns() - t0) / 1e3)
    t.sort()
    print(f"  write '0' to {f:<13} median {statistics.median(t):7.0f} µs  p90 {t[len(t) * 9 // 10]:7.0f} µs")
PY

echo "== perf stat, $runs runs each (CPU time is what the processes used; elapsed includes waiting)"
for n in sandbox bwrap host-view unshare; do
  # shellcheck disable=SC2086
  perf stat -r "$runs" -e task-clock,page-faults,context-switches -- ${cmd[$n]} 2>&1 >/dev/null |
    awk -v n="$n" '/task-clock/ {c=$1} /page-faults/ {f=$1} /context-switches/ {s=$1}
                   /elapsed/ {printf "  %-10s cpu %6.2f ms  page faults %5s  context switches %3s  elapsed %6.2f ms\n", n, c, f, s, $1*1000}'
done

for cadence in gap b2b; do
  pause=$gap; [ $cadence = b2b ] && pause=0
  for n in sandbox bwrap host-view unshare; do
    data="$out/$n-$cadence.data"
    perf trace record -q -o "$data" -- sh -c "for i in \$(seq $runs); do ${cmd[$n]} >/dev/null; sleep $pause; done" 2>/dev/null && rm -f "$data.old"
    perf trace -i "$data" -o "$out/$n-$cadence.txt"
    echo "== $n, $cadence ($( [ $cadence = gap ] && echo "$gap s apart" || echo "back to back"))"
    python3 bench/profile.py "$out/$n-$cadence.txt" "$(kind $n)" | tail -n +2 || true
  done
done

echo "== perf record -g: sandbox, $runs runs back to back; top symbols (children excluded)"
# shellcheck disable=SC2086
perf record -q -F 20000 -g -o "$out/sandbox-cycles.data" -- sh -c "for i in \$(seq $runs); do ${cmd[sandbox]}; done" 2>/dev/null
perf report -i "$out/sandbox-cycles.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null |
  grep -E "^ +[0-9.]+%" | awk "NR <= 40"
