package touch

import (
	"testing"
	"time"
)

func TestRoundUp(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   time.Time
		g    time.Duration
		want time.Time
	}{
		{at, time.Second, at},
		{at.Add(1500 * time.Millisecond), time.Second, at.Add(2 * time.Second)},
		{at.Add(time.Nanosecond), time.Second, at.Add(time.Second)},
		{at.Add(1234567 * time.Microsecond), time.Millisecond, at.Add(1235 * time.Millisecond)},
	} {
		if got := Round(c.in, c.g); !got.Equal(c.want) {
			t.Errorf("Round(%v, %v) = %v, want %v", c.in, c.g, got, c.want)
		}
	}
}

// Merged touches keep the latest relative touch and the latest absolute
// one, and ask for whichever expiry is later: no touch is lost to another.
func TestMergeKeepsEveryTouch(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	month := Pending{Until: at.Add(30 * 24 * time.Hour)}
	hour := Pending{At: at.Add(time.Minute), Life: time.Hour}
	twoHours := Pending{At: at, Life: 2 * time.Hour}
	unknown := Pending{At: at.Add(2 * time.Minute)}
	for _, c := range []struct {
		name  string
		p, q  Pending
		want  time.Time
		known bool
	}{
		{"absolute then relative", month, hour, month.Until, true},
		{"relative then absolute", hour, month, month.Until, true},
		{"two relatives: the later touch wins", twoHours, hour, at.Add(time.Minute + time.Hour), true},
		{"two relatives, swapped", hour, twoHours, at.Add(time.Minute + time.Hour), true},
		{"an unknown lifetime waits for the database", month, unknown, time.Time{}, false},
	} {
		got, ok := Merge(c.p, c.q).Target()
		if ok != c.known || !got.Equal(c.want) {
			t.Errorf("%s: target = %v, %t; want %v, %t", c.name, got, ok, c.want, c.known)
		}
	}
	// Once its lifetime is read, an unknown touch still competes with
	// the absolute one it was merged with.
	m := Merge(month, unknown)
	m.Life = time.Hour
	if got, _ := m.Target(); !got.Equal(month.Until) {
		t.Errorf("resolved merge target = %v, want %v", got, month.Until)
	}
}
