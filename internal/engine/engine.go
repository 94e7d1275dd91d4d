// Package engine is the part of a store that does not depend on the
// session type: it moves encoded records between a memory tier and the
// authoritative tier, orders loads against writes, buffers touches and
// owns the store's background work. The generic Store wraps it with
// encoding and decoding.
package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/stopper"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/touch"
	"github.com/sessionstore/sessionstore/ttl"
)

// MaxIDLength is the longest id, prefix included, in bytes.
const MaxIDLength = 512

var (
	// ErrInvalidID reports an id that is empty, not valid UTF-8, or too
	// long with its prefix.
	ErrInvalidID = errors.New("sessionstore: invalid session id")
	// ErrClosed reports an operation on a closed store.
	ErrClosed = errors.New("sessionstore: store is closed")
)

// Authority is the authoritative tier: the records every instance shares.
// Implementations are safe for concurrent use and bound every call by its
// context.
type Authority interface {
	// Get returns the record of id live at now, or an error wrapping
	// tier.ErrNotFound. The payload is the caller's to keep.
	Get(ctx context.Context, id string, now time.Time) (tier.Record, error)
	// Set creates or replaces the record rec.ID, whatever its version,
	// and returns the version it wrote, or -1 when it does not know it.
	Set(ctx context.Context, rec tier.Record) (int64, error)
	// Insert creates rec.ID at version 1, or fails with an error wrapping
	// tier.ErrExists and changes nothing.
	Insert(ctx context.Context, rec tier.Record) error
	// Replace writes rec, at old's version plus one, if the stored
	// record is still old (same version, and for formats that other
	// stores write without one, same payload), and reports whether it
	// was. It never creates a record.
	Replace(ctx context.Context, old, rec tier.Record) (bool, error)
	// Delete removes id; a missing id is not an error.
	Delete(ctx context.Context, id string) error
	// Len counts the records in scope live at now.
	Len(ctx context.Context, now time.Time) (int64, error)
	// All yields the records in scope live at now. An error wrapping
	// tier.ErrCorrupt concerns one record; any other ends the sequence.
	All(ctx context.Context, now time.Time) iter.Seq2[tier.Record, error]
	// Clear deletes every record in scope.
	Clear(ctx context.Context) error
	// Reap deletes every record that expired before now.
	Reap(ctx context.Context, now time.Time) (int64, error)
	touch.Server
}

// Cache is the memory tier: bounded, local, without I/O. Implementations
// are safe for concurrent use.
type Cache interface {
	// Get returns id's record, expired or not, shared: the caller must
	// not modify it.
	Get(id string) (*tier.Record, bool)
	// Put stores rec and keeps its payload, which no one modifies.
	Put(rec tier.Record)
	// Remove drops id.
	Remove(id string)
	// Keep sets value as the decoded payload of id's record, if the
	// record still holds payload (the same slice).
	Keep(id string, payload []byte, value any) bool
	// Extend moves id's expiry to expires if it is live at now and
	// expires is later.
	Extend(id string, expires, now time.Time) bool
	// Clear drops every record.
	Clear()
	// Entries returns how many records are held.
	Entries() int
	// Evictions returns how many records were evicted to make room.
	Evictions() uint64
}

// Config configures an Engine. Every field must be set (the Store's
// options fill in their defaults), except those that say what zero means.
type Config struct {
	Collection  string        // the collection's name, for logs
	Prefix      string        // prepended to every id
	TTL         time.Duration // the lifetime of a session without one of its own
	StoredTTL   bool          // sessions may carry their own lifetime
	MaxPayload  int           // the largest payload Set accepts
	MaxCacheAge time.Duration // how long memory answers without the server; negative: until expiry

	// Feed follows the changes of every writer; nil for none. It runs
	// unless Coherence is Off.
	Feed         feed.Feed
	Coherence    Coherence
	MaxStaleness time.Duration // see Coherence; unused when Off

	LoadTimeout       time.Duration
	WriteTimeout      time.Duration
	TouchInterval     time.Duration
	TouchBatchSize    int
	TouchGranularity  time.Duration
	TouchAfter        time.Duration // zero: every touch counts
	MaxPendingTouches int

	TTLIndex     ttl.Mode
	IndexTimeout time.Duration
	ReapInterval time.Duration
	// EnsureIndex sets up the TTL index in the mode TTLIndex.
	EnsureIndex func(ctx context.Context) (ttl.Decision, error)

	Now      func() time.Time
	Observer *observe.Observer

	// MaxLifetime is how long a session may live from its creation,
	// whatever touches and saves happen; zero means no limit. The
	// authority must implement Deadlines.
	MaxLifetime time.Duration
	// Owners makes writes carry the owner of Meta, and sets up the owner
	// index. The authority must implement Owners.
	Owners bool
	// HashID, when set, maps each id to the one stored (before the
	// prefix), so that the authority never sees an id.
	HashID func(id string) string
}

