package tier_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/seal"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

func TestMongoDeadlinesConformance(t *testing.T) {
	_, db := fakeDB(t)
	tiertest.RunDeadlines(t, func(t *testing.T) tiertest.DeadlineAuthority {
		return newMongo(t, freshColl(db), nil)
	})
}

func TestMongoOwnersConformance(t *testing.T) {
	_, db := fakeDB(t)
	tiertest.RunOwners(t, func(t *testing.T) tiertest.OwnerAuthority {
		return newMongo(t, freshColl(db), &tier.MongoOptions{Owners: true})
	})
}

func TestMongoEncryptedConformance(t *testing.T) {
	_, db := fakeDB(t)
	ring := testRing(t, "k1")
	tiertest.Run(t, func(t *testing.T) engine.Authority {
		return newMongo(t, freshColl(db), &tier.MongoOptions{Seal: ring})
	})
}

// testRing returns a ring of the keys named ids, the first one first;
// a key's secret depends on its id only.
func testRing(t *testing.T, ids ...string) *seal.Ring {
	t.Helper()
	var keys []seal.Key
	for _, id := range ids {
		secret := sha256.Sum256([]byte(id))
		keys = append(keys, seal.Key{ID: id, Secret: secret[:]})
	}
	r, err := seal.NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rawDoc(t *testing.T, coll *mongo.Collection, id string) bson.Raw {
	t.Helper()
	raw, err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatalf("document %q: %v", id, err)
	}
	return raw
}

// Without Owners the document has no owner field; with it, the owner, or
// null for no one.
func TestMongoOwnerField(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, owners := range []bool{false, true} {
		coll := freshColl(db)
		m := newMongo(t, coll, &tier.MongoOptions{Owners: owners})
		for id, owner := range map[string]string{"a": "ada", "n": ""} {
			if _, err := m.Set(ctx, tier.Record{ID: id, Payload: []byte("v"), Expires: exp, Owner: owner}); err != nil {
				t.Fatal(err)
			}
		}
		a, n := rawDoc(t, coll, "a").Lookup("owner"), rawDoc(t, coll, "n").Lookup("owner")
		switch {
		case !owners && (a.Type != 0 || n.Type != 0):
			t.Errorf("without Owners: owner fields %v and %v", a, n)
		case owners && (a.StringValue() != "ada" || n.Type != bson.TypeNull):
			t.Errorf("with Owners: owner fields %v and %v, want \"ada\" and null", a, n)
		}
	}
}

// A Set that knows the stored deadline takes one command; one that
// guesses wrong reads it and writes again.
func TestMongoSetWithinCommands(t *testing.T) {
	srv, db := fakeDB(t)
	ctx := context.Background()
	m := newMongo(t, freshColl(db), nil)
	now := time.Now().Truncate(time.Millisecond)
	rec := tier.Record{ID: "a", Payload: []byte("v"), Expires: now.Add(time.Hour), Deadline: now.Add(time.Hour)}
	count := func(f func()) (updates, finds int) {
		before := srv.Commands()
		f()
		after := srv.Commands()[len(before):]
		return count(after, "update"), count(after, "find")
	}
	if u, f := count(func() { mustSetWithin(t, m, rec, time.Time{}, now) }); u != 1 || f != 0 {
		t.Errorf("a new session: %d updates, %d finds; want 1, 0", u, f)
	}
	if u, f := count(func() { mustSetWithin(t, m, rec, rec.Deadline, now) }); u != 1 || f != 0 {
		t.Errorf("a known deadline: %d updates, %d finds; want 1, 0", u, f)
	}
	if u, f := count(func() { mustSetWithin(t, m, rec, time.Time{}, now) }); u != 2 || f != 1 {
		t.Errorf("an unknown deadline: %d updates, %d finds; want 2, 1", u, f)
	}
	if _, err := m.SetWithin(ctx, tier.Record{ID: "b", Expires: now.Add(time.Hour)}, time.Time{}, now); err == nil {
		t.Error("SetWithin accepted a record without a deadline")
	}
	coll := freshColl(db)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "expires", Value: bson.NewDateTimeFromTime(now.Add(time.Hour))}, {Key: "deadline", Value: "soon"}}); err != nil {
		t.Fatal(err)
	}
	bad := newMongo(t, coll, nil)
	if _, err := bad.SetWithin(ctx, rec, time.Time{}, now); !errors.Is(err, tier.ErrCorrupt) {
		t.Errorf("SetWithin over a deadline that is not a date: %v, want ErrCorrupt", err)
	}
	if _, err := bad.Get(ctx, "a", now); !errors.Is(err, tier.ErrCorrupt) || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Get of a deadline that is not a date: %v", err)
	}
}

func mustSetWithin(t *testing.T, m *tier.Mongo, rec tier.Record, known, now time.Time) {
	t.Helper()
	if _, err := m.SetWithin(context.Background(), rec, known, now); err != nil {
		t.Fatal(err)
	}
}

