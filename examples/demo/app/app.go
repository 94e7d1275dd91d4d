// Package app is the demo's HTTP application: express-session compatible
// sessions (package httpsession) over a session store, a middleware that
// gives every new session a random "something", and GET / answering OK.
// The demo serves it; the load test in the bench module drives it.
package app

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
)

// Lifetime is how long a session lives after its last request: the
// cookie's Max-Age and the store's TTL.
const Lifetime = 7 * 24 * time.Hour

// Session is the demo's session. Its document is the one express-session
// keeps: the middleware stores express-session's cookie object beside
// Session's fields, so an Express app given the same collection and secret
// reads it as req.session, with req.session.something.
type Session struct {
	Something string `bson:"something,omitempty"`
}

// Record is what the store holds for a Session.
type Record = httpsession.Record[Session]

// TouchAfter is the store's TouchAfter: a returning session's expiry is
// written at most once every ten minutes, not on every request. A session
// thus expires up to ten minutes (a thousandth of Lifetime) before
// Lifetime has passed since its last request, and the server writes one
// touch per active session every ten minutes instead of every second.
const TouchAfter = 10 * time.Minute

// Clone returns a copy of s that shares nothing mutable with it, for the
// store's Options.Clone: a plain copy, since a Session holds no map, slice
// or pointer (a time.Time's location is never modified).
func Clone(s Session) Session { return s }

// CloneRecord is Clone for the Record the store holds: its cookie object
// is plain data, and the stored document it keeps is never modified.
func CloneRecord(r Record) Record {
	r.Value = Clone(r.Value)
	return r
}

// New returns the demo's handler: session middleware with
// express-session's defaults and the npm demo's cookie settings, then a
// middleware that gives each new session a random "something", then
// GET / answering OK. secret signs the session cookie; logger receives a
// line per request: at Info level for a new session, at Debug level for a
// returning one (nil discards them). clock is the store's, from which
// the cookie's expiry starts (nil: the system clock).
func New(store httpsession.Store[Record], secret string, logger *slog.Logger, clock sessionstore.Clock) (http.Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sessions, err := httpsession.New[Session](store, &httpsession.Options{
		Secrets:    []string{secret},
		CookieName: "connect.sid",
		MaxAge:     Lifetime,
		SameSite:   http.SameSiteStrictMode,
		// The cookie's Max-Age restarts on every response, as the
		// session's expiry in the store does on every save or touch.
		Rolling: true,
		Logger:  logger,
		Clock:   clock,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "OK")
	})
	return sessions.Handler(something(mux, logger)), nil
}

// something gives a session without a "something" a random one, which
// saves the session, and logs whether the session is new or existing. An
// existing session is left unchanged, so the middleware only touches it.
// New sessions are logged at Info level and returning ones, the bulk of
// the traffic, at Debug level, where a production logger drops them
// before formatting anything.
func something(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[Session](r.Context())
		v := s.Value()
		if v.Something == "" {
			v.Something = rand.Text()
			s.Set(v)
		}
		level, msg := slog.LevelDebug, "existing session"
		if s.IsNew() {
			level, msg = slog.LevelInfo, "new session"
		}
		// LogAttrs boxes nothing, so a dropped line costs only the level
		// check.
		logger.LogAttrs(r.Context(), level, msg, slog.String("something", v.Something), slog.String("path", r.URL.Path))
		next.ServeHTTP(w, r)
	})
}
