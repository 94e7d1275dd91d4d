package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// fakeFeed hands the engine's sink to the test, which plays the feed.
type fakeFeed struct{ sinks chan feed.Sink }

func (f *fakeFeed) Run(ctx context.Context, s feed.Sink) {
	f.sinks <- s
	<-ctx.Done()
}

// coherent starts an engine in mode c with a fake feed and returns it
// with the feed's sink.
func coherent(t *testing.T, clk *clock, c engine.Coherence, db *tiertest.Fake) (*engine.Engine, feed.Sink, engine.Config) {
	t.Helper()
	cfg := config(t, clk)
	f := &fakeFeed{sinks: make(chan feed.Sink, 1)}
	cfg.Feed, cfg.Coherence, cfg.MaxStaleness = f, c, time.Second
	e := start(t, cfg, db)
	select {
	case s := <-f.sinks:
		s.CaughtUp(clk.Now()) // the feed has found its starting point
		return e, s, cfg
	case <-time.After(5 * time.Second):
		t.Fatal("the engine did not start its feed")
		return nil, nil, cfg
	}
}

// hit reports whether memory answers a Get of id.
func hit(t *testing.T, e *engine.Engine, cfg engine.Config, id string) bool {
	t.Helper()
	_, _, ok, err := e.Cached(op(t, cfg), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// awaiting calls the sink's Await in a goroutine, gives it time to start
// waiting, and returns a channel closed when it returns.
func awaiting(sink feed.Sink) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = sink.(feed.Pacer).Await(context.Background())
	}()
	time.Sleep(50 * time.Millisecond)
	return done
}

// Without a feed that has caught up, memory answers for MaxStaleness after
// a read, then reads go to the server; a feed caught up within the bound
// lets memory answer for longer, up to MaxCacheAge.
func TestStrictTrustsMemoryOnlyWithinTheBound(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	e, sink, cfg := coherent(t, clk, engine.Strict, db)
	ctx := context.Background()
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, ctx, op(t, cfg), "a", accept); err != nil {
		t.Fatal(err)
	}
	clk.Add(999 * time.Millisecond)
	if !hit(t, e, cfg, "a") {
		t.Fatal("memory did not answer within MaxStaleness of the read")
	}
	clk.Add(time.Millisecond)
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered MaxStaleness after the read with no feed caught up")
	}
	sink.CaughtUp(clk.Now().Add(-500 * time.Millisecond))
	if !hit(t, e, cfg, "a") {
		t.Fatal("memory did not answer with the feed caught up 500ms ago")
	}
	clk.Add(500 * time.Millisecond)
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered with the feed caught up MaxStaleness ago")
	}
	sink.CaughtUp(clk.Now())
	clk.Add(cfg.MaxCacheAge)
	sink.CaughtUp(clk.Now())
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered past MaxCacheAge")
	}
}

// A change seen by the feed drops the session from memory unless memory
// holds what was written; touches, which change neither version nor
// payload, and this instance's own writes cost nothing.
func TestChangedDropsWhatMemoryDoesNotHold(t *testing.T) {
	for _, c := range []struct {
		name    string
		rev     int64
		payload []byte
		kept    bool
	}{
		{"same version and payload", 2, []byte("v"), true},
		{"same version, no payload", 2, nil, true},
		{"same version, other payload", 2, []byte("w"), false},
		{"newer version", 3, nil, false},
		{"older version: history", 1, nil, true},
		{"unversioned replacement", 0, []byte("v"), false},
		{"a delete", -1, nil, false},
		{"unversioned, no payload", 0, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			db := &tiertest.Fake{}
			e, sink, cfg := coherent(t, clk, engine.Strict, db)
			db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 2})
			if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
				t.Fatal(err)
			}
			sink.CaughtUp(clk.Now())
			sink.Changed("a", c.rev, c.payload)
			if got := hit(t, e, cfg, "a"); got != c.kept {
				t.Fatalf("memory answers: %v, want %v", got, c.kept)
			}
		})
	}
	t.Run("unversioned, same payload", func(t *testing.T) {
		clk := newClock()
		db := &tiertest.Fake{}
		e, sink, cfg := coherent(t, clk, engine.Strict, db)
		db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour)})
		if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
			t.Fatal(err)
		}
		sink.Changed("a", 0, []byte("v")) // a Node store's touch, as the oplog shows it
		if !hit(t, e, cfg, "a") {
			t.Fatal("a touch of an unversioned session dropped it")
		}
	})
}

// A change seen while a load or a write of the session is in flight keeps
// it from caching what it read or wrote, which may predate the change,
// unless the change is that very write.
func TestChangedWinsOverWorkInFlight(t *testing.T) {
	for _, call := range []string{"get", "set"} {
		t.Run(call, func(t *testing.T) {
			clk := newClock()
			db := &tiertest.Fake{}
			held, release := make(chan struct{}), make(chan struct{})
			db.Before = func(ctx context.Context, c string) error {
				if c == call {
					close(held)
					<-release
				}
				return nil
			}
			e, sink, cfg := coherent(t, clk, engine.Strict, db)
			db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
			sink.CaughtUp(clk.Now())
			done := make(chan error, 1)
			go func() {
				var err error
				if call == "get" {
					_, _, err = get(e, context.Background(), op(t, cfg), "a", accept)
				} else {
					err = e.Set(context.Background(), "a", []byte("mine"), 0, time.Time{}, engine.Meta{})
				}
				done <- err
			}()
			<-held
			sink.Changed("a", 7, []byte("theirs"))
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if hit(t, e, cfg, "a") {
				t.Fatalf("the %s in flight cached what it saw after a change was reported", call)
			}
		})
	}
}

