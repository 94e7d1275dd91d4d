package seal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds Open arbitrary payloads and ids: it must never panic,
// and must fail with ErrOpen unless the payload is one that Seal made for
// that id. The seed corpus in testdata/fuzz/FuzzOpen holds payloads sealed
// with keyA and keyB for _id "sid", and damaged copies of them.
func FuzzOpen(f *testing.F) {
	r := ring(f, keyA, keyB)
	f.Add(r.Seal([]byte("v"), "sid"), "sid")
	f.Add([]byte{}, "")
	f.Add([]byte{Version}, "sid")
	f.Add([]byte{Version, 1, 'a'}, "sid")
	f.Fuzz(func(t *testing.T, sealed []byte, id string) {
		orig := bytes.Clone(sealed)
		p, err := r.Open(sealed, id)
		if !bytes.Equal(sealed, orig) {
			t.Fatal("Open modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error %v does not wrap ErrOpen", err)
			}
			return
		}
		// Opened: the payload is authentic, so sealing it again for the
		// same id opens to the same bytes, and for another id does not.
		again, err := r.Open(r.Seal(p, id), id)
		if err != nil || !bytes.Equal(again, p) {
			t.Fatalf("Open(Seal(p)) = %q, %v; want %q", again, err, p)
		}
		if _, err := r.Open(sealed, id+"x"); !errors.Is(err, ErrOpen) {
			t.Fatalf("payload for %q opened for %q: %v", id, id+"x", err)
		}
	})
}
