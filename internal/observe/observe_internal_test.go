package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricembedded "go.opentelemetry.io/otel/metric/embedded"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessionstore/sessionstore/internal/observe/observetest"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/tracing"
)

// countingProvider counts the spans its tracers start.
type countingProvider struct {
	embedded.TracerProvider
	started atomic.Int64
}

func (p *countingProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return countingTracer{p: p}
}

type countingTracer struct {
	embedded.Tracer
	p *countingProvider
}

func (t countingTracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.p.started.Add(1)
	return ctx, tracenoop.Span{}
}

// TestSpansWithUnsetGlobalProvider checks that a store on the default
// global provider pays only for the span's context until a provider is
// set, and that its spans go to the provider set after it was made.
func TestSpansWithUnsetGlobalProvider(t *testing.T) {
	prev := otel.GetTracerProvider()
	if !defaultGlobal(prev, "tracerProvider", prev.Tracer("probe"), "tracer") {
		t.Skip("a global tracer provider is already set in this process")
	}
	o, err := New("db", "c", nil, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	span := func() {
		_, op := o.Start(context.Background(), Get)
		op.Hit()
		op.End(nil)
	}
	if n := testing.AllocsPerRun(100, span); n > 1 {
		t.Errorf("a span with the global provider unset allocates %v times, want at most 1 (its context)", n)
	}

	p := &countingProvider{}
	otel.SetTracerProvider(p)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	span()
	if got := p.started.Load(); got != 1 {
		t.Errorf("provider set after the store was made started %d spans, want 1", got)
	}
}

// recordingSpan is a span that records what the observer sets on it.
type recordingSpan struct {
	tracenoop.Span
	attrs  []attribute.KeyValue
	errs   []error
	status codes.Code
	ended  bool
}

func (s *recordingSpan) IsRecording() bool                             { return true }
func (s *recordingSpan) SetAttributes(kv ...attribute.KeyValue)        { s.attrs = append(s.attrs, kv...) }
func (s *recordingSpan) RecordError(err error, _ ...trace.EventOption) { s.errs = append(s.errs, err) }
func (s *recordingSpan) SetStatus(c codes.Code, _ string)              { s.status = c }
func (s *recordingSpan) End(...trace.SpanEndOption)                    { s.ended = true }

type recordingProvider struct {
	embedded.TracerProvider
	spans []*recordingSpan
}

func (p *recordingProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return recordingTracer{p: p}
}

type recordingTracer struct {
	embedded.Tracer
	p *recordingProvider
}

func (t recordingTracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	s := &recordingSpan{}
	t.p.spans = append(t.p.spans, s)
	return ctx, s
}

// callbackMeter calls every registered callback at once, as a reader
// collecting right after registration would.
type callbackMeter struct {
	metricnoop.Meter
	observed map[string]int64
}

func (m *callbackMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	return metricnoop.Registration{}, f(context.Background(), observer{m: m})
}

type observer struct {
	metricembedded.Observer
	m *callbackMeter
}

func (o observer) ObserveFloat64(metric.Float64Observable, float64, ...metric.ObserveOption) {}
func (o observer) ObserveInt64(obs metric.Int64Observable, v int64, _ ...metric.ObserveOption) {
	o.m.observed[fmt.Sprintf("%T", obs)] += v
}

type callbackProvider struct {
	metricnoop.MeterProvider
	m *callbackMeter
}

func (p callbackProvider) Meter(string, ...metric.MeterOption) metric.Meter { return p.m }

func TestOperations(t *testing.T) {
	tp := &recordingProvider{}
	mp := callbackProvider{m: &callbackMeter{observed: map[string]int64{}}}
	var logs strings.Builder
	var reported []error
	o, err := New("db", "c", tp, mp, slog.New(slog.NewTextHandler(&logs, nil)), func(err error) { reported = append(reported, err) })
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Observe(func() Gauges { return Gauges{Entries: 1, Evictions: 2, Pending: 3} }); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if len(mp.m.observed) == 0 {
		t.Fatal("gauges were not observed")
	}

	_, op := o.Start(context.Background(), Get)
	op.Miss()
	op.Loaded(true)
	op.End(tier.ErrNotFound) // an outcome, not a failure
	_, op = o.Start(context.Background(), Get)
	op.Hit()
	op.End(nil)
	_, op = o.Start(context.Background(), TouchFlush)
	op.Flush(10, 2)
	op.End(errors.New("down"))
	_, op = o.Start(context.Background(), Reap)
	op.Reaped(4)
	op.Attrs(attribute.String("k", "v"))
	op.End(nil)
	if len(tp.spans) != 4 {
		t.Fatalf("%d spans, want 4", len(tp.spans))
	}
	for i, s := range tp.spans {
		if !s.ended {
			t.Errorf("span %d not ended", i)
		}
	}
	if s := tp.spans[0]; len(s.errs) != 0 || s.status == codes.Error {
		t.Error("ErrNotFound marked the span as failed")
	}
	if s := tp.spans[2]; len(s.errs) != 1 || s.status != codes.Error || len(s.attrs) != 2 {
		t.Errorf("failed flush span: %+v", s)
	}
	if s := tp.spans[3]; len(s.attrs) != 2 {
		t.Errorf("reap span attributes %v", s.attrs)
	}

	o.LoadStarted()
	o.TouchQueued()
	o.TouchSkipped()
	o.TouchDropped(2)
	o.TouchesFlushed(3)
	o.Background(Flush, errors.New("flush failed"))
	o.Report(errors.New("reaper failed"))
	if len(reported) != 2 {
		t.Fatalf("%d errors reported, want 2", len(reported))
	}
	if !strings.Contains(logs.String(), "background flush failed") {
		t.Fatalf("no log of the background failure: %s", logs.String())
	}
	if o.Logger() == nil {
		t.Fatal("no logger")
	}
}

// hitShaped runs the observer's part of a Get answered from memory.
func hitShaped(o *Observer) {
	_, op := o.Start(context.Background(), Get)
	op.Hit()
	op.End(nil)
}

// TestNoopCostsNothing checks that with no-op providers, explicit ones or
// the default global ones while unset, an operation allocates nothing,
// starts no span and returns the caller's context as it is.
func TestNoopCostsNothing(t *testing.T) {
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
		mp   metric.MeterProvider
	}{
		{"explicit no-op providers", tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()},
		{"global providers unset", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tp == nil && (!defaultGlobal(prevTP, "tracerProvider", prevTP.Tracer("probe"), "tracer") ||
				!defaultGlobal(prevMP, "meterProvider", prevMP.Meter("probe"), "meter")) {
				t.Skip("a global provider is already set in this process")
			}
			o, err := New("db", "c", c.tp, c.mp, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(1000, func() { hitShaped(o) }); n != 0 {
				t.Errorf("a no-op operation allocates %v times, want 0", n)
			}
			type key struct{}
			ctx := context.WithValue(context.Background(), key{}, 1)
			got, op := o.Start(ctx, Get)
			if got != ctx || op.span != nil || op.metered {
				t.Errorf("a no-op operation started a span (%v), a clock (%v) or a new context (%v)", op.span != nil, op.metered, got != ctx)
			}
			op.End(errors.New("failed"))
		})
	}
}

// TestMetricsWithUnsetGlobalProvider checks that a store made while the
// global meter provider was unset records into the provider set later.
func TestMetricsWithUnsetGlobalProvider(t *testing.T) {
	prev := otel.GetMeterProvider()
	if !defaultGlobal(prev, "meterProvider", prev.Meter("probe"), "meter") {
		t.Skip("a global meter provider is already set in this process")
	}
	o, err := New("db", "c", tracenoop.NewTracerProvider(), nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	hitShaped(o)
	counts := &observetest.Counters{}
	otel.SetMeterProvider(counts)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	hitShaped(o)
	hitShaped(o)
	if got := counts.Count(tracing.MetricHits); got != 2 {
		t.Errorf("the provider set after the store was made counted %d hits, want 2", got)
	}
}

// BenchmarkNoopOperation is the observer's part of a Get answered from
// memory with no-op providers.
func BenchmarkNoopOperation(b *testing.B) {
	o, err := New("db", "c", tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hitShaped(o)
	}
}
