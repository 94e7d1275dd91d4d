package codec

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// hostile holds small MessagePack inputs that once made the library
// allocate gigabytes or recurse without bound.
var hostile = map[string][]byte{
	"array32 of 4G":   {0xdd, 0xff, 0xff, 0xff, 0xff},
	"map32 of 4G":     {0xdf, 0xff, 0xff, 0xff, 0xff},
	"bin32 of 4GB":    {0xc6, 0xff, 0xff, 0xff, 0xff},
	"str32 of 4GB":    {0xdb, 0xff, 0xff, 0xff, 0xff},
	"ext32 of 4GB":    {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
	"nested array32":  {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
	"array16 too big": {0xdc, 0x01, 0x00, 0x01},
	// A map hidden in an ext payload: the library skips the ext header
	// when it wants a map, then trusts the array length inside.
	"ext-wrapped map":  {0xd7, 0x00, 0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
	"ext8-wrapped map": {0xc7, 0x06, 0x00, 0x81, 0xa1, 'a', 0xc6, 0xff, 0xff, 0xff, 0xff},
	"deep arrays":      bytes.Repeat([]byte{0x91}, maxDepth+1),
	"deep maps":        bytes.Repeat([]byte{0x81, 0xa0}, maxDepth+1),
	"invalid code":     {0x81, 0xa1, 'a', 0xc1},
	"trailing bytes":   {0x80, 0x00},
}

func TestMsgPackHostile(t *testing.T) {
	for name, in := range hostile {
		t.Run(name, func(t *testing.T) {
			decodeAll(t, in, func(err error) {
				if err == nil {
					t.Error("Decode succeeded, want an error")
				}
			})
		})
	}
}

// decodeAll decodes in into several types, checking that each decode
// allocates little.
func decodeAll(t *testing.T, in []byte, check func(error)) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var (
		s  session
		m  map[string]any
		ms map[string][]int64
		mb map[string][]byte
		a  any
		sl [][]string
	)
	check(MsgPack[session]{}.Decode(in, &s))
	check(MsgPack[map[string]any]{}.Decode(in, &m))
	check(MsgPack[map[string][]int64]{}.Decode(in, &ms))
	check(MsgPack[map[string][]byte]{}.Decode(in, &mb))
	check(MsgPack[any]{}.Decode(in, &a))
	check(MsgPack[[][]string]{}.Decode(in, &sl))
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("decoding %d bytes allocated %d bytes", len(in), n)
	}
}

func TestMsgPackDepth(t *testing.T) {
	// maxDepth arrays, each holding the next, is the deepest allowed.
	in := append(bytes.Repeat([]byte{0x91}, maxDepth-1), 0x90)
	var v any
	if err := (MsgPack[any]{}).Decode(in, &v); err != nil {
		t.Errorf("Decode at depth %d: %v", maxDepth, err)
	}
	in = append(bytes.Repeat([]byte{0x91}, maxDepth), 0x90)
	v = nil
	if err := (MsgPack[any]{}).Decode(in, &v); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Errorf("Decode at depth %d: err = %v, want too deep", maxDepth+1, err)
	}
}

// extMap is stored as an ext wrapping a map, which the library also
// decodes into a plain map by skipping the ext header.
type extMap map[string][]int64

func (m extMap) MarshalMsgpack() ([]byte, error) {
	return msgpack.Marshal(map[string][]int64(m))
}

func (m *extMap) UnmarshalMsgpack(b []byte) error {
	return msgpack.Unmarshal(b, (*map[string][]int64)(m))
}

