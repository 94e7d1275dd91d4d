package seal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"
)

// MinHashKey is the shortest key an IDHash accepts, in bytes.
const MinHashKey = 32

// IDHash maps session ids to HMAC-SHA-256 hashes under a secret key, in
// lower-case hex: 64 characters. It is safe for concurrent use.
type IDHash struct {
	pool sync.Pool // of *hasher keyed with the secret
}

// hasher is one HMAC state with buffers, reused through the pool.
type hasher struct {
	mac hash.Hash
	in  []byte // the id, copied: a string converted for Write would escape
	sum [sha256.Size]byte
}

// NewIDHash returns an IDHash under key, which it copies. It fails for a
// key shorter than MinHashKey.
func NewIDHash(key []byte) (*IDHash, error) {
	if len(key) < MinHashKey {
		return nil, fmt.Errorf("the key must be at least %d bytes, not %d", MinHashKey, len(key))
	}
	key = append([]byte(nil), key...)
	h := &IDHash{}
	h.pool.New = func() any { return &hasher{mac: hmac.New(sha256.New, key)} }
	return h, nil
}

// Sum returns the hash of id.
func (h *IDHash) Sum(id string) string {
	x := h.pool.Get().(*hasher)
	x.mac.Reset()
	x.in = append(x.in[:0], id...)
	x.mac.Write(x.in)
	x.mac.Sum(x.sum[:0])
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], x.sum[:])
	h.pool.Put(x)
	return string(out[:])
}
