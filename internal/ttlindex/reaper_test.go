package ttlindex

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the reaper goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Real time, short interval: passes come at about the interval.
func TestReaperPassesAtInterval(t *testing.T) {
	const interval = 20 * time.Millisecond
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	starts := make(chan time.Time, 100)
	r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
		if !now.Equal(clock) {
			t.Errorf("delete got now = %v, want the injected clock %v", now, clock)
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("pass context has no deadline")
		}
		starts <- time.Now()
		return 0, nil
	}, &ReaperOptions{Interval: interval, Now: func() time.Time { return clock }})
	defer r.Close()

	begin := time.Now()
	var prev time.Time
	for i := range 5 {
		select {
		case s := <-starts:
			// Timers never fire early; the lower bound is exact up to
			// jitter. The upper bound is generous for loaded machines.
			gap := s.Sub(begin)
			if i > 0 {
				gap = s.Sub(prev)
			}
			if gap < interval*9/10 {
				t.Errorf("pass %d came %v after the previous one, want at least %v", i, gap, interval*9/10)
			}
			prev = s
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d passes in 5s with a %v interval", i, interval)
		}
	}
}

// Fake time: the schedule follows Interval with ±10% jitter, the first pass
// one interval after the start, and defaults apply.
func TestReaperSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Duration
		start := time.Now()
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			dl, _ := ctx.Deadline()
			if got := time.Until(dl); got != DefaultTimeout {
				t.Errorf("pass deadline in %v, want %v", got, DefaultTimeout)
			}
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
			return 0, nil
		}, nil)
		time.Sleep(10*time.Minute + 30*time.Second)
		r.Close()

		mu.Lock()
		defer mu.Unlock()
		if len(at) < 9 || len(at) > 11 {
			t.Fatalf("%d passes in 10m30s with the default interval: %v", len(at), at)
		}
		prev := time.Duration(0)
		for i, a := range at {
			if gap := a - prev; gap < 54*time.Second || gap > 66*time.Second {
				t.Errorf("pass %d after %v, want 1m ± 10%%", i, gap)
			}
			prev = a
		}
	})
}

func TestReaperJitter(t *testing.T) {
	r := &Reaper{interval: 10 * time.Second}
	lo, hi := r.interval, r.interval
	for range 10000 {
		d := r.jittered()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 9*time.Second || hi > 11*time.Second {
		t.Fatalf("jitter range [%v, %v], want within [9s, 11s]", lo, hi)
	}
	if lo > 9100*time.Millisecond || hi < 10900*time.Millisecond {
		t.Errorf("jitter range [%v, %v] does not spread over ±10%%", lo, hi)
	}
	if d := (&Reaper{interval: 3}).jittered(); d != 3 {
		t.Errorf("jittered tiny interval = %v", d)
	}
}

// A failing delete is reported and the loop continues.
func TestReaperFailureReportedAndLoopContinues(t *testing.T) {
	var logs syncBuffer
	var calls atomic.Int64
	type pass struct {
		n   int64
		err error
	}
	reports := make(chan pass, 100)
	boom := errors.New("connection refused")
	r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
		if calls.Add(1) <= 2 {
			return 0, boom
		}
		return 3, nil
	}, &ReaperOptions{
		Interval: 5 * time.Millisecond,
		Logger:   debugLogger(&logs),
		OnReap:   func(n int64, err error) { reports <- pass{n, err} },
	})
	defer r.Close()

	for i := range 3 {
		select {
		case p := <-reports:
			if i < 2 {
				if !errors.Is(p.err, boom) || !strings.HasPrefix(p.err.Error(), "sessionstore: ttl: ") {
					t.Errorf("pass %d reported %v, want the delete error wrapped", i, p.err)
				}
			} else if p.err != nil || p.n != 3 {
				t.Errorf("pass %d reported %d, %v; want 3, nil", i, p.n, p.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("pass %d not reported within 5s", i)
		}
	}
	r.Close()
	out := logs.String()
	if strings.Count(out, "level=ERROR") != 2 || !strings.Contains(out, "connection refused") {
		t.Errorf("want two error lines naming the failure, got:\n%s", out)
	}
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "deleted=3") {
		t.Errorf("want a debug line for the pass that deleted 3, got:\n%s", out)
	}
}

