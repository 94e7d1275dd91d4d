package express_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore"
)

// unicodeText is stored by one side and read by the other.
const unicodeText = "héllo wörld ✓ 日本語 🎉 \u0000-free, \"quoted\" \\ /"

// TestExpressInterop runs an Express app (express-session over
// @iwsio/mongodb-express-session and over connect-mongo with stringify:
// false, the versions pinned in node/package.json) and a Go service
// (httpsession over sessionstore) on the same collections, and checks that
// each reads, changes, touches and destroys the other's sessions.
func TestExpressInterop(t *testing.T) {
	pairs := startPairs(t)
	for _, store := range []string{"iwsio", "connect-mongo"} {
		t.Run(store, func(t *testing.T) {
			p, pb, pp := pairs[store], pairs[store+"-browser"], pairs[store+"-prefix"]
			t.Run("express creates, go reads", func(t *testing.T) { expressCreatesGoReads(t, p) })
			t.Run("go creates, express reads", func(t *testing.T) { goCreatesExpressReads(t, p) })
			t.Run("express modifies a go session", func(t *testing.T) { expressModifiesGoSession(t, p) })
			t.Run("go modifies an express session, unknown fields kept", func(t *testing.T) { goModifiesExpressSession(t, p) })
			t.Run("go touch extends an express session by its cookie", func(t *testing.T) { goTouch(t, p) })
			t.Run("express touch extends a go session by its cookie", func(t *testing.T) { expressTouch(t, p) })
			t.Run("go destroy seen by express", func(t *testing.T) { goDestroy(t, p) })
			t.Run("express destroy seen by go within the coherence bound", func(t *testing.T) { expressDestroy(t, p) })
			t.Run("dates and unicode both ways", func(t *testing.T) { datesAndUnicode(t, p) })
			t.Run("session near MaxPayload both ways; over it is an error", func(t *testing.T) { nearMaxPayload(t, p) })
			t.Run("a session go cannot decode is a fresh one for go, kept for express", func(t *testing.T) { undecodable(t, p) })
			t.Run("saveUninitialized false on both sides", func(t *testing.T) { uninitializedNotSaved(t, p) })
			t.Run("saveUninitialized true on both sides", func(t *testing.T) { uninitializedSaved(t, pb) })
			t.Run("resave on both sides", func(t *testing.T) { resave(t, pb) })
			t.Run("rolling cookies on both sides", func(t *testing.T) { rolling(t, p, pb) })
			t.Run("browser-session cookie stays one", func(t *testing.T) { browserSession(t, pb) })
			for _, form := range []string{"true", "false", "lax", "strict", "none"} {
				t.Run("sameSite "+form, func(t *testing.T) { sameSite(t, p, form) })
			}
			t.Run("partitioned and priority", func(t *testing.T) { partitionedPriority(t, p) })
			t.Run("prefix", func(t *testing.T) { prefix(t, pp) })
			t.Run("express change during a go request is merged", func(t *testing.T) { expressChangeMerged(t, p) })
			t.Run("concurrent changes from both sides merged or reported, never lost", func(t *testing.T) { concurrentChanges(t, p) })
		})
	}
}

// expressSession creates a session on the Express app with user and
// unknown fields of several BSON types, and returns its id.
func expressSession(t *testing.T, p *pair, b *browser, user string) string {
	t.Helper()
	r, _ := p.expressDo(t, b, http.MethodPost, "/set", map[string]any{
		"user": user,
		"extra": map[string]any{
			"nested": map[string]any{"half": 1.5, "count": 7, "big": 3e10},
			"flag":   true, "none": nil, "list": []any{1, "a", map[string]any{"k": "v"}},
		},
	})
	if r.ID == "" || b.cookie == "" {
		t.Fatal("Express created no session")
	}
	return r.ID
}

