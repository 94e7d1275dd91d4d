package sessionstore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/ttl"
)

// Defaults of Options. A zero field of Options means the default below.
const (
	DefaultCollection        = "sessions"
	DefaultTTL               = ttl.DefaultTTL
	DefaultCacheSize         = 10_000
	DefaultMaxPayload        = 1 << 20 // 1 MiB
	DefaultMaxCacheAge       = time.Minute
	DefaultLoadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultTouchInterval     = time.Second
	DefaultTouchBatchSize    = 1_000
	DefaultTouchGranularity  = time.Second
	DefaultMaxPendingTouches = 100_000
	DefaultIndexTimeout      = 30 * time.Second
	DefaultReapInterval      = time.Minute
	DefaultUpdateAttempts    = 10
	DefaultMaxStaleness      = time.Second

	// MaxIDLength is the longest id, prefix included, in bytes.
	MaxIDLength = engine.MaxIDLength
	// MaxPayloadLimit is the largest MaxPayload accepted: MongoDB's 16 MiB
	// document limit less room for the rest of the document.
	MaxPayloadLimit = 16<<20 - 64<<10
)

// Coherence says when a store's memory may answer for the database, given
// that other instances and other writers (an Express app, say) change and
// delete sessions too. The store follows their changes through a change
// feed: a change stream on replica sets and sharded clusters, or the
// server's oplog where one is readable (FerretDB with a local.oplog.rs);
// see the README for what each sees. Every read of the oplog costs the
// server the whole oplog, so a store reads it only while its memory is
// asked: from a Get answered by memory until 4 times MaxStaleness after
// the last.
type Coherence uint8

const (
	// CoherenceStrict, the default, lets memory answer while the change
	// feed has caught up within MaxStaleness, and for MaxStaleness after
	// a session was read or written. While the feed is down or behind,
	// or the server has none, every other read goes to the database: a
	// change made elsewhere is never served from memory for longer than
	// MaxStaleness.
	CoherenceStrict Coherence = iota
	// CoherenceLenient follows the feed as CoherenceStrict does, but
	// while the feed is down or behind, memory answers up to MaxCacheAge,
	// as a store without a feed would. An oplog feed that waits for
	// memory to be asked is neither: until it catches up again,
	// CoherenceLenient is CoherenceStrict.
	CoherenceLenient
	// CoherenceOff follows no feed: memory answers up to MaxCacheAge.
	// Right for a single instance that is the only writer.
	CoherenceOff
)

// Clock tells the time. Tests inject one to control expiry.
type Clock interface {
	Now() time.Time
}

// systemClock is the system's wall clock, read at the cost of its
// monotonic clock alone: time.Now reads both, which on a virtual machine
// costs as much as the rest of an engine's look-up in memory. The time it
// returns is a base read by time.Now plus the monotonic time elapsed
// since, with the base read again every second: so it is never further
// from time.Now than a second's slew of the wall clock (half a millisecond
// at most), and follows a step of the wall clock within a second.
type systemClock struct{}

// clockBase is systemClock's base, a time.Now reading with its monotonic
// clock.
var clockBase atomic.Pointer[time.Time]

func (systemClock) Now() time.Time {
	if b := clockBase.Load(); b != nil {
		if d := time.Since(*b); d >= 0 && d < time.Second {
			return b.Add(d)
		}
	}
	now := time.Now()
	clockBase.Store(&now)
	return now
}

