package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"golang.org/x/sync/singleflight"

	"github.com/sessionstore/sessionstore/tier"
	"github.com/sessionstore/sessionstore/ttl"
)

// Store keeps sessions of type T in a MongoDB collection, the
// authoritative tier, behind a bounded in-memory cache. A Store is safe for
// concurrent use. Close it when done: it owns background goroutines.
type Store[T any] struct {
	opts   Options[T]
	policy ttl.Policy[T]
	db     *tier.Mongo
	mem    *tier.Memory  // nil when the in-memory tier is off
	client *mongo.Client // non-nil when Open made the client
	loads  singleflight.Group
	obs    *observer

	mu   sync.Mutex           // protects keys
	keys map[string]*keyState // ids with a load or write in flight

	touches    *toucher
	touchChunk atomic.Int64 // ids per touch command; shrinks on timeouts
	index      *indexer

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error // set by closeOnce
}

// keyState orders the in-memory tier's updates for one id against the
// loads and writes in flight for it, so that a load that started before a
// write never puts older data back.
type keyState struct {
	gen     uint64 // bumped when a write starts or ends
	writers int    // writes in flight
	dirty   bool   // writes overlapped: their order on the server is unknown
	refs    int    // loads and writes holding this entry
}

// New returns a store over coll. A nil opts means the defaults. The
// store does not own coll's client: Close leaves it connected.
//
// TTL index setup runs in the background unless opts.TTLIndex is
// ttl.Require, in which case New waits for it (bounded by IndexTimeout)
// and fails when the server cannot keep a TTL index.
func New[T any](coll *mongo.Collection, opts *Options[T]) (*Store[T], error) {
	return newStore(context.Background(), coll, opts, nil)
}

// Open connects to the MongoDB deployment at uri and returns a store over
// the collection opts.Collection of the database named in the uri path
// ("test" when there is none), as the npm package does. The store owns the
// client and disconnects it on Close. ctx bounds the connection check and,
// with ttl.Require, the TTL index setup.
func Open[T any](ctx context.Context, uri string, opts *Options[T]) (*Store[T], error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: invalid MongoDB URI: %w", err)
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = "test"
	}
	collName := DefaultCollection
	if opts != nil && opts.Collection != "" {
		collName = opts.Collection
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("sessionstore: connect: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("sessionstore: cannot reach MongoDB at %s (is the server running?): %w", cs.Hosts, err)
	}
	s, err := newStore(ctx, client.Database(dbName).Collection(collName), opts, client)
	if err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	s.obs.logger.Info("sessionstore: connected", "hosts", cs.Hosts, "database", dbName, "collection", collName)
	return s, nil
}

func newStore[T any](ctx context.Context, coll *mongo.Collection, o *Options[T], client *mongo.Client) (*Store[T], error) {
	if coll == nil {
		return nil, errors.New("sessionstore: New needs a non-nil *mongo.Collection")
	}
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(opts.Prefix) {
		return nil, errors.New("sessionstore: Options.Prefix is not valid UTF-8")
	}
	db, err := tier.NewMongo(coll, &tier.MongoOptions{
		Format:            opts.Codec.Format(),
		Prefix:            opts.Prefix,
		TouchWriteConcern: opts.TouchWriteConcern,
		MinExtension:      opts.TouchAfter,
	})
	if err != nil {
		return nil, err
	}
	s := &Store[T]{
		opts:   opts,
		policy: ttl.Policy[T]{Default: opts.TTL, Func: opts.TTLFunc},
		db:     db,
		client: client,
		keys:   make(map[string]*keyState),
	}
	if opts.CacheSize > 0 {
		s.mem = tier.NewMemory(opts.CacheSize)
	}
	s.obs, err = newObserver(coll, opts.TracerProvider, opts.MeterProvider, opts.Logger, opts.OnError)
	if err != nil {
		return nil, err
	}
	s.touchChunk.Store(maxIDsPerCommand)
	s.touches = newToucher(s)
	// Only now that the fields s.gauges reads are set: a reader may
	// collect at once, on another goroutine.
	if err := s.obs.observe(s.gauges); err != nil {
		s.touches.stop()
		return nil, err
	}
	s.index, err = startIndexer(ctx, s)
	if err != nil {
		s.touches.stop()
		s.obs.close()
		return nil, err
	}
	return s, nil
}

