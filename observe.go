package sessionstore

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessionstore/sessionstore/tracing"
)

// opKind is a traced operation: a public method or a background job.
type opKind uint8

const (
	opGet opKind = iota
	opSet
	opTouch
	opDelete
	opLen
	opAll
	opClear
	opFlush
	opClose
	opLoad
	opTouchFlush
	opReap
	opIndex
	numOps
)

var opInfo = [numOps]struct {
	span   string
	name   string // the operation attribute of metrics
	dbOp   string // the database command of client spans
	client bool
}{
	opGet:        {span: tracing.SpanGet, name: "get"},
	opSet:        {span: tracing.SpanSet, name: "set"},
	opTouch:      {span: tracing.SpanTouch, name: "touch"},
	opDelete:     {span: tracing.SpanDelete, name: "delete"},
	opLen:        {span: tracing.SpanLen, name: "len"},
	opAll:        {span: tracing.SpanAll, name: "all"},
	opClear:      {span: tracing.SpanClear, name: "clear"},
	opFlush:      {span: tracing.SpanFlush, name: "flush"},
	opClose:      {span: tracing.SpanClose, name: "close"},
	opLoad:       {span: tracing.SpanLoad, name: "load", dbOp: "find", client: true},
	opTouchFlush: {span: tracing.SpanTouchFlush, name: "touch.flush", dbOp: "update", client: true},
	opReap:       {span: tracing.SpanReap, name: "reap", dbOp: "delete", client: true},
	opIndex:      {span: tracing.SpanIndexSetup, name: "index.setup", dbOp: "createIndexes", client: true},
}

// Database attributes of each operation, computed once.
var (
	attrTierMemory  = tracing.Tier.String("memory")
	attrTierMongoDB = tracing.Tier.String("mongodb")
)

// observer records the store's spans, metrics and logs. Everything it
// needs per operation is computed in advance, so that with no-op providers
// a cache hit costs no more than the span context.
type observer struct {
	tracer  trace.Tracer
	logger  *slog.Logger
	onError func(error)

	// unset is OpenTelemetry's default global provider when the store
	// uses it and no application had set one when the store was made;
	// nil otherwise. See spanTracer.
	unset trace.TracerProvider
	set   atomic.Bool // a global provider has been set since

	dbAttrs [numOps][]trace.SpanStartOption
	recOpts [numOps][]metric.RecordOption // the operation attribute
	addOpts [numOps][]metric.AddOption    // the operation attribute

	hits, misses, loads, joined    metric.Int64Counter
	queued, skipped, flushed, drop metric.Int64Counter
	reaped, errs                   metric.Int64Counter
	duration                       metric.Float64Histogram

	meter            metric.Meter
	entries, pending metric.Int64ObservableGauge
	evictions        metric.Int64ObservableCounter
	gauges           metric.Registration // set by observe
}

// gaugeFunc reports the in-memory entries, evictions so far and pending
// touches for the observable instruments.
type gaugeFunc func() (entries int64, evictions int64, pending int64)

func newObserver(coll *mongo.Collection, tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, onError func(error)) (*observer, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &observer{tracer: tp.Tracer(tracing.ScopeName), logger: logger, onError: onError}
	if defaultGlobal(tp, o.tracer) {
		o.unset = tp
	}
	for k := range numOps {
		info := opInfo[k]
		opt := metric.WithAttributeSet(attribute.NewSet(tracing.Operation.String(info.name)))
		o.recOpts[k] = []metric.RecordOption{opt}
		o.addOpts[k] = []metric.AddOption{opt}
		if info.client {
			o.dbAttrs[k] = []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(
					tracing.DBSystemName.String("mongodb"),
					tracing.DBNamespace.String(coll.Database().Name()),
					tracing.DBCollectionName.String(coll.Name()),
					tracing.DBOperationName.String(info.dbOp),
				),
			}
		}
	}
	m := mp.Meter(tracing.ScopeName)
	o.meter = m
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	o.hits = counter(tracing.MetricHits, "{get}", "Gets answered from memory.")
	o.misses = counter(tracing.MetricMisses, "{get}", "Gets not answered from memory.")
	o.loads = counter(tracing.MetricLoads, "{read}", "Database reads behind cache misses.")
	o.joined = counter(tracing.MetricLoadsJoined, "{get}", "Gets that joined a read already in flight.")
	o.queued = counter(tracing.MetricTouchQueued, "{touch}", "Touches buffered for writing.")
	o.skipped = counter(tracing.MetricTouchSkipped, "{touch}", "Touches skipped by TouchAfter.")
	o.flushed = counter(tracing.MetricTouchFlushed, "{session}", "Sessions whose buffered touch was written.")
	o.drop = counter(tracing.MetricTouchDropped, "{touch}", "Touches dropped because too many were pending.")
	o.reaped = counter(tracing.MetricReaped, "{document}", "Expired documents deleted by the reaper.")
	o.errs = counter(tracing.MetricErrors, "{error}", "Failed operations, by operation.")
	h, err := m.Float64Histogram(tracing.MetricDuration, metric.WithUnit("s"), metric.WithDescription("Duration of store operations."))
	errs = append(errs, err)
	o.duration = h
	o.entries, err = m.Int64ObservableGauge(tracing.MetricCacheEntries, metric.WithUnit("{session}"), metric.WithDescription("Sessions held in memory."))
	errs = append(errs, err)
	o.pending, err = m.Int64ObservableGauge(tracing.MetricTouchPending, metric.WithUnit("{session}"), metric.WithDescription("Sessions waiting for a touch write."))
	errs = append(errs, err)
	o.evictions, err = m.Int64ObservableCounter(tracing.MetricEvictions, metric.WithUnit("{session}"), metric.WithDescription("Sessions evicted from memory to make room."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// observe registers gauges as the source of the observable instruments.
// Call it once everything gauges reads is set: a reader may call it at
// once, from another goroutine.
func (o *observer) observe(gauges gaugeFunc) error {
	var err error
	o.gauges, err = o.meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		e, ev, p := gauges()
		obs.ObserveInt64(o.entries, e)
		obs.ObserveInt64(o.evictions, ev)
		obs.ObserveInt64(o.pending, p)
		return nil
	}, o.entries, o.pending, o.evictions)
	return err
}

