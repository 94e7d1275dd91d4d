package httpsession_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

// A sessionstore.Store takes expiries from the middleware.
var _ httpsession.ExpiryStore[httpsession.Record[profile]] = (*sessionstore.Store[httpsession.Record[profile]])(nil)

// bsonStore returns a store of profile Records over the fake server, with
// a one-hour TTL, and its collection.
func bsonStore(t *testing.T, opts *sessionstore.Options[httpsession.Record[profile]]) (*sessionstore.Store[httpsession.Record[profile]], *mongo.Collection) {
	t.Helper()
	srv := mongofake.Start(t)
	if opts == nil {
		opts = &sessionstore.Options[httpsession.Record[profile]]{}
	}
	opts.Codec = codec.BSON[httpsession.Record[profile]]{}
	opts.TTLIndex = ttl.Off
	if opts.TTL == 0 {
		opts.TTL = time.Hour
	}
	ctx := context.Background()
	s, err := sessionstore.Open(ctx, srv.URI(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, s.Collection()
}

// insertExpressSession stores doc as an Express app's session id,
// expiring at expires, as the Node stores write it.
func insertExpressSession(t *testing.T, coll *mongo.Collection, id string, expires time.Time, session bson.D) {
	t.Helper()
	_, err := coll.InsertOne(context.Background(), bson.D{
		{Key: "_id", Value: id}, {Key: "expires", Value: bson.NewDateTimeFromTime(expires)}, {Key: "session", Value: session},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawSession(t *testing.T, coll *mongo.Collection, id string) (session bson.Raw, expires time.Time) {
	t.Helper()
	var doc bson.Raw
	if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
		t.Fatalf("find %s: %v", id, err)
	}
	return doc.Lookup("session").Document(), doc.Lookup("expires").Time()
}

func profileManager(t *testing.T, store httpsession.Store[httpsession.Record[profile]], opts httpsession.Options) *httpsession.Manager[profile] {
	t.Helper()
	opts.Secrets = []string{secret}
	m, err := httpsession.New[profile](store, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func near(got, want time.Time) bool { return got.Sub(want).Abs() < 5*time.Second }

// A session an Express app stored with a two-hour cookie, sameSite true
// and fields Go does not declare: Go sends the cookie it describes, keeps
// every unknown field on a save, and expires the session when the cookie
// does, not after the store's one-hour TTL.
func TestExpressSessionSavedByGo(t *testing.T) {
	store, coll := bsonStore(t, nil)
	old := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	insertExpressSession(t, coll, "s1", old, iwsioSession(old))
	m := profileManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
		if s.IsNew() || s.Value().User != "ann" || s.Cookie().MaxAge != 2*time.Hour {
			t.Errorf("loaded new=%v %+v %+v", s.IsNew(), s.Value(), s.Cookie())
		}
		s.Update(func(p *profile) { p.User = "bob" })
	})), cookieFor("s1", secret))
	c := sessionCookie(resp)
	if c == nil || c.MaxAge != 7200 || c.SameSite != http.SameSiteStrictMode || !c.HttpOnly {
		t.Errorf("Set-Cookie %q, want Max-Age=7200, HttpOnly, SameSite=Strict", resp.Header.Get("Set-Cookie"))
	}
	sess, expires := rawSession(t, coll, "s1")
	if !near(expires, time.Now().Add(2*time.Hour)) {
		t.Errorf("expires = %v, want now + 2h (the cookie's), not the store's 1h", expires)
	}
	cookieExp := sess.Lookup("cookie", "_expires").Time()
	if !cookieExp.Equal(expires) {
		t.Errorf("cookie._expires = %v, document expires = %v: want the same", cookieExp, expires)
	}
	if v := sess.Lookup("cookie", "sameSite"); v.Type != bson.TypeBoolean || !v.Boolean() {
		t.Errorf("cookie.sameSite = %v, want true as stored", v)
	}
	if _, err := sess.LookupErr("cookie", "expires"); err == nil {
		t.Errorf("cookie got an expires beside _expires: %s", sess.Lookup("cookie"))
	}
	for _, k := range [][]string{{"prefs", "font"}, {"extra", "n"}, {"count"}} {
		if _, err := sess.LookupErr(k...); err != nil {
			t.Errorf("%v lost: %s", k, sess)
		}
	}
	if v := sess.Lookup("count"); v.Type != bson.TypeInt32 {
		t.Errorf("count is %v, want the int32 stored", v.Type)
	}
	if v := sess.Lookup("user").StringValue(); v != "bob" {
		t.Errorf("user = %q", v)
	}
}

// handle2 is handle for profile sessions.
func handle2(t *testing.T, fn func(s *httpsession.Session[profile])) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[profile](r.Context())
		if s == nil {
			t.Error("no session in the request context")
			return
		}
		fn(s)
	})
}

