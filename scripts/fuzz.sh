#!/usr/bin/env bash
# Runs every fuzz target of the repository, one go test invocation each
# (-fuzz must match a single target), for FUZZTIME: an execution count
# such as 1000000x (the default, what make fuzz runs) or a duration such
# as 3s (what scripts/test.sh runs). FUZZFLAGS adds go test flags, for
# example FUZZFLAGS=-parallel=1 on a busy machine. It prints the
# executions each target ran and fails if any target fails or, for an
# execution count, ran fewer; a failing input is saved under the
# package's testdata/fuzz/<FuzzName>/ by go test.
#
# Targets are found by reading the test files for "func FuzzXxx(" rather
# than with go test -list, which would run each package's TestMain (some
# start a database) just to list names.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fuzztime="${FUZZTIME:-1000000x}"
# want is the execution count each target must reach; 0 for a duration.
want=0
if [[ "$fuzztime" =~ ^([0-9]+)x$ ]]; then
	want="${BASH_REMATCH[1]}"
fi
fuzzflags=()
read -r -a fuzzflags <<<"${FUZZFLAGS:-}"

# "file:func FuzzXxx(" for each target; .git and testdata are skipped, as
# the go command skips them.
targets=()
while IFS= read -r line; do
	targets+=("$line")
done < <(find . -name .git -prune -o -name testdata -prune -o -name '*_test.go' -type f -print |
	LC_ALL=C sort |
	xargs grep -oE '^func Fuzz[A-Za-z0-9_]*\(' /dev/null)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets under $root" >&2
	exit 1
fi

# moduleDir prints the nearest directory at or above $1 holding a go.mod.
moduleDir() {
	local d="$1"
	while [[ ! -f "$d/go.mod" ]]; do
		d="$(dirname "$d")"
	done
	echo "$d"
}

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
summary=()
failed=()
for t in "${targets[@]}"; do
	dir="$(dirname "${t%%:*}")"
	name="${t#*:func }"
	name="${name%(}"
	mod="$(moduleDir "$dir")"
	if [[ "$mod" == "$dir" ]]; then
		pkg=.
	else
		pkg="./${dir#"$mod"/}"
	fi
	echo "=== fuzz $dir $name (-fuzztime=$fuzztime)"
	if (cd "$mod" && go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" ${fuzzflags[@]+"${fuzzflags[@]}"} "$pkg") 2>&1 | tee "$log"; then
		status=ok
	else
		status=FAIL
		failed+=("$dir $name")
	fi
	# go test's last status line gives the executions of the whole run.
	execs="$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)"
	if [[ "$status" == ok && "$want" -gt 0 && "${execs:-0}" -lt "$want" ]]; then
		status=SHORT
		failed+=("$dir $name (${execs:-no} executions, want $want)")
	fi
	summary+=("$(printf '%-4s %-40s %12s execs' "$status" "$dir $name" "${execs:-?}")")
done

echo "=== fuzz summary (-fuzztime=$fuzztime)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "=== FAIL: fuzz ${failed[*]}" >&2
	exit 1
fi