// Engine is the non-generic core of a store. It is safe for concurrent
// use. Close it when done.
type Engine struct {
	cfg Config
	db  Authority
	mem Cache // nil when the memory tier is off
	obs *observe.Observer
	log *slog.Logger

	loads singleflight.Group
	mu    sync.Mutex           // protects keys
	keys  map[string]*keyState // ids with a load or write in flight

	touches  *touch.Buffer
	writer   *touch.Writer
	flusher  *touch.Flusher
	flushing chan struct{} // a one-slot semaphore: one flush at a time

	bg    *stopper.Stopper
	index *indexState

	start      time.Time     // Now() when the engine was made, the origin of caught
	caught     atomic.Int64  // since(t) for the t at which the feed's last catch-up began; 0: not following
	origin     atomic.Int64  // since(t) of the first catch-up after the start or a loss
	feedFailed atomic.Bool   // the feed has been lost at least once
	asked      atomic.Int64  // since(t) of the latest time memory was asked for a live record, updated every askEvery
	wake       chan struct{} // one slot: memory was asked while the feed may be waiting for it
	paused     atomic.Bool   // the feed waited for memory to be asked and has not caught up since
	idleLost   atomic.Bool   // history rolled off while the feed waited; the next catch-up is no news

	closed atomic.Bool
}

// keyState orders the memory tier's updates for one id against the loads
// and writes in flight for it, so that a load that started before a write
// never puts older data back.
type keyState struct {
	gen     uint64 // bumped when a write starts or ends
	writers int    // writes in flight
	dirty   bool   // writes overlapped: their order on the server is unknown
	refs    int    // loads and writes holding this entry
	// writing is the record a lone write in flight stores at a known
	// version, so that the change feed can tell it from other writers'.
	writing *tier.Record
	loading time.Time // when the newest load began
}

// New returns an engine over db and mem (nil for no memory tier) and
// starts its background work. With ttl.Require it sets up the TTL index
// first, bounded by ctx and IndexTimeout, and fails if the server cannot
// keep one.
func New(ctx context.Context, cfg Config, db Authority, mem Cache) (*Engine, error) {
	e := &Engine{
		cfg:      cfg,
		db:       db,
		mem:      mem,
		obs:      cfg.Observer,
		log:      cfg.Observer.Logger(),
		keys:     make(map[string]*keyState),
		touches:  touch.NewBuffer(cfg.MaxPendingTouches, cfg.TouchGranularity),
		flushing: make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		bg:       stopper.New(),
		start:    cfg.Now(),
	}
	if err := e.capable(); err != nil {
		return nil, err
	}
	e.writer = touch.NewWriter(db, touch.WriterOptions{
		Timeout:     cfg.WriteTimeout,
		Granularity: cfg.TouchGranularity,
		DefaultTTL:  cfg.TTL,
		OnShrink: func(n, next int) {
			e.log.Warn("sessionstore: touch command timed out; sending fewer ids per command",
				"ids", n, "next", next, "timeout", cfg.WriteTimeout)
		},
	})
	e.flusher = touch.NewFlusher(cfg.TouchInterval, e.flush, func(err error) { e.obs.Background(observe.Flush, err) })
	var err error
	if e.index, err = e.startIndex(ctx); err != nil {
		return nil, err
	}
	_ = e.bg.Go("touch flusher", e.flusher.Run)
	if cfg.Feed != nil && cfg.Coherence != Off {
		_ = e.bg.Go("change feed", func(ctx context.Context) { cfg.Feed.Run(ctx, sink{e}) })
	}
	e.startOwnerIndex()
	// Last: a metric reader may collect at once, on another goroutine.
	if err := e.obs.Observe(e.gauges); err != nil {
		_ = e.bg.Stop(context.Background())
		return nil, err
	}
	return e, nil
}

