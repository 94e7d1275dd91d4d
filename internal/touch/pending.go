package touch

import "time"

// Pending is a touch waiting to be written: a relative one (At plus
// Life), an absolute one (Until), or both merged.
type Pending struct {
	At    time.Time     // when a relative touch was made; zero if none
	Life  time.Duration // its lifetime; 0 while it must be read from the server
	Until time.Time     // the latest expiry asked for by an absolute touch; zero if none
}

// Target returns the expiry p asks for before rounding, or false while
// the lifetime of its relative touch is still to be read.
func (p Pending) Target() (time.Time, bool) {
	if !p.At.IsZero() {
		if p.Life == 0 {
			return time.Time{}, false
		}
		if t := p.At.Add(p.Life); t.After(p.Until) {
			return t, true
		}
	}
	return p.Until, true
}

// Merge combines two touches of one session: the later relative touch
// and the later absolute one.
func Merge(p, q Pending) Pending {
	if q.At.After(p.At) {
		p.At, p.Life = q.At, q.Life
	}
	if q.Until.After(p.Until) {
		p.Until = q.Until
	}
	return p
}
