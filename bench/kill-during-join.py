#!/usr/bin/env python3
"""Stress: SIGKILL sandbox (or its whole process group) at random moments in a run's first
milliseconds, so that many kills land while the child is still joining its cgroup (on v1 it
writes 0 to each hierarchy's `tasks` file itself). Guards the v1 self-join against the soft
lockup the legacy VM lane (Debian 6.1) hit once. Needs root.

    bench/kill-during-join.py [--bin B] [--seconds S | --iterations N]

At each kill it classifies where the child was (from /proc: no child yet, before the join, in
some of its groups, in all of them but not exec'd, exec'd) and prints the counts. A run that does
not end within HANG seconds after the kill is a hang: it dumps the stuck tasks' kernel stacks
(and asks sysrq for all CPUs' backtraces) and exits 1. Ends with `sandbox gc` and checks that no
group of ours is left. Exit 0 when nothing hung and dmesg shows no new lockup.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HANG = 20.0
JOINED = [0]  # the most of its hierarchies a child was seen in: "all of them"


def busybox_rootfs():
    bb = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    if bb is None:
        sys.exit("kill-during-join: SKIPPED: busybox-static is not installed")
    t = tempfile.mkdtemp(prefix="kdj-root.")
    os.chmod(t, 0o755)
    for d in ("bin", "proc", "sys", "dev", "tmp"):
        os.mkdir(os.path.join(t, d))
    shutil.copy(bb, os.path.join(t, "bin", "busybox"))
    names = subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split()
    for n in names:
        if n != "busybox":
            os.symlink("busybox", os.path.join(t, "bin", n))
    return t


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def children(pid):
    c = read(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in c.split()] if c else []


def where(pid, run_id):
    """Where sandbox's child is right now."""
    kids = children(pid)
    if not kids:
        return "no-child"
    child = kids[0]
    comm = (read(f"/proc/{child}/comm") or "").strip()
    if comm and comm != (read(f"/proc/{pid}/comm") or "").strip():
        return "exec'd"
    cg = read(f"/proc/{child}/cgroup")
    if cg is None:
        return "no-child"
    # v1 hierarchies with controllers (not name=systemd, not the v2 line "0::/...").
    lines = [l for l in cg.splitlines() if l.split(":")[1] and not l.split(":")[1].startswith("name=")]
    inside = sum(1 for l in lines if "sandbox-" in l)
    JOINED[0] = max(JOINED[0], inside)
    if inside == 0:
        return "pre-join"
    if inside < JOINED[0]:
        return "mid-join"
    return "joined"


def ours():
    out = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", "sandbox-*"],
                         capture_output=True, text=True).stdout
    return out.split()


def dmesg_lockups():
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "soft lockup" in l or "hung_task" in l or "blocked for more" in l
            or "rcu_sched self-detected stall" in l or "BUG:" in l]


def dump(pid):
    print(f"HANG: sandbox {pid} did not end {HANG:.0f} s after SIGKILL", flush=True)
    for p in [pid] + children(pid):
        for t in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            print(f"--- task {t} ({(read(f'/proc/{p}/task/{t}/comm') or '').strip()}) state:",
                  (read(f"/proc/{p}/task/{t}/stat") or "").split(")")[-1].split()[:1],
                  "wchan:", read(f"/proc/{p}/task/{t}/wchan"))
            print(read(f"/proc/{p}/task/{t}/stack"), flush=True)
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("l")
        time.sleep(1)
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("w")
    except OSError as e:
        print("sysrq:", e)
    time.sleep(2)
    print("\n".join(subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()[-200:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "debug", "sandbox"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--iterations", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int(time.time())
    rng = random.Random(seed)
    root = busybox_rootfs()
    limits = ["--mem", "64M", "--pids", "20"]
    modes = [
        (limits, ["--user", "65534", "--rootfs", root, "true"]),
        (limits, ["--user", "65534", "/bin/true"]),
        (limits + ["--cpus", "0.5"], ["--init", "--user", "65534", "--rootfs", root, "sleep", "1"]),
        (limits, ["/bin/true"]),
        ([], ["--user", "65534", "--rootfs", root, "sleep", "1"]),
    ]
    before = set(dmesg_lockups())
    groups_before = set(ours())
    # Calibrate: how long a whole run takes here (TCG is ~30x slower than the host).
    spans = []
    for g, r in modes * 2:
        if r[-1] == "true":
            t0 = time.monotonic()
            subprocess.run([a.bin, "--report", "none"] + g + ["run"] + r, stdout=subprocess.DEVNULL)
            spans.append(time.monotonic() - t0)
    span = sorted(spans)[len(spans) // 2]
    print(f"kill-during-join: seed {seed}, a run of true takes {span * 1000:.1f} ms here", flush=True)
    counts = {}
    pids = set()
    n = 0
    end = time.monotonic() + a.seconds
    try:
        while (a.iterations and n < a.iterations) or (not a.iterations and time.monotonic() < end):
            g, r = rng.choice(modes)
            # Mostly early: the join happens in the first third of a run.
            delay = rng.uniform(0, span / 3) if rng.random() < 0.8 else rng.uniform(0, span)
            group = rng.random() < 0.3
            p = subprocess.Popen([a.bin, "--report", "none"] + g + ["run"] + r, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            if rng.random() < 0.7:
                # From the moment the child exists: the join is within the next ~half of the run.
                delay = rng.uniform(0, span / 2)
                limit = time.monotonic() + span * 3
                while not children(p.pid) and time.monotonic() < limit:
                    pass
            pids.add(str(p.pid))
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                pass
            at = where(p.pid, None)
            if group:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                os.kill(p.pid, signal.SIGKILL)
            key = ("pg:" if group else "") + at
            counts[key] = counts.get(key, 0) + 1
            try:
                p.wait(timeout=HANG)
            except subprocess.TimeoutExpired:
                dump(p.pid)
                sys.exit(1)
            n += 1
            if n % 100 == 0:
                new = set(dmesg_lockups()) - before
                print(f"  {n} kills: {dict(sorted(counts.items()))}", flush=True)
                if new:
                    print("NEW KERNEL COMPLAINTS:\n" + "\n".join(sorted(new)))
                    sys.exit(1)
    finally:
        # The children die with their parent (die-with-parent); give them a moment, then collect.
        time.sleep(0.5)
        subprocess.run([a.bin, "gc"], stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
    new = set(dmesg_lockups()) - before
    joinwin = sum(v for k, v in counts.items() if k.split(":")[-1] in ("pre-join", "mid-join", "joined"))
    print(f"kill-during-join: {n} kills, {joinwin} with the child not yet exec'd after its clone: "
          f"{dict(sorted(counts.items()))}")
    # Groups of our runs still there (a group's name ends in its sandbox's pid).
    time.sleep(1)
    left = {g for g in set(ours()) - groups_before if g.rsplit("-", 1)[-1] in pids}
    if left:
        print("LEFTOVER GROUPS:", sorted(left))
    if new:
        print("NEW KERNEL COMPLAINTS:\n" + "\n".join(sorted(new)))
    sys.exit(1 if new or left else 0)


if __name__ == "__main__":
    main()
