// Package tracing names what a session store reports to OpenTelemetry:
// its span names, span attributes, metric names and the instrumentation
// scope. Use the names to find the store's telemetry in a collector or a
// test; the store itself records them.
//
// Session ids never appear in any span, metric or log record.
package tracing

import "go.opentelemetry.io/otel/attribute"

// ScopeName is the instrumentation scope of the store's tracer and meter.
const ScopeName = "github.com/sessionstore/sessionstore"

// Span names. Public operations are spans of kind internal; the database
// work behind them (the shared load of a Get miss, touch flushes, reaper
// passes, TTL index setup) are spans of kind client.
const (
	SpanGet        = "sessionstore.Get"
	SpanSet        = "sessionstore.Set"
	SpanCreate     = "sessionstore.Create"
	SpanUpdate     = "sessionstore.Update"
	SpanTouch      = "sessionstore.Touch"
	SpanDelete     = "sessionstore.Delete"
	SpanLen        = "sessionstore.Len"
	SpanAll        = "sessionstore.All"
	SpanClear      = "sessionstore.Clear"
	SpanFlush      = "sessionstore.Flush"
	SpanClose      = "sessionstore.Close"
	SpanLoad       = "sessionstore.load"
	SpanTouchFlush = "sessionstore.touch.flush"
	SpanReap       = "sessionstore.reap"
	SpanIndexSetup = "sessionstore.index.setup"

	SpanDeadline      = "sessionstore.Deadline"
	SpanByOwner       = "sessionstore.ByOwner"
	SpanDeleteByOwner = "sessionstore.DeleteByOwner"
	SpanReencrypt     = "sessionstore.Reencrypt"
)

// Span attributes of the store.
const (
	// Tier is the tier that answered a Get: "memory" or "mongodb".
	Tier = attribute.Key("sessionstore.tier")
	// CacheHit tells whether a Get was answered from memory.
	CacheHit = attribute.Key("sessionstore.cache.hit")
	// LoadJoined tells whether a Get joined a database read already in
	// flight for the same session instead of starting one.
	LoadJoined = attribute.Key("sessionstore.load.joined")
	// UpdateAttempts is how many writes an Update tried, conflicts
	// included.
	UpdateAttempts = attribute.Key("sessionstore.update.attempts")
	// FlushSessions is the number of sessions a touch flush wrote.
	FlushSessions = attribute.Key("sessionstore.flush.sessions")
	// FlushGroups is the number of expiry groups (one command or more
	// each) of a touch flush.
	FlushGroups = attribute.Key("sessionstore.flush.groups")
	// Reaped is the number of expired documents a reaper pass deleted.
	Reaped = attribute.Key("sessionstore.reaped")
	// TTLMode is the TTL index mode (auto, off, require).
	TTLMode = attribute.Key("sessionstore.ttl.mode")
	// TTLAction is what TTL index setup did (created, present, repaired,
	// converted, reaper, disabled).
	TTLAction = attribute.Key("sessionstore.ttl.action")
	// Operation names the store operation of a metric data point.
	Operation = attribute.Key("sessionstore.operation")
	// Untrusted tells that a Get found the session in memory but read
	// the server, because the change feed was down or behind.
	Untrusted = attribute.Key("sessionstore.coherence.untrusted")
)

// Database semantic-convention attributes set on client spans.
const (
	DBSystemName     = attribute.Key("db.system.name")
	DBNamespace      = attribute.Key("db.namespace")
	DBCollectionName = attribute.Key("db.collection.name")
	DBOperationName  = attribute.Key("db.operation.name")
)

// Metric names. Counters count events; the histogram measures operation
// duration in seconds; the gauges are read when metrics are collected.
const (
	MetricHits         = "sessionstore.cache.hits"
	MetricMisses       = "sessionstore.cache.misses"
	MetricLoads        = "sessionstore.loads"
	MetricLoadsJoined  = "sessionstore.loads.joined"
	MetricEvictions    = "sessionstore.cache.evictions"
	MetricTouchQueued  = "sessionstore.touches.queued"
	MetricTouchSkipped = "sessionstore.touches.skipped"
	MetricTouchFlushed = "sessionstore.touches.flushed"
	MetricTouchDropped = "sessionstore.touches.dropped"
	MetricReaped       = "sessionstore.reaped"
	MetricErrors       = "sessionstore.errors"
	MetricDuration     = "sessionstore.operation.duration"
	MetricCacheEntries = "sessionstore.cache.entries"
	MetricTouchPending = "sessionstore.touches.pending"

	// MetricInvalidations counts sessions dropped from memory because
	// the change feed saw them changed or deleted elsewhere.
	MetricInvalidations = "sessionstore.coherence.invalidations"
	// MetricFallbacks counts the times the change feed lost track of
	// changes, so that memory was emptied and reads went to the server.
	MetricFallbacks = "sessionstore.coherence.fallbacks"
	// MetricUntrusted counts Gets that found the session in memory but
	// read the server because the feed was down or behind.
	MetricUntrusted = "sessionstore.coherence.untrusted"
	// MetricFollowing is 1 while the change feed has caught up within
	// MaxStaleness, else 0.
	MetricFollowing = "sessionstore.coherence.following"
	// MetricLag is how long ago, in seconds, the change feed last
	// caught up; absent while it has not since it was lost.
	MetricLag = "sessionstore.coherence.lag"
)
