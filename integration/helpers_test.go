package integration_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// bg bounds a server call the test makes itself.
var bg = mongotest.Context

// newStore returns a store over coll, closed when the test ends. TTL
// index management is off unless opts says otherwise.
func newStore[T any](t *testing.T, coll *mongo.Collection, opts *sessionstore.Options[T]) *sessionstore.Store[T] {
	t.Helper()
	if opts == nil {
		opts = &sessionstore.Options[T]{TTLIndex: ttl.Off}
	}
	s, err := sessionstore.New(coll, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongotest.CallTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func rawExpires(t *testing.T, coll *mongo.Collection, id string) time.Time {
	t.Helper()
	raw, ok := mongotest.RawDoc(t, coll, id)
	if !ok {
		t.Fatalf("document %q is missing", id)
	}
	ms, ok := raw.Lookup("expires").DateTimeOK()
	if !ok {
		t.Fatalf("document %q: expires is not a date: %v", id, raw.Lookup("expires"))
	}
	return time.UnixMilli(ms)
}

func contextCancelled() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}

// withDatabase returns uri with its path set to db.
func withDatabase(uri, db string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	u.Path = "/" + db
	return u.String()
}

func optionsTTL() *options.IndexOptionsBuilder {
	return options.Index().SetExpireAfterSeconds(0)
}
