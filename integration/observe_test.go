package integration_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// telemetry records what stores given its providers report: every ended
// span, and metrics on demand.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

// newTelemetry returns providers recording into memory, shut down when
// the test ends (after the stores created later are closed).
func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tm := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tm.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	tm.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		_ = tm.tp.Shutdown(ctx)
		_ = tm.mp.Shutdown(ctx)
	})
	return tm
}

// observed sets opts' providers to tm's and returns opts.
func observed[T any](tm *telemetry, opts *sessionstore.Options[T]) *sessionstore.Options[T] {
	opts.TracerProvider, opts.MeterProvider = tm.tp, tm.mp
	return opts
}

// ended returns the ended spans named name, in the order they ended.
func (tm *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// only returns the one ended span named name, failing the test unless
// there is exactly one.
func (tm *telemetry) only(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := tm.ended(name)
	if len(spans) != 1 {
		t.Fatalf("%d %s spans ended, want 1", len(spans), name)
	}
	return spans[0]
}

func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs fails the test unless s has every attribute of want, with
// the same value.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	for _, kv := range want {
		got, ok := spanAttr(s, kv.Key)
		if !ok {
			t.Errorf("%s span: no attribute %s (has %v)", s.Name(), kv.Key, s.Attributes())
			continue
		}
		if got != kv.Value {
			t.Errorf("%s span: %s = %s, want %s", s.Name(), kv.Key, got.String(), kv.Value.String())
		}
	}
}

// wantKind fails the test unless s is of kind k and comes from the
// store's instrumentation scope.
func wantKind(t *testing.T, s sdktrace.ReadOnlySpan, k trace.SpanKind) {
	t.Helper()
	if s.SpanKind() != k {
		t.Errorf("%s span is of kind %s, want %s", s.Name(), s.SpanKind(), k)
	}
	if s.InstrumentationScope().Name != tracing.ScopeName {
		t.Errorf("%s span has scope %q, want %q", s.Name(), s.InstrumentationScope().Name, tracing.ScopeName)
	}
}

// wantChild fails the test unless child's parent is parent.
func wantChild(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	wantParent(t, child, parent.SpanContext())
}

func wantParent(t *testing.T, child sdktrace.ReadOnlySpan, parent trace.SpanContext) {
	t.Helper()
	if got := child.Parent(); got.TraceID() != parent.TraceID() || got.SpanID() != parent.SpanID() {
		t.Errorf("%s span's parent is %s/%s, want %s/%s", child.Name(),
			got.TraceID(), got.SpanID(), parent.TraceID(), parent.SpanID())
	}
}

// wantOK fails the test unless s ended with status unset and no events:
// nothing went wrong.
func wantOK(t *testing.T, s sdktrace.ReadOnlySpan) {
	t.Helper()
	if st := s.Status(); st.Code != codes.Unset {
		t.Errorf("%s span: status %s %q, want unset", s.Name(), st.Code, st.Description)
	}
	if ev := s.Events(); len(ev) != 0 {
		t.Errorf("%s span: events %v, want none", s.Name(), ev)
	}
}

// wantError fails the test unless s ended with status Error describing
// err and recorded err as an exception event.
func wantError(t *testing.T, s sdktrace.ReadOnlySpan, err error) {
	t.Helper()
	if st := s.Status(); st.Code != codes.Error || st.Description != err.Error() {
		t.Errorf("%s span: status %s %q, want Error %q", s.Name(), st.Code, st.Description, err)
	}
	for _, ev := range s.Events() {
		if ev.Name != "exception" {
			continue
		}
		for _, kv := range ev.Attributes {
			if kv.Key == "exception.message" && kv.Value.AsString() == err.Error() {
				return
			}
		}
	}
	t.Errorf("%s span: no exception event with message %q; events %v", s.Name(), err, s.Events())
}

// metrics collects the metrics recorded so far, failing the test if any
// comes from another instrumentation scope.
func (tm *telemetry) metrics(t *testing.T) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName {
			t.Errorf("metrics from scope %q, want %q", sm.Scope.Name, tracing.ScopeName)
		}
		out = append(out, sm.Metrics...)
	}
	return out
}

func (tm *telemetry) metric(t *testing.T, name string) (metricdata.Metrics, bool) {
	t.Helper()
	for _, m := range tm.metrics(t) {
		if m.Name == name {
			return m, true
		}
	}
	return metricdata.Metrics{}, false
}

