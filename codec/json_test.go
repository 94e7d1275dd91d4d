package codec

import (
	"strings"
	"testing"
)

// connectMongo is a session as connect-mongo stores it by default: the
// output of JSON.stringify, where a Date becomes ISO 8601 text.
const connectMongo = `{"cookie":{"originalMaxAge":86400000,"expires":"2025-06-01T12:30:00.250Z","httpOnly":true,"path":"/"},"something":"abc"}`

func TestJSONReadsConnectMongo(t *testing.T) {
	var c JSON[expressSession]
	var s expressSession
	if err := c.Decode([]byte(connectMongo), &s); err != nil {
		t.Fatal(err)
	}
	if s.Cookie.OriginalMaxAge == nil || *s.Cookie.OriginalMaxAge != 86400000 {
		t.Errorf("originalMaxAge = %v", s.Cookie.OriginalMaxAge)
	}
	if s.Cookie.Expires == nil || !s.Cookie.Expires.Equal(nodeExpires) {
		t.Errorf("expires = %v, want %v", s.Cookie.Expires, nodeExpires)
	}
	if !s.Cookie.HTTPOnly || s.Cookie.Path != "/" || s.Something != "abc" {
		t.Errorf("decoded %+v", s)
	}
	// Go's time format trims trailing zeros from the fraction ("00.25Z"),
	// so the text differs from JSON.stringify's; the values do not.
	data, err := c.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	var again expressSession
	if err := c.Decode(data, &again); err != nil {
		t.Fatal(err)
	}
	if *again.Cookie.OriginalMaxAge != *s.Cookie.OriginalMaxAge || !again.Cookie.Expires.Equal(*s.Cookie.Expires) ||
		again.Cookie.Path != s.Cookie.Path || again.Something != s.Something {
		t.Errorf("re-read %+v from %s", again, data)
	}
}

func TestJSONDepth(t *testing.T) {
	in := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	var v any
	if err := (JSON[any]{}).Decode([]byte(in), &v); err == nil {
		t.Errorf("Decode at depth %d succeeded", maxDepth+1)
	}
}

func TestJSONTrailingData(t *testing.T) {
	var v map[string]any
	if err := (JSON[map[string]any]{}).Decode([]byte(`{} {}`), &v); err == nil {
		t.Error("Decode of two values succeeded")
	}
}