// A browser-session cookie (express-session's default) stays one: a Go
// save writes originalMaxAge and expires as null, sends no Max-Age, and
// the store's TTL sets the expiry.
func TestBrowserSessionCookieSavedByGo(t *testing.T) {
	store, coll := bsonStore(t, nil)
	insertExpressSession(t, coll, "s1", time.Now().Add(time.Hour), bson.D{
		{Key: "cookie", Value: bson.D{
			{Key: "originalMaxAge", Value: nil}, {Key: "expires", Value: nil},
			{Key: "httpOnly", Value: true}, {Key: "path", Value: "/"},
		}},
		{Key: "user", Value: "ann"},
	})
	m := profileManager(t, store, httpsession.Options{MaxAge: 24 * time.Hour, Rolling: true})
	resp := serve(m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
		s.Update(func(p *profile) { p.User = "bob" })
	})), cookieFor("s1", secret))
	c := sessionCookie(resp)
	if c == nil || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("Set-Cookie %q, want a browser-session cookie", resp.Header.Get("Set-Cookie"))
	}
	sess, expires := rawSession(t, coll, "s1")
	for _, k := range []string{"originalMaxAge", "expires"} {
		if v := sess.Lookup("cookie", k); v.Type != bson.TypeNull {
			t.Errorf("cookie.%s = %v, want null", k, v)
		}
	}
	if !near(expires, time.Now().Add(time.Hour)) {
		t.Errorf("expires = %v, want now + the store's TTL", expires)
	}
}

// A new Go session with MaxAge expires in the store with its cookie, and
// a touch extends it by the cookie's lifetime.
func TestMaxAgeIsTheStoreLifetime(t *testing.T) {
	clock := &testClock{t: time.Now()}
	store, coll := bsonStore(t, &sessionstore.Options[httpsession.Record[profile]]{Clock: clock})
	m := profileManager(t, store, httpsession.Options{MaxAge: 3 * time.Hour, Clock: clock})
	h := m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
		if s.IsNew() {
			s.Set(profile{User: "ann"})
		}
	}))
	c := sessionCookie(serve(h, nil))
	id := cookieID(t, c, secret)
	sess, expires := rawSession(t, coll, id)
	if !near(expires, clock.Now().Add(3*time.Hour)) || !sess.Lookup("cookie", "expires").Time().Equal(expires) {
		t.Errorf("expires = %v, cookie %s; want now + 3h in both", expires, sess.Lookup("cookie"))
	}
	// Ten minutes later a request touches it: now + 3h again.
	clock.add(10 * time.Minute)
	serve(h, c)
	if err := store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, expires := rawSession(t, coll, id); !near(expires, clock.Now().Add(3*time.Hour)) {
		t.Errorf("after a touch expires = %v, want now + 3h", expires)
	}
}

