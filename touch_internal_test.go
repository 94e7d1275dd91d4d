package sessionstore

import (
	"testing"
	"time"
)

// A TouchUntil touch asks for its own expiry, rounded up like any other,
// and competes with relative touches by the expiry each asks for.
func TestPendingTouchUntil(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	until := pendingTouch{at: at, until: at.Add(90*time.Minute + 1500*time.Millisecond)}
	if got, want := until.expires(0, time.Second), at.Add(90*time.Minute+2*time.Second); !got.Equal(want) {
		t.Errorf("expires = %v, want %v", got, want)
	}
	if _, ok := until.target(); !ok {
		t.Error("a TouchUntil touch has an unknown target")
	}
	hour := pendingTouch{at: at.Add(time.Minute), life: time.Hour}
	twoHours := pendingTouch{at: at, life: 2 * time.Hour}
	unknown := pendingTouch{at: at.Add(2 * time.Minute)}
	for _, c := range []struct {
		name       string
		p, q, want pendingTouch
	}{
		{"until beats an earlier relative", hour, until, until},
		{"until beats an earlier relative, swapped", until, hour, until},
		{"a later relative beats until", until, twoHours, twoHours},
		{"unknown lifetime: the most recent wins", until, unknown, unknown},
		{"unknown lifetime: the most recent wins, swapped", unknown, until, unknown},
	} {
		if got := later(c.p, c.q); got != c.want {
			t.Errorf("%s: later = %+v, want %+v", c.name, got, c.want)
		}
	}
}
