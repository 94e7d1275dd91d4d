package engine

import (
	"context"
	"errors"
	"iter"
	"slices"
	"time"

	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
)

// deleteOwnedChunk is how many ids one delete command of DeleteOwned
// carries: servers that hang on large commands (FerretDB v1) take 300.
const deleteOwnedChunk = 300

// Owners is the capability of an authority to find and delete sessions
// by owner.
type Owners interface {
	// EnsureOwnerIndex creates the index the other methods use, unless
	// it exists.
	EnsureOwnerIndex(ctx context.Context) error
	// Owned yields the records in scope of owner live at now, as All
	// does.
	Owned(ctx context.Context, owner string, now time.Time) iter.Seq2[tier.Record, error]
	// OwnedIDs returns the ids of the records in scope of owner live at
	// now.
	OwnedIDs(ctx context.Context, owner string, now time.Time) ([]string, error)
	// DeleteOwned deletes those of ids that still belong to owner and
	// returns how many it deleted.
	DeleteOwned(ctx context.Context, owner string, ids []string) (int64, error)
}

// ErrNoOwner reports an owner operation with an empty owner, which would
// mean every anonymous session.
var ErrNoOwner = errors.New("sessionstore: empty owner: anonymous sessions belong to no one")

// startOwnerIndex sets up the owner index in the background, bounded by
// IndexTimeout, when owners are stored. A failure is reported; the owner
// operations still work without the index, only slower.
func (e *Engine) startOwnerIndex() {
	if !e.cfg.Owners {
		return
	}
	_ = e.bg.Go("owner index", func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, e.cfg.IndexTimeout)
		defer cancel()
		ctx, op := e.obs.Start(ctx, observe.Index)
		err := e.db.(Owners).EnsureOwnerIndex(ctx)
		op.End(err)
		if err != nil {
			e.obs.Background(observe.Index, err)
			return
		}
		e.log.Info("sessionstore: owner index", "collection", e.cfg.Collection, "index", tier.OwnerIndex)
	})
}

// openOwner checks an owner operation.
func (e *Engine) openOwner(owner string) error {
	switch {
	case e.closed.Load():
		return ErrClosed
	case !e.cfg.Owners:
		return errors.New("sessionstore: sessions have no owner: set Options.Owner")
	case owner == "":
		return ErrNoOwner
	}
	return nil
}

// Owned yields the sessions in scope of owner live on the server, with
// ids stripped of the prefix (hashes, with HashID). See Authority.All for
// errors.
func (e *Engine) Owned(ctx context.Context, owner string) iter.Seq2[tier.Record, error] {
	return func(yield func(tier.Record, error) bool) {
		if err := e.openOwner(owner); err != nil {
			yield(tier.Record{}, err)
			return
		}
		for rec, err := range e.db.(Owners).Owned(ctx, owner, e.cfg.Now()) {
			rec.ID = rec.ID[min(len(e.cfg.Prefix), len(rec.ID)):]
			if !yield(rec, err) {
				return
			}
		}
	}
}

// DeleteOwned deletes every session of owner live on the server but
// those of except (session ids), from both tiers, drops their pending
// touches, and returns how many it deleted. A session that changes owner
// meanwhile is left alone.
func (e *Engine) DeleteOwned(ctx context.Context, owner string, except []string) (int64, error) {
	if err := e.openOwner(owner); err != nil {
		return 0, err
	}
	keep := make(map[string]bool, len(except))
	for _, id := range except {
		key, err := e.key(id)
		if err != nil {
			return 0, err
		}
		keep[key] = true
	}
	db := e.db.(Owners)
	ids, err := db.OwnedIDs(ctx, owner, e.cfg.Now())
	if err != nil {
		return 0, err
	}
	ids = slices.DeleteFunc(ids, func(key string) bool { return keep[key] })
	var n int64
	for chunk := range slices.Chunk(ids, deleteOwnedChunk) {
		states := make([]*keyState, len(chunk))
		for i, key := range chunk {
			e.touches.Forget(key)
			states[i] = e.beginWrite(key, nil)
		}
		deleted, err := db.DeleteOwned(ctx, owner, chunk)
		for i, key := range chunk {
			e.endWrite(key, states[i], nil, err)
		}
		n += deleted
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