func TestMsgPackExtWrappedMap(t *testing.T) {
	msgpack.RegisterExt(42, (*extMap)(nil))
	defer msgpack.UnregisterExt(42)
	data, err := MsgPack[*extMap]{}.Encode(&extMap{"a": {1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != 0xd7 && data[0] != 0xc7 {
		t.Fatalf("encoding % x is not an ext", data)
	}
	// A well-formed ext-wrapped map still decodes into a plain map.
	var m map[string][]int64
	if err := (MsgPack[map[string][]int64]{}).Decode(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m["a"]) != 2 {
		t.Errorf("decoded %v", m)
	}
	// A time's payload is opaque: times whose bytes look like a map header
	// decode as times.
	for _, ns := range []int{0, 0x80 << 22, 0x8f << 22, 0xde << 22} {
		want := time.Unix(1_700_000_000, int64(ns))
		data, err := MsgPack[time.Time]{}.Encode(want)
		if err != nil {
			t.Fatal(err)
		}
		var got time.Time
		if err := (MsgPack[time.Time]{}).Decode(data, &got); err != nil || !got.Equal(want) {
			t.Errorf("time % x: got %v, %v; want %v", data, got, err, want)
		}
	}
}

func TestMsgPackPanicBecomesError(t *testing.T) {
	// A slice as a key of map[any]any makes the library panic.
	in := []byte{0x81, 0x91, 0x01, 0x01}
	var m map[any]any
	err := MsgPack[map[any]any]{}.Decode(in, &m)
	if err == nil {
		t.Fatal("Decode succeeded, want an error")
	}
	t.Log(err)
}

// TestMsgPackConcurrent shares the pools between goroutines; run with -race.
func TestMsgPackConcurrent(t *testing.T) {
	var c MsgPack[session]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				want := sample()
				want.Visits = g*1000 + i
				data, err := c.Encode(want)
				if err != nil {
					t.Error(err)
					return
				}
				var got session
				if err := c.Decode(data, &got); err != nil {
					t.Error(err)
					return
				}
				if got.Visits != want.Visits || got.Name != want.Name {
					t.Errorf("got %+v, want %+v", got, want)
					return
				}
				if i%50 == 0 {
					// Failed decodes drop their decoder; mix some in.
					_ = c.Decode(data[:len(data)/2], &got)
				}
			}
		})
	}
	wg.Wait()
}

// TestMsgPackDecodeAllocs holds Decode to the allocations of the library's
// own decoder: the pools and checks must add none.
func TestMsgPackDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var c MsgPack[session]
	data, err := c.Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	var r bytes.Reader
	lib := msgpack.NewDecoder(&r)
	want := testing.AllocsPerRun(100, func() {
		r.Reset(data)
		var s session
		if err := lib.Decode(&s); err != nil {
			t.Fatal(err)
		}
	})
	got := testing.AllocsPerRun(100, func() {
		var s session
		if err := c.Decode(data, &s); err != nil {
			t.Fatal(err)
		}
	})
	if got > want {
		t.Errorf("Decode made %v allocations, the library alone %v", got, want)
	}
	v := sample()
	got = testing.AllocsPerRun(100, func() {
		if _, err := c.Encode(v); err != nil {
			t.Fatal(err)
		}
	})
	// One to box the value for the library, one for the result.
	if got > 2 {
		t.Errorf("Encode made %v allocations, want at most 2", got)
	}
}

func BenchmarkMsgPack(b *testing.B) {
	var c MsgPack[session]
	v := sample()
	data, err := c.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := c.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var s session
			if err := c.Decode(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var s session
				if err := c.Decode(data, &s); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// The library's own functions, for comparison.
	b.Run("LibMarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LibUnmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s session
			if err := msgpack.Unmarshal(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzMsgPackDecode(f *testing.F) {
	for _, v := range []session{sample(), {}} {
		data, err := MsgPack[session]{}.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, in := range hostile {
		if len(in) < 100 { // deep inputs slow the fuzzer; a test has them
			f.Add(in)
		}
	}
	f.Add([]byte{0x92, 0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		var s session
		if err := (MsgPack[session]{}).Decode(in, &s); err == nil {
			// Whatever decodes must encode and decode to the same value.
			stableRoundTrip(t, MsgPack[session]{}, s, sameSession)
		}
		var m map[string]any
		_ = MsgPack[map[string]any]{}.Decode(in, &m)
		var ms map[string][]int64
		_ = MsgPack[map[string][]int64]{}.Decode(in, &ms)
		var a any
		_ = MsgPack[any]{}.Decode(in, &a)
		if !bytes.Equal(in, orig) {
			t.Fatal("Decode modified its input")
		}
	})
}
