package integration_test

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/ttl"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// callTimeout bounds every server call a test makes itself.
const callTimeout = 30 * time.Second

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// commands counts the commands a client sends, by name, for one
// collection.
type commands struct {
	coll string

	mu     sync.Mutex // protects counts
	counts map[string]int

	// hold, when set, is called after a command succeeds and before its
	// result reaches the caller.
	hold atomic.Pointer[func(name string)]
}

func (c *commands) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			v, err := e.Command.LookupErr(e.CommandName)
			if err != nil {
				return
			}
			if name, ok := v.StringValueOK(); !ok || name != c.coll {
				return
			}
			c.mu.Lock()
			c.counts[e.CommandName]++
			c.mu.Unlock()
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			if h := c.hold.Load(); h != nil {
				(*h)(e.CommandName)
			}
		},
	}
}

// holdFirst holds the first successful command called name before its
// result reaches the caller: found is closed then, and the command
// returns when release is closed.
func (c *commands) holdFirst(name string) (found, release chan struct{}) {
	found, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := func(n string) {
		if n == name {
			once.Do(func() { close(found); <-release })
		}
	}
	c.hold.Store(&hold)
	return found, release
}

func (c *commands) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

func (c *commands) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}

// monitored returns coll as seen through a new client whose commands on
// it are counted.
func monitored(t *testing.T, coll *mongo.Collection) (*mongo.Collection, *commands) {
	t.Helper()
	c := &commands{coll: coll.Name(), counts: map[string]int{}}
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()).SetMonitor(c.monitor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client.Database(coll.Database().Name()).Collection(coll.Name()), c
}

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
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDoc reads the document with _id id straight from the server.
func rawDoc(t *testing.T, coll *mongo.Collection, id string) (bson.Raw, bool) {
	t.Helper()
	raw, err := coll.FindOne(bg(t), bson.D{{Key: "_id", Value: id}}).Raw()
	if err == mongo.ErrNoDocuments {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw, true
}

func rawExpires(t *testing.T, coll *mongo.Collection, id string) time.Time {
	t.Helper()
	raw, ok := rawDoc(t, coll, id)
	if !ok {
		t.Fatalf("document %q is missing", id)
	}
	ms, ok := raw.Lookup("expires").DateTimeOK()
	if !ok {
		t.Fatalf("document %q: expires is not a date: %v", id, raw.Lookup("expires"))
	}
	return time.UnixMilli(ms)
}

// clock is a settable Clock.
type clock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
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
