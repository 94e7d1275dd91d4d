// Package seal protects sessions at rest: a [Ring] of AES-256 keys that
// encrypts payloads with AES-GCM, and an [IDHash] that turns session ids
// into keyed hashes. It uses the standard library only.
//
// A sealed payload is
//
//	version (1 byte, 1) | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext and tag
//
// and its additional data is the header (version, length, key id)
// followed by the document's _id, so that a payload copied into another
// document, or given another key id, does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Version is the format of sealed payloads written now.
const Version = 1

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// MaxKeyID is the longest key id in bytes.
const MaxKeyID = 255

// Overhead is how many bytes sealing adds to a payload, besides the key
// id: version, id length, nonce and tag.
const Overhead = 2 + nonceSize + tagSize

const (
	nonceSize = 12
	tagSize   = 16
)

// ErrOpen reports a payload that does not open: not sealed, sealed under
// a key the ring does not hold, for another document, or altered.
var ErrOpen = errors.New("payload does not decrypt")

// Key is one key of a ring.
type Key struct {
	ID     string // 1 to MaxKeyID bytes, unique in the ring
	Secret []byte // KeySize bytes
}

// Ring encrypts with its first key and decrypts with any of its keys.
// It is safe for concurrent use.
type Ring struct {
	first *ringKey
	byID  map[string]*ringKey
}

type ringKey struct {
	header []byte // version, id length, id
	aead   cipher.AEAD
}

// NewRing returns a ring of keys, the first of which encrypts. It copies
// the keys. It fails if there are none, or one has a bad size or id, or
// two share an id.
func NewRing(keys []Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	r := &Ring{byID: make(map[string]*ringKey, len(keys))}
	for i, k := range keys {
		switch {
		case len(k.ID) == 0 || len(k.ID) > MaxKeyID:
			return nil, fmt.Errorf("key %d: the id must be 1 to %d bytes, not %d", i, MaxKeyID, len(k.ID))
		case len(k.Secret) != KeySize:
			return nil, fmt.Errorf("key %q: AES-256 needs %d bytes, not %d", k.ID, KeySize, len(k.Secret))
		case r.byID[k.ID] != nil:
			return nil, fmt.Errorf("key %q: the id is used twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret) // copies the secret
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		rk := &ringKey{header: append([]byte{Version, byte(len(k.ID))}, k.ID...), aead: aead}
		r.byID[k.ID] = rk
		if i == 0 {
			r.first = rk
		}
	}
	return r, nil
}

// Seal encrypts payload for the document whose _id is id, under the
// first key and a fresh random nonce.
func (r *Ring) Seal(payload []byte, id string) []byte {
	h := r.first.header
	out := make([]byte, len(h)+nonceSize, len(h)+nonceSize+len(payload)+tagSize)
	copy(out, h)
	nonce := out[len(h):]
	_, _ = rand.Read(nonce) // never fails; see crypto/rand.Read
	return r.first.aead.Seal(out, nonce, payload, additional(h, id))
}

// Open decrypts a payload that Seal made for the document whose _id is
// id, with the key it names. It returns a new slice, or an error wrapping
// ErrOpen.
func (r *Ring) Open(sealed []byte, id string) ([]byte, error) {
	k, rest, err := r.key(sealed)
	if err != nil {
		return nil, err
	}
	if len(rest) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrOpen, len(sealed))
	}
	out, err := k.aead.Open(nil, rest[:nonceSize], rest[nonceSize:], additional(k.header, id))
	if err != nil {
		return nil, fmt.Errorf("%w: altered, moved from another document, or under another secret with this key id", ErrOpen)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Current reports whether sealed names the first key of the ring, so that
// sealing again would change nothing but the nonce. It does not decrypt.
func (r *Ring) Current(sealed []byte) bool {
	k, _, err := r.key(sealed)
	return err == nil && k == r.first
}

// key returns the key sealed names and what follows the header.
func (r *Ring) key(sealed []byte) (*ringKey, []byte, error) {
	if len(sealed) < 2 {
		return nil, nil, fmt.Errorf("%w: %d bytes, too short to be sealed", ErrOpen, len(sealed))
	}
	if sealed[0] != Version {
		return nil, nil, fmt.Errorf("%w: format version %d, want %d", ErrOpen, sealed[0], Version)
	}
	n := int(sealed[1])
	if n == 0 || len(sealed) < 2+n {
		return nil, nil, fmt.Errorf("%w: truncated key id", ErrOpen)
	}
	k := r.byID[string(sealed[2:2+n])]
	if k == nil {
		return nil, nil, fmt.Errorf("%w: key id %q is not in the ring", ErrOpen, sealed[2:2+n])
	}
	return k, sealed[2+n:], nil
}

// additional returns the additional data of a payload: its header and
// the document's _id.
func additional(header []byte, id string) []byte {
	ad := make([]byte, 0, len(header)+len(id))
	return append(append(ad, header...), id...)
}
