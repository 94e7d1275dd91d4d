package httpsession

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sessionstore/sessionstore"
)

// Store is where a [Manager] keeps sessions; *sessionstore.Store[T]
// satisfies it. Implementations must be safe for concurrent use.
type Store[T any] interface {
	// Get returns the session stored under id. For a missing or expired
	// session it returns an error that is, or wraps, an error with a
	// method NotFound() bool returning true, as sessionstore.ErrNotFound
	// does. For a stored session that cannot be decoded it returns an
	// error wrapping sessionstore.ErrCorrupt.
	Get(ctx context.Context, id string) (T, error)
	// Create stores v as a new session under id. If id is stored
	// already it changes nothing and returns an error that is, or wraps,
	// an error with a method Exists() bool returning true, as
	// sessionstore.ErrExists does.
	Create(ctx context.Context, id string, v T) error
	// Update changes the session stored under id with fn and stores the
	// result only if nobody changed it meanwhile, calling fn again on the
	// fresh value after a conflict, and returns the value stored. It
	// never creates a session: for a missing one it returns a NotFound
	// error, as Get does.
	Update(ctx context.Context, id string, fn func(*T) error) (T, error)
	// Touch extends the expiry of the session stored under id. It never
	// creates a session.
	Touch(ctx context.Context, id string) error
	// Delete removes the session stored under id. Deleting a missing id is
	// not an error.
	Delete(ctx context.Context, id string) error
}

// ExpiryStore is a [Store] whose callers choose each session's expiry, as
// *sessionstore.Store[T] does. With one, the middleware expires a session
// in the store when its cookie expires, as express-session's Node stores
// do; with a plain Store, the store's own lifetime applies.
type ExpiryStore[T any] interface {
	Store[T]
	// CreateUntil is Create with the session expiring at expires; a zero
	// expires means the store's own lifetime.
	CreateUntil(ctx context.Context, id string, v T, expires time.Time) error
	// UpdateUntil is Update with the session expiring at expires; a zero
	// expires means the store's own lifetime.
	UpdateUntil(ctx context.Context, id string, fn func(*T) error, expires time.Time) (T, error)
	// TouchUntil extends the session's expiry to expires, never
	// shortening it.
	TouchUntil(ctx context.Context, id string, expires time.Time) error
}

