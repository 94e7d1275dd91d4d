// Package oplog gives a FerretDB server the oplog that sessionstore
// follows to keep the memory of several instances coherent: FerretDB
// records every write in local.oplog.rs once that capped collection
// exists.
//
// FerretDB caps a capped collection only when it compacts it: its own
// server runs the compaction every minute, the embedded one never. Trim
// runs it for an embedded server.
package oplog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The caps of the test server's and the demo's oplog. A store reads the
// whole oplog on every poll on FerretDB, so the oplog is kept short:
// DefaultEntries is at least a second of the writes FerretDB sustains
// here, and TrimInterval lets it grow by at most another second of them.
const (
	DefaultSize    = 256 << 10 // bytes
	DefaultEntries = 256
	TrimInterval   = 250 * time.Millisecond
)

// Ensure creates local.oplog.rs as a capped collection of at most size
// bytes and entries entries (0: no count cap) on the server at uri,
// unless it exists.
func Ensure(ctx context.Context, uri string, size, entries int64) error {
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
	opts := options.CreateCollection().SetCapped(true).SetSizeInBytes(size)
	if entries > 0 {
		opts.SetMaxDocuments(entries)
	}
	err = local.CreateCollection(ctx, "oplog.rs", opts)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.HasErrorCode(48) { // NamespaceExists: created meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("oplog: create local.oplog.rs: %w", err)
	}
	return nil
}

// Trim compacts local.oplog.rs on the server at uri every interval until
// ctx ends, which drops its oldest entries beyond its caps. It reports
// each failed compaction to failed, if set, and goes on.
func Trim(ctx context.Context, uri string, every time.Duration, failed func(error)) error {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	local := client.Database("local")
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, max(every, 10*time.Second))
		err := local.RunCommand(cctx, bson.D{{Key: "compact", Value: "oplog.rs"}}).Err()
		cancel()
		if err != nil && ctx.Err() == nil && failed != nil {
			failed(fmt.Errorf("oplog: compact local.oplog.rs: %w", err))
		}
	}
}
