package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// newestStep is what one call of fakeOplog.Newest returns; block makes it
// wait for its context to end.
type newestStep struct {
	ts    bson.Timestamp
	err   error
	block bool
}

// afterStep is what one call of fakeOplog.After returns.
type afterStep struct {
	entries []Entry
	kept    bool
	newest  bson.Timestamp // zero: the newest of ts and the entries
	err     error
	block   bool
}

// fakeOplog is an OplogSource that plays a script, one step per call,
// and records how it was called. Once a script is played out, calls wait
// for their context to end.
type fakeOplog struct {
	clk *clock // when set, After records clk.last() on each call

	mu          sync.Mutex
	newest      []newestStep
	after       []afterStep
	newestCalls int
	afterTS     []bson.Timestamp // the ts of each After call
	afterAt     []time.Time      // clk.last() at each After call
	deadlines   []time.Time      // each call's context's deadline; zero: none
	calledAt    []time.Time      // when each call began
}

var _ OplogSource = (*fakeOplog)(nil)

func (f *fakeOplog) deadline(ctx context.Context) {
	d, _ := ctx.Deadline()
	f.deadlines = append(f.deadlines, d)
	f.calledAt = append(f.calledAt, time.Now())
}

func (f *fakeOplog) Newest(ctx context.Context) (bson.Timestamp, error) {
	f.mu.Lock()
	f.newestCalls++
	f.deadline(ctx)
	var st newestStep
	if len(f.newest) == 0 {
		st.block = true
	} else {
		st, f.newest = f.newest[0], f.newest[1:]
	}
	f.mu.Unlock()
	if st.block {
		<-ctx.Done()
		return bson.Timestamp{}, ctx.Err()
	}
	return st.ts, st.err
}

func (f *fakeOplog) After(ctx context.Context, ts bson.Timestamp) (Poll, error) {
	f.mu.Lock()
	f.afterTS = append(f.afterTS, ts)
	if f.clk != nil {
		f.afterAt = append(f.afterAt, f.clk.last())
	}
	f.deadline(ctx)
	var st afterStep
	if len(f.after) == 0 {
		st.block = true
	} else {
		st, f.after = f.after[0], f.after[1:]
	}
	f.mu.Unlock()
	if st.block {
		<-ctx.Done()
		return Poll{}, ctx.Err()
	}
	p := Poll{Entries: st.entries, Kept: st.kept, Newest: st.newest}
	if p.Newest == (bson.Timestamp{}) {
		p.Newest = ts
		for _, e := range st.entries {
			if later(e.TS, p.Newest) {
				p.Newest = e.TS
			}
		}
	}
	return p, st.err
}

func (f *fakeOplog) calls() (newest int, after []bson.Timestamp, at []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newestCalls, slices.Clone(f.afterTS), slices.Clone(f.afterAt)
}

// waitAfter waits for n calls of After, and returns the calls.
func (f *fakeOplog) waitAfter(t *testing.T, n int) (newest int, after []bson.Timestamp, at []time.Time) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		if newest, after, at = f.calls(); len(after) >= n {
			return newest, after, at
		}
	}
	t.Fatalf("After called %d times within 5s, want %d", len(after), n)
	return
}

