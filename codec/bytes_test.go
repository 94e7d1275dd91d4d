package codec

import (
	"bytes"
	"testing"
)

func FuzzBytesDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("hello"))
	f.Add([]byte{0x00, 0xff, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		var c Bytes
		var v []byte
		if err := c.Decode(in, &v); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !bytes.Equal(v, in) {
			t.Fatalf("Decode(% x) = % x", in, v)
		}
		data, err := c.Encode(v)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(data, in) {
			t.Fatalf("Encode(Decode(% x)) = % x", in, data)
		}
		// Neither result shares memory with its input.
		if len(in) > 0 {
			v[0]++
			data[0] += 2
			if !bytes.Equal(in, orig) {
				t.Fatal("changing a decoded or encoded value changed the input")
			}
		}
	})
}
