package sessionstore

import (
	"context"
	"fmt"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/seal"
)

// EncryptionKey is one AES-256 key of Options.EncryptionKeys.
type EncryptionKey struct {
	// ID names the key in every payload it encrypts: 1 to 255 bytes,
	// unique in the ring, never reused for another secret.
	ID string
	// Secret is the key: 32 random bytes.
	Secret []byte
}

// security is what Options say about encryption and id hashing.
type security struct {
	ring *seal.Ring   // nil: no encryption
	hash *seal.IDHash // nil: ids stored as they are
}

func newSecurity[T any](o *Options[T]) (security, error) {
	var sec security
	if len(o.EncryptionKeys) > 0 {
		keys := make([]seal.Key, len(o.EncryptionKeys))
		for i, k := range o.EncryptionKeys {
			keys[i] = seal.Key{ID: k.ID, Secret: k.Secret}
		}
		ring, err := seal.NewRing(keys)
		if err != nil {
			return sec, fmt.Errorf("sessionstore: Options.EncryptionKeys: %w", err)
		}
		sec.ring = ring
	}
	if o.IDHashKey != nil {
		h, err := seal.NewIDHash(o.IDHashKey)
		if err != nil {
			return sec, fmt.Errorf("sessionstore: Options.IDHashKey: %w", err)
		}
		sec.hash = h
	}
	return sec, nil
}

// format is the BSON type sessions are stored as: binary when encrypted.
func (sec security) format(f codec.Format) codec.Format {
	if sec.ring != nil {
		return codec.Binary
	}
	return f
}

// hashID returns the function that maps ids to the ones stored, or nil.
func (sec security) hashID() func(string) string {
	if sec.hash == nil {
		return nil
	}
	return sec.hash.Sum
}

// Reencrypt encrypts again, with the first of Options.EncryptionKeys,
// every unexpired session (with the store's prefix, when it has one)
// that an older key encrypted, at most perSecond sessions a second, and
// returns how many it rewrote. Run it after putting a new key first;
// once it returns nil, the old keys can be dropped. Every write
// re-encrypts its session anyway, so Reencrypt only reaches the sessions
// nobody saves.
//
// It blocks until it is done, ctx ends, or Close stops it (ErrClosed):
// call it on a goroutine of your own. Each rewrite is conditional on the
// payload read and keeps the session's version, so it never overwrites a
// save nor makes an Update conflict. A session that decrypts with no key
// is left in place, and the error, wrapping ErrCorrupt, counts them.
func (s *Store[T]) Reencrypt(ctx context.Context, perSecond int) (int64, error) {
	ctx, op := s.obs.Start(ctx, observe.Reencrypt)
	n, err := s.eng.Reseal(ctx, perSecond)
	op.End(err)
	return n, err
}