func expressCreatesGoReads(t *testing.T, p *pair) {
	b := &browser{}
	id := expressSession(t, p, b, "ann")
	g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
	if g.IsNew || g.ID != id || g.Session.User != "ann" {
		t.Fatalf("Go read %+v, want session %s with user ann", g, id)
	}
	if g.Cookie.MaxAge != 2*3600*1000 || !within(g.Cookie.Expires, time.Now().Add(2*time.Hour)) || g.Cookie.SameSite != int(http.SameSiteStrictMode) {
		t.Errorf("Go read the cookie as %+v, want Express's: 2h, expiring in 2h, strict", g.Cookie)
	}
}

func goCreatesExpressReads(t *testing.T, p *pair) {
	b := &browser{}
	g, _ := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob"})
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e.ID != g.ID || e.Session["user"] != "bob" {
		t.Fatalf("Express read %+v, want Go's session %s with user bob", e, g.ID)
	}
	c, _ := e.Session["cookie"].(map[string]any)
	if c["originalMaxAge"] != float64(3600*1000) || !within(parseTime(t, c["expires"]), time.Now().Add(time.Hour)) || c["sameSite"] != "strict" {
		t.Errorf("Express's cookie %v, want Go's: originalMaxAge 3600000, expiring in an hour, strict", c)
	}
}

func expressModifiesGoSession(t *testing.T, p *pair) {
	b := &browser{}
	p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob", "text": "kept"})
	p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": "carol"})
	g := goSees(t, p, b, func(g goReply) bool { return g.Session.User == "carol" }, "Express's change")
	if g.Session.Text != "kept" {
		t.Errorf("Go read %+v after Express's change, want text kept", g.Session)
	}
}

