package httpsession

import (
	"encoding/binary"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A BSON document is built in place: startDocument reserves its length,
// the append functions add elements, and endDocument closes it.

// startDocument appends a document's length placeholder to b.
func startDocument(b []byte) []byte { return append(b, 0, 0, 0, 0) }

// endDocument closes the document that starts b and fills in its length.
func endDocument(b []byte) []byte {
	b = append(b, 0)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// appendHeader appends an element's type and key.
func appendHeader(b []byte, t bson.Type, key string) []byte {
	b = append(b, byte(t))
	b = append(b, key...)
	return append(b, 0)
}

func appendNull(b []byte, key string) []byte { return appendHeader(b, bson.TypeNull, key) }

func appendBool(b []byte, key string, v bool) []byte {
	b = appendHeader(b, bson.TypeBoolean, key)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendNumber appends n as the Node driver writes a JavaScript number:
// an int32 when it fits, else a double.
func appendNumber(b []byte, key string, n int64) []byte {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		b = appendHeader(b, bson.TypeInt32, key)
		return binary.LittleEndian.AppendUint32(b, uint32(int32(n)))
	}
	b = appendHeader(b, bson.TypeDouble, key)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(n)))
}

func appendDate(b []byte, key string, t time.Time) []byte {
	b = appendHeader(b, bson.TypeDateTime, key)
	return binary.LittleEndian.AppendUint64(b, uint64(t.UnixMilli()))
}

func appendString(b []byte, key, s string) []byte {
	b = appendHeader(b, bson.TypeString, key)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)+1))
	b = append(b, s...)
	return append(b, 0)
}

// appendStringOrNull appends s, or null when s is empty, as
// express-session's toJSON leaves unset fields.
func appendStringOrNull(b []byte, key, s string) []byte {
	if s == "" {
		return appendNull(b, key)
	}
	return appendString(b, key, s)
}

// appendElement appends a key and a value of type t whose bytes are v.
func appendElement(b []byte, key string, t bson.Type, v []byte) []byte {
	return append(appendHeader(b, t, key), v...)
}
