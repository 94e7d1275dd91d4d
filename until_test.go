package sessionstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/ttl"
)

// SetUntil and TouchUntil validate like Set and Touch, and TouchUntil
// buffers without waiting for the server. Their effect on documents is
// tested against a server in the scsstore module.
func TestUntilVariants(t *testing.T) {
	s, err := sessionstore.New(hungCollection(t), &sessionstore.Options[session]{TTLIndex: ttl.Off})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	if err := s.SetUntil(ctx, "", session{}, later); !errors.Is(err, sessionstore.ErrInvalidID) {
		t.Errorf("SetUntil empty id: %v, want ErrInvalidID", err)
	}
	if err := s.TouchUntil(ctx, "", later); !errors.Is(err, sessionstore.ErrInvalidID) {
		t.Errorf("TouchUntil empty id: %v, want ErrInvalidID", err)
	}
	start := time.Now()
	for _, exp := range []time.Time{later, {}, time.Now().Add(-time.Hour)} {
		if err := s.TouchUntil(ctx, "a", exp); err != nil {
			t.Errorf("TouchUntil(%v): %v", exp, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("TouchUntil waited %v for a server that never answers", d)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_ = s.Close(closeCtx) // the buffered touch cannot be written
	if err := s.SetUntil(ctx, "a", session{}, later); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("SetUntil after Close: %v", err)
	}
	if err := s.TouchUntil(ctx, "a", later); !errors.Is(err, sessionstore.ErrClosed) {
		t.Errorf("TouchUntil after Close: %v", err)
	}
}
