package feed_test

// The feed and the engine together: cases a review found where a store
// could serve a change made elsewhere past MaxStaleness, and feed bugs.

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/internal/engine"
	"github.com/sessionstore/sessionstore/internal/feed"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/internal/observe"
	"github.com/sessionstore/sessionstore/internal/tier"
	"github.com/sessionstore/sessionstore/internal/tier/tiertest"
	"github.com/sessionstore/sessionstore/ttl"
)

type manual struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manual) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manual) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newEngine(t *testing.T, clk *manual, f feed.Feed, db engine.Authority) (*engine.Engine, engine.Config) {
	t.Helper()
	obs, err := observe.New("db", "sessions", nil, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{
		Collection: "sessions", TTL: time.Hour, MaxPayload: 1 << 20, MaxCacheAge: time.Minute,
		Feed: f, Coherence: engine.Strict, MaxStaleness: time.Second,
		LoadTimeout: 10 * time.Second, WriteTimeout: time.Second, TouchInterval: time.Hour,
		TouchBatchSize: 1000, TouchGranularity: time.Second, MaxPendingTouches: 100,
		TTLIndex: ttl.Off, IndexTimeout: time.Second, ReapInterval: time.Hour,
		EnsureIndex: func(context.Context) (ttl.Decision, error) {
			return ttl.Decision{Mode: ttl.Off, Action: ttl.Disabled}, nil
		},
		Now: clk.Now, Observer: obs,
	}
	e, err := engine.New(context.Background(), cfg, db, tier.NewMemory(100))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e, cfg
}

func get(t *testing.T, e *engine.Engine, cfg engine.Config, id string) (tier.Record, bool, error) {
	_, o := cfg.Observer.Start(context.Background(), observe.Get)
	defer o.End(nil)
	cached, key, hit, err := e.Cached(&o, id)
	if err != nil {
		return tier.Record{}, false, err
	}
	if hit {
		return *cached, true, nil
	}
	rec, _, err := e.Load(context.Background(), &o, key, func([]byte) error { return nil })
	return rec, false, err
}

// tap forwards a feed's calls to the engine's sink and tells the test.
type tap struct {
	f     feed.Feed
	lost  chan error
	since chan time.Time
}

func newTap(f feed.Feed) *tap {
	return &tap{f: f, lost: make(chan error, 100), since: make(chan time.Time, 1<<16)}
}

func (t *tap) Run(ctx context.Context, s feed.Sink) { t.f.Run(ctx, tapSink{s, t}) }

type tapSink struct {
	feed.Sink
	t *tap
}

func (s tapSink) Lost(err error) {
	s.Sink.Lost(err)
	select {
	case s.t.lost <- err:
	default:
	}
}

func (s tapSink) CaughtUp(since time.Time) {
	s.Sink.CaughtUp(since)
	select {
	case s.t.since <- since:
	default:
	}
}

// caughtAfter waits for a CaughtUp at or after at.
func (t *tap) caughtAfter(tt *testing.T, at time.Time) {
	tt.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-t.since:
			if !s.Before(at) {
				return
			}
		case <-deadline:
			tt.Fatal("no CaughtUp")
		}
	}
}

// gatedOplog: the first Newest answers at once unless gateFirst; After
// reports history lost on its second call when lose is set.
type gatedOplog struct {
	mu        sync.Mutex
	gate      chan struct{}
	gateFirst bool
	lose      bool
	newest    int
	after     int
}

func (g *gatedOplog) Newest(ctx context.Context) (bson.Timestamp, error) {
	g.mu.Lock()
	g.newest++
	n := g.newest
	g.mu.Unlock()
	if n > 1 || g.gateFirst {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return bson.Timestamp{}, ctx.Err()
		}
	}
	return bson.Timestamp{T: uint32(100 * n)}, nil
}

func (g *gatedOplog) After(ctx context.Context, ts bson.Timestamp) (feed.Poll, error) {
	g.mu.Lock()
	g.after++
	n := g.after
	g.mu.Unlock()
	return feed.Poll{Kept: !(g.lose && n == 2), Newest: ts}, nil
}

