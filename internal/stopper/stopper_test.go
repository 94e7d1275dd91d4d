package stopper

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStopCancelsAndWaits(t *testing.T) {
	s := New()
	started := make(chan struct{}, 2)
	returned := make(chan string, 2)
	for _, name := range []string{"flusher", "reaper"} {
		if err := s.Go(name, func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond)
			returned <- name
		}); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	<-started
	if got := s.Running(); !slices.Equal(got, []string{"flusher", "reaper"}) {
		t.Fatalf("Running = %v", got)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(returned) != 2 {
		t.Fatalf("Stop returned with %d of 2 goroutines done", len(returned))
	}
	if got := s.Running(); len(got) != 0 {
		t.Fatalf("Running after Stop = %v", got)
	}
	if err := s.Go("late", func(context.Context) { t.Error("ran after Stop") }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Go after Stop = %v, want ErrStopped", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStopReturnsByDeadline(t *testing.T) {
	s := New()
	release := make(chan struct{})
	_ = s.Go("stuck", func(context.Context) { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a deadline error", err)
	}
	if want := "[stuck]"; !strings.Contains(err.Error(), want) {
		t.Fatalf("Stop error %q does not name %s", err, want)
	}
	close(release)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
