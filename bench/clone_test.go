package bench

import (
	"errors"
	"hash/maphash"
	"sync"
	"testing"

	"github.com/sessionstore/sessionstore"
)

// cloneOptions are the default options with decoded values kept in
// memory and cloned by Session.Clone.
func cloneOptions() *sessionstore.Options[Session] {
	return &sessionstore.Options[Session]{Clone: Session.Clone}
}

// BenchmarkGetHitClone is BenchmarkGetHit with Options.Clone: memory
// keeps the decoded sessions, and a hit clones one.
func BenchmarkGetHitClone(b *testing.B) {
	s, ids, cmds := hitStore(b, cloneOptions(), loopPool())
	getHits(b, s, ids, cmds)
}

// BenchmarkGetHitCloneParallel is BenchmarkGetHitClone from GOMAXPROCS
// goroutines, as BenchmarkGetHitParallel is BenchmarkGetHit's.
func BenchmarkGetHitCloneParallel(b *testing.B) {
	s, ids, cmds := hitStore(b, cloneOptions(), pool(b))
	getHitsParallel(b, s, ids, cmds)
}

// floorShards is how many shards the floor map has: as many as the
// store's memory tier makes on this machine, at most.
const floorShards = 16

// floorMap is the floor under a Get hit with decoded values: a map from
// id to decoded session split into shards, each behind its own mutex,
// and nothing else: no expiry, no recency, no coherence, no telemetry.
type floorMap struct {
	seed   maphash.Seed
	shards [floorShards]struct {
		mu sync.Mutex // protects m
		m  map[string]Session
		_  [48]byte // keeps neighbouring shards off one cache line
	}
}

func newFloorMap(ids []string) *floorMap {
	f := &floorMap{seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].m = make(map[string]Session)
	}
	for i, id := range ids {
		sh := &f.shards[maphash.String(f.seed, id)%floorShards]
		sh.m[id] = Sample(i)
	}
	return f
}

// get returns a clone of id's session.
func (f *floorMap) get(id string) (Session, bool) {
	sh := &f.shards[maphash.String(f.seed, id)%floorShards]
	sh.mu.Lock()
	v, ok := sh.m[id]
	sh.mu.Unlock()
	return v.Clone(), ok
}

// BenchmarkFloorClone is the floor under BenchmarkGetHitClone: a sharded
// map holding the same decoded sessions, and the same clone.
func BenchmarkFloorClone(b *testing.B) {
	ids, _ := samples(loopPool())
	f := newFloorMap(ids)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		v, ok := f.get(ids[i])
		if !ok {
			b.Fatal("floor: miss")
		}
		sink += v.UserID
		if i++; i == len(ids) {
			i = 0
		}
	}
}

// BenchmarkFloorCloneParallel is BenchmarkFloorClone from GOMAXPROCS
// goroutines: the parallel speedup the machine allows a lookup and a
// copy, against which GetHitParallel's is judged.
func BenchmarkFloorCloneParallel(b *testing.B) {
	ids, _ := samples(pool(b))
	f := newFloorMap(ids)
	parallel(b, ids, func(id string) (int64, error) {
		v, ok := f.get(id)
		if !ok {
			return 0, errors.New("floor: miss")
		}
		return v.UserID, nil
	})
}

// parallel calls get from GOMAXPROCS goroutines, b.N times in all, each
// goroutine cycling through ids from its own starting point. A goroutine
// whose call fails reports the error and stops.
func parallel(b *testing.B, ids []string, get func(id string) (int64, error)) {
	var (
		mu    sync.Mutex // protects start
		start int
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		i := start % len(ids)
		start += len(ids)/7 + 1
		mu.Unlock()
		var local int64
		for pb.Next() {
			n, err := get(ids[i])
			if err != nil {
				b.Error(err)
				return
			}
			local += n
			if i++; i == len(ids) {
				i = 0
			}
		}
		mu.Lock()
		sink += local
		mu.Unlock()
	})
}
