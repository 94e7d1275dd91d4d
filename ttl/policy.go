// Package ttl decides when sessions expire and keeps the server removing
// them: the expiry [Policy], TTL index management ([Ensure]) that adapts to
// what the connected server supports, and a [Reaper] for servers that
// cannot keep a TTL index.
package ttl

import "time"

// DefaultTTL is a session's lifetime when nothing else is configured: one
// day, as in express-session stores.
const DefaultTTL = 24 * time.Hour

// Policy computes a session's lifetime. The zero value gives every session
// DefaultTTL.
type Policy[T any] struct {
	// Default is the lifetime of every session; zero means DefaultTTL.
	Default time.Duration
	// Func, when set, gives a session its own lifetime. A result of zero
	// or less falls back to Default.
	Func func(T) time.Duration
}

// For returns v's lifetime.
func (p Policy[T]) For(v T) time.Duration {
	if p.Func != nil {
		if d := p.Func(v); d > 0 {
			return d
		}
	}
	return p.Fallback()
}

// Fallback returns the lifetime used when no per-session one is known.
func (p Policy[T]) Fallback() time.Duration {
	if p.Default > 0 {
		return p.Default
	}
	return DefaultTTL
}

// Expiry returns now+d at the millisecond precision of a BSON date, so that
// a time kept in memory equals the one read back from the server.
func Expiry(now time.Time, d time.Duration) time.Time {
	return now.Add(d).Truncate(time.Millisecond)
}
