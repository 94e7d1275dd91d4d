package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore/ttl"
)

// maxIDsPerCommand bounds the ids of one touch command, keeping each
// command far below MongoDB's 16 MiB limit.
const maxIDsPerCommand = 1_000

// maxTouchBackoff caps the wait between failing touch flushes.
const maxTouchBackoff = 30 * time.Second

// Touch extends session id's expiry to now plus its lifetime. It never
// shortens an expiry and never creates a session: touching a session that
// does not exist does nothing.
//
// Touch does not wait for the database. It updates the in-memory copy at
// once and buffers the extension; a background flusher writes buffered
// touches in batches every TouchInterval, or sooner when TouchBatchSize
// sessions are waiting. Flush writes them now. With TouchAfter set, a
// touch within TouchAfter of the session's last extension is skipped.
func (s *Store[T]) Touch(ctx context.Context, id string) error {
	_, op := s.obs.start(ctx, opTouch)
	err := s.touch(id)
	op.end(err)
	return err
}

func (s *Store[T]) touch(id string) error {
	key, err := s.key(id)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now()
	p := pendingTouch{at: now}
	if s.opts.TTLFunc == nil {
		p.life = s.opts.TTL
	}
	if s.mem != nil {
		if rec, ok := s.mem.Lookup(key); ok {
			if s.opts.TTLFunc != nil {
				p.life = rec.TTL
				if p.life <= 0 {
					p.life = s.opts.TTL
				}
			}
			if s.opts.TouchAfter > 0 && now.Sub(rec.Expires.Add(-p.life)) < s.opts.TouchAfter {
				s.obs.touchSkipped()
				return nil
			}
			s.mem.Touch(context.Background(), key, ttl.Expiry(now, p.life))
		}
	}
	return s.touches.add(key, p)
}

// TouchUntil is Touch with an expiry chosen by the caller: it extends
// session id's expiry to expires, for callers that decide expiries
// themselves, such as scs. Like Touch it never shortens an expiry, never
// creates a session and does not wait for the database: the extension is
// buffered and written with the next batch, with expires rounded up to
// TouchGranularity. An expiry not after now does nothing. When the
// session is in memory, a touch that would move its expiry forward by
// less than TouchAfter (by nothing, when TouchAfter is 0) is skipped.
func (s *Store[T]) TouchUntil(ctx context.Context, id string, expires time.Time) error {
	_, op := s.obs.start(ctx, opTouch)
	err := s.touchUntil(id, expires)
	op.end(err)
	return err
}

func (s *Store[T]) touchUntil(id string, expires time.Time) error {
	key, err := s.key(id)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now()
	expires = expires.Truncate(time.Millisecond)
	if !expires.After(now) {
		return nil
	}
	if s.mem != nil {
		if rec, ok := s.mem.Lookup(key); ok {
			if gain := expires.Sub(rec.Expires); gain <= 0 || gain < s.opts.TouchAfter {
				s.obs.touchSkipped()
				return nil
			}
			s.mem.Touch(context.Background(), key, expires)
		}
	}
	return s.touches.add(key, pendingTouch{at: now, until: expires})
}

// pendingTouch is a touch waiting to be written.
type pendingTouch struct {
	at    time.Time     // when the session was touched
	life  time.Duration // its lifetime; 0 when it must be read from the database
	until time.Time     // the expiry asked for by TouchUntil; zero for Touch
}

// target returns the expiry p asks for before rounding, or false when its
// lifetime is still to be read from the database.
func (p pendingTouch) target() (time.Time, bool) {
	switch {
	case !p.until.IsZero():
		return p.until, true
	case p.life == 0:
		return time.Time{}, false
	}
	return p.at.Add(p.life), true
}

// expires returns the expiry the touch asks for, rounded up to g: until
// when set, else the touch time plus life.
func (p pendingTouch) expires(life, g time.Duration) time.Time {
	t := p.until
	if t.IsZero() {
		t = p.at.Add(life)
	}
	if r := t.Truncate(g); r.Before(t) {
		t = r.Add(g)
	}
	return t.Truncate(time.Millisecond)
}