// count returns the value of the int64 counter name: the data point with
// exactly the attributes attrs, or the sum of all its data points when
// attrs is empty. A counter never added to counts zero.
func (tm *telemetry) count(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := tm.metric(t, name)
	if !ok {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %s is a %T, want an int64 sum", name, m.Data)
	}
	want := attribute.NewSet(attrs...)
	var n int64
	for _, dp := range sum.DataPoints {
		if len(attrs) == 0 || dp.Attributes.Equals(&want) {
			n += dp.Value
		}
	}
	return n
}

// gauge returns the value of the int64 gauge name, and false when it is
// not reported.
func (tm *telemetry) gauge(t *testing.T, name string) (int64, bool) {
	t.Helper()
	m, ok := tm.metric(t, name)
	if !ok {
		return 0, false
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("metric %s is a %T, want an int64 gauge", name, m.Data)
	}
	if len(g.DataPoints) != 1 {
		t.Fatalf("gauge %s has %d data points, want 1", name, len(g.DataPoints))
	}
	return g.DataPoints[0].Value, true
}

// durations returns the number of measurements of the operation duration
// histogram, by operation.
func (tm *telemetry) durations(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	m, ok := tm.metric(t, tracing.MetricDuration)
	if !ok {
		return out
	}
	if m.Unit != "s" {
		t.Errorf("%s has unit %q, want s", m.Name, m.Unit)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("metric %s is a %T, want a float64 histogram", m.Name, m.Data)
	}
	for _, dp := range h.DataPoints {
		op, ok := dp.Attributes.Value(tracing.Operation)
		if !ok || dp.Attributes.Len() != 1 {
			t.Errorf("%s data point with attributes %v, want only %s", m.Name, dp.Attributes.ToSlice(), tracing.Operation)
			continue
		}
		if dp.Sum < 0 {
			t.Errorf("%s{%s}: negative sum %v", m.Name, op.String(), dp.Sum)
		}
		out[op.AsString()] += dp.Count
	}
	return out
}

// waitObserved polls cond until it holds, failing the test after a while.
func waitObserved(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(mongotest.CallTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// insertRaw writes a session document by hand, bypassing the store.
func insertRaw(t *testing.T, coll *mongo.Collection, id string, expires time.Time, session any) {
	t.Helper()
	_, err := coll.InsertOne(bg(t), bson.D{{Key: "_id", Value: id}, {Key: "expires", Value: expires}, {Key: "session", Value: session}})
	if err != nil {
		t.Fatal(err)
	}
}

// emptyProfile is a msgpack empty map: a valid, empty profile.
var emptyProfile = bson.Binary{Data: []byte{0x80}}

// seed inserts n sessions named prefix0..prefix(n-1) expiring at exp, in
// one command, with payloads the msgpack codec reads as profile{}.
func seed(t *testing.T, coll *mongo.Collection, prefix string, n int, exp time.Time) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{
			{Key: "_id", Value: fmt.Sprint(prefix, i)},
			{Key: "expires", Value: exp},
			{Key: "session", Value: emptyProfile},
		}
	}
	if _, err := coll.InsertMany(bg(t), docs); err != nil {
		t.Fatal(err)
	}
}

// corruptPayload is not msgpack: 0xc1 is a code msgpack never uses.
var corruptPayload = bson.Binary{Data: []byte{0xc1, 0xff, 0x00}}

