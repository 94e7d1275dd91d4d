package sessionstore_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

// basket is a session holding what a shallow copy would share: a slice
// and a map. Note is not encoded, so a value read back never has it.
type basket struct {
	Items []string
	Tags  map[string]string
	Note  string `msgpack:"-"`
}

func cloneBasket(b basket) basket {
	b.Items, b.Tags = slices.Clone(b.Items), maps.Clone(b.Tags)
	return b
}

// countingCodec is msgpack, counting the decodes.
type countingCodec struct {
	codec.MsgPack[basket]
	decodes *atomic.Int64
}

func (c countingCodec) Decode(data []byte, v *basket) error {
	c.decodes.Add(1)
	return c.MsgPack.Decode(data, v)
}

// cloneStore returns a store over a fake server with a counting codec,
// Options.Clone set to clone (nil for none), the store's collection, and
// the decode and clone counters.
func cloneStore(t *testing.T, clone bool) (s *sessionstore.Store[basket], coll *mongo.Collection, decodes, clones *atomic.Int64) {
	t.Helper()
	srv := mongofake.Start(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	coll = client.Database("test").Collection("sessions")
	decodes, clones = &atomic.Int64{}, &atomic.Int64{}
	opts := &sessionstore.Options[basket]{
		Codec:     countingCodec{decodes: decodes},
		TTLIndex:  ttl.Off,
		Coherence: sessionstore.CoherenceOff, // the only writer: memory answers
	}
	if clone {
		opts.Clone = func(b basket) basket { clones.Add(1); return cloneBasket(b) }
	}
	s, err = sessionstore.New(coll, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, coll, decodes, clones
}

// get Gets id and fails the test on an error.
func get(t *testing.T, s *sessionstore.Store[basket], id string) basket {
	t.Helper()
	v, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return v
}

// TestCloneHitsDoNotDecode checks that with Clone a session is decoded
// once after it is written, and then every Get answered from memory
// clones the kept value; and that without Clone every Get decodes, as
// before.
func TestCloneHitsDoNotDecode(t *testing.T) {
	for _, withClone := range []bool{true, false} {
		s, _, decodes, clones := cloneStore(t, withClone)
		ctx := context.Background()
		if err := s.Set(ctx, "a", basket{Items: []string{"apple"}}); err != nil {
			t.Fatal(err)
		}
		decodes.Store(0)
		for range 5 {
			if v := get(t, s, "a"); !slices.Equal(v.Items, []string{"apple"}) {
				t.Fatalf("Get = %+v", v)
			}
		}
		want := int64(5)
		if withClone {
			want = 1 // the first hit decodes and keeps the value
			if n := clones.Load(); n != 5 {
				t.Errorf("5 hits cloned %d times, want 5 (4 hits and the value kept)", n)
			}
		}
		if n := decodes.Load(); n != want {
			t.Errorf("Clone %v: 5 hits decoded %d times, want %d", withClone, n, want)
		}
	}
}

// TestCloneLoadKeepsTheCallersDecode checks that the value a load's
// first caller decoded is kept: the Gets after it decode nothing.
func TestCloneLoadKeepsTheCallersDecode(t *testing.T) {
	s, coll, decodes, _ := cloneStore(t, true)
	ctx := context.Background()
	p, err := codec.MsgPack[basket]{}.Encode(basket{Items: []string{"pear"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{
		{Key: "_id", Value: "b"},
		{Key: "expires", Value: bson.NewDateTimeFromTime(time.Now().Add(time.Hour))},
		{Key: "session", Value: bson.Binary{Data: p}},
	}); err != nil {
		t.Fatal(err)
	}
	decodes.Store(0)
	for range 3 {
		if v := get(t, s, "b"); !slices.Equal(v.Items, []string{"pear"}) {
			t.Fatalf("Get = %+v", v)
		}
	}
	if n := decodes.Load(); n != 1 {
		t.Errorf("a load and two hits decoded %d times, want 1", n)
	}
}

// TestCloneMatchesTheDecode checks that a Get from memory returns what a
// decode of the stored payload gives, not what the writer passed: Note is
// not encoded, so no read returns it, from memory or not.
func TestCloneMatchesTheDecode(t *testing.T) {
	s, _, _, _ := cloneStore(t, true)
	ctx := context.Background()
	if err := s.Set(ctx, "a", basket{Items: []string{"x"}, Note: "not stored"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "b", basket{Note: "not stored"}); err != nil {
		t.Fatal(err)
	}
	up, err := s.Update(ctx, "a", func(b *basket) error { b.Note = "not stored either"; b.Items = append(b.Items, "y"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if up.Note == "" {
		t.Fatal("Update returned a value without the change fn made")
	}
	for _, id := range []string{"a", "a", "b", "b"} {
		if v := get(t, s, id); v.Note != "" {
			t.Errorf("Get(%q) = %+v: memory kept the written value, not the stored one", id, v)
		}
	}
	if v := get(t, s, "a"); !slices.Equal(v.Items, []string{"x", "y"}) {
		t.Errorf("Get after Update = %+v, want the updated items", v)
	}
}

// TestCloneCallersOwnTheirCopy checks that changing a value returned by
// Get, or passed to Set, changes nothing another Get returns.
func TestCloneCallersOwnTheirCopy(t *testing.T) {
	s, _, _, _ := cloneStore(t, true)
	ctx := context.Background()
	v := basket{Items: []string{"apple"}, Tags: map[string]string{"k": "v"}}
	if err := s.Set(ctx, "a", v); err != nil {
		t.Fatal(err)
	}
	v.Items[0], v.Tags["k"] = "changed by the writer", "changed"
	for range 3 { // a decode, then clones of what it kept
		got := get(t, s, "a")
		if got.Items[0] != "apple" || got.Tags["k"] != "v" {
			t.Fatalf("Get = %+v, want the stored session", got)
		}
		got.Items[0], got.Tags["k"] = "changed by a reader", "changed"
	}
	got, err := s.Update(ctx, "a", func(b *basket) error { b.Tags["k2"] = "v2"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	got.Items[0] = "changed after the update"
	if v := get(t, s, "a"); v.Items[0] != "apple" || v.Tags["k2"] != "v2" || len(v.Tags) != 2 {
		t.Fatalf("Get after Update = %+v", v)
	}
}

// TestCloneTouchKeepsTheValue checks that a touch, which extends the
// record in memory, keeps its decoded value, and that a Delete drops it.
func TestCloneTouchKeepsTheValue(t *testing.T) {
	s, _, decodes, _ := cloneStore(t, true)
	ctx := context.Background()
	if err := s.Set(ctx, "a", basket{Items: []string{"apple"}}); err != nil {
		t.Fatal(err)
	}
	get(t, s, "a")
	decodes.Store(0)
	if err := s.Touch(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	get(t, s, "a")
	if n := decodes.Load(); n != 0 {
		t.Errorf("a Get after a touch decoded %d times, want 0", n)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
}

// TestCloneUpdateFromMemory checks that an Update answered from memory
// (the version known, after a Create or an Update) calls fn with a clone
// of the stored session, which fn may change freely.
func TestCloneUpdateFromMemory(t *testing.T) {
	s, _, decodes, clones := cloneStore(t, true)
	ctx := context.Background()
	if err := s.Create(ctx, "a", basket{Items: []string{"apple"}, Tags: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	get(t, s, "a") // decodes and keeps
	decodes.Store(0)
	clones.Store(0)
	for i, item := range []string{"pear", "fig"} {
		got, err := s.Update(ctx, "a", func(b *basket) error {
			b.Items = append(b.Items, item)
			b.Tags[item] = "added"
			return nil
		})
		if err != nil || len(got.Items) != i+2 || got.Items[0] != "apple" || got.Tags["k"] != "v" {
			t.Fatalf("Update %d = %+v, %v", i, got, err)
		}
		get(t, s, "a") // keeps the update's decode for the next Update
	}
	if v := get(t, s, "a"); !slices.Equal(v.Items, []string{"apple", "pear", "fig"}) || len(v.Tags) != 3 {
		t.Fatalf("Get after the Updates = %+v", v)
	}
	if n := clones.Load(); n < 2 {
		t.Errorf("the Updates cloned %d times: they did not start from memory", n)
	}
}
