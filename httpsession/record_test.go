package httpsession_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore/httpsession"
)

// profile is a session type with a nested document and an omitempty
// field.
type profile struct {
	User  string `bson:"user"`
	Prefs prefs  `bson:"prefs"`
	Note  string `bson:"note,omitempty"`
}

type prefs struct {
	Theme string `bson:"theme"`
}

func mustMarshal(t *testing.T, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeRecord[T any](t *testing.T, doc bson.Raw) httpsession.Record[T] {
	t.Helper()
	var r httpsession.Record[T]
	if err := bson.Unmarshal(doc, &r); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return r
}

func encodeRecord[T any](t *testing.T, r httpsession.Record[T]) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(r)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// The session @iwsio/mongodb-express-session stores: the Cookie's own
// fields, with _expires, as the Node driver serialises them.
func iwsioSession(expires time.Time) bson.D {
	return bson.D{
		{Key: "cookie", Value: bson.D{
			{Key: "path", Value: "/"},
			{Key: "_expires", Value: bson.NewDateTimeFromTime(expires)},
			{Key: "originalMaxAge", Value: int32(7200000)},
			{Key: "httpOnly", Value: true},
			{Key: "sameSite", Value: true},
			{Key: "secure", Value: false},
		}},
		{Key: "user", Value: "ann"},
		{Key: "prefs", Value: bson.D{{Key: "theme", Value: "dark"}, {Key: "font", Value: int32(12)}}},
		{Key: "extra", Value: bson.D{{Key: "n", Value: bson.NewDecimal128(1, 2)}}},
		{Key: "count", Value: int32(7)},
	}
}

func TestRecordReadsExpressCookieObjects(t *testing.T) {
	exp := time.Date(2026, 12, 4, 17, 38, 17, 869e6, time.UTC)
	for _, tc := range []struct {
		name   string
		cookie bson.D
		want   httpsession.Cookie
	}{
		{"iwsio _expires, sameSite true", iwsioSession(exp)[0].Value.(bson.D), httpsession.Cookie{
			MaxAge: 2 * time.Hour, Expires: exp, Path: "/", HTTPOnly: true, SameSite: http.SameSiteStrictMode,
		}},
		{"connect-mongo toJSON with nulls", bson.D{
			{Key: "originalMaxAge", Value: 604800000.0}, {Key: "partitioned", Value: nil}, {Key: "priority", Value: nil},
			{Key: "expires", Value: bson.NewDateTimeFromTime(exp)}, {Key: "secure", Value: nil}, {Key: "httpOnly", Value: true},
			{Key: "domain", Value: nil}, {Key: "path", Value: "/"}, {Key: "sameSite", Value: nil},
		}, httpsession.Cookie{MaxAge: 7 * 24 * time.Hour, Expires: exp, Path: "/", HTTPOnly: true}},
		{"browser-session cookie", bson.D{
			{Key: "originalMaxAge", Value: nil}, {Key: "expires", Value: nil}, {Key: "httpOnly", Value: true}, {Key: "path", Value: "/"},
		}, httpsession.Cookie{Path: "/", HTTPOnly: true}},
		{"every attribute, JSON date", bson.D{
			{Key: "originalMaxAge", Value: int64(60000)}, {Key: "expires", Value: exp.Format(time.RFC3339Nano)},
			{Key: "secure", Value: true}, {Key: "httpOnly", Value: false}, {Key: "domain", Value: "example.com"},
			{Key: "path", Value: "/app"}, {Key: "sameSite", Value: "None"}, {Key: "partitioned", Value: true},
			{Key: "priority", Value: "high"},
		}, httpsession.Cookie{
			MaxAge: time.Minute, Expires: exp, Secure: true, Domain: "example.com", Path: "/app",
			SameSite: http.SameSiteNoneMode, Partitioned: true, Priority: "high",
		}},
		{"sameSite false", bson.D{{Key: "sameSite", Value: false}}, httpsession.Cookie{}},
		{"sameSite lax", bson.D{{Key: "sameSite", Value: "lax"}}, httpsession.Cookie{SameSite: http.SameSiteLaxMode}},
		{"sameSite strict", bson.D{{Key: "sameSite", Value: "strict"}}, httpsession.Cookie{SameSite: http.SameSiteStrictMode}},
		{"fields of other types read as unset", bson.D{
			{Key: "originalMaxAge", Value: "long"}, {Key: "secure", Value: "auto"}, {Key: "path", Value: int32(1)},
		}, httpsession.Cookie{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeRecord[profile](t, mustMarshal(t, bson.D{{Key: "cookie", Value: tc.cookie}, {Key: "user", Value: "ann"}}))
			if r.Cookie != tc.want {
				t.Errorf("Cookie = %+v, want %+v", r.Cookie, tc.want)
			}
			if r.Value.User != "ann" {
				t.Errorf("Value = %+v", r.Value)
			}
			// Stored again unchanged, the cookie object is byte for byte
			// the one read.
			out := encodeRecord(t, r)
			if got, want := out.Lookup("cookie").Document(), mustMarshal(t, tc.cookie); string(got) != string(want) {
				t.Errorf("cookie stored again as %s, want %s", got, want)
			}
		})
	}
}

// Fields T does not declare survive a save at every level of nested
// documents, with their BSON types; a declared field left out by
// omitempty is removed; the cookie keeps its form where Go did not
// change it.
func TestRecordKeepsUnknownFields(t *testing.T) {
	exp := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	in := iwsioSession(exp)
	in = append(in, bson.E{Key: "note", Value: "old note"})
	r := decodeRecord[profile](t, mustMarshal(t, in))
	if r.Value != (profile{User: "ann", Prefs: prefs{Theme: "dark"}, Note: "old note"}) {
		t.Fatalf("Value = %+v", r.Value)
	}
	r.Value.Prefs.Theme = "light"
	r.Value.Note = "" // omitempty: removed
	later := exp.Add(time.Hour)
	r.Cookie.Expires = later
	out := encodeRecord(t, r)

	want := bson.D{
		{Key: "cookie", Value: bson.D{
			{Key: "path", Value: "/"},
			{Key: "_expires", Value: bson.NewDateTimeFromTime(later)},
			{Key: "originalMaxAge", Value: int32(7200000)},
			{Key: "httpOnly", Value: true},
			{Key: "sameSite", Value: true},
			{Key: "secure", Value: false},
		}},
		{Key: "user", Value: "ann"},
		{Key: "prefs", Value: bson.D{{Key: "theme", Value: "light"}, {Key: "font", Value: int32(12)}}},
		{Key: "extra", Value: bson.D{{Key: "n", Value: bson.NewDecimal128(1, 2)}}},
		{Key: "count", Value: int32(7)},
	}
	if string(out) != string(mustMarshal(t, want)) {
		t.Errorf("stored\n%s\nwant\n%s", out, mustMarshal(t, want))
	}
}

// A map type owns every key: a deleted key stays deleted.
func TestRecordOfAMap(t *testing.T) {
	r := decodeRecord[map[string]any](t, mustMarshal(t, bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: "x"}}))
	delete(r.Value, "b")
	out := encodeRecord(t, r)
	if _, err := out.LookupErr("b"); err == nil {
		t.Errorf("deleted key came back: %s", out)
	}
	if v, err := out.LookupErr("a"); err != nil || v.Int32() != 1 {
		t.Errorf("a = %v, %v", v, err)
	}
}

