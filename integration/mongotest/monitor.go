package mongotest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Commands records the commands a client sends on one collection: those
// whose first element names it, as find, insert, update, delete and
// findAndModify do. Made by [Monitored], it is safe for concurrent use.
//
// In a benchmark it only counts: [Commands.Take] panics there, since
// copying every command would add to the allocations the benchmark
// measures.
type Commands struct {
	tb       testing.TB
	coll     string
	keepDocs bool // false in benchmarks

	mu     sync.Mutex // protects counts and docs
	counts map[string]int
	docs   []bson.Raw // clones of the commands, in order

	hold atomic.Pointer[hold] // set by HoldFirst
}

// hold is a [Commands.HoldFirst] in progress.
type hold struct {
	name                 string
	found, release, stop chan struct{}
	held                 atomic.Bool // set by the command held

	mu      sync.Mutex         // protects started
	started map[int64]struct{} // request ids of the commands called name
}

// Monitored returns coll as seen through a new client for the server at
// [URI], and the record of the commands that client sends on coll. The
// client is disconnected when the test ends.
func Monitored(t testing.TB, coll *mongo.Collection) (*mongo.Collection, *Commands) {
	t.Helper()
	_, bench := t.(*testing.B)
	c := &Commands{tb: t, coll: coll.Name(), keepDocs: !bench, counts: map[string]int{}}
	client, err := mongo.Connect(options.Client().ApplyURI(URI()).SetMonitor(&event.CommandMonitor{
		Started:   c.started,
		Succeeded: c.succeeded,
	}))
	if err != nil {
		t.Fatalf("mongotest: connect to %s: %v", redact(URI()), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client.Database(coll.Database().Name()).Collection(coll.Name()), c
}

func (c *Commands) started(_ context.Context, e *event.CommandStartedEvent) {
	if name, ok := e.Command.Lookup(e.CommandName).StringValueOK(); !ok || name != c.coll {
		return
	}
	c.mu.Lock()
	c.counts[e.CommandName]++
	if c.keepDocs {
		c.docs = append(c.docs, bson.Raw(slices.Clone(e.Command)))
	}
	c.mu.Unlock()
	if h := c.hold.Load(); h != nil && h.name == e.CommandName && !h.held.Load() {
		h.mu.Lock()
		h.started[e.RequestID] = struct{}{}
		h.mu.Unlock()
	}
}

func (c *Commands) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	h := c.hold.Load()
	if h == nil || h.name != e.CommandName || h.held.Load() {
		return
	}
	h.mu.Lock()
	_, ours := h.started[e.RequestID]
	h.mu.Unlock()
	if ours && h.held.CompareAndSwap(false, true) {
		close(h.found)
		select {
		case <-h.release:
		case <-h.stop:
		}
	}
}

// Count returns how many commands called any of names were sent since
// [Monitored] or the last [Commands.Reset]; with no names, how many
// commands were sent.
func (c *Commands) Count(names ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	if len(names) == 0 {
		for _, k := range c.counts {
			n += k
		}
		return n
	}
	for _, name := range names {
		n += c.counts[name]
	}
	return n
}

// Take returns copies of the commands sent since [Monitored], the last Take
// or [Commands.Reset], in the order they were sent.
func (c *Commands) Take() []bson.Raw {
	if !c.keepDocs {
		panic("mongotest: Commands.Take in a benchmark, whose Commands only count")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	docs := c.docs
	c.docs = nil
	return docs
}

// Reset forgets the commands sent so far, for both [Commands.Count] and
// [Commands.Take].
func (c *Commands) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
	c.docs = nil
}

// HoldFirst holds the first command called name that starts after it and
// succeeds, before its result reaches the caller: found is closed then,
// and the command returns when release is closed, or when the test ends.
// Other commands are not held. A later HoldFirst replaces this one.
func (c *Commands) HoldFirst(name string) (found, release chan struct{}) {
	h := &hold{
		name:    name,
		found:   make(chan struct{}),
		release: make(chan struct{}),
		stop:    make(chan struct{}),
		started: map[int64]struct{}{},
	}
	c.tb.Cleanup(func() { close(h.stop) })
	c.hold.Store(h)
	return h.found, h.release
}

// Names returns the name of each command in cmds, the key of its first
// element ("" for an empty or malformed document).
func Names(cmds []bson.Raw) []string {
	names := make([]string, len(cmds))
	for i, cmd := range cmds {
		if elems, err := cmd.Elements(); err == nil && len(elems) > 0 {
			names[i] = elems[0].Key()
		}
	}
	return names
}

// CheckTouch fails t unless cmd is a touch as the store writes it: an
// update command of one multi statement, without upsert, that sets
// expires alone.
func CheckTouch(t testing.TB, cmd bson.Raw) {
	t.Helper()
	vals, err := cmd.Lookup("updates").Array().Values()
	if err != nil || len(vals) != 1 {
		t.Fatalf("update command with %d statements (%v): %v", len(vals), err, cmd)
	}
	stmt := vals[0].Document()
	if multi, _ := stmt.Lookup("multi").BooleanOK(); !multi {
		t.Errorf("touch is not an updateMany: %v", stmt)
	}
	if upsert, _ := stmt.Lookup("upsert").BooleanOK(); upsert {
		t.Errorf("touch upserts: %v", stmt)
	}
	u := stmt.Lookup("u").Document()
	elems, _ := u.Elements()
	if len(elems) != 1 || elems[0].Key() != "$set" {
		t.Fatalf("touch update is %v, want {$set: {expires}}", u)
	}
	set, _ := elems[0].Value().Document().Elements()
	if len(set) != 1 || set[0].Key() != "expires" {
		t.Errorf("touch sets %v, want expires alone", elems[0].Value())
	}
}

// Clock is a clock for tests that moves only when told to. Its Now method
// makes it a sessionstore.Clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

// NewClock returns a Clock set to the current time truncated to the
// millisecond, the precision of a BSON date.
func NewClock() *Clock { return &Clock{now: time.Now().Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// RawDoc reads the document with _id id from coll and reports whether there
// is one. It fails the test on any other error.
func RawDoc(t testing.TB, coll *mongo.Collection, id string) (bson.Raw, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("mongotest: find %q in %s: %v", id, coll.Name(), err)
	}
	return raw, true
}