// Options configures a Store. The zero value of every field means its
// documented default, so a nil *Options gives a working store. New and
// Open copy the options; changing them afterwards has no effect.
type Options[T any] struct {
	// Collection is the collection Open uses; the database comes from the
	// URI path ("test" when the path is empty). Default "sessions". New
	// ignores it.
	Collection string
	// TTL is how long a session lives after a Set or Touch. Default 24h.
	TTL time.Duration
	// TTLFunc, when set, gives each session its own lifetime; a result of
	// zero or less falls back to TTL. The lifetime is stored with the
	// session so that touches honour it without reading the session.
	TTLFunc func(T) time.Duration
	// Prefix is prepended to every id in the database, and scopes Len, All
	// and Clear to the ids that start with it. Stores sharing a collection
	// need prefixes where none starts with another: Clear with prefix
	// "app:" also deletes the sessions of prefix "app:admin:". It must be
	// valid UTF-8 without NUL bytes.
	Prefix string
	// Codec encodes sessions. Default codec.MsgPack[T].
	Codec codec.Codec[T]
	// CacheSize is how many sessions the in-memory tier holds. Default
	// 10 000; a negative value turns the in-memory tier off, so that
	// every Get reads the database.
	CacheSize int
	// MaxCacheAge is the longest a session read from or written to the
	// database is answered from memory before Get reads it again, whatever
	// the change feed says (see Coherence). Touches do not renew it.
	// Default 1 minute; a negative value keeps sessions in memory until
	// they expire or are evicted.
	MaxCacheAge time.Duration
	// Clone, when set, lets the in-memory tier keep each session decoded
	// beside its encoded form, so that a Get answered from memory costs a
	// look-up and a Clone instead of a decode. Clone must return a copy
	// that shares nothing mutable with its argument: maps, slices and
	// pointers it holds must be copied too (a type without any is copied
	// by func(v T) T { return v }). The kept value is never handed out
	// itself, only its clones, so a caller changing what it got changes
	// nothing stored. Each cached session then also holds its decoded
	// value in memory. Default nil: memory keeps encoded sessions only,
	// and every Get decodes.
	Clone func(T) T
	// Coherence says when memory may answer for the database while other
	// instances and other writers change sessions. Default
	// CoherenceStrict.
	Coherence Coherence
	// MaxStaleness bounds how long a change or delete made elsewhere can
	// go unseen by this store's memory under CoherenceStrict and
	// CoherenceLenient. Default 1s.
	MaxStaleness time.Duration
	// MaxPayload is the largest encoded session accepted by Set, in bytes.
	// Default 1 MiB; at most MaxPayloadLimit.
	MaxPayload int
	// LoadTimeout bounds the database read behind a cache miss, which is
	// shared by every caller waiting on it. Default 10s.
	LoadTimeout time.Duration
	// WriteTimeout bounds each background database call: every command
	// of a touch flush, and each reaper pass. Default 10s.
	WriteTimeout time.Duration

	// UpdateAttempts is how many conditional writes an Update tries
	// before it returns ErrConflict. Default 10.
	UpdateAttempts int

	// TouchInterval is how often buffered touches are written. Default 1s.
	TouchInterval time.Duration
	// TouchBatchSize is how many pending sessions trigger a write before
	// the interval ends. Default 1 000.
	TouchBatchSize int
	// TouchGranularity rounds new expiries up to a multiple of it, so that
	// touches group into few commands. Default 1s.
	TouchGranularity time.Duration
	// TouchAfter skips a touch that comes within TouchAfter of the
	// session's last extension (connect-mongo's touchAfter), whether or
	// not the session is in memory. Default 0: every touch counts.
	TouchAfter time.Duration
	// MaxPendingTouches bounds the sessions waiting for a touch write;
	// beyond it a touch is dropped, counted and reported. Default 100 000.
	MaxPendingTouches int
	// TouchWriteConcern is the write concern of touch writes. Default w:1.
	TouchWriteConcern *writeconcern.WriteConcern

	// TTLIndex says how the TTL index on expires is managed. Default
	// ttl.Auto: create or repair it where the server can keep it, and
	// otherwise run the built-in reaper.
	TTLIndex ttl.Mode
	// IndexTimeout bounds TTL index setup. Default 30s.
	IndexTimeout time.Duration
	// ReapInterval is how often the built-in reaper deletes expired
	// sessions, on servers without TTL indexes. Default 1 minute.
	ReapInterval time.Duration

	// Clock tells the time. Default the system clock.
	Clock Clock
	// Logger receives records of what the store decides and of
	// background failures. Default: discard.
	Logger *slog.Logger
	// OnError, when set, is called with every background failure (touch
	// writes, dropped touches, reaper passes, index setup). It must not
	// block.
	OnError func(error)
	// TracerProvider creates the store's spans. Default the global
	// provider, a no-op until the application sets one.
	TracerProvider trace.TracerProvider
	// MeterProvider creates the store's metrics. Default the global
	// provider, a no-op until the application sets one.
	MeterProvider metric.MeterProvider

	// MaxLifetime is the absolute lifetime of a session: it is never
	// readable later than its creation plus MaxLifetime, rounded down to
	// TouchGranularity, whatever touches and saves happen. The deadline
	// is stored in the session's document, so every instance enforces
	// the same one, and no write moves the expiry past it. Sessions
	// stored without a deadline get one on their next save. Default 0:
	// no limit. It must be at least TouchGranularity.
	MaxLifetime time.Duration
	// Owner, when set, names the owner of each session (a user id, say);
	// "" means anonymous. The owner is stored in the document, follows
	// every Set, Create and Update, and is indexed: see ByOwner and
	// DeleteByOwner. Default: none.
	Owner func(T) string
	// EncryptionKeys, when set, encrypts sessions at rest with AES-256-GCM:
	// the first key encrypts every write, any key decrypts. To rotate,
	// put a new key first, run Reencrypt, then drop the old key. Encrypted
	// sessions are binary, whatever the codec: Express cannot read them.
	// Default: none, sessions are stored as the codec encodes them.
	EncryptionKeys []EncryptionKey
	// IDHashKey, when set, stores the HMAC-SHA-256 of each session id
	// under this key (at least 32 bytes, in hex) as the document's _id
	// instead of the id, so that the database holds no cookie value. All
	// and ByOwner then yield hashes. Express cannot find such sessions.
	// Default: none, ids are stored as they are.
	IDHashKey []byte
}

