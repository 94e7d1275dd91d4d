// Command loadtest puts a bounded HTTP load on the demo's handler
// (examples/demo/app): httpsession middleware over a sessionstore.Store
// with the BSON codec, keeping express-session's document shape; a new
// session gets a random value, which saves it, and a returning one is
// left unchanged, so that it is only touched. It prints, for each
// workload, the requests per second, the allocations and CPU time per
// request (of the whole process: runtime.MemStats.Mallocs and getrusage
// deltas over the load, the load generator's included) and the database
// commands per request, counted with a command monitor; and each run
// again as a line of go test benchmark output (BenchmarkLoad/<workload>),
// which bench/cmd/targets checks.
//
// The workloads:
//
//   - new: every request comes without a cookie, so every request makes
//     and saves a session.
//   - returning: -sessions sessions are made first (untimed, one request
//     each), then every request brings one of their cookies, in turn.
//     The store answers them from memory and batches the touches.
//   - floor: returning's requests through a bare net/http handler that
//     reads the connect.sid cookie and sets it back with the demo's
//     attributes (bench.Floor): what the demo costs without sessions.
//   - newfloor: new's requests through the demo's handler with a bare
//     driver insert of the same document in place of the store.
//
// With -rounds N the workloads run N times, in reverse order every other
// round, and a summary gives each one's medians and the ratios of
// requests per second to the floors, measured in the same run: the
// machine may be shared, so only ratios within a run mean anything.
//
// Requests go over keep-alive connections, one per client and server,
// formatted in advance and parsed no further than the status and
// Content-Length, so that the load generator takes little of the CPU the
// server needs.
//
// Each workload runs until -requests requests have been answered or
// -duration has passed, whichever comes first, with -concurrency clients
// on loopback; the touches it buffered are flushed before its commands
// are counted. The whole run is bounded by -timeout. The server is the one
// at MONGODB_URI, else a container of MONGODB_IMAGE, else an embedded
// FerretDB (package mongotest), which is why the command runs from the
// bench module:
//
//	cd bench && go run ./cmd/loadtest -duration=10s -concurrency=8 -rounds=5
//
// Each workload uses a collection of its own, dropped at the end. The
// load generator and the server share the process and its cores. The
// store runs with the demo's options; -coherence off takes its change
// feed away, to show what following the other writers costs (on FerretDB
// the feed rereads the whole oplog four times a second). A background
// failure of the store, or a failed request, fails the workload.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/examples/demo/app"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// database holds the load test's collections.
const database = "sessionstore_loadtest"

type config struct {
	duration    time.Duration
	requests    int
	concurrency int
	sessions    int
	timeout     time.Duration
	writeTime   time.Duration
	instances   int
	workloads   []string
	rounds      int
	coherence   string // of the store: strict, lenient or off
}

func main() {
	var c config
	var workloads string
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "longest `time` each workload's load runs")
	flag.IntVar(&c.requests, "requests", 20_000, "most requests each workload sends")
	flag.IntVar(&c.concurrency, "concurrency", 8, "clients sending requests at once")
	flag.IntVar(&c.sessions, "sessions", 1_000, "returning sessions in the returning workload")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "bound on the whole run, server start included")
	flag.DurationVar(&c.writeTime, "write-timeout", 0, "the store's WriteTimeout, which bounds each touch command (0: the store's default)")
	flag.IntVar(&c.instances, "instances", 1, "demo instances, each with a store and a client of its own, sharing the collection; requests go to them in turn")
	flag.StringVar(&workloads, "workloads", "floor,returning,newfloor,new", "comma-separated workloads to run: new, returning, floor, newfloor")
	flag.IntVar(&c.rounds, "rounds", 1, "times to run the workloads, in reverse order every other time")
	flag.StringVar(&c.coherence, "coherence", "strict", "the store's Coherence: strict (the demo's), lenient, or off (no change feed)")
	flag.Parse()
	c.workloads = strings.Split(workloads, ",")
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.duration <= 0 || c.requests <= 0 || c.concurrency <= 0 || c.sessions <= 0 || c.instances <= 0 || c.rounds <= 0 {
		return errors.New("-duration, -requests, -concurrency, -sessions, -instances and -rounds must be positive")
	}
	if _, ok := coherences[c.coherence]; !ok {
		return fmt.Errorf("-coherence %q: want strict, lenient or off", c.coherence)
	}
	for _, w := range c.workloads {
		if w != "new" && w != "returning" && w != "floor" && w != "newfloor" {
			return fmt.Errorf("unknown workload %q", w)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	srv, err := mongotest.Start(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
	}()
	cmds := &commands{counts: map[string]int{}}
	var clients []*mongo.Client
	for range c.instances {
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMonitor(cmds.monitor()))
		if err != nil {
			return err
		}
		defer client.Disconnect(context.WithoutCancel(ctx))
		clients = append(clients, client)
	}

	fmt.Printf("server: %s; %d instances; %d clients; each workload: at most %d requests or %v; %d rounds; coherence %s\n",
		srv.Kind(), c.instances, c.concurrency, c.requests, c.duration, c.rounds, c.coherence)
	runs := map[string][]result{}
	order := slices.Clone(c.workloads)
	for round := range c.rounds {
		for _, w := range order {
			name := fmt.Sprintf("sessions_%s_%d", w, time.Now().UnixNano())
			var colls []*mongo.Collection
			for _, client := range clients {
				colls = append(colls, client.Database(database).Collection(name))
			}
			cmds.watch(name)
			var r result
			var err error
			if w == "floor" || w == "newfloor" {
				cmds.reset()
				r, err = floorWorkload(ctx, c, w, colls)
				r.commands, r.feed = cmds.snapshot()
			} else {
				r, err = workload(ctx, c, w, colls, cmds)
			}
			if derr := colls[0].Drop(context.WithoutCancel(ctx)); derr != nil && err == nil {
				err = derr
			}
			if r.name != "" {
				fmt.Println(r)
				fmt.Println(r.benchLine())
				runs[w] = append(runs[w], r)
			}
			if r.failed > 0 {
				err = errors.Join(err, fmt.Errorf("%d of %d requests failed", r.failed, r.requests))
			}
			if err != nil {
				return fmt.Errorf("workload %s, round %d: %w", w, round+1, err)
			}
		}
		slices.Reverse(order)
	}
	summarize(os.Stdout, runs, c.workloads)
	return nil
}

