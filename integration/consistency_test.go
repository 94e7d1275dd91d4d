package integration_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

// A touch never revives an expired session, in memory or on the server,
// although no TTL index or reaper has removed the document.
func TestTouchNeverRevivesAnExpiredSession(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	ctx := bg(t)
	opts := &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: time.Hour, Clock: clk, TouchInterval: time.Hour}
	a := newStore(t, coll, opts)
	if err := a.Set(ctx, "s", profile{User: "u"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	if err := a.Touch(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "s"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after touching an expired session = %+v, %v", v, err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := newStore(t, coll, opts).Get(ctx, "s"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("the server revived an expired session: %+v, %v, expires %v", v, err, rawExpires(t, coll, "s"))
	}
}

// A touch buffered before a Set does not override the expiry the Set
// wrote.
func TestSetDropsTouchesBufferedBeforeIt(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	ctx := bg(t)
	s := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Clock: clk, TouchInterval: time.Hour})
	if err := s.SetUntil(ctx, "s", profile{}, clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchUntil(ctx, "s", clk.Now().Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour)
	if err := s.SetUntil(ctx, "s", profile{User: "x"}, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rawExpires(t, coll, "s"); !got.Equal(want) {
		t.Fatalf("SetUntil wrote %v; a touch buffered before it moved it to %v", want, got)
	}
}

// A Get that starts after Delete has returned never joins a load that
// began before it.
func TestGetAfterDeleteDoesNotJoinAnOlderLoad(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	if err := newStore[profile](t, coll, nil).Set(ctx, "s", profile{User: "u"}); err != nil {
		t.Fatal(err)
	}
	mcoll, cmds := mongotest.Monitored(t, coll)
	s := newStore[profile](t, mcoll, nil)
	found, release := cmds.HoldFirst("find")
	go func() { _, _ = s.Get(ctx, "s") }()
	<-found // a load read the session and is held
	if err := s.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	if v, err := s.Get(ctx, "s"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %+v, %v", v, err)
	}
}

// A Delete by another instance is seen within MaxCacheAge, however often
// this instance touches the session.
func TestDeleteElsewhereIsSeenWithinMaxCacheAge(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	ctx := bg(t)
	opts := &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: time.Hour, Clock: clk, MaxCacheAge: 5 * time.Minute}
	a, b := newStore(t, coll, opts), newStore(t, coll, opts)
	if err := a.Set(ctx, "s", profile{User: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "s"); err != nil {
		t.Fatalf("within MaxCacheAge the cached copy answers: %v", err)
	}
	for range 6 {
		clk.Add(time.Minute)
		_ = a.Touch(ctx, "s")
	}
	if v, err := a.Get(ctx, "s"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("6 minutes after another instance deleted it, Get = %+v, %v", v, err)
	}
}

// An absolute touch is not lost to a later relative one whose lifetime is
// read from the server.
func TestTouchUntilSurvivesALaterTouch(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	ctx := bg(t)
	s := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Clock: clk, CacheSize: -1,
		TTLFunc: func(profile) time.Duration { return time.Hour }, TouchInterval: time.Hour})
	if err := s.Set(ctx, "s", profile{}); err != nil {
		t.Fatal(err)
	}
	far := clk.Now().Add(30 * 24 * time.Hour)
	_ = s.TouchUntil(ctx, "s", far)
	clk.Add(time.Second)
	_ = s.Touch(ctx, "s")
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rawExpires(t, coll, "s"); got.Before(far) {
		t.Fatalf("expires %v, want at least %v: the absolute touch was lost", got, far)
	}
}
