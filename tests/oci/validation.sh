#!/bin/bash
# The opencontainers/runtime-tools validation suite against an OCI runtime binary (issue 15, item 3).
#
#   tests/oci/validation.sh RUNTIME [TEST ...]     e.g. tests/oci/validation.sh /usr/sbin/runc
#                                                       tests/oci/validation.sh target/x86_64-unknown-linux-gnu/debug/sandbox-runc state kill
#
# Builds the suite once from the public repository (a git dir, default the `fetch` mirror; RUNTIME_TOOLS_GIT to
# change) into target/oci-validation/src with the system's Go (Debian 12: 1.19, so go119-compat.sh adds stand-ins;
# the modules are vendored, no network), then runs every validation/*/*.t (or the named ones) against RUNTIME in a
# private mount namespace, each with a timeout (OCI_VALIDATION_TIMEOUT, default 60 s), the runtime's state under
# target/oci-validation/run-*/state (a wrapper adds --root) and the bundles under its tmp (TMPDIR).
# Verdict per file, strict: exit status 0, no "not ok" line, and at least one "ok" line or, for a file that prints
# no test line (several print a diagnostic only when they fail), no "error" diagnostic, panic or WARNING. Prints one line per
# file and a summary; the TAP output of each file stays in target/oci-validation/run-NAME/logs/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
top=${OCI_VALIDATION_DIR:-$repo/target/oci-validation}
src=$top/src
git_dir=${RUNTIME_TOOLS_GIT:-/work/.mirror/opencontainers+runtime-tools/repo}
# Without that git dir (CI's fresh clone): the snapshot kept beside this script (`git archive` of
# the commit its name gives).
tarball=$(ls "$here"/runtime-tools-*.tar.gz 2>/dev/null | head -1)
timeout_s=${OCI_VALIDATION_TIMEOUT:-60}

[ $# -ge 1 ] || { echo "usage: $0 RUNTIME [TEST ...]" >&2; exit 2; }
runtime=$(command -v "$1" || true)
[ -n "$runtime" ] && [ -x "$runtime" ] || { echo "runtime '$1' is not an executable" >&2; exit 2; }
# Absolute, but not through symlinks: sandbox is the runtime when invoked as sandbox-runc.
runtime=$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")
shift
[ "$(id -u)" = 0 ] || { echo "the validation suite needs root" >&2; exit 2; }

build() {
	command -v go >/dev/null || { echo "no Go toolchain: apt-get install -y golang-go" >&2; exit 2; }
	local commit
	if git --git-dir="$git_dir" rev-parse HEAD >/dev/null 2>&1; then
		commit=$(git --git-dir="$git_dir" rev-parse HEAD)
	elif [ -n "$tarball" ]; then
		commit=$(basename "$tarball" .tar.gz)
		commit=${commit#runtime-tools-}
	else
		echo "no runtime-tools source: neither the git dir $git_dir nor $here/runtime-tools-*.tar.gz" >&2
		exit 2
	fi
	if [ -f "$src/.built" ] && [ "$(cat "$src/.built")" = "$commit" ]; then return; fi
	echo "building runtime-tools $commit with $(go version | cut -d' ' -f3) in $src" >&2
	rm -rf "$src" && mkdir -p "$src"
	if git --git-dir="$git_dir" rev-parse HEAD >/dev/null 2>&1; then
		git --git-dir="$git_dir" archive "$commit" | tar -x -C "$src"
	else
		tar -xzf "$tarball" -C "$src"
	fi
	(cd "$src" && bash "$here/go119-compat.sh")
	export GOFLAGS=-mod=vendor GOPATH=$top/gopath GOCACHE=$top/gocache
	(cd "$src" && CGO_ENABLED=0 go build -tags "netgo osusergo" -o runtimetest ./cmd/runtimetest)
	local f
	for f in "$src"/validation/*/*.go; do
		case $f in */util/*) continue ;; esac
		(cd "$src" && go build -o "${f%.go}.t" "${f#"$src"/}")
	done
	echo "$commit" >"$src/.built"
}

if [ -z "${OCI_VALIDATION_INNER:-}" ]; then
	build
	# Everything the runtimes mount stays in a private mount namespace.
	OCI_VALIDATION_INNER=1 exec unshare -m --propagation private -- "$0" "$runtime" "$@"
fi

name=$(basename "$runtime")
run=$top/run-$name
rm -rf "$run" && mkdir -p "$run/state" "$run/tmp" "$run/logs"
wrapper=$run/runtime
printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$runtime" "$run/state" >"$wrapper"
chmod +x "$wrapper"
export TMPDIR=$run/tmp RUNTIME=$wrapper

cleanup_containers() { # whatever a failed test left running
	local id
	for id in $("$wrapper" list -q 2>/dev/null); do
		"$wrapper" kill "$id" KILL >/dev/null 2>&1 || true
		"$wrapper" delete --force "$id" >/dev/null 2>&1 || true
	done
}

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do tests+=("$src/validation/$t/$t.t"); done
else
	for t in "$src"/validation/*/*.t; do tests+=("$t"); done
fi

pass=0 fail=0 with_ok=0 passed=() failed=()
cd "$src"
for t in "${tests[@]}"; do
	tn=$(basename "$t" .t)
	log=$run/logs/$tn.tap
	start=$(date +%s.%N)
	rc=0
	timeout -k 5 "$timeout_s" "$t" >"$log" 2>&1 </dev/null || rc=$?
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	oks=$(grep -c '^ok ' "$log" || true)
	nots=$(grep -c '^not ok ' "$log" || true)
	# A file that prints no test line (`1..0`) passes only when it reports nothing wrong: several
	# of the suite's files (the *_fail ones, poststart, …) print a diagnostic only on failure.
	quiet_fail=0
	grep -qE '"error":|^panic:|WARNING' "$log" && quiet_fail=1
	if [ "$rc" = 0 ] && [ "$nots" = 0 ] && { [ "$oks" -gt 0 ] || [ "$quiet_fail" = 0 ]; }; then
		verdict=PASS pass=$((pass + 1)) passed+=("$tn")
		[ "$oks" -gt 0 ] && with_ok=$((with_ok + 1))
	else
		verdict=FAIL fail=$((fail + 1)) failed+=("$tn")
	fi
	why=""
	[ "$rc" = 124 ] && why=" (timeout ${timeout_s}s)"
	printf '%-4s %-40s ok=%-3s not_ok=%-3s rc=%-3s %5.1fs%s\n' "$verdict" "$tn" "$oks" "$nots" "$rc" "$secs" "$why"
	cleanup_containers
done
# The suite's relative cgroupsPath (testdir/cgrouptest/container) leaves the parents runc made
# below the runtime's own group: empty directories, removed (deepest first) if empty.
for d in $(find /sys/fs/cgroup/*/ -maxdepth 3 -path '*/testdir*' -type d 2>/dev/null | sort -r); do
	rmdir "$d" 2>/dev/null || true
done
echo "SUMMARY $name: $pass of $((pass + fail)) files pass ($with_ok of them with at least one ok line)"
echo "passed: ${passed[*]:-}"
echo "failed: ${failed[*]:-}"
