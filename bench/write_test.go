package bench

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// samples returns the sample sessions 0 to n-1 and their ids.
func samples(n int) ([]string, []Session) {
	ids := make([]string, n)
	vs := make([]Session, n)
	for i := range n {
		ids[i], vs[i] = ID(i), Sample(i)
	}
	return ids, vs
}

// BenchmarkSet is a Set: the encode, one upsert, and the in-memory copy.
func BenchmarkSet(b *testing.B) {
	counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	s := newStore(b, counted, nil)
	ids, vs := samples(loopPool())
	sets(b, s, ids, vs, cmds)
}

// sets Sets the sessions vs under ids in turn until b.Loop says stop,
// and reports the commands cmds counted per Set.
func sets(b *testing.B, s *sessionstore.Store[Session], ids []string, vs []Session, cmds *mongotest.Commands) {
	ctx := bg(b)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, ids[i], vs[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
	b.ReportMetric(float64(cmds.Count())/float64(b.N), "commands/op")
}

// BenchmarkDirectUpsert is BenchmarkSet without the store: the msgpack
// encode and a driver upsert of {expires, session} by _id.
func BenchmarkDirectUpsert(b *testing.B) {
	coll, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	ids, vs := samples(loopPool())
	ctx := bg(b)
	upsert := options.UpdateOne().SetUpsert(true)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p, err := codec.MsgPack[Session]{}.Encode(vs[i])
		if err != nil {
			b.Fatal(err)
		}
		update := bson.D{{Key: "$set", Value: bson.D{
			{Key: "expires", Value: bson.NewDateTimeFromTime(time.Now().Add(sessionstore.DefaultTTL))},
			{Key: "session", Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: p}},
		}}}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[i]}}, update, upsert); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
	b.ReportMetric(float64(cmds.Count())/float64(b.N), "commands/op")
}

// BenchmarkTouch touches sessions in memory, in turn, and flushes the
// buffered touches inside the timed region at the end. It reports the
// write commands (writes/touch) and all commands (commands/touch) the
// server received per touch, the background flushes' included.
func BenchmarkTouch(b *testing.B) {
	counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	s := newStore(b, counted, nil)
	ids := warm(b, s, loopPool())
	ctx := bg(b)
	cmds.Reset()
	touches(b, s, ids)
	b.StartTimer() // b.Loop has stopped it: the flush is part of the cost
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(writes(cmds))/float64(b.N), "writes/touch")
	b.ReportMetric(float64(cmds.Count())/float64(b.N), "commands/touch")
}

// BenchmarkDirectTouch is a touch the way the npm store (connect-mongo)
// does it: one updateOne per touch, {_id, expires: {$lt: t}} to $set
// expires to t.
func BenchmarkDirectTouch(b *testing.B) {
	coll, cmds := mongotest.Monitored(b, mongotest.Collection(b))
	ids := insertSessions(b, coll, 0, loopPool())
	ctx := bg(b)
	cmds.Reset()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		t := bson.NewDateTimeFromTime(time.Now().Add(sessionstore.DefaultTTL))
		filter := bson.D{{Key: "_id", Value: ids[i]}, {Key: "expires", Value: bson.D{{Key: "$lt", Value: t}}}}
		update := bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: t}}}}
		if _, err := coll.UpdateOne(ctx, filter, update); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
	b.ReportMetric(float64(writes(cmds))/float64(b.N), "writes/touch")
	b.ReportMetric(float64(cmds.Count())/float64(b.N), "commands/touch")
}

// BenchmarkTouchSkip touches sessions whose rounded expiry is already
// held: in memory (memory), or with the memory tier off, in the touch
// buffer (buffered). Such a touch changes nothing and must cost no
// allocation and no lock of the buffer. The granularity is an hour, so
// that the rounded expiry stays the same throughout; every session is
// touched once before the timer starts.
func BenchmarkTouchSkip(b *testing.B) {
	for _, c := range []struct {
		name      string
		cacheSize int
	}{{"memory", 0}, {"buffered", -1}} {
		b.Run(c.name, func(b *testing.B) {
			counted, cmds := mongotest.Monitored(b, mongotest.Collection(b))
			s := newStore(b, counted, &sessionstore.Options[Session]{CacheSize: c.cacheSize, TouchGranularity: time.Hour})
			ids := warm(b, s, loopPool())
			ctx := bg(b)
			for _, id := range ids {
				if err := s.Touch(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			cmds.Reset()
			touches(b, s, ids)
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(writes(cmds))/float64(b.N), "writes/touch")
		})
	}
}

// touches Touches the sessions ids in turn until b.Loop says stop.
func touches(b *testing.B, s *sessionstore.Store[Session], ids []string) {
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Touch(ctx, ids[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
}
