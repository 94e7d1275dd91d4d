package bench

import (
	"context"
	"errors"
	"flag"
	"strconv"
	"strings"
	"sync"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// sink keeps the compiler from dropping the work of a benchmark.
var sink int64

// planned returns the iteration count fixed by -benchtime=Nx, or
// poolSize when the benchmark runs for a time. Benchmarks using b.Loop
// size their setup with it: b.N is not known before the loop.
func planned() int {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		return poolSize
	}
	if n, ok := strings.CutSuffix(f.Value.String(), "x"); ok {
		if k, err := strconv.Atoi(n); err == nil && k > 0 {
			return k
		}
	}
	return poolSize
}

// loopPool is the number of sessions a b.Loop benchmark cycles through.
func loopPool() int { return min(planned(), poolSize) }

// hitOptions returns opts (nil for the defaults) for a benchmark of Gets
// answered from memory: with CoherenceOff, so that every Get is a hit.
// On FerretDB the change feed reads the whole oplog on every poll; on a
// loaded machine a poll can take longer than MaxStaleness (memory is then
// untrusted) or than its timeout (memory is emptied), and hits become
// reads. With a feed, a hit also loads the feed's catch-up time, one
// atomic load.
func hitOptions(opts *sessionstore.Options[Session]) *sessionstore.Options[Session] {
	o := sessionstore.Options[Session]{}
	if opts != nil {
		o = *opts
	}
	o.Coherence = sessionstore.CoherenceOff
	return &o
}

// hitStore returns a store with hitOptions(opts) and n sessions in its
// memory, their ids, and the commands its client sends from now on.
func hitStore(b *testing.B, opts *sessionstore.Options[Session], n int) (*sessionstore.Store[Session], []string, *mongotest.Commands) {
	counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	s := newStore(b, counted, hitOptions(opts))
	ids := warm(b, s, n)
	cmds.Reset()
	return s, ids, cmds
}

// getHits Gets the sessions ids in turn until b.Loop says stop, and
// reports the find commands s sent per Get (finds/op), which must be 0:
// every Get is answered from memory.
func getHits(b *testing.B, s *sessionstore.Store[Session], ids []string, cmds *mongotest.Commands) {
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	defer func() { b.ReportMetric(float64(cmds.Count("find"))/float64(b.N), "finds/op") }()
	for b.Loop() {
		v, err := s.Get(ctx, ids[i])
		if err != nil {
			b.Fatal(err)
		}
		sink += v.UserID
		if i++; i == len(ids) {
			i = 0
		}
	}
}

// BenchmarkGetHit is a Get answered from memory, with the default
// options but hitOptions: msgpack and the global (unset, so no-op)
// OpenTelemetry providers.
func BenchmarkGetHit(b *testing.B) {
	s, ids, cmds := hitStore(b, nil, loopPool())
	getHits(b, s, ids, cmds)
}

// BenchmarkGetHitParallel is BenchmarkGetHit from GOMAXPROCS goroutines,
// each cycling through the sessions from its own starting point.
func BenchmarkGetHitParallel(b *testing.B) {
	s, ids, cmds := hitStore(b, nil, pool(b))
	getHitsParallel(b, s, ids, cmds)
}

// getHitsParallel is getHits from GOMAXPROCS goroutines (see parallel).
func getHitsParallel(b *testing.B, s *sessionstore.Store[Session], ids []string, cmds *mongotest.Commands) {
	ctx := context.Background()
	parallel(b, ids, func(id string) (int64, error) {
		v, err := s.Get(ctx, id)
		return v.UserID, err
	})
	b.ReportMetric(float64(cmds.Count("find"))/float64(b.N), "finds/op")
}

// BenchmarkBaselineLRUDecode is the floor under BenchmarkGetHit: a Get
// from a bare thread-safe golang-lru cache holding the same encoded
// sessions, and the msgpack decode of the bytes it returns.
func BenchmarkBaselineLRUDecode(b *testing.B) {
	ids, _ := samples(loopPool())
	get := lruDecode(b, ids)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		v, err := get(ids[i])
		if err != nil {
			b.Fatal(err)
		}
		sink += v
		if i++; i == len(ids) {
			i = 0
		}
	}
}

