package scsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/alexedwards/scs/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
)

// Store is an scs session store over a *sessionstore.Store[[]byte]. It
// implements scs.Store, scs.CtxStore, scs.IterableStore and
// scs.IterableCtxStore. It is safe for concurrent use. Store does not own
// the sessionstore.Store: close that after the last request.
type Store struct {
	sessions *sessionstore.Store[[]byte]
	codec    scs.Codec
	found    *lru.Cache[string, struct{}] // tokens FindCtx found lately
}

// foundTokens bounds how many found tokens a Store remembers, so that a
// commit of one deleted meanwhile does not recreate it.
const foundTokens = 100_000

var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// Options configures a Store. A nil *Options, like the zero value, means
// the defaults.
type Options struct {
	// Codec is the codec of the SessionManager using the store (its Codec
	// field). When a Commit's bytes differ from the stored ones, Commit
	// decodes both with it and treats the commit as unchanged if the
	// deadlines and values are equal (reflect.DeepEqual): gob, scs's
	// default codec, writes maps in random order, so a session with two
	// or more values often encodes to different bytes. Bytes that
	// the codec cannot decode compare unequal. Default scs.GobCodec{},
	// the SessionManager's default.
	Codec scs.Codec
}

// New returns an scs store over sessions, which should pass bytes
// through unchanged, as a store made by [NewSessionStore] does. A nil
// opts means the defaults. New panics if sessions is nil.
func New(sessions *sessionstore.Store[[]byte], opts *Options) *Store {
	if sessions == nil {
		panic("scsstore: New needs a non-nil *sessionstore.Store[[]byte]")
	}
	found, _ := lru.New[string, struct{}](foundTokens) // cannot fail: the size is positive
	s := &Store{sessions: sessions, codec: scs.GobCodec{}, found: found}
	if opts != nil && opts.Codec != nil {
		s.codec = opts.Codec
	}
	return s
}

// NewSessionStore returns a store over coll for [New]: it is
// sessionstore.New with opts, except that a nil Codec means codec.Bytes,
// so that a document's session field holds scs's bytes as they are. opts
// is not modified; nil means the defaults. The caller owns the store and
// closes it after the last request, which writes the touches still
// buffered. The adapter passes scs's expiry with every write, so the
// store's TTL and TTLFunc options do not matter to it.
func NewSessionStore(coll *mongo.Collection, opts *sessionstore.Options[[]byte]) (*sessionstore.Store[[]byte], error) {
	var o sessionstore.Options[[]byte]
	if opts != nil {
		o = *opts
	}
	if o.Codec == nil {
		o.Codec = codec.Bytes{}
	}
	return sessionstore.New(coll, &o)
}

// Find is FindCtx with context.Background.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// FindCtx returns the data of session token. found is false, and err nil,
// when the session does not exist, has expired, has a token the store
// cannot hold (empty, too long or not UTF-8), or has a stored document
// that is not an scs session (its session field is not binary data).
// err is for failures to read.
func (s *Store) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	b, err = s.sessions.Get(ctx, token)
	switch {
	case err == nil:
		s.found.Add(token, struct{}{})
		return b, true, nil
	case errors.Is(err, sessionstore.ErrNotFound),
		errors.Is(err, sessionstore.ErrInvalidID),
		errors.Is(err, sessionstore.ErrCorrupt):
		return nil, false, nil
	}
	return nil, false, err
}

// Commit is CommitCtx with context.Background.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// CommitCtx stores b as the data of session token, expiring at expiry.
//
// When the stored session equals b (see [Options.Codec]), nothing is
// written now: the expiry is extended through the store's batched
// touches, rounded up to its TouchGranularity, and never shortened.
// Otherwise the session is written with expires set to expiry, to the
// millisecond: over the stored one only if it is still the version read
// (scs commits whole sessions, so the last commit wins), and as a new
// session only if none is stored. Reading the stored session costs
// nothing when the store's in-memory tier holds it, as it does after the
// FindCtx that loaded the session for the request, and one find
// otherwise.
//
// A session that FindCtx found and that was deleted since, by a logout
// on another instance for example, is not recreated: CommitCtx then
// writes nothing and returns nil, and the next request with the token
// finds no session. The store remembers the last 100 000 tokens found;
// a commit of one it has forgotten recreates the session, as scs's own
// stores do.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	stored, err := s.sessions.Get(ctx, token)
	switch {
	case err == nil && s.same(stored, b):
		return s.sessions.TouchUntil(ctx, token, expiry)
	case err == nil:
		_, err = s.sessions.UpdateUntil(ctx, token, func(p *[]byte) error { *p = b; return nil }, expiry)
		if errors.Is(err, sessionstore.ErrNotFound) {
			return nil // deleted while this request ran
		}
		return err
	case !errors.Is(err, sessionstore.ErrNotFound):
		return err
	case s.found.Contains(token):
		return nil // found by this request's load, deleted since
	}
	err = s.sessions.CreateUntil(ctx, token, b, expiry)
	if errors.Is(err, sessionstore.ErrExists) {
		// Created meanwhile by a concurrent request of the same token.
		_, err = s.sessions.UpdateUntil(ctx, token, func(p *[]byte) error { *p = b; return nil }, expiry)
	}
	return err
}

// same reports whether the committed bytes hold the stored session.
func (s *Store) same(stored, committed []byte) bool {
	if bytes.Equal(stored, committed) {
		return true
	}
	d1, v1, err := s.codec.Decode(stored)
	if err != nil {
		return false
	}
	d2, v2, err := s.codec.Decode(committed)
	if err != nil {
		return false
	}
	return d1.Equal(d2) && reflect.DeepEqual(v1, v2)
}

// Delete is DeleteCtx with context.Background.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// DeleteCtx removes session token, and any touch buffered for it.
// Deleting a session that does not exist, or whose token the store
// cannot hold, is not an error.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	s.found.Remove(token)
	err := s.sessions.Delete(ctx, token)
	if errors.Is(err, sessionstore.ErrInvalidID) {
		return nil
	}
	return err
}

// All is AllCtx with context.Background.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}

// AllCtx returns the data of every unexpired session, by token; the map is
// empty, not nil, when there is none. It writes the buffered touches
// first, so that a session kept alive by one is listed, then reads the
// sessions through a cursor (those with the store's prefix, when it has
// one). Documents that are not scs sessions are left out.
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	if err := s.sessions.Flush(ctx); err != nil {
		return nil, fmt.Errorf("scsstore: write pending touches before listing: %w", err)
	}
	all := make(map[string][]byte)
	for e, err := range s.sessions.All(ctx) {
		switch {
		case errors.Is(err, sessionstore.ErrCorrupt):
			continue
		case err != nil:
			return nil, err
		}
		all[e.ID] = e.Value
	}
	return all, nil
}
