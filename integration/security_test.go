package integration_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

// With MaxLifetime 3 s and a request every 200 ms through the middleware
// on one instance, touches and saves from a second instance without
// memory, the server's write filters keep the document's expiry within
// the deadline, the cookie's Max-Age never exceeds what is left, and the
// session reads as missing on both instances from the deadline on.
func TestMaxLifetimeOnServer(t *testing.T) {
	coll := mongotest.Collection(t)
	opts := sessionstore.Options[shopRecord]{TTLIndex: ttl.Off, TTL: time.Second, MaxLifetime: 3 * time.Second, TouchInterval: time.Hour}
	a := newStore(t, coll, &opts)
	opts.CacheSize = -1
	b := newStore(t, coll, &opts)
	m, err := httpsession.New[shop](a, &httpsession.Options{Secrets: []string{shopSecret}, MaxAge: time.Hour, Rolling: true})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[shop](r.Context())
		if s.IsNew() {
			s.Set(shop{User: "ann"})
		}
		fmt.Fprint(w, s.ID())
	}))
	var cookie *http.Cookie
	visit := func() (id string, maxAge int) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		c := sessionCookie(t, rec)
		if c.MaxAge >= 0 { // Max-Age=0 deletes the cookie: keep the old one
			cookie = c
		}
		return rec.Body.String(), c.MaxAge
	}
	id, _ := visit()
	deadline, err := a.Deadline(bg(t), id)
	if err != nil || deadline.IsZero() {
		t.Fatalf("Deadline = %v, %v", deadline, err)
	}
	var reached, deleted bool
	for step := 1; time.Now().Before(deadline.Add(-250 * time.Millisecond)); step++ {
		time.Sleep(200 * time.Millisecond)
		before := time.Now()
		left := deadline.Sub(before)
		if deleted {
			// The browser has no cookie any more.
		} else if got, maxAge := visit(); got != id {
			t.Fatalf("%v before the deadline the middleware gave a new session", left)
		} else if time.Duration(maxAge)*time.Second > left {
			t.Fatalf("cookie Max-Age=%d with %v left", maxAge, left)
		} else if maxAge < 0 {
			// Less than a second left: Max-Age=0, rounded down, deletes it.
			if left >= time.Second {
				t.Fatalf("the cookie was deleted with %v left", left)
			}
			deleted = true
		}
		if err := b.Touch(bg(t), id); err != nil {
			t.Fatal(err)
		}
		switch step {
		case 3:
			err = b.Set(bg(t), id, shopRecord{Value: shop{User: "ann", Items: []string{"set"}}})
		case 6:
			_, err = b.Update(bg(t), id, func(s *shopRecord) error { s.Value.Items = append(s.Value.Items, "update"); return nil })
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*sessionstore.Store[shopRecord]{a, b} {
			if err := s.Flush(bg(t)); err != nil {
				t.Fatal(err)
			}
		}
		raw, ok := mongotest.RawDoc(t, coll, id)
		if !ok {
			if time.Now().Before(deadline) {
				t.Fatalf("the document is gone %v before the deadline", time.Until(deadline))
			}
			break
		}
		exp, dl := rawExpires(t, coll, id), time.UnixMilli(raw.Lookup("deadline").DateTime())
		if !dl.Equal(deadline) || exp.After(dl) {
			t.Fatalf("step %d: expires %v, deadline %v; want the deadline %v and expires no later", step, exp, dl, deadline)
		}
		reached = reached || exp.Equal(dl)
	}
	if !reached {
		t.Error("touches every 200 ms never brought the expiry to the deadline")
	}
	time.Sleep(time.Until(deadline))
	for name, s := range map[string]*sessionstore.Store[shopRecord]{"with memory": a, "without memory": b} {
		if v, err := s.Get(bg(t), id); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Errorf("%s, past the deadline: Get = %+v, %v", name, v, err)
		}
	}
	if got, _ := visit(); got == id {
		t.Error("past the deadline the middleware served the old session")
	}
}

type member struct {
	User   string
	Device int
}

