package tiertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

func TestFakeConformance(t *testing.T) {
	tiertest.Run(t, func(*testing.T) engine.Authority { return &tiertest.Fake{} })
}

// Before fails every call it names, and Calls counts them.
func TestFakeBefore(t *testing.T) {
	down := errors.New("down")
	f := &tiertest.Fake{Before: func(_ context.Context, call string) error { return down }}
	ctx := context.Background()
	now := time.Now()
	rec := tier.Record{ID: "a", Expires: now.Add(time.Hour)}
	f.Put(rec)
	checks := []struct {
		call string
		err  error
	}{
		{"get", func() error { _, err := f.Get(ctx, "a", now); return err }()},
		{"set", func() error { _, err := f.Set(ctx, rec); return err }()},
		{"insert", f.Insert(ctx, rec)},
		{"replace", func() error { _, err := f.Replace(ctx, rec, rec); return err }()},
		{"delete", f.Delete(ctx, "a")},
		{"len", func() error { _, err := f.Len(ctx, now); return err }()},
		{"clear", f.Clear(ctx)},
		{"reap", func() error { _, err := f.Reap(ctx, now); return err }()},
		{"touch", func() error { _, err := f.TouchMany(ctx, []string{"a"}, now, now); return err }()},
		{"ttls", func() error { _, err := f.TTLs(ctx, []string{"a"}, now); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, down) || f.Calls(c.call) != 1 {
			t.Errorf("%s: %v after %d calls; want the hook's error after 1", c.call, c.err, f.Calls(c.call))
		}
	}
	for _, err := range f.All(ctx, now) {
		if !errors.Is(err, down) {
			t.Errorf("all: %v", err)
		}
	}
	if _, ok := f.Record("a"); !ok {
		t.Fatal("a failed call changed the records")
	}
}
