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

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
	"github.com/sessionstore/sessionstore/ttl"
)

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// config returns the store's defaults with TTL index management off and
// no flush before the test asks for one.
func config(t *testing.T, clk *clock) engine.Config {
	t.Helper()
	obs, err := observe.New("db", "sessions", nil, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Config{
		Collection:        "sessions",
		TTL:               time.Hour,
		MaxPayload:        1 << 20,
		MaxCacheAge:       time.Minute,
		Coherence:         engine.Off, // coherence_test.go tests the others
		LoadTimeout:       time.Second,
		WriteTimeout:      time.Second,
		TouchInterval:     time.Hour,
		TouchBatchSize:    1000,
		TouchGranularity:  time.Second,
		MaxPendingTouches: 100,
		TTLIndex:          ttl.Off,
		IndexTimeout:      time.Second,
		ReapInterval:      time.Hour,
		EnsureIndex: func(context.Context) (ttl.Decision, error) {
			return ttl.Decision{Mode: ttl.Off, Action: ttl.Disabled}, nil
		},
		Now:      clk.Now,
		Observer: obs,
	}
}

// start returns an engine over db with a memory tier, closed when the
// test ends, after checking that it leaves no goroutine behind.
func start(t *testing.T, cfg engine.Config, db *tiertest.Fake) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), cfg, db, tier.NewMemory(100))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = e.Close(ctx)
		if running := e.Running(); len(running) > 0 {
			t.Errorf("still running after Close: %v", running)
		}
	})
	return e
}

func op(t *testing.T, cfg engine.Config) *observe.Operation {
	_, o := cfg.Observer.Start(context.Background(), observe.Get)
	t.Cleanup(func() { o.End(nil) })
	return &o
}

func accept([]byte) error { return nil }

// get is a Get as the Store makes it: memory first, else a shared load.
func get(e *engine.Engine, ctx context.Context, o *observe.Operation, id string, check func([]byte) error) (tier.Record, bool, error) {
	rec, key, hit, err := e.Cached(o, id)
	if err != nil {
		return tier.Record{}, false, err
	}
	if hit {
		return *rec, false, nil
	}
	return e.Load(ctx, o, key, check)
}

func TestGetLoadsOnceThenHits(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get of a missing session = %v, want ErrNotFound", err)
	}
	db.Put(tier.Record{ID: "a", Payload: []byte("v1"), Expires: clk.Now().Add(time.Hour)})
	checks := 0
	check := func(p []byte) error { checks++; return nil }
	rec, mine, err := get(e, ctx, op(t, cfg), "a", check)
	if err != nil || string(rec.Payload) != "v1" || !mine || checks != 1 {
		t.Fatalf("first Get = %q, mine %t, %v, %d checks; want v1, mine, 1 check", rec.Payload, mine, err, checks)
	}
	rec, mine, err = get(e, ctx, op(t, cfg), "a", check)
	if err != nil || string(rec.Payload) != "v1" || mine || checks != 1 {
		t.Fatalf("second Get = %q, mine %t, %v, %d checks; want v1 from memory", rec.Payload, mine, err, checks)
	}
	if n := db.Calls("get"); n != 2 {
		t.Fatalf("%d server reads, want 2 (the miss and the load)", n)
	}
	// Past MaxCacheAge memory is not trusted.
	clk.Add(time.Minute)
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); err != nil || db.Calls("get") != 3 {
		t.Fatalf("Get after MaxCacheAge: %v, %d reads; want a third read", err, db.Calls("get"))
	}
	// An expired record is not served from memory.
	clk.Add(time.Hour)
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get of an expired session = %v", err)
	}
}

