package touch

import (
	"errors"
	"testing"
	"time"
)

func TestBuffer(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := NewBuffer(2, time.Second)
	if n, err := b.Add("a", Pending{At: at, Life: time.Hour}); n != 1 || err != nil {
		t.Fatalf("Add(a) = %d, %v", n, err)
	}
	if n, err := b.Add("a", Pending{Until: at.Add(2 * time.Hour)}); n != 1 || err != nil {
		t.Fatalf("Add(a) again = %d, %v; want a merge", n, err)
	}
	if _, err := b.Add("b", Pending{Until: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add("c", Pending{Until: at}); !errors.Is(err, ErrFull) {
		t.Fatalf("Add past the limit = %v, want ErrFull", err)
	}
	batch := b.Take()
	if len(batch) != 2 || b.Len() != 0 {
		t.Fatalf("Take = %v, leaving %d", batch, b.Len())
	}
	if got, _ := batch["a"].Target(); !got.Equal(at.Add(2 * time.Hour)) {
		t.Fatalf("merged target = %v", got)
	}
	if b.Take() != nil {
		t.Fatal("Take of an empty buffer returned a batch")
	}
	// While the batch is written: b is forgotten, a is touched again.
	b.Forget("b")
	_, _ = b.Add("a", Pending{At: at.Add(time.Minute), Life: time.Hour})
	if dropped := b.Finish(batch); len(dropped) != 0 {
		t.Fatalf("Finish dropped %v", dropped)
	}
	if b.Len() != 1 {
		t.Fatalf("%d pending after Finish, want a alone (b was forgotten)", b.Len())
	}
	again := b.Take()
	if got, _ := again["a"].Target(); !got.Equal(at.Add(2 * time.Hour)) {
		t.Fatalf("restored target = %v, want the later of both", got)
	}
	// ForgetAll during a write keeps every failed touch out.
	b.ForgetAll()
	if dropped := b.Finish(again); len(dropped) != 0 || b.Len() != 0 {
		t.Fatalf("after ForgetAll: dropped %v, %d pending", dropped, b.Len())
	}
	// No room on restore.
	_, _ = b.Add("x", Pending{Until: at})
	batch = b.Take()
	_, _ = b.Add("y", Pending{Until: at})
	_, _ = b.Add("z", Pending{Until: at})
	if dropped := b.Finish(batch); len(dropped) != 1 || dropped[0] != "x" {
		t.Fatalf("Finish without room dropped %v, want [x]", dropped)
	}
	b.Close()
	if _, err := b.Add("y", Pending{Until: at}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
	if b.Len() != 2 {
		t.Fatal("Close dropped pending touches")
	}
}

func TestExpiryArithmetic(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := Expiry(at, 1500*time.Microsecond); !got.Equal(at.Add(time.Millisecond)) {
		t.Errorf("Expiry = %v", got)
	}
	if got := Round(at.Add(time.Nanosecond), 0); !got.Equal(at) {
		t.Errorf("Round with no granularity = %v, want ms precision", got)
	}
	if Lifetime(0, time.Hour) != time.Hour || Lifetime(time.Minute, time.Hour) != time.Minute || Lifetime(-1, time.Hour) != time.Hour {
		t.Error("Lifetime does not fall back to the default")
	}
}

// TestCovered checks what Covered knows: the rounded expiry last
// buffered for a key, until the key is forgotten or dropped, whether the
// touch is pending, being written or written.
func TestCovered(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	rounded := at.Add(time.Hour).Truncate(time.Second).Add(time.Second)
	b := NewBuffer(1, time.Second)
	if b.Covered("a", rounded) {
		t.Fatal("Covered before any touch")
	}
	_, _ = b.Add("a", Pending{At: at, Life: time.Hour})
	switch {
	case !b.Covered("a", rounded), !b.Covered("a", at.Add(time.Hour)), !b.Covered("a", rounded.Add(-time.Second)):
		t.Fatal("a buffered expiry does not cover itself, nor earlier ones")
	case b.Covered("a", rounded.Add(time.Millisecond)):
		t.Fatal("a buffered expiry covers a later one")
	case b.Covered("b", rounded):
		t.Fatal("a key covers another")
	}
	_, _ = b.Add("a", Pending{At: at, Life: 0}) // lifetime unknown: merged, the target stays
	if !b.Covered("a", rounded) {
		t.Fatal("a touch of unknown lifetime forgot the known expiry")
	}
	batch := b.Take()
	if !b.Covered("a", rounded) {
		t.Fatal("a touch being written is not covered")
	}
	b.Finish(nil)
	if !b.Covered("a", rounded) {
		t.Fatal("a written touch is not covered")
	}
	b.Forget("a")
	if b.Covered("a", rounded) {
		t.Fatal("a forgotten key is still covered")
	}

	_, _ = b.Add("a", Pending{At: at, Life: time.Hour})
	batch = b.Take()
	_, _ = b.Add("c", Pending{Until: at}) // fills the buffer
	if dropped := b.Finish(batch); len(dropped) != 1 || b.Covered("a", rounded) {
		t.Fatalf("Finish dropped %v; a covered after its drop: %t", dropped, b.Covered("a", rounded))
	}
	if !b.Covered("c", at) {
		t.Fatal("an absolute touch is not covered")
	}
	b.ForgetAll()
	if b.Covered("c", at) {
		t.Fatal("a key is covered after ForgetAll")
	}
}

// TestCoveredTakesNoLock checks that Covered answers while the buffer's
// lock is held, and allocates nothing.
func TestCoveredTakesNoLock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := NewBuffer(10, time.Second)
	_, _ = b.Add("a", Pending{Until: at})
	if n := testing.AllocsPerRun(100, func() { b.Covered("a", at) }); n != 0 {
		t.Errorf("Covered allocates %v times", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	done := make(chan bool)
	go func() { done <- b.Covered("a", at) }()
	select {
	case ok := <-done:
		if !ok {
			t.Error("Covered = false for a buffered expiry")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Covered waits for the buffer's lock")
	}
}
