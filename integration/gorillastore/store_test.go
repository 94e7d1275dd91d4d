package gorillastore_test

import (
	"context"
	"encoding/gob"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/gorillastore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// request returns a request carrying cookie, if any.
func request(cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

// save saves s and returns the session cookie it sent.
func save(t *testing.T, r *http.Request, s *sessions.Session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := s.Save(r, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == s.Name() {
			return c
		}
	}
	t.Fatal("Save sent no session cookie")
	return nil
}

// load gets the session of a request carrying cookie; it fails the test on
// an error.
func load(t *testing.T, st *gorillastore.Store, cookie *http.Cookie) (*http.Request, *sessions.Session) {
	t.Helper()
	r := request(cookie)
	s, err := st.Get(r, cookieName)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return r, s
}

// Get goes through gorilla's registry: one session per name and request;
// New makes a fresh one each time.
func TestRegistry(t *testing.T) {
	st := newStore(t, newSessions(t, mongotest.Collection(t), nil))
	r, s := load(t, st, nil)
	if !s.IsNew || s.ID != "" || len(s.Values) != 0 {
		t.Fatalf("without a cookie: IsNew %t, ID %q, Values %v; want a new, empty session", s.IsNew, s.ID, s.Values)
	}
	if s2, err := st.Get(r, cookieName); err != nil || s2 != s {
		t.Fatalf("a second Get in the request returned another session (%v)", err)
	}
	if s3, err := st.New(r, cookieName); err != nil || s3 == s {
		t.Fatalf("New returned the registry's session (%v)", err)
	}
	if s.Store() != st || s.Name() != cookieName {
		t.Errorf("session store %v, name %q", s.Store(), s.Name())
	}
	s.Values["user"] = "ada"
	w := httptest.NewRecorder()
	if err := sessions.Save(r, w); err != nil { // the registry saves every session of the request
		t.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	_, s = load(t, st, cookie)
	if s.IsNew || s.ID == "" || s.Values["user"] != "ada" {
		t.Fatalf("with the cookie: IsNew %t, ID %q, Values %v", s.IsNew, s.ID, s.Values)
	}
}

// MaxAge sets the cookie's Max-Age and the session's expiry in the
// database; 0 makes a browser-session cookie and the store's TTL.
func TestMaxAge(t *testing.T) {
	coll := mongotest.Collection(t)
	const ttl = 2 * time.Hour
	st := newStore(t, newSessions(t, coll, &sessionstore.Options[[]byte]{TTL: ttl}))
	check := func(name string, cookie *http.Cookie, maxAge int, lifetime time.Duration, began time.Time) {
		t.Helper()
		if cookie.MaxAge != maxAge {
			t.Errorf("%s: cookie Max-Age %d, want %d", name, cookie.MaxAge, maxAge)
		}
		exp := storedExpires(t, coll, sessionID(t, cookie.Value, newKeys))
		if lo, hi := began.Add(lifetime).Truncate(time.Millisecond), time.Now().Add(lifetime); exp.Before(lo) || exp.After(hi) {
			t.Errorf("%s: stored expiry %v, want within [%v, %v]", name, exp, lo, hi)
		}
	}

	began := time.Now()
	r, s := load(t, st, nil)
	if s.Options.MaxAge != gorillastore.DefaultMaxAge || s.Options.Path != "/" || !s.Options.HttpOnly || s.Options.SameSite != http.SameSiteLaxMode {
		t.Errorf("default options %+v", *s.Options)
	}
	s.Options.MaxAge = 120
	s.Values["n"] = 1
	check("session MaxAge 120", save(t, r, s), 120, 120*time.Second, began)

	st.MaxAge(60)
	began = time.Now()
	r, s = load(t, st, nil)
	s.Values["n"] = 2
	check("store MaxAge 60", save(t, r, s), 60, time.Minute, began)

	began = time.Now()
	r, s = load(t, st, nil)
	s.Options.MaxAge = 0
	s.Values["n"] = 3
	cookie := save(t, r, s)
	check("MaxAge 0", cookie, 0, ttl, began)
	if !cookie.Expires.IsZero() {
		t.Errorf("MaxAge 0: cookie expires %v, want a browser-session cookie", cookie.Expires)
	}
}

// A logout wins over a request that loaded the session before it and
// saves after it, changed or not: the session stays deleted, and when the
// request changed it, its response deletes the cookie.
func TestLogoutIsNeverUndone(t *testing.T) {
	for _, changed := range []bool{true, false} {
		name := map[bool]string{true: "changed", false: "unchanged"}[changed]
		t.Run(name, func(t *testing.T) {
			coll := mongotest.Collection(t)
			backing := newSessions(t, coll, nil)
			st := newStore(t, backing)
			r, s := load(t, st, nil)
			s.Values["user"] = "ada"
			cookie := save(t, r, s)
			id := sessionID(t, cookie.Value, newKeys)

			slowReq, slow := load(t, st, cookie) // loads, then takes its time
			logoutReq, logout := load(t, newStore(t, newSessions(t, coll, nil)), cookie)
			logout.Options.MaxAge = -1
			if c := save(t, logoutReq, logout); c.MaxAge >= 0 {
				t.Errorf("logout cookie Max-Age %d, want < 0", c.MaxAge)
			}

			if changed {
				slow.Values["cart"] = "book"
			}
			// A changed session's versioned write finds it deleted; an
			// unchanged one is a touch, which never creates a session.
			if c := save(t, slowReq, slow); changed && c.MaxAge >= 0 {
				t.Errorf("the slow request's cookie has Max-Age %d, want < 0 (deleted)", c.MaxAge)
			}
			if err := backing.Flush(bg(t)); err != nil {
				t.Fatal(err)
			}
			if _, ok := mongotest.RawDoc(t, coll, id); ok {
				t.Fatal("the slow request brought the logged-out session back")
			}

			// Changed and saved again, in either request, the session is a
			// new one, or found deleted.
			for _, again := range []struct {
				r *http.Request
				s *sessions.Session
			}{{slowReq, slow}, {logoutReq, logout}} {
				again.s.Options.MaxAge = 60
				again.s.Values["again"] = true
				if c := save(t, again.r, again.s); c.MaxAge >= 0 && sessionID(t, c.Value, newKeys) == id {
					t.Errorf("saved again after the delete, the session is back under its old id")
				}
			}
			if _, ok := mongotest.RawDoc(t, coll, id); ok {
				t.Fatal("a second save brought the logged-out session back")
			}
		})
	}
}

// Concurrent saves merge: keys set or deleted directly go to the last
// request to save them, keys the other request changed are kept, and
// Change is replayed on the stored values.
func TestMerge(t *testing.T) {
	coll := mongotest.Collection(t)
	st := newStore(t, newSessions(t, coll, nil))
	r, s := load(t, st, nil)
	s.Values["user"], s.Values["theme"], s.Values["count"] = "ada", "dark", 1
	cookie := save(t, r, s)

	ra, a := load(t, st, cookie)
	rb, b := load(t, st, cookie)
	b.Values["cart"] = "book"
	delete(b.Values, "theme")
	gorillastore.Change(rb, b, increment)
	save(t, rb, b)

	a.Values["lang"] = "fr"
	a.Values["theme"] = "light" // b deleted it; a saves last and sets it
	gorillastore.Change(ra, a, increment)
	save(t, ra, a)

	want := map[any]any{"user": "ada", "theme": "light", "count": 3, "cart": "book", "lang": "fr"}
	v, _ := storedValues(t, coll, sessionID(t, cookie.Value, newKeys))
	if !equalValues(v, want) {
		t.Errorf("stored %v, want %v", v, want)
	}
	if !equalValues(a.Values, want) {
		t.Errorf("after Save, the session's Values are %v, want the stored %v", a.Values, want)
	}
}

func equalValues(a, b map[any]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Setting ID to "" on a loaded session gives it a new id at Save and
// deletes the old one; the values stay.
func TestNewIDAtLogin(t *testing.T) {
	coll := mongotest.Collection(t)
	st := newStore(t, newSessions(t, coll, nil))
	r, s := load(t, st, nil)
	s.Values["cart"] = "book"
	cookie := save(t, r, s)
	oldID := sessionID(t, cookie.Value, newKeys)

	r, s = load(t, st, cookie)
	s.ID = ""
	s.Values["user"] = "ada"
	cookie = save(t, r, s)
	newID := sessionID(t, cookie.Value, newKeys)
	if newID == oldID || s.ID != newID {
		t.Fatalf("new id %q, old %q, session ID %q", newID, oldID, s.ID)
	}
	if _, ok := mongotest.RawDoc(t, coll, oldID); ok {
		t.Error("the old id is still stored")
	}
	if v, _ := storedValues(t, coll, newID); v["cart"] != "book" || v["user"] != "ada" {
		t.Errorf("the new id holds %v", v)
	}
}

// A session saved twice in one request is stored once, then updated; a
// new session saved with MaxAge -1 is stored nowhere.
func TestSaveTwice(t *testing.T) {
	coll := mongotest.Collection(t)
	mcoll, cmds := mongotest.Monitored(t, coll)
	st := newStore(t, newSessions(t, mcoll, nil))
	r, s := load(t, st, nil)
	s.Values["n"] = 1
	first := save(t, r, s)
	s.Values["n"] = 2
	second := save(t, r, s)
	if a, b := sessionID(t, first.Value, newKeys), sessionID(t, second.Value, newKeys); a != b {
		t.Fatalf("the second Save moved the session from %q to %q", a, b)
	}
	if got := mongotest.Names(cmds.Take()); !slices.Equal(got, []string{"insert", "update"}) {
		t.Errorf("two Saves sent %v, want an insert then an update", got)
	}
	if v, _ := storedValues(t, coll, s.ID); v["n"] != 2 {
		t.Errorf("stored %v, want n=2", v)
	}

	r, s = load(t, st, nil)
	s.Values["n"] = 3
	s.Options.MaxAge = -1
	if c := save(t, r, s); c.MaxAge >= 0 {
		t.Errorf("cookie Max-Age %d, want < 0", c.MaxAge)
	}
	if got := mongotest.Names(cmds.Take()); len(got) != 0 {
		t.Errorf("deleting a session never stored sent %v", got)
	}
}

// Unchanged saves of a session with several values are touches too, even
// though gob writes maps in a random order.
func TestUnchangedSaveOfManyValues(t *testing.T) {
	coll := mongotest.Collection(t)
	mcoll, cmds := mongotest.Monitored(t, coll)
	st := newStore(t, newSessions(t, mcoll, &sessionstore.Options[[]byte]{TouchInterval: time.Hour}))
	r, s := load(t, st, nil)
	for i, k := range []string{"a", "b", "c", "d", "e", "f"} {
		s.Values[k] = i
	}
	s.Values[7] = []string{"seven"}
	cookie := save(t, r, s)
	cmds.Reset()
	for range 20 {
		r, s := load(t, st, cookie)
		save(t, r, s)
	}
	if got := mongotest.Names(cmds.Take()); len(got) != 0 {
		t.Errorf("20 unchanged saves sent %v, want nothing", got)
	}
}

// Flash is a gob-registered type of the tests.
type Flash struct {
	Level, Text string
}

func init() { gob.Register(Flash{}) }

type unregistered struct{ N int }

// Values keep their Go types through gob: registered structs, ints,
// slices, non-string keys. A type gob does not know fails the Save, which
// writes nothing and sends no cookie.
func TestGobValues(t *testing.T) {
	coll := mongotest.Collection(t)
	st := newStore(t, newSessions(t, coll, nil))
	r, s := load(t, st, nil)
	s.AddFlash(Flash{"info", "saved"})
	s.Values[42] = []int{1, 2}
	cookie := save(t, r, s)

	_, s = load(t, st, cookie)
	if f := s.Flashes(); len(f) != 1 || f[0] != (Flash{"info", "saved"}) {
		t.Errorf("flashes %#v", f)
	}
	if n, ok := s.Values[42].([]int); !ok || !slices.Equal(n, []int{1, 2}) {
		t.Errorf("Values[42] = %#v", s.Values[42])
	}

	r, s = load(t, st, cookie)
	s.Values["bad"] = unregistered{1}
	w := httptest.NewRecorder()
	err := s.Save(r, w)
	if err == nil || !strings.Contains(err.Error(), "gob.Register") {
		t.Fatalf("Save of an unregistered type: %v, want an error naming gob.Register", err)
	}
	if c := w.Header().Get("Set-Cookie"); c != "" {
		t.Errorf("a failed Save sent a cookie: %s", c)
	}
	if v, _ := storedValues(t, coll, s.ID); v["bad"] != nil {
		t.Errorf("a failed Save wrote %v", v)
	}
}

// A cookie securecookie refuses gives a new session and its error, as in
// gorilla's stores; so does a stored document this store cannot read.
func TestRefusedCookieAndBadDocuments(t *testing.T) {
	coll := mongotest.Collection(t)
	st := newStore(t, newSessions(t, coll, nil))
	r, s := load(t, st, nil)
	s.Values["user"] = "ada"
	cookie := save(t, r, s)

	tampered := *cookie
	tampered.Value = cookie.Value[:len(cookie.Value)-4] + "AAAA"
	s, err := st.Get(request(&tampered), cookieName)
	var sc securecookie.Error
	if !errors.As(err, &sc) || !sc.IsDecode() {
		t.Errorf("tampered cookie: error %v, want securecookie's decode error", err)
	}
	if s == nil || !s.IsNew || len(s.Values) != 0 {
		t.Errorf("tampered cookie: session %+v, want a new one", s)
	}

	ctx := bg(t)
	signed := func(id string) *http.Cookie {
		v, err := securecookie.EncodeMulti(cookieName, id, securecookie.CodecsFromPairs(newKeys...)...)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: cookieName, Value: v}
	}
	docs := []any{
		bson.D{{Key: "_id", Value: "text"}, {Key: "expires", Value: time.Now().Add(time.Hour)}, {Key: "session", Value: "not binary"}},
		bson.D{{Key: "_id", Value: "garbage"}, {Key: "expires", Value: time.Now().Add(time.Hour)}, {Key: "session", Value: bson.Binary{Data: []byte("not gob")}}},
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"text", "garbage"} {
		s, err := st.Get(request(signed(id)), cookieName)
		if err == nil || s == nil || !s.IsNew || s.ID != "" {
			t.Errorf("document %q: session %+v, error %v; want a new session and an error", id, s, err)
		}
	}
	if s, err := st.Get(request(signed("missing")), cookieName); err != nil || !s.IsNew {
		t.Errorf("a signed cookie of a missing session: IsNew %t, error %v; want a new session, no error", s.IsNew, err)
	}
}

// When the store cannot be read, Get returns the error and Save refuses
// that session rather than replace the stored one.
func TestLoadFailureIsNotSaved(t *testing.T) {
	coll := mongotest.Collection(t)
	st := newStore(t, newSessions(t, coll, &sessionstore.Options[[]byte]{CacheSize: -1})) // no memory: every Get reads the server
	r, s := load(t, st, nil)
	s.Values["user"] = "ada"
	cookie := save(t, r, s)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = request(cookie).WithContext(ctx)
	s, err := st.Get(r, cookieName)
	if !errors.Is(err, context.Canceled) || s == nil {
		t.Fatalf("Get with a cancelled context: %v, %v; want a session and context.Canceled", s, err)
	}
	s.Values["user"] = "eve"
	w := httptest.NewRecorder()
	if err := s.Save(r, w); err == nil {
		t.Fatal("Save of a session that could not be loaded succeeded")
	}
	if c := w.Header().Get("Set-Cookie"); c != "" {
		t.Errorf("the refused Save sent a cookie: %s", c)
	}
	if v, _ := storedValues(t, coll, sessionID(t, cookie.Value, newKeys)); v["user"] != "ada" {
		t.Errorf("stored %v, want user=ada", v)
	}
}

// New refuses what cannot work.
func TestNewErrors(t *testing.T) {
	sessions := newSessions(t, mongotest.Collection(t), nil)
	for _, c := range []struct {
		name     string
		sessions *sessionstore.Store[[]byte]
		keys     [][]byte
	}{
		{"nil store", nil, newKeys},
		{"no keys", sessions, nil},
		{"empty hash key", sessions, [][]byte{nil}},
		{"block key of 10 bytes", sessions, [][]byte{[]byte("hash"), []byte("0123456789")}},
	} {
		if st, err := gorillastore.New(c.sessions, nil, c.keys...); err == nil || st != nil {
			t.Errorf("%s: New = %v, %v; want an error", c.name, st, err)
		}
	}
	if _, err := gorillastore.New(sessions, nil, []byte("hash only")); err != nil {
		t.Errorf("a hash key alone (no encryption): %v", err)
	}
}
