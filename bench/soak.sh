#!/usr/bin/env bash
# Soak (issue 11, item 12): RUNS (default 1000) runs of the release binary, PARALLEL (default 4) at
# a time so that runs interleave, with a mix of endings, each on the host view and/or a busybox
# --rootfs: exit 0, exit 3, a signal (a fault; kill -USR1 behind --init), OOM under --mem 16M, a
# fork bomb under --pids 10, --timeout 200ms, SIGTERM to sandbox, SIGINT to sandbox twice, SIGKILL
# of sandbox at a random moment (then `sandbox gc`), --init runs. Signals land at random moments,
# half of them around the command's end (sandbox's report and cleanup).
# The summary (bench/soak.py) gives runs per kind, endings seen against those expected, reports
# written (each must parse as JSON and agree with the exit status; a SIGKILLed sandbox need not
# write one), and what was left behind: cgroups sandbox-*-<pid> of our sandbox pids in any
# hierarchy, new mounts in this (the host's) mount namespace, processes carrying the soak's marker,
# files left in the rootfs, TMPDIR, the image store or the report directory. Exits non-zero on any
# leftover or unexpected ending. It removes what it made (target/soak.*) unless KEEP=1.
# Needs root. Env: RUNS, PARALLEL, SEED (replays a mix), SANDBOX_BIN (default
# the release build, built if missing), KEEP.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (namespaces, cgroups)" >&2; exit 1; }

. bench/common.sh
bench_setup
mkdir -p target
work=$(mktemp -d "$PWD/target/soak.XXXXXX")
cleanup() {
  # Never recurse into a mount a bug may have left below the work directory.
  if grep -q " ${work}[/ ]" /proc/self/mountinfo; then
    echo "soak.sh: mounts left below $work; not removing it" >&2
  elif [ -z "${KEEP:-}" ]; then
    rm -rf --one-file-system "$work"
  else
    echo "soak.sh: kept $work" >&2
  fi
}
trap cleanup EXIT
bench_rootfs "$work/rootfs"

SANDBOX_BIN=$bin SOAK_ROOTFS=$work/rootfs SOAK_WORK=$work RUNS=${RUNS:-1000} PARALLEL=${PARALLEL:-4} \
  python3 bench/soak.py
