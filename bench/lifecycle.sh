#!/usr/bin/env bash
# Lifecycle benchmark (issue 14, item 9), one hyperfine run, side by side, on the same busybox rootfs
# and limits (--mem 64M --cpus 0.5 --pids 20):
#   run        sandbox run --rootfs R /bin/true          (a foreground run's start-up)
#   exec       sandbox exec C /bin/true                  (C: `run -d` of `sleep` on that rootfs)
#   runc-exec  runc exec C /bin/true                     (C: `runc run -d` of the same rootfs)
# Prints medians and the ratios against their targets: exec/run <= 1.00, exec/runc-exec <= 0.25.
# Needs root. Env: RUNS (default 100), SANDBOX_BIN (default the release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

. bench/common.sh
bench_setup runc hyperfine

root=$(realpath -m "$out/rootfs")
bench_rootfs "$root"

state=$(mktemp -d)
runc_root=$(mktemp -d)
bundle=$(realpath -m "$out/bundle-exec")
bench_runc_bundle "$bundle" "$root" runc-bench-exec /bin/sleep 100000
cleanup() {
  "$bin" --state-dir "$state" stop -t 0 bench-exec >/dev/null 2>&1 || true
  "$bin" --state-dir "$state" rm -f bench-exec >/dev/null 2>&1 || true
  # A supervisor still there (a build without stop/rm) is ended by its pid before its state goes.
  for p in $(pgrep -f -- "--state-dir $state " || true); do kill -TERM "$p" 2>/dev/null || true; done
  runc --root "$runc_root" kill bench-exec KILL >/dev/null 2>&1 || true
  sleep 0.2
  runc --root "$runc_root" delete -f bench-exec >/dev/null 2>&1 || true
  rm -rf "$state" "$runc_root"
}
trap cleanup EXIT

limits=(--mem 64M --cpus 0.5 --pids 20)
"$bin" --state-dir "$state" "${limits[@]}" run -d --name bench-exec --rootfs "$root" /bin/sleep 100000 >/dev/null
runc --root "$runc_root" run -d --bundle "$bundle" bench-exec </dev/null >/dev/null 2>&1

hyperfine -N --warmup 5 --min-runs "${RUNS:-100}" --export-json "$out/lifecycle.json" \
  -n run "$bin --report none ${limits[*]} run --rootfs $root /bin/true" \
  -n exec "$bin --state-dir $state exec bench-exec /bin/true" \
  -n runc-exec "runc --root $runc_root exec bench-exec /bin/true"

bench_ratios "$out/lifecycle.json" exec:run:1.00 exec:runc-exec:0.25
