package bench

import (
	"testing"

	"github.com/sessionstore/sessionstore/codec"
)

// BenchmarkCodec encodes and decodes the sample session with each codec
// and reports its encoded size.
func BenchmarkCodec(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec codec.Codec[Session]
	}{
		{"msgpack", codec.MsgPack[Session]{}},
		{"bson", codec.BSON[Session]{}},
		{"json", codec.JSON[Session]{}},
	} {
		v := Sample(42)
		p, err := c.codec.Encode(v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := c.codec.Encode(v)
				if err != nil {
					b.Fatal(err)
				}
				sink += int64(len(out))
			}
			b.ReportMetric(float64(len(p)), "B/session")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out Session
				if err := c.codec.Decode(p, &out); err != nil {
					b.Fatal(err)
				}
				sink += out.UserID
			}
			b.ReportMetric(float64(len(p)), "B/session")
		})
	}
}

// TestSampleRoundTrip checks that every codec keeps the sample session.
func TestSampleRoundTrip(t *testing.T) {
	want := Sample(7)
	for _, c := range []codec.Codec[Session]{codec.MsgPack[Session]{}, codec.BSON[Session]{}, codec.JSON[Session]{}} {
		p, err := c.Encode(want)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		var got Session
		if err := c.Decode(p, &got); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !got.Created.Equal(want.Created) || got.Email != want.Email || len(got.Roles) != 2 || got.Prefs["tz"] != want.Prefs["tz"] {
			t.Errorf("%T: got %+v, want %+v", c, got, want)
		}
	}
	if len(ID(1)) != 32 || ID(1) == ID(2) {
		t.Errorf("ID: %q, %q", ID(1), ID(2))
	}
}
