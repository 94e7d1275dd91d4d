// Package observe records a store's spans, metrics and logs. Everything
// it needs per operation is computed in advance, and with no-op providers
// an operation starts no span, reads no clock and records no metric: it
// costs a check of each provider.
package observe

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/tracing"
)

// Kind is a traced operation: a public method or a background job.
type Kind uint8

const (
	Get Kind = iota
	Set
	Create
	Update
	Touch
	Delete
	Len
	All
	Clear
	Flush
	Close
	Load
	TouchFlush
	Reap
	Index
	// The operations of absolute lifetimes, owners and encryption.
	Deadline
	ByOwner
	DeleteByOwner
	Reencrypt
	numKinds
)

var opInfo = [numKinds]struct {
	span   string
	name   string // the operation attribute of metrics
	dbOp   string // the database command of client spans
	client bool
}{
	Get:        {span: tracing.SpanGet, name: "get"},
	Set:        {span: tracing.SpanSet, name: "set"},
	Create:     {span: tracing.SpanCreate, name: "create"},
	Update:     {span: tracing.SpanUpdate, name: "update"},
	Touch:      {span: tracing.SpanTouch, name: "touch"},
	Delete:     {span: tracing.SpanDelete, name: "delete"},
	Len:        {span: tracing.SpanLen, name: "len"},
	All:        {span: tracing.SpanAll, name: "all"},
	Clear:      {span: tracing.SpanClear, name: "clear"},
	Flush:      {span: tracing.SpanFlush, name: "flush"},
	Close:      {span: tracing.SpanClose, name: "close"},
	Load:       {span: tracing.SpanLoad, name: "load", dbOp: "find", client: true},
	TouchFlush: {span: tracing.SpanTouchFlush, name: "touch.flush", dbOp: "update", client: true},
	Reap:       {span: tracing.SpanReap, name: "reap", dbOp: "delete", client: true},
	Index:      {span: tracing.SpanIndexSetup, name: "index.setup", dbOp: "createIndexes", client: true},

	Deadline:      {span: tracing.SpanDeadline, name: "deadline"},
	ByOwner:       {span: tracing.SpanByOwner, name: "by_owner"},
	DeleteByOwner: {span: tracing.SpanDeleteByOwner, name: "delete_by_owner"},
	Reencrypt:     {span: tracing.SpanReencrypt, name: "reencrypt"},
}

// Database attributes of each operation, computed once.
var (
	attrTierMemory  = tracing.Tier.String("memory")
	attrTierMongoDB = tracing.Tier.String("mongodb")
)

// Observer records the store's spans, metrics and logs. Everything it
// needs per operation is computed in advance; with no-op providers an
// operation costs a check of each provider (see spanTracer and metering).
type Observer struct {
	tracer  trace.Tracer // nil when the provider is a no-op
	logger  *slog.Logger
	onError func(error)

	// unset is OpenTelemetry's default global provider when the store
	// uses it and no application had set one when the store was made;
	// nil otherwise. See spanTracer.
	unset trace.TracerProvider
	set   atomic.Bool // a global provider has been set since

	metrics bool // false when the meter provider is a no-op
	// unsetMeter and meterSet are unset and set for the meter provider.
	unsetMeter metric.MeterProvider
	meterSet   atomic.Bool

	dbAttrs [numKinds][]trace.SpanStartOption
	recOpts [numKinds][]metric.RecordOption // the operation attribute
	addOpts [numKinds][]metric.AddOption    // the operation attribute

	hits, misses, loads, joined    metric.Int64Counter
	queued, skipped, flushed, drop metric.Int64Counter
	reaped, errs                   metric.Int64Counter
	invalid, fallbacks, untrusted  metric.Int64Counter
	duration                       metric.Float64Histogram

	meter                       metric.Meter
	entries, pending, following metric.Int64ObservableGauge
	lag                         metric.Float64ObservableGauge
	evictions                   metric.Int64ObservableCounter
	gauges                      metric.Registration // set by observe
}