// testClock is a clock that moves when told.
type testClock struct {
	mu sync.Mutex // protects t
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// SetMaxAge ("remember me") changes the cookie's lifetime, in the
// Set-Cookie header and the store.
func TestSetMaxAge(t *testing.T) {
	store, coll := bsonStore(t, nil)
	m := profileManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
		s.Set(profile{User: "ann"})
		s.SetMaxAge(30 * 24 * time.Hour)
	})), nil)
	c := sessionCookie(resp)
	if c.MaxAge != 30*24*3600 {
		t.Errorf("Max-Age = %d", c.MaxAge)
	}
	sess, expires := rawSession(t, coll, cookieID(t, c, secret))
	if !near(expires, time.Now().Add(30*24*time.Hour)) || sess.Lookup("cookie", "originalMaxAge").Double() != 2592000000 {
		t.Errorf("expires %v, cookie %s", expires, sess.Lookup("cookie"))
	}
}

// A stored session that T cannot decode gives a fresh session, never an
// error; it is logged once, however often it is asked for, and left in
// place.
func TestUndecodableSessionIsAFreshOne(t *testing.T) {
	store, coll := bsonStore(t, nil)
	bad := bson.D{{Key: "cookie", Value: bson.D{{Key: "path", Value: "/"}}}, {Key: "user", Value: bson.D{{Key: "first", Value: "ann"}}}}
	insertExpressSession(t, coll, "s1", time.Now().Add(time.Hour), bad)
	before, _ := rawSession(t, coll, "s1")
	var log bytes.Buffer
	m := profileManager(t, store, httpsession.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for range 3 {
		resp := serve(m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
			if !s.IsNew() {
				t.Error("an undecodable session was loaded")
			}
		})), cookieFor("s1", secret))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	}
	if n := strings.Count(log.String(), "cannot be decoded"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
	if strings.Contains(log.String(), "s1") {
		t.Errorf("the log names the session id: %s", log.String())
	}
	if after, _ := rawSession(t, coll, "s1"); string(after) != string(before) {
		t.Errorf("the document changed: %s", after)
	}
}

// A session over MaxPayload is not saved, and the client is told so.
func TestTooLargeSessionIsAnError(t *testing.T) {
	store, _ := bsonStore(t, &sessionstore.Options[httpsession.Record[profile]]{MaxPayload: 1 << 10})
	var got error
	m := profileManager(t, store, httpsession.Options{ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
		got = err
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}})
	resp := serve(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpsession.FromContext[profile](r.Context()).Set(profile{User: strings.Repeat("x", 2<<10)})
		_, _ = w.Write([]byte("saved"))
	})), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || got == nil || !strings.Contains(got.Error(), "large") {
		t.Errorf("status %d, error %v; want the store's too-large error", resp.StatusCode, got)
	}
}

// Express changes the cookie's lifetime (to five hours) while a Go
// request of the session runs: Go's save keeps Express's cookie, replays
// its own change, and expires the session with the cookie.
func TestSaveFollowsACookieChangedMeanwhile(t *testing.T) {
	store, coll := bsonStore(t, nil)
	old := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	insertExpressSession(t, coll, "s1", old, iwsioSession(old))
	m := profileManager(t, store, httpsession.Options{})
	serve(m.Handler(handle2(t, func(s *httpsession.Session[profile]) {
		s.Update(func(p *profile) { p.User = "bob" })
		later := time.Now().Add(5 * time.Hour)
		session := iwsioSession(later)
		cookie := session[0].Value.(bson.D)
		cookie[2].Value = int32(5 * 3600 * 1000) // originalMaxAge
		session[4].Value = int32(8)              // count
		_, err := coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "s1"}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "expires", Value: later}, {Key: "session", Value: session},
		}}})
		if err != nil {
			t.Fatal(err)
		}
	})), cookieFor("s1", secret))
	sess, expires := rawSession(t, coll, "s1")
	if !near(expires, time.Now().Add(5*time.Hour)) {
		t.Errorf("expires = %v, want now + 5h, the lifetime Express set meanwhile", expires)
	}
	if ma := sess.Lookup("cookie", "originalMaxAge").Int32(); ma != 5*3600*1000 {
		t.Errorf("originalMaxAge = %d", ma)
	}
	if u, n := sess.Lookup("user").StringValue(), sess.Lookup("count").Int32(); u != "bob" || n != 8 {
		t.Errorf("user %q count %d, want bob and Express's 8", u, n)
	}
}
