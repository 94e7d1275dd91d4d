package tiertest

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
)

var (
	_ engine.Deadlines = (*Fake)(nil)
	_ engine.Owners    = (*Fake)(nil)
)

// SetWithin stores rec as tier.Mongo.SetWithin does: a live record keeps
// its earlier deadline, and the expiry never passes the deadline kept.
// The fake is atomic, so it ignores known. The call is named "setwithin".
func (f *Fake) SetWithin(ctx context.Context, rec tier.Record, _, now time.Time) (tier.Record, error) {
	if err := f.begin(ctx, "setwithin"); err != nil {
		return tier.Record{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.recs[rec.ID]
	if ok && cur.Live(now) && !cur.Deadline.IsZero() && cur.Deadline.Before(rec.Deadline) {
		rec.Deadline = cur.Deadline
	}
	if rec.Expires.After(rec.Deadline) {
		rec.Expires = rec.Deadline
	}
	rec.Rev = cur.Rev + 1
	stored := rec
	stored.Payload = slices.Clone(rec.Payload)
	stored.Synced = time.Time{}
	f.recs[rec.ID] = stored
	return rec, nil
}

// EnsureOwnerIndex does nothing: the fake needs no index. The call is
// named "ownerindex".
func (f *Fake) EnsureOwnerIndex(ctx context.Context) error {
	return f.begin(ctx, "ownerindex")
}

// ownedBy returns the records in scope of owner live at now, by id.
func (f *Fake) ownedBy(owner string, now time.Time) []tier.Record {
	var recs []tier.Record
	for _, rec := range f.inScope(now) {
		if rec.Owner == owner && owner != "" { // anonymous ones are stored as null
			recs = append(recs, rec)
		}
	}
	return recs
}

// Owned yields the records in scope of owner live at now, by id. The
// call is named "owned".
func (f *Fake) Owned(ctx context.Context, owner string, now time.Time) iter.Seq2[tier.Record, error] {
	return func(yield func(tier.Record, error) bool) {
		if err := f.begin(ctx, "owned"); err != nil {
			yield(tier.Record{}, err)
			return
		}
		for _, rec := range f.ownedBy(owner, now) {
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// OwnedIDs returns the ids of the records in scope of owner live at now.
// The call is named "ownedids".
func (f *Fake) OwnedIDs(ctx context.Context, owner string, now time.Time) ([]string, error) {
	if err := f.begin(ctx, "ownedids"); err != nil {
		return nil, err
	}
	var ids []string
	for _, rec := range f.ownedBy(owner, now) {
		ids = append(ids, rec.ID)
	}
	return ids, nil
}

// DeleteOwned deletes those of ids that belong to owner. The call is
// named "deleteowned".
func (f *Fake) DeleteOwned(ctx context.Context, owner string, ids []string) (int64, error) {
	if err := f.begin(ctx, "deleteowned"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, id := range ids {
		if rec, ok := f.recs[id]; ok && rec.Owner == owner && owner != "" {
			delete(f.recs, id)
			n++
		}
	}
	return n, nil
}
