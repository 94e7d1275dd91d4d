package mongofake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// elem is one field of a document.
type elem struct {
	key string
	val bson.RawValue
}

func elements(doc bson.Raw) ([]elem, error) {
	raw, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	es := make([]elem, len(raw))
	for i, e := range raw {
		es[i] = elem{e.Key(), e.Value()}
	}
	return es, nil
}

func build(es []elem) (bson.Raw, error) {
	d := make(bson.D, len(es))
	for i, e := range es {
		d[i] = bson.E{Key: e.key, Value: e.val}
	}
	return bson.Marshal(d)
}

// withObjectID returns doc with a new ObjectID _id put first.
func withObjectID(doc bson.Raw) (bson.Raw, error) {
	es, err := elements(doc)
	if err != nil {
		return nil, err
	}
	oid := bson.NewObjectID()
	return build(append([]elem{{"_id", bson.RawValue{Type: bson.TypeObjectID, Value: oid[:]}}}, es...))
}

// idFirst returns doc with its _id as the first field, a new ObjectID if
// it has none.
func idFirst(doc bson.Raw) (bson.Raw, error) {
	es, err := elements(doc)
	if err != nil {
		return nil, err
	}
	for i, e := range es {
		if e.key == "_id" {
			if i == 0 {
				return doc, nil
			}
			return build(append(append([]elem{e}, es[:i]...), es[i+1:]...))
		}
	}
	return withObjectID(doc)
}

func intValue(n int32) bson.RawValue {
	return bson.RawValue{Type: bson.TypeInt32, Value: binary.LittleEndian.AppendUint32(nil, uint32(n))}
}

func int64Value(n int64) bson.RawValue {
	return bson.RawValue{Type: bson.TypeInt64, Value: binary.LittleEndian.AppendUint64(nil, uint64(n))}
}

func doubleValue(f float64) bson.RawValue {
	return bson.RawValue{Type: bson.TypeDouble, Value: binary.LittleEndian.AppendUint64(nil, math.Float64bits(f))}
}

// isNumber reports whether v is an int32, int64 or double.
func isNumber(v bson.RawValue) bool {
	_, ok := v.AsFloat64OK()
	return ok
}

// idKey returns the map key of an _id: equal _ids (1 and 1.0 included)
// have equal keys.
func idKey(v bson.RawValue) string {
	if f, ok := v.AsFloat64OK(); ok {
		if v.Type != bson.TypeDouble {
			return "n" + strconv.FormatInt(v.AsInt64(), 10)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return "n" + strconv.FormatInt(int64(f), 10)
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return string([]byte{byte(v.Type)}) + string(v.Value)
}

// typeOrder ranks BSON types the way MongoDB sorts and compares them.
func typeOrder(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return 1
	case bson.TypeNull, bson.TypeUndefined, 0:
		return 2
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 3
	case bson.TypeString, bson.TypeSymbol:
		return 4
	case bson.TypeEmbeddedDocument:
		return 5
	case bson.TypeArray:
		return 6
	case bson.TypeBinary:
		return 7
	case bson.TypeObjectID:
		return 8
	case bson.TypeBoolean:
		return 9
	case bson.TypeDateTime:
		return 10
	case bson.TypeTimestamp:
		return 11
	case bson.TypeRegex:
		return 12
	case bson.TypeDBPointer:
		return 13
	case bson.TypeJavaScript:
		return 14
	case bson.TypeCodeWithScope:
		return 15
	case bson.TypeMaxKey:
		return 100
	}
	return 50
}

func cmp3[T int64 | float64 | uint64 | int | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare orders two values as MongoDB does: by type class, then by value.
// A missing value (Type 0) compares as null.
func compare(a, b bson.RawValue) int {
	if c := cmp3(typeOrder(a.Type), typeOrder(b.Type)); c != 0 {
		return c
	}
	switch typeOrder(a.Type) {
	case 3:
		return compareNumbers(a, b)
	case 4:
		return cmp3(stringOf(a), stringOf(b))
	case 5, 6:
		return compareDocs(bson.Raw(a.Value), bson.Raw(b.Value), a.Type == bson.TypeEmbeddedDocument)
	case 7:
		_, da := a.Binary()
		_, db := b.Binary()
		if c := cmp3(len(da), len(db)); c != 0 {
			return c
		}
		sa, _ := a.Binary()
		sb, _ := b.Binary()
		if c := cmp3(int(sa), int(sb)); c != 0 {
			return c
		}
		return bytes.Compare(da, db)
	case 9:
		return cmp3(btoi(a.Boolean()), btoi(b.Boolean()))
	case 10:
		return cmp3(a.DateTime(), b.DateTime())
	case 11:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		return cmp3(uint64(ta)<<32|uint64(ia), uint64(tb)<<32|uint64(ib))
	case 14:
		return cmp3(a.JavaScript(), b.JavaScript())
	case 1, 2, 100:
		return 0
	}
	return bytes.Compare(a.Value, b.Value)
}

func stringOf(v bson.RawValue) string {
	if v.Type == bson.TypeSymbol {
		return v.Symbol()
	}
	return v.StringValue()
}

func compareNumbers(a, b bson.RawValue) int {
	if a.Type != bson.TypeDouble && b.Type != bson.TypeDouble && a.Type != bson.TypeDecimal128 && b.Type != bson.TypeDecimal128 {
		return cmp3(a.AsInt64(), b.AsInt64())
	}
	fa, fb := float(a), float(b)
	switch {
	case math.IsNaN(fa) && math.IsNaN(fb):
		return 0
	case math.IsNaN(fa):
		return -1
	case math.IsNaN(fb):
		return 1
	case a.Type == bson.TypeInt64 && b.Type == bson.TypeDouble:
		return compareIntFloat(a.Int64(), fb)
	case a.Type == bson.TypeDouble && b.Type == bson.TypeInt64:
		return -compareIntFloat(b.Int64(), fa)
	}
	return cmp3(fa, fb)
}

// float returns a number as a float64; a Decimal128 is rounded to the
// nearest double, which orders it among other numbers closely enough.
func float(v bson.RawValue) float64 {
	if v.Type == bson.TypeDecimal128 {
		f, err := strconv.ParseFloat(v.Decimal128().String(), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return math.NaN()
		}
		return f
	}
	f, _ := v.AsFloat64OK()
	return f
}

// compareIntFloat compares an int64 with a double exactly, as MongoDB
// does, rather than rounding the integer to a double: 2^53+1 > 2^53.0.
func compareIntFloat(i int64, f float64) int {
	switch {
	case f >= 1<<63:
		return -1
	case f < -(1 << 63):
		return 1
	}
	t := math.Trunc(f)
	if c := cmp3(i, int64(t)); c != 0 {
		return c
	}
	return cmp3(0, f-t)
}

// compareDocs compares documents (or arrays, named false) field by field:
// type class, then name, then value; a prefix sorts first.
func compareDocs(a, b bson.Raw, named bool) int {
	ea, _ := elements(a)
	eb, _ := elements(b)
	for i := 0; i < len(ea) && i < len(eb); i++ {
		if c := cmp3(typeOrder(ea[i].val.Type), typeOrder(eb[i].val.Type)); c != 0 {
			return c
		}
		if named {
			if c := cmp3(ea[i].key, eb[i].key); c != 0 {
				return c
			}
		}
		if c := compare(ea[i].val, eb[i].val); c != 0 {
			return c
		}
	}
	return cmp3(len(ea), len(eb))
}