// later returns the touch of p and q that asks for the later expiry.
func later(p, q pendingTouch) pendingTouch {
	pt, pok := p.target()
	qt, qok := q.target()
	if !pok || !qok {
		// A touch whose lifetime is unknown is resolved at write time;
		// keep the most recent one.
		if q.at.After(p.at) {
			return q
		}
		return p
	}
	if qt.After(pt) {
		return q
	}
	return p
}

// toucher buffers touches and writes them in batches from one background
// goroutine.
type toucher struct {
	writeTimeout time.Duration
	store        interface {
		flushTouches(ctx context.Context, batch map[string]pendingTouch) (map[string]pendingTouch, error)
	}
	obs      *observer
	interval time.Duration
	batch    int
	limit    int

	mu      sync.Mutex              // protects pending
	pending map[string]pendingTouch // by key

	flushing chan struct{} // a one-slot semaphore: one flush at a time
	kick     chan struct{} // wakes the flusher when a batch is full
	quit     chan struct{} // closed to stop the flusher
	done     chan struct{} // closed when the flusher has returned
	stopOnce sync.Once
	cancel   context.CancelFunc // cancels the flusher's work in progress
}

func newToucher[T any](s *Store[T]) *toucher {
	ctx, cancel := context.WithCancel(context.Background())
	t := &toucher{
		writeTimeout: s.opts.WriteTimeout,
		store:        s,
		obs:          s.obs,
		interval:     s.opts.TouchInterval,
		batch:        s.opts.TouchBatchSize,
		limit:        s.opts.MaxPendingTouches,
		pending:      make(map[string]pendingTouch),
		flushing:     make(chan struct{}, 1),
		kick:         make(chan struct{}, 1),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
		cancel:       cancel,
	}
	go t.run(ctx)
	return t
}

// errTouchDropped is reported when the pending touches are at their limit.
var errTouchDropped = errors.New("sessionstore: touch dropped: MaxPendingTouches touches are waiting for the database; is it reachable?")

// add buffers p for key.
func (t *toucher) add(key string, p pendingTouch) error {
	t.mu.Lock()
	old, ok := t.pending[key]
	switch {
	case ok:
		t.pending[key] = later(old, p)
	case len(t.pending) >= t.limit:
		t.mu.Unlock()
		t.obs.touchDropped(1)
		t.obs.background(opTouch, errTouchDropped)
		return nil
	default:
		t.pending[key] = p
	}
	n := len(t.pending)
	t.mu.Unlock()
	t.obs.touchQueued()
	if n >= t.batch {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// merge puts touches that were not written back, unless newer ones came
// meanwhile, and returns how many were dropped for lack of room.
func (t *toucher) merge(batch map[string]pendingTouch) int {
	dropped := 0
	t.mu.Lock()
	for key, p := range batch {
		if old, ok := t.pending[key]; ok {
			t.pending[key] = later(p, old)
		} else if len(t.pending) < t.limit {
			t.pending[key] = p
		} else {
			dropped++
		}
	}
	t.mu.Unlock()
	return dropped
}

func (t *toucher) forget(key string) {
	t.mu.Lock()
	delete(t.pending, key)
	t.mu.Unlock()
}

func (t *toucher) forgetAll() {
	t.mu.Lock()
	clear(t.pending)
	t.mu.Unlock()
}

func (t *toucher) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// flush writes every pending touch. It waits for a flush in progress
// first, so that when it returns nil every touch made before the call is
// written.
func (t *toucher) flush(ctx context.Context) error {
	select {
	case t.flushing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.flushing }()
	t.mu.Lock()
	batch := t.pending
	if len(batch) == 0 {
		t.mu.Unlock()
		return nil
	}
	t.pending = make(map[string]pendingTouch, len(batch))
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, t.writeTimeout)
	defer cancel()
	failed, err := t.store.flushTouches(ctx, batch)
	if len(failed) > 0 {
		if n := t.merge(failed); n > 0 {
			t.obs.touchDropped(n)
			err = errors.Join(err, fmt.Errorf("%w (%d dropped)", errTouchDropped, n))
		}
	}
	return err
}

func (t *toucher) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-t.quit:
			return
		case <-tick.C:
		case <-t.kick:
		}
		err := t.flush(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		t.obs.background(opFlush, err)
		backoff = min(max(2*backoff, t.interval), maxTouchBackoff)
		select {
		case <-t.quit:
			return
		case <-time.After(backoff):
		}
	}
}

