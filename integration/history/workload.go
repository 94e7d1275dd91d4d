package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
)

// Instance is one store under load, with a client of its own.
type Instance struct {
	Name  string
	Store *sessionstore.Store[Value]
}

// Mix weighs the calls of a [Workload] on live sessions. A session not yet
// stored is created first (Create, or Set one time in four); one time in
// twenty the call goes to a session deleted before, which must stay
// deleted.
type Mix struct {
	Get, Set, Update, Touch, Delete, HTTP int
}

// DefaultMix is the mix of a zero [Workload.Mix]: mostly reads and
// touches, as a web application makes them.
var DefaultMix = Mix{Get: 35, Set: 5, Update: 15, Touch: 20, Delete: 5, HTTP: 20}

// Workload is a mixed load on sessions shared by several stores. Sessions
// are never stored again once a Delete of them was sent: a logged-out id
// is not reused, so any later appearance of it is the store's doing.
type Workload struct {
	Instances []Instance
	// Sessions is how many live sessions the load keeps; a deleted one is
	// replaced by a new id. Default 300.
	Sessions int
	// Workers is the number of concurrent callers per instance. Default 4.
	Workers int
	// CallTimeout bounds each call. Default 2s.
	CallTimeout time.Duration
	// Mix weighs the calls; zero means DefaultMix.
	Mix Mix
	// RetryUpdates sends an Update that failed once more, with the same
	// token, only adding it if absent: the caller's safe retry after an
	// answer lost on the way.
	RetryUpdates bool
	// Recorder receives every call.
	Recorder *Recorder

	once     sync.Once
	mu       sync.Mutex // protects the fields below
	slots    []string   // ids of the live sessions
	stored   map[string]bool
	dead     []string // ids deleted, at most the last 1000
	next     int      // for new ids
	managers []*httpsession.Manager[Value]
	stats    Stats
}

// Stats counts the calls of a run.
type Stats struct {
	Calls   map[Kind]int      // by kind
	Errors  map[string]int    // failed calls by [ErrorKind]
	Example map[string]string // the first error of each kind
	Slow    int               // calls that returned later than CallTimeout plus a second
	Outcome map[Outcome]int   // by outcome
	// Retried counts Updates sent again after failing, Applied the ones
	// among them the server had applied after all: their answer was lost.
	Retried, Applied int
}

// request is a call through the middleware, recorded as a Get and an
// Update.
const request Kind = "request"

// secret signs the middleware's cookies.
const secret = "history workload"

// cookieName is the middleware's cookie.
const cookieName = "connect.sid"

func (w *Workload) init() {
	w.once.Do(func() {
		if w.Sessions <= 0 {
			w.Sessions = 300
		}
		if w.Workers <= 0 {
			w.Workers = 4
		}
		if w.CallTimeout <= 0 {
			w.CallTimeout = 2 * time.Second
		}
		if w.Mix == (Mix{}) {
			w.Mix = DefaultMix
		}
		if w.Recorder == nil {
			w.Recorder = &Recorder{}
		}
		w.stored = map[string]bool{}
		w.slots = make([]string, w.Sessions)
		for i := range w.slots {
			w.slots[i] = w.newID()
		}
		w.stats = Stats{Calls: map[Kind]int{}, Errors: map[string]int{}, Example: map[string]string{}, Outcome: map[Outcome]int{}}
		for _, in := range w.Instances {
			m, err := httpsession.New[Value](recordStore{in.Store}, &httpsession.Options{
				Secrets:      []string{secret},
				CookieName:   cookieName,
				ErrorHandler: httpError,
			})
			if err != nil {
				panic(err) // the options are constant and valid
			}
			w.managers = append(w.managers, m)
		}
	})
}

// newID returns an id never used. w.mu must be held, or w not shared.
func (w *Workload) newID() string {
	w.next++
	return fmt.Sprintf("w%05d", w.next)
}

// Seed creates every live session, from the first instance, and returns
// the first error.
func (w *Workload) Seed(ctx context.Context) error {
	w.init()
	in := w.Instances[0]
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	sem := make(chan struct{}, 8)
	for _, id := range slices.Clone(w.slots) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.mu.Lock()
			w.stored[id] = true
			w.mu.Unlock()
			if err := w.call(ctx, 0, in, Create, id); err != nil {
				errMu.Lock()
				first = cmpOr(first, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// cmpOr returns a if it is not nil, else b.
func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Run sends calls from every instance's workers until d has passed or ctx
// ends, and returns what they did. Calls already sent are finished.
func (w *Workload) Run(ctx context.Context, d time.Duration) Stats {
	w.init()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i, in := range w.Instances {
		for range w.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					kind, id := w.pick()
					_ = w.call(context.WithoutCancel(ctx), i, in, kind, id)
				}
			}()
		}
	}
	wg.Wait()
	return w.Stats()
}

