package express_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/integration/expressapp"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// interop is the Go service's session: the fields it shares with the
// Express app. The Express app also stores fields this type does not
// declare.
type interop struct {
	User  string    `bson:"user,omitempty" json:"user,omitempty"`
	Items []string  `bson:"items,omitempty" json:"items,omitempty"`
	When  time.Time `bson:"when,omitempty" json:"when,omitzero"`
	Text  string    `bson:"text,omitempty" json:"text,omitempty"`
	Big   string    `bson:"big,omitempty" json:"big,omitempty"`
}

type record = httpsession.Record[interop]

const (
	secret = "keyboard cat"
	// maxPayload is the Go stores' MaxPayload, small so that a session
	// near it is quick to move through FerretDB.
	maxPayload = 256 << 10
)

// pair is an Express app and a Go service on one collection, with the
// same secret and cookie name.
type pair struct {
	name    string
	express string // base URL
	goURL   string // base URL
	store   *sessionstore.Store[record]
	opts    *sessionstore.Options[record]
	coll    *mongo.Collection
	// hold, when set, is called by the Go service's /add after the change
	// and before the save.
	hold func()
}

// pairConfig describes a pair: the Express app, and the Go options that
// mirror it (or, for MaxAge, differ on purpose).
type pairConfig struct {
	app   expressapp.App
	store sessionstore.Options[record]
	mw    httpsession.Options
}

// configs are the pairs of the suite, by name.
func configs() []pairConfig {
	main := func(store string) pairConfig {
		// Express: a two-hour cookie; Go: one hour for its own new
		// sessions, so that following the stored cookie shows.
		return pairConfig{
			app: expressapp.App{Name: store, Store: store, Secret: secret, TTL: 3600,
				Cookie: map[string]any{"maxAge": 2 * 3600 * 1000, "sameSite": "strict"}},
			store: sessionstore.Options[record]{TTL: time.Hour},
			mw:    httpsession.Options{MaxAge: time.Hour, SameSite: http.SameSiteStrictMode},
		}
	}
	browser := func(store string) pairConfig {
		// express-session's default cookie (browser session), with
		// saveUninitialized, resave and rolling on both sides.
		return pairConfig{
			app: expressapp.App{Name: store + "-browser", Store: store, Secret: secret, TTL: 1800, Cookie: map[string]any{},
				Resave: true, SaveUninitialized: true, Rolling: true},
			store: sessionstore.Options[record]{TTL: 30 * time.Minute},
			mw:    httpsession.Options{SaveUninitialized: true, Resave: true, Rolling: true},
		}
	}
	prefixed := func(store string) pairConfig {
		c := main(store)
		c.app.Name, c.app.Prefix, c.store.Prefix = store+"-prefix", "app:", "app:"
		return c
	}
	return []pairConfig{
		main("iwsio"), main("connect-mongo"),
		browser("iwsio"), browser("connect-mongo"),
		prefixed("iwsio"), prefixed("connect-mongo"),
	}
}

// startPairs starts the Express apps in one Node process and a Go
// service for each, over fresh collections.
func startPairs(t *testing.T) map[string]*pair {
	t.Helper()
	tools := expressapp.Require(t)
	dir := expressapp.Install(t, tools)
	cfgs := configs()
	pairs := make(map[string]*pair, len(cfgs))
	apps := make([]expressapp.App, 0, len(cfgs))
	for _, c := range cfgs {
		coll := mongotest.Collection(t)
		c.app.Collection = coll.Name()
		apps = append(apps, c.app)
		opts := c.store
		opts.Codec = codec.BSON[record]{}
		opts.TTLIndex = ttl.Off
		opts.MaxPayload = maxPayload
		opts.UpdateAttempts = 50
		store, err := sessionstore.New(coll, &opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
			defer cancel()
			if err := store.Close(ctx); err != nil {
				t.Errorf("close %s store: %v", c.app.Name, err)
			}
		})
		p := &pair{name: c.app.Name, store: store, opts: &opts, coll: coll}
		mw := c.mw
		mw.Secrets = []string{secret}
		mw.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})).With("app", "go-"+c.app.Name)
		m, err := httpsession.New[interop](store, &mw)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m.Handler(p.goMux()))
		t.Cleanup(srv.Close)
		p.goURL = srv.URL
		pairs[p.name] = p
	}
	for name, url := range expressapp.Start(t, tools, dir, expressapp.DatabaseURI(t, mongotest.URI(), mongotest.Database), apps) {
		pairs[name].express = url
	}
	return pairs
}

// goReply is what the Go service answers.
type goReply struct {
	ID      string  `json:"id"`
	IsNew   bool    `json:"isNew"`
	Session interop `json:"session"`
	Cookie  struct {
		MaxAge   int64     `json:"maxAge"` // ms
		Expires  time.Time `json:"expires"`
		SameSite int       `json:"sameSite"`
	} `json:"cookie"`
}

