#!/usr/bin/env python3
"""Soak driver (bench/soak.sh sets it up): RUNS runs of sandbox, PARALLEL at a time, a mix of
endings, then a summary of exit codes against expectations, reports, and what was left behind.

Every run carries a marker unique to this soak and run: the command's $0 (or argv[1]) and the
SOAK_MARK variable, which sandbox and everything it starts inherit; leftover processes are
found by it in /proc/*/cmdline and /proc/*/environ. Cgroups are matched by the sandbox pids
this soak started (groups are named sandbox-<id>-<pid>).

Env (from soak.sh): SANDBOX_BIN, SOAK_ROOTFS, SOAK_WORK, RUNS, PARALLEL, SEED.
Exit status: 0 when every exit code was expected, every required report parsed and nothing was
left; 1 otherwise.
"""
import collections
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

BIN = os.environ["SANDBOX_BIN"]
ROOTFS = os.environ["SOAK_ROOTFS"]
WORK = os.environ["SOAK_WORK"]
RUNS = int(os.environ.get("RUNS", "1000"))
PARALLEL = int(os.environ.get("PARALLEL", "4"))
SEED = int(os.environ.get("SEED") or time.time_ns() % 1_000_000)
TOKEN = f"soak{os.getpid()}t{time.time_ns() % 10**9}"
REPORTS = os.path.join(WORK, "reports")
TMP = os.path.join(WORK, "tmp")
STORE = os.path.join(WORK, "store")
LIMITS = ["--mem", "64M", "--cpus", "0.5", "--pids", "20"]
RUN_TIMEOUT = 60.0  # a run that takes longer is a hang: killed and counted as unexpected

rng = random.Random(SEED)
lock = threading.Lock()
stopping = threading.Event()
started_pids = set()  # every sandbox pid (their groups carry it)
running = {}  # pid -> Popen, to kill on ^C


def sh(variant, script, mark):
    """argv of `sh -c SCRIPT MARK` on the host, or the rootfs' busybox sh."""
    if variant == "rootfs":
        return ["run", "--rootfs", ROOTFS, "/bin/sh", "-c", script, mark]
    return ["run", "sh", "-c", script, mark]


# kind -> (variants, builder(variant, mark) -> (sandbox args, expected endings, how)).
# An ending is an exit status (int) or "SIGn" (sandbox itself killed by signal n).
# how: None, or (signal(s), delay range, "ready"|"spawn") to send to sandbox.
def k_exit0(v, m):
    return LIMITS + sh(v, "exit 0", m), {0}, None


def k_exit3(v, m):
    return LIMITS + sh(v, "exit 3", m), {3}, None


def k_signal(v, m):
    if v == "init":  # PID 1 cannot signal itself to death; behind --init the command can.
        return ["run", "--init", "sh", "-c", "kill -USR1 $$", m], {128 + signal.SIGUSR1}, None
    # A real fault is forced even on PID 1.
    return ["run", "python3", "-c", "import ctypes; ctypes.string_at(0)", m], {128 + signal.SIGSEGV}, None


def k_oom(v, m):
    return ["--mem", "16M"] + sh(v, "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null", m), {137}, None


def k_forkbomb(v, m):
    # 2: the shell itself could not fork `sleep` under the limit ("Cannot fork"); either way
    # the report must show forks refused.
    return ["--pids", "10", "--timeout", "30s"] + sh(v, "b(){ b|b& }; b 2>/dev/null; sleep 1", m), {0, 2}, None


def k_timeout(v, m):
    return ["--timeout", "200ms"] + LIMITS + sh(v, "sleep 5", m), {124}, None


def k_sigterm(v, m):
    # Without --init a shell that traps TERM is PID 1 (one without a handler ignores it). The
    # command ends at EOF on stdin, which the driver closes 0.3 s after "ready" or at once.
    if v == "init":
        args, ok = ["run", "--init", "sh", "-c", "echo ready; read x; exit 0", m], {0, 128 + signal.SIGTERM}
    else:
        args, ok = ["run", "sh", "-c", "trap 'exit 7' TERM; echo ready; read x; exit 0", m], {0, 7}
    return args, ok, ([signal.SIGTERM], "ready")


def k_sigint2(v, m):
    # 137: the second SIGINT reached sandbox before the command had exited and sandbox killed
    # everything at once (README: "a second SIGINT kills at once"); the report must then say
    # stopped.killed (checked below when the report has the key).
    if v == "init":
        args, ok = ["run", "--init", "sh", "-c", "echo ready; read x; exit 0", m], {0, 128 + signal.SIGINT, 137}
    else:
        args, ok = ["run", "sh", "-c", "trap 'exit 5' INT; echo ready; read x; exit 0", m], {0, 5, 137}
    return args, ok, ([signal.SIGINT, signal.SIGINT], "ready")


