package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// A session's deadline is set at creation, rounded down to the touch
// granularity, and neither touches, Sets nor Replaces move it or let the
// expiry pass it, in memory or on the server.
func TestMaxLifetime(t *testing.T) {
	clk := newClock()
	clk.Add(300 * time.Millisecond) // off the second, so rounding shows
	cfg := config(t, clk)
	cfg.TTL = time.Second
	cfg.MaxLifetime = 3 * time.Second
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	created := clk.Now()
	deadline := created.Add(3 * time.Second).Truncate(time.Second)
	if got := e.MaxDeadline(created); !got.Equal(deadline) {
		t.Fatalf("MaxDeadline = %v, want %v", got, deadline)
	}
	if err := e.Create(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		rec, ok := db.Record("a")
		if !ok {
			t.Fatalf("%s: the session is gone from the server", when)
		}
		if !rec.Deadline.Equal(deadline) || rec.Expires.After(deadline) {
			t.Fatalf("%s: server has deadline %v, expires %v; want deadline %v, expires no later", when, rec.Deadline, rec.Expires, deadline)
		}
		if m, _, err := get(e, ctx, op(t, cfg), "a", accept); err == nil && (!m.Deadline.Equal(deadline) || m.Expires.After(deadline)) {
			t.Fatalf("%s: memory has deadline %v, expires %v", when, m.Deadline, m.Expires)
		}
	}
	check("after Create")
	key := "a"
	for i := 0; clk.Now().Before(deadline); i++ {
		clk.Add(200 * time.Millisecond)
		if err := e.Touch("a", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 3:
			if err := e.Set(ctx, "a", []byte("set"), time.Hour, time.Time{}, engine.Meta{}); err != nil {
				t.Fatal(err)
			}
		case 6:
			rec, _, err := get(e, ctx, op(t, cfg), "a", accept)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Replace(ctx, key, rec, []byte("replaced"), time.Hour, time.Time{}, engine.Meta{}); err != nil {
				t.Fatal(err)
			}
		case 8:
			if err := e.Touch("a", clk.Now().Add(time.Hour)); err != nil { // absolute
				t.Fatal(err)
			}
		}
		if clk.Now().Before(deadline) {
			check("at " + clk.Now().Sub(created).String())
			if _, _, err := get(e, ctx, op(t, cfg), "a", accept); err != nil {
				t.Fatalf("Get before the deadline: %v", err)
			}
		}
	}
	if rec, _ := db.Record("a"); !rec.Expires.Equal(deadline) {
		t.Fatalf("touches every 200ms brought the expiry to %v, want the deadline %v", rec.Expires, deadline)
	}
	if rec, _, err := get(e, ctx, op(t, cfg), "a", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get at the deadline = %+v, %v; want ErrNotFound", rec, err)
	}
	// The memory tier held it until then, and refuses it too.
	e2 := start(t, cfg, db)
	if _, _, err := get(e2, ctx, op(t, cfg), "a", accept); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("another instance at the deadline: %v", err)
	}
}

