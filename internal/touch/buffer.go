package touch

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of Buffer.Add.
var (
	// ErrFull reports a touch dropped because the buffer is at its limit.
	ErrFull = errors.New("sessionstore: touch dropped: MaxPendingTouches touches are waiting for the database; is it reachable?")
	// ErrClosed reports a touch made after Close.
	ErrClosed = errors.New("sessionstore: touch buffer is closed")
)

// Buffer holds the touches waiting to be written, at most one per key,
// up to a limit. It starts no goroutine. A batch taken for writing is
// restored by Finish, less the keys forgotten meanwhile. Buffer is safe
// for concurrent use.
//
// It also remembers, without a lock, the rounded expiry last buffered for
// recent keys, so that Covered can tell a touch that would change nothing
// without taking the buffer's lock.
type Buffer struct {
	limit       int
	granularity time.Duration
	seed        maphash.Seed
	// recent holds, by hash of the key, the rounded expiry last buffered
	// for a key: pending, being written or written since. Written
	// under mu, read without it; a key forgotten or dropped is cleared.
	recent []atomic.Pointer[recentTouch]

	mu        sync.Mutex         // protects the fields below
	pending   map[string]Pending // by key
	closed    bool               // Add refuses touches
	inflight  bool               // a batch taken by Take is being written
	forgotten map[string]bool    // keys forgotten while a batch is written
	forgotAll bool               // every key was forgotten while a batch is written
	batch     uint64             // counts the batches taken
}

// recentTouch is a key and the rounded expiry last buffered for it.
type recentTouch struct {
	key     string
	expires time.Time
}

// maxRecent bounds the keys a Buffer remembers for Covered.
const maxRecent = 4096

// NewBuffer returns a buffer holding at most limit touches, whose
// expiries are rounded up to granularity (see Round).
func NewBuffer(limit int, granularity time.Duration) *Buffer {
	n := 1
	for n < limit && n < maxRecent {
		n *= 2
	}
	return &Buffer{
		limit: limit, granularity: granularity, seed: maphash.MakeSeed(),
		recent:  make([]atomic.Pointer[recentTouch], n),
		pending: make(map[string]Pending), forgotten: make(map[string]bool),
	}
}

// slot returns where key is remembered.
func (b *Buffer) slot(key string) *atomic.Pointer[recentTouch] {
	return &b.recent[maphash.String(b.seed, key)&uint64(len(b.recent)-1)]
}

// Covered reports whether a touch of key to expires, rounded, would
// change nothing: a touch of key to that expiry or a later one was
// buffered since key was last forgotten, and is pending or written. It
// takes no lock and does not allocate; it may answer false for a key it
// no longer remembers.
func (b *Buffer) Covered(key string, expires time.Time) bool {
	r := b.slot(key).Load()
	return r != nil && r.key == key && !r.expires.Before(expires)
}

// Add buffers p for key, merged with a touch already pending, and returns
// how many keys are pending. It fails with ErrFull at the limit and with
// ErrClosed after Close.
func (b *Buffer) Add(key string, p Pending) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrClosed
	}
	if old, ok := b.pending[key]; ok {
		p = Merge(old, p)
	} else if len(b.pending) >= b.limit {
		return len(b.pending), ErrFull
	}
	b.pending[key] = p
	if t, ok := p.Target(); ok {
		t = Round(t, b.granularity)
		slot := b.slot(key)
		if r := slot.Load(); r == nil || r.key != key || r.expires.Before(t) {
			slot.Store(&recentTouch{key: key, expires: t})
		}
	}
	return len(b.pending), nil
}

// unremember clears what Covered knows of key. b.mu must be held.
func (b *Buffer) unremember(key string) {
	slot := b.slot(key)
	if r := slot.Load(); r != nil && r.key == key {
		slot.Store(nil)
	}
}

// Take removes and returns every pending touch, or nil when there is
// none. Until Finish, forgotten keys are remembered so that Finish does
// not restore them.
func (b *Buffer) Take() map[string]Pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		return nil
	}
	batch := b.pending
	b.pending = make(map[string]Pending, len(batch))
	b.inflight = true
	b.batch++
	return batch
}

// Finish ends the write of a batch from Take: it puts back the touches
// in failed, merged with newer ones, except those forgotten meanwhile, and
// returns the keys it had no room for.
func (b *Buffer) Finish(failed map[string]Pending) (dropped []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.forgotAll {
		for key, p := range failed {
			switch old, ok := b.pending[key]; {
			case b.forgotten[key]:
			case ok:
				b.pending[key] = Merge(p, old)
			case len(b.pending) < b.limit:
				b.pending[key] = p
			default:
				dropped = append(dropped, key)
				b.unremember(key)
			}
		}
	}
	b.inflight, b.forgotAll = false, false
	clear(b.forgotten)
	return dropped
}

// Forget drops the touch pending for key, and keeps a batch being
// written from restoring it. It returns what it dropped, for Restore.
func (b *Buffer) Forget(key string) Forgotten {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := Forgotten{key: key}
	f.p, f.pending = b.pending[key]
	delete(b.pending, key)
	b.unremember(key)
	if b.inflight && !b.forgotten[key] {
		b.forgotten[key] = true
		f.batch = b.batch
	}
	return f
}

// Forgotten is what one Forget dropped.
type Forgotten struct {
	key     string
	p       Pending
	pending bool   // p was pending
	batch   uint64 // the batch being written that Forget kept from restoring key; 0: none
}

// Restore undoes a Forget for a write that was to supersede the touch and
// failed, so may not have happened: the touch dropped is pending again,
// merged with newer ones, room permitting, and the batch being written,
// if it is still the one Forget saw, may restore key again.
func (b *Buffer) Restore(f Forgotten) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.batch != 0 && b.inflight && b.batch == f.batch && !b.forgotAll {
		delete(b.forgotten, f.key)
	}
	if !f.pending || b.closed {
		return
	}
	if old, ok := b.pending[f.key]; ok {
		b.pending[f.key] = Merge(f.p, old)
	} else if len(b.pending) < b.limit {
		b.pending[f.key] = f.p
	}
}

// ForgetAll drops every pending touch, and keeps a batch being written
// from restoring any.
func (b *Buffer) ForgetAll() {
	b.mu.Lock()
	clear(b.pending)
	for i := range b.recent {
		b.recent[i].Store(nil)
	}
	b.forgotAll = b.inflight
	b.mu.Unlock()
}

// Len returns how many keys have a touch pending.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Close makes Add refuse touches from now on. Pending ones stay for a
// last Take.
func (b *Buffer) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}