func (e *Engine) gauges() observe.Gauges {
	g := observe.Gauges{Pending: int64(e.touches.Len())}
	if e.mem != nil {
		g.Entries, g.Evictions = int64(e.mem.Entries()), int64(e.mem.Evictions())
	}
	if e.cfg.Feed != nil && e.cfg.Coherence != Off {
		g.Feed = true
		g.Following, g.Lag = e.following()
		if e.paused.Load() {
			g.Following, g.Lag = false, -1 // not following, on purpose
		}
	}
	return g
}

// key validates id and returns it with the prefix.
func (e *Engine) key(id string) (string, error) {
	switch {
	case id == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidID)
	case len(e.cfg.Prefix)+len(id) > MaxIDLength:
		return "", fmt.Errorf("%w: %d bytes with the prefix, the limit is %d", ErrInvalidID, len(e.cfg.Prefix)+len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidID)
	}
	if e.cfg.HashID != nil {
		id = e.cfg.HashID(id)
	}
	return e.cfg.Prefix + id, nil
}

// open validates id and the engine's state for an operation on it.
func (e *Engine) open(id string) (string, error) {
	key, err := e.key(id)
	if err != nil {
		return "", err
	}
	if e.closed.Load() {
		return "", ErrClosed
	}
	return key, nil
}

// cached returns key's record from memory, shared, if it is live at now
// and trusted (see Coherence). untrusted reports a live record that was
// not.
func (e *Engine) cached(key string, now time.Time) (rec *tier.Record, ok, untrusted bool) {
	if e.mem == nil {
		return nil, false, false
	}
	rec, ok = e.mem.Get(key)
	if !ok || !rec.Live(now) {
		return nil, false, false
	}
	if trusted, byAge := e.trusted(rec, now); !trusted {
		return nil, false, !byAge
	}
	return rec, true, false
}

// loaded is the result of a shared load.
type loaded struct {
	rec     tier.Record
	checked bool // check ran on rec's payload
}

// Cached validates id and returns it with the prefix as key, and its
// record when memory holds it live and trusted (a hit; see Coherence),
// shared: the caller must not modify it. On a miss, call Load with key.
func (e *Engine) Cached(op *observe.Operation, id string) (rec *tier.Record, key string, hit bool, err error) {
	if key, err = e.open(id); err != nil {
		return nil, "", false, err
	}
	rec, hit, untrusted := e.cached(key, e.cfg.Now())
	if hit {
		op.Hit()
		return rec, key, true, nil
	}
	if untrusted {
		op.Untrusted()
	}
	op.Miss()
	return nil, key, false, nil
}

// Load reads key from the authoritative tier in one read shared by every
// concurrent caller. check validates the payload read before it is
// cached; it runs once per read, on the goroutine of the caller that
// started it, and mine reports that this caller's check ran on the
// returned payload, so it need not decode it again. If ctx ends first,
// Load returns at once; the shared read goes on, bounded by LoadTimeout.
func (e *Engine) Load(ctx context.Context, op *observe.Operation, key string, check func([]byte) error) (rec tier.Record, mine bool, err error) {
	if err := ctx.Err(); err != nil {
		return tier.Record{}, false, err
	}
	// started is set by the read only this caller's function runs, before
	// the result is sent on ch. res.Shared cannot tell: it is true for
	// every caller, the one that started the read too, once any joined.
	if e.cfg.Coherence != Off {
		e.forgetStaleLoad(key)
	}
	started := false
	ch := e.loads.DoChan(key, func() (any, error) {
		started = true
		return e.load(ctx, key, check)
	})
	select {
	case res := <-ch:
		op.Loaded(!started)
		if res.Err != nil {
			return tier.Record{}, false, res.Err
		}
		l := res.Val.(loaded)
		return l.rec, started && l.checked, nil
	case <-ctx.Done():
		// Say why: a bare context error does not tell a slow or
		// unreachable server from a caller that gave up.
		return tier.Record{}, false, fmt.Errorf("sessionstore: no answer from MongoDB before the context ended (the read goes on for other callers, bounded by LoadTimeout): %w", ctx.Err())
	}
}

// Keep stores value, the decoded payload of key's record, beside it in
// memory, if memory still holds that payload (the same slice, as Cached
// or Load returned it): a record written or reloaded since is left as it
// is. value must never be modified afterwards.
func (e *Engine) Keep(key string, payload []byte, value any) {
	if e.mem != nil {
		e.mem.Keep(key, payload, value)
	}
}