// goSees asks the Go service for b's session until cond holds, and fails
// the test if it takes longer than the coherence bound: a Go instance
// may serve a session from memory for that long after Express changed
// it.
func goSees(t *testing.T, p *pair, b *browser, cond func(goReply) bool, what string) goReply {
	t.Helper()
	cookie := b.cookie
	since := time.Now()
	bound := coherenceBound(p)
	const slack = 500 * time.Millisecond // polling and request time
	for {
		b.cookie = cookie
		g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
		if cond(g) {
			if d := time.Since(since); d > 100*time.Millisecond {
				t.Logf("Go saw %s %v after it (bound %v)", what, d.Round(time.Millisecond), bound)
			}
			return g
		}
		if time.Since(since) > bound+slack {
			t.Fatalf("Go does not see %s %v after it; the bound is %v (read %+v)", what, time.Since(since), bound, g)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func goModifiesExpressSession(t *testing.T, p *pair) {
	b := &browser{}
	id := expressSession(t, p, b, "ann")
	before := p.mustDoc(t, id)
	p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "dave"})
	after := p.mustDoc(t, id)
	if got, want := after.Lookup("session", "extra"), before.Lookup("session", "extra"); !got.Equal(want) {
		t.Errorf("unknown fields after a Go save:\n%s\nwant as Express stored them:\n%s", got, want)
	}
	for _, k := range [][]string{{"nested", "half"}, {"nested", "count"}, {"nested", "big"}, {"flag"}, {"none"}, {"list"}} {
		path := append([]string{"session", "extra"}, k...)
		if after.Lookup(path...).Type != before.Lookup(path...).Type {
			t.Errorf("%s changed BSON type", strings.Join(path, "."))
		}
	}
	expires := after.Lookup("expires").Time()
	if !within(expires, time.Now().Add(2*time.Hour)) {
		t.Errorf("expires = %v after a Go save, want now + 2h (Express's cookie), not the Go store's 1h", expires)
	}
	if !within(cookieExpiry(t, after), expires) {
		t.Errorf("cookie expiry %v, document expires %v: want the same", cookieExpiry(t, after), expires)
	}
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e.ID != id || e.Session["user"] != "dave" || e.Session["extra"] == nil {
		t.Fatalf("Express read %v, want user dave with extra", e.Session)
	}
	c := e.Session["cookie"].(map[string]any)
	if exp := parseTime(t, c["expires"]); !within(exp, time.Now().Add(2*time.Hour)) {
		t.Errorf("Express's cookie.expires = %v, want in two hours", exp)
	}
}

// cookieExpiry returns the stored cookie's expiry, under _expires or
// expires.
func cookieExpiry(t *testing.T, doc bson.Raw) time.Time {
	t.Helper()
	c := cookieField(doc)
	for _, k := range []string{"_expires", "expires"} {
		if v, err := c.LookupErr(k); err == nil && v.Type == bson.TypeDateTime {
			return v.Time()
		}
	}
	t.Fatalf("the stored cookie has no expiry: %s", c)
	return time.Time{}
}

func goTouch(t *testing.T, p *pair) {
	b := &browser{}
	id := expressSession(t, p, b, "ann")
	p.setExpires(t, id, time.Now().Add(10*time.Minute))
	p.goDo(t, b, http.MethodGet, "/get", nil)
	p.flush(t)
	if exp := p.mustDoc(t, id).Lookup("expires").Time(); !within(exp, time.Now().Add(2*time.Hour)) {
		t.Errorf("expires = %v after a Go touch, want now + 2h (the cookie's lifetime)", exp)
	}
}

func expressTouch(t *testing.T, p *pair) {
	b := &browser{}
	g, _ := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob"})
	p.setExpires(t, g.ID, time.Now().Add(10*time.Minute))
	p.expressDo(t, b, http.MethodGet, "/get", nil)
	if exp := p.mustDoc(t, g.ID).Lookup("expires").Time(); !within(exp, time.Now().Add(time.Hour)) {
		t.Errorf("expires = %v after an Express touch, want now + 1h (the Go cookie's lifetime)", exp)
	}
}

func goDestroy(t *testing.T, p *pair) {
	b := &browser{}
	id := expressSession(t, p, b, "ann")
	cookie := b.cookie
	p.goDo(t, b, http.MethodGet, "/destroy", nil)
	if _, ok := p.doc(t, p.opts.Prefix+id); ok {
		t.Fatal("the document is still there after a Go destroy")
	}
	b.cookie = cookie // a browser that kept the old cookie
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e.ID == id || e.Session["user"] != nil {
		t.Errorf("Express still serves the destroyed session: %v", e)
	}
}

// coherenceBound is how long after another app's change a Go instance
// may still serve a session from memory: MaxStaleness, as the store's
// change feed sees every writer.
func coherenceBound(p *pair) time.Duration {
	if p.opts.MaxStaleness > 0 {
		return p.opts.MaxStaleness
	}
	return sessionstore.DefaultMaxStaleness
}

func expressDestroy(t *testing.T, p *pair) {
	b := &browser{}
	g, _ := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob"})
	cookie := b.cookie
	p.goDo(t, b, http.MethodGet, "/get", nil) // in the Go store's memory now
	p.expressDo(t, b, http.MethodGet, "/destroy", nil)
	b.cookie = cookie
	goSees(t, p, b, func(r goReply) bool { return r.IsNew }, "Express's destroy")
	if _, ok := p.doc(t, p.opts.Prefix+g.ID); ok {
		t.Error("Go brought the destroyed session back")
	}
}

func datesAndUnicode(t *testing.T, p *pair) {
	when := time.Date(2026, 2, 3, 4, 5, 6, 789e6, time.UTC)
	b := &browser{}
	p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"when": map[string]any{"$date": when.Format(time.RFC3339Nano)}, "text": unicodeText})
	g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
	if !g.Session.When.Equal(when) || g.Session.Text != unicodeText {
		t.Errorf("Go read when %v text %q, want %v and %q", g.Session.When, g.Session.Text, when, unicodeText)
	}
	b = &browser{}
	when2 := when.Add(time.Hour)
	p.goDo(t, b, http.MethodPost, "/set", map[string]any{"when": when2, "text": unicodeText + "!"})
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if got := parseTime(t, e.Session["when"]); !got.Equal(when2) || e.Session["text"] != unicodeText+"!" {
		t.Errorf("Express read when %v text %q, want %v and %q", got, e.Session["text"], when2, unicodeText+"!")
	}
	// Stored as a BSON date, not a string.
	if v := p.mustDoc(t, e.ID).Lookup("session", "when"); v.Type != bson.TypeDateTime {
		t.Errorf("when stored as BSON %s, want a date", v.Type)
	}
}

