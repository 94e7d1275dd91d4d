package httpsession_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/httpsession"
)

// The benchmarks below run whole requests through the middleware, over a
// store that does nothing and a ResponseWriter that keeps only headers, so
// that what they measure is the middleware's own work. Each has a
// sub-benchmark of the pieces the middleware used to call (net/http's
// cookie parsing and formatting and the exported signing functions), for
// a ratio. BenchmarkCookieNone is the fixed cost of a request whose
// cookie is neither verified nor sent.

// benchID is the session id the benchmark requests carry.
const benchID = "H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf"

// nopStore holds every session, empty; its calls do nothing.
type nopStore struct{}

func (nopStore) Get(context.Context, string) (httpsession.Record[cart], error) {
	return httpsession.Record[cart]{}, nil
}
func (nopStore) Create(context.Context, string, httpsession.Record[cart]) error { return nil }
func (nopStore) Update(_ context.Context, _ string, fn func(*httpsession.Record[cart]) error) (httpsession.Record[cart], error) {
	var c httpsession.Record[cart]
	return c, fn(&c)
}
func (nopStore) Touch(context.Context, string) error  { return nil }
func (nopStore) Delete(context.Context, string) error { return nil }

// headerWriter is a ResponseWriter that keeps only its header.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

// benchRequests serves r through m's middleware around next b.N times and
// fails if the response's Set-Cookie header count is not wantCookies.
func benchRequests(b *testing.B, opts httpsession.Options, r *http.Request, next http.Handler, wantCookies int) {
	b.Helper()
	opts.Secrets = []string{secret}
	opts.MaxAge = 24 * time.Hour
	m, err := httpsession.New[cart](nopStore{}, &opts)
	if err != nil {
		b.Fatal(err)
	}
	h := m.Handler(next)
	w := &headerWriter{h: make(http.Header)}
	h.ServeHTTP(w, r)
	if n := len(w.h["Set-Cookie"]); n != wantCookies {
		b.Fatalf("response has %d Set-Cookie headers, want %d", n, wantCookies)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// cookieRequest returns a request carrying the cookie express-session
// would send for benchID, or none if signed is false.
func cookieRequest(signed bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if signed {
		r.AddCookie(cookieFor(benchID, secret))
	}
	return r
}

var (
	readOnlyHandler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	setHandler      = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		httpsession.FromContext[cart](r.Context()).Set(cart{User: "ann"})
	})
)

func BenchmarkCookieNone(b *testing.B) {
	benchRequests(b, httpsession.Options{}, cookieRequest(false), readOnlyHandler, 0)
}

// BenchmarkCookieVerify is a returning request whose session is touched
// and whose cookie is not sent back.
func BenchmarkCookieVerify(b *testing.B) {
	b.Run("Handler", func(b *testing.B) {
		benchRequests(b, httpsession.Options{}, cookieRequest(true), readOnlyHandler, 0)
	})
	b.Run("CookiesNamed+ParseCookieValue", func(b *testing.B) {
		r := cookieRequest(true)
		secrets := []string{secret}
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range r.CookiesNamed("connect.sid") {
				if _, ok := httpsession.ParseCookieValue(c.Value, secrets); !ok {
					b.Fatal("cookie does not verify")
				}
			}
		}
	})
}

// BenchmarkCookieResend is a returning request with Rolling on: the
// cookie it brought goes back with a fresh Max-Age.
func BenchmarkCookieResend(b *testing.B) {
	b.Run("Handler", func(b *testing.B) {
		benchRequests(b, httpsession.Options{Rolling: true}, cookieRequest(true), readOnlyHandler, 1)
	})
	b.Run("CookieValue+Cookie.String", func(b *testing.B) {
		benchCookieString(b)
	})
}

// BenchmarkCookieSign is a first request whose new session is saved, so
// that a cookie is signed for it.
func BenchmarkCookieSign(b *testing.B) {
	b.Run("Handler", func(b *testing.B) {
		benchRequests(b, httpsession.Options{}, cookieRequest(false), setHandler, 1)
	})
	b.Run("CookieValue+Cookie.String", func(b *testing.B) {
		benchCookieString(b)
	})
}

// benchCookieString measures signing benchID and formatting the
// Set-Cookie header with net/http, as the middleware used to.
func benchCookieString(b *testing.B) {
	h := make(http.Header)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		c := &http.Cookie{
			Name:     "connect.sid",
			Value:    httpsession.CookieValue(benchID, secret),
			Path:     "/",
			MaxAge:   86400,
			HttpOnly: true,
		}
		h.Add("Set-Cookie", c.String())
	}
}
