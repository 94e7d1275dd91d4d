package mongofake_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/sessionstore/sessionstore/internal/mongofake"
)

func connect(t *testing.T, srv *mongofake.Server) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func setup(t *testing.T) (*mongofake.Server, *mongo.Collection) {
	t.Helper()
	srv := mongofake.Start(t)
	return srv, connect(t, srv).Database("db").Collection("c")
}

var ctx = context.Background()

// ids returns a function that reads a cursor to the end and returns the
// _ids it yielded; it takes Find's results as they are.
func ids(t *testing.T) func(*mongo.Cursor, error) []string {
	return func(cur *mongo.Cursor, err error) []string { return readIDs(t, cur, err) }
}

func readIDs(t *testing.T, cur *mongo.Cursor, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(ctx) {
		out = append(out, fmt.Sprint(cur.Current.Lookup("_id")))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	_ = cur.Close(ctx)
	return out
}

func commandErr(t *testing.T, err error, code int32) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("error = %v, want a command error with code %d", err, code)
	}
}

// The driver opens each connection with a legacy OP_QUERY isMaster, then
// speaks OP_MSG.
func TestHandshake(t *testing.T) {
	srv := mongofake.Start(t)
	if !strings.HasPrefix(srv.URI(), "mongodb://127.0.0.1:") || !strings.HasSuffix(srv.URI(), "/?directConnection=true") {
		t.Fatalf("URI = %q", srv.URI())
	}
	c := connect(t, srv)
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if cmds := srv.Commands(); cmds[0] != "isMaster" || !slices.Contains(cmds, "ping") {
		t.Fatalf("commands = %v", cmds)
	}
	admin := c.Database("admin")
	info, err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil || info.Lookup("version").StringValue() != "7.0.0" {
		t.Fatalf("buildInfo = %v, %v", info, err)
	}
	hello, err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil || !hello.Lookup("isWritablePrimary").Boolean() || hello.Lookup("maxWireVersion").Int32() != 21 {
		t.Fatalf("hello = %v, %v", hello, err)
	}
	if _, err := hello.LookupErr("setName"); err == nil {
		t.Fatal("hello names a replica set")
	}
	err = admin.RunCommand(ctx, bson.D{{Key: "frobnicate", Value: 1}}).Err()
	commandErr(t, err, 59)
	if !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("error %v does not name the command", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if cmds := srv.Commands(); cmds[len(cmds)-1] != "endSessions" {
		t.Fatalf("last command %q, want endSessions", cmds[len(cmds)-1])
	}
}

func TestInsertFind(t *testing.T) {
	_, coll := setup(t)
	now := time.Now()
	date := func(d time.Duration) bson.DateTime { return bson.NewDateTimeFromTime(now.Add(d)) }
	docs := []any{
		bson.D{{Key: "_id", Value: "app:2"}, {Key: "expires", Value: date(time.Hour)}, {Key: "ttl", Value: int64(5)}, {Key: "n", Value: 2}},
		bson.D{{Key: "_id", Value: "app:1"}, {Key: "expires", Value: date(-time.Hour)}, {Key: "ttl", Value: int64(6)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: "other"}, {Key: "expires", Value: date(2 * time.Hour)}, {Key: "n", Value: 3.5}},
		bson.D{{Key: "_id", Value: "app.x"}, {Key: "expires", Value: "not a date"}, {Key: "tags", Value: bson.A{"a", "b"}}},
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	res, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 9}})
	if _, ok := res.InsertedID.(bson.ObjectID); err != nil || !ok {
		t.Fatalf("InsertOne without _id = %v, %v", res, err)
	}
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "other"}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate insert error = %v", err)
	}
	_, err = coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: "new"}}, bson.D{{Key: "_id", Value: "other"}}, bson.D{{Key: "_id", Value: "new2"}}},
		options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 || bwe.WriteErrors[0].Code != 11000 {
		t.Fatalf("unordered InsertMany error = %v", err)
	}
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"new", "new2"}}}}}); err != nil {
		t.Fatal(err)
	}
	idFilter := func(v any) bson.D { return bson.D{{Key: "_id", Value: v}} }
	for _, c := range []struct {
		name   string
		filter any
		want   string
	}{
		{"_id", idFilter("app:1"), `["app:1"]`},
		{"$in", idFilter(bson.D{{Key: "$in", Value: bson.A{"other", "app:2", "nope"}}}), `["app:2" "other"]`},
		{"regex", idFilter(bson.Regex{Pattern: "^app:"}), `["app:1" "app:2"]`},
		{"$regex", idFilter(bson.D{{Key: "$regex", Value: "^APP"}, {Key: "$options", Value: "i"}}), `["app.x" "app:1" "app:2"]`},
		{"$gt date", bson.D{{Key: "expires", Value: bson.D{{Key: "$gt", Value: date(0)}}}}, `["app:2" "other"]`},
		{"$gt and $lt", bson.D{{Key: "expires", Value: bson.D{{Key: "$gt", Value: date(0)}, {Key: "$lt", Value: date(90 * time.Minute)}}}}, `["app:2"]`},
		{"$lt date", bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: date(0)}}}}, `["app:1"]`},
		{"anded", bson.D{{Key: "_id", Value: bson.Regex{Pattern: "^app"}}, {Key: "expires", Value: bson.D{{Key: "$gt", Value: date(0)}}}}, `["app:2"]`},
		{"number across types", bson.D{{Key: "n", Value: int64(2)}}, `["app:2"]`},
		{"$gte $lte numbers", bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 2}, {Key: "$lte", Value: 3.5}}}}, `["app:2" "other"]`},
		{"$exists false", bson.D{{Key: "ttl", Value: bson.D{{Key: "$exists", Value: false}}}, {Key: "n", Value: bson.D{{Key: "$ne", Value: 9}}}}, `["app.x" "other"]`},
		{"array element", bson.D{{Key: "tags", Value: "b"}}, `["app.x"]`},
		{"$nin", bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: bson.A{"app:1", "app:2", "other"}}}}, {Key: "n", Value: bson.D{{Key: "$ne", Value: 9}}}}, `["app.x"]`},
		{"unsupported operator", idFilter(bson.D{{Key: "$type", Value: "string"}}), "error"},
		{"$or", bson.D{{Key: "$or", Value: bson.A{idFilter("app:1"), idFilter("other")}}}, `["app:1" "other"]`},
		{"$nor", bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "n", Value: bson.D{{Key: "$exists", Value: true}}}}}}}, `["app.x"]`},
		{"$and", bson.D{{Key: "$and", Value: bson.A{idFilter(bson.D{{Key: "$in", Value: bson.A{bson.Regex{Pattern: "1$"}, "other"}}}), bson.D{{Key: "n", Value: bson.D{{Key: "$lt", Value: 3}}}}}}}, `["app:1"]`},
		{"$not", bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.Regex{Pattern: "^app"}}}}, {Key: "n", Value: bson.D{{Key: "$eq", Value: 3.5}}}}, `["other"]`},
		{"null matches missing", bson.D{{Key: "tags", Value: nil}, {Key: "ttl", Value: nil}, {Key: "n", Value: bson.D{{Key: "$lt", Value: 5}}}}, `["other"]`},
		{"unknown operator", bson.D{{Key: "n", Value: bson.D{{Key: "$near", Value: 1}}}}, "error"},
		{"unknown top level", bson.D{{Key: "$where", Value: "true"}}, "error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cur, err := coll.Find(ctx, c.filter)
			if c.want == "error" {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			got := readIDs(t, cur, err)
			if fmt.Sprint(got) != c.want {
				t.Fatalf("ids = %v, want %s", got, c.want)
			}
		})
	}

	t.Run("projection", func(t *testing.T) {
		raw, err := coll.FindOne(ctx, idFilter("app:2"), options.FindOne().SetProjection(bson.D{{Key: "ttl", Value: 1}})).Raw()
		if err != nil || fmt.Sprint(raw) != `{"_id": "app:2","ttl": {"$numberLong":"5"}}` {
			t.Fatalf("inclusion = %v, %v", raw, err)
		}
		raw, err = coll.FindOne(ctx, idFilter("app:2"), options.FindOne().SetProjection(bson.D{{Key: "ttl", Value: 0}, {Key: "_id", Value: false}})).Raw()
		if err != nil || fmt.Sprint(raw) != `{"expires": `+fmt.Sprint(raw.Lookup("expires"))+`,"n": {"$numberInt":"2"}}` {
			t.Fatalf("exclusion = %v, %v", raw, err)
		}
		err = coll.FindOne(ctx, idFilter("app:2"), options.FindOne().SetProjection(bson.D{{Key: "ttl", Value: 0}, {Key: "n", Value: 1}})).Err()
		commandErr(t, err, 31254)
	})
	t.Run("sort skip limit", func(t *testing.T) {
		got := ids(t)(coll.Find(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$exists", Value: true}}}},
			options.Find().SetSort(bson.D{{Key: "n", Value: -1}}).SetSkip(1).SetLimit(2)))
		if fmt.Sprint(got) != `["other" "app:2"]` {
			t.Fatalf("ids = %v", got)
		}
	})
	if err := coll.FindOne(ctx, idFilter("missing")).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("FindOne of a missing id = %v", err)
	}
}