// Gauges are the values of the observable instruments.
type Gauges struct {
	Entries   int64 // sessions in memory
	Evictions int64 // sessions evicted so far
	Pending   int64 // touches waiting to be written
	Feed      bool  // a change feed is followed: the next two count
	Following bool  // the feed has caught up within the staleness bound
	// Lag is how long ago the feed last caught up; negative when it has
	// not since it was lost.
	Lag time.Duration
}

// New returns an observer of the store over database.collection. Nil
// providers mean the global ones.
func New(database, collection string, tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, onError func(error)) (*Observer, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{tracer: tp.Tracer(tracing.ScopeName), logger: logger, onError: onError, metrics: true}
	switch {
	case isNoop(tp):
		o.tracer = nil
	case defaultGlobal(tp, "tracerProvider", o.tracer, "tracer"):
		o.unset = tp
	}
	for k := range numKinds {
		info := opInfo[k]
		opt := metric.WithAttributeSet(attribute.NewSet(tracing.Operation.String(info.name)))
		o.recOpts[k] = []metric.RecordOption{opt}
		o.addOpts[k] = []metric.AddOption{opt}
		if info.client {
			o.dbAttrs[k] = []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(
					tracing.DBSystemName.String("mongodb"),
					tracing.DBNamespace.String(database),
					tracing.DBCollectionName.String(collection),
					tracing.DBOperationName.String(info.dbOp),
				),
			}
		}
	}
	m := mp.Meter(tracing.ScopeName)
	o.meter = m
	switch _, noop := mp.(metricnoop.MeterProvider); {
	case noop:
		o.metrics = false
	case defaultGlobal(mp, "meterProvider", m, "meter"):
		o.unsetMeter = mp
	}
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
	o.skipped = counter(tracing.MetricTouchSkipped, "{touch}", "Touches skipped because they would not move the expiry: already held or buffered, or by less than TouchAfter.")
	o.flushed = counter(tracing.MetricTouchFlushed, "{session}", "Sessions whose buffered touch was written.")
	o.drop = counter(tracing.MetricTouchDropped, "{touch}", "Touches dropped because too many were pending.")
	o.reaped = counter(tracing.MetricReaped, "{document}", "Expired documents deleted by the reaper.")
	o.errs = counter(tracing.MetricErrors, "{error}", "Failed operations, by operation.")
	o.invalid = counter(tracing.MetricInvalidations, "{session}", "Sessions dropped from memory because another writer changed them.")
	o.fallbacks = counter(tracing.MetricFallbacks, "{event}", "Times the change feed lost track of changes.")
	o.untrusted = counter(tracing.MetricUntrusted, "{get}", "Gets that read the server because the change feed was down or behind.")
	h, err := m.Float64Histogram(tracing.MetricDuration, metric.WithUnit("s"), metric.WithDescription("Duration of store operations."))
	errs = append(errs, err)
	o.duration = h
	o.entries, err = m.Int64ObservableGauge(tracing.MetricCacheEntries, metric.WithUnit("{session}"), metric.WithDescription("Sessions held in memory."))
	errs = append(errs, err)
	o.pending, err = m.Int64ObservableGauge(tracing.MetricTouchPending, metric.WithUnit("{session}"), metric.WithDescription("Sessions waiting for a touch write."))
	errs = append(errs, err)
	o.evictions, err = m.Int64ObservableCounter(tracing.MetricEvictions, metric.WithUnit("{session}"), metric.WithDescription("Sessions evicted from memory to make room."))
	errs = append(errs, err)
	o.following, err = m.Int64ObservableGauge(tracing.MetricFollowing, metric.WithUnit("1"), metric.WithDescription("1 while the change feed is caught up within the staleness bound."))
	errs = append(errs, err)
	o.lag, err = m.Float64ObservableGauge(tracing.MetricLag, metric.WithUnit("s"), metric.WithDescription("Time since the change feed last caught up."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// Observe registers gauges as the source of the observable instruments.
// Call it once everything gauges reads is set: a reader may call it at
// once, from another goroutine.
func (o *Observer) Observe(gauges func() Gauges) error {
	var err error
	o.gauges, err = o.meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		g := gauges()
		obs.ObserveInt64(o.entries, g.Entries)
		obs.ObserveInt64(o.evictions, g.Evictions)
		obs.ObserveInt64(o.pending, g.Pending)
		if g.Feed {
			following := int64(0)
			if g.Following {
				following = 1
			}
			obs.ObserveInt64(o.following, following)
			if g.Lag >= 0 {
				obs.ObserveFloat64(o.lag, g.Lag.Seconds())
			}
		}
		return nil
	}, o.entries, o.pending, o.evictions, o.following, o.lag)
	return err
}

