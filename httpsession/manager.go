package httpsession

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"
)

// Store is where a [Manager] keeps sessions; *sessionstore.Store[T]
// satisfies it. Implementations must be safe for concurrent use.
type Store[T any] interface {
	// Get returns the session stored under id. For a missing or expired
	// session it returns an error that is, or wraps, an error with a
	// method NotFound() bool returning true, as sessionstore.ErrNotFound
	// does.
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
	// MaxAge is the cookie's lifetime in the browser, sent as Max-Age in
	// whole seconds, rounded up. Zero makes a browser-session cookie. It
	// does not limit how long the Store keeps the session.
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
	// Logger receives store failures that cannot reach ErrorHandler,
	// changes made too late to be saved and, at Debug level, cookies that
	// fail verification. Nil discards them.
	Logger *slog.Logger
	// ErrorHandler writes the response when the store fails while the
	// response can still be changed: loading the session, or saving it
	// after a handler that wrote nothing. A missing session is not a
	// failure. Nil logs the error and replies 500 Internal Server Error.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Manager is session middleware over a [Store]. It is safe for concurrent
// use.
type Manager[T any] struct {
	// All fields are set by New and read-only after.
	store  Store[T]
	opts   Options // defaults filled in, Secrets copied
	maxAge int     // Max-Age attribute in seconds; 0 omits it
	keys   *keyring
	// A session cookie's Set-Cookie header is cookiePrefix + value +
	// cookieSuffix, as http.Cookie.String formats it.
	cookiePrefix  string
	cookieSuffix  string
	expiredCookie string // the Set-Cookie header that deletes the cookie
	logger        *slog.Logger
	onError       func(w http.ResponseWriter, r *http.Request, err error)
}

// New returns a Manager that keeps sessions in store. It reports an error
// if store is nil, opts is nil or has no secrets, a secret is empty, MaxAge
// is negative, or the cookie name, path or domain is invalid.
func New[T any](store Store[T], opts *Options) (*Manager[T], error) {
	if store == nil {
		return nil, errors.New("httpsession: nil store")
	}
	if opts == nil || len(opts.Secrets) == 0 {
		return nil, errors.New("httpsession: no secrets")
	}
	m := &Manager[T]{store: store, opts: *opts}
	m.opts.Secrets = append([]string(nil), opts.Secrets...)
	for _, s := range m.opts.Secrets {
		if s == "" {
			return nil, errors.New("httpsession: empty secret")
		}
	}
	if m.opts.MaxAge < 0 {
		return nil, errors.New("httpsession: negative MaxAge")
	}
	secs := m.opts.MaxAge / time.Second
	if m.opts.MaxAge%time.Second != 0 {
		secs++
	}
	m.maxAge = int(min(secs, math.MaxInt32))
	if m.opts.CookieName == "" {
		m.opts.CookieName = "connect.sid"
	}
	if m.opts.Path == "" {
		m.opts.Path = "/"
	}
	c := m.cookie("")
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
	m.onError = m.opts.ErrorHandler
	if m.onError == nil {
		m.onError = m.replyError
	}
	return m, nil
}

// Handler returns middleware that gives each request a session and saves
// it before the response headers are written, or when next returns if it
// wrote nothing. The session is in the context of the request next
// receives; see [FromContext].
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
	s := &Session[T]{m: m}
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
		s.id, s.value, s.loaded, s.stored = s.cookieID, v, true, true
	case isNotFound(err):
		// Missing or expired: the request gets a fresh session, with a
		// new id, as in express-session.
	default:
		return nil, fmt.Errorf("httpsession: load session: %w", err)
	}
	return s, nil
}

// setCookie returns the Set-Cookie header that gives the client s's id:
// the cookie the request brought, if it names that id and the first
// secret signed it, or else a newly signed one.
func (m *Manager[T]) setCookie(s *Session[T]) string {
	if s.id == s.cookieID && s.cookieValue != "" {
		return m.cookiePrefix + s.cookieValue + m.cookieSuffix
	}
	return m.keys.cookie(m.cookiePrefix, s.id, m.cookieSuffix)
}

// cookie returns the session cookie carrying value.
func (m *Manager[T]) cookie(value string) *http.Cookie {
	return &http.Cookie{
		Name:     m.opts.CookieName,
		Value:    value,
		Path:     m.opts.Path,
		Domain:   m.opts.Domain,
		MaxAge:   m.maxAge,
		HttpOnly: !m.opts.AllowScriptAccess,
		Secure:   m.opts.Secure,
		SameSite: m.opts.SameSite,
	}
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
