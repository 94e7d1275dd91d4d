package bench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// BenchmarkUpdate is an uncontended Update of a session in memory: the
// decode, fn, the encode and one conditional update. Compare with
// BenchmarkSet: the same write, unconditional.
func BenchmarkUpdate(b *testing.B) {
	counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	s := newStore(b, counted, nil)
	ids, vs := samples(loopPool())
	ctx := bg(b)
	for i, id := range ids {
		if err := s.Create(ctx, id, vs[i]); err != nil {
			b.Fatal(err)
		}
	}
	cmds.Reset()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Update(ctx, ids[i], func(v *Session) error { v.Visits++; return nil }); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
	b.ReportMetric(float64(cmds.Count())/float64(b.N), "commands/op")
}

// BenchmarkUpdateContended has g goroutines, half on each of two stores
// with their own clients, increment one session's counter. It reports the
// database commands (of both clients) per successful Update and checks
// that the counter equals the successful Updates.
func BenchmarkUpdateContended(b *testing.B) {
	for _, g := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			coll := mongotest.Collection(b)
			collA, ca := mongotest.Monitored(b, coll)
			collB, cb := mongotest.Monitored(b, coll)
			opts := &sessionstore.Options[Session]{UpdateAttempts: 1000}
			stores := []*sessionstore.Store[Session]{newStore(b, collA, opts), newStore(b, collB, opts)}
			ctx := bg(b)
			if err := stores[0].Create(ctx, "hot", Session{}); err != nil {
				b.Fatal(err)
			}
			ca.Reset()
			cb.Reset()
			var ok, next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range g {
				s := stores[w%2]
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Update(ctx, "hot", func(v *Session) error { v.Visits++; return nil }); err != nil {
							b.Error(err)
							return
						}
						ok.Add(1)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			commands := ca.Count() + cb.Count()
			v, err := stores[0].Update(ctx, "hot", func(*Session) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			if int64(v.Visits) != ok.Load() {
				b.Fatalf("counter %d after %d successful Updates", v.Visits, ok.Load())
			}
			b.ReportMetric(float64(commands)/float64(ok.Load()), "commands/update")
		})
	}
}
