package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/tracing"
)

const (
	// memorySessions is how many distinct sessions BenchmarkMemoryBound
	// puts through the in-memory tier each operation.
	memorySessions = 1_000_000
	// memorySize is the in-memory tier's size there: the store's default
	// CacheSize.
	memorySize = sessionstore.DefaultCacheSize
	// storeCache is the CacheSize of the store that BenchmarkMemoryBound
	// fills through its API, with storeSessions sessions.
	storeCache    = 32
	storeSessions = 3 * storeCache
)

// BenchmarkMemoryBound checks that memory stays bounded however many
// sessions go through, in two parts.
//
// What the timed loop measures: a million distinct sessions put into the
// store's own in-memory tier (a sharded tier.Memory, the type and size a
// Store with the default CacheSize of 10 000 builds), each record holding
// a 32-byte id and the msgpack encoding of a sample session, as a Get
// that misses or a Set leaves it. One operation is the whole million. A
// Store would need a server command per session to get there: a million
// on FerretDB, at hundreds a second, would take most of an hour. After
// the loop it reports the entries the tier holds (L1-entries, at most
// L1-cap) and the live heap per entry (B/entry): the heap after a garbage
// collection with the last tier alive, less the heap before the loop,
// over its entries. That is keys, records, encoded payloads, LRU list
// elements and map buckets: what a cached session costs, beyond the
// payload size (payload-B).
//
// Before the loop, untimed, the same bound is checked through a Store:
// storeSessions sessions are Set (write-through, so each one is also put
// in memory) on a store with CacheSize storeCache, and its cache-entries
// gauge is read after each one. store-L1-max is the largest value read,
// which must not exceed store-L1-cap.
//
// After the loop, value-B/entry is what each entry of a full tier costs
// more when it also keeps its session decoded (Options.Clone).
func BenchmarkMemoryBound(b *testing.B) {
	storeMax := storeBound(b)

	payload, err := codec.MsgPack[Session]{}.Encode(Sample(0))
	if err != nil {
		b.Fatal(err)
	}
	expires := time.Now().Add(time.Hour)
	var m *tier.Memory
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		m = tier.NewMemory(memorySize)
		for i := range memorySessions {
			m.Put(tier.Record{ID: ID(i), Payload: slices.Clone(payload), Expires: expires}) // a record of its own, as the store gives each
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	entries := m.Entries()
	runtime.KeepAlive(m)
	if entries > memorySize {
		b.Errorf("tier.Memory holds %d entries, more than its size %d", entries, memorySize)
	}
	b.ReportMetric(float64(entries), "L1-entries")
	b.ReportMetric(memorySize, "L1-cap")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(entries), "B/entry")
	b.ReportMetric(float64(len(payload)), "payload-B")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/memorySessions, "ns/session")
	b.ReportMetric(float64(storeMax), "store-L1-max")
	b.ReportMetric(storeCache, "store-L1-cap")
	b.ReportMetric(valueBytes(b, payload, expires), "value-B/entry")
}

// valueBytes returns the live heap each record of a full tier.Memory of
// memorySize gains when it also keeps its session decoded, as with
// Options.Clone: the heap of a tier whose records keep a clone of a
// sample session beside the payload, less that of one whose records do
// not, over the entries.
func valueBytes(b *testing.B, payload []byte, expires time.Time) float64 {
	fill := func(keep bool) uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		m := tier.NewMemory(memorySize)
		for i := range memorySize {
			rec := tier.Record{ID: ID(i), Payload: slices.Clone(payload), Expires: expires}
			if keep {
				v := Sample(i).Clone()
				rec.Value = &v
			}
			m.Put(rec)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		runtime.KeepAlive(m)
		return ms.HeapAlloc - before
	}
	without := fill(false)
	with := fill(true)
	if with < without {
		b.Logf("heap with values %d < without %d: the collector moved under the measure", with, without)
		return 0
	}
	return float64(with-without) / memorySize
}

// storeBound Sets storeSessions sessions on a store with CacheSize
// storeCache and returns the most entries its cache-entries gauge
// reported, read after each Set.
func storeBound(b *testing.B) int64 {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s := newStore(b, mongotest.Collection(b), &sessionstore.Options[Session]{CacheSize: storeCache, MeterProvider: mp})
	ctx := bg(b)
	var most int64
	for i := range storeSessions {
		if err := s.Set(ctx, ID(i), Sample(i)); err != nil {
			b.Fatal(err)
		}
		n, err := cacheEntries(ctx, reader)
		if err != nil {
			b.Fatal(err)
		}
		most = max(most, n)
	}
	if most > storeCache {
		b.Errorf("the store held %d sessions in memory, more than its CacheSize %d", most, storeCache)
	}
	return most
}

// cacheEntries reads the store's cache-entries gauge.
func cacheEntries(ctx context.Context, r *sdkmetric.ManualReader) (int64, error) {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		return 0, err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == tracing.MetricCacheEntries {
				var n int64
				for _, dp := range g.DataPoints {
					n += dp.Value
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s gauge among the store's metrics", tracing.MetricCacheEntries)
}
