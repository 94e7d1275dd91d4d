package tiertest

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/tier"
)

var _ engine.Authority = (*Fake)(nil)

// Fake is an authoritative tier in memory that behaves like tier.Mongo,
// for tests without a server. Set Before to delay or fail calls. Its
// methods are safe for concurrent use.
type Fake struct {
	// Prefix scopes Len, All and Clear, as tier.MongoOptions.Prefix does.
	Prefix string
	// TouchAfter is tier.MongoOptions.TouchAfter.
	TouchAfter time.Duration
	// Before, if set, runs at the start of every call with the call's
	// name ("get", "set", "insert", "replace", "delete", "len", "all",
	// "clear", "reap", "touch", "ttls", and those of fake_owner.go);
	// an error it returns fails the call. It may block,
	// and should then honour ctx.
	Before func(ctx context.Context, call string) error

	mu    sync.Mutex // protects recs and calls
	recs  map[string]tier.Record
	calls map[string]int
}

func (f *Fake) begin(ctx context.Context, call string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]int)
	}
	if f.recs == nil {
		f.recs = make(map[string]tier.Record)
	}
	f.calls[call]++
	f.mu.Unlock()
	if f.Before != nil {
		if err := f.Before(ctx, call); err != nil {
			return fmt.Errorf("fake %s: %w", call, err)
		}
	}
	return ctx.Err()
}

// Calls returns how many calls named call were made.
func (f *Fake) Calls(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

// Record returns the stored record id, expired or not.
func (f *Fake) Record(id string) (tier.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[id]
	return rec, ok
}

// Get returns id's record live at now.
func (f *Fake) Get(ctx context.Context, id string, now time.Time) (tier.Record, error) {
	if err := f.begin(ctx, "get"); err != nil {
		return tier.Record{}, err
	}
	rec, ok := f.Record(id)
	if !ok || !rec.Live(now) {
		return tier.Record{}, tier.ErrNotFound
	}
	rec.Payload = slices.Clone(rec.Payload)
	return rec, nil
}

// Put stores rec as it is, version included, as another writer would.
func (f *Fake) Put(rec tier.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recs == nil {
		f.recs = make(map[string]tier.Record)
	}
	rec.Payload = slices.Clone(rec.Payload)
	rec.Synced = time.Time{}
	f.recs[rec.ID] = rec
}

// Set stores a copy of rec at the next version.
func (f *Fake) Set(ctx context.Context, rec tier.Record) (int64, error) {
	if err := f.begin(ctx, "set"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	rec.Rev = f.recs[rec.ID].Rev + 1
	f.mu.Unlock()
	f.Put(rec)
	return rec.Rev, nil
}

// Insert stores a copy of rec at version 1 unless rec.ID is stored.
func (f *Fake) Insert(ctx context.Context, rec tier.Record) error {
	if err := f.begin(ctx, "insert"); err != nil {
		return err
	}
	if _, ok := f.Record(rec.ID); ok {
		return fmt.Errorf("fake insert: %w", tier.ErrExists)
	}
	rec.Rev = 1
	f.Put(rec)
	return nil
}

// Replace stores rec at old's version plus one if the stored record has
// old's version and payload.
func (f *Fake) Replace(ctx context.Context, old, rec tier.Record) (bool, error) {
	if err := f.begin(ctx, "replace"); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.recs[old.ID]
	if !ok || cur.Rev != old.Rev || !bytes.Equal(cur.Payload, old.Payload) {
		return false, nil
	}
	rec.Rev = old.Rev + 1
	rec.Payload = slices.Clone(rec.Payload)
	rec.Synced = time.Time{}
	f.recs[rec.ID] = rec
	return true, nil
}

// Delete removes id.
func (f *Fake) Delete(ctx context.Context, id string) error {
	if err := f.begin(ctx, "delete"); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.recs, id)
	f.mu.Unlock()
	return nil
}

// inScope returns the records in scope live at now, by id.
func (f *Fake) inScope(now time.Time) []tier.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var recs []tier.Record
	for _, id := range slices.Sorted(maps.Keys(f.recs)) {
		if rec := f.recs[id]; strings.HasPrefix(id, f.Prefix) && rec.Live(now) {
			rec.Payload = slices.Clone(rec.Payload)
			recs = append(recs, rec)
		}
	}
	return recs
}

// Len counts the records in scope live at now.
func (f *Fake) Len(ctx context.Context, now time.Time) (int64, error) {
	if err := f.begin(ctx, "len"); err != nil {
		return 0, err
	}
	return int64(len(f.inScope(now))), nil
}

// All yields the records in scope live at now, by id.
func (f *Fake) All(ctx context.Context, now time.Time) iter.Seq2[tier.Record, error] {
	return func(yield func(tier.Record, error) bool) {
		if err := f.begin(ctx, "all"); err != nil {
			yield(tier.Record{}, err)
			return
		}
		for _, rec := range f.inScope(now) {
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// Clear deletes the records in scope.
func (f *Fake) Clear(ctx context.Context) error {
	if err := f.begin(ctx, "clear"); err != nil {
		return err
	}
	f.mu.Lock()
	for id := range f.recs {
		if strings.HasPrefix(id, f.Prefix) {
			delete(f.recs, id)
		}
	}
	f.mu.Unlock()
	return nil
}

// Reap deletes every record that expired before now.
func (f *Fake) Reap(ctx context.Context, now time.Time) (int64, error) {
	if err := f.begin(ctx, "reap"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for id, rec := range f.recs {
		if rec.Expires.Before(now) {
			delete(f.recs, id)
			n++
		}
	}
	return n, nil
}

// TouchMany extends the ids live at now whose expiry is at least
// TouchAfter before expires, and whose deadline, if any, is not.
func (f *Fake) TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error) {
	if err := f.begin(ctx, "touch"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, id := range ids {
		rec, ok := f.recs[id]
		if ok && rec.Live(now) && rec.Expires.Before(expires.Add(-f.TouchAfter)) && (rec.Deadline.IsZero() || !rec.Deadline.Before(expires)) {
			rec.Expires = expires
			f.recs[id] = rec
			n++
		}
	}
	return n, nil
}

// TTLs returns the stored lifetime of each id live at now.
func (f *Fake) TTLs(ctx context.Context, ids []string, now time.Time) (map[string]time.Duration, error) {
	if err := f.begin(ctx, "ttls"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ttls := make(map[string]time.Duration, len(ids))
	for _, id := range ids {
		if rec, ok := f.recs[id]; ok && rec.Live(now) {
			ttls[id] = rec.TTL
		}
	}
	return ttls, nil
}
