// Command targets checks the output of the bench suite against the
// store's performance targets. It reads the raw output of
//
//	go test -run='^$' -bench=. -count=N ./...
//
// and of the load test (go run ./cmd/loadtest -rounds=N), which prints
// its runs as benchmark lines too, from the files named as arguments, or
// standard input, takes the median
// of each benchmark's figures over the runs, and prints one line per
// target: PASS, FAIL or SKIP (a benchmark it needs is missing), the
// measured value and the bound. Targets that must hold exactly (one find
// per cold session, the memory bound) are checked on every run, not only
// the median. It exits with status 1 if any target fails.
//
// Usage:
//
//	go run ./cmd/targets raw.txt
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	results, err := readAll(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "targets:", err)
		os.Exit(2)
	}
	verdicts := check(results)
	failed := 0
	for _, v := range verdicts {
		fmt.Println(v)
		if v.status == fail {
			failed++
		}
	}
	fmt.Println(summary(verdicts))
	if failed > 0 {
		os.Exit(1)
	}
}

func readAll(files []string) (results, error) {
	if len(files) == 0 {
		return parse(os.Stdin)
	}
	all := results{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		r, err := parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for bench, units := range r {
			for unit, vs := range units {
				all.add(bench, unit, vs...)
			}
		}
	}
	return all, nil
}

// results holds every figure read: by benchmark name (without the
// -GOMAXPROCS suffix), by unit, one value per run.
type results map[string]map[string][]float64

func (r results) add(bench, unit string, vs ...float64) {
	if r[bench] == nil {
		r[bench] = map[string][]float64{}
	}
	r[bench][unit] = append(r[bench][unit], vs...)
}

// procsSuffix is the -GOMAXPROCS suffix go test adds to names.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads go test benchmark output. Lines other than results are
// ignored.
func parse(r io.Reader) (results, error) {
	res := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line: the iteration count is missing
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark %s: value %q: %w", name, f[i], err)
			}
			res.add(name, f[i+1], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, errors.New("no benchmark results in the input")
	}
	return res, nil
}

// errMissing reports a figure absent from the results.
type errMissing struct{ bench, unit string }

func (e errMissing) Error() string { return fmt.Sprintf("no %s for %s", e.unit, e.bench) }

// values returns every run's value of unit for bench.
func (r results) values(bench, unit string) ([]float64, error) {
	vs := r[bench][unit]
	if len(vs) == 0 {
		return nil, errMissing{bench, unit}
	}
	return vs, nil
}

// median returns the median over the runs of unit for bench.
func (r results) median(bench, unit string) (float64, error) {
	vs, err := r.values(bench, unit)
	if err != nil {
		return 0, err
	}
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2], nil
	}
	return (s[n/2-1] + s[n/2]) / 2, nil
}

type status string

const (
	pass status = "PASS"
	fail status = "FAIL"
	skip status = "SKIP"
)

// verdict is the outcome of one target.
type verdict struct {
	status status
	target string // what is required
	got    string // what was measured
}

func (v verdict) String() string {
	return fmt.Sprintf("%s  %-58s %s", v.status, v.target, v.got)
}

func summary(vs []verdict) string {
	n := map[status]int{}
	for _, v := range vs {
		n[v.status]++
	}
	s := fmt.Sprintf("%d passed, %d failed", n[pass], n[fail])
	if n[skip] > 0 {
		s += fmt.Sprintf(", %d skipped", n[skip])
	}
	return s
}

// target is one requirement: eval measures it and says whether it holds.
type target struct {
	name string
	eval func(r results) (ok bool, got string, err error)
}

