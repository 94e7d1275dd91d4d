// Package leaktest fails a test binary whose tests leave goroutines
// behind, as go.uber.org/goleak does, without adding a module to the
// root go.mod: call [Main] from TestMain.
//
//	func TestMain(m *testing.M) { leaktest.Main(m) }
//
// The check runs once, after every test of the package: a goroutine that
// a test started and that is still running then, after a grace period
// for goroutines on their way out, fails the run with its stack.
package leaktest

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Grace is how long [Check] waits for goroutines to end before it calls
// them leaked: a Close that has signalled its goroutines may return a
// moment before they do.
const Grace = 5 * time.Second

// standard are functions whose goroutines outlive a test by design:
// the signal watcher that os/signal starts once and never stops, and
// the testing package's own, which run the tests (when Leaked is called
// from a test) and the fuzzing workers.
var standard = []string{
	"os/signal.signal_recv",
	"os/signal.loop",
	"testing.(*M).Run(",
	"testing.tRunner(",
	"testing.runFuzzing(",
	"testing.(*F).Fuzz(",
}

// Main runs the tests, then [Check] with ignore, and exits: with the
// tests' code, or 1 if they passed and goroutines were left behind.
func Main(m *testing.M, ignore ...string) {
	os.Exit(Run(m, ignore...))
}

// Run runs the tests, then [Check] with ignore, and returns the tests'
// code, or 1 if they passed and goroutines were left behind, after
// writing their stacks to stderr. It is for TestMain functions that do
// more after the tests, such as stopping a server, before they exit.
func Run(m *testing.M, ignore ...string) int {
	code := m.Run()
	if err := Check(ignore...); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Check waits up to [Grace] for every goroutine but the caller's, the
// standard ones and those whose stack contains one of ignore (function
// names such as "net/http.(*persistConn).readLoop") to end. It returns
// an error listing the stacks of those still running, or nil.
func Check(ignore ...string) error { return check(Grace, ignore) }

func check(grace time.Duration, ignore []string) error {
	deadline := time.Now().Add(grace)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		left := Leaked(ignore...)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaktest: %d goroutine(s) still running %v after the tests:\n\n%s",
				len(left), grace, strings.Join(left, "\n\n"))
		}
		time.Sleep(wait)
	}
}

// Leaked returns the stacks of the goroutines running now, but the
// caller's, the standard ones and those whose stack contains one of
// ignore.
func Leaked(ignore ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	// The caller's goroutine comes first.
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(bytes.TrimSpace(g))
		if i == 0 || s == "" || matches(s, standard) || matches(s, ignore) {
			continue
		}
		left = append(left, s)
	}
	return left
}

// matches reports whether stack names a function of any of funcs.
func matches(stack string, funcs []string) bool {
	for _, f := range funcs {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}
