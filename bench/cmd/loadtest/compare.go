package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// The workloads the demo's are judged against, and the bound of each
// ratio of requests per second (the targets of bench/cmd/targets).
var floors = []struct {
	workload, floor string
	atLeast         float64
}{
	{"returning", "floor", 0.8},
	{"new", "newfloor", 0.9},
}

// maxReturningCommands bounds the database commands per returning
// request.
const maxReturningCommands = 0.01

// usage is what the process used while a workload ran: allocations
// counted by the runtime (runtime.MemStats.Mallocs) and CPU time, the
// server's and the load generator's alike.
type usage struct {
	mallocs uint64
	cpu     time.Duration
}

// readUsage returns the process's usage so far.
func readUsage() usage {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{mallocs: ms.Mallocs, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
}

// perRequest returns what r's requests used each.
func (r result) perRequest() (allocs float64, cpu time.Duration, commands float64) {
	if r.requests == 0 {
		return 0, 0, 0
	}
	total := 0
	for _, n := range r.commands {
		total += n
	}
	n := float64(r.requests)
	return float64(r.used.mallocs) / n, time.Duration(float64(r.used.cpu) / n), float64(total) / n
}

// benchLine returns r as a line of go test benchmark output, so that
// bench/cmd/targets and benchstat read the load test's figures beside the
// suite's: BenchmarkLoad/<workload>, the requests as iterations, wall
// time per request as ns/op, then requests/s, allocations, CPU time and
// database commands per request.
func (r result) benchLine() string {
	allocs, cpu, commands := r.perRequest()
	return fmt.Sprintf("BenchmarkLoad/%s-%d\t%d\t%.0f ns/op\t%.0f req/s\t%.1f allocs/req\t%.0f cpu-ns/req\t%.5f commands/req",
		r.name, runtime.GOMAXPROCS(0), r.requests, float64(r.elapsed.Nanoseconds())/float64(max(r.requests, 1)),
		float64(r.requests)/r.elapsed.Seconds(), allocs, float64(cpu.Nanoseconds()), commands)
}

// median returns the median of vs.
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize writes each workload's medians over the rounds, and the
// ratios of requests per second to the floors measured in the same run.
func summarize(w io.Writer, runs map[string][]result, order []string) {
	type figures struct{ rps, allocs, cpu, commands float64 }
	med := map[string]figures{}
	rounds := 0
	for _, name := range order {
		var rps, allocs, cpu, commands []float64
		for _, r := range runs[name] {
			a, c, k := r.perRequest()
			rps = append(rps, float64(r.requests)/r.elapsed.Seconds())
			allocs, cpu, commands = append(allocs, a), append(cpu, float64(c.Microseconds())), append(commands, k)
		}
		rounds = max(rounds, len(rps))
		med[name] = figures{median(rps), median(allocs), median(cpu), median(commands)}
	}
	fmt.Fprintf(w, "medians over %d rounds (CPU and allocations: the whole process, load generator included):\n", rounds)
	for _, name := range order {
		f := med[name]
		fmt.Fprintf(w, "  %-9s %8.0f requests/s  %6.1f allocs/request  %6.1f µs CPU/request  %.4f commands/request\n",
			name, f.rps, f.allocs, f.cpu, f.commands)
	}
	for _, fl := range floors {
		a, ok1 := med[fl.workload]
		b, ok2 := med[fl.floor]
		if !ok1 || !ok2 || b.rps == 0 {
			continue
		}
		x := a.rps / b.rps
		fmt.Fprintf(w, "  %s / %s: %.2fx requests/s (target >= %.1fx: %s), %+.1f allocs and %+.1f µs CPU per request\n",
			fl.workload, fl.floor, x, fl.atLeast, verdict(x >= fl.atLeast), a.allocs-b.allocs, a.cpu-b.cpu)
	}
	if f, ok := med["returning"]; ok {
		fmt.Fprintf(w, "  returning: %.4f commands/request (target <= %g: %s)\n",
			f.commands, maxReturningCommands, verdict(f.commands <= maxReturningCommands))
	}
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
