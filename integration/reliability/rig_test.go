// Package reliability runs the store through faults — a killed server, a
// black-holed network, slow commands, connections reset during writes —
// under a mixed load of two stores, and checks every recorded history
// with package history.
//
// The faults are short by default; RELIABILITY_FAULT (a duration, default
// 5s), RELIABILITY_LOAD (the load before and after each fault, default
// 3s) and RELIABILITY_ROUNDS (faults per scenario, default 1) make a
// longer run.
package reliability_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/history"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

const (
	// bound is the staleness the stores guarantee: MaxStaleness, the
	// default coherence's bound.
	bound = sessionstore.DefaultMaxStaleness
	// lifetime is the sessions' TTL: none expires during a run.
	lifetime = time.Hour
	// callTimeout bounds each call of the workload.
	callTimeout = 2 * time.Second
	// closeTimeout bounds a store's Close.
	closeTimeout = 10 * time.Second
)

// settings are the durations of a run, from the environment.
type settings struct {
	fault, load time.Duration
	rounds      int
}

func runSettings(t *testing.T) settings {
	t.Helper()
	s := settings{fault: 5 * time.Second, load: 3 * time.Second, rounds: 1}
	for name, d := range map[string]*time.Duration{"RELIABILITY_FAULT": &s.fault, "RELIABILITY_LOAD": &s.load} {
		if v := os.Getenv(name); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	if v := os.Getenv("RELIABILITY_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RELIABILITY_ROUNDS=%q: want a positive number", v)
		}
		s.rounds = n
	}
	return s
}

// rig is a workload of two stores, each with a client of its own, on
// one collection, and a sampler reading the server directly.
type rig struct {
	t        *testing.T
	coll     *mongo.Collection // through a client of the test's, not the stores'
	clients  []*mongo.Client
	stores   []*sessionstore.Store[history.Value]
	w        *history.Workload
	rec      *history.Recorder
	sampler  *history.Sampler
	baseline int // goroutines before the rig
	closed   bool
	final    history.Snapshot // the server's state, read by check
}

// newRig connects two stores to storeURI (the server, or a proxy in front
// of it) and the sampler to serverURI. opts, if not nil, adjusts each
// store's options.
func newRig(t *testing.T, storeURI, serverURI string, opts func(i int, o *sessionstore.Options[history.Value])) *rig {
	t.Helper()
	r := &rig{t: t, rec: &history.Recorder{}, baseline: runtime.NumGoroutine()}
	name := fmt.Sprintf("%s_%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	direct := r.connect(serverURI)
	r.coll = direct.Database(mongotest.Database).Collection(name)
	var instances []history.Instance
	for i, inst := range []string{"A", "B"} {
		c := r.connect(storeURI)
		o := &sessionstore.Options[history.Value]{
			Codec:       codec.BSON[history.Value]{},
			TTL:         lifetime,
			TTLIndex:    ttl.Off,
			LoadTimeout: callTimeout,
		}
		if opts != nil {
			opts(i, o)
		}
		s, err := sessionstore.New(c.Database(mongotest.Database).Collection(name), o)
		if err != nil {
			t.Fatal(err)
		}
		r.stores = append(r.stores, s)
		instances = append(instances, history.Instance{Name: inst, Store: s})
	}
	r.w = &history.Workload{Instances: instances, CallTimeout: callTimeout, Recorder: r.rec}
	t.Cleanup(r.cleanup)
	return r
}

func (r *rig) connect(uri string) *mongo.Client {
	r.t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		r.t.Fatal(err)
	}
	r.clients = append(r.clients, c)
	return c
}

// start seeds the sessions and starts sampling the server.
func (r *rig) start() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	if err := r.w.Seed(ctx); err != nil {
		r.t.Fatalf("seed: %v", err)
	}
	r.t.Logf("seeded %d sessions in %v", len(r.rec.Ops()), time.Since(began).Round(time.Millisecond))
	r.sampler = history.StartSampler(r.coll, 500*time.Millisecond, 5*time.Second)
}