// Options configures a [Manager]. The zero value of every field other than
// Secrets means its default. New copies Options and never modifies them.
type Options struct {
	// Secrets sign and verify the cookie. The first signs; any of them
	// verifies, so a new secret can be put first while cookies signed with
	// the old one stay valid. At least one is required and none may be
	// empty.
	Secrets []string
	// CookieName is the cookie's name. The default is "connect.sid",
	// express-session's default.
	CookieName string
	// Path is the cookie's Path attribute. The default is "/".
	Path string
	// Domain is the cookie's Domain attribute. Empty omits it, which limits
	// the cookie to the host that set it.
	Domain string
	// MaxAge is the lifetime of a new session's cookie
	// (express-session's cookie.maxAge), sent as Max-Age in whole
	// seconds, rounded up, and, with an [ExpiryStore], the session's
	// lifetime in the store after each save or touch, as with the Node
	// stores. Zero makes a browser-session cookie, kept by the store for
	// its own lifetime (its TTL).
	//
	// This and the other cookie options apply to new sessions. A loaded
	// session keeps the cookie object stored with it, which an Express
	// app may have written with other settings.
	MaxAge time.Duration
	// AllowScriptAccess leaves the HttpOnly attribute off, letting
	// JavaScript in the page read the cookie. False (the default) sets
	// HttpOnly.
	AllowScriptAccess bool
	// Secure sets the cookie's Secure attribute.
	Secure bool
	// SameSite is the cookie's SameSite attribute. Zero omits it.
	SameSite http.SameSite
	// SaveUninitialized stores a fresh session that the handler did not
	// change, and sends its cookie. False (the default) stores nothing and
	// sends no cookie for it.
	SaveUninitialized bool
	// Rolling sends the cookie on every response that has a stored session,
	// restarting its MaxAge.
	Rolling bool
	// Resave stores a session loaded from the store even when the handler
	// did not change it. False (the default) only touches it.
	Resave bool
	// Logger receives changes made too late to be saved, stored
	// sessions that cannot be decoded (once per session) and, at Debug
	// level, cookies that fail verification. Nil discards them.
	Logger *slog.Logger
	// Clock tells the time the cookie's expiry starts from; give it the
	// store's, so that both agree. Nil means the system clock.
	Clock sessionstore.Clock
	// ErrorHandler writes the response when the store fails to load or
	// save the session. The session is saved before the response's
	// header is written, so every failure to save reaches it (see
	// [Manager.Handler]). A missing session is not a failure, nor is one
	// that cannot be decoded: the request gets a fresh session. Nil logs
	// the error and replies 500 Internal Server Error.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Manager is session middleware over a [Store]. It is safe for concurrent
// use.
type Manager[T any] struct {
	// The fields below are set by New and read-only after.
	store  Store[Record[T]]
	expiry ExpiryStore[Record[T]] // store, if it takes expiries; else nil
	opts   Options                // defaults filled in, Secrets copied
	fresh  Cookie                 // a new session's cookie, from opts
	keys   *keyring
	// A Set-Cookie header with fresh's attributes is cookiePrefix + value
	// + cookieSuffix, as http.Cookie.String formats it.
	cookiePrefix  string
	cookieSuffix  string
	expiredCookie string // the Set-Cookie header that deletes such a cookie
	logger        *slog.Logger
	now           func() time.Time
	onError       func(w http.ResponseWriter, r *http.Request, err error)

	corrupt corruptLog
}

// corruptLog remembers which undecodable sessions were logged, so that
// each is logged once, not on every request that names it.
type corruptLog struct {
	mu   sync.Mutex          // protects seen
	seen map[string]struct{} // ids logged; cleared when full
}

// maxCorruptLogged bounds corruptLog.seen.
const maxCorruptLogged = 1024

// first reports whether id is logged for the first time.
func (c *corruptLog) first(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[id]; ok {
		return false
	}
	if c.seen == nil || len(c.seen) >= maxCorruptLogged {
		c.seen = make(map[string]struct{})
	}
	c.seen[id] = struct{}{}
	return true
}

// New returns a Manager that keeps sessions in store, as [Record]s. It
// reports an error if store is nil, T has a field named "cookie", opts is
// nil or has no secrets, a secret is empty, MaxAge is negative, or the
// cookie name, path or domain is invalid.
func New[T any](store Store[Record[T]], opts *Options) (*Manager[T], error) {
	if store == nil {
		return nil, errors.New("httpsession: nil store")
	}
	if err := checkType[T](); err != nil {
		return nil, err
	}
	if opts == nil || len(opts.Secrets) == 0 {
		return nil, errors.New("httpsession: no secrets")
	}
	m := &Manager[T]{store: store, opts: *opts}
	m.expiry, _ = store.(ExpiryStore[Record[T]])
	m.opts.Secrets = append([]string(nil), opts.Secrets...)
	for _, s := range m.opts.Secrets {
		if s == "" {
			return nil, errors.New("httpsession: empty secret")
		}
	}
	if m.opts.MaxAge < 0 {
		return nil, errors.New("httpsession: negative MaxAge")
	}
	if m.opts.CookieName == "" {
		m.opts.CookieName = "connect.sid"
	}
	if m.opts.Path == "" {
		m.opts.Path = "/"
	}
	if m.opts.SameSite == http.SameSiteDefaultMode {
		m.opts.SameSite = 0 // net/http omits the attribute for both
	}
	m.fresh = Cookie{
		MaxAge:   m.opts.MaxAge,
		Path:     m.opts.Path,
		Domain:   m.opts.Domain,
		HTTPOnly: !m.opts.AllowScriptAccess,
		Secure:   m.opts.Secure,
		SameSite: m.opts.SameSite,
	}
	if _, err := encodeCookie(&m.fresh, nil); err != nil {
		return nil, err
	}
	c := m.fresh.httpCookie(m.opts.CookieName, "", &m.fresh)
	if err := c.Valid(); err != nil {
		return nil, fmt.Errorf("httpsession: invalid cookie options: %w", err)
	}
	// String writes the name, "=", the value and then the attributes, so
	// formatting with an empty value gives the parts around any value.
	m.cookiePrefix = m.opts.CookieName + "="
	m.cookieSuffix = strings.TrimPrefix(c.String(), m.cookiePrefix)
	c.MaxAge, c.Expires = -1, time.Unix(0, 0)
	m.expiredCookie = c.String()
	m.keys = newKeyring(m.opts.Secrets)
	m.logger = m.opts.Logger
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	m.now = time.Now
	if m.opts.Clock != nil {
		m.now = m.opts.Clock.Now
	}
	m.onError = m.opts.ErrorHandler
	if m.onError == nil {
		m.onError = m.replyError
	}
	return m, nil
}

// Handler returns middleware that gives each request a session and saves
// it before the response header is written (by WriteHeader, the first
// Write, ReadFrom, Flush or Hijack), or when next returns if it wrote
// nothing. The session is in the context of the request next receives;
// see [FromContext].
//
// A failed save is never silent: the response header is not written yet,
// so ErrorHandler answers the request instead of next, and next's later
// writes fail with [ErrNotSaved] (Hijack too).
//
// The store calls that save the session use the request's context without
// its cancellation, so a client that hangs up does not undo a change the
// handler made, but with its deadline, if it has one (http.TimeoutHandler
// sets one), so a save never outlives it. If next panics, the session is
// not saved.
func (m *Manager[T]) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.load(r)
		if err != nil {
			m.onError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), contextKey[T]{}, s))
		sw := &responseWriter[T]{ResponseWriter: w, r: r, s: s}
		next.ServeHTTP(sw, r)
		if s.committed {
			return
		}
		ctx, cancel := saveContext(r.Context())
		defer cancel()
		if err := s.commit(ctx, w.Header()); err != nil {
			m.onError(w, r, err)
		}
	})
}

