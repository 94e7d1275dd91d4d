package tier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Fields of a session document besides {_id, expires, session, rev, ttl}.
const (
	fieldDeadline = "deadline" // the absolute end, a date; absent for none
	fieldOwner    = "owner"    // who the session belongs to; null or absent for no one
)

// setWithinAttempts bounds the writes of a SetWithin that keeps finding
// another deadline stored than the one it assumed.
const setWithinAttempts = 3

// decodeMeta reads the deadline and owner of raw into rec.
func decodeMeta(raw bson.Raw, rec *Record) error {
	if v, err := raw.LookupErr(fieldDeadline); err == nil {
		ms, ok := v.DateTimeOK()
		if !ok {
			return fmt.Errorf("%w: deadline is not a date", ErrCorrupt)
		}
		rec.Deadline = time.UnixMilli(ms)
	}
	rec.Owner, _ = raw.Lookup(fieldOwner).StringValueOK()
	return nil
}

// withMeta appends to fields the deadline of rec, when it has one, and
// its owner, when the tier stores owners.
func (m *Mongo) withMeta(rec Record, fields bson.D) bson.D {
	if !rec.Deadline.IsZero() {
		fields = append(fields, bson.E{Key: fieldDeadline, Value: bson.NewDateTimeFromTime(rec.Deadline)})
	}
	if m.owners {
		var owner any // null for no one, so that the owner index has no "" entries
		if rec.Owner != "" {
			owner = rec.Owner
		}
		fields = append(fields, bson.E{Key: fieldOwner, Value: owner})
	}
	return fields
}

// within matches documents with no deadline before t: an expiry moved to
// t stays within the deadline.
func within(t time.Time) bson.E {
	return bson.E{Key: fieldDeadline, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$lt", Value: bson.NewDateTimeFromTime(t)}}}}}
}

// SetWithin creates or replaces rec.ID, whatever its version, for a
// session with a deadline (rec.Deadline, not zero): a live session keeps
// the deadline it has when that is earlier, a new or expired one, or one
// stored without a deadline, gets rec.Deadline, and the expiry stored is
// never later than the deadline kept. known is the deadline the caller
// believes the live stored session has, zero for none or unknown; a
// wrong belief costs a read and another write. It returns rec as
// written, deadline and expiry included, at version -1 (unknown).
//
// Each write is conditional on the deadline assumed, so the deadline and
// expiry it stores are consistent with what it replaces.
func (m *Mongo) SetWithin(ctx context.Context, rec Record, known, now time.Time) (Record, error) {
	if rec.Deadline.IsZero() {
		return Record{}, errors.New("sessionstore: SetWithin needs a record with a deadline")
	}
	st := storedDeadline{deadline: known, live: !known.IsZero()}
	for range setWithinAttempts {
		w := rec
		filter := bson.D{{Key: fieldID, Value: rec.ID}}
		if st.deadline.IsZero() {
			filter = append(filter, bson.E{Key: fieldDeadline, Value: bson.D{{Key: "$exists", Value: false}}})
		} else {
			filter = append(filter, bson.E{Key: fieldDeadline, Value: bson.NewDateTimeFromTime(st.deadline)})
			if st.live && st.deadline.Before(w.Deadline) {
				w.Deadline = st.deadline
			}
		}
		if w.Expires.After(w.Deadline) {
			w.Expires = w.Deadline
		}
		set, err := m.fields(w)
		if err != nil {
			return Record{}, err
		}
		update := bson.D{
			{Key: "$set", Value: set},
			{Key: "$inc", Value: bson.D{{Key: fieldRev, Value: int64(1)}}},
		}
		_, err = m.coll.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
		if err == nil {
			w.Rev = -1
			return w, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return Record{}, fmt.Errorf("sessionstore: mongodb upsert: %w", err)
		}
		// The session is stored with another deadline than assumed.
		if st, err = m.storedDeadline(ctx, rec.ID, now); err != nil {
			return Record{}, err
		}
	}
	return Record{}, fmt.Errorf("%w: its deadline changed under %d writes in a row", ErrConflict, setWithinAttempts)
}

// storedDeadline is the deadline of a stored session, and whether the
// session is live.
type storedDeadline struct {
	deadline time.Time // zero: none stored, or no session
	live     bool
}

// storedDeadline reads the deadline of id and whether it is live at now.
func (m *Mongo) storedDeadline(ctx context.Context, id string, now time.Time) (storedDeadline, error) {
	raw, err := m.coll.FindOne(ctx, bson.D{{Key: fieldID, Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: fieldExpires, Value: 1}, {Key: fieldDeadline, Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return storedDeadline{}, nil
	}
	if err != nil {
		return storedDeadline{}, fmt.Errorf("sessionstore: mongodb find deadline: %w", err)
	}
	var rec Record
	if err := decodeMeta(raw, &rec); err != nil {
		return storedDeadline{}, err
	}
	if ms, ok := raw.Lookup(fieldExpires).DateTimeOK(); ok {
		rec.Expires = time.UnixMilli(ms)
	}
	return storedDeadline{deadline: rec.Deadline, live: rec.Live(now)}, nil
}
