package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
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
// machine's load weighs on both sides alike; the separate benchmarks
// (GetHitClone and FloorClone, GetHit and BaselineLRUDecode, and their
// parallel forms) give the times, but their ratios move with the load
// between them. Each pair runs on its own, so that the garbage one side
// makes does not slow the other: the decoding pair makes five times the
// clone pair's. One operation is a round: each side makes ratioChunk Gets
// alone, then ratioChunk Gets split over GOMAXPROCS goroutines, the two
// sides in turn, in reverse order every other round, each chunk after an
// untimed pass over the sessions (see chunk).
//
//   - clone: a Get with Options.Clone against its floor, a sharded map and
//     the same clone (FloorClone);
//   - decode: a Get without Clone against a golang-lru Get and the decode
//     (BaselineLRUDecode).
//
// Each reports, from the totals over the rounds, x-floor (the store's time
// per Get over its floor's), speedup and floor-speedup (time alone over
// time in parallel), speedup-x-floor (the one over the other), and the
// time per Get of each side, alone and in parallel.
func BenchmarkHitRatios(b *testing.B) {
	ids, _ := samples(loopPool())
	ctx := context.Background()
	storeSide := func(b *testing.B, opts *sessionstore.Options[Session]) (*side, func()) {
		s, _, cmds := hitStore(b, opts, len(ids))
		check := func() {
			if n := cmds.Count("find"); n > 0 {
				b.Fatalf("%d Gets read the server: the ratios are not of hits", n)
			}
		}
		return &side{name: "store", get: func(id string) (int64, error) {
			v, err := s.Get(ctx, id)
			return v.UserID, err
		}}, check
	}
	b.Run("clone", func(b *testing.B) {
		store, check := storeSide(b, cloneOptions())
		floor := newFloorMap(ids)
		ratios(b, ids, store, &side{name: "floor", get: func(id string) (int64, error) {
			v, ok := floor.get(id)
			if !ok {
				return 0, fmt.Errorf("floor: miss")
			}
			return v.UserID, nil
		}})
		check()
	})
	b.Run("decode", func(b *testing.B) {
		store, check := storeSide(b, nil)
		ratios(b, ids, store, &side{name: "floor", get: lruDecode(b, ids)})
		check()
	})
}

// ratios runs the rounds of BenchmarkHitRatios for store and floor, and
// reports their figures.
func ratios(b *testing.B, ids []string, store, floor *side) {
	procs := runtime.GOMAXPROCS(0)
	order := []*side{store, floor}
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
	per := func(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }
	speedup := func(sd *side) float64 { return float64(sd.serial) / float64(sd.paral) }
	for _, sd := range order {
		b.ReportMetric(per(sd.serial, sd.ops), sd.name+"-ns/get")
		b.ReportMetric(per(sd.paral, sd.ops), sd.name+"-par-ns/get")
	}
	b.ReportMetric(float64(store.serial)/float64(floor.serial), "x-floor")
	b.ReportMetric(speedup(store), "speedup")
	b.ReportMetric(speedup(floor), "floor-speedup")
	b.ReportMetric(speedup(store)/speedup(floor), "speedup-x-floor")
}

// chunk makes ratioChunk Gets of ids in turn, split over procs goroutines,
// and returns how long they took. One untimed Get of each id comes first,
// so that the chunk finds its side's data in the processor's caches, as
// a benchmark run alone does, rather than the previous side's.
func chunk(get func(string) (int64, error), ids []string, procs int) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // protects first
		first error
	)
	for _, id := range ids {
		if _, err := get(id); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if procs == 1 { // on this goroutine, as a benchmark alone runs
		var local int64
		for i := range ratioChunk {
			v, err := get(ids[i%len(ids)])
			if err != nil {
				return 0, err
			}
			local += v
		}
		sink += local
		return time.Since(start), nil
	}
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
