// Package oplog gives a FerretDB server the oplog that sessionstore
// follows to keep the memory of several instances coherent: FerretDB
// records every write in local.oplog.rs once that capped collection
// exists.
package oplog

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultSize is the oplog size of the test server and the demo. A store
// reads the whole oplog on every poll on FerretDB, about 170µs an entry,
// so it is small: at about 400 bytes an entry it holds some 650 writes,
// a few seconds of what FerretDB sustains.
const DefaultSize = 256 << 10

// Ensure creates local.oplog.rs as a capped collection of size bytes on
// the server at uri, unless it exists.
func Ensure(ctx context.Context, uri string, size int64) error {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	local := client.Database("local")
	names, err := local.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		return fmt.Errorf("oplog: list collections: %w", err)
	}
	if len(names) > 0 {
		return nil
	}
	err = local.CreateCollection(ctx, "oplog.rs", options.CreateCollection().SetCapped(true).SetSizeInBytes(size))
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.HasErrorCode(48) { // NamespaceExists: created meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("oplog: create local.oplog.rs: %w", err)
	}
	return nil
}
