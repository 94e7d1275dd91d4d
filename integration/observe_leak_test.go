package integration_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/tracing"
	"github.com/sessionstore/sessionstore/ttl"
)

// No session id, with or without the store's prefix, appears in any span,
// metric, log record or background error, whatever the operation and
// whether it succeeds or fails.
func TestObserveLeaksNoSessionIDs(t *testing.T) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	id := func(name string) string { return "LEAKCHECK-" + token + "-" + name }
	const prefix = "app:"

	coll := mongotest.Collection(t)
	tm := newTelemetry(t)
	var (
		logs logSink
		errs errorSink
	)
	opts := func() *sessionstore.Options[profile] {
		return observed(tm, &sessionstore.Options[profile]{
			Prefix: prefix, TTLIndex: ttl.Auto, ReapInterval: 20 * time.Millisecond,
			TouchInterval: time.Hour, MaxPendingTouches: 2, MaxPayload: 1 << 10,
			Logger: logs.logger(), OnError: errs.onError,
		})
	}
	s := newStore(t, coll, opts())
	cold := newStore(t, coll, opts())
	ctx := bg(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	fails := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded; the error path is not covered", what)
		}
	}

	if _, err := s.TTLIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		must("Set", s.Set(ctx, id(name), profile{User: name}))
	}
	_, err := s.Get(ctx, id("a")) // hit
	must("Get hit", err)
	_, err = cold.Get(ctx, id("b")) // miss
	must("Get miss", err)
	_, err = cold.Get(ctx, id("absent"))
	if !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get of a missing session = %v", err)
	}
	for _, name := range []string{"a", "b", "c"} { // the third is dropped
		must("Touch", s.Touch(ctx, id(name)))
	}
	must("Flush", s.Flush(ctx))
	must("Delete", s.Delete(ctx, id("d")))
	_, err = s.Len(ctx)
	must("Len", err)

	// The operations of session security (security_test.go), all options on.
	secured := newStore(t, coll, observed(tm, &sessionstore.Options[profile]{
		Prefix: "sec:", TTLIndex: ttl.Off, Logger: logs.logger(), OnError: errs.onError,
		MaxLifetime: time.Hour, Owner: func(p profile) string { return p.User },
		EncryptionKeys: []sessionstore.EncryptionKey{{ID: "k", Secret: make([]byte, 32)}},
	}))
	must("Create", secured.Create(ctx, id("s1"), profile{User: "owner"}))
	must("CreateWithin", secured.CreateWithin(ctx, id("s2"), profile{User: "owner"}, time.Now().Add(time.Minute)))
	_, err = secured.Deadline(ctx, id("s1"))
	must("Deadline", err)
	for _, err := range secured.ByOwner(ctx, "owner") {
		must("ByOwner", err)
	}
	_, err = secured.DeleteByOwner(ctx, "owner", id("s1"))
	must("DeleteByOwner", err)
	_, err = secured.DeleteByOwner(ctx, "owner", id(strings.Repeat("z", sessionstore.MaxIDLength)))
	fails("DeleteByOwner keeping an over-long id", err)
	_, err = secured.Reencrypt(ctx, 100)
	must("Reencrypt", err)

	insertRaw(t, coll, prefix+id("corrupt"), time.Now().Add(time.Hour), corruptPayload)
	_, err = cold.Get(ctx, id("corrupt"))
	fails("Get of a corrupt session", err)
	corrupt := 0
	for _, err := range s.All(ctx) {
		if errors.Is(err, sessionstore.ErrCorrupt) {
			corrupt++
		} else {
			must("All", err)
		}
	}
	if corrupt != 1 {
		t.Fatalf("All yielded %d corrupt sessions, want 1", corrupt)
	}
	cancelled, cancel := contextCancelled()
	defer cancel()
	fails("Set with a cancelled context", s.Set(cancelled, id("cancelled"), profile{}))
	fails("Delete with a cancelled context", s.Delete(cancelled, id("a")))
	fails("Set of an oversized session", s.Set(ctx, id("big"), profile{User: strings.Repeat("x", 2<<10)}))
	fails("Set of an over-long id", s.Set(ctx, id(strings.Repeat("x", sessionstore.MaxIDLength)), profile{}))
	_, err = s.Get(ctx, id(strings.Repeat("y", sessionstore.MaxIDLength)))
	fails("Get of an over-long id", err)

	insertRaw(t, coll, prefix+id("expired"), time.Now().Add(-time.Hour), emptyProfile)
	_, err = s.Reap(ctx)
	must("Reap", err)
	insertRaw(t, coll, prefix+id("expired2"), time.Now().Add(-time.Hour), emptyProfile)
	waitObserved(t, "the background reaper", func() bool {
		_, there := mongotest.RawDoc(t, coll, prefix+id("expired2"))
		return !there
	})
	must("Clear", s.Clear(ctx))
	must("Touch", s.Touch(ctx, id("after-clear")))
	must("Close", s.Close(ctx))
	must("Close", cold.Close(ctx))
	_, err = s.Get(ctx, id("a"))
	fails("Get after Close", err)

	// Background failures with ids in flight: flushes against a server
	// that is down, and a Close that cannot write.
	dead, err := sessionstore.New(deadCollection(t), observed(tm, &sessionstore.Options[profile]{
		Prefix: prefix, TTLIndex: ttl.Off, TouchInterval: 20 * time.Millisecond,
		Logger: logs.logger(), OnError: errs.onError,
	}))
	must("New", err)
	must("Touch", dead.Touch(ctx, id("dead")))
	waitObserved(t, "a failed background flush", func() bool {
		return len(logs.find(slog.LevelError, "sessionstore: background flush failed")) > 0
	})
	closeCtx, cancelClose := context.WithTimeout(ctx, 5*time.Second)
	defer cancelClose()
	fails("Close against a dead server", dead.Close(closeCtx))

	// What was recorded must cover every operation and its failures, or
	// the search below proves little.
	spans := tm.spans.Ended()
	seen := map[string]bool{}
	failed := 0
	for _, sp := range spans {
		seen[sp.Name()] = true
		if sp.Status().Code == codes.Error {
			failed++
		}
	}
	for _, name := range []string{
		tracing.SpanGet, tracing.SpanSet, tracing.SpanTouch, tracing.SpanDelete, tracing.SpanLen,
		tracing.SpanAll, tracing.SpanClear, tracing.SpanFlush, tracing.SpanClose, tracing.SpanLoad,
		tracing.SpanTouchFlush, tracing.SpanReap, tracing.SpanIndexSetup,
		tracing.SpanDeadline, tracing.SpanByOwner, tracing.SpanDeleteByOwner, tracing.SpanReencrypt,
	} {
		if !seen[name] {
			t.Errorf("no %s span was recorded", name)
		}
	}
	if failed < 5 {
		t.Errorf("%d spans with status Error, want several", failed)
	}
	if len(errs.all()) < 2 { // a dropped touch, a failed flush
		t.Errorf("OnError was called %d times, want 2 or more", len(errs.all()))
	}

	// Everything recorded, as text.
	var texts []string
	add := func(where, text string) { texts = append(texts, where+": "+text) }
	addAttrs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			add(where, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, sp := range spans {
		where := "span " + sp.Name()
		add(where, sp.Name())
		addAttrs(where, sp.Attributes())
		add(where+" status", sp.Status().Description)
		for _, ev := range sp.Events() {
			add(where+" event", ev.Name)
			addAttrs(where+" event "+ev.Name, ev.Attributes)
		}
		for _, l := range sp.Links() {
			addAttrs(where+" link", l.Attributes)
		}
		addAttrs(where+" resource", sp.Resource().Attributes())
	}
	metrics := tm.metrics(t)
	if len(metrics) == 0 {
		t.Fatal("no metrics were recorded")
	}
	for _, m := range metrics {
		where := "metric " + m.Name
		add(where, m.Name+" "+m.Description+" "+m.Unit)
		for _, set := range metricAttrSets(t, m) {
			addAttrs(where, set)
		}
	}
	entries := logs.all()
	if len(entries) == 0 {
		t.Fatal("nothing was logged")
	}
	for _, e := range entries {
		where := "log " + e.msg
		add(where, e.msg)
		for _, a := range e.attrs {
			add(where, a.Key+"="+a.Value.String())
		}
	}
	for _, err := range errs.all() {
		add("OnError", err.Error())
	}

	for _, text := range texts {
		if strings.Contains(text, token) || strings.Contains(text, "LEAKCHECK") {
			t.Errorf("a session id leaked: %s", text)
		}
	}
	t.Logf("searched %d spans, %d metrics, %d log records and %d background errors (%d texts)",
		len(spans), len(metrics), len(entries), len(errs.all()), len(texts))
}

// metricAttrSets returns the attributes of every data point of m, and of
// their exemplars.
func metricAttrSets(t *testing.T, m metricdata.Metrics) [][]attribute.KeyValue {
	t.Helper()
	var out [][]attribute.KeyValue
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes.ToSlice())
			for _, ex := range dp.Exemplars {
				out = append(out, ex.FilteredAttributes)
			}
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes.ToSlice())
			for _, ex := range dp.Exemplars {
				out = append(out, ex.FilteredAttributes)
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes.ToSlice())
			for _, ex := range dp.Exemplars {
				out = append(out, ex.FilteredAttributes)
			}
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes.ToSlice())
			for _, ex := range dp.Exemplars {
				out = append(out, ex.FilteredAttributes)
			}
		}
	default:
		t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
	}
	return out
}
