package httpsession_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/sessionstore/sessionstore/httpsession"
)

// A change made by another request between this request's load and save
// is kept: the save replays this request's changes on the stored value.
func TestSaveReplaysChangesOnTheStoredValue(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann", Items: []string{"apple"}})
	m := newManager(t, store, httpsession.Options{})
	serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		s.Update(func(c *cart) { c.Items = append(c.Items, "pear") })
		// Another request adds a plum meanwhile.
		store.put("s1", cart{User: "ann", Items: []string{"apple", "plum"}})
		s.Update(func(c *cart) { c.User = "bob" })
	})), cookieFor("s1", secret))
	got, _ := store.get("s1")
	if got.User != "bob" || !slices.Equal(got.Items, []string{"apple", "plum", "pear"}) {
		t.Fatalf("stored %+v, want bob with apple, plum and pear", got)
	}
	wantCalls(t, store, "Get s1", "Update s1")
}

// A session destroyed by another request is not recreated by a save:
// the response clears the cookie instead.
func TestSaveOfADestroyedSessionClearsTheCookie(t *testing.T) {
	store := newFakeStore[cart]()
	store.put("s1", cart{User: "ann"})
	m := newManager(t, store, httpsession.Options{})
	resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		s.Update(func(c *cart) { c.Items = append(c.Items, "pear") })
		store.mu.Lock()
		delete(store.data, "s1") // a logout elsewhere
		store.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})), cookieFor("s1", secret))
	if ids := store.ids(); len(ids) != 0 {
		t.Fatalf("the destroyed session came back: %v", ids)
	}
	c := sessionCookie(resp)
	if c == nil || c.MaxAge >= 0 && c.Expires.IsZero() {
		t.Fatalf("cookie %v, want one that clears the session cookie", c)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A new session whose id is taken gets another id instead of
// overwriting the stored session.
func TestCreateNeverOverwrites(t *testing.T) {
	store := newFakeStore[cart]()
	m := newManager(t, store, httpsession.Options{})
	var first string
	resp := serve(m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
		first = s.ID()
		store.put(first, cart{User: "someone else"})
		s.Set(cart{User: "me"})
	})), nil)
	id := cookieID(t, sessionCookie(resp), secret)
	if id == first {
		t.Fatal("the new session took an id already stored")
	}
	if v, _ := store.get(first); v.User != "someone else" {
		t.Fatalf("the stored session was overwritten: %+v", v)
	}
	if v, _ := store.get(id); v.User != "me" {
		t.Fatalf("new session stored as %+v", v)
	}
}
