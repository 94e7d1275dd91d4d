package gorillastore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
)

// Store is a gorilla/sessions store over a *sessionstore.Store[[]byte]:
// the session id travels in a cookie signed (and, with a block key,
// encrypted) by securecookie, and the session's Values live in MongoDB,
// behind the store's in-memory tier. It implements [sessions.Store] and is
// safe for concurrent use; a *sessions.Session it returns belongs to one
// request, as with gorilla's own stores. Store does not own the
// sessionstore.Store: close that after the last request.
type Store struct {
	// Options are the cookie options that New copies into every session:
	// a session's Options.MaxAge sets both its cookie's Max-Age and its
	// lifetime in the database. Change them before serving requests, or
	// through [Store.MaxAge].
	Options *sessions.Options

	sessions *sessionstore.Store[[]byte]
	codecs   []securecookie.Codec
	codec    Codec
}

var _ sessions.Store = (*Store)(nil)

// Options configures a Store. A nil *Options, like the zero value, means
// the defaults.
type Options struct {
	// Codec encodes sessions' Values for the database. Default [Gob], as
	// gorilla's own stores use.
	Codec Codec
}

// DefaultMaxAge is the MaxAge of a new Store's cookie options, 30 days in
// seconds, as in gorilla's stores.
const DefaultMaxAge = 86400 * 30

// newIDAttempts bounds how many fresh ids a Save tries for a new session.
const newIDAttempts = 3

// New returns a store over store, which should pass bytes through
// unchanged, as a store made by [NewSessionStore] does. keyPairs are
// securecookie's hash and block keys, in pairs, as for gorilla's stores:
// the first pair signs (and, with a block key of 16, 24 or 32 bytes,
// encrypts) new cookies, and every pair is tried when a cookie is read,
// so that keys can be rotated by putting a new pair first and keeping the
// old one until its cookies have expired. The cookie options default to
// Path "/", MaxAge [DefaultMaxAge], HttpOnly and SameSite Lax. A nil opts
// means the defaults.
//
// New returns an error if sessions is nil or the keys are unusable: no
// pair, an empty hash key, or a block key of another length.
func New(store *sessionstore.Store[[]byte], opts *Options, keyPairs ...[]byte) (*Store, error) {
	if store == nil {
		return nil, errors.New("gorillastore: New needs a non-nil *sessionstore.Store[[]byte]")
	}
	if len(keyPairs) == 0 {
		return nil, errors.New("gorillastore: New needs at least one hash key to sign session cookies")
	}
	codecs := securecookie.CodecsFromPairs(keyPairs...)
	for i, c := range codecs {
		// securecookie reports bad keys only when it encodes.
		if _, err := c.Encode("gorillastore", "check"); err != nil {
			return nil, fmt.Errorf("gorillastore: key pair %d cannot sign cookies (the hash key must not be empty; a block key has 16, 24 or 32 bytes): %w", i+1, err)
		}
	}
	st := &Store{
		Options: &sessions.Options{
			Path:     "/",
			MaxAge:   DefaultMaxAge,
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		},
		sessions: store,
		codecs:   codecs,
		codec:    Gob{},
	}
	if opts != nil && opts.Codec != nil {
		st.codec = opts.Codec
	}
	st.MaxAge(st.Options.MaxAge)
	return st, nil
}

// NewSessionStore returns a store over coll for [New]: it is
// sessionstore.New with opts, except that a nil Codec means codec.Bytes,
// so that a document's session field holds the encoded Values as they
// are. opts is not modified; nil means the defaults. The caller owns the
// store and closes it after the last request, which writes the touches
// still buffered. The store's TTL is the lifetime of sessions whose
// MaxAge is 0 (browser-session cookies); a positive MaxAge sets its own.
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

// MaxAge sets the MaxAge of the store's cookie options, and the age after
// which securecookie refuses a cookie's signature, as gorilla's stores'
// MaxAge does. A session's own Options.MaxAge still decides its cookie and
// its lifetime in the database. Call it before serving requests.
func (st *Store) MaxAge(age int) {
	st.Options.MaxAge = age
	for _, c := range st.codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(age)
		}
	}
}

