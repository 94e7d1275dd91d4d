package integration_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// logEntry is one captured log record.
type logEntry struct {
	level slog.Level
	msg   string
	attrs []slog.Attr // resolved, with group names joined to keys by dots
}

func (e logEntry) attr(key string) (slog.Value, bool) {
	for _, a := range e.attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return slog.Value{}, false
}

// logSink captures every record of the loggers it makes, at every level.
type logSink struct {
	mu      sync.Mutex // protects entries
	entries []logEntry
}

func (l *logSink) logger() *slog.Logger { return slog.New(&sinkHandler{sink: l}) }

func (l *logSink) all() []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEntry(nil), l.entries...)
}

// find returns the records at level with message msg.
func (l *logSink) find(level slog.Level, msg string) []logEntry {
	var out []logEntry
	for _, e := range l.all() {
		if e.level == level && e.msg == msg {
			out = append(out, e)
		}
	}
	return out
}

type sinkHandler struct {
	sink   *logSink
	attrs  []slog.Attr // from WithAttrs, flattened
	prefix string      // from WithGroup: group names, each followed by a dot
}

func (h *sinkHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	e := logEntry{level: r.Level, msg: r.Message, attrs: append([]slog.Attr(nil), h.attrs...)}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs = flattenAttr(e.attrs, h.prefix, a)
		return true
	})
	h.sink.mu.Lock()
	h.sink.entries = append(h.sink.entries, e)
	h.sink.mu.Unlock()
	return nil
}

func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		c.attrs = flattenAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *sinkHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix += name + "."
	return &c
}

func flattenAttr(out []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() != slog.KindGroup {
		return append(out, slog.Attr{Key: prefix + a.Key, Value: v})
	}
	if a.Key != "" {
		prefix += a.Key + "."
	}
	for _, g := range v.Group() {
		out = flattenAttr(out, prefix, g)
	}
	return out
}

// errorSink collects what OnError is called with. Its func never blocks.
type errorSink struct {
	mu   sync.Mutex // protects errs
	errs []error
}