// ErrNotSaved is returned by the writes of a handler whose session could
// not be saved: ErrorHandler has answered the request instead.
var ErrNotSaved = errors.New("httpsession: the session could not be saved; the error handler answered the request")

// saveContext returns ctx's values and deadline without its cancellation.
func saveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	save := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(save, d)
	}
	return save, func() {}
}

// FromContext returns the session the middleware put in ctx, or nil if
// ctx has no session of type T.
func FromContext[T any](ctx context.Context) *Session[T] {
	s, _ := ctx.Value(contextKey[T]{}).(*Session[T])
	return s
}

// contextKey is the context key for a *Session[T].
type contextKey[T any] struct{}

// load returns the session named by r's cookie, or a fresh one.
func (m *Manager[T]) load(r *http.Request) (*Session[T], error) {
	s := &Session[T]{m: m, rec: Record[T]{Cookie: m.fresh}}
	for _, c := range r.CookiesNamed(m.opts.CookieName) {
		if id, value, ok := m.keys.verify(c.Value); ok {
			s.cookieID, s.cookieValue = id, value
			break
		}
		m.logger.DebugContext(r.Context(), "httpsession: ignoring session cookie with an invalid signature")
	}
	if s.cookieID == "" {
		return s, nil
	}
	v, err := m.store.Get(r.Context(), s.cookieID)
	switch {
	case err == nil:
		s.id, s.rec, s.loaded, s.stored = s.cookieID, v, true, true
		m.adopt(&s.rec)
	case isNotFound(err):
		// Missing or expired: the request gets a fresh session, with a
		// new id, as in express-session.
	case errors.Is(err, sessionstore.ErrCorrupt):
		// Not decodable as T (an Express app may have stored what T
		// cannot hold): a fresh session, as for a missing one, and the
		// document stays for whoever can read it.
		if m.corrupt.first(s.cookieID) {
			m.logger.WarnContext(r.Context(), "httpsession: stored session cannot be decoded; serving a fresh session and leaving the document in place", "err", err)
		}
	default:
		return nil, fmt.Errorf("httpsession: load session: %w", err)
	}
	return s, nil
}

// adopt gives a session stored without a cookie object (by a Go type
// without one, say) this middleware's, which its next save stores.
func (m *Manager[T]) adopt(r *Record[T]) {
	if r.cookie == nil && r.Cookie == (Cookie{}) {
		r.Cookie = m.fresh
	}
}

// setCookie returns the Set-Cookie header that gives the client s's id,
// with the attributes of s's cookie object: the cookie value the request
// brought, if it names that id and the first secret signed it, or else a
// newly signed one.
func (m *Manager[T]) setCookie(s *Session[T]) string {
	resend := s.id == s.cookieID && s.cookieValue != ""
	c := &s.rec.Cookie
	if c.attributes(&m.fresh) {
		if resend {
			return m.cookiePrefix + s.cookieValue + m.cookieSuffix
		}
		return m.keys.cookie(m.cookiePrefix, s.id, m.cookieSuffix)
	}
	value := s.cookieValue
	if !resend {
		value = m.keys.cookie("", s.id, "")
	}
	return c.httpCookie(m.opts.CookieName, value, &m.fresh).String() + c.priorityAttr()
}

// clearCookie returns the Set-Cookie header that deletes the cookie of s.
func (m *Manager[T]) clearCookie(s *Session[T]) string {
	c := &s.rec.Cookie
	if c.Path == m.fresh.Path && c.Domain == m.fresh.Domain {
		return m.expiredCookie
	}
	hc := c.httpCookie(m.opts.CookieName, "", &m.fresh)
	hc.MaxAge, hc.Expires = -1, time.Unix(0, 0)
	return hc.String()
}

// replyError is the default ErrorHandler.
func (m *Manager[T]) replyError(w http.ResponseWriter, r *http.Request, err error) {
	m.logger.ErrorContext(r.Context(), "httpsession: session store failed", "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// isExists reports whether err says that a session id is taken.
func isExists(err error) bool {
	var e interface{ Exists() bool }
	return errors.As(err, &e) && e.Exists()
}

// isNotFound reports whether err says that a session does not exist.
func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
