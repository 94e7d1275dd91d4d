package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/ttlindex"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// indexState is the outcome of TTL index setup.
type indexState struct {
	done chan struct{} // closed when setup has finished

	mu       sync.Mutex // protects decision and err
	decision ttl.Decision
	err      error
}

// startIndex sets up the TTL index: in the background, or before it
// returns when the mode is ttl.Require, so that New can fail. When the
// server cannot keep the index, the reaper runs in its place.
func (e *Engine) startIndex(ctx context.Context) (*indexState, error) {
	ix := &indexState{done: make(chan struct{})}
	if e.cfg.TTLIndex == ttl.Require {
		defer close(ix.done)
		ctx, cancel := context.WithTimeout(ctx, e.cfg.IndexTimeout)
		defer cancel()
		d, err := e.ensureIndex(ctx)
		if err != nil {
			return nil, err
		}
		ix.decision = d
		return ix, nil
	}
	err := e.bg.Go("index setup", func(ctx context.Context) {
		setup, cancel := context.WithTimeout(ctx, e.cfg.IndexTimeout)
		d, err := e.ensureIndex(setup)
		cancel()
		if err != nil {
			// Only Auto gets here (Off sends nothing, Require fails New).
			// The reaper is a safe fallback: it deletes only what a TTL
			// index would.
			e.obs.Background(observe.Index, err)
			d = ttl.Decision{Mode: ttl.Auto, Action: ttl.UseReaper, Reaper: true,
				Reason: "TTL index setup failed; running the built-in reaper"}
		}
		ix.mu.Lock()
		ix.decision, ix.err = d, err
		ix.mu.Unlock()
		close(ix.done)
		if d.Reaper && ctx.Err() == nil {
			e.runReaper(ctx)
		}
	})
	return ix, err
}

func (e *Engine) ensureIndex(ctx context.Context) (ttl.Decision, error) {
	ctx, op := e.obs.Start(ctx, observe.Index)
	d, err := e.cfg.EnsureIndex(ctx)
	op.Attrs(tracing.TTLMode.String(e.cfg.TTLIndex.String()), tracing.TTLAction.String(d.Action.String()))
	op.End(err)
	if err != nil {
		return d, fmt.Errorf("sessionstore: TTL index setup on %s: %w", e.cfg.Collection, err)
	}
	e.log.Info("sessionstore: TTL index", "collection", e.cfg.Collection, "mode", d.Mode.String(),
		"action", d.Action.String(), "reaper", d.Reaper, "server", d.ServerVersion, "reason", d.Reason)
	return d, nil
}

// runReaper deletes expired sessions every ReapInterval until ctx ends.
func (e *Engine) runReaper(ctx context.Context) {
	r := ttlindex.StartReaper(e.reap, &ttlindex.ReaperOptions{
		Interval: e.cfg.ReapInterval,
		Timeout:  e.cfg.WriteTimeout,
		Now:      e.cfg.Now,
		Logger:   e.log,
		OnReap: func(_ int64, err error) {
			if err != nil {
				e.obs.Report(err)
			}
		},
	})
	<-ctx.Done()
	r.Close()
}

// reap deletes the sessions that expired before now: one reaper pass.
func (e *Engine) reap(ctx context.Context, now time.Time) (int64, error) {
	ctx, op := e.obs.Start(ctx, observe.Reap)
	n, err := e.db.Reap(ctx, now)
	op.Reaped(n)
	op.End(err)
	return n, err
}

// Reap deletes expired sessions from the server now, as the reaper does.
func (e *Engine) Reap(ctx context.Context) (int64, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	return e.reap(ctx, e.cfg.Now())
}

// TTLIndex waits for TTL index setup to finish, or for ctx to end, and
// reports what it decided.
func (e *Engine) TTLIndex(ctx context.Context) (ttl.Decision, error) {
	select {
	case <-e.index.done:
	case <-ctx.Done():
		return ttl.Decision{}, ctx.Err()
	}
	e.index.mu.Lock()
	defer e.index.mu.Unlock()
	return e.index.decision, e.index.err
}