def k_sigkill(v, m):
    return LIMITS + sh(v, "echo ready; sleep 0.3", m), {"SIG9", 0}, ([signal.SIGKILL], "spawn")


def k_init(v, m):
    script = "sleep 0.05 & sleep 0.02 & (sleep 0.01 &) ; exit 0"
    a = sh(v, script, m)
    return LIMITS + a[:1] + ["--init"] + a[1:], {0}, None


KINDS = {
    "exit0": (["host", "rootfs"], k_exit0),
    "exit3": (["host", "rootfs"], k_exit3),
    "signal": (["host", "init"], k_signal),
    "oom": (["host", "rootfs"], k_oom),
    "forkbomb": (["host", "rootfs"], k_forkbomb),
    "timeout": (["host", "rootfs"], k_timeout),
    "sigterm": (["host", "init"], k_sigterm),
    "sigint2": (["host", "init"], k_sigint2),
    "sigkill": (["host", "rootfs"], k_sigkill),
    "init": (["host", "rootfs"], k_init),
}


def ending(code):
    return f"SIG{-code}" if code < 0 else code


def scan_procs(needle):
    """pid -> cmdline of every process whose argv or environment holds `needle`."""
    found = {}
    b = needle.encode()
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
            env = b""
            if b not in cmd:
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read()
            if b in cmd or b in env:
                found[int(d)] = cmd.replace(b"\0", b" ").decode(errors="replace").strip() or f"[pid {d}]"
        except OSError:
            pass
    return found


