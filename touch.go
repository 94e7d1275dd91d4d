package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore/tier"
)

// Touch commands carry at most maxIDsPerCommand ids, far below MongoDB's
// 16 MiB limit. A command that times out is sent again in halves, and
// halves the size of later ones, down to minIDsPerCommand: servers that
// update document by document (FerretDB v1 takes milliseconds for each)
// then still get touches written within WriteTimeout a command.
const (
	maxIDsPerCommand = 1_000
	minIDsPerCommand = 50
)

// maxTouchBackoff caps the wait between failing touch flushes.
const maxTouchBackoff = 30 * time.Second

// Touch extends session id's expiry to now plus its lifetime. It never
// shortens an expiry, never creates a session and never revives an
// expired one: touching a session that does not exist does nothing.
//
// Touch does not wait for the database. It buffers the extension and
// updates the in-memory copy; a background flusher writes buffered
// touches in batches every TouchInterval, or sooner when TouchBatchSize
// sessions are waiting. Flush writes them now. With TouchAfter set, a
// touch within TouchAfter of the session's last extension is skipped:
// at once when the session is in memory, else by the write's filter.
func (s *Store[T]) Touch(ctx context.Context, id string) error {
	_, op := s.obs.start(ctx, opTouch)
	err := s.touch(id, time.Time{})
	op.end(err)
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
	_, op := s.obs.start(ctx, opTouch)
	err := s.touch(id, expires.Truncate(time.Millisecond))
	op.end(err)
	return err
}

// touch buffers a touch of id: to until when it is set, else to now
// plus the session's lifetime.
func (s *Store[T]) touch(id string, until time.Time) error {
	key, err := s.key(id)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.now()
	p := pendingTouch{until: until}
	if until.IsZero() {
		p.at = now
		if s.opts.TTLFunc == nil {
			p.life = s.opts.TTL
		}
	} else if !until.After(now) {
		return nil
	}
	var cached tier.Record
	held := false
	if s.mem != nil {
		cached, held = s.mem.Lookup(key)
		held = held && cached.Live(now)
	}
	if held {
		if p.life == 0 && !p.at.IsZero() {
			p.life = cached.TTL
			if p.life <= 0 {
				p.life = s.opts.TTL
			}
		}
		target, _ := p.target()
		if s.skip(cached, target) {
			s.obs.touchSkipped()
			return nil
		}
	}
	queued, err := s.touches.add(key, p)
	if err != nil || !queued {
		return err
	}
	if held {
		if target, ok := p.target(); ok {
			s.mem.Extend(key, target.Truncate(time.Millisecond), now)
		}
	}
	return nil
}

// skip reports whether a touch of a cached session to target moves its
// expiry forward by nothing or by less than TouchAfter. For a touch to
// now plus the lifetime, that gain is the time since the session's last
// extension. The touch filter applies the same rule on the server.
func (s *Store[T]) skip(cached tier.Record, target time.Time) bool {
	gain := target.Sub(cached.Expires)
	return gain <= 0 || gain < s.opts.TouchAfter
}

// pendingTouch is a touch waiting to be written: a relative one (at plus
// life), an absolute one (until), or both merged.
type pendingTouch struct {
	at    time.Time     // when a relative touch was made; zero if none
	life  time.Duration // its lifetime; 0 while it must be read from the database
	until time.Time     // the latest expiry asked for by TouchUntil; zero if none
}

// target returns the expiry p asks for before rounding, or false while
// the lifetime of its relative touch is still to be read.
func (p pendingTouch) target() (time.Time, bool) {
	if !p.at.IsZero() {
		if p.life == 0 {
			return time.Time{}, false
		}
		if t := p.at.Add(p.life); t.After(p.until) {
			return t, true
		}
	}
	return p.until, true
}

// roundUp returns t rounded up to a multiple of g, at BSON's millisecond
// precision.
func roundUp(t time.Time, g time.Duration) time.Time {
	if r := t.Truncate(g); r.Before(t) {
		t = r.Add(g)
	}
	return t.Truncate(time.Millisecond)
}

// merge combines two touches of one session: the later relative touch
// and the later absolute one.
func merge(p, q pendingTouch) pendingTouch {
	if q.at.After(p.at) {
		p.at, p.life = q.at, q.life
	}
	if q.until.After(p.until) {
		p.until = q.until
	}
	return p
}

// toucher buffers touches and writes them in batches from one background
// goroutine.
type toucher struct {
	store interface {
		flushTouches(ctx context.Context, batch map[string]pendingTouch) (map[string]pendingTouch, error)
		uncache(keys []string)
	}
	obs      *observer
	interval time.Duration
	batch    int
	limit    int

	mu        sync.Mutex              // protects the fields below
	pending   map[string]pendingTouch // by key
	closed    bool                    // no touch is taken any more
	inflight  bool                    // a batch is being written
	forgotten map[string]bool         // keys deleted while a batch is written
	forgotAll bool                    // every key was cleared while a batch is written

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
		store:     s,
		obs:       s.obs,
		interval:  s.opts.TouchInterval,
		batch:     s.opts.TouchBatchSize,
		limit:     s.opts.MaxPendingTouches,
		pending:   make(map[string]pendingTouch),
		forgotten: make(map[string]bool),
		flushing:  make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		cancel:    cancel,
	}
	go t.run(ctx)
	return t
}

// errTouchDropped is reported when the pending touches are at their limit.
var errTouchDropped = errors.New("sessionstore: touch dropped: MaxPendingTouches touches are waiting for the database; is it reachable?")

