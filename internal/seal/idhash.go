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
	pool sync.Pool // of hash.Hash keyed with the secret
}

// NewIDHash returns an IDHash under key, which it copies. It fails for a
// key shorter than MinHashKey.
func NewIDHash(key []byte) (*IDHash, error) {
	if len(key) < MinHashKey {
		return nil, fmt.Errorf("the key must be at least %d bytes, not %d", MinHashKey, len(key))
	}
	key = append([]byte(nil), key...)
	h := &IDHash{}
	h.pool.New = func() any { return hmac.New(sha256.New, key) }
	return h, nil
}

// Sum returns the hash of id.
func (h *IDHash) Sum(id string) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(id))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	h.pool.Put(m)
	return hex.EncodeToString(sum[:])
}
