package oplog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/integration/oplog"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// The test server's oplog is capped at DefaultEntries and trimmed to it
// every TrimInterval, oldest entries first: an embedded FerretDB never
// trims a capped collection by itself.
func TestTestServerTrimsItsOplog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mongotest.StartFerretDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	local := client.Database("local")
	spec, err := local.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(spec) != 1 {
		t.Fatalf("the test server has %d collections local.oplog.rs, want 1", len(spec))
	}
	if capped, _ := spec[0].Options.Lookup("capped").BooleanOK(); !capped {
		t.Fatalf("local.oplog.rs options %v, want capped", spec[0].Options)
	}
	if n, _ := spec[0].Options.Lookup("max").AsInt64OK(); n != oplog.DefaultEntries {
		t.Fatalf("local.oplog.rs options %v, want max %d", spec[0].Options, oplog.DefaultEntries)
	}

	const writes = 3 * oplog.DefaultEntries
	docs := make([]any, writes)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprint(i)}}
	}
	if _, err := client.Database("test").Collection("c").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	entries := local.Collection("oplog.rs")
	var n int64
	for deadline := time.Now().Add(10 * oplog.TrimInterval); time.Now().Before(deadline); time.Sleep(oplog.TrimInterval / 5) {
		if n, err = entries.CountDocuments(ctx, bson.D{}); err != nil {
			t.Fatal(err)
		}
		if n == oplog.DefaultEntries {
			break
		}
	}
	if n != oplog.DefaultEntries {
		t.Fatalf("the oplog holds %d entries %v after %d writes, want %d", n, 10*oplog.TrimInterval, writes, oplog.DefaultEntries)
	}
	for id, kept := range map[string]bool{"0": false, fmt.Sprint(writes - oplog.DefaultEntries - 1): false, fmt.Sprint(writes - oplog.DefaultEntries): true, fmt.Sprint(writes - 1): true} {
		found, err := entries.CountDocuments(ctx, bson.D{{Key: "ns", Value: "test.c"}, {Key: "o._id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		if (found == 1) != kept {
			t.Errorf("the entry of write %s: %d in the oplog; want it kept: %v (the oldest go first)", id, found, kept)
		}
	}
}