func nearMaxPayload(t *testing.T, p *pair) {
	near := strings.Repeat("x", maxPayload-4<<10)
	b := &browser{}
	p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"big": near})
	g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
	if len(g.Session.Big) != len(near) {
		t.Errorf("Go read %d bytes of Express's big field, want %d", len(g.Session.Big), len(near))
	}
	b = &browser{}
	g, _ = p.goDo(t, b, http.MethodPost, "/set", map[string]any{"big": near})
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if s, _ := e.Session["big"].(string); len(s) != len(near) {
		t.Errorf("Express read %d bytes of Go's big field, want %d", len(s), len(near))
	}
	before := p.mustDoc(t, g.ID)
	r := b.do(t, http.MethodPost, p.goURL+"/set", map[string]any{"big": near + strings.Repeat("y", 8<<10)})
	if r.status != http.StatusInternalServerError {
		t.Errorf("a Go save over MaxPayload answered %d %s, want 500", r.status, r.body)
	}
	if after := p.mustDoc(t, g.ID); !after.Lookup("session").Equal(before.Lookup("session")) {
		t.Error("the session changed after a failed save")
	}
}

func undecodable(t *testing.T, p *pair) {
	b := &browser{}
	e, _ := p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": map[string]any{"first": "ann"}})
	before := p.mustDoc(t, e.ID)
	for range 2 {
		if g, _ := p.goDo(t, b, http.MethodGet, "/get", nil); !g.IsNew || g.ID == e.ID {
			t.Fatalf("Go answered %+v for a session whose user it cannot decode, want a fresh session", g)
		}
	}
	if after := p.mustDoc(t, e.ID); !after.Lookup("session").Equal(before.Lookup("session")) {
		t.Errorf("the document changed: %s", after)
	}
	if e2, _ := p.expressDo(t, b, http.MethodGet, "/get", nil); e2.ID != e.ID || e2.Session["user"] == nil {
		t.Errorf("Express lost its session: %v", e2)
	}
}

