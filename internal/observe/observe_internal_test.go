package observe

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
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
	if !defaultGlobal(prev, prev.Tracer("probe")) {
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
