#!/usr/bin/env bash
# Start-up benchmark: one hyperfine run, side by side, on the same busybox rootfs:
#   sandbox --mem 64M --cpus 0.5 --pids 20 run --rootfs R /bin/true
#   runc run (same rootfs, same limits)
#   bwrap --unshare-all (no cgroups at all)
#   host-view: sandbox run /bin/true (the host's files, no limits)
#   unshare -fpmuin /bin/true (util-linux: the same namespaces but cgroup's, nothing mounted)
#   bare /bin/true
# Prints medians and the ratios against their targets (issue 11, item 13):
#   sandbox/bwrap <= 1.00, sandbox/runc <= 0.20, host-view/unshare <= 1.5. Needs root.
# Env: RUNS (default 100), SANDBOX_BIN (default the release build, built if missing),
#      BASELINE_BIN: an older sandbox build to time beside it (e.g. before a change); its median
#      and the difference in ms are printed too. Issue 4 uses this for "hardening adds <= 1 ms".
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

. bench/common.sh
bench_setup runc bubblewrap hyperfine util-linux

# The rootfs: busybox-static and its applets.
root=$(realpath -m "$out/rootfs")
bench_rootfs "$root"

# runc's bundle: `runc spec` with our rootfs and limits.
bundle=$(realpath -m "$out/bundle")
bench_runc_bundle "$bundle" "$root" runc-bench /bin/true
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
# sandbox's own state root (each run's record) in the same temp dir: nothing left in /run/sandbox.
export SANDBOX_STATE_DIR=$state/sandbox
# A unique container id per run: hyperfine substitutes nothing, so a tiny wrapper counts.
cat > "$out/runc-once.sh" <<EOF
#!/bin/sh
exec runc --root $state run --bundle $bundle "bench-\$\$"
EOF
chmod +x "$out/runc-once.sh"

"$bin" --version >/dev/null
groups_before=$(find /sys/fs/cgroup -maxdepth 5 \( -name 'runc-bench*' -o -name 'sandbox-*' \) 2>/dev/null | sort)
extra=()
if [ -n "${BASELINE_BIN:-}" ]; then
  base=$(realpath "$BASELINE_BIN")
  extra=(-n baseline "$base --report none --mem 64M --cpus 0.5 --pids 20 run --rootfs $root /bin/true")
fi
hyperfine -N --warmup 5 --min-runs "${RUNS:-100}" --export-json "$out/startup.json" --export-markdown "$out/startup.md" \
  -n sandbox "$bin --report none --mem 64M --cpus 0.5 --pids 20 run --rootfs $root /bin/true" \
  -n runc "$out/runc-once.sh" \
  -n bwrap "bwrap --unshare-all --die-with-parent --bind $root / --proc /proc --dev /dev /bin/true" \
  -n host-view "$bin --report none run /bin/true" \
  -n unshare "unshare -fpmuin /bin/true" \
  "${extra[@]}" \
  -n true "/bin/true"

bench_ratios "$out/startup.json" sandbox:bwrap:1.00 sandbox:runc:0.20 host-view:unshare:1.50
if [ -n "${BASELINE_BIN:-}" ]; then
  python3 - "$out/startup.json" <<'EOF'
import json, sys
med = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
print(f"sandbox - baseline = {med['sandbox'] - med['baseline']:+.2f} ms  (hardening target <= +1.00)")
EOF
fi
# Groups that appeared during the benchmark and are still there (other users' live runs would
# show here too: a warning, not a verdict; bench/soak.sh checks leftovers by pid).
groups() { find /sys/fs/cgroup -maxdepth 5 \( -name 'runc-bench*' -o -name 'sandbox-*' \) 2>/dev/null | sort; }
left=$(comm -13 <(echo "$groups_before") <(groups) | head -3)
[ -z "$left" ] || echo "warning: cgroups new since the start and still there: $left" >&2
