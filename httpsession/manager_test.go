package httpsession_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/httpsession"
)

// cart is the session type in these tests.
type cart struct {
	User  string
	Items []string
}

const secret = "keyboard cat"

func newManager(t *testing.T, store httpsession.Store[httpsession.Record[cart]], opts httpsession.Options) *httpsession.Manager[cart] {
	t.Helper()
	if opts.Secrets == nil {
		opts.Secrets = []string{secret}
	}
	m, err := httpsession.New[cart](store, &opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// serve runs one request through h, with c as its cookie if not nil.
func serve(h http.Handler, c *http.Cookie) *http.Response {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// sessionCookie returns the response's connect.sid cookie, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "connect.sid" {
			return c
		}
	}
	return nil
}

// cookieFor returns the request cookie express-session would send for id.
func cookieFor(id, secret string) *http.Cookie {
	return &http.Cookie{Name: "connect.sid", Value: httpsession.CookieValue(id, secret)}
}

// handle returns a handler that calls fn with the request's session.
func handle(t *testing.T, fn func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart])) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[cart](r.Context())
		if s == nil {
			t.Error("no session in the request context")
			return
		}
		fn(w, r, s)
	})
}

func addItem(item string) func(http.ResponseWriter, *http.Request, *httpsession.Session[cart]) {
	return func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		s.Update(func(c *cart) { c.Items = append(c.Items, item) })
	}
}

func readOnly(http.ResponseWriter, *http.Request, *httpsession.Session[cart]) {}

func wantCalls(t *testing.T, store *fakeStore[cart], want ...string) {
	t.Helper()
	if got := store.takeCalls(); !slices.Equal(got, want) {
		t.Errorf("store calls = %q, want %q", got, want)
	}
}

// cookieID returns the id in c, verified with secret.
func cookieID(t *testing.T, c *http.Cookie, secret string) string {
	t.Helper()
	if c == nil {
		t.Fatal("no session cookie in the response")
	}
	id, ok := httpsession.ParseCookieValue(c.Value, []string{secret})
	if !ok {
		t.Fatalf("cookie value %q does not verify", c.Value)
	}
	return id
}

func TestUninitializedSessionIsNotSaved(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		if !s.IsNew() {
			t.Error("IsNew() = false for a request without a cookie")
		}
	})), nil)
	if h := resp.Header.Values("Set-Cookie"); len(h) != 0 {
		t.Errorf("Set-Cookie = %q, want none", h)
	}
	wantCalls(t, store)
}

func TestSaveUninitialized(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{SaveUninitialized: true})
	var seen string
	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		seen = s.ID()
	})), nil)
	id := cookieID(t, sessionCookie(resp), secret)
	if id != seen || len(id) != 32 {
		t.Errorf("cookie id = %q, handler saw %q; want the same 32-character id", id, seen)
	}
	wantCalls(t, store, "Create "+id)
}

func TestModifiedSessionIsSavedOnceWithCookie(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, addItem("apple"))), nil)
	c := sessionCookie(resp)
	id := cookieID(t, c, secret)
	wantCalls(t, store, "Create "+id)
	if v, _ := store.get(id); !slices.Equal(v.Items, []string{"apple"}) {
		t.Errorf("stored %+v, want one apple", v)
	}
	if !c.HttpOnly || c.Path != "/" || c.MaxAge != 0 || c.Secure || c.Domain != "" {
		t.Errorf("cookie attributes = %q, want Path=/ and HttpOnly only", resp.Header.Get("Set-Cookie"))
	}
	if !strings.HasPrefix(c.Value, "s%3A") {
		t.Errorf("cookie value %q does not start with s%%3A", c.Value)
	}
}

func TestExistingSessionIsTouchedNotSaved(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	first := sessionCookie(serve(m.Handler(handle(t, addItem("apple"))), nil))
	id := cookieID(t, first, secret)
	store.takeCalls()

	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		if s.IsNew() || s.ID() != id || !slices.Equal(s.Value().Items, []string{"apple"}) {
			t.Errorf("session = new %v, id %q, %+v; want loaded %q with one apple", s.IsNew(), s.ID(), s.Value(), id)
		}
	})), first)
	wantCalls(t, store, "Get "+id, "Touch "+id)
	if c := sessionCookie(resp); c != nil {
		t.Errorf("cookie sent again without Rolling: %v", c)
	}
}

func TestChangedExistingSessionIsSavedWithoutCookie(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, addItem("pear"))), cookieFor("s1", secret))
	wantCalls(t, store, "Get s1", "Update s1")
	if c := sessionCookie(resp); c != nil {
		t.Errorf("cookie sent for an unchanged id with a session cookie: %v", c)
	}
}