// Stats returns what the calls so far did.
func (w *Workload) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Calls, s.Errors, s.Example, s.Outcome = clone(s.Calls), clone(s.Errors), clone(s.Example), clone(s.Outcome)
	return s
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// pick chooses the next call and its session, and updates the plan: a
// session to create is marked stored, one to delete is replaced.
func (w *Workload) pick() (Kind, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dead) > 0 && rand.N(20) == 0 {
		kinds := []Kind{Get, Touch, Update, request}
		return kinds[rand.N(len(kinds))], w.dead[rand.N(len(w.dead))]
	}
	slot := rand.N(len(w.slots))
	id := w.slots[slot]
	if !w.stored[id] {
		w.stored[id] = true
		if rand.N(4) == 0 {
			return Set, id
		}
		return Create, id
	}
	m := w.Mix
	n := rand.N(m.Get + m.Set + m.Update + m.Touch + m.Delete + m.HTTP)
	switch {
	case n < m.Get:
		return Get, id
	case n < m.Get+m.Set:
		return Set, id
	case n < m.Get+m.Set+m.Update:
		return Update, id
	case n < m.Get+m.Set+m.Update+m.Touch:
		return Touch, id
	case n < m.Get+m.Set+m.Update+m.Touch+m.Delete:
		w.slots[slot] = w.newID()
		w.dead = append(w.dead, id)
		if len(w.dead) > 1000 {
			w.dead = w.dead[1:]
		}
		return Delete, id
	}
	return request, id
}

// call makes one call of kind on id through instance i and records it.
func (w *Workload) call(ctx context.Context, i int, in Instance, kind Kind, id string) error {
	ctx, cancel := context.WithTimeout(ctx, w.CallTimeout)
	defer cancel()
	r := w.Recorder
	if kind == request {
		return w.serve(ctx, i, in, id)
	}
	var (
		tok string
		v   *Value
		err error
	)
	if kind.writes() && kind != Delete {
		tok = r.Token(in.Name)
	}
	c := r.Begin(in.Name, kind, id, tok)
	switch kind {
	case Get:
		var got Value
		if got, err = in.Store.Get(ctx, id); err == nil {
			v = &got
		}
	case Set:
		err = in.Store.Set(ctx, id, Value{Base: tok})
	case Create:
		err = in.Store.Create(ctx, id, Value{Base: tok})
	case Update:
		var got Value
		got, err = in.Store.Update(ctx, id, func(s *Value) error {
			s.Applied = append(s.Applied, tok)
			return nil
		})
		if err == nil {
			v = &got
		}
	case Touch:
		err = in.Store.Touch(ctx, id)
	case Delete:
		err = in.Store.Delete(ctx, id)
	}
	w.end(c, err, v)
	if kind == Update && outcome(err) == Failed && w.RetryUpdates {
		w.retry(ctx, in, id, tok)
	}
	return err
}

// retry sends Update tok again, adding tok only if the first attempt's
// answer was lost after the server applied it.
func (w *Workload) retry(ctx context.Context, in Instance, id, tok string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.CallTimeout)
	defer cancel()
	c := w.Recorder.Begin(in.Name, Update, id, tok)
	applied := false
	got, err := in.Store.Update(ctx, id, func(s *Value) error {
		applied = slices.Contains(s.Applied, tok)
		if !applied {
			s.Applied = append(s.Applied, tok)
		}
		return nil
	})
	var v *Value
	if err == nil {
		v = &got
	}
	w.end(c, err, v)
	w.mu.Lock()
	w.stats.Retried++
	if err == nil && applied {
		w.stats.Applied++
	}
	w.mu.Unlock()
}

// end records c's result and counts it.
func (w *Workload) end(c *Call, err error, v *Value) {
	out := outcome(err)
	c.End(out, err, v)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Calls[c.op.Kind]++
	w.stats.Outcome[out]++
	if out == Failed {
		k := ErrorKind(err)
		w.stats.Errors[k]++
		if _, ok := w.stats.Example[k]; !ok {
			w.stats.Example[k] = err.Error()
		}
	}
	if c.op.End.Sub(c.op.Start) > w.CallTimeout+time.Second {
		w.stats.Slow++
	}
}

