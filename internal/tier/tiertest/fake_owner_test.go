package tiertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

func TestFakeDeadlinesConformance(t *testing.T) {
	tiertest.RunDeadlines(t, func(*testing.T) tiertest.DeadlineAuthority { return &tiertest.Fake{} })
}

func TestFakeOwnersConformance(t *testing.T) {
	tiertest.RunOwners(t, func(*testing.T) tiertest.OwnerAuthority { return &tiertest.Fake{} })
}

// Before fails the calls of fake_owner.go by their names too, and Owned
// stops when its consumer does.
func TestFakeOwnerBefore(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	f := &tiertest.Fake{}
	for _, id := range []string{"a", "b"} {
		if _, err := f.Set(ctx, tier.Record{ID: id, Expires: now.Add(time.Hour), Owner: "ada"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	for _, err := range f.Owned(ctx, "ada", now) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		break
	}
	if seen != 1 {
		t.Fatalf("Owned went on after its consumer stopped: %d", seen)
	}
	down := errors.New("down")
	f.Before = func(context.Context, string) error { return down }
	if _, err := f.SetWithin(ctx, tier.Record{ID: "c", Deadline: now.Add(time.Hour)}, time.Time{}, now); !errors.Is(err, down) {
		t.Errorf("SetWithin: %v", err)
	}
	if err := f.EnsureOwnerIndex(ctx); !errors.Is(err, down) {
		t.Errorf("EnsureOwnerIndex: %v", err)
	}
	for _, err := range f.Owned(ctx, "ada", now) {
		if !errors.Is(err, down) {
			t.Errorf("Owned: %v", err)
		}
	}
	if _, err := f.OwnedIDs(ctx, "ada", now); !errors.Is(err, down) {
		t.Errorf("OwnedIDs: %v", err)
	}
	if _, err := f.DeleteOwned(ctx, "ada", []string{"a"}); !errors.Is(err, down) {
		t.Errorf("DeleteOwned: %v", err)
	}
	for _, call := range []string{"setwithin", "ownerindex", "owned", "ownedids", "deleteowned"} {
		if f.Calls(call) == 0 {
			t.Errorf("no %q call counted", call)
		}
	}
}