func (s *Store[T]) gauges() (entries, evictions, pending int64) {
	if s.mem != nil {
		entries, evictions = int64(s.mem.Entries()), int64(s.mem.Evictions())
	}
	return entries, evictions, int64(s.touches.size())
}

func (o *observer) close() {
	if o.gauges != nil {
		_ = o.gauges.Unregister()
	}
}

// operation is one traced operation in progress. It lives on the stack
// of the method it traces.
type operation struct {
	o     *observer
	kind  opKind
	span  trace.Span
	start time.Time
}

func (o *observer) start(ctx context.Context, k opKind) (context.Context, operation) {
	ctx, span := o.spanTracer().Start(ctx, opInfo[k].span, o.dbAttrs[k]...)
	return ctx, operation{o: o, kind: k, span: span, start: time.Now()}
}

// noopTracer starts the spans of a store whose global provider is unset.
var noopTracer = tracenoop.NewTracerProvider().Tracer(tracing.ScopeName)

// spanTracer returns the tracer to start a span with. Until an
// application sets a global provider, the default one makes only
// non-recording spans that carry the parent's span context, but boxes
// each twice: two allocations a span, as many as the rest of a cache hit.
// The no-op tracer makes the same spans without them. Once a provider is
// set, the default one delegates to it for good, so the store's tracer
// from then on. (A provider set and replaced by the default again before
// the store's next span goes unseen; only tests do that.)
func (o *observer) spanTracer() trace.Tracer {
	if o.unset == nil || o.set.Load() {
		return o.tracer
	}
	if otel.GetTracerProvider() == o.unset {
		return noopTracer
	}
	o.set.Store(true)
	return o.tracer
}

// defaultGlobal reports whether tp is OpenTelemetry's default global
// provider and tr a tracer it made before any provider was set. It knows
// them by their types' names; should those change, spans just cost the
// global provider's allocations again.
func defaultGlobal(tp trace.TracerProvider, tr trace.Tracer) bool {
	const pkg = "go.opentelemetry.io/otel/internal/global"
	is := func(v any, name string) bool {
		t := reflect.TypeOf(v)
		return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == pkg && t.Elem().Name() == name
	}
	return is(tp, "tracerProvider") && is(tr, "tracer")
}

// end records the operation's duration and outcome and ends its span.
// ErrNotFound is an outcome, not a failure.
func (op *operation) end(err error) {
	ctx := context.Background()
	op.o.duration.Record(ctx, time.Since(op.start).Seconds(), op.o.recOpts[op.kind]...)
	if err != nil && !errors.Is(err, ErrNotFound) {
		op.o.errs.Add(ctx, 1, op.o.addOpts[op.kind]...)
		op.span.RecordError(err)
		op.span.SetStatus(codes.Error, err.Error())
	}
	op.span.End()
}

func (op *operation) hit() {
	op.o.hits.Add(context.Background(), 1)
	if op.span.IsRecording() {
		op.span.SetAttributes(attrTierMemory, tracing.CacheHit.Bool(true))
	}
}

func (op *operation) miss() {
	op.o.misses.Add(context.Background(), 1)
	if op.span.IsRecording() {
		op.span.SetAttributes(tracing.CacheHit.Bool(false))
	}
}

// loaded records that a Get was answered by a database read, which it
// started or joined.
func (op *operation) loaded(joined bool) {
	ctx := context.Background()
	if joined {
		op.o.joined.Add(ctx, 1)
	}
	if op.span.IsRecording() {
		op.span.SetAttributes(attrTierMongoDB, tracing.LoadJoined.Bool(joined))
	}
}

func (op *operation) flush(sessions, groups int) {
	if op.span.IsRecording() {
		op.span.SetAttributes(tracing.FlushSessions.Int(sessions), tracing.FlushGroups.Int(groups))
	}
}

func (op *operation) reaped(n int64) {
	op.o.reaped.Add(context.Background(), n)
	if op.span.IsRecording() {
		op.span.SetAttributes(tracing.Reaped.Int64(n))
	}
}

func (op *operation) attrs(kv ...attribute.KeyValue) {
	if op.span.IsRecording() {
		op.span.SetAttributes(kv...)
	}
}

func (o *observer) loadStarted()  { o.loads.Add(context.Background(), 1) }
func (o *observer) touchQueued()  { o.queued.Add(context.Background(), 1) }
func (o *observer) touchSkipped() { o.skipped.Add(context.Background(), 1) }
func (o *observer) touchDropped(n int) {
	o.drop.Add(context.Background(), int64(n))
}
func (o *observer) touchesFlushed(n int) {
	o.flushed.Add(context.Background(), int64(n))
}

// background reports a failure of background work to the logger and
// OnError.
func (o *observer) background(k opKind, err error) {
	o.errs.Add(context.Background(), 1, o.addOpts[k]...)
	o.logger.Error("sessionstore: background "+opInfo[k].name+" failed", "error", err)
	if o.onError != nil {
		o.onError(err)
	}
}
