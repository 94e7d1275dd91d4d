package sessionstore

import (
	"context"
	"time"

	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/ttl"
)

// Touch extends session id's expiry to now plus its lifetime. It never
// shortens an expiry, never creates a session and never revives an
// expired one: touching a session that does not exist does nothing.
//
// Touch does not wait for the database. It buffers the extension and
// updates the in-memory copy; a background flusher writes buffered
// touches in batches every TouchInterval, or sooner when TouchBatchSize
// sessions are waiting. Flush writes them now. Expiries are rounded up to
// TouchGranularity, in memory and on the server alike. With TouchAfter
// set, a touch within TouchAfter of the session's last extension is
// skipped: at once when the session is in memory, else by the write's
// filter.
func (s *Store[T]) Touch(ctx context.Context, id string) error {
	_, op := s.obs.Start(ctx, observe.Touch)
	err := s.eng.Touch(id, time.Time{})
	op.End(err)
	return err
}

// TouchUntil is Touch with an expiry chosen by the caller: it extends
// session id's expiry to expires, for callers that decide expiries
// themselves, such as scs. Like Touch it never shortens an expiry, never
// creates or revives a session, and does not wait for the database: the
// extension is buffered and written with the next batch, rounded up to
// TouchGranularity. An expiry not after now does nothing, and so does a
// touch that would move the expiry forward by less than TouchAfter.
func (s *Store[T]) TouchUntil(ctx context.Context, id string, expires time.Time) error {
	_, op := s.obs.Start(ctx, observe.Touch)
	err := s.eng.Touch(id, expires)
	op.End(err)
	return err
}

// Flush writes every buffered touch now and returns when they are written
// or ctx ends. Touches that fail stay buffered for the next attempt.
func (s *Store[T]) Flush(ctx context.Context) error {
	ctx, op := s.obs.Start(ctx, observe.Flush)
	err := s.eng.Flush(ctx)
	op.End(err)
	return err
}

// TTLIndex waits for TTL index setup to finish, or for ctx to end, and
// reports what it decided: whether the server keeps a TTL index on
// expires, and whether the store runs its own reaper instead. The decision
// is also logged at info level when it is made.
func (s *Store[T]) TTLIndex(ctx context.Context) (ttl.Decision, error) {
	return s.eng.TTLIndex(ctx)
}

// Reap deletes expired sessions from the database now, as the built-in
// reaper does on servers without TTL indexes, and returns how many it
// deleted. It is never needed for correctness: reads ignore expired
// sessions.
func (s *Store[T]) Reap(ctx context.Context) (int64, error) {
	return s.eng.Reap(ctx)
}
