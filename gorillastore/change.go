package gorillastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"time"

	"github.com/gorilla/sessions"

	"github.com/sessionstore/sessionstore"
)

// Change calls fn with s.Values and records it, so that if another
// request saves the session between this request's load and its Save,
// Save calls fn again on the values stored by then before it writes.
// Assigning to s.Values directly is merged key by key (see the package
// documentation): the last request to save a key wins it, so two
// requests that both read a counter and store it plus one count one.
// Change is for such read-modify-write changes:
//
//	gorillastore.Change(r, session, func(v map[any]any) {
//		n, _ := v["count"].(int)
//		v["count"] = n + 1
//	})
//
// fn may run more than once, each time on other values: it should change
// only what it means to change and have no other effects. r is the
// request s belongs to; s must be of a [Store]. Like the session, Change
// is for the goroutine serving the request.
func Change(r *http.Request, s *sessions.Session, fn func(values map[any]any)) {
	if s.Values == nil {
		s.Values = map[any]any{}
	}
	fn(s.Values)
	ld := requestStates(r, true).of(s)
	ld.changes = append(ld.changes, fn)
}

// state is what a Store knows of one session during one request.
type state struct {
	id      string              // the id under which payload is stored; "" when none
	payload []byte              // the values as loaded, or as this request last saved them
	changes []func(map[any]any) // recorded by Change since then
	failed  error               // why the session could not be loaded; Save refuses it
}

// states holds the state of a request's sessions. It lives in the
// request's context, so it goes when the request does.
type states struct {
	m map[*sessions.Session]*state // owned by the goroutine serving the request
}

// statesKey is the context key of a request's *states.
type statesKey struct{}

// requestStates returns r's states. If r has none and create is set, it
// adds them to r's context, replacing *r as gorilla's registry does.
func requestStates(r *http.Request, create bool) *states {
	if rs, ok := r.Context().Value(statesKey{}).(*states); ok {
		return rs
	}
	if !create {
		return nil
	}
	rs := &states{m: map[*sessions.Session]*state{}}
	*r = *r.WithContext(context.WithValue(r.Context(), statesKey{}, rs))
	return rs
}

// of returns s's state, a blank one the first time.
func (rs *states) of(s *sessions.Session) *state {
	ld, ok := rs.m[s]
	if !ok {
		ld = &state{}
		rs.m[s] = ld
	}
	return ld
}

// forget drops s's state: s is stored nowhere.
func (rs *states) forget(s *sessions.Session) { delete(rs.m, s) }

// update saves a loaded session: a touch if its values are those loaded,
// else a versioned write that merges this request's changes into the
// stored values when another request saved them meanwhile.
func (st *Store) update(ctx context.Context, s *sessions.Session, ld *state, until time.Time) error {
	base, err := st.codec.Decode(ld.payload)
	if err != nil {
		return err
	}
	if reflect.DeepEqual(base, s.Values) {
		ld.changes = nil
		return st.touch(ctx, s, until)
	}
	payload, err := st.codec.Encode(s.Values)
	if err != nil {
		return err
	}
	var (
		edits  []edit       // the changes besides those recorded, made on first conflict
		merged map[any]any  // the values stored, when a merge made them
		stored = payload    // the payload written by the last attempt
		diffed = false      // edits is made
		fns    = ld.changes // replayed on a conflict
	)
	_, err = st.sessions.UpdateUntil(ctx, s.ID, func(p *[]byte) error {
		if bytes.Equal(*p, ld.payload) {
			// Nobody saved the session since this request loaded it.
			*p, stored, merged = payload, payload, nil
			return nil
		}
		fresh, err := st.codec.Decode(*p)
		if err != nil {
			return err
		}
		if !diffed {
			// What the request did besides its recorded changes: replay
			// those on the loaded values and compare with its values.
			for _, fn := range fns {
				fn(base)
			}
			edits, diffed = diff(base, s.Values), true
		}
		for _, fn := range fns {
			fn(fresh)
		}
		for _, e := range edits {
			if e.del {
				delete(fresh, e.key)
			} else {
				fresh[e.key] = e.value
			}
		}
		enc, err := st.codec.Encode(fresh)
		if err != nil {
			return err
		}
		*p, stored, merged = enc, enc, fresh
		return nil
	}, until)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		return errDeleted
	case err != nil:
		return fmt.Errorf("gorillastore: save session %q: %w", s.Name(), err)
	}
	if merged != nil {
		clear(s.Values)
		maps.Copy(s.Values, merged)
	}
	ld.payload, ld.changes = stored, nil
	return nil
}

// touch extends the session's expiry to until, or by the store's TTL when
// until is zero, through the store's batched touches.
func (st *Store) touch(ctx context.Context, s *sessions.Session, until time.Time) error {
	var err error
	if until.IsZero() {
		err = st.sessions.Touch(ctx, s.ID)
	} else {
		err = st.sessions.TouchUntil(ctx, s.ID, until)
	}
	if err != nil {
		return fmt.Errorf("gorillastore: extend session %q: %w", s.Name(), err)
	}
	return nil
}

// edit sets or deletes one key.
type edit struct {
	key, value any
	del        bool
}

// diff returns the edits that turn from into to.
func diff(from, to map[any]any) []edit {
	var edits []edit
	for k, v := range to {
		if old, ok := from[k]; !ok || !reflect.DeepEqual(old, v) {
			edits = append(edits, edit{key: k, value: v})
		}
	}
	for k := range from {
		if _, ok := to[k]; !ok {
			edits = append(edits, edit{key: k, del: true})
		}
	}
	return edits
}
