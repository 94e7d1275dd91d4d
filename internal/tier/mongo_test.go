package tier_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
)

// fakeDB starts a fake server and returns it with a database on it.
func fakeDB(t *testing.T) (*mongofake.Server, *mongo.Database) {
	t.Helper()
	srv := mongofake.Start(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return srv, client.Database("sessionstore")
}

var collSeq atomic.Int64

// freshColl returns a collection no other test uses.
func freshColl(db *mongo.Database) *mongo.Collection {
	return db.Collection(fmt.Sprintf("sessions%d", collSeq.Add(1)))
}

func newMongo(t *testing.T, coll *mongo.Collection, opts *tier.MongoOptions) *tier.Mongo {
	t.Helper()
	m, err := tier.NewMongo(coll, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMongoConformance(t *testing.T) {
	_, db := fakeDB(t)
	for _, f := range []codec.Format{codec.Binary, codec.Document, codec.String} {
		t.Run(f.String(), func(t *testing.T) {
			tiertest.Run(t, func(t *testing.T) engine.Authority {
				return newMongo(t, freshColl(db), &tier.MongoOptions{Format: f})
			})
		})
	}
}

func TestNewMongo(t *testing.T) {
	_, db := fakeDB(t)
	if _, err := tier.NewMongo(nil, nil); err == nil || !strings.HasPrefix(err.Error(), "sessionstore: ") {
		t.Fatalf("NewMongo(nil) error = %v", err)
	}
	if _, err := tier.NewMongo(freshColl(db), &tier.MongoOptions{Format: codec.Format(99)}); err == nil || !strings.Contains(err.Error(), "unknown payload format") {
		t.Fatalf("NewMongo with format 99: error = %v", err)
	}
	// Whatever the collection's read preference, sessions are read from
	// the primary.
	coll := freshColl(db).Clone(options.Collection().SetReadPreference(readpref.SecondaryPreferred()))
	m := newMongo(t, coll, nil)
	if c := m.Collection(); c.Name() != coll.Name() || c.Database().Name() != coll.Database().Name() {
		t.Fatalf("Collection() is %s.%s, not the collection given", c.Database().Name(), c.Name())
	}

	// A touch write concern is used by TouchMany only.
	m = newMongo(t, coll, &tier.MongoOptions{TouchWriteConcern: writeconcern.Majority(), TouchAfter: -time.Minute})
	ctx := context.Background()
	now := time.Now()
	if _, err := m.Set(ctx, tier.Record{ID: "a", Payload: []byte("x"), Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := m.TouchMany(ctx, []string{"a"}, now.Add(2*time.Hour), now); err != nil || n != 1 {
		t.Fatalf("TouchMany = %d, %v; want 1", n, err)
	}
	if n, err := m.TouchMany(ctx, nil, now.Add(2*time.Hour), now); err != nil || n != 0 {
		t.Fatalf("TouchMany(nil) = %d, %v", n, err)
	}
	if ttls, err := m.TTLs(ctx, nil, now); err != nil || len(ttls) != 0 {
		t.Fatalf("TTLs(nil) = %v, %v", ttls, err)
	}
}

// Documents the tier cannot read yield ErrCorrupt, saying what is wrong.
func TestMongoCorrupt(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now()
	live := bson.NewDateTimeFromTime(now.Add(time.Hour))
	bin := bson.Binary{Data: []byte("payload")}
	for _, c := range []struct {
		name   string
		format codec.Format
		doc    bson.D
		want   string
	}{
		{"expires missing", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "session", Value: bin}}, "expires is not a date"},
		{"expires a string", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: "tomorrow"}, {Key: "session", Value: bin}}, "expires is not a date"},
		{"rev a string", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}, {Key: "session", Value: bin}, {Key: "rev", Value: "1"}}, "rev is not a version number"},
		{"rev negative", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}, {Key: "session", Value: bin}, {Key: "rev", Value: int64(-1)}}, "rev is not a version number"},
		{"no session", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}}, "no session field"},
		{"binary tier, string session", codec.Binary, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}, {Key: "session", Value: "text"}}, "session field is BSON string"},
		{"document tier, binary session", codec.Document, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}, {Key: "session", Value: bin}}, "session field is BSON binary"},
		{"string tier, document session", codec.String, bson.D{{Key: "_id", Value: "x"}, {Key: "expires", Value: live}, {Key: "session", Value: bson.D{{Key: "v", Value: 1}}}}, "session field is BSON embedded document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			coll := freshColl(db)
			if _, err := coll.InsertOne(ctx, c.doc); err != nil {
				t.Fatal(err)
			}
			m := newMongo(t, coll, &tier.MongoOptions{Format: c.format})
			_, err := m.Get(ctx, "x", now)
			if !errors.Is(err, tier.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Get error = %v, want ErrCorrupt saying %q", err, c.want)
			}
		})
	}

	t.Run("All goes on after a corrupt document", func(t *testing.T) {
		coll := freshColl(db)
		docs := []any{
			bson.D{{Key: "_id", Value: int32(7)}, {Key: "expires", Value: live}, {Key: "session", Value: bin}},
			bson.D{{Key: "_id", Value: "bad"}, {Key: "expires", Value: live}},
			bson.D{{Key: "_id", Value: "good"}, {Key: "expires", Value: live}, {Key: "session", Value: bin}, {Key: "ttl", Value: int64(-5)}},
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		m := newMongo(t, coll, nil)
		var ids, corrupt []string
		for rec, err := range m.All(ctx, now) {
			switch {
			case errors.Is(err, tier.ErrCorrupt):
				corrupt = append(corrupt, fmt.Sprintf("%q: %v", rec.ID, err))
			case err != nil:
				t.Fatal(err)
			default:
				ids = append(ids, rec.ID)
				if rec.TTL != 0 || rec.Rev != 0 || string(rec.Payload) != "payload" {
					t.Fatalf("good record = %+v", rec)
				}
			}
		}
		if len(ids) != 1 || ids[0] != "good" || len(corrupt) != 2 ||
			!strings.Contains(corrupt[0], `"": `) || !strings.Contains(corrupt[0], "_id is not a string") ||
			!strings.HasPrefix(corrupt[1], `"bad": `) {
			t.Fatalf("All yielded %v and corrupt %v", ids, corrupt)
		}
		// A document with a non-string _id has no lifetime to report.
		ttls, err := m.TTLs(ctx, []string{"good", "bad", "missing"}, now)
		if err != nil || len(ttls) != 2 || ttls["good"] != 0 {
			t.Fatalf("TTLs = %v, %v", ttls, err)
		}
	})
}