// coherences are the values of -coherence.
var coherences = map[string]sessionstore.Coherence{
	"strict":  sessionstore.CoherenceStrict,
	"lenient": sessionstore.CoherenceLenient,
	"off":     sessionstore.CoherenceOff,
}

// result is what one workload measured.
type result struct {
	name      string
	requests  int64
	failed    int64
	elapsed   time.Duration
	commands  map[string]int
	latencies []time.Duration
	setup     int   // requests made before the load, not counted
	feed      int   // oplog reads of the change feeds, not in commands
	used      usage // by the whole process during the load
}

func (r result) String() string {
	total := 0
	var names []string
	for name, n := range r.commands {
		total += n
		names = append(names, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(names)
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(p*float64(len(r.latencies)-1))]
	}
	allocs, cpu, perReq := r.perRequest()
	s := fmt.Sprintf("%-9s %6d requests (%d failed) in %-7v %8.0f requests/s  latency p50 %-9v p99 %-9v  %.1f allocs/request  %v CPU/request  %.4f commands/request (%d: %s)",
		r.name, r.requests, r.failed, r.elapsed.Round(time.Millisecond),
		float64(r.requests)/r.elapsed.Seconds(), pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
		allocs, cpu.Round(100*time.Nanosecond), perReq, total, strings.Join(names, " "))
	if r.feed > 0 {
		s += fmt.Sprintf("; change feeds: %d oplog reads (%.1f/s)", r.feed, float64(r.feed)/r.elapsed.Seconds())
	}
	if r.setup > 0 {
		s += fmt.Sprintf("; after %d untimed requests making the sessions", r.setup)
	}
	return s
}

