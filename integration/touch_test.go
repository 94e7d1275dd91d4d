package integration_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

// 10 000 touches over 1 000 sessions within one interval reach the server
// as a handful of write commands, and every session is extended.
func TestTouchesAreBatched(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	seed(t, coll, "s", 1000, clk.Now().Add(time.Hour))
	mcoll, cmds := mongotest.Monitored(t, coll)
	s := newStore(t, mcoll, &sessionstore.Options[profile]{
		TTLIndex:      ttl.Off,
		TTL:           2 * time.Hour,
		Clock:         clk,
		TouchInterval: time.Hour,   // only full batches and Flush write
		WriteTimeout:  time.Minute, // FerretDB takes about 10ms a document: no splitting
	})
	for i := range 10_000 {
		if err := s.Touch(bg(t), fmt.Sprint("s", i%1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	writes := cmds.Count("update", "findAndModify", "insert", "delete")
	t.Logf("10 000 touches over 1 000 sessions: %d write commands", writes)
	if writes == 0 || writes > 3 {
		t.Fatalf("%d write commands, want 1 to 3", writes)
	}
	want := clk.Now().Add(2 * time.Hour)
	cur, err := coll.Find(bg(t), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID      string    `bson:"_id"`
		Expires time.Time `bson:"expires"`
	}
	if err := cur.All(bg(t), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1000 {
		t.Fatalf("%d documents, want 1000", len(docs))
	}
	for _, d := range docs {
		// Expiries are rounded up to the 1s granularity.
		if d.Expires.Before(want) || d.Expires.After(want.Add(time.Second)) {
			t.Fatalf("%s expires %v, want %v rounded up to a second", d.ID, d.Expires, want)
		}
	}
}

func TestTouchNeverShortens(t *testing.T) {
	coll := mongotest.Collection(t)
	long := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: 10 * time.Hour})
	if err := long.Set(bg(t), "a", profile{}); err != nil {
		t.Fatal(err)
	}
	before := rawExpires(t, coll, "a")
	short := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: time.Minute})
	if err := short.Touch(bg(t), "a"); err != nil {
		t.Fatal(err)
	}
	if err := short.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	if after := rawExpires(t, coll, "a"); !after.Equal(before) {
		t.Fatalf("a shorter touch moved expires from %v to %v", before, after)
	}
}

func TestTouchNeverResurrects(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	a := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TouchInterval: time.Hour})
	b := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TouchInterval: time.Hour})
	for _, id := range []string{"own", "other"} {
		if err := a.Set(ctx, id, profile{}); err != nil {
			t.Fatal(err)
		}
		if err := a.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Delete(ctx, "own"); err != nil { // the same store
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "other"); err != nil { // another instance
		t.Fatal(err)
	}
	if err := a.Touch(ctx, "never-existed"); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"own", "other", "never-existed"} {
		if _, ok := mongotest.RawDoc(t, coll, id); ok {
			t.Errorf("a touch brought %q back", id)
		}
	}
}

// A per-session lifetime is honoured for sessions the touching store has
// never seen: the lifetime is kept in the document.
func TestTouchHonoursTTLFuncOutsideMemory(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	life := func(p profile) time.Duration { return time.Duration(p.Seen) * time.Hour }
	opts := func(size int) *sessionstore.Options[profile] {
		return &sessionstore.Options[profile]{TTLIndex: ttl.Off, Clock: clk, TTLFunc: life, CacheSize: size, TouchInterval: time.Hour}
	}
	writer := newStore(t, coll, opts(0))
	if err := writer.Set(bg(t), "three", profile{Seen: 3}); err != nil {
		t.Fatal(err)
	}
	if err := writer.Set(bg(t), "default", profile{Seen: 0}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	mcoll, cmds := mongotest.Monitored(t, coll)
	toucher := newStore(t, mcoll, opts(-1)) // no memory tier at all
	for _, id := range []string{"three", "default"} {
		if err := toucher.Touch(bg(t), id); err != nil {
			t.Fatal(err)
		}
	}
	if err := toucher.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	for id, life := range map[string]time.Duration{"three": 3 * time.Hour, "default": sessionstore.DefaultTTL} {
		want := clk.Now().Add(life)
		if got := rawExpires(t, coll, id); got.Before(want) || got.After(want.Add(time.Second)) {
			t.Errorf("%s expires %v, want %v (its own lifetime)", id, got, want)
		}
	}
	if n := cmds.Count("find"); n != 1 {
		t.Errorf("the flush read lifetimes with %d find commands, want 1", n)
	}
}

func TestTouchAfterSkipsRecentExtensions(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	mcoll, cmds := mongotest.Monitored(t, coll)
	s := newStore(t, mcoll, &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, Clock: clk, TTL: time.Hour, TouchAfter: 10 * time.Minute, TouchInterval: time.Hour,
	})
	if err := s.Set(bg(t), "lazy", profile{}); err != nil {
		t.Fatal(err)
	}
	set := rawExpires(t, coll, "lazy")
	clk.Add(time.Minute)
	_ = s.Touch(bg(t), "lazy")
	if err := s.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	if n := cmds.Count("update"); n != 1 { // the Set only
		t.Fatalf("%d update commands after a touch within TouchAfter, want 1 (the Set)", n)
	}
	clk.Add(10 * time.Minute)
	_ = s.Touch(bg(t), "lazy")
	if err := s.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	if got := rawExpires(t, coll, "lazy"); !got.After(set) {
		t.Fatalf("a touch after TouchAfter did not extend: %v", got)
	}
}

