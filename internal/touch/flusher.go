package touch

import (
	"context"
	"time"
)

// MaxBackoff caps the wait between failing flushes.
const MaxBackoff = 30 * time.Second

// Flusher calls a flush function every interval, sooner when kicked, and
// backs off while it fails. Run it on a goroutine of its own.
type Flusher struct {
	interval time.Duration
	flush    func(context.Context) error
	onError  func(error)
	kick     chan struct{}
}

// NewFlusher returns a flusher of flush every interval; onError, if set,
// receives every failure.
func NewFlusher(interval time.Duration, flush func(context.Context) error, onError func(error)) *Flusher {
	return &Flusher{interval: interval, flush: flush, onError: onError, kick: make(chan struct{}, 1)}
}

// Kick asks for a flush now. It never blocks.
func (f *Flusher) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run flushes on schedule until ctx ends, which also cancels the flush in
// progress.
func (f *Flusher) Run(ctx context.Context) {
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
		}
		err := f.flush(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if f.onError != nil {
			f.onError(err)
		}
		backoff = min(max(2*backoff, f.interval), MaxBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}
