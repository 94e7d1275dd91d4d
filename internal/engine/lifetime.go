package engine

import (
	"context"
	"errors"
	"time"

	"github.com/sessionstore/sessionstore/internal/tier"
)

// Meta is what a write stores about a session besides its payload and
// expiry.
type Meta struct {
	// Owner names whom the session belongs to; "" for no one. It is
	// stored only when Config.Owners is set.
	Owner string
	// Deadline is the session's absolute end; zero means now plus
	// MaxLifetime, or none without MaxLifetime. A deadline later than
	// now plus MaxLifetime is brought back to it.
	Deadline time.Time
}

// Deadlines is the capability of an authority to keep a live session's
// deadline across unconditional writes.
type Deadlines interface {
	// SetWithin creates or replaces rec.ID, as Set does, but a live
	// stored session keeps its deadline when that is earlier than
	// rec.Deadline, and the expiry stored never passes the deadline
	// kept. known is the deadline the caller believes stored, zero for
	// none or unknown. It returns the record written.
	SetWithin(ctx context.Context, rec tier.Record, known, now time.Time) (tier.Record, error)
}

// capable checks that the authority has what the configuration needs.
func (e *Engine) capable() error {
	if _, ok := e.db.(Deadlines); e.cfg.MaxLifetime > 0 && !ok {
		return errors.New("sessionstore: this authority cannot keep deadlines (MaxLifetime)")
	}
	if _, ok := e.db.(Owners); e.cfg.Owners && !ok {
		return errors.New("sessionstore: this authority cannot keep owners (Owner)")
	}
	return nil
}

// MaxDeadline returns the latest deadline a session created at now may
// have: now plus MaxLifetime, rounded down to TouchGranularity so that
// a touch rounded up to the granularity can reach it exactly. It returns
// the zero time without MaxLifetime.
func (e *Engine) MaxDeadline(now time.Time) time.Time {
	if e.cfg.MaxLifetime <= 0 {
		return time.Time{}
	}
	return now.Add(e.cfg.MaxLifetime).Truncate(e.cfg.TouchGranularity).Truncate(time.Millisecond)
}

// bound sets rec's owner and deadline from m, and brings its expiry back
// to the deadline.
func (e *Engine) bound(rec *tier.Record, m Meta, now time.Time) {
	if e.cfg.Owners {
		rec.Owner = m.Owner
	}
	d := m.Deadline
	if limit := e.MaxDeadline(now); !limit.IsZero() && (d.IsZero() || limit.Before(d)) {
		d = limit
	}
	if d.IsZero() {
		return
	}
	rec.Deadline = d.Truncate(e.cfg.TouchGranularity).Truncate(time.Millisecond)
	if rec.Expires.After(rec.Deadline) {
		rec.Expires = rec.Deadline
	}
}

// setWithin writes rec, which has a deadline, keeping the earlier
// deadline of a live stored session. The deadline memory holds for it, if
// any, saves the authority a read.
func (e *Engine) setWithin(ctx context.Context, rec tier.Record) (tier.Record, error) {
	var known time.Time
	if e.mem != nil {
		if c, ok := e.mem.Get(rec.ID); ok && c.Live(rec.Synced) {
			known = c.Deadline
		}
	}
	return e.db.(Deadlines).SetWithin(ctx, rec, known, rec.Synced)
}
