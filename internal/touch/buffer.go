package touch

import (
	"errors"
	"sync"
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
type Buffer struct {
	limit int

	mu        sync.Mutex         // protects the fields below
	pending   map[string]Pending // by key
	closed    bool               // Add refuses touches
	inflight  bool               // a batch taken by Take is being written
	forgotten map[string]bool    // keys forgotten while a batch is written
	forgotAll bool               // every key was forgotten while a batch is written
	batch     uint64             // counts the batches taken
}

// NewBuffer returns a buffer holding at most limit touches.
func NewBuffer(limit int) *Buffer {
	return &Buffer{limit: limit, pending: make(map[string]Pending), forgotten: make(map[string]bool)}
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
	return len(b.pending), nil
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