var targets = []target{
	// A Get answered from memory. Its ratios to the floors come from
	// BenchmarkHitRatios, which interleaves the sides within each run; the
	// separate benchmarks' times move with the machine's load between them.
	{"GetHit with Clone <= 1.5 x floor (map + clone), interleaved", func(r results) (bool, string, error) {
		return metric(r, "HitRatios/clone", "x-floor", "x", func(x float64) bool { return x <= 1.5 })
	}},
	{"GetHitClone allocs/op <= FloorClone allocs/op + 1", func(r results) (bool, string, error) {
		return allocsWithin(r, "GetHitClone", "FloorClone", 1)
	}},
	{"GetHit without Clone <= 1.3 x LRU + decode, interleaved", func(r results) (bool, string, error) {
		return metric(r, "HitRatios/decode", "x-floor", "x", func(x float64) bool { return x <= 1.3 })
	}},
	{"GetHitParallel speedup >= 0.9 x the floor's (map + clone)", func(r results) (bool, string, error) {
		// The speedups of the decoding store and of the floor, each
		// measured against itself alone within its pair's rounds.
		d, err := r.median("HitRatios/decode", "speedup")
		if err != nil {
			return false, "", err
		}
		f, err := r.median("HitRatios/clone", "floor-speedup")
		if err != nil {
			return false, "", err
		}
		return d >= 0.9*f, fmt.Sprintf("%.3gx (speedup %.3g vs the floor's %.3g)", d/f, d, f), nil
	}},
	{"GetHitCloneParallel speedup >= 0.9 x the floor's, interleaved", func(r results) (bool, string, error) {
		return metric(r, "HitRatios/clone", "speedup-x-floor", "x", func(x float64) bool { return x >= 0.9 })
	}},
	{"GetHit allocs/op <= Codec/msgpack/decode (no-op telemetry)", func(r results) (bool, string, error) {
		return allocsWithin(r, "GetHit", "Codec/msgpack/decode", 0)
	}},
	{"GetHitTracing/off allocs/op <= Codec/msgpack/decode", func(r results) (bool, string, error) {
		return allocsWithin(r, "GetHitTracing/off", "Codec/msgpack/decode", 0)
	}},
	{"DirectFindOne ns/op >= 100 x GetHit", func(r results) (bool, string, error) {
		return ratio(r, "DirectFindOne", "GetHit", "ns/op", func(x float64) bool { return x >= 100 })
	}},
	{"GetMissCollapsed finds/op == 1 in every run", func(r results) (bool, string, error) {
		return everyRun(r, "GetMissCollapsed", "finds/op", func(x float64) bool { return x == 1 })
	}},
	{"Touch writes/touch <= 0.01", func(r results) (bool, string, error) {
		m, err := r.median("Touch", "writes/touch")
		if err != nil {
			return false, "", err
		}
		return m <= 0.01, fmt.Sprintf("%.3g writes/touch", m), nil
	}},
	{"DirectTouch commands/touch >= 50 x Touch", func(r results) (bool, string, error) {
		return ratio(r, "DirectTouch", "Touch", "commands/touch", func(x float64) bool { return x >= 50 })
	}},
	{"TouchSkip/memory allocs/op == 0 in every run", func(r results) (bool, string, error) {
		return everyRun(r, "TouchSkip/memory", "allocs/op", func(x float64) bool { return x == 0 })
	}},
	{"TouchSkip/buffered allocs/op == 0 in every run", func(r results) (bool, string, error) {
		return everyRun(r, "TouchSkip/buffered", "allocs/op", func(x float64) bool { return x == 0 })
	}},
	{"MemoryBound L1-entries <= L1-cap in every run", func(r results) (bool, string, error) {
		return bounded(r, "MemoryBound", "L1-entries", "L1-cap")
	}},
	{"MemoryBound store-L1-max <= store-L1-cap in every run", func(r results) (bool, string, error) {
		return bounded(r, "MemoryBound", "store-L1-max", "store-L1-cap")
	}},
	{"MemoryBound B/entry (reported)", func(r results) (bool, string, error) {
		m, err := r.median("MemoryBound", "B/entry")
		if err != nil {
			return false, "", err
		}
		p, err := r.median("MemoryBound", "payload-B")
		if err != nil {
			return false, "", err
		}
		got := fmt.Sprintf("%.0f heap B per cached session (payload %.0f B)", m, p)
		if v, err := r.median("MemoryBound", "value-B/entry"); err == nil {
			got += fmt.Sprintf(", %.0f B more with its decoded value (Clone)", v)
		}
		return true, got, nil
	}},
	// The load test (bench/cmd/loadtest) prints each run as
	// BenchmarkLoad/<workload>; its rounds alternate the workloads.
	{"Load returning req/s >= 0.8 x Load floor", func(r results) (bool, string, error) {
		return ratio(r, "Load/returning", "Load/floor", "req/s", func(x float64) bool { return x >= 0.8 })
	}},
	{"Load new req/s >= 0.9 x Load newfloor", func(r results) (bool, string, error) {
		return ratio(r, "Load/new", "Load/newfloor", "req/s", func(x float64) bool { return x >= 0.9 })
	}},
	{"Load returning commands/req <= 0.01", func(r results) (bool, string, error) {
		return metric(r, "Load/returning", "commands/req", "", func(x float64) bool { return x <= 0.01 })
	}},
	{"Load returning allocs/req - floor's (reported)", func(r results) (bool, string, error) {
		a, err := r.median("Load/returning", "allocs/req")
		if err != nil {
			return false, "", err
		}
		f, err := r.median("Load/floor", "allocs/req")
		if err != nil {
			return false, "", err
		}
		return true, fmt.Sprintf("%+.1f allocs/req (%.1f vs %.1f, whole process)", a-f, a, f), nil
	}},
}