func TestOwnWriteSeenInFlightIsKept(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	held, release := make(chan struct{}), make(chan struct{})
	db.Before = func(ctx context.Context, c string) error {
		if c == "replace" {
			close(held)
			<-release
		}
		return nil
	}
	e, sink, cfg := coherent(t, clk, engine.Strict, db)
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	old, _, err := get(e, context.Background(), op(t, cfg), "a", accept)
	if err != nil {
		t.Fatal(err)
	}
	sink.CaughtUp(clk.Now())
	done := make(chan error, 1)
	go func() {
		_, err := e.Replace(context.Background(), "a", old, []byte("mine"), 0, time.Time{}, engine.Meta{})
		done <- err
	}()
	<-held
	sink.Changed("a", 2, []byte("mine")) // the write's own entry, seen before it returns
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !hit(t, e, cfg, "a") {
		t.Fatal("the feed's report of this instance's own write dropped it")
	}
}

// When the feed loses track, memory is emptied. Strict then trusts only
// recent reads; Lenient trusts memory up to MaxCacheAge.
func TestLostEmptiesMemory(t *testing.T) {
	for _, c := range []struct {
		mode    engine.Coherence
		trusted bool // a record read 2s before, with the feed lost
	}{{engine.Strict, false}, {engine.Lenient, true}} {
		clk := newClock()
		db := &tiertest.Fake{}
		e, sink, cfg := coherent(t, clk, c.mode, db)
		db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
		if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
			t.Fatal(err)
		}
		sink.CaughtUp(clk.Now())
		sink.Lost(errors.New("feed down"))
		if hit(t, e, cfg, "a") {
			t.Fatalf("mode %d: memory answered after the feed was lost", c.mode)
		}
		if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
		if got := hit(t, e, cfg, "a"); got != c.trusted {
			t.Fatalf("mode %d: memory answers 2s after a read with the feed lost: %v, want %v", c.mode, got, c.trusted)
		}
		if gets := db.Calls("get"); gets != 2 {
			t.Fatalf("mode %d: %d reads, want 2", c.mode, gets)
		}
	}
}

// Off never starts the feed.
func TestOffFollowsNoFeed(t *testing.T) {
	cfg := config(t, newClock())
	f := &fakeFeed{sinks: make(chan feed.Sink, 1)}
	cfg.Feed, cfg.Coherence = f, engine.Off
	start(t, cfg, &tiertest.Fake{})
	select {
	case <-f.sinks:
		t.Fatal("the feed runs with coherence off")
	case <-time.After(50 * time.Millisecond):
	}
}

// The feed is told to wait while memory is not asked: from the start
// until a Get finds a live record in memory, and again once none has for
// four times MaxStaleness. A Get that asks memory ends the wait.
func TestFeedWaitsUntilMemoryIsAsked(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	e, sink, cfg := coherent(t, clk, engine.Strict, db)
	pacer, ok := sink.(feed.Pacer)
	if !ok {
		t.Fatal("the engine's sink is not a feed.Pacer")
	}
	await := func() (chan error, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			waited, err := pacer.Await(ctx)
			if err == nil && !waited {
				err = errors.New("Await returned at once")
			}
			done <- err
		}()
		return done, cancel
	}
	blocked := func(done chan error, what string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("%s: Await returned (%v), want it to wait", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	done, cancel := await()
	defer cancel()
	blocked(done, "never asked")
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
		t.Fatal(err)
	}
	blocked(done, "after a load, which asks the server, not memory")
	if !hit(t, e, cfg, "a") {
		t.Fatal("memory did not answer")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a Get answered by memory did not end the wait")
	}
	clk.Add(4*cfg.MaxStaleness - time.Millisecond)
	if waited, err := pacer.Await(context.Background()); waited || err != nil {
		t.Fatalf("Await = %v, %v within the idle bound of the last Get; want it to return at once", waited, err)
	}
	clk.Add(time.Millisecond)
	done, cancel = await()
	blocked(done, "idle for 4 times MaxStaleness")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Await = %v after its context ended, want context.Canceled", err)
	}
}

// History lost while the feed waited empties memory, like any loss.
func TestLostWhileIdleEmptiesMemory(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	e, sink, cfg := coherent(t, clk, engine.Strict, db)
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
		t.Fatal(err)
	}
	sink.Lost(feed.ErrIdle)
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered after history was lost while idle")
	}
}

// Lenient trusts memory past the bound for a feed that fails, not for
// one that waits for memory to be asked: from the wait to the next
// catch-up it is Strict.
func TestLenientIsStrictWhileTheFeedWaits(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	e, sink, cfg := coherent(t, clk, engine.Lenient, db)
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * cfg.MaxStaleness) // nobody asked memory: the feed waits
	done := awaiting(sink)
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered past the bound while the feed waited")
	}
	<-done // the Get woke the feed
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered past the bound before the woken feed caught up")
	}
	sink.CaughtUp(clk.Now())
	if !hit(t, e, cfg, "a") {
		t.Fatal("memory did not answer once the feed caught up")
	}
}

// A feed that waits vouches for nothing, even right after a poll: a change
// committed just before that poll may be logged just after it, and no
// later poll would report it. Memory answers again at the next catch-up.
func TestWaitingFeedVouchesForNothing(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	e, sink, cfg := coherent(t, clk, engine.Strict, db)
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, context.Background(), op(t, cfg), "a", accept); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * cfg.MaxStaleness) // nobody asked memory
	sink.CaughtUp(clk.Now())      // the last poll before the wait
	done := awaiting(sink)
	if hit(t, e, cfg, "a") {
		t.Fatal("memory answered for a record older than the bound while the feed waited")
	}
	<-done
	sink.CaughtUp(clk.Now())
	if !hit(t, e, cfg, "a") {
		t.Fatal("memory did not answer once the woken feed caught up")
	}
}
