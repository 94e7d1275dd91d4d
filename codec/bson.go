package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// BSON stores sessions as embedded BSON documents ([Document]), using the
// driver's bson.Marshal and bson.Unmarshal with their default registry. This
// is the shape @iwsio/mongodb-express-session writes, and connect-mongo with
// stringify: false, so a Go struct with bson tags can share sessions with
// Node.
// The zero value is ready to use and safe for concurrent use.
//
// T must encode as a document: a struct, a map with string keys, bson.D,
// bson.M or bson.Raw, or a pointer to one. Encode returns an error for any
// other T, such as a string or a slice. The driver's rules apply: fields are
// keyed by their lowercased Go name unless a `bson:"name"` tag says
// otherwise; time.Time is stored as a BSON date, so it keeps millisecond
// precision and decodes in UTC; a document inside an interface value (the
// values of a bson.M, say) decodes as bson.D.
//
// Decode rejects input that is not exactly one document or that nests more
// than 10000 documents and arrays deep, and never panics on bad input. The
// decoded value shares no memory with the input, provided any
// bson.Unmarshaler in T copies what it keeps, as the driver requires.
type BSON[T any] struct{}

var _ Codec[map[string]any] = BSON[map[string]any]{}

// Format returns [Document].
func (BSON[T]) Format() Format { return Document }

// Encode returns v as a BSON document in a new slice.
func (BSON[T]) Encode(v T) ([]byte, error) {
	b, err := bson.Marshal(v)
	if err == nil {
		return b, nil
	}
	// The driver's error for a non-document value is about writer states;
	// name the BSON type instead when the value has one.
	if t, _, verr := bson.MarshalValue(v); verr == nil && t != bson.TypeEmbeddedDocument {
		return nil, fmt.Errorf("sessionstore: codec: bson: encode %s: value is a BSON %s, not a document", typeName[T](), t)
	}
	return nil, fmt.Errorf("sessionstore: codec: bson: encode %s: %w", typeName[T](), err)
}

// Decode decodes the BSON document in data into v.
func (BSON[T]) Decode(data []byte, v *T) (err error) {
	defer func() {
		// Belt and braces: the driver is fuzzed, but a panic on stored
		// bytes must not take the process down.
		if p := recover(); p != nil {
			err = fmt.Errorf("sessionstore: codec: bson: decode %s: panic: %v", typeName[T](), p)
		}
	}()
	if err := checkBSON(data); err != nil {
		return fmt.Errorf("sessionstore: codec: bson: decode %s: %w", typeName[T](), err)
	}
	if err := bson.Unmarshal(data, v); err != nil {
		return fmt.Errorf("sessionstore: codec: bson: decode %s: %w", typeName[T](), err)
	}
	return nil
}

// checkBSON walks the document in b, checking only what the driver's
// decoder, which recurses once per level, cannot: that documents and
// arrays nest at most maxDepth deep. It also fails on lengths that run past
// their container; the driver checks everything else.
func checkBSON(b []byte) error {
	if len(b) < 5 {
		return fmt.Errorf("%d bytes is too short for a document", len(b))
	}
	if n := int(int32(binary.LittleEndian.Uint32(b))); n != len(b) {
		return fmt.Errorf("document length %d does not match the %d bytes given", n, len(b))
	}
	var buf [16]int
	ends := append(buf[:0], len(b)-1) // index of each open document's final 0x00
	i := 4
	for len(ends) > 0 {
		end := ends[len(ends)-1]
		if i == end {
			if b[i] != 0 {
				return fmt.Errorf("document at byte %d does not end with 0x00", i)
			}
			i++
			ends = ends[:len(ends)-1]
			continue
		}
		t := b[i]
		i++
		k := bytes.IndexByte(b[i:end], 0) // element name
		if k < 0 {
			return errBSONTruncated(i)
		}
		i += k + 1
		var n int // bytes of value, when fixed
		switch t {
		case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, max key, min key
		case 0x08: // boolean
			n = 1
		case 0x10: // int32
			n = 4
		case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
			n = 8
		case 0x07: // ObjectId
			n = 12
		case 0x13: // decimal128
			n = 16
		case 0x02, 0x0D, 0x0E, 0x0C: // string, JavaScript, symbol, DBPointer
			l, ok := readLen(b, i, end)
			if !ok || l < 1 {
				return errBSONTruncated(i)
			}
			n = 4 + l
			if t == 0x0C {
				n += 12
			}
		case 0x05: // binary: length, subtype, data
			l, ok := readLen(b, i, end)
			if !ok {
				return errBSONTruncated(i)
			}
			n = 5 + l
		case 0x0B: // regular expression: two C strings
			for range 2 {
				k := bytes.IndexByte(b[i:end], 0)
				if k < 0 {
					return errBSONTruncated(i)
				}
				i += k + 1
			}
		case 0x03, 0x04, 0x0F: // document, array, code with scope
			start := i
			if t == 0x0F {
				// Total length, string, then the scope document.
				total, ok := readLen(b, i, end)
				if !ok || total < 14 || end-i < total {
					return errBSONTruncated(i)
				}
				l, ok := readLen(b, i+4, i+total)
				if !ok || l < 1 || i+total-(i+8+l) < 5 {
					return errBSONTruncated(i)
				}
				i += 8 + l
				if l2, _ := readLen(b, i, end); i+l2 != start+total {
					return fmt.Errorf("code with scope at byte %d has inconsistent lengths", start)
				}
			}
			l, ok := readLen(b, i, end)
			if !ok || l < 5 || end-i < l {
				return errBSONTruncated(i)
			}
			if len(ends) >= maxDepth {
				return errTooDeep
			}
			ends = append(ends, i+l-1)
			i += 4
			continue
		default:
			return fmt.Errorf("unknown BSON type 0x%02x at byte %d", t, i-1)
		}
		if end-i < n {
			return errBSONTruncated(i)
		}
		i += n
	}
	return nil
}

// readLen reads the int32 length at b[i:], which must lie before end.
func readLen(b []byte, i, end int) (int, bool) {
	if end-i < 4 {
		return 0, false
	}
	l := int(int32(binary.LittleEndian.Uint32(b[i:])))
	return l, l >= 0
}

func errBSONTruncated(i int) error {
	return fmt.Errorf("value at byte %d runs past its document", i)
}
