package httpsession_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
)

// Visits is what this example keeps in a session.
type Visits struct {
	Count int `json:"count"`
}

// visit is what the middleware stores for a Visits session.
type visit = httpsession.Record[Visits]

// memStore stands in for *sessionstore.Store[httpsession.Record[Visits]].
type memStore struct {
	mu sync.Mutex // protects m
	m  map[string]visit
}

func (s *memStore) Get(_ context.Context, id string) (visit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return visit{}, sessionstore.ErrNotFound
	}
	return v, nil
}

func (s *memStore) Create(_ context.Context, id string, v visit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return sessionstore.ErrExists
	}
	s.m[id] = v
	return nil
}

func (s *memStore) Update(_ context.Context, id string, fn func(*visit) error) (visit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return visit{}, sessionstore.ErrNotFound
	}
	if err := fn(&v); err != nil {
		return visit{}, err
	}
	s.m[id] = v
	return v, nil
}

func (s *memStore) Touch(context.Context, string) error { return nil }

func (s *memStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func Example() {
	sessions, err := httpsession.New[Visits](&memStore{m: map[string]visit{}}, &httpsession.Options{
		Secrets: []string{"new secret", "old secret"},
	})
	if err != nil {
		panic(err)
	}
	counter := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[Visits](r.Context())
		s.Update(func(v *Visits) { v.Count++ })
		fmt.Fprintf(w, "visit %d", s.Value().Count)
	})
	srv := httptest.NewServer(sessions.Handler(counter))
	defer srv.Close()

	var cookie *http.Cookie
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c := resp.Cookies(); len(c) > 0 {
			cookie = c[0]
		}
		fmt.Printf("%s (cookie sent: %v)\n", body, len(resp.Cookies()) > 0)
	}
	// Output:
	// visit 1 (cookie sent: true)
	// visit 2 (cookie sent: false)
	// visit 3 (cookie sent: false)
}
