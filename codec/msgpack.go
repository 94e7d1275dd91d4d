package codec

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack is the store's default codec: MessagePack, via
// github.com/vmihailenco/msgpack/v5, stored as [Binary]. The zero value is
// ready to use and safe for concurrent use.
//
// It keeps the library's defaults. A struct field is keyed by its Go name
// unless a `msgpack:"name"` tag says otherwise; json and bson tags are
// ignored. `msgpack:"-"` skips a field and `msgpack:",omitempty"` omits an
// empty one. Map keys are written in Go's random map order, so equal values
// may encode to different bytes. A time.Time keeps its nanoseconds but
// decodes in time.Local; compare times with Equal. Types may implement
// msgpack.CustomEncoder and msgpack.CustomDecoder.
//
// Decode rejects input that is truncated, followed by trailing bytes, or
// nested more than 10000 containers deep, and never panics on bad input:
// every failure is an error. The decoded value shares no memory with the
// input, provided the custom decoders and unmarshalers of types in T copy
// the bytes they keep.
//
// Encode, like the library, does not detect cycles: a value that refers to
// itself overflows the stack.
type MsgPack[T any] struct{}

var _ Codec[int] = MsgPack[int]{}

// Format returns [Binary].
func (MsgPack[T]) Format() Format { return Binary }

// Encode returns the MessagePack encoding of v in a new slice.
func (MsgPack[T]) Encode(v T) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		putMsgpackEncoder(e)
		return nil, fmt.Errorf("sessionstore: codec: msgpack: encode %s: %w", typeName[T](), err)
	}
	out := bytes.Clone(e.buf.Bytes())
	putMsgpackEncoder(e)
	return out, nil
}

// Decode decodes the MessagePack value in data into v.
func (MsgPack[T]) Decode(data []byte, v *T) (err error) {
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer func() {
		// The library can panic on input it should reject (a slice as the
		// key of a map[any]any, say); the caller gets an error instead.
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
		d.r.data = nil
		if err != nil {
			// A failed decode can leave the library's decoder holding
			// state, so it is dropped rather than pooled.
			err = fmt.Errorf("sessionstore: codec: msgpack: decode %s: %w", typeName[T](), err)
		} else if len(data) <= maxPooledSize {
			msgpackDecoders.Put(d)
		}
	}()
	if err := d.r.reset(data); err != nil {
		return err
	}
	if err := d.dec.Decode(v); err != nil {
		return err
	}
	if n := len(data) - d.r.off; n > 0 {
		return fmt.Errorf("%d bytes after the value", n)
	}
	return nil
}

// maxPooledSize bounds the buffers kept in the pools, so that one large
// session does not pin its buffers for every later call.
const maxPooledSize = 64 << 10

// maxDepth is how deeply Decode lets containers nest, the limit
// encoding/json applies. It keeps hostile input from exhausting the stack.
const maxDepth = 10000

