package mongotest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Kinds of server, as reported by [Server.Kind].
const (
	KindExternal  = "external"  // named by MONGODB_URI
	KindContainer = "container" // started from MONGODB_IMAGE
	KindFerretDB  = "ferretdb"  // embedded FerretDB run as a child process
)

const (
	// readyTimeout bounds the wait for a started server to answer a ping.
	readyTimeout = 30 * time.Second
	// pingTimeout bounds one ping while waiting for a server.
	pingTimeout = 5 * time.Second
	// stopTimeout bounds a server's clean stop before it is killed.
	stopTimeout = 10 * time.Second
	// containerTimeout bounds pulling and starting a container image.
	containerTimeout = 5 * time.Minute
)

// Server is a MongoDB server for tests. Its methods are safe for concurrent
// use.
type Server struct {
	uri  string
	kind string

	container testcontainers.Container // for KindContainer

	// For KindFerretDB:
	bin     string // the FerretDB command
	addr    string // host:port the child listens on, kept across restarts
	dataDir string // the child's data, kept across restarts; "" for a temporary one of its own
	ownDir  bool   // Stop removes dataDir

	procMu  sync.Mutex // protects proc and stopped
	proc    *process   // the running child; nil after Kill
	stopped bool       // Stop was called: Restart fails

	stopOnce sync.Once
	stopErr  error // set by stopOnce
}

// Start returns a server answering pings: the one at MONGODB_URI when that
// is set (Start does not stop it); else a container of the image named by
// MONGODB_IMAGE, such as mongo:7, started with testcontainers; else an
// embedded FerretDB on SQLite, built with go build (the first build takes
// minutes, later ones seconds) and run as a child process on a free
// loopback port, logging at the level in MONGOTEST_FERRETDB_LOG (default
// error) to stderr. ctx bounds the start; each step has a bound of its own.
// The caller must call [Server.Stop].
func Start(ctx context.Context) (*Server, error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		if err := waitReady(ctx, uri, nil); err != nil {
			return nil, fmt.Errorf("mongotest: MONGODB_URI server %s: %w", redact(uri), err)
		}
		return &Server{uri: uri, kind: KindExternal}, nil
	}
	if image := os.Getenv("MONGODB_IMAGE"); image != "" {
		return startContainer(ctx, image)
	}
	return startFerretDB(ctx)
}

// URI returns the server's connection string.
func (s *Server) URI() string { return s.uri }

// Kind returns [KindExternal], [KindContainer] or [KindFerretDB].
func (s *Server) Kind() string { return s.kind }

// Stop stops a server that Start started and removes its data; it leaves an
// external server alone. It waits a bounded time and then kills the server.
// Calls after the first return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		switch s.kind {
		case KindContainer:
			s.stopErr = s.stopContainer()
		case KindFerretDB:
			s.stopErr = s.stopProcess()
		}
	})
	return s.stopErr
}

func startContainer(ctx context.Context, image string) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, containerTimeout)
	defer cancel()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("27017/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("27017/tcp")),
	)
	if err != nil {
		_ = testcontainers.TerminateContainer(c) // c may exist on error
		return nil, fmt.Errorf("mongotest: start container %s: %w", image, err)
	}
	s := &Server{kind: KindContainer, container: c}
	endpoint, err := c.PortEndpoint(ctx, "27017/tcp", "mongodb")
	if err == nil {
		s.uri = endpoint + "/"
		err = waitReady(ctx, s.uri, nil)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mongotest: container %s: %w", image, err), s.Stop())
	}
	return s, nil
}

func (s *Server) stopContainer() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*stopTimeout)
	defer cancel()
	if err := s.container.Terminate(ctx, testcontainers.StopTimeout(stopTimeout)); err != nil {
		return fmt.Errorf("mongotest: terminate container: %w", err)
	}
	return nil
}

// waitReady pings the server at uri until it answers, for at most
// readyTimeout. It gives up early when exited is closed.
func waitReady(ctx context.Context, uri string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		_ = c.Disconnect(ctx)
	}()
	for {
		pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
		err := c.Ping(pctx, nil)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer to ping (%v): %w", context.Cause(ctx), err)
		case <-exited:
			return errors.New("server exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