// A document payload that is not BSON is refused before any command.
func TestMongoDocumentPayloadNotBSON(t *testing.T) {
	srv, db := fakeDB(t)
	m := newMongo(t, freshColl(db), &tier.MongoOptions{Format: codec.Document})
	ctx := context.Background()
	now := time.Now()
	rec := tier.Record{ID: "a", Payload: []byte("not bson"), Expires: now.Add(time.Hour)}
	before := len(srv.Commands())
	if _, err := m.Set(ctx, rec); err == nil || !strings.Contains(err.Error(), "not a BSON document") {
		t.Fatalf("Set error = %v", err)
	}
	if err := m.Insert(ctx, rec); err == nil || !strings.Contains(err.Error(), "not a BSON document") {
		t.Fatalf("Insert error = %v", err)
	}
	if _, err := m.Replace(ctx, rec, rec); err == nil || !strings.Contains(err.Error(), "not a BSON document") {
		t.Fatalf("Replace error = %v", err)
	}
	for _, c := range srv.Commands()[before:] {
		switch c {
		case "isMaster", "hello", "ping", "endSessions": // the driver's own, on its schedule
		default:
			t.Fatalf("command sent: %v", c)
		}
	}
}

// Server errors are wrapped with what the tier was doing and stay
// reachable with errors.As.
func TestMongoServerErrors(t *testing.T) {
	srv, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now()
	m := newMongo(t, freshColl(db), nil)
	rec := tier.Record{ID: "a", Payload: []byte("x"), Expires: now.Add(time.Hour)}
	for _, c := range []struct {
		cmds []string
		want string
		op   func() error
	}{
		{[]string{"find"}, "sessionstore: mongodb find: ", func() error { _, err := m.Get(ctx, "a", now); return err }},
		{[]string{"find"}, "sessionstore: mongodb find lifetimes: ", func() error { _, err := m.TTLs(ctx, []string{"a"}, now); return err }},
		{[]string{"find"}, "sessionstore: mongodb find: ", func() error {
			for _, err := range m.All(ctx, now) {
				return err
			}
			return nil
		}},
		{upserts, "sessionstore: mongodb upsert: ", func() error { _, err := m.Set(ctx, rec); return err }},
		{[]string{"insert"}, "sessionstore: mongodb insert: ", func() error { return m.Insert(ctx, rec) }},
		{[]string{"update"}, "sessionstore: mongodb conditional update: ", func() error { _, err := m.Replace(ctx, rec, rec); return err }},
		{[]string{"update"}, "sessionstore: mongodb touch 1 sessions: ", func() error {
			_, err := m.TouchMany(ctx, []string{"a"}, now.Add(2*time.Hour), now)
			return err
		}},
		{[]string{"delete"}, "sessionstore: mongodb delete: ", func() error { return m.Delete(ctx, "a") }},
		{[]string{"delete"}, "sessionstore: mongodb clear: ", func() error { return m.Clear(ctx) }},
		{[]string{"delete"}, "sessionstore: mongodb reap: ", func() error { _, err := m.Reap(ctx, now); return err }},
		{[]string{"aggregate"}, "sessionstore: mongodb count: ", func() error { _, err := m.Len(ctx, now); return err }},
	} {
		t.Run(strings.TrimSuffix(c.want, ": "), func(t *testing.T) {
			for _, cmd := range c.cmds {
				srv.Fail(cmd, 8000)
				defer srv.Fail(cmd, 0)
			}
			err := c.op()
			var ce mongo.CommandError
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.As(err, &ce) || ce.Code != 8000 {
				t.Fatalf("error = %v, want %q wrapping the server's error 8000", err, c.want)
			}
		})
	}
}

