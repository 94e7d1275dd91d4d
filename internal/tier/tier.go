// Package tier holds the storage tiers behind a session store: [Memory], a
// bounded in-process LRU, and [Mongo], the authoritative MongoDB collection.
// Tiers move encoded [Record] values and never see the session type; the
// engine that uses them declares the interfaces it needs.
package tier

import (
	"errors"
	"time"
)

// Sentinel errors shared by every tier. Tiers wrap them with detail; test
// with errors.Is.
var (
	// ErrNotFound reports a session that does not exist or has expired.
	// Besides errors.Is, it can be recognised without importing this
	// package: it has a method NotFound() bool that returns true.
	ErrNotFound error = notFound{}
	// ErrCorrupt reports a stored document that cannot be read as a session.
	ErrCorrupt = errors.New("sessionstore: corrupt session document")
	// ErrExists reports an insert of an id that is already stored.
	// Besides errors.Is, it can be recognised by its method Exists() bool,
	// which returns true.
	ErrExists error = exists{}
	// ErrConflict reports a conditional write that found the session
	// changed (or gone) since it was read.
	ErrConflict = errors.New("sessionstore: session changed concurrently")
	// ErrTooLarge reports a payload over the configured size limit.
	ErrTooLarge = errors.New("sessionstore: session payload too large")
)

type exists struct{}

func (exists) Error() string { return "sessionstore: session id already exists" }
func (exists) Exists() bool  { return true }

type notFound struct{}

func (notFound) Error() string  { return "sessionstore: session not found" }
func (notFound) NotFound() bool { return true }

// Record is one encoded session.
type Record struct {
	// ID is the session's key in the tier, prefix included.
	ID string
	// Payload is the codec's output. A tier takes ownership of the
	// payload it is given and hands out slices that callers must not
	// modify.
	Payload []byte
	// Value is the payload decoded, kept by the memory tier beside it
	// when the store can copy decoded values (Options.Clone), else nil.
	// It is never modified; only the memory tier keeps it.
	Value any
	// Expires is when the session stops being readable.
	Expires time.Time
	// TTL is the session's own lifetime, kept so that a touch can extend
	// it without decoding the payload. Zero means the store's default.
	TTL time.Duration
	// Rev is the session's version: 1 when it is created, one more on
	// every write of its payload; 0 for a document without one, such as
	// those the Node stores write; -1 when unknown (after an
	// unconditional write). Touches never change it.
	Rev int64
	// Synced is when the record was last read from or written to the
	// authoritative tier. The memory tier keeps it; the Mongo tier
	// ignores it.
	Synced time.Time
	// Deadline is the session's absolute end: it is not live from then
	// on, whatever its expiry. Zero means none.
	Deadline time.Time
	// Owner names whom the session belongs to; "" for no one.
	Owner string
}

// Live reports whether r has neither expired nor reached its deadline at
// now.
func (r *Record) Live(now time.Time) bool {
	return now.Before(r.Expires) && (r.Deadline.IsZero() || now.Before(r.Deadline))
}
