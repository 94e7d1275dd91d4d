package touch

import (
	"errors"
	"testing"
	"time"
)

func TestBuffer(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := NewBuffer(2)
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
