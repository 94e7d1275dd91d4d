package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/observe/observetest"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// Touches extend memory at once and the server on Flush, to the same
// rounded expiry; a touch that would gain nothing is skipped.
func TestTouchFlush(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	if err := e.Set(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	clk.Add(1500 * time.Millisecond)
	if err := e.Touch("a", time.Time{}); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour).Truncate(time.Second).Add(time.Second)
	if rec, _, _ := get(e, ctx, op(t, cfg), "a", accept); !rec.Expires.Equal(want) {
		t.Fatalf("memory expires at %v, want %v", rec.Expires, want)
	}
	if err := e.Touch("a", time.Time{}); err != nil { // same rounded expiry: skipped
		t.Fatal(err)
	}
	if err := e.Touch("ghost", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("a"); !rec.Expires.Equal(want) {
		t.Fatalf("server expires at %v, want %v", rec.Expires, want)
	}
	if _, ok := db.Record("ghost"); ok {
		t.Fatal("a touch created a session")
	}
	if n := db.Calls("touch"); n != 1 {
		t.Fatalf("%d touch commands, want 1", n)
	}
	if err := e.Flush(ctx); err != nil || db.Calls("touch") != 1 {
		t.Fatalf("an empty flush: %v, %d commands", err, db.Calls("touch"))
	}
	// An absolute touch; one not after now does nothing.
	until := clk.Now().Add(3 * time.Hour)
	if err := e.Touch("a", until); err != nil {
		t.Fatal(err)
	}
	if err := e.Touch("a", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("a"); !rec.Expires.Equal(until.Truncate(time.Second).Add(time.Second)) {
		t.Fatalf("server expires at %v, want %v rounded up", rec.Expires, until)
	}
}

func TestTouchAfterSkips(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.TouchAfter = time.Minute
	db := &tiertest.Fake{TouchAfter: time.Minute}
	e := start(t, cfg, db)
	ctx := context.Background()
	_ = e.Set(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{})
	clk.Add(30 * time.Second)
	_ = e.Touch("a", time.Time{})
	if err := e.Flush(ctx); err != nil || db.Calls("touch") != 0 {
		t.Fatalf("a touch within TouchAfter was written: %v, %d commands", err, db.Calls("touch"))
	}
	clk.Add(time.Minute)
	_ = e.Touch("a", time.Time{})
	if err := e.Flush(ctx); err != nil || db.Calls("touch") != 1 {
		t.Fatalf("a touch past TouchAfter: %v, %d commands; want 1", err, db.Calls("touch"))
	}
}

// With stored lifetimes, a touch of a session not in memory reads its
// lifetime from the server first.
func TestTouchReadsStoredLifetimes(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.StoredTTL = true
	db := &tiertest.Fake{}
	ctx := context.Background()
	db.Put(tier.Record{ID: "own", Expires: clk.Now().Add(time.Minute), TTL: 3 * time.Hour})
	db.Put(tier.Record{ID: "default", Expires: clk.Now().Add(time.Minute)})
	e := start(t, cfg, db)
	for _, id := range []string{"own", "default", "ghost"} {
		if err := e.Touch(id, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.Calls("ttls"); n != 1 {
		t.Fatalf("%d lifetime reads, want 1", n)
	}
	for id, life := range map[string]time.Duration{"own": 3 * time.Hour, "default": time.Hour} {
		if rec, _ := db.Record(id); !rec.Expires.Equal(clk.Now().Add(life)) {
			t.Errorf("%s expires in %v, want %v", id, rec.Expires.Sub(clk.Now()), life)
		}
	}
	// A failed lifetime read keeps the touches for the next flush.
	fail := errors.New("server down")
	db.Before = func(_ context.Context, call string) error {
		if call == "ttls" {
			return fail
		}
		return nil
	}
	_ = e.Touch("own", time.Time{})
	if err := e.Flush(ctx); !errors.Is(err, fail) {
		t.Fatalf("Flush = %v, want the read's error", err)
	}
	db.Before = nil
	clk.Add(time.Hour)
	if err := e.Flush(ctx); err != nil || db.Calls("ttls") != 3 {
		t.Fatalf("retried flush: %v, %d lifetime reads; want 3", err, db.Calls("ttls"))
	}
}

// Past MaxPendingTouches touches are dropped and reported; a failed flush
// keeps its touches, except those deleted meanwhile; touches that find no
// room on restore drop the cached copy.
func TestTouchOverflowAndRestore(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.MaxPendingTouches = 3
	var reported atomic.Int64
	cfg.Observer = observerReporting(t, func(error) { reported.Add(1) })
	var fail atomic.Bool
	deleting := make(chan struct{})
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	for i := range 5 {
		db.Put(tier.Record{ID: fmt.Sprint(i), Expires: clk.Now().Add(time.Minute)})
		if err := e.Touch(fmt.Sprint(i), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if reported.Load() != 2 {
		t.Fatalf("%d dropped touches reported, want 2", reported.Load())
	}
	db.Before = func(_ context.Context, call string) error {
		if call == "touch" && fail.Load() {
			deleting <- struct{}{}
			<-deleting
			return errors.New("server down")
		}
		return nil
	}
	fail.Store(true)
	flushed := make(chan error)
	go func() { flushed <- e.Flush(ctx) }()
	<-deleting
	_ = e.Delete(ctx, "0") // while its touch is being written
	deleting <- struct{}{}
	if err := <-flushed; err == nil {
		t.Fatal("Flush against a failing server succeeded")
	}
	fail.Store(false)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Record("0"); ok {
		t.Fatal("a restored touch brought back a deleted session")
	}
	for _, id := range []string{"1", "2"} {
		if rec, _ := db.Record(id); !rec.Expires.Equal(clk.Now().Add(time.Hour)) {
			t.Errorf("%s was not extended after the retry", id)
		}
	}
}

func TestRestoreWithoutRoomDropsTheCachedCopy(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.MaxPendingTouches = 1
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	_ = e.Set(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{})
	_ = e.Set(ctx, "b", []byte("v"), 0, time.Time{}, engine.Meta{})
	clk.Add(10 * time.Second)
	_ = e.Touch("a", time.Time{})
	inFlush := make(chan struct{})
	db.Before = func(_ context.Context, call string) error {
		if call == "touch" {
			inFlush <- struct{}{}
			<-inFlush
			return errors.New("server down")
		}
		return nil
	}
	flushed := make(chan error)
	go func() { flushed <- e.Flush(ctx) }()
	<-inFlush
	_ = e.Touch("b", time.Time{}) // takes the only slot
	inFlush <- struct{}{}
	if err := <-flushed; err == nil || !strings.Contains(err.Error(), "1 dropped") {
		t.Fatalf("Flush = %v, want one touch dropped", err)
	}
	db.Before = nil
	reads := db.Calls("get")
	_, _, _ = get(e, ctx, op(t, cfg), "a", accept)
	if db.Calls("get") != reads+1 {
		t.Fatal("a session whose touch was dropped is still served from memory")
	}
}

// A touch command that times out is sent again in halves, and later
// commands carry fewer ids.
func TestTimedOutTouchesShrink(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.WriteTimeout = 20 * time.Millisecond
	cfg.MaxPendingTouches = 2000
	cfg.TouchBatchSize = 2000
	var mu sync.Mutex
	var sizes []int
	db := &tiertest.Fake{}
	ctx := context.Background()
	for i := range 1000 {
		db.Put(tier.Record{ID: fmt.Sprint(i), Expires: clk.Now().Add(time.Minute)})
	}
	db.Before = func(ctx context.Context, call string) error {
		if call == "touch" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	tdb := &sizing{Fake: db, sizes: &sizes, mu: &mu}
	e, err := engine.New(ctx, cfg, tdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for i := range 1000 {
		_ = e.Touch(fmt.Sprint(i), time.Time{})
	}
	if err := e.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush = %v, want timeouts", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 3 || sizes[0] != 1000 || sizes[1] != 500 || sizes[2] != 500 {
		t.Fatalf("command sizes %v, want 1000 then two halves", sizes)
	}
}

// sizing records the size of every touch command.
type sizing struct {
	*tiertest.Fake
	mu    *sync.Mutex
	sizes *[]int
}

func (s *sizing) TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error) {
	s.mu.Lock()
	*s.sizes = append(*s.sizes, len(ids))
	s.mu.Unlock()
	return s.Fake.TouchMany(ctx, ids, expires, now)
}

// The flusher writes on its own when a batch is full, and retries with
// backoff; Close writes what is left or says how many touches it lost.
func TestFlusherAndClose(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.TouchBatchSize = 2
	cfg.TouchInterval = 10 * time.Millisecond
	var reported atomic.Int64
	cfg.Observer = observerReporting(t, func(error) { reported.Add(1) })
	var fail atomic.Bool
	db := &tiertest.Fake{Before: func(context.Context, string) error {
		if fail.Load() {
			return errors.New("server down")
		}
		return nil
	}}
	e := start(t, cfg, db)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		db.Put(tier.Record{ID: id, Expires: clk.Now().Add(time.Minute)})
		_ = e.Touch(id, time.Time{})
	}
	waitFor(t, func() bool { return db.Calls("touch") >= 1 })
	fail.Store(true)
	_ = e.Touch("a", clk.Now().Add(2*time.Hour))
	waitFor(t, func() bool { return reported.Load() >= 1 })
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := e.Close(cctx); err == nil || !strings.Contains(err.Error(), "1 touches not written") {
		t.Fatalf("Close = %v, want it to count the lost touch", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Where the server cannot keep a TTL index, the reaper runs under the
// engine until Close; a failed setup falls back to it.
func TestIndexSetupAndReaper(t *testing.T) {
	for _, c := range []struct {
		name string
		d    ttl.Decision
		err  error
	}{
		{"reaper", ttl.Decision{Mode: ttl.Auto, Action: ttl.UseReaper, Reaper: true}, nil},
		{"setup failed", ttl.Decision{}, errors.New("no server")},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			cfg := config(t, clk)
			cfg.TTLIndex = ttl.Auto
			cfg.ReapInterval = 10 * time.Millisecond
			cfg.EnsureIndex = func(context.Context) (ttl.Decision, error) { return c.d, c.err }
			db := &tiertest.Fake{}
			db.Put(tier.Record{ID: "dead", Expires: clk.Now().Add(-time.Second)})
			e := start(t, cfg, db)
			d, err := e.TTLIndex(context.Background())
			if !d.Reaper || !errors.Is(err, c.err) {
				t.Fatalf("TTLIndex = %+v, %v; want the reaper", d, err)
			}
			waitFor(t, func() bool { _, ok := db.Record("dead"); return !ok })
			if n, err := e.Reap(context.Background()); n != 0 || err != nil {
				t.Fatalf("Reap = %d, %v", n, err)
			}
		})
	}
}

func TestIndexRequire(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.TTLIndex = ttl.Require
	cfg.EnsureIndex = func(context.Context) (ttl.Decision, error) {
		return ttl.Decision{Action: ttl.UseReaper}, ttl.ErrUnsupported
	}
	if _, err := engine.New(context.Background(), cfg, &tiertest.Fake{}, nil); !errors.Is(err, ttl.ErrUnsupported) {
		t.Fatalf("New = %v, want ErrUnsupported", err)
	}
	cfg.EnsureIndex = func(context.Context) (ttl.Decision, error) {
		return ttl.Decision{Mode: ttl.Require, Action: ttl.Present}, nil
	}
	e := start(t, cfg, &tiertest.Fake{})
	ctx, cancel := context.WithCancel(context.Background())
	if d, err := e.TTLIndex(ctx); d.Action != ttl.Present || err != nil {
		t.Fatalf("TTLIndex = %+v, %v", d, err)
	}
	cancel()
	cfg.TTLIndex = ttl.Auto
	release := make(chan struct{})
	defer close(release)
	cfg.EnsureIndex = func(ctx context.Context) (ttl.Decision, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ttl.Decision{}, ctx.Err()
	}
	e = start(t, cfg, &tiertest.Fake{})
	if _, err := e.TTLIndex(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("TTLIndex with a cancelled context = %v", err)
	}
}

// Without a memory tier, a touch whose rounded expiry is buffered or
// written already is skipped, and one that moves it is not.
func TestTouchSkipsWhatIsBuffered(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	counts := &observetest.Counters{}
	skipped := func() int64 { return counts.Count(tracing.MetricTouchSkipped) }
	obs, err := observe.New("db", "sessions", tracenoop.NewTracerProvider(), counts, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Observer = obs
	db := &tiertest.Fake{}
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Minute)})
	e, err := engine.New(context.Background(), cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	ctx := context.Background()
	clk.Add(100 * time.Millisecond)
	for range 3 { // the same rounded expiry
		if err := e.Touch("a", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := skipped(); n != 2 {
		t.Fatalf("%d touches skipped, want 2", n)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = e.Touch("a", time.Time{}) // written already
	if n := skipped(); n != 3 {
		t.Fatalf("%d touches skipped after the flush, want 3", n)
	}
	clk.Add(time.Second)
	_ = e.Touch("a", time.Time{}) // a later expiry
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour).Truncate(time.Second).Add(time.Second)
	if rec, _ := db.Record("a"); !rec.Expires.Equal(want) || skipped() != 3 || db.Calls("touch") != 2 {
		t.Fatalf("server expires at %v, want %v; %d skipped; %d touch commands, want 2", rec.Expires, want, skipped(), db.Calls("touch"))
	}
	if err := e.Delete(ctx, "a"); err != nil { // forgets the touch
		t.Fatal(err)
	}
	_ = e.Touch("a", time.Time{})
	if n := skipped(); n != 3 {
		t.Fatalf("a touch after Delete was skipped")
	}
}
