package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/examples/demo/app"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// benchSecret signs the cookies of the request benchmarks.
const benchSecret = "keyboard cat"

// headerWriter is a ResponseWriter that keeps only its header, so that a
// request benchmark measures the handler, not a recorder.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

// BenchmarkRequest serves a returning session's request in process,
// without a network, through three handlers, cycling through the same
// sessions: the demo's handler over a store with the demo's options
// (demo, which keeps decoded sessions with Options.Clone), the same
// without Clone (demo-decode), and the floor (Floor: read the cookie, set
// it back). The difference is the session layer's cost per request, in
// time and allocations.
func BenchmarkRequest(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		reqs := make([]*http.Request, loopPool())
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
			reqs[i].Header.Set("Cookie", "connect.sid=s%3A"+ID(i)+".0123456789012345678901234567890123456789012")
		}
		serve(b, Floor("connect.sid", app.Lifetime), reqs)
	})
	for _, c := range []struct {
		name  string
		clone func(app.Record) app.Record
	}{{"demo", app.CloneRecord}, {"demo-decode", nil}} {
		b.Run(c.name, func(b *testing.B) {
			s := newDemoStore(b, c.clone)
			h, err := app.New(s, benchSecret, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			serve(b, h, demoSessions(b, h, loopPool()))
		})
	}
}

// newDemoStore returns a store with the demo's options, but Clone, and
// with CoherenceOff, as the hit benchmarks have it (see hitOptions): the
// load test measures what the change feed costs.
func newDemoStore(b *testing.B, clone func(app.Record) app.Record) *sessionstore.Store[app.Record] {
	b.Helper()
	s, err := sessionstore.New(mongotest.Collection(b), &sessionstore.Options[app.Record]{
		TTL:        app.Lifetime,
		Codec:      codec.BSON[app.Record]{},
		TouchAfter: app.TouchAfter,
		Clone:      clone,
		Coherence:  sessionstore.CoherenceOff,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(bg(b)); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return s
}

// demoSessions makes n sessions through h, one request each, and returns
// a request bringing each one's cookie.
func demoSessions(b *testing.B, h http.Handler, n int) []*http.Request {
	b.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range rec.Result().Cookies() {
			reqs[i].AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		if rec.Code != http.StatusOK || len(reqs[i].Cookies()) != 1 {
			b.Fatalf("a new session's request answered %d with %d cookies", rec.Code, len(rec.Result().Cookies()))
		}
	}
	return reqs
}

// serve serves reqs in turn through h until b.Loop says stop, checking
// that each response sets one cookie.
func serve(b *testing.B, h http.Handler, reqs []*http.Request) {
	b.Helper()
	w := &headerWriter{h: make(http.Header)}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, reqs[i])
		if len(w.h["Set-Cookie"]) != 1 {
			b.Fatalf("response set %d cookies, want 1", len(w.h["Set-Cookie"]))
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
}
