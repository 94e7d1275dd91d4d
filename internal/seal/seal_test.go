package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// secret returns a KeySize key filled with b.
func secret(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func ring(t testing.TB, keys ...Key) *Ring {
	t.Helper()
	r, err := NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	keyA = Key{ID: "a", Secret: secret(0xa)}
	keyB = Key{ID: "2026-b", Secret: secret(0xb)}
)

func TestRoundTrip(t *testing.T) {
	r := ring(t, keyA)
	for _, p := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("session"), 1000)} {
		s := r.Seal(p, "sid")
		if len(s) != len(p)+Overhead+len(keyA.ID) {
			t.Errorf("sealed %d bytes into %d, want %d", len(p), len(s), len(p)+Overhead+len(keyA.ID))
		}
		if bytes.Contains(s, []byte("session")) {
			t.Errorf("sealed payload holds the plaintext")
		}
		got, err := r.Open(s, "sid")
		if err != nil || !bytes.Equal(got, p) || got == nil {
			t.Errorf("Open(Seal(%d bytes)) = %d bytes, %v", len(p), len(got), err)
		}
	}
	if a, b := r.Seal([]byte("x"), "sid"), r.Seal([]byte("x"), "sid"); bytes.Equal(a, b) {
		t.Error("two seals of one payload are equal: the nonce is not fresh")
	}
}

func TestRotation(t *testing.T) {
	old := ring(t, keyA)
	sealedA := old.Seal([]byte("v"), "sid")
	if !old.Current(sealedA) {
		t.Error("a payload sealed with the first key is not current")
	}
	both := ring(t, keyB, keyA) // B added first: B encrypts, A still decrypts
	if got, err := both.Open(sealedA, "sid"); err != nil || string(got) != "v" {
		t.Fatalf("old payload with B first: %q, %v", got, err)
	}
	if both.Current(sealedA) {
		t.Error("a payload under A is current in a ring that encrypts with B")
	}
	sealedB := both.Seal([]byte("v"), "sid")
	if !both.Current(sealedB) || !bytes.HasPrefix(sealedB, []byte("\x01\x062026-b")) {
		t.Errorf("new payload is not under B: % x", sealedB[:8])
	}
	onlyB := ring(t, keyB) // A dropped
	if got, err := onlyB.Open(sealedB, "sid"); err != nil || string(got) != "v" {
		t.Fatalf("payload under B after A is dropped: %q, %v", got, err)
	}
	if _, err := onlyB.Open(sealedA, "sid"); !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("payload under a dropped key: %v, want ErrOpen naming the key", err)
	}
}

func TestTampering(t *testing.T) {
	r := ring(t, keyA, keyB)
	sealed := r.Seal([]byte("a session payload"), "sid")
	for i := range len(sealed) * 8 {
		bad := bytes.Clone(sealed)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := r.Open(bad, "sid"); !errors.Is(err, ErrOpen) {
			t.Fatalf("bit %d flipped: %v, want ErrOpen", i, err)
		}
	}
	for n := range len(sealed) {
		if _, err := r.Open(sealed[:n], "sid"); !errors.Is(err, ErrOpen) {
			t.Fatalf("truncated to %d bytes: %v, want ErrOpen", n, err)
		}
	}
	for _, id := range []string{"", "sid2", "si", "SID"} {
		if _, err := r.Open(sealed, id); !errors.Is(err, ErrOpen) {
			t.Errorf("moved to _id %q: %v, want ErrOpen", id, err)
		}
	}
	// The same key id with another secret.
	impostor := ring(t, Key{ID: keyA.ID, Secret: secret(0xc)})
	if _, err := impostor.Open(sealed, "sid"); !errors.Is(err, ErrOpen) {
		t.Errorf("another secret under the same key id: %v", err)
	}
	if _, err := r.Open(append(bytes.Clone(sealed), 0), "sid"); !errors.Is(err, ErrOpen) {
		t.Errorf("a byte appended: %v", err)
	}
}

func TestNewRingRejects(t *testing.T) {
	for name, keys := range map[string][]Key{
		"none":         nil,
		"empty id":     {{ID: "", Secret: secret(1)}},
		"long id":      {{ID: strings.Repeat("k", MaxKeyID+1), Secret: secret(1)}},
		"short secret": {{ID: "k", Secret: make([]byte, 16)}},
		"long secret":  {{ID: "k", Secret: make([]byte, 33)}},
		"duplicate id": {{ID: "k", Secret: secret(1)}, {ID: "k", Secret: secret(2)}},
	} {
		if _, err := NewRing(keys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRingCopiesSecret(t *testing.T) {
	k := Key{ID: "k", Secret: secret(1)}
	r := ring(t, k)
	sealed := r.Seal([]byte("v"), "sid")
	k.Secret[0] ^= 0xff
	if _, err := r.Open(sealed, "sid"); err != nil {
		t.Fatalf("changing the caller's secret changed the ring: %v", err)
	}
}

func TestIDHash(t *testing.T) {
	if _, err := NewIDHash(make([]byte, MinHashKey-1)); err == nil {
		t.Error("a short key was accepted")
	}
	key := secret(7)
	h, err := NewIDHash(key)
	if err != nil {
		t.Fatal(err)
	}
	a := h.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlT")
	// HMAC-SHA-256 of the id under 32 bytes of 0x07, computed with
	// openssl dgst -sha256 -mac HMAC and with Python's hmac module.
	const want = "6c8dd85058fb17f43a1c90168382c63e5fdde767e63ccbf79fc82b324b165838"
	if a != want {
		t.Fatalf("Sum = %q, want %q", a, want)
	}
	if h.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlT") != a {
		t.Error("Sum is not deterministic")
	}
	if h.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlU") == a {
		t.Error("two ids hash alike")
	}
	other, _ := NewIDHash(secret(8))
	if other.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlT") == a {
		t.Error("two keys hash alike")
	}
	key[0] ^= 0xff
	if h.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlT") != a {
		t.Error("changing the caller's key changed the hash")
	}
}

func BenchmarkIDHash(b *testing.B) {
	h, err := NewIDHash(secret(7))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Sum("T10xKEAfTJliWAUnpec5O2DijDTT9OlT")
	}
}

func BenchmarkSealOpen(b *testing.B) {
	r := ring(b, keyA)
	p := bytes.Repeat([]byte("s"), 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(r.Seal(p, "T10xKEAfTJliWAUnpec5O2DijDTT9OlT"), "T10xKEAfTJliWAUnpec5O2DijDTT9OlT"); err != nil {
			b.Fatal(err)
		}
	}
}
