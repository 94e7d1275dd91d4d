package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/ttlindex"
	"github.com/sessionstore/sessionstore/ttl"
)

// Store keeps sessions of type T in a MongoDB collection, the
// authoritative tier, behind a bounded in-memory cache. A Store is safe for
// concurrent use. Close it when done: it owns background goroutines.
type Store[T any] struct {
	codec    codec.Codec[T]
	ttlFunc  func(T) time.Duration
	attempts int // of an Update
	eng      *engine.Engine
	obs      *observe.Observer
	coll     *mongo.Collection
	client   *mongo.Client // non-nil when Open made the client
	owner    func(T) string
	maxLife  time.Duration // Options.MaxLifetime

	closeOnce sync.Once
	closeErr  error // set by closeOnce

	// clone copies the decoded values memory keeps; nil when it keeps
	// none (Options.Clone).
	clone func(T) T
}

var (
	_ engine.Authority = (*tier.Mongo)(nil)
	_ engine.Cache     = (*tier.Memory)(nil)
)

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
	s.obs.Logger().Info("sessionstore: connected", "hosts", cs.Hosts, "database", dbName, "collection", collName)
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
	sec, err := newSecurity(&opts)
	if err != nil {
		return nil, err
	}
	db, err := tier.NewMongo(coll, &tier.MongoOptions{
		Format:            sec.format(opts.Codec.Format()),
		Prefix:            opts.Prefix,
		TouchWriteConcern: opts.TouchWriteConcern,
		TouchAfter:        opts.TouchAfter,
		Owners:            opts.Owner != nil,
		Seal:              sec.ring,
	})
	if err != nil {
		return nil, err
	}
	obs, err := observe.New(coll.Database().Name(), coll.Name(), opts.TracerProvider, opts.MeterProvider, opts.Logger, opts.OnError)
	if err != nil {
		return nil, err
	}
	var mem engine.Cache
	var changes feed.Feed
	if opts.CacheSize > 0 {
		mem = tier.NewMemory(opts.CacheSize)
		if opts.Coherence != CoherenceOff {
			changes = &feed.Auto{
				Coll:     db.Collection(),
				Interval: opts.MaxStaleness / 4,
				// A read slower than this has left memory untrusted anyway.
				Timeout: max(2*opts.MaxStaleness, 2*time.Second),
				Payload: db.PayloadOf,
				Now:     opts.Clock.Now,
				Picked: func(mechanism string) {
					opts.Logger.Info("sessionstore: following changes of other writers", "collection", coll.Name(), "feed", mechanism)
				},
			}
		}
	}
	eng, err := engine.New(ctx, engine.Config{
		Collection:        coll.Name(),
		Prefix:            opts.Prefix,
		TTL:               opts.TTL,
		StoredTTL:         opts.TTLFunc != nil,
		MaxPayload:        opts.MaxPayload,
		MaxCacheAge:       opts.MaxCacheAge,
		Feed:              changes,
		Coherence:         engine.Coherence(opts.Coherence),
		MaxStaleness:      opts.MaxStaleness,
		LoadTimeout:       opts.LoadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		TouchInterval:     opts.TouchInterval,
		TouchBatchSize:    opts.TouchBatchSize,
		TouchGranularity:  opts.TouchGranularity,
		TouchAfter:        opts.TouchAfter,
		MaxPendingTouches: opts.MaxPendingTouches,
		TTLIndex:          opts.TTLIndex,
		IndexTimeout:      opts.IndexTimeout,
		ReapInterval:      opts.ReapInterval,
		EnsureIndex: func(ctx context.Context) (ttl.Decision, error) {
			return ttlindex.Ensure(ctx, ttlindex.DatabaseCommander(coll.Database()), coll.Name(), opts.TTLIndex)
		},
		Now:         opts.Clock.Now,
		Observer:    obs,
		MaxLifetime: opts.MaxLifetime,
		Owners:      opts.Owner != nil,
		HashID:      sec.hashID(),
	}, db, mem)
	if err != nil {
		obs.Close()
		return nil, err
	}
	return &Store[T]{codec: opts.Codec, ttlFunc: opts.TTLFunc, attempts: opts.UpdateAttempts, eng: eng, obs: obs, coll: coll, client: client,
		owner: opts.Owner, maxLife: opts.MaxLifetime, clone: opts.Clone}, nil
}

// decode turns a payload into a value the caller owns.
// A codec that panics is reported as a decoding error.
func (s *Store[T]) decode(payload []byte) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: %T panicked decoding the session: %v", ErrCorrupt, s.codec, r)
		}
	}()
	if err := s.codec.Decode(payload, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: cannot decode the session with %T: %v", ErrCorrupt, s.codec, err)
	}
	return v, nil
}

// lifetime returns v's own lifetime, or zero for the default.
func (s *Store[T]) lifetime(v T) time.Duration {
	if s.ttlFunc == nil {
		return 0
	}
	return max(s.ttlFunc(v), 0)
}

// Get returns the session id. It returns an error wrapping ErrNotFound
// when the session does not exist or has expired.
//
// A session in memory is decoded from there while memory is trusted
// (see Coherence and MaxCacheAge), or with Options.Clone cloned from the
// decoded value kept there; the value returned is the caller's own, and
// changing it changes nothing stored. Otherwise Get
// reads the database, and concurrent Gets of one id share a single read.
// If ctx ends first, Get returns at once; the shared read goes on for the
// other callers, bounded by LoadTimeout.
func (s *Store[T]) Get(ctx context.Context, id string) (v T, err error) {
	ctx, op := s.obs.Start(ctx, observe.Get)
	err = s.get(ctx, &op, id, &v)
	op.End(err)
	return v, err
}

