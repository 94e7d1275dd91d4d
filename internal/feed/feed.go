// Package feed follows the changes that any writer makes to a session
// collection, so that a store's memory tier can drop what other instances
// changed: a MongoDB change stream where the server has them (replica
// sets and sharded clusters), and otherwise a poll of the server's oplog
// (FerretDB keeps one in local.oplog.rs when that capped collection
// exists).
package feed

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Sink receives what a feed sees. Its methods are called from the feed's
// goroutine, in order, and must not block.
type Sink interface {
	// Changed reports that session id (as stored, prefix included) was
	// written or deleted. rev is the version written: 0 for a document
	// without one, -1 for a delete or when the feed cannot tell. payload
	// is the session field as written when the feed has the whole
	// document, nil otherwise.
	Changed(id string, rev int64, payload []byte)
	// CaughtUp reports that every change committed before since has
	// been passed to Changed. The first call after the start or a Lost
	// gives the feed's starting point, and may come before any change:
	// the sink must not trust what it read before that since.
	CaughtUp(since time.Time)
	// Lost reports that the feed lost track of changes: some may never
	// be reported. Memory must not be trusted until the next CaughtUp.
	Lost(err error)
}

// Pacer is implemented by a sink that can tell when nobody needs the
// changes: a feed that costs the server for every read (the oplog poll)
// then waits instead of reading.
type Pacer interface {
	// Await returns at once while the changes are needed; otherwise it
	// waits until they are, and reports that it waited, or until ctx
	// ends, and returns ctx's error.
	Await(ctx context.Context) (waited bool, err error)
}

// ErrIdle is the loss a feed reports when changes rolled off while it
// waited for a Pacer: expected, not a failure.
var ErrIdle = errors.New("sessionstore: changes rolled off the oplog while nobody needed them")

// Feed is a source of changes.
type Feed interface {
	// Run follows changes until ctx ends, reporting to sink.
	Run(ctx context.Context, sink Sink)
}

// ErrNoFeed reports a server that offers no way to follow changes.
var ErrNoFeed = errors.New("sessionstore: the server has no change stream and no oplog (local.oplog.rs) to follow changes with")

// Backoff between attempts to reopen a feed.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// attempt follows a feed until it fails; progressed reports that it
// caught up at least once.
type attempt func(ctx context.Context, sink Sink) (progressed bool, err error)

// retry runs attempt until ctx ends. Each failure is reported to sink as
// Lost, and the next attempt waits a jittered, doubling backoff, reset
// after an attempt that made progress.
func retry(ctx context.Context, sink Sink, try attempt) {
	backoff := minBackoff
	for ctx.Err() == nil {
		progressed, err := try(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("sessionstore: change feed ended")
		}
		sink.Lost(err)
		if progressed {
			backoff = minBackoff
		}
		if errors.Is(err, ErrNoFeed) {
			backoff = maxBackoff
		}
		if !sleep(ctx, backoff/2+rand.N(backoff)) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// bounded returns ctx bounded by timeout, or ctx itself for no timeout.
func bounded(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}
