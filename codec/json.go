package codec

import (
	"encoding/json"
	"fmt"
)

// JSON stores sessions as JSON text ([String]), using encoding/json. This is
// how connect-mongo stores express-session data by default, so JSON reads
// sessions written by Node and writes ones Node can read. The zero value is
// ready to use and safe for concurrent use.
//
// The rules of encoding/json apply: `json` tags name fields; numbers in an
// interface value decode as float64; a time.Time is RFC 3339 text and keeps
// its nanoseconds and offset; HTML characters in strings are escaped. The
// output is valid UTF-8, as a BSON string must be.
//
// Decode rejects input that is not exactly one JSON value or that nests
// more than 10000 deep, and never panics on bad input. The decoded value
// shares no memory with the input, provided any json.Unmarshaler in T
// copies what it keeps, as encoding/json requires.
type JSON[T any] struct{}

var _ Codec[string] = JSON[string]{}

// Format returns [String].
func (JSON[T]) Format() Format { return String }

// Encode returns the JSON encoding of v in a new slice.
func (JSON[T]) Encode(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: codec: json: encode %s: %w", typeName[T](), err)
	}
	return b, nil
}

// Decode decodes the JSON value in data into v.
func (JSON[T]) Decode(data []byte, v *T) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("sessionstore: codec: json: decode %s: %w", typeName[T](), err)
	}
	return nil
}
