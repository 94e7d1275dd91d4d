package gorillastore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/mongo/mongodriver"
	"github.com/gin-gonic/gin"
	eventv1 "go.mongodb.org/mongo-driver/event"
	mongov1 "go.mongodb.org/mongo-driver/mongo"
	optionsv1 "go.mongodb.org/mongo-driver/mongo/options"

	"github.com/sessionstore/sessionstore/gorillastore/ginstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// benchSessions is how many sessions the gin benchmark cycles through.
const benchSessions = 64

// A ginBench is a gin router whose handler reads a session and saves it
// unchanged, over one of two stores on the same server, and the cookies
// of benchSessions sessions made through it.
type ginBench struct {
	router  http.Handler
	cookies []string
	count   func() int   // database commands on the collection so far
	settle  func() error // writes what the store buffered (touches)
}

// ginHandler is the handler measured: it reads the user and the flashes,
// as a page does, and saves; gin-contrib's Flashes marks the session
// changed, so Save reaches the store even though nothing changed.
func ginHandler(c *gin.Context) {
	s := sessions.Default(c)
	user := s.Get("user")
	flashes := s.Flashes()
	if err := s.Save(); err != nil {
		c.String(http.StatusInternalServerError, err.Error())
		return
	}
	c.String(http.StatusOK, "user %v, %d flashes", user, len(flashes))
}

// newGinBench builds the router over store and logs in benchSessions
// sessions.
func newGinBench(tb testing.TB, store sessions.Store, count func() int, settle func() error) *ginBench {
	tb.Helper()
	r := gin.New()
	r.Use(sessions.Sessions(cookieName, store))
	r.GET("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user", c.Query("user"))
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "ok")
	})
	r.GET("/", ginHandler)
	g := &ginBench{router: r, count: count, settle: settle}
	for i := range benchSessions {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/login?user=u%d", i), nil))
		if w.Code != http.StatusOK {
			tb.Fatalf("login: %d %s", w.Code, w.Body)
		}
		cookie := w.Result().Cookies()
		if len(cookie) != 1 {
			tb.Fatalf("login set %d cookies", len(cookie))
		}
		g.cookies = append(g.cookies, cookie[0].Name+"="+cookie[0].Value)
	}
	return g
}

// serve sends request i (session i mod benchSessions) and checks the
// answer.
func (g *ginBench) serve(tb testing.TB, i int) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", g.cookies[i%len(g.cookies)])
	w := httptest.NewRecorder()
	g.router.ServeHTTP(w, r)
	if want := fmt.Sprintf("user u%d, 0 flashes", i%len(g.cookies)); w.Code != http.StatusOK || w.Body.String() != want {
		tb.Fatalf("request %d: %d %q, want %q", i, w.Code, w.Body, want)
	}
}

// sessionstoreBench is the benchmark over this store through ginstore.
func sessionstoreBench(tb testing.TB) *ginBench {
	coll, cmds := mongotest.Monitored(tb, mongotest.Collection(tb))
	sessions := newSessions(tb, coll, nil)
	st, err := ginstore.New(sessions, nil, newKeys...)
	if err != nil {
		tb.Fatal(err)
	}
	return newGinBench(tb, st, func() int { return cmds.Count() }, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		return sessions.Flush(ctx)
	})
}

// mongodriverBench is the benchmark over gin-contrib's own MongoDB store,
// on a client of the MongoDB Go driver v1, which that store uses. Its TTL
// index is off: FerretDB v1 cannot make one, and it plays no part here.
func mongodriverBench(tb testing.TB) *ginBench {
	name := mongotest.Collection(tb).Name()
	var mu sync.Mutex // protects n
	n := 0
	client, err := mongov1.Connect(context.Background(), optionsv1.Client().ApplyURI(mongotest.URI()).SetMonitor(&eventv1.CommandMonitor{
		Started: func(_ context.Context, e *eventv1.CommandStartedEvent) {
			if coll, ok := e.Command.Lookup(e.CommandName).StringValueOK(); ok && coll == name {
				mu.Lock()
				n++
				mu.Unlock()
			}
		},
	}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	store := mongodriver.NewStore(client.Database(mongotest.Database).Collection(name), 3600, false, newKeys...)
	return newGinBench(tb, store, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}, func() error { return nil })
}

var ginBenchStores = []struct {
	name string
	new  func(testing.TB) *ginBench
}{
	{"sessionstore", sessionstoreBench},
	{"mongodriver", mongodriverBench},
}

// A gin handler that reads and saves an unchanged session, with this
// store (through ginstore) and with gin-contrib/sessions' own MongoDB
// store (mongo/mongodriver), on the same server and in the same run.
// Requests go to the router directly, without a network, so the figures
// are the handler's and its store's. cmds/req counts every command the
// store's client sent on the collection, touches written by a final
// Flush included.
func BenchmarkGinUnchangedSession(b *testing.B) {
	for _, s := range ginBenchStores {
		b.Run("store="+s.name, func(b *testing.B) {
			g := s.new(b)
			before := g.count()
			b.ReportAllocs()
			start := time.Now()
			i := 0
			for b.Loop() {
				g.serve(b, i)
				i++
			}
			elapsed := time.Since(start)
			if err := g.settle(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(g.count()-before)/float64(b.N), "cmds/req")
		})
	}
}

// The benchmark's handler works over both stores, and costs what the
// README says: with this store no command per request, touches aside;
// with gin-contrib's store a find and an update each.
func TestGinBenchmarkHandler(t *testing.T) {
	const requests = 3 * benchSessions
	for _, s := range ginBenchStores {
		t.Run(s.name, func(t *testing.T) {
			g := s.new(t)
			before := g.count()
			for i := range requests {
				g.serve(t, i)
			}
			if err := g.settle(); err != nil {
				t.Fatal(err)
			}
			total := g.count() - before
			t.Logf("%d requests: %d commands, the touches included", requests, total)
			switch s.name {
			case "sessionstore":
				// Touches only: one updateMany per flush and rounded expiry,
				// a flush a second and one at the end.
				if total > 6 {
					t.Errorf("%d requests sent %d commands, the touches included; want a few updateMany", requests, total)
				}
			case "mongodriver":
				if total != 2*requests {
					t.Errorf("%d requests sent %d commands, want a find and an update each", requests, total)
				}
			}
		})
	}
}
