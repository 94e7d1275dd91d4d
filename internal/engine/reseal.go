package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Resealer is the capability of an authority to encrypt stored sessions
// again with its current key.
type Resealer interface {
	// Reseal encrypts again every session in scope live at now that is
	// sealed with an older key, calling wait before each write, and
	// returns how many it rewrote.
	Reseal(ctx context.Context, now time.Time, wait func(context.Context) error) (int64, error)
}

// Reseal re-encrypts the sessions sealed with an older key, at most
// perSecond writes a second, and returns how many it rewrote. It runs as
// background work of the engine, so Close stops it, but returns only when
// it is done, ctx ends, or the engine closes.
func (e *Engine) Reseal(ctx context.Context, perSecond int) (int64, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	if perSecond <= 0 {
		return 0, fmt.Errorf("sessionstore: re-encryption rate %d: it must be at least one session a second", perSecond)
	}
	db, ok := e.db.(Resealer)
	if !ok {
		return 0, errors.New("sessionstore: sessions are not encrypted; there is nothing to re-encrypt")
	}
	var (
		n    int64
		err  error
		done = make(chan struct{})
	)
	if gerr := e.bg.Go("re-encryption", func(stop context.Context) {
		defer close(done)
		ctx, cancel := context.WithCancel(ctx)
		defer context.AfterFunc(stop, cancel)()
		defer cancel()
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		wait := func(ctx context.Context) error {
			select {
			case <-tick.C:
				return nil
			case <-ctx.Done():
				if stop.Err() != nil {
					return ErrClosed
				}
				return ctx.Err()
			}
		}
		n, err = db.Reseal(ctx, e.cfg.Now(), wait)
		if err != nil && stop.Err() != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: re-encryption stopped after %d sessions (%v)", ErrClosed, n, err)
		}
	}); gerr != nil {
		return 0, ErrClosed
	}
	<-done
	return n, err
}
