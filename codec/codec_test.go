package codec

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// session is a representative session value: ten fields of the usual
// kinds, one of them a nested struct.
type session struct {
	UserID  string            `msgpack:"userId" bson:"userId" json:"userId"`
	Name    string            `msgpack:"name" bson:"name" json:"name"`
	Visits  int               `msgpack:"visits" bson:"visits" json:"visits"`
	Score   float64           `msgpack:"score" bson:"score" json:"score"`
	Admin   bool              `msgpack:"admin" bson:"admin" json:"admin"`
	Created time.Time         `msgpack:"created" bson:"created" json:"created"`
	Roles   []string          `msgpack:"roles" bson:"roles" json:"roles"`
	Prefs   map[string]string `msgpack:"prefs" bson:"prefs" json:"prefs"`
	Token   []byte            `msgpack:"token" bson:"token" json:"token"`
	Cart    cart              `msgpack:"cart" bson:"cart" json:"cart"`
}

type cart struct {
	Items []string `msgpack:"items" bson:"items" json:"items"`
	Total int64    `msgpack:"total" bson:"total" json:"total"`
}

func sample() session {
	return session{
		UserID: "u-1842",
		Name:   "Ada Lovelace",
		Visits: 42,
		Score:  97.5,
		Admin:  true,
		// Whole milliseconds, which BSON dates keep exactly.
		Created: time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC),
		Roles:   []string{"editor", "billing"},
		Prefs:   map[string]string{"theme": "dark", "lang": "en-GB"},
		Token:   []byte{0xde, 0xad, 0xbe, 0xef},
		Cart:    cart{Items: []string{"sku-1", "sku-2"}, Total: 1999},
	}
}

// equalSession compares sessions, times by instant.
func equalSession(t *testing.T, got, want session) {
	t.Helper()
	if !got.Created.Equal(want.Created) {
		t.Errorf("Created = %v, want %v", got.Created, want.Created)
	}
	got.Created = want.Created
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%#v\nwant\n%#v", got, want)
	}
}

// sameSession reports whether a and b hold the same session: times the
// same instant, floats the same bits (so NaN equals NaN), the rest deeply
// equal. The fuzz targets use it where encoded bytes cannot be compared,
// as map order varies.
func sameSession(a, b session) bool {
	if !a.Created.Equal(b.Created) || math.Float64bits(a.Score) != math.Float64bits(b.Score) {
		return false
	}
	a.Created, a.Score, b.Created, b.Score = time.Time{}, 0, time.Time{}, 0
	return reflect.DeepEqual(a, b)
}

// stableRoundTrip fails t unless v, encoded with c and decoded again,
// equals v by same. It returns the encoding.
func stableRoundTrip[T any](t *testing.T, c Codec[T], v T, same func(a, b T) bool) []byte {
	t.Helper()
	data, err := c.Encode(v)
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", v, err)
	}
	var again T
	if err := c.Decode(data, &again); err != nil {
		t.Fatalf("decoding re-encoded % x: %v", data, err)
	}
	if !same(v, again) {
		t.Fatalf("round trip changed the value:\n%+v\nbecame\n%+v\nvia % x", v, again, data)
	}
	return data
}

// codecs lists each session codec under test.
var codecs = []struct {
	name   string
	codec  Codec[session]
	format Format
}{
	{"MsgPack", MsgPack[session]{}, Binary},
	{"BSON", BSON[session]{}, Document},
	{"JSON", JSON[session]{}, String},
}

func TestFormat(t *testing.T) {
	for _, c := range codecs {
		if got := c.codec.Format(); got != c.format {
			t.Errorf("%s.Format() = %v, want %v", c.name, got, c.format)
		}
	}
	if got := (Bytes{}).Format(); got != Binary {
		t.Errorf("Bytes.Format() = %v, want %v", got, Binary)
	}
	for f, want := range map[Format]string{Binary: "binary", Document: "document", String: "string", 9: "unknown"} {
		if f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, f.String(), want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			want := sample()
			data, err := c.codec.Encode(want)
			if err != nil {
				t.Fatal(err)
			}
			var got session
			if err := c.codec.Decode(data, &got); err != nil {
				t.Fatal(err)
			}
			equalSession(t, got, want)

			var zero session
			data, err = c.codec.Encode(zero)
			if err != nil {
				t.Fatal(err)
			}
			got = session{}
			if err := c.codec.Decode(data, &got); err != nil {
				t.Fatal(err)
			}
			if !got.Created.IsZero() {
				t.Errorf("zero Created decoded as %v", got.Created)
			}
		})
	}
}