// A hit is one internal Get span saying memory answered, and a hit count.
func TestObserveGetHit(t *testing.T) {
	tm := newTelemetry(t)
	s := newStore(t, mongotest.Collection(t), observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))
	ctx := bg(t)
	if err := s.Set(ctx, "h", profile{User: "hit"}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "h"); err != nil || v.User != "hit" {
		t.Fatalf("Get = %+v, %v", v, err)
	}

	set := tm.only(t, tracing.SpanSet)
	wantKind(t, set, trace.SpanKindInternal)
	wantOK(t, set)
	get := tm.only(t, tracing.SpanGet)
	wantKind(t, get, trace.SpanKindInternal)
	wantOK(t, get)
	wantAttrs(t, get, tracing.Tier.String("memory"), tracing.CacheHit.Bool(true))
	if v, ok := spanAttr(get, tracing.LoadJoined); ok {
		t.Errorf("a hit says %s=%s; it read nothing", tracing.LoadJoined, v.String())
	}
	if n := len(tm.ended(tracing.SpanLoad)); n != 0 {
		t.Errorf("a hit ended %d load spans", n)
	}
	for name, want := range map[string]int64{tracing.MetricHits: 1, tracing.MetricMisses: 0, tracing.MetricLoads: 0} {
		if got := tm.count(t, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

// A miss is a Get span saying the database answered, under the caller's
// span, with a client span for the read under it.
func TestObserveGetMissLoadsUnderTheCaller(t *testing.T) {
	coll := mongotest.Collection(t)
	ctx := bg(t)
	if err := newStore[profile](t, coll, nil).Set(ctx, "m", profile{User: "miss"}); err != nil {
		t.Fatal(err)
	}
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))

	reqCtx, request := tm.tp.Tracer("test").Start(ctx, "request")
	v, err := s.Get(reqCtx, "m")
	request.End()
	if err != nil || v.User != "miss" {
		t.Fatalf("Get = %+v, %v", v, err)
	}

	get := tm.only(t, tracing.SpanGet)
	wantKind(t, get, trace.SpanKindInternal)
	wantOK(t, get)
	wantParent(t, get, request.SpanContext())
	wantAttrs(t, get, tracing.Tier.String("mongodb"), tracing.CacheHit.Bool(false), tracing.LoadJoined.Bool(false))

	load := tm.only(t, tracing.SpanLoad)
	wantKind(t, load, trace.SpanKindClient)
	wantOK(t, load)
	wantChild(t, load, get)
	wantAttrs(t, load,
		tracing.DBSystemName.String("mongodb"),
		tracing.DBNamespace.String(coll.Database().Name()),
		tracing.DBCollectionName.String(coll.Name()),
		tracing.DBOperationName.String("find"),
	)
	for name, want := range map[string]int64{tracing.MetricHits: 0, tracing.MetricMisses: 1, tracing.MetricLoads: 1, tracing.MetricLoadsJoined: 0} {
		if got := tm.count(t, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

// Concurrent Gets of one cold id make one load span, under the Get that
// started it; every other Get says it joined, and the joined counter
// agrees.
func TestObserveCollapsedMissHasOneLoad(t *testing.T) {
	const callers = 50
	coll := mongotest.Collection(t)
	ctx := bg(t)
	if err := newStore[profile](t, coll, nil).Set(ctx, "cold", profile{User: "ada"}); err != nil {
		t.Fatal(err)
	}
	mcoll, cmds := mongotest.Monitored(t, coll)
	tm := newTelemetry(t)
	s := newStore(t, mcoll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))

	// Hold the read's answer until every caller has missed, so that all
	// of them find it in flight.
	found, release := cmds.HoldFirst("find")

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			v, err := s.Get(ctx, "cold")
			if err == nil && v.User != "ada" {
				err = fmt.Errorf("got %+v", v)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	select {
	case <-found:
	case <-ctx.Done():
		t.Fatal("no find reached the server")
	}
	waitObserved(t, "every caller to miss", func() bool { return tm.count(t, tracing.MetricMisses) == callers })
	// A caller counts its miss one context check before it joins the
	// read; give the last ones time to take that step.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := cmds.Count("find"); n != 1 {
		t.Fatalf("%d find commands, want 1: the test proves nothing", n)
	}

	load := tm.only(t, tracing.SpanLoad)
	wantKind(t, load, trace.SpanKindClient)
	gets := tm.ended(tracing.SpanGet)
	if len(gets) != callers {
		t.Fatalf("%d Get spans, want %d", len(gets), callers)
	}
	var starters []sdktrace.ReadOnlySpan
	joined := 0
	for _, g := range gets {
		wantAttrs(t, g, tracing.Tier.String("mongodb"), tracing.CacheHit.Bool(false))
		v, ok := spanAttr(g, tracing.LoadJoined)
		switch {
		case !ok:
			t.Errorf("Get span without %s", tracing.LoadJoined)
		case v.AsBool():
			joined++
		default:
			starters = append(starters, g)
		}
	}
	if len(starters) != 1 || joined != callers-1 {
		t.Fatalf("%d Get spans started the load and %d joined it, want 1 and %d", len(starters), joined, callers-1)
	}
	wantChild(t, load, starters[0])
	if n := tm.count(t, tracing.MetricLoadsJoined); n != int64(joined) {
		t.Errorf("%s = %d, want %d, the Get spans that joined", tracing.MetricLoadsJoined, n, joined)
	}
	if n := tm.count(t, tracing.MetricLoads); n != 1 {
		t.Errorf("%s = %d, want 1", tracing.MetricLoads, n)
	}
}

// A flush is one client span under Flush, with the sessions and expiry
// groups it wrote; the touch counters and the pending gauge follow.
func TestObserveTouchFlush(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, TTL: time.Hour, Clock: clk, TouchInterval: time.Hour,
	}))
	ctx := bg(t)
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, id, profile{User: id}); err != nil {
			t.Fatal(err)
		}
	}
	// a and b share an expiry; c, touched later, has its own.
	clk.Add(time.Minute)
	touchedAB := clk.Now()
	for _, id := range []string{"a", "b"} {
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(5 * time.Second)
	touchedC := clk.Now()
	if err := s.Touch(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if n, ok := tm.gauge(t, tracing.MetricTouchPending); !ok || n != 3 {
		t.Errorf("%s = %d (reported %t) before the flush, want 3", tracing.MetricTouchPending, n, ok)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The expiry a touch at at asks for: an hour later, rounded up to
	// TouchGranularity (1s).
	ceil := func(at time.Time) time.Time {
		e := at.Add(time.Hour)
		if r := e.Truncate(time.Second); r.Before(e) {
			e = r.Add(time.Second)
		}
		return e
	}
	for id, at := range map[string]time.Time{"a": touchedAB, "b": touchedAB, "c": touchedC} {
		if got, want := rawExpires(t, coll, id), ceil(at); !got.Equal(want) {
			t.Errorf("%s expires at %v on the server, want %v: the flush did not write it", id, got, want)
		}
	}
	flush := tm.only(t, tracing.SpanFlush)
	wantKind(t, flush, trace.SpanKindInternal)
	wantOK(t, flush)
	touchFlush := tm.only(t, tracing.SpanTouchFlush)
	wantKind(t, touchFlush, trace.SpanKindClient)
	wantOK(t, touchFlush)
	wantChild(t, touchFlush, flush)
	wantAttrs(t, touchFlush,
		tracing.FlushSessions.Int(3),
		tracing.FlushGroups.Int(2),
		tracing.DBSystemName.String("mongodb"),
		tracing.DBCollectionName.String(coll.Name()),
		tracing.DBOperationName.String("update"),
	)
	if n := len(tm.ended(tracing.SpanTouch)); n != 3 {
		t.Errorf("%d Touch spans, want 3", n)
	}
	for name, want := range map[string]int64{
		tracing.MetricTouchQueued: 3, tracing.MetricTouchFlushed: 3,
		tracing.MetricTouchSkipped: 0, tracing.MetricTouchDropped: 0,
	} {
		if got := tm.count(t, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if n, ok := tm.gauge(t, tracing.MetricTouchPending); !ok || n != 0 {
		t.Errorf("%s = %d (reported %t) after the flush, want 0", tracing.MetricTouchPending, n, ok)
	}
}

// Store.Reap is a client span under the caller's, counting the expired
// documents it deleted.
func TestObserveReap(t *testing.T) {
	coll := mongotest.Collection(t)
	seed(t, coll, "expired-", 3, time.Now().Add(-time.Hour))
	seed(t, coll, "live", 1, time.Now().Add(time.Hour))
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))

	ctx, parent := tm.tp.Tracer("test").Start(bg(t), "maintenance")
	n, err := s.Reap(ctx)
	parent.End()
	if err != nil || n != 3 {
		t.Fatalf("Reap = %d, %v; want 3", n, err)
	}
	if _, ok := mongotest.RawDoc(t, coll, "live0"); !ok {
		t.Fatal("Reap deleted a live session")
	}
	reap := tm.only(t, tracing.SpanReap)
	wantKind(t, reap, trace.SpanKindClient)
	wantOK(t, reap)
	wantParent(t, reap, parent.SpanContext())
	wantAttrs(t, reap,
		tracing.Reaped.Int64(3),
		tracing.DBSystemName.String("mongodb"),
		tracing.DBCollectionName.String(coll.Name()),
		tracing.DBOperationName.String("delete"),
	)
	if got := tm.count(t, tracing.MetricReaped); got != 3 {
		t.Errorf("%s = %d, want 3", tracing.MetricReaped, got)
	}
}

// TTL setup is one client span saying what it decided; on a server
// without TTL indexes the reaper's passes are root client spans counting
// what they deleted.
func TestObserveIndexSetupAndReaper(t *testing.T) {
	coll := mongotest.Collection(t)
	seed(t, coll, "expired-", 3, time.Now().Add(-time.Hour))
	seed(t, coll, "live", 1, time.Now().Add(time.Hour))
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{
		TTLIndex: ttl.Auto, ReapInterval: 50 * time.Millisecond,
	}))
	d, err := s.TTLIndex(bg(t))
	if err != nil {
		t.Fatal(err)
	}

	setup := tm.only(t, tracing.SpanIndexSetup)
	wantKind(t, setup, trace.SpanKindClient)
	wantOK(t, setup)
	if setup.Parent().IsValid() {
		t.Errorf("index setup span has a parent %s; it runs in the background", setup.Parent().SpanID())
	}
	wantAttrs(t, setup,
		tracing.TTLMode.String("auto"),
		tracing.TTLAction.String(d.Action.String()),
		tracing.DBSystemName.String("mongodb"),
		tracing.DBCollectionName.String(coll.Name()),
		tracing.DBOperationName.String("createIndexes"),
	)
	if !d.Reaper {
		t.Skipf("the server keeps TTL indexes (%v): no reaper to observe", d)
	}
	if d.Action != ttl.UseReaper {
		t.Errorf("decision %v runs the reaper with action %s, want %s", d, d.Action, ttl.UseReaper)
	}

	var first sdktrace.ReadOnlySpan
	waitObserved(t, "a reaper pass that deleted something", func() bool {
		for _, r := range tm.ended(tracing.SpanReap) {
			if v, _ := spanAttr(r, tracing.Reaped); v.AsInt64() > 0 {
				first = r
				return true
			}
		}
		return false
	})
	wantKind(t, first, trace.SpanKindClient)
	wantOK(t, first)
	wantAttrs(t, first, tracing.Reaped.Int64(3), tracing.DBOperationName.String("delete"))
	if first.Parent().IsValid() {
		t.Errorf("reaper span has a parent %s; it runs in the background", first.Parent().SpanID())
	}
	if _, ok := mongotest.RawDoc(t, coll, "live0"); !ok {
		t.Fatal("the reaper deleted a live session")
	}
	if got := tm.count(t, tracing.MetricReaped); got != 3 {
		t.Errorf("%s = %d, want 3", tracing.MetricReaped, got)
	}
}

