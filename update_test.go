package sessionstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

// fakeStores returns two stores on separate clients of one fake server's
// collection.
func fakeStores(t *testing.T, opts *sessionstore.Options[cart]) (a, b *sessionstore.Store[cart]) {
	t.Helper()
	return fakeStoresWith(t, opts, opts)
}

// fakeStoresWith is fakeStores with options for each store.
func fakeStoresWith(t *testing.T, optsA, optsB *sessionstore.Options[cart]) (a, b *sessionstore.Store[cart]) {
	t.Helper()
	srv := mongofake.Start(t)
	open := func(opts *sessionstore.Options[cart]) *sessionstore.Store[cart] {
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sessionstore.New(client.Database("db").Collection("sessions"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Close(ctx)
			_ = client.Disconnect(ctx)
		})
		return s
	}
	return open(optsA), open(optsB)
}

func TestUpdateRetriesAndGivesUp(t *testing.T) {
	a, b := fakeStores(t, &sessionstore.Options[cart]{TTLIndex: ttl.Off, UpdateAttempts: 3})
	ctx := context.Background()
	if err := a.Create(ctx, "c", cart{}); err != nil {
		t.Fatal(err)
	}
	// One write by b between a's read and write: a retries and wins.
	calls := 0
	v, err := a.Update(ctx, "c", func(c *cart) error {
		if calls++; calls == 1 {
			if _, err := b.Update(ctx, "c", func(c *cart) error { c.Items = append(c.Items, "b"); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		c.Items = append(c.Items, "a")
		return nil
	})
	if err != nil || strings.Join(v.Items, ",") != "b,a" || calls != 2 {
		t.Fatalf("Update = %v, %v after %d calls; want b,a after 2", v.Items, err, calls)
	}
	// b writes every time: a gives up after UpdateAttempts.
	_, err = a.Update(ctx, "c", func(c *cart) error {
		_, _ = b.Update(ctx, "c", func(c *cart) error { c.Items = append(c.Items, "b"); return nil })
		return nil
	})
	if !errors.Is(err, sessionstore.ErrConflict) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("Update under constant conflict = %v, want ErrConflict after 3 attempts", err)
	}
	// fn's error aborts; a deleted session is not recreated.
	abort := errors.New("abort")
	if _, err := a.Update(ctx, "c", func(*cart) error { return abort }); !errors.Is(err, abort) {
		t.Fatalf("aborted Update = %v", err)
	}
	_, err = a.Update(ctx, "c", func(*cart) error { return b.Delete(ctx, "c") })
	if !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Update of a session deleted meanwhile = %v", err)
	}
	if _, err := b.Get(ctx, "c"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("the deleted session came back: %v", err)
	}
	// A cancelled context ends the backoff.
	if err := a.Create(ctx, "d", cart{}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	_, err = a.Update(cctx, "d", func(c *cart) error {
		_, _ = b.Update(ctx, "d", func(c *cart) error { c.Items = append(c.Items, "b"); return nil })
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a context cancelled during backoff = %v", err)
	}
}

func TestUntilVariantsOnFakeServer(t *testing.T) {
	a, b := fakeStores(t, &sessionstore.Options[cart]{TTLIndex: ttl.Off,
		TTLFunc: func(c cart) time.Duration { return time.Duration(len(c.Items)+1) * time.Hour }})
	ctx := context.Background()
	until := time.Now().Add(5 * time.Minute)
	if err := a.CreateUntil(ctx, "u", cart{}, until); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateUntil(ctx, "u", func(c *cart) error { c.Items = []string{"x"}; return nil }, until.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for e, err := range b.All(ctx) {
		if err != nil || !e.Expires.Equal(until.Add(time.Hour).Truncate(time.Millisecond)) {
			t.Fatalf("All = %+v, %v; want the expiry UpdateUntil set", e, err)
		}
	}
	if a.Collection().Name() != "sessions" {
		t.Fatal("Collection names another collection")
	}
}

// failing is a codec that cannot encode and panics decoding.
type failing struct{ codec.MsgPack[cart] }

func (failing) Encode(cart) ([]byte, error) { return nil, errors.New("cannot encode") }
func (failing) Decode([]byte, *cart) error  { panic("bad codec") }

func TestCodecFailures(t *testing.T) {
	good, bad := fakeStoresWith(t, &sessionstore.Options[cart]{TTLIndex: ttl.Off},
		&sessionstore.Options[cart]{TTLIndex: ttl.Off, Codec: failing{}})
	ctx := context.Background()
	for _, err := range []error{
		bad.Set(ctx, "a", cart{}),
		bad.Create(ctx, "a", cart{}),
	} {
		if err == nil || !strings.Contains(err.Error(), "cannot encode") {
			t.Errorf("write with a failing codec = %v", err)
		}
	}
	if err := good.Create(ctx, "g", cart{Items: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	// A codec that panics is a corrupt session, never a crash, and the
	// session stays stored.
	if _, err := bad.Get(ctx, "g"); !errors.Is(err, sessionstore.ErrCorrupt) {
		t.Fatalf("Get with a panicking codec = %v, want ErrCorrupt", err)
	}
	if _, err := bad.Update(ctx, "g", func(*cart) error { return nil }); !errors.Is(err, sessionstore.ErrCorrupt) {
		t.Fatalf("Update with a panicking codec = %v, want ErrCorrupt", err)
	}
	for _, err := range bad.All(ctx) {
		if !errors.Is(err, sessionstore.ErrCorrupt) {
			t.Fatalf("All with a panicking codec = %v, want ErrCorrupt", err)
		}
	}
	if v, err := good.Get(ctx, "g"); err != nil || len(v.Items) != 1 {
		t.Fatalf("the session was harmed: %+v, %v", v, err)
	}
}