// Close unregisters the gauges.
func (o *Observer) Close() {
	if o.gauges != nil {
		_ = o.gauges.Unregister()
	}
}

// Operation is one traced operation in progress. It lives on the stack
// of the method it traces.
type Operation struct {
	o       *Observer
	kind    Kind
	span    trace.Span // nil when tracing is a no-op
	metered bool       // metrics are recorded; start is set
	start   time.Time
}

// Start starts an operation of kind k; call End on the result. With a
// no-op tracer provider it returns ctx itself and starts no span.
func (o *Observer) Start(ctx context.Context, k Kind) (context.Context, Operation) {
	op := Operation{o: o, kind: k}
	if tr := o.spanTracer(); tr != nil {
		ctx, op.span = tr.Start(ctx, opInfo[k].span, o.dbAttrs[k]...)
	}
	if o.metering() {
		op.metered, op.start = true, time.Now()
	}
	return ctx, op
}

// spanTracer returns the tracer to start a span with, or nil while
// spans would do nothing. Until an application sets a global provider,
// the default one makes only non-recording spans that carry the parent's
// span context, and allocates twice for each; the caller's context
// already carries that span context, so no span is started. Once a
// provider is set, the default one delegates to it for good, so the
// store's tracer from then on. (A provider set and replaced by the
// default again before the store's next span goes unseen; only tests do
// that.)
func (o *Observer) spanTracer() trace.Tracer {
	if o.unset == nil || o.set.Load() {
		return o.tracer
	}
	if otel.GetTracerProvider() == o.unset {
		return nil
	}
	o.set.Store(true)
	return o.tracer
}

// metering reports whether metrics are recorded: the meter provider is
// not a no-op, nor the default global one while no application has set
// another (its instruments delegate to the provider set later, so the
// store's record from then on).
func (o *Observer) metering() bool {
	if o.unsetMeter == nil || o.meterSet.Load() {
		return o.metrics
	}
	if otel.GetMeterProvider() == o.unsetMeter {
		return false
	}
	o.meterSet.Store(true)
	return true
}

