package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server error codes that say a deployment cannot open change streams.
var noChangeStreams = []int{
	40573, // the $changeStream stage is only supported on replica sets
	238,   // NotImplemented (FerretDB)
	115,   // CommandNotSupported
	59,    // CommandNotFound
}

// Auto follows a collection with the best mechanism its server offers,
// chosen from the server's answers: a change stream when hello names a
// replica set or a mongos and the stream opens, else the oplog.
type Auto struct {
	// Coll is the session collection.
	Coll *mongo.Collection
	// Interval is the change stream's await time and the oplog's poll
	// interval.
	Interval time.Duration
	// Timeout bounds each read, beyond a change stream's await time.
	Timeout time.Duration
	// Payload returns the session field of a document; see Oplog.
	Payload func(doc bson.Raw) []byte
	// Now tells the time. Nil means time.Now.
	Now func() time.Time
	// Picked, if set, is told the mechanism each time one is chosen:
	// "change stream" or "oplog".
	Picked func(mechanism string)

	changes *Changes
	oplog   *Oplog
	cur     attempt
}

// Run follows the collection until ctx ends, reporting to sink.
func (a *Auto) Run(ctx context.Context, sink Sink) { retry(ctx, sink, a.follow) }

func (a *Auto) follow(ctx context.Context, sink Sink) (bool, error) {
	if a.cur == nil {
		streams, err := a.clustered(ctx)
		if err != nil {
			return false, err
		}
		a.pick(streams)
	}
	progressed, err := a.cur(ctx, sink)
	if errors.Is(err, ErrNoFeed) {
		a.cur = nil // ask the server again next time
	}
	if a.changes != nil && !progressed && unsupported(err) {
		// Clustered, yet without change streams: use the oplog.
		a.pick(false)
		err = fmt.Errorf("sessionstore: change streams unavailable, following the oplog instead: %w", err)
	}
	return progressed, err
}

// clustered reports whether hello names a replica set or a mongos.
func (a *Auto) clustered(ctx context.Context) (bool, error) {
	ctx, cancel := bounded(ctx, a.Timeout)
	defer cancel()
	reply, err := a.Coll.Database().Client().Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		return false, fmt.Errorf("sessionstore: ask the server which change feed it has: %w", err)
	}
	_, replicaSet := reply.Lookup("setName").StringValueOK()
	msg, _ := reply.Lookup("msg").StringValueOK()
	return replicaSet || msg == "isdbgrid", nil
}

func (a *Auto) pick(streams bool) {
	name := "oplog"
	if streams {
		a.changes = &Changes{Open: MongoChanges(a.Coll, a.Interval), Await: a.Interval, Timeout: a.Timeout, Now: a.Now}
		a.cur, name = a.changes.follow, "change stream"
	} else {
		a.changes = nil
		a.oplog = &Oplog{Source: NewMongoOplog(a.Coll), Interval: a.Interval, Timeout: a.Timeout, Payload: a.Payload, Now: a.Now}
		a.cur = a.oplog.follow
	}
	if a.Picked != nil {
		a.Picked(name)
	}
}

func unsupported(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, code := range noChangeStreams {
		if se.HasErrorCode(code) {
			return true
		}
	}
	return false
}