func TestCloseWritesPendingTouches(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	seed(t, coll, "c", 50, clk.Now().Add(time.Minute))
	s, err := sessionstore.New(coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Clock: clk, TouchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		_ = s.Touch(bg(t), fmt.Sprint("c", i))
	}
	if err := s.Close(bg(t)); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(sessionstore.DefaultTTL)
	for i := range 50 {
		if got := rawExpires(t, coll, fmt.Sprint("c", i)); got.Before(want) {
			t.Fatalf("c%d expires %v after Close, want %v", i, got, want)
		}
	}
}

// TTL index setup decides from what the server answers: where it reports
// a TTL index, the index is there; where it chose the reaper, the server
// really refuses TTL indexes.
func TestTTLIndexDecisionMatchesTheServer(t *testing.T) {
	coll := mongotest.Collection(t)
	s := newStore(t, coll, &sessionstore.Options[profile]{})
	d, err := s.TTLIndex(bg(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decision: %s", d)
	if d.Reaper {
		scratch := mongotest.Collection(t)
		_, err := scratch.Indexes().CreateOne(bg(t), mongo.IndexModel{
			Keys:    bson.D{{Key: "expires", Value: 1}},
			Options: optionsTTL(),
		})
		if err == nil {
			t.Fatalf("the store chose the reaper, but this server creates TTL indexes")
		}
		return
	}
	if d.Action != ttl.Created && d.Action != ttl.Present {
		t.Fatalf("on a fresh collection the action is %s", d.Action)
	}
	specs, err := coll.Indexes().ListSpecifications(bg(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.ExpireAfterSeconds != nil && *sp.ExpireAfterSeconds == 0 && strings.Contains(string(sp.KeysDocument), "expires") {
			return
		}
	}
	t.Fatalf("no TTL index on expires: %+v", specs)
}

// On a server without TTL indexes the reaper deletes expired sessions
// within its interval.
func TestReaperDeletesExpiredSessions(t *testing.T) {
	coll := mongotest.Collection(t)
	now := time.Now()
	seed(t, coll, "dead", 20, now.Add(-time.Minute))
	seed(t, coll, "live", 5, now.Add(time.Hour))
	const interval = 200 * time.Millisecond
	s := newStore(t, coll, &sessionstore.Options[profile]{ReapInterval: interval})
	d, err := s.TTLIndex(bg(t))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Reaper {
		// A server with TTL indexes removes them itself, about once a
		// minute: check the reaper's pass directly.
		t.Logf("server keeps TTL indexes (%s): running one reaper pass by hand", d)
		if n, err := s.Reap(bg(t)); err != nil || n != 20 {
			t.Fatalf("Reap = %d, %v; want 20", n, err)
		}
	}
	// The first pass comes one interval (±10%) after setup; allow five.
	deadline := time.Now().Add(5 * interval)
	for {
		n, err := coll.CountDocuments(bg(t), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d documents left five reap intervals after setup, want the 5 live ones", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := mongotest.RawDoc(t, coll, "live0"); !ok {
		t.Fatal("the reaper deleted a live session")
	}
}

// Close leaves no goroutine behind, whatever ran: loads, touches, the
// flusher, TTL setup and the reaper.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	coll := mongotest.Collection(t)
	mongotest.Client(t) // its goroutines are not the store's
	runtime.GC()
	before := runtime.NumGoroutine()
	s, err := sessionstore.New(coll, &sessionstore.Options[profile]{ReapInterval: 50 * time.Millisecond, TouchInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := bg(t)
	_ = s.Set(ctx, "g", profile{})
	_, _ = s.Get(ctx, "g")
	_, _ = s.Get(ctx, "missing")
	_ = s.Touch(ctx, "g")
	_, _ = s.TTLIndex(ctx)
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCancelledContextLeavesSessionsIntact(t *testing.T) {
	coll := mongotest.Collection(t)
	s := newStore[profile](t, coll, nil)
	if err := s.Set(bg(t), "k", profile{User: "kept"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with a cancelled context = %v", err)
	}
	if _, err := s.Get(ctx, "other"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v", err)
	}
	if v, err := s.Get(bg(t), "k"); err != nil || v.User != "kept" {
		t.Fatalf("Get = %+v, %v", v, err)
	}
}

// TouchAfter holds for sessions that are not in memory: the write's
// filter skips a touch within TouchAfter of the last extension.
func TestTouchAfterWithoutMemory(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	s := newStore(t, coll, &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, Clock: clk, TTL: time.Hour, TouchAfter: 10 * time.Minute,
		CacheSize: -1, TouchInterval: time.Hour, TouchGranularity: time.Millisecond,
	})
	if err := s.Set(bg(t), "lazy", profile{}); err != nil {
		t.Fatal(err)
	}
	set := rawExpires(t, coll, "lazy")
	clk.Add(time.Minute)
	_ = s.Touch(bg(t), "lazy")
	if err := s.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	if got := rawExpires(t, coll, "lazy"); !got.Equal(set) {
		t.Fatalf("a touch a minute after the Set moved expires from %v to %v", set, got)
	}
	clk.Add(10 * time.Minute)
	_ = s.Touch(bg(t), "lazy")
	if err := s.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := rawExpires(t, coll, "lazy"), clk.Now().Add(time.Hour); !got.Equal(want) {
		t.Fatalf("a touch 11 minutes after the Set: expires %v, want %v", got, want)
	}
}

// A flush that fails keeps its touches, and a later one writes them.
func TestFailedFlushIsRetried(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	seed(t, coll, "r", 1, clk.Now().Add(time.Minute))
	// The first update command is held before it is sent until its
	// timeout has passed, so that it fails without reaching the server.
	var updates atomic.Int64
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "update" && updates.Add(1) == 1 {
			time.Sleep(1500 * time.Millisecond)
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()).SetMonitor(monitor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	s := newStore(t, client.Database(coll.Database().Name()).Collection(coll.Name()), &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, Clock: clk, TouchInterval: time.Hour, WriteTimeout: 500 * time.Millisecond,
		// No oplog polls competing with the touch for FerretDB's time.
		Coherence: sessionstore.CoherenceOff,
	})
	_ = s.Touch(bg(t), "r0")
	if err := s.Flush(bg(t)); err == nil {
		t.Fatal("a flush whose command timed out succeeded")
	}
	if got := rawExpires(t, coll, "r0"); got.After(clk.Now().Add(time.Minute)) {
		t.Fatalf("the failed command reached the server: expires %v", got)
	}
	if err := s.Flush(bg(t)); err != nil {
		t.Fatalf("the retry failed: %v", err)
	}
	if got, want := rawExpires(t, coll, "r0"), clk.Now().Add(sessionstore.DefaultTTL); got.Before(want) {
		t.Fatalf("expires %v after the retry, want %v: the failed touch was not kept", got, want)
	}
}

// Touches are written with w:1 unless TouchWriteConcern says otherwise.
func TestTouchWriteConcern(t *testing.T) {
	for name, wc := range map[string]*writeconcern.WriteConcern{"default": nil, "majority": writeconcern.Majority()} {
		t.Run(name, func(t *testing.T) {
			coll := mongotest.Collection(t)
			seed(t, coll, "w", 1, time.Now().Add(time.Minute))
			mcoll, cmds := mongotest.Monitored(t, coll)
			s := newStore(t, mcoll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TouchInterval: time.Hour, TouchWriteConcern: wc})
			_ = s.Touch(bg(t), "w0")
			if err := s.Flush(bg(t)); err != nil {
				t.Fatal(err)
			}
			for _, c := range cmds.Take() {
				if _, err := c.LookupErr("update"); err != nil {
					continue
				}
				w := c.Lookup("writeConcern", "w")
				n, isNum := w.AsInt64OK()
				str, isStr := w.StringValueOK()
				if (wc == nil && (!isNum || n != 1)) || (wc != nil && (!isStr || str != "majority")) {
					t.Fatalf("touch update sent writeConcern.w %v", w)
				}
				return
			}
			t.Fatal("no update command was sent")
		})
	}
}

// ttl.Require fails New on a server that cannot keep a TTL index, and
// creates the index where it can.
func TestRequireNeedsATTLIndex(t *testing.T) {
	coll := mongotest.Collection(t)
	s, err := sessionstore.New(coll, &sessionstore.Options[profile]{TTLIndex: ttl.Require})
	if err != nil {
		if !errors.Is(err, ttl.ErrUnsupported) {
			t.Fatalf("New = %v, want an error wrapping ttl.ErrUnsupported", err)
		}
		t.Logf("as expected on this server: %v", err)
		return
	}
	defer s.Close(bg(t))
	d, err := s.TTLIndex(bg(t))
	if err != nil || (d.Action != ttl.Created && d.Action != ttl.Present) {
		t.Fatalf("Require succeeded with decision %s, %v", d, err)
	}
}