// A failure ends its spans with status Error and the error recorded, and
// counts under its operation; ErrNotFound is an outcome, not a failure.
func TestObserveErrors(t *testing.T) {
	coll := mongotest.Collection(t)
	insertRaw(t, coll, "corrupt", time.Now().Add(time.Hour), corruptPayload)
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))
	ctx := bg(t)

	_, corrupt := s.Get(ctx, "corrupt")
	if !errors.Is(corrupt, sessionstore.ErrCorrupt) {
		t.Fatalf("Get of a corrupt document = %v, want ErrCorrupt", corrupt)
	}
	cancelled, cancel := contextCancelled()
	defer cancel()
	cancelledSet := s.Set(cancelled, "x", profile{})
	if !errors.Is(cancelledSet, context.Canceled) {
		t.Fatalf("Set with a cancelled context = %v", cancelledSet)
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get of a missing session = %v, want ErrNotFound", err)
	}

	gets, loads := tm.ended(tracing.SpanGet), tm.ended(tracing.SpanLoad)
	if len(gets) != 2 || len(loads) != 2 {
		t.Fatalf("%d Get and %d load spans, want 2 of each", len(gets), len(loads))
	}
	wantError(t, gets[0], corrupt)
	wantError(t, loads[0], corrupt)
	wantChild(t, loads[0], gets[0])
	wantError(t, tm.only(t, tracing.SpanSet), cancelledSet)
	wantOK(t, gets[1])
	wantOK(t, loads[1])
	wantChild(t, loads[1], gets[1])

	for op, want := range map[string]int64{"get": 1, "load": 1, "set": 1} {
		if got := tm.count(t, tracing.MetricErrors, tracing.Operation.String(op)); got != want {
			t.Errorf("%s{%s=%s} = %d, want %d", tracing.MetricErrors, tracing.Operation, op, got, want)
		}
	}
	if got := tm.count(t, tracing.MetricErrors); got != 3 {
		t.Errorf("%s = %d in all, want 3", tracing.MetricErrors, got)
	}
}

