package observetest

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric"
)

func TestCounters(t *testing.T) {
	c := &Counters{}
	var mp metric.MeterProvider = c
	m := mp.Meter("test")
	a, _ := m.Int64Counter("a")
	b, _ := m.Int64Counter("b")
	if h, err := m.Float64Histogram("h"); err != nil || h == nil {
		t.Fatalf("a histogram: %v, %v", h, err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { a.Add(context.Background(), 2) })
	}
	wg.Wait()
	b.Add(context.Background(), 1)
	if c.Count("a") != 20 || c.Count("b") != 1 || c.Count("none") != 0 || !a.Enabled(context.Background()) {
		t.Errorf("counts a=%d b=%d none=%d", c.Count("a"), c.Count("b"), c.Count("none"))
	}
}