// count returns the number of documents of p's collection.
func count(t *testing.T, p *pair) int64 {
	t.Helper()
	n, err := p.coll.CountDocuments(bg(t), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func uninitializedNotSaved(t *testing.T, p *pair) {
	before := count(t, p)
	b := &browser{}
	_, r1 := p.expressDo(t, b, http.MethodGet, "/get", nil)
	_, r2 := p.goDo(t, b, http.MethodGet, "/get", nil)
	if r1.setCookie != nil || r2.setCookie != nil {
		t.Errorf("an unchanged new session got a cookie: Express %v, Go %v", r1.setCookie, r2.setCookie)
	}
	if n := count(t, p); n != before {
		t.Errorf("%d documents, want %d: an unchanged new session was stored", n, before)
	}
}

func uninitializedSaved(t *testing.T, p *pair) {
	b := &browser{}
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
	if g.IsNew || g.ID != e.ID {
		t.Errorf("Go read %+v, want Express's uninitialized session %s", g, e.ID)
	}
	b = &browser{}
	g, _ = p.goDo(t, b, http.MethodGet, "/get", nil)
	if b.cookie == "" {
		t.Fatal("Go's uninitialized session sent no cookie")
	}
	e, _ = p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e.ID != g.ID {
		t.Errorf("Express answered session %s, want Go's uninitialized %s", e.ID, g.ID)
	}
}

func resave(t *testing.T, p *pair) {
	// Express re-saves a Go session it did not change; a Go change after
	// that keeps both.
	b := &browser{}
	g, _ := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob", "text": "go"})
	p.expressDo(t, b, http.MethodGet, "/get", nil)
	p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob2"})
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e.ID != g.ID || e.Session["user"] != "bob2" || e.Session["text"] != "go" {
		t.Errorf("after both resaves Express read %v", e.Session)
	}
	// Go re-saves an Express session it did not change: unknown fields
	// stay.
	b = &browser{}
	id := expressSession(t, p, b, "ann")
	before := p.mustDoc(t, id)
	p.goDo(t, b, http.MethodGet, "/get", nil)
	after := p.mustDoc(t, id)
	if !after.Lookup("session", "extra").Equal(before.Lookup("session", "extra")) {
		t.Errorf("a Go resave changed the unknown fields: %s", after.Lookup("session"))
	}
	if after.Lookup("rev").Type == bson.Type(0) {
		t.Error("a Go resave did not save (no rev)")
	}
}

func rolling(t *testing.T, p, pb *pair) {
	// Without rolling (p), an unchanged session gets no cookie.
	b := &browser{}
	p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": "ann"})
	if _, r := p.goDo(t, b, http.MethodGet, "/get", nil); r.setCookie != nil {
		t.Errorf("Go sent a cookie for an unchanged session without rolling: %v", r.setCookie)
	}
	if _, r := p.expressDo(t, b, http.MethodGet, "/get", nil); r.setCookie != nil {
		t.Errorf("Express sent a cookie for an unchanged session without rolling: %v", r.setCookie)
	}
	// With rolling (pb), every response sends it, with the stored
	// cookie's lifetime: Express makes it 90 minutes.
	b = &browser{}
	p2 := pb
	p2.expressDo(t, b, http.MethodGet, "/cookie?maxAge=5400000", nil)
	_, r := p2.goDo(t, b, http.MethodGet, "/get", nil)
	if r.setCookie == nil || r.setCookie.MaxAge != 5400 {
		t.Errorf("Go's rolling cookie %v, want Max-Age=5400 from Express's cookie", r.setCookie)
	}
	_, r = p2.expressDo(t, b, http.MethodGet, "/get", nil)
	if r.setCookie == nil || !within(r.setCookie.Expires, time.Now().Add(90*time.Minute)) {
		t.Errorf("Express's rolling cookie %v, want one expiring in 90 minutes", r.setCookie)
	}
}

func browserSession(t *testing.T, p *pair) {
	b := &browser{}
	e, _ := p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": "ann"})
	_, r := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"text": "go"})
	if r.setCookie == nil || r.setCookie.MaxAge != 0 || !r.setCookie.Expires.IsZero() {
		t.Errorf("Go's cookie %q, want a browser-session cookie", r.setCookie)
	}
	doc := p.mustDoc(t, e.ID)
	c := cookieField(doc)
	if v := c.Lookup("originalMaxAge"); v.Type != bson.TypeNull {
		t.Errorf("cookie.originalMaxAge = %v after a Go save, want null", v)
	}
	for _, k := range []string{"expires", "_expires"} {
		if v, err := c.LookupErr(k); err == nil && v.Type != bson.TypeNull {
			t.Errorf("cookie.%s = %v after a Go save, want null", k, v)
		}
	}
	if exp := doc.Lookup("expires").Time(); !within(exp, time.Now().Add(30*time.Minute)) {
		t.Errorf("expires = %v, want now + the 30-minute TTL both sides use", exp)
	}
	e2, r2 := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if e2.ID != e.ID || e2.Session["user"] != "ann" || e2.Session["text"] != "go" {
		t.Errorf("Express read %v, want its session with Go's change", e2)
	}
	if r2.setCookie == nil || !r2.setCookie.Expires.IsZero() || r2.setCookie.MaxAge != 0 {
		t.Errorf("Express's cookie %v, want a browser-session cookie still", r2.setCookie)
	}
}