// TestDecodeOwnsMemory checks that decoded values share no memory with the
// input: scribbling over the input after Decode changes nothing.
func TestDecodeOwnsMemory(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			data, err := c.codec.Encode(sample())
			if err != nil {
				t.Fatal(err)
			}
			var got session
			if err := c.codec.Decode(data, &got); err != nil {
				t.Fatal(err)
			}
			scribble(data)
			equalSession(t, got, sample())
		})
	}
	t.Run("MsgPack/any", func(t *testing.T) {
		ownsMemory(t, MsgPack[map[string]any]{}, map[string]any{
			"s": "text", "b": []byte("bin"), "m": map[string]any{"k": "v"},
			"a": []any{"x"}, "t": time.Unix(1_700_000_000, 123_456_789),
		})
	})
	t.Run("MsgPack/RawMessage", func(t *testing.T) {
		raw, _ := msgpack.Marshal("raw value")
		ownsMemory(t, MsgPack[msgpack.RawMessage]{}, msgpack.RawMessage(raw))
	})
	t.Run("BSON/M", func(t *testing.T) {
		ownsMemory(t, BSON[bson.M]{}, bson.M{"s": "text", "b": bson.Binary{Data: []byte("bin")}, "d": bson.D{{Key: "k", Value: "v"}}})
	})
	t.Run("BSON/Raw", func(t *testing.T) {
		raw, _ := bson.Marshal(bson.D{{Key: "k", Value: "v"}})
		ownsMemory(t, BSON[bson.Raw]{}, bson.Raw(raw))
	})
	t.Run("JSON/RawMessage", func(t *testing.T) {
		ownsMemory(t, JSON[json.RawMessage]{}, json.RawMessage(`{"k":"v"}`))
	})
	t.Run("Bytes", func(t *testing.T) {
		ownsMemory(t, Bytes{}, []byte("payload"))
	})
}

func ownsMemory[T any](t *testing.T, c Codec[T], v T) {
	t.Helper()
	data, err := c.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	var got T
	if err := c.Decode(data, &got); err != nil {
		t.Fatal(err)
	}
	scribble(data)
	if !reflect.DeepEqual(got, v) {
		t.Errorf("after scribbling over the input, decoded value is %#v, want %#v", got, v)
	}
}

func scribble(b []byte) {
	for i := range b {
		b[i] = 0xff
	}
}

// TestEncodeOwnsMemory checks that encoded bytes are not reused by a later
// Encode, nor shared with the value.
func TestEncodeOwnsMemory(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			first, err := c.codec.Encode(sample())
			if err != nil {
				t.Fatal(err)
			}
			keep := bytes.Clone(first)
			other := sample()
			other.Name = strings.Repeat("x", len(other.Name))
			if _, err := c.codec.Encode(other); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, keep) {
				t.Error("a later Encode changed the bytes of an earlier one")
			}
		})
	}
	t.Run("Bytes", func(t *testing.T) {
		v := []byte("payload")
		out, _ := Bytes{}.Encode(v)
		scribble(v)
		if string(out) != "payload" {
			t.Errorf("Encode result changed with its input: %q", out)
		}
	})
}

func TestEncodeUnsupported(t *testing.T) {
	type withChan struct{ C chan int }
	type withFunc struct{ F func() }
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("Encode succeeded, want an error")
		}
		if !strings.HasPrefix(err.Error(), "sessionstore: codec: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
		t.Log(err)
	}
	t.Run("MsgPack/chan", func(t *testing.T) {
		_, err := MsgPack[withChan]{}.Encode(withChan{C: make(chan int)})
		check(t, err)
	})
	t.Run("MsgPack/func", func(t *testing.T) {
		_, err := MsgPack[withFunc]{}.Encode(withFunc{F: func() {}})
		check(t, err)
	})
	t.Run("BSON/chan", func(t *testing.T) {
		_, err := BSON[withChan]{}.Encode(withChan{C: make(chan int)})
		check(t, err)
	})
	t.Run("BSON/func", func(t *testing.T) {
		_, err := BSON[withFunc]{}.Encode(withFunc{F: func() {}})
		check(t, err)
	})
	t.Run("JSON/chan", func(t *testing.T) {
		_, err := JSON[withChan]{}.Encode(withChan{C: make(chan int)})
		check(t, err)
	})
	t.Run("JSON/func", func(t *testing.T) {
		_, err := JSON[withFunc]{}.Encode(withFunc{F: func() {}})
		check(t, err)
	})
	inMap := map[string]any{"ok": 1, "c": make(chan int)}
	t.Run("MsgPack/chan in map", func(t *testing.T) {
		_, err := MsgPack[map[string]any]{}.Encode(inMap)
		check(t, err)
	})
	t.Run("BSON/chan in map", func(t *testing.T) {
		_, err := BSON[map[string]any]{}.Encode(inMap)
		check(t, err)
	})
	t.Run("JSON/chan in map", func(t *testing.T) {
		_, err := JSON[map[string]any]{}.Encode(inMap)
		check(t, err)
	})
}

func TestDecodeGarbage(t *testing.T) {
	inputs := map[string][]byte{
		"nil":       nil,
		"empty":     {},
		"one byte":  {0x00},
		"text":      []byte("not an encoding of anything"),
		"all ones":  bytes.Repeat([]byte{0xff}, 64),
		"all zeros": make([]byte, 64),
	}
	for _, c := range codecs {
		for name, in := range inputs {
			var got session
			err := c.codec.Decode(in, &got)
			if err == nil {
				t.Errorf("%s.Decode(%s) succeeded, want an error", c.name, name)
				continue
			}
			if !strings.HasPrefix(err.Error(), "sessionstore: codec: ") {
				t.Errorf("%s.Decode(%s): error %q lacks the package prefix", c.name, name, err)
			}
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, c := range codecs {
		data, err := c.codec.Encode(sample())
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			var got session
			if err := c.codec.Decode(data[:n], &got); err == nil {
				t.Errorf("%s.Decode of the first %d of %d bytes succeeded", c.name, n, len(data))
			}
		}
	}
}

func TestBytes(t *testing.T) {
	var c Bytes
	for _, in := range [][]byte{nil, {}, []byte("abc")} {
		data, err := c.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := c.Decode(data, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, in) {
			t.Errorf("round trip of %q gave %q", in, got)
		}
	}
}