// The gauges report what memory and the touch buffer hold when metrics
// are collected, until Close; the duration histogram has a data point
// per operation, measured once per call.
func TestObserveGaugesAndDurations(t *testing.T) {
	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	s := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off, TouchInterval: time.Hour}))
	ctx := bg(t)
	gauges := func(entries, pending int64) {
		t.Helper()
		for name, want := range map[string]int64{tracing.MetricCacheEntries: entries, tracing.MetricTouchPending: pending} {
			if got, ok := tm.gauge(t, name); !ok || got != want {
				t.Errorf("%s = %d (reported %t), want %d", name, got, ok, want)
			}
		}
	}
	gauges(0, 0)
	for _, id := range []string{"a", "b"} {
		if err := s.Set(ctx, id, profile{User: id}); err != nil {
			t.Fatal(err)
		}
	}
	gauges(2, 0)
	for _, id := range []string{"a", "b"} {
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	gauges(2, 2)
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	gauges(2, 0)
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	gauges(1, 0)
	if _, err := s.Get(ctx, "a"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if n, err := s.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	for _, err := range s.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	gauges(0, 0)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tracing.MetricCacheEntries, tracing.MetricTouchPending, tracing.MetricEvictions} {
		if _, ok := tm.metric(t, name); ok {
			t.Errorf("%s is still reported after Close", name)
		}
	}

	want := map[string]uint64{
		"set": 2, "touch": 2, "get": 2, "flush": 1, "delete": 1, "len": 1, "all": 1,
		"reap": 1, "clear": 1, "close": 1, "load": 1, "touch.flush": 1, "index.setup": 1,
	}
	got := tm.durations(t)
	for _, op := range slices.Sorted(maps.Keys(want)) {
		if got[op] != want[op] {
			t.Errorf("%s{%s=%s} has %d measurements, want %d", tracing.MetricDuration, tracing.Operation, op, got[op], want[op])
		}
	}
	for op, n := range got {
		if _, ok := want[op]; !ok {
			t.Errorf("%s{%s=%s} has %d measurements, want none", tracing.MetricDuration, tracing.Operation, op, n)
		}
	}
}

