package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// ratioChunk is how many Gets one side of BenchmarkHitRatios makes in a
// row: a few hundred microseconds, short enough that the load of other
// processes changes little between the sides of a round, and that each
// garbage collection spans many chunks of every side.
const ratioChunk = 500

// side is one of the Gets BenchmarkHitRatios compares, with the time it
// took so far, alone and from GOMAXPROCS goroutines at once.
type side struct {
	name          string
	get           func(id string) (int64, error)
	serial, paral time.Duration
	ops           int // of each kind
}

// BenchmarkHitRatios measures the Gets answered from memory against their
// floors in chunks that alternate within each operation, so that a shared
// machine's load weighs on every side alike; the separate benchmarks
// (GetHitClone and FloorClone, GetHit and BaselineLRUDecode, and their
// parallel forms) give the times, but their ratios move with the load
// between them. One operation is a round: each side makes ratioChunk Gets
// alone, then ratioChunk Gets split over GOMAXPROCS goroutines, the sides
// in turn, in reverse order every other round. It reports, from the
// totals over the rounds:
//
//   - clone-x-floor: a Get with Options.Clone over the floor's (a sharded
//     map and the same clone), in time per Get;
//   - decode-x-lru: a Get without Clone over a golang-lru Get and the
//     decode;
//   - clone-speedup-x-floor and decode-speedup-x-floor: the parallel
//     speedup of each store Get (time alone over time in parallel) over
//     the floor's parallel speedup;
//   - <side>-ns/get and <side>-par-ns/get: the time per Get of each side.
func BenchmarkHitRatios(b *testing.B) {
	n := loopPool()
	clone, ids, cloneCmds := hitStore(b, cloneOptions(), n)
	decode, _, decodeCmds := hitStore(b, nil, n)
	floor := newFloorMap(ids)
	ctx := context.Background()
	sides := []*side{
		{name: "clone", get: func(id string) (int64, error) {
			v, err := clone.Get(ctx, id)
			return v.UserID, err
		}},
		{name: "floor", get: func(id string) (int64, error) {
			v, ok := floor.get(id)
			if !ok {
				return 0, fmt.Errorf("floor: miss")
			}
			return v.UserID, nil
		}},
		{name: "decode", get: func(id string) (int64, error) {
			v, err := decode.Get(ctx, id)
			return v.UserID, err
		}},
		{name: "lru", get: lruDecode(b, ids)},
	}
	procs := runtime.GOMAXPROCS(0)
	order := slices.Clone(sides)
	for b.Loop() {
		slices.Reverse(order)
		for _, sd := range order {
			d, err := chunk(sd.get, ids, 1)
			if err != nil {
				b.Fatalf("%s: %v", sd.name, err)
			}
			sd.serial += d
			if d, err = chunk(sd.get, ids, procs); err != nil {
				b.Fatalf("%s in parallel: %v", sd.name, err)
			}
			sd.paral += d
			sd.ops += ratioChunk
		}
	}
	if finds := cloneCmds.Count("find") + decodeCmds.Count("find"); finds > 0 {
		b.Fatalf("%d Gets read the server: the ratios are not of hits", finds)
	}
	per := func(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }
	for _, sd := range sides {
		b.ReportMetric(per(sd.serial, sd.ops), sd.name+"-ns/get")
		b.ReportMetric(per(sd.paral, sd.ops), sd.name+"-par-ns/get")
	}
	speedup := func(sd *side) float64 { return float64(sd.serial) / float64(sd.paral) }
	c, f, d, l := sides[0], sides[1], sides[2], sides[3]
	b.ReportMetric(float64(c.serial)/float64(f.serial), "clone-x-floor")
	b.ReportMetric(float64(d.serial)/float64(l.serial), "decode-x-lru")
	b.ReportMetric(speedup(c)/speedup(f), "clone-speedup-x-floor")
	b.ReportMetric(speedup(d)/speedup(f), "decode-speedup-x-floor")
}

// chunk makes ratioChunk Gets of ids in turn, split over procs goroutines,
// and returns how long they took.
func chunk(get func(string) (int64, error), ids []string, procs int) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // protects first
		first error
	)
	start := time.Now()
	for p := range procs {
		wg.Go(func() {
			var local int64
			for i := p; i < ratioChunk; i += procs {
				v, err := get(ids[i%len(ids)])
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				local += v
			}
			mu.Lock()
			sink += local
			mu.Unlock()
		})
	}
	wg.Wait()
	return time.Since(start), first
}