// Encrypted sessions are binary ciphertext bound to their _id: the
// plaintext is not in the document, and an altered, moved or truncated
// payload reads as corrupt.
func TestMongoEncryption(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	if _, err := tier.NewMongo(freshColl(db), &tier.MongoOptions{Format: codec.Document, Seal: testRing(t, "k")}); err == nil {
		t.Error("an encrypted tier accepted the document format")
	}
	coll := freshColl(db)
	m := newMongo(t, coll, &tier.MongoOptions{Seal: testRing(t, "k")})
	now := time.Now()
	plain := []byte("user=ada;cart=apple")
	for _, id := range []string{"a", "b"} {
		if _, err := m.Set(ctx, tier.Record{ID: id, Payload: plain, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	_, stored, ok := rawDoc(t, coll, "a").Lookup("session").BinaryOK()
	if !ok || bytes.Contains(stored, []byte("ada")) || !bytes.HasPrefix(stored, []byte("\x01\x01k")) {
		t.Fatalf("stored session % x is not a sealed payload", stored)
	}
	if got, err := m.Get(ctx, "a", now); err != nil || !bytes.Equal(got.Payload, plain) {
		t.Fatalf("Get = %q, %v", got.Payload, err)
	}
	setSession := func(id string, p []byte) {
		t.Helper()
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "session", Value: bson.Binary{Data: p}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	flipped := bytes.Clone(stored)
	flipped[len(flipped)/2] ^= 0x10
	for name, c := range map[string]struct {
		id      string
		payload []byte
	}{
		"a flipped bit":               {"a", flipped},
		"a payload moved to b":        {"b", stored},
		"a truncated payload":         {"a", stored[:len(stored)-1]},
		"a plaintext payload":         {"a", plain},
		"an empty payload":            {"a", []byte{}},
		"a payload under another key": {"a", testRing(t, "other").Seal(plain, "a")},
	} {
		setSession(c.id, c.payload)
		if _, err := m.Get(ctx, c.id, now); !errors.Is(err, tier.ErrCorrupt) {
			t.Errorf("%s: Get error %v, want ErrCorrupt", name, err)
		}
		var corrupt int
		for _, err := range m.All(ctx, now) {
			if errors.Is(err, tier.ErrCorrupt) {
				corrupt++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if corrupt != 1 {
			t.Errorf("%s: All yielded %d corrupt sessions, want 1", name, corrupt)
		}
		m.Set(ctx, tier.Record{ID: "a", Payload: plain, Expires: now.Add(time.Hour)})
		m.Set(ctx, tier.Record{ID: "b", Payload: plain, Expires: now.Add(time.Hour)})
	}
}

// Reseal rewrites what an older key sealed, paced by wait, keeps the
// version, skips a session written meanwhile, and counts what does not
// decrypt.
func TestMongoReseal(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	coll := freshColl(db)
	now := time.Now()
	old := newMongo(t, coll, &tier.MongoOptions{Seal: testRing(t, "old")})
	const n = 250 // more than one page
	for i := range n {
		if err := old.Insert(ctx, tier.Record{ID: sessionID(i), Payload: tiertest.Payload(i), Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Reseal(ctx, now, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Reseal with nothing to do: %v", err)
	}
	plainTier := newMongo(t, coll, nil)
	if _, err := plainTier.Reseal(ctx, now, nil); err == nil {
		t.Error("Reseal without a ring did not fail")
	}
	// New key first, old one kept; one session is garbage.
	ring := testRing(t, "new", "old")
	m := newMongo(t, coll, &tier.MongoOptions{Seal: ring})
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: sessionID(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "session", Value: bson.Binary{Data: []byte("junk")}}}}}); err != nil {
		t.Fatal(err)
	}
	waits := 0
	resealed, err := m.Reseal(ctx, now, func(context.Context) error {
		waits++
		if waits == 1 { // a save between the read and the write of the first
			if _, err := m.Set(ctx, tier.Record{ID: sessionID(0), Payload: []byte("saved"), Expires: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, tier.ErrCorrupt) || !strings.Contains(err.Error(), "1 sessions") {
		t.Fatalf("Reseal error = %v, want ErrCorrupt counting 1", err)
	}
	if waits != n-1 || resealed != n-2 {
		t.Fatalf("Reseal waited %d times and rewrote %d, want %d and %d", waits, resealed, n-1, n-2)
	}
	onlyNew := newMongo(t, coll, &tier.MongoOptions{Seal: testRing(t, "new")})
	for i := range n {
		rec, err := onlyNew.Get(ctx, sessionID(i), now)
		switch {
		case i == 7:
			if !errors.Is(err, tier.ErrCorrupt) {
				t.Errorf("the junk session: %v", err)
			}
		case i == 0:
			if err != nil || string(rec.Payload) != "saved" {
				t.Errorf("the session saved meanwhile: %q, %v", rec.Payload, err)
			}
		case err != nil || !bytes.Equal(rec.Payload, tiertest.Payload(i)) || rec.Rev != 1:
			t.Fatalf("session %d after Reseal without the old key: %+v, %v", i, rec, err)
		}
	}
	stop := errors.New("stop")
	newest := newMongo(t, coll, &tier.MongoOptions{Seal: testRing(t, "newest", "new")})
	if _, err := newest.Reseal(ctx, now, func(context.Context) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Reseal did not end with wait's error: %v", err)
	}
}

// sessionID returns the i-th of ids that sort as their numbers do.
func sessionID(i int) string { return fmt.Sprintf("s%04d", i) }
