package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Oplog polls a server's oplog for the entries of one collection. A
// tailable cursor would be cheaper on MongoDB, but FerretDB rescans the
// whole oplog on every getMore of one anyway, so Oplog reads again by ts
// every Interval, and only while a Pacer sink needs the changes: each
// read costs FerretDB the whole oplog. A Feed value must not run twice
// at once.
type Oplog struct {
	// Source reads the oplog; see MongoOplog.
	Source OplogSource
	// Interval is the pause between polls. It bounds how late a change
	// is seen, with the time a poll takes.
	Interval time.Duration
	// Payload returns the session field of a document as written, or
	// nil. Nil means changes carry no payload.
	Payload func(doc bson.Raw) []byte
	// Timeout bounds each read of the oplog; zero means none.
	Timeout time.Duration
	// Now tells the time. Nil means time.Now.
	Now func() time.Time

	last  bson.Timestamp              // the newest entry read, of any collection
	known bool                        // last is set
	seen  map[bson.Timestamp]struct{} // entries of the collection read within the overlap
}

// idleLoss is how many Intervals a wait lasts at least for history lost
// during it to be the wait's cost rather than an oplog too small.
const idleLoss = 4

// Overlap is how far before the newest entry read each poll reads the
// collection's entries again, in seconds of ts: FerretDB takes an entry's
// ts before it inserts the entry, so concurrent writes can land out of
// order, just behind an entry already read.
const Overlap = 1

// OplogSource reads oplog entries of one collection.
type OplogSource interface {
	// Newest returns the ts of the newest entry of the whole oplog (zero
	// for an empty one), or an error wrapping ErrNoFeed if there is no
	// oplog.
	Newest(ctx context.Context) (bson.Timestamp, error)
	// After reads the oplog from ts on; see Poll.
	After(ctx context.Context, ts bson.Timestamp) (Poll, error)
}

// Poll is what one read of the oplog from ts found.
type Poll struct {
	// Entries are the collection's entries from Overlap seconds before
	// ts on, oldest first.
	Entries []Entry
	// Kept reports whether the entry at ts (of any collection) is still
	// in the oplog: if not, entries may have been dropped unread. A zero
	// ts is always kept.
	Kept bool
	// Newest is the ts of the newest entry read, of any collection, or
	// ts if there was none after it.
	Newest bson.Timestamp
}

// Entry is the part of an oplog entry that Oplog reads.
type Entry struct {
	TS  bson.Timestamp
	Op  string   // "i", "u" or "d"
	ID  string   // the document's _id; "" if it is not a string
	Rev int64    // the version written: 0 if the document has none, -1 if unknown
	Doc bson.Raw // the document as written, when the entry holds it whole
}

var errHistoryLost = errors.New("sessionstore: oplog history lost: entries were dropped before they were read; the oplog is too small for the write rate")

// Run follows the oplog until ctx ends, reporting to sink.
func (o *Oplog) Run(ctx context.Context, sink Sink) { retry(ctx, sink, o.follow) }

// follow polls until a poll fails. With a Pacer for sink it polls only
// while the Pacer says the changes are needed.
func (o *Oplog) follow(ctx context.Context, sink Sink) (bool, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	pacer, _ := sink.(Pacer)
	for progressed := false; ; progressed = true {
		if !o.known {
			// Start from the newest entry. Every change committed before
			// it returned predates what the sink reads from then on, and
			// the sink trusts nothing it read before (see Sink.CaughtUp).
			rctx, cancel := bounded(ctx, o.Timeout)
			ts, err := o.Source.Newest(rctx)
			cancel()
			if err != nil {
				return progressed, err
			}
			o.last, o.known, o.seen = ts, true, map[bson.Timestamp]struct{}{}
			sink.CaughtUp(now())
		}
		// Wait only with an entry to find again: a poll from the zero ts
		// of an empty oplog cannot tell what rolled off meanwhile.
		idle := false
		if pacer != nil && o.last != (bson.Timestamp{}) {
			began := time.Now()
			waited, err := pacer.Await(ctx)
			if err != nil {
				return progressed, err
			}
			idle = waited && time.Since(began) >= idleLoss*o.Interval
		}
		start := now()
		rctx, cancel := bounded(ctx, o.Timeout)
		poll, err := o.Source.After(rctx, o.last)
		cancel()
		if err != nil {
			return progressed, err
		}
		if !poll.Kept {
			o.known = false
			if idle {
				sink.Lost(ErrIdle) // and start again from now
				continue
			}
			return progressed, errHistoryLost
		}
		for _, e := range poll.Entries {
			if _, dup := o.seen[e.TS]; dup || e.ID == "" {
				continue
			}
			o.seen[e.TS] = struct{}{}
			o.report(sink, e, start)
		}
		if later(poll.Newest, o.last) {
			o.last = poll.Newest
		}
		for ts := range o.seen {
			if ts.T+Overlap < o.last.T {
				delete(o.seen, ts) // never read again
			}
		}
		sink.CaughtUp(start)
		if !sleep(ctx, o.Interval) {
			return true, ctx.Err()
		}
	}
}