// Reload is Load that never answers from memory: it drops key's cached
// copy first, so that the read reaches the server.
func (e *Engine) Reload(ctx context.Context, op *observe.Operation, key string, check func([]byte) error) (tier.Record, bool, error) {
	e.mu.Lock()
	if e.mem != nil {
		e.mem.Remove(key)
	}
	e.loads.Forget(key)
	e.mu.Unlock()
	return e.Load(ctx, op, key, check)
}

// load reads key from the server for every caller waiting on it. It runs
// detached from the caller's cancellation, bounded by LoadTimeout.
func (e *Engine) load(caller context.Context, key string, check func([]byte) error) (loaded, error) {
	// A Get that missed just before an earlier load of key cached it and
	// left the group starts a load of its own: answer it from memory
	// rather than read the server again.
	if rec, ok, _ := e.cached(key, e.cfg.Now()); ok {
		return loaded{rec: *rec}, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(caller), e.cfg.LoadTimeout)
	defer cancel()
	ctx, job := e.obs.Start(ctx, observe.Load)
	e.obs.LoadStarted()
	st, gen := e.beginLoad(key)
	now := e.cfg.Now()
	rec, err := e.db.Get(ctx, key, now)
	rec.Synced = now
	if err == nil {
		// A corrupt document is reported to every caller and never cached.
		err = check(rec.Payload)
	}
	e.endLoad(key, st, gen, rec, err == nil)
	job.End(err)
	return loaded{rec: rec, checked: true}, err
}

func (e *Engine) beginLoad(key string) (*keyState, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state(key)
	st.loading = e.cfg.Now()
	return st, st.gen
}

// forgetStaleLoad keeps a Get from joining a load of key that began
// MaxStaleness ago or more: what it read may have changed since.
func (e *Engine) forgetStaleLoad(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.keys[key]; st != nil && !st.loading.IsZero() && e.cfg.Now().Sub(st.loading) >= e.cfg.MaxStaleness {
		e.loads.Forget(key)
	}
}

func (e *Engine) endLoad(key string, st *keyState, gen uint64, rec tier.Record, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok && e.mem != nil && st.gen == gen && st.writers == 0 {
		e.mem.Put(rec)
	}
	e.release(key, st)
}

// beginWrite registers a write of key; rec is what it stores, if its
// version is known.
func (e *Engine) beginWrite(key string, rec *tier.Record) *keyState {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state(key)
	st.gen++
	st.writers++
	st.writing = rec
	if st.writers > 1 {
		st.dirty = true
	}
	return st
}

// endWrite updates the memory tier after a write: with rec when the write
// succeeded alone, and by dropping the id when it failed (its outcome on
// the server is unknown) or overlapped another write.
func (e *Engine) endWrite(key string, st *keyState, rec *tier.Record, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st.gen++
	st.writers--
	st.writing = nil
	// A Get from now on must not join a load that started before the
	// write: it could return what the write replaced.
	e.loads.Forget(key)
	if e.mem != nil {
		if err != nil || st.dirty || rec == nil {
			e.mem.Remove(key)
		} else {
			e.mem.Put(*rec)
		}
	}
	if st.writers == 0 {
		st.dirty = false
	}
	e.release(key, st)
}

// state returns key's entry, holding a reference. e.mu must be held.
func (e *Engine) state(key string) *keyState {
	st := e.keys[key]
	if st == nil {
		st = &keyState{}
		e.keys[key] = st
	}
	st.refs++
	return st
}

// release drops a reference to key's entry. e.mu must be held.
func (e *Engine) release(key string, st *keyState) {
	st.refs--
	if st.refs == 0 {
		delete(e.keys, key)
	}
}

// Set stores payload as session id, on the server first and then in
// memory, which keeps payload: the caller must not modify it. The session
// expires at until, or when until is zero at now plus life (the default
// lifetime when life is zero). life is stored with the session when
// lifetimes are stored. With MaxLifetime, a live session keeps its
// deadline.
func (e *Engine) Set(ctx context.Context, id string, payload []byte, life time.Duration, until time.Time, m Meta) error {
	key, rec, err := e.record(ctx, id, payload, life, until, m)
	if err != nil {
		return err
	}
	forgot := e.touches.Forget(key) // a touch buffered before must not override this expiry
	st := e.beginWrite(key, nil)
	if rec.Deadline.IsZero() {
		rec.Rev, err = e.db.Set(ctx, rec)
	} else {
		rec, err = e.setWithin(ctx, rec)
	}
	if err != nil {
		e.touches.Restore(forgot) // the write may not have happened: keep the touch
	}
	e.endWrite(key, st, &rec, err)
	return err
}