func TestUpdate(t *testing.T) {
	_, coll := setup(t)
	id := bson.D{{Key: "_id", Value: "a"}}
	inc := bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}, {Key: "$inc", Value: bson.D{{Key: "rev", Value: int64(1)}}}}
	res, err := coll.UpdateOne(ctx, id, inc, options.UpdateOne().SetUpsert(true))
	if err != nil || res.MatchedCount != 0 || res.UpsertedCount != 1 || res.UpsertedID != "a" {
		t.Fatalf("upsert = %+v, %v", res, err)
	}
	res, err = coll.UpdateOne(ctx, id, inc, options.UpdateOne().SetUpsert(true))
	if err != nil || res.MatchedCount != 1 || res.ModifiedCount != 1 || res.UpsertedCount != 0 {
		t.Fatalf("second upsert = %+v, %v", res, err)
	}
	raw, err := coll.FindOne(ctx, id).Raw()
	if err != nil || fmt.Sprint(raw) != `{"_id": "a","v": "x","rev": {"$numberLong":"2"}}` {
		t.Fatalf("after two upserts: %v, %v", raw, err)
	}
	// Setting what is there already modifies nothing.
	res, err = coll.UpdateOne(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}})
	if err != nil || res.MatchedCount != 1 || res.ModifiedCount != 0 {
		t.Fatalf("no-op update = %+v, %v", res, err)
	}
	// Conditional update, as Replace sends it.
	cond := bson.D{{Key: "_id", Value: "a"}, {Key: "rev", Value: 2}}
	if res, err := coll.UpdateOne(ctx, cond, bson.D{{Key: "$set", Value: bson.D{{Key: "rev", Value: int64(3)}}}}); err != nil || res.MatchedCount != 1 {
		t.Fatalf("conditional update = %+v, %v", res, err)
	}
	if res, err := coll.UpdateOne(ctx, cond, bson.D{{Key: "$set", Value: bson.D{{Key: "rev", Value: int64(4)}}}}); err != nil || res.MatchedCount != 0 {
		t.Fatalf("stale conditional update = %+v, %v", res, err)
	}
	// Upserting with an operator filter leaves _id to the server.
	res, err = coll.UpdateOne(ctx, bson.D{{Key: "k", Value: bson.D{{Key: "$eq", Value: 1}}}, {Key: "j", Value: bson.D{{Key: "$gt", Value: 1}}}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "created", Value: true}}}}, options.UpdateOne().SetUpsert(true))
	if _, ok := res.UpsertedID.(bson.ObjectID); err != nil || !ok {
		t.Fatalf("upsert without _id = %+v, %v", res, err)
	}
	if n, _ := coll.CountDocuments(ctx, bson.D{{Key: "k", Value: 1}, {Key: "created", Value: true}, {Key: "j", Value: bson.D{{Key: "$exists", Value: false}}}}); n != 1 {
		t.Fatalf("upserted document not found (%d)", n)
	}

	// updateMany counts only the documents it changed.
	for i := range 4 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprint("m", i)}, {Key: "x", Value: int32(i % 2)}}); err != nil {
			t.Fatal(err)
		}
	}
	many, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.Regex{Pattern: "^m"}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: int32(1)}}}})
	if err != nil || many.MatchedCount != 4 || many.ModifiedCount != 2 {
		t.Fatalf("UpdateMany = %+v, %v", many, err)
	}
	if _, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: "m0"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "x", Value: int32(2147483647)}}}, {Key: "$unset", Value: bson.D{{Key: "y", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "m0"}}).Raw(); raw.Lookup("x").Type != bson.TypeInt64 || raw.Lookup("x").Int64() != 2147483648 {
		t.Fatalf("int32 overflow of $inc: %v", raw)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "m1"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "x", Value: 0.5}}}, {Key: "$max", Value: bson.D{{Key: "hi", Value: 3}}}, {Key: "$min", Value: bson.D{{Key: "lo", Value: 3}}}}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "m1"}}).Raw(); raw.Lookup("x").Double() != 1.5 || raw.Lookup("hi").Int32() != 3 || raw.Lookup("lo").Int32() != 3 {
		t.Fatalf("after $inc 0.5, $max, $min: %v", raw)
	}

	// Replacement keeps _id.
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "m2"}}, bson.D{{Key: "only", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "m2"}}).Raw(); fmt.Sprint(raw) != `{"_id": "m2","only": {"$numberInt":"1"}}` {
		t.Fatalf("after ReplaceOne: %v", raw)
	}

	// Errors: $inc of a string, changing _id, an unknown modifier, a
	// path in two operators. A failing update changes nothing.
	for _, c := range []struct {
		update any
		code   int32
	}{
		{bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}, 14},
		{bson.D{{Key: "$inc", Value: bson.D{{Key: "rev", Value: "1"}}}}, 14},
		{bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: "b"}}}}, 66},
		{bson.D{{Key: "$rename", Value: bson.D{{Key: "v", Value: "w"}}}}, 9},
		{bson.D{{Key: "$set", Value: bson.D{{Key: "rev", Value: 1}}}, {Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}}}, 40},
	} {
		_, err := coll.UpdateOne(ctx, id, c.update)
		var we mongo.WriteException
		if !errors.As(err, &we) || len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != int(c.code) {
			t.Fatalf("update %v: error %v, want write error %d", c.update, err, c.code)
		}
	}
	if raw, _ := coll.FindOne(ctx, id).Raw(); raw.Lookup("rev").Int64() != 3 {
		t.Fatalf("a failed update changed the document: %v", raw)
	}
	if _, err := coll.ReplaceOne(ctx, id, bson.D{{Key: "_id", Value: "z"}}); err == nil {
		t.Fatal("a replacement changed _id")
	}

	// In a batch, each upsert is reported under the index of its
	// statement, and an unordered batch goes on past a failure.
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: true}}}}
	bulk, err := coll.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewUpdateOneModel().SetFilter(id).SetUpdate(set),
		mongo.NewUpdateOneModel().SetFilter(id).SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: "b1"}}).SetUpdate(set).SetUpsert(true),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: "b2"}}).SetUpdate(set).SetUpsert(true),
	}, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 {
		t.Fatalf("unordered bulk update error = %v", err)
	}
	if bulk == nil || bulk.MatchedCount != 1 || bulk.UpsertedCount != 2 || bulk.UpsertedIDs[2] != "b1" || bulk.UpsertedIDs[3] != "b2" {
		t.Fatalf("unordered bulk update = %+v", bulk)
	}
}