// isNoop reports whether tp is OpenTelemetry's no-op tracer provider.
func isNoop(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

// defaultGlobal reports whether p is OpenTelemetry's default global
// provider (of type pType) and v, of type vType, something it made
// before any provider was set. It knows them by their types' names;
// should those change, operations just pay for the global provider's
// no-op work again.
func defaultGlobal(p any, pType string, v any, vType string) bool {
	const pkg = "go.opentelemetry.io/otel/internal/global"
	is := func(v any, name string) bool {
		t := reflect.TypeOf(v)
		return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == pkg && t.Elem().Name() == name
	}
	return is(p, pType) && is(v, vType)
}

// End records the operation's duration and outcome and ends its span.
// ErrNotFound is an outcome, not a failure.
func (op *Operation) End(err error) {
	failed := err != nil && !errors.Is(err, tier.ErrNotFound)
	if op.metered {
		ctx := context.Background()
		op.o.duration.Record(ctx, time.Since(op.start).Seconds(), op.o.recOpts[op.kind]...)
		if failed {
			op.o.errs.Add(ctx, 1, op.o.addOpts[op.kind]...)
		}
	}
	if op.span == nil {
		return
	}
	if failed {
		op.span.RecordError(err)
		op.span.SetStatus(codes.Error, err.Error())
	}
	op.span.End()
}

// recording reports whether the operation's span records attributes.
func (op *Operation) recording() bool { return op.span != nil && op.span.IsRecording() }

// Hit records a Get answered from memory.
func (op *Operation) Hit() {
	if op.metered {
		op.o.hits.Add(context.Background(), 1)
	}
	if op.recording() {
		op.span.SetAttributes(attrTierMemory, tracing.CacheHit.Bool(true))
	}
}

// Miss records a Get not answered from memory.
func (op *Operation) Miss() {
	if op.metered {
		op.o.misses.Add(context.Background(), 1)
	}
	if op.recording() {
		op.span.SetAttributes(tracing.CacheHit.Bool(false))
	}
}

// Untrusted records a Get that found its session in memory but read the
// server, because the change feed was down or behind.
func (op *Operation) Untrusted() {
	if op.metered {
		op.o.untrusted.Add(context.Background(), 1)
	}
	if op.recording() {
		op.span.SetAttributes(tracing.Untrusted.Bool(true))
	}
}

// Loaded records that a Get was answered by a database read, which it
// started or joined.
func (op *Operation) Loaded(joined bool) {
	if joined && op.metered {
		op.o.joined.Add(context.Background(), 1)
	}
	if op.recording() {
		op.span.SetAttributes(attrTierMongoDB, tracing.LoadJoined.Bool(joined))
	}
}

// Attempts records how many writes an Update tried.
func (op *Operation) Attempts(n int) {
	if op.recording() {
		op.span.SetAttributes(tracing.UpdateAttempts.Int(n))
	}
}

// Flush records the size of a touch flush.
func (op *Operation) Flush(sessions, groups int) {
	if op.recording() {
		op.span.SetAttributes(tracing.FlushSessions.Int(sessions), tracing.FlushGroups.Int(groups))
	}
}

// Reaped records n documents deleted by a reaper pass.
func (op *Operation) Reaped(n int64) {
	if op.metered {
		op.o.reaped.Add(context.Background(), n)
	}
	if op.recording() {
		op.span.SetAttributes(tracing.Reaped.Int64(n))
	}
}

// Attrs sets attributes on the operation's span.
func (op *Operation) Attrs(kv ...attribute.KeyValue) {
	if op.recording() {
		op.span.SetAttributes(kv...)
	}
}

// Logger returns the store's logger.
func (o *Observer) Logger() *slog.Logger { return o.logger }

// add adds n to c, unless metrics are not recorded.
func (o *Observer) add(c metric.Int64Counter, n int64, opts ...metric.AddOption) {
	if o.metering() {
		c.Add(context.Background(), n, opts...)
	}
}

// LoadStarted counts a database read behind a cache miss.
func (o *Observer) LoadStarted() { o.add(o.loads, 1) }

// Invalidated counts a session dropped from memory because another
// writer changed it.
func (o *Observer) Invalidated() { o.add(o.invalid, 1) }

// FeedLost counts a loss of the change feed.
func (o *Observer) FeedLost() { o.add(o.fallbacks, 1) }

// TouchQueued counts a buffered touch.
func (o *Observer) TouchQueued() { o.add(o.queued, 1) }

// TouchSkipped counts a touch that changed nothing: the expiry it asks
// for is already held or buffered, or gains less than TouchAfter.
func (o *Observer) TouchSkipped() { o.add(o.skipped, 1) }

// TouchDropped counts n touches dropped for lack of room.
func (o *Observer) TouchDropped(n int) { o.add(o.drop, int64(n)) }

// TouchesFlushed counts n sessions whose touch was written.
func (o *Observer) TouchesFlushed(n int) { o.add(o.flushed, int64(n)) }

// Report passes err to OnError, if set.
func (o *Observer) Report(err error) {
	if o.onError != nil {
		o.onError(err)
	}
}

// Background reports a failure of background work to the logger and
// OnError.
func (o *Observer) Background(k Kind, err error) {
	o.add(o.errs, 1, o.addOpts[k]...)
	o.logger.Error("sessionstore: background "+opInfo[k].name+" failed", "error", err)
	if o.onError != nil {
		o.onError(err)
	}
}
