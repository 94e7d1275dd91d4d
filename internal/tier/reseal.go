package tier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// resealBatch is how many documents Reseal reads per find command.
const resealBatch = 100

// Reseal encrypts again, with the first key of the tier's ring, every
// session in scope live at now that was sealed with another key, and
// returns how many it rewrote. It reads the collection in pages by _id
// and calls wait before each write, which paces them; an error from wait
// ends Reseal. A write is conditional on the payload read, so a session
// written meanwhile (and so sealed with the first key) is left alone; the
// version is not changed, since the session is. A payload that does not
// decrypt is left as it is, and Reseal goes on and then returns an error
// wrapping ErrCorrupt that counts them.
func (m *Mongo) Reseal(ctx context.Context, now time.Time, wait func(context.Context) error) (int64, error) {
	if m.ring == nil {
		return 0, errors.New("sessionstore: sessions are not encrypted; there is nothing to re-encrypt")
	}
	var (
		n, corrupt int64
		after      string
	)
	for {
		// Ids are not empty, and $gt on a string matches strings only.
		page := bson.D{{Key: "$and", Value: bson.A{liveFilter(m.scope, now), bson.D{{Key: fieldID, Value: bson.D{{Key: "$gt", Value: after}}}}}}}
		cur, err := m.coll.Find(ctx, page, options.Find().
			SetSort(bson.D{{Key: fieldID, Value: 1}}).
			SetLimit(resealBatch).
			SetProjection(bson.D{{Key: fieldSession, Value: 1}}))
		if err != nil {
			return n, fmt.Errorf("sessionstore: mongodb find sessions to re-encrypt: %w", err)
		}
		var docs []bson.Raw
		first := after
		for cur.Next(ctx) {
			docs = append(docs, cur.Current)
		}
		err = cur.Err()
		cur.Close(context.WithoutCancel(ctx))
		if err != nil {
			return n, fmt.Errorf("sessionstore: mongodb find sessions to re-encrypt: %w", err)
		}
		for _, doc := range docs {
			id, ok := doc.Lookup(fieldID).StringValueOK()
			if !ok {
				continue // not a session document
			}
			after = id
			_, old, ok := doc.Lookup(fieldSession).BinaryOK()
			if ok && m.ring.Current(old) {
				continue
			}
			var plain []byte
			if ok {
				plain, err = m.ring.Open(old, id)
			}
			if !ok || err != nil {
				corrupt++
				continue
			}
			if err := wait(ctx); err != nil {
				return n, err
			}
			res, err := m.coll.UpdateOne(ctx,
				bson.D{{Key: fieldID, Value: id}, {Key: fieldSession, Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: old}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: fieldSession, Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: m.ring.Seal(plain, id)}}}}})
			if err != nil {
				return n, fmt.Errorf("sessionstore: mongodb re-encrypt: %w", err)
			}
			n += res.ModifiedCount
		}
		if len(docs) < resealBatch || after == first {
			break
		}
	}
	if corrupt > 0 {
		return n, fmt.Errorf("%w: %d sessions do not decrypt with any key of the ring and were left as they are", ErrCorrupt, corrupt)
	}
	return n, nil
}
