// Package observetest has a meter provider for tests that counts what is
// added to each counter, by name.
package observetest

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/metric"
	metricembedded "go.opentelemetry.io/otel/metric/embedded"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// Counters is a meter provider whose Int64Counters add into Count; every
// other instrument is a no-op. It is safe for concurrent use.
type Counters struct {
	metricnoop.MeterProvider

	mu     sync.Mutex // protects counts
	counts map[string]int64
}

// Meter returns a meter of c.
func (c *Counters) Meter(string, ...metric.MeterOption) metric.Meter { return meter{c: c} }

// Count returns the total added to the counter named name.
func (c *Counters) Count(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

func (c *Counters) add(name string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	c.counts[name] += n
}

type meter struct {
	metricnoop.Meter
	c *Counters
}

func (m meter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return counter{c: m.c, name: name}, nil
}

type counter struct {
	metricembedded.Int64Counter
	c    *Counters
	name string
}

func (c counter) Add(_ context.Context, n int64, _ ...metric.AddOption) { c.c.add(c.name, n) }
func (c counter) Enabled(context.Context) bool                          { return true }