// Create stores payload as the new session id, like Set, but never
// overwrites: if id is stored already it fails with an error wrapping
// ErrExists and changes nothing. m.Deadline, if set, is the deadline
// (no later than now plus MaxLifetime).
func (e *Engine) Create(ctx context.Context, id string, payload []byte, life time.Duration, until time.Time, m Meta) error {
	key, rec, err := e.record(ctx, id, payload, life, until, m)
	if err != nil {
		return err
	}
	rec.Rev = 1
	st := e.beginWrite(key, &rec)
	err = e.db.Insert(ctx, rec)
	if errors.Is(err, tier.ErrExists) {
		e.endWrite(key, st, nil, nil) // what is stored is not ours to cache
		return err
	}
	e.endWrite(key, st, &rec, err)
	return err
}

// Replace stores payload as session key (from Cached) if it is still
// stored as old, and fails with an error wrapping ErrConflict if it is
// not: changed or deleted since old was read. It never creates a session.
// The expiry is set as by Set, and the deadline is old's.
func (e *Engine) Replace(ctx context.Context, key string, old tier.Record, payload []byte, life time.Duration, until time.Time, m Meta) (tier.Record, error) {
	m.Deadline = old.Deadline
	rec, err := e.recordKey(ctx, key, payload, life, until, m)
	if err != nil {
		return tier.Record{}, err
	}
	rec.Rev = old.Rev + 1
	forgot := e.touches.Forget(key)
	st := e.beginWrite(key, &rec)
	ok, err := e.db.Replace(ctx, old, rec)
	if err != nil || !ok {
		e.touches.Restore(forgot) // not written, or maybe not: keep the touch
	}
	if err == nil && !ok {
		err = tier.ErrConflict
		e.endWrite(key, st, nil, nil) // memory must not answer the retry's read
		return tier.Record{}, err
	}
	e.endWrite(key, st, &rec, err)
	return rec, err
}

// record validates a write of payload as session id and returns the key
// and the record to write: expiring at until, or when until is zero at
// now plus life (the default lifetime when life is zero), owned and
// bounded as m says.
func (e *Engine) record(ctx context.Context, id string, payload []byte, life time.Duration, until time.Time, m Meta) (string, tier.Record, error) {
	key, err := e.open(id)
	if err != nil {
		return "", tier.Record{}, err
	}
	rec, err := e.recordKey(ctx, key, payload, life, until, m)
	return key, rec, err
}

// recordKey is record for a key already validated.
func (e *Engine) recordKey(ctx context.Context, key string, payload []byte, life time.Duration, until time.Time, m Meta) (tier.Record, error) {
	if e.closed.Load() {
		return tier.Record{}, ErrClosed
	}
	if len(payload) > e.cfg.MaxPayload {
		return tier.Record{}, fmt.Errorf("%w: %d bytes encoded, MaxPayload is %d", tier.ErrTooLarge, len(payload), e.cfg.MaxPayload)
	}
	if err := ctx.Err(); err != nil {
		return tier.Record{}, err
	}
	life = touch.Lifetime(life, e.cfg.TTL)
	now := e.cfg.Now()
	rec := tier.Record{ID: key, Payload: payload, Expires: touch.Expiry(now, life), Synced: now}
	if !until.IsZero() {
		rec.Expires = until.Truncate(time.Millisecond)
	}
	if e.cfg.StoredTTL {
		rec.TTL = life
	}
	e.bound(&rec, m, now)
	return rec, nil
}

// Delete removes session id from both tiers and drops any touch pending
// for it.
func (e *Engine) Delete(ctx context.Context, id string) error {
	key, err := e.open(id)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	forgot := e.touches.Forget(key)
	st := e.beginWrite(key, nil)
	err = e.db.Delete(ctx, key)
	if err != nil {
		e.touches.Restore(forgot) // the session may still be there
	}
	e.endWrite(key, st, nil, err)
	return err
}

