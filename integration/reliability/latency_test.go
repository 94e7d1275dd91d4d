package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/history"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// meter reads a store's metrics.
type meter struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMeter(t *testing.T) *meter {
	m := &meter{reader: sdkmetric.NewManualReader()}
	m.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(m.reader))
	t.Cleanup(func() { _ = m.mp.Shutdown(context.Background()) })
	return m
}

// value returns the sum of the data points of the int64 gauge or counter
// name.
func (m *meter) value(t *testing.T, name string) int64 {
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != name {
				continue
			}
			switch d := mt.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					n += p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					n += p.Value
				}
			}
		}
	}
	return n
}

// Scenario 3: every chunk of bytes to and from the server is delayed by
// 200 ms. Under the mixed load, concurrent cold reads of an id still make
// one read, pending touches stay within MaxPendingTouches and memory
// within CacheSize, and the history holds.
func TestLatency(t *testing.T) {
	set := runSettings(t)
	const (
		latency    = 200 * time.Millisecond
		cacheSize  = 100
		maxPending = 50
	)
	p, puri := proxied(t)
	m := newMeter(t)
	r := newRig(t, puri, mongotest.URI(), func(i int, o *sessionstore.Options[history.Value]) {
		if i == 0 {
			o.CacheSize, o.MaxPendingTouches, o.MeterProvider = cacheSize, maxPending, m.mp
		}
	})
	r.start()
	p.SetLatency(latency)

	// Gauges of store A, read every 50 ms.
	var (
		mu                  sync.Mutex
		maxEntries, maxPend int64
		reads               int
	)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e, pn := m.value(t, tracing.MetricCacheEntries), m.value(t, tracing.MetricTouchPending)
			mu.Lock()
			maxEntries, maxPend, reads = max(maxEntries, e), max(maxPend, pn), reads+1
			mu.Unlock()
		}
	}()

	d := time.Duration(set.rounds) * (set.fault + set.load)
	wait := r.load(d)
	// A burst of touches of every seeded session on store A: more than
	// MaxPendingTouches wait while the flush crawls.
	for i := range 300 {
		r.touch(0, "A", r.seeded(i))
	}
	collapsed := coldReads(t, puri, 20, 16)
	st := wait()
	close(stop)
	<-watched
	p.SetLatency(0)
	r.logStats(st)
	r.check(history.Config{}) // touches beyond MaxPendingTouches are dropped by design

	dropped, evicted := m.value(t, tracing.MetricTouchDropped), m.value(t, tracing.MetricEvictions)
	t.Logf("%v latency: store A held at most %d sessions in memory (CacheSize %d, %d evicted) and %d pending touches (MaxPendingTouches %d, %d dropped), over %d reads of its gauges",
		latency, maxEntries, cacheSize, evicted, maxPend, maxPending, dropped, reads)
	if maxEntries > cacheSize {
		t.Errorf("memory held %d sessions, CacheSize is %d", maxEntries, cacheSize)
	}
	if maxPend > maxPending {
		t.Errorf("%d touches pending, MaxPendingTouches is %d", maxPend, maxPending)
	}
	if dropped == 0 || evicted == 0 {
		t.Errorf("the bounds were not reached: %d touches dropped, %d sessions evicted", dropped, evicted)
	}
	t.Logf("cold reads: %s", collapsed)
	r.close()
}

func outcomeOf(err error) history.Outcome {
	if err != nil {
		return history.Failed
	}
	return history.OK
}

// coldReads stores ids sessions, then reads each from callers goroutines
// at once through a fresh store connected to uri, and fails the test
// unless each id was read from the server once. It returns a summary.
func coldReads(t *testing.T, uri string, ids, callers int) string {
	t.Helper()
	var (
		mu    sync.Mutex
		finds = map[string]int{}
	)
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" {
			return
		}
		if id, ok := e.Command.Lookup("filter", "_id").StringValueOK(); ok {
			mu.Lock()
			finds[id]++
			mu.Unlock()
		}
	}}
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer c.Disconnect(ctx)
	coll := c.Database(mongotest.Database).Collection(fmt.Sprintf("cold_%d", time.Now().UnixNano()))
	defer coll.Drop(ctx)
	var docs []any
	exp := time.Now().Add(time.Hour)
	for i := range ids {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprint("cold", i)}, {Key: "expires", Value: exp},
			{Key: "session", Value: bson.D{{Key: "base", Value: "seed"}}}, {Key: "rev", Value: int64(1)}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	s, err := sessionstore.New(coll, &sessionstore.Options[history.Value]{Codec: codec.BSON[history.Value]{}, TTLIndex: ttl.Off, LoadTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, ids*callers)
	for i := range ids {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Get(ctx, fmt.Sprint("cold", i)); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	took := time.Since(began)
	close(errs)
	for err := range errs {
		t.Errorf("cold Get: %v", err)
		break
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range ids {
		if n := finds[fmt.Sprint("cold", i)]; n != 1 {
			t.Errorf("cold%d: %d finds for %d concurrent Gets, want 1", i, n, callers)
		}
	}
	return fmt.Sprintf("%d ids × %d concurrent Gets: %d finds in %v", ids, callers, len(finds), took.Round(time.Millisecond))
}
