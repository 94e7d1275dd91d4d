package sessionstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

type cart struct {
	Items []string
}

// The store's whole life against the in-memory fake server: Open with a
// required TTL index, the read and write paths, and Close.
func TestStoreOnFakeServer(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	s, err := sessionstore.Open(ctx, srv.URI(), &sessionstore.Options[cart]{TTLIndex: ttl.Require})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if d, err := s.TTLIndex(ctx); err != nil || d.Action == ttl.UseReaper {
		t.Fatalf("TTLIndex = %+v, %v", d, err)
	}
	if err := s.Set(ctx, "a", cart{Items: []string{"apple"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a", cart{}); !errors.Is(err, sessionstore.ErrExists) {
		t.Fatalf("Create of a stored id = %v", err)
	}
	got, err := s.Update(ctx, "a", func(c *cart) error { c.Items = append(c.Items, "pear"); return nil })
	if err != nil || len(got.Items) != 2 {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	if err := s.Touch(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "a"); err != nil || len(v.Items) != 2 {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	if n, err := s.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	for e, err := range s.All(ctx) {
		if err != nil || e.ID != "a" {
			t.Fatalf("All yielded %+v, %v", e, err)
		}
	}
	if _, err := s.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
}
