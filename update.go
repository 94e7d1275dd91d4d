package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
)

// Backoff between the attempts of an Update: jittered, doubling from
// updateBackoff up to maxUpdateBackoff.
const (
	updateBackoff    = time.Millisecond
	maxUpdateBackoff = 50 * time.Millisecond
)

// Create stores v as the new session id, like Set, but never overwrites:
// if id is stored already, it changes nothing and returns an error
// wrapping ErrExists. With random 128-bit ids that means a bug or an
// attack; pick a new id.
func (s *Store[T]) Create(ctx context.Context, id string, v T) error {
	ctx, op := s.obs.Start(ctx, observe.Create)
	err := s.create(ctx, id, v, time.Time{}, time.Time{})
	op.End(err)
	return err
}

// CreateUntil is Create with an expiry chosen by the caller, as SetUntil
// is Set's.
func (s *Store[T]) CreateUntil(ctx context.Context, id string, v T, expires time.Time) error {
	ctx, op := s.obs.Start(ctx, observe.Create)
	err := s.create(ctx, id, v, expires, time.Time{})
	op.End(err)
	return err
}

// create stores v as the new session id, expiring at until (zero: now
// plus its lifetime), and ending at deadline (zero: now plus MaxLifetime).
func (s *Store[T]) create(ctx context.Context, id string, v T, until, deadline time.Time) error {
	payload, err := s.encode(v)
	if err != nil {
		return err
	}
	return s.eng.Create(ctx, id, payload, s.lifetime(v), until, s.meta(v, deadline))
}

// Update changes session id with fn and stores the result only if nobody
// changed or deleted the session meanwhile: it reads the session (from
// memory when fresh there), calls fn with a pointer to the caller's own
// copy, and writes it on condition that the stored version is still the
// one read. On a conflict it reads the session again from the database
// and calls fn again, up to UpdateAttempts times with jittered backoff,
// then returns an error wrapping ErrConflict. fn may thus run more than
// once, each time on a fresh value: it must not keep what it was given,
// and should have no other effects. An error from fn aborts the Update
// and is returned as it is; nothing is written.
//
// Update never creates a session: for a missing, expired or concurrently
// deleted one it returns an error wrapping ErrNotFound, and a Delete
// always wins over it. The expiry is set as by Set. It returns the value
// stored.
//
// Set is the unconditional "create or replace": it overwrites whatever is
// stored. Update is the safe way to save a session that was read.
func (s *Store[T]) Update(ctx context.Context, id string, fn func(*T) error) (T, error) {
	ctx, op := s.obs.Start(ctx, observe.Update)
	v, attempts, err := s.update(ctx, &op, id, fn, time.Time{})
	op.Attempts(attempts)
	op.End(err)
	return v, err
}

// UpdateUntil is Update with an expiry chosen by the caller, as SetUntil
// is Set's: the session expires at expires instead of now plus its
// lifetime.
func (s *Store[T]) UpdateUntil(ctx context.Context, id string, fn func(*T) error, expires time.Time) (T, error) {
	ctx, op := s.obs.Start(ctx, observe.Update)
	v, attempts, err := s.update(ctx, &op, id, fn, expires)
	op.Attempts(attempts)
	op.End(err)
	return v, err
}

func (s *Store[T]) update(ctx context.Context, op *observe.Operation, id string, fn func(*T) error, until time.Time) (v T, attempts int, err error) {
	var zero T
	cached, key, hit, err := s.eng.Cached(op, id)
	if err != nil {
		return zero, 0, err
	}
	var rec tier.Record
	if hit = hit && cached.Rev >= 0; hit { // after a Set, memory does not know the version
		rec = *cached
	}
	backoff := updateBackoff
	for {
		if !hit {
			// Read from the database: memory missed, did not know the
			// version, or is older than the conflict.
			if rec, _, err = s.eng.Reload(ctx, op, key, s.check); err != nil {
				return zero, attempts, err
			}
		}
		if hit {
			err = s.value(key, &rec, &v)
		} else {
			v, err = s.decode(rec.Payload)
		}
		hit = false
		if err != nil {
			return zero, attempts, err
		}
		if err := fn(&v); err != nil {
			return zero, attempts, err
		}
		payload, err := s.encode(v)
		if err != nil {
			return zero, attempts, err
		}
		attempts++
		_, err = s.eng.Replace(ctx, key, rec, payload, s.lifetime(v), until, s.meta(v, time.Time{}))
		switch {
		case err == nil:
			return v, attempts, nil
		case !errors.Is(err, tier.ErrConflict):
			return zero, attempts, err
		case attempts >= s.attempts:
			return zero, attempts, fmt.Errorf("%w: gave up after %d attempts; the session is updated too often at once", ErrConflict, attempts)
		}
		t := time.NewTimer(rand.N(backoff) + backoff/2)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, attempts, ctx.Err()
		}
		backoff = min(2*backoff, maxUpdateBackoff)
	}
}

// check validates a payload read from the database.
func (s *Store[T]) check(p []byte) error {
	_, err := s.decode(p)
	return err
}

// encode turns v into a payload.
func (s *Store[T]) encode(v T) ([]byte, error) {
	payload, err := s.codec.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: cannot encode the session with %T: %w", s.codec, err)
	}
	return payload, nil
}
