package codec

import "bytes"

// Bytes passes payloads through unchanged, for sessions the caller has
// already encoded. It stores them as [Binary]. The zero value is ready to
// use and safe for concurrent use.
//
// Both methods copy, so the store and the caller never share a slice.
type Bytes struct{}

var _ Codec[[]byte] = Bytes{}

// Format returns [Binary].
func (Bytes) Format() Format { return Binary }

// Encode returns a copy of v. It never fails.
func (Bytes) Encode(v []byte) ([]byte, error) { return bytes.Clone(v), nil }

// Decode sets *v to a copy of data. It never fails.
func (Bytes) Decode(data []byte, v *[]byte) error {
	*v = bytes.Clone(data)
	return nil
}
