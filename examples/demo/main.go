// Command demo is the Go counterpart of the demo of the npm package
// @iwsio/mongodb-express-session: a web server whose sessions live in
// MongoDB through sessionstore, in the documents express-session uses.
//
// GET / answers OK. Every request has a session, in the cookie connect.sid
// (HttpOnly, SameSite=Strict, seven days, restarted by every response); a
// new session gets a random "something", and each request logs whether its
// session is new (at Info level) or existing (at Debug level). A returning
// session is not rewritten: the store extends its expiry in batched
// touches.
//
// Run it from the repository root with
//
//	cd examples/demo && go run .
//
// The first build compiles FerretDB and takes a few minutes.
//
// The environment configures it:
//
//	MONGODB_URI         MongoDB to use; the database is the URI's path
//	                    ("test" when it has none), the collection "sessions".
//	                    Unset: an embedded FerretDB runs inside the demo.
//	FERRETDB_ADDR       embedded FerretDB's address (default 127.0.0.1:27018)
//	DEMO_DATA_DIR       embedded FerretDB's SQLite directory, kept across
//	                    restarts (default ./.ferretdb-data)
//	LOG_LEVEL           the demo's log level (default info; debug also logs
//	                    each returning session)
//	FERRETDB_LOG_LEVEL  embedded FerretDB's log level (default error)
//	PORT                HTTP port (default 3000)
//	SESSION_SECRET      cookie signing secret (default a random one, which
//	                    makes cookies from before a restart invalid)
//	OTEL_TRACES_EXPORTER=console, OTEL_EXPORTER_OTLP_ENDPOINT
//	                    where the store's spans go (default nowhere)
//
// Logs go to stderr. SIGINT or SIGTERM stops the HTTP server, closes the
// store, which writes its pending touches, and stops FerretDB.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/examples/demo/app"
)

const (
	// startTimeout bounds connecting to MongoDB at start.
	startTimeout = 30 * time.Second
	// stopTimeout bounds each step of the shutdown.
	stopTimeout = 10 * time.Second
)

func main() {
	var level slog.LevelVar // Info
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	if err := level.UnmarshalText([]byte(getenv("LOG_LEVEL", "info"))); err != nil {
		logger.Error("demo: LOG_LEVEL: " + err.Error())
		os.Exit(1)
	}
	if err := run(logger); err != nil {
		logger.Error("demo: " + err.Error())
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM, then shuts down in order.
func run(logger *slog.Logger) (err error) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// stopCtx returns a context for one shutdown step.
	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), stopTimeout)
	}

	tp, exporter, stopTracing, err := newTracerProvider(ctx)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		ctx, cancel := stopCtx()
		defer cancel()
		err = errors.Join(err, stopTracing(ctx))
	}()
	logger.Info("tracing", "exporter", exporter)

	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		addr := getenv("FERRETDB_ADDR", "127.0.0.1:27018")
		dir := getenv("DEMO_DATA_DIR", ".ferretdb-data")
		var level slog.Level
		if err := level.UnmarshalText([]byte(getenv("FERRETDB_LOG_LEVEL", "error"))); err != nil {
			return fmt.Errorf("FERRETDB_LOG_LEVEL: %w", err)
		}
		ferretLogger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "ferretdb")
		db, err := startFerretDB(addr, dir, ferretLogger)
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := stopCtx()
			defer cancel()
			if serr := db.stop(ctx); serr != nil {
				err = errors.Join(err, serr)
				return
			}
			logger.Info("embedded FerretDB stopped")
		}()
		uri = db.uri
		logger.Info("embedded FerretDB is up; inspect the sessions collection with any MongoDB client",
			"uri", uri, "data", dir)
	}

	openCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	store, err := sessionstore.Open(openCtx, uri, &sessionstore.Options[app.Record]{
		TTL:            app.Lifetime,
		Codec:          codec.BSON[app.Record]{},
		Logger:         logger,
		TracerProvider: tp,
		Clone:          app.CloneRecord, // a returning session costs a copy, not a decode
		TouchAfter:     app.TouchAfter,
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := stopCtx()
		defer cancel()
		// Close writes the touches still buffered.
		err = errors.Join(err, store.Close(ctx))
	}()
	coll := store.Collection()
	logger.Info("session store", "database", coll.Database().Name(), "collection", coll.Name())

	secret := os.Getenv("SESSION_SECRET")
	if secret == "" {
		secret = rand.Text()
		logger.Warn("SESSION_SECRET is not set: using a random secret, so cookies from before a restart will not be accepted")
	}
	handler, err := app.New(store, secret, logger, nil)
	if err != nil {
		return err
	}

	port := getenv("PORT", "3000")
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return fmt.Errorf("HTTP server: %w (set PORT to use another port)", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "url", "http://localhost:"+port+"/")

	select {
	case err := <-served:
		return fmt.Errorf("HTTP server: %w", err)
	case <-ctx.Done():
	}
	stopSignals() // a second signal ends the process at once
	logger.Info("shutting down")
	shutdownCtx, cancel := stopCtx()
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("HTTP server shutdown: %w", err)
	}
	return nil
}

// getenv returns the environment variable key, or def when it is empty.
func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
