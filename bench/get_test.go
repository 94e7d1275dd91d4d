package bench

import (
	"context"
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

// getHits Gets the sessions ids in turn until b.Loop says stop.
func getHits(b *testing.B, s *sessionstore.Store[Session], ids []string) {
	ctx := context.Background()
	i := 0
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
	}
}

// BenchmarkGetHit is a Get answered from memory, with the default
// options: msgpack and the global (unset, so no-op) OpenTelemetry
// providers.
func BenchmarkGetHit(b *testing.B) {
	s := newStore(b, mongotest.Collection(b), nil)
	ids := warm(b, s, loopPool())
	getHits(b, s, ids)
}

// BenchmarkGetHitParallel is BenchmarkGetHit from GOMAXPROCS goroutines,
// each cycling through the sessions from its own starting point.
func BenchmarkGetHitParallel(b *testing.B) {
	s := newStore(b, mongotest.Collection(b), nil)
	ids := warm(b, s, pool(b))
	var (
		mu    sync.Mutex // protects start
		start int
	)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		i := start % len(ids)
		start += len(ids)/7 + 1
		mu.Unlock()
		var local int64
		for pb.Next() {
			v, err := s.Get(ctx, ids[i])
			if err != nil {
				b.Error(err)
				return
			}
			local += v.UserID
			if i++; i == len(ids) {
				i = 0
			}
		}
		mu.Lock()
		sink += local
		mu.Unlock()
	})
}

// BenchmarkBaselineLRUDecode is the floor under BenchmarkGetHit: a Get
// from a bare thread-safe golang-lru cache holding the same encoded
// sessions, and the msgpack decode of the bytes it returns.
func BenchmarkBaselineLRUDecode(b *testing.B) {
	n := loopPool()
	c, err := lru.New[string, []byte](poolSize)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = ID(i)
		p, err := codec.MsgPack[Session]{}.Encode(Sample(i))
		if err != nil {
			b.Fatal(err)
		}
		c.Add(ids[i], p)
	}
	var cd codec.Codec[Session] = codec.MsgPack[Session]{}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p, ok := c.Get(ids[i])
		if !ok {
			b.Fatal("lru: miss")
		}
		var v Session
		if err := cd.Decode(p, &v); err != nil {
			b.Fatal(err)
		}
		sink += v.UserID
		if i++; i == len(ids) {
			i = 0
		}
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
// singleflight group must make it exactly 1.
func BenchmarkGetMissCollapsed(b *testing.B) {
	const missGetters = 32
	coll := mongotest.Collection(b)
	counted, cmds := mongotest.Monitored(b, coll)
	s := newStore(b, counted, nil)
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
		s := newStore(b, mongotest.Collection(b), &sessionstore.Options[Session]{
			TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider:  metricnoop.NewMeterProvider(),
		})
		ids := warm(b, s, loopPool())
		getHits(b, s, ids)
	})
	b.Run("on", func(b *testing.B) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(exp))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		s := newStore(b, mongotest.Collection(b), &sessionstore.Options[Session]{
			TracerProvider: tp,
			MeterProvider:  metricnoop.NewMeterProvider(),
		})
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
