package httpsession_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/httpsession"
)

// ctxStore records the context of each Update as it was called.
type ctxStore struct {
	*fakeStore[cart]
	saves []saveCtx
}

type saveCtx struct {
	err      error
	deadline time.Time
	ok       bool
}

func (s *ctxStore) Update(ctx context.Context, id string, fn func(*httpsession.Record[cart]) error) (httpsession.Record[cart], error) {
	d, ok := ctx.Deadline()
	s.saves = append(s.saves, saveCtx{err: ctx.Err(), deadline: d, ok: ok})
	return s.fakeStore.Update(ctx, id, fn)
}

// A save outlives a client that hung up, but never the request's
// deadline: a store that does not answer cannot hold the request past
// it.
func TestSaveKeepsDeadlineNotCancellation(t *testing.T) {
	store := &ctxStore{fakeStore: newFakeStore[cart]()}
	store.data["s1"] = httpsession.Record[cart]{Value: cart{User: "ada"}}
	m := newManager(t, store, httpsession.Options{})
	for _, withDeadline := range []bool{true, false} {
		for _, early := range []bool{false, true} { // saved before the headers, or after the handler
			ctx, cancel := context.WithCancel(context.Background())
			deadline := time.Now().Add(time.Hour)
			if withDeadline {
				ctx, cancel = context.WithDeadline(context.Background(), deadline)
			}
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httpsession.FromContext[cart](r.Context()).Update(func(c *cart) { c.Items = append(c.Items, "x") })
				cancel() // the client hangs up
				if early {
					w.WriteHeader(http.StatusNoContent)
				}
			}))
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
			req.AddCookie(cookieFor("s1", secret))
			h.ServeHTTP(httptest.NewRecorder(), req)

			save := store.saves[len(store.saves)-1]
			if err := save.err; err != nil {
				t.Errorf("deadline %v, early %v: the save's context ended with the request's: %v", withDeadline, early, err)
			}
			got, ok := save.deadline, save.ok
			if withDeadline && (!ok || !got.Equal(deadline)) {
				t.Errorf("early %v: the save's deadline is %v, %v; want the request's, %v", early, got, ok, deadline)
			}
			if !withDeadline && ok {
				t.Errorf("early %v: the save has deadline %v, the request none", early, got)
			}
		}
	}
	if n := len(store.data["s1"].Value.Items); n != 4 {
		t.Errorf("%d changes saved, want 4", n)
	}
}