// Every entry of a poll is reported, in order, with its version and, for
// the entries that hold the whole document, its payload; entries without
// a string id (no-ops, other id types) only move the position. CaughtUp
// follows, with the time the poll began.
func TestOplogReportsEachEntryThenCatchesUp(t *testing.T) {
	clk := newClock()
	src := &fakeOplog{clk: clk,
		newest: []newestStep{{ts: ts(100, 1)}},
		after: []afterStep{
			{kept: true, entries: []Entry{
				{TS: ts(100, 2), Op: "i", ID: "a", Rev: 1, Doc: raw(t, bson.D{{Key: "_id", Value: "a"}, {Key: "session", Value: "x"}, {Key: "rev", Value: int64(1)}})},
				{TS: ts(100, 3), Op: "u", ID: "b", Rev: 2, Doc: raw(t, bson.D{{Key: "_id", Value: "b"}, {Key: "session", Value: "y"}, {Key: "rev", Value: int64(2)}})},
				{TS: ts(100, 4), Op: "u", ID: "c", Rev: -1}, // a diff: no document
				{TS: ts(100, 5), Op: "d", ID: "d", Rev: -1},
				{TS: ts(100, 6), Op: "i", ID: "e", Rev: 0, Doc: raw(t, bson.D{{Key: "_id", Value: "e"}})}, // no session field
				{TS: ts(100, 7), Op: "n", Rev: -1},
				{TS: ts(100, 8), Op: "i", Rev: 0, Doc: raw(t, bson.D{{Key: "_id", Value: int32(7)}})},
			}},
			{kept: true, entries: []Entry{{TS: ts(101, 0), Op: "n", Rev: -1}}},
		},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond, Payload: session, Now: clk.Now}, sink)
	sink.expectStart(t)
	sink.expectChanged(t, "a", 1, []byte("x"))
	sink.expectChanged(t, "b", 2, []byte("y"))
	sink.expectChanged(t, "c", -1, nil)
	sink.expectChanged(t, "d", -1, nil)
	sink.expectChanged(t, "e", 0, nil)
	first := sink.expect(t, "caught")
	second := sink.expect(t, "caught")
	newest, after, at := src.waitAfter(t, 3)
	if newest != 1 {
		t.Fatalf("Newest called %d times, want once", newest)
	}
	if want := []bson.Timestamp{ts(100, 1), ts(100, 8), ts(101, 0)}; !slices.Equal(after[:3], want) {
		t.Fatalf("After called with %v, want %v: from Newest, then from the last entry read, a no-op too", after[:3], want)
	}
	if !first.since.Equal(at[0]) || !second.since.Equal(at[1]) {
		t.Fatalf("CaughtUp(%v), CaughtUp(%v); want the times the polls began, %v and %v", first.since, second.since, at[0], at[1])
	}
	if n := sink.count("lost"); n != 0 {
		t.Fatalf("%d Lost calls, want none", n)
	}
}

// Each poll reads the overlap again and skips the entries it has seen;
// the first one has seen none, so it reports the collection's entries of
// the second before the starting point as well.
func TestOplogReportsTheOverlapOnce(t *testing.T) {
	before := Entry{TS: ts(100, 1), Op: "i", ID: "a", Rev: 0}
	after := Entry{TS: ts(100, 6), Op: "u", ID: "b", Rev: -1}
	later := Entry{TS: ts(101, 0), Op: "d", ID: "c", Rev: -1}
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(100, 5)}},
		after: []afterStep{
			{kept: true, entries: []Entry{before, after}},
			{kept: true, entries: []Entry{before, after, later}},
		},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expectChanged(t, "a", 0, nil)
	sink.expectChanged(t, "b", -1, nil)
	sink.expect(t, "caught")
	sink.expectChanged(t, "c", -1, nil)
	sink.expect(t, "caught")
}

// Without a Payload func, changes carry no payload even when the entry
// holds the whole document.
func TestOplogWithoutPayloadFunc(t *testing.T) {
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(1, 0)}},
		after: []afterStep{{kept: true, entries: []Entry{
			{TS: ts(1, 1), Op: "i", ID: "a", Rev: 3, Doc: raw(t, bson.D{{Key: "_id", Value: "a"}, {Key: "session", Value: "x"}})},
		}}},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expectChanged(t, "a", 3, nil)
	sink.expect(t, "caught")
}

// With Now nil, CaughtUp reports the wall time the poll began.
func TestOplogNowDefaultsToTimeNow(t *testing.T) {
	src := &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}, after: []afterStep{{kept: true}}}
	sink := newRecorder()
	before := time.Now()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	n := sink.expect(t, "caught")
	if n.since.Before(before) || n.since.After(time.Now()) {
		t.Fatalf("CaughtUp(%v), want a time between %v and now", n.since, before)
	}
}

