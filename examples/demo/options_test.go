package main

import (
	"context"
	"testing"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/examples/demo/app"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// TestDemoOptions replays returning visits with the options the demo
// adds to the walk-through's, app.Clone and app.TouchAfter: within
// TouchAfter of the last extension a visit writes nothing, after it the
// touch moves the expiry; the session read from memory is the one stored.
func TestDemoOptions(t *testing.T) {
	d := newDemo(t, func(o *sessionstore.Options[app.Record]) {
		o.Clone, o.TouchAfter = app.CloneRecord, app.TouchAfter
	})
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	first := d.get(t, nil)
	id := sessionID(t, first)
	created := d.find(t, id)

	d.clock.Add(app.TouchAfter / 2)
	for range 3 {
		if c := d.get(t, first); c == nil || c.Value != first.Value {
			t.Fatalf("a returning visit's cookie = %v, want the first one again", c)
		}
	}
	if err := d.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if doc := d.find(t, id); !doc.Expires.Equal(created.Expires) {
		t.Errorf("visits within TouchAfter moved expires from %v to %v", created.Expires, doc.Expires)
	}
	got, err := d.store.Get(ctx, id)
	if err != nil || got.Value != created.Session.Value {
		t.Errorf("Get = %+v, %v; want the stored session %+v", got, err, created.Session)
	}

	d.clock.Add(app.TouchAfter)
	d.get(t, first)
	if err := d.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if doc := d.find(t, id); doc.Expires.Before(created.Expires.Add(app.TouchAfter)) {
		t.Errorf("a visit past TouchAfter moved expires from %v to %v, want at least %v later", created.Expires, doc.Expires, app.TouchAfter)
	}
}