// Get returns the session called name of request r, through gorilla's
// registry: the first Get of a name in a request calls [Store.New], later
// ones return the same session and error.
func (st *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New returns the session called name of request r without putting it in
// the registry. It is never nil. With no cookie called name, or a cookie
// naming a session that does not exist or has expired, the session is new
// (IsNew, no ID) and the error nil.
//
// Otherwise the session is read from the store: from memory when it holds
// it, else with one find. A cookie that securecookie refuses (a signature
// by none of the keys, or older than MaxAge) gives a new session and
// securecookie's error, wrapped, as gorilla's stores do; so does a stored
// session that the codec cannot decode. If the store cannot be read, New
// returns a new session and the error, and [Store.Save] refuses to save
// that session, so that a failure does not replace the stored one.
//
// New keeps what it loaded in r's context, as gorilla's registry does, so
// that Save knows what the request changed: call Save with the same
// request.
func (st *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	s := sessions.NewSession(st, name)
	opts := *st.Options
	s.Options = &opts
	s.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return s, nil // no cookie: a new session
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, st.codecs...); err != nil {
		return s, fmt.Errorf("gorillastore: session cookie %q refused, starting a new session: %w", name, err)
	}
	payload, err := st.sessions.Get(r.Context(), id)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound), errors.Is(err, sessionstore.ErrInvalidID):
		return s, nil
	case errors.Is(err, sessionstore.ErrCorrupt):
		return s, fmt.Errorf("gorillastore: session %q: the stored document is not a session of this store, starting a new session: %w", name, err)
	case err != nil:
		requestStates(r, true).of(s).failed = err
		return s, fmt.Errorf("gorillastore: load session %q: %w", name, err)
	}
	values, err := st.codec.Decode(payload)
	if err != nil {
		return s, fmt.Errorf("gorillastore: session %q cannot be decoded, starting a new session: %w", name, err)
	}
	s.ID, s.Values, s.IsNew = id, values, false
	ld := requestStates(r, true).of(s)
	ld.id, ld.payload = id, payload
	return s, nil
}

// Save stores session s and adds its cookie to w.
//
// With Options.MaxAge < 0 it deletes the session from the store, at once
// and on every instance, and sends a cookie that the browser deletes; the
// session's ID is then "", so that saved again it is a new session.
// Otherwise the session expires MaxAge seconds from now, in the database
// and in the cookie alike; with MaxAge 0 the cookie lasts for the browser
// session and the stored session for the store's TTL.
//
// A session loaded by New and unchanged since (its Values deep-equal what
// was loaded) is not written: its expiry is extended through the store's
// batched touches, which never shorten an expiry. A changed session is
// written on condition that nobody saved it since it was loaded; if
// somebody did, Save applies this request's changes to the stored values
// and tries again (see the package documentation), so that concurrent
// requests do not lose each other's changes. A loaded session deleted
// meanwhile, by a logout on any instance, stays deleted: Save writes
// nothing, sends a cookie that the browser deletes, sets ID to "" and
// returns nil.
//
// A new session gets a random 128-bit id and is created, never
// overwriting another. Setting ID to "" on a loaded session before Save
// gives it a new id and deletes the old one (do it at login); an ID set by
// the application is stored as it is, creating or replacing.
//
// Save returns an error and sends no cookie if the session could not be
// loaded (see New) or its Values cannot be encoded, writing nothing then,
// or if the store fails.
func (st *Store) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	ctx := r.Context()
	rs := requestStates(r, true)
	ld := rs.of(s)
	if ld.failed != nil {
		return fmt.Errorf("gorillastore: session %q not saved: it could not be loaded (%v), and saving it would replace the stored one", s.Name(), ld.failed)
	}
	opts := s.Options
	if opts == nil {
		opts = st.Options
	}
	if opts.MaxAge < 0 {
		if err := st.delete(ctx, s, ld); err != nil {
			return err
		}
		s.ID = "" // saved again, it is a new session
		http.SetCookie(w, sessions.NewCookie(s.Name(), "", opts))
		return nil
	}
	var until time.Time // zero: the store's TTL
	if opts.MaxAge > 0 {
		until = time.Now().Add(time.Duration(opts.MaxAge) * time.Second)
	}
	var err error
	switch {
	case ld.id != "" && s.ID == ld.id:
		err = st.update(ctx, s, ld, until)
	case s.ID == "":
		err = st.create(ctx, s, ld, until)
	default:
		err = st.replace(ctx, s, ld, until)
	}
	if errors.Is(err, errDeleted) {
		// Deleted since this request loaded it: never recreate it.
		rs.forget(s)
		s.ID = "" // saved again, it is a new session
		expired := *opts
		expired.MaxAge = -1
		http.SetCookie(w, sessions.NewCookie(s.Name(), "", &expired))
		return nil
	}
	if err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(s.Name(), s.ID, st.codecs...)
	if err != nil {
		return fmt.Errorf("gorillastore: sign the cookie of session %q: %w", s.Name(), err)
	}
	http.SetCookie(w, sessions.NewCookie(s.Name(), encoded, opts))
	return nil
}

