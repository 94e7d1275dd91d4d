package codec

import (
	"bytes"
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

func FuzzJSONDecode(f *testing.F) {
	var c JSON[session]
	for _, v := range []session{sample(), {}} {
		data, err := c.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(connectMongo))
	f.Add([]byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}}`))
	f.Add([]byte(`{"created":"2025-03-14T15:09:26.535+01:00","token":"3q2+7w==","prefs":{"\u00e9":"\ud83d\udd11"}}`))
	f.Add([]byte(`{"roles":[],"prefs":{},"token":"","visits":1e2,"score":-0.0}`))
	f.Add([]byte("{\"name\":\"\xff\"}"))
	f.Add([]byte(strings.Repeat("[", 50)))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		// encoding/json writes map keys sorted and each value one way,
		// so a decoded value's encoding is a fixed point: decoding and
		// encoding it again gives the same bytes.
		var s session
		if c.Decode(in, &s) == nil {
			stableJSON(t, c, s)
		}
		var es expressSession
		if (JSON[expressSession]{}).Decode(in, &es) == nil {
			stableJSON(t, JSON[expressSession]{}, es)
		}
		var a any
		if (JSON[any]{}).Decode(in, &a) == nil {
			stableJSON(t, JSON[any]{}, a)
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("Decode modified its input")
		}
	})
}

// stableJSON fails t unless encoding v, decoding that and encoding again
// gives the same bytes twice.
func stableJSON[T any](t *testing.T, c JSON[T], v T) {
	t.Helper()
	first, err := c.Encode(v)
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", v, err)
	}
	var again T
	if err := c.Decode(first, &again); err != nil {
		t.Fatalf("decoding re-encoded %s: %v", first, err)
	}
	second, err := c.Encode(again)
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", again, err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip is not stable:\n%s\nbecame\n%s", first, second)
	}
}
