#!/usr/bin/env bash
# Runs the privileged integration tests (the same binary as on the host) in the pure cgroup v2
# ("unified") and legacy v1 VM lanes. A failure in any lane fails the script. Extra arguments go to
# the test binary (e.g. a test-name filter). Lanes: VM_LANES (default "unified legacy").
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cargo test --test integration --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration":
        print(m["executable"])')
[ -x "$bin" ] || { echo "lanes.sh: could not build the integration test binary" >&2; exit 1; }
# The library example is compared with the CLI inside the VM too.
cargo build --examples -q
failed=()
# Tests may change kernel state of the throwaway VM that they must not change on a host (e.g. a
# blk-throttle rule on a disk): they check this (vm.sh passes SANDBOX_* variables in).
export SANDBOX_TEST_IN_VM=1
for lane in ${VM_LANES:-unified legacy}; do
  echo "=== VM lane: $lane ==="
  # One test thread: a 2-CPU TCG guest is slow, and the CPU-share test must not be starved.
  if ! RUST_TEST_THREADS=${RUST_TEST_THREADS:-1} bash tests/vm/vm.sh "$lane" -- "$bin" --color never "$@"; then
    failed+=("$lane")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "VM lanes failed: ${failed[*]}" >&2
  exit 1
fi
echo "VM lanes passed: ${VM_LANES:-unified legacy}"
