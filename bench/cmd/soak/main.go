// Command soak runs the reliability workload of package
// integration/history — two stores, each with its own client, over a few
// hundred sessions — for -duration, injecting a fault every -every on a
// fixed schedule: the server killed with SIGKILL and restarted, a black
// hole, -latency on every chunk, connections reset again and again; each
// for -fault. Then it flushes the stores, reads the server, checks the
// history and prints operations per second, calls and errors by kind and
// the checker's verdict. It exits 1 if a property was violated.
//
//	cd bench && go run ./cmd/soak -duration=10m
//
// The server is an embedded FerretDB of its own (package mongotest), so
// that it can be killed; the stores reach it through a fault proxy on
// loopback, and the checker's sampler reads it directly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/history"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

// The stores' staleness bound, MaxStaleness by default, and the
// sessions' lifetime.
const (
	bound    = sessionstore.DefaultMaxStaleness
	lifetime = time.Hour
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 10*time.Minute, "how long the load runs")
	every := flag.Duration("every", 30*time.Second, "time from the start of one fault to the next")
	fault := flag.Duration("fault", 5*time.Second, "how long each fault lasts")
	latency := flag.Duration("latency", 200*time.Millisecond, "delay of each chunk during the latency fault")
	sessions := flag.Int("sessions", 300, "live sessions")
	workers := flag.Int("workers", 4, "callers per store")
	flag.Parse()
	if *fault >= *every {
		return errors.New("-fault must be shorter than -every")
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration+10*time.Minute)
	defer cancel()
	srv, err := mongotest.StartFerretDB(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	proxy, err := mongotest.StartProxy(strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/"))
	if err != nil {
		return err
	}
	defer proxy.Close()
	puri, err := proxy.URI(srv.URI())
	if err != nil {
		return err
	}

	coll := "soak"
	direct, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		return err
	}
	defer direct.Disconnect(context.Background())
	sampled := direct.Database("soak").Collection(coll)
	var instances []history.Instance
	var stores []*sessionstore.Store[history.Value]
	for _, name := range []string{"A", "B"} {
		c, err := mongo.Connect(options.Client().ApplyURI(puri))
		if err != nil {
			return err
		}
		defer c.Disconnect(context.Background())
		s, err := sessionstore.New(c.Database("soak").Collection(coll), &sessionstore.Options[history.Value]{
			Codec: codec.BSON[history.Value]{}, TTL: lifetime, TTLIndex: ttl.Off, LoadTimeout: 2 * time.Second,
		})
		if err != nil {
			return err
		}
		stores = append(stores, s)
		instances = append(instances, history.Instance{Name: name, Store: s})
	}
	rec := &history.Recorder{}
	w := &history.Workload{Instances: instances, Sessions: *sessions, Workers: *workers, RetryUpdates: true, Recorder: rec}
	if err := w.Seed(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	sampler := history.StartSampler(sampled, 2*time.Second, 10*time.Second)

	fmt.Printf("soak: %v of load on FerretDB v1.24.2, %d sessions, 2 stores × %d callers; a fault every %v for %v\n",
		*duration, *sessions, *workers, *every, *fault)
	began := time.Now()
	done := make(chan history.Stats, 1)
	go func() { done <- w.Run(ctx, *duration) }()
	faults := map[string]int{}
	schedule := []string{"kill", "blackhole", "latency", "resets"}
	for i := 0; ; i++ {
		next := began.Add(time.Duration(i+1) * *every)
		if next.Add(*fault).After(began.Add(*duration)) {
			break
		}
		time.Sleep(time.Until(next))
		kind := schedule[i%len(schedule)]
		if err := inject(ctx, kind, srv, proxy, *fault, *latency); err != nil {
			return fmt.Errorf("fault %s: %w", kind, err)
		}
		faults[kind]++
		fmt.Printf("soak: %6.1fs %s for %v\n", next.Sub(began).Seconds(), kind, *fault)
	}
	st := <-done
	elapsed := time.Since(began)

	flushed := time.Now()
	for i, s := range stores {
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Flush(fctx)
		fcancel()
		if err != nil {
			return fmt.Errorf("flush store %d: %w", i, err)
		}
	}
	samples, failed := sampler.Stop()
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	final, err := history.Read(rctx, sampled)
	rcancel()
	if err != nil {
		return err
	}
	res := history.Check(rec.Ops(), samples, final, history.Config{
		Bound: bound, TTL: lifetime, TouchSlack: sessionstore.DefaultTouchGranularity, FlushedBy: flushed,
	})
	for i, s := range stores {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Close(cctx)
		ccancel()
		if err != nil {
			return fmt.Errorf("close store %d: %w", i, err)
		}
	}
	_ = direct.Database("soak").Drop(ctx)

	calls := 0
	for _, n := range st.Calls {
		calls += n
	}
	fmt.Printf("soak: %d calls in %v: %.0f calls/s\n", calls, elapsed.Round(time.Second), float64(calls)/elapsed.Seconds())
	fmt.Printf("soak: faults: %s\n", counts(faults))
	fmt.Printf("soak: calls by kind: %s\n", counts(st.Calls))
	fmt.Printf("soak: outcomes: %s\n", counts(st.Outcome))
	fmt.Printf("soak: failed calls by kind of error: %s\n", counts(st.Errors))
	fmt.Printf("soak: calls that returned more than 1s after their timeout: %d\n", st.Slow)
	fmt.Printf("soak: Updates retried after failing: %d, of which already applied (answer lost): %d\n", st.Retried, st.Applied)
	fmt.Printf("soak: server samples: %d read, %d failed while it was unreachable\n", len(samples), failed)
	fmt.Println("soak:", res)
	if err := res.Err(); err != nil {
		return err
	}
	if st.Slow > 0 {
		return fmt.Errorf("%d calls outlived their timeout by more than a second", st.Slow)
	}
	return nil
}

// inject applies fault kind for d.
func inject(ctx context.Context, kind string, srv *mongotest.Server, proxy *mongotest.Proxy, d, latency time.Duration) error {
	end := time.Now().Add(d)
	switch kind {
	case "kill":
		if err := srv.Kill(); err != nil {
			return err
		}
		time.Sleep(time.Until(end))
		return srv.Restart(ctx)
	case "blackhole":
		proxy.Blackhole(true)
		time.Sleep(time.Until(end))
		proxy.Blackhole(false)
	case "latency":
		proxy.SetLatency(latency)
		time.Sleep(time.Until(end))
		proxy.SetLatency(0)
	case "resets":
		proxy.SetLatency(20 * time.Millisecond) // replies wait: some resets lose an answer
		for time.Now().Before(end) {
			time.Sleep(50*time.Millisecond + rand.N(150*time.Millisecond))
			proxy.ResetAll()
		}
		proxy.SetLatency(0)
	}
	return nil
}

// counts formats a map of counts, sorted by key.
func counts[K ~string](m map[K]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
