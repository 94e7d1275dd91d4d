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

// codeHistoryLost is ChangeStreamHistoryLost: the resume token is gone.
const codeHistoryLost = 286

// Stream is a change stream, as *mongo.ChangeStream is.
type Stream interface {
	// TryNext reads the next event, waiting at most the stream's await
	// time for one; false means none came (or an error: see Err).
	TryNext(ctx context.Context) bool
	// Event returns the event TryNext read.
	Event() bson.Raw
	// RemainingBatchLength returns how many events of the batch the
	// last read fetched are still to be read.
	RemainingBatchLength() int
	// ResumeToken returns the token to resume after the last event.
	ResumeToken() bson.Raw
	// Err returns the error that ended the stream, if any.
	Err() error
	// Close ends the stream.
	Close(ctx context.Context) error
}

// Opener opens a change stream of the session collection, resuming after
// token when it is not nil.
type Opener func(ctx context.Context, token bson.Raw) (Stream, error)

// Changes follows a MongoDB change stream. Events come once a write is
// majority-committed, so the staleness it bounds runs from then. A Feed
// value must not run twice at once.
type Changes struct {
	// Open opens the stream; see MongoChanges.
	Open Opener
	// Timeout bounds opening the stream, and each read beyond the
	// stream's await time; zero means none.
	Timeout time.Duration
	// Await is the stream's await time, for Timeout.
	Await time.Duration
	// Now tells the time. Nil means time.Now.
	Now func() time.Time

	token bson.Raw // where to resume; nil: from now
}

// Run follows the stream until ctx ends, reporting to sink. After an
// error it resumes with the last resume token; after an invalidate event
// or lost history it starts afresh. Either way it reports Lost first.
func (c *Changes) Run(ctx context.Context, sink Sink) { retry(ctx, sink, c.follow) }

// follow reads the stream until it fails.
func (c *Changes) follow(ctx context.Context, sink Sink) (bool, error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	octx, cancel := bounded(ctx, c.Timeout)
	s, err := c.Open(octx, c.token)
	cancel()
	if err != nil {
		if historyLost(err) {
			c.token = nil
		}
		return false, err
	}
	defer s.Close(context.WithoutCancel(ctx))
	progressed := false
	var fetched time.Time // when the read that fetched the current batch began; zero for the open's
	for {
		start := now()
		if s.RemainingBatchLength() == 0 {
			fetched = start
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if c.Timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, c.Timeout+c.Await)
		}
		next := s.TryNext(rctx)
		cancel()
		if !next {
			if err := s.Err(); err != nil {
				if historyLost(err) {
					c.token = nil
				}
				return progressed, err
			}
			if ctx.Err() != nil {
				return progressed, ctx.Err()
			}
			// The server had nothing more: every change committed
			// before the read began has been seen. Resume from here.
			if token := s.ResumeToken(); token != nil {
				c.token = token
			}
			sink.CaughtUp(start)
			progressed = true
			continue
		}
		c.token = s.ResumeToken()
		ev := s.Event()
		op, _ := ev.Lookup("operationType").StringValueOK()
		if op == "invalidate" {
			c.token = nil
			return progressed, errors.New("sessionstore: change stream invalidated: the collection was dropped or renamed")
		}
		if id, ok := ev.Lookup("documentKey", "_id").StringValueOK(); ok {
			sink.Changed(id, eventRev(ev, op), nil)
		}
		if s.RemainingBatchLength() == 0 && !fetched.IsZero() {
			// A batch fetched by a read ends where the server's history
			// did when it was read (the batch that came with the open
			// may have been cut at its size).
			sink.CaughtUp(fetched)
			progressed = true
		}
	}
}

// eventRev returns the version an event wrote: 0 for a document without
// one, -1 for a delete or an update that did not set it.
func eventRev(ev bson.Raw, op string) int64 {
	switch op {
	case "update":
		fields, _ := ev.Lookup("updateDescription", "updatedFields").DocumentOK()
		if _, err := fields.LookupErr("rev"); err != nil {
			return -1
		}
		return revOf(fields)
	case "insert", "replace":
		doc, _ := ev.Lookup("fullDocument").DocumentOK()
		return revOf(doc)
	default:
		return -1
	}
}

func historyLost(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(codeHistoryLost)
}

// MongoChanges returns an Opener of coll's change stream, with await
// time await. The stream reports inserts, deletes, replaces and the
// updates that change the session or its version, never touches (which
// only move expires), with the id and version alone.
func MongoChanges(coll *mongo.Collection, await time.Duration) Opener {
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "operationType", Value: bson.D{{Key: "$in", Value: bson.A{"insert", "replace", "delete", "invalidate"}}}}},
			bson.D{{Key: "updateDescription.updatedFields.session", Value: bson.D{{Key: "$exists", Value: true}}}},
			bson.D{{Key: "updateDescription.updatedFields.rev", Value: bson.D{{Key: "$exists", Value: true}}}},
		}}}}},
		{{Key: "$project", Value: bson.D{
			{Key: "operationType", Value: 1},
			{Key: "documentKey", Value: 1},
			{Key: "updateDescription.updatedFields.rev", Value: 1},
			{Key: "fullDocument.rev", Value: 1},
		}}},
	}
	return func(ctx context.Context, token bson.Raw) (Stream, error) {
		opts := options.ChangeStream().SetMaxAwaitTime(await)
		if token != nil {
			opts.SetResumeAfter(token)
		}
		cs, err := coll.Watch(ctx, pipeline, opts)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: open a change stream: %w", err)
		}
		return mongoStream{cs}, nil
	}
}

type mongoStream struct{ *mongo.ChangeStream }

func (s mongoStream) Event() bson.Raw { return s.Current }
