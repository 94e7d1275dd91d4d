#!/usr/bin/env bash
# Tests every Go module of the repository: the root and each directory below
# it holding a go.mod. First gofmt -l over the whole tree (must list
# nothing); then for each module go vet ./... and
# go test -race -count=1 ./... plus the flags in GOTESTFLAGS, for
# example GOTESTFLAGS='-timeout=30m -v' scripts/test.sh. Then it runs every
# benchmark of every module once (-benchtime=1x).
#
# Tests that need MongoDB start an embedded FerretDB themselves (its first
# build takes minutes); set MONGODB_URI to use a running server or
# MONGODB_IMAGE to run a container instead.
#
# -race needs cgo (a C compiler on Linux). Without it the tests run without
# -race after a warning, except under CI=true, where that is an error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Directories holding a go.mod, root (.) first; .git and testdata are
# skipped, as the go command skips them.
modules=()
while IFS= read -r mod; do
	modules+=("$mod")
done < <(find . -name .git -prune -o -name testdata -prune -o -name go.mod -type f -print | sed 's|/go.mod$||' | LC_ALL=C sort)
if [[ ${#modules[@]} -eq 0 ]]; then
	echo "test.sh: no go.mod under $root" >&2
	exit 1
fi

race=(-race)
if [[ "$(go env CGO_ENABLED)" != 1 ]]; then
	if [[ "${CI:-}" == true ]]; then
		echo "test.sh: -race needs cgo, which is off (no C compiler?)" >&2
		exit 1
	fi
	echo "test.sh: WARNING: cgo is off (no C compiler?): testing WITHOUT -race" >&2
	race=()
fi

testflags=()
read -r -a testflags <<<"${GOTESTFLAGS:-}"

# test_module runs the checks in the current directory. It is called where
# set -e does not apply, so every step checks for failure itself.
test_module() {
	go vet ./... || return 1
	go test ${race[@]+"${race[@]}"} -count=1 ${testflags[@]+"${testflags[@]}"} ./... || return 1
}

failed=()
# gofmt once for the whole tree: every module's files are below the root.
unformatted="$(find . -name .git -prune -o -name testdata -prune -o -name '*.go' -type f -print0 | xargs -0 gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "test.sh: gofmt -l lists files to format with gofmt -w:" >&2
	echo "$unformatted" >&2
	failed+=("gofmt")
fi
for mod in "${modules[@]}"; do
	echo "=== module ${mod}: $(cd "$mod" && go list -m)"
	if ! (cd "$mod" && test_module); then
		failed+=("$mod")
	fi
done
# Every benchmark of every module in short mode: each runs once, so a
# broken one fails here; figures come from scripts/bench.sh. Only the
# packages that have benchmarks are built again for it.
for mod in "${modules[@]}"; do
	pkgs=()
	while IFS= read -r pkg; do
		pkgs+=("$pkg")
	done < <(cd "$mod" && go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... |
		while read -r path dir files; do
			for f in $files; do
				if grep -q '^func Benchmark' "$dir/$f"; then
					echo "$path"
					break
				fi
			done
		done)
	if [[ ${#pkgs[@]} -eq 0 ]]; then
		continue
	fi
	echo "=== benchmarks (short mode, -benchtime=1x): module ${mod}: ${pkgs[*]}"
	if ! (cd "$mod" && go test -run='^$' -bench=. -benchtime=1x -count=1 "${pkgs[@]}"); then
		failed+=("$mod (benchmarks)")
	fi
done
# Every fuzz target briefly, on its seed corpus and a few seconds of new
# inputs; make fuzz runs them at length (scripts/fuzz.sh).
echo "=== fuzz targets (short mode, -fuzztime=3s)"
if ! FUZZTIME=3s bash scripts/fuzz.sh; then
	failed+=("fuzz")
fi

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "=== FAIL: ${failed[*]}" >&2
	exit 1
fi
echo "=== ok: all ${#modules[@]} modules and the benchmarks"
