package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// read is what one server read of a fakeStream returns: a batch of
// events, none, an error, or nothing until the read's context ends.
type read struct {
	events []bson.Raw
	err    error
	block  bool
	quiet  bool // with block: end without an error, as a read may
}

// fakeStream is a Stream that plays a script of server reads, handing out
// a batch's events one TryNext at a time as the driver does. Its fields
// are used by the feed's goroutine only, and read by the test once Run has
// returned.
type fakeStream struct {
	clk   *clock // when set, each server read records clk.last()
	reads []read
	batch []bson.Raw // the events of the current batch still to read

	cur       bson.Raw
	token     bson.Raw
	err       error
	readAt    []time.Time // clk.last() at each server read
	deadlines []time.Time // each server read's context's deadline; zero: none
	calledAt  []time.Time // when each server read began
	closed    bool
}

var _ Stream = (*fakeStream)(nil)

func (s *fakeStream) TryNext(ctx context.Context) bool {
	if len(s.batch) == 0 {
		if s.clk != nil {
			s.readAt = append(s.readAt, s.clk.last())
		}
		d, _ := ctx.Deadline()
		s.deadlines = append(s.deadlines, d)
		s.calledAt = append(s.calledAt, time.Now())
		r := read{block: true}
		if len(s.reads) > 0 {
			r, s.reads = s.reads[0], s.reads[1:]
		}
		switch {
		case r.block:
			<-ctx.Done()
			if !r.quiet {
				s.err = ctx.Err()
			}
			return false
		case r.err != nil:
			s.err = r.err
			return false
		case len(r.events) == 0:
			return false
		}
		s.batch = r.events
	}
	s.cur, s.batch = s.batch[0], s.batch[1:]
	s.token = s.cur.Lookup("_id").Document()
	return true
}

func (s *fakeStream) Event() bson.Raw                 { return s.cur }
func (s *fakeStream) RemainingBatchLength() int       { return len(s.batch) }
func (s *fakeStream) ResumeToken() bson.Raw           { return s.token }
func (s *fakeStream) Err() error                      { return s.err }
func (s *fakeStream) Close(ctx context.Context) error { s.closed = true; return nil }

// fakeOpener opens the streams of its script in turn, or fails with the
// script's errors, and records the tokens it was given. Once the script is
// played out it waits for its context to end.
type fakeOpener struct {
	mu        sync.Mutex
	script    []any // *fakeStream, error, or "block"
	tokens    []bson.Raw
	deadlines []time.Time // each open's context's deadline; zero: none
	calledAt  []time.Time // when each open began
}

func (o *fakeOpener) open(ctx context.Context, token bson.Raw) (Stream, error) {
	o.mu.Lock()
	o.tokens = append(o.tokens, token)
	d, _ := ctx.Deadline()
	o.deadlines = append(o.deadlines, d)
	o.calledAt = append(o.calledAt, time.Now())
	var next any = "block"
	if len(o.script) > 0 {
		next, o.script = o.script[0], o.script[1:]
	}
	o.mu.Unlock()
	switch v := next.(type) {
	case *fakeStream:
		return v, nil
	case error:
		return nil, v
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (o *fakeOpener) opened() []bson.Raw {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.tokens)
}

// token returns the resume token numbered n.
func token(t testing.TB, n int) bson.Raw {
	return raw(t, bson.D{{Key: "_data", Value: fmt.Sprintf("%04d", n)}})
}

// event returns a change event with resume token n for the document id
// (none if id is nil), with the fields more.
func event(t testing.TB, n int, op string, id any, more ...bson.E) bson.Raw {
	d := bson.D{{Key: "_id", Value: token(t, n)}, {Key: "operationType", Value: op}}
	if id != nil {
		d = append(d, bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}})
	}
	return raw(t, append(d, more...))
}

func fullDocument(fields ...bson.E) bson.E {
	return bson.E{Key: "fullDocument", Value: bson.D(fields)}
}

func updated(fields ...bson.E) bson.E {
	return bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D(fields)}}}
}

func rev(n int64) bson.E { return bson.E{Key: "rev", Value: n} }

// tokensEqual compares the tokens an opener was given with want (nil for
// none).
func tokensEqual(got, want []bson.Raw) bool {
	return slices.EqualFunc(got, want, func(a, b bson.Raw) bool {
		return (a == nil) == (b == nil) && string(a) == string(b)
	})
}