// A change committed between the moment the feed lost track (or the store
// started) and the moment the feed found its starting point is never
// reported; memory filled meanwhile is dropped when the feed catches up.
func TestRestartGapIsForgotten(t *testing.T) {
	for _, c := range []struct {
		name string
		src  *gatedOplog
	}{
		{"after history lost", &gatedOplog{gate: make(chan struct{}), lose: true}},
		{"at startup", &gatedOplog{gate: make(chan struct{}), gateFirst: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &manual{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
			db := &tiertest.Fake{}
			db.Put(tier.Record{ID: "a", Payload: []byte("v0"), Expires: clk.Now().Add(time.Hour), Rev: 1})
			tp := newTap(&feed.Oplog{Source: c.src, Interval: time.Millisecond, Now: clk.Now})
			e, cfg := newEngine(t, clk, tp, db)
			if c.src.lose {
				select {
				case <-tp.lost:
				case <-time.After(5 * time.Second):
					t.Fatal("no Lost")
				}
			}
			if rec, _, err := get(t, e, cfg, "a"); err != nil || string(rec.Payload) != "v0" {
				t.Fatalf("Get = %q, %v", rec.Payload, err)
			}
			db.Put(tier.Record{ID: "a", Payload: []byte("v1"), Expires: clk.Now().Add(time.Hour), Rev: 2}) // another writer
			close(c.src.gate)                                                                              // the feed starts from the newest entry, after that write's
			clk.Add(2 * time.Second)
			tp.caughtAfter(t, clk.Now())
			rec, hit, err := get(t, e, cfg, "a")
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Payload) != "v1" {
				t.Fatalf("Get 2s after another writer's change = %q (from memory: %t), want v1", rec.Payload, hit)
			}
		})
	}
}

// slowDB reads the record, then holds the answer until released: a read
// whose snapshot precedes a write that commits while it is in flight.
type slowDB struct {
	*tiertest.Fake
	mu      sync.Mutex
	held    chan struct{}
	release chan struct{}
}

func (s *slowDB) Get(ctx context.Context, id string, now time.Time) (tier.Record, error) {
	rec, err := s.Fake.Get(ctx, id, now)
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	if held != nil {
		close(held)
		<-s.release
	}
	return rec, err
}

type stalled struct{}

func (stalled) Run(ctx context.Context, s feed.Sink) { <-ctx.Done() }

// With the feed stalled (no CaughtUp, no Lost), a Get does not join a
// load that began more than MaxStaleness before it: the load may predate
// a change.
func TestNoJoiningALoadOlderThanTheBound(t *testing.T) {
	clk := &manual{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	db := &slowDB{Fake: &tiertest.Fake{}, held: make(chan struct{}), release: make(chan struct{})}
	db.Put(tier.Record{ID: "a", Payload: []byte("v0"), Expires: clk.Now().Add(time.Hour), Rev: 1})
	held := db.held
	e, cfg := newEngine(t, clk, stalled{}, db)
	go func() { _, _, _ = get(t, e, cfg, "a") }()
	<-held
	db.Put(tier.Record{ID: "a", Payload: []byte("v1"), Expires: clk.Now().Add(time.Hour), Rev: 2})
	clk.Add(2 * time.Second)
	done := make(chan tier.Record, 1)
	go func() {
		rec, _, _ := get(t, e, cfg, "a")
		done <- rec
	}()
	time.Sleep(50 * time.Millisecond) // let it join
	close(db.release)
	if rec := <-done; string(rec.Payload) != "v1" {
		t.Fatalf("a Get begun 2s after the change returned %q, want v1", rec.Payload)
	}
}

// rec records a feed's calls.
type rec struct {
	mu      sync.Mutex
	changed []string
	caught  []time.Time
	lost    []error
}

func (r *rec) Changed(id string, rev int64, payload []byte) {
	r.mu.Lock()
	r.changed = append(r.changed, id)
	r.mu.Unlock()
}
func (r *rec) CaughtUp(since time.Time) {
	r.mu.Lock()
	r.caught = append(r.caught, since)
	r.mu.Unlock()
}
func (r *rec) Lost(err error) { r.mu.Lock(); r.lost = append(r.lost, err); r.mu.Unlock() }
func (r *rec) snapshot() ([]string, []time.Time, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.changed...), append([]time.Time(nil), r.caught...), append([]error(nil), r.lost...)
}

// stream1 is a stream whose first batch came with the aggregate that
// opened it, as a resumed stream's does.
type stream1 struct {
	batch []bson.Raw
	cur   bson.Raw
	dl    []bool
}

func (s *stream1) TryNext(ctx context.Context) bool {
	_, ok := ctx.Deadline()
	s.dl = append(s.dl, ok)
	if len(s.batch) == 0 {
		<-ctx.Done()
		return false
	}
	s.cur, s.batch = s.batch[0], s.batch[1:]
	return true
}
func (s *stream1) Event() bson.Raw                 { return s.cur }
func (s *stream1) RemainingBatchLength() int       { return len(s.batch) }
func (s *stream1) ResumeToken() bson.Raw           { return s.cur.Lookup("_id").Document() }
func (s *stream1) Err() error                      { return nil }
func (s *stream1) Close(ctx context.Context) error { return nil }

