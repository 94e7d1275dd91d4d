package tiertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
)

// DeadlineAuthority is an authority that keeps deadlines.
type DeadlineAuthority interface {
	engine.Authority
	engine.Deadlines
}

// OwnerAuthority is an authority that keeps owners.
type OwnerAuthority interface {
	engine.Authority
	engine.Owners
}

// RunDeadlines runs the conformance suite of deadlines against fresh
// tiers made by newTier.
func RunDeadlines(t *testing.T, newTier func(t *testing.T) DeadlineAuthority) {
	now := time.Now().Truncate(time.Millisecond)
	ctx := context.Background()
	rec := func(id string, n int, life, lifetime time.Duration) tier.Record {
		return tier.Record{ID: id, Payload: Payload(n), Expires: now.Add(life), Deadline: now.Add(lifetime)}
	}
	stored := func(t *testing.T, tr DeadlineAuthority, id string, at time.Time) tier.Record {
		t.Helper()
		got, err := tr.Get(ctx, id, at)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		return got
	}

	t.Run("ReadsStopAtTheDeadline", func(t *testing.T) {
		tr := newTier(t)
		// Set writes what it is given, even an expiry past the deadline,
		// as an instance without MaxLifetime may.
		must(t, second(tr.Set(ctx, rec("a", 1, time.Hour, time.Minute))))
		if got := stored(t, tr, "a", now); !got.Deadline.Equal(now.Add(time.Minute)) {
			t.Fatalf("deadline read back %v, want %v", got.Deadline, now.Add(time.Minute))
		}
		later := now.Add(time.Minute)
		if _, err := tr.Get(ctx, "a", later); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("Get at the deadline: %v, want ErrNotFound", err)
		}
		for r, err := range tr.All(ctx, later) {
			t.Fatalf("All at the deadline yielded %q, %v", r.ID, err)
		}
		// Before the deadline, a touch past it is refused even though the
		// expiry is later still.
		before := later.Add(-time.Second)
		if n, err := tr.TouchMany(ctx, []string{"a"}, before.Add(2*time.Hour), before); err != nil || n != 0 {
			t.Fatalf("TouchMany past the deadline changed %d, %v", n, err)
		}
	})
	t.Run("TouchStopsAtTheDeadline", func(t *testing.T) {
		tr := newTier(t)
		must(t, second(tr.Set(ctx, rec("a", 1, time.Minute, time.Hour))))
		if n, err := tr.TouchMany(ctx, []string{"a"}, now.Add(time.Hour+time.Millisecond), now); err != nil || n != 0 {
			t.Fatalf("a touch past the deadline changed %d, %v", n, err)
		}
		if n, err := tr.TouchMany(ctx, []string{"a"}, now.Add(time.Hour), now); err != nil || n != 1 {
			t.Fatalf("a touch to the deadline changed %d, %v; want 1", n, err)
		}
		if got := stored(t, tr, "a", now); !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("expires %v, want the deadline", got.Expires)
		}
	})
	t.Run("SetWithinNew", func(t *testing.T) {
		tr := newTier(t)
		w, err := tr.SetWithin(ctx, rec("a", 1, 2*time.Hour, time.Hour), time.Time{}, now)
		must(t, err)
		got := stored(t, tr, "a", now)
		if !got.Deadline.Equal(now.Add(time.Hour)) || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("stored deadline %v, expires %v; want both an hour from now", got.Deadline, got.Expires)
		}
		if !w.Deadline.Equal(got.Deadline) || !w.Expires.Equal(got.Expires) {
			t.Fatalf("SetWithin returned %+v, stored %+v", w, got)
		}
	})
	t.Run("SetWithinKeepsAnEarlierDeadline", func(t *testing.T) {
		for name, known := range map[string]time.Duration{"known": 10 * time.Minute, "unknown": 0, "wrong": 30 * time.Minute} {
			t.Run(name, func(t *testing.T) {
				tr := newTier(t)
				must(t, second(tr.SetWithin(ctx, rec("a", 1, time.Minute, 10*time.Minute), time.Time{}, now)))
				var k time.Time
				if known > 0 {
					k = now.Add(known)
				}
				w, err := tr.SetWithin(ctx, rec("a", 2, time.Hour, time.Hour), k, now)
				must(t, err)
				got := stored(t, tr, "a", now)
				want := now.Add(10 * time.Minute)
				if string(got.Payload) != string(Payload(2)) || !got.Deadline.Equal(want) || !got.Expires.Equal(want) {
					t.Fatalf("stored %q, deadline %v, expires %v; want the new payload and both at %v", got.Payload, got.Deadline, got.Expires, want)
				}
				if !w.Deadline.Equal(want) || !w.Expires.Equal(want) {
					t.Fatalf("SetWithin returned deadline %v, expires %v", w.Deadline, w.Expires)
				}
				if got.Rev != 2 {
					t.Fatalf("version %d after two writes", got.Rev)
				}
			})
		}
	})
	t.Run("SetWithinRenewsExpiredAndDeadlineless", func(t *testing.T) {
		tr := newTier(t)
		must(t, second(tr.SetWithin(ctx, rec("old", 1, time.Minute, 2*time.Minute), time.Time{}, now)))
		must(t, second(tr.Set(ctx, tier.Record{ID: "plain", Payload: Payload(1), Expires: now.Add(time.Hour)})))
		later := now.Add(3 * time.Minute)
		for _, id := range []string{"old", "plain"} {
			r := tier.Record{ID: id, Payload: Payload(2), Expires: later.Add(time.Hour), Deadline: later.Add(2 * time.Hour)}
			if _, err := tr.SetWithin(ctx, r, time.Time{}, later); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if got := stored(t, tr, id, later); !got.Deadline.Equal(r.Deadline) || !got.Expires.Equal(r.Expires) {
				t.Errorf("%s: deadline %v, expires %v; want a new lifetime %v, %v", id, got.Deadline, got.Expires, r.Deadline, r.Expires)
			}
		}
	})
}