def our_groups(pids):
    """cgroup directories named sandbox-*-PID for a PID of ours, in any hierarchy."""
    suffixes = {f"-{p}" for p in pids}
    found, other = [], 0
    stack = [("/sys/fs/cgroup", 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                continue
            if e.name.startswith("sandbox-"):
                if any(e.name.endswith(s) for s in suffixes):
                    found.append(e.path)
                else:
                    other += 1
            if depth < 6:
                stack.append((e.path, depth + 1))
    return found, other


def mounts():
    with open("/proc/self/mountinfo") as f:
        rows = [l.split() for l in f]
    # mount point, fs type, source (after the " - " separator)
    return collections.Counter((r[4], r[r.index("-") + 1], r[r.index("-") + 2]) for r in rows)


def tree(root):
    out = set()
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            out.add(os.path.relpath(os.path.join(dp, n), root))
    return out


def run_one(i, kind, variant):
    mark = f"{TOKEN}-{i}"
    args, expected, how = KINDS[kind][1](variant, mark)
    rf = os.path.join(REPORTS, f"{i}.json")
    cmd = [BIN, "--report", "none", "--report-file", rf] + args
    env = dict(os.environ, SOAK_MARK=mark, TMPDIR=TMP, SANDBOX_ROOT=STORE)
    r = {"i": i, "kind": kind, "variant": variant, "expected": expected, "problems": [], "note": ""}
    if stopping.is_set():
        r["skipped"] = True
        return r
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if how else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    with lock:
        started_pids.add(p.pid)
        running[p.pid] = p
    r["pid"] = p.pid
    if how:
        sigs, start = how
        if start == "ready":
            line = p.stdout.readline()  # the command's "ready": it is running
            if line.strip() != b"ready":
                r["problems"].append(f"no 'ready' from the command (got {line!r})")
            if rng.random() < 0.5:
                # Anywhere in the run (EOF on stdin ends the command 0.3 s after ready).
                d, eof, how_s = rng.uniform(0, 0.35), 0.3, "after ready"
            else:
                # At its end: EOF on stdin ends the command now, the signal follows within 4 ms,
                # while sandbox reaps, reads the counters, removes the group, writes the report.
                d, eof, how_s = rng.uniform(0, 0.004), 0.0, "after the command's end (stdin EOF)"
        else:
            # SIGKILL: half in the first 10 ms (setup: clone, mounts, cgroups), half anywhere.
            d = rng.uniform(0, 0.01) if rng.random() < 0.5 else rng.uniform(0, 0.4)
            how_s = "after spawn"
        if start == "ready" and eof <= d:
            time.sleep(eof)
            p.stdin.close()
            time.sleep(d - eof)
        else:
            time.sleep(d)
        r["note"] = f"{'+'.join(x.name for x in sigs)} {d * 1000:.1f} ms {how_s}"
        for n, s in enumerate(sigs):
            if n:
                time.sleep(rng.uniform(0, 0.005))  # a second ^C, quickly
            try:
                os.kill(p.pid, s)  # our unreaped child: the pid cannot have been reused
            except ProcessLookupError:
                pass
    if p.stdin and not p.stdin.closed:
        if how[1] == "ready":
            time.sleep(max(0.0, eof - d))  # the rest of the command's 0.3 s
        p.stdin.close()
    p.stdin = None
    try:
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        r["problems"].append(f"hung: killed after {RUN_TIMEOUT:.0f} s")
    with lock:
        running.pop(p.pid, None)
    r["wall"] = time.monotonic() - t0
    r["ending"] = ending(p.returncode)
    if r["ending"] not in expected:
        r["problems"].append(f"ended with {r['ending']}, expected {sorted(map(str, expected))}")
    err = err.decode(errors="replace").strip()
    if err and kind not in ("forkbomb",):
        r["stderr"] = err[-300:]

    # The report: required unless sandbox was SIGKILLed; if present it must parse and agree.
    rep = None
    if os.path.exists(rf):
        try:
            with open(rf) as f:
                rep = json.load(f)
        except (OSError, ValueError) as e:
            if p.returncode < 0:
                # sandbox creates the file before the run and writes it after: a killed sandbox
                # leaves it empty. Allowed after SIGKILL, noted; any other signal is a problem below.
                r["stale_report"] = os.path.getsize(rf)
            else:
                r["problems"].append(f"report does not parse: {e}")
    r["report"] = rep is not None
    killed = isinstance(r["ending"], str)
    if rep is None and not killed:
        r["problems"].append("no report")
    elif rep is None and r["ending"] != "SIG9":
        r["problems"].append(f"sandbox killed by {r['ending']}: no report"
                             + (" (an empty --report-file)" if r.get("stale_report") == 0 else ""))
    if rep is not None:
        if not killed and rep.get("exit_code") != p.returncode:
            r["problems"].append(f"report exit_code {rep.get('exit_code')} != {p.returncode}")
        if kind == "oom" and not rep.get("oom_killed"):
            r["problems"].append("report: oom_killed is not true")
        if kind == "forkbomb" and not (rep.get("pids") or {}).get("limit_hits"):
            r["problems"].append("report: no pids.limit_hits")
        if kind == "timeout" and not rep.get("timed_out"):
            r["problems"].append("report: timed_out is not true")
        if kind == "sigint2" and p.returncode == 137 and "stopped" in rep:
            if not (rep["stopped"] or {}).get("killed"):
                r["problems"].append(f"exit 137 but the report's stopped is {rep['stopped']}")

    if killed:
        # sandbox died without its cleanup: the command dies by PR_SET_PDEATHSIG, then gc
        # removes the empty group. Groups still there right after one gc are noted (a later gc,
        # at the end, must get them).
        subprocess.run([BIN, "gc"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        g, _ = our_groups([p.pid])
        if g:
            r["gc_left"] = len(g)
    # Processes of this run: gone now, or within 3 s (a pid namespace's teardown is async).
    end = time.monotonic() + 3
    while True:
        left = scan_procs(mark)
        if not left or time.monotonic() > end:
            break
        time.sleep(0.05)
    if left:
        r["problems"].append(f"processes alive 3 s after the run: {left}")
    if not killed:
        g, _ = our_groups([p.pid])
        if g:
            r["problems"].append(f"groups left: {g}")
    return r


def self_check():
    """The leftover checks must not be blind: while a run is up, its group and its processes
    must be found the way leftovers are."""
    mark = f"{TOKEN}-check"
    p = subprocess.Popen([BIN, "--report", "none"] + LIMITS + sh("host", "echo ready; read x", mark),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, SOAK_MARK=mark))
    started_pids.add(p.pid)
    ready = p.stdout.readline().strip() == b"ready"
    groups, _ = our_groups([p.pid])
    procs = scan_procs(mark)
    p.stdin.close()
    p.wait()
    ok = ready and groups and len(procs) >= 2
    if not ok:
        print(f"soak: self-check failed: ready={ready}, groups={groups}, processes={procs}: the leftover "
              "checks would be blind", file=sys.stderr)
    return ok


def main():
    for d in (REPORTS, TMP):
        os.makedirs(d, exist_ok=True)
    mounts0 = mounts()
    rootfs0 = tree(ROOTFS)
    try:
        own_ns = "the host" if os.readlink("/proc/self/ns/mnt") == os.readlink("/proc/1/ns/mnt") else "NOT the host's"
    except OSError:  # pid 1 of an outer container: its namespace cannot be compared
        own_ns = "this shell's"
    # An even mix: every kind and variant in turn, shuffled.
    combos = [(k, v) for k, (vs, _) in KINDS.items() for v in vs]
    plan = [combos[i % len(combos)] for i in range(RUNS)]
    rng.shuffle(plan)
    print(f"soak: {RUNS} runs, {PARALLEL} at a time, seed {SEED}, marker {TOKEN}, binary {BIN}", flush=True)
    if not self_check():
        return 1
    t0 = time.monotonic()
    results = []

    def on_signal(signum, _frame):
        stopping.set()
        with lock:
            for pid in list(running):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
        futs = [ex.submit(run_one, i, k, v) for i, (k, v) in enumerate(plan)]
        for n, f in enumerate(concurrent.futures.as_completed(futs), 1):
            r = f.result()
            results.append(r)
            if r["problems"]:
                print(f"  run {r['i']} {r['kind']}/{r['variant']}: {'; '.join(r['problems'])}"
                      + (f" [{r['note']}]" if r["note"] else ""), flush=True)
            if n % 100 == 0:
                print(f"  {n}/{RUNS} done, {time.monotonic() - t0:.0f} s", flush=True)
    elapsed = time.monotonic() - t0
    results = [r for r in results if not r.get("skipped")]

    # What is left, after a last gc.
    subprocess.run([BIN, "gc"], env=dict(os.environ, SANDBOX_ROOT=STORE), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    left_procs = scan_procs(TOKEN)
    left_groups, other_groups = our_groups(started_pids)
    m1 = mounts()
    new_mounts = list((m1 - mounts0).elements())
    gone_mounts = list((mounts0 - m1).elements())
    files = sorted(f"rootfs: {x}" for x in tree(ROOTFS) ^ rootfs0)
    files += sorted(f"TMPDIR: {x}" for x in tree(TMP))
    files += sorted(f"store: {x}" for x in tree(STORE)) if os.path.isdir(STORE) else []
    names = {f"{r['i']}.json" for r in results}
    files += sorted(f"reports: {x}" for x in os.listdir(REPORTS) if x not in names)

    print(f"\nsoak summary: {len(results)} runs in {elapsed:.1f} s ({PARALLEL} at a time, seed {SEED})")
    print(f"{'kind':<17}{'runs':>5}  {'endings seen':<34}{'expected':<16}{'reports':>9}  unexpected")
    by = collections.defaultdict(list)
    for r in results:
        by[(r["kind"], r["variant"])].append(r)
    bad = 0
    for (k, v), rs in sorted(by.items()):
        seen = collections.Counter(r["ending"] for r in rs)
        seen_s = " ".join(f"{e}×{c}" for e, c in sorted(seen.items(), key=lambda x: str(x[0])))
        exp = "|".join(map(str, sorted(rs[0]["expected"], key=str)))
        reports = sum(r["report"] for r in rs)
        nbad = sum(1 for r in rs if r["problems"])
        bad += nbad
        print(f"{k + '/' + v:<17}{len(rs):>5}  {seen_s:<34}{exp:<16}{reports:>4}/{len(rs):<4}  {nbad}")
    gc_late = [r for r in results if r.get("gc_left")]
    print(f"\nSIGKILLed sandboxes whose group survived the gc run right after: {len(gc_late)}"
          " (removed by a later gc unless listed below)"
          + "".join(f"\n  run {r['i']} {r['kind']}/{r['variant']} [{r['note']}]" for r in gc_late))
    stale = [r for r in results if "stale_report" in r]
    print(f"SIGKILLed sandboxes that left an unparseable --report-file: {len(stale)}"
          f" (sizes {sorted(collections.Counter(r['stale_report'] for r in stale).items())})")
    print("leftovers after the soak (and a last `sandbox gc`):")
    print(f"  cgroups sandbox-*-<our pid>: {len(left_groups)}" + "".join(f"\n    {g}" for g in left_groups))
    print(f"  mounts new in {own_ns} mount namespace: {len(new_mounts)}"
          + "".join(f"\n    {m}" for m in new_mounts))
    if gone_mounts:
        print(f"  (mounts gone since the start: {gone_mounts})")
    print(f"  processes with the soak's marker: {len(left_procs)}"
          + "".join(f"\n    {p}: {c[:120]}" for p, c in left_procs.items()))
    print(f"  files left (rootfs changes, TMPDIR, store, stray report files): {len(files)}"
          + "".join(f"\n    {x}" for x in files[:20]))
    print(f"  (other sandbox-* groups on this host, not ours: {other_groups})")
    print(f"unexpected runs: {bad} of {len(results)}")
    for r in sorted(results, key=lambda r: r["i"]):
        if r["problems"]:
            extra = f" [{r['note']}]" if r["note"] else ""
            if r.get("stderr"):
                extra += f" stderr: {r['stderr'][-160:]!r}"
            print(f"  run {r['i']} {r['kind']}/{r['variant']}: {'; '.join(r['problems'])}{extra}")

    # Clean up what is still ours: processes (by pid, found by the marker), then their groups.
    for pid in left_procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left_procs:
        time.sleep(0.5)
        subprocess.run([BIN, "gc"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leftovers = len(left_groups) + len(new_mounts) + len(left_procs) + len(files)
    ok = bad == 0 and leftovers == 0 and not stopping.is_set()
    print("soak: " + ("PASS" if ok else f"FAIL ({bad} unexpected runs, {leftovers} leftovers)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