// sameSiteAttr is the SameSite attribute each form of express-session's
// sameSite sends.
var sameSiteAttr = map[string]http.SameSite{
	"true": http.SameSiteStrictMode, "false": 0, "lax": http.SameSiteLaxMode,
	"strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode,
}

func sameSite(t *testing.T, p *pair, form string) {
	b := &browser{}
	e, _ := p.expressDo(t, b, http.MethodGet, "/cookie?sameSite="+form, nil)
	before := cookieField(p.mustDoc(t, e.ID)).Lookup("sameSite")
	_, r := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "go"})
	if r.setCookie == nil || r.setCookie.SameSite != sameSiteAttr[form] {
		t.Errorf("Go's cookie %v, want SameSite %v", r.setCookie, sameSiteAttr[form])
	}
	if after := cookieField(p.mustDoc(t, e.ID)).Lookup("sameSite"); !after.Equal(before) {
		t.Errorf("sameSite stored as %v after a Go save, want %v as Express stored it", after, before)
	}
	e, r = p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"text": "again"})
	if e.Session["user"] != "go" {
		t.Errorf("Express read %v", e.Session)
	}
	want := map[string]any{"true": true, "false": false}[form]
	if want == nil {
		want = form
	}
	if got := e.Session["cookie"].(map[string]any)["sameSite"]; got != want {
		t.Errorf("Express's sameSite = %v, want %v", got, want)
	}
	if r.setCookie == nil || r.setCookie.SameSite != sameSiteAttr[form] {
		t.Errorf("Express's cookie %v, want SameSite %v", r.setCookie, sameSiteAttr[form])
	}
}

func partitionedPriority(t *testing.T, p *pair) {
	b := &browser{}
	p.expressDo(t, b, http.MethodGet, "/cookie?partitioned=true&priority=high", nil)
	_, r := p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "go"})
	if r.setCookie == nil || !r.setCookie.Partitioned || !strings.Contains(r.setCookie.Raw, "Priority=High") {
		t.Errorf("Go's cookie %q, want Partitioned and Priority=High", r.setCookie.Raw)
	}
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	if c := e.Session["cookie"].(map[string]any); c["partitioned"] != true || c["priority"] != "high" {
		t.Errorf("Express's cookie %v after a Go save, want partitioned and priority high", c)
	}
}

// prefix checks what the Node stores do with a prefix: connect-mongo's
// transformId matches Go's Prefix; @iwsio/mongodb-express-session 0.4.10
// takes a prefix option and never applies it.
func prefix(t *testing.T, p *pair) {
	b := &browser{}
	e, _ := p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": "ann"})
	_, prefixed := p.doc(t, "app:"+e.ID)
	_, bare := p.doc(t, e.ID)
	g, _ := p.goDo(t, b, http.MethodGet, "/get", nil)
	if strings.HasPrefix(p.name, "iwsio") {
		if prefixed || !bare {
			t.Fatalf("stored with prefix %v, bare %v: want @iwsio 0.4.10 to ignore its prefix", prefixed, bare)
		}
		if !g.IsNew {
			t.Error("Go with Prefix app: found a session stored without it")
		}
		t.Log("@iwsio/mongodb-express-session 0.4.10 ignores prefix: with a prefix on both sides, neither finds the other's sessions")
		return
	}
	if !prefixed || bare {
		t.Fatalf("stored with prefix %v, bare %v: want connect-mongo's transformId to add it", prefixed, bare)
	}
	if g.IsNew || g.Session.User != "ann" {
		t.Errorf("Go read %+v, want Express's session through the prefix", g)
	}
	b = &browser{}
	g, _ = p.goDo(t, b, http.MethodPost, "/set", map[string]any{"user": "bob"})
	if e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil); e.ID != g.ID || e.Session["user"] != "bob" {
		t.Errorf("Express read %v, want Go's prefixed session", e)
	}
}

