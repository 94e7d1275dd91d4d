package feed

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// attempts is an attempt func that plays a script of results and records
// when each call began.
type attempts struct {
	mu      sync.Mutex
	results []error
	started []time.Time
	calls   chan struct{}
}

func newAttempts(results ...error) *attempts {
	return &attempts{results: results, calls: make(chan struct{}, 100)}
}

func (a *attempts) try(ctx context.Context, sink Sink) (bool, error) {
	a.mu.Lock()
	a.started = append(a.started, time.Now())
	var err error
	block := len(a.results) == 0
	if !block {
		err, a.results = a.results[0], a.results[1:]
	}
	a.mu.Unlock()
	a.calls <- struct{}{}
	if block {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return false, err
}

func (a *attempts) times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.started...)
}

// feedFunc makes an attempt a Feed, to run retry through the helpers.
type feedFunc attempt

func (f feedFunc) Run(ctx context.Context, sink Sink) { retry(ctx, sink, attempt(f)) }

// Each failure is reported as Lost, an attempt that ends without an error
// too, and the next attempt waits the first backoff: half to one and a
// half times minBackoff.
func TestRetryReportsEachFailureAndBacksOff(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	a := newAttempts(boom, nil)
	sink := newRecorder()
	run(t, feedFunc(a.try), sink)
	if n := sink.expect(t, "lost"); !errors.Is(n.err, boom) {
		t.Fatalf("Lost(%v), want the attempt's error", n.err)
	}
	if n := sink.expect(t, "lost"); n.err == nil || !strings.Contains(n.err.Error(), "ended") {
		t.Fatalf("Lost(%v), want an error saying the feed ended", n.err)
	}
	<-a.calls
	<-a.calls
	<-a.calls
	started := a.times()
	if gap := started[1].Sub(started[0]); gap < minBackoff/2 {
		t.Fatalf("the second attempt came %v after the first, want at least %v", gap, minBackoff/2)
	}
	if gap := started[2].Sub(started[1]); gap < minBackoff {
		t.Fatalf("the third attempt came %v after the second, want at least %v: the backoff doubles", gap, minBackoff)
	}
}

// An attempt that ends because the context did reports nothing, and Run
// returns.
func TestRetryEndsWithItsContext(t *testing.T) {
	a := newAttempts()
	sink := newRecorder()
	r := run(t, feedFunc(a.try), sink)
	<-a.calls
	r.stop(t)
	if len(sink.all()) != 0 {
		t.Fatalf("calls %+v when the context ended, want none", sink.all())
	}
	// A context that ended before Run never attempts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	retry(ctx, sink, a.try)
	if n := len(a.times()); n != 1 {
		t.Fatalf("%d attempts, want only the first run's", n)
	}
}

func TestSleep(t *testing.T) {
	if !sleep(context.Background(), time.Millisecond) {
		t.Fatal("sleep reported its context ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if sleep(ctx, time.Hour) {
		t.Fatal("sleep of an ended context reported it did not end")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("sleep of an ended context took %v", d)
	}
}

func TestBounded(t *testing.T) {
	parent := context.Background()
	for _, d := range []time.Duration{0, -time.Second} {
		ctx, cancel := bounded(parent, d)
		if ctx != parent {
			t.Fatalf("bounded(%v) returned a new context, want its parent", d)
		}
		cancel()
	}
	ctx, cancel := bounded(parent, time.Minute)
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Minute {
		t.Fatalf("bounded(1m) deadline %v, %t; want within a minute", dl, ok)
	}
}
