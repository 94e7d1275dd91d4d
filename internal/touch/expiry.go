// Package touch buffers the touches of a store and writes them in batches:
// a [Buffer] that merges and forgets them, a [Writer] that groups them
// into few commands, and a [Flusher] that runs the writes on a schedule.
// It also holds the expiry arithmetic that memory and server share.
package touch

import "time"

// Expiry returns now plus life at the millisecond precision of a BSON
// date, so that a time kept in memory equals the one read back from the
// server.
func Expiry(now time.Time, life time.Duration) time.Time {
	return now.Add(life).Truncate(time.Millisecond)
}

// Round returns t rounded up to a multiple of g, at the millisecond
// precision of a BSON date. Touches rounded alike share one command.
func Round(t time.Time, g time.Duration) time.Time {
	if g > 0 {
		if r := t.Truncate(g); r.Before(t) {
			t = r.Add(g)
		}
	}
	return t.Truncate(time.Millisecond)
}

// Lifetime returns stored, a session's own lifetime, or def when it has
// none.
func Lifetime(stored, def time.Duration) time.Duration {
	if stored > 0 {
		return stored
	}
	return def
}
