package leaktest

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func parked(stop <-chan struct{}) { <-stop }

// A goroutine still running is reported with its stack, unless ignored;
// one that has ended is not, nor is the signal watcher of os/signal.
func TestLeaked(t *testing.T) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	stop := make(chan struct{})
	started, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); close(started); parked(stop) }()
	<-started
	time.Sleep(10 * time.Millisecond) // into parked

	left := Leaked()
	if len(left) != 1 || !strings.Contains(left[0], "leaktest.parked") {
		t.Fatalf("Leaked() = %q, want the parked goroutine only", left)
	}
	if left := Leaked("leaktest.parked"); len(left) != 0 {
		t.Fatalf("Leaked(ignoring it) = %q, want none", left)
	}
	err := check(50*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "1 goroutine(s) still running") || !strings.Contains(err.Error(), "leaktest.parked") {
		t.Fatalf("check with the goroutine parked: %v, want it reported with its stack", err)
	}
	close(stop)
	<-done
	if err := Check(); err != nil {
		t.Fatalf("Check after the goroutine ended: %v", err)
	}
}

// Check waits for a goroutine on its way out.
func TestCheckWaits(t *testing.T) {
	go time.Sleep(200 * time.Millisecond)
	if err := Check(); err != nil {
		t.Fatal(err)
	}
}
