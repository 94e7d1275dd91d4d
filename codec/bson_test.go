package codec

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// expressSession is the session express-session keeps, with the cookie
// fields connect-mongo stores.
type expressSession struct {
	Cookie    expressCookie `bson:"cookie" json:"cookie"`
	Something string        `bson:"something" json:"something"`
}

type expressCookie struct {
	// OriginalMaxAge is in milliseconds; nil for a browser-session cookie.
	OriginalMaxAge *int64 `bson:"originalMaxAge" json:"originalMaxAge"`
	// Expires is nil for a browser-session cookie.
	Expires  *time.Time `bson:"expires" json:"expires"`
	HTTPOnly bool       `bson:"httpOnly" json:"httpOnly"`
	Path     string     `bson:"path" json:"path"`
}

// sameExpressSession reports whether a and b hold the same session, with
// times compared as instants.
func sameExpressSession(a, b expressSession) bool {
	ea, eb := a.Cookie.Expires, b.Cookie.Expires
	if (ea == nil) != (eb == nil) || ea != nil && !ea.Equal(*eb) {
		return false
	}
	a.Cookie.Expires, b.Cookie.Expires = nil, nil
	return reflect.DeepEqual(a, b)
}

var nodeExpires = time.Date(2025, 6, 1, 12, 30, 0, 250_000_000, time.UTC)

