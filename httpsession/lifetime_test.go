package httpsession_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/httpsession"
)

// deadlineStore is a fakeStore whose sessions have absolute deadlines, as
// a sessionstore.Store with MaxLifetime has.
type deadlineStore struct {
	*fakeStore[cart]
	max time.Duration // the lifetime of a session created without a deadline

	mu        sync.Mutex // protects deadlines
	deadlines map[string]time.Time
}

func newDeadlineStore(max time.Duration) *deadlineStore {
	return &deadlineStore{fakeStore: newFakeStore[cart](), max: max, deadlines: make(map[string]time.Time)}
}

func (d *deadlineStore) Create(ctx context.Context, id string, v httpsession.Record[cart]) error {
	return d.CreateWithin(ctx, id, v, time.Time{})
}

func (d *deadlineStore) CreateWithin(ctx context.Context, id string, v httpsession.Record[cart], deadline time.Time) error {
	if err := d.fakeStore.Create(ctx, id, v); err != nil {
		return err
	}
	if limit := time.Now().Add(d.max); deadline.IsZero() || deadline.After(limit) {
		deadline = limit
	}
	d.setDeadline(id, deadline)
	return nil
}

func (d *deadlineStore) Deadline(_ context.Context, id string) (time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadlines[id], nil
}

func (d *deadlineStore) setDeadline(id string, t time.Time) {
	d.mu.Lock()
	d.deadlines[id] = t
	d.mu.Unlock()
}

// maxAge returns the Max-Age attribute of the response's session cookie,
// or -1 when it has none.
func maxAge(t *testing.T, resp *http.Response) int {
	t.Helper()
	for _, h := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(h, "connect.sid=") {
			continue
		}
		for _, attr := range strings.Split(h, "; ") {
			if v, ok := strings.CutPrefix(attr, "Max-Age="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("Max-Age %q", v)
				}
				return n
			}
		}
		return -1
	}
	t.Fatal("no session cookie in the response")
	return 0
}

// The cookie's Max-Age never exceeds what is left of the session's
// absolute lifetime, on creation and on every rolling renewal.
func TestMaxAgeCappedToDeadline(t *testing.T) {
	store := newDeadlineStore(90 * time.Second)
	m := newManager(t, store, httpsession.Options{MaxAge: time.Hour, Rolling: true})
	h := m.Handler(handle(t, addItem("apple")))
	resp := serve(h, nil)
	if got := maxAge(t, resp); got > 90 || got < 89 {
		t.Fatalf("new session: Max-Age=%d, want the 90 s left", got)
	}
	c := sessionCookie(resp)
	id := store.ids()[0]
	touch := m.Handler(handle(t, func(http.ResponseWriter, *http.Request, *httpsession.Session[cart]) {}))
	store.setDeadline(id, time.Now().Add(10*time.Second+500*time.Millisecond))
	if got := maxAge(t, serve(touch, c)); got != 10 {
		t.Fatalf("10.5 s left: Max-Age=%d, want 10 (rounded down)", got)
	}
	store.setDeadline(id, time.Now().Add(2*time.Hour))
	if got := maxAge(t, serve(touch, c)); got != 3600 {
		t.Fatalf("a deadline beyond MaxAge: Max-Age=%d, want 3600", got)
	}
	store.setDeadline(id, time.Now().Add(-time.Second))
	if got := maxAge(t, serve(touch, c)); got != 0 {
		t.Fatalf("past the deadline: Max-Age=%d, want the cookie deleted (0)", got)
	}
	// A browser-session cookie stays one.
	browser := newManager(t, newDeadlineStore(time.Minute), httpsession.Options{})
	if got := maxAge(t, serve(browser.Handler(handle(t, addItem("pear"))), nil)); got != -1 {
		t.Fatalf("a browser-session cookie got Max-Age=%d", got)
	}
}

// Regenerate keeps the old id's deadline unless RenewLifetime is called.
func TestRegenerateKeepsDeadline(t *testing.T) {
	for _, renew := range []bool{false, true} {
		store := newDeadlineStore(time.Hour)
		m := newManager(t, store, httpsession.Options{MaxAge: 2 * time.Hour})
		c := sessionCookie(serve(m.Handler(handle(t, addItem("apple"))), nil))
		old := store.ids()[0]
		deadline := time.Now().Add(20 * time.Minute).Truncate(time.Millisecond)
		store.setDeadline(old, deadline)
		login := m.Handler(handle(t, func(_ http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
			if err := s.Regenerate(r.Context()); err != nil {
				t.Error(err)
			}
			if renew {
				s.RenewLifetime()
			}
			s.Update(func(c *cart) { c.User = "ada" })
		}))
		resp := serve(login, c)
		ids := store.ids()
		if len(ids) != 1 || ids[0] == old {
			t.Fatalf("renew=%v: stored ids %v after Regenerate", renew, ids)
		}
		got, _ := store.Deadline(context.Background(), ids[0])
		if calls := store.takeCalls(); !slices.Contains(calls, "Create "+ids[0]) {
			t.Fatalf("renew=%v: calls %v", renew, calls)
		}
		if !renew && !got.Equal(deadline) {
			t.Errorf("the new id's deadline is %v, want the old one's %v", got, deadline)
		}
		if renew && got.Before(time.Now().Add(59*time.Minute)) {
			t.Errorf("after RenewLifetime the new id's deadline is %v, want a full hour", got)
		}
		if left := maxAge(t, resp); !renew && left > 20*60 {
			t.Errorf("the new cookie's Max-Age=%d exceeds the 1200 s left", left)
		}
	}
}
