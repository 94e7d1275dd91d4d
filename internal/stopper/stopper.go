// Package stopper owns a store's background goroutines: each starts by
// name, and Stop cancels them all, waits for them, and refuses new ones.
package stopper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrStopped is returned by Go after Stop.
var ErrStopped = errors.New("sessionstore: background work is stopped")

// Stopper runs named goroutines until Stop. Its methods are safe for
// concurrent use. The zero value is not usable; call New.
type Stopper struct {
	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines started by Go

	mu      sync.Mutex     // protects stopped and running
	stopped bool           // Go refuses new work
	running map[string]int // goroutines by name
}

// New returns a Stopper with nothing running.
func New() *Stopper {
	ctx, cancel := context.WithCancel(context.Background())
	return &Stopper{ctx: ctx, cancel: cancel, running: make(map[string]int)}
}

// Go runs f on a new goroutine with a context that Stop cancels. f must
// return soon after that. After Stop, Go returns ErrStopped and does not
// run f.
func (s *Stopper) Go(name string, f func(ctx context.Context)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("%w: cannot start %s", ErrStopped, name)
	}
	s.running[name]++
	s.wg.Add(1)
	go func() {
		defer s.done(name)
		f(s.ctx)
	}()
	return nil
}

func (s *Stopper) done(name string) {
	s.mu.Lock()
	if s.running[name]--; s.running[name] == 0 {
		delete(s.running, name)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Running returns the names of the goroutines still running, sorted, one
// entry per goroutine.
func (s *Stopper) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, n := range s.running {
		for range n {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Stop refuses new work, cancels the context of every goroutine and waits
// for them to return, or for ctx to end: then it returns an error naming
// those still running. Stop may be called more than once.
func (s *Stopper) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sessionstore: background work still running after Stop: %v: %w", s.Running(), ctx.Err())
	}
}