// nodeDocument is a session document as Node's driver writes it: numbers
// that fit are int32, and a JavaScript Date is a BSON date.
func nodeDocument(t *testing.T) []byte {
	t.Helper()
	b, err := bson.Marshal(bson.D{
		{Key: "cookie", Value: bson.D{
			{Key: "originalMaxAge", Value: int32(86400000)},
			{Key: "expires", Value: bson.NewDateTimeFromTime(nodeExpires)},
			{Key: "httpOnly", Value: true},
			{Key: "path", Value: "/"},
		}},
		{Key: "something", Value: "abc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBSONReadsExpressSession(t *testing.T) {
	data := nodeDocument(t)
	var s expressSession
	if err := (BSON[expressSession]{}).Decode(data, &s); err != nil {
		t.Fatal(err)
	}
	c := s.Cookie
	if c.OriginalMaxAge == nil || *c.OriginalMaxAge != 86400000 {
		t.Errorf("originalMaxAge = %v, want 86400000", c.OriginalMaxAge)
	}
	if c.Expires == nil || !c.Expires.Equal(nodeExpires) {
		t.Errorf("expires = %v, want %v", c.Expires, nodeExpires)
	}
	if !c.HTTPOnly || c.Path != "/" || s.Something != "abc" {
		t.Errorf("decoded %+v", s)
	}
}

func TestBSONReadsExpressSessionAsM(t *testing.T) {
	var m bson.M
	if err := (BSON[bson.M]{}).Decode(nodeDocument(t), &m); err != nil {
		t.Fatal(err)
	}
	if m["something"] != "abc" {
		t.Errorf("something = %#v", m["something"])
	}
	// Nested documents decode as bson.D, the driver's default.
	cookie, ok := m["cookie"].(bson.D)
	if !ok {
		t.Fatalf("cookie is %T, want bson.D", m["cookie"])
	}
	got := map[string]any{}
	for _, e := range cookie {
		got[e.Key] = e.Value
	}
	if got["originalMaxAge"] != int32(86400000) || got["httpOnly"] != true || got["path"] != "/" {
		t.Errorf("cookie = %#v", got)
	}
	if exp, ok := got["expires"].(bson.DateTime); !ok || !exp.Time().Equal(nodeExpires) {
		t.Errorf("expires = %#v, want the date %v", got["expires"], nodeExpires)
	}
}

// TestBSONReadsBrowserSessionCookie reads a cookie without a max age, which
// Node stores as nulls, and one whose max age is too large for an int32,
// which Node stores as a double.
func TestBSONReadsBrowserSessionCookie(t *testing.T) {
	data, err := bson.Marshal(bson.D{{Key: "cookie", Value: bson.D{
		{Key: "originalMaxAge", Value: nil},
		{Key: "expires", Value: nil},
		{Key: "path", Value: "/"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var s expressSession
	if err := (BSON[expressSession]{}).Decode(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Cookie.OriginalMaxAge != nil || s.Cookie.Expires != nil {
		t.Errorf("decoded %+v, want nil max age and expiry", s.Cookie)
	}

	data, err = bson.Marshal(bson.D{{Key: "cookie", Value: bson.D{
		{Key: "originalMaxAge", Value: float64(30 * 24 * time.Hour / time.Millisecond)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	s = expressSession{}
	if err := (BSON[expressSession]{}).Decode(data, &s); err != nil {
		t.Fatal(err)
	}
	if want := int64(30 * 24 * time.Hour / time.Millisecond); s.Cookie.OriginalMaxAge == nil || *s.Cookie.OriginalMaxAge != want {
		t.Errorf("originalMaxAge = %v, want %d", s.Cookie.OriginalMaxAge, want)
	}
}

// TestBSONWritesExpressSession checks the reverse: what Go writes has the
// BSON types Node expects.
func TestBSONWritesExpressSession(t *testing.T) {
	maxAge := int64(86400000)
	expires := nodeExpires
	in := expressSession{
		Cookie:    expressCookie{OriginalMaxAge: &maxAge, Expires: &expires, HTTPOnly: true, Path: "/"},
		Something: "abc",
	}
	for name, encode := range map[string]func() ([]byte, error){
		"struct": func() ([]byte, error) { return BSON[expressSession]{}.Encode(in) },
		"M": func() ([]byte, error) {
			return BSON[bson.M]{}.Encode(bson.M{
				"cookie": bson.M{
					"originalMaxAge": maxAge,
					"expires":        expires,
					"httpOnly":       true,
					"path":           "/",
				},
				"something": "abc",
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := encode()
			if err != nil {
				t.Fatal(err)
			}
			doc := bson.Raw(data)
			if err := doc.Validate(); err != nil {
				t.Fatal(err)
			}
			if v := doc.Lookup("cookie", "expires"); v.Type != bson.TypeDateTime || !v.Time().Equal(nodeExpires) {
				t.Errorf("cookie.expires = %v, want the date %v", v, nodeExpires)
			}
			if n, ok := doc.Lookup("cookie", "originalMaxAge").AsInt64OK(); !ok || n != maxAge {
				t.Errorf("cookie.originalMaxAge = %v", doc.Lookup("cookie", "originalMaxAge"))
			}
			if v := doc.Lookup("cookie", "httpOnly"); v.Type != bson.TypeBoolean || !v.Boolean() {
				t.Errorf("cookie.httpOnly = %v", v)
			}
			if v := doc.Lookup("cookie", "path"); v.StringValue() != "/" {
				t.Errorf("cookie.path = %v", v)
			}
			if v := doc.Lookup("something"); v.StringValue() != "abc" {
				t.Errorf("something = %v", v)
			}
			// And it reads back.
			var out expressSession
			if err := (BSON[expressSession]{}).Decode(data, &out); err != nil {
				t.Fatal(err)
			}
			if *out.Cookie.OriginalMaxAge != maxAge || !out.Cookie.Expires.Equal(expires) || out.Something != "abc" {
				t.Errorf("read back %+v", out)
			}
		})
	}
}

func TestBSONEncodeNotDocument(t *testing.T) {
	check := func(t *testing.T, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatal("Encode succeeded, want an error")
		}
		if !strings.HasPrefix(err.Error(), "sessionstore: codec: bson: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want one mentioning %q", err, want)
		}
	}
	_, err := BSON[string]{}.Encode("abc")
	check(t, err, "not a document")
	_, err = BSON[int]{}.Encode(7)
	check(t, err, "not a document")
	_, err = BSON[[]int]{}.Encode([]int{1})
	check(t, err, "not a document")
	_, err = BSON[*expressSession]{}.Encode(nil)
	check(t, err, "not a document")
	var a any
	_, err = BSON[any]{}.Encode(a)
	check(t, err, "encode interface {}")
	_, err = BSON[bson.Raw]{}.Encode(bson.Raw{1, 2})
	check(t, err, "encode bson.Raw")

	var s string
	if err := (BSON[string]{}).Decode(nodeDocument(t), &s); err == nil {
		t.Error("decoding a document into a string succeeded")
	}
}

// nestedBSON returns depth documents, each the only field of the last.
func nestedBSON(depth int) []byte {
	size := 5 + 7*(depth-1)
	b := make([]byte, size)
	for i := range depth - 1 {
		at := 6 * i
		binary.LittleEndian.PutUint32(b[at:], uint32(size-7*i))
		b[at+4] = 0x03 // embedded document, named ""
	}
	binary.LittleEndian.PutUint32(b[6*(depth-1):], 5)
	return b
}

func TestBSONDepth(t *testing.T) {
	if err := bson.Raw(nestedBSON(50)).Validate(); err != nil {
		t.Fatalf("nestedBSON is malformed: %v", err)
	}
	var m bson.M
	if err := (BSON[bson.M]{}).Decode(nestedBSON(maxDepth), &m); err != nil {
		t.Errorf("Decode at depth %d: %v", maxDepth, err)
	}
	m = nil
	err := BSON[bson.M]{}.Decode(nestedBSON(maxDepth+1), &m)
	if err == nil || !strings.Contains(err.Error(), "deep") {
		t.Errorf("Decode at depth %d: err = %v, want too deep", maxDepth+1, err)
	}
	// Deep enough to overflow the stack without the check.
	m = nil
	if err := (BSON[bson.M]{}).Decode(nestedBSON(1_000_000), &m); err == nil {
		t.Error("Decode at depth 1e6 succeeded")
	}
}

func TestCheckBSONAcceptsAllTypes(t *testing.T) {
	oid := bson.NewObjectID()
	dec, _ := bson.ParseDecimal128("1.5")
	doc := bson.D{
		{Key: "double", Value: 1.5},
		{Key: "string", Value: "s"},
		{Key: "doc", Value: bson.D{{Key: "a", Value: bson.A{1, "x", bson.D{}}}}},
		{Key: "binary", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "oid", Value: oid},
		{Key: "bool", Value: true},
		{Key: "date", Value: bson.DateTime(0)},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: "^a", Options: "i"}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.c", Pointer: oid}},
		{Key: "js", Value: bson.JavaScript("f()")},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "cws", Value: bson.CodeWithScope{Code: "g()", Scope: bson.D{{Key: "x", Value: 1}}}},
		{Key: "int32", Value: int32(1)},
		{Key: "timestamp", Value: bson.Timestamp{T: 1, I: 2}},
		{Key: "int64", Value: int64(1)},
		{Key: "decimal", Value: dec},
		{Key: "min", Value: bson.MinKey{}},
		{Key: "max", Value: bson.MaxKey{}},
	}
	data, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkBSON(data); err != nil {
		t.Fatal(err)
	}
	var d bson.D
	if err := (BSON[bson.D]{}).Decode(data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d) != len(doc) {
		t.Errorf("decoded %d fields, want %d", len(d), len(doc))
	}
}

func FuzzBSONDecode(f *testing.F) {
	var c BSON[session]
	for _, v := range []session{sample(), {}} {
		data, err := c.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	raw, _ := bson.Marshal(bson.D{
		{Key: "cookie", Value: bson.D{{Key: "expires", Value: bson.DateTime(1)}, {Key: "a", Value: bson.A{1.5, "x"}}}},
		{Key: "cws", Value: bson.CodeWithScope{Code: "g()", Scope: bson.D{{Key: "x", Value: 1}}}},
		{Key: "re", Value: bson.Regex{Pattern: "^a", Options: "i"}},
		{Key: "bin", Value: bson.Binary{Subtype: 0x80, Data: []byte{1}}},
	})
	f.Add(raw)
	f.Add(nestedBSON(20))
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		var s session
		if err := c.Decode(in, &s); err == nil {
			// Whatever decodes must encode and decode to the same value.
			stableRoundTrip(t, c, s, sameSession)
		}
		var m bson.M
		_ = BSON[bson.M]{}.Decode(in, &m)
		// What the driver reads, the depth check must pass. (Fuzz inputs
		// are too small to overflow the stack without the check.)
		var d bson.D
		if bson.Unmarshal(in, &d) == nil {
			if err := checkBSON(in); err != nil {
				t.Fatalf("checkBSON rejected a document the driver reads: %v", err)
			}
		}
		// A session as the Node stores write it.
		var es expressSession
		if (BSON[expressSession]{}).Decode(in, &es) == nil {
			stableRoundTrip(t, BSON[expressSession]{}, es, sameExpressSession)
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("Decode modified its input")
		}
	})
}