// outcome classifies err.
func outcome(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, sessionstore.ErrNotFound):
		return NotFound
	case errors.Is(err, sessionstore.ErrExists):
		return Exists
	}
	return Failed
}

// ErrorKind names the kind of a failed call's error, for counting:
// "unreachable" (no server answered the driver), "network" (a
// connection broke), "timeout", "conflict" (Update gave up), "closed",
// "middleware" (the HTTP request failed without saying why) or "other".
func ErrorKind(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, sessionstore.ErrConflict):
		return "conflict"
	case errors.Is(err, sessionstore.ErrClosed):
		return "closed"
	case strings.Contains(msg, "server selection"):
		return "unreachable"
	case mongo.IsNetworkError(err), strings.Contains(msg, "connection reset"),
		strings.Contains(msg, "incomplete read"), strings.Contains(msg, "was cleared because"):
		return "network"
	case mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, errHTTP):
		return "middleware"
	}
	return "other"
}

// httpCall is the record of one request through the middleware, reached
// from its handlers through the request's context.
type httpCall struct {
	err error // what the middleware's ErrorHandler was given
}

type httpKey struct{}

var errHTTP = errors.New("history: the middleware answered 500")

// httpError is the middleware's ErrorHandler: it keeps err for the
// recorder.
func httpError(w http.ResponseWriter, r *http.Request, err error) {
	if hc, ok := r.Context().Value(httpKey{}).(*httpCall); ok {
		hc.err = err
	}
	w.WriteHeader(http.StatusInternalServerError)
}

// serve sends a request with id's cookie through instance i's
// middleware, whose handler reads the session and adds an Update to it,
// and records the middleware's load as a Get and its save as an Update.
func (w *Workload) serve(ctx context.Context, i int, in Instance, id string) error {
	r := w.Recorder
	hc := &httpCall{}
	req := httptest.NewRequestWithContext(context.WithValue(ctx, httpKey{}, hc), http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: httpsession.CookieValue(id, secret)})
	tok := r.Token(in.Name)
	load := r.Begin(in.Name, Get, id, "")
	var save *Call
	handler := w.managers[i].Handler(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		s := httpsession.FromContext[Value](req.Context())
		if s.IsNew() {
			w.end(load, sessionstore.ErrNotFound, nil)
			return
		}
		v := s.Value()
		w.end(load, nil, &v)
		s.Update(func(v *Value) { v.Applied = append(v.Applied, tok) })
		save = r.Begin(in.Name, Update, id, tok)
	}))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	err := hc.err
	if err == nil && rec.Code != http.StatusOK {
		err = fmt.Errorf("%w (status %d)", errHTTP, rec.Code)
	}
	if save == nil {
		if load.op.End.IsZero() { // the load failed
			w.end(load, cmpOr(err, errHTTP), nil)
		}
		return err
	}
	if err == nil && strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		err = sessionstore.ErrNotFound // destroyed meanwhile: the session stays deleted
	}
	w.end(save, err, nil)
	return err
}

// recordStore lets the middleware work on the instance's Store[Value]: it
// stores a session's value alone, as the direct calls do, without the
// cookie object (with the default MaxAge, a browser-session cookie, the
// middleware needs nothing from it).
type recordStore struct{ s *sessionstore.Store[Value] }

func (r recordStore) Get(ctx context.Context, id string) (httpsession.Record[Value], error) {
	v, err := r.s.Get(ctx, id)
	return httpsession.Record[Value]{Value: v}, err
}

func (r recordStore) Create(ctx context.Context, id string, rec httpsession.Record[Value]) error {
	return r.s.Create(ctx, id, rec.Value)
}

func (r recordStore) Update(ctx context.Context, id string, fn func(*httpsession.Record[Value]) error) (httpsession.Record[Value], error) {
	v, err := r.s.Update(ctx, id, func(v *Value) error {
		rec := httpsession.Record[Value]{Value: *v}
		if err := fn(&rec); err != nil {
			return err
		}
		*v = rec.Value
		return nil
	})
	return httpsession.Record[Value]{Value: v}, err
}

func (r recordStore) Touch(ctx context.Context, id string) error  { return r.s.Touch(ctx, id) }
func (r recordStore) Delete(ctx context.Context, id string) error { return r.s.Delete(ctx, id) }
