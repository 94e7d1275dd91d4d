package httpsession

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// deadlineStore is a Store whose sessions have an absolute deadline, as
// *sessionstore.Store has with MaxLifetime. The middleware finds it by
// type assertion.
type deadlineStore[T any] interface {
	// Deadline returns the absolute deadline of the session stored under
	// id; zero for none.
	Deadline(ctx context.Context, id string) (time.Time, error)
	// CreateWithin is Create for a session that must end by deadline.
	CreateWithin(ctx context.Context, id string, v T, deadline time.Time) error
}

// RenewLifetime gives the id that Regenerate made a full absolute
// lifetime (the store's MaxLifetime from now) instead of the old id's
// deadline. Call it after Regenerate where a new authentication should
// start a new lifetime; by default the deadline is kept, so that
// renewing the id on a privilege change does not extend it (OWASP). It
// does nothing with a store without deadlines.
func (s *Session[T]) RenewLifetime() { s.deadline = time.Time{} }

// keepDeadline records the deadline of the stored session, for the id
// that replaces it.
func (s *Session[T]) keepDeadline(ctx context.Context) error {
	ds, ok := s.m.store.(deadlineStore[Record[T]])
	if !ok || !s.stored {
		return nil
	}
	d, err := ds.Deadline(ctx, s.id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("httpsession: regenerate: read the old session's deadline: %w", err)
	}
	s.deadline = d
	return nil
}

// createNew stores the session under its id: by the deadline it keeps
// from before a Regenerate, if any, else expiring with its cookie when the
// store can say so.
func (s *Session[T]) createNew(ctx context.Context) error {
	if ds, ok := s.m.store.(deadlineStore[Record[T]]); ok && !s.deadline.IsZero() {
		return ds.CreateWithin(ctx, s.ID(), s.rec, s.deadline)
	}
	if s.m.expiry != nil {
		return s.m.expiry.CreateUntil(ctx, s.ID(), s.rec, s.rec.Cookie.expiry())
	}
	return s.m.store.Create(ctx, s.ID(), s.rec)
}

// capMaxAge returns header, the Set-Cookie header for session s, with
// its Max-Age cut to the whole seconds left before the session's
// deadline, so that the browser never keeps the cookie longer than the
// store keeps the session. A browser-session cookie (no MaxAge) and a
// store without deadlines leave it as it is; a failure to read the
// deadline too, since the store enforces it anyway.
func (m *Manager[T]) capMaxAge(ctx context.Context, s *Session[T], header string) string {
	ds, ok := m.store.(deadlineStore[Record[T]])
	maxAge := s.rec.Cookie.maxAgeSeconds()
	if !ok || maxAge == 0 {
		return header
	}
	d, err := ds.Deadline(ctx, s.id)
	if err != nil || d.IsZero() {
		if err != nil {
			m.logger.WarnContext(ctx, "httpsession: cannot cap the cookie's Max-Age to the session's deadline", "err", err)
		}
		return header
	}
	left := int(d.Sub(m.now()) / time.Second)
	if left >= maxAge {
		return header
	}
	if left <= 0 {
		return m.clearCookie(s)
	}
	return strings.Replace(header, "; Max-Age="+strconv.Itoa(maxAge), "; Max-Age="+strconv.Itoa(left), 1)
}
