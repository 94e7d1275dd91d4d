package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// A Set, Replace or Delete drops the touch buffered for its session; if
// the write fails, it may not have happened, and the touch is written by
// the next flush. (Found by the reliability suite: a save that failed
// while the server was down lost the touch made just before.)
func TestFailedWriteKeepsTheTouch(t *testing.T) {
	for _, call := range []string{"set", "replace", "delete"} {
		t.Run(call, func(t *testing.T) {
			clk := newClock()
			cfg := config(t, clk)
			db := &tiertest.Fake{}
			ctx := context.Background()
			db.Put(tier.Record{ID: "a", Payload: []byte("v"), Expires: clk.Now().Add(time.Minute), Rev: 1})
			e := start(t, cfg, db)
			if err := e.Touch("a", time.Time{}); err != nil {
				t.Fatal(err)
			}
			down := errors.New("server unreachable")
			db.Before = func(_ context.Context, c string) error {
				if c == call {
					return down
				}
				return nil
			}
			var err error
			switch call {
			case "set":
				err = e.Set(ctx, "a", []byte("w"), 0, time.Time{}, engine.Meta{})
			case "replace":
				_, err = e.Replace(ctx, "a", tier.Record{ID: "a", Payload: []byte("v"), Rev: 1}, []byte("w"), 0, time.Time{}, engine.Meta{})
			case "delete":
				err = e.Delete(ctx, "a")
			}
			if !errors.Is(err, down) {
				t.Fatalf("%s: %v, want the server's error", call, err)
			}
			db.Before = nil
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want := clk.Now().Add(time.Hour)
			if rec, _ := db.Record("a"); rec.Expires.Before(want) {
				t.Fatalf("after the failed %s, the server's expiry is %v, want the touch's, at least %v", call, rec.Expires, want)
			}
		})
	}
}
