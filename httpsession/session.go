package httpsession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Session is one request's session, from [FromContext].
//
// A Session belongs to the request it came with. It is not safe for
// concurrent use: use it from the goroutine serving the request, or
// synchronize, and never concurrently with writes to the ResponseWriter,
// since the first write saves it. After that, Set and Update change only
// what Value returns, Destroy does nothing, and Regenerate returns an
// error; the first late Set, Update or Destroy is logged at Warn level.
type Session[T any] struct {
	m *Manager[T]
	// The fields below are owned by the goroutine serving the request.
	id          string             // current id; "" until needed for a fresh session
	cookieID    string             // id from the request's valid cookie, or ""
	cookieValue string             // that cookie's value to send back; "" to sign anew
	rec         Record[T]          // the value, its cookie object and what T does not declare
	changes     []func(*Record[T]) // what Set, Update and SetMaxAge did, replayed on a conflict
	loaded      bool               // the session came from the store
	stored      bool               // the store holds id
	modified    bool               // Set, Update, SetMaxAge or Regenerate was called
	destroyed   bool               // Destroy was called
	committed   bool               // the session was saved or skipped; too late to change
	lateChanged bool               // a change after committed was logged
	deadline    time.Time          // the deadline a Regenerate keeps; zero for a full lifetime
}

// ID returns the session's id. A fresh session gets its id on first use.
func (s *Session[T]) ID() string {
	if s.id == "" {
		s.id = newID()
	}
	return s.id
}

// Value returns the session's value: the zero T for a fresh session. If T
// holds maps, slices or pointers, change what they refer to through
// [Session.Update] or [Session.Set], so that the change is saved.
func (s *Session[T]) Value() T { return s.rec.Value }

// Cookie returns the session's cookie object: the one stored with a
// loaded session, which an Express app may have written, or for a fresh
// session the one the Options give.
func (s *Session[T]) Cookie() Cookie { return s.rec.Cookie }

// Set replaces the session's value and marks the session changed.
func (s *Session[T]) Set(v T) {
	s.rec.Value = v
	s.changed("Set", func(p *Record[T]) { p.Value = v })
}

// SetMaxAge changes the lifetime of the session's cookie, as setting
// req.session.cookie.maxAge does in Express ("remember me"): d from now
// on, and from every later response; zero makes it a browser-session
// cookie. It marks the session changed. A negative d counts as zero.
func (s *Session[T]) SetMaxAge(d time.Duration) {
	d = max(d, 0)
	s.rec.Cookie.MaxAge = d
	s.changed("SetMaxAge", func(p *Record[T]) { p.Cookie.MaxAge = d })
}

// Update calls fn with a pointer to the session's value and marks the
// session changed.
//
// The change is recorded: if another request changed the stored session
// since this one loaded it, the middleware reads it again and calls fn
// again on the fresh value before it saves, so that concurrent requests
// merge their changes instead of losing all but one. fn should therefore
// change only what it means to change (add an item, not set the whole
// cart) and have no other effects.
func (s *Session[T]) Update(fn func(v *T)) {
	fn(&s.rec.Value)
	s.changed("Update", func(p *Record[T]) { fn(&p.Value) })
}

// IsNew reports whether the session was not loaded from the store: the
// request had no valid cookie, or its session was missing or expired.
func (s *Session[T]) IsNew() bool { return !s.loaded }

// Destroy ends the session: when the middleware saves, it deletes the
// session from the store and expires the cookie. Value then returns the
// zero T; later calls to Set and Update change only what Value returns.
func (s *Session[T]) Destroy() {
	if s.committed {
		s.warnLate("Destroy")
		return
	}
	var zero T
	s.rec.Value, s.destroyed = zero, true
}

// Regenerate gives the session a new id, keeping its value, and deletes
// the old id from the store at once; the new id is created when the
// middleware saves, and a request still saving the old id cannot bring it
// back. Call it on login, so that an id known
// before login, perhaps planted by an attacker, is worthless after it. The
// new cookie is sent with the response. With a store that has absolute
// deadlines (sessionstore's MaxLifetime), the new id keeps the old one's
// deadline unless RenewLifetime is called. It returns an error if the delete
// fails, leaving the session unchanged, or if the session was destroyed or
// the response has started.
func (s *Session[T]) Regenerate(ctx context.Context) error {
	if s.committed {
		return errors.New("httpsession: regenerate after the response started")
	}
	if s.destroyed {
		return errors.New("httpsession: regenerate a destroyed session")
	}
	if s.stored {
		if err := s.keepDeadline(ctx); err != nil {
			return err
		}
		if err := s.m.store.Delete(ctx, s.id); err != nil {
			return fmt.Errorf("httpsession: regenerate: delete old session: %w", err)
		}
		s.stored = false
	}
	s.id = newID()
	s.modified = true
	return nil
}

// changed records the change fn made by op, or logs that it is too late.
func (s *Session[T]) changed(op string, fn func(*Record[T])) {
	if s.committed {
		s.warnLate(op)
		return
	}
	s.modified = true
	s.changes = append(s.changes, fn)
}