// withDefaults returns a copy of o with every zero field set to its
// default, or an error naming the first invalid field.
func (o *Options[T]) withDefaults() (Options[T], error) {
	var c Options[T]
	if o != nil {
		c = *o
	}
	setDefault(&c.Collection, DefaultCollection)
	setDefault(&c.TTL, DefaultTTL)
	setDefault(&c.CacheSize, DefaultCacheSize)
	setDefault(&c.MaxPayload, DefaultMaxPayload)
	setDefault(&c.MaxCacheAge, DefaultMaxCacheAge)
	setDefault(&c.MaxStaleness, DefaultMaxStaleness)
	setDefault(&c.LoadTimeout, DefaultLoadTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.TouchInterval, DefaultTouchInterval)
	setDefault(&c.TouchBatchSize, DefaultTouchBatchSize)
	setDefault(&c.TouchGranularity, DefaultTouchGranularity)
	setDefault(&c.MaxPendingTouches, DefaultMaxPendingTouches)
	setDefault(&c.IndexTimeout, DefaultIndexTimeout)
	setDefault(&c.ReapInterval, DefaultReapInterval)
	setDefault(&c.UpdateAttempts, DefaultUpdateAttempts)
	if c.Codec == nil {
		c.Codec = codec.MsgPack[T]{}
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"TTL", c.TTL < 0},
		{"MaxPayload", c.MaxPayload < 0 || c.MaxPayload > MaxPayloadLimit},
		{"LoadTimeout", c.LoadTimeout < 0},
		{"WriteTimeout", c.WriteTimeout < 0},
		{"TouchInterval", c.TouchInterval < 0},
		{"TouchBatchSize", c.TouchBatchSize < 0},
		{"TouchGranularity", c.TouchGranularity < 0},
		{"TouchAfter", c.TouchAfter < 0},
		{"MaxPendingTouches", c.MaxPendingTouches < 0},
		{"IndexTimeout", c.IndexTimeout < 0},
		{"ReapInterval", c.ReapInterval < 0},
		{"UpdateAttempts", c.UpdateAttempts < 0},
		{"MaxStaleness", c.MaxStaleness < 0},
		{"Coherence", c.Coherence > CoherenceOff},
		{"TTLIndex", c.TTLIndex != ttl.Auto && c.TTLIndex != ttl.Off && c.TTLIndex != ttl.Require},
		{"Prefix", len(c.Prefix) >= MaxIDLength || strings.ContainsRune(c.Prefix, 0)},
	} {
		if f.bad {
			errs = append(errs, fmt.Errorf("sessionstore: Options.%s is out of range", f.name))
		}
	}
	if c.MaxLifetime < 0 || c.MaxLifetime > 0 && c.MaxLifetime < c.TouchGranularity {
		errs = append(errs, fmt.Errorf("sessionstore: Options.MaxLifetime is %v: it must be 0 (no limit) or at least TouchGranularity (%v)", c.MaxLifetime, c.TouchGranularity))
	}
	return c, errors.Join(errs...)
}

func setDefault[V comparable](field *V, def V) {
	var zero V
	if *field == zero {
		*field = def
	}
}