// lruDecode returns the Get of BenchmarkBaselineLRUDecode over a cache
// holding the sample sessions of ids; it returns the UserID it decoded.
func lruDecode(b *testing.B, ids []string) func(id string) (int64, error) {
	c, err := lru.New[string, []byte](poolSize)
	if err != nil {
		b.Fatal(err)
	}
	for i, id := range ids {
		p, err := codec.MsgPack[Session]{}.Encode(Sample(i))
		if err != nil {
			b.Fatal(err)
		}
		c.Add(id, p)
	}
	var cd codec.Codec[Session] = codec.MsgPack[Session]{}
	return func(id string) (int64, error) {
		p, ok := c.Get(id)
		if !ok {
			return 0, errors.New("lru: miss")
		}
		var v Session
		if err := cd.Decode(p, &v); err != nil {
			return 0, err
		}
		return v.UserID, nil
	}
}

// BenchmarkDirectFindOne is what a store without a cache pays for a
// read: a driver FindOne by _id on the same server, and the decode of the
// session field.
func BenchmarkDirectFindOne(b *testing.B) {
	coll := mongotest.Collection(b)
	ids := insertSessions(b, coll, 0, loopPool())
	ctx := bg(b)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[i]}}).Raw()
		if err != nil {
			b.Fatal(err)
		}
		_, data, ok := raw.Lookup("session").BinaryOK()
		if !ok {
			b.Fatal("session field is not binary")
		}
		var v Session
		if err := (codec.MsgPack[Session]{}).Decode(data, &v); err != nil {
			b.Fatal(err)
		}
		sink += v.UserID
		if i++; i == len(ids) {
			i = 0
		}
	}
}

// BenchmarkGetMissCollapsed has missGetters goroutines Get the same cold
// session at once, one cold session per operation, and reports the find
// commands the server received per cold session (finds/op): the
// singleflight group must make it exactly 1. The store follows no feed
// (CoherenceOff): a feed's first poll reports the last second of the
// collection's writes, here the sessions just inserted, and drops from
// memory those loaded meanwhile, so that a Get arriving after the load
// rightly reads again.
func BenchmarkGetMissCollapsed(b *testing.B) {
	const missGetters = 32
	coll := mongotest.Collection(b)
	counted, cmds := mongotest.Monitored(b, coll)
	s := newStore(b, counted, &sessionstore.Options[Session]{Coherence: sessionstore.CoherenceOff})
	ids := insertSessions(b, coll, 0, b.N)
	cmds.Reset()
	ctx := bg(b)
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range ids {
		var wg sync.WaitGroup
		for range missGetters {
			wg.Go(func() {
				if _, err := s.Get(ctx, id); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(cmds.Count("find"))/float64(b.N), "finds/op")
	b.ReportMetric(missGetters, "gets/op")
}

// BenchmarkGetHitTracing is BenchmarkGetHit with explicit no-op
// providers (off) and with an SDK tracer provider that samples and
// records every span into an in-memory exporter (on). The metric
// provider is a no-op in both.
func BenchmarkGetHitTracing(b *testing.B) {
	b.Run("off", func(b *testing.B) {
		s, ids, cmds := hitStore(b, &sessionstore.Options[Session]{
			TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider:  metricnoop.NewMeterProvider(),
		}, loopPool())
		getHits(b, s, ids, cmds)
	})
	b.Run("on", func(b *testing.B) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(exp))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		s := newStore(b, mongotest.Collection(b), hitOptions(&sessionstore.Options[Session]{
			TracerProvider: tp,
			MeterProvider:  metricnoop.NewMeterProvider(),
		}))
		ids := warm(b, s, loopPool())
		getTraced(b, s, ids, exp)
	})
}

// getTraced is getHits under a recording provider. It empties the
// exporter every exportBatch spans, with the timer stopped, so that the
// spans kept do not grow with b.N, and reports the spans recorded per Get.
func getTraced(b *testing.B, s *sessionstore.Store[Session], ids []string, exp *tracetest.InMemoryExporter) {
	const exportBatch = 4096
	exp.Reset()
	ctx := context.Background()
	spans := 0
	i, n := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		v, err := s.Get(ctx, ids[i])
		if err != nil {
			b.Fatal(err)
		}
		sink += v.UserID
		if i++; i == len(ids) {
			i = 0
		}
		if n++; n == exportBatch {
			b.StopTimer()
			spans += len(exp.GetSpans())
			exp.Reset()
			n = 0
			b.StartTimer()
		}
	}
	spans += len(exp.GetSpans())
	b.ReportMetric(float64(spans)/float64(b.N), "spans/op")
}