type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder // writes to buf
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := new(msgpackEncoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

func putMsgpackEncoder(e *msgpackEncoder) {
	if e.buf.Cap() <= maxPooledSize {
		msgpackEncoders.Put(e)
	}
}

type msgpackDecoder struct {
	r   msgpackReader
	dec *msgpack.Decoder // reads from r
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// msgpackReader feeds one input to the library's decoder. Like a
// bytes.Reader it copies out what it reads, so decoded strings and byte
// slices never alias the input. It also guards against lengths that the
// library would trust: see walk and ReadByte.
type msgpackReader struct {
	data  []byte
	off   int          // next byte to read
	exts  []extPayload // ext payloads found by walk, by start
	next  int          // index of the first entry of exts not before off
	stack []int        // scratch for walk
}

// extPayload is the data of one ext value: data[start:end], found inside
// depth containers.
type extPayload struct {
	start, end, depth int
	checked           bool // walked as MessagePack
}

var _ io.ByteScanner = (*msgpackReader)(nil)

// reset prepares r to read data, which it first walks.
func (r *msgpackReader) reset(data []byte) error {
	r.data, r.off, r.exts, r.next = data, 0, r.exts[:0], 0
	if len(data) == 0 {
		return errTruncated
	}
	return r.walk(0, len(data), 0)
}

// Read implements io.Reader.
func (r *msgpackReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// ReadByte implements io.ByteReader. The library reads the first byte of
// an ext payload with ReadByte only when it skips the ext header and
// decodes the payload as MessagePack (a map or struct stored as an ext, or
// a custom ext decoder). walk took the payload for opaque bytes, so it is
// walked now, before the library trusts any length inside it.
func (r *msgpackReader) ReadByte() (byte, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.next < len(r.exts) {
		if err := r.enterExt(); err != nil {
			return 0, err
		}
	}
	c := r.data[r.off]
	r.off++
	return c, nil
}

// UnreadByte implements io.ByteScanner.
func (r *msgpackReader) UnreadByte() error {
	if r.off == 0 {
		return errors.New("unread at start of input")
	}
	r.off--
	return nil
}

// enterExt walks the ext payload that starts at r.off, if any.
func (r *msgpackReader) enterExt() error {
	for r.next < len(r.exts) && r.exts[r.next].start < r.off {
		r.next++
	}
	if r.next == len(r.exts) || r.exts[r.next].start != r.off || r.exts[r.next].checked {
		return nil
	}
	r.exts[r.next].checked = true
	e, n := r.exts[r.next], len(r.exts)
	if err := r.walk(e.start, e.end, e.depth); err != nil {
		return fmt.Errorf("ext payload at byte %d: %w", e.start, err)
	}
	if len(r.exts) > n {
		// The payload held exts of its own; they lie after off.
		slices.SortFunc(r.exts, func(a, b extPayload) int { return cmp.Compare(a.start, b.start) })
	}
	return nil
}

var (
	errTruncated = errors.New("truncated input")
	errTooDeep   = fmt.Errorf("nested more than %d deep", maxDepth)
)

// walk checks the MessagePack values in r.data[start:end] without decoding
// them, inside depth open containers. It fails if a length runs past end or
// containers nest more than maxDepth deep, and records every ext payload.
// The library sizes slices and maps from declared lengths before reading
// their elements, so without this a few corrupt bytes could demand
// gigabytes.
func (r *msgpackReader) walk(start, end, depth int) error {
	stack, err := r.walkValues(start, end, depth, r.stack[:0])
	r.stack = stack[:0]
	return err
}

func (r *msgpackReader) walkValues(start, end, depth int, stack []int) ([]int, error) {
	b := r.data[:end]
	left := 0 // values left in the innermost open container; the rest are on stack
	for i := start; i < end; {
		c := b[i]
		info := codes[c]
		i++
		skip := uint64(info.size) // bytes to step over
		items := uint64(0)        // values in a container
		if info.kind != kFixed {
			var n uint64 // the length or count
			switch {
			case info.kind == kInvalid:
				return stack, fmt.Errorf("invalid code 0x%02x at byte %d", c, i-1)
			case info.kind == kFixExt:
				skip++ // type byte
			case info.size == 0: // fixarray, fixmap
				n = uint64(c & 0x0f)
			default:
				if end-i < int(info.size) {
					return stack, errTruncated
				}
				n = readUint(b[i : i+int(info.size)])
				i += int(info.size)
				skip = n
			}
			switch info.kind {
			case kExt:
				skip++ // type byte
			case kArray, kMap:
				if depth+len(stack) >= maxDepth {
					return stack, errTooDeep
				}
				skip, items = 0, n
				if info.kind == kMap {
					items *= 2
				}
			}
			if info.kind == kExt || info.kind == kFixExt {
				if uint64(end-i) >= skip {
					r.exts = append(r.exts, extPayload{start: i + 1, end: i + int(skip), depth: depth + len(stack)})
				}
			}
		}
		if uint64(end-i) < skip {
			return stack, errTruncated
		}
		i += int(skip)
		if items > 0 {
			// Every value takes at least one byte.
			if uint64(end-i) < items {
				return stack, errTruncated
			}
			stack = append(stack, left)
			left = int(items)
			continue
		}
		// A scalar or empty container ends a value; close the containers
		// it completes.
		for len(stack) > 0 {
			if left--; left > 0 {
				break
			}
			left = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return stack, errTruncated
	}
	return stack, nil
}

// Kinds of MessagePack type code, for walk.
const (
	kFixed   = iota // size bytes of data follow
	kBytes          // a size-byte length, then that many bytes (str, bin)
	kExt            // a size-byte length, a type byte, then that many bytes
	kFixExt         // a type byte, then size bytes
	kArray          // a size-byte count of values; size 0: count in the code
	kMap            // likewise, counting key-value pairs
	kInvalid        // 0xc1, never used
)

type codeInfo struct {
	kind uint8
	size uint8
}

// codes describes each MessagePack type code.
var codes = func() (t [256]codeInfo) {
	for c := range 256 {
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f:
			t[c] = codeInfo{kind: kMap}
		case c <= 0x9f:
			t[c] = codeInfo{kind: kArray}
		case c <= 0xbf: // fixstr
			t[c].size = uint8(c & 0x1f)
		}
	}
	for c, info := range map[byte]codeInfo{
		0xc1: {kInvalid, 0},
		0xc4: {kBytes, 1}, 0xc5: {kBytes, 2}, 0xc6: {kBytes, 4}, // bin
		0xc7: {kExt, 1}, 0xc8: {kExt, 2}, 0xc9: {kExt, 4},
		0xca: {kFixed, 4}, 0xcb: {kFixed, 8}, // float32, float64
		0xcc: {kFixed, 1}, 0xcd: {kFixed, 2}, 0xce: {kFixed, 4}, 0xcf: {kFixed, 8}, // uint
		0xd0: {kFixed, 1}, 0xd1: {kFixed, 2}, 0xd2: {kFixed, 4}, 0xd3: {kFixed, 8}, // int
		0xd4: {kFixExt, 1}, 0xd5: {kFixExt, 2}, 0xd6: {kFixExt, 4}, 0xd7: {kFixExt, 8}, 0xd8: {kFixExt, 16},
		0xd9: {kBytes, 1}, 0xda: {kBytes, 2}, 0xdb: {kBytes, 4}, // str
		0xdc: {kArray, 2}, 0xdd: {kArray, 4},
		0xde: {kMap, 2}, 0xdf: {kMap, 4},
	} {
		t[c] = info
	}
	return t
}()

// readUint reads a big-endian unsigned integer of 1, 2 or 4 bytes.
func readUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	default:
		return uint64(binary.BigEndian.Uint32(b))
	}
}

// typeName names T for error messages.
func typeName[T any]() string { return reflect.TypeFor[T]().String() }
