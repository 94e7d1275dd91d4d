package gorillastore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	ginsessions "github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	echosession "github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/gorillastore"
	"github.com/sessionstore/sessionstore/gorillastore/ginstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	mongotest.Main(m)
}

// bg bounds a server call the test makes itself.
var bg = mongotest.Context

// cookieName is the session cookie of the test apps.
const cookieName = "session"

// Keys for securecookie: a hash key and a block key per pair.
var (
	oldKeys = [][]byte{[]byte("old-hash-key-of-32-bytes-exactly"), []byte("old-block-key-16")}
	newKeys = [][]byte{[]byte("new-hash-key-of-32-bytes-exactly"), []byte("new-block-key-16")}
)

// keys joins key pairs for gorillastore.New.
func keys(pairs ...[][]byte) [][]byte {
	var all [][]byte
	for _, p := range pairs {
		all = append(all, p...)
	}
	return all
}

// newSessions returns a store for the adapter over coll, closed when the
// test ends. TTL index management is off: FerretDB v1 has no TTL indexes
// and reads filter expired sessions anyway.
func newSessions(t testing.TB, coll *mongo.Collection, opts *sessionstore.Options[[]byte]) *sessionstore.Store[[]byte] {
	t.Helper()
	if opts == nil {
		opts = &sessionstore.Options[[]byte]{}
	}
	opts.TTLIndex = ttl.Off
	s, err := gorillastore.NewSessionStore(coll, opts)
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

// newStore returns an adapter over sessions signing with the key pairs.
func newStore(t testing.TB, sessions *sessionstore.Store[[]byte], pairs ...[][]byte) *gorillastore.Store {
	t.Helper()
	if len(pairs) == 0 {
		pairs = [][][]byte{newKeys}
	}
	st, err := gorillastore.New(sessions, nil, keys(pairs...)...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A router serves the same routes through a web framework's session
// middleware over a store:
//
//	/inc              adds one to "count" with Change, writes the count
//	/count            writes "count" (a read that saves unchanged)
//	/set?k=key&v=val  sets key to val directly
//	/page             writes "user" and the flashes, the way a page is
//	                  rendered, and saves (an unchanged save when there are
//	                  no flashes)
//	/flash?m=message  adds a flash message
//	/logout           saves with MaxAge -1
//
// Every route saves the session. A cookie that securecookie refuses
// starts a new session, as the frameworks' users are told to do.
type router struct {
	name string
	new  func(t testing.TB, st *gorillastore.Store) http.Handler
}

var routers = []router{{"gin", ginRouter}, {"echo", echoRouter}}

// forEachRouter runs test once per router.
func forEachRouter(t *testing.T, test func(t *testing.T, r router)) {
	for _, r := range routers {
		t.Run(r.name, func(t *testing.T) { test(t, r) })
	}
}

func increment(v map[any]any) {
	n, _ := v["count"].(int)
	v["count"] = n + 1
}

// page renders the user and the flashes.
func page(user any, flashes []any) string {
	s := make([]string, len(flashes))
	for i, f := range flashes {
		s[i] = fmt.Sprint(f)
	}
	return fmt.Sprintf("user=%v flashes=%s", user, strings.Join(s, ","))
}

func ginRouter(t testing.TB, st *gorillastore.Store) http.Handler {
	r := gin.New()
	r.Use(ginsessions.Sessions(cookieName, &ginstore.Store{Store: st}))
	save := func(c *gin.Context, s ginsessions.Session, body string) {
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, "save: %v", err)
			return
		}
		c.String(http.StatusOK, body)
	}
	r.GET("/inc", func(c *gin.Context) {
		s := ginsessions.Default(c)
		if err := ginstore.Change(c, s, increment); err != nil {
			c.String(http.StatusInternalServerError, "change: %v", err)
			return
		}
		save(c, s, fmt.Sprint(s.Get("count")))
	})
	r.GET("/count", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Set("count", s.Get("count"))
		save(c, s, fmt.Sprint(s.Get("count")))
	})
	r.GET("/set", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Set(c.Query("k"), c.Query("v"))
		save(c, s, "ok")
	})
	r.GET("/page", func(c *gin.Context) {
		s := ginsessions.Default(c)
		body := page(s.Get("user"), s.Flashes())
		save(c, s, body)
	})
	r.GET("/flash", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.AddFlash(c.Query("m"))
		save(c, s, "ok")
	})
	r.GET("/logout", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Options(ginsessions.Options{Path: "/", MaxAge: -1})
		save(c, s, "bye")
	})
	return r
}

