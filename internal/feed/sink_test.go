package feed

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// note is one call a feed made to its sink.
type note struct {
	kind    string // "changed", "caught" or "lost"
	id      string
	rev     int64
	payload []byte
	since   time.Time
	err     error
}

// recorder is a Sink that keeps every call, in order, and hands each to
// the test on a channel.
type recorder struct {
	mu    sync.Mutex
	notes []note
	ch    chan note
}

var _ Sink = (*recorder)(nil)

func newRecorder() *recorder { return &recorder{ch: make(chan note, 1<<16)} }

func (r *recorder) add(n note) {
	r.mu.Lock()
	r.notes = append(r.notes, n)
	r.mu.Unlock()
	select {
	case r.ch <- n:
	default: // a sink must not block; the test reads all() instead
	}
}

func (r *recorder) Changed(id string, rev int64, payload []byte) {
	r.add(note{kind: "changed", id: id, rev: rev, payload: bytes.Clone(payload)})
}

func (r *recorder) CaughtUp(since time.Time) { r.add(note{kind: "caught", since: since}) }

func (r *recorder) Lost(err error) { r.add(note{kind: "lost", err: err}) }

// all returns the calls made so far.
func (r *recorder) all() []note {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]note(nil), r.notes...)
}

// count returns how many calls of kind were made so far.
func (r *recorder) count(kind string) int {
	n := 0
	for _, c := range r.all() {
		if c.kind == kind {
			n++
		}
	}
	return n
}

// next returns the next call, failing the test if none comes within 5s.
func (r *recorder) next(t *testing.T) note {
	t.Helper()
	select {
	case n := <-r.ch:
		return n
	case <-time.After(5 * time.Second):
		t.Fatalf("the feed made no call within 5s; calls so far: %+v", r.all())
		return note{}
	}
}

// expect returns the next call and fails the test unless it is of kind.
func (r *recorder) expect(t *testing.T, kind string) note {
	t.Helper()
	n := r.next(t)
	if n.kind != kind {
		t.Fatalf("the feed called %s (%+v), want %s", n.kind, n, kind)
	}
	return n
}

// expectStart checks that the next call is the CaughtUp of the feed's
// starting point.
func (r *recorder) expectStart(t *testing.T) {
	t.Helper()
	r.expect(t, "caught")
}

// expectChanged checks that the next call is Changed(id, rev, payload).
func (r *recorder) expectChanged(t *testing.T, id string, rev int64, payload []byte) {
	t.Helper()
	n := r.expect(t, "changed")
	if n.id != id || n.rev != rev || !bytes.Equal(n.payload, payload) || (payload == nil) != (n.payload == nil) {
		t.Fatalf("Changed(%q, %d, %q), want Changed(%q, %d, %q)", n.id, n.rev, n.payload, id, rev, payload)
	}
}

// until skips calls until one of kind, and returns it.
func (r *recorder) until(t *testing.T, kind string) note {
	t.Helper()
	for {
		if n := r.next(t); n.kind == kind {
			return n
		}
	}
}

// running is a feed's Run on its own goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// run starts f.Run and, when the test ends, stops it and checks that Run
// returned.
func run(t *testing.T, f Feed, sink Sink) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		f.Run(ctx, sink)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and fails the test unless Run returns within 2s.
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case <-r.done:
		return time.Since(start)
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of its context ending")
		return 0
	}
}

// clock is a Now func that moves one second on each call, so that every
// time a feed takes is distinct and the test can tell which one it used.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// last returns the time the latest Now call returned.
func (c *clock) last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// raw marshals d.
func raw(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// session returns the session field of doc as a string, the Payload func
// the tests give the oplog.
func session(doc bson.Raw) []byte {
	s, ok := doc.Lookup("session").StringValueOK()
	if !ok {
		return nil
	}
	return []byte(s)
}

func ts(t, i uint32) bson.Timestamp { return bson.Timestamp{T: t, I: i} }