// load runs the workload for d in the background; wait for it with the
// function returned.
func (r *rig) load(d time.Duration) func() history.Stats {
	done := make(chan history.Stats, 1)
	go func() { done <- r.w.Run(context.Background(), d) }()
	return func() history.Stats { return <-done }
}

// flush writes every store's buffered touches and returns when the
// flushes began: every touch that ended before is on the server.
func (r *rig) flush() time.Time {
	r.t.Helper()
	began := time.Now()
	for i, s := range r.stores {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		err := s.Flush(ctx)
		cancel()
		if err != nil {
			r.t.Fatalf("Flush of store %d: %v", i, err)
		}
	}
	return began
}

// check reads the server, checks the history with cfg and logs the
// verdict.
func (r *rig) check(cfg history.Config) *history.Result {
	r.t.Helper()
	samples, failed := r.sampler.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	final, err := history.Read(ctx, r.coll)
	if err != nil {
		r.t.Fatal(err)
	}
	r.final = final
	cfg.Bound, cfg.TTL = bound, lifetime
	cfg.TouchSlack = sessionstore.DefaultTouchGranularity
	res := history.Check(r.rec.Ops(), samples, final, cfg)
	r.t.Logf("%s\n(%d server samples failed, as the server was unreachable)", res, failed)
	if err := res.Err(); err != nil {
		r.t.Error(err)
	}
	return res
}

// logStats logs what the calls did, and fails the test if any of them
// outlived its timeout by more than a second.
func (r *rig) logStats(st history.Stats) {
	t := r.t
	t.Helper()
	t.Logf("calls: %v; outcomes: %v; failed by kind: %v; slower than their timeout: %d; Updates retried: %d, of which the server had applied %d",
		st.Calls, st.Outcome, st.Errors, st.Slow, st.Retried, st.Applied)
	// What callers saw, by operation and message (numbers elided).
	seen := map[string]int{}
	for _, op := range r.rec.Ops() {
		if op.Outcome == history.Failed {
			msg := digits.ReplaceAllString(op.Err, "#")
			if len(msg) > 160 {
				msg = msg[:160] + "…"
			}
			seen[string(op.Kind)+": "+msg]++
		}
	}
	keys := slices.Sorted(maps.Keys(seen))
	for _, k := range keys {
		t.Logf("%4d× %s", seen[k], k)
	}
	if st.Slow > 0 {
		t.Errorf("%d calls returned more than a second after their %v timeout", st.Slow, callTimeout)
		for _, op := range r.rec.Ops() {
			if d := op.End.Sub(op.Start); d > callTimeout+time.Second {
				t.Logf("slow: %s %s on %s took %v: %s", op.Kind, op.ID, op.Instance, d.Round(time.Millisecond), op.Err)
			}
		}
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

// close closes the stores, each by closeTimeout, and fails the test on an
// error.
func (r *rig) close() {
	r.t.Helper()
	for i, s := range r.stores {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		err := s.Close(ctx)
		cancel()
		if err != nil {
			r.t.Errorf("Close of store %d: %v", i, err)
		}
	}
	r.closed = true
}

// cleanup closes what is still open, disconnects the clients and checks
// that the goroutines are back to the baseline.
func (r *rig) cleanup() {
	if r.sampler != nil {
		r.sampler.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if !r.closed {
		for _, s := range r.stores {
			_ = s.Close(ctx)
		}
	}
	if len(r.clients) > 0 {
		_ = r.coll.Drop(ctx)
	}
	for _, c := range r.clients {
		_ = c.Disconnect(ctx)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > r.baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > r.baseline {
		buf := make([]byte, 1<<20)
		r.t.Errorf("%d goroutines after the stores closed, %d before:\n%s", n, r.baseline, buf[:runtime.Stack(buf, true)])
	} else {
		r.t.Logf("goroutines back to the baseline: %d (%d before)", n, r.baseline)
	}
}
