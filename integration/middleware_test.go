package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/ttl"
)

type shop struct {
	User  string
	Items []string
}

// shopRecord is what the stores hold for a shop session.
type shopRecord = httpsession.Record[shop]

const shopSecret = "keyboard cat"

// shopServers returns two application servers, each with its own store
// and client, over one collection, and the handler of each.
func shopServers(t *testing.T, inFlight func(r *http.Request)) (a, b http.Handler, store *sessionstore.Store[shopRecord]) {
	t.Helper()
	sa, sb, _, _ := twoStores(t, &sessionstore.Options[shopRecord]{TTLIndex: ttl.Off, UpdateAttempts: 100})
	mux := func(store *sessionstore.Store[shopRecord]) http.Handler {
		m, err := httpsession.New[shop](store, &httpsession.Options{Secrets: []string{shopSecret}})
		if err != nil {
			t.Fatal(err)
		}
		h := http.NewServeMux()
		h.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
			httpsession.FromContext[shop](r.Context()).Set(shop{User: "ann"})
		})
		h.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
			item := r.URL.Query().Get("item")
			sess := httpsession.FromContext[shop](r.Context())
			if sess.IsNew() {
				t.Errorf("/add %s: the session was not found", item)
			}
			sess.Update(func(s *shop) { s.Items = append(s.Items, item) })
			if inFlight != nil {
				inFlight(r)
			}
		})
		h.HandleFunc("/regenerate", func(w http.ResponseWriter, r *http.Request) {
			if err := httpsession.FromContext[shop](r.Context()).Regenerate(r.Context()); err != nil {
				t.Error(err)
			}
		})
		h.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
			httpsession.FromContext[shop](r.Context()).Destroy()
		})
		h.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
			s := httpsession.FromContext[shop](r.Context())
			fmt.Fprintf(w, "%s new=%t items=%d", s.Value().User, s.IsNew(), len(s.Value().Items))
		})
		return m.Handler(h)
	}
	return mux(sa), mux(sb), sa
}

func call(t *testing.T, h http.Handler, path string, c *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	return rec
}

func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == "connect.sid" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// 40 concurrent cart additions of one session, half on each server, keep
// 40 of 40.
func TestConcurrentCartAdditionsOverTwoServers(t *testing.T) {
	a, b, store := shopServers(t, nil)
	cookie := sessionCookie(t, call(t, a, "/login", nil))
	var wg sync.WaitGroup
	for i := range 40 {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Go(func() { call(t, h, fmt.Sprintf("/add?item=i%02d", i), cookie) })
	}
	wg.Wait()
	// Read what the database holds: the memory of either server may be
	// older until coherence lands.
	id, _ := httpsession.ParseCookieValue(cookie.Value, []string{shopSecret})
	fresh := newStore[shopRecord](t, store.Collection(), &sessionstore.Options[shopRecord]{TTLIndex: ttl.Off})
	v, err := fresh.Get(bg(t), id)
	t.Logf("after 40 concurrent additions: %d items stored", len(v.Value.Items))
	if err != nil || len(v.Value.Items) != 40 {
		t.Fatalf("%d items stored (%v), want 40", len(v.Value.Items), err)
	}
}

// A logout (or a regenerate) on B while a request of that session is in
// flight on A: the request's save does not bring the old id back, and the
// old cookie then gets a fresh session on both servers.
func TestLogoutWinsOverARequestInFlight(t *testing.T) {
	const logouts, regenerations = 100, 20
	const rounds = logouts + regenerations
	var (
		mu      sync.Mutex
		pending = map[string]chan struct{}{} // by item: released once the logout is done
		reached = make(chan struct{})
	)
	a, b, store := shopServers(t, func(r *http.Request) {
		item := r.URL.Query().Get("item")
		mu.Lock()
		release := pending[item]
		mu.Unlock()
		if release != nil {
			reached <- struct{}{}
			<-release
		}
	})
	recreated := 0
	start := time.Now()
	for i := range rounds {
		cookie := sessionCookie(t, call(t, a, "/login", nil))
		item := fmt.Sprint("r", i)
		release := make(chan struct{})
		mu.Lock()
		pending[item] = release
		mu.Unlock()
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- call(t, a, "/add?item="+item, cookie) }()
		<-reached
		if i < logouts {
			call(t, b, "/logout", cookie)
		} else {
			// A regenerate is a logout of the old id too.
			call(t, b, "/regenerate", cookie)
		}
		close(release)
		<-done
		for _, h := range []http.Handler{a, b} {
			if body := call(t, h, "/whoami", cookie).Body.String(); body != " new=true items=0" {
				recreated++
				t.Errorf("round %d: after the logout the old cookie reads %q, want a fresh session", i, body)
			}
		}
	}
	t.Logf("%d logouts and %d regenerations during an in-flight request: %d old sessions came back (%v)",
		logouts, regenerations, recreated, time.Since(start).Round(time.Millisecond))
	if n, err := store.Len(bg(t)); err != nil || n != regenerations {
		t.Fatalf("%d sessions stored after %d logouts and %d regenerations, want the %d regenerated (%v)",
			n, logouts, regenerations, regenerations, err)
	}
}
