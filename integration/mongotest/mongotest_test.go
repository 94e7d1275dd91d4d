package mongotest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore/integration/mongotest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func TestPingInsertFind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if mongotest.URI() == "" {
		t.Fatal("URI is empty inside Main")
	}
	if err := mongotest.Client(t).Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}

	coll := mongotest.Collection(t)
	if coll.Database().Name() != mongotest.Database {
		t.Errorf("database = %q, want %q", coll.Database().Name(), mongotest.Database)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("fresh collection holds %d documents (err %v), want 0", n, err)
	}

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "s1"}, {Key: "data", Value: []byte("hello")}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got struct {
		ID   string `bson:"_id"`
		Data []byte `bson:"data"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "s1"}}).Decode(&got); err != nil {
		t.Fatalf("find: %v", err)
	}
	if got.ID != "s1" || string(got.Data) != "hello" {
		t.Errorf("found %+v, want s1/hello", got)
	}
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "missing"}}).Err()
	if !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("find missing: err = %v, want ErrNoDocuments", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "s1"}}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("second insert of s1: err = %v, want a duplicate key error", err)
	}
}

func TestCollectionsAreDistinct(t *testing.T) {
	a, b := mongotest.Collection(t), mongotest.Collection(t)
	if a.Name() == b.Name() {
		t.Fatalf("two calls returned the same collection %q", a.Name())
	}
}

func TestCollectionDroppedAfterTest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var name string
	t.Run("inner", func(t *testing.T) {
		coll := mongotest.Collection(t)
		name = coll.Name()
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatalf("insert: %v", err)
		}
	})
	names, err := mongotest.Client(t).Database(mongotest.Database).
		ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		t.Fatalf("list collections: %v", err)
	}
	if len(names) != 0 {
		t.Errorf("collection %q still exists after its test ended", name)
	}
}