// expressChangeMerged makes Express change a session while a Go request
// of it has changed it but not yet saved: Go's save sees the conflict and
// replays its change on Express's, so both stay.
func expressChangeMerged(t *testing.T, p *pair) {
	b := &browser{}
	p.expressDo(t, b, http.MethodGet, "/add?item=e0", nil)
	held, release := make(chan struct{}), make(chan struct{})
	p.hold = func() { close(held); <-release }
	defer func() { p.hold = nil }()
	done := make(chan struct{})
	gb := *b
	go func() {
		defer close(done)
		if r := gb.do(t, http.MethodGet, p.goURL+"/add?item=g1", nil); r.status != http.StatusOK {
			t.Errorf("Go /add: %d %s", r.status, r.body)
		}
	}()
	<-held
	p.expressDo(t, b, http.MethodGet, "/add?item=e1", nil)
	close(release)
	<-done
	e, _ := p.expressDo(t, b, http.MethodGet, "/get", nil)
	got := items(e.Session["items"])
	if !slices.Equal(got, []string{"e0", "e1", "g1"}) {
		t.Errorf("items = %q, want e0, e1 and g1: Express's e1 landed while Go's g1 waited to be saved", got)
	}
}

func items(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// concurrentChanges adds items to one session from both sides at once:
// Express one request at a time with short pauses, Go two at a time. A Go save never
// overwrites a change it did not see, so every Express addition stays. A
// Node store saves the whole session unconditionally, so an Express save
// can overwrite a Go addition made while that Express request ran; a Go
// addition is lost only so, and a Go request that could not save answers
// with an error.
func concurrentChanges(t *testing.T, p *pair) {
	const n = 8
	b := &browser{}
	p.expressDo(t, b, http.MethodPost, "/set", map[string]any{"user": "ann"})
	cookie := b.cookie
	var mu sync.Mutex // protects the slices below
	var expressRuns, goRuns []interval
	var goItems, goFailed []string
	var wg sync.WaitGroup
	wg.Go(func() {
		eb := &browser{cookie: cookie}
		for i := range n {
			start := time.Now()
			p.expressDo(t, eb, http.MethodGet, fmt.Sprintf("/add?item=e%d", i), nil)
			mu.Lock()
			expressRuns = append(expressRuns, interval{start, time.Now()})
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
		}
	})
	for w := range 2 {
		wg.Go(func() {
			gb := &browser{cookie: cookie}
			for i := range n / 2 {
				item := fmt.Sprintf("g%d-%d", w, i)
				start := time.Now()
				r := gb.do(t, http.MethodGet, p.goURL+"/add?item="+item, nil)
				mu.Lock()
				if r.status == http.StatusOK {
					goItems = append(goItems, item)
					goRuns = append(goRuns, interval{start, time.Now()})
				} else {
					goFailed = append(goFailed, fmt.Sprintf("%s: %d %s", item, r.status, strings.TrimSpace(string(r.body))))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	e, _ := p.expressDo(t, &browser{cookie: cookie}, http.MethodGet, "/get", nil)
	got := items(e.Session["items"])
	for i := range n {
		if item := fmt.Sprintf("e%d", i); !slices.Contains(got, item) {
			t.Errorf("Express's %s is lost: a Go save overwrote a change it did not see (stored %q)", item, got)
		}
	}
	lost := 0
	for i, item := range goItems {
		if slices.Contains(got, item) {
			continue
		}
		lost++
		if !slices.ContainsFunc(expressRuns, goRuns[i].overlaps) {
			t.Errorf("Go's %s is lost though no Express request ran meanwhile (stored %q)", item, got)
		}
	}
	t.Logf("%d Express and %d Go additions: all Express ones kept; Go: %d kept, %d overwritten by Express saves running meanwhile (Node stores save unconditionally), %d reported as errors %q",
		n, n, len(goItems)-lost, lost, len(goFailed), goFailed)
	if len(goItems)+len(goFailed) != n {
		t.Errorf("%d Go requests answered, want %d", len(goItems)+len(goFailed), n)
	}
}
