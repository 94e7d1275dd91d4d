package httpsession

import (
	"encoding/base64"
	"testing"
)

func TestEncodeURIComponent(t *testing.T) {
	// want is Node v20's encodeURIComponent(in).
	const (
		in   = "s:ü é!'()*~-_.az09+/=?&#%;,\"\\\x01\x7f🔑"
		want = "s%3A%C3%BC%20%C3%A9!'()*~-_.az09%2B%2F%3D%3F%26%23%25%3B%2C%22%5C%01%7F%F0%9F%94%91"
	)
	if got := encodeURIComponent(in); got != want {
		t.Errorf("encodeURIComponent(%q) = %q, want %q", in, got, want)
	}
	if got := encodeURIComponent("plain-id_1.x"); got != "plain-id_1.x" {
		t.Errorf("encodeURIComponent changed an unreserved string: %q", got)
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		id := newID()
		if len(id) != 32 {
			t.Fatalf("newID() = %q, %d characters, want 32", id, len(id))
		}
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 24 {
			t.Fatalf("newID() = %q: not 24 bytes of base64url: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
	}
}