func TestFindOneAndUpdate(t *testing.T) {
	_, coll := setup(t)
	id := bson.D{{Key: "_id", Value: "a"}}
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "rev", Value: int64(1)}}}}
	after := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	for want := int64(1); want <= 2; want++ {
		raw, err := coll.FindOneAndUpdate(ctx, id, inc, after).Raw()
		if err != nil || raw.Lookup("rev").Int64() != want {
			t.Fatalf("FindOneAndUpdate = %v, %v; want rev %d", raw, err, want)
		}
	}
	raw, err := coll.FindOneAndUpdate(ctx, id, inc, options.FindOneAndUpdate().SetProjection(bson.D{{Key: "_id", Value: 0}})).Raw()
	if err != nil || fmt.Sprint(raw) != `{"rev": {"$numberLong":"2"}}` {
		t.Fatalf("before, projected = %v, %v", raw, err)
	}
	if err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "none"}}, inc).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("no match = %v", err)
	}
	raw, err = coll.FindOneAndReplace(ctx, id, bson.D{{Key: "r", Value: 1}}, options.FindOneAndReplace().SetReturnDocument(options.After).SetSort(bson.D{{Key: "_id", Value: 1}})).Raw()
	if err != nil || fmt.Sprint(raw) != `{"_id": "a","r": {"$numberInt":"1"}}` {
		t.Fatalf("FindOneAndReplace = %v, %v", raw, err)
	}
	raw, err = coll.FindOneAndDelete(ctx, id).Raw()
	if err != nil || raw.Lookup("_id").StringValue() != "a" {
		t.Fatalf("FindOneAndDelete = %v, %v", raw, err)
	}
	if n, _ := coll.CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("%d documents left", n)
	}
}