// RunOwners runs the conformance suite of owners against fresh tiers
// made by newTier, which store owners.
func RunOwners(t *testing.T, newTier func(t *testing.T) OwnerAuthority) {
	now := time.Now().Truncate(time.Millisecond)
	ctx := context.Background()
	put := func(t *testing.T, tr OwnerAuthority, id, owner string, life time.Duration) {
		t.Helper()
		must(t, second(tr.Set(ctx, tier.Record{ID: id, Payload: Payload(1), Expires: now.Add(life), Owner: owner})))
	}
	owned := func(t *testing.T, tr OwnerAuthority, owner string) []string {
		t.Helper()
		var ids []string
		for rec, err := range tr.Owned(ctx, owner, now) {
			must(t, err)
			if rec.Owner != owner || string(rec.Payload) != string(Payload(1)) {
				t.Fatalf("Owned(%q) yielded %+v", owner, rec)
			}
			ids = append(ids, rec.ID)
		}
		slices.Sort(ids)
		return ids
	}
	t.Run("OwnedAndOwnedIDs", func(t *testing.T) {
		tr := newTier(t)
		must(t, tr.EnsureOwnerIndex(ctx))
		if err := tr.EnsureOwnerIndex(ctx); err != nil {
			t.Fatalf("a second EnsureOwnerIndex: %v", err)
		}
		put(t, tr, "a1", "ada", time.Hour)
		put(t, tr, "a2", "ada", time.Hour)
		put(t, tr, "a3", "ada", -time.Second) // expired
		put(t, tr, "b1", "bob", time.Hour)
		put(t, tr, "n1", "", time.Hour)
		if got := owned(t, tr, "ada"); !slices.Equal(got, []string{"a1", "a2"}) {
			t.Fatalf("Owned(ada) = %v", got)
		}
		ids, err := tr.OwnedIDs(ctx, "ada", now)
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, []string{"a1", "a2"}) {
			t.Fatalf("OwnedIDs(ada) = %v, %v", ids, err)
		}
		if got := owned(t, tr, ""); len(got) != 0 {
			t.Fatalf("Owned(\"\") = %v: anonymous sessions belong to no one", got)
		}
		if got := owned(t, tr, "eve"); len(got) != 0 {
			t.Fatalf("Owned(eve) = %v", got)
		}
		// The owner follows a Set, and an anonymous one reads as "".
		put(t, tr, "a2", "bob", time.Hour)
		put(t, tr, "a1", "", time.Hour)
		if got := owned(t, tr, "bob"); !slices.Equal(got, []string{"a2", "b1"}) {
			t.Fatalf("Owned(bob) after a2 changed owner = %v", got)
		}
		if got, err := tr.Get(ctx, "a1", now); err != nil || got.Owner != "" {
			t.Fatalf("a1 after it became anonymous: %+v, %v", got, err)
		}
	})
	t.Run("DeleteOwned", func(t *testing.T) {
		tr := newTier(t)
		put(t, tr, "a1", "ada", time.Hour)
		put(t, tr, "a2", "ada", time.Hour)
		put(t, tr, "b1", "bob", time.Hour)
		if n, err := tr.DeleteOwned(ctx, "ada", nil); err != nil || n != 0 {
			t.Fatalf("DeleteOwned of no ids = %d, %v", n, err)
		}
		// b1 is not ada's, and ghost does not exist: neither is deleted.
		n, err := tr.DeleteOwned(ctx, "ada", []string{"a1", "b1", "ghost"})
		if err != nil || n != 1 {
			t.Fatalf("DeleteOwned = %d, %v; want 1", n, err)
		}
		if got := owned(t, tr, "ada"); !slices.Equal(got, []string{"a2"}) {
			t.Fatalf("Owned(ada) after the delete = %v", got)
		}
		if got := owned(t, tr, "bob"); !slices.Equal(got, []string{"b1"}) {
			t.Fatalf("Owned(bob) after the delete = %v", got)
		}
	})
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// second returns the error of a call that also returns a value.
func second[V any](_ V, err error) error { return err }
