package ttlindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

const (
	// DefaultInterval is the reaper's interval when ReaperOptions.Interval
	// is zero.
	DefaultInterval = time.Minute
	// DefaultTimeout bounds a pass when ReaperOptions.Timeout is zero.
	DefaultTimeout = 30 * time.Second
)

// ErrReaperClosed is returned by Reap after Close.
var ErrReaperClosed = errors.New("sessionstore: ttl: reaper is closed")

// ReaperOptions configures StartReaper. The zero value, like a nil
// *ReaperOptions, consists entirely of defaults.
type ReaperOptions struct {
	// Interval is the pause between the end of one pass and the start of
	// the next, varied by ±10% so that instances started together spread
	// out. Zero or negative means DefaultInterval (1 minute).
	Interval time.Duration
	// Timeout bounds each pass. Zero or negative means DefaultTimeout
	// (30 seconds).
	Timeout time.Duration
	// Now is the clock whose reading is passed to the delete function as
	// the cutoff. It does not drive the schedule. Nil means time.Now.
	Now func() time.Time
	// OnReap, if not nil, is called after each pass with the number of
	// documents deleted and the pass's error. It is called outside any
	// lock, from the goroutine that ran the pass, and must not call Close.
	OnReap func(n int64, err error)
	// Logger receives failed passes at error level and passes that deleted
	// documents at debug level. Nil means no logging.
	Logger *slog.Logger
}

// Reaper deletes expired sessions on servers that cannot keep a TTL index.
// Its methods are safe for concurrent use.
type Reaper struct {
	del      func(context.Context, time.Time) (int64, error)
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time
	onReap   func(int64, error)
	log      *slog.Logger

	quit chan struct{}  // closed by Close; stops the loop
	wg   sync.WaitGroup // the loop and every pass in flight

	mu     sync.Mutex // protects closed, passes and nextID
	closed bool
	passes map[uint64]context.CancelFunc // cancels passes in flight
	nextID uint64
}

// StartReaper starts a goroutine that calls del every interval until Close.
// del deletes the sessions that expired before now and returns how many it
// deleted; the store passes one doing deleteMany({expires: {$lt: now}}).
// The first pass runs one interval after the start. opts may be nil; it is
// not retained or modified. StartReaper panics if del is nil.
func StartReaper(del func(ctx context.Context, now time.Time) (int64, error), opts *ReaperOptions) *Reaper {
	if del == nil {
		panic("sessionstore: ttl: StartReaper with nil delete function")
	}
	var o ReaperOptions
	if opts != nil {
		o = *opts
	}
	r := &Reaper{
		del:      del,
		interval: o.Interval,
		timeout:  o.Timeout,
		now:      o.Now,
		onReap:   o.OnReap,
		log:      o.Logger,
		quit:     make(chan struct{}),
		passes:   make(map[uint64]context.CancelFunc),
	}
	if r.interval <= 0 {
		r.interval = DefaultInterval
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.wg.Add(1)
	go r.loop()
	return r
}

func (r *Reaper) loop() {
	defer r.wg.Done()
	t := time.NewTimer(r.jittered())
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		r.Reap(context.Background()) // reported through Logger and OnReap
		t.Reset(r.jittered())
	}
}

// jittered returns the interval varied by up to ±10%.
func (r *Reaper) jittered() time.Duration {
	span := r.interval / 5
	if span <= 0 {
		return r.interval
	}
	return r.interval - r.interval/10 + rand.N(span+1)
}

// Reap runs one pass now, bounded by ctx and the Timeout option, and
// returns how many documents it deleted. Like the passes of the loop it is
// reported to Logger and OnReap, and cancelled by Close. After Close it
// returns ErrReaperClosed without calling the delete function.
func (r *Reaper) Reap(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, ErrReaperClosed
	}
	id := r.nextID
	r.nextID++
	r.passes[id] = cancel
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.passes, id)
		r.mu.Unlock()
		r.wg.Done()
	}()

	start := time.Now()
	n, err := r.del(ctx, r.now())
	took := time.Since(start)
	if err != nil {
		err = fmt.Errorf("sessionstore: ttl: reaper pass: %w", err)
		if !r.isClosed() {
			r.log.LogAttrs(context.Background(), slog.LevelError, "sessionstore: ttl: reaper pass failed",
				slog.Any("error", err), slog.Int64("deleted", n), slog.Duration("took", took))
		}
	} else if n > 0 {
		r.log.LogAttrs(context.Background(), slog.LevelDebug, "sessionstore: ttl: reaper deleted expired sessions",
			slog.Int64("deleted", n), slog.Duration("took", took))
	}
	if r.onReap != nil {
		r.onReap(n, err)
	}
	return n, err
}

func (r *Reaper) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops the loop, cancels any pass in flight and waits until the
// loop and every pass have returned, OnReap calls included. It may be
// called more than once and from several goroutines; every call waits.
// Close on a nil *Reaper does nothing.
func (r *Reaper) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	var cancels []context.CancelFunc
	if !r.closed {
		r.closed = true
		close(r.quit)
		for _, c := range r.passes {
			cancels = append(cancels, c)
		}
	}
	r.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	r.wg.Wait()
}