// Evictions are an observable counter of what memory dropped for room.
func TestObserveEvictions(t *testing.T) {
	tm := newTelemetry(t)
	s := newStore(t, mongotest.Collection(t), observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off, CacheSize: 1}))
	ctx := bg(t)
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, id, profile{User: id}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.count(t, tracing.MetricEvictions); got != 2 {
		t.Errorf("%s = %d, want 2", tracing.MetricEvictions, got)
	}
	if got, ok := tm.gauge(t, tracing.MetricCacheEntries); !ok || got != 1 {
		t.Errorf("%s = %d (reported %t), want 1", tracing.MetricCacheEntries, got, ok)
	}
}

// With no providers in Options, the store reports to the global ones.
// Not parallel: it changes process-wide state.
func TestObserveDefaultsToGlobalProviders(t *testing.T) {
	tm := newTelemetry(t)
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	otel.SetTracerProvider(tm.tp)
	otel.SetMeterProvider(tm.mp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	})
	s := newStore[profile](t, mongotest.Collection(t), nil)
	ctx := bg(t)
	if err := s.Set(ctx, "g", profile{User: "global"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, tm.only(t, tracing.SpanSet), trace.SpanKindInternal)
	wantAttrs(t, tm.only(t, tracing.SpanGet), tracing.CacheHit.Bool(true))
	if got := tm.count(t, tracing.MetricHits); got != 1 {
		t.Errorf("%s = %d through the global meter provider, want 1", tracing.MetricHits, got)
	}
}

// A reader may collect while New runs, as a periodic reader does on its
// own goroutine: the gauges must not read the store half built. The race
// detector is what fails this test.
func TestObserveCollectDuringNew(t *testing.T) {
	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var rm metricdata.ResourceMetrics
			_ = tm.reader.Collect(context.Background(), &rm)
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()
	ctx := bg(t)
	for range 100 {
		s, err := sessionstore.New(coll, observed(tm, &sessionstore.Options[profile]{TTLIndex: ttl.Off}))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