// A failing getMore ends All and TTLs with an error.
func TestMongoCursorErrors(t *testing.T) {
	srv, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now()
	m := newMongo(t, freshColl(db), nil)
	var ids []string
	for i := range 150 { // more than a first batch of 101
		id := fmt.Sprintf("s%03d", i)
		ids = append(ids, id)
		if _, err := m.Set(ctx, tier.Record{ID: id, Payload: []byte("x"), Expires: now.Add(time.Hour), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, err := range m.All(ctx, now) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if ttls, err := m.TTLs(ctx, ids, now); n != 150 || err != nil || len(ttls) != 150 || ttls["s149"] != time.Hour {
		t.Fatalf("All yielded %d; TTLs = %d entries, %v", n, len(ttls), err)
	}
	srv.Fail("getMore", 8000)
	var last error
	n = 0
	for _, err := range m.All(ctx, now) {
		n++
		last = err
	}
	if n != 102 || last == nil || !strings.HasPrefix(last.Error(), "sessionstore: mongodb cursor: ") {
		t.Fatalf("All yielded %d, last error %v", n, last)
	}
	if _, err := m.TTLs(ctx, ids, now); err == nil || !strings.HasPrefix(err.Error(), "sessionstore: mongodb find lifetimes: ") {
		t.Fatalf("TTLs error = %v", err)
	}
	// Stopping early closes the cursor.
	srv.Fail("getMore", 0)
	for range m.All(ctx, now) {
		break
	}
	cmds := srv.Commands()
	if cmds[len(cmds)-1] != "killCursors" {
		t.Fatalf("last command %q, want killCursors", cmds[len(cmds)-1])
	}
}

// Duplicate key errors keep the server's message, which quotes the
// session id, out of the error text.
func TestMongoDuplicateKeyRedacted(t *testing.T) {
	srv, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now()
	m := newMongo(t, freshColl(db), nil)
	rec := tier.Record{ID: "secret-id", Payload: []byte("x"), Expires: now.Add(time.Hour)}
	if err := m.Insert(ctx, rec); err != nil {
		t.Fatal(err)
	}
	err := m.Insert(ctx, rec)
	if !errors.Is(err, tier.ErrExists) || strings.Contains(err.Error(), "secret-id") || !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second Insert error = %v", err)
	}

	// An upsert that loses the insert race is retried once; a second
	// duplicate key error is returned, redacted.
	for _, cmd := range upserts {
		srv.Fail(cmd, 11000)
	}
	before := count(srv.Commands(), upserts...)
	_, err = m.Set(ctx, rec)
	if err == nil || strings.Contains(err.Error(), "secret-id") || !mongo.IsDuplicateKeyError(err) ||
		!strings.HasPrefix(err.Error(), "sessionstore: mongodb upsert: duplicate key error") {
		t.Fatalf("Set error = %v", err)
	}
	if n := count(srv.Commands(), upserts...) - before; n != 2 {
		t.Fatalf("Set sent %d upserts, want 2", n)
	}
}

// upserts are the commands Set may upsert with.
var upserts = []string{"update", "findAndModify"}

// count returns how many of cmds are one of names.
func count(cmds []string, names ...string) int {
	n := 0
	for _, c := range cmds {
		if slices.Contains(names, c) {
			n++
		}
	}
	return n
}

// TouchAfter leaves documents whose expiry would move by less.
func TestMongoTouchAfter(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	m := newMongo(t, freshColl(db), &tier.MongoOptions{TouchAfter: 10 * time.Minute})
	exp := now.Add(time.Hour)
	if _, err := m.Set(ctx, tier.Record{ID: "a", Payload: []byte("x"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if n, err := m.TouchMany(ctx, []string{"a"}, exp.Add(5*time.Minute), now); err != nil || n != 0 {
		t.Fatalf("touch by 5m = %d, %v; want 0", n, err)
	}
	if n, err := m.TouchMany(ctx, []string{"a", "b"}, exp.Add(15*time.Minute), now); err != nil || n != 1 {
		t.Fatalf("touch by 15m = %d, %v; want 1", n, err)
	}
	got, err := m.Get(ctx, "a", now)
	if err != nil || !got.Expires.Equal(exp.Add(15*time.Minute)) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

// Prefix scopes Len, All and Clear; Reap works on the whole collection.
func TestMongoPrefix(t *testing.T) {
	_, db := fakeDB(t)
	ctx := context.Background()
	now := time.Now()
	coll := freshColl(db)
	scoped := newMongo(t, coll, &tier.MongoOptions{Prefix: "a.b|"})
	all := newMongo(t, coll, nil)
	for _, id := range []string{"a.b|1", "a.b|2", "aXb|3", "other"} {
		if _, err := all.Set(ctx, tier.Record{ID: id, Payload: []byte("x"), Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := all.Set(ctx, tier.Record{ID: "a.b|old", Payload: []byte("x"), Expires: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := scoped.Len(ctx, now); err != nil || n != 2 {
		t.Fatalf("scoped Len = %d, %v; want 2", n, err)
	}
	var ids []string
	for rec, err := range scoped.All(ctx, now) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if fmt.Sprint(ids) != "[a.b|1 a.b|2]" {
		t.Fatalf("scoped All = %v", ids)
	}
	if err := scoped.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := all.Len(ctx, now); err != nil || n != 2 {
		t.Fatalf("Len after a scoped Clear = %d, %v; want 2", n, err)
	}
	if _, err := all.Set(ctx, tier.Record{ID: "other-old", Payload: []byte("x"), Expires: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := scoped.Reap(ctx, now); err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v; want 1 (outside the prefix)", n, err)
	}
}

// A slow server and a context deadline give the context's error.
func TestMongoTimeout(t *testing.T) {
	srv, db := fakeDB(t)
	m := newMongo(t, freshColl(db), nil)
	srv.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.Get(ctx, "a", time.Now())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "sessionstore: mongodb find: ") {
		t.Fatalf("Get error = %v, want a deadline", err)
	}
	srv.SetDelay(0)
	if _, err := m.Get(context.Background(), "a", time.Now()); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get after the delay = %v", err)
	}
}
