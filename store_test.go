package sessionstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/ttl"
)

// silentServer accepts connections and never answers: a server that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// hungCollection returns a collection on a server that never answers.
func hungCollection(t *testing.T) *mongo.Collection {
	t.Helper()
	addr := silentServer(t)
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr + "/?directConnection=true&connectTimeoutMS=500&serverSelectionTimeoutMS=500"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client.Database("test").Collection("sessions")
}

type session struct {
	User  string
	Count int
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := sessionstore.New[session](nil, nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("New(nil) error = %v, want one about the nil collection", err)
	}
	coll := hungCollection(t)
	for name, o := range map[string]*sessionstore.Options[session]{
		"negative TTL":          {TTL: -time.Second},
		"huge MaxPayload":       {MaxPayload: 17 << 20},
		"long prefix":           {Prefix: strings.Repeat("p", sessionstore.MaxIDLength)},
		"bad UTF-8 prefix":      {Prefix: "\xff"},
		"unknown TTLIndex":      {TTLIndex: ttl.Mode(7)},
		"unknown Coherence":     {Coherence: sessionstore.Coherence(9)},
		"negative MaxStaleness": {MaxStaleness: -time.Second},
	} {
		if o.TTLIndex == ttl.Auto {
			o.TTLIndex = ttl.Off // keep the hung server out of it
		}
		if s, err := sessionstore.New(coll, o); err == nil {
			s.Close(context.Background())
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestBadIDs(t *testing.T) {
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{TTLIndex: ttl.Off, Prefix: "app:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	for name, id := range map[string]string{
		"empty":     "",
		"too long":  strings.Repeat("x", sessionstore.MaxIDLength-len("app:")+1),
		"bad UTF-8": "ab\xffcd",
	} {
		if _, err := s.Get(ctx, id); !errors.Is(err, sessionstore.ErrInvalidID) {
			t.Errorf("Get %s id: %v, want ErrInvalidID", name, err)
		}
		if err := s.Set(ctx, id, session{}); !errors.Is(err, sessionstore.ErrInvalidID) {
			t.Errorf("Set %s id: %v, want ErrInvalidID", name, err)
		}
		if err := s.Touch(ctx, id); !errors.Is(err, sessionstore.ErrInvalidID) {
			t.Errorf("Touch %s id: %v, want ErrInvalidID", name, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, sessionstore.ErrInvalidID) {
			t.Errorf("Delete %s id: %v, want ErrInvalidID", name, err)
		}
	}
}

func TestTooLargeIsRejectedBeforeTheServer(t *testing.T) {
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{TTLIndex: ttl.Off, MaxPayload: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	start := time.Now()
	err = s.Set(context.Background(), "big", session{User: strings.Repeat("u", 200)})
	if !errors.Is(err, sessionstore.ErrTooLarge) {
		t.Fatalf("Set = %v, want ErrTooLarge", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Set waited for the server before rejecting the payload")
	}
}

func TestClosedStore(t *testing.T) {
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{TTLIndex: ttl.Off})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.Set(ctx, "a", session{}); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
	if err := s.Touch(ctx, "a"); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Touch after Close: %v", err)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	if _, err := s.Len(ctx); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Len after Close: %v", err)
	}
	for _, err := range s.All(ctx) {
		if !errors.Is(err, sessionstore.ErrClosed) {
			t.Errorf("All after Close: %v", err)
		}
	}
	if err := s.Clear(ctx); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Clear after Close: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
}

// A server that accepts connections and never answers must not block
// Touch callers, and Close must return by its deadline.
func TestHungServerNeverBlocksTouchOrClose(t *testing.T) {
	var reported atomic.Int64
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{
		TouchInterval: 10 * time.Millisecond,
		WriteTimeout:  time.Hour, // only the caller's deadline bounds Close
		IndexTimeout:  time.Hour,
		OnError:       func(error) { reported.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 10_000 {
		if err := s.Touch(context.Background(), "id"+string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10 000 touches took %v against a hung server", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = s.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a 300ms deadline", d)
	}
	if err == nil || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("Close = %v, want an error counting the unwritten touches", err)
	}
}

func TestOverflowDropsAndCounts(t *testing.T) {
	var (
		mu   sync.Mutex
		errs []error
	)
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{
		TTLIndex:          ttl.Off,
		MaxPendingTouches: 10,
		TouchBatchSize:    1000,
		TouchInterval:     time.Hour,
		OnError: func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s.Close(ctx)
	}()
	for i := range 25 {
		if err := s.Touch(context.Background(), "id-"+string(rune('A'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Touching an id already pending never counts as overflow.
	if err := s.Touch(context.Background(), "id-A"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 15 {
		t.Fatalf("%d overflow errors reported, want 15", len(errs))
	}
	if !strings.Contains(errs[0].Error(), "MaxPendingTouches") {
		t.Fatalf("overflow error %q does not say what to do", errs[0])
	}
}

func TestGetHonoursCancelledContext(t *testing.T) {
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{TTLIndex: ttl.Off})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Get(ctx, "a")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want the context's error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Get returned after %v, its deadline was 50ms", d)
	}
}

// A touch command that times out makes later ones smaller, so that a slow
// server still gets touches written.
func TestTimedOutTouchCommandsShrink(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{
		TTLIndex: ttl.Off, WriteTimeout: 20 * time.Millisecond, TouchInterval: time.Hour, Logger: logger,
		Clock: fixedClock(time.Now()), // one expiry, so one group of 1000
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s.Close(ctx)
	}()
	for i := range 1000 {
		_ = s.Touch(context.Background(), fmt.Sprint("id", i))
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("Flush against a hung server succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "fewer ids per command") || !strings.Contains(logs.String(), "next=500") {
		t.Fatalf("no sign of smaller touch commands in the log:\n%s", logs.String())
	}
}

// fixedClock is a clock that never moves.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
