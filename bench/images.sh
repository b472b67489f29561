#!/usr/bin/env bash
# Image benchmark (issue 5), side by side in one run:
#   1. pull + unpack of one multi-layer image from a registry on loopback (docker-registry on
#      127.0.0.1): `sandbox pull` into an empty store against `skopeo copy` + `umoci unpack`
#      (each run starts from nothing: --prepare empties the store / the layout and bundle);
#   2. push of the same image to the same registry, a fresh repository each run: `sandbox push`
#      (from a store that holds it under a docker.io name, so nothing can be mounted) against
#      `skopeo copy oci:LAYOUT docker://…` (with an empty blob-info cache in a mount namespace of its
#      own, so it cannot mount either): both send every byte;
#   3. start-up: `sandbox run --image IMG /bin/true` against `sandbox run --rootfs DIR /bin/true`
#      on the same files (DIR is umoci's unpack of the same image), same limits.
# Prints medians and the ratios against the targets. Needs root.
# Env: PULL_RUNS (default 5), RUNS (default 100), SANDBOX_BIN (default the release build,
#      built if missing), LAYER_DIRS (host dirs, one layer each; default a set under /usr).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m target/bench/images)
mkdir -p "$out"

. bench/common.sh
bench_setup curl hyperfine

# The image: busybox, then one gzip layer per host directory (real files: ELF, text, python).
layout="$out/layout"
dirs=${LAYER_DIRS:-/usr/lib/python3.11 /usr/share/perl /usr/lib/git-core /usr/share/zoneinfo /usr/lib/x86_64-linux-gnu/perl-base}
if [ ! -f "$layout/index.json" ]; then
  rm -rf "$layout"
  python3 - "$layout" $dirs <<'EOF'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile
layout, dirs = sys.argv[1], [d for d in sys.argv[2:] if os.path.isdir(d)]
blobs = os.path.join(layout, "blobs/sha256")
os.makedirs(blobs)
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(blobs, d), "wb").write(b)
    return "sha256:" + d
layers, diff_ids = [], []
def layer(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add(t)
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    blob = gzip.compress(raw, compresslevel=6, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(blob), "size": len(blob)})
def busybox(t):
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"]:
        i = tarfile.TarInfo(d); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
    t.add("/bin/busybox", "bin/busybox")
    for a in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split():
        if a != "busybox":
            i = tarfile.TarInfo("bin/" + a); i.type = tarfile.SYMTYPE; i.linkname = "busybox"; t.addfile(i)
layer(busybox)
for d in dirs:
    layer(lambda t, d=d: t.add(d, d.lstrip("/"), recursive=True))
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": layers}).encode()
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": put(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
open(os.path.join(layout, "index.json"), "w").write(json.dumps(index))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
print(f"image: {len(layers)} layers, {sum(l['size'] for l in layers) / 1e6:.1f} MB compressed, "
      f"from {', '.join(dirs)}")
EOF
fi

# The registry, on loopback only, its storage under $out; stopped by pid on exit.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg="$out/registry"
rm -rf "$reg" && mkdir -p "$reg/data"
cat > "$reg/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $reg/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
regpid=$!
work=$(mktemp -d -p "$out")
cleanup() { kill "$regpid" 2>/dev/null || true; wait "$regpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/image:1"
# skopeo as root keeps a blob-info cache in /var/lib/containers/cache (and would mount blobs from
# what it remembers): every skopeo here runs in a mount namespace of its own with an empty tmpfs
# there (/var/lib where /var/lib/containers does not exist), so the host's is neither made nor
# changed and each run starts without one. sandbox runs under the same unshare in the timed
# comparisons, so both pay it.
skopeo_iso="$work/skopeo"
cat >"$skopeo_iso" <<'SH'
#!/bin/sh
exec unshare --mount --propagation private sh -c 'lib=/var/lib/containers; [ -d $lib ] || lib=/var/lib
mount -t tmpfs -o mode=0700 bench-lib "$lib" && exec skopeo "$@"' skopeo "$@"
SH
chmod +x "$skopeo_iso"
skopeo() { "$skopeo_iso" "$@"; }
skopeo copy -q --dest-tls-verify=false "oci:$layout:1" "docker://$ref"

store="$work/store" oci="$work/oci" bundle="$work/bundle"
# Start-up first: the pull runs delete tens of thousands of files, and ext4 without a journal
# (this machine's /work) makes every inode allocation in the next minute scan past them
# (ext4 recently_deleted), which an image run's upper dir pays and a rootfs run does not.
echo "== start-up: run --image against run --rootfs (umoci's unpack of the same image) =="
skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$oci:1"
umoci unpack --image "$oci:1" "$bundle" >/dev/null
"$bin" --root "$store" pull --quiet "$ref" >/dev/null
rootfs="$work/rootfs" && mv "$bundle/rootfs" "$rootfs"
hyperfine -N --warmup 5 --min-runs "${RUNS:-100}" --export-json "$out/startup.json" \
  -n "run --image" "$bin --root $store --report none --mem 64M --pids 20 run --image $ref /bin/true" \
  -n "run --rootfs" "$bin --report none --mem 64M --pids 20 run --rootfs $rootfs /bin/true"

echo "== pull + unpack from the loopback registry =="
hyperfine -N --runs "${PULL_RUNS:-5}" --export-json "$out/pull.json" \
  -n "sandbox pull" --prepare "rm -rf $store/p" "unshare -m $bin --root $store/p pull --quiet $ref" \
  -n "skopeo copy + umoci unpack" --prepare "rm -rf $oci $bundle" \
  "sh -c '$skopeo_iso copy -q --src-tls-verify=false docker://$ref oci:$oci:1 && umoci unpack --image $oci:1 $bundle >/dev/null'"

echo "== push to the loopback registry (a fresh repository each run) =="
pstore="$work/pstore"
"$bin" --root "$pstore" image import --name bench/push:1 "$layout" >/dev/null 2>&1
# Each skopeo run gets an empty blob-info cache ($skopeo_iso), so it mounts nothing it remembers.
fresh='$(date +%s%N)'
hyperfine -N --runs "${PULL_RUNS:-5}" --export-json "$out/push.json" \
  -n "sandbox push" \
  "unshare -m sh -c '$bin --root $pstore push --quiet bench/push:1 127.0.0.1:$port/push/s$fresh:1 >/dev/null'" \
  -n "skopeo copy" \
  "sh -c '$skopeo_iso copy -q --dest-tls-verify=false oci:$layout:1 docker://127.0.0.1:$port/push/k$fresh:1'"

python3 - "$out/pull.json" "$out/startup.json" "$out/push.json" <<'EOF'
import json, sys
med = {}
for f in sys.argv[1:]:
    med.update({x["command"]: x["median"] for x in json.load(open(f))["results"]})
p, s = med["sandbox pull"], med["skopeo copy + umoci unpack"]
i, r = med["run --image"], med["run --rootfs"]
u, k = med["sandbox push"], med["skopeo copy"]
print()
print(f"pull+unpack median: sandbox {p:.2f} s, skopeo+umoci {s:.2f} s; sandbox/(skopeo+umoci) = {p / s:.2f} (target <= 0.25)")
print(f"push median: sandbox push {u:.2f} s, skopeo copy {k:.2f} s; push/skopeo = {u / k:.2f} (target <= 1.00)")
print(f"start-up median: run --image {i * 1000:.2f} ms, run --rootfs {r * 1000:.2f} ms; image/rootfs = {i / r:.2f} (target <= 1.50)")
EOF
