package gorillastore_test

import (
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/gorillastore"
)

type flash struct {
	Level, Text string
}

// Types stored inside a session's interface values are registered, as
// gorilla's stores need too; time.Time is not one of gob's basic types.
func init() {
	gob.Register(flash{})
	gob.Register(time.Time{})
}

// sample is a session as a web app keeps it: a user, a counter, a time, a
// flash of a registered type, and a non-string key.
func sample() map[any]any {
	return map[any]any{
		"user":    "ada",
		"count":   41,
		"seen":    time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		"_flash":  []any{flash{"info", "saved"}},
		7:         []string{"a", "b"},
		"isAdmin": false,
	}
}

// Gob keeps Go types: the decoded map deep-equals the encoded one.
func TestGobRoundTrip(t *testing.T) {
	for _, v := range []map[any]any{sample(), {}, nil} {
		b, err := gorillastore.Gob{}.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gorillastore.Gob{}.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		want := v
		if want == nil {
			want = map[any]any{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %v gave %v", v, got)
		}
	}
}

type notRegistered struct{ N int }

// Errors name what to do; garbage never panics.
func TestGobErrors(t *testing.T) {
	_, err := gorillastore.Gob{}.Encode(map[any]any{"x": notRegistered{1}})
	if err == nil || !strings.Contains(err.Error(), "gob.Register") {
		t.Errorf("Encode of an unregistered type: %v, want an error naming gob.Register", err)
	}
	for _, data := range [][]byte{nil, []byte("not gob"), {0xff, 0xff, 0xff, 0xff}} {
		if v, err := (gorillastore.Gob{}).Decode(data); err == nil || v != nil {
			t.Errorf("Decode(%q) = %v, %v; want an error", data, v, err)
		}
	}
}

func FuzzGobDecode(f *testing.F) {
	b, _ := gorillastore.Gob{}.Encode(sample())
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := gorillastore.Gob{}.Decode(data)
		if err == nil && v == nil {
			t.Fatal("Decode returned a nil map and no error")
		}
	})
}

// The cost of gob beside encoding/json on the same session (with string
// keys, which JSON needs, and types JSON loses: the count reads back as a
// float64, the flash as a map).
func BenchmarkCodec(b *testing.B) {
	v := sample()
	strKeys := map[string]any{}
	for k, x := range v {
		strKeys[fmt.Sprint(k)] = x
	}
	enc, _ := gorillastore.Gob{}.Encode(v)
	js, _ := json.Marshal(strKeys)
	b.Run("gob/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (gorillastore.Gob{}).Encode(v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(enc)), "bytes/session")
	})
	b.Run("gob/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (gorillastore.Gob{}).Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(strKeys); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes/session")
	})
	b.Run("json/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(js, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
