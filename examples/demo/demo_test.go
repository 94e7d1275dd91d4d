package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/examples/demo/app"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

const testSecret = "keyboard cat"

// demo is the demo's handler served over a store on a fresh collection.
type demo struct {
	coll  *mongo.Collection
	store *sessionstore.Store[app.Record]
	clock *mongotest.Clock
	srv   *httptest.Server
}

// newDemo returns the demo over a store with the options below, changed
// by each of with.
func newDemo(t *testing.T, with ...func(*sessionstore.Options[app.Record])) *demo {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	d := &demo{coll: mongotest.Collection(t), clock: mongotest.NewClock()}
	opts := &sessionstore.Options[app.Record]{
		TTL:    app.Lifetime,
		Codec:  codec.BSON[app.Record]{},
		Clock:  d.clock,
		Logger: logger,
		// Touches are written only when the test calls Flush.
		TouchInterval: time.Hour,
	}
	for _, f := range with {
		f(opts)
	}
	store, err := sessionstore.New(d.coll, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.store = store
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		if err := store.Close(ctx); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	handler, err := app.New(store, testSecret, logger, d.clock)
	if err != nil {
		t.Fatal(err)
	}
	d.srv = httptest.NewServer(handler)
	t.Cleanup(d.srv.Close)
	return d
}

// get requests / with cookie, if not nil, and checks that the answer is
// 200 OK. It returns the session cookie set by the response, or nil.
func (d *demo) get(t *testing.T, cookie *http.Cookie) *http.Cookie {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, d.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := d.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("GET / answered %s %q, want 200 OK", resp.Status, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "connect.sid" {
			return c
		}
	}
	return nil
}

// sessionID returns the session id a cookie carries.
func sessionID(t *testing.T, c *http.Cookie) string {
	t.Helper()
	id, ok := httpsession.ParseCookieValue(c.Value, []string{testSecret})
	if !ok {
		t.Fatalf("cookie %q does not verify", c.Value)
	}
	return id
}

// document is a session document as the server holds it.
type document struct {
	ID      string     `bson:"_id"`
	Expires time.Time  `bson:"expires"`
	Session app.Record `bson:"session"`
}

// find reads session id straight from the server.
func (d *demo) find(t *testing.T, id string) document {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	var doc document
	if err := d.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
		t.Fatalf("find session %s: %v", id, err)
	}
	return doc
}

