// Package sessionstore keeps user sessions in MongoDB behind a bounded
// in-memory cache, for Go services under heavy traffic.
//
// A [Store] is generic in the session type T. MongoDB is the
// authoritative tier: every Set writes it first. An in-memory LRU of
// [Options.CacheSize] sessions answers Gets without a database round
// trip; concurrent Gets that miss it share one database read. Each store
// follows a change feed of its collection (a change stream, or the oplog
// where there is no change stream) and drops from memory what other
// instances and other writers change; memory answers only while the feed
// bounds its staleness to [Options.MaxStaleness], one second by default
// (see [Coherence]).
//
// Touch, which extends a session's expiry on every request, does not
// wait for the database: touches are buffered and written in batches, one
// updateMany command per group of sessions sharing an expiry. A touch
// never shortens an expiry, never creates a session and never revives an
// expired one.
//
// Expiry is enforced on every read, whether or not the server has removed
// expired documents yet. When the store is created it sets up a TTL index
// on the expires field where the server supports one, and otherwise runs
// a reaper that deletes expired sessions (see package ttl).
//
// Documents have the shape {_id, expires, session, rev, ttl}, plus
// deadline with Options.MaxLifetime and owner with Options.Owner, where
// session holds the encoded value: binary with the default msgpack codec,
// an embedded document with codec.BSON (what Node's express-session
// stores write) or a string with codec.JSON. See package codec.
//
// Options.MaxLifetime bounds a session's life from its creation,
// Options.Owner finds and deletes sessions by owner, and
// Options.EncryptionKeys and Options.IDHashKey keep contents and ids
// unreadable at rest; the README's Security section says what each
// protects against and what it does not.
//
// Every operation is traced with OpenTelemetry and measured; package
// tracing names the spans, attributes and metrics. Package httpsession
// provides express-session compatible HTTP middleware on top of a Store.
//
// All methods of a Store are safe for concurrent use. Close it when done:
// it writes buffered touches and stops the store's goroutines.
package sessionstore
