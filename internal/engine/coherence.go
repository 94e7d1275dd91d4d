package engine

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/tier"
)

// Coherence says when memory may answer for the server.
type Coherence uint8

const (
	// Strict trusts a record in memory while the change feed has caught
	// up within MaxStaleness, or for MaxStaleness after the record was
	// read; otherwise reads go to the server (fail closed).
	Strict Coherence = iota
	// Lenient is Strict while the feed follows, and trusts memory up to
	// MaxCacheAge while it does not.
	Lenient
	// Off follows no feed and trusts memory up to MaxCacheAge.
	Off
)

// trusted reports whether rec, held in memory and live at now, may answer
// for the server; if not, byAge tells that MaxCacheAge refused it rather
// than the feed.
func (e *Engine) trusted(rec *tier.Record, now time.Time) (ok, byAge bool) {
	age := now.Sub(rec.Synced)
	if e.cfg.MaxCacheAge > 0 && age >= e.cfg.MaxCacheAge {
		return false, true
	}
	if e.cfg.Coherence == Off {
		return true, false
	}
	e.ask(now)
	if age < e.cfg.MaxStaleness {
		return true, false
	}
	// The feed covers a record read after it found its starting point:
	// changes to one read before may have gone unreported.
	// A feed that waits vouches for nothing: a change may have been
	// committed just before its last poll and logged just after.
	if caught := e.caught.Load(); caught != 0 && !e.paused.Load() && e.since(now)-caught < int64(e.cfg.MaxStaleness) && e.since(rec.Synced) >= e.origin.Load() {
		return true, false
	}
	// Lenient stands in for a feed that fails, not for one that waits.
	return e.cfg.Coherence == Lenient && !e.paused.Load(), false
}

// A feed that paces itself (feed.Pacer) follows while memory was asked
// for a live record within idleAfter times MaxStaleness, and then waits
// to be asked again: nobody needs it in between. The time of asking is
// kept to a quarter of MaxStaleness, so that the hit path only reads it.
const (
	idleAfter = 4 // MaxStalenesses
	askEvery  = 4 // updates of the time of asking per MaxStaleness
)

// ask records that memory was asked at now, and wakes a feed that waits.
func (e *Engine) ask(now time.Time) {
	at := e.since(now)
	if last := e.asked.Load(); last != 0 && at-last < int64(e.cfg.MaxStaleness)/askEvery {
		return
	}
	e.asked.Store(at)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// wanted reports whether memory was asked within the idle bound.
func (e *Engine) wanted() bool {
	asked := e.asked.Load()
	return asked != 0 && e.since(e.cfg.Now())-asked < idleAfter*int64(e.cfg.MaxStaleness)
}

// following reports whether the feed has caught up within MaxStaleness,
// and how long ago it last did (negative when it has not since it was
// lost or started).
func (e *Engine) following() (bool, time.Duration) {
	caught := e.caught.Load()
	if caught == 0 {
		return false, -1
	}
	lag := time.Duration(e.since(e.cfg.Now()) - caught)
	return lag < e.cfg.MaxStaleness, lag
}

// sink applies a change feed to the engine.
type sink struct{ e *Engine }

var (
	_ feed.Sink  = sink{}
	_ feed.Pacer = sink{}
)

// Await returns at once while memory is asked; otherwise it waits until
// it is, or ctx ends.
func (s sink) Await(ctx context.Context) (waited bool, err error) {
	e := s.e
	if e.wanted() {
		return false, nil
	}
	select {
	case <-e.wake: // a stale signal
	default:
	}
	if e.wanted() {
		return false, nil
	}
	if e.caught.Load() != 0 {
		e.paused.Store(true) // until the next catch-up; a failed feed is not paused
	}
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case <-e.wake:
		return true, nil
	}
}

// Changed drops id from memory unless memory holds what was written: the
// same version and, when the feed knows it, the same payload. Touches
// change neither, so they cost nothing. A load or write of id in flight
// no longer caches what it read or wrote: it may predate the change.
func (s sink) Changed(id string, rev int64, payload []byte) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.keys[id]; st != nil {
		st.gen++
		if st.writers > 0 && !(st.writers == 1 && holds(st.writing, rev, payload)) {
			st.dirty = true // another writer's change: the order is unknown
		}
	}
	e.loads.Forget(id)
	if e.mem == nil {
		return
	}
	rec, ok := e.mem.Get(id)
	if !ok {
		return
	}
	if rev > 0 && rec.Rev > rev {
		return // memory holds a later version: the entry is history
	}
	if !holds(rec, rev, payload) {
		e.mem.Remove(id)
		e.obs.Invalidated()
	}
}

// holds reports whether rec is what a change wrote: the same version and,
// when the feed knows it, the same payload.
func holds(rec *tier.Record, rev int64, payload []byte) bool {
	switch {
	case rec == nil || rev < 0 || rec.Rev != rev:
		return false
	case payload != nil:
		return bytes.Equal(payload, rec.Payload)
	default:
		return rev > 0 // a version alone tells nothing of unversioned writers
	}
}

// since returns t as nanoseconds since the engine started, plus one so
// that zero means never; monotonic when t comes from time.Now.
func (e *Engine) since(t time.Time) int64 { return int64(t.Sub(e.start)) + 1 }

// CaughtUp lets memory answer again, for MaxStaleness after since. The
// first time since the start or a loss, since also becomes the origin:
// records read before it may have changed unreported before the feed
// found its starting point, so only their age lets memory answer.
func (s sink) CaughtUp(since time.Time) {
	e := s.e
	at := max(e.since(since), 1)
	if e.caught.Load() == 0 {
		e.origin.Store(at)
		if !e.idleLost.Swap(false) {
			e.log.Info("sessionstore: change feed caught up: memory answers again", "collection", e.cfg.Collection)
		}
	}
	e.caught.Store(at)
	e.paused.Store(false)
}

// Lost drops memory's contents: changes may have been missed. A loss
// while the feed waited for memory to be asked is its expected cost, not
// a failure.
func (s sink) Lost(err error) {
	e := s.e
	was := e.caught.Swap(0) != 0
	e.forgetAll()
	if errors.Is(err, feed.ErrIdle) {
		e.idleLost.Store(true) // and still paused, until the next catch-up
		e.log.Debug("sessionstore: memory was emptied: changes rolled off the oplog while memory was not asked", "collection", e.cfg.Collection)
		return
	}
	e.paused.Store(false)
	e.obs.FeedLost()
	if was || !e.feedFailed.Swap(true) {
		e.log.Warn("sessionstore: lost track of changes made by other instances; memory was emptied and is trusted as Coherence says until the feed catches up",
			"collection", e.cfg.Collection, "error", err)
	}
}

// forgetAll empties memory and keeps every load and write in flight from
// caching what it read or wrote.
func (e *Engine) forgetAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, st := range e.keys {
		st.gen++
		st.dirty = st.writers > 0
		e.loads.Forget(key)
	}
	if e.mem != nil {
		e.mem.Clear()
	}
}