func (d *demo) count(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	n, err := d.coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWalkthrough replays the README's walk-through: a first visit
// creates a session, a second with its cookie extends it, and a tampered
// cookie gets a fresh one.
func TestWalkthrough(t *testing.T) {
	d := newDemo(t)

	// 1. A first visit: a signed cookie and one document.
	first := d.get(t, nil)
	if first == nil {
		t.Fatal("first response set no connect.sid cookie")
	}
	if !strings.HasPrefix(first.Raw, "connect.sid=s%3A") {
		t.Errorf("Set-Cookie: %s, want connect.sid=s%%3A...", first.Raw)
	}
	if !first.HttpOnly || first.SameSite != http.SameSiteStrictMode || first.MaxAge != int(app.Lifetime/time.Second) || first.Path != "/" {
		t.Errorf("Set-Cookie: %s, want HttpOnly, SameSite=Strict, Max-Age=604800, Path=/", first.Raw)
	}
	if n := d.count(t); n != 1 {
		t.Fatalf("%d documents after the first request, want 1", n)
	}
	id := sessionID(t, first)
	before := d.find(t, id)
	if before.Session.Value.Something == "" {
		t.Fatal("session.something is not set")
	}

	// 2. The same cookie a minute later: the session is touched, not
	// rewritten, and its expiry moves once the touch is written.
	d.clock.Add(time.Minute)
	second := d.get(t, first)
	if second == nil || second.Value != first.Value {
		t.Errorf("second response's cookie = %v, want the first one again (rolling)", second)
	}
	if n := d.count(t); n != 1 {
		t.Fatalf("%d documents after the second request, want 1", n)
	}
	if doc := d.find(t, id); !doc.Expires.Equal(before.Expires) {
		t.Errorf("expires moved from %v to %v before the touch was flushed", before.Expires, doc.Expires)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	if err := d.store.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	after := d.find(t, id)
	if after.Session.Value.Something != before.Session.Value.Something {
		t.Errorf("something changed from %q to %q", before.Session.Value.Something, after.Session.Value.Something)
	}
	if after.Expires.Before(before.Expires.Add(time.Minute)) {
		t.Errorf("expires went from %v to %v, want at least a minute later", before.Expires, after.Expires)
	}

	// 3. A tampered cookie: a fresh session, not an error.
	tampered := *first
	tampered.Value = first.Value[:len(first.Value)-2] + "xx"
	third := d.get(t, &tampered)
	if third == nil {
		t.Fatal("a tampered cookie got no new cookie")
	}
	if newID := sessionID(t, third); newID == id {
		t.Errorf("a tampered cookie kept session %s", id)
	}
	if n := d.count(t); n != 2 {
		t.Errorf("%d documents after the tampered request, want 2", n)
	}
}

// TestDocumentShape checks that a session document is the one
// express-session stores reading: a session subdocument with a cookie
// subdocument, and a BSON date in expires.
func TestDocumentShape(t *testing.T) {
	d := newDemo(t)
	start := time.Now()
	id := sessionID(t, d.get(t, nil))

	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	raw, err := d.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path []string
		want bson.Type
	}{
		{[]string{"_id"}, bson.TypeString},
		{[]string{"expires"}, bson.TypeDateTime},
		{[]string{"session"}, bson.TypeEmbeddedDocument},
		{[]string{"session", "cookie"}, bson.TypeEmbeddedDocument},
		{[]string{"session", "cookie", "originalMaxAge"}, bson.TypeInt32},
		{[]string{"session", "cookie", "expires"}, bson.TypeDateTime},
		{[]string{"session", "cookie", "httpOnly"}, bson.TypeBoolean},
		{[]string{"session", "cookie", "path"}, bson.TypeString},
		{[]string{"session", "cookie", "sameSite"}, bson.TypeString},
		{[]string{"session", "something"}, bson.TypeString},
	} {
		v, err := raw.LookupErr(f.path...)
		if err != nil {
			t.Errorf("%s: %v in %s", strings.Join(f.path, "."), err, raw)
			continue
		}
		if v.Type != f.want {
			t.Errorf("%s is a BSON %s, want %s", strings.Join(f.path, "."), v.Type, f.want)
		}
	}

	c := d.find(t, id).Session.Cookie
	if c.MaxAge != app.Lifetime || !c.HTTPOnly || c.Path != "/" || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("session.cookie = %+v, want originalMaxAge 604800000, httpOnly, path /, sameSite strict", c)
	}
	// Rounded up to the next whole second.
	if lo, hi := start.Add(app.Lifetime), time.Now().Add(app.Lifetime+time.Second); c.Expires.Before(lo) || c.Expires.After(hi) {
		t.Errorf("session.cookie.expires = %v, want seven days from now", c.Expires)
	}
}

// TestEmbeddedFerretDBKeepsSessions checks that the embedded server keeps
// sessions in its data directory across a restart.
func TestEmbeddedFerretDBKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()

	// session opens a store on a fresh embedded server, calls fn with it,
	// and stops both.
	session := func(fn func(*sessionstore.Store[app.Record])) {
		t.Helper()
		db, err := startFerretDB("127.0.0.1:0", dir, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := db.stop(ctx); err != nil {
				t.Error(err)
			}
		}()
		if !strings.HasSuffix(db.uri, "/demo") {
			t.Errorf("uri = %q, want the demo database in its path", db.uri)
		}
		store, err := sessionstore.Open(ctx, db.uri, &sessionstore.Options[app.Record]{Codec: codec.BSON[app.Record]{}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := store.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
		fn(store)
	}

	session(func(s *sessionstore.Store[app.Record]) {
		if err := s.Set(ctx, "kept", app.Record{Value: app.Session{Something: "abc"}}); err != nil {
			t.Fatal(err)
		}
	})
	session(func(s *sessionstore.Store[app.Record]) {
		v, err := s.Get(ctx, "kept")
		if err != nil || v.Value.Something != "abc" {
			t.Errorf("after a restart Get = %+v, %v; want something abc", v, err)
		}
	})
}

// TestEmbeddedFerretDBAddressInUse checks that a busy address fails with
// a message saying what to do.
func TestEmbeddedFerretDBAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db, err := startFerretDB(ln.Addr().String(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err == nil {
		_ = db.stop(t.Context())
		t.Fatal("started on a busy address")
	}
	if !strings.Contains(err.Error(), "FERRETDB_ADDR") {
		t.Errorf("error %q does not mention FERRETDB_ADDR", err)
	}
}
