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
	ds, ok := s.m.store.(deadlineStore[T])
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

// createNew stores the session under its id, by the deadline it keeps
// from before a Regenerate, if any.
func (s *Session[T]) createNew(ctx context.Context) error {
	if ds, ok := s.m.store.(deadlineStore[T]); ok && !s.deadline.IsZero() {
		return ds.CreateWithin(ctx, s.ID(), s.value, s.deadline)
	}
	return s.m.store.Create(ctx, s.ID(), s.value)
}

// capMaxAge returns header, the Set-Cookie header for session id, with
// its Max-Age cut to the whole seconds left before the session's
// deadline, so that the browser never keeps the cookie longer than the
// store keeps the session. A browser-session cookie (no MaxAge) and a
// store without deadlines leave it as it is; a failure to read the
// deadline too, since the store enforces it anyway.
func (m *Manager[T]) capMaxAge(ctx context.Context, id, header string) string {
	ds, ok := m.store.(deadlineStore[T])
	if !ok || m.maxAge == 0 {
		return header
	}
	d, err := ds.Deadline(ctx, id)
	if err != nil || d.IsZero() {
		if err != nil {
			m.logger.WarnContext(ctx, "httpsession: cannot cap the cookie's Max-Age to the session's deadline", "err", err)
		}
		return header
	}
	left := int(time.Until(d) / time.Second)
	if left >= m.maxAge {
		return header
	}
	if left <= 0 {
		return m.expiredCookie
	}
	return strings.Replace(header, "; Max-Age="+strconv.Itoa(m.maxAge), "; Max-Age="+strconv.Itoa(left), 1)
}