func TestMaxAgeResendsCookieOnChange(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{MaxAge: 90*time.Minute + time.Millisecond})
	if c := sessionCookie(serve(m.Handler(handle(t, readOnly)), cookieFor("s1", secret))); c != nil {
		t.Errorf("cookie sent for an unchanged session: %v", c)
	}
	c := sessionCookie(serve(m.Handler(handle(t, addItem("pear"))), cookieFor("s1", secret)))
	if cookieID(t, c, secret) != "s1" || c.MaxAge != 5401 {
		t.Errorf("cookie = %v, want s1 with Max-Age 5401", c)
	}
}

func TestRollingSendsCookieEveryTime(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{Rolling: true, MaxAge: time.Hour})
	for range 2 {
		c := sessionCookie(serve(m.Handler(handle(t, readOnly)), cookieFor("s1", secret)))
		if cookieID(t, c, secret) != "s1" || c.MaxAge != 3600 {
			t.Errorf("cookie = %v, want s1 with Max-Age 3600", c)
		}
		wantCalls(t, store, "Get s1", "Touch s1")
	}
	// Rolling does not make an uninitialized session worth a cookie.
	if c := sessionCookie(serve(m.Handler(handle(t, readOnly)), nil)); c != nil {
		t.Errorf("cookie sent for an uninitialized session: %v", c)
	}
	wantCalls(t, store)
}

func TestResave(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{Resave: true})
	resp := serve(m.Handler(handle(t, readOnly)), cookieFor("s1", secret))
	wantCalls(t, store, "Get s1", "Update s1")
	if c := sessionCookie(resp); c != nil {
		t.Errorf("cookie sent on resave: %v", c)
	}
	// Resave does not apply to fresh sessions.
	serve(m.Handler(handle(t, readOnly)), nil)
	wantCalls(t, store)
}

func TestRegenerate(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("old", cart{Items: []string{"apple"}})
	m := newManager(t, store, httpsession.Options{})
	var newID string
	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		if err := s.Regenerate(r.Context()); err != nil {
			t.Errorf("Regenerate: %v", err)
		}
		s.Update(func(c *cart) { c.User = "ann" })
		newID = s.ID()
	})), cookieFor("old", secret))
	if newID == "old" || len(newID) != 32 {
		t.Fatalf("id after Regenerate = %q, want a new one", newID)
	}
	wantCalls(t, store, "Get old", "Delete old", "Create "+newID)
	if got := store.ids(); !slices.Equal(got, []string{newID}) {
		t.Errorf("stored ids = %q, want only %q", got, newID)
	}
	if v, _ := store.get(newID); v.User != "ann" || !slices.Equal(v.Items, []string{"apple"}) {
		t.Errorf("stored %+v, want ann with the apple carried over", v)
	}
	if id := cookieID(t, sessionCookie(resp), secret); id != newID {
		t.Errorf("cookie id = %q, want %q", id, newID)
	}
}

func TestRegenerateDeleteFails(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("old", cart{})
	store.deleteErr = errors.New("down")
	m := newManager(t, store, httpsession.Options{})
	serve(m.Handler(handle(t, func(_ http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		err := s.Regenerate(r.Context())
		if !errors.Is(err, store.deleteErr) || !strings.HasPrefix(err.Error(), "httpsession: ") {
			t.Errorf("Regenerate error = %v, want httpsession: ... down", err)
		}
		if s.ID() != "old" {
			t.Errorf("id after a failed Regenerate = %q, want old", s.ID())
		}
	})), cookieFor("old", secret))
	wantCalls(t, store, "Get old", "Delete old", "Touch old")
}

func TestDestroy(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		s.Destroy()
		if s.Value().User != "" {
			t.Errorf("Value() after Destroy = %+v, want zero", s.Value())
		}
	})), cookieFor("s1", secret))
	wantCalls(t, store, "Get s1", "Delete s1")
	if len(store.ids()) != 0 {
		t.Errorf("stored ids after Destroy = %q, want none", store.ids())
	}
	c := sessionCookie(resp)
	if c == nil || c.Value != "" || c.MaxAge >= 0 || !c.Expires.Before(time.Unix(1, 0)) {
		t.Errorf("Set-Cookie = %q, want an expired empty cookie", resp.Header.Get("Set-Cookie"))
	}
}

func TestSecretRotation(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{Secrets: []string{"new", "old"}, Rolling: true})
	resp := serve(m.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		if s.IsNew() || s.Value().User != "ann" {
			t.Errorf("session signed with the old secret not loaded: %+v", s.Value())
		}
	})), cookieFor("s1", "old"))
	if id := cookieID(t, sessionCookie(resp), "new"); id != "s1" {
		t.Errorf("re-sent cookie id = %q, want s1 signed with the new secret", id)
	}

	retired := newManager(t, store, httpsession.Options{Secrets: []string{"new"}})
	store.takeCalls()
	serve(retired.Handler(handle(t, func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		if !s.IsNew() {
			t.Error("cookie signed with a retired secret was accepted")
		}
	})), cookieFor("s1", "old"))
	wantCalls(t, store)
}

