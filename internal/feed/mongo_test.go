package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/internal/mongofake"
)

// fake starts a fake server and returns it with the session collection
// db.sessions of a client connected to it.
func fake(t *testing.T) (*mongofake.Server, *mongo.Collection) {
	t.Helper()
	srv := mongofake.Start(t)
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return srv, c.Database("db").Collection("sessions")
}

// oplogOf returns local.oplog.rs on coll's client.
func oplogOf(coll *mongo.Collection) *mongo.Collection {
	return coll.Database().Client().Database("local").Collection("oplog.rs")
}

// write appends entries to the oplog, as FerretDB does.
func write(t *testing.T, coll *mongo.Collection, entries ...bson.D) {
	t.Helper()
	docs := make([]any, len(entries))
	for i, e := range entries {
		docs[i] = e
	}
	if _, err := oplogOf(coll).InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// The oplog entries of every shape that FerretDB and MongoDB write.
func entryInsert(at bson.Timestamp, ns, id string, r int64, sess string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "i"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "_id", Value: id}, {Key: "session", Value: sess}, {Key: "rev", Value: r}}}}
}

// entryFerretUpdate is an update as FerretDB writes it: the whole new
// document under o.$set.
func entryFerretUpdate(at bson.Timestamp, ns, id string, r int64, sess string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "u"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "$v", Value: int32(1)}, {Key: "$set", Value: bson.D{{Key: "_id", Value: id}, {Key: "session", Value: sess}, {Key: "rev", Value: r}}}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

// entryDiffUpdate is an update as MongoDB 5+ writes it: a diff.
func entryDiffUpdate(at bson.Timestamp, ns, id string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "u"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "session", Value: "z"}}}}}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

// entrySetUpdate is an update as MongoDB 4.x writes it: $set of the
// changed fields only.
func entrySetUpdate(at bson.Timestamp, ns, id string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "u"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "rev", Value: int64(9)}}}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

func entryReplace(at bson.Timestamp, ns, id string, r int64, sess string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "u"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "_id", Value: id}, {Key: "session", Value: sess}, {Key: "rev", Value: r}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

func entryDelete(at bson.Timestamp, ns string, id any) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "d"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
}

func entryNoop(at bson.Timestamp, ns string) bson.D {
	return bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "n"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}}}
}

// oplogEntry reads the id, the version and the whole document, when the
// entry holds it, of every kind of entry.
func TestOplogEntry(t *testing.T) {
	const ns = "db.sessions"
	at := ts(5, 1)
	for _, c := range []struct {
		name    string
		entry   bson.D
		op, id  string
		rev     int64
		session string // of the whole document; "" for none
	}{
		{"insert", entryInsert(at, ns, "a", 1, "x"), "i", "a", 1, "x"},
		{"FerretDB update", entryFerretUpdate(at, ns, "b", 2, "y"), "u", "b", 2, "y"},
		{"replacement", entryReplace(at, ns, "c", 3, "w"), "u", "c", 3, "w"},
		{"diff update", entryDiffUpdate(at, ns, "d"), "u", "d", -1, ""},
		{"partial $set update", entrySetUpdate(at, ns, "e"), "u", "e", -1, ""},
		{"delete", entryDelete(at, ns, "f"), "d", "f", -1, ""},
		{"delete of a non-string id", entryDelete(at, ns, int32(7)), "d", "", -1, ""},
		{"no-op", entryNoop(at, ""), "n", "", -1, ""},
		{"insert without rev", bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: "g"}, {Key: "session", Value: "v"}}}}, "i", "g", 0, "v"},
		{"insert with rev as int32", bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: "h"}, {Key: "session", Value: "v"}, {Key: "rev", Value: int32(4)}}}}, "i", "h", 4, "v"},
		{"insert with a non-number rev", bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: "k"}, {Key: "session", Value: "v"}, {Key: "rev", Value: "one"}}}}, "i", "k", -1, "v"},
		{"insert of a non-string id", bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "session", Value: "v"}}}}, "i", "", 0, "v"},
		{"update without o2", bson.D{{Key: "ts", Value: at}, {Key: "op", Value: "u"}, {Key: "o", Value: bson.D{{Key: "$v", Value: int32(2)}}}}, "u", "", -1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, ok := oplogEntry(raw(t, c.entry))
			if !ok {
				t.Fatal("oplogEntry refused the entry")
			}
			if e.TS != at || e.Op != c.op || e.ID != c.id || e.Rev != c.rev {
				t.Fatalf("entry %+v, want ts %v, op %q, id %q, rev %d", e, at, c.op, c.id, c.rev)
			}
			if got := string(session(e.Doc)); got != c.session || (c.session == "") != (e.Doc == nil) {
				t.Fatalf("document %v (session %q), want session %q", e.Doc, got, c.session)
			}
		})
	}
	for _, bad := range []bson.D{
		{{Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: "a"}}}},
		{{Key: "ts", Value: int64(5)}, {Key: "op", Value: "i"}, {Key: "o", Value: bson.D{{Key: "_id", Value: "a"}}}},
	} {
		if e, ok := oplogEntry(raw(t, bad)); ok {
			t.Errorf("oplogEntry(%v) = %+v, want it refused: no timestamp", bad, e)
		}
	}
}

