#!/usr/bin/env python3
"""bench/accounting.sh's runner: the same workloads under sandbox, BenchExec's runexec and
/usr/bin/time -v, each figure beside the truth, then the issue 13 targets. Markdown on stdout.

argv: SANDBOX_BIN RUNEXEC|"" LOAD_BIN WORKDIR
"""
import json
import os
import re
import subprocess
import sys
import time

BIN, RUNEXEC, LOAD, WORK = sys.argv[1:5]
MIB = 1 << 20
RUNS = int(os.environ.get("RUNS", "3"))


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def keyvals(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def sandbox(args, flags=()):
    rf = os.path.join(WORK, "report.json")
    if os.path.exists(rf):
        os.unlink(rf)
    r = sh([BIN, "--report", "none", "--report-file", rf, *flags, "run", LOAD, *args])
    rep = json.load(open(rf))
    return keyvals(r.stdout), rep


runexec_error = None


def runexec(args, flags=()):
    """runexec in its default container mode: / read-only, /tmp and /home hidden, WORK writable."""
    global runexec_error
    if not RUNEXEC or runexec_error:
        return None, None
    out = os.path.join(WORK, "runexec.out")
    cmd = [RUNEXEC, "--read-only-dir", "/", "--hidden-dir", "/tmp", "--hidden-dir", "/home",
           "--full-access-dir", WORK, "--output", out, *flags, "--", LOAD, *args]
    r = sh(cmd)
    res = keyvals(r.stdout)
    if "cputime" not in res:
        runexec_error = (r.stdout + r.stderr).strip()
        return None, None
    text = open(out).read()
    return keyvals(text.split("-" * 80)[-1]), res


def gnu_time(args):
    r = sh(["/usr/bin/time", "-v", LOAD, *args])
    v = {}
    for line in r.stderr.splitlines():
        k, _, val = line.strip().rpartition(": ")
        v[k] = val
    return keyvals(r.stdout), v


def secs(s):
    """runexec's '1.234s'."""
    return float(s.rstrip("s")) if s else None


def pct(fig, truth):
    return None if fig is None or not truth else 100.0 * (fig - truth) / truth


def fmt_cpu(fig, truth):
    if fig is None:
        return "—"
    return f"{fig:.3f} s ({pct(fig, truth):+.2f}%)"


rows = []


def row(*cells):
    rows.append("| " + " | ".join(str(c) for c in cells) + " |")


def head(*cells):
    row(*cells)
    row(*["---"] * len(cells))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


# CPU: truth = the workload's own getrusage in the same run; each tool's figure against it.
print("## CPU time (truth: the workload's own getrusage, same run; target within 1%)\n", flush=True)
head("workload", "sandbox cpu.usage_s", "runexec cputime", "/usr/bin/time user+sys", "worst |error|")
for label, args in [("burn, 1 thread, 2 s", ["burn", "1", "2"]),
                    ("burn, 2 threads, 2 s each", ["burn", "2", "2"]),
                    ("tree of 12 processes, 0.25 s each", ["tree", "12", "0.25"])]:
    t, rep = sandbox(args)
    s = fmt_cpu(rep["cpu"]["usage_s"], float(t["cpu_s"]))
    errs = [abs(pct(rep["cpu"]["usage_s"], float(t["cpu_s"])))]
    t2, res = runexec(args)
    if res:
        errs.append(abs(pct(secs(res["cputime"]), float(t2["cpu_s"]))))
        r = fmt_cpu(secs(res["cputime"]), float(t2["cpu_s"])) + f", truth {float(t2['cpu_s']):.3f}"
    else:
        r = "—"
    t3, v = gnu_time(args)
    gt = float(v["User time (seconds)"]) + float(v["System time (seconds)"])
    errs.append(abs(pct(gt, float(t3["cpu_s"]))))
    row(label, s + f", truth {float(t['cpu_s']):.3f}", r, fmt_cpu(gt, float(t3["cpu_s"])) + f", truth {float(t3['cpu_s']):.3f}",
        f"{max(errs):.2f}%")
    if args[0] == "tree":
        procs = (t.get("procs"), rep["pids"]["peak"])
print("\n".join(rows) + "\n")
rows.clear()
print(f"Tree: the workload counted {procs[0]} processes; sandbox's pids.peak {procs[1]} "
      "(runexec and time report no process count; time's figure covers waited-for children).\n", flush=True)

# Memory: truth = the allocation + the tool's own peak for a run that allocates nothing.
print("## Memory peak (truth: allocation + the same tool's peak for `alloc 0`; target within 2 MiB)\n")
head("allocation", "sandbox memory.peak_bytes", "runexec memory", "/usr/bin/time max RSS")
base = {}
for mib in [0, 8, 64, 256]:
    _, rep = sandbox(["alloc", str(mib)])
    s = rep["memory"]["peak_bytes"]
    _, res = runexec(["alloc", str(mib)])
    r = int(res["memory"].rstrip("B")) if res else None
    _, v = gnu_time(["alloc", str(mib)])
    g = int(v["Maximum resident set size (kbytes)"]) * 1024
    if mib == 0:
        base = {"s": s, "r": r, "g": g}
        row("0 MiB (the runtime)", f"{s / MIB:.2f} MiB", f"{r / MIB:.2f} MiB" if r else "—", f"{g / MIB:.2f} MiB")
        continue

    def cell(fig, b):
        if fig is None or b is None:
            return "—"
        d = (fig - b - mib * MIB) / MIB
        return f"{fig / MIB:.2f} MiB ({d:+.2f} MiB)"

    row(f"{mib} MiB", cell(s, base["s"]), cell(r, base["r"]), cell(g, base["g"]))
print("\n".join(rows) + "\n")
rows.clear()

# io: 64 MiB written with fsync to a disk-backed directory.
print("## io: 64 MiB written and fsync'd to a directory on disk (truth 67108864 bytes; target within 1%)\n")
head("tool", "write bytes", "error")
f = os.path.join(WORK, "io.dat")
_, rep = sandbox(["write", "64", f])
w = rep["io"]["write_bytes"]
row("sandbox io.write_bytes", w if w is not None else "null (v1 blkio on this kernel: see README)",
    f"{pct(w, 64 * MIB):+.2f}%" if w is not None else "—")
_, res = runexec(["write", "64", f])
if res:
    b = res.get("blkio-write")
    bw = int(b.rstrip("B")) if b else None
    row("runexec blkio-write", b if b else "absent", f"{pct(bw, 64 * MIB):+.2f}%" if bw is not None else "—")
_, v = gnu_time(["write", "64", f])
g = int(v["File system outputs"]) * 512
row("/usr/bin/time file system outputs × 512", g, f"{pct(g, 64 * MIB):+.2f}%")
print("\n".join(rows) + "\n")
rows.clear()

# --cpu-time overshoot: two spinning threads against a 1 s budget.
print(f"## CPU-time limit: 1 s on two spinning threads, {RUNS} runs (target overshoot ≤ 50 ms; "
      "BenchExec documents ~1 s, isolate 100 ms)\n")
head("tool", "CPU time used", "overshoot (max)", "wall")
if "--cpu-time" in sh([BIN, "--help"]).stdout:
    used, walls = [], []
    for _ in range(RUNS):
        _, rep = sandbox(["spin", "2", "60"], ["--cpu-time", "1s"])
        assert rep["termination_reason"] == "cpu-time", rep["termination_reason"]
        used.append(rep["cpu"]["usage_s"])
        walls.append(rep["wall_time_s"])
    row("sandbox --cpu-time 1s", ", ".join(f"{u:.3f} s" for u in used), f"{(max(used) - 1) * 1000:+.0f} ms",
        f"{median(walls):.2f} s")
    polls = None
    if sh(["which", "strace"]).returncode == 0:
        so = os.path.join(WORK, "strace.txt")
        sh(["strace", "-c", "-e", "trace=poll", "-o", so, BIN, "--report", "none", "--cpu-time", "1s", "run", LOAD,
            "spin", "2", "60"])
        m = re.search(r"\s(\d+)(\s+\d+)?\s+poll$", open(so).read(), re.M)
        polls = m.group(1) if m else "?"
else:
    row("sandbox --cpu-time 1s", "not yet (no --cpu-time)", "", "")
if RUNEXEC and not runexec_error:
    used, walls = [], []
    for _ in range(RUNS):
        _, res = runexec(["spin", "2", "60"], ["--timelimit", "1"])
        if not res:
            break
        used.append(secs(res["cputime"]))
        walls.append(secs(res["walltime"]))
    if used:
        row("runexec --timelimit 1", ", ".join(f"{u:.3f} s" for u in used), f"{(max(used) - 1) * 1000:+.0f} ms",
            f"{median(walls):.2f} s")
print("\n".join(rows) + "\n")
rows.clear()
if polls:
    print(f"sandbox's event loop polled {polls} times in one such run (strace -c of sandbox itself).\n")

# --cpus share: two spinning threads for 3 s of wall time under each quota.
print("## --cpus share: two threads spinning 3 s (share = cpu.usage_s / wall_time_s; target within 2%;\n"
      "a share below the quota with few throttled periods means other load took the CPUs)\n")
head("--cpus", "share", "error", "throttled periods", "host load (1 min)")
for q in ["0.25", "0.5", "1.0", "1.5"]:
    _, rep = sandbox(["spin", "2", "3"], ["--cpus", q])
    share = rep["cpu"]["usage_s"] / rep["wall_time_s"]
    load = open("/proc/loadavg").read().split()[0]
    row(q, f"{share:.3f}", f"{pct(share, float(q)):+.2f}%", rep["cpu"]["throttled_periods"], load)
print("\n".join(rows) + "\n")
rows.clear()

# Sampling overhead (issue 13 item 3, another helper's flag). SAMPLING-OVERHEAD: sandbox's own
# CPU (wait4 of sandbox; the command sleeps) with and without --samples at the default 100 ms.
print("## Sampling overhead (target < 0.5% of one CPU at 100 ms)\n")
if "--samples" in sh([BIN, "--help"]).stdout:
    def own_cpu(flags):
        p = subprocess.Popen([BIN, "--report", "none", *flags, "run", "sleep", "10"])
        _, _, ru = os.wait4(p.pid, 0)
        return ru.ru_utime + ru.ru_stime
    sf = os.path.join(WORK, "samples.jsonl")
    without = own_cpu([])
    with_ = own_cpu(["--samples", sf])
    print(f"sandbox's own CPU over 10 s: {without * 1000:.1f} ms without, {with_ * 1000:.1f} ms with --samples: "
          f"overhead {(with_ - without) / 10 * 100:.3f}% of one CPU\n")
else:
    print("not yet (this build has no --samples)\n")

if runexec_error:
    print("runexec could not run here; its output:\n\n```\n" + runexec_error[-2000:] + "\n```")
