package sessionstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// indexer sets up the TTL index once and, when the server cannot keep one,
// owns the reaper.
type indexer struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when setup has finished

	mu       sync.Mutex // protects decision, err, reaper and stopped
	decision ttl.Decision
	err      error
	reaper   *ttl.Reaper
	stopped  bool
}

// startIndexer runs TTL index setup: in the background, or before it
// returns when the mode is ttl.Require, so that New can fail.
func startIndexer[T any](ctx context.Context, s *Store[T]) (*indexer, error) {
	ix := &indexer{done: make(chan struct{})}
	if s.opts.TTLIndex == ttl.Require {
		ix.cancel = func() {}
		defer close(ix.done)
		ctx, cancel := context.WithTimeout(ctx, s.opts.IndexTimeout)
		defer cancel()
		d, err := s.ensureIndex(ctx)
		if err != nil {
			return nil, err
		}
		ix.decision = d
		return ix, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.IndexTimeout)
	ix.cancel = cancel
	go func() {
		defer close(ix.done)
		defer cancel()
		d, err := s.ensureIndex(ctx)
		if err != nil {
			// Only Auto gets here (Off sends nothing, Require fails New).
			// The reaper is a safe fallback: it deletes only what a TTL
			// index would.
			s.obs.background(opIndex, err)
			d = ttl.Decision{Mode: ttl.Auto, Action: ttl.UseReaper, Reaper: true,
				Reason: "TTL index setup failed; running the built-in reaper"}
		}
		ix.mu.Lock()
		defer ix.mu.Unlock()
		ix.decision, ix.err = d, err
		if d.Reaper && !ix.stopped {
			ix.reaper = s.startReaper()
		}
	}()
	return ix, nil
}

func (s *Store[T]) ensureIndex(ctx context.Context) (ttl.Decision, error) {
	ctx, op := s.obs.start(ctx, opIndex)
	coll := s.db.Collection()
	d, err := ttl.Ensure(ctx, ttl.DatabaseCommander(coll.Database()), coll.Name(), s.opts.TTLIndex)
	op.attrs(tracing.TTLMode.String(s.opts.TTLIndex.String()), tracing.TTLAction.String(d.Action.String()))
	op.end(err)
	if err != nil {
		return d, fmt.Errorf("sessionstore: TTL index setup on %s: %w", coll.Name(), err)
	}
	s.obs.logger.Info("sessionstore: TTL index", "collection", coll.Name(), "mode", d.Mode.String(),
		"action", d.Action.String(), "reaper", d.Reaper, "server", d.ServerVersion, "reason", d.Reason)
	return d, nil
}

func (s *Store[T]) startReaper() *ttl.Reaper {
	return ttl.StartReaper(s.reap, &ttl.ReaperOptions{
		Interval: s.opts.ReapInterval,
		Timeout:  s.opts.WriteTimeout,
		Now:      s.opts.Clock.Now,
		Logger:   s.obs.logger,
		OnReap: func(_ int64, err error) {
			if err != nil && s.obs.onError != nil {
				s.obs.onError(err)
			}
		},
	})
}

// reap deletes the sessions that expired before now: one reaper pass.
func (s *Store[T]) reap(ctx context.Context, now time.Time) (int64, error) {
	ctx, op := s.obs.start(ctx, opReap)
	n, err := s.db.Reap(ctx, now)
	op.reaped(n)
	op.end(err)
	return n, err
}

// stop cancels setup still running, waits for it, and stops the reaper.
func (ix *indexer) stop() {
	ix.cancel()
	<-ix.done
	ix.mu.Lock()
	ix.stopped = true
	r := ix.reaper
	ix.mu.Unlock()
	if r != nil {
		r.Close()
	}
}

// TTLIndex waits for TTL index setup to finish, or for ctx to end, and
// reports what it decided: whether the server keeps a TTL index on
// expires, and whether the store runs its own reaper instead. The decision
// is also logged at info level when it is made.
func (s *Store[T]) TTLIndex(ctx context.Context) (ttl.Decision, error) {
	select {
	case <-s.index.done:
	case <-ctx.Done():
		return ttl.Decision{}, ctx.Err()
	}
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	return s.index.decision, s.index.err
}

// Reap deletes expired sessions from the database now, as the built-in
// reaper does on servers without TTL indexes, and returns how many it
// deleted. It is never needed for correctness: reads ignore expired
// sessions.
func (s *Store[T]) Reap(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.reap(ctx, s.now())
}