// Set of a session that memory does not hold keeps the server's
// deadline; Set of a new or expired one starts a new lifetime.
func TestMaxLifetimeSet(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.MaxLifetime = time.Hour
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	first := clk.Now().Add(time.Hour)
	if err := e.Set(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Minute)
	other := start(t, cfg, db) // holds nothing in memory
	if err := other.Set(ctx, "a", []byte("w"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("a"); !rec.Deadline.Equal(first) || !rec.Expires.Equal(first) {
		t.Fatalf("after a Set 10 minutes later: deadline %v, expires %v; want both %v", rec.Deadline, rec.Expires, first)
	}
	clk.Add(time.Hour)
	if err := other.Set(ctx, "a", []byte("x"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("a"); !rec.Deadline.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("Set of a session past its deadline: deadline %v, want a new one", rec.Deadline)
	}
}

// CreateWithin's deadline is kept when earlier than now plus MaxLifetime,
// and brought back to it when later; without MaxLifetime it is kept.
func TestCreateWithDeadline(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.MaxLifetime = time.Hour
	db := &tiertest.Fake{}
	e := start(t, cfg, db)
	ctx := context.Background()
	for id, c := range map[string]struct{ asked, want time.Time }{
		"earlier": {clk.Now().Add(20*time.Minute + 300*time.Millisecond), clk.Now().Add(20 * time.Minute)},
		"later":   {clk.Now().Add(2 * time.Hour), clk.Now().Add(time.Hour)},
		"zero":    {time.Time{}, clk.Now().Add(time.Hour)},
	} {
		if err := e.Create(ctx, id, []byte("v"), 0, time.Time{}, engine.Meta{Deadline: c.asked}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := db.Record(id); !rec.Deadline.Equal(c.want) || rec.Expires.After(c.want) {
			t.Errorf("%s: deadline %v, expires %v; want deadline %v", id, rec.Deadline, rec.Expires, c.want)
		}
	}
	cfg.MaxLifetime = 0
	plain := start(t, cfg, db)
	d := clk.Now().Add(time.Minute)
	if err := plain.Create(ctx, "b", []byte("v"), 0, time.Time{}, engine.Meta{Deadline: d}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.Record("b"); !rec.Deadline.Equal(d) || !rec.Expires.Equal(d) {
		t.Errorf("without MaxLifetime: deadline %v, expires %v; want %v", rec.Deadline, rec.Expires, d)
	}
}

// An engine refuses an authority that lacks what its configuration needs.
func TestCapabilities(t *testing.T) {
	cfg := config(t, newClock())
	cfg.MaxLifetime = time.Hour
	if _, err := engine.New(context.Background(), cfg, plainAuthority{&tiertest.Fake{}}, nil); err == nil || !strings.Contains(err.Error(), "deadlines") {
		t.Errorf("MaxLifetime on an authority without SetWithin: %v", err)
	}
	cfg.MaxLifetime, cfg.Owners = 0, true
	if _, err := engine.New(context.Background(), cfg, plainAuthority{&tiertest.Fake{}}, nil); err == nil || !strings.Contains(err.Error(), "owners") {
		t.Errorf("Owners on an authority without them: %v", err)
	}
	cfg.Owners = false
	e, err := engine.New(context.Background(), cfg, plainAuthority{&tiertest.Fake{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if _, err := e.Reseal(context.Background(), 10); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Errorf("Reseal on an authority that does not encrypt: %v", err)
	}
	if _, err := e.DeleteOwned(context.Background(), "u", nil); err == nil || !strings.Contains(err.Error(), "Options.Owner") {
		t.Errorf("DeleteOwned without owners: %v", err)
	}
}

// plainAuthority hides the optional capabilities of the Fake.
type plainAuthority struct{ engine.Authority }

// HashID maps every id before it reaches the authority or memory.
func TestHashID(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.Prefix = "p:"
	cfg.HashID = func(id string) string { return "h(" + id + ")" }
	db := &tiertest.Fake{Prefix: "p:"}
	e := start(t, cfg, db)
	ctx := context.Background()
	if err := e.Set(ctx, "a", []byte("v"), 0, time.Time{}, engine.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Record("p:a"); ok {
		t.Fatal("the raw id reached the authority")
	}
	if _, ok := db.Record("p:h(a)"); !ok {
		t.Fatal("the hashed id is not stored")
	}
	rec, key, hit, err := e.Cached(op(t, cfg), "a")
	if err != nil || !hit || key != "p:h(a)" || rec.ID != "p:h(a)" {
		t.Fatalf("Cached = %+v, %q, %v, %v", rec, key, hit, err)
	}
	for rec, err := range e.All(ctx) {
		if err != nil || rec.ID != "h(a)" {
			t.Fatalf("All yielded %q, %v; want the hash without the prefix", rec.ID, err)
		}
	}
	if err := e.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Record("p:h(a)"); ok {
		t.Fatal("Delete left the hashed record")
	}
	if err := e.Set(ctx, "", nil, 0, time.Time{}, engine.Meta{}); !errors.Is(err, engine.ErrInvalidID) {
		t.Fatalf("an empty id is hashed rather than refused: %v", err)
	}
}

// DeleteOwned deletes the owner's sessions but the ones kept, from the
// server and memory, drops their touches, and leaves other owners alone.
func TestDeleteOwned(t *testing.T) {
	clk := newClock()
	cfg := config(t, clk)
	cfg.Owners = true
	var down atomic.Bool // fails the deletes by owner
	db := &tiertest.Fake{Before: func(_ context.Context, call string) error {
		if call == "deleteowned" && down.Load() {
			return errors.New("server down")
		}
		return nil
	}}
	e := start(t, cfg, db)
	ctx := context.Background()
	for id, owner := range map[string]string{"a1": "ada", "a2": "ada", "a3": "ada", "b1": "bob", "n1": ""} {
		if err := e.Set(ctx, id, []byte(id), 0, time.Time{}, engine.Meta{Owner: owner}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(e, ctx, op(t, cfg), id, accept); err != nil { // cached
			t.Fatal(err)
		}
	}
	if err := e.Touch("a2", clk.Now().Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.DeleteOwned(ctx, "", nil); !errors.Is(err, engine.ErrNoOwner) || n != 0 {
		t.Fatalf("DeleteOwned of no one = %d, %v", n, err)
	}
	n, err := e.DeleteOwned(ctx, "ada", []string{"a1"})
	if err != nil || n != 2 {
		t.Fatalf("DeleteOwned = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"a2", "a3"} {
		if _, ok := db.Record(id); ok {
			t.Errorf("%s is still on the server", id)
		}
		if _, _, err := get(e, ctx, op(t, cfg), id, accept); !errors.Is(err, tier.ErrNotFound) {
			t.Errorf("%s is still served: %v", id, err)
		}
	}
	for _, id := range []string{"a1", "b1", "n1"} {
		if _, _, err := get(e, ctx, op(t, cfg), id, accept); err != nil {
			t.Errorf("%s was deleted: %v", id, err)
		}
	}
	if err := e.Flush(ctx); err != nil || db.Calls("touch") != 0 {
		t.Errorf("the deleted session's touch was written: %v, %d commands", err, db.Calls("touch"))
	}
	var owned []string
	for rec, err := range e.Owned(ctx, "ada") {
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, rec.ID+"="+rec.Owner)
	}
	if strings.Join(owned, ",") != "a1=ada" {
		t.Errorf("Owned(ada) = %v", owned)
	}
	down.Store(true)
	if _, err := e.DeleteOwned(ctx, "bob", nil); err == nil {
		t.Error("a failed delete reported success")
	}
	before := db.Calls("get")
	if _, _, err := get(e, ctx, op(t, cfg), "b1", accept); err != nil || db.Calls("get") != before+1 {
		t.Errorf("after a failed delete, memory must not answer: %v, %d reads", err, db.Calls("get")-before)
	}
}
