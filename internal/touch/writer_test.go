package touch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// server is a Server recording its commands.
type server struct {
	mu       sync.Mutex
	lives    map[string]time.Duration // live sessions and their stored lifetimes
	commands []string
	fail     error
}

func (s *server) TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, fmt.Sprintf("touch %d to %s", len(ids), expires.Format(time.TimeOnly)))
	return int64(len(ids)), s.fail
}

func (s *server) TTLs(ctx context.Context, ids []string, now time.Time) (map[string]time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, fmt.Sprintf("ttls %d", len(ids)))
	out := make(map[string]time.Duration)
	for _, id := range ids {
		if l, ok := s.lives[id]; ok {
			out[id] = l
		}
	}
	return out, s.fail
}

func TestWriterGroupsAndResolves(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := &server{lives: map[string]time.Duration{"own": 2 * time.Hour, "default": 0}}
	w := NewWriter(srv, WriterOptions{Timeout: time.Second, Granularity: time.Second, DefaultTTL: time.Hour})
	batch := map[string]Pending{
		"a":       {At: at, Life: time.Hour},
		"b":       {At: at.Add(300 * time.Millisecond), Life: time.Hour}, // rounds to a's second
		"own":     {At: at},
		"default": {At: at},
		"ghost":   {At: at},
	}
	failed, res, err := w.Write(context.Background(), batch, at)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Write = %v, %v", failed, err)
	}
	want := []string{"ttls 3", "touch 2 to 04:04:05", "touch 1 to 04:04:06", "touch 1 to 05:04:05"}
	srv.mu.Lock()
	got := slices.Clone(srv.commands)
	srv.mu.Unlock()
	slices.Sort(got[1:])
	slices.Sort(want[1:])
	if !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	if res.Sessions != 4 || res.Groups != 3 {
		t.Fatalf("result %+v, want 4 sessions in 3 groups (ghost is gone)", res)
	}
	srv.fail = errors.New("down")
	failed, _, err = w.Write(context.Background(), map[string]Pending{"a": {At: at, Life: time.Hour}}, at)
	if err == nil || len(failed) != 1 {
		t.Fatalf("failing Write = %v, %v", failed, err)
	}
	failed, _, err = w.Write(context.Background(), map[string]Pending{"own": {At: at}}, at)
	if err == nil || len(failed) != 1 {
		t.Fatalf("Write with a failing lifetime read = %v, %v", failed, err)
	}
}

// hung is a server whose touch commands never return before their
// deadline.
type hung struct{ server }

func (h *hung) TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error) {
	_, _ = h.server.TouchMany(ctx, ids, expires, now)
	<-ctx.Done()
	return 0, ctx.Err()
}

func TestWriterShrinksOnTimeout(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	h := &hung{}
	var shrunk []int
	w := NewWriter(h, WriterOptions{Timeout: 5 * time.Millisecond, Granularity: time.Second, DefaultTTL: time.Hour,
		OnShrink: func(n, next int) { shrunk = append(shrunk, n, next) }})
	batch := make(map[string]Pending)
	for i := range 120 {
		batch[fmt.Sprint(i)] = Pending{Until: at}
	}
	failed, _, err := w.Write(context.Background(), batch, at)
	if !errors.Is(err, context.DeadlineExceeded) || len(failed) != 120 {
		t.Fatalf("Write = %d failed, %v", len(failed), err)
	}
	// The halves time out too, and shrink later commands to the floor.
	if !slices.Equal(shrunk, []int{120, 60, 60, MinIDsPerCommand}) || w.Chunk() != MinIDsPerCommand {
		t.Fatalf("shrunk %v to %d, want 120 → 60 → %d", shrunk, w.Chunk(), MinIDsPerCommand)
	}
	if len(h.commands) != 3 {
		t.Fatalf("%d commands, want the first and its two halves", len(h.commands))
	}
}

func TestFlusher(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var failures []error
	fail := errors.New("down")
	f := NewFlusher(time.Hour, func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return fail
		}
		return nil
	}, func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	})
	f.interval = 5 * time.Millisecond // first backoff
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	f.Kick()
	f.Kick() // never blocks
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not retry")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if len(failures) != 1 || !errors.Is(failures[0], fail) {
		t.Fatalf("failures %v", failures)
	}
}