func TestBadCookieGivesFreshSession(t *testing.T) {
	good := httpsession.CookieValue("s1", secret)
	for name, value := range map[string]string{
		"tampered":    strings.Replace(good, "s1", "s2", 1),
		"unsigned":    "s1",
		"malformed":   "%zz%",
		"empty":       "",
		"wrong mac":   good[:len(good)-2],
		"only prefix": "s%3A",
	} {
		t.Run(name, func(t *testing.T) {
			store := newFakeStore[cart]()
			store.put("s1", cart{User: "ann"})
			store.put("s2", cart{User: "mallory"})
			m := newManager(t, store, httpsession.Options{})
			resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
				if !s.IsNew() || s.Value().User != "" {
					t.Errorf("session = %+v, new %v; want a fresh one", s.Value(), s.IsNew())
				}
			})), &http.Cookie{Name: "connect.sid", Value: value})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			wantCalls(t, store)
		})
	}
}

func TestExpiredSessionGetsNewID(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		if !s.IsNew() {
			t.Error("IsNew() = false for a missing session")
		}
		addItem("fig")(w, r, s)
	})), cookieFor("gone", secret))
	id := cookieID(t, sessionCookie(resp), secret)
	if id == "gone" {
		t.Error("the client's unknown id was reused")
	}
	wantCalls(t, store, "Get gone", "Create "+id)
}

// TestCookieBeforeHandlerReturns checks over a real connection that a
// response flushed mid-handler already carries the cookie and that the
// session was stored first.
func TestCookieBeforeHandlerReturns(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	release := make(chan struct{})
	srv := httptest.NewServer(m.Handler(handle(t, func(w http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
		w.WriteHeader(http.StatusEarlyHints) // informational: does not save
		s.Update(func(c *cart) { c.User = "ann" })
		io.WriteString(w, "partial ")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		<-release
		io.WriteString(w, "done")
	})))
	defer srv.Close()
	var once sync.Once
	releaseHandler := func() { once.Do(func() { close(release) }) }
	defer releaseHandler() // before srv.Close, which waits for the handler

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The handler is still blocked: the headers came from the flush.
	id := cookieID(t, sessionCookie(resp), secret)
	wantCalls(t, store, "Create "+id)
	releaseHandler()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "partial done" {
		t.Errorf("body = %q", body)
	}
}

func TestStoreGetErrorGoesToErrorHandler(t *testing.T) {
	store := newFakeStore[cart]()
	store.getErr = errors.New("connection refused")
	var got error
	m := newManager(t, store, httpsession.Options{
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			got = err
			http.Error(w, "sessions unavailable", http.StatusServiceUnavailable)
		},
	})
	resp := serve(m.Handler(handle(t, func(http.ResponseWriter, *http.Request, *httpsession.Session[cart]) {
		t.Error("handler called after a store failure")
	})), cookieFor("s1", secret))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", resp.StatusCode)
	}
	if !errors.Is(got, store.getErr) || !strings.HasPrefix(got.Error(), "httpsession: ") {
		t.Errorf("ErrorHandler got %v, want httpsession: ... connection refused", got)
	}

	// The default replies 500.
	m = newManager(t, store, httpsession.Options{})
	if resp := serve(m.Handler(handle(t, readOnly)), cookieFor("s1", secret)); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("default ErrorHandler status = %d, want 500", resp.StatusCode)
	}
}

func TestSaveErrorBeforeWriteGoesToErrorHandler(t *testing.T) {
	store := newFakeStore[cart]()
	store.setErr = errors.New("disk full")
	var got error
	m := newManager(t, store, httpsession.Options{
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			got = err
			w.WriteHeader(http.StatusInternalServerError)
		},
	})
	resp := serve(m.Handler(handle(t, addItem("fig"))), nil)
	if resp.StatusCode != http.StatusInternalServerError || !errors.Is(got, store.setErr) {
		t.Errorf("status %d, ErrorHandler got %v; want 500 and disk full", resp.StatusCode, got)
	}
	if c := sessionCookie(resp); c != nil {
		t.Errorf("cookie sent for a session that was not saved: %v", c)
	}
}

