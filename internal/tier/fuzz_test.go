package tier

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore/codec"
)

// nodeSession is the session express-session keeps, as the Node stores
// write it: the cookie, with its expiry as connect-mongo (expires) or
// @iwsio/mongodb-express-session (_expires) names it.
type nodeSession struct {
	Cookie struct {
		OriginalMaxAge *int64     `bson:"originalMaxAge"`
		Expires        *time.Time `bson:"expires"`
		UnderExpires   *time.Time `bson:"_expires"`
		HTTPOnly       bool       `bson:"httpOnly"`
		Path           string     `bson:"path"`
		SameSite       any        `bson:"sameSite"`
	} `bson:"cookie"`
	Something string `bson:"something"`
}

// FuzzDecodeDocument feeds arbitrary bytes to the reader of session
// documents, in every payload format: it must never panic nor modify its
// input, and a document it accepts has a string id, a version that is not
// negative and a payload of its own, which for the document format is
// BSON that the BSON codec reads as a Node session or rejects as corrupt.
// The seeds, in testdata/fuzz/FuzzDecodeDocument, are documents as the
// Node stores (@iwsio/mongodb-express-session, connect-mongo) and this
// store write them.
func FuzzDecodeDocument(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		for _, format := range []codec.Format{codec.Binary, codec.Document, codec.String} {
			m := &Mongo{format: format}
			raw := bson.Raw(in)
			_, _ = raw.Lookup(fieldExpires).DateTimeOK() // as Get does
			rec, err := m.decode(raw)
			if err != nil {
				continue
			}
			if id, ok := raw.Lookup(fieldID).StringValueOK(); !ok || id != rec.ID {
				t.Fatalf("format %s: accepted id %q, the document's _id is %v", format, rec.ID, raw.Lookup(fieldID))
			}
			if rec.Rev < 0 || rec.TTL < 0 {
				t.Fatalf("format %s: rev %d, ttl %v", format, rec.Rev, rec.TTL)
			}
			if len(rec.Payload) > 0 {
				before := bytes.Clone(in)
				rec.Payload[0] ^= 0xff
				same := bytes.Equal(in, before)
				rec.Payload[0] ^= 0xff
				if !same {
					t.Fatalf("format %s: the payload shares memory with the document", format)
				}
			}
			if format == codec.Document {
				// A corrupt session field may pass the reader; the codec,
				// which the store runs on every payload read, must catch it.
				var s nodeSession
				err := codec.BSON[nodeSession]{}.Decode(rec.Payload, &s)
				if verr := bson.Raw(rec.Payload).Validate(); verr != nil && err == nil {
					t.Fatalf("the BSON codec read a session field that is not valid BSON (%v)", verr)
				}
			}
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("decode modified its input")
		}
	})
}

// A ttl too long for a time.Duration, found by FuzzDecodeDocument, makes
// the document corrupt rather than a session with a negative lifetime.
func TestDecodeTTLOutOfRange(t *testing.T) {
	for _, ms := range []int64{maxTTL + 1, 1<<63 - 1} {
		raw, err := bson.Marshal(bson.D{
			{Key: "_id", Value: "a"}, {Key: "expires", Value: bson.DateTime(1)},
			{Key: "session", Value: bson.Binary{Data: []byte{1}}}, {Key: "ttl", Value: ms},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&Mongo{}).decode(raw); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ttl %d: decode returned %v, want ErrCorrupt", ms, err)
		}
	}
	if d, ok := storedTTL(bson.RawValue{}); d != 0 || !ok {
		t.Errorf("no ttl: %v, %v; want the default", d, ok)
	}
}
