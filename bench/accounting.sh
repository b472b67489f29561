#!/usr/bin/env bash
# Accounting benchmark (issue 13, item 7): one run, side by side, of sandbox, BenchExec's runexec
# (PyPI benchexec, installed into a venv under target/bench/) and /usr/bin/time -v on workloads
# with a known truth (bench/accounting.c):
#   a 1- and a 2-thread CPU burner and a tree of 12 processes (truth: their own getrusage),
#   allocations of 8/64/256 MiB touching every page (truth: the size + the tool's runtime),
#   64 MiB written with fsync to a directory on disk (truth: 64 MiB),
# then --cpu-time 1s overshoot (sandbox and runexec --timelimit), the --cpus share for
# 0.25/0.5/1.0/1.5, and the sampling overhead once --samples exists. Prints Markdown tables.
# Targets: CPU within 1%, memory within 2 MiB, io within 1%, overshoot <= 50 ms, share within 2%,
# sampling < 0.5%. Needs root (cgroups; runexec uses v1 on a hybrid host). Run it on a quiet machine.
# Env: SANDBOX_BIN (default the release build, built if missing), RUNS (cpu-time runs, 3),
#      NO_RUNEXEC=1 to leave runexec out.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m target/bench)
mkdir -p "$out"

. bench/common.sh
bench_setup time strace python3-venv gcc

# The workloads, built here; the work directory is on the same disk as the checkout (never /tmp,
# a tmpfs on many hosts, which the io row needs to be a disk).
work=$out/accounting
mkdir -p "$work"
gcc -O2 -Wall -pthread -o "$work/load" bench/accounting.c

runexec=
if [ -z "${NO_RUNEXEC:-}" ]; then
  venv=$out/venv
  [ -x "$venv/bin/runexec" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q benchexec; }
  runexec=$venv/bin/runexec
  echo "runexec: $("$runexec" --version)" >&2
fi

echo "# Accounting benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 bench/accounting.py "$bin" "$runexec" "$work/load" "$work"
