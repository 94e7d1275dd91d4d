// Package mongotest gives tests a MongoDB server: a running one named by
// MONGODB_URI, a container started from MONGODB_IMAGE, or else an embedded
// FerretDB built from this module and run as a child process.
//
// A test package calls [Main] from TestMain and then [Client] or
// [Collection] from its tests:
//
//	func TestMain(m *testing.M) { mongotest.Main(m) }
//
//	func TestX(t *testing.T) {
//		coll := mongotest.Collection(t)
//		...
//	}
//
// FerretDB v1 is not MongoDB: it has no TTL indexes, collMod or change
// streams. Tests that need those must check for the server's errors or
// run with MONGODB_URI or MONGODB_IMAGE.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/internal/leaktest"
)

// Database is the database that [Collection] creates its collections in.
const Database = "sessionstore_test"

// mainStartTimeout bounds [Start] inside [Main]; [Start] has tighter bounds
// of its own for each step.
const mainStartTimeout = 15 * time.Minute

var (
	mu     sync.Mutex    // protects server and client
	server *Server       // set by Main while the tests run
	client *mongo.Client // cached by Client

	collections atomic.Uint64 // counts names made by Collection
	runID       = randomHex() // tells apart processes sharing one server
)

// Main starts a server with [Start], runs the tests, stops the server and
// exits with the tests' code. Call it from TestMain. It writes which server
// it uses to stderr. When no server can be started it writes why and exits
// with code 1: tests that need a server fail rather than skip. After the
// server stops, it fails the run if the tests left a goroutine running
// other than those whose stack names one of ignore, functions of other
// libraries that keep a goroutine by design (see package
// internal/leaktest).
func Main(m *testing.M, ignore ...string) {
	os.Exit(run(m, ignore))
}

func run(m *testing.M, ignore []string) int {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), mainStartTimeout)
	s, err := Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: no MongoDB server for the tests: %v\n", err)
		fmt.Fprintln(os.Stderr, "(the server is MONGODB_URI if set, else a container of MONGODB_IMAGE if set, else an embedded FerretDB)")
		return 1
	}
	fmt.Fprintf(os.Stderr, "mongotest: using %s server %s (ready in %v)\n",
		s.Kind(), redact(s.URI()), time.Since(began).Round(time.Millisecond))

	mu.Lock()
	server = s
	mu.Unlock()

	code := m.Run()

	mu.Lock()
	c := client
	server, client = nil, nil
	mu.Unlock()

	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
		err := c.Disconnect(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "mongotest: disconnect: %v\n", err)
		}
	}
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "mongotest: FAIL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	// testcontainers keeps a reaper connection and the Docker client's
	// idle connections for the life of the process.
	if s.Kind() == KindContainer {
		ignore = append(ignore, "github.com/testcontainers/testcontainers-go", "net/http.(*persistConn)")
	}
	if err := leaktest.Check(ignore...); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// URI returns the URI of the server that [Main] started, or else the value
// of MONGODB_URI, or "" when there is neither. It is safe for concurrent use.
func URI() string {
	mu.Lock()
	defer mu.Unlock()
	return uriLocked()
}

func uriLocked() string {
	if server != nil {
		return server.URI()
	}
	return os.Getenv("MONGODB_URI")
}

// Client returns a connected client for the server at [URI], shared by all
// tests of the process; tests must not disconnect it. [Main] disconnects it
// after the tests. It fails the test when there is no server or the server
// does not answer a ping. It is safe for concurrent use.
func Client(t testing.TB) *mongo.Client {
	t.Helper()
	mu.Lock()
	c, uri := client, uriLocked()
	mu.Unlock()
	if c != nil {
		return c
	}
	if uri == "" {
		t.Fatal("mongotest: no server: call mongotest.Main from TestMain or set MONGODB_URI")
	}

	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("mongotest: connect to %s: %v", redact(uri), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	if err := c.Ping(ctx, nil); err != nil {
		_ = c.Disconnect(ctx)
		t.Fatalf("mongotest: ping %s: %v", redact(uri), err)
	}

	mu.Lock()
	winner := client
	if winner == nil {
		client = c
	}
	mu.Unlock()
	if winner != nil { // another test connected first
		_ = c.Disconnect(ctx)
		return winner
	}
	return c
}

// Collection returns a collection of [Database] with a name no other call
// returns, named after the test; it does not exist until the test writes to
// it. The collection is dropped when the test ends.
func Collection(t testing.TB) *mongo.Collection {
	t.Helper()
	name := fmt.Sprintf("%s_%s_%d", sanitize(t.Name()), runID, collections.Add(1))
	coll := Client(t).Database(Database).Collection(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
		defer cancel()
		if err := coll.Drop(ctx); err != nil {
			t.Errorf("mongotest: drop collection %s: %v", name, err)
		}
	})
	return coll
}

// sanitize turns a test name into a short collection name prefix.
func sanitize(name string) string {
	const limit = 40
	var b strings.Builder
	for _, r := range name {
		if b.Len() == limit {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// redact hides the credentials in a URI for printing. It does not use
// net/url, which rejects URIs that list several hosts.
func redact(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	hosts, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		hosts = "xxxxx@" + hosts[i+1:]
	}
	return scheme + "://" + hosts + tail
}

// CallTimeout bounds each server call of this package's helpers and of
// tests using [Context]: far more than any call should take, even on
// FerretDB under -race.
const CallTimeout = 30 * time.Second

// Context returns a context bounded by CallTimeout and cancelled when t
// ends, for the server calls a test makes itself.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	t.Cleanup(cancel)
	return ctx
}
