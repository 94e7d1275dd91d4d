package sessionstore

import (
	"context"
	"errors"
	"time"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/observe"
)

// meta is what a write of v stores besides its payload: its owner, and
// the deadline asked for (zero: the default).
func (s *Store[T]) meta(v T, deadline time.Time) engine.Meta {
	m := engine.Meta{Deadline: deadline}
	if s.owner != nil {
		m.Owner = s.owner(v)
	}
	return m
}

// Deadline returns the absolute deadline of session id, past which it
// never reads, whatever touches and saves happen: its creation plus
// MaxLifetime, rounded down to TouchGranularity, or the one it was
// created with (CreateWithin). It returns an error wrapping ErrNotFound
// for a missing or expired session. It reads like Get: from memory when
// fresh there, else the database.
//
// Without MaxLifetime it returns the zero time and reads nothing.
func (s *Store[T]) Deadline(ctx context.Context, id string) (time.Time, error) {
	ctx, op := s.obs.Start(ctx, observe.Deadline)
	d, err := s.deadline(ctx, &op, id)
	op.End(err)
	return d, err
}

func (s *Store[T]) deadline(ctx context.Context, op *observe.Operation, id string) (time.Time, error) {
	if s.maxLife == 0 {
		return time.Time{}, nil
	}
	rec, key, hit, err := s.eng.Cached(op, id)
	if err != nil {
		return time.Time{}, err
	}
	if hit {
		return rec.Deadline, nil
	}
	loaded, _, err := s.eng.Load(ctx, op, key, s.check)
	if err != nil {
		return time.Time{}, err
	}
	return loaded.Deadline, nil
}

// CreateWithin is Create for a session that must end no later than
// deadline, instead of now plus MaxLifetime: the way to give a session a
// new id without extending its absolute lifetime, as on a login (OWASP:
// renewing the id must not renew the absolute timeout). Pass it the
// deadline of the old id (see Deadline). A zero deadline, or one later
// than now plus MaxLifetime, means now plus MaxLifetime. It needs
// MaxLifetime.
func (s *Store[T]) CreateWithin(ctx context.Context, id string, v T, deadline time.Time) error {
	ctx, op := s.obs.Start(ctx, observe.Create)
	err := errors.New("sessionstore: CreateWithin needs Options.MaxLifetime")
	if s.maxLife > 0 {
		err = s.create(ctx, id, v, time.Time{}, deadline)
	}
	op.End(err)
	return err
}