// key validates id and returns it with the prefix.
func (s *Store[T]) key(id string) (string, error) {
	switch {
	case id == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidID)
	case len(s.opts.Prefix)+len(id) > MaxIDLength:
		return "", fmt.Errorf("%w: %d bytes with the prefix, the limit is %d", ErrInvalidID, len(s.opts.Prefix)+len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidID)
	}
	return s.opts.Prefix + id, nil
}

func (s *Store[T]) now() time.Time { return s.opts.Clock.Now() }

// decode turns a record into a value the caller owns.
// A codec that panics is reported as a decoding error.
func (s *Store[T]) decode(rec tier.Record) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: %T panicked decoding the session: %v", ErrCorrupt, s.opts.Codec, r)
		}
	}()
	if err := s.opts.Codec.Decode(rec.Payload, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: cannot decode the session with %T: %v", ErrCorrupt, s.opts.Codec, err)
	}
	return v, nil
}

// cached returns key's record from memory if it is live at now and was
// read from or written to the database less than MaxCacheAge ago.
func (s *Store[T]) cached(key string, now time.Time) (tier.Record, bool) {
	if s.mem == nil {
		return tier.Record{}, false
	}
	rec, ok := s.mem.Lookup(key)
	if !ok || !rec.Live(now) || (s.opts.MaxCacheAge > 0 && now.Sub(rec.Fetched) >= s.opts.MaxCacheAge) {
		return tier.Record{}, false
	}
	return rec, true
}

// Get returns the session id. It returns an error wrapping ErrNotFound
// when the session does not exist or has expired.
//
// A session in memory, read from or written to the database less than
// MaxCacheAge ago, is decoded from there; the value returned is the
// caller's own, and changing it changes nothing stored. Otherwise Get
// reads the database, and concurrent Gets of one id share a single read.
// If ctx ends first, Get returns at once; the shared read goes on for the
// other callers, bounded by LoadTimeout.
func (s *Store[T]) Get(ctx context.Context, id string) (T, error) {
	ctx, op := s.obs.start(ctx, opGet)
	v, err := s.get(ctx, &op, id)
	op.end(err)
	return v, err
}