func TestNewMongoOplog(t *testing.T) {
	_, coll := fake(t)
	m := NewMongoOplog(coll)
	if m.Namespace != "db.sessions" || m.Oplog.Name() != "oplog.rs" || m.Oplog.Database().Name() != "local" {
		t.Fatalf("NewMongoOplog = %s, %s.%s; want db.sessions, local.oplog.rs", m.Namespace, m.Oplog.Database().Name(), m.Oplog.Name())
	}
}

// Newest tells a server without an oplog (ErrNoFeed), an empty oplog
// (zero) and the ts of an entry, and fails on what it cannot read.
//
// The fake server accepts a $natural sort but ignores it (it orders by
// _id), so this test holds one entry at a time: it cannot tell that
// Newest picks the newest of several.
func TestMongoOplogNewest(t *testing.T) {
	ctx := context.Background()
	srv, coll := fake(t)
	m := NewMongoOplog(coll)
	if _, err := m.Newest(ctx); !errors.Is(err, ErrNoFeed) {
		t.Fatalf("Newest without an oplog = %v, want ErrNoFeed", err)
	}
	write(t, coll, entryNoop(ts(10, 3), ""))
	if got, err := m.Newest(ctx); err != nil || got != ts(10, 3) {
		t.Fatalf("Newest = %v, %v; want the entry's ts 10:3", got, err)
	}
	if _, err := oplogOf(coll).DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Newest(ctx); err != nil || !got.IsZero() {
		t.Fatalf("Newest of an empty oplog = %v, %v; want zero", got, err)
	}
	write(t, coll, bson.D{{Key: "op", Value: "n"}})
	if _, err := m.Newest(ctx); err == nil || !strings.Contains(err.Error(), "no ts") {
		t.Fatalf("Newest of an entry without ts = %v, want an error saying so", err)
	}
	srv.Fail("find", 13)
	if _, err := m.Newest(ctx); err == nil || !strings.Contains(err.Error(), "read the oplog") || !isCode(err, 13) {
		t.Fatalf("Newest with find failing = %v, want the server's error", err)
	}
	srv.Fail("listCollections", 13)
	if _, err := m.Newest(ctx); err == nil || !strings.Contains(err.Error(), "look for the oplog") || !isCode(err, 13) {
		t.Fatalf("Newest with listCollections failing = %v, want the server's error", err)
	}
}

func isCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// After returns the collection's entries from Overlap seconds before ts
// on, oldest first, whether the entry at ts, of any collection, is still
// in the oplog, and the newest entry of all.
func TestMongoOplogAfter(t *testing.T) {
	ctx := context.Background()
	srv, coll := fake(t)
	const ns = "db.sessions"
	write(t, coll,
		entryNoop(ts(10, 0), ""),
		entryInsert(ts(10, 1), "db.other", "z", 1, "q"),
		entryInsert(ts(10, 2), ns, "a", 1, "x"),
		entryFerretUpdate(ts(10, 3), ns, "a", 2, "y"),
		entryInsert(ts(10, 4), "db.other", "z", 1, "q"),
		entryReplace(ts(11, 0), ns, "b", 3, "w"),
		entryDiffUpdate(ts(11, 1), ns, "c"),
		entryDelete(ts(11, 2), ns, "a"),
		entryDelete(ts(11, 3), ns, int32(7)),
		entryNoop(ts(11, 4), ns),
		entryInsert(ts(11, 5), "db.sessions2", "a", 1, "x"),
	)
	m := NewMongoOplog(coll)
	ours := []bson.Timestamp{ts(10, 2), ts(10, 3), ts(11, 0), ts(11, 1), ts(11, 2), ts(11, 3), ts(11, 4)}
	for _, c := range []struct {
		after  bson.Timestamp
		want   []bson.Timestamp
		kept   bool
		newest bson.Timestamp
	}{
		{bson.Timestamp{}, ours, true, ts(11, 5)},
		{ts(10, 2), ours, true, ts(11, 5)},             // an entry of ours; the overlap reads back to 9:0
		{ts(10, 4), ours, true, ts(11, 5)},             // an entry of another collection
		{ts(10, 0), ours, true, ts(11, 5)},             // a no-op
		{ts(10, 5), ours, false, ts(11, 5)},            // no such entry: dropped
		{ts(11, 4), ours, true, ts(11, 5)},             // the last of ours
		{ts(11, 5), ours, true, ts(11, 5)},             // the last of the oplog
		{ts(12, 0), ours[2:], false, ts(12, 0)},        // after the last: unknown; the overlap reaches 11:0
		{bson.Timestamp{T: 1}, ours, false, ts(11, 5)}, // before the first: dropped
	} {
		p, err := m.After(ctx, c.after)
		if err != nil {
			t.Fatalf("After(%v): %v", c.after, err)
		}
		var got []bson.Timestamp
		for _, e := range p.Entries {
			got = append(got, e.TS)
		}
		if !slices.Equal(got, c.want) || p.Kept != c.kept || p.Newest != c.newest {
			t.Fatalf("After(%v) = %v, kept %t, newest %v; want %v, kept %t, newest %v", c.after, got, p.Kept, p.Newest, c.want, c.kept, c.newest)
		}
	}
	p, err := m.After(ctx, bson.Timestamp{})
	if err != nil {
		t.Fatal(err)
	}
	entries := p.Entries
	type view struct {
		op, id  string
		rev     int64
		session string
	}
	var got []view
	for _, e := range entries {
		got = append(got, view{e.Op, e.ID, e.Rev, string(session(e.Doc))})
	}
	want := []view{{"i", "a", 1, "x"}, {"u", "a", 2, "y"}, {"u", "b", 3, "w"}, {"u", "c", -1, ""}, {"d", "a", -1, ""}, {"d", "", -1, ""}, {"n", "", -1, ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}

	srv.Fail("find", 13)
	if _, err := m.After(ctx, ts(10, 2)); err == nil || !isCode(err, 13) {
		t.Fatalf("After with find failing = %v, want the server's error", err)
	}
}

// A failure past the first batch of the read is reported, not taken for
// the end of the oplog.
func TestMongoOplogAfterFailsOnALaterBatch(t *testing.T) {
	srv, coll := fake(t)
	var entries []bson.D
	for i := range 150 {
		entries = append(entries, entryDelete(ts(20, uint32(i+1)), "db.sessions", fmt.Sprint(i)))
	}
	write(t, coll, entries...)
	srv.Fail("getMore", 13)
	if _, err := NewMongoOplog(coll).After(context.Background(), bson.Timestamp{}); err == nil || !isCode(err, 13) {
		t.Fatalf("After with getMore failing = %v, want the server's error", err)
	}
}

// picks records what Auto picked.
type picks struct {
	mu  sync.Mutex
	got []string
}

func (p *picks) picked(m string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, m)
}

func (p *picks) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// On a server whose hello names no replica set, Auto follows the oplog:
// every change to the collection, with its version and payload, and none
// of other collections.
func TestAutoFollowsTheOplogOfAStandalone(t *testing.T) {
	_, coll := fake(t)
	write(t, coll, entryNoop(ts(10, 0), ""))
	p := &picks{}
	sink := newRecorder()
	run(t, &Auto{Coll: coll, Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Payload: session, Picked: p.picked}, sink)
	sink.expect(t, "caught")
	write(t, coll,
		entryInsert(ts(10, 1), "db.sessions", "a", 1, "x"),
		entryInsert(ts(10, 2), "db.other", "a", 5, "q"),
		entryFerretUpdate(ts(10, 3), "db.sessions", "a", 2, "y"),
		entryDelete(ts(10, 4), "db.sessions", "a"),
	)
	for _, want := range []note{{id: "a", rev: 1, payload: []byte("x")}, {id: "a", rev: 2, payload: []byte("y")}, {id: "a", rev: -1}} {
		n := sink.until(t, "changed")
		if n.id != want.id || n.rev != want.rev || string(n.payload) != string(want.payload) {
			t.Fatalf("Changed(%q, %d, %q), want Changed(%q, %d, %q)", n.id, n.rev, n.payload, want.id, want.rev, want.payload)
		}
	}
	if got := p.all(); !slices.Equal(got, []string{"oplog"}) {
		t.Fatalf("picked %v, want the oplog", got)
	}
	if n := sink.count("lost"); n != 0 {
		t.Fatalf("%d Lost calls, want none", n)
	}
}

