// Package codec turns session values into the bytes a store keeps and back.
//
// A [Codec] also names the [Format] of its bytes, which decides the BSON type
// of the session field in MongoDB: binary data, an embedded document, or a
// string. The codecs here are safe for concurrent use, and their zero values
// are ready to use:
//
//   - [MsgPack], the store's default, is compact MessagePack for Go-only use.
//   - [JSON] and [BSON] write what connect-mongo, the usual express-session
//     store for MongoDB, writes: a JSON string (its default) or an embedded
//     document. Go and Node can then share sessions.
//   - [Bytes] passes through payloads the caller encoded.
//
// Decoding corrupt input returns an error, never panics, and a decoded value
// shares no memory with its input.
package codec

// Format is the BSON type a codec's output is stored as.
type Format uint8

const (
	// Binary payloads are stored as BSON binary data (subtype 0).
	Binary Format = iota
	// Document payloads are BSON documents, stored embedded.
	Document
	// String payloads are UTF-8 text, stored as a BSON string.
	String
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case Binary:
		return "binary"
	case Document:
		return "document"
	case String:
		return "string"
	}
	return "unknown"
}

// Codec encodes and decodes values of type T.
//
// Implementations must be safe for concurrent use. Decode must not keep
// references into data after it returns, and a decoded value must share no
// memory with data, so that callers own what they decode.
type Codec[T any] interface {
	// Encode returns the encoded form of v.
	Encode(v T) ([]byte, error)
	// Decode decodes data into v, which the caller has zeroed.
	Decode(data []byte, v *T) error
	// Format reports how the encoded bytes are stored.
	Format() Format
}
