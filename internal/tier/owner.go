package tier

import (
	"context"
	"fmt"
	"iter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// OwnerIndex is the name of the index on the owner field.
const OwnerIndex = "owner_1"

// EnsureOwnerIndex creates the index {owner: 1}, named OwnerIndex, unless
// it exists. Several instances may call it at once.
func (m *Mongo) EnsureOwnerIndex(ctx context.Context) error {
	_, err := m.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: fieldOwner, Value: 1}},
		Options: options.Index().SetName(OwnerIndex),
	})
	if err != nil {
		return fmt.Errorf("sessionstore: mongodb create index %s: %w", OwnerIndex, err)
	}
	return nil
}

// owned is the filter selecting the sessions in scope of owner live at
// now. Its equality on owner is what the owner index serves.
func (m *Mongo) owned(owner string, now time.Time) bson.D {
	return liveFilter(append(bson.D{{Key: fieldOwner, Value: owner}}, m.scope...), now)
}

// Owned streams the sessions in scope of owner that are live at now, as
// All does.
func (m *Mongo) Owned(ctx context.Context, owner string, now time.Time) iter.Seq2[Record, error] {
	return m.stream(ctx, m.owned(owner, now), now)
}

// OwnedIDs returns the ids of the sessions in scope of owner live at now.
func (m *Mongo) OwnedIDs(ctx context.Context, owner string, now time.Time) ([]string, error) {
	cur, err := m.coll.Find(ctx, m.owned(owner, now), options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("sessionstore: mongodb find by owner: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []string
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup(fieldID).StringValueOK(); ok {
			ids = append(ids, id)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("sessionstore: mongodb find by owner: %w", err)
	}
	return ids, nil
}

// DeleteOwned deletes those of ids that still belong to owner, in one
// deleteMany command, and returns how many it deleted.
func (m *Mongo) DeleteOwned(ctx context.Context, owner string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	res, err := m.coll.DeleteMany(ctx, bson.D{
		{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}},
		{Key: fieldOwner, Value: owner},
	})
	if err != nil {
		return 0, fmt.Errorf("sessionstore: mongodb delete %d sessions by owner: %w", len(ids), err)
	}
	return res.DeletedCount, nil
}