func TestDeleteCount(t *testing.T) {
	srv, coll := setup(t)
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("count of a missing collection = %d, %v", n, err)
	}
	for i := range 10 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i)}, {Key: "even", Value: i%2 == 0}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "even", Value: true}})
	if err != nil || n != 5 {
		t.Fatalf("CountDocuments = %d, %v", n, err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}, options.Count().SetSkip(2).SetLimit(5)); err != nil || n != 5 {
		t.Fatalf("CountDocuments skip 2 limit 5 = %d, %v", n, err)
	}
	if !slices.Contains(srv.Commands(), "aggregate") {
		t.Fatal("CountDocuments did not aggregate")
	}
	if n, err := coll.EstimatedDocumentCount(ctx); err != nil || n != 10 {
		t.Fatalf("EstimatedDocumentCount = %d, %v", n, err)
	}
	one, err := coll.DeleteOne(ctx, bson.D{{Key: "even", Value: true}})
	if err != nil || one.DeletedCount != 1 {
		t.Fatalf("DeleteOne = %+v, %v", one, err)
	}
	many, err := coll.DeleteMany(ctx, bson.D{{Key: "even", Value: true}})
	if err != nil || many.DeletedCount != 4 {
		t.Fatalf("DeleteMany = %+v, %v", many, err)
	}
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "$bad", Value: 1}}); err == nil {
		t.Fatal("a bad filter deleted")
	}
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "even", Value: false}}}},
		{{Key: "$skip", Value: 1}},
		{{Key: "$limit", Value: 2}},
		{{Key: "$count", Value: "n"}},
	})
	var out []bson.M
	if err != nil || cur.All(ctx, &out) != nil || len(out) != 1 || out[0]["n"] != int32(2) {
		t.Fatalf("aggregate = %v, %v", out, err)
	}
	_, err = coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}})
	commandErr(t, err, 40324)
	// Unacknowledged writes get no reply.
	w0 := coll.Database().Collection(coll.Name(), options.Collection().SetWriteConcern(writeconcern.Unacknowledged()))
	if res, err := w0.DeleteMany(ctx, bson.D{}); err != nil || res.Acknowledged {
		t.Fatalf("unacknowledged DeleteMany = %+v, %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := coll.CountDocuments(ctx, bson.D{}); n != 0; n, _ = coll.CountDocuments(ctx, bson.D{}) {
		if time.Now().After(deadline) {
			t.Fatalf("%d documents after an unacknowledged DeleteMany", n)
		}
	}
}

