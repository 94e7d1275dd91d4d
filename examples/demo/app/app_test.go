package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/examples/demo/app"
)

// memStore is an in-memory httpsession.Store[app.Record].
type memStore struct {
	mu sync.Mutex // protects m
	m  map[string]app.Record
}

// errNotFound is what memStore.Get returns for a missing session.
type errNotFound struct{}

func (errNotFound) Error() string  { return "not found" }
func (errNotFound) NotFound() bool { return true }

func (s *memStore) Get(_ context.Context, id string) (app.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return app.Record{}, errNotFound{}
	}
	return v, nil
}

func (s *memStore) Create(_ context.Context, id string, v app.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = v
	return nil
}

func (s *memStore) Update(_ context.Context, id string, fn func(*app.Record) error) (app.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return app.Record{}, errNotFound{}
	}
	if err := fn(&v); err != nil {
		return app.Record{}, err
	}
	s.m[id] = v
	return v, nil
}

func (s *memStore) Touch(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return errors.New("touch of a missing session")
	}
	return nil
}

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// TestLogLevels checks that a new session is logged at Info level and a
// returning one at Debug level.
func TestLogLevels(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		// Drop the time, so that lines compare.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	h, err := app.New(&memStore{m: make(map[string]app.Record)}, "keyboard cat", logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cookie *http.Cookie
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / answered %d", rec.Code)
		}
		for _, c := range rec.Result().Cookies() {
			cookie = c
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], `level=INFO msg="new session" something=`) ||
		!strings.HasPrefix(lines[1], `level=DEBUG msg="existing session" something=`) ||
		strings.TrimPrefix(lines[0], "level=INFO msg=\"new session\"") != strings.TrimPrefix(lines[1], "level=DEBUG msg=\"existing session\"") {
		t.Errorf("log:\n%s\nwant a new session at INFO, then the same one at DEBUG", buf.String())
	}
}

// BenchmarkReturningRequest is a request with a returning session through
// the whole app, logging as a service would: text, at Info level.
func BenchmarkReturningRequest(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := app.New(&memStore{m: make(map[string]app.Record)}, "keyboard cat", logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// TestCloneSharesNothing checks that Session holds nothing a plain copy
// would share (maps, slices, pointers, interfaces, channels, functions;
// a time.Time's location aside), so that Clone is a valid Options.Clone.
func TestCloneSharesNothing(t *testing.T) {
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if typ == reflect.TypeFor[time.Time]() {
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				walk(path+"."+typ.Field(i).Name, typ.Field(i).Type)
			}
		case reflect.Array:
			walk(path+"[]", typ.Elem())
		case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			t.Errorf("%s is a %s, which a plain copy shares: app.Clone must copy it", path, typ.Kind())
		}
	}
	walk("Session", reflect.TypeFor[app.Session]())
	s := app.Session{Something: "x"}
	if c := app.Clone(s); c != s {
		t.Errorf("Clone(%+v) = %+v", s, c)
	}
}