// A save that fails when the handler starts its response reaches
// ErrorHandler, which answers instead of the handler: the handler's status
// and body never go out, and its writes fail with ErrNotSaved.
func TestSaveErrorAtFirstWriteGoesToErrorHandler(t *testing.T) {
	for _, write := range []struct {
		name string
		fn   func(w http.ResponseWriter) error
	}{
		{"WriteHeader", func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusCreated)
			_, err := w.Write([]byte("created"))
			return err
		}},
		{"Write", func(w http.ResponseWriter) error { _, err := io.WriteString(w, "created"); return err }},
		{"ReadFrom", func(w http.ResponseWriter) error {
			_, err := io.Copy(w, strings.NewReader("created"))
			return err
		}},
		{"Flush", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
		{"Hijack", func(w http.ResponseWriter) error { _, _, err := http.NewResponseController(w).Hijack(); return err }},
	} {
		t.Run(write.name, func(t *testing.T) {
			store := newFakeStore[cart]()
			store.setErr = errors.New("disk full")
			var handled error
			m := newManager(t, store, httpsession.Options{
				ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
					handled = err
					http.Error(w, "session not saved", http.StatusServiceUnavailable)
				},
			})
			var werr error
			resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
				addItem("fig")(w, r, s)
				werr = write.fn(w)
			})), nil)
			if handled == nil || !strings.Contains(handled.Error(), "disk full") {
				t.Errorf("ErrorHandler got %v, want the save error", handled)
			}
			if !errors.Is(werr, httpsession.ErrNotSaved) {
				t.Errorf("the handler's write returned %v, want ErrNotSaved", werr)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "created") {
				t.Errorf("response = %d %q, want the error handler's 503 alone", resp.StatusCode, body)
			}
			if c := sessionCookie(resp); c != nil {
				t.Errorf("cookie sent for a session that was not saved: %v", c)
			}
		})
	}
}

func TestChangeAfterWriteIsNotSaved(t *testing.T) {
	store := newFakeStore[cart]()
	var log bytes.Buffer
	m := newManager(t, store, httpsession.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		io.WriteString(w, "hello")
		addItem("late")(w, r, s)
		if err := s.Regenerate(r.Context()); err == nil {
			t.Error("Regenerate after the response started succeeded")
		}
	})), nil)
	wantCalls(t, store)
	if c := sessionCookie(resp); c != nil {
		t.Errorf("cookie sent: %v", c)
	}
	if !strings.Contains(log.String(), "level=WARN") {
		t.Errorf("log = %q, want a warning", log.String())
	}
}

func TestCookieOptions(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{
		CookieName:        "sid",
		Path:              "/app",
		Domain:            "example.com",
		MaxAge:            time.Hour,
		AllowScriptAccess: true,
		Secure:            true,
		SameSite:          http.SameSiteLaxMode,
	})
	resp := serve(m.Handler(handle(t, addItem("fig"))), nil)
	got := resp.Header.Get("Set-Cookie")
	id := store.ids()[0]
	want := "sid=" + httpsession.CookieValue(id, secret) + "; Path=/app; Domain=example.com; Max-Age=3600; Secure; SameSite=Lax"
	if got != want {
		t.Errorf("Set-Cookie = %q\nwant %q", got, want)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	store := newFakeStore[cart]()
	for name, opts := range map[string]*httpsession.Options{
		"nil options":     nil,
		"no secrets":      {},
		"empty secret":    {Secrets: []string{"a", ""}},
		"negative MaxAge": {Secrets: []string{"a"}, MaxAge: -time.Second},
		"bad name":        {Secrets: []string{"a"}, CookieName: "a b"},
		"bad path":        {Secrets: []string{"a"}, Path: "/;x"},
	} {
		if _, err := httpsession.New[cart](store, opts); err == nil || !strings.HasPrefix(err.Error(), "httpsession: ") {
			t.Errorf("%s: New error = %v, want httpsession: ...", name, err)
		}
	}
	if _, err := httpsession.New[cart](nil, &httpsession.Options{Secrets: []string{"a"}}); err == nil {
		t.Error("New accepted a nil store")
	}
}

func TestNewCopiesOptions(t *testing.T) {
	store := newFakeStore[cart]()
	opts := &httpsession.Options{Secrets: []string{"first"}}
	m := newManager(t, store, *opts)
	m2, err := httpsession.New[cart](store, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Secrets[0] = "changed"
	if opts.CookieName != "" || opts.Path != "" {
		t.Errorf("New filled in the caller's options: %+v", opts)
	}
	for _, m := range []*httpsession.Manager[cart]{m, m2} {
		c := sessionCookie(serve(m.Handler(handle(t, addItem("fig"))), nil))
		cookieID(t, c, "first")
	}
}

func TestFromContextOutsideMiddleware(t *testing.T) {
	if s := httpsession.FromContext[cart](context.Background()); s != nil {
		t.Errorf("FromContext = %v, want nil", s)
	}
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	serve(m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if s := httpsession.FromContext[string](r.Context()); s != nil {
			t.Error("FromContext returned a session of another type")
		}
	})), nil)
}