// goMux is the Go service: the routes of server.mjs that the checks use.
func (p *pair) goMux() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, s *httpsession.Session[interop]) {
		var r goReply
		r.ID, r.IsNew, r.Session = s.ID(), s.IsNew(), s.Value()
		c := s.Cookie()
		r.Cookie.MaxAge, r.Cookie.Expires, r.Cookie.SameSite = c.MaxAge.Milliseconds(), c.Expires, int(c.SameSite)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r)
	}
	sess := func(r *http.Request) *httpsession.Session[interop] {
		return httpsession.FromContext[interop](r.Context())
	}
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) { reply(w, sess(r)) })
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		var in interop
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := sess(r)
		s.Update(func(v *interop) {
			if in.User != "" {
				v.User = in.User
			}
			if !in.When.IsZero() {
				v.When = in.When
			}
			if in.Text != "" {
				v.Text = in.Text
			}
			if in.Big != "" {
				v.Big = in.Big
			}
		})
		reply(w, s)
	})
	mux.HandleFunc("GET /add", func(w http.ResponseWriter, r *http.Request) {
		s := sess(r)
		item := r.URL.Query().Get("item")
		s.Update(func(v *interop) { v.Items = append(v.Items, item) })
		if p.hold != nil {
			p.hold()
		}
		reply(w, s)
	})
	mux.HandleFunc("GET /destroy", func(w http.ResponseWriter, r *http.Request) {
		s := sess(r)
		s.Destroy()
		reply(w, s)
	})
	return mux
}

// browser keeps the session cookie, as a browser would for one site
// served by both apps.
type browser struct {
	cookie string // connect.sid's value, or ""
}

// response is an answer to a browser's request.
type response struct {
	status    int
	body      []byte
	setCookie *http.Cookie // connect.sid's Set-Cookie, or nil
}

// do sends a request with the browser's cookie and keeps the cookie the
// response sets. body, if not nil, is sent as JSON.
func (b *browser) do(t *testing.T, method, url string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "connect.sid", Value: b.cookie})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	r := response{status: resp.StatusCode, body: got}
	for _, c := range resp.Cookies() {
		if c.Name != "connect.sid" {
			continue
		}
		r.setCookie = c
		if c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
			b.cookie = ""
		} else {
			b.cookie = c.Value
		}
	}
	return r
}

// expressReply is what the Express apps answer.
type expressReply struct {
	ID      string         `json:"id"`
	Session map[string]any `json:"session"`
}

// expressDo sends a request to the pair's Express app and decodes its
// answer, failing the test on any status but 200.
func (p *pair) expressDo(t *testing.T, b *browser, method, path string, body any) (expressReply, response) {
	t.Helper()
	return decodeReply[expressReply](t, b, "Express", method, p.express, path, body)
}

// goDo is expressDo for the pair's Go service.
func (p *pair) goDo(t *testing.T, b *browser, method, path string, body any) (goReply, response) {
	t.Helper()
	return decodeReply[goReply](t, b, "Go", method, p.goURL, path, body)
}

// decodeReply sends a request to the app named who at base and decodes
// its answer into R, failing the test on any status but 200.
func decodeReply[R any](t *testing.T, b *browser, who, method, base, path string, body any) (R, response) {
	t.Helper()
	var out R
	r := b.do(t, method, base+path, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s %s: status %d: %s", who, method, path, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%s %s %s: %v in %s", who, method, path, err, r.body)
	}
	return out, r
}

// doc returns the stored document whose _id is storedID, and whether it
// exists.
func (p *pair) doc(t *testing.T, storedID string) (bson.Raw, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	raw, err := p.coll.FindOne(ctx, bson.D{{Key: "_id", Value: storedID}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("find %q: %v", storedID, err)
	}
	return raw, true
}

// mustDoc returns the stored document of the session id.
func (p *pair) mustDoc(t *testing.T, id string) bson.Raw {
	t.Helper()
	raw, ok := p.doc(t, p.opts.Prefix+id)
	if !ok {
		t.Fatalf("no document for session %s in %s", id, p.coll.Name())
	}
	return raw
}

// setExpires sets the stored expiry of session id, as if it were older.
func (p *pair) setExpires(t *testing.T, id string, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	_, err := p.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.opts.Prefix + id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: at}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// flush writes the Go store's buffered touches.
func (p *pair) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
	defer cancel()
	if err := p.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// within reports whether got is within 10 seconds of want.
func within(got, want time.Time) bool { return got.Sub(want).Abs() < 10*time.Second }

// cookieField returns the stored session's cookie object.
func cookieField(raw bson.Raw) bson.Raw {
	d, _ := raw.Lookup("session", "cookie").DocumentOK()
	return d
}

// parseTime reads the ISO date JSON.stringify writes.
func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON date", v, v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// bg bounds a server call the test makes itself.
var bg = mongotest.Context

// interval is when a request ran.
type interval struct{ start, end time.Time }

func (i interval) overlaps(j interval) bool { return i.start.Before(j.end) && j.start.Before(i.end) }
