#!/usr/bin/env bash
# Installs (Debian 12, as root) what building and testing sandbox needs, so that no test skips for
# a missing tool. Idempotent: asks dpkg what is installed, installs only what is missing, and runs
# `apt-get update` once, only when something is to be installed. `.ci/run` and the README's test
# command call it; the benchmarks (bench/common.sh) call it with their extra packages.
#
#   bash tests/deps.sh [PACKAGE…]      extra Debian packages (e.g. hyperfine runc bubblewrap)
#   DEPS_DRY_RUN=1 bash tests/deps.sh  only print what is missing
#
# The VM lanes' own packages (qemu-system-x86, cpio, linux-image-amd64) are installed by
# tests/vm/vm.sh when a lane first runs, not here.
set -euo pipefail

# Package, and why (the tool the tests call). `grep -rn 'Command::new\|"sh", "-c"' tests/` finds them.
deps=(
  # Build: the libseccomp crate links libseccomp through pkg-config; ring and zstd-sys compile C
  # (the cc crate), and a rustup toolchain links with `cc` and needs libc's crt files.
  libseccomp-dev pkg-config gcc libc6-dev
  # A static busybox (Debian's `busybox` is dynamic and cannot run inside a rootfs without
  # libraries): harness::busybox_rootfs, the image tests' base layer, bench/startup.sh's rootfs.
  busybox-static
  # interactive.rs drives a terminal through tmux.
  tmux
  # hardening.rs' escape.py (chroot climb, pivot_root), interactive.rs, the soak's JSON checks.
  python3
  # util-linux: `setpriv --reuid` (harness::as_nobody, the rootless tests), `unshare`.
  util-linux
  # main.rs: `ip -o link show` inside the net namespace.
  iproute2
  # image_run.rs reads xattrs with getfattr (python3 is the fallback).
  attr
  # The image tests: tar/gzip make layers; umoci and skopeo read what `image export` writes;
  # registry.rs runs a local docker-registry on 127.0.0.1 and htpasswd (apache2-utils) makes its
  # password file.
  tar gzip umoci skopeo docker-registry apache2-utils
  # registry/push.rs: podman loads what `save` writes and pulls what `push` wrote (its own --root,
  # vfs storage); oci_podman.rs runs containers through sandbox-runc with podman and conmon (a
  # dependency of podman, named so that a missing one is installed).
  podman conmon
  # oci_engines.rs: containerd, ctr and containerd-shim-runc-v2 drive
  # sandbox-runc as Kubernetes' CRI would.
  containerd
  # tests/oci/ci.sh (CI's validation lane) builds the runtime-tools suite with Go (bc times files).
  golang-go bc
)
deps+=("$@")

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "tests/deps.sh: no dpkg/apt here; install by hand: ${deps[*]}" >&2
  exit 1
fi

missing=()
for p in "${deps[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ -n "${DEPS_DRY_RUN:-}" ]; then
  echo "tests/deps.sh: missing ${missing[*]}" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  # Not root: the integration tests skip anyway; say what root would install and let the unit
  # tests run.
  echo "tests/deps.sh: not root, installing nothing; as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "tests/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null

# Debian's docker-registry package enables and starts a registry on :5000 (all interfaces). The
# tests start their own on 127.0.0.1; a service listening on the network is not ours to add, so
# when this script installed it, it stops and disables it again.
if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/docker-registry ]; then
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
fi
