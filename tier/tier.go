// Package tier holds the storage tiers behind a session store: [Memory], a
// bounded in-process LRU, and [Mongo], the authoritative MongoDB collection.
//
// Tiers move encoded [Record] values; they never see the session type. The
// [Tier] interface is the part every tier implements. Further capabilities
// ([Counter], [Iterator], [Clearer], [BatchToucher]) are separate interfaces,
// found by type assertion.
package tier

import (
	"context"
	"errors"
	"iter"
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
	// ErrTooLarge reports a payload over the configured size limit.
	ErrTooLarge = errors.New("sessionstore: session payload too large")
)

type notFound struct{}

func (notFound) Error() string  { return "sessionstore: session not found" }
func (notFound) NotFound() bool { return true }

// Record is one encoded session.
type Record struct {
	// ID is the session's key in the tier, prefix included.
	ID string
	// Payload is the codec's output. Tiers copy it on Set and hand out
	// slices that callers must not modify.
	Payload []byte
	// Expires is when the session stops being readable.
	Expires time.Time
	// TTL is the session's own lifetime, kept so that a touch can extend
	// it without decoding the payload. Zero means the store's default.
	TTL time.Duration
	// Fetched is when the record was last read from or written to the
	// authoritative tier. The memory tier keeps it; the Mongo tier
	// ignores it.
	Fetched time.Time
}

// Live reports whether r has not expired at now.
func (r *Record) Live(now time.Time) bool { return now.Before(r.Expires) }

// Tier is a place that keeps records. Implementations are safe for
// concurrent use.
type Tier interface {
	// Get returns the live record for id, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string, now time.Time) (Record, error)
	// Set creates or replaces the record with rec.ID.
	Set(ctx context.Context, rec Record) error
	// Touch moves id's expiry to expires if the record is live at now
	// and expires is later than its current expiry. It never creates a
	// record or revives an expired one; touching a missing id is not an
	// error.
	Touch(ctx context.Context, id string, expires, now time.Time) error
	// Delete removes id. Deleting a missing id is not an error.
	Delete(ctx context.Context, id string) error
}

// Counter is a tier that can count its live records.
type Counter interface {
	Len(ctx context.Context, now time.Time) (int64, error)
}

// Iterator is a tier that can list its live records.
type Iterator interface {
	// All yields every record live at now, one at a time. A non-nil error
	// ends the sequence unless it wraps ErrCorrupt, which concerns one
	// record only.
	All(ctx context.Context, now time.Time) iter.Seq2[Record, error]
}

// Clearer is a tier that can remove every record.
type Clearer interface {
	Clear(ctx context.Context) error
}

// BatchToucher is a tier that extends many records in one call.
type BatchToucher interface {
	// TouchMany does what Touch does for each id, and reports how many
	// records it changed.
	TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error)
}
