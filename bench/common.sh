# Sourced by the benchmarks: `bench_setup CMD:PACKAGE…` installs the Debian packages of the
# commands that are missing (and busybox-static), then sets $bin to the sandbox binary
# (SANDBOX_BIN, default target/release/sandbox, built if missing).
bench_setup() {
  local need=() p
  for p in "$@"; do
    command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
  done
  [ -x /bin/busybox ] || need+=(busybox-static)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  bin=${SANDBOX_BIN:-target/release/sandbox}
  [ -x "$bin" ] || cargo build --release -q
  bin=$(realpath "$bin")
}