// errDeleted reports a loaded session deleted before this request saved
// it.
var errDeleted = errors.New("gorillastore: session deleted meanwhile")

// delete removes the session's stored ids: the one it was loaded with
// and, if the application set another, that one.
func (st *Store) delete(ctx context.Context, s *sessions.Session, ld *state) error {
	ids := []string{ld.id}
	if s.ID != ld.id {
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if err := st.sessions.Delete(ctx, id); err != nil && !errors.Is(err, sessionstore.ErrInvalidID) {
			return fmt.Errorf("gorillastore: delete session %q: %w", s.Name(), err)
		}
	}
	*ld = state{}
	return nil
}

// create stores a new session under a fresh id, and deletes the id it was
// loaded with, if any.
func (st *Store) create(ctx context.Context, s *sessions.Session, ld *state, until time.Time) error {
	payload, err := st.codec.Encode(s.Values)
	if err != nil {
		return err
	}
	for range newIDAttempts {
		id := rand.Text()
		err := st.sessions.CreateUntil(ctx, id, payload, until)
		if errors.Is(err, sessionstore.ErrExists) {
			continue // 128 random bits collided: a bug or an attack, never chance
		}
		if err != nil {
			return fmt.Errorf("gorillastore: create session %q: %w", s.Name(), err)
		}
		s.ID = id
		return st.stored(ctx, s, ld, payload)
	}
	return fmt.Errorf("gorillastore: create session %q: %d fresh ids were all taken", s.Name(), newIDAttempts)
}

// replace stores a session under the id the application gave it, creating
// or replacing: the store never loaded that id, so there is nothing to
// merge with.
func (st *Store) replace(ctx context.Context, s *sessions.Session, ld *state, until time.Time) error {
	payload, err := st.codec.Encode(s.Values)
	if err != nil {
		return err
	}
	if err := st.sessions.SetUntil(ctx, s.ID, payload, until); err != nil {
		return fmt.Errorf("gorillastore: save session %q: %w", s.Name(), err)
	}
	return st.stored(ctx, s, ld, payload)
}

// stored records that s.ID now holds payload, and deletes the id the
// session was loaded with if that was another.
func (st *Store) stored(ctx context.Context, s *sessions.Session, ld *state, payload []byte) error {
	old := ld.id
	ld.id, ld.payload, ld.changes = s.ID, payload, nil
	if old == "" || old == s.ID {
		return nil
	}
	if err := st.sessions.Delete(ctx, old); err != nil {
		return fmt.Errorf("gorillastore: session %q saved under its new id, but its old id could not be deleted: %w", s.Name(), err)
	}
	return nil
}