// stop ends the flusher goroutine, cancelling its work in progress, and
// waits for it.
func (t *toucher) stop() {
	t.stopOnce.Do(func() {
		close(t.quit)
		t.cancel()
	})
	<-t.done
}

// close stops the flusher and writes what is left, by ctx's deadline.
func (t *toucher) close(ctx context.Context) error {
	t.stop()
	if err := t.flush(ctx); err != nil {
		n := t.size()
		t.forgetAll()
		return fmt.Errorf("sessionstore: close: %d touches not written: %w", n, err)
	}
	return nil
}

// Flush writes every buffered touch now and returns when they are written
// or ctx ends. Touches that fail stay buffered for the next attempt.
func (s *Store[T]) Flush(ctx context.Context) error {
	ctx, op := s.obs.start(ctx, opFlush)
	var err error
	if s.closed.Load() {
		err = ErrClosed
	} else {
		err = s.touches.flush(ctx)
	}
	op.end(err)
	return err
}

// flushTouches writes batch, one updateMany command per group of ids that
// share an expiry, and returns the touches it could not write.
func (s *Store[T]) flushTouches(ctx context.Context, batch map[string]pendingTouch) (map[string]pendingTouch, error) {
	ctx, job := s.obs.start(ctx, opTouchFlush)
	var unknown []string
	for key, p := range batch {
		if _, ok := p.target(); !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		lives, err := s.lifetimes(ctx, unknown)
		if err != nil {
			job.end(err)
			return batch, err
		}
		for _, key := range unknown {
			life, ok := lives[key]
			if !ok {
				delete(batch, key) // gone: nothing to extend
				continue
			}
			p := batch[key]
			p.life = life
			if p.life <= 0 {
				p.life = s.opts.TTL
			}
			batch[key] = p
		}
	}
	groups := make(map[time.Time][]string)
	for key, p := range batch {
		exp := p.expires(p.life, s.opts.TouchGranularity)
		groups[exp] = append(groups[exp], key)
	}
	job.flush(len(batch), len(groups))
	var (
		failed  map[string]pendingTouch
		errs    []error
		written int64
	)
	for _, exp := range slices.SortedFunc(maps.Keys(groups), time.Time.Compare) {
		ids := groups[exp]
		for chunk := range slices.Chunk(ids, maxIDsPerCommand) {
			n, err := s.db.TouchMany(ctx, chunk, exp)
			written += n
			if err != nil {
				errs = append(errs, err)
				if failed == nil {
					failed = make(map[string]pendingTouch)
				}
				for _, key := range chunk {
					failed[key] = batch[key]
				}
			}
		}
	}
	s.obs.touchesFlushed(len(batch) - len(failed))
	err := errors.Join(errs...)
	job.end(err)
	return failed, err
}

// lifetimes reads the stored lifetime of each key, in chunks.
func (s *Store[T]) lifetimes(ctx context.Context, keys []string) (map[string]time.Duration, error) {
	all := make(map[string]time.Duration, len(keys))
	for chunk := range slices.Chunk(keys, maxIDsPerCommand) {
		lives, err := s.db.TTLs(ctx, chunk)
		if err != nil {
			return nil, err
		}
		maps.Copy(all, lives)
	}
	return all, nil
}