// Without an oplog either, Auto reports ErrNoFeed.
func TestAutoWithoutAFeed(t *testing.T) {
	_, coll := fake(t)
	p := &picks{}
	sink := newRecorder()
	run(t, &Auto{Coll: coll, Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Picked: p.picked}, sink)
	if n := sink.expect(t, "lost"); !errors.Is(n.err, ErrNoFeed) {
		t.Fatalf("Lost(%v), want ErrNoFeed", n.err)
	}
	if got := p.all(); !slices.Equal(got, []string{"oplog"}) {
		t.Fatalf("picked %v, want the oplog", got)
	}
}

// A server that does not answer hello is reported, within Timeout, and
// no mechanism is picked.
func TestAutoHelloFails(t *testing.T) {
	srv, coll := fake(t)
	srv.Close()
	p := &picks{}
	sink := newRecorder()
	run(t, &Auto{Coll: coll, Interval: 5 * time.Millisecond, Timeout: 50 * time.Millisecond, Picked: p.picked}, sink)
	if n := sink.expect(t, "lost"); n.err == nil || !strings.Contains(n.err.Error(), "which change feed") {
		t.Fatalf("Lost(%v), want an error saying hello failed", n.err)
	}
	if got := p.all(); len(got) != 0 {
		t.Fatalf("picked %v with no answer to hello, want nothing", got)
	}
}

// A clustered server that refuses change streams with a code saying it
// cannot have them makes Auto switch to the oplog for good.
//
// The fake server's hello names no replica set, so the test picks the
// change stream itself, as Auto does when hello names one.
func TestAutoFallsBackToTheOplog(t *testing.T) {
	t.Parallel()
	for _, code := range noChangeStreams {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			srv, coll := fake(t)
			write(t, coll, entryNoop(ts(10, 0), ""))
			srv.Fail("aggregate", int32(code))
			p := &picks{}
			a := &Auto{Coll: coll, Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Payload: session, Picked: p.picked}
			a.pick(true)
			sink := newRecorder()
			r := run(t, a, sink)
			n := sink.expect(t, "lost")
			if !isCode(n.err, code) || !strings.Contains(n.err.Error(), "following the oplog instead") {
				t.Fatalf("Lost(%v), want the server's refusal, saying the oplog is followed instead", n.err)
			}
			sink.expect(t, "caught")
			write(t, coll, entryDelete(ts(10, 1), "db.sessions", "a"))
			sink.until(t, "changed")
			r.stop(t)
			if got := p.all(); !slices.Equal(got, []string{"change stream", "oplog"}) {
				t.Fatalf("picked %v, want the change stream, then the oplog", got)
			}
			if a.changes != nil {
				t.Fatal("Auto kept its change stream")
			}
		})
	}
}

// Other failures to open the change stream are retried with it.
func TestAutoKeepsTheChangeStreamOnOtherErrors(t *testing.T) {
	_, coll := fake(t)
	p := &picks{}
	a := &Auto{Coll: coll, Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Picked: p.picked}
	a.pick(true)
	sink := newRecorder()
	r := run(t, a, sink)
	// The fake server does not know the $changeStream stage (40324).
	if n := sink.expect(t, "lost"); !isCode(n.err, 40324) {
		t.Fatalf("Lost(%v), want the server's error", n.err)
	}
	r.stop(t)
	if got := p.all(); !slices.Equal(got, []string{"change stream"}) || a.changes == nil {
		t.Fatalf("picked %v, change stream kept %t; want the change stream alone", got, a.changes != nil)
	}
}

// MongoChanges opens coll's change stream, resuming after a token when
// given one; it reports the server's refusal.
func TestMongoChangesReportsTheServersRefusal(t *testing.T) {
	srv, coll := fake(t)
	srv.Fail("aggregate", 40573)
	open := MongoChanges(coll, time.Second)
	for _, tok := range []bson.Raw{nil, token(t, 1)} {
		s, err := open(context.Background(), tok)
		if err == nil || !isCode(err, 40573) || !strings.Contains(err.Error(), "open a change stream") {
			t.Fatalf("open(%v) = %v, %v; want the server's refusal", tok, s, err)
		}
	}
	if n := slices.Index(srv.Commands(), "aggregate"); n < 0 {
		t.Fatalf("commands %v, want an aggregate", srv.Commands())
	}
}

func TestUnsupported(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{mongo.CommandError{Code: 40573}, true},
		{fmt.Errorf("open: %w", mongo.CommandError{Code: 238}), true},
		{mongo.CommandError{Code: 115}, true},
		{mongo.CommandError{Code: 59}, true},
		{mongo.CommandError{Code: 13}, false},
		{mongo.CommandError{Code: 286}, false},
		{errors.New("not supported"), false},
		{nil, false},
	} {
		if got := unsupported(c.err); got != c.want {
			t.Errorf("unsupported(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}
