package httpsession_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
)

// fakeStore is an in-memory httpsession.Store of Records of T that
// records its calls. It takes no expiries, so the middleware uses its
// plain Create, Update and Touch.
type fakeStore[T any] struct {
	mu    sync.Mutex                       // protects the fields below
	data  map[string]httpsession.Record[T] // sessions by id
	calls []string                         // "Op id", in order
	// Errors to return from each operation instead of doing it.
	getErr, setErr, touchErr, deleteErr error // setErr fails Create and Update
}

var _ httpsession.Store[httpsession.Record[int]] = (*fakeStore[int])(nil)

func newFakeStore[T any]() *fakeStore[T] {
	return &fakeStore[T]{data: make(map[string]httpsession.Record[T])}
}

func (f *fakeStore[T]) record(op, id string) {
	f.calls = append(f.calls, op+" "+id)
}

func (f *fakeStore[T]) Get(_ context.Context, id string) (httpsession.Record[T], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Get", id)
	var zero httpsession.Record[T]
	if f.getErr != nil {
		return zero, f.getErr
	}
	v, ok := f.data[id]
	if !ok {
		return zero, fmt.Errorf("fake: %q: %w", id, sessionstore.ErrNotFound)
	}
	return v, nil
}

func (f *fakeStore[T]) Create(_ context.Context, id string, v httpsession.Record[T]) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Create", id)
	if f.setErr != nil {
		return f.setErr
	}
	if _, ok := f.data[id]; ok {
		return fmt.Errorf("fake: %q: %w", id, sessionstore.ErrExists)
	}
	f.data[id] = v
	return nil
}

func (f *fakeStore[T]) Update(_ context.Context, id string, fn func(*httpsession.Record[T]) error) (httpsession.Record[T], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Update", id)
	var zero httpsession.Record[T]
	if f.setErr != nil {
		return zero, f.setErr
	}
	v, ok := f.data[id]
	if !ok {
		return zero, fmt.Errorf("fake: %q: %w", id, sessionstore.ErrNotFound)
	}
	if err := fn(&v); err != nil {
		return zero, err
	}
	f.data[id] = v
	return v, nil
}

func (f *fakeStore[T]) Touch(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Touch", id)
	return f.touchErr
}

func (f *fakeStore[T]) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Delete", id)
	if f.deleteErr != nil {
		return f.deleteErr
	}
	delete(f.data, id)
	return nil
}

// takeCalls returns the calls recorded since the last takeCalls.
func (f *fakeStore[T]) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// ids returns the stored ids, sorted.
func (f *fakeStore[T]) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.data))
}

// get returns the value stored under id.
func (f *fakeStore[T]) get(id string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[id]
	return v.Value, ok
}

// put stores v under id, with the cookie of a session that has none,
// without recording a call.
func (f *fakeStore[T]) put(id string, v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[id] = httpsession.Record[T]{Value: v}
}
