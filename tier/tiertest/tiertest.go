// Package tiertest is a conformance suite for tier implementations: every
// tier of the store passes it.
package tiertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/tier"
)

// Payload returns a payload that every codec format accepts: a small BSON
// document, which is also valid binary data and valid UTF-8 text.
func Payload(n int) []byte {
	s := fmt.Sprintf("value-%d", n)
	// {"v": s}
	doc := []byte{0, 0, 0, 0, 0x02, 'v', 0}
	l := len(s) + 1
	doc = append(doc, byte(l), byte(l>>8), byte(l>>16), byte(l>>24))
	doc = append(doc, s...)
	doc = append(doc, 0, 0)
	size := len(doc)
	doc[0], doc[1], doc[2], doc[3] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
	return doc
}

// Run runs the suite against fresh tiers made by newTier. now is a time
// the tests treat as the present; records expire relative to it.
func Run(t *testing.T, newTier func(t *testing.T) tier.Tier) {
	now := time.Now().Truncate(time.Millisecond)
	ctx := context.Background()
	rec := func(id string, n int, life time.Duration) tier.Record {
		return tier.Record{ID: id, Payload: Payload(n), Expires: now.Add(life)}
	}
	mustGet := func(t *testing.T, tr tier.Tier, id string, at time.Time) tier.Record {
		t.Helper()
		got, err := tr.Get(ctx, id, at)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		return got
	}
	notFound := func(t *testing.T, tr tier.Tier, id string, at time.Time) {
		t.Helper()
		if _, err := tr.Get(ctx, id, at); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("Get(%q) error = %v, want ErrNotFound", id, err)
		}
	}

	t.Run("SetGet", func(t *testing.T) {
		tr := newTier(t)
		want := rec("a", 1, time.Hour)
		want.TTL = 90 * time.Minute
		if err := tr.Set(ctx, want); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, tr, "a", now)
		if got.ID != "a" || string(got.Payload) != string(want.Payload) || !got.Expires.Equal(want.Expires) || got.TTL != want.TTL {
			t.Fatalf("Get = %+v, want %+v", got, want)
		}
		notFound(t, tr, "b", now)
	})
	t.Run("SetReplaces", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Hour))
		if err := tr.Set(ctx, rec("a", 2, time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, tr, "a", now)
		if string(got.Payload) != string(Payload(2)) || !got.Expires.Equal(now.Add(time.Minute)) {
			t.Fatalf("after second Set: %+v", got)
		}
	})
	t.Run("SetCopiesPayload", func(t *testing.T) {
		tr := newTier(t)
		r := rec("a", 1, time.Hour)
		_ = tr.Set(ctx, r)
		r.Payload[len(r.Payload)-3] = 'X'
		if got := mustGet(t, tr, "a", now); string(got.Payload) != string(Payload(1)) {
			t.Fatal("changing the payload after Set changed the stored record")
		}
	})
	t.Run("Expired", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Second))
		mustGet(t, tr, "a", now)
		notFound(t, tr, "a", now.Add(time.Second))
		notFound(t, tr, "a", now.Add(time.Hour))
	})
	t.Run("TouchExtends", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Second))
		if err := tr.Touch(ctx, "a", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now.Add(time.Minute)); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("expires = %v, want %v", got.Expires, now.Add(time.Hour))
		}
	})
	t.Run("TouchNeverShortens", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Hour))
		if err := tr.Touch(ctx, "a", now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("expires = %v, want %v", got.Expires, now.Add(time.Hour))
		}
	})
	t.Run("TouchNeverCreates", func(t *testing.T) {
		tr := newTier(t)
		if err := tr.Touch(ctx, "ghost", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "ghost", now)
	})
	t.Run("Delete", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Hour))
		_ = tr.Set(ctx, rec("b", 2, time.Hour))
		if err := tr.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", now)
		mustGet(t, tr, "b", now)
		if err := tr.Delete(ctx, "a"); err != nil {
			t.Fatalf("deleting a missing record: %v", err)
		}
		if err := tr.Touch(ctx, "a", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", now)
	})
	t.Run("TouchMany", func(t *testing.T) {
		tr := newTier(t)
		bt, ok := tr.(tier.BatchToucher)
		if !ok {
			t.Skip("not a BatchToucher")
		}
		_ = tr.Set(ctx, rec("a", 1, time.Second))
		_ = tr.Set(ctx, rec("b", 2, 2*time.Hour))
		_ = tr.Set(ctx, rec("dead", 3, -time.Second))
		n, err := bt.TouchMany(ctx, []string{"a", "b", "ghost", "dead"}, now.Add(time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("TouchMany changed %d records, want 1", n)
		}
		if got := mustGet(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Errorf("a expires %v, want %v", got.Expires, now.Add(time.Hour))
		}
		if got := mustGet(t, tr, "b", now); !got.Expires.Equal(now.Add(2 * time.Hour)) {
			t.Errorf("b expires %v, want %v (never shortened)", got.Expires, now.Add(2*time.Hour))
		}
		notFound(t, tr, "ghost", now)
		notFound(t, tr, "dead", now) // not revived
	})
	t.Run("TouchNeverRevives", func(t *testing.T) {
		tr := newTier(t)
		_ = tr.Set(ctx, rec("a", 1, time.Second))
		later := now.Add(time.Minute) // a expired 59s ago
		if err := tr.Touch(ctx, "a", later.Add(time.Hour), later); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", later)
		if got := mustGet(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Second)) {
			t.Fatalf("expires = %v, want it unchanged", got.Expires)
		}
	})
	t.Run("LenAllClear", func(t *testing.T) {
		tr := newTier(t)
		c, okc := tr.(tier.Counter)
		it, oki := tr.(tier.Iterator)
		cl, okl := tr.(tier.Clearer)
		if !okc || !oki || !okl {
			t.Skip("not a Counter, Iterator and Clearer")
		}
		for i := range 5 {
			_ = tr.Set(ctx, rec(fmt.Sprint("live", i), i, time.Hour))
		}
		_ = tr.Set(ctx, rec("dead", 9, -time.Second))
		n, err := c.Len(ctx, now)
		if err != nil || n != 5 {
			t.Fatalf("Len = %d, %v; want 5", n, err)
		}
		seen := map[string]bool{}
		for r, err := range it.All(ctx, now) {
			if err != nil {
				t.Fatal(err)
			}
			seen[r.ID] = true
		}
		if len(seen) != 5 || seen["dead"] {
			t.Fatalf("All yielded %v, want live0..live4", seen)
		}
		stopped := 0
		for range it.All(ctx, now) {
			stopped++
			break
		}
		if stopped != 1 {
			t.Fatalf("All went on after break")
		}
		if err := cl.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := c.Len(ctx, now.Add(-time.Hour)); n != 0 {
			t.Fatalf("Len after Clear = %d", n)
		}
	})
}