// When the entry last read is no longer kept, entries may have been
// dropped unread: the feed reports Lost, without catching up on that
// poll nor reporting its entries, and starts again from the newest entry.
func TestOplogHistoryLostRestartsFromNewest(t *testing.T) {
	t.Parallel()
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(100, 0)}, {ts: ts(200, 0)}},
		after: []afterStep{
			{kept: true, entries: []Entry{{TS: ts(101, 0), Op: "d", ID: "a", Rev: -1}}},
			{kept: false, entries: []Entry{{TS: ts(150, 0), Op: "d", ID: "b", Rev: -1}}},
			{kept: true, entries: []Entry{{TS: ts(201, 0), Op: "d", ID: "c", Rev: -1}}},
		},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expectChanged(t, "a", -1, nil)
	sink.expect(t, "caught")
	if n := sink.expect(t, "lost"); !errors.Is(n.err, errHistoryLost) {
		t.Fatalf("Lost(%v), want errHistoryLost", n.err)
	}
	sink.expectStart(t)
	sink.expectChanged(t, "c", -1, nil)
	sink.expect(t, "caught")
	newest, after, _ := src.calls()
	if newest != 2 {
		t.Fatalf("Newest called %d times, want 2: at the start and after the loss", newest)
	}
	if want := []bson.Timestamp{ts(100, 0), ts(101, 0), ts(200, 0)}; !slices.Equal(after[:3], want) {
		t.Fatalf("After called with %v, want %v", after[:3], want)
	}
}

// A failed read is reported as Lost; the next attempt resumes where the
// feed was, without asking for the newest entry again.
func TestOplogResumesAfterAnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(100, 0)}},
		after: []afterStep{
			{kept: true, entries: []Entry{{TS: ts(101, 0), Op: "d", ID: "a", Rev: -1}}},
			{err: boom},
			{kept: true, entries: []Entry{{TS: ts(102, 0), Op: "d", ID: "b", Rev: -1}}},
		},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expectChanged(t, "a", -1, nil)
	sink.expect(t, "caught")
	if n := sink.expect(t, "lost"); !errors.Is(n.err, boom) {
		t.Fatalf("Lost(%v), want the read's error", n.err)
	}
	sink.expectChanged(t, "b", -1, nil)
	sink.expect(t, "caught")
	newest, after, _ := src.calls()
	if newest != 1 {
		t.Fatalf("Newest called %d times, want once", newest)
	}
	if want := []bson.Timestamp{ts(100, 0), ts(101, 0), ts(101, 0)}; !slices.Equal(after[:3], want) {
		t.Fatalf("After called with %v, want %v", after[:3], want)
	}
}

// A failure to find the newest entry is reported, and retried.
func TestOplogRetriesNewest(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	src := &fakeOplog{
		newest: []newestStep{{err: boom}, {ts: ts(7, 0)}},
		after:  []afterStep{{kept: true}},
	}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	if n := sink.expect(t, "lost"); !errors.Is(n.err, boom) {
		t.Fatalf("Lost(%v), want Newest's error", n.err)
	}
	sink.expectStart(t)
	sink.expect(t, "caught")
	if _, after, _ := src.calls(); after[0] != ts(7, 0) {
		t.Fatalf("After called from %v, want the newest entry 7", after[0])
	}
}

// Timeout bounds each read: a source that never answers makes the feed
// report Lost rather than hang.
func TestOplogTimeoutBoundsEachRead(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		src  *fakeOplog
	}{
		{"Newest", &fakeOplog{newest: []newestStep{{block: true}}}},
		{"After", &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}, after: []afterStep{{block: true}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sink := newRecorder()
			run(t, &Oplog{Source: c.src, Interval: time.Millisecond, Timeout: 20 * time.Millisecond}, sink)
			if c.name == "After" {
				sink.expectStart(t)
			}
			if n := sink.expect(t, "lost"); !errors.Is(n.err, context.DeadlineExceeded) {
				t.Fatalf("Lost(%v), want a deadline error", n.err)
			}
			c.src.mu.Lock()
			defer c.src.mu.Unlock()
			for i, d := range c.src.deadlines {
				if left := d.Sub(c.src.calledAt[i]); d.IsZero() || left > 20*time.Millisecond {
					t.Fatalf("call %d had %v left (deadline %v), want at most the 20ms Timeout", i, left, d)
				}
			}
		})
	}
	// Zero means no bound.
	src := &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}, after: []afterStep{{kept: true}}}
	sink := newRecorder()
	run(t, &Oplog{Source: src, Interval: time.Hour}, sink)
	sink.expect(t, "caught")
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.deadlines) != 2 || !src.deadlines[0].IsZero() || !src.deadlines[1].IsZero() {
		t.Fatalf("with no Timeout the calls had deadlines %v, want none", src.deadlines)
	}
}