// Touch buffers an extension of session id's expiry: to until when it is
// set (an expiry not after now does nothing), else to now plus the
// session's lifetime. It never waits for the server.
func (e *Engine) Touch(id string, until time.Time) error {
	key, err := e.open(id)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	p := touch.Pending{Until: until.Truncate(time.Millisecond)}
	if until.IsZero() {
		p.At = now
		if !e.cfg.StoredTTL {
			p.Life = e.cfg.TTL
		}
	} else if !until.After(now) {
		return nil
	}
	var cached *tier.Record
	held := false
	if e.mem != nil {
		cached, held = e.mem.Get(key)
		held = held && cached.Live(now)
	}
	var target time.Time
	if held {
		if p.Life == 0 && !p.At.IsZero() {
			p.Life = touch.Lifetime(cached.TTL, e.cfg.TTL)
		}
		t, _ := p.Target()
		target = touch.Round(t, e.cfg.TouchGranularity)
		if d := cached.Deadline; !d.IsZero() && target.After(d) {
			target, p = d, touch.Pending{Until: d} // as far as the server's filter allows
		}
		// The server's filter applies the same rule.
		if gain := target.Sub(cached.Expires); gain <= 0 || gain < e.cfg.TouchAfter {
			e.obs.TouchSkipped()
			return nil
		}
	} else if t, ok := p.Target(); ok && e.touches.Covered(key, touch.Round(t, e.cfg.TouchGranularity)) {
		// Not in memory, but that expiry is buffered or written already.
		e.obs.TouchSkipped()
		return nil
	}
	n, err := e.touches.Add(key, p)
	switch {
	case errors.Is(err, touch.ErrClosed):
		return ErrClosed
	case err != nil:
		e.obs.TouchDropped(1)
		e.obs.Background(observe.Touch, err)
		return nil
	}
	e.obs.TouchQueued()
	if n >= e.cfg.TouchBatchSize {
		e.flusher.Kick()
	}
	if held {
		e.mem.Extend(key, target, now)
	}
	return nil
}

// Flush writes every buffered touch now, each command bounded by
// WriteTimeout. Touches that fail stay buffered.
func (e *Engine) Flush(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.flush(ctx)
}

// flush writes the pending touches. It waits for a flush in progress
// first, so that when it returns nil every touch made before the call is
// written.
func (e *Engine) flush(ctx context.Context) error {
	select {
	case e.flushing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.flushing }()
	batch := e.touches.Take()
	if batch == nil {
		return nil
	}
	ctx, job := e.obs.Start(ctx, observe.TouchFlush)
	failed, res, err := e.writer.Write(ctx, batch, e.cfg.Now())
	job.Flush(len(batch), res.Groups)
	e.obs.TouchesFlushed(res.Sessions)
	job.End(err)
	if dropped := e.touches.Finish(failed); len(dropped) > 0 {
		// The in-memory copies must not outlive what the server keeps.
		if e.mem != nil {
			for _, key := range dropped {
				e.mem.Remove(key)
			}
		}
		e.obs.TouchDropped(len(dropped))
		err = errors.Join(err, fmt.Errorf("%w (%d dropped)", touch.ErrFull, len(dropped)))
	}
	return err
}

// Len counts the sessions in scope live on the server.
func (e *Engine) Len(ctx context.Context) (int64, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	return e.db.Len(ctx, e.cfg.Now())
}

// All yields the records in scope live on the server, with ids stripped
// of the prefix. See Authority.All for errors.
func (e *Engine) All(ctx context.Context) iter.Seq2[tier.Record, error] {
	return func(yield func(tier.Record, error) bool) {
		if e.closed.Load() {
			yield(tier.Record{}, ErrClosed)
			return
		}
		for rec, err := range e.db.All(ctx, e.cfg.Now()) {
			rec.ID = rec.ID[min(len(e.cfg.Prefix), len(rec.ID)):]
			if !yield(rec, err) {
				return
			}
		}
	}
}

// Clear deletes every session in scope on the server and empties memory.
func (e *Engine) Clear(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.touches.ForgetAll()
	err := e.db.Clear(ctx)
	e.forgetAll()
	return err
}

// Close refuses new work, stops the background goroutines and writes the
// touches still buffered, by ctx's deadline. It must be called once.
func (e *Engine) Close(ctx context.Context) error {
	e.closed.Store(true)
	e.touches.Close()
	var errs []error
	if err := e.bg.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.flush(ctx); err != nil {
		n := e.touches.Len()
		e.touches.ForgetAll()
		errs = append(errs, fmt.Errorf("sessionstore: close: %d touches not written: %w", n, err))
	}
	return errors.Join(errs...)
}

// Running returns the names of the background goroutines still running.
func (e *Engine) Running() []string { return e.bg.Running() }