func mustRaw(d bson.D) bson.Raw { b, _ := bson.Marshal(d); return b }

// The batch a stream opens with (a resumed stream's) does not end in a
// catch-up: it may have been cut at its size, and no read began for it.
func TestOpeningBatchIsNotACatchUp(t *testing.T) {
	ev := mustRaw(bson.D{{Key: "_id", Value: bson.D{{Key: "_data", Value: "1"}}}, {Key: "operationType", Value: "delete"}, {Key: "documentKey", Value: bson.D{{Key: "_id", Value: "a"}}}})
	s := &stream1{batch: []bson.Raw{ev}}
	r := &rec{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&feed.Changes{Open: func(context.Context, bson.Raw) (feed.Stream, error) { return s, nil }}).Run(ctx, r)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	_, caught, _ := r.snapshot()
	for _, c := range caught {
		if c.IsZero() {
			t.Fatalf("CaughtUp(%v): the zero time", c)
		}
	}
}

// Timeout zero means no bound on reads, not the await time alone.
func TestZeroTimeoutLeavesReadsUnbounded(t *testing.T) {
	s := &stream1{}
	r := &rec{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&feed.Changes{Open: func(context.Context, bson.Raw) (feed.Stream, error) { return s, nil }, Await: 20 * time.Millisecond}).Run(ctx, r)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if len(s.dl) == 0 || s.dl[0] {
		t.Fatalf("with Timeout zero the read had a deadline (%v)", s.dl)
	}
}

func fakeColl(t *testing.T) *mongo.Collection {
	srv := mongofake.Start(t)
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database("db").Collection("sessions")
}

func oplogInsert(t *testing.T, coll *mongo.Collection, docs ...bson.D) {
	var all []any
	for _, d := range docs {
		all = append(all, d)
	}
	if _, err := coll.Database().Client().Database("local").Collection("oplog.rs").InsertMany(context.Background(), all); err != nil {
		t.Fatal(err)
	}
}

func del(at bson.Timestamp, ns, id string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
}

// FerretDB takes an entry's ts before it inserts the entry, so two
// concurrent writes can land in the oplog out of ts order: the one with
// the lower ts, inserted after a poll read the other, is still reported,
// once.
func TestOplogEntryInsertedBehindTheLastIsReported(t *testing.T) {
	coll := fakeColl(t)
	oplogInsert(t, coll, del(bson.Timestamp{T: 10}, "", "x"))
	r := &rec{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&feed.Oplog{Source: feed.NewMongoOplog(coll), Interval: time.Millisecond}).Run(ctx, r)
	}()
	defer func() { cancel(); <-done }()
	oplogInsert(t, coll, del(bson.Timestamp{T: 10, I: 6}, "db.sessions", "b"))
	time.Sleep(30 * time.Millisecond)
	oplogInsert(t, coll, del(bson.Timestamp{T: 10, I: 5}, "db.sessions", "a"))
	time.Sleep(30 * time.Millisecond)
	changed, _, _ := r.snapshot()
	if !slices.Equal(changed, []string{"b", "a"}) {
		t.Fatalf("changes reported: %v, want [b a]", changed)
	}
}

// When the session collection is idle while others are written, the
// capped oplog drops entries the feed read of other collections only: no
// history is lost.
func TestIdleCollectionKeepsItsHistory(t *testing.T) {
	coll := fakeColl(t)
	oplogInsert(t, coll, del(bson.Timestamp{T: 10}, "", "x"))
	r := &rec{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&feed.Oplog{Source: feed.NewMongoOplog(coll), Interval: time.Millisecond}).Run(ctx, r)
	}()
	defer func() { cancel(); <-done }()
	oplogInsert(t, coll, del(bson.Timestamp{T: 10, I: 1}, "db.sessions", "a"))
	time.Sleep(30 * time.Millisecond)
	oplogInsert(t, coll, del(bson.Timestamp{T: 10, I: 2}, "db.other", "z"), del(bson.Timestamp{T: 10, I: 3}, "db.other", "z"))
	time.Sleep(30 * time.Millisecond) // a poll reads them
	// The capped oplog wraps: the oldest entries go.
	if _, err := coll.Database().Client().Database("local").Collection("oplog.rs").DeleteMany(context.Background(),
		bson.D{{Key: "ts", Value: bson.D{{Key: "$lte", Value: bson.Timestamp{T: 10, I: 1}}}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if _, _, lost := r.snapshot(); len(lost) > 0 {
		t.Fatalf("Lost(%v), with no entry of the collection dropped", lost[0])
	}
}
