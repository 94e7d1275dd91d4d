package touch

import (
	"testing"
	"time"
)

// Restore puts back what Forget dropped, merged with newer touches, and
// lets the batch being written restore the key again, but not a later
// batch.
func TestForgetRestore(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := NewBuffer(10, time.Second)
	_, _ = b.Add("a", Pending{Until: at.Add(2 * time.Hour)})
	f := b.Forget("a")
	if b.Len() != 0 {
		t.Fatal("Forget left the touch pending")
	}
	_, _ = b.Add("a", Pending{Until: at.Add(time.Hour)})
	b.Restore(f)
	batch := b.Take()
	if got, _ := batch["a"].Target(); !got.Equal(at.Add(2 * time.Hour)) {
		t.Fatalf("restored target = %v, want the later of the two", got)
	}

	// Forgotten while its batch was written, restored before the batch
	// failed: the batch puts it back.
	f = b.Forget("a")
	b.Restore(f)
	b.Finish(batch)
	if b.Len() != 1 {
		t.Fatalf("%d pending after the failed batch, want a restored", b.Len())
	}

	// A Restore after that batch ended leaves the next batch's own
	// forgetting alone.
	batch = b.Take()
	f = b.Forget("a")
	b.Finish(batch)
	_, _ = b.Add("a", Pending{Until: at})
	batch = b.Take()
	b.Forget("a") // by another writer, during the new batch
	b.Restore(f)
	b.Finish(batch)
	if b.Len() != 0 {
		t.Fatalf("a Restore of an older batch undid a newer Forget: %d pending", b.Len())
	}

	// Nothing pending and no batch: Restore does nothing.
	b.Restore(b.Forget("z"))
	if b.Len() != 0 {
		t.Fatal("Restore of nothing added a touch")
	}
}
