package integration_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

type counter struct {
	N int
}

// twoStores returns two stores on separate clients over one collection,
// as two application servers behind a load balancer, and the command
// records of both clients.
func twoStores[T any](t *testing.T, opts *sessionstore.Options[T]) (a, b *sessionstore.Store[T], ca, cb *mongotest.Commands) {
	t.Helper()
	coll := mongotest.Collection(t)
	collA, ca := mongotest.Monitored(t, coll)
	collB, cb := mongotest.Monitored(t, coll)
	return newStore(t, collA, opts), newStore(t, collB, opts), ca, cb
}

// 32 goroutines over two stores increment one counter: no increment is
// lost, and every Update that returned nil is counted once.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	a, b, _, _ := twoStores(t, &sessionstore.Options[counter]{TTLIndex: ttl.Off, UpdateAttempts: 1000})
	ctx := bg(t)
	if err := a.Create(ctx, "c", counter{}); err != nil {
		t.Fatal(err)
	}
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range 3 {
				_, err := s.Update(ctx, "c", func(c *counter) error { c.N++; return nil })
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, sessionstore.ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, found := mongotest.RawDoc(t, a.Collection(), "c")
	if !found {
		t.Fatal("the counter is gone")
	}
	var v counter
	_, data := got.Lookup("session").Binary()
	if err := (codec.MsgPack[counter]{}).Decode(data, &v); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates succeeded, %d gave up; counter %d, version %v", ok.Load(), conflicts.Load(), v.N, got.Lookup("rev"))
	if int64(v.N) != ok.Load() {
		t.Fatalf("counter %d, but %d Updates returned nil", v.N, ok.Load())
	}
}

// The exhausted-retries path returns ErrConflict; fn's error aborts
// without writing.
func TestUpdateConflictAndAbort(t *testing.T) {
	a, b, _, _ := twoStores(t, &sessionstore.Options[counter]{TTLIndex: ttl.Off, UpdateAttempts: 2})
	ctx := bg(t)
	if err := a.Create(ctx, "c", counter{}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := a.Update(ctx, "c", func(c *counter) error {
		calls++
		// Another server writes between every read and write of a.
		if _, err := b.Update(ctx, "c", func(c *counter) error { c.N += 10; return nil }); err != nil {
			t.Fatal(err)
		}
		c.N++
		return nil
	})
	if !errors.Is(err, sessionstore.ErrConflict) || calls != 2 {
		t.Fatalf("Update = %v after %d calls, want ErrConflict after 2", err, calls)
	}
	abort := errors.New("no")
	if _, err := a.Update(ctx, "c", func(c *counter) error { c.N = -1; return abort }); !errors.Is(err, abort) {
		t.Fatalf("Update with a failing fn = %v", err)
	}
	v, err := b.Get(ctx, "c")
	if err != nil || v.N != 20 {
		t.Fatalf("counter %d, %v; want 20 (b's writes only)", v.N, err)
	}
}

// An Update of a session deleted meanwhile returns ErrNotFound and
// recreates nothing; a Create never overwrites.
func TestUpdateNeverRecreates(t *testing.T) {
	a, b, _, _ := twoStores(t, &sessionstore.Options[counter]{TTLIndex: ttl.Off})
	ctx := bg(t)
	if err := a.Create(ctx, "c", counter{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Create(ctx, "c", counter{N: 2}); !errors.Is(err, sessionstore.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	if _, err := a.Get(ctx, "c"); err != nil { // in a's memory now
		t.Fatal(err)
	}
	_, err := a.Update(ctx, "c", func(c *counter) error {
		if err := b.Delete(ctx, "c"); err != nil { // a logout elsewhere
			t.Fatal(err)
		}
		c.N++
		return nil
	})
	if !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Update of a deleted session = %v, want ErrNotFound", err)
	}
	if raw, ok := mongotest.RawDoc(t, a.Collection(), "c"); ok {
		t.Fatalf("the deleted session came back: %v", raw)
	}
	if _, err := a.Update(ctx, "ghost", func(*counter) error { return nil }); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Update of a missing session = %v", err)
	}
}

// An uncontended Update costs one write command and no read when the
// session is in memory; touches never change the version.
func TestUpdateCostsOneWrite(t *testing.T) {
	a, _, ca, _ := twoStores(t, &sessionstore.Options[counter]{TTLIndex: ttl.Off})
	ctx := bg(t)
	if err := a.Create(ctx, "c", counter{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Touch(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ca.Reset()
	for range 5 {
		if _, err := a.Update(ctx, "c", func(c *counter) error { c.N++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n, all := ca.Count("update"), ca.Count(); n != 5 || all != 5 {
		t.Fatalf("5 Updates sent %d updates in %d commands, want 5 in 5", n, all)
	}
	raw, _ := mongotest.RawDoc(t, a.Collection(), "c")
	if rev := raw.Lookup("rev").AsInt64(); rev != 6 {
		t.Fatalf("version %d after a create, a touch and 5 updates; want 6", rev)
	}
	// After a Set memory does not know the version: one read, then the
	// write.
	if err := a.Set(ctx, "c", counter{N: 100}); err != nil {
		t.Fatal(err)
	}
	ca.Reset()
	if v, err := a.Update(ctx, "c", func(c *counter) error { c.N++; return nil }); err != nil || v.N != 101 {
		t.Fatalf("Update after Set = %+v, %v", v, err)
	}
	if got := mongotest.Names(ca.Take()); fmt.Sprint(got) != "[find update]" {
		t.Fatalf("Update after a Set sent %v, want [find update]", got)
	}
}

// A session document in the Node stores' shape (no rev), changed by a
// Node app between a Go read and a Go save, is not overwritten blindly;
// nor is one that a Node app saved over a Go write (its rev kept, its
// session changed).
func TestNodeWritesAreNotOverwritten(t *testing.T) {
	type sess struct {
		Cart []string `bson:"cart"`
	}
	coll := mongotest.Collection(t)
	s := newStore(t, coll, &sessionstore.Options[sess]{TTLIndex: ttl.Off, Codec: codec.BSON[sess]{}})
	ctx := bg(t)
	exp := bson.NewDateTimeFromTime(time.Now().Add(time.Hour))
	nodeSave := func(cart ...string) {
		t.Helper()
		// What connect-mongo does: $set of the whole session, upserted.
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "n"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: exp}, {Key: "session", Value: bson.D{{Key: "cart", Value: cart}}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "n"}, {Key: "expires", Value: exp},
		{Key: "session", Value: bson.D{{Key: "cart", Value: []string{"node-1"}}}}}); err != nil {
		t.Fatal(err)
	}
	for round, want := range [][]string{{"node-1", "node-2", "go"}, {"node-1", "node-2", "go", "node-3", "go"}} {
		calls := 0
		got, err := s.Update(ctx, "n", func(v *sess) error {
			if calls++; calls == 1 {
				// The Node app saves between the Go read and save.
				nodeSave(append(v.Cart, fmt.Sprintf("node-%d", round+2))...)
			}
			v.Cart = append(v.Cart, "go")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Cart) != fmt.Sprint(want) || calls != 2 {
			t.Fatalf("round %d: cart %v after %d calls, want %v after 2 (the Node save detected)", round, got.Cart, calls, want)
		}
	}
}
