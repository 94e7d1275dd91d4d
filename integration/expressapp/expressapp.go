// Package expressapp runs real Express apps for tests: express-session over
// @iwsio/mongodb-express-session or connect-mongo (stringify: false), at the
// versions pinned in node/package-lock.json, on a MongoDB database that a
// Go service shares.
//
// [Require] finds node and npm (skipping the test without them, failing it
// under CI=true); [Install] installs the pinned packages with npm ci into a
// cache directory outside the repository, once per version set; [Start]
// runs the apps of node/server.mjs, each on a free loopback port, until
// the test ends. The apps' routes are listed in node/server.mjs.
package expressapp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed node/package.json node/package-lock.json node/server.mjs
var files embed.FS

const (
	// installTimeout bounds npm ci: a few seconds with npm's cache warm.
	installTimeout = 5 * time.Minute
	// startTimeout bounds the wait for the apps' ports.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the apps' clean exit once stdin closes.
	stopTimeout = 10 * time.Second
	// installedStamp marks a complete install in a cache directory.
	installedStamp = ".sessionstore-installed"
)

// Tools are the paths of node and npm.
type Tools struct {
	Node, NPM string
}

// Require returns the paths of node and npm. Without them it skips the
// test with a message saying so, except under CI=true, where it fails
// it: CI machines have both.
func Require(t testing.TB) Tools {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if err := errors.Join(nerr, perr); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("expressapp: the Express interop tests need node and npm (Node 20.8+), and CI=true forbids skipping them: %v", err)
		}
		t.Skipf("skipping: the Express interop tests need node and npm (Node 20.8+): %v", err)
	}
	return Tools{Node: node, NPM: npm}
}

// Install installs the pinned npm packages with npm ci, once per version
// set, and returns the directory holding them. The directory is named by
// a hash of the package files under $SESSIONSTORE_NODE_CACHE or else the
// user's cache directory, outside the repository, so that later runs on
// the machine reuse it.
func Install(t testing.TB, tools Tools) string {
	t.Helper()
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b := mustRead(t, f)
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	root := os.Getenv("SESSIONSTORE_NODE_CACHE")
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		root = filepath.Join(base, "sessionstore", "interop-node")
	}
	dir := filepath.Join(root, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, installedStamp)); err == nil {
		t.Logf("expressapp: npm packages cached in %s", dir)
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(root, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp) // left only when the rename below failed
	for _, f := range []string{"package.json", "package-lock.json"} {
		if err := os.WriteFile(filepath.Join(tmp, f), mustRead(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, tools.NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("expressapp: npm ci of the pinned Express packages: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, installedStamp), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another test process installed the same versions first.
		if _, serr := os.Stat(filepath.Join(dir, installedStamp)); serr != nil {
			t.Fatalf("expressapp: install npm packages into %s: %v", dir, err)
		}
	}
	t.Logf("expressapp: npm ci installed the pinned packages in %v into %s", time.Since(began).Round(time.Millisecond), dir)
	return dir
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile("node/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// App configures one Express app of node/server.mjs.
type App struct {
	Name              string         `json:"name"`
	Store             string         `json:"store"` // "iwsio" or "connect-mongo"
	Collection        string         `json:"collection"`
	Prefix            string         `json:"prefix,omitempty"`
	Secret            string         `json:"secret"`
	TTL               int            `json:"ttl"`    // seconds
	Cookie            map[string]any `json:"cookie"` // express-session's cookie option
	Resave            bool           `json:"resave"`
	SaveUninitialized bool           `json:"saveUninitialized"`
	Rolling           bool           `json:"rolling"`
}

// Start runs apps in one Node process, with the packages Install put in
// dir, on the MongoDB deployment at uri (the database is its path), and
// returns each app's base URL by name. The process stops when the test
// ends; its stderr goes to the test log then.
func Start(t testing.TB, tools Tools, dir, uri string, apps []App) map[string]string {
	t.Helper()
	// A script of its own per process, so that concurrent runs never see
	// a half-written file; it resolves its packages from dir.
	script, err := os.CreateTemp(dir, "server-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	_, err = script.Write(mustRead(t, "server.mjs"))
	if cerr := script.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script.Name()) })

	cfg, err := json.Marshal(map[string]any{"uri": uri, "apps": apps})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tools.Node, script.Name())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "INTEROP_APPS="+string(cfg))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("expressapp: start node: %v", err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close() // the apps stop when stdin closes
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("expressapp: the Express apps did not stop within %v of stdin closing", stopTimeout)
		}
		if s := stderr.String(); s != "" {
			t.Logf("expressapp: the Express apps' stderr:\n%s", s)
		}
	})
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("expressapp: the Express apps exited before listening:\n%s", stderr.String())
		}
		line = l
	case <-time.After(startTimeout):
		t.Fatalf("expressapp: the Express apps did not listen within %v:\n%s", startTimeout, stderr.String())
	}
	var ports map[string]int
	if err := json.Unmarshal([]byte(line), &ports); err != nil {
		t.Fatalf("expressapp: the Express apps printed %q, not their ports: %v", line, err)
	}
	urls := make(map[string]string, len(ports))
	for name, port := range ports {
		urls[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return urls
}

// lockedBuffer is a bytes.Buffer safe for one writer and other readers.
type lockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// DatabaseURI returns uri with its path set to db, the database both
// Node stores use.
func DatabaseURI(t testing.TB, uri, db string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("expressapp: MongoDB URI %q: %v (a URI naming several hosts is not supported here)", uri, err)
	}
	u.Path = "/" + db
	return u.String()
}
