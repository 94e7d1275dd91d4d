package mongotest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const (
	// modulePath is the module holding the FerretDB command.
	modulePath = "github.com/sessionstore/sessionstore/integration"
	// ferretdbPackage is the FerretDB command's import path.
	ferretdbPackage = modulePath + "/cmd/ferretdb"
	// buildTimeout bounds go build; a first build compiles all of
	// FerretDB, about two minutes on two cores.
	buildTimeout = 10 * time.Minute
	// uriTimeout bounds the wait for the child's URI line.
	uriTimeout = 30 * time.Second
	// tempPrefix starts the name of the child's temporary data directory
	// (see cmd/ferretdb), followed by the child's process id.
	tempPrefix = "sessionstore-ferretdb-"
)

func startFerretDB(ctx context.Context) (*Server, error) {
	bin, unlock, err := buildFerretDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("mongotest: build FerretDB: %w", err)
	}
	defer unlock()

	level := os.Getenv("MONGOTEST_FERRETDB_LOG")
	if level == "" {
		level = "error" // at warn, FerretDB dumps every failed command
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-log", level)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mongotest: start FerretDB: %w", err)
	}
	unlock() // the binary runs now; a later build may replace the file

	s := &Server{kind: KindFerretDB, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	uris := make(chan string, 1)
	go s.watch(stdout, uris)

	fail := func(err error) (*Server, error) {
		return nil, errors.Join(fmt.Errorf("mongotest: FerretDB: %w", err), s.Stop())
	}
	timer := time.NewTimer(uriTimeout)
	defer timer.Stop()
	select {
	case uri, ok := <-uris:
		if !ok {
			return fail(errors.New("exited before printing its URI"))
		}
		if !strings.HasPrefix(uri, "mongodb://") {
			return fail(fmt.Errorf("printed %q, not a URI", uri))
		}
		s.uri = uri
	case <-timer.C:
		return fail(fmt.Errorf("no URI printed within %v", uriTimeout))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	if err := waitReady(ctx, s.uri, s.exited); err != nil {
		return fail(err)
	}
	return s, nil
}

// watch sends the child's first stdout line on uris, closes uris, then
// discards stdout until the child exits, waits for it and closes s.exited.
func (s *Server) watch(stdout io.Reader, uris chan<- string) {
	defer close(s.exited)
	sc := bufio.NewScanner(stdout)
	if sc.Scan() {
		uris <- strings.TrimSpace(sc.Text())
	}
	close(uris)
	_, _ = io.Copy(io.Discard, stdout)
	s.waitErr = s.cmd.Wait()
}

// stopProcess closes the child's stdin and sends it SIGTERM (either stops
// it), waits stopTimeout, then kills it.
func (s *Server) stopProcess() error {
	_ = s.stdin.Close()
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // unsupported on Windows; stdin suffices
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		var exit *exec.ExitError
		if errors.As(s.waitErr, &exit) && exit.ExitCode() == -1 {
			return nil // ended by our signal before it could catch it
		}
		if s.waitErr != nil {
			return fmt.Errorf("mongotest: FerretDB: %w", s.waitErr)
		}
		return nil
	case <-timer.C:
	}
	_ = s.cmd.Process.Kill()
	timer.Reset(stopTimeout)
	select {
	case <-s.exited:
	case <-timer.C:
		return fmt.Errorf("mongotest: FerretDB (pid %d) survived a kill", s.cmd.Process.Pid)
	}
	// A killed child leaves its data directory behind.
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-*", tempPrefix, s.cmd.Process.Pid)))
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
	return fmt.Errorf("mongotest: FerretDB did not stop within %v and was killed", stopTimeout)
}

// buildFerretDB builds the FerretDB command into the user's cache directory
// with go build, which relinks only when something changed. It returns the
// binary and a func, safe to call twice, releasing the lock that keeps
// other processes from rewriting the binary before this one has started it.
func buildFerretDB(ctx context.Context) (bin string, unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()

	gocmd, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		return "", nil, err
	}
	// Ask the go command where the module is, so this works from any
	// module that requires it; build inside it, with its go.sum.
	out, err := goCommand(ctx, gocmd, "", "list", "-m", "-f", "{{.Dir}}", modulePath)
	if err != nil {
		return "", nil, err
	}
	modDir := strings.TrimSpace(out)
	if modDir == "" {
		return "", nil, fmt.Errorf("go list: no directory for module %s", modulePath)
	}

	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(modDir))
	dir := filepath.Join(base, "sessionstore", "ferretdb-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "ferretdb")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}

	unlock, err = lockFile(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return "", nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if _, err := goCommand(ctx, gocmd, modDir, "build", "-o", bin, ferretdbPackage); err != nil {
		unlock()
		return "", nil, err
	}
	return bin, unlock, nil
}

// goCommand runs the go command in dir and returns its stdout.
func goCommand(ctx context.Context, gocmd, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, gocmd, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
