package gorillastore_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// A counter through the router's session API: each request adds one, the
// count survives between requests and is what the database holds.
func TestRouterCounter(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		srv := serve(t, r.new(t, newStore(t, newSessions(t, coll, nil))))
		b := newBrowser(t)
		for i := 1; i <= 5; i++ {
			if got := b.body(srv, "/inc"); got != fmt.Sprint(i) {
				t.Fatalf("request %d: count %q, want %d", i, got, i)
			}
		}
		if got := b.body(srv, "/count"); got != "5" {
			t.Fatalf("count read back as %q, want 5", got)
		}
		v, ok := storedValues(t, coll, sessionID(t, b.cookie(srv), newKeys))
		if !ok || v["count"] != 5 {
			t.Fatalf("stored values %v (found %t), want count=5", v, ok)
		}
		if got := newBrowser(t).body(srv, "/count"); got != "<nil>" {
			t.Errorf("a browser without the cookie read count %q", got)
		}
	})
}

// Flashes as gorilla defines them: added by one request, read once by a
// later one, then gone.
func TestRouterFlashes(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		srv := serve(t, r.new(t, newStore(t, newSessions(t, coll, nil))))
		b := newBrowser(t)
		b.body(srv, "/set", "k", "user", "v", "ada")
		b.body(srv, "/flash", "m", "saved")
		b.body(srv, "/flash", "m", "sent")
		if got, want := b.body(srv, "/page"), "user=ada flashes=saved,sent"; got != want {
			t.Fatalf("first page: %q, want %q", got, want)
		}
		if got, want := b.body(srv, "/page"), "user=ada flashes="; got != want {
			t.Fatalf("second page: %q, want %q (flashes are read once)", got, want)
		}
		v, _ := storedValues(t, coll, sessionID(t, b.cookie(srv), newKeys))
		if _, ok := v["_flash"]; ok || v["user"] != "ada" {
			t.Errorf("stored values after reading the flashes: %v", v)
		}
	})
}

// MaxAge -1 deletes the session from the database and the browser; its
// old cookie, replayed, gets a new session.
func TestRouterLogout(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		srv := serve(t, r.new(t, newStore(t, newSessions(t, coll, nil))))
		b := newBrowser(t)
		b.body(srv, "/set", "k", "user", "v", "ada")
		cookie := b.cookie(srv)
		id := sessionID(t, cookie, newKeys)
		if _, ok := mongotest.RawDoc(t, coll, id); !ok {
			t.Fatal("no document after login")
		}

		resp, _ := b.get(srv, "/logout")
		if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("logout sent Set-Cookie %q, want one with Max-Age=0", sc)
		}
		if got := b.cookie(srv); got != "" {
			t.Errorf("the browser still holds a session cookie after logout")
		}
		if _, ok := mongotest.RawDoc(t, coll, id); ok {
			t.Error("the session's document is still there after logout")
		}

		replay := newBrowser(t)
		replay.setCookie(srv, cookie)
		if got, want := replay.body(srv, "/page"), "user=<nil> flashes="; got != want {
			t.Errorf("the old cookie after logout read %q, want %q", got, want)
		}
	})
}

// Key rotation as in gorilla's stores: an instance with a new key pair
// first and the old one after reads old cookies and signs with the new
// key; once the old key is dropped, old cookies start a new session.
func TestRouterKeyRotation(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		sessions := newSessions(t, coll, nil)
		before := serve(t, r.new(t, newStore(t, sessions, oldKeys)))
		during := serve(t, r.new(t, newStore(t, sessions, newKeys, oldKeys)))
		after := serve(t, r.new(t, newStore(t, sessions, newKeys)))

		b := newBrowser(t) // the servers share the browser's cookies: one host
		b.body(before, "/set", "k", "user", "v", "ada")
		oldCookie := b.cookie(before)
		id := sessionID(t, oldCookie, oldKeys)

		if got, want := b.body(during, "/page"), "user=ada flashes="; got != want {
			t.Fatalf("during rotation, the old cookie read %q, want %q", got, want)
		}
		newCookie := b.cookie(during)
		if got := sessionID(t, newCookie, newKeys); got != id {
			t.Fatalf("the re-signed cookie names session %q, want %q", got, id)
		}
		if got, want := b.body(after, "/page"), "user=ada flashes="; got != want {
			t.Fatalf("after rotation, the re-signed cookie read %q, want %q", got, want)
		}

		late := newBrowser(t)
		late.setCookie(after, oldCookie)
		if got, want := late.body(after, "/page"), "user=<nil> flashes="; got != want {
			t.Errorf("after rotation, a cookie signed with the dropped key read %q, want %q", got, want)
		}
		if late.cookie(after) == oldCookie {
			t.Error("the refused cookie was not replaced")
		}
		if v, ok := storedValues(t, coll, id); !ok || v["user"] != "ada" {
			t.Errorf("the session behind the refused cookie: %v (found %t), want it kept", v, ok)
		}
	})
}

