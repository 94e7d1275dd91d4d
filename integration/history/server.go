package history

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Read returns every session document of coll, written by stores with
// the BSON codec: the server's state, for [Check].
func Read(ctx context.Context, coll *mongo.Collection) (Snapshot, error) {
	snap := Snapshot{Start: time.Now(), Docs: map[string]Doc{}}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return Snapshot{}, fmt.Errorf("history: read the server: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d struct {
			ID      string    `bson:"_id"`
			Expires time.Time `bson:"expires"`
			Session Value     `bson:"session"`
			Rev     int64     `bson:"rev"`
		}
		if err := cur.Decode(&d); err != nil {
			return Snapshot{}, fmt.Errorf("history: a document the workload did not write: %w (%s)", err, cur.Current)
		}
		snap.Docs[d.ID] = Doc{Value: d.Session, Rev: d.Rev, Expires: d.Expires}
	}
	if err := cur.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("history: read the server: %w", err)
	}
	snap.End = time.Now()
	return snap, nil
}

// Sampler reads the server every so often while a workload runs, with a
// client of its own: the history of what the server held, for the checks
// of versions and expiries. Reads that fail, as while the server is
// down, are counted and skipped.
type Sampler struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu      sync.Mutex // protects the fields below
	samples []Snapshot
	failed  int
}

// StartSampler reads coll every interval, each read bounded by timeout,
// until [Sampler.Stop].
func StartSampler(coll *mongo.Collection, interval, timeout time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			snap, err := Read(ctx, coll)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.failed++
			} else {
				s.samples = append(s.samples, snap)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// Stop ends the sampling and returns the reads that succeeded and the
// number that failed. Later calls return the same.
func (s *Sampler) Stop() (samples []Snapshot, failed int) {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.failed
}