func check(r results) []verdict {
	var out []verdict
	for _, t := range targets {
		ok, got, err := t.eval(r)
		v := verdict{status: pass, target: t.name, got: got}
		var missing errMissing
		switch {
		case errors.As(err, &missing):
			v.status, v.got = skip, err.Error()
		case err != nil:
			v.status, v.got = fail, err.Error()
		case !ok:
			v.status = fail
		}
		out = append(out, v)
	}
	return out
}

// ratio checks the ratio of the medians of unit for num and den.
func ratio(r results, num, den, unit string, ok func(float64) bool) (bool, string, error) {
	n, err := r.median(num, unit)
	if err != nil {
		return false, "", err
	}
	d, err := r.median(den, unit)
	if err != nil {
		return false, "", err
	}
	if d == 0 {
		return false, fmt.Sprintf("%s %s is 0", den, unit), nil
	}
	x := n / d
	return ok(x), fmt.Sprintf("%.3gx (%.4g / %.4g %s)", x, n, d, unit), nil
}

// metric checks the median of unit for bench, a figure the benchmark
// reports itself; suffix follows the value in the report.
func metric(r results, bench, unit, suffix string, ok func(float64) bool) (bool, string, error) {
	m, err := r.median(bench, unit)
	if err != nil {
		return false, "", err
	}
	vs, _ := r.values(bench, unit)
	return ok(m), fmt.Sprintf("%.3g%s (%s, median of %d runs)", m, suffix, unit, len(vs)), nil
}

// allocsWithin checks that bench allocates at most extra more than base
// per operation, by the medians.
func allocsWithin(r results, bench, base string, extra float64) (bool, string, error) {
	a, err := r.median(bench, "allocs/op")
	if err != nil {
		return false, "", err
	}
	b, err := r.median(base, "allocs/op")
	if err != nil {
		return false, "", err
	}
	return a <= b+extra, fmt.Sprintf("%g allocs/op vs %g", a, b), nil
}

// everyRun checks unit for bench in each run.
func everyRun(r results, bench, unit string, ok func(float64) bool) (bool, string, error) {
	vs, err := r.values(bench, unit)
	if err != nil {
		return false, "", err
	}
	all := true
	for _, v := range vs {
		all = all && ok(v)
	}
	return all, fmt.Sprintf("%v %s over %d runs", vs, unit, len(vs)), nil
}

// bounded checks, run by run, that unit is at most the run's limit.
func bounded(r results, bench, unit, limit string) (bool, string, error) {
	vs, err := r.values(bench, unit)
	if err != nil {
		return false, "", err
	}
	caps, err := r.values(bench, limit)
	if err != nil {
		return false, "", err
	}
	if len(caps) != len(vs) {
		return false, fmt.Sprintf("%d runs of %s but %d of %s", len(vs), unit, len(caps), limit), nil
	}
	all := true
	for i := range vs {
		all = all && vs[i] <= caps[i]
	}
	return all, fmt.Sprintf("max %g %s, limit %g", slices.Max(vs), unit, slices.Min(caps)), nil
}
