#!/usr/bin/env bash
# The floor under issue 11's host-view target (item 13: `sandbox run /bin/true` <= 1.5x
# `unshare -fpmuin /bin/true`), in one hyperfine run: bench/hostview-floor.c makes the same
# namespaces plus a cgroup namespace and only the mounts item 3 asks of the host view, in C, with
# no cgroup, report, seccomp or anything else, then execs /bin/true; `floor-cg` (-c) adds the
# least cgroup work a report needs on this v1/hybrid host (a group per hierarchy, joined, one
# read, removed). Prints medians and the ratios floor/unshare and floor-cg/unshare (what no
# implementation of item 3 can beat), host-view/unshare (the target) and host-view/floor-cg (what
# sandbox adds over the floor). Needs root and gcc; -c needs a v1 or hybrid host.
# Env: RUNS (default 200), SANDBOX_BIN (default the release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

. bench/common.sh
bench_setup hyperfine util-linux gcc
# sandbox's state root (each run's record) in a temp dir removed at the end, not /run/sandbox;
# the floor hides that same directory, as sandbox does.
SANDBOX_STATE_DIR=$(mktemp -d)
export SANDBOX_STATE_DIR
trap 'rm -rf "$SANDBOX_STATE_DIR"' EXIT
gcc -O2 -Wall -o "$out/hostview-floor" bench/hostview-floor.c
floor=$(realpath "$out/hostview-floor")
"$floor" /bin/true || { echo "hostview-floor failed here; nothing timed" >&2; exit 1; }
cg=(-n floor-cg "$floor -c /bin/true") ratios=(floor-cg:unshare:1.5 host-view:floor-cg:1.0)
if ! "$floor" -c /bin/true; then
  echo "SKIPPED floor-cg: its cgroup part is written for v1 hierarchies (this host has none)" >&2
  cg=() ratios=(host-view:floor:1.0)
fi

hyperfine -N --warmup 10 --min-runs "${RUNS:-200}" --export-json "$out/hostview-floor.json" \
  -n unshare 'unshare -fpmuin /bin/true' \
  -n floor "$floor /bin/true" \
  "${cg[@]}" \
  -n host-view "$bin run /bin/true"

bench_ratios "$out/hostview-floor.json" floor:unshare:1.5 host-view:unshare:1.5 "${ratios[@]}"
