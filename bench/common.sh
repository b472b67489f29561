# Sourced by the benchmarks: `bench_setup PACKAGE…` installs what the tests need (tests/deps.sh:
# busybox-static, python3, …) and the benchmark's own Debian packages, only what is missing, then
# sets $bin to the sandbox binary (SANDBOX_BIN, default target/release/sandbox, built if missing).
bench_setup() {
  bash tests/deps.sh "$@"
  bin=${SANDBOX_BIN:-target/release/sandbox}
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
