package scsstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/scsstore"
	"github.com/sessionstore/sessionstore/ttl"
)

// scs.New starts a memstore whose cleanup goroutine runs until
// StopCleanup; the tests replace that store without stopping it.
func TestMain(m *testing.M) { mongotest.Main(m, "scs/v2/memstore.(*MemStore).startCleanup") }

// bg bounds a server call the test makes itself.
var bg = mongotest.Context

// newSessions returns a store for the adapter over coll, closed when the
// test ends. TTL index management is off: FerretDB v1 has no TTL indexes
// and reads filter expired sessions anyway.
func newSessions(t *testing.T, coll *mongo.Collection, opts *sessionstore.Options[[]byte]) *sessionstore.Store[[]byte] {
	t.Helper()
	if opts == nil {
		opts = &sessionstore.Options[[]byte]{}
	}
	opts.TTLIndex = ttl.Off
	s, err := scsstore.NewSessionStore(coll, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// recorder is an scs store that remembers the expiry scs asked for in the
// last commit of each token.
type recorder struct {
	*scsstore.Store

	mu      sync.Mutex // protects expiry
	expiry  map[string]time.Time
	commits int
}

func record(s *scsstore.Store) *recorder {
	return &recorder{Store: s, expiry: map[string]time.Time{}}
}

func (r *recorder) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	r.mu.Lock()
	r.expiry[token] = expiry
	r.commits++
	r.mu.Unlock()
	return r.Store.CommitCtx(ctx, token, b, expiry)
}

func (r *recorder) lastExpiry(t *testing.T, token string) time.Time {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.expiry[token]
	if !ok {
		t.Fatalf("scs never committed %q", token)
	}
	return exp
}

// app serves a SessionManager's session over HTTP:
//
//	/put?k=key&v=value  puts value under key
//	/get?k=key          writes the value under key (reads only)
//	/destroy            destroys the session
//	/renew              renews the session token
type app struct {
	t    *testing.T
	sm   *scs.SessionManager
	srv  *httptest.Server
	jar  *cookiejar.Jar
	http *http.Client
}

func newApp(t *testing.T, sm *scs.SessionManager) *app {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), r.URL.Query().Get("k"), r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), r.URL.Query().Get("k")))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	a := &app{t: t, sm: sm, srv: srv}
	a.jar, _ = cookiejar.New(nil)
	a.http = &http.Client{Jar: a.jar, Timeout: mongotest.CallTimeout}
	return a
}

// client returns a new browser: its own cookie jar, the same server.
func (a *app) client() *app {
	c := *a
	c.jar, _ = cookiejar.New(nil)
	c.http = &http.Client{Jar: c.jar, Timeout: mongotest.CallTimeout}
	return &c
}

// do requests path and returns the body.
func (a *app) do(path string, query ...string) string {
	a.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := a.srv.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := a.http.Get(u)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	return string(body)
}

// token returns the session cookie's value, "" when there is none.
func (a *app) token() string {
	u, _ := url.Parse(a.srv.URL)
	for _, c := range a.jar.Cookies(u) {
		if c.Name == a.sm.Cookie.Name {
			return c.Value
		}
	}
	return ""
}

// stored returns the expiry and payload of document id.
func stored(t *testing.T, coll *mongo.Collection, id string) (time.Time, []byte) {
	t.Helper()
	raw, ok := mongotest.RawDoc(t, coll, id)
	if !ok {
		t.Fatalf("document %q is missing", id)
	}
	ms, ok := raw.Lookup("expires").DateTimeOK()
	if !ok {
		t.Fatalf("document %q: expires is not a date: %v", id, raw.Lookup("expires"))
	}
	_, data, ok := raw.Lookup("session").BinaryOK()
	if !ok {
		t.Fatalf("document %q: session is not binary: %v", id, raw.Lookup("session"))
	}
	return time.UnixMilli(ms), data
}

// roundUp returns t rounded up to a multiple of g, as touches are.
func roundUp(t time.Time, g time.Duration) time.Time {
	if r := t.Truncate(g); r.Before(t) {
		return r.Add(g)
	}
	return t
}
