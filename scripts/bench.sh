#!/usr/bin/env bash
# Runs the benchmark suite of bench/ COUNT times and the load test
# (bench/cmd/loadtest) for COUNT rounds, saves the raw output, summarises
# it with benchstat and checks the performance targets with
# bench/cmd/targets (which exits non-zero if one fails). The load test
# prints its runs as benchmark lines, so that both go to one raw file.
#
# The suite runs against MONGODB_URI if set, else a container of
# MONGODB_IMAGE if set (needs Docker), else an embedded FerretDB that it
# starts itself (its first build takes minutes). The environment sets:
#
#	COUNT      runs of each benchmark (default 6)
#	BENCH      benchmarks to run, a go test -bench regexp (default .)
#	BENCHTIME  go test -benchtime (default 1s)
#	LOADTEST   flags of the load test (default: the issue's setting, 200
#	           returning sessions, 32 clients); LOADTEST=off skips it
#	OUT        directory for raw.txt, benchstat.txt and targets.txt
#	           (default bench/out/<UTC date and time>)
#
# For example: COUNT=3 scripts/bench.sh. The raw output starts with
# benchstat configuration lines naming the server, machine and date, so
# that runs saved on different machines stay apart when compared.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count="${COUNT:-6}"
bench="${BENCH:-.}"
benchtime="${BENCHTIME:-1s}"
out="${OUT:-$root/bench/out/$(date -u +%Y%m%dT%H%M%SZ)}"
benchstat="golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

mkdir -p "$out"
raw="$out/raw.txt"

if [[ -n "${MONGODB_URI:-}" ]]; then
	server="MONGODB_URI (external)"
elif [[ -n "${MONGODB_IMAGE:-}" ]]; then
	server="container ${MONGODB_IMAGE}"
else
	ferretdb="$(cd "$root/integration" && go list -m -f '{{.Version}}' github.com/FerretDB/FerretDB)"
	server="FerretDB ${ferretdb} embedded, SQLite handler"
fi

cd "$root/bench"
{
	echo "server: $server"
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpus: $(getconf _NPROCESSORS_ONLN)"
	echo "go: $(go env GOVERSION)"
	# The machine may be shared: the load when the run starts says how
	# much to trust the timings.
	echo "loadavg: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
} >"$raw"

echo "bench.sh: go test -bench='$bench' -benchtime=$benchtime -count=$count, output in $out" >&2
# The suite's stderr (which server it uses) goes to the terminal only.
go test -run='^$' -bench="$bench" -benchtime="$benchtime" -count="$count" -timeout=2h ./... | tee -a "$raw"
loadtest="${LOADTEST:--duration=10s -requests=100000 -sessions=200 -concurrency=32}"
if [[ "$loadtest" != off ]]; then
	read -r -a loadflags <<<"$loadtest"
	echo "bench.sh: go run ./cmd/loadtest ${loadtest} -rounds=$count" >&2
	go run ./cmd/loadtest "${loadflags[@]}" -rounds="$count" -timeout=1h | tee -a "$raw"
fi

go run "$benchstat" "$raw" | tee "$out/benchstat.txt"
echo
go run ./cmd/targets "$raw" | tee "$out/targets.txt"
