package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// secured are the store options compared by the Secured benchmarks, each
// beside "plain", the defaults, measured in the same run.
var secured = []struct {
	name string
	opts sessionstore.Options[Session]
}{
	{"plain", sessionstore.Options[Session]{}},
	{"encrypted", sessionstore.Options[Session]{EncryptionKeys: []sessionstore.EncryptionKey{
		{ID: "bench", Secret: bytes.Repeat([]byte{7}, 32)},
	}}},
	{"hashed-ids", sessionstore.Options[Session]{IDHashKey: bytes.Repeat([]byte{9}, 32)}},
	{"max-lifetime", sessionstore.Options[Session]{MaxLifetime: 12 * time.Hour}},
	{"all", sessionstore.Options[Session]{
		EncryptionKeys: []sessionstore.EncryptionKey{{ID: "bench", Secret: bytes.Repeat([]byte{7}, 32)}},
		IDHashKey:      bytes.Repeat([]byte{9}, 32),
		MaxLifetime:    12 * time.Hour,
		Owner:          func(s Session) string { return s.Username },
	}},
}

// BenchmarkGetHitSecured is BenchmarkGetHit under each option of session
// security. Memory holds decrypted payloads, so encryption costs a hit
// nothing; hashed ids cost an HMAC-SHA-256 of the id.
func BenchmarkGetHitSecured(b *testing.B) {
	for _, v := range secured {
		b.Run(v.name, func(b *testing.B) {
			opts := v.opts
			s, ids, cmds := hitStore(b, &opts, loopPool())
			getHits(b, s, ids, cmds)
		})
	}
}

// BenchmarkSetSecured is BenchmarkSet under each option of session
// security: encryption seals each payload (AES-256-GCM), MaxLifetime
// makes the upsert conditional on the deadline memory holds.
func BenchmarkSetSecured(b *testing.B) {
	for _, v := range secured {
		b.Run(v.name, func(b *testing.B) {
			counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
			s := newStore(b, counted, &v.opts)
			ids, vs := samples(loopPool())
			ctx := bg(b)
			for i := range ids { // each session exists, as a save finds it
				if err := s.Set(ctx, ids[i], vs[i]); err != nil {
					b.Fatal(err)
				}
			}
			cmds.Reset()
			sets(b, s, ids, vs, cmds)
		})
	}
}