func (s *Store[T]) get(ctx context.Context, op *operation, id string) (T, error) {
	var zero T
	key, err := s.key(id)
	if err != nil {
		return zero, err
	}
	if s.closed.Load() {
		return zero, ErrClosed
	}
	if rec, ok := s.cached(key, s.now()); ok {
		op.hit()
		return s.decode(rec)
	}
	op.miss()
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	// started is set by the read only this caller's function runs, before
	// the result is sent on ch. res.Shared cannot tell: it is true for
	// every caller, the one that started the read too, once any joined.
	started := false
	ch := s.loads.DoChan(key, func() (any, error) {
		started = true
		return s.load(ctx, key)
	})
	select {
	case res := <-ch:
		op.loaded(!started)
		if res.Err != nil {
			return zero, res.Err
		}
		return s.decode(res.Val.(tier.Record))
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// load reads key from the database for every caller waiting on it. It
// runs detached from the caller's cancellation, bounded by LoadTimeout.
func (s *Store[T]) load(caller context.Context, key string) (tier.Record, error) {
	// A Get that missed just before an earlier load of key cached it and
	// left the group starts a load of its own: answer it from memory
	// rather than read the database again.
	if rec, ok := s.cached(key, s.now()); ok {
		return rec, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(caller), s.opts.LoadTimeout)
	defer cancel()
	ctx, job := s.obs.start(ctx, opLoad)
	s.obs.loadStarted()
	st, gen := s.beginLoad(key)
	now := s.now()
	rec, err := s.db.Get(ctx, key, now)
	rec.Fetched = now
	if err == nil {
		// Check the payload before caching it: a corrupt document is
		// reported to every caller and never cached.
		if _, derr := s.decode(rec); derr != nil {
			err = derr
		}
	}
	s.endLoad(key, st, gen, rec, err == nil)
	job.end(err)
	return rec, err
}

func (s *Store[T]) beginLoad(key string) (*keyState, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(key)
	return st, st.gen
}

func (s *Store[T]) endLoad(key string, st *keyState, gen uint64, rec tier.Record, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok && s.mem != nil && st.gen == gen && st.writers == 0 {
		s.mem.Put(rec)
	}
	s.release(key, st)
}

func (s *Store[T]) beginWrite(key string) *keyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(key)
	st.gen++
	st.writers++
	if st.writers > 1 {
		st.dirty = true
	}
	return st
}

// endWrite updates the in-memory tier after a write: with rec when the
// write succeeded alone, and by dropping the id when it failed (its
// outcome on the server is unknown) or overlapped another write.
func (s *Store[T]) endWrite(key string, st *keyState, rec *tier.Record, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.gen++
	st.writers--
	// A Get from now on must not join a load that started before the
	// write: it could return what the write replaced.
	s.loads.Forget(key)
	if s.mem != nil {
		if err != nil || st.dirty || rec == nil {
			s.mem.Remove(key)
		} else {
			s.mem.Put(*rec)
		}
	}
	if st.writers == 0 {
		st.dirty = false
	}
	s.release(key, st)
}

// state returns key's entry, holding a reference. s.mu must be held.
func (s *Store[T]) state(key string) *keyState {
	st := s.keys[key]
	if st == nil {
		st = &keyState{}
		s.keys[key] = st
	}
	st.refs++
	return st
}

// release drops a reference to key's entry. s.mu must be held.
func (s *Store[T]) release(key string, st *keyState) {
	st.refs--
	if st.refs == 0 {
		delete(s.keys, key)
	}
}

// Set stores v as session id, in the database first and then in memory,
// and sets its expiry to now plus its lifetime. If the write fails, the
// new value is not cached, and a cached copy is dropped: after a timeout
// the server may or may not have applied the write, and the next Get
// reads what it holds.
func (s *Store[T]) Set(ctx context.Context, id string, v T) error {
	ctx, op := s.obs.start(ctx, opSet)
	err := s.set(ctx, id, v, time.Time{})
	op.end(err)
	return err
}

// SetUntil is Set with an expiry chosen by the caller: session id expires
// at expires, kept at the millisecond precision of a BSON date, instead
// of now plus its lifetime. It is for callers that decide expiries
// themselves, such as scs, which passes an absolute one to every Commit.
// A zero expires means now plus the lifetime, as with Set; an expiry not
// after now stores a session that reads as missing. The lifetime used by
// a later Touch is the same as after Set.
func (s *Store[T]) SetUntil(ctx context.Context, id string, v T, expires time.Time) error {
	ctx, op := s.obs.start(ctx, opSet)
	err := s.set(ctx, id, v, expires)
	op.end(err)
	return err
}

// set stores v with the expiry until, or now plus its lifetime when until
// is zero.
func (s *Store[T]) set(ctx context.Context, id string, v T, until time.Time) error {
	key, err := s.key(id)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	payload, err := s.opts.Codec.Encode(v)
	if err != nil {
		return fmt.Errorf("sessionstore: cannot encode the session with %T: %w", s.opts.Codec, err)
	}
	if len(payload) > s.opts.MaxPayload {
		return fmt.Errorf("%w: %d bytes encoded, MaxPayload is %d", ErrTooLarge, len(payload), s.opts.MaxPayload)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	life := s.policy.For(v)
	now := s.now()
	rec := tier.Record{ID: key, Payload: payload, Expires: ttl.Expiry(now, life), Fetched: now}
	if !until.IsZero() {
		rec.Expires = until.Truncate(time.Millisecond)
	}
	if s.opts.TTLFunc != nil {
		rec.TTL = life
	}
	s.touches.forget(key) // a touch buffered before must not override this expiry
	st := s.beginWrite(key)
	err = s.db.Set(ctx, rec)
	s.endWrite(key, st, &rec, err)
	return err
}

// Delete removes session id from both tiers and drops any touch pending
// for it. Deleting a missing session is not an error.
func (s *Store[T]) Delete(ctx context.Context, id string) error {
	ctx, op := s.obs.start(ctx, opDelete)
	err := s.delete(ctx, id)
	op.end(err)
	return err
}

func (s *Store[T]) delete(ctx context.Context, id string) error {
	key, err := s.key(id)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.touches.forget(key)
	st := s.beginWrite(key)
	err = s.db.Delete(ctx, key)
	s.endWrite(key, st, nil, err)
	return err
}

// Len returns the number of unexpired sessions in the database (those
// with the store's prefix, when it has one). Touches still buffered are
// not counted: call Flush first to include sessions kept alive only by
// them.
func (s *Store[T]) Len(ctx context.Context) (int64, error) {
	ctx, op := s.obs.start(ctx, opLen)
	n, err := s.length(ctx)
	op.end(err)
	return n, err
}

func (s *Store[T]) length(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.db.Len(ctx, s.now())
}

// Entry is one session yielded by All.
type Entry[T any] struct {
	ID      string // without the store's prefix
	Value   T
	Expires time.Time
}

// All streams the unexpired sessions of the database (those with the
// store's prefix, when it has one) through a cursor, never loading the
// collection into memory. A session that cannot be decoded yields an
// error wrapping ErrCorrupt, with its ID set, and the sequence goes on;
// any other error ends it. Sessions read by All are not cached. Touches
// still buffered are not seen: call Flush first to include them.
func (s *Store[T]) All(ctx context.Context) iter.Seq2[Entry[T], error] {
	return func(yield func(Entry[T], error) bool) {
		ctx, op := s.obs.start(ctx, opAll)
		var err error
		defer func() { op.end(err) }()
		if s.closed.Load() {
			err = ErrClosed
			yield(Entry[T]{}, err)
			return
		}
		for rec, rerr := range s.db.All(ctx, s.now()) {
			e := Entry[T]{ID: rec.ID[min(len(s.opts.Prefix), len(rec.ID)):], Expires: rec.Expires}
			if rerr == nil {
				e.Value, rerr = s.decode(rec)
			}
			if rerr != nil && !errors.Is(rerr, ErrCorrupt) {
				err = rerr
			}
			if !yield(e, rerr) || err != nil {
				return
			}
		}
	}
}

// Clear deletes every session of the database (those with the store's
// prefix, when it has one) and empties the in-memory tier.
func (s *Store[T]) Clear(ctx context.Context) error {
	ctx, op := s.obs.start(ctx, opClear)
	err := s.clear(ctx)
	op.end(err)
	return err
}

func (s *Store[T]) clear(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.touches.forgetAll()
	err := s.db.Clear(ctx)
	s.mu.Lock()
	for key, st := range s.keys {
		st.dirty = st.writers > 0
		st.gen++
		s.loads.Forget(key)
	}
	if s.mem != nil {
		_ = s.mem.Clear(ctx)
	}
	s.mu.Unlock()
	return err
}

// Close writes every pending touch, stops the store's background work and,
// when Open made the client, disconnects it. It returns by ctx's deadline
// even if the server does not answer; touches not written by then are
// lost and reported in the error. Close is idempotent; every other method
// returns ErrClosed afterwards.
func (s *Store[T]) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		ctx, op := s.obs.start(ctx, opClose)
		s.closed.Store(true)
		var errs []error
		s.index.stop()
		if err := s.touches.close(ctx); err != nil {
			errs = append(errs, err)
		}
		if s.client != nil {
			if err := s.client.Disconnect(ctx); err != nil {
				errs = append(errs, fmt.Errorf("sessionstore: disconnect: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
		op.end(s.closeErr)
		s.obs.logger.Info("sessionstore: closed", "collection", s.db.Collection().Name())
		s.obs.close()
	})
	return s.closeErr
}

// Collection returns the collection the store keeps its sessions in.
func (s *Store[T]) Collection() *mongo.Collection { return s.db.Collection() }