// get sets *v to session id, and leaves it as it is on an error. The
// value goes by pointer all the way, so that it is copied once.
func (s *Store[T]) get(ctx context.Context, op *observe.Operation, id string, v *T) error {
	rec, key, hit, err := s.eng.Cached(op, id)
	switch {
	case err != nil:
		return err
	case hit:
		return s.value(key, rec, v)
	}
	return s.load(ctx, op, key, v)
}

// load answers a Get that missed memory, as get does.
func (s *Store[T]) load(ctx context.Context, op *observe.Operation, key string, v *T) error {
	var decoded T
	rec, mine, err := s.eng.Load(ctx, op, key, func(p []byte) error {
		var err error
		decoded, err = s.decode(p)
		return err
	})
	switch {
	case err != nil:
		return err
	case mine: // decoded is rec.Payload's
		*v = decoded
		s.keep(key, rec.Payload, decoded)
		return nil
	}
	return s.value(key, &rec, v)
}

// value sets *v to the caller's own copy of rec, a record of key from
// memory or from a shared load: a clone of the decoded value memory keeps
// beside the payload, or else the payload decoded, which memory then
// keeps when s clones. It leaves *v as it is on an error.
func (s *Store[T]) value(key string, rec *tier.Record, v *T) error {
	if s.clone != nil {
		if kept, ok := rec.Value.(*T); ok {
			*v = s.clone(*kept)
			return nil
		}
	}
	d, err := s.decode(rec.Payload)
	if err != nil {
		return err
	}
	*v = d
	s.keep(key, rec.Payload, d)
	return nil
}

// keep gives memory a clone of v, the decoding of payload, to keep beside
// key's record if it still holds payload. The caller keeps v.
func (s *Store[T]) keep(key string, payload []byte, v T) {
	if s.clone != nil {
		kept := s.clone(v)
		s.eng.Keep(key, payload, &kept)
	}
}

// Set stores v as session id, in the database first and then in memory,
// and sets its expiry to now plus its lifetime. It creates or replaces,
// whatever is stored: to save a session that was read, use Update, which
// never overwrites a change it did not see nor recreates a deleted
// session. If the write fails, the
// new value is not cached, and a cached copy is dropped: after a timeout
// the server may or may not have applied the write, and the next Get
// reads what it holds.
func (s *Store[T]) Set(ctx context.Context, id string, v T) error {
	ctx, op := s.obs.Start(ctx, observe.Set)
	err := s.set(ctx, id, v, time.Time{})
	op.End(err)
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
	ctx, op := s.obs.Start(ctx, observe.Set)
	err := s.set(ctx, id, v, expires)
	op.End(err)
	return err
}

// set stores v with the expiry until, or now plus its lifetime when until
// is zero.
func (s *Store[T]) set(ctx context.Context, id string, v T, until time.Time) error {
	payload, err := s.encode(v)
	if err != nil {
		return err
	}
	return s.eng.Set(ctx, id, payload, s.lifetime(v), until, s.meta(v, time.Time{}))
}

// Delete removes session id from both tiers and drops any touch pending
// for it. Deleting a missing session is not an error.
func (s *Store[T]) Delete(ctx context.Context, id string) error {
	ctx, op := s.obs.Start(ctx, observe.Delete)
	err := s.eng.Delete(ctx, id)
	op.End(err)
	return err
}

// Len returns the number of unexpired sessions in the database (those
// with the store's prefix, when it has one). Touches still buffered are
// not counted: call Flush first to include sessions kept alive only by
// them.
func (s *Store[T]) Len(ctx context.Context) (int64, error) {
	ctx, op := s.obs.Start(ctx, observe.Len)
	n, err := s.eng.Len(ctx)
	op.End(err)
	return n, err
}

// Entry is one session yielded by All.
type Entry[T any] struct {
	ID      string // without the store's prefix; with Options.IDHashKey, the stored hash
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
	return s.stream(ctx, observe.All, s.eng.All)
}

// stream yields the records of recs decoded, as All does, traced as an
// operation of kind k.
func (s *Store[T]) stream(ctx context.Context, k observe.Kind, recs func(context.Context) iter.Seq2[tier.Record, error]) iter.Seq2[Entry[T], error] {
	return func(yield func(Entry[T], error) bool) {
		ctx, op := s.obs.Start(ctx, k)
		var err error
		defer func() { op.End(err) }()
		for rec, rerr := range recs(ctx) {
			e := Entry[T]{ID: rec.ID, Expires: rec.Expires}
			if rerr == nil {
				e.Value, rerr = s.decode(rec.Payload)
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
	ctx, op := s.obs.Start(ctx, observe.Clear)
	err := s.eng.Clear(ctx)
	op.End(err)
	return err
}

// Close writes every pending touch, stops the store's background work and,
// when Open made the client, disconnects it. It returns by ctx's deadline
// even if the server does not answer; touches not written by then are
// lost and reported in the error. Close is idempotent; every other method
// returns ErrClosed afterwards.
func (s *Store[T]) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		ctx, op := s.obs.Start(ctx, observe.Close)
		errs := []error{s.eng.Close(ctx)}
		if s.client != nil {
			if err := s.client.Disconnect(ctx); err != nil {
				errs = append(errs, fmt.Errorf("sessionstore: disconnect: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
		op.End(s.closeErr)
		s.obs.Logger().Info("sessionstore: closed", "collection", s.coll.Name())
		s.obs.Close()
	})
	return s.closeErr
}

// Collection returns the collection the store keeps its sessions in.
func (s *Store[T]) Collection() *mongo.Collection { return s.coll }
