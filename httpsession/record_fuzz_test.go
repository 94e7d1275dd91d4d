package httpsession_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore/codec"
	"github.com/sessionstore/sessionstore/httpsession"
)

// FuzzRecordDecode feeds stored sessions through the BSON codec into a
// Record: decoding never panics, and what decodes encodes again to a
// document that decodes to the same value and cookie.
func FuzzRecordDecode(f *testing.F) {
	exp := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	for _, seed := range []any{
		iwsioSession(exp),
		bson.D{{Key: "cookie", Value: bson.D{{Key: "originalMaxAge", Value: nil}, {Key: "expires", Value: nil}}}, {Key: "user", Value: "ann"}},
		bson.D{{Key: "cookie", Value: "not a document"}, {Key: "prefs", Value: bson.D{{Key: "theme", Value: int32(1)}}}},
		bson.D{},
	} {
		b, err := bson.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := codec.BSON[httpsession.Record[profile]]{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r httpsession.Record[profile]
		if c.Decode(data, &r) != nil {
			return
		}
		out, err := c.Encode(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		var back httpsession.Record[profile]
		if err := c.Decode(out, &back); err != nil {
			t.Fatalf("an encoded record does not decode: %v\n%x", err, out)
		}
		if back.Value != r.Value || back.Cookie.MaxAge != r.Cookie.MaxAge || !back.Cookie.Expires.Equal(r.Cookie.Expires.Truncate(time.Millisecond)) ||
			back.Cookie.Path != r.Cookie.Path || back.Cookie.SameSite != r.Cookie.SameSite {
			t.Fatalf("round trip changed %+v into %+v", r, back)
		}
	})
}