// 1 000 sessions of 100 owners on two stores: deleting one owner's
// sessions but one removes exactly the others, and neither store serves a
// removed one afterwards. The owner stream is checked against the
// server's own account of how it runs the query.
func TestDeleteByOwnerOnServer(t *testing.T) {
	opts := &sessionstore.Options[member]{TTLIndex: ttl.Off, Owner: func(m member) string { return m.User }, MaxCacheAge: 300 * time.Millisecond}
	a, b, ca, _ := twoStores(t, opts)
	id := func(i int) string { return fmt.Sprintf("sid-%04d", i) }
	for i := range 1000 {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.Create(bg(t), id(i), member{User: fmt.Sprintf("user%02d", i%100), Device: i / 100}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 7; i < 1000; i += 100 { // both stores hold user07's sessions
		for _, s := range []*sessionstore.Store[member]{a, b} {
			if _, err := s.Get(bg(t), id(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ca.Reset()
	var owned []string
	for e, err := range a.ByOwner(bg(t), "user07") {
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, e.ID)
	}
	if len(owned) != 10 {
		t.Fatalf("ByOwner(user07) = %v, want 10 sessions", owned)
	}
	explainOwnerQuery(t, a, ca.Take())
	n, err := a.DeleteByOwner(bg(t), "user07", id(507))
	if err != nil || n != 9 {
		t.Fatalf("DeleteByOwner = %d, %v; want 9", n, err)
	}
	time.Sleep(opts.MaxCacheAge) // b's copies are stale from now on
	for i := 7; i < 1000; i += 100 {
		for name, s := range map[string]*sessionstore.Store[member]{"a": a, "b": b} {
			_, err := s.Get(bg(t), id(i))
			switch {
			case i == 507 && err != nil:
				t.Fatalf("store %s: the session kept is gone: %v", name, err)
			case i != 507 && !errors.Is(err, sessionstore.ErrNotFound):
				t.Fatalf("store %s still serves deleted %s: %v", name, id(i), err)
			}
		}
	}
	if n, err := b.Len(bg(t)); err != nil || n != 991 {
		t.Fatalf("Len = %d, %v; want 991", n, err)
	}
}

// explainOwnerQuery asks the server how it runs the find command that
// ByOwner sent: on MongoDB through the owner index, examining only the
// owner's documents. FerretDB v1 answers explain with the SQLite plan and
// whether it pushed the filter down; it pushes down no filter on a field
// other than _id, so no secondary index can serve the query there, and
// the test checks that this is what it says.
func explainOwnerQuery(t *testing.T, s *sessionstore.Store[member], cmds []bson.Raw) {
	t.Helper()
	var find bson.Raw
	for _, c := range cmds {
		if _, err := c.LookupErr("find"); err == nil {
			find = c
		}
	}
	if find == nil {
		t.Fatalf("ByOwner sent no find command: %v", mongotest.Names(cmds))
	}
	filter := find.Lookup("filter").Document()
	if owner, _ := filter.Lookup("owner").StringValueOK(); owner != "user07" {
		t.Fatalf("ByOwner's filter %s does not name the owner", filter)
	}
	// The index is set up in the background; wait for it.
	deadline := time.Now().Add(mongotest.CallTimeout)
	for {
		specs, err := s.Collection().Indexes().ListSpecifications(bg(t))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(specs, func(sp mongo.IndexSpecification) bool { return sp.Name == "owner_1" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no owner_1 index after %v: %v", mongotest.CallTimeout, specs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reply, err := s.Collection().Database().RunCommand(bg(t), bson.D{
		{Key: "explain", Value: bson.D{{Key: "find", Value: s.Collection().Name()}, {Key: "filter", Value: filter}}},
		{Key: "verbosity", Value: "executionStats"},
	}).Raw()
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	if plan, err := reply.LookupErr("queryPlanner", "winningPlan"); err == nil {
		examined := reply.Lookup("executionStats", "totalDocsExamined").AsInt64()
		if !strings.Contains(plan.String(), "IXSCAN") || !strings.Contains(plan.String(), "owner_1") || examined != 10 {
			t.Fatalf("the owner query runs as %s, examining %d documents; want an IXSCAN of owner_1 examining 10", plan, examined)
		}
		t.Logf("MongoDB runs the owner query through owner_1, examining %d documents of 1 000", examined)
		return
	}
	pushdown, err := reply.LookupErr("filterPushdown")
	if err != nil {
		t.Fatalf("explain answered neither a MongoDB plan nor FerretDB's: %s", reply)
	}
	if pushdown.Boolean() {
		t.Fatalf("FerretDB says it pushes the owner filter down (%s): check that the index serves it", reply)
	}
	t.Logf("FerretDB v1 cannot use the owner index: explain says filterPushdown=false, plan %s; "+
		"it scans the collection and filters in FerretDB, so the index pays off only on MongoDB", reply.Lookup("queryPlanner"))
}