// An unchanged session saved on every request: 100 page views send no
// command at all (the session is read from memory, each save is a
// buffered touch), and the flush that follows is one update that moves
// expires alone.
func TestRouterUnchangedSaves(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		mcoll, cmds := mongotest.Monitored(t, coll)
		sessions := newSessions(t, mcoll, &sessionstore.Options[[]byte]{TouchInterval: time.Hour}) // only Flush writes touches
		srv := serve(t, r.new(t, newStore(t, sessions)))
		b := newBrowser(t)
		b.body(srv, "/set", "k", "user", "v", "ada")
		id := sessionID(t, b.cookie(srv), newKeys)
		expires, payload := rawSession(t, coll, id)
		cmds.Reset()

		const views = 100
		for range views {
			if got, want := b.body(srv, "/page"), "user=ada flashes="; got != want {
				t.Fatalf("page: %q, want %q", got, want)
			}
		}
		if n := cmds.Count(); n != 0 {
			t.Fatalf("%d unchanged saves sent %d commands, want none", views, n)
		}
		if err := sessions.Flush(bg(t)); err != nil {
			t.Fatal(err)
		}
		flushed := cmds.Take()
		if got := mongotest.Names(flushed); !slices.Equal(got, []string{"update"}) {
			t.Fatalf("Flush sent %v, want one update", got)
		}
		mongotest.CheckTouch(t, flushed[0])
		exp, p := rawSession(t, coll, id)
		if !exp.After(expires) {
			t.Errorf("after the touches, expires = %v, not after %v", exp, expires)
		}
		if string(p) != string(payload) {
			t.Error("the touches changed the stored values")
		}
	})
}

// rawSession returns the expires and session payload of document id.
func rawSession(t testing.TB, coll *mongo.Collection, id string) (time.Time, []byte) {
	t.Helper()
	raw, ok := mongotest.RawDoc(t, coll, id)
	if !ok {
		t.Fatalf("document %q is missing", id)
	}
	ms, _ := raw.Lookup("expires").DateTimeOK()
	_, data, ok := raw.Lookup("session").BinaryOK()
	if !ok {
		t.Fatalf("document %q: session is not binary", id)
	}
	return time.UnixMilli(ms), data
}

// Two instances, each with its own store and memory, serve one session:
// 40 concurrent increments through Change keep 40, and 40 concurrent
// requests setting 40 different keys directly keep all 40 keys.
func TestRouterConcurrentSaves(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		opts := func() *sessionstore.Options[[]byte] {
			return &sessionstore.Options[[]byte]{UpdateAttempts: 100}
		}
		srvs := []*httptest.Server{
			serve(t, r.new(t, newStore(t, newSessions(t, coll, opts())))),
			serve(t, r.new(t, newStore(t, newSessions(t, coll, opts())))),
		}
		b := newBrowser(t)
		b.body(srvs[0], "/set", "k", "user", "v", "ada")
		id := sessionID(t, b.cookie(srvs[0]), newKeys)

		const n = 40
		run := func(req func(i int, srv *httptest.Server) error) {
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					if err := req(i, srvs[i%2]); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		}
		run(func(_ int, srv *httptest.Server) error {
			_, _, err := b.try(srv, "/inc")
			return err
		})
		if v, _ := storedValues(t, coll, id); v["count"] != n {
			t.Errorf("after %d concurrent increments, the stored count is %v", n, v["count"])
		}

		run(func(i int, srv *httptest.Server) error {
			_, _, err := b.try(srv, "/set", "k", fmt.Sprintf("k%02d", i), "v", fmt.Sprint(i))
			return err
		})
		v, _ := storedValues(t, coll, id)
		for i := range n {
			if k := fmt.Sprintf("k%02d", i); v[k] != fmt.Sprint(i) {
				t.Errorf("after %d concurrent sets of different keys, %s = %v; stored keys %v", n, k, v[k], sortedKeys(v))
				break
			}
		}
		if v["count"] != n || v["user"] != "ada" {
			t.Errorf("the concurrent sets lost other keys: count=%v user=%v", v["count"], v["user"])
		}
	})
}

// Two instances hold the same session in memory; a logout on one is
// honoured by the other within MaxStaleness, through the change feed.
func TestRouterLogoutSeenByOtherInstance(t *testing.T) {
	forEachRouter(t, func(t *testing.T, r router) {
		coll := mongotest.Collection(t)
		a := serve(t, r.new(t, newStore(t, newSessions(t, coll, nil))))
		b := serve(t, r.new(t, newStore(t, newSessions(t, coll, nil))))
		alice := newBrowser(t)
		alice.body(a, "/set", "k", "user", "v", "ada")
		cookie := alice.cookie(a)
		// Until its feed has caught up once, B's memory answers for
		// MaxStaleness after a read only: let it catch up.
		time.Sleep(2 * sessionstore.DefaultMaxStaleness)
		other := newBrowser(t)
		other.setCookie(b, cookie)
		if got, want := other.body(b, "/page"), "user=ada flashes="; got != want {
			t.Fatalf("instance B read %q, want %q", got, want)
		}
		alice.get(a, "/logout")
		loggedOut := time.Now()
		for {
			other.setCookie(b, cookie)
			got := other.body(b, "/page")
			if got == "user=<nil> flashes=" {
				t.Logf("instance B saw the logout %v after it", time.Since(loggedOut).Round(time.Millisecond))
				break
			}
			if late := time.Since(loggedOut); late > sessionstore.DefaultMaxStaleness+500*time.Millisecond {
				t.Fatalf("instance B still serves the session %v after a logout on A: %q", late, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