// add buffers p for key, and reports whether it did: a touch beyond
// MaxPendingTouches is dropped and reported.
func (t *toucher) add(key string, p pendingTouch) (bool, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false, ErrClosed
	}
	if old, ok := t.pending[key]; ok {
		p = merge(old, p)
	} else if len(t.pending) >= t.limit {
		t.mu.Unlock()
		t.obs.touchDropped(1)
		t.obs.background(opTouch, errTouchDropped)
		return false, nil
	}
	t.pending[key] = p
	n := len(t.pending)
	t.mu.Unlock()
	t.obs.touchQueued()
	if n >= t.batch {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
	return true, nil
}

// restore puts back the touches of a batch that were not written, unless
// their session was deleted meanwhile, merged with newer ones. It
// returns the keys dropped for lack of room.
func (t *toucher) restore(batch map[string]pendingTouch) []string {
	var dropped []string
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.forgotAll {
		return nil
	}
	for key, p := range batch {
		if t.forgotten[key] {
			continue
		}
		if old, ok := t.pending[key]; ok {
			t.pending[key] = merge(p, old)
		} else if len(t.pending) < t.limit {
			t.pending[key] = p
		} else {
			dropped = append(dropped, key)
		}
	}
	return dropped
}

// forget drops the touch pending for key, and keeps a batch being
// written from restoring it.
func (t *toucher) forget(key string) {
	t.mu.Lock()
	delete(t.pending, key)
	if t.inflight {
		t.forgotten[key] = true
	}
	t.mu.Unlock()
}

func (t *toucher) forgetAll() {
	t.mu.Lock()
	clear(t.pending)
	t.forgotAll = t.inflight
	t.mu.Unlock()
}

func (t *toucher) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// flush writes every pending touch, each database call bounded by
// WriteTimeout. It waits for a flush in progress first, so that when it
// returns nil every touch made before the call is written.
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
	t.inflight = true
	t.mu.Unlock()

	failed, err := t.store.flushTouches(ctx, batch)
	var dropped []string
	if len(failed) > 0 {
		dropped = t.restore(failed)
	}
	t.mu.Lock()
	t.inflight, t.forgotAll = false, false
	clear(t.forgotten)
	t.mu.Unlock()
	if len(dropped) > 0 {
		// The in-memory copies must not outlive what the server keeps.
		t.store.uncache(dropped)
		t.obs.touchDropped(len(dropped))
		err = errors.Join(err, fmt.Errorf("%w (%d dropped)", errTouchDropped, len(dropped)))
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

// close stops taking touches and the flusher, and writes what is left by
// ctx's deadline.
func (t *toucher) close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
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
		lives, err := s.lifetimes(ctx, unknown, s.now())
		if err != nil {
			job.end(err)
			return batch, err
		}
		for _, key := range unknown {
			life, ok := lives[key]
			if !ok {
				delete(batch, key) // gone or expired: nothing to extend
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
		target, _ := p.target()
		exp := roundUp(target, s.opts.TouchGranularity)
		groups[exp] = append(groups[exp], key)
	}
	job.flush(len(batch), len(groups))
	var (
		failed map[string]pendingTouch
		errs   []error
		now    = s.now()
	)
	for _, exp := range slices.SortedFunc(maps.Keys(groups), time.Time.Compare) {
		// A command that times out is sent again once, split in
		// smaller ones, so that a slow server still gets it in this
		// flush; a server that does not answer costs at most three
		// timeouts a command.
		type command struct {
			ids   []string
			retry bool
		}
		var queue []command
		for chunk := range slices.Chunk(groups[exp], int(s.touchChunk.Load())) {
			queue = append(queue, command{ids: chunk})
		}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			cctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
			_, err := s.db.TouchMany(cctx, c.ids, exp, now)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				size := s.shrinkTouchChunk(len(c.ids))
				if !c.retry && size < len(c.ids) {
					var again []command
					for chunk := range slices.Chunk(c.ids, size) {
						again = append(again, command{ids: chunk, retry: true})
					}
					queue = append(again, queue...)
					continue
				}
			}
			if err != nil {
				errs = append(errs, err)
				if failed == nil {
					failed = make(map[string]pendingTouch)
				}
				for _, key := range c.ids {
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

// shrinkTouchChunk halves the ids of later touch commands after one of
// size n timed out, and returns the new size.
func (s *Store[T]) shrinkTouchChunk(n int) int {
	size := int64(max(n/2, minIDsPerCommand))
	if old := s.touchChunk.Load(); size < old && s.touchChunk.CompareAndSwap(old, size) {
		s.obs.logger.Warn("sessionstore: touch command timed out; sending fewer ids per command",
			"ids", n, "next", size, "timeout", s.opts.WriteTimeout)
	}
	return int(s.touchChunk.Load())
}

// lifetimes reads the stored lifetime of each key live at now, in chunks.
func (s *Store[T]) lifetimes(ctx context.Context, keys []string, now time.Time) (map[string]time.Duration, error) {
	all := make(map[string]time.Duration, len(keys))
	for chunk := range slices.Chunk(keys, maxIDsPerCommand) {
		cctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
		lives, err := s.db.TTLs(cctx, chunk, now)
		cancel()
		if err != nil {
			return nil, err
		}
		maps.Copy(all, lives)
	}
	return all, nil
}

// uncache drops keys from the in-memory tier.
func (s *Store[T]) uncache(keys []string) {
	if s.mem == nil {
		return
	}
	for _, key := range keys {
		s.mem.Remove(key)
	}
}
