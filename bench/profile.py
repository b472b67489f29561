#!/usr/bin/env python3
"""Phase-by-phase start-up profile of one sandbox run against bwrap (bench/profile.sh runs it).

`perf trace` (syscall tracepoints) records RUNS runs of each command, GAP seconds apart, in one
shell loop; this script splits the trace by pid and measures, per run, the phases of item 13:
exec and dynamic loading, argument parsing, clone, cgroup detection, mkdir, limits, migration
(the first cgroup.procs write takes cgroup_threadgroup_rwsem for writing: an RCU grace period
unless one has just passed), the child's mounts, its wait for the parent, capabilities and
seccomp, exec, the command, the namespace teardown at its exit, the stats reads, rmdir and exit.
Prints the median and p90 of each, in µs.

usage: profile.py TRACE_FILE sandbox|bwrap|generic
"""
import collections
import re
import statistics
import sys

LINE = re.compile(r"^\s*([\d.]+|\?) \(\s*([\d.]*)\s*(?:ms)?\s*\): (\S+)/(\d+) (.*)$")


def parse(path):
    """pid -> [(start_ms, dur_ms or None, name, args_and_result)] in file order."""
    ev = collections.defaultdict(list)
    pending = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            ts, dur, _comm, pid, rest = m.groups()
            rest = rest.strip()
            pid = int(pid)
            cont = re.match(r"\.\.\. \[continued\]: (\w+)\(\)\)?\s*=?\s*(.*)", rest)
            if cont:
                # The end of a call that another event interrupted: fill in its duration.
                name = cont.group(1)
                if ts != "?" and dur and (pid, name) in pending:
                    i = pending.pop((pid, name))
                    s, _, n, a = ev[pid][i]
                    ev[pid][i] = (s, float(dur), n, a + " = " + cont.group(2))
                elif ts == "?":
                    ev[pid].append((None, None, name + ":cont", cont.group(2)))
                continue
            sm = re.match(r"(\w+)\((.*)", rest)
            if not sm:
                continue
            name = sm.group(1)
            d = float(dur) if dur else None
            ev[pid].append((float(ts) if ts != "?" else None, d, name, sm.group(2)))
            if d is None and rest.rstrip().endswith("..."):
                pending[(pid, name)] = len(ev[pid]) - 1
    return ev


def end(e):
    return e[0] + (e[1] or 0)


def first(evs, name, pred=lambda e: True, start=0):
    for i in range(start, len(evs)):
        if evs[i][2] == name and evs[i][0] is not None and pred(evs[i]):
            return i
    return None


def ret(e):
    """A call's numeric result, or None."""
    m = re.match(r"\s*(-?\d+)", e[3].rsplit("=", 1)[-1]) if "=" in e[3] else None
    return int(m.group(1)) if m else None


def child_of(evs):
    """The pid a clone returned."""
    for e in evs:
        if e[2] == "clone" and ret(e):
            return ret(e)
    return None


