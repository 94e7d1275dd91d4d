package mongotest_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// A killed FerretDB refuses connections; restarted, it answers on the
// same address with the documents it had, and a client connected
// before the kill reaches it again.
func TestKillRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := mongotest.StartFerretDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI()).SetServerSelectionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	coll := c.Database("restart").Collection("docs")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "kept"}}); err != nil {
		t.Fatal(err)
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
	began := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = c.Ping(pctx, nil)
	pcancel()
	if err == nil {
		t.Fatal("ping answered after Kill")
	}
	t.Logf("ping after Kill failed in %v: %v", time.Since(began).Round(time.Millisecond), err)

	uri := s.URI()
	began = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %v", time.Since(began).Round(time.Millisecond))
	if s.URI() != uri {
		t.Fatalf("URI %s after Restart, want %s", s.URI(), uri)
	}
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: "kept"}})
	if err != nil || n != 1 {
		t.Fatalf("after Restart: %d documents, %v; want the one inserted before the kill", n, err)
	}
}

// Kill and Restart refuse a server that is not theirs to kill.
func TestKillNeedsOwnServer(t *testing.T) {
	s, err := mongotest.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Kill(); err == nil {
		t.Fatal("Kill of a server Start started succeeded")
	}
	if err := s.Restart(context.Background()); err == nil {
		t.Fatal("Restart of a server Start started succeeded")
	}
}
