package sessionstore

import (
	"context"
	"iter"

	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
)

// ByOwner streams the unexpired sessions of owner (with the store's
// prefix, when it has one) through the owner index, as All streams the
// whole collection: through a cursor, uncached, with the same errors. It
// needs Options.Owner; an empty owner is an error, since anonymous
// sessions belong to no one. With Options.IDHashKey the ids yielded are
// the stored hashes, not session ids.
//
// Sessions deleted by another instance stop being served by this one's
// memory within MaxCacheAge.
func (s *Store[T]) ByOwner(ctx context.Context, owner string) iter.Seq2[Entry[T], error] {
	return s.stream(ctx, observe.ByOwner, func(ctx context.Context) iter.Seq2[tier.Record, error] {
		return s.eng.Owned(ctx, owner)
	})
}

// DeleteByOwner deletes every unexpired session of owner but those named
// in except ("log out my other devices": pass the current session's id),
// from the database and this store's memory, drops their pending
// touches, and returns how many it deleted. It finds them through the
// owner index, then deletes them by id on condition that they still
// belong to owner. A session created for owner meanwhile is left alone.
// Other instances stop serving the deleted sessions from memory within
// MaxCacheAge. It needs Options.Owner; an empty owner is an error.
func (s *Store[T]) DeleteByOwner(ctx context.Context, owner string, except ...string) (int64, error) {
	ctx, op := s.obs.Start(ctx, observe.DeleteByOwner)
	n, err := s.eng.DeleteOwned(ctx, owner, except)
	op.End(err)
	return n, err
}