// Results larger than a batch come through getMore; a cursor closed early
// is killed.
func TestCursorBatches(t *testing.T) {
	srv, coll := setup(t)
	docs := make([]any, 250)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("%03d", i)}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	got := ids(t)(coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(40)))
	if len(got) != 250 || got[0] != `"000"` || got[249] != `"249"` {
		t.Fatalf("got %d documents", len(got))
	}
	if n := count(srv.Commands(), "getMore"); n != 6 {
		t.Fatalf("%d getMore for 250 documents in batches of 40, want 6", n)
	}
	got = ids(t)(coll.Find(ctx, bson.D{}))
	if len(got) != 250 {
		t.Fatalf("got %d documents in default batches", len(got))
	}
	got = ids(t)(coll.Find(ctx, bson.D{}, options.Find().SetLimit(-3)))
	if len(got) != 3 {
		t.Fatalf("single batch of 3: got %d", len(got))
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(10))
	if err != nil || !cur.Next(ctx) {
		t.Fatal(err)
	}
	if err := cur.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if cmds := srv.Commands(); cmds[len(cmds)-1] != "killCursors" {
		t.Fatalf("last command %q, want killCursors", cmds[len(cmds)-1])
	}
	err = coll.Database().RunCommand(ctx, bson.D{{Key: "getMore", Value: int64(12345)}, {Key: "collection", Value: coll.Name()}}).Err()
	commandErr(t, err, 43)
}