def sandbox_runs(ev):
    """Per run: phase -> µs. Runs are the pids whose first traced call is execve of sandbox
    followed by a namespaced clone."""
    runs = []
    shells = [p for p, evs in ev.items() if any(e[2] == "wait4" for e in evs) and not any(
        e[2] == "clone" and "NEWNS" in e[3] for e in evs)]
    reaped = {}
    for p in shells:
        for e in ev[p]:
            if e[2] == "wait4" and e[0] is not None and e[1] is not None and (ret(e) or 0) > 0:
                reaped[ret(e)] = end(e)
    for pid, evs in ev.items():
        ex = first(evs, "execve")
        cl = first(evs, "clone", lambda e: "NEWNS" in e[3])
        if ex is None or cl is None or evs[cl][1] is None:
            continue
        c = child_of(evs[cl:cl + 1])
        cev = ev.get(c, [])
        try:
            r = {}
            t_exec = evs[ex][0]
            main = first(evs, "poll", start=ex)  # std's stdio check: main() starts
            r["exec + ld.so + std init"] = evs[main][0] - t_exec
            r["args, config, seccomp build, pipes"] = evs[cl][0] - end(evs[main])
            r["clone (NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET)"] = evs[cl][1]
            mk = [i for i, e in enumerate(evs) if e[2] == "mkdir" and i > cl]
            r["cgroup detect (statfs, mountinfo, /proc/self/cgroup, readdir)"] = evs[mk[0]][0] - end(evs[cl])
            r["mkdir x4"] = end(evs[mk[-1]]) - evs[mk[0]][0]
            wr = [i for i, e in enumerate(evs) if e[2] == "write" and i > mk[-1]]
            sync = next(i for i in wr if "count: 1)" in evs[i][3] or evs[i][3].rstrip().endswith("count: 1"))
            mig = [i for i in wr if i < sync][-4:]
            lim = [i for i in wr if i < mig[0]]
            r["limits writes"] = (end(evs[lim[-1]]) if lim else evs[mig[0]][0]) - end(evs[mk[-1]])
            r["migration: 1st cgroup.procs write"] = evs[mig[0]][1] or 0
            r["migration: other 3 writes"] = end(evs[mig[-1]]) - end(evs[mig[0]])
            r["sync write to child"] = end(evs[sync]) - end(evs[mig[-1]])
            # Child
            cstart = next(e[0] for e in cev if e[0] is not None)
            rd = first(cev, "read", lambda e: "count: 1" in e[3])
            um = first(cev, "umount2")
            mounts = [e for e in cev if e[2] in ("mount", "mount_setattr") and e[1] is not None]
            r["child: mounts (sum of mount/mount_setattr)"] = sum(e[1] for e in mounts)
            r["child: umount2 old root (MNT_DETACH)"] = cev[um][1] if um is not None else 0
            r["child: setup before sync, total"] = cev[rd][0] - cstart
            r["child: blocked waiting for the parent"] = cev[rd][1] or 0
            cex = first(cev, "execve", start=rd)
            pr = [e for e in cev[rd:cex] if e[2] in ("prctl", "capset", "capget") and e[1] is not None]
            r["child: caps (prctl/capset calls, sum)"] = sum(e[1] for e in pr)
            r["child: prctl/capset calls (count)"] = len(pr)
            sc = [e for e in cev[rd:cex] if e[2] in ("prctl", "seccomp") and "SECCOMP" in e[3].upper()]
            r["child: seccomp load"] = sum(e[1] or 0 for e in sc)
            r["child: sync -> execve"] = cev[cex][0] - end(cev[rd])
            ceg = first(cev, "exit_group", start=cex)
            r["execve + /bin/true"] = cev[ceg][0] - cev[cex][0]
            w4 = first(evs, "wait4", lambda e: ret(e) == c)
            r["command exit -> reaped (ns teardown, SIGCHLD)"] = end(evs[w4]) - cev[ceg][0]
            rm = [i for i, e in enumerate(evs) if e[2] == "rmdir"]
            r["stats + cgroup.procs reads"] = evs[rm[0]][0] - end(evs[w4])
            r["rmdir x4"] = end(evs[rm[-1]]) - evs[rm[0]][0]
            eg = first(evs, "exit_group")
            r["report, free, exit_group"] = evs[eg][0] - end(evs[rm[-1]])
            if pid in reaped:
                r["exit_group -> shell's wait4 returns"] = reaped[pid] - evs[eg][0]
                r["TOTAL (execve -> reaped)"] = reaped[pid] - t_exec
        except (StopIteration, IndexError, TypeError):
            continue
        runs.append(r)
    return runs


def generic_runs(ev):
    """bwrap/unshare: exec -> clone -> the command's execve -> its exit -> reaped. The command is
    the process that execs inside the run's window (pids inside a new pid namespace are not
    resolved by perf trace, so clones cannot be followed)."""
    runs = []
    reaped = {}
    for evs in ev.values():
        for e in evs:
            if e[2] == "wait4" and e[0] is not None and e[1] is not None and (ret(e) or 0) > 0:
                reaped[ret(e)] = end(e)
    execs = []
    for p, evs in ev.items():
        i = first(evs, "execve")
        if i is not None:
            execs.append((evs[i][0], p, i))
    for pid, evs in ev.items():
        ex = first(evs, "execve")
        cl = first(evs, "clone", lambda e: "NEW" in e[3])
        if cl is None:  # unshare(1): unshare(2), then fork
            cl = first(evs, "unshare")
        if ex is None or cl is None or evs[cl][1] is None or pid not in reaped:
            continue
        inner = [(t, p, i) for t, p, i in execs if p != pid and evs[cl][0] < t < reaped[pid]]
        if not inner:
            continue
        t_cmd, cmd_pid, _ = min(inner)
        window = [e for p, es in ev.items() for e in es
                  if p != cmd_pid and e[0] is not None and evs[cl][0] <= e[0] <= t_cmd]
        r = {"exec + ld.so + init -> clone": evs[cl][0] - evs[ex][0], f"{evs[cl][2]} (namespaces)": evs[cl][1]}
        r["child: mounts (sum)"] = sum(e[1] or 0 for e in window if e[2] in ("mount", "mount_setattr"))
        r["child: umount2 (sum)"] = sum(e[1] or 0 for e in window if e[2] == "umount2")
        r["clone end -> command execve"] = t_cmd - end(evs[cl])
        ceg = first(ev[cmd_pid], "exit_group")
        r["execve + /bin/true"] = ev[cmd_pid][ceg][0] - t_cmd
        r["command exit -> top process reaped"] = reaped[pid] - ev[cmd_pid][ceg][0]
        r["TOTAL (execve -> reaped)"] = reaped[pid] - evs[ex][0]
        runs.append(r)
    return runs


def main():
    path, kind = sys.argv[1], sys.argv[2]
    ev = parse(path)
    runs = sandbox_runs(ev) if kind == "sandbox" else generic_runs(ev)
    if not runs:
        print(f"{kind}: no complete run found in {path}")
        return 1
    print(f"{kind}: {len(runs)} runs; µs, median and p90 (perf trace adds a few µs per call)")
    for k in runs[0]:
        v = sorted(r[k] for r in runs if k in r)
        scale = 1 if "count" in k else 1000
        print(f"  {k:<62} {statistics.median(v) * scale:9.0f} {v[len(v) * 9 // 10] * scale:9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
