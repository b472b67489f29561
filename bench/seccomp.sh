#!/usr/bin/env bash
# Cost of one filtered system call under the default seccomp filter. Dumps the filter sandbox
# installs (PTRACE_SECCOMP_GET_FILTER on a running command), loads it K times on a probe process
# (one filter run is too quick to time through the noise) and times calls the kernel's seccomp
# action cache cannot skip; prints nanoseconds per filter run, (t(K) - t(0)) / K, medians over
# ROUNDS alternating rounds. Needs root and gcc.
# Env: SANDBOX_BIN (default the release build), BASELINE_BIN (an older build, e.g. the
#      denylist, timed beside it), K (default 32), N (calls per timing, default 50000), ROUNDS (7).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m target/bench/seccomp)
mkdir -p "$out"

. bench/common.sh
bench_setup gcc:gcc
gcc -O2 -Wall -o "$out/dumpfilter" bench/seccomp/dumpfilter.c
gcc -O2 -Wall -static -o "$out/stacked" bench/seccomp/stacked.c

# The filter a default run installs: run `sleep`, wait until it has its filter, dump it.
dump() {
  "$1" --report none run sleep 3 &
  local sp=$! c=""
  for _ in $(seq 100); do
    c=$(cat /proc/$sp/task/*/children 2>/dev/null | awk '{print $1}')
    [ -n "$c" ] && [ "$(cat /proc/$c/comm 2>/dev/null)" = sleep ] && grep -q '^Seccomp:.*2' /proc/$c/status && break
    sleep 0.05
  done
  "$out/dumpfilter" "$c" "$2"
  wait $sp
}
progs=(sandbox)
dump "$bin" "$out/sandbox.bpf"
if [ -n "${BASELINE_BIN:-}" ]; then
  dump "$(realpath "$BASELINE_BIN")" "$out/baseline.bpf"
  progs+=(baseline)
fi
echo "filter sizes (instructions):" $(for p in "${progs[@]}"; do echo "$p $(( $(stat -c %s "$out/$p.bpf") / 8 ))"; done)

k=${K:-32} n=${N:-50000}
for _ in $(seq "${ROUNDS:-7}"); do
  for p in "${progs[@]}"; do echo "$p $("$out/stacked" "$out/$p.bpf" "$k" "$n")"; done
  echo "none $("$out/stacked" "$out/sandbox.bpf" 0 "$n")"
done > "$out/runs.txt"
python3 - "$out/runs.txt" "$k" <<'EOF'
import statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    who, *rest = line.split()
    rows.setdefault(who, []).append(dict(zip(rest[::2], map(float, rest[1::2]))))
k = int(sys.argv[2])
med = {w: {c: st.median(r[c] for r in rs) for c in rs[0]} for w, rs in rows.items()}
print("ns per call, unfiltered:  " + "  ".join(f"{c} {v:.0f}" for c, v in med["none"].items()))
for w in (w for w in med if w != "none"):
    print(f"ns per filter run, {w}:  " + "  ".join(f"{c} {(v - med['none'][c]) / k:.1f}" for c, v in med[w].items()))
EOF