// Concurrent cold Gets share one read; one caller's check runs, and the
// others decode themselves.
func TestColdGetsCollapse(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour)})
	release := make(chan struct{})
	db.Before = func(ctx context.Context, call string) error {
		if call == "get" {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	e := start(t, cfg, db)
	var checks, mine atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			o := op(t, cfg)
			_, m, err := get(e, context.Background(), o, "a", func([]byte) error { checks.Add(1); return nil })
			if err != nil {
				t.Error(err)
			}
			if m {
				mine.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := db.Calls("get"); n != 1 {
		t.Errorf("%d reads for 100 concurrent Gets, want 1", n)
	}
	if checks.Load() != 1 || mine.Load() != 1 {
		t.Errorf("%d checks, %d callers told theirs ran; want 1 and 1", checks.Load(), mine.Load())
	}
}

// A load that started before a Set must not put the older value back.
func TestLoadRacingSetKeepsTheWrite(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	reading := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	db := &tiertest.Fake{}
	ctx := context.Background()
	db.Put(tier.Record{ID: "a", Payload: []byte("old"), Expires: clk.Now().Add(time.Hour)})
	db.Before = func(ctx context.Context, call string) error {
		if call == "get" {
			once.Do(func() {
				close(reading)
				<-release
			})
		}
		return nil
	}
	e := start(t, cfg, db)
	done := make(chan []byte)
	go func() {
		rec, _, _ := get(e, ctx, op(t, cfg), "a", accept)
		done <- rec.Payload
	}()
	<-reading
	if err := e.Set(ctx, "a", []byte("new"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done // old or new: it began before the Set ended
	rec, _, err := get(e, ctx, op(t, cfg), "a", accept)
	if err != nil || string(rec.Payload) != "new" {
		t.Fatalf("Get after the Set = %q, %v; want new", rec.Payload, err)
	}
}

func TestCorruptIsNeverCached(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	ctx := context.Background()
	db.Put(tier.Record{ID: "a", Payload: []byte("bad"), Expires: clk.Now().Add(time.Hour)})
	e := start(t, cfg, db)
	bad := errors.New("corrupt")
	for range 2 {
		if _, _, err := get(e, ctx, op(t, cfg), "a", func([]byte) error { return bad }); !errors.Is(err, bad) {
			t.Fatalf("Get = %v, want the check's error", err)
		}
	}
	if n := db.Calls("get"); n != 2 {
		t.Fatalf("%d reads, want 2: a corrupt record is not cached", n)
	}
}

func TestBadInput(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.Prefix = "app:"
	cfg.MaxPayload = 10
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	for _, id := range []string{"", strings.Repeat("x", engine.MaxIDLength), "a\xff"} {
		if _, _, err := get(e, ctx, op(t, cfg), id, accept); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Get(%q) = %v", id, err)
		}
		if err := e.Set(ctx, id, nil, 0, time.Time{}, engine.Meta{}); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Set(%q) = %v", id, err)
		}
		if err := e.Delete(ctx, id); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Delete(%q) = %v", id, err)
		}
		if err := e.Touch(id, time.Time{}); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Touch(%q) = %v", id, err)
		}
	}
	if err := e.Set(ctx, "a", make([]byte, 11), 0, time.Time{}, engine.Meta{}); !errors.Is(err, tier.ErrTooLarge) {
		t.Errorf("Set of 11 bytes = %v, want ErrTooLarge", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := get(e, cancelled, op(t, cfg), "a", accept); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v", err)
	}
	if err := e.Set(cancelled, "a", nil, 0, time.Time{}, engine.Meta{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a cancelled context = %v", err)
	}
	if err := e.Delete(cancelled, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context = %v", err)
	}
	if err := e.Clear(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Clear with a cancelled context = %v", err)
	}
	if n := db.Calls("set") + db.Calls("get") + db.Calls("delete") + db.Calls("clear"); n != 0 {
		t.Errorf("bad input reached the server %d times", n)
	}
}

// A Get whose context ends while the shared read hangs returns at once.
func TestGetReturnsWhenItsContextEnds(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{Before: func(ctx context.Context, call string) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	e := start(t, cfg, db)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want its deadline", err)
	}
}

func TestSetDeleteAndFailedWrites(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.StoredTTL = true
	var fail atomic.Bool
	db := &tiertest.Fake{Before: func(_ context.Context, call string) error {
		if fail.Load() && call != "get" {
			return errors.New("server down")
		}
		return nil
	}}
	e := start(t, cfg, db)
	ctx := context.Background()
	if err := e.Set(ctx, "a", []byte("v1"), 2*time.Hour, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	rec, ok := db.Record("a")
	if !ok || rec.TTL != 2*time.Hour || !rec.Expires.Equal(clk.Now().Add(2*time.Hour)) {
		t.Fatalf("stored %+v, want a 2h lifetime", rec)
	}
	until := clk.Now().Add(5 * time.Minute)
	if err := e.Set(ctx, "a", []byte("v2"), 0, until, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("a"); !rec.Expires.Equal(until) || rec.TTL != time.Hour {
		t.Fatalf("stored %+v, want expiry %v and the default lifetime", rec, until)
	}
	// A failed write drops the cached copy: the server's state is unknown.
	fail.Store(true)
	if err := e.Set(ctx, "a", []byte("v3"), 0, time.Time{}, engine.Meta{}); err == nil {
		t.Fatal("Set against a failing server succeeded")
	}
	fail.Store(false)
	reads := db.Calls("get")
	if rec, _, err := get(e, ctx, op(t, cfg), "a", accept); err != nil || string(rec.Payload) != "v2" || db.Calls("get") != reads+1 {
		t.Fatalf("Get after a failed Set = %q, %v; want v2 read from the server", rec.Payload, err)
	}
	if err := e.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
}

func TestLenAllClearWithPrefix(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.Prefix = "app:"
	db := &tiertest.Fake{Prefix: "app:"}
	e := start(t, cfg, db)
	ctx := context.Background()
	for i := range 3 {
		if err := e.Set(ctx, fmt.Sprint(i), []byte("v"), 0, time.Time{}, engine.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	db.Put(tier.Record{ID: "other:x", Expires: clk.Now().Add(time.Hour)})
	if n, err := e.Len(ctx); n != 3 || err != nil {
		t.Fatalf("Len = %d, %v; want 3", n, err)
	}
	var ids []string
	for rec, err := range e.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
		if len(ids) == 2 {
			break
		}
	}
	if strings.Join(ids, ",") != "0,1" {
		t.Fatalf("All yielded %v, want 0 and 1 without the prefix", ids)
	}
	if err := e.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(e, ctx, op(t, cfg), "0", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get after Clear = %v", err)
	}
	if _, ok := db.Record("other:x"); !ok {
		t.Fatal("Clear deleted a session of another prefix")
	}
}

func TestClosed(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	e := start(t, cfg, &tiertest.Fake{})
	ctx := context.Background()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Get after Close = %v", err)
	}
	if err := e.Touch("a", time.Time{}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Touch after Close = %v", err)
	}
	if err := e.Flush(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
	if _, err := e.Len(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Len after Close = %v", err)
	}
	if err := e.Clear(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Clear after Close = %v", err)
	}
	if _, err := e.Reap(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Reap after Close = %v", err)
	}
	for _, err := range e.All(ctx) {
		if !errors.Is(err, engine.ErrClosed) {
			t.Errorf("All after Close = %v", err)
		}
	}
}

// observerReporting returns an observer that passes background failures
// to onError.
func observerReporting(t *testing.T, onError func(error)) *observe.Observer {
	t.Helper()
	obs, err := observe.New("db", "sessions", nil, nil, slog.New(slog.DiscardHandler), onError)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

func TestCreateAndReplace(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	if err := e.Create(ctx, "a", []byte("v1"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	rec, key, hit, err := e.Cached(op(t, cfg), "a")
	if err != nil || !hit || rec.Rev != 1 || string(rec.Payload) != "v1" {
		t.Fatalf("Cached after Create = %+v, %t, %v", rec, hit, err)
	}
	if err := e.Create(ctx, "a", []byte("x"), 0, time.Time{}, engine.Meta{}); !errors.Is(err, tier.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	if got, _ := db.Record("a"); string(got.Payload) != "v1" {
		t.Fatalf("a failed Create changed the session: %+v", got)
	}
	next, err := e.Replace(ctx, key, *rec, []byte("v2"), 0, time.Time{}, engine.Meta{})
	if err != nil || next.Rev != 2 {
		t.Fatalf("Replace = %+v, %v", next, err)
	}
	if _, err := e.Replace(ctx, key, *rec, []byte("v3"), 0, time.Time{}, engine.Meta{}); !errors.Is(err, tier.ErrConflict) {
		t.Fatalf("Replace of a stale version = %v, want ErrConflict", err)
	}
	// The conflict dropped the cached copy: the next read asks the server.
	if _, _, hit, _ := e.Cached(op(t, cfg), "a"); hit {
		t.Fatal("memory still answers after a conflict")
	}
	if got, _ := db.Record("a"); string(got.Payload) != "v2" || got.Rev != 2 {
		t.Fatalf("stored %+v, want v2 at version 2", got)
	}
	if _, err := e.Replace(ctx, key, next, make([]byte, cfg.MaxPayload+1), 0, time.Time{}, engine.Meta{}); !errors.Is(err, tier.ErrTooLarge) {
		t.Fatalf("Replace too large = %v", err)
	}
}