// Every event with a string id is reported with the version it wrote and
// no payload. CaughtUp comes at the end of each batch, with the time the
// read that fetched the batch began, and after each read that returned
// nothing, with the time it began.
func TestChangesReportsEventsAndCatchesUpAtBatchEnds(t *testing.T) {
	clk := newClock()
	s := &fakeStream{clk: clk, reads: []read{
		{events: []bson.Raw{
			event(t, 1, "insert", "a", fullDocument(bson.E{Key: "_id", Value: "a"}, rev(1))),
			event(t, 2, "update", "b", updated(bson.E{Key: "session", Value: "x"}, rev(2))),
			event(t, 3, "update", "c", updated(bson.E{Key: "session", Value: "y"})),
		}},
		{events: []bson.Raw{
			event(t, 4, "replace", "d", fullDocument(rev(3))),
			event(t, 5, "replace", "e", fullDocument(bson.E{Key: "session", Value: "z"})),
			event(t, 6, "delete", "f"),
			event(t, 7, "insert", int32(7), fullDocument(rev(1))),
			event(t, 8, "insert", "g", fullDocument(bson.E{Key: "rev", Value: "not a number"})),
		}},
		{},
		{block: true},
	}}
	o := &fakeOpener{script: []any{s}}
	sink := newRecorder()
	r := run(t, &Changes{Open: o.open, Now: clk.Now}, sink)
	sink.expectChanged(t, "a", 1, nil)
	sink.expectChanged(t, "b", 2, nil)
	sink.expectChanged(t, "c", -1, nil)
	first := sink.expect(t, "caught")
	sink.expectChanged(t, "d", 3, nil)
	sink.expectChanged(t, "e", 0, nil)
	sink.expectChanged(t, "f", -1, nil)
	sink.expectChanged(t, "g", -1, nil)
	second := sink.expect(t, "caught")
	third := sink.expect(t, "caught")
	r.stop(t)
	if len(s.readAt) != 4 {
		t.Fatalf("%d server reads, want 4", len(s.readAt))
	}
	for i, got := range []time.Time{first.since, second.since, third.since} {
		if !got.Equal(s.readAt[i]) {
			t.Fatalf("CaughtUp %d at %v, want %v, the time read %d began", i, got, s.readAt[i], i)
		}
	}
	if sink.count("lost") != 0 || !s.closed {
		t.Fatalf("lost %d times, stream closed %t; want no Lost and a closed stream", sink.count("lost"), s.closed)
	}
	if !tokensEqual(o.opened(), []bson.Raw{nil}) {
		t.Fatalf("opened with tokens %v, want one open from now", o.opened())
	}
}

// With Now nil, CaughtUp reports the wall time the read began.
func TestChangesNowDefaultsToTimeNow(t *testing.T) {
	o := &fakeOpener{script: []any{&fakeStream{reads: []read{{}}}}}
	sink := newRecorder()
	before := time.Now()
	run(t, &Changes{Open: o.open}, sink)
	n := sink.expect(t, "caught")
	if n.since.Before(before) || n.since.After(time.Now()) {
		t.Fatalf("CaughtUp(%v), want a time between %v and now", n.since, before)
	}
}

// After an error, the feed reports Lost, closes the stream and opens
// another that resumes after the last event read.
func TestChangesResumesWithTheLastToken(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	s1 := &fakeStream{reads: []read{
		{events: []bson.Raw{event(t, 1, "delete", "a"), event(t, 2, "delete", "b")}},
		{err: boom},
	}}
	s2 := &fakeStream{reads: []read{{events: []bson.Raw{event(t, 3, "delete", "c")}}}}
	o := &fakeOpener{script: []any{s1, s2}}
	sink := newRecorder()
	r := run(t, &Changes{Open: o.open}, sink)
	sink.expectChanged(t, "a", -1, nil)
	sink.expectChanged(t, "b", -1, nil)
	sink.expect(t, "caught")
	if n := sink.expect(t, "lost"); !errors.Is(n.err, boom) {
		t.Fatalf("Lost(%v), want the stream's error", n.err)
	}
	sink.expectChanged(t, "c", -1, nil)
	sink.expect(t, "caught")
	r.stop(t)
	if want := []bson.Raw{nil, token(t, 2)}; !tokensEqual(o.opened(), want) {
		t.Fatalf("opened with tokens %v, want %v", o.opened(), want)
	}
	if !s1.closed || !s2.closed {
		t.Fatalf("streams closed: %t, %t; want both", s1.closed, s2.closed)
	}
}

