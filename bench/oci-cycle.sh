#!/usr/bin/env bash
# OCI runtime cycle benchmark (issue 15, item 6), one hyperfine run, side by side, on the same
# busybox bundle running /bin/true with the benchmarks' limits (--mem 64M --cpus 0.5 --pids 20):
#   create --bundle B --pid-file P ID; start ID; wait for P's process to end; delete ID
# for sandbox-runc (the sandbox binary under that name), runc, and crun when it is installed and
# completes one cycle on this host (it refuses hybrid cgroup hosts without shims: then skipped,
# saying why). Prints medians and sandbox-runc/runc against the target (<= 0.25).
# Needs root. Env: RUNS (default 50), SANDBOX_BIN (default the release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

. bench/common.sh
bench_setup runc hyperfine crun

root=$(realpath -m "$out/rootfs")
bench_rootfs "$root"
bundle=$(realpath -m "$out/bundle-oci-cycle")
bench_runc_bundle "$bundle" "$root" oci-cycle-bench /bin/true
# The same bundle without cgroupsPath (the group then goes below the runtime's own cgroup, as
# runc's relative path does), for a runtime that refuses a relative cgroupsPath.
bundle_nocg=$bundle-nocg
rm -rf "$bundle_nocg" && mkdir -p "$bundle_nocg"
python3 - "$bundle/config.json" "$bundle_nocg/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["linux"]["cgroupsPath"]
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY

tmp=$(mktemp -d /var/tmp/oci-cycle.XXXXXX)
ln -s "$bin" "$tmp/sandbox-runc"
cleanup() {
  for r in "$tmp/sandbox-runc --root $tmp/state-sandbox" "runc --root $tmp/state-runc" "crun --root $tmp/state-crun"; do
    $r delete -f oci-cycle >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# One cycle of runtime "$@" (the command and its --root): what an engine does for a short task.
# The harness's own work is bash builtins (the pid file and /proc/PID/stat read with `read`, no
# rm/cat/cut processes: each cost a fork and exec per cycle, ~1 ms here, the same for every
# runtime); only the 1 ms naps of the wait are `sleep`. A failed create ends the cycle (set -e),
# so a stale pid file is never read; every runtime rewrites it.
cat > "$tmp/cycle.sh" <<'SH'
set -e
pid_file=$1/oci-cycle.pid; bundle=$2; shift 2
"$@" create --bundle "$bundle" --pid-file "$pid_file" oci-cycle </dev/null >/dev/null
read -r pid < "$pid_file" || [ -n "$pid" ]  # no newline at its end: read says EOF
"$@" start oci-cycle
# Until the process is gone or a zombie (its state, the field after the ") " ending its name).
# The wait costs no fork: a timed `read` (a builtin) on a FIFO nobody writes sleeps 0.5 ms; an
# external `sleep 0.001` cost ~0.7 ms of fork and exec a turn, the same for every runtime.
tick=${pid_file%/*}/tick
[ -p "$tick" ] || mkfifo "$tick"
exec 9<>"$tick"
while { read -r stat < /proc/$pid/stat; } 2>/dev/null && st=${stat##*) } && [ "${st%% *}" != Z ]; do
  read -r -t 0.0005 -u 9 _ || true
done
"$@" delete oci-cycle
SH

names=() cmds=()
add() { # add NAME RUNTIME…: a hyperfine command when one cycle of it works here
  local name=$1 b; shift
  for b in "$bundle" "$bundle_nocg"; do
    if bash "$tmp/cycle.sh" "$tmp" "$b" "$@" >"$tmp/$name.try" 2>&1; then
      [ "$b" = "$bundle" ] || echo "NOTE $name: refuses a relative cgroupsPath; measured without one (its group below its own cgroup)" >&2
      names+=("$name") cmds+=("bash $tmp/cycle.sh $tmp $b $*")
      return
    fi
    grep -q cgroupsPath "$tmp/$name.try" || break
  done
  echo "SKIPPED $name: one cycle failed here: $(tail -1 "$tmp/$name.try")" >&2
  "$@" delete -f oci-cycle >/dev/null 2>&1 || true
}
add sandbox-runc "$tmp/sandbox-runc" --root "$tmp/state-sandbox"
add runc runc --root "$tmp/state-runc"
if command -v crun >/dev/null; then add crun crun --root "$tmp/state-crun"; else echo "SKIPPED crun: not installed" >&2; fi

args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup 3 --min-runs "${RUNS:-50}" --export-json "$out/oci-cycle.json" "${args[@]}"

bench_ratios "$out/oci-cycle.json" sandbox-runc:runc:0.25