// Run returns as soon as its context ends, whether it waits for the
// source, between polls or before retrying, and reports no Lost for it.
func TestOplogRunEndsWithItsContext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		src   *fakeOplog
		ready string // the call to wait for before cancelling
	}{
		{"waiting for the source", &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}, after: []afterStep{{kept: true}, {block: true}}}, "caught"},
		{"between polls", &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}, after: []afterStep{{kept: true}}}, "caught"},
		{"before retrying", &fakeOplog{newest: []newestStep{{err: fmt.Errorf("no oplog: %w", ErrNoFeed)}}}, "lost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sink := newRecorder()
			interval := time.Millisecond
			if c.name == "between polls" {
				interval = time.Hour
			}
			r := run(t, &Oplog{Source: c.src, Interval: interval}, sink)
			sink.expect(t, c.ready)
			time.Sleep(10 * time.Millisecond) // let it settle into the wait
			r.stop(t)
			if c.ready != "lost" && sink.count("lost") != 0 {
				t.Fatalf("Lost reported when the context ended: %+v", sink.all())
			}
			if c.ready == "lost" && sink.count("lost") != 1 {
				t.Fatalf("%d Lost calls, want only the failure's", sink.count("lost"))
			}
		})
	}
}

// A server without an oplog is retried at the longest backoff, not the
// shortest: no second attempt comes within the 150ms the first retry of
// any other failure would wait at most.
func TestOplogErrNoFeedBacksOffLongest(t *testing.T) {
	t.Parallel()
	src := &fakeOplog{newest: []newestStep{{err: fmt.Errorf("no oplog: %w", ErrNoFeed)}, {ts: ts(1, 0)}}}
	sink := newRecorder()
	r := run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	if n := sink.expect(t, "lost"); !errors.Is(n.err, ErrNoFeed) {
		t.Fatalf("Lost(%v), want ErrNoFeed", n.err)
	}
	time.Sleep(170 * time.Millisecond)
	if newest, _, _ := src.calls(); newest != 1 {
		t.Fatalf("Newest called %d times within 170ms of ErrNoFeed, want once", newest)
	}
	r.stop(t)
}

// A document written already expired (a session revoked by moving its
// expiry) is reported as a delete, whatever its version and payload.
func TestOplogReportsAnExpiredDocumentAsADelete(t *testing.T) {
	clk := newClock()
	expired := bson.D{{Key: "_id", Value: "a"}, {Key: "expires", Value: bson.NewDateTimeFromTime(clk.now.Add(-time.Second))}, {Key: "session", Value: "v"}, {Key: "rev", Value: int64(3)}}
	doc, err := bson.Marshal(expired)
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(100, 1)}},
		after:  []afterStep{{entries: []Entry{{TS: ts(100, 2), Op: "u", ID: "a", Rev: 3, Doc: doc}}, kept: true}},
	}
	r := newRecorder()
	o := &Oplog{Source: src, Interval: time.Hour, Now: clk.Now, Payload: func(bson.Raw) []byte { return []byte("v") }}
	run(t, o, r)
	r.expectStart(t)
	if n := r.next(t); n.kind != "changed" || n.id != "a" || n.rev != -1 || n.payload != nil {
		t.Fatalf("reported %+v, want a delete of a", n)
	}
}
