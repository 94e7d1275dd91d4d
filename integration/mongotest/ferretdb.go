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

// process is one run of the FerretDB child.
type process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser // the child's stdin; closing it stops the child
	exited  chan struct{}  // closed once cmd has been waited for
	waitErr error          // cmd.Wait's result; read after exited is closed
}

func startFerretDB(ctx context.Context) (*Server, error) {
	return startFerretDBIn(ctx, "", false)
}

// StartFerretDB starts an embedded FerretDB as [Start] does without
// MONGODB_URI and MONGODB_IMAGE, with its data in a directory of its own,
// so that [Server.Kill] and [Server.Restart] can take it down like a
// crash and bring it back on the same address with the data it had.
// [Server.Stop] stops it and removes the directory.
func StartFerretDB(ctx context.Context) (*Server, error) {
	dir, err := os.MkdirTemp("", tempPrefix+"restartable-*")
	if err != nil {
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	s, err := startFerretDBIn(ctx, dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// startFerretDBIn starts FerretDB with its data in dir, or in a temporary
// directory of the child's own when dir is empty; with own, Stop removes
// dir.
func startFerretDBIn(ctx context.Context, dir string, own bool) (*Server, error) {
	bin, unlock, err := buildFerretDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("mongotest: build FerretDB: %w", err)
	}
	defer unlock()
	s := &Server{kind: KindFerretDB, bin: bin, addr: "127.0.0.1:0", dataDir: dir, ownDir: own}
	p, uri, err := s.spawn(ctx, unlock)
	if err != nil {
		return nil, err
	}
	s.uri = uri
	s.addr = strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	s.proc = p
	return s, nil
}

// spawn starts the child on s.addr and waits until it answers a ping. It
// calls started once the child runs.
func (s *Server) spawn(ctx context.Context, started func()) (*process, string, error) {
	level := os.Getenv("MONGOTEST_FERRETDB_LOG")
	if level == "" {
		level = "error" // at warn, FerretDB dumps every failed command
	}
	args := []string{"-listen", s.addr, "-log", level}
	if s.dataDir != "" {
		args = append(args, "-dir", s.dataDir)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", fmt.Errorf("mongotest: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("mongotest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("mongotest: start FerretDB: %w", err)
	}
	started() // the binary runs now; a later build may replace the file

	p := &process{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	uris := make(chan string, 1)
	go p.watch(stdout, uris)

	fail := func(err error) (*process, string, error) {
		return nil, "", errors.Join(fmt.Errorf("mongotest: FerretDB: %w", err), p.stop(s.dataDir == ""))
	}
	timer := time.NewTimer(uriTimeout)
	defer timer.Stop()
	var uri string
	select {
	case u, ok := <-uris:
		if !ok {
			return fail(errors.New("exited before printing its URI"))
		}
		if !strings.HasPrefix(u, "mongodb://") {
			return fail(fmt.Errorf("printed %q, not a URI", u))
		}
		uri = u
	case <-timer.C:
		return fail(fmt.Errorf("no URI printed within %v", uriTimeout))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	if err := waitReady(ctx, uri, p.exited); err != nil {
		return fail(err)
	}
	return p, uri, nil
}

// watch sends the child's first stdout line on uris, closes uris, then
// discards stdout until the child exits, waits for it and closes p.exited.
func (p *process) watch(stdout io.Reader, uris chan<- string) {
	defer close(p.exited)
	sc := bufio.NewScanner(stdout)
	if sc.Scan() {
		uris <- strings.TrimSpace(sc.Text())
	}
	close(uris)
	_, _ = io.Copy(io.Discard, stdout)
	p.waitErr = p.cmd.Wait()
}

// Kill ends the embedded FerretDB with SIGKILL, as a crash or an
// out-of-memory kill would, and returns once the process has exited:
// clients see connections refused until [Server.Restart]. Killing a
// server already killed does nothing. It is an error for a server that
// [StartFerretDB] did not start, which has no data directory to restart
// from.
func (s *Server) Kill() error {
	if s.kind != KindFerretDB || !s.ownDir {
		return errors.New("mongotest: Kill needs a server started by StartFerretDB; this one is not this process's to kill")
	}
	s.procMu.Lock()
	defer s.procMu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		return fmt.Errorf("mongotest: FerretDB (pid %d) survived a kill", p.cmd.Process.Pid)
	}
	_ = p.stdin.Close()
	return nil
}

// Restart starts the embedded FerretDB that [Server.Kill] ended again, on
// the same address and data directory, and returns once it answers a
// ping. A server still running is left as it is. ctx bounds the start.
func (s *Server) Restart(ctx context.Context) error {
	if s.kind != KindFerretDB || !s.ownDir {
		return errors.New("mongotest: Restart needs a server started by StartFerretDB")
	}
	s.procMu.Lock()
	defer s.procMu.Unlock()
	switch {
	case s.stopped:
		return errors.New("mongotest: Restart after Stop")
	case s.proc != nil:
		return nil
	}
	p, _, err := s.spawn(ctx, func() {})
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// stopProcess stops the child, if it runs, and removes a data directory
// the server owns.
func (s *Server) stopProcess() error {
	s.procMu.Lock()
	p := s.proc
	s.proc, s.stopped = nil, true
	s.procMu.Unlock()
	var err error
	if p != nil {
		err = p.stop(s.dataDir == "")
	}
	if s.ownDir {
		if rerr := os.RemoveAll(s.dataDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("mongotest: remove FerretDB data: %w", rerr))
		}
	}
	return err
}

// stop closes the child's stdin and sends it SIGTERM (either stops it),
// waits stopTimeout, then kills it. With tempDir, the child keeps its
// data in a temporary directory of its own, removed here if it was
// killed.
func (p *process) stop(tempDir bool) error {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // unsupported on Windows; stdin suffices
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if errors.As(p.waitErr, &exit) && exit.ExitCode() == -1 {
			return nil // ended by our signal before it could catch it
		}
		if p.waitErr != nil {
			return fmt.Errorf("mongotest: FerretDB: %w", p.waitErr)
		}
		return nil
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	timer.Reset(stopTimeout)
	select {
	case <-p.exited:
	case <-timer.C:
		return fmt.Errorf("mongotest: FerretDB (pid %d) survived a kill", p.cmd.Process.Pid)
	}
	if tempDir {
		// A killed child leaves its data directory behind.
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-*", tempPrefix, p.cmd.Process.Pid)))
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
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
