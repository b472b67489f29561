# Sourced by the benchmarks: `bench_setup PACKAGE…` installs what the tests need (tests/deps.sh:
# busybox-static, python3, …) and the benchmark's own Debian packages, only what is missing, then
# sets $bin to the sandbox binary (SANDBOX_BIN, default
# target/x86_64-unknown-linux-gnu/release/sandbox, built if missing).
bench_setup() {
  bash tests/deps.sh "$@"
  bin=${SANDBOX_BIN:-target/x86_64-unknown-linux-gnu/release/sandbox}
  [ -x "$bin" ] || cargo build --release -q
  bin=$(realpath "$bin")
}

# `bench_rootfs DIR`: a busybox-static root filesystem in DIR (made once: /bin/busybox and a link
# per applet, empty /proc /sys /dev /tmp /etc).
bench_rootfs() {
  local root=$1 a
  [ -x "$root/bin/true" ] && return
  rm -rf "$root"
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc}
  cp /bin/busybox "$root/bin/busybox"
  for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
}

# `bench_ratios JSON A:B:TARGET…`: the medians of a hyperfine JSON export (ms), then each A/B
# against its target (met when at most TARGET).
bench_ratios() {
  python3 - "$@" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print()
print("median, ms:  " + "  ".join(f"{k} {v:.2f}" for k, v in med.items()))
for spec in sys.argv[2:]:
    a, b, target = spec.split(":")
    x, t = med[a] / med[b], float(target)
    print(f"{a + '/' + b:<18} = {x:.2f}  (target <= {t:.2f}: {'met' if x <= t else 'NOT met'})")
PY
}

# `bench_runc_bundle DIR ROOTFS CGROUPS_PATH ARG…`: a runc bundle (`runc spec`) in DIR running ARG… on
# ROOTFS with the benchmarks' limits (--mem 64M --cpus 0.5 --pids 20), no terminal. Its cgroup goes
# below our own memory cgroup on a hybrid host (runc nests a relative cgroupsPath under its own).
bench_runc_bundle() {
  local bundle=$1 root=$2 cgroups=$3
  shift 3
  rm -rf "$bundle" && mkdir -p "$bundle"
  (cd "$bundle" && runc spec)
  python3 - "$bundle/config.json" "$root" "$cgroups" "$@" <<'PY'
import json, sys
path, root, cgroups, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
c = json.load(open(path))
c["root"] = {"path": root, "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = args
c["linux"]["resources"] = {
    "memory": {"limit": 64 << 20, "swap": 64 << 20},
    "cpu": {"quota": 50000, "period": 100000},
    "pids": {"limit": 20},
}
c["linux"]["cgroupsPath"] = cgroups
json.dump(c, open(path, "w"), indent=2)
PY
}