// Close cancels a pass that hangs, returns promptly and leaves no goroutine.
func TestReaperCloseCancelsHangingPass(t *testing.T) {
	before := runtime.NumGoroutine()
	var logs syncBuffer
	started := make(chan struct{})
	var once sync.Once
	var delErr, reported atomic.Value
	r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		delErr.Store(ctx.Err())
		return 0, ctx.Err()
	}, &ReaperOptions{
		Interval: time.Millisecond,
		Timeout:  time.Hour,
		Logger:   debugLogger(&logs),
		OnReap:   func(n int64, err error) { reported.Store(err) },
	})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no pass started within 5s")
	}

	closed := make(chan struct{})
	t0 := time.Now()
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s while a pass hung")
	}
	if took := time.Since(t0); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if err, _ := delErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("pass context ended with %v, want context.Canceled", err)
	}
	// Close waited for OnReap.
	if err, _ := reported.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("OnReap got %v, want an error wrapping context.Canceled", err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a pass cancelled by Close was logged as a failure:\n%s", logs.String())
	}

	// Every goroutine the reaper started has exited once Close returns;
	// allow the runtime a moment to retire the test's own helper.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// Under synctest, Close must leave no goroutine in the bubble, or
// synctest.Test fails.
func TestReaperCloseLeavesNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, &ReaperOptions{Interval: time.Second})
		time.Sleep(1500 * time.Millisecond) // a pass is now hanging
		synctest.Wait()
		r.Close()
	})
}

func TestReaperCloseIdempotentAndConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, &ReaperOptions{Interval: time.Second})
		time.Sleep(2 * time.Second)
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(r.Close)
		}
		wg.Wait()
		r.Close()
		var nilReaper *Reaper
		nilReaper.Close()
	})
}

func TestReap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			calls.Add(1)
			if !now.Equal(clock) {
				t.Errorf("now = %v, want %v", now, clock)
			}
			return 7, nil
		}, &ReaperOptions{Now: func() time.Time { return clock }})

		n, err := r.Reap(context.Background())
		if n != 7 || err != nil {
			t.Fatalf("Reap = %d, %v; want 7, nil", n, err)
		}
		r.Close()
		n, err = r.Reap(context.Background())
		if n != 0 || !errors.Is(err, ErrReaperClosed) {
			t.Fatalf("Reap after Close = %d, %v; want 0, ErrReaperClosed", n, err)
		}
		if c := calls.Load(); c != 1 {
			t.Fatalf("delete called %d times, want 1 (no loop pass before the first minute)", c)
		}
	})
}

func TestReapTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, &ReaperOptions{Timeout: 50 * time.Millisecond})
		defer r.Close()
		start := time.Now()
		_, err := r.Reap(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("Reap = %v after %v; want DeadlineExceeded after 50ms", err, time.Since(start))
		}
	})
}

// Close cancels a Reap call from outside the loop and waits for it.
func TestCloseCancelsReap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var finished atomic.Bool
		r := StartReaper(func(ctx context.Context, now time.Time) (int64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, &ReaperOptions{OnReap: func(int64, error) { finished.Store(true) }})
		done := make(chan error, 1)
		go func() {
			_, err := r.Reap(context.Background())
			done <- err
		}()
		synctest.Wait() // Reap is blocked in delete
		r.Close()
		if !finished.Load() {
			t.Fatal("Close returned before the Reap it cancelled")
		}
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Reap = %v, want context.Canceled", err)
		}
	})
}

func TestStartReaperNilDelete(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("StartReaper(nil) did not panic")
		}
	}()
	StartReaper(nil, nil)
}

func TestReaperOptionsNotModified(t *testing.T) {
	opts := &ReaperOptions{}
	r := StartReaper(func(context.Context, time.Time) (int64, error) { return 0, nil }, opts)
	r.Close()
	if opts.Interval != 0 || opts.Timeout != 0 || opts.Now != nil || opts.OnReap != nil || opts.Logger != nil {
		t.Fatalf("options modified: %+v", *opts)
	}
	if r.interval != DefaultInterval || r.timeout != DefaultTimeout || r.now == nil || r.log == nil {
		t.Fatalf("defaults not applied: %v %v", r.interval, r.timeout)
	}
}