func TestIndexes(t *testing.T) {
	_, coll := setup(t)
	db := coll.Database()
	err := db.RunCommand(ctx, bson.D{{Key: "listIndexes", Value: coll.Name()}}).Err()
	commandErr(t, err, 26)
	ttl := mongo.IndexModel{Keys: bson.D{{Key: "expires", Value: 1}}, Options: options.Index().SetName("ttl").SetExpireAfterSeconds(0)}
	for range 2 { // the second time is a no-op
		if name, err := coll.Indexes().CreateOne(ctx, ttl); err != nil || name != "ttl" {
			t.Fatalf("CreateOne = %q, %v", name, err)
		}
	}
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "expires", Value: 1}}, Options: options.Index().SetName("ttl").SetExpireAfterSeconds(60)})
	commandErr(t, err, 85)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "other", Value: 1}}, Options: options.Index().SetName("ttl")})
	commandErr(t, err, 86)
	err = db.RunCommand(ctx, bson.D{{Key: "collMod", Value: coll.Name()}, {Key: "index", Value: bson.D{
		{Key: "keyPattern", Value: bson.D{{Key: "expires", Value: 1}}}, {Key: "expireAfterSeconds", Value: 30},
	}}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil || len(specs) != 2 || specs[0].Name != "_id_" || specs[1].Name != "ttl" || *specs[1].ExpireAfterSeconds != 30 {
		t.Fatalf("ListSpecifications = %+v, %v", specs, err)
	}
	if err := coll.Indexes().DropOne(ctx, "ttl"); err != nil {
		t.Fatal(err)
	}
	if err := coll.Indexes().DropOne(ctx, "ttl"); err == nil {
		t.Fatal("dropped a missing index")
	}
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: coll.Name()}})
	if err != nil || fmt.Sprint(names) != "[c]" {
		t.Fatalf("ListCollectionNames = %v, %v", names, err)
	}
	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := coll.Drop(ctx); err != nil {
		t.Fatalf("second Drop: %v", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := coll.CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("%d documents after dropping the database", n)
	}
}

func TestFail(t *testing.T) {
	srv, coll := setup(t)
	srv.Fail("insert", 8000)
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	commandErr(t, err, 8000)
	srv.Fail("insert", 0)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := count(srv.Commands(), "insert"); n != 2 {
		t.Fatalf("%d inserts recorded, want 2", n)
	}
}

func TestDelay(t *testing.T) {
	srv, coll := setup(t)
	srv.SetDelay(time.Second)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := coll.FindOne(tctx, bson.D{}).Err()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("FindOne = %v after %v, want a deadline after 50ms", err, time.Since(start))
	}
	// maxTimeMS below the delay fails on the server.
	err = coll.Database().RunCommand(ctx, bson.D{{Key: "find", Value: coll.Name()}, {Key: "maxTimeMS", Value: 20}}).Err()
	commandErr(t, err, 50)
	srv.SetDelay(0)
	if err := coll.FindOne(ctx, bson.D{}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("FindOne without delay = %v", err)
	}
}

