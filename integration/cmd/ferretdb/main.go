// Command ferretdb runs an embedded FerretDB v1 server on SQLite for tests.
//
// Once it listens, it prints exactly one line, the server's URI
// (mongodb://127.0.0.1:PORT/), to stdout. It stops on SIGINT or SIGTERM and
// when its stdin reaches end of file, so a parent that holds a pipe to its
// stdin takes it down by exiting, even when killed. Run it by hand with a
// terminal or another open stdin; with stdin from /dev/null it stops at once.
//
// It embeds FerretDB because FerretDB's own command, built with go install,
// panics at start (its module ships an empty build/version/version.txt).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/sessionstore/sessionstore/integration/oplog"
	"github.com/sessionstore/sessionstore/integration/wiresync"
)

// stopGrace bounds how long FerretDB may take to close its connections after
// a stop request before the process exits anyway.
const stopGrace = 10 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "TCP `address` to listen on; port 0 picks a free port")
	dir := flag.String("dir", "", "SQLite data `directory`; empty means a temporary directory removed on exit")
	oplogSize := flag.Int64("oplog", oplog.DefaultSize, "size in `bytes` of the capped local.oplog.rs to create if missing; 0: none")
	oplogEntries := flag.Int64("oplog-entries", oplog.DefaultEntries, "most `entries` the oplog keeps; 0: no count cap")
	oplogTrim := flag.Duration("oplog-trim", oplog.TrimInterval, "`interval` between trims of the oplog to its caps")
	logLevel := flag.String("log", "warn", "FerretDB log `level` (debug, info, warn, error), written to stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("bad -log: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dataDir := *dir
	if dataDir == "" {
		// The name carries the pid so a parent that had to kill us can clean up.
		tmp, err := os.MkdirTemp("", fmt.Sprintf("sessionstore-ferretdb-%d-*", os.Getpid()))
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Stop when stdin closes: the parent exited or let go of us.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dataDir + "/",
		Logger:    logger,
	})
	if err != nil {
		return err
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx) // always nil; returns once ctx is done and all is closed
	}()

	// MongoDBURI waits for the TCP listener; Run has started, so it cannot
	// deadlock (in v1.24.2 New already binds it). Clients reach FerretDB
	// through a proxy that runs writes one at a time, as MongoDB's
	// atomic single-document writes require (see package wiresync).
	backend, err := url.Parse(f.MongoDBURI())
	if err == nil && *oplogSize > 0 {
		octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
		err = oplog.Ensure(octx, f.MongoDBURI(), *oplogSize, *oplogEntries)
		ocancel()
		if err == nil {
			go oplog.Trim(ctx, f.MongoDBURI(), *oplogTrim, func(err error) { logger.Warn(err.Error()) })
		}
	}
	if err == nil {
		var proxy *wiresync.Proxy
		if proxy, err = wiresync.Start(*listen, backend.Host); err == nil {
			defer proxy.Close()
			_, err = fmt.Printf("mongodb://%s/\n", proxy.Addr())
		}
	}
	if err != nil {
		cancel()
		<-done
		return err
	}

	<-ctx.Done()
	select {
	case <-done:
		return nil
	case <-time.After(stopGrace):
		return errors.New("FerretDB did not stop in time")
	}
}
