#!/bin/bash
# crun 1.8.1 behind the runtime-tools validation suite (issue 15, item 3: "crun passes 36 only with shims").
#
#   ln -s $PWD/tests/oci/crun-shim.sh /somewhere/crun   # the suite's script names the run after the basename
#   CRUN=/usr/bin/crun tests/oci/validation.sh /somewhere/crun
#
# crun 1.8.1 refuses every config whose ociVersion does not contain "1.0" ("unknown version specified"); the
# suite writes 1.3.0. For create/run this rewrites the bundle's config.json to ociVersion 1.0.2 (a copy of the
# original stays as config.json.orig) and hands every argument to crun unchanged.
# crun 1.8.1 also refuses a hybrid host whose cgroup2 (/sys/fs/cgroup/unified) has any controller ("cgroups in
# hybrid mode not supported", checked before --cgroup-manager matters); here hugetlb sits there. Inside the suite's
# private mount namespace (never the host's: checked against PID 1's) the shim unmounts that cgroup2, once, so crun
# sees a legacy v1 host and manages the v1 controllers as usual.
set -euo pipefail
crun=${CRUN:-/usr/bin/crun}
bundle=. cmd=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]}
	case $a in
	--bundle | -b) bundle=${args[i + 1]} ;;
	--bundle=*) bundle=${a#--bundle=} ;;
	create | run) [ -z "$cmd" ] && cmd=$a ;;
	--root | --log | --log-format) i=$((i + 1)) ;;
	-*) ;;
	*) [ -z "$cmd" ] && cmd=$a ;;
	esac
done
if [ "$cmd" = create ] || [ "$cmd" = run ]; then
	cfg=$bundle/config.json
	if [ -f "$cfg" ] && ! grep -q '"ociVersion": *"1\.0' "$cfg"; then
		cp "$cfg" "$cfg.orig"
		sed -i -E 's/"ociVersion": *"[^"]*"/"ociVersion":"1.0.2"/' "$cfg"
	fi
fi
if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
		echo "crun-shim: refusing to unmount /sys/fs/cgroup/unified in the host's mount namespace" >&2
		exit 1
	fi
	umount -l /sys/fs/cgroup/unified
fi
exec "$crun" "$@"
