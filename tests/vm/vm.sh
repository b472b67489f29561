#!/usr/bin/env bash
# Boots a throwaway VM with a chosen cgroup layout and runs a command in it as root.
#
#   tests/vm/vm.sh LAYOUT [--] CMD [ARGS...]     LAYOUT: unified | legacy | hybrid
#
# The VM is Debian's kernel under QEMU/TCG (KVM fails on these hosts: "failed to set MSR"), with a
# busybox initramfs (tests/vm/init) and the host's root shared READ-ONLY over 9p, so CMD (an
# absolute host path, e.g. a cargo test binary) runs unchanged. No network device. Output streams
# to stdout; the exit status is CMD's. Env: VM_TIMEOUT (s, default 2700), VM_MEM (default 2048M),
# VM_ENV (extra variable names to pass in).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

layout=${1:?usage: vm.sh unified|legacy|hybrid [--] CMD [ARGS...]}
shift
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "vm.sh: no command given" >&2; exit 2; }
case $layout in unified|legacy|hybrid) ;; *) echo "vm.sh: unknown layout '$layout' (unified, legacy, hybrid)" >&2; exit 2 ;; esac

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  echo "vm.sh: installing ${need[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's kernel (with modules on disk), not the running one.
kver=
for k in /boot/vmlinuz-*; do
  v=${k#/boot/vmlinuz-}
  [ -d "/lib/modules/$v/kernel" ] && kver=$v
done
[ -n "$kver" ] || { echo "vm.sh: no /boot/vmlinuz-* with /lib/modules (install linux-image-amd64)" >&2; exit 1; }

cache=$repo/target/vm
mkdir -p "$cache"
stamp=$(cat "$here/init" /bin/busybox "$0" | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$kver-$stamp.cpio.gz
if [ ! -f "$initrd" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work"/{bin,proc,sys,dev,modules,newroot}
  cp /bin/busybox "$work/bin/busybox"
  install -m 755 "$here/init" "$work/init"
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache \
           9pnet 9pnet_virtio 9p overlay veth bridge stp llc virtio_blk crc16 mbcache crc32c_generic jbd2 ext4; do
    f=$(find "/lib/modules/$kver/kernel" -name "$m.ko*" | head -1)
    [ -n "$f" ] || continue
    case $f in
      *.xz) xz -dc "$f" > "$work/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$work/modules/$m.ko" ;;
      *) cp "$f" "$work/modules/$m.ko" ;;
    esac
  done
  (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$work"
  trap - EXIT
fi

# The command file: environment and the command, quoted, run from the current directory.
cmdfile=$(mktemp "$cache/cmd.XXXXXX")
log=$(mktemp "$cache/log.XXXXXX")
# A scratch disk (sparse, ext4 made here in a file: nothing on the host changes), which
# tests/vm/init mounts at /mnt: the io accounting tests need a directory on a real block device
# (the root is 9p, /tmp and /var/tmp are tmpfs).
scratch=$(mktemp "$cache/scratch.XXXXXX")
trap 'rm -f "$cmdfile" "$log" "$scratch"' EXIT
truncate -s 1G "$scratch"
mkfs.ext4 -q -F -O ^metadata_csum -E lazy_itable_init=1,lazy_journal_init=1 "$scratch"
{
  echo "export PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' HOME=/root TMPDIR=/tmp"
  for v in RUST_BACKTRACE RUST_TEST_THREADS RUST_LOG NEXTEST_PROFILE ${VM_ENV:-} $(compgen -e | grep '^SANDBOX_' || true); do
    [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'cd %q || exit 98\n' "$PWD"
  printf '%q ' "$@"
  echo
} > "$cmdfile"
chmod 644 "$cmdfile"

start=$(date +%s)
set +e
timeout --foreground -k 5 "${VM_TIMEOUT:-2700}" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -m "${VM_MEM:-2048M}" -smp 2 \
  -kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 layout=$layout vmcmd=$cmdfile" \
  -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
  -drive file="$scratch",if=virtio,format=raw,cache=unsafe \
  -nic none -nographic -no-reboot -serial mon:stdio </dev/null 2>&1 | sed -u 's/\r$//' | tee "$log"
qemu_rc=${PIPESTATUS[0]}
set -e
status=$(grep -a -o 'VM-EXIT-STATUS=[0-9]*' "$log" | tail -1 | cut -d= -f2)
echo "vm.sh: layout=$layout kernel=$kver took $(( $(date +%s) - start ))s, command status ${status:-none} (qemu $qemu_rc)" >&2
if [ -z "$status" ]; then
  echo "vm.sh: the VM did not report a status (boot failure or timeout after ${VM_TIMEOUT:-2700}s)" >&2
  exit 1
fi
exit "$status"
