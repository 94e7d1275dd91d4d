package sessionstore

import (
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
)

var (
	// ErrNotFound is returned by Get when a session does not exist or has
	// expired. It is an outcome, not a failure.
	ErrNotFound = tier.ErrNotFound
	// ErrCorrupt is returned when a stored session cannot be decoded. The
	// document is left in place and is not cached.
	ErrCorrupt = tier.ErrCorrupt
	// ErrExists is returned by Create when the id is stored already.
	ErrExists = tier.ErrExists
	// ErrConflict is returned by Update when the session kept changing
	// under it for UpdateAttempts attempts.
	ErrConflict = tier.ErrConflict
	// ErrTooLarge is returned by Set when the encoded session is larger
	// than Options.MaxPayload.
	ErrTooLarge = tier.ErrTooLarge
	// ErrInvalidID is returned for an id that is empty, not valid UTF-8, or
	// longer than MaxIDLength bytes with its prefix.
	ErrInvalidID = engine.ErrInvalidID
	// ErrClosed is returned by every operation on a store after Close.
	ErrClosed = engine.ErrClosed
)
