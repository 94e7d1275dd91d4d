package bench

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

// callTimeout bounds every server call a benchmark makes itself.
const callTimeout = time.Minute

// poolSize is how many distinct sessions the benchmarks cycle through:
// enough to spread over the in-memory tier's shards, few enough that the
// one write each needs to set them up stays within a second or two on
// FerretDB. A run of fewer operations (-benchtime=1x) uses fewer.
const poolSize = 256

// bg returns a context bounded by callTimeout, cancelled when the
// benchmark ends.
func bg(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	b.Cleanup(cancel)
	return ctx
}

// writes counts the write commands cmds recorded.
func writes(cmds *mongotest.Commands) int { return cmds.Count("update", "insert", "delete") }

// newStore returns a store over coll, closed when the benchmark ends. A nil
// opts means the defaults with TTL index management off, so that no
// index or reaper command disturbs the counts.
func newStore(b *testing.B, coll *mongo.Collection, opts *sessionstore.Options[Session]) *sessionstore.Store[Session] {
	b.Helper()
	if opts == nil {
		opts = &sessionstore.Options[Session]{}
	}
	o := *opts
	o.TTLIndex = ttl.Off
	s, err := sessionstore.New(coll, &o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return s
}

// document is a session document as the store writes it with the msgpack
// codec: {_id, expires, session: binary}.
func document(id string, payload []byte, expires time.Time) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "expires", Value: bson.NewDateTimeFromTime(expires)},
		{Key: "session", Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: payload}},
	}
}

// insertSessions writes sessions first to first+n-1 (Sample and ID) into
// coll in bulk, a few insertMany commands rather than a write each, and
// returns their ids.
func insertSessions(b *testing.B, coll *mongo.Collection, first, n int) []string {
	b.Helper()
	const batch = 1000
	ids := make([]string, n)
	expires := time.Now().Add(time.Hour)
	docs := make([]any, 0, min(n, batch))
	for i := range n {
		ids[i] = ID(first + i)
		p, err := codec.MsgPack[Session]{}.Encode(Sample(first + i))
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, document(ids[i], p, expires))
		if len(docs) == batch || i == n-1 {
			if _, err := coll.InsertMany(bg(b), docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	return ids
}

// warm Sets sessions 0 to n-1 (Sample and ID) through s, which puts
// them in its memory as well as in the database, and returns their ids.
// The writes go one at a time: FerretDB on SQLite answers concurrent
// commands far more slowly than sequential ones. Set filters on _id
// alone, which FerretDB serves from its primary key; a Get of a missing
// session also filters on expires and scans the collection.
func warm(b *testing.B, s *sessionstore.Store[Session], n int) []string {
	b.Helper()
	ids := make([]string, n)
	ctx := bg(b)
	for i := range ids {
		ids[i] = ID(i)
		if err := s.Set(ctx, ids[i], Sample(i)); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// pool returns how many sessions a benchmark of b.N operations cycles
// through.
func pool(b *testing.B) int { return min(b.N, poolSize) }
