package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

type visit struct {
	N int `msgpack:"n" bson:"n"`
}

// otherClient returns coll as seen through a client of its own, as
// another instance would see it; disconnected when the test ends.
func otherClient(t *testing.T, coll *mongo.Collection, uri string) *mongo.Collection {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(coll.Database().Name()).Collection(coll.Name())
}

// waitFollowing waits until a store observed by tm follows the change feed.
func waitFollowing(t *testing.T, tm *telemetry) {
	t.Helper()
	waitObserved(t, "the change feed to catch up", func() bool {
		v, ok := tm.gauge(t, tracing.MetricFollowing)
		return ok && v == 1
	})
}

// A delete or a replacement made on instance A is served by B's memory
// for at most MaxStaleness. Every Get of B is recorded; a Get that began
// later than MaxStaleness after A's write was acknowledged must not
// return the old session.
func TestCoherenceBoundsStaleness(t *testing.T) {
	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	a := newStore(t, coll, &sessionstore.Options[visit]{TTLIndex: ttl.Off})
	b := newStore(t, otherClient(t, coll, mongotest.URI()), observed(tm, &sessionstore.Options[visit]{TTLIndex: ttl.Off}))
	const n = 200
	for i := range n {
		if err := a.Set(bg(t), fmt.Sprint(i), visit{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFollowing(t, tm)
	for i := range n {
		if _, err := b.Get(bg(t), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}

	bound := sessionstore.DefaultMaxStaleness
	seen := make([]time.Duration, n) // from A's acknowledgement to B's first fresh read
	var (
		mu    sync.Mutex
		fails []string
	)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				id := fmt.Sprint(i)
				deleted := i%2 == 0
				var err error
				if deleted {
					err = a.Delete(bg(t), id)
				} else {
					err = a.Set(bg(t), id, visit{N: 2})
				}
				acked := time.Now()
				if err != nil {
					t.Error(err)
					return
				}
				for {
					began := time.Now()
					v, err := b.Get(bg(t), id)
					stale := err == nil && v.N == 1
					if err != nil && (!deleted || !errors.Is(err, sessionstore.ErrNotFound)) {
						t.Errorf("B.Get(%s): %v", id, err)
						return
					}
					if !stale {
						seen[i] = time.Since(acked)
						break
					}
					if late := began.Sub(acked); late > bound {
						mu.Lock()
						fails = append(fails, fmt.Sprintf("%s: old session served %v after the write", id, late))
						mu.Unlock()
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	for _, f := range fails {
		t.Error(f)
	}
	slices.Sort(seen)
	t.Logf("staleness over %d deletes and replacements seen by another instance: median %v, p99 %v, worst %v (bound %v)",
		n, seen[n/2].Round(time.Millisecond), seen[n*99/100].Round(time.Millisecond), seen[n-1].Round(time.Millisecond), bound)
	if inv := tm.count(t, tracing.MetricInvalidations); inv < n/2 {
		t.Errorf("%d invalidations counted, want at least %d", inv, n/2)
	}
}

// While B's connection to the server is cut, no Get of B returns a session
// deleted or replaced on A more than MaxStaleness before it began; once the
// connection is back, B follows changes again without a restart.
func TestCoherenceFailsClosedWhileCutOff(t *testing.T) {
	coll := mongotest.Collection(t)
	u, err := url.Parse(mongotest.URI())
	if err != nil || u.Scheme != "mongodb" {
		t.Skipf("the fault proxy needs a mongodb:// URI on this machine, not %q", u)
	}
	proxy, err := mongotest.StartProxy(u.Host)
	if err != nil {
		t.Skipf("the fault proxy only fronts a loopback server: %v", err)
	}
	t.Cleanup(func() { proxy.Close() })
	viaProxy, err := proxy.URI(mongotest.URI())
	if err != nil {
		t.Fatal(err)
	}
	tm := newTelemetry(t)
	a := newStore(t, coll, &sessionstore.Options[visit]{TTLIndex: ttl.Off})
	b := newStore(t, otherClient(t, coll, viaProxy), observed(tm, &sessionstore.Options[visit]{TTLIndex: ttl.Off}))
	const n = 10
	for i := range n {
		if err := a.Set(bg(t), fmt.Sprint(i), visit{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFollowing(t, tm)
	for i := range n {
		if _, err := b.Get(bg(t), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}

	proxy.Blackhole(true)
	acked := make([]time.Time, n)
	for i := range n {
		if i%2 == 0 {
			err = a.Delete(bg(t), fmt.Sprint(i))
		} else {
			err = a.Set(bg(t), fmt.Sprint(i), visit{N: 2})
		}
		if err != nil {
			t.Fatal(err)
		}
		acked[i] = time.Now()
	}
	bound := sessionstore.DefaultMaxStaleness
	cut := time.Now()
	served, failed := 0, 0
	for time.Since(cut) < 3*time.Second {
		for i := range n {
			began := time.Now()
			ctx, cancel := context.WithTimeout(bg(t), 100*time.Millisecond)
			v, err := b.Get(ctx, fmt.Sprint(i))
			cancel()
			switch {
			case err == nil && v.N == 1:
				served++
				if late := began.Sub(acked[i]); late > bound {
					t.Errorf("cut off: session %d served %v after A changed it", i, late)
				}
			case err != nil && !errors.Is(err, sessionstore.ErrNotFound):
				failed++
			}
		}
	}
	if failed == 0 {
		t.Error("no Get failed while B was cut off from the server: the test did not cut it off")
	}
	t.Logf("while cut off for 3s: %d Gets served the old session within the bound, %d failed", served, failed)

	proxy.Blackhole(false)
	proxy.ResetAll()
	waitFollowing(t, tm)
	for i := range n {
		v, err := b.Get(bg(t), fmt.Sprint(i))
		switch {
		case i%2 == 0 && !errors.Is(err, sessionstore.ErrNotFound):
			t.Errorf("after the cut: deleted session %d: %v, %v", i, v, err)
		case i%2 == 1 && (err != nil || v.N != 2):
			t.Errorf("after the cut: replaced session %d: %v, %v", i, v, err)
		}
	}
	// Coherence is back: a change on A reaches B through the feed again.
	if err := a.Set(bg(t), "1", visit{N: 3}); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, "B to see A's change", func() bool {
		v, err := b.Get(bg(t), "1")
		return err == nil && v.N == 3
	})
	if lost := tm.count(t, tracing.MetricFallbacks); lost == 0 {
		t.Error("the feed's loss was not counted")
	}
}
