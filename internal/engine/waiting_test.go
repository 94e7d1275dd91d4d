package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// A caller whose context ends while the shared read waits for the server
// gets an error that says the server did not answer, and still matches
// the context's error.
func TestLoadGivingUpSaysWhy(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	db := &tiertest.Fake{}
	db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Hour)})
	release := make(chan struct{})
	db.Before = func(ctx context.Context, call string) error {
		if call == "get" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	e := start(t, cfg, db)
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := get(e, ctx, op(t, cfg), "a", accept)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer from MongoDB") {
		t.Fatalf("Get past its deadline: %v; want an error saying the server did not answer, wrapping context.DeadlineExceeded", err)
	}
}