// create stores a session that is not stored yet, under a new id if its
// id turns out to be taken.
func (s *Session[T]) create(ctx context.Context, now time.Time) error {
	s.rec.Cookie.restart(now, time.Time{})
	for range 3 {
		err := s.createNew(ctx)
		if !isExists(err) {
			if err != nil {
				return fmt.Errorf("httpsession: save session: %w", err)
			}
			return nil
		}
		// 128 random bits collided: a bug or an attack, never chance.
		s.m.logger.Warn("httpsession: new session id already stored; picking another")
		s.id = newID()
	}
	return errors.New("httpsession: save session: every new id was already stored")
}

// warnLate logs, once per request, a change made after the response
// started.
func (s *Session[T]) warnLate(op string) {
	if s.lateChanged {
		return
	}
	s.lateChanged = true
	s.m.logger.Warn("httpsession: session changed after the response started; not saved", "op", op)
}

// commit saves the session as express-session would and adds its cookie,
// if any, to h. The middleware calls it once per request. On failure h is
// left as it was.
func (s *Session[T]) commit(ctx context.Context, h http.Header) error {
	s.committed = true
	m := s.m
	if s.destroyed {
		if s.stored {
			if err := m.store.Delete(ctx, s.id); err != nil {
				return fmt.Errorf("httpsession: delete session: %w", err)
			}
		}
		h.Add("Set-Cookie", m.clearCookie(s))
		return nil
	}
	now := m.now()
	switch {
	case s.stored && (s.modified || m.opts.Resave):
		err := s.update(ctx, now)
		if isNotFound(err) {
			// Destroyed by another request meanwhile: never recreate it.
			var zero T
			s.rec.Value, s.destroyed = zero, true
			h.Add("Set-Cookie", m.clearCookie(s))
			return nil
		}
		if err != nil {
			return fmt.Errorf("httpsession: save session: %w", err)
		}
	case !s.stored && (s.modified || m.opts.SaveUninitialized):
		if err := s.create(ctx, now); err != nil {
			return err
		}
	case s.stored:
		if err := s.touch(ctx, now); err != nil {
			return fmt.Errorf("httpsession: touch session: %w", err)
		}
	default:
		// Fresh and unchanged: nothing stored, so no cookie.
		return nil
	}
	if s.id != s.cookieID || m.opts.Rolling || (s.rec.Cookie.MaxAge > 0 && s.modified) {
		h.Add("Set-Cookie", m.capMaxAge(ctx, s, m.setCookie(s)))
	}
	return nil
}

// errExpiryMoved aborts an UpdateUntil whose expiry, computed from the
// cookie object as loaded, differs from the one the stored object gives.
var errExpiryMoved = errors.New("httpsession: the stored cookie's expiry moved")

// maxExpiryMoves bounds how often update starts again with the expiry
// of a cookie object that another writer changed.
const maxExpiryMoves = 3

// update stores a loaded session: it replays the handler's changes on the
// stored value, restarts the cookie's expiry as express-session does on
// every response, and sets the session's expiry in the store from it.
func (s *Session[T]) update(ctx context.Context, now time.Time) error {
	m := s.m
	var floor time.Time // the latest stored expiry seen: never go below it
	apply := func(p *Record[T]) {
		m.adopt(p)
		for _, fn := range s.changes {
			fn(p)
		}
		p.Cookie.restart(now, floor)
	}
	if m.expiry == nil {
		v, err := m.store.Update(ctx, s.id, func(p *Record[T]) error { apply(p); return nil })
		if err == nil {
			s.rec = v
		}
		return err
	}
	for moves := 0; ; moves++ {
		// s.rec.Cookie has the handler's changes already.
		c := s.rec.Cookie
		c.restart(now, floor)
		until := c.expiry()
		v, err := m.expiry.UpdateUntil(ctx, s.id, func(p *Record[T]) error {
			stored := p.Cookie.Expires
			apply(p)
			if e := p.Cookie.expiry(); !e.Equal(until) {
				// Another app saved the cookie meanwhile, with another
				// lifetime or a later expiry: start again from it.
				floor, s.rec.Cookie = stored, p.Cookie
				return errExpiryMoved
			}
			return nil
		}, until)
		if errors.Is(err, errExpiryMoved) && moves < maxExpiryMoves {
			now = m.now()
			continue
		}
		if err == nil {
			s.rec = v
		}
		return err
	}
}

// touch extends a loaded session's expiry: by the cookie's lifetime, as
// the Node stores do, or by the store's own for a browser-session cookie.
func (s *Session[T]) touch(ctx context.Context, now time.Time) error {
	c := s.rec.Cookie
	c.restart(now, time.Time{})
	if e := c.expiry(); !e.IsZero() && s.m.expiry != nil {
		return s.m.expiry.TouchUntil(ctx, s.id, e)
	}
	return s.m.store.Touch(ctx, s.id)
}