// A new Record stores the cookie object in express-session's toJSON form.
func TestNewRecordCookieForm(t *testing.T) {
	exp := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		cookie httpsession.Cookie
		want   bson.D
	}{
		{"persistent", httpsession.Cookie{MaxAge: 7 * 24 * time.Hour, Expires: exp, Path: "/", HTTPOnly: true, SameSite: http.SameSiteStrictMode}, bson.D{
			{Key: "originalMaxAge", Value: int32(604800000)}, {Key: "expires", Value: bson.NewDateTimeFromTime(exp)},
			{Key: "httpOnly", Value: true}, {Key: "path", Value: "/"}, {Key: "sameSite", Value: "strict"},
		}},
		{"browser session, 30-day numbers as doubles", httpsession.Cookie{Path: "/", Secure: true, Domain: "example.com", Partitioned: true, Priority: "High"}, bson.D{
			{Key: "originalMaxAge", Value: nil}, {Key: "expires", Value: nil}, {Key: "secure", Value: true},
			{Key: "httpOnly", Value: false}, {Key: "domain", Value: "example.com"}, {Key: "path", Value: "/"},
			{Key: "partitioned", Value: true}, {Key: "priority", Value: "high"},
		}},
		{"long lifetime", httpsession.Cookie{MaxAge: 30 * 24 * time.Hour, Expires: exp, Path: "/"}, bson.D{
			{Key: "originalMaxAge", Value: float64(2592000000)}, {Key: "expires", Value: bson.NewDateTimeFromTime(exp)},
			{Key: "httpOnly", Value: false}, {Key: "path", Value: "/"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := encodeRecord(t, httpsession.Record[profile]{Cookie: tc.cookie, Value: profile{User: "bob"}})
			if got, want := out.Lookup("cookie").Document(), mustMarshal(t, tc.want); string(got) != string(want) {
				t.Errorf("cookie = %s, want %s", got, want)
			}
			if back := decodeRecord[profile](t, out); back.Cookie.MaxAge != tc.cookie.MaxAge || !back.Cookie.Expires.Equal(tc.cookie.Expires) {
				t.Errorf("read back as %+v", back.Cookie)
			}
		})
	}
}

// T may not declare the cookie object, nor produce one.
func TestRecordRejectsACookieField(t *testing.T) {
	type old struct {
		Cookie    struct{ Path string } `bson:"cookie"`
		Something string
	}
	if _, err := httpsession.New[old](newFakeStore[old](), &httpsession.Options{Secrets: []string{secret}}); err == nil || !strings.Contains(err.Error(), `"cookie"`) {
		t.Errorf("New with a cookie field: %v", err)
	}
	_, err := bson.Marshal(httpsession.Record[map[string]any]{Value: map[string]any{"cookie": 1}})
	if err == nil {
		t.Error("a map with a cookie key was encoded")
	}
	if _, err := bson.Marshal(httpsession.Record[string]{Value: "x"}); err == nil || !strings.Contains(err.Error(), "document") {
		t.Errorf("encode a string session: %v", err)
	}
}

// A recursive type's shape ends.
func TestRecordOfARecursiveType(t *testing.T) {
	type node struct {
		Name     string           `bson:"name"`
		Children map[string]*node `bson:"children"`
	}
	doc := mustMarshal(t, bson.D{{Key: "name", Value: "root"}, {Key: "children", Value: bson.D{
		{Key: "a", Value: bson.D{{Key: "name", Value: "a"}, {Key: "x", Value: true}}},
	}}})
	r := decodeRecord[node](t, doc)
	r.Value.Name = "top"
	out := encodeRecord(t, r)
	if v, err := out.LookupErr("children", "a", "x"); err != nil || !v.Boolean() {
		t.Errorf("children.a.x = %v, %v in %s", v, err, out)
	}
	if got := decodeRecord[node](t, out); !reflect.DeepEqual(got.Value.Children["a"], &node{Name: "a"}) {
		t.Errorf("read back %+v", got.Value.Children["a"])
	}
}