// workload runs one workload against a store and a server per
// collection in colls, all of one collection seen through a client each.
func workload(ctx context.Context, c config, name string, colls []*mongo.Collection, cmds *commands) (result, error) {
	var (
		background atomic.Int64          // background failures of the stores
		firstErr   atomic.Pointer[error] // the first of them
	)
	var (
		stores []*sessionstore.Store[app.Record]
		urls   []string
	)
	for _, coll := range colls {
		store, err := sessionstore.New(coll, &sessionstore.Options[app.Record]{
			Codec:        codec.BSON[app.Record]{},
			TTL:          app.Lifetime,
			WriteTimeout: c.writeTime,
			Clone:        app.CloneRecord,
			TouchAfter:   app.TouchAfter,
			Coherence:    coherences[c.coherence],
			OnError: func(err error) {
				background.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			},
		})
		if err != nil {
			return result{}, err
		}
		defer store.Close(context.WithoutCancel(ctx))
		// Let TTL index setup finish, so that its commands are not counted.
		if _, err := store.TTLIndex(ctx); err != nil {
			return result{}, err
		}
		h, err := app.New(store, secret, nil, nil)
		if err != nil {
			return result{}, err
		}
		url, stop, err := serve(h)
		if err != nil {
			return result{}, err
		}
		defer stop(context.WithoutCancel(ctx))
		stores = append(stores, store)
		urls = append(urls, url)
	}
	httpc := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: c.concurrency, MaxConnsPerHost: c.concurrency},
		Timeout:   30 * time.Second,
	}
	defer httpc.CloseIdleConnections()

	var cookies []*http.Cookie
	if name == "returning" {
		var err error
		cookies, err = makeSessions(ctx, httpc, urls, c.sessions)
		if err != nil {
			return result{}, err
		}
	}
	flush := func() error {
		for _, s := range stores {
			if err := s.Flush(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	if err := flush(); err != nil {
		return result{}, err
	}
	cmds.reset()
	r := load(ctx, c, urls, cookies)
	r.name = name
	r.setup = len(cookies)
	// The touches buffered during the load are part of its cost.
	err := flush()
	r.commands, r.feed = cmds.snapshot()
	if err != nil {
		return r, fmt.Errorf("flush after the load: %w", err)
	}
	if n := background.Load(); n > 0 {
		return r, fmt.Errorf("%d background failures of the store, the first: %w", n, *firstErr.Load())
	}
	return r, ctx.Err()
}

// secret signs the cookies of every instance of a run.
var secret = rand.Text()

// makeSessions sends n requests without a cookie, one at a time, and
// returns the session cookies they set.
func makeSessions(ctx context.Context, httpc *http.Client, urls []string, n int) ([]*http.Cookie, error) {
	cookies := make([]*http.Cookie, 0, n)
	for i := range n {
		resp, err := get(ctx, httpc, urls[i%len(urls)], nil)
		if err != nil {
			return nil, err
		}
		var got *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "connect.sid" {
				got = ck
			}
		}
		if got == nil {
			return nil, errors.New("a new session's response set no session cookie")
		}
		cookies = append(cookies, &http.Cookie{Name: got.Name, Value: got.Value})
	}
	return cookies, nil
}

// load sends requests from c.concurrency clients until c.requests have
// been sent or c.duration has passed; requests in flight then are
// answered and counted. With cookies, request i brings cookie i mod
// len(cookies). Each client has a connection of its own to each URL.
func load(ctx context.Context, c config, urls []string, cookies []*http.Cookie) result {
	var (
		next, done, failed atomic.Int64
		mu                 sync.Mutex // protects lat
		lat                []time.Duration
		wg                 sync.WaitGroup
	)
	// Every request's bytes, by URL and cookie, formatted in advance.
	addrs := make([]string, len(urls))
	reqs := make([][][]byte, len(urls))
	for u, url := range urls {
		addrs[u] = strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
		if len(cookies) == 0 {
			reqs[u] = [][]byte{request(addrs[u], "")}
		}
		for _, ck := range cookies {
			reqs[u] = append(reqs[u], request(addrs[u], ck.Name+"="+ck.Value))
		}
	}
	before := readUsage()
	start := time.Now()
	deadline := start.Add(c.duration)
	for range c.concurrency {
		wg.Go(func() {
			rc := newRawClient(30 * time.Second)
			defer rc.close()
			mine := make([]time.Duration, 0, c.requests/c.concurrency+1)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(c.requests) {
					break
				}
				u := i % int64(len(urls))
				req := reqs[u][i%int64(len(reqs[u]))]
				t := time.Now()
				err := rc.do(ctx, addrs[u], req)
				mine = append(mine, time.Since(t))
				done.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := readUsage()
	return result{
		requests: done.Load(), failed: failed.Load(), elapsed: elapsed, latencies: lat,
		used: usage{mallocs: after.mallocs - before.mallocs, cpu: after.cpu - before.cpu},
	}
}

// get sends GET url with cookie, if any, reads the response and checks
// that it is 200 OK.
func get(ctx context.Context, httpc *http.Client, url string, cookie *http.Cookie) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return resp, nil
}

// commands counts the commands a client sends on one collection at a
// time, by name.
type commands struct {
	mu     sync.Mutex // protects coll and counts
	coll   string
	counts map[string]int
	feed   int // reads of the oplog, by the stores' change feeds
}

func (c *commands) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			v, err := e.Command.LookupErr(e.CommandName)
			if err != nil {
				return
			}
			name, ok := v.StringValueOK()
			if !ok {
				return
			}
			c.mu.Lock()
			switch name {
			case c.coll:
				c.counts[e.CommandName]++
			case "oplog.rs":
				c.feed++
			}
			c.mu.Unlock()
		},
	}
}

func (c *commands) watch(coll string) {
	c.mu.Lock()
	c.coll = coll
	c.mu.Unlock()
}

func (c *commands) reset() {
	c.mu.Lock()
	clear(c.counts)
	c.feed = 0
	c.mu.Unlock()
}

func (c *commands) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts), c.feed
}
