#!/bin/bash
# Stand-ins so the runtime-tools validation suite (go 1.21 code) builds with Debian 12's Go 1.19:
# slices.Contains/DeleteFunc (a vendored "slices" package: 1.19 resolves a non-std path through
# vendor/), and sync.OnceValue(s)/strings.CutPrefix (rewritten to same-package helpers).
# Run in the root of a copy of the repository; idempotent.
set -euo pipefail
mkdir -p vendor/slices
cat > vendor/slices/slices.go <<'GO'
// Package slices: the two functions the suite uses, for Go < 1.21.
package slices

func Contains[S ~[]E, E comparable](s S, v E) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func DeleteFunc[S ~[]E, E any](s S, del func(E) bool) S {
	out := s[:0]
	for _, x := range s {
		if !del(x) {
			out = append(out, x)
		}
	}
	return out
}
GO
grep -q '^# slices' vendor/modules.txt 2>/dev/null || true
compat() { # DIR PACKAGE
	cat > "$1/zz_go119_compat.go" <<GO
package $2

import "sync"

func compatOnceValue[T any](f func() T) func() T {
	var once sync.Once
	var v T
	return func() T { once.Do(func() { v = f() }); return v }
}

func compatOnceValues[T1, T2 any](f func() (T1, T2)) func() (T1, T2) {
	var once sync.Once
	var a T1
	var b T2
	return func() (T1, T2) { once.Do(func() { a, b = f() }); return a, b }
}

func compatCutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}
GO
	sed -i -e 's/sync\.OnceValues(/compatOnceValues(/g' -e 's/sync\.OnceValue(/compatOnceValue(/g' \
		-e 's/strings\.CutPrefix(/compatCutPrefix(/g' "$1"/*.go
	# a file whose only use of sync (or strings) was rewritten still imports it
	for f in "$1"/*.go; do
		for pkg in sync strings; do
			if grep -q "^[[:space:]]*\"$pkg\"" "$f" && ! grep -q "$pkg\." "$f"; then
				echo "var _ = $pkg.$([ $pkg = sync ] && echo 'Once{}' || echo 'ToLower')" >>"$f"
			fi
		done
	done
}
compat vendor/github.com/moby/sys/capability capability
compat validate/capabilities capabilities