// A failure to open is reported and retried with the same token.
func TestChangesRetriesOpenWithTheSameToken(t *testing.T) {
	t.Parallel()
	boom := errors.New("host unreachable")
	o := &fakeOpener{script: []any{boom, &fakeStream{reads: []read{{}}}}}
	sink := newRecorder()
	r := run(t, &Changes{Open: o.open, token: token(t, 9)}, sink)
	if n := sink.expect(t, "lost"); !errors.Is(n.err, boom) {
		t.Fatalf("Lost(%v), want the open's error", n.err)
	}
	sink.expect(t, "caught")
	r.stop(t)
	if want := []bson.Raw{token(t, 9), token(t, 9)}; !tokensEqual(o.opened(), want) {
		t.Fatalf("opened with tokens %v, want %v", o.opened(), want)
	}
}

// An invalidate event (the collection was dropped or renamed) ends the
// stream: Lost, then a stream from now, without a token. Events of the
// batch before it are reported; no CaughtUp follows it.
func TestChangesStartsAfreshAfterInvalidate(t *testing.T) {
	t.Parallel()
	s1 := &fakeStream{reads: []read{{events: []bson.Raw{event(t, 1, "delete", "a"), event(t, 2, "invalidate", nil)}}}}
	s2 := &fakeStream{reads: []read{{}}}
	o := &fakeOpener{script: []any{s1, s2}}
	sink := newRecorder()
	r := run(t, &Changes{Open: o.open, token: token(t, 0)}, sink)
	sink.expectChanged(t, "a", -1, nil)
	if n := sink.expect(t, "lost"); n.err == nil || !strings.Contains(n.err.Error(), "invalidated") {
		t.Fatalf("Lost(%v), want an error saying the stream was invalidated", n.err)
	}
	sink.expect(t, "caught")
	r.stop(t)
	if want := []bson.Raw{token(t, 0), nil}; !tokensEqual(o.opened(), want) {
		t.Fatalf("opened with tokens %v, want %v", o.opened(), want)
	}
	if !s1.closed {
		t.Fatal("the invalidated stream was not closed")
	}
}

