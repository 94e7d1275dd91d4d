package sessionstore

import (
	"testing"
	"time"
)

// TestSystemClock checks that the system clock, read from a base and the
// monotonic clock, stays within a millisecond of time.Now, never goes
// back, and keeps a monotonic reading.
func TestSystemClock(t *testing.T) {
	var c Clock = systemClock{}
	prev := c.Now()
	deadline := time.Now().Add(1500 * time.Millisecond) // across a rebase
	for n := 0; time.Now().Before(deadline); n++ {
		before := time.Now()
		got := c.Now()
		after := time.Now()
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("read %d: %v, outside [%v, %v] by more than 1ms", n, got, before, after)
		}
		if got.Before(prev) {
			t.Fatalf("read %d: %v, before the previous read %v", n, got, prev)
		}
		if got.Round(0) == got {
			t.Fatal("the time has no monotonic reading")
		}
		prev = got
		time.Sleep(time.Millisecond)
	}
}
