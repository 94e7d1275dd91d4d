package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// scriptOplog is an OplogSource over a list of entries, read as
// MongoOplog reads FerretDB's: each After returns the entries from Overlap
// seconds before ts on, and whether the entry at ts is still kept (always,
// for a zero ts). With release set, Newest waits until it is closed; with
// cap set, the list keeps only the newest cap entries.
type scriptOplog struct {
	release chan struct{}
	cap     int
	polled  chan struct{}

	mu      sync.Mutex
	entries []feed.Entry
}

func (s *scriptOplog) add(e feed.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	if s.cap > 0 && len(s.entries) > s.cap {
		s.entries = s.entries[len(s.entries)-s.cap:]
	}
}

func (s *scriptOplog) Newest(ctx context.Context) (bson.Timestamp, error) {
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return bson.Timestamp{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return bson.Timestamp{}, nil
	}
	return s.entries[len(s.entries)-1].TS, nil
}

func (s *scriptOplog) After(ctx context.Context, ts bson.Timestamp) (feed.Poll, error) {
	s.mu.Lock()
	zero := ts == bson.Timestamp{}
	from := bson.Timestamp{T: ts.T - min(ts.T, feed.Overlap)}
	p := feed.Poll{Kept: zero, Newest: ts}
	for _, e := range s.entries {
		if e.TS == ts {
			p.Kept = true
		}
		if after(e.TS, p.Newest) {
			p.Newest = e.TS
		}
		if zero || !after(from, e.TS) {
			p.Entries = append(p.Entries, e)
		}
	}
	s.mu.Unlock()
	select {
	case s.polled <- struct{}{}:
	default:
	}
	return p, nil
}

// after reports whether a is after b.
func after(a, b bson.Timestamp) bool {
	return a.T > b.T || a.T == b.T && a.I > b.I
}

// The feed's starting point is the time its read of the newest entry
// returned: the first poll reads again only Overlap seconds before that
// entry, so a change committed while a slow read was in flight must not
// be covered. A record read meanwhile is read again once it is older than
// MaxStaleness.
func TestSlowStartingPointCoversNothingReadBefore(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	cfg := config(t, clk)
	src := &scriptOplog{release: make(chan struct{}), polled: make(chan struct{}, 1)}
	cfg.Feed = &feed.Oplog{Source: src, Interval: time.Millisecond, Now: clk.Now}
	cfg.Coherence, cfg.MaxStaleness = engine.Strict, time.Second
	e := start(t, cfg, db)
	ctx := context.Background()
	// The server's ts seconds follow the fake clock.
	sec := func() uint32 { return uint32(clk.Now().Unix()) }

	time.Sleep(20 * time.Millisecond) // the feed took start = now and is in Newest
	db.Put(tier.Record{ID: "x", Payload: []byte("v1"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	if _, _, err := get(e, ctx, op(t, cfg), "x", accept); err != nil { // read after the feed's start
		t.Fatal(err)
	}
	if !hit(t, e, cfg, "x") { // memory is asked
		t.Fatal("no hit")
	}
	clk.Add(100 * time.Millisecond)
	// Another writer changes x; FerretDB logs it with ts now.
	db.Put(tier.Record{ID: "x", Payload: []byte("v2"), Expires: clk.Now().Add(time.Hour), Rev: 2})
	src.add(feed.Entry{TS: bson.Timestamp{T: sec(), I: 1}, Op: "u", ID: "x", Rev: 2})
	clk.Add(1900 * time.Millisecond) // Newest is slow (the feed's Timeout is 2s)
	src.add(feed.Entry{TS: bson.Timestamp{T: sec(), I: 1}, Op: "i", ID: "other", Rev: 1})
	close(src.release) // Newest answers: the newest entry is 2s after x's change
	<-src.polled
	<-src.polled // a full poll has caught up since
	time.Sleep(20 * time.Millisecond)
	rec, _, err := get(e, ctx, op(t, cfg), "x", accept)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Payload) != "v2" {
		t.Fatalf("Get 1.9s after another writer's change served %q from memory, want v2 (MaxStaleness is 1s)", rec.Payload)
	}
}

// A poll from the zero ts of an empty oplog cannot tell what rolled off
// since, so the feed does not wait until it has read an entry: a change
// that rolled off during a wait would be reported by no one.
func TestEmptyOplogIsPolledWithoutWaiting(t *testing.T) {
	clk := newClock()
	db := &tiertest.Fake{}
	cfg := config(t, clk)
	src := &scriptOplog{cap: 4, polled: make(chan struct{}, 1)}
	cfg.Feed = &feed.Oplog{Source: src, Interval: time.Millisecond, Now: clk.Now}
	cfg.Coherence, cfg.MaxStaleness = engine.Strict, time.Second
	e := start(t, cfg, db)
	ctx := context.Background()
	sec := func() uint32 { return uint32(clk.Now().Unix()) }
	time.Sleep(20 * time.Millisecond) // the feed started from the empty oplog and waits

	clk.Add(time.Second)
	for _, id := range []string{"x", "y"} { // loads, while the feed waits
		db.Put(tier.Record{ID: id, Payload: []byte("v1"), Expires: clk.Now().Add(time.Hour), Rev: 1})
		if _, _, err := get(e, ctx, op(t, cfg), id, accept); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(100 * time.Millisecond)
	// Another writer changes x, then writes enough to roll it off.
	db.Put(tier.Record{ID: "x", Payload: []byte("v2"), Expires: clk.Now().Add(time.Hour), Rev: 2})
	src.add(feed.Entry{TS: bson.Timestamp{T: sec(), I: 1}, Op: "u", ID: "x", Rev: 2})
	for range 2 { // a feed that waited would not poll now
		select {
		case <-src.polled:
		case <-time.After(5 * time.Second):
			t.Fatal("the feed did not poll the empty oplog's first entry: it waits with nothing to find again")
		}
	}
	for i := range 8 {
		src.add(feed.Entry{TS: bson.Timestamp{T: sec(), I: uint32(2 + i)}, Op: "i", ID: "other", Rev: 1})
	}
	clk.Add(2 * time.Second)
	// A Get of y wakes the feed (y is reloaded: too old to trust now).
	if _, _, err := get(e, ctx, op(t, cfg), "y", accept); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the woken feed polls twice
		select {
		case <-src.polled:
		case <-time.After(5 * time.Second):
			t.Fatal("the feed did not poll")
		}
	}
	time.Sleep(20 * time.Millisecond)
	rec, _, err := get(e, ctx, op(t, cfg), "x", accept)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Payload) != "v2" {
		t.Fatalf("Get 2s after another writer's change served %q from memory, want v2 (MaxStaleness is 1s)", rec.Payload)
	}
}