// report passes e to sink. A document written already expired (a session
// revoked by moving its expiry) is reported as a delete.
func (o *Oplog) report(sink Sink, e Entry, now time.Time) {
	if e.Doc == nil {
		sink.Changed(e.ID, e.Rev, nil)
		return
	}
	if exp, ok := e.Doc.Lookup("expires").DateTimeOK(); ok && !time.UnixMilli(exp).After(now) {
		sink.Changed(e.ID, -1, nil)
		return
	}
	var payload []byte
	if o.Payload != nil {
		payload = o.Payload(e.Doc)
	}
	sink.Changed(e.ID, e.Rev, payload)
}

// later reports whether a is after b.
func later(a, b bson.Timestamp) bool {
	return a.T > b.T || a.T == b.T && a.I > b.I
}

// MongoOplog reads local.oplog.rs through a client.
type MongoOplog struct {
	Oplog     *mongo.Collection // local.oplog.rs
	Namespace string            // "<database>.<collection>"
}

var _ OplogSource = MongoOplog{}

// NewMongoOplog returns the oplog source of coll.
func NewMongoOplog(coll *mongo.Collection) MongoOplog {
	return MongoOplog{
		Oplog:     coll.Database().Client().Database("local").Collection("oplog.rs"),
		Namespace: coll.Database().Name() + "." + coll.Name(),
	}
}

// Newest returns the ts of the newest oplog entry.
func (m MongoOplog) Newest(ctx context.Context) (bson.Timestamp, error) {
	names, err := m.Oplog.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: m.Oplog.Name()}})
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("sessionstore: look for the oplog: %w", err)
	}
	if len(names) == 0 {
		return bson.Timestamp{}, ErrNoFeed
	}
	raw, err := m.Oplog.FindOne(ctx, bson.D{}, options.FindOne().
		SetSort(bson.D{{Key: "$natural", Value: -1}}).
		SetProjection(bson.D{{Key: "ts", Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, nil
	}
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("sessionstore: read the oplog: %w", err)
	}
	t, i, ok := raw.Lookup("ts").TimestampOK()
	if !ok {
		return bson.Timestamp{}, errors.New("sessionstore: read the oplog: an entry has no ts")
	}
	return bson.Timestamp{T: t, I: i}, nil
}

// After reads the oplog from ts on in one find: the collection's entries
// from Overlap seconds before ts, and every entry from ts on, to tell
// whether the entry at ts is still kept and which is the newest.
func (m MongoOplog) After(ctx context.Context, ts bson.Timestamp) (Poll, error) {
	from := bson.Timestamp{T: ts.T - min(ts.T, Overlap)}
	zero := ts == bson.Timestamp{}
	filter := bson.D{}
	if !zero {
		filter = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "ns", Value: m.Namespace}, {Key: "ts", Value: bson.D{{Key: "$gte", Value: from}}}},
			bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: ts}}}},
		}}}
	}
	cur, err := m.Oplog.Find(ctx, filter, options.Find().
		SetProjection(bson.D{{Key: "ts", Value: 1}, {Key: "ns", Value: 1}, {Key: "op", Value: 1}, {Key: "o", Value: 1}, {Key: "o2", Value: 1}}))
	if err != nil {
		return Poll{}, fmt.Errorf("sessionstore: read the oplog: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	p := Poll{Kept: zero, Newest: ts}
	for cur.Next(ctx) {
		e, ok := oplogEntry(cur.Current)
		if !ok {
			continue
		}
		if e.TS == ts {
			p.Kept = true
		}
		if later(e.TS, p.Newest) {
			p.Newest = e.TS
		}
		if ns, _ := cur.Current.Lookup("ns").StringValueOK(); ns == m.Namespace && (zero || !later(from, e.TS)) {
			p.Entries = append(p.Entries, e)
		}
	}
	if err := cur.Err(); err != nil {
		return Poll{}, fmt.Errorf("sessionstore: read the oplog: %w", err)
	}
	return p, nil
}

// oplogEntry reads an entry: the id is in o (o2 for an update), the whole
// document in o for an insert and, as FerretDB writes updates, in o.$set.
func oplogEntry(raw bson.Raw) (Entry, bool) {
	t, i, ok := raw.Lookup("ts").TimestampOK()
	if !ok {
		return Entry{}, false
	}
	e := Entry{TS: bson.Timestamp{T: t, I: i}, Rev: -1}
	e.Op, _ = raw.Lookup("op").StringValueOK()
	o, _ := raw.Lookup("o").DocumentOK()
	switch e.Op {
	case "i":
		e.ID, _ = o.Lookup("_id").StringValueOK()
		e.Doc = o
	case "d":
		e.ID, _ = o.Lookup("_id").StringValueOK()
	case "u":
		o2, _ := raw.Lookup("o2").DocumentOK()
		e.ID, _ = o2.Lookup("_id").StringValueOK()
		if set, ok := o.Lookup("$set").DocumentOK(); ok {
			if _, err := set.LookupErr("_id"); err == nil {
				e.Doc = set // the whole document, not a diff
			}
		} else if _, err := o.LookupErr("_id"); err == nil {
			e.Doc = o // a replacement
		}
	}
	if e.Doc != nil {
		e.Rev = revOf(e.Doc)
	}
	return e, true
}

// revOf returns doc's version: 0 if it has none, -1 if it is not a number.
func revOf(doc bson.Raw) int64 {
	v, err := doc.LookupErr("rev")
	if err != nil {
		return 0
	}
	if rev, ok := v.AsInt64OK(); ok {
		return rev
	}
	return -1
}