// ChangeStreamHistoryLost (286), from opening or from a read, means the
// token is gone: Lost, then a stream from now.
func TestChangesHistoryLostStartsAfresh(t *testing.T) {
	t.Parallel()
	lost := mongo.CommandError{Code: 286, Name: "ChangeStreamHistoryLost", Message: "resume point not found"}
	for _, c := range []struct {
		name  string
		first any
	}{
		{"opening", fmt.Errorf("open: %w", lost)},
		{"reading", &fakeStream{reads: []read{{events: []bson.Raw{event(t, 1, "delete", "a")}}, {err: lost}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := &fakeOpener{script: []any{c.first, &fakeStream{reads: []read{{}}}}}
			sink := newRecorder()
			r := run(t, &Changes{Open: o.open, token: token(t, 0)}, sink)
			n := sink.until(t, "lost")
			var se mongo.ServerError
			if !errors.As(n.err, &se) || !se.HasErrorCode(286) {
				t.Fatalf("Lost(%v), want the history lost error", n.err)
			}
			sink.expect(t, "caught")
			r.stop(t)
			tokens := o.opened()
			if len(tokens) != 2 || tokens[1] != nil {
				t.Fatalf("opened with tokens %v, want the second open without one", tokens)
			}
		})
	}
}

// Timeout bounds opening the stream, and each read beyond the await time;
// with no Timeout, opening has no deadline.
func TestChangesTimeoutBoundsOpenAndReads(t *testing.T) {
	t.Parallel()
	t.Run("open", func(t *testing.T) {
		t.Parallel()
		o := &fakeOpener{script: []any{"block"}}
		sink := newRecorder()
		run(t, &Changes{Open: o.open, Timeout: 20 * time.Millisecond, Await: time.Hour}, sink)
		if n := sink.expect(t, "lost"); !errors.Is(n.err, context.DeadlineExceeded) {
			t.Fatalf("Lost(%v), want a deadline error", n.err)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if d := o.deadlines[0]; d.IsZero() || d.Sub(o.calledAt[0]) > 20*time.Millisecond {
			t.Fatalf("opening had %v left, want at most the 20ms Timeout, without the await time", d.Sub(o.calledAt[0]))
		}
	})
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		s := &fakeStream{reads: []read{{block: true}}}
		o := &fakeOpener{script: []any{s}}
		sink := newRecorder()
		r := run(t, &Changes{Open: o.open, Timeout: 20 * time.Millisecond, Await: 30 * time.Millisecond}, sink)
		if n := sink.expect(t, "lost"); !errors.Is(n.err, context.DeadlineExceeded) {
			t.Fatalf("Lost(%v), want a deadline error", n.err)
		}
		r.stop(t)
		// The read's context was made after the stream opened and
		// before the read began.
		o.mu.Lock()
		opened := o.calledAt[0]
		o.mu.Unlock()
		d := s.deadlines[0]
		if d.IsZero() || d.Sub(opened) < 50*time.Millisecond || d.Sub(s.calledAt[0]) > 50*time.Millisecond {
			t.Fatalf("the read's deadline was %v after the open and %v after the read began, want the 20ms Timeout plus the 30ms await time", d.Sub(opened), d.Sub(s.calledAt[0]))
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		o := &fakeOpener{script: []any{&fakeStream{reads: []read{{}}}}}
		sink := newRecorder()
		run(t, &Changes{Open: o.open}, sink)
		sink.expect(t, "caught")
		o.mu.Lock()
		defer o.mu.Unlock()
		if !o.deadlines[0].IsZero() {
			t.Fatalf("opening had the deadline %v, want none", o.deadlines[0])
		}
	})
}

// Run returns as soon as its context ends, in a read or before retrying,
// closes the stream and reports no Lost for it.
func TestChangesRunEndsWithItsContext(t *testing.T) {
	t.Parallel()
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("reading, quiet %t", quiet), func(t *testing.T) {
			t.Parallel()
			s := &fakeStream{reads: []read{{}, {block: true, quiet: quiet}}}
			o := &fakeOpener{script: []any{s}}
			sink := newRecorder()
			r := run(t, &Changes{Open: o.open}, sink)
			sink.expect(t, "caught")
			time.Sleep(10 * time.Millisecond)
			r.stop(t)
			if sink.count("lost") != 0 || sink.count("caught") != 1 || !s.closed {
				t.Fatalf("calls %+v, stream closed %t; want one CaughtUp, no Lost and a closed stream", sink.all(), s.closed)
			}
		})
	}
	t.Run("opening", func(t *testing.T) {
		t.Parallel()
		o := &fakeOpener{script: []any{"block"}}
		sink := newRecorder()
		r := run(t, &Changes{Open: o.open}, sink)
		time.Sleep(10 * time.Millisecond)
		r.stop(t)
		if sink.count("lost") != 0 {
			t.Fatalf("Lost reported when the context ended: %+v", sink.all())
		}
	})
	t.Run("before retrying", func(t *testing.T) {
		t.Parallel()
		o := &fakeOpener{script: []any{fmt.Errorf("none here: %w", ErrNoFeed)}}
		sink := newRecorder()
		r := run(t, &Changes{Open: o.open}, sink)
		sink.expect(t, "lost")
		r.stop(t) // the backoff after ErrNoFeed is 5s at least
		if n := len(o.opened()); n != 1 {
			t.Fatalf("opened %d times, want once", n)
		}
	})
}

// eventRev reads the version an event wrote.
func TestEventRev(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   bson.Raw
		want int64
	}{
		{"update setting rev", event(t, 1, "update", "a", updated(rev(4))), 4},
		{"update setting rev as int32", event(t, 1, "update", "a", updated(bson.E{Key: "rev", Value: int32(5)})), 5},
		{"update not setting rev", event(t, 1, "update", "a", updated(bson.E{Key: "session", Value: "x"})), -1},
		{"update setting rev to a string", event(t, 1, "update", "a", updated(bson.E{Key: "rev", Value: "x"})), -1},
		{"update without a description", event(t, 1, "update", "a"), -1},
		{"insert", event(t, 1, "insert", "a", fullDocument(rev(1))), 1},
		{"insert without rev", event(t, 1, "insert", "a", fullDocument(bson.E{Key: "session", Value: "x"})), 0},
		{"insert without fullDocument", event(t, 1, "insert", "a"), 0},
		{"replace", event(t, 1, "replace", "a", fullDocument(rev(7))), 7},
		{"replace without rev", event(t, 1, "replace", "a", fullDocument()), 0},
		{"delete", event(t, 1, "delete", "a"), -1},
		{"unknown operation", event(t, 1, "drop", nil), -1},
	} {
		op, _ := c.ev.Lookup("operationType").StringValueOK()
		if got := eventRev(c.ev, op); got != c.want {
			t.Errorf("%s: eventRev = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestHistoryLost(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{mongo.CommandError{Code: 286}, true},
		{fmt.Errorf("open: %w", mongo.CommandError{Code: 286}), true},
		{mongo.CommandError{Code: 280}, false},
		{errors.New("ChangeStreamHistoryLost"), false},
		{nil, false},
	} {
		if got := historyLost(c.err); got != c.want {
			t.Errorf("historyLost(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}