func echoRouter(t testing.TB, st *gorillastore.Store) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echosession.Middleware(st))
	// handle runs fn on the request's session and saves it.
	handle := func(fn func(c echo.Context, s *sessions.Session) string) echo.HandlerFunc {
		return func(c echo.Context) error {
			s, err := echosession.Get(cookieName, c)
			var sc securecookie.Error
			if err != nil && !(errors.As(err, &sc) && sc.IsDecode()) {
				return c.String(http.StatusInternalServerError, "get: "+err.Error())
			}
			body := fn(c, s)
			if err := s.Save(c.Request(), c.Response()); err != nil {
				return c.String(http.StatusInternalServerError, "save: "+err.Error())
			}
			return c.String(http.StatusOK, body)
		}
	}
	e.GET("/inc", handle(func(c echo.Context, s *sessions.Session) string {
		gorillastore.Change(c.Request(), s, increment)
		return fmt.Sprint(s.Values["count"])
	}))
	e.GET("/count", handle(func(c echo.Context, s *sessions.Session) string {
		return fmt.Sprint(s.Values["count"])
	}))
	e.GET("/set", handle(func(c echo.Context, s *sessions.Session) string {
		s.Values[c.QueryParam("k")] = c.QueryParam("v")
		return "ok"
	}))
	e.GET("/page", handle(func(c echo.Context, s *sessions.Session) string {
		return page(s.Values["user"], s.Flashes())
	}))
	e.GET("/flash", handle(func(c echo.Context, s *sessions.Session) string {
		s.AddFlash(c.QueryParam("m"))
		return "ok"
	}))
	e.GET("/logout", handle(func(c echo.Context, s *sessions.Session) string {
		s.Options.MaxAge = -1
		return "bye"
	}))
	return e
}

// A browser is a cookie jar and a client, visiting servers.
type browser struct {
	t    testing.TB
	jar  *cookiejar.Jar
	http *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, http: &http.Client{Jar: jar, Timeout: mongotest.CallTimeout}}
}

// serve starts an HTTP server for h, closed when the test ends.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get requests path of srv and returns the response and its body. It
// fails the test unless the status is 200.
func (b *browser) get(srv *httptest.Server, path string, query ...string) (*http.Response, string) {
	b.t.Helper()
	resp, body, err := b.try(srv, path, query...)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, body
}

// try is get that returns its failure.
func (b *browser) try(srv *httptest.Server, path string, query ...string) (*http.Response, string, error) {
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := srv.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := b.http.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, string(body), fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return resp, string(body), nil
}

// body requests path and returns the body.
func (b *browser) body(srv *httptest.Server, path string, query ...string) string {
	b.t.Helper()
	_, body := b.get(srv, path, query...)
	return body
}

// cookie returns the session cookie the browser holds for srv, "" when
// none.
func (b *browser) cookie(srv *httptest.Server) string {
	u, _ := url.Parse(srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

// setCookie makes the browser hold value as its session cookie for srv.
func (b *browser) setCookie(srv *httptest.Server, value string) {
	u, _ := url.Parse(srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: value, Path: "/"}})
}

// sessionID returns the id signed in cookie value, decoded with the key
// pairs.
func sessionID(t testing.TB, value string, pairs ...[][]byte) string {
	t.Helper()
	var id string
	if err := securecookie.DecodeMulti(cookieName, value, &id, securecookie.CodecsFromPairs(keys(pairs...)...)...); err != nil {
		t.Fatalf("session cookie does not decode: %v", err)
	}
	return id
}

// storedValues returns the values of session id as stored in coll, and
// whether there is such a document.
func storedValues(t testing.TB, coll *mongo.Collection, id string) (map[any]any, bool) {
	t.Helper()
	raw, ok := mongotest.RawDoc(t, coll, id)
	if !ok {
		return nil, false
	}
	_, data, ok := raw.Lookup("session").BinaryOK()
	if !ok {
		t.Fatalf("document %q: session is not binary: %v", id, raw.Lookup("session"))
	}
	v, err := gorillastore.Gob{}.Decode(data)
	if err != nil {
		t.Fatalf("document %q: %v", id, err)
	}
	return v, true
}

// storedExpires returns the expires field of document id.
func storedExpires(t testing.TB, coll *mongo.Collection, id string) time.Time {
	t.Helper()
	raw, ok := mongotest.RawDoc(t, coll, id)
	if !ok {
		t.Fatalf("document %q is missing", id)
	}
	ms, ok := raw.Lookup("expires").DateTimeOK()
	if !ok {
		t.Fatalf("document %q: expires is not a date: %v", id, raw.Lookup("expires"))
	}
	return time.UnixMilli(ms)
}

// sortedKeys returns the keys of v, formatted and sorted.
func sortedKeys(v map[any]any) []string {
	ks := make([]string, 0, len(v))
	for k := range v {
		ks = append(ks, fmt.Sprint(k))
	}
	sort.Strings(ks)
	return ks
}
