package integration_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

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

// waitFollowing waits until store s, observed by tm, follows the change
// feed. The oplog feed follows only while memory is asked, so meanwhile
// s is asked for a session of its own.
func waitFollowing(t *testing.T, tm *telemetry, s *sessionstore.Store[visit]) {
	t.Helper()
	probe := fmt.Sprintf("probe-%p", s)
	set := false
	waitObserved(t, "the change feed to catch up", func() bool {
		if !set { // Create, not Set: its version is known, so the feed keeps it
			err := s.Create(bg(t), probe, visit{})
			set = err == nil || errors.Is(err, sessionstore.ErrExists)
		}
		if set {
			_, _ = s.Get(bg(t), probe)
		}
		v, ok := tm.gauge(t, tracing.MetricFollowing)
		return ok && v == 1
	})
}

// A delete or a replacement made on instance A is served by B's memory
// for at most MaxStaleness. Every Get of B is recorded; a Get that began
// later than MaxStaleness after A's write was acknowledged must not
// return the old session.
func TestCoherenceBoundsStaleness(t *testing.T) {
	testStaleness(t, "oplog")
}

// The same through a change stream, on a replica set or sharded cluster.
func TestCoherenceChangeStream(t *testing.T) {
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := mongotest.Client(t).Database("admin").RunCommand(bg(t), bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		t.Fatal(err)
	}
	if hello.SetName == "" && hello.Msg != "isdbgrid" {
		t.Skip("NOT RUN: the change-stream feed needs a replica set or a sharded cluster; this server is a standalone " +
			"(FerretDB here has neither). Set MONGODB_URI to one to run this test.")
	}
	testStaleness(t, "change stream")
}