// Close ends every goroutine of the server, also with a client still
// connected and a command waiting out a delay.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	var client *mongo.Client
	done := make(chan error, 1)
	t.Run("server", func(t *testing.T) {
		srv := mongofake.Start(t)
		c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetServerSelectionTimeout(100 * time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		client = c
		if err := c.Ping(ctx, nil); err != nil {
			t.Fatal(err)
		}
		srv.SetDelay(time.Hour)
		go func() { done <- c.Ping(ctx, nil) }()
		for count(srv.Commands(), "ping") < 2 {
			time.Sleep(time.Millisecond)
		}
		srv.Close() // and again at cleanup
	})
	if err := <-done; err == nil {
		t.Fatal("Ping through a closed server succeeded")
	}
	// A goroutine that has signalled Close may still be returning: allow
	// it a moment.
	buf := make([]byte, 1<<20)
	for i := 0; ; i++ {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "mongofake.(*Server)") {
			break
		}
		if i == 100 {
			t.Fatalf("server goroutines left:\n%s", stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_ = client.Disconnect(dctx) // its endSessions finds no server
}

func count(cmds []string, name string) int {
	n := 0
	for _, c := range cmds {
		if c == name {
			n++
		}
	}
	return n
}

// Malformed messages close the connection.
func TestMalformed(t *testing.T) {
	srv := mongofake.Start(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/?directConnection=true")
	msg := func(op uint32, body []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(16+len(body)))
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, op)
		return append(b, body...)
	}
	doc, _ := bson.Marshal(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	for name, m := range map[string][]byte{
		"short length":  {4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"opcode":        msg(2012, doc),
		"section kind":  msg(2013, append([]byte{0, 0, 0, 0, 7}, doc...)),
		"no body":       msg(2013, []byte{0, 0, 0, 0}),
		"bad document":  msg(2013, []byte{0, 0, 0, 0, 0, 9, 0, 0, 0, 1}),
		"query non-cmd": msg(2004, append(append([]byte{0, 0, 0, 0}, "db.coll\x00"+"\x00\x00\x00\x00\xff\xff\xff\xff"...), doc...)),
		"bad sequence":  msg(2013, append(append([]byte{0, 0, 0, 0, 0}, doc...), 1, 200, 0, 0, 0)),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read %d, %v; want EOF", n, err)
			}
		})
	}
	// A well-formed OP_MSG with a checksum and a document sequence works.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ins, _ := bson.Marshal(bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "db"}})
	seq := append([]byte("documents\x00"), doc...)
	body := append([]byte{1, 0, 0, 0, 0}, ins...)
	body = append(body, 1)
	body = binary.LittleEndian.AppendUint32(body, uint32(4+len(seq)))
	body = append(body, seq...)
	body = append(body, 0, 0, 0, 0) // checksum, not checked
	if _, err := c.Write(msg(2013, body)); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 16)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, binary.LittleEndian.Uint32(reply)-16)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	if got := bson.Raw(rest[5:]); got.Lookup("n").Int32() != 1 || got.Lookup("ok").Double() != 1 {
		t.Fatalf("reply %v", got)
	}
}

// Requests MongoDB refuses are refused with its codes: a multi update
// that replaces, findAndModify asked to both remove and update, count
// with a negative skip, dropping the _id index.
func TestRefusals(t *testing.T) {
	_, coll := setup(t)
	db := coll.Database()
	for i := range 3 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := db.RunCommand(ctx, bson.D{{Key: "update", Value: coll.Name()}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "multi", Value: true}},
	}}}).Raw()
	var we mongo.WriteException
	if !errors.As(err, &we) || len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != 9 || raw.Lookup("n").Int32() != 0 {
		t.Fatalf("multi replacement = %v, %v", raw, err)
	}
	for _, extra := range []bson.E{
		{Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}},
		{Key: "new", Value: true},
		{Key: "upsert", Value: true},
	} {
		err := db.RunCommand(ctx, bson.D{{Key: "findAndModify", Value: coll.Name()}, {Key: "remove", Value: true}, extra}).Err()
		commandErr(t, err, 9)
	}
	raw, err = db.RunCommand(ctx, bson.D{{Key: "findAndModify", Value: coll.Name()}, {Key: "remove", Value: true}, {Key: "new", Value: false}}).Raw()
	if err != nil || raw.Lookup("lastErrorObject", "n").Int32() != 1 {
		t.Fatalf("findAndModify remove with new false = %v, %v", raw, err)
	}
	err = db.RunCommand(ctx, bson.D{{Key: "count", Value: coll.Name()}, {Key: "skip", Value: -1}}).Err()
	commandErr(t, err, 51024)
	raw, err = db.RunCommand(ctx, bson.D{{Key: "count", Value: coll.Name()}, {Key: "limit", Value: -1}}).Raw()
	if err != nil || raw.Lookup("n").Int32() != 1 {
		t.Fatalf("count with limit -1 = %v, %v", raw, err)
	}
	for _, idx := range []any{"_id_", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: int64(1)}}} {
		err := db.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: coll.Name()}, {Key: "index", Value: idx}}).Err()
		commandErr(t, err, 72)
	}
	err = db.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: coll.Name()}, {Key: "index", Value: bson.D{{Key: "_id", Value: -1}}}}).Err()
	commandErr(t, err, 27)
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil || len(specs) != 1 || specs[0].Name != "_id_" {
		t.Fatalf("indexes after the refusals = %+v, %v", specs, err)
	}
}
