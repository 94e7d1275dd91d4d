package gorillastore

import (
	"bytes"
	"encoding/gob"
	"fmt"
)

// Codec turns a session's Values into the bytes stored in MongoDB and
// back. Implementations must be safe for concurrent use, and a decoded map
// must share no memory with data.
type Codec interface {
	// Encode returns the encoded form of values.
	Encode(values map[any]any) ([]byte, error)
	// Decode returns the values encoded in data, never a nil map.
	Decode(data []byte) (map[any]any, error)
}

// Gob is the default [Codec]: encoding/gob, the serializer gorilla's own
// stores use (through securecookie). It keeps Go types as they are: keys
// and values of any type registered with gob, so that
// session.Values["count"].(int) reads back an int and a struct stays that
// struct. The price is that every concrete type stored inside the
// interface values, other than gob's basic types (bool, numbers, strings,
// and slices of them), must be registered with [gob.Register] before it
// is encoded or decoded, as with gorilla's stores; an unregistered type
// makes Save fail, and a session holding a type the reading program has
// not registered fails to load. Gob bytes are readable only from Go, and
// each session carries its type descriptions: a few dozen bytes more than
// the values themselves.
type Gob struct{}

var _ Codec = Gob{}

// Encode returns the gob encoding of values; a nil map encodes as an
// empty one.
func (Gob) Encode(values map[any]any) ([]byte, error) {
	if values == nil {
		values = map[any]any{}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		return nil, fmt.Errorf("gorillastore: gob-encode session values (a custom type stored in a session needs gob.Register): %w", err)
	}
	return buf.Bytes(), nil
}

// Decode returns the values gob-encoded in data.
func (Gob) Decode(data []byte) (values map[any]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			values, err = nil, fmt.Errorf("gorillastore: gob-decode session values: panic: %v", p)
		}
	}()
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&values); err != nil {
		return nil, fmt.Errorf("gorillastore: gob-decode session values (a custom type stored in a session needs gob.Register): %w", err)
	}
	if values == nil {
		values = map[any]any{}
	}
	return values, nil
}