func testStaleness(t *testing.T, mechanism string) {
	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	var logs syncBuffer
	a := newStore(t, coll, &sessionstore.Options[visit]{TTLIndex: ttl.Off})
	b := newStore(t, otherClient(t, coll, mongotest.URI()), observed(tm, &sessionstore.Options[visit]{
		TTLIndex: ttl.Off,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	}))
	const n = 200
	for i := range n {
		if err := a.Set(bg(t), fmt.Sprint(i), visit{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFollowing(t, tm, b)
	if log := logs.String(); !strings.Contains(log, "feed="+mechanism) && !strings.Contains(log, fmt.Sprintf("feed=%q", mechanism)) {
		t.Fatalf("the store did not follow changes by %s; its log:\n%s", mechanism, logs.String())
	}
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
	t.Logf("%s: staleness over %d deletes and replacements seen by another instance: median %v, p99 %v, worst %v (bound %v)",
		mechanism, n, seen[n/2].Round(time.Millisecond), seen[n*99/100].Round(time.Millisecond), seen[n-1].Round(time.Millisecond), bound)
	if inv := tm.count(t, tracing.MetricInvalidations); inv < n/2 {
		t.Errorf("%d invalidations counted, want at least %d", inv, n/2)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	waitFollowing(t, tm, b)
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
	waitFollowing(t, tm, b)
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
	if n := tm.count(t, tracing.MetricUntrusted); n == 0 {
		t.Error("no Get was counted as untrusted while the feed was cut off")
	}
	untrusted := 0
	for _, sp := range tm.ended(tracing.SpanGet) {
		if v, ok := spanAttr(sp, tracing.Untrusted); ok && v.AsBool() {
			untrusted++
		}
	}
	if untrusted == 0 {
		t.Errorf("no Get span has %s=true", tracing.Untrusted)
	}
	m, ok := tm.metric(t, tracing.MetricLag)
	g, isGauge := m.Data.(metricdata.Gauge[float64])
	if !ok || !isGauge || len(g.DataPoints) != 1 || g.DataPoints[0].Value < 0 || g.DataPoints[0].Value > 1 {
		t.Errorf("%s = %+v, want one point within the bound once following again", tracing.MetricLag, m.Data)
	}
}

// The feed sees every write, but touches (which change neither the
// version nor the payload) and a store's own writes, which it already
// holds, never make a store read the session again.
func TestCoherenceTouchesAndOwnWritesCostNothing(t *testing.T) {
	coll := mongotest.Collection(t)
	acoll, acmds := mongotest.Monitored(t, coll)
	bcoll, bcmds := mongotest.Monitored(t, coll)
	atm, btm := newTelemetry(t), newTelemetry(t)
	a := newStore(t, acoll, observed(atm, &sessionstore.Options[visit]{TTLIndex: ttl.Off}))
	b := newStore(t, bcoll, observed(btm, &sessionstore.Options[visit]{TTLIndex: ttl.Off}))
	// The feed covers only what is read after its first catch-up (what
	// was read before may have changed unseen): start after it.
	waitFollowing(t, atm, a)
	waitFollowing(t, btm, b)
	if err := a.Create(bg(t), "s", visit{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(bg(t), "s", func(v *visit) error { v.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(bg(t), "s"); err != nil {
		t.Fatal(err)
	}
	acmds.Reset()
	bcmds.Reset()
	deadline := time.Now().Add(3 * sessionstore.DefaultMaxStaleness)
	for time.Now().Before(deadline) {
		for _, s := range []*sessionstore.Store[visit]{a, b} {
			if err := s.Touch(bg(t), "s"); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(bg(t)); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Get(bg(t), "s"); err != nil || v.N != 2 {
				t.Fatalf("Get = %v, %v", v, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reads may still happen when a feed lags past the bound on a busy
	// machine (each counted as untrusted) or loses track; none comes from
	// the touches.
	// A feed lost (a poll past its timeout, the oplog wrapping) empties
	// memory: one read per store after it.
	explained := func() int64 {
		return atm.count(t, tracing.MetricUntrusted) + btm.count(t, tracing.MetricUntrusted) +
			atm.count(t, tracing.MetricFallbacks) + btm.count(t, tracing.MetricFallbacks)
	}
	if n := acmds.Count("find") + bcmds.Count("find"); int64(n) > explained() {
		t.Errorf("touches over %v made the stores read the session %d times, %d of them with the feed behind or lost; want none otherwise",
			3*sessionstore.DefaultMaxStaleness, n, explained())
	}
	if n := btm.count(t, tracing.MetricInvalidations) + atm.count(t, tracing.MetricInvalidations); n != 0 {
		t.Errorf("%d invalidations by touches and own writes, want 0", n)
	}
	// A's Update reaches B as an invalidation: B reads once, A not at all.
	if _, err := a.Update(bg(t), "s", func(v *visit) error { v.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, "B to see A's update", func() bool {
		v, err := b.Get(bg(t), "s")
		return err == nil && v.N == 3
	})
	time.Sleep(2 * sessionstore.DefaultMaxStaleness / 4) // a feed poll or two
	if v, err := a.Get(bg(t), "s"); err != nil || v.N != 3 {
		t.Fatalf("A.Get = %v, %v", v, err)
	}
	if n := atm.count(t, tracing.MetricInvalidations); n != 0 {
		t.Errorf("A's own update invalidated its memory %d times, want 0", n)
	}
	if n := btm.count(t, tracing.MetricInvalidations); n != 1 {
		t.Errorf("A's update invalidated B's memory %d times, want 1", n)
	}
}

// A session revoked by another writer moving its expiry into the past,
// without deleting it or changing its version, is dropped from B's memory
// within the bound: the oplog entry holds the whole document, expired.
func TestCoherenceSeesRevocationByExpiry(t *testing.T) {
	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	a := newStore(t, coll, &sessionstore.Options[visit]{TTLIndex: ttl.Off})
	b := newStore(t, otherClient(t, coll, mongotest.URI()), observed(tm, &sessionstore.Options[visit]{TTLIndex: ttl.Off}))
	waitFollowing(t, tm, b)
	if err := a.Create(bg(t), "s", visit{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(bg(t), "s"); err != nil {
		t.Fatal(err)
	}
	// An admin tool, say, expires the session in place.
	if _, err := coll.UpdateOne(bg(t), bson.D{{Key: "_id", Value: "s"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: time.Now().Add(-time.Second)}}}}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		began := time.Now()
		_, err := b.Get(bg(t), "s")
		if errors.Is(err, sessionstore.ErrNotFound) {
			t.Logf("B saw the revocation %v after it", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if late := began.Sub(revoked); late > sessionstore.DefaultMaxStaleness {
			t.Fatalf("B still serves a session expired elsewhere %v ago", late)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The oplog feed reads only while memory is asked: every read costs
// FerretDB the whole oplog. A store never asked reads only its starting
// point; asked, it follows; left alone for four times MaxStaleness, it
// stops reading, and its memory, no longer vouched for, makes Gets read
// the server (fail closed), with CoherenceLenient too, which trusts
// memory up to MaxCacheAge only while a feed fails. While it waits it
// reports no lag.
func TestCoherenceFeedReadsOnlyWhileMemoryIsAsked(t *testing.T) {
	for _, c := range []struct {
		name string
		mode sessionstore.Coherence
	}{{"strict", sessionstore.CoherenceStrict}, {"lenient", sessionstore.CoherenceLenient}} {
		t.Run(c.name, func(t *testing.T) { feedReadsOnlyWhileMemoryIsAsked(t, c.mode) })
	}
}

func feedReadsOnlyWhileMemoryIsAsked(t *testing.T, mode sessionstore.Coherence) {
	coll := mongotest.Collection(t)
	oplog, reads := mongotest.Monitored(t, coll.Database().Client().Database("local").Collection("oplog.rs"))
	bcoll := oplog.Database().Client().Database(coll.Database().Name()).Collection(coll.Name())
	tm := newTelemetry(t)
	a := newStore(t, coll, &sessionstore.Options[visit]{TTLIndex: ttl.Off})
	// On an empty oplog a feed polls until it has an entry to find again
	// after a wait; the test server's is empty when this test runs alone.
	if err := a.Create(bg(t), "seed", visit{N: 1}); err != nil {
		t.Fatal(err)
	}
	b := newStore(t, bcoll, observed(tm, &sessionstore.Options[visit]{TTLIndex: ttl.Off, Coherence: mode}))
	idle := func(what string, most int) {
		t.Helper()
		reads.Reset()
		time.Sleep(2 * sessionstore.DefaultMaxStaleness)
		if n := reads.Count("find"); n > most {
			t.Errorf("%s: the feed read the oplog %d times in %v, want at most %d", what, n, 2*sessionstore.DefaultMaxStaleness, most)
		}
		if v, ok := tm.gauge(t, tracing.MetricFollowing); !ok || v != 0 {
			t.Errorf("%s: %s = %d, %v; want 0", what, tracing.MetricFollowing, v, ok)
		}
		if m, ok := tm.metric(t, tracing.MetricLag); ok {
			if g, _ := m.Data.(metricdata.Gauge[float64]); len(g.DataPoints) > 0 {
				t.Errorf("%s: %s = %+v, want no point while the feed waits", what, tracing.MetricLag, g.DataPoints)
			}
		}
	}
	idle("never asked", 1) // its starting point

	waitFollowing(t, tm, b)
	if err := a.Create(bg(t), "s", visit{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(bg(t), "s"); err != nil {
		t.Fatal(err)
	}
	reads.Reset()
	for range 10 {
		if _, err := b.Get(bg(t), "s"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(sessionstore.DefaultMaxStaleness / 10)
	}
	if n := reads.Count("find"); n == 0 {
		t.Error("the feed did not read the oplog while memory was asked")
	}

	time.Sleep(4 * sessionstore.DefaultMaxStaleness)
	idle("after 4 times MaxStaleness without a Get", 0)
	if err := a.Delete(bg(t), "s"); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(bg(t), "s"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("B.Get after A's delete, with B's feed waiting = %v, %v; want ErrNotFound", v, err)
	}
}