func (s *errorSink) onError(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *errorSink) all() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// The TTL decision and Close are logged at info level, with what was
// decided.
func TestObserveLogsTTLDecisionAndClose(t *testing.T) {
	coll := mongotest.Collection(t)
	var logs logSink
	s := newStore(t, coll, &sessionstore.Options[profile]{TTLIndex: ttl.Auto, Logger: logs.logger()})
	ctx := bg(t)
	d, err := s.TTLIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	decided := logs.find(slog.LevelInfo, "sessionstore: TTL index")
	if len(decided) != 1 {
		t.Fatalf("%d info records of the TTL decision, want 1; all records: %v", len(decided), logs.all())
	}
	for key, want := range map[string]string{
		"collection": coll.Name(),
		"mode":       "auto",
		"action":     d.Action.String(),
		"reaper":     slog.BoolValue(d.Reaper).String(),
	} {
		if v, ok := decided[0].attr(key); !ok || v.String() != want {
			t.Errorf("TTL decision record: %s = %q (present %t), want %q", key, v, ok, want)
		}
	}
	if len(logs.find(slog.LevelInfo, "sessionstore: closed")) != 0 {
		t.Fatal("a close was logged before Close")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed := logs.find(slog.LevelInfo, "sessionstore: closed")
	if len(closed) != 1 {
		t.Fatalf("%d info records of the close, want 1; all records: %v", len(closed), logs.all())
	}
	if v, ok := closed[0].attr("collection"); !ok || v.String() != coll.Name() {
		t.Errorf("close record: collection = %q (present %t), want %q", v, ok, coll.Name())
	}
	for _, e := range logs.all() {
		if e.level >= slog.LevelWarn {
			t.Errorf("unexpected %s record %q %v", e.level, e.msg, e.attrs)
		}
	}
}

// A touch dropped for lack of room is a background failure: logged at
// error level, passed to OnError, and counted.
func TestObserveLogsDroppedTouch(t *testing.T) {
	var (
		logs logSink
		errs errorSink
	)
	tm := newTelemetry(t)
	s := newStore(t, mongotest.Collection(t), observed(tm, &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, TouchInterval: time.Hour, MaxPendingTouches: 1,
		Logger: logs.logger(), OnError: errs.onError,
	}))
	ctx := bg(t)
	for _, id := range []string{"a", "b"} {
		if err := s.Set(ctx, id, profile{User: id}); err != nil {
			t.Fatal(err)
		}
		if err := s.Touch(ctx, id); err != nil {
			t.Fatalf("Touch(%s) = %v; a dropped touch is not the caller's failure", id, err)
		}
	}

	reported := errs.all()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "touch dropped") {
		t.Fatalf("OnError got %v, want one dropped touch", reported)
	}
	logged := logs.find(slog.LevelError, "sessionstore: background touch failed")
	if len(logged) != 1 {
		t.Fatalf("%d error records of the dropped touch, want 1; all records: %v", len(logged), logs.all())
	}
	if v, ok := logged[0].attr("error"); !ok || v.String() != reported[0].Error() {
		t.Errorf("error record: error = %q (present %t), want %q", v, ok, reported[0])
	}
	for name, want := range map[string]int64{tracing.MetricTouchQueued: 1, tracing.MetricTouchDropped: 1} {
		if got := tm.count(t, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := tm.count(t, tracing.MetricErrors, tracing.Operation.String("touch")); got != 1 {
		t.Errorf("%s{%s=touch} = %d, want 1", tracing.MetricErrors, tracing.Operation, got)
	}
}

// deadCollection returns a collection on a server that is not there,
// whose commands fail after a short server selection.
func deadCollection(t *testing.T) *mongo.Collection {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client.Database(mongotest.Database).Collection("dead")
}

// A background flush against a server that is down is logged at error
// level, passed to OnError and counted; its span is a root span with
// status Error; Close reports the touches it could not write.
func TestObserveLogsFailedBackgroundFlush(t *testing.T) {
	var (
		logs logSink
		errs errorSink
	)
	tm := newTelemetry(t)
	s, err := sessionstore.New(deadCollection(t), observed(tm, &sessionstore.Options[profile]{
		TTLIndex: ttl.Off, TouchInterval: 20 * time.Millisecond,
		Logger: logs.logger(), OnError: errs.onError,
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := bg(t)
	if err := s.Touch(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	waitObserved(t, "OnError", func() bool { return len(errs.all()) > 0 })
	closeErr := s.Close(ctx)
	if closeErr == nil || !strings.Contains(closeErr.Error(), "1 touches not written") {
		t.Fatalf("Close = %v, want the unwritten touch reported", closeErr)
	}

	reported := errs.all()[0]
	logged := logs.find(slog.LevelError, "sessionstore: background flush failed")
	if len(logged) == 0 {
		t.Fatalf("no error record of the failed flush; all records: %v", logs.all())
	}
	if v, ok := logged[0].attr("error"); !ok || v.String() != reported.Error() {
		t.Errorf("error record: error = %q (present %t), want %q, as passed to OnError", v, ok, reported)
	}
	if got := tm.count(t, tracing.MetricErrors, tracing.Operation.String("flush")); got != int64(len(logged)) {
		t.Errorf("%s{%s=flush} = %d, want %d, one per failed flush logged", tracing.MetricErrors, tracing.Operation, got, len(logged))
	}
	flushes := tm.ended(tracing.SpanTouchFlush)
	if len(flushes) < 2 { // one in the background, the last by Close
		t.Fatalf("%d touch flush spans, want 2 or more", len(flushes))
	}
	first := flushes[0]
	wantKind(t, first, trace.SpanKindClient)
	wantAttrs(t, first, tracing.FlushSessions.Int(1), tracing.FlushGroups.Int(1))
	if first.Parent().IsValid() {
		t.Errorf("background flush span has a parent %s", first.Parent().SpanID())
	}
	// The first failure reported is the first flush's.
	wantError(t, first, reported)
	wantError(t, tm.only(t, tracing.SpanClose), closeErr)
	if len(logs.find(slog.LevelInfo, "sessionstore: closed")) != 1 {
		t.Errorf("Close was not logged; all records: %v", logs.all())
	}
}

// Open logs the connection at info level, naming the hosts, database and
// collection but never the URI, which may hold credentials.
func TestObserveLogsConnected(t *testing.T) {
	var logs logSink
	ctx := bg(t)
	name := mongotest.Collection(t).Name()
	s, err := sessionstore.Open(ctx, withDatabase(mongotest.URI(), mongotest.Database), &sessionstore.Options[profile]{
		Collection: name, TTLIndex: ttl.Off, Logger: logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	connected := logs.find(slog.LevelInfo, "sessionstore: connected")
	if len(connected) != 1 {
		t.Fatalf("%d info records of the connection, want 1; all records: %v", len(connected), logs.all())
	}
	for key, want := range map[string]string{"database": mongotest.Database, "collection": name} {
		if v, ok := connected[0].attr(key); !ok || v.String() != want {
			t.Errorf("connected record: %s = %q (present %t), want %q", key, v, ok, want)
		}
	}
	if _, ok := connected[0].attr("hosts"); !ok {
		t.Error("connected record names no hosts")
	}
}
