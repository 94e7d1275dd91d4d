package feed

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// pacer is a recorder that is also a Pacer: Await waits while the test
// says the changes are not needed, until the test wakes it.
type pacer struct {
	*recorder
	idle chan bool     // the answer of the next Await: true waits for wake
	wake chan struct{} // ends a wait
}

var _ Pacer = (*pacer)(nil)

func newPacer() *pacer {
	return &pacer{recorder: newRecorder(), idle: make(chan bool, 16), wake: make(chan struct{})}
}

func (p *pacer) Await(ctx context.Context) (bool, error) {
	idle := false
	select {
	case idle = <-p.idle:
	default:
	}
	if !idle {
		return false, nil
	}
	p.add(note{kind: "waiting"})
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case <-p.wake:
		return true, nil
	}
}

// While the sink says nobody needs the changes, the oplog is not polled:
// it is read once at the start for the starting point. Once the sink
// needs them, the poll runs at once, from where the last one stopped.
func TestOplogReadsOnlyWhileNeeded(t *testing.T) {
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(1, 0)}},
		after: []afterStep{
			{kept: true, entries: []Entry{{TS: ts(1, 1), Op: "d", ID: "a", Rev: -1}}},
			{kept: true, entries: []Entry{{TS: ts(2, 0), Op: "d", ID: "b", Rev: -1}}},
		},
	}
	sink := newPacer()
	sink.idle <- true // before the first poll
	sink.idle <- true // before the second
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expect(t, "waiting")
	time.Sleep(20 * time.Millisecond)
	if newest, after, _ := src.calls(); newest != 1 || len(after) != 0 {
		t.Fatalf("while idle: Newest called %d times, After %d; want Newest once, After never", newest, len(after))
	}
	sink.wake <- struct{}{}
	sink.expectChanged(t, "a", -1, nil)
	sink.expect(t, "caught")
	sink.expect(t, "waiting")
	time.Sleep(20 * time.Millisecond)
	if _, after, _ := src.calls(); len(after) != 1 {
		t.Fatalf("After called %d times before the second wait ended, want 1", len(after))
	}
	sink.wake <- struct{}{}
	sink.expectChanged(t, "b", -1, nil)
	sink.expect(t, "caught")
	newest, after, _ := src.waitAfter(t, 2)
	if newest != 1 || !slices.Equal(after[:2], []bson.Timestamp{ts(1, 0), ts(1, 1)}) {
		t.Fatalf("Newest called %d times, After with %v; want Newest once, then After from each poll's last entry", newest, after[:2])
	}
}

// History that rolled off while the feed waited for idleLoss Intervals or
// more is its expected cost: it reports Lost with ErrIdle and starts again
// from the newest entry at once, without the backoff of a failure.
func TestOplogHistoryLostWhileIdleIsNoFailure(t *testing.T) {
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(1, 0)}, {ts: ts(9, 0)}},
		after: []afterStep{
			{kept: true},
			{kept: false}, // rolled off during the wait
			{kept: true, entries: []Entry{{TS: ts(9, 1), Op: "d", ID: "a", Rev: -1}}},
		},
	}
	sink := newPacer()
	sink.idle <- false // before the first poll
	sink.idle <- true  // before the second
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expect(t, "caught")
	sink.expect(t, "waiting")
	time.Sleep(10 * time.Millisecond) // longer than idleLoss Intervals
	sink.wake <- struct{}{}
	lost := sink.expect(t, "lost")
	if !errors.Is(lost.err, ErrIdle) {
		t.Fatalf("Lost(%v), want ErrIdle", lost.err)
	}
	start := time.Now()
	sink.expectStart(t)
	sink.expectChanged(t, "a", -1, nil)
	if d := time.Since(start); d >= minBackoff/2 {
		t.Fatalf("the feed took %v to start again, want no backoff (it is %v at least)", d, minBackoff/2)
	}
	if newest, after, _ := src.waitAfter(t, 3); newest != 2 || after[2] != ts(9, 0) {
		t.Fatalf("Newest called %d times, third After from %v; want twice, from %v", newest, after[2], ts(9, 0))
	}
}

// A wait ends with the feed's context, and Run returns.
func TestOplogWaitEndsWithContext(t *testing.T) {
	src := &fakeOplog{newest: []newestStep{{ts: ts(1, 0)}}}
	sink := newPacer()
	sink.idle <- true
	r := run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expect(t, "waiting")
	r.stop(t)
	if n := sink.count("lost"); n != 0 {
		t.Fatalf("%d Lost calls on stop, want none", n)
	}
}

// History lost after a short wait says the oplog is too small, as it
// does without a Pacer.
func TestOplogHistoryLostAfterAShortWaitIsAFailure(t *testing.T) {
	src := &fakeOplog{
		newest: []newestStep{{ts: ts(1, 0)}},
		after:  []afterStep{{kept: true}, {kept: false}},
	}
	sink := newPacer()
	sink.idle <- false
	sink.idle <- true
	run(t, &Oplog{Source: src, Interval: 100 * time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expect(t, "caught")
	sink.expect(t, "waiting")
	sink.wake <- struct{}{}
	if lost := sink.expect(t, "lost"); !errors.Is(lost.err, errHistoryLost) {
		t.Fatalf("Lost(%v) after a wait shorter than %d Intervals, want errHistoryLost", lost.err, idleLoss)
	}
}

// An empty oplog gives no entry to find again after a wait, so the feed
// polls it without waiting until it has read one.
func TestOplogDoesNotWaitOnAnEmptyOplog(t *testing.T) {
	src := &fakeOplog{
		newest: []newestStep{{}},
		after:  []afterStep{{kept: true}, {kept: true, entries: []Entry{{TS: ts(3, 0), Op: "d", ID: "a", Rev: -1}}}, {kept: true}},
	}
	sink := newPacer()
	for range 3 {
		sink.idle <- true
	}
	run(t, &Oplog{Source: src, Interval: time.Millisecond}, sink)
	sink.expectStart(t)
	sink.expect(t, "caught")
	sink.expectChanged(t, "a", -1, nil)
	sink.expect(t, "caught")
	sink.expect(t, "waiting") // with an entry to find again
}
