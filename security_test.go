package sessionstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Truncate(time.Second).Add(300 * time.Millisecond)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// openFake opens a store on srv's collection coll, closed when the test
// ends.
func openFake[T any](t *testing.T, srv *mongofake.Server, coll string, opts sessionstore.Options[T]) *sessionstore.Store[T] {
	t.Helper()
	opts.Collection = coll
	if opts.TTLIndex == ttl.Auto {
		opts.TTLIndex = ttl.Off
	}
	s, err := sessionstore.Open(context.Background(), srv.URI(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// docs returns every document of s's collection.
func docs(t *testing.T, coll *mongo.Collection) []bson.Raw {
	t.Helper()
	cur, err := coll.Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for cur.Next(context.Background()) {
		out = append(out, slices.Clone(cur.Current))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func rawDoc(t *testing.T, coll *mongo.Collection, id string) (bson.Raw, bool) {
	t.Helper()
	raw, err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw, true
}

func dates(t *testing.T, raw bson.Raw) (expires, deadline time.Time) {
	t.Helper()
	e, ok1 := raw.Lookup("expires").DateTimeOK()
	d, ok2 := raw.Lookup("deadline").DateTimeOK()
	if !ok1 || !ok2 {
		t.Fatalf("document %s lacks expires or deadline", raw)
	}
	return time.UnixMilli(e), time.UnixMilli(d)
}

// With MaxLifetime 3 s and touches every 200 ms, from an instance that
// holds the session in memory and one that does not, with saves from
// both, the document's expiry never passes the deadline, and the session
// reads as missing on both from the deadline on.
func TestMaxLifetimeOnFakeServer(t *testing.T) {
	srv := mongofake.Start(t)
	clk := newFakeClock()
	opts := sessionstore.Options[session]{TTL: time.Second, MaxLifetime: 3 * time.Second, Clock: clk}
	a := openFake(t, srv, "lifetime", opts)
	opts.CacheSize = -1
	b := openFake(t, srv, "lifetime", opts)
	ctx := context.Background()
	created := clk.Now()
	if err := a.Create(ctx, "s", session{User: "ada"}); err != nil {
		t.Fatal(err)
	}
	want := created.Add(3 * time.Second).Truncate(time.Second)
	for _, s := range []*sessionstore.Store[session]{a, b} {
		if d, err := s.Deadline(ctx, "s"); err != nil || !d.Equal(want) {
			t.Fatalf("Deadline = %v, %v; want %v", d, err, want)
		}
	}
	var reached bool
	for step := 1; ; step++ {
		clk.Add(200 * time.Millisecond)
		now := clk.Now()
		for _, s := range []*sessionstore.Store[session]{a, b} {
			if err := s.Touch(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		switch step {
		case 4:
			if err := b.Set(ctx, "s", session{User: "ada", Count: 1}); err != nil {
				t.Fatal(err)
			}
		case 7:
			if _, err := b.Update(ctx, "s", func(v *session) error { v.Count++; return nil }); err != nil {
				t.Fatal(err)
			}
		case 9:
			if err := a.SetUntil(ctx, "s", session{User: "ada", Count: 9}, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		raw, ok := rawDoc(t, a.Collection(), "s")
		if !now.Before(want) {
			for name, s := range map[string]*sessionstore.Store[session]{"memory": a, "no memory": b} {
				if v, err := s.Get(ctx, "s"); !errors.Is(err, sessionstore.ErrNotFound) {
					t.Fatalf("%s, %v after creation: Get = %+v, %v; want ErrNotFound", name, now.Sub(created), v, err)
				}
			}
			if !reached {
				t.Fatal("the touches never brought the expiry to the deadline")
			}
			break
		}
		if !ok {
			t.Fatalf("%v after creation, before the deadline: the document is gone", now.Sub(created))
		}
		exp, dl := dates(t, raw)
		if !dl.Equal(want) || exp.After(dl) {
			t.Fatalf("%v after creation: expires %v, deadline %v; want the deadline %v and expires no later", now.Sub(created), exp, dl, want)
		}
		reached = reached || exp.Equal(dl)
		for name, s := range map[string]*sessionstore.Store[session]{"memory": a, "no memory": b} {
			if _, err := s.Get(ctx, "s"); err != nil {
				t.Fatalf("%s, %v after creation: Get: %v", name, now.Sub(created), err)
			}
		}
	}
	// Set after the deadline starts a new session with a new lifetime.
	if err := b.Set(ctx, "s", session{User: "eve"}); err != nil {
		t.Fatal(err)
	}
	if d, err := a.Deadline(ctx, "s"); err != nil || !d.Equal(clk.Now().Add(3*time.Second).Truncate(time.Second)) {
		t.Fatalf("a new session in the old id: Deadline = %v, %v", d, err)
	}
}

// CreateWithin keeps an earlier deadline; without MaxLifetime it is
// refused and Deadline reports none.
func TestCreateWithin(t *testing.T) {
	srv := mongofake.Start(t)
	clk := newFakeClock()
	s := openFake(t, srv, "within", sessionstore.Options[session]{MaxLifetime: time.Hour, Clock: clk})
	ctx := context.Background()
	d := clk.Now().Add(10 * time.Minute).Truncate(time.Second)
	if err := s.CreateWithin(ctx, "new", session{}, d); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Deadline(ctx, "new"); err != nil || !got.Equal(d) {
		t.Fatalf("Deadline = %v, %v; want %v", got, err, d)
	}
	if _, err := s.Deadline(ctx, "ghost"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Deadline of a missing session: %v", err)
	}
	plain := openFake(t, srv, "within", sessionstore.Options[session]{Clock: clk})
	if err := plain.CreateWithin(ctx, "x", session{}, d); err == nil || !strings.Contains(err.Error(), "MaxLifetime") {
		t.Fatalf("CreateWithin without MaxLifetime: %v", err)
	}
	if got, err := plain.Deadline(ctx, "new"); err != nil || !got.IsZero() {
		t.Fatalf("Deadline without MaxLifetime = %v, %v", got, err)
	}
	if _, err := sessionstore.New(s.Collection(), &sessionstore.Options[session]{MaxLifetime: time.Millisecond, TTLIndex: ttl.Off}); err == nil {
		t.Fatal("a MaxLifetime shorter than TouchGranularity was accepted")
	}
}

type account struct {
	User   string
	Device int
}

// 1 000 sessions of 100 owners on two stores: deleting an owner's
// sessions but one removes exactly the others, and neither store serves
// a removed one afterwards; the owner stream shows what is left.
func TestOwnersOnFakeServer(t *testing.T) {
	srv := mongofake.Start(t)
	clk := newFakeClock()
	opts := sessionstore.Options[account]{Owner: func(a account) string { return a.User }, Clock: clk, MaxCacheAge: time.Minute}
	a := openFake(t, srv, "owners", opts)
	b := openFake(t, srv, "owners", opts)
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("sid-%04d", i) }
	for i := range 1000 {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.Create(ctx, id(i), account{User: fmt.Sprintf("user%02d", i%100), Device: i / 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Create(ctx, "anonymous", account{}); err != nil {
		t.Fatal(err)
	}
	// Both stores have user07's sessions in memory.
	for i := 7; i < 1000; i += 100 {
		for _, s := range []*sessionstore.Store[account]{a, b} {
			if _, err := s.Get(ctx, id(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	owned := func(s *sessionstore.Store[account], owner string) []string {
		t.Helper()
		var ids []string
		for e, err := range s.ByOwner(ctx, owner) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Value.User != owner {
				t.Fatalf("ByOwner(%s) yielded %+v", owner, e)
			}
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := owned(b, "user07"); len(got) != 10 || got[0] != id(7) || got[9] != id(907) {
		t.Fatalf("ByOwner(user07) = %v", got)
	}
	if _, err := a.DeleteByOwner(ctx, ""); err == nil {
		t.Fatal("DeleteByOwner of the anonymous owner was accepted")
	}
	n, err := a.DeleteByOwner(ctx, "user07", id(407))
	if err != nil || n != 9 {
		t.Fatalf("DeleteByOwner = %d, %v; want 9", n, err)
	}
	clk.Add(time.Minute) // b's memory copies are now older than MaxCacheAge
	for i := 7; i < 1000; i += 100 {
		for name, s := range map[string]*sessionstore.Store[account]{"a": a, "b": b} {
			_, err := s.Get(ctx, id(i))
			if i == 407 && err != nil {
				t.Fatalf("store %s: the session kept is gone: %v", name, err)
			}
			if i != 407 && !errors.Is(err, sessionstore.ErrNotFound) {
				t.Fatalf("store %s still serves %s: %v", name, id(i), err)
			}
		}
	}
	if n, err := b.Len(ctx); err != nil || n != 1000-9+1 {
		t.Fatalf("Len = %d, %v; want %d", n, err, 1000-9+1)
	}
	if got := owned(a, "user07"); !slices.Equal(got, []string{id(407)}) {
		t.Fatalf("ByOwner(user07) after the delete = %v", got)
	}
	if got := owned(a, "user08"); len(got) != 10 {
		t.Fatalf("another owner lost sessions: %v", got)
	}
	// The owner follows an Update; an expired session is never shown.
	if _, err := b.Update(ctx, id(8), func(v *account) error { v.User = "user99"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.SetUntil(ctx, id(108), account{User: "user08"}, clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Second)
	if got := owned(a, "user08"); len(got) != 8 || slices.Contains(got, id(8)) || slices.Contains(got, id(108)) {
		t.Fatalf("ByOwner(user08) after a change of owner and an expiry = %v", got)
	}
	if got := owned(a, "user99"); !slices.Contains(got, id(8)) {
		t.Fatalf("ByOwner(user99) = %v, want %s in it", got, id(8))
	}
	// The store created the owner index.
	specs, err := a.Collection().Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(specs, func(s mongo.IndexSpecification) bool { return s.Name == "owner_1" }) {
		t.Fatalf("indexes %v lack owner_1", specs)
	}
	for _, err := range openFake(t, srv, "owners", sessionstore.Options[account]{}).ByOwner(ctx, "user01") {
		if err == nil || !strings.Contains(err.Error(), "Options.Owner") {
			t.Fatalf("ByOwner without Options.Owner: %v", err)
		}
	}
}

func testKey(id string) sessionstore.EncryptionKey {
	secret := sha256.Sum256([]byte(id))
	return sessionstore.EncryptionKey{ID: id, Secret: secret[:]}
}

// A session encrypted under each codec reads back equal, from memory and
// from the database, and the document holds binary ciphertext only.
func TestEncryptionRoundTrip(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	keys := []sessionstore.EncryptionKey{testKey("k1")}
	v := session{User: "ada-lovelace", Count: 7}
	check := func(t *testing.T, s, cold *sessionstore.Store[session]) {
		t.Helper()
		if err := s.Set(ctx, "a", v); err != nil {
			t.Fatal(err)
		}
		for name, st := range map[string]*sessionstore.Store[session]{"memory": s, "database": cold} {
			if got, err := st.Get(ctx, "a"); err != nil || got != v {
				t.Fatalf("%s: Get = %+v, %v", name, got, err)
			}
		}
		raw, _ := rawDoc(t, s.Collection(), "a")
		sub, data, ok := raw.Lookup("session").BinaryOK()
		if !ok || sub != 0 || bytes.Contains(raw, []byte("ada-lovelace")) || data[0] != 1 {
			t.Fatalf("document %s holds no sealed payload", raw)
		}
	}
	for name, c := range map[string]codec.Codec[session]{"msgpack": codec.MsgPack[session]{}, "bson": codec.BSON[session]{}, "json": codec.JSON[session]{}} {
		t.Run(name, func(t *testing.T) {
			opts := sessionstore.Options[session]{Codec: c, EncryptionKeys: keys}
			s := openFake(t, srv, "enc-"+name, opts)
			opts.CacheSize = -1
			check(t, s, openFake(t, srv, "enc-"+name, opts))
		})
	}
	t.Run("bytes", func(t *testing.T) {
		opts := sessionstore.Options[[]byte]{Codec: codec.Bytes{}, EncryptionKeys: keys}
		s := openFake(t, srv, "enc-bytes", opts)
		want := []byte("raw session bytes")
		if err := s.Set(ctx, "a", want); err != nil {
			t.Fatal(err)
		}
		opts.CacheSize = -1
		if got, err := openFake(t, srv, "enc-bytes", opts).Get(ctx, "a"); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if raw, _ := rawDoc(t, s.Collection(), "a"); bytes.Contains(raw, want) {
			t.Fatal("the document holds the plaintext")
		}
	})
	for name, k := range map[string][]sessionstore.EncryptionKey{
		"short secret": {{ID: "k", Secret: make([]byte, 16)}},
		"no id":        {{Secret: make([]byte, 32)}},
		"same id":      {testKey("k"), testKey("k")},
	} {
		if _, err := sessionstore.New(docsColl(t, srv), &sessionstore.Options[session]{EncryptionKeys: k, TTLIndex: ttl.Off}); err == nil || !strings.Contains(err.Error(), "EncryptionKeys") {
			t.Errorf("%s: New = %v, want an error about EncryptionKeys", name, err)
		}
	}
}

func docsColl(t *testing.T, srv *mongofake.Server) *mongo.Collection {
	return openFake(t, srv, "unused", sessionstore.Options[session]{}).Collection()
}

// Rotation: sessions written under key A read with B added first, are
// re-encrypted under B, and read after A is dropped; Reencrypt keeps
// versions and skips what B already encrypts.
func TestEncryptionRotation(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	const coll, n = "rotation", 50
	onlyA := openFake(t, srv, coll, sessionstore.Options[session]{EncryptionKeys: []sessionstore.EncryptionKey{testKey("A")}})
	for i := range n {
		if err := onlyA.Create(ctx, fmt.Sprint(i), session{Count: i}); err != nil {
			t.Fatal(err)
		}
	}
	both := openFake(t, srv, coll, sessionstore.Options[session]{CacheSize: -1, EncryptionKeys: []sessionstore.EncryptionKey{testKey("B"), testKey("A")}})
	for i := range n {
		if v, err := both.Get(ctx, fmt.Sprint(i)); err != nil || v.Count != i {
			t.Fatalf("session %d under A, read with B first: %+v, %v", i, v, err)
		}
	}
	if _, err := both.Update(ctx, "0", func(v *session) error { v.User = "saved"; return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rewritten, err := both.Reencrypt(ctx, 1000)
	if err != nil || rewritten != n-1 {
		t.Fatalf("Reencrypt = %d, %v; want %d (one was saved under B already)", rewritten, err, n-1)
	}
	if d := time.Since(start); d < time.Duration(n-2)*time.Millisecond {
		t.Fatalf("Reencrypt of %d sessions at 1000/s took %v: not paced", n-1, d)
	}
	onlyB := openFake(t, srv, coll, sessionstore.Options[session]{CacheSize: -1, EncryptionKeys: []sessionstore.EncryptionKey{testKey("B")}})
	for i := range n {
		v, err := onlyB.Get(ctx, fmt.Sprint(i))
		if err != nil || v.Count != i {
			t.Fatalf("session %d with A dropped: %+v, %v", i, v, err)
		}
		raw, _ := rawDoc(t, onlyB.Collection(), fmt.Sprint(i))
		if rev := raw.Lookup("rev").AsInt64(); rev != 1+int64(btoi(i == 0)) {
			t.Fatalf("session %d at version %d after Reencrypt", i, rev)
		}
	}
	if again, err := onlyB.Reencrypt(ctx, 1000); err != nil || again != 0 {
		t.Fatalf("a second Reencrypt = %d, %v; want nothing to do", again, err)
	}
	if _, err := onlyB.Reencrypt(ctx, 0); err == nil {
		t.Fatal("a rate of 0 was accepted")
	}
	if _, err := openFake(t, srv, coll, sessionstore.Options[session]{}).Reencrypt(ctx, 10); err == nil {
		t.Fatal("Reencrypt without keys did not fail")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Close stops a Reencrypt in progress, which returns ErrClosed.
func TestReencryptStoppedByClose(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	old := openFake(t, srv, "stop", sessionstore.Options[session]{EncryptionKeys: []sessionstore.EncryptionKey{testKey("A")}})
	for i := range 20 {
		if err := old.Create(ctx, fmt.Sprint(i), session{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sessionstore.Open(ctx, srv.URI(), &sessionstore.Options[session]{Collection: "stop", TTLIndex: ttl.Off,
		EncryptionKeys: []sessionstore.EncryptionKey{testKey("B"), testKey("A")}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Reencrypt(ctx, 2) // ten seconds of work
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, sessionstore.ErrClosed) {
			t.Fatalf("Reencrypt after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop Reencrypt")
	}
}

// A flipped bit, a payload moved to another _id, and a truncated payload
// read as ErrCorrupt, are never cached, and All goes on past them.
func TestEncryptionTampering(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	s := openFake(t, srv, "tamper", sessionstore.Options[session]{CacheSize: -1, EncryptionKeys: []sessionstore.EncryptionKey{testKey("k")}})
	coll := s.Collection()
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := s.Set(ctx, id, session{User: id}); err != nil {
			t.Fatal(err)
		}
	}
	payload := func(id string) []byte {
		raw, _ := rawDoc(t, coll, id)
		_, data, _ := raw.Lookup("session").BinaryOK()
		return slices.Clone(data)
	}
	set := func(id string, p []byte) {
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "session", Value: bson.Binary{Data: p}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	flipped := payload("a")
	flipped[len(flipped)-3] ^= 0x04
	set("a", flipped)
	set("b", payload("d")) // d's payload moved to b
	set("c", payload("c")[:len(payload("c"))-4])
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, sessionstore.ErrCorrupt) {
			t.Errorf("Get(%s) = %v, want ErrCorrupt", id, err)
		}
	}
	var good, corrupt []string
	for e, err := range s.All(ctx) {
		switch {
		case errors.Is(err, sessionstore.ErrCorrupt):
			corrupt = append(corrupt, e.ID)
		case err != nil:
			t.Fatal(err)
		default:
			good = append(good, e.ID)
		}
	}
	slices.Sort(corrupt)
	if !slices.Equal(good, []string{"d"}) || !slices.Equal(corrupt, []string{"a", "b", "c"}) {
		t.Fatalf("All: good %v, corrupt %v", good, corrupt)
	}
	if v, err := s.Get(ctx, "d"); err != nil || v.User != "d" {
		t.Fatalf("the untouched session: %+v, %v", v, err)
	}
}
