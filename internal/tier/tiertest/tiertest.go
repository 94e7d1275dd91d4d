// Package tiertest is a conformance suite for the authoritative tier as
// the engine uses it (engine.Authority), and [Fake], an in-memory
// authority for tests without a server that passes the same suite.
package tiertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
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
func Run(t *testing.T, newTier func(t *testing.T) engine.Authority) {
	now := time.Now().Truncate(time.Millisecond)
	ctx := context.Background()
	rec := func(id string, n int, life time.Duration) tier.Record {
		return tier.Record{ID: id, Payload: Payload(n), Expires: now.Add(life)}
	}
	mustGet := func(t *testing.T, tr engine.Authority, id string, at time.Time) tier.Record {
		t.Helper()
		got, err := tr.Get(ctx, id, at)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		return got
	}
	touch := func(tr engine.Authority, id string, expires, now time.Time) error {
		_, err := tr.TouchMany(ctx, []string{id}, expires, now)
		return err
	}
	notFound := func(t *testing.T, tr engine.Authority, id string, at time.Time) {
		t.Helper()
		if _, err := tr.Get(ctx, id, at); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("Get(%q) error = %v, want ErrNotFound", id, err)
		}
	}

	t.Run("SetGet", func(t *testing.T) {
		tr := newTier(t)
		want := rec("a", 1, time.Hour)
		want.TTL = 90 * time.Minute
		if _, err := tr.Set(ctx, want); err != nil {
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
		_, _ = tr.Set(ctx, rec("a", 1, time.Hour))
		if _, err := tr.Set(ctx, rec("a", 2, time.Minute)); err != nil {
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
		_, _ = tr.Set(ctx, r)
		r.Payload[len(r.Payload)-3] = 'X'
		if got := mustGet(t, tr, "a", now); string(got.Payload) != string(Payload(1)) {
			t.Fatal("changing the payload after Set changed the stored record")
		}
	})
	t.Run("Expired", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Second))
		mustGet(t, tr, "a", now)
		notFound(t, tr, "a", now.Add(time.Second))
		notFound(t, tr, "a", now.Add(time.Hour))
	})
	t.Run("TouchExtends", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Second))
		if err := touch(tr, "a", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now.Add(time.Minute)); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("expires = %v, want %v", got.Expires, now.Add(time.Hour))
		}
	})
	t.Run("TouchNeverShortens", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Hour))
		if err := touch(tr, "a", now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("expires = %v, want %v", got.Expires, now.Add(time.Hour))
		}
	})
	t.Run("TouchNeverCreates", func(t *testing.T) {
		tr := newTier(t)
		if err := touch(tr, "ghost", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "ghost", now)
	})
	t.Run("Delete", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Hour))
		_, _ = tr.Set(ctx, rec("b", 2, time.Hour))
		if err := tr.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", now)
		mustGet(t, tr, "b", now)
		if err := tr.Delete(ctx, "a"); err != nil {
			t.Fatalf("deleting a missing record: %v", err)
		}
		if err := touch(tr, "a", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", now)
	})
	t.Run("TouchMany", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Second))
		_, _ = tr.Set(ctx, rec("b", 2, 2*time.Hour))
		_, _ = tr.Set(ctx, rec("dead", 3, -time.Second))
		n, err := tr.TouchMany(ctx, []string{"a", "b", "ghost", "dead"}, now.Add(time.Hour), now)
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
		_, _ = tr.Set(ctx, rec("a", 1, time.Second))
		later := now.Add(time.Minute) // a expired 59s ago
		if err := touch(tr, "a", later.Add(time.Hour), later); err != nil {
			t.Fatal(err)
		}
		notFound(t, tr, "a", later)
		if got := mustGet(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Second)) {
			t.Fatalf("expires = %v, want it unchanged", got.Expires)
		}
	})
	t.Run("LenAllClear", func(t *testing.T) {
		tr := newTier(t)
		c, it, cl := tr, tr, tr
		for i := range 5 {
			_, _ = tr.Set(ctx, rec(fmt.Sprint("live", i), i, time.Hour))
		}
		_, _ = tr.Set(ctx, rec("dead", 9, -time.Second))
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
	t.Run("TTLs", func(t *testing.T) {
		tr := newTier(t)
		own := rec("own", 1, time.Hour)
		own.TTL = 3 * time.Hour
		_, _ = tr.Set(ctx, own)
		_, _ = tr.Set(ctx, rec("default", 2, time.Hour))
		_, _ = tr.Set(ctx, rec("dead", 3, -time.Second))
		got, err := tr.TTLs(ctx, []string{"own", "default", "dead", "ghost"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["own"] != 3*time.Hour || got["default"] != 0 {
			t.Fatalf("TTLs = %v, want own: 3h, default: 0", got)
		}
		if got, err := tr.TTLs(ctx, nil, now); err != nil || len(got) != 0 {
			t.Fatalf("TTLs(nil) = %v, %v", got, err)
		}
	})
	t.Run("Reap", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("live", 1, time.Hour))
		_, _ = tr.Set(ctx, rec("dead", 2, -time.Second))
		n, err := tr.Reap(ctx, now)
		if err != nil || n != 1 {
			t.Fatalf("Reap = %d, %v; want 1", n, err)
		}
		mustGet(t, tr, "live", now)
		if n, _ := tr.Len(ctx, now.Add(-time.Hour)); n != 1 {
			t.Fatalf("Len after Reap = %d, want 1", n)
		}
	})
	t.Run("Versions", func(t *testing.T) {
		tr := newTier(t)
		for want := int64(1); want <= 2; want++ {
			rev, err := tr.Set(ctx, rec("a", int(want), time.Hour))
			if err != nil || (rev != want && rev != -1) {
				t.Fatalf("Set = %d, %v; want version %d or -1 (unknown)", rev, err, want)
			}
			if got := mustGet(t, tr, "a", now); got.Rev != want {
				t.Fatalf("Get version %d, want %d", got.Rev, want)
			}
		}
		if err := touch(tr, "a", now.Add(2*time.Hour), now); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now); got.Rev != 2 {
			t.Fatalf("a touch changed the version to %d", got.Rev)
		}
	})
	t.Run("Insert", func(t *testing.T) {
		tr := newTier(t)
		if err := tr.Insert(ctx, rec("a", 1, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, tr, "a", now); got.Rev != 1 || string(got.Payload) != string(Payload(1)) {
			t.Fatalf("after Insert: %+v", got)
		}
		if err := tr.Insert(ctx, rec("a", 2, time.Minute)); !errors.Is(err, tier.ErrExists) {
			t.Fatalf("second Insert = %v, want ErrExists", err)
		}
		if got := mustGet(t, tr, "a", now); string(got.Payload) != string(Payload(1)) || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("a failed Insert changed the record: %+v", got)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		tr := newTier(t)
		_, _ = tr.Set(ctx, rec("a", 1, time.Hour))
		old := mustGet(t, tr, "a", now)
		next := rec("a", 2, 2*time.Hour)
		ok, err := tr.Replace(ctx, old, next)
		if err != nil || !ok {
			t.Fatalf("Replace of the version read = %t, %v", ok, err)
		}
		got := mustGet(t, tr, "a", now)
		if got.Rev != old.Rev+1 || string(got.Payload) != string(Payload(2)) || !got.Expires.Equal(now.Add(2*time.Hour)) {
			t.Fatalf("after Replace: %+v", got)
		}
		// old is stale now.
		if ok, err := tr.Replace(ctx, old, rec("a", 3, time.Hour)); err != nil || ok {
			t.Fatalf("Replace of a stale version = %t, %v; want false", ok, err)
		}
		if got := mustGet(t, tr, "a", now); string(got.Payload) != string(Payload(2)) {
			t.Fatal("a stale Replace changed the record")
		}
		// A deleted session is not recreated.
		_ = tr.Delete(ctx, "a")
		if ok, err := tr.Replace(ctx, got, rec("a", 4, time.Hour)); err != nil || ok {
			t.Fatalf("Replace of a deleted session = %t, %v; want false", ok, err)
		}
		notFound(t, tr, "a", now)
	})
}
