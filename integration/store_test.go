package integration_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
	"github.com/sessionstore/sessionstore/ttl"
)

type profile struct {
	User  string
	Roles []string
	Prefs map[string]string
	Seen  int
}

func TestMongoTierConformance(t *testing.T) {
	for _, f := range []codec.Format{codec.Binary, codec.Document, codec.String} {
		t.Run(f.String(), func(t *testing.T) {
			tiertest.Run(t, func(t *testing.T) engine.Authority {
				m, err := tier.NewMongo(mongotest.Collection(t), &tier.MongoOptions{Format: f})
				if err != nil {
					t.Fatal(err)
				}
				return m
			})
		})
	}
}

// 1000 goroutines Getting one cold id make exactly one find on the server.
func TestColdGetsCollapseIntoOneFind(t *testing.T) {
	coll := mongotest.Collection(t)
	writer := newStore[profile](t, coll, nil)
	if err := writer.Set(bg(t), "cold", profile{User: "ada"}); err != nil {
		t.Fatal(err)
	}
	mcoll, cmds := mongotest.Monitored(t, coll)
	reader := newStore[profile](t, mcoll, nil)

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, 1000)
	)
	for range 1000 {
		wg.Go(func() {
			<-start
			v, err := reader.Get(bg(t), "cold")
			if err == nil && v.User != "ada" {
				err = fmt.Errorf("got %+v", v)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := cmds.Count("find"); n != 1 {
		t.Fatalf("1000 cold Gets sent %d find commands, want 1", n)
	}
}

// An expired document is never returned, though no TTL index exists and
// the document is still on the server.
func TestExpiredNeverReturned(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	opts := &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: time.Hour, Clock: clk}
	s := newStore(t, coll, opts)
	ctx := bg(t)
	if err := s.Set(ctx, "old", profile{User: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "new", profile{User: "new"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Minute)
	if err := s.Set(ctx, "new", profile{User: "new"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * time.Minute) // "old" expired a minute ago

	if _, err := s.Get(ctx, "old"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get of an expired session (in memory) = %v, want ErrNotFound", err)
	}
	cold := newStore(t, coll, opts)
	if _, err := cold.Get(ctx, "old"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get of an expired session (from the server) = %v, want ErrNotFound", err)
	}
	if _, ok := mongotest.RawDoc(t, coll, "old"); !ok {
		t.Fatal("the expired document is gone: the test proves nothing")
	}
	if v, err := cold.Get(ctx, "new"); err != nil || v.User != "new" {
		t.Fatalf("Get of a live session = %+v, %v", v, err)
	}
	if n, err := s.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v; want 1", n, err)
	}
	var ids []string
	for e, err := range s.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"new"}) {
		t.Fatalf("All yielded %v, want [new]", ids)
	}
}

// An entry that expired in memory is checked with the server, where
// another instance may have extended it.
func TestExpiredInMemoryIsConfirmedWithTheServer(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	opts := &sessionstore.Options[profile]{TTLIndex: ttl.Off, TTL: time.Hour, Clock: clk}
	a, b := newStore(t, coll, opts), newStore(t, coll, opts)
	ctx := bg(t)
	if err := a.Set(ctx, "s", profile{User: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	clk.Add(50 * time.Minute)
	if err := b.Set(ctx, "s", profile{User: "v2"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Minute) // a's copy has expired, b's write has not
	v, err := a.Get(ctx, "s")
	if err != nil || v.User != "v2" {
		t.Fatalf("Get = %+v, %v; want v2 from the server", v, err)
	}
}

func TestSecondStoreSeesSet(t *testing.T) {
	coll := mongotest.Collection(t)
	a, b := newStore[profile](t, coll, nil), newStore[profile](t, coll, nil)
	ctx := bg(t)
	want := profile{User: "grace", Roles: []string{"admin"}, Prefs: map[string]string{"theme": "dark"}, Seen: 3}
	if err := a.Set(ctx, "shared", want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if got.User != want.User || !slices.Equal(got.Roles, want.Roles) || !maps.Equal(got.Prefs, want.Prefs) || got.Seen != 3 {
		t.Fatalf("second store read %+v, want %+v", got, want)
	}
	raw, _ := mongotest.RawDoc(t, coll, "shared")
	if _, _, ok := raw.Lookup("session").BinaryOK(); !ok {
		t.Fatalf("msgpack session stored as %s, want binary", raw.Lookup("session").Type)
	}
}

// expressSession is the shape express-session stores write.
type expressSession struct {
	Cookie struct {
		OriginalMaxAge int64     `bson:"originalMaxAge"`
		Expires        time.Time `bson:"expires"`
		HTTPOnly       bool      `bson:"httpOnly"`
		Path           string    `bson:"path"`
	} `bson:"cookie"`
	Something string `bson:"something"`
}

func TestReadsAndWritesTheExpressSessionShape(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	exp := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	_, err := coll.InsertOne(ctx, bson.D{
		{Key: "_id", Value: "express-sid"},
		{Key: "expires", Value: exp},
		{Key: "session", Value: bson.D{
			{Key: "cookie", Value: bson.D{
				{Key: "originalMaxAge", Value: int64(86400000)},
				{Key: "expires", Value: exp},
				{Key: "httpOnly", Value: true},
				{Key: "path", Value: "/"},
			}},
			{Key: "something", Value: "abc123"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, coll, &sessionstore.Options[expressSession]{TTLIndex: ttl.Off, Codec: codec.BSON[expressSession]{}})
	got, err := s.Get(ctx, "express-sid")
	if err != nil {
		t.Fatal(err)
	}
	if got.Something != "abc123" || got.Cookie.Path != "/" || !got.Cookie.HTTPOnly ||
		got.Cookie.OriginalMaxAge != 86400000 || !got.Cookie.Expires.Equal(exp) {
		t.Fatalf("read %+v from an express-session document", got)
	}

	// The reverse: what Go writes, an Express app reads.
	got.Something = "from-go"
	if err := s.Set(ctx, "go-sid", got); err != nil {
		t.Fatal(err)
	}
	raw, _ := mongotest.RawDoc(t, coll, "go-sid")
	sess, ok := raw.Lookup("session").DocumentOK()
	if !ok {
		t.Fatalf("session stored as %s, want an embedded document", raw.Lookup("session").Type)
	}
	if v := sess.Lookup("something").StringValue(); v != "from-go" {
		t.Fatalf("session.something = %q", v)
	}
	if v := sess.Lookup("cookie", "path").StringValue(); v != "/" {
		t.Fatalf("session.cookie.path = %q", v)
	}
	if _, ok := raw.Lookup("expires").DateTimeOK(); !ok {
		t.Fatalf("expires stored as %s, want a date", raw.Lookup("expires").Type)
	}
}

func TestJSONCodecStoresAString(t *testing.T) {
	coll := mongotest.Collection(t)
	s := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Codec: codec.JSON[profile]{}})
	if err := s.Set(bg(t), "j", profile{User: "json"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := mongotest.RawDoc(t, coll, "j")
	str, ok := raw.Lookup("session").StringValueOK()
	if !ok || !strings.Contains(str, `"json"`) {
		t.Fatalf("session = %v, want a JSON string", raw.Lookup("session"))
	}
	cold := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Codec: codec.JSON[profile]{}})
	if v, err := cold.Get(bg(t), "j"); err != nil || v.User != "json" {
		t.Fatalf("Get = %+v, %v", v, err)
	}
}

func TestMutatingAGetResultDoesNotLeak(t *testing.T) {
	s := newStore[profile](t, mongotest.Collection(t), nil)
	ctx := bg(t)
	if err := s.Set(ctx, "m", profile{User: "u", Roles: []string{"a"}, Prefs: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first from the server, the second from memory
		v, err := s.Get(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		if v.User != "u" || v.Roles[0] != "a" || v.Prefs["k"] != "v" || len(v.Prefs) != 1 {
			t.Fatalf("Get = %+v: an earlier caller's change leaked", v)
		}
		v.User, v.Roles[0], v.Prefs["k"], v.Prefs["x"] = "changed", "changed", "changed", "added"
	}
}

func TestCorruptDocumentIsReportedAndNotCached(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	s := newStore[profile](t, coll, nil)
	if err := s.Set(ctx, "good", profile{User: "good"}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for id, session := range map[string]any{
		"garbage":   bson.Binary{Data: []byte{0xc1, 0xff, 0x00}},
		"wrongtype": "a string where binary belongs",
	} {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "expires", Value: exp}, {Key: "session", Value: session}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, sessionstore.ErrCorrupt) {
			t.Fatalf("Get(%s) = %v, want ErrCorrupt", id, err)
		}
	}
	// Repair one by hand: the store must read the server again.
	if err := newStore[profile](t, coll, nil).Set(ctx, "garbage", profile{User: "fixed"}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "garbage"); err != nil || v.User != "fixed" {
		t.Fatalf("after repair Get = %+v, %v: the corrupt document was cached", v, err)
	}
	if v, err := s.Get(ctx, "good"); err != nil || v.User != "good" {
		t.Fatalf("a healthy session was harmed: %+v, %v", v, err)
	}
	corrupt := 0
	for e, err := range s.All(ctx) {
		if errors.Is(err, sessionstore.ErrCorrupt) {
			corrupt++
			if e.ID != "wrongtype" {
				t.Errorf("corrupt entry has ID %q", e.ID)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if corrupt != 1 {
		t.Fatalf("All reported %d corrupt sessions, want 1", corrupt)
	}
}

func TestBadInputLeavesSessionsIntact(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	s := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, MaxPayload: 1 << 10})
	if err := s.Set(ctx, "keep", profile{User: "keep"}); err != nil {
		t.Fatal(err)
	}
	before, _ := mongotest.RawDoc(t, coll, "keep")
	if err := s.Set(ctx, "keep", profile{User: strings.Repeat("x", 2<<10)}); !errors.Is(err, sessionstore.ErrTooLarge) {
		t.Fatalf("oversized Set = %v, want ErrTooLarge", err)
	}
	if err := s.Set(ctx, "", profile{}); !errors.Is(err, sessionstore.ErrInvalidID) {
		t.Fatalf("empty id = %v", err)
	}
	if err := s.Set(ctx, strings.Repeat("k", 600), profile{}); !errors.Is(err, sessionstore.ErrInvalidID) {
		t.Fatalf("long id = %v", err)
	}
	cancelled, cancel := contextCancelled()
	defer cancel()
	if err := s.Set(cancelled, "keep", profile{User: "cancelled"}); err == nil {
		t.Fatal("Set with a cancelled context succeeded")
	}
	after, _ := mongotest.RawDoc(t, coll, "keep")
	if !slices.Equal(before, after) {
		t.Fatal("rejected writes changed the stored session")
	}
	if v, err := s.Get(ctx, "keep"); err != nil || v.User != "keep" {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	if n, err := s.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
}

// A load that read old data must not put it back into memory after a Set
// or Delete that finished while it was in flight.
func TestLoadRacingAWriteDoesNotCacheOldData(t *testing.T) {
	for _, write := range []string{"set", "delete"} {
		t.Run(write, func(t *testing.T) {
			coll := mongotest.Collection(t)
			ctx := bg(t)
			mcoll, cmds := mongotest.Monitored(t, coll)
			s := newStore[profile](t, mcoll, nil)
			if err := newStore[profile](t, coll, nil).Set(ctx, "r", profile{User: "old"}); err != nil {
				t.Fatal(err)
			}
			found, release := cmds.HoldFirst("find")
			got := make(chan profile, 1)
			go func() {
				v, _ := s.Get(ctx, "r")
				got <- v
			}()
			<-found // the load has read "old" and is held; later commands are not
			var err error
			if write == "set" {
				err = s.Set(ctx, "r", profile{User: "new"})
			} else {
				err = s.Delete(ctx, "r")
			}
			if err != nil {
				t.Fatal(err)
			}
			close(release)
			if v := <-got; v.User != "old" {
				t.Fatalf("the held load returned %+v", v)
			}
			v, err := s.Get(ctx, "r")
			switch write {
			case "set":
				if err != nil || v.User != "new" {
					t.Fatalf("Get after Set = %+v, %v; the stale load was cached", v, err)
				}
			case "delete":
				if !errors.Is(err, sessionstore.ErrNotFound) {
					t.Fatalf("Get after Delete = %+v, %v; the stale load was cached", v, err)
				}
			}
		})
	}
}

func TestDeleteLenClearWithPrefix(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	app := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Prefix: "app:"})
	other := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Off, Prefix: "other:"})
	for i := range 3 {
		if err := app.Set(ctx, fmt.Sprint(i), profile{Seen: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Set(ctx, "0", profile{User: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := mongotest.RawDoc(t, coll, "app:1"); !ok {
		t.Fatal("the prefix is not in the stored _id")
	}
	if err := app.Delete(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Get(ctx, "1"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if n, err := app.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2", n, err)
	}
	var ids []string
	for e, err := range app.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"0", "2"}) {
		t.Fatalf("All = %v", ids)
	}
	if err := app.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := app.Len(ctx); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
	if _, err := app.Get(ctx, "0"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Clear = %v: memory still held it", err)
	}
	if v, err := other.Get(ctx, "0"); err != nil || v.User != "other" {
		t.Fatalf("Clear of one prefix removed another's session: %v", err)
	}
}

func TestOpenUsesTheURIDatabase(t *testing.T) {
	ctx := bg(t)
	uri := mongotest.URI()
	coll := mongotest.Collection(t)
	name := coll.Name()
	s, err := sessionstore.Open(ctx, withDatabase(uri, mongotest.Database), &sessionstore.Options[profile]{Collection: name, TTLIndex: ttl.Off})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "o", profile{User: "open"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := mongotest.RawDoc(t, coll, "o"); !ok {
		t.Fatal("Open did not write to the database named in the URI")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sessionstore.Open[profile](ctx, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", nil); err == nil ||
		!strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Open of a server that is down = %v, want a clear error", err)
	}
	if _, err := sessionstore.Open[profile](ctx, "not a uri", nil); err == nil {
		t.Fatal("Open accepted a bad URI")
	}
}

// A waiter whose context ends returns at once; the shared load goes on for
// the others.
func TestCancelledWaiterDoesNotCancelTheSharedLoad(t *testing.T) {
	coll := mongotest.Collection(t)
	if err := newStore[profile](t, coll, nil).Set(bg(t), "w", profile{User: "shared"}); err != nil {
		t.Fatal(err)
	}
	mcoll, cmds := mongotest.Monitored(t, coll)
	s := newStore[profile](t, mcoll, nil)
	found, release := cmds.HoldFirst("find")

	impatient, cancel := context.WithCancel(bg(t))
	impatientErr := make(chan error, 1)
	go func() {
		_, err := s.Get(impatient, "w")
		impatientErr <- err
	}()
	<-found // the load is in flight, started by the impatient caller
	patient := make(chan profile, 1)
	go func() {
		v, _ := s.Get(bg(t), "w")
		patient <- v
	}()
	cancel()
	select {
	case err := <-impatientErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Get = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled Get waited for the shared load")
	}
	close(release)
	if v := <-patient; v.User != "shared" {
		t.Fatalf("the other waiter got %+v: the shared load was cancelled", v)
	}
	if n := cmds.Count("find"); n != 1 {
		t.Fatalf("%d find commands, want 1", n)
	}
}
