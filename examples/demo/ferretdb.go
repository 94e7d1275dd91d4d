package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/sessionstore/sessionstore/integration/oplog"
	"github.com/sessionstore/sessionstore/integration/wiresync"
)

// embeddedDatabase is the database named in the embedded server's URI.
const embeddedDatabase = "demo"

// embedded is a FerretDB v1 server running inside the demo's process,
// keeping its data in SQLite files.
type embedded struct {
	uri    string             // with embeddedDatabase as its path
	proxy  *wiresync.Proxy    // what clients connect to
	cancel context.CancelFunc // stops Run
	done   chan struct{}      // closed when Run has returned
	trim   chan struct{}      // closed when the oplog's trimming has stopped; nil if it never started
}

// startFerretDB starts FerretDB on the TCP address addr, keeping its
// databases in dir, which it creates if needed. FerretDB logs to logger.
// The caller must call stop.
func startFerretDB(addr, dir string, logger *slog.Logger) (*embedded, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded FerretDB: data directory: %w", err)
	}
	// FerretDB's own error for a busy address is vague, and it leaves its
	// backend open when listening fails, so try the address first.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded FerretDB cannot listen on %s (%w); stop what uses it, set FERRETDB_ADDR to another address, or set MONGODB_URI to use a running server", addr, err)
	}
	if err := ln.Close(); err != nil {
		return nil, err
	}
	// FerretDB listens on a loopback port of its own; clients reach it on
	// addr through a proxy that runs writes one at a time, which FerretDB
	// v1 needs for atomic conditional updates (see package wiresync).
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &embedded{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx) // always nil; returns once every connection is closed
	}()
	// New has bound the listener, so MongoDBURI does not wait for Run.
	u, err := url.Parse(f.MongoDBURI())
	if err == nil {
		e.proxy, err = wiresync.Start(addr, u.Host)
	}
	if err == nil {
		// The oplog lets several demo instances on this server keep their
		// memory coherent (see package oplog).
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = oplog.Ensure(ctx, f.MongoDBURI(), oplog.DefaultSize, oplog.DefaultEntries)
		cancel()
	}
	if err == nil {
		e.trim = make(chan struct{})
		go func() {
			defer close(e.trim)
			_ = oplog.Trim(ctx, f.MongoDBURI(), oplog.TrimInterval, func(err error) { logger.Warn(err.Error()) })
		}()
	}
	if err != nil {
		e.stop(context.Background())
		return nil, fmt.Errorf("embedded FerretDB: %w", err)
	}
	u.Host = e.proxy.Addr()
	u.Path = "/" + embeddedDatabase
	e.uri = u.String()
	return e, nil
}

// stop stops the server and waits for it, or for ctx to end.
func (e *embedded) stop(ctx context.Context) error {
	if e.proxy != nil {
		_ = e.proxy.Close()
	}
	e.cancel()
	if e.trim != nil {
		select {
		case <-e.trim:
		case <-ctx.Done():
			return fmt.Errorf("embedded FerretDB's oplog trimming did not stop: %w", context.Cause(ctx))
		}
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded FerretDB did not stop: %w", context.Cause(ctx))
	}
}
